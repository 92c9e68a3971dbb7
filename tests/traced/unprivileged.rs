//! Without privileges: a test that needs eBPF never passes. Under
//! libtest it fails with a message that says what is missing and what to
//! do (a `#[should_panic]` test too); probity's own harness lists it as
//! ignored with the reason in its listed name, fails it when asked to run
//! it, and fails it outright under `CI=true` or `PROBITY_REQUIRE_EBPF=1`.
//! A preload-only test still runs. The test binaries run as `nobody` (uid
//! 65534), from copies in a directory that user can read.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use probity::{traced_test, Cmd};

const NOBODY: u32 = 65534;

/// A copy of `binary` that `nobody` can run.
pub(crate) fn copy_for_nobody(binary: &Path, dir: &Path) -> PathBuf {
    let to = dir.join(binary.file_name().unwrap());
    std::fs::copy(binary, &to).unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
    to
}

fn as_nobody(binary: &Path, args: &[&str]) -> (bool, String, String) {
    as_nobody_with(binary, args, &[])
}

/// Runs `binary` as `nobody` with `env` set and the variables that decide
/// whether eBPF is required (`CI`, `PROBITY_REQUIRE_EBPF`) unset
/// otherwise, whatever this run has.
fn as_nobody_with(binary: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let run = || {
        Command::new(binary)
            .args(args)
            .current_dir("/")
            .env("HOME", "/nonexistent")
            .env_remove("CI")
            .env_remove("PROBITY_REQUIRE_EBPF")
            .envs(env.iter().copied())
            .uid(NOBODY)
            .gid(NOBODY)
            .output()
    };
    // The copy was just written: a child another test thread forked in
    // the meantime may still hold it open for writing until that child
    // execs, and exec then fails with ETXTBSY. That passes in moments.
    let mut out = run();
    for _ in 0..100 {
        match &out {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(std::time::Duration::from_millis(10));
                out = run();
            }
            _ => break,
        }
    }
    let out = out.unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The newest `traced_harness` test binary beside this one.
pub(crate) fn harness_binary() -> PathBuf {
    let here = std::env::current_exe().unwrap();
    let dir = here.parent().unwrap();
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().unwrap().to_string_lossy().starts_with("traced_harness-")
                && p.extension().is_none()
                && p.metadata().is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
        })
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
        .expect("the traced_harness test binary is built with this one (cargo test builds every test target)")
}

pub(crate) fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// What probity says, whatever the harness, of a test that needs eBPF
/// where this process cannot use it.
const CANNOT: &str = "probity: this test needs eBPF, which this process cannot use: eBPF tracing needs CAP_BPF \
                      and CAP_PERFMON (or root), and this process is missing CAP_BPF, CAP_PERFMON; and no probity \
                      daemon answers at /run/probity/probity.sock. Either run as root (`sudo -E cargo test`)";

/// The kind probity's harness lists such a test with, before its name.
const KIND: &str = "[needs eBPF, missing CAP_BPF, CAP_PERFMON and no probity daemon]";

/// A libtest test that needs eBPF and expects a panic: as root the panic
/// is its own, and it passes; without privileges probity's refusal must
/// not count as the expected panic.
#[traced_test]
#[should_panic]
fn a_should_panic_test_expects_its_own_panic() {
    Cmd::new("false").run().assert_success();
}

#[test]
fn an_ebpf_test_fails_with_what_to_do() {
    crate::require_root();
    let dir = scratch();
    let me = copy_for_nobody(&std::env::current_exe().unwrap(), dir.path());
    for env in [&[][..], &[("CI", "true")], &[("PROBITY_REQUIRE_EBPF", "0")]] {
        let (ok, stdout, _) = as_nobody_with(&me, &["--exact", "commands::a_pipeline_exec_tree_is_pinned"], env);
        assert!(!ok, "{env:?}: {stdout}");
        assert!(stdout.contains("1 failed"), "{env:?}: {stdout}");
        assert!(stdout.contains(CANNOT), "{env:?}: {stdout}");
        assert!(stdout.contains("libtest cannot skip a test that has started"), "{env:?}: {stdout}");
        assert!(stdout.contains("#[traced_test(preload_only)]"), "{env:?}: {stdout}");
    }
}

