//! Failures that must explain themselves: the `demo_*` tests fail on
//! purpose (and are ignored in normal runs); each test here runs one in a
//! child copy of this binary and checks its message.

use std::path::PathBuf;

use probity::{traced, traced_test, Cmd};

#[traced_test]
#[ignore = "fails on purpose; run by failures::a_panicking_child_shows_its_message"]
fn demo_panicking_child() {
    let _ = traced(PathBuf::from("/etc/hostname"), |p: PathBuf| -> () {
        println!("reading {}", p.display());
        let _ = std::fs::read(&p);
        panic!("the config was not saved");
    });
}

#[traced_test(timeout = "1s")]
#[ignore = "fails on purpose; run by failures::a_hanging_child_is_stopped_with_its_trace"]
fn demo_hanging_child() {
    let _ = traced((), |()| -> () {
        let _ = std::fs::metadata("/nonexistent/probity-before-the-hang");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    });
}

#[traced_test(timeout = "1s")]
#[ignore = "fails on purpose; run by failures::a_hanging_command_is_stopped_with_its_trace"]
fn demo_hanging_command() {
    let _ = Cmd::new("sh").args(["-c", "echo started; exec sleep 30"]).run();
}

#[traced_test]
#[ignore = "fails on purpose; run by failures::a_child_killed_by_a_signal_says_which"]
fn demo_killed_child() {
    let _ = traced((), |()| -> () {
        eprintln!("about to abort");
        std::process::abort();
    });
}

/// Runs one `demo_*` test and returns its exit success and output.
fn run_demo(name: &str) -> (bool, String) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", &format!("failures::{name}"), "--test-threads=1"])
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("1 failed"), "{name} did not run and fail:\n{text}");
    (out.status.success(), text)
}

fn assert_contains(text: &str, parts: &[&str]) {
    for p in parts {
        assert!(text.contains(p), "missing {p:?} in:\n{text}");
    }
}

#[test]
fn a_panicking_child_shows_its_message() {
    let (ok, text) = run_demo("demo_panicking_child");
    assert!(!ok);
    assert_contains(
        &text,
        &[
            "probity: the traced child panicked: the config was not saved",
            "--- child stdout ---\nreading /etc/hostname",
            "--- child stderr ---",
            "the config was not saved",
            "--- processes ---\n[",
            "--- trace: ",
        ],
    );
}

#[test]
fn a_hanging_child_is_stopped_with_its_trace() {
    let (ok, text) = run_demo("demo_hanging_child");
    assert!(!ok);
    assert_contains(
        &text,
        &[
            "probity: the traced child ran past the test's time limit of 1.0s and was stopped",
            "\"/nonexistent/probity-before-the-hang\"",
            "killed by SIGTERM",
        ],
    );
}

#[test]
fn a_hanging_command_is_stopped_with_its_trace() {
    let (ok, text) = run_demo("demo_hanging_command");
    assert!(!ok);
    assert_contains(
        &text,
        &[
            "probity: `sh` ran past the test's time limit of 1.0s and was stopped",
            "--- child stdout ---\nstarted",
            "/usr/bin/sleep [\"sleep\", \"30\"]: killed by SIGTERM",
        ],
    );
}

#[test]
fn a_child_killed_by_a_signal_says_which() {
    let (ok, text) = run_demo("demo_killed_child");
    assert!(!ok);
    assert_contains(
        &text,
        &["probity: the traced child was killed by SIGABRT before its function returned", "about to abort"],
    );
}
