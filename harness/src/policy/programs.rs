//! A program in `exec.allow`, `exec.deny` or an override's `program`: a
//! path or a glob (`/usr/bin/*`, `**/build-script-*`), or a bare name
//! (`git`, `cc*`) matched against the exec'd file's name.

use std::ffi::OsStr;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use globset::{GlobBuilder, GlobMatcher};

/// A program pattern.
///
/// ```
/// let p: probity::policy::Program = "/usr/bin/*".parse()?;
/// assert_eq!(p.to_string(), "/usr/bin/*");
/// # Ok::<(), String>(())
/// ```
#[derive(Clone, Debug)]
pub struct Program {
    glob: GlobMatcher,
    /// The pattern names a path (it has a `/`), not a file name.
    path: bool,
}

impl Program {
    /// Whether `program`, an exec'd path, matches.
    pub(crate) fn matches(&self, program: &OsStr) -> bool {
        if self.path {
            self.glob.is_match(program)
        } else {
            Path::new(program).file_name().is_some_and(|n| self.glob.is_match(n))
        }
    }
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.glob.glob().glob())
    }
}

impl FromStr for Program {
    type Err = String;

    fn from_str(s: &str) -> Result<Program, String> {
        if s.is_empty() {
            return Err("an empty program; allowed: a path (`/usr/bin/git`), a glob (`/usr/bin/*`) or a file name (`git`, `cc*`)".to_owned());
        }
        let glob = GlobBuilder::new(s).literal_separator(true).build().map_err(|e| {
            format!(
                "`{s}` is not a glob: {}; allowed: a path, a glob (`/usr/bin/*`, `**/build-script-*`) or a file name",
                e.kind()
            )
        })?;
        Ok(Program { glob: glob.compile_matcher(), path: s.contains('/') })
    }
}

impl PartialEq for Program {
    fn eq(&self, other: &Program) -> bool {
        self.glob.glob() == other.glob.glob()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Program {
        s.parse().unwrap()
    }

    #[test]
    fn paths_globs_and_names() {
        assert!(p("/usr/bin/git").matches(OsStr::new("/usr/bin/git")));
        assert!(!p("/usr/bin/git").matches(OsStr::new("/usr/local/bin/git")));
        assert!(p("/usr/bin/*").matches(OsStr::new("/usr/bin/curl")));
        assert!(!p("/usr/bin/*").matches(OsStr::new("/usr/bin/x/curl")));
        assert!(p("**/build-script-*").matches(OsStr::new("/t/debug/build/a-1/build-script-build")));
        assert!(p("git").matches(OsStr::new("/usr/bin/git")));
        assert!(p("cc*").matches(OsStr::new("/usr/bin/cc1")));
        assert!(!p("git").matches(OsStr::new("/usr/bin/gitk")));
    }

    #[test]
    fn rejects_bad_globs() {
        assert!("/usr/[bin".parse::<Program>().unwrap_err().contains("is not a glob"));
        assert!("".parse::<Program>().is_err());
    }
}
