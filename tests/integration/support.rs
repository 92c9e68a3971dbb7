//! Helpers shared by the integration tests.

use std::collections::BTreeMap;
use std::process::Command;

use probity::{Event, EventKind, Trace, Tracer};

/// Fails the test, loudly, when this process cannot trace.
pub fn require_tracing() {
    let missing = probity::doctor::missing_capabilities();
    assert!(
        missing.is_empty(),
        "these tests trace for real and need root (or CAP_BPF + CAP_PERFMON); missing {missing:?}. \
         Run `sudo -E cargo test`."
    );
}

/// Traces a command to its end, checking that nothing was lost.
pub fn trace(program: &str, args: &[&str]) -> Trace {
    require_tracing();
    let mut cmd = Command::new(probity::resolve_program(program).unwrap());
    std::os::unix::process::CommandExt::arg0(&mut cmd, program);
    cmd.args(args);
    let trace = Tracer::new().run(cmd).unwrap_or_else(|e| panic!("failed to trace {program}: {e}"));
    assert_eq!(trace.outcome.losses.lost_events(), 0, "events lost: {:?}", trace.outcome.losses);
    trace
}

/// A fixture's path as a string.
pub fn fixture(name: &str) -> String {
    probity_fixtures::path(name).to_string_lossy().into_owned()
}

/// The syscall names of each task, in order, keyed by thread id.
pub fn names_by_task(trace: &Trace) -> BTreeMap<u32, Vec<String>> {
    let mut out: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    let mut events: Vec<&Event> = trace.events.iter().collect();
    // Per task, syscalls happen one after the other: entry order is theirs.
    events.sort_by_key(|e| e.ts_ns);
    for e in events {
        if let EventKind::Syscall(s) = &e.kind {
            out.entry(e.tid).or_default().push(s.name.to_string());
        }
    }
    out
}

/// Every syscall of one thread, in order.
pub fn syscalls_of(trace: &Trace, tid: u32) -> Vec<&probity::Syscall> {
    let mut v: Vec<(&Event, &probity::Syscall)> = trace.syscalls().filter(|(e, _)| e.tid == tid).collect();
    v.sort_by_key(|(e, _)| e.ts_ns);
    v.into_iter().map(|(_, s)| s).collect()
}

/// The rendered lines of a trace, for failure messages.
pub fn dump(trace: &Trace) -> String {
    trace.events.iter().map(probity::text::event_line).collect::<Vec<_>>().join("\n")
}

/// A copy of the `probity` binary that an unprivileged user can run
/// wherever the build directory is (its parents may be closed to others).
pub fn probity_for_nobody() -> (tempfile::TempDir, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let bin = dir.path().join("probity");
    std::fs::copy(env!("CARGO_BIN_EXE_probity"), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    wait_until_runs(&bin);
    (dir, bin)
}

/// Waits until a program just copied can be executed. A child another
/// test thread forked while the copy was being written holds it open for
/// writing until that child execs, and exec fails with ETXTBSY meanwhile.
/// Once this process's descriptor is closed no new child can inherit it,
/// so one run that starts means none will fail. Its exit status does not
/// matter (`--version` is only something harmless to run).
pub fn wait_until_runs(bin: &std::path::Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match std::process::Command::new(bin).arg("--version").output() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => panic!("failed to run the copy at {}: {e}", bin.display()),
            Ok(_) => break,
        }
    }
}
