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

#[traced_test]
#[ignore = "fails on purpose; run by failures::a_failing_test_leaves_its_traces"]
fn demo_failing_assertion() {
    let run = Cmd::new("cat").arg("/etc/hostname").run();
    run.assert_success();
    run.trace.assert_opened("/nonexistent/probity-never-opened");
}

#[traced_test]
#[ignore = "fails on purpose; run by failures::a_failing_test_leaves_its_traces"]
fn demo_failing_result() -> Result<(), String> {
    let _ = Cmd::new("true").run();
    let _ = Cmd::new("sh").args(["-c", "exit 3"]).run();
    Err("the second run was wrong".into())
}

#[traced_test]
#[should_panic(expected = "on purpose")]
#[ignore = "run by failures::a_failing_test_leaves_its_traces"]
fn demo_expected_panic() {
    let _ = Cmd::new("true").run();
    panic!("on purpose");
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

/// The folder a failing test said its traces are in.
fn said_dir(text: &str) -> PathBuf {
    let line = text
        .lines()
        .find(|l| l.starts_with("probity: the traces of this failing test ("))
        .unwrap_or_else(|| panic!("no traces line in:\n{text}"));
    PathBuf::from(line.rsplit_once(") are in ").map(|(_, d)| d).unwrap_or_default())
}

/// Where a failing test's traces go: the target directory of this binary
/// (or, when this user cannot write there, a new temporary folder).
fn kept_dir(test: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().skip(1).find(|d| d.join("CACHEDIR.TAG").is_file()).unwrap().to_path_buf();
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).filter(|d| d.is_absolute()).unwrap_or(target);
    target.join("probity").join(format!("failures::{test}"))
}

/// A failing test writes the trace of each of its runs, as JSON lines
/// that load back and as Perfetto's JSON, and says where; a test whose
/// expected panic came writes nothing.
#[test]
fn a_failing_test_leaves_its_traces() {
    let (ok, text) = run_demo("demo_failing_assertion");
    assert!(!ok);
    let dir = said_dir(&text);
    let target = kept_dir("demo_failing_assertion");
    let writable = std::fs::create_dir_all(target.parent().unwrap()).is_ok()
        && std::fs::metadata(target.parent().unwrap()).is_ok_and(|m| !m.permissions().readonly())
        && tempfile::tempfile_in(target.parent().unwrap()).is_ok();
    if writable {
        assert_eq!(dir, target, "{text}");
    } else {
        // Another user's target directory: a folder of the test's own.
        assert!(dir.starts_with(std::env::temp_dir()), "{text}");
        assert_contains(&text, &[&format!("{} cannot be written", target.display())]);
    }
    let trace = probity::Trace::load(dir.join("run-1.jsonl")).unwrap();
    trace.assert_execs_exactly(["cat"]);
    trace.assert_opened("/etc/hostname");
    let perfetto: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("run-1.perfetto.json")).unwrap()).unwrap();
    assert!(perfetto["traceEvents"].as_array().is_some_and(|e| !e.is_empty()), "{perfetto}");
    assert!(!dir.join("run-2.jsonl").exists());
    if !writable {
        let _ = std::fs::remove_dir_all(&dir);
    }

    // A test that returns an error: both its runs, in order.
    let (ok, text) = run_demo("demo_failing_result");
    assert!(!ok);
    assert_contains(&text, &["the second run was wrong"]);
    let dir = said_dir(&text);
    let second = probity::Trace::load(dir.join("run-2.jsonl")).unwrap();
    assert_eq!(second.outcome.status, probity::ExitStatus::Code(3));
    if !writable {
        let _ = std::fs::remove_dir_all(&dir);
    }

    // An expected panic is a pass: nothing is written.
    let dir = kept_dir("demo_expected_panic");
    let _ = std::fs::remove_dir_all(&dir);
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "failures::demo_expected_panic", "--test-threads=1"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("1 passed"), "{text}");
    let said = format!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(!said.contains("traces of this failing test"), "{said}");
    assert!(!dir.exists(), "{} was written for a passing test", dir.display());
}