#[test]
fn a_should_panic_test_that_cannot_trace_fails_under_libtest() {
    crate::require_root();
    let dir = scratch();
    let me = copy_for_nobody(&std::env::current_exe().unwrap(), dir.path());
    let name = "unprivileged::a_should_panic_test_expects_its_own_panic";
    let (ok, stdout, _) = as_nobody(&me, &["--exact", name]);
    assert!(!ok, "{stdout}");
    assert!(stdout.contains("test result: FAILED. 0 passed; 1 failed"), "{stdout}");
    assert!(stdout.contains(CANNOT), "{stdout}");
    // As root, the same test passes on its own panic.
    let out = Command::new(std::env::current_exe().unwrap()).args(["--exact", name]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("test result: ok. 1 passed"), "{stdout}");
}

#[test]
fn a_preload_only_test_passes_unprivileged() {
    crate::require_root();
    let dir = scratch();
    let me = copy_for_nobody(&std::env::current_exe().unwrap(), dir.path());
    let (ok, stdout, stderr) =
        as_nobody_with(&me, &["--exact", "commands::preload_only_traces_libc_calls_alone"], &[("CI", "true")]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("1 passed"), "{stdout}");
}

/// The lines of `out` that report one test's result, sorted.
fn results(out: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = out.lines().filter(|l| l.starts_with("test ") && l.contains(" ... ")).collect();
    lines.sort_unstable();
    lines
}

#[test]
fn the_custom_harness_lists_ebpf_tests_as_ignored_with_the_reason() {
    crate::require_root();
    let dir = scratch();
    let bin = copy_for_nobody(&harness_binary(), dir.path());
    // nextest's listing contract: all tests, then the ignored ones. The
    // reason is in the listed name, which is all nextest shows of a
    // skipped test.
    let (ok, all, _) = as_nobody(&bin, &["--list", "--format", "terse"]);
    assert!(ok);
    assert_eq!(
        all,
        format!(
            "{KIND} a_function_is_traced_too: test\nan_expected_panic_prints_nothing: test\n\
             {KIND} ignored_by_its_author: test\n{KIND} kernel_tracing_sees_the_exec_tree: test\n\
             preload_only_runs_anywhere: test\n{KIND} should_panic_is_honoured: test\n"
        )
    );
    let (ok, ignored, _) = as_nobody(&bin, &["--list", "--format", "terse", "--ignored"]);
    assert!(ok);
    assert_eq!(
        ignored,
        format!(
            "{KIND} a_function_is_traced_too: test\n{KIND} ignored_by_its_author: test\n\
             {KIND} kernel_tracing_sees_the_exec_tree: test\n{KIND} should_panic_is_honoured: test\n"
        )
    );
    let (ok, stdout, stderr) = as_nobody(&bin, &[]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("test result: ok. 2 passed; 0 failed; 4 ignored"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("test ") && l.contains(" preload_only_runs_anywhere ") && l.ends_with("... ok")),
        "{stdout}"
    );
    assert!(
        stderr.contains(
            "probity: 4 traced test(s) need eBPF and are ignored here: eBPF tracing needs CAP_BPF and CAP_PERFMON"
        ),
        "{stderr}"
    );
}

#[test]
fn the_custom_harness_fails_a_test_that_cannot_trace_when_asked_to_run_it() {
    crate::require_root();
    let dir = scratch();
    let bin = copy_for_nobody(&harness_binary(), dir.path());
    // As nextest runs an ignored test: its listed name, exactly.
    let listed = format!("{KIND} kernel_tracing_sees_the_exec_tree");
    let (ok, stdout, _) = as_nobody(&bin, &["--exact", &listed, "--nocapture", "--ignored"]);
    assert!(!ok, "{stdout}");
    assert!(stdout.contains("test result: FAILED. 0 passed; 1 failed; 0 ignored"), "{stdout}");
    assert!(stdout.contains(CANNOT), "{stdout}");
    assert!(stdout.contains("it is ignored here and was asked to run"), "{stdout}");
    // As libtest's `--include-ignored` runs them all.
    let (ok, stdout, _) = as_nobody(&bin, &["--include-ignored"]);
    assert!(!ok, "{stdout}");
    assert!(stdout.contains("test result: FAILED. 2 passed; 4 failed; 0 ignored"), "{stdout}");
    let mut expected = [
        format!("test {KIND} a_function_is_traced_too          ... FAILED"),
        format!("test {KIND} ignored_by_its_author             ... FAILED"),
        format!("test {KIND} kernel_tracing_sees_the_exec_tree ... FAILED"),
        format!("test {KIND} should_panic_is_honoured          ... FAILED"),
        format!("test {:w$} an_expected_panic_prints_nothing  ... ok", "", w = KIND.len()),
        format!("test {:w$} preload_only_runs_anywhere        ... ok", "", w = KIND.len()),
    ];
    expected.sort_unstable();
    assert_eq!(results(&stdout), expected, "{stdout}");
    assert_eq!(stdout.matches(CANNOT).count(), 4, "{stdout}");
}

