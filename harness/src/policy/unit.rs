//! The unit an event belongs to, from the programs of its process and its
//! ancestors: a test (nextest runs one process per test, and names it in
//! argv with `--exact`), a test binary (`cargo test` runs every test of a
//! binary in one process), a build step (a build script, or `rustc` for a
//! crate, which also hosts that crate's proc macros), or the command.
//!
//! argv is what the traced program chose: it names a unit, and so decides
//! which override's rules apply to it. An override widens what is
//! allowed, so a process that dresses as a test can get that test's
//! allowances; the base rules still hold for every unit.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// What an event belongs to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Unit {
    /// The traced command itself, and what no unit below claims.
    Command,
    /// One test, run alone in its process (nextest's way).
    Test {
        /// The test binary, without cargo's hash (`net-tests`).
        binary: String,
        /// The test's name (`tests::connects`).
        name: String,
    },
    /// A test binary running its tests in one process (`cargo test`).
    TestBinary {
        /// The binary, without cargo's hash.
        binary: String,
    },
    /// A build script.
    BuildScript {
        /// Its package, from the folder cargo runs it from.
        package: String,
    },
    /// `rustc` (or `clippy-driver`, `rustdoc`) compiling a crate, with the
    /// proc macros it loads.
    Rustc {
        /// The crate, from `--crate-name`.
        #[serde(rename = "crate")]
        krate: String,
    },
}

impl Unit {
    /// A stable key: `command`, `test:BINARY::NAME`, `bin:BINARY`,
    /// `build-script:PACKAGE`, `rustc:CRATE`.
    ///
    /// ```
    /// assert_eq!(probity::policy::Unit::Command.id(), "command");
    /// ```
    #[must_use]
    pub fn id(&self) -> String {
        match self {
            Unit::Command => "command".to_owned(),
            Unit::Test { binary, name } => format!("test:{binary}::{name}"),
            Unit::TestBinary { binary } => format!("bin:{binary}"),
            Unit::BuildScript { package } => format!("build-script:{package}"),
            Unit::Rustc { krate } => format!("rustc:{krate}"),
        }
    }

    /// The test's name, for a test.
    #[must_use]
    pub fn test_name(&self) -> Option<&str> {
        match self {
            Unit::Test { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The unit a process running `program` with `argv` starts, if any.
    pub(crate) fn of_image(program: &OsStr, argv: &[OsString]) -> Option<Unit> {
        let path = Path::new(program);
        let file = path.file_name()?.to_string_lossy();
        let arg = |i: usize| argv.get(i).map(|a| a.to_string_lossy());
        if matches!(file.as_ref(), "rustc" | "clippy-driver" | "rustdoc") {
            let at = argv.iter().position(|a| a == "--crate-name")?;
            return Some(Unit::Rustc { krate: arg(at + 1)?.into_owned() });
        }
        if file.starts_with("build-script-") {
            let dir = path.parent()?.file_name()?.to_string_lossy();
            return Some(Unit::BuildScript { package: without_hash(&dir).to_owned() });
        }
        let in_deps = path.parent().and_then(Path::file_name).is_some_and(|d| d == "deps");
        if !in_deps || without_hash(&file).len() == file.len() {
            return None;
        }
        let binary = without_hash(&file).to_owned();
        if argv.iter().any(|a| a == "--exact") {
            // libtest's filter: the first argument that is not an option.
            if let Some(name) = argv.iter().skip(1).map(|a| a.to_string_lossy()).find(|a| !a.starts_with('-')) {
                return Some(Unit::Test { binary, name: name.into_owned() });
            }
        }
        Some(Unit::TestBinary { binary })
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unit::Command => f.write_str("the command"),
            Unit::Test { binary, name } => write!(f, "test {name} ({binary})"),
            Unit::TestBinary { binary } => write!(f, "test binary {binary}"),
            Unit::BuildScript { package } => write!(f, "build script of {package}"),
            Unit::Rustc { krate } => write!(f, "rustc for crate {krate}"),
        }
    }
}

/// A name without cargo's `-` and 16 hex digits at its end.
fn without_hash(s: &str) -> &str {
    match s.rsplit_once('-') {
        Some((name, h)) if h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()) => name,
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(program: &str, argv: &[&str]) -> Option<Unit> {
        let argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
        Unit::of_image(OsStr::new(program), &argv)
    }

    #[test]
    fn nextest_names_the_test() {
        let u =
            unit("/w/target/debug/deps/net-0123456789abcdef", &["net", "tests::connects", "--exact", "--nocapture"]);
        assert_eq!(u, Some(Unit::Test { binary: "net".into(), name: "tests::connects".into() }));
        assert_eq!(u.unwrap().id(), "test:net::tests::connects");
    }

    #[test]
    fn cargo_test_names_the_binary() {
        let u = unit("/w/target/debug/deps/net-0123456789abcdef", &["/w/target/debug/deps/net-0123456789abcdef"]);
        assert_eq!(u, Some(Unit::TestBinary { binary: "net".into() }));
    }

    #[test]
    fn build_steps() {
        let b = unit("/w/target/debug/build/fx-build-0123456789abcdef/build-script-build", &["build-script-build"]);
        assert_eq!(b, Some(Unit::BuildScript { package: "fx-build".into() }));
        let r = unit("/usr/bin/rustc", &["rustc", "--crate-name", "fx_net", "--edition=2021"]);
        assert_eq!(r, Some(Unit::Rustc { krate: "fx_net".into() }));
        assert_eq!(unit("/usr/bin/rustc", &["rustc", "-vV"]), None);
    }

    #[test]
    fn other_programs_start_no_unit() {
        assert_eq!(unit("/usr/bin/cargo", &["cargo", "test"]), None);
        assert_eq!(unit("/usr/bin/deps", &["deps"]), None);
        assert_eq!(unit("/w/deps/plain", &["plain"]), None);
    }
}
