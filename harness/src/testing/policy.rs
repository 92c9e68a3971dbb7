//! A `#[traced_test]`'s runs judged by the workspace's policy
//! (`probity.toml`, found from the crate's folder, or the file
//! `PROBITY_POLICY` names) with that test's rules: a violation fails the
//! test in enforce mode, and is printed in audit mode.

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::policy::{Policy, Unit, Where};
use crate::trace::Trace;

/// The policy of this process's tests, read once.
fn policy() -> Option<&'static (Policy, Where)> {
    static POLICY: OnceLock<Option<(Policy, Where)>> = OnceLock::new();
    POLICY
        .get_or_init(|| {
            let found = match std::env::var_os("PROBITY_POLICY").filter(|p| !p.is_empty()) {
                Some(file) => Policy::load(PathBuf::from(file).as_path()).map(Some),
                None => {
                    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
                        .map(PathBuf::from)
                        .or_else(|| std::env::current_dir().ok())?;
                    Policy::discover(&dir)
                }
            };
            // A policy that cannot be read must not let every test pass
            // ungated: each traced run fails, saying why.
            let policy = found.unwrap_or_else(|e| panic!("probity: {e}"))?;
            let workspace = policy.origin().and_then(|o| o.parent()).map(PathBuf::from).unwrap_or_default();
            Some((policy, Where::new(workspace)))
        })
        .as_ref()
}

/// The test binary's name, without cargo's hash.
fn binary() -> String {
    let exe = std::env::current_exe().ok();
    let name = exe.as_deref().and_then(std::path::Path::file_name).map(|n| n.to_string_lossy().into_owned());
    let name = name.unwrap_or_default();
    match name.rsplit_once('-') {
        Some((n, h)) if h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()) => n.to_owned(),
        _ => name,
    }
}

/// Judges the trace of a run of test `test` (its libtest name), failing
/// it in enforce mode with the violations and `report`.
#[track_caller]
pub(crate) fn enforce(trace: &Trace, test: Option<&str>, report: impl FnOnce() -> String) {
    let (Some(test), Some((policy, at))) = (test, policy()) else { return };
    if let Some(msg) = judge(policy, at, trace, Unit::Test { binary: binary(), name: test.to_owned() }) {
        if policy.mode() == crate::policy::Mode::Enforce {
            panic!("{msg}\n{}", report());
        }
        eprintln!("{msg}\n(audit mode: the test goes on)");
    }
}

/// What breaks `policy` in `trace`, as the failure's message.
fn judge(policy: &Policy, at: &Where, trace: &Trace, unit: Unit) -> Option<String> {
    let v = policy.check_as(trace, at, &unit);
    if !v.violated() {
        return None;
    }
    let file = policy.origin().map_or_else(|| "the policy".to_owned(), |p| p.display().to_string());
    let mut msg = format!("probity: {unit} broke the policy {file}:");
    for why in &v.undecided {
        msg.push_str(&format!("\n  - probity/undecided: {why}"));
    }
    for (_, f) in v.findings() {
        msg.push_str(&format!("\n  - {}: {}", f.rule.id(), f.message));
    }
    Some(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::test_support::{exec, trace};

    #[test]
    fn names_the_test_and_each_violation() {
        let policy = Policy::parse(
            "[exec]\ndeny = [\"curl\"]\n[[override]]\ntest = \"net::*\"\nexec.deny = [\"git\"]\n",
            "/w/probity.toml".as_ref(),
        )
        .unwrap();
        let at = Where { workspace: "/w".into(), target: "/w/target".into(), tmp: "/tmp".into(), home: None };
        let t = trace(vec![exec(1, 10, "/usr/bin/git"), exec(2, 10, "/usr/bin/curl")], None);
        let unit = |name: &str| Unit::Test { binary: "it".into(), name: name.into() };
        let msg = judge(&policy, &at, &t, unit("net::clones")).unwrap();
        assert_eq!(
            msg,
            "probity: test net::clones (it) broke the policy /w/probity.toml:\n  \
             - probity/unexpected-exec: process 10 exec'd /usr/bin/git, which exec.deny forbids (`git`)\n  \
             - probity/unexpected-exec: process 10 exec'd /usr/bin/curl, which exec.deny forbids (`curl`)"
        );
        let msg = judge(&policy, &at, &t, unit("other")).unwrap();
        assert!(!msg.contains("/usr/bin/git"), "{msg}");
    }
}
