//! Without privileges: a test that needs eBPF fails with a message that
//! says what is missing and what to do; a preload-only test still runs;
//! probity's own harness lists eBPF tests as ignored, with the reason.
//! The test binaries run as `nobody` (uid 65534), from copies in a
//! directory that user can read.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const NOBODY: u32 = 65534;

/// A copy of `binary` that `nobody` can run.
fn copy_for_nobody(binary: &Path, dir: &Path) -> PathBuf {
    let to = dir.join(binary.file_name().unwrap());
    std::fs::copy(binary, &to).unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
    to
}

fn as_nobody(binary: &Path, args: &[&str]) -> (bool, String, String) {
    let run = || {
        Command::new(binary).args(args).current_dir("/").env("HOME", "/nonexistent").uid(NOBODY).gid(NOBODY).output()
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
fn harness_binary() -> PathBuf {
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

fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[test]
fn an_ebpf_test_fails_with_what_to_do() {
    crate::require_root();
    let dir = scratch();
    let me = copy_for_nobody(&std::env::current_exe().unwrap(), dir.path());
    let (ok, stdout, _) = as_nobody(&me, &["--exact", "commands::a_pipeline_exec_tree_is_pinned"]);
    assert!(!ok, "{stdout}");
    assert!(stdout.contains("1 failed"), "{stdout}");
    assert!(
        stdout.contains("probity: failed to trace `sh`: eBPF tracing needs CAP_BPF and CAP_PERFMON (or root), and this process is missing CAP_BPF, CAP_PERFMON; run as root (`sudo -E cargo test`"),
        "{stdout}"
    );
    assert!(stdout.contains("#[traced_test(preload_only)]"), "{stdout}");
}

#[test]
fn a_preload_only_test_passes_unprivileged() {
    crate::require_root();
    let dir = scratch();
    let me = copy_for_nobody(&std::env::current_exe().unwrap(), dir.path());
    let (ok, stdout, stderr) = as_nobody(&me, &["--exact", "commands::preload_only_traces_libc_calls_alone"]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("1 passed"), "{stdout}");
}

#[test]
fn the_custom_harness_lists_ebpf_tests_as_ignored_with_the_reason() {
    crate::require_root();
    let dir = scratch();
    let bin = copy_for_nobody(&harness_binary(), dir.path());
    // nextest's listing contract: all tests, then the ignored ones.
    let (ok, all, _) = as_nobody(&bin, &["--list", "--format", "terse"]);
    assert!(ok);
    assert_eq!(
        all,
        "a_function_is_traced_too: test\nignored_by_its_author: test\nkernel_tracing_sees_the_exec_tree: test\n\
         preload_only_runs_anywhere: test\nshould_panic_is_honoured: test\n"
    );
    let (ok, ignored, _) = as_nobody(&bin, &["--list", "--format", "terse", "--ignored"]);
    assert!(ok);
    assert_eq!(
        ignored,
        "a_function_is_traced_too: test\nignored_by_its_author: test\nkernel_tracing_sees_the_exec_tree: test\n\
         should_panic_is_honoured: test\n"
    );
    let (ok, stdout, stderr) = as_nobody(&bin, &[]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("test result: ok. 1 passed; 0 failed; 4 ignored"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("test preload_only_runs_anywhere ") && l.ends_with("... ok")),
        "{stdout}"
    );
    assert!(
        stderr.contains(
            "probity: 4 traced test(s) need eBPF and are ignored here: eBPF tracing needs CAP_BPF and CAP_PERFMON"
        ),
        "{stderr}"
    );
    // Asked to run them anyway, they say why they cannot.
    let (ok, stdout, _) = as_nobody(&bin, &["--ignored", "--exact", "kernel_tracing_sees_the_exec_tree"]);
    assert!(ok, "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("test kernel_tracing_sees_the_exec_tree ... ignored")
            && l.contains("eBPF tracing needs CAP_BPF")),
        "{stdout}"
    );
}

#[test]
fn the_custom_harness_runs_everything_as_root() {
    crate::require_root();
    let out = Command::new(harness_binary())
        .arg("--include-ignored")
        .arg("--skip")
        .arg("ignored_by_its_author")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("test result: ok. 4 passed; 0 failed; 0 ignored"), "{stdout}");
}
