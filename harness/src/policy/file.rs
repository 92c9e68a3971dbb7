//! `probity.toml`: its schema, read with `toml` and `serde`, unknown keys
//! and bad values refused with the file, line and what is allowed; and
//! where it is found.

use std::path::{Path, PathBuf};

use globset::GlobBuilder;
use serde::Deserialize;
use toml::Spanned;

use super::error::PolicyError;
use super::model::{Lines, Mode, Network, Override, Policy, Rules, Selector};

/// The file's name, looked for at the workspace root.
pub const FILE_NAME: &str = "probity.toml";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    mode: Option<Mode>,
    network: Option<NetworkTable>,
    exec: Option<ExecTable>,
    files: Option<FilesTable>,
    #[serde(default, rename = "override")]
    overrides: Vec<Spanned<OverrideTable>>,
}

/// A list of strings, each kept with where it is in the file, so that
/// a bad one is reported at its own line, and the list with its own, so
/// that a violation of it points there.
type Strings = Option<Spanned<Vec<Spanned<String>>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkTable {
    allow: Strings,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecTable {
    allow: Strings,
    deny: Strings,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilesTable {
    write_allow: Strings,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideTable {
    test: Option<Spanned<String>>,
    program: Option<Spanned<String>>,
    network: Option<NetworkTable>,
    exec: Option<ExecTable>,
    files: Option<FilesTable>,
}

/// A bad value's error, at its place in the file.
type Invalid<'a> = &'a dyn Fn(Option<std::ops::Range<usize>>, String) -> PolicyError;

/// Each string of a list parsed by its type's `FromStr`, whose error says
/// what is allowed.
fn each<T: std::str::FromStr<Err = String>>(
    list: &Strings,
    invalid: Invalid<'_>,
) -> Result<Option<Vec<T>>, PolicyError> {
    list.as_ref()
        .map(|l| l.get_ref().iter().map(|s| s.get_ref().parse().map_err(|e| invalid(Some(s.span()), e))).collect())
        .transpose()
}

fn rules(
    network: Option<NetworkTable>,
    exec: Option<ExecTable>,
    files: Option<FilesTable>,
    invalid: Invalid<'_>,
    line_of: &dyn Fn(usize) -> usize,
) -> Result<Rules, PolicyError> {
    let (exec_allow, exec_deny) = exec.map_or((None, None), |e| (e.allow, e.deny));
    let network = network.and_then(|n| n.allow);
    let write_allow = files.and_then(|f| f.write_allow);
    let line = |l: &Strings| l.as_ref().map(|l| line_of(l.span().start));
    Ok(Rules {
        network: each(&network, invalid)?.map_or(Network::Any, Network::Only),
        exec_allow: each(&exec_allow, invalid)?,
        exec_deny: each(&exec_deny, invalid)?.unwrap_or_default(),
        write_allow: each(&write_allow, invalid)?,
        lines: Lines {
            network: line(&network),
            exec_allow: line(&exec_allow),
            exec_deny: line(&exec_deny),
            write_allow: line(&write_allow),
        },
    })
}

/// The line and column (from 1) of byte `at` of `text`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl Policy {
    /// Reads a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| PolicyError::Read { path: path.to_owned(), source })?;
        Policy::parse(&text, path)
    }

    /// The policy `probity.toml` in `dir` or the nearest folder above it
    /// holds, looking no higher than the first folder with a `.git`;
    /// `None` when there is none.
    pub fn discover(dir: &Path) -> Result<Option<Policy>, PolicyError> {
        for d in dir.ancestors() {
            let file = d.join(FILE_NAME);
            if file.is_file() {
                return Policy::load(&file).map(Some);
            }
            if d.join(".git").exists() {
                break;
            }
        }
        Ok(None)
    }

    /// Reads a policy from `text`, the content of `path` (named in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Policy, PolicyError> {
        let invalid = |at: Option<std::ops::Range<usize>>, message: String| {
            let (line, column) = line_column(text, at.map_or(0, |r| r.start));
            PolicyError::Invalid { path: path.to_owned(), line, column, message }
        };
        let line_of = |at: usize| line_column(text, at).0;
        let file: File = toml::from_str(text).map_err(|e| invalid(e.span(), e.message().trim_end().to_owned()))?;
        let mut overrides = Vec::new();
        for o in file.overrides {
            let span = o.span();
            let o = o.into_inner();
            let selector = match (o.test, o.program) {
                (None, Some(p)) => {
                    Selector::Program(p.get_ref().parse().map_err(|e| invalid(Some(p.span()), e))?)
                }
                (Some(t), None) => {
                    let g = GlobBuilder::new(t.get_ref()).build().map_err(|e| {
                        invalid(Some(t.span()), format!("`{}` is not a glob: {}", t.get_ref(), e.kind()))
                    })?;
                    Selector::Test(g.compile_matcher())
                }
                _ => {
                    return Err(invalid(
                        Some(span),
                        "an [[override]] names exactly one of `test` (a test-name glob) or `program` (a path, glob or file name)".to_owned(),
                    ))
                }
            };
            overrides.push(Override { selector, rules: rules(o.network, o.exec, o.files, &invalid, &line_of)? });
        }
        Ok(Policy {
            mode: file.mode.unwrap_or_default(),
            base: rules(file.network, file.exec, file.files, &invalid, &line_of)?,
            overrides,
            origin: Some(PathBuf::from(path)),
            ceiling: Network::Any,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Policy::parse(text, Path::new("/w/probity.toml")).unwrap_err().to_string()
    }

    #[test]
    fn reads_every_key() {
        let p = Policy::parse(
            r#"
mode = "audit"
[network]
allow = ["*.crates.io", "127.0.0.1", "localhost:8000-8999"]
[exec]
allow = ["/usr/bin/*", "rustc"]
deny = ["curl"]
[files]
write_allow = ["$TMP", "$TARGET", "out"]
[[override]]
test = "net::*"
network.allow = ["example.com:80"]
[[override]]
program = "build-script-build"
files.write_allow = ["/var/tmp"]
"#,
            Path::new("probity.toml"),
        )
        .unwrap();
        assert_eq!(p.mode(), Mode::Audit);
        assert!(matches!(&p.base.network, Network::Only(e) if e.len() == 3));
        assert_eq!(p.base.exec_deny.len(), 1);
        assert_eq!(p.overrides.len(), 2);
    }

    #[test]
    fn unknown_keys_name_the_line_and_what_is_allowed() {
        let e = err("mode = \"enforce\"\n[network]\nalow = []\n");
        assert!(e.starts_with("/w/probity.toml:3:1: unknown field `alow`, expected `allow`"), "{e}");
        let e = err("[exec]\nallow = []\nwrite = 1\n");
        assert!(e.starts_with("/w/probity.toml:3:1: unknown field `write`, expected `allow` or `deny`"), "{e}");
    }

    #[test]
    fn bad_values_name_the_line_and_what_is_allowed() {
        let e = err("mode = \"strict\"\n");
        assert!(e.starts_with("/w/probity.toml:1:8: unknown variant `strict`, expected `audit` or `enforce`"), "{e}");
        let e = err("[network]\nallow = [\n  \"ok.com\",\n  \"bad host\",\n]\n");
        assert!(e.starts_with("/w/probity.toml:4:3: `bad host` is not an endpoint"), "{e}");
        assert!(e.contains("allowed: `host:port`"), "{e}");
        let e = err("[files]\nwrite_allow = [\"$NOPE\"]\n");
        assert!(e.contains("/w/probity.toml:2:16: `$NOPE` is not a known place"), "{e}");
        let e = err("[[override]]\nnetwork.allow = []\n");
        assert!(e.starts_with("/w/probity.toml:1:1: an [[override]] names exactly one of `test`"), "{e}");
        let e = err("not toml");
        assert!(e.starts_with("/w/probity.toml:1:"), "{e}");
    }

    #[test]
    fn discovers_the_nearest_file_within_the_repository() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        assert!(Policy::discover(&sub).unwrap().is_none());
        std::fs::write(dir.path().join("a").join(FILE_NAME), "mode = \"audit\"\n").unwrap();
        let p = Policy::discover(&sub).unwrap().unwrap();
        assert_eq!(p.origin(), Some(dir.path().join("a").join(FILE_NAME).as_path()));
    }
}