#[test]
fn in_ci_the_custom_harness_fails_a_test_that_cannot_trace() {
    crate::require_root();
    let dir = scratch();
    let bin = copy_for_nobody(&harness_binary(), dir.path());
    for env in
        [&[("CI", "true")][..], &[("PROBITY_REQUIRE_EBPF", "1")], &[("CI", "false"), ("PROBITY_REQUIRE_EBPF", "1")]]
    {
        // Nothing is listed as ignored but what its author ignored.
        let (ok, ignored, _) = as_nobody_with(&bin, &["--list", "--format", "terse", "--ignored"], env);
        assert!(ok, "{env:?}");
        assert_eq!(ignored, "ignored_by_its_author: test\n", "{env:?}");
        let (ok, stdout, _) = as_nobody_with(&bin, &[], env);
        assert!(!ok, "{env:?}: {stdout}");
        assert!(stdout.contains("test result: FAILED. 2 passed; 3 failed; 1 ignored"), "{env:?}: {stdout}");
        assert_eq!(stdout.matches(CANNOT).count(), 3, "{env:?}: {stdout}");
        assert!(stdout.contains("because PROBITY_REQUIRE_EBPF=1 or CI is set"), "{env:?}: {stdout}");
    }
    // PROBITY_REQUIRE_EBPF=0 overrides CI: ignored again.
    let (ok, stdout, stderr) = as_nobody_with(&bin, &[], &[("CI", "true"), ("PROBITY_REQUIRE_EBPF", "0")]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("test result: ok. 2 passed; 0 failed; 4 ignored"), "{stdout}");
}

#[test]
fn an_expected_panic_prints_nothing_in_a_passing_run() {
    crate::require_root();
    let run = |args: &[&str]| {
        let out = Command::new(harness_binary()).args(args).env_remove("RUST_BACKTRACE").output().unwrap();
        let (stdout, stderr) =
            (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
        (out.status.success(), stdout, stderr)
    };
    let (ok, stdout, stderr) = run(&["--exact", "an_expected_panic_prints_nothing"]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("test result: ok. 1 passed"), "{stdout}");
    assert!(!stdout.contains("the panic this test expects"), "{stdout}");
    assert!(!stderr.contains("the panic this test expects"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // `--nocapture` shows it as it comes, as libtest does.
    let (ok, _, stderr) = run(&["--exact", "an_expected_panic_prints_nothing", "--nocapture"]);
    assert!(ok);
    assert!(stderr.contains("the panic this test expects, which a passing run keeps to itself"), "{stderr}");
    // A failing test's panic is shown with its failure, and only there.
    let (ok, stdout, stderr) = run(&["--include-ignored", "--exact", "ignored_by_its_author"]);
    assert!(!ok, "{stdout}");
    assert!(
        stdout.contains(
            "---- ignored_by_its_author ----\nthread 'ignored_by_its_author' panicked at \
             harness/../tests/traced_harness/main.rs:"
        ),
        "{stdout}"
    );
    assert!(stdout.contains(":\nnever runs unless asked\nnote: run with `RUST_BACKTRACE=1`"), "{stdout}");
    assert!(!stderr.contains("never runs unless asked"), "{stderr}");
}

#[test]
fn the_custom_harness_runs_everything_as_root() {
    crate::require_root();
    // In CI as well: as root nothing is refused.
    let out = Command::new(harness_binary())
        .args(["--include-ignored", "--skip", "ignored_by_its_author"])
        .env("CI", "true")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("test result: ok. 5 passed; 0 failed; 0 ignored"), "{stdout}");
}
