//! A root in `files.write_allow`: `$TMP`, `$TARGET`, `$HOME` (each with an
//! optional `/sub/dir`), an absolute path, or a path relative to the
//! workspace (the policy file's folder).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Where the placeholders of write roots point, for one run.
///
/// ```
/// let w = probity::policy::Where::new("/src/app");
/// assert_eq!(w.target, std::path::Path::new("/src/app/target"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Where {
    /// The workspace: relative roots are under it.
    pub workspace: PathBuf,
    /// `$TARGET`: cargo's target directory.
    pub target: PathBuf,
    /// `$TMP`: the temporary directory.
    pub tmp: PathBuf,
    /// `$HOME`, when set.
    pub home: Option<PathBuf>,
}

impl Where {
    /// The places of a run in `workspace`: `$TARGET` is
    /// `CARGO_TARGET_DIR` when it is absolute, else `workspace/target`;
    /// `$TMP` is `TMPDIR`, else `/tmp`.
    #[must_use]
    pub fn new(workspace: impl Into<PathBuf>) -> Where {
        let workspace = workspace.into();
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .filter(|d| d.is_absolute())
            .unwrap_or_else(|| workspace.join("target"));
        let home = std::env::var_os("HOME").map(PathBuf::from).filter(|d| d.is_absolute());
        Where { workspace, target, tmp: std::env::temp_dir(), home }
    }
}

/// A write root as the policy spells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Root(String);

impl Root {
    /// The directory, absolute, for the run's places; `None` for `$HOME`
    /// when there is no home.
    pub(crate) fn resolve(&self, at: &Where) -> Option<PathBuf> {
        let (var, rest) = match self.0.strip_prefix('$') {
            Some(v) => v.split_once('/').map_or((Some(v), ""), |(v, r)| (Some(v), r)),
            None => (None, self.0.as_str()),
        };
        let base: &Path = match var {
            Some("TMP") => &at.tmp,
            Some("TARGET") => &at.target,
            Some("HOME") => at.home.as_deref()?,
            Some(_) => return None,
            None if rest.starts_with('/') => Path::new("/"),
            None => &at.workspace,
        };
        Some(PathBuf::from(crate::trace::index::normalize(base.join(rest.trim_start_matches('/')))))
    }
}

impl fmt::Display for Root {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Root {
    type Err = String;

    fn from_str(s: &str) -> Result<Root, String> {
        let allowed = "allowed: `$TMP`, `$TARGET`, `$HOME` (each may go on with `/dir`), an absolute path, or a path relative to the workspace";
        if s.is_empty() {
            return Err(format!("an empty root; {allowed}"));
        }
        if let Some(v) = s.strip_prefix('$') {
            let var = v.split('/').next().unwrap_or("");
            if !matches!(var, "TMP" | "TARGET" | "HOME") {
                return Err(format!("`${var}` is not a known place; {allowed}"));
            }
        } else if s.contains('$') {
            return Err(format!("`{s}`: a place (`$TMP`) may only start a root; {allowed}"));
        }
        if s.split('/').any(|c| c == "..") {
            return Err(format!("`{s}` climbs out with `..`; {allowed}"));
        }
        Ok(Root(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> Where {
        Where { workspace: "/w".into(), target: "/w/target".into(), tmp: "/tmp".into(), home: Some("/root".into()) }
    }

    fn r(s: &str) -> Option<PathBuf> {
        s.parse::<Root>().unwrap().resolve(&at())
    }

    #[test]
    fn places_and_paths() {
        assert_eq!(r("$TMP"), Some("/tmp".into()));
        assert_eq!(r("$TARGET/debug"), Some("/w/target/debug".into()));
        assert_eq!(r("$HOME/.cache"), Some("/root/.cache".into()));
        assert_eq!(r("out/"), Some("/w/out".into()));
        assert_eq!(r("/var/cache"), Some("/var/cache".into()));
    }

    #[test]
    fn rejects_unknown_places_and_climbing() {
        assert!("$NOPE".parse::<Root>().unwrap_err().contains("not a known place"));
        assert!("a/$TMP".parse::<Root>().is_err());
        assert!("../x".parse::<Root>().unwrap_err().contains("climbs out"));
    }
}
