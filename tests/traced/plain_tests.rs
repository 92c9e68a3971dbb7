//! A plain `#[test]` in a `harness = false` target is dropped by rustc;
//! probity's harness finds it in the sources rustc listed for the binary
//! (its dependency file) and fails it, saying what to write instead.
//! The custom-harness binary runs from a copy, with a dependency file
//! written beside it that lists a source holding such a test.

use std::process::Command;

use crate::unprivileged::{copy_for_nobody, harness_binary, scratch};

fn run(binary: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(binary).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn a_plain_test_in_a_harness_false_target_fails_with_what_to_write() {
    crate::require_root();
    let dir = scratch();
    let bin = copy_for_nobody(&harness_binary(), dir.path());
    // Without a dependency file there is nothing to read: the binary's
    // own tests, and no more.
    let (ok, list) = run(&bin, &["--list", "--format", "terse"]);
    assert!(ok);
    assert!(!list.contains("never runs"), "{list}");

    let source = dir.path().join("forgotten.rs");
    std::fs::write(
        &source,
        "/// `#[test]` in a comment is not a test.\n#[test]\nfn forgotten_plain_test() {\n    \
         assert_eq!(\"#[test]\", \"#[test]\");\n}\n",
    )
    .unwrap();
    let deps = format!("{0}.d: {1}\n\n{0}: {1}\n\n{1}:\n", bin.display(), source.display());
    std::fs::write(bin.with_extension("d"), deps).unwrap();
    let (ok, list) = run(&bin, &["--list", "--format", "terse"]);
    assert!(ok);
    assert!(list.contains("[plain #[test], never runs] forgotten_plain_test: test\n"), "{list}");
    assert_eq!(list.matches("never runs").count(), 1, "{list}");
    let (ok, stdout) = run(&bin, &["--exact", "forgotten_plain_test"]);
    assert!(!ok, "{stdout}");
    assert!(stdout.contains("test result: FAILED. 0 passed; 1 failed"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "probity: the plain #[test] `forgotten_plain_test` at {}:2 never runs: this target has \
             `harness = false`, and rustc drops #[test] items from it. Write \
             #[probity::traced_test(preload_only)] instead",
            source.display()
        )),
        "{stdout}"
    );
}
