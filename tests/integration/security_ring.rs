//! The preload ring is the traced program's memory: a real program
//! ([`probity_fixtures::RING_FORGER`]) scribbles on its header and records,
//! and forges well-formed records. probity must neither crash nor hang,
//! must drop and count what does not fit the traced tree, and every
//! assertion that something did not happen must fail, saying why.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use probity::{EventKind, Tracer, TracerKind};

use crate::support::{fixture, require_tracing};

/// Longer than any run here takes; past it, probity hangs.
const WATCHDOG: Duration = Duration::from_secs(60);

/// `probity ARGS`, killed (and the test failed) if it outlives the watchdog.
fn probity(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_probity"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > WATCHDOG {
            let _ = child.kill();
            panic!("probity {args:?} still ran after {WATCHDOG:?}: it hangs on a scribbled ring");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// The summary line of a `--json` trace.
fn summary(json: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(json).unwrap();
    let last = text.lines().rfind(|l| !l.trim().is_empty()).expect("an empty JSON trace");
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(v["kind"], "summary", "{last}");
    v
}

/// A local TCP port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn scribbling_on_the_rings_header_and_records_ends_in_counted_invalid_records_not_a_crash() {
    require_tracing();
    let forger = fixture(probity_fixtures::RING_FORGER);
    for tracers in ["ebpf,preload", "preload"] {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("trace.jsonl");
        let json_arg = json.to_str().unwrap();
        let out = probity(&["run", "--tracers", tracers, "--json", json_arg, "--", &forger, "scribble"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Not killed by a signal (a crash), and the documented status: the
        // trace is incomplete.
        assert_eq!(out.status.code(), Some(120), "--tracers {tracers}: {}\n{stderr}", out.status);
        assert!(
            stderr.contains("libc records were invalid (forged, corrupt, or from outside the traced tree)"),
            "--tracers {tracers}: {stderr}"
        );
        let s = summary(&json);
        let invalid = s["losses"]["preload_invalid"].as_u64().unwrap();
        assert!(invalid > 0, "--tracers {tracers}: {s}");
        assert!(s["lost"].as_u64().unwrap() >= invalid, "{s}");
        assert_eq!(s["status"], serde_json::json!({"code": 0}), "the program itself ended well: {s}");

        // The program's own status once the loss is allowed.
        let out = probity(&["run", "--tracers", tracers, "--allow-loss", "--", &forger, "scribble"]);
        assert_eq!(out.status.code(), Some(0), "--tracers {tracers}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn forged_records_are_dropped_counted_and_fail_absence_assertions() {
    require_tracing();
    let port = closed_port();
    let mut cmd = Command::new(fixture(probity_fixtures::RING_FORGER));
    cmd.args(["forge", &port.to_string()]);
    let trace = Tracer::new().run(cmd).unwrap();
    let dump = crate::support::dump(&trace);
    assert_eq!(trace.outcome.status, probity::ExitStatus::Code(0), "{dump}");
    // Both of pid 1's records, the record of unknown kind, and the second
    // attach record for one exec.
    assert_eq!(trace.outcome.losses.preload_invalid, 4, "{:?}\n{dump}", trace.outcome.losses);
    assert!(trace.events.iter().all(|e| e.pid != 1), "a forged pid-1 event is in the trace:\n{dump}");
    // The forged set-up window did not hide the program's connect.
    let root = trace.outcome.root_pid;
    let connect = trace.syscalls().find(|(e, s)| e.pid == root && s.name == "connect");
    assert!(connect.is_some(), "the kernel's connect was cut out of the trace:\n{dump}");

    // The program did connect: that is what the network assertion shows.
    assert!(trace.check_no_network().is_err());
    // Nothing ran /bin/forged, but a trace with invalid records cannot
    // show that something did not happen.
    let why = "libc records were invalid (forged, corrupt, or from outside the traced tree)";
    let v = trace.check_never_execs(["/bin/forged"]).expect_err("a trace with forged records showed no exec");
    assert!(v.to_string().contains(why), "{v}");
}

#[test]
fn with_the_preload_tracer_alone_records_of_processes_no_record_connects_to_the_root_are_dropped() {
    require_tracing();
    let port = closed_port();
    let mut cmd = Command::new(fixture(probity_fixtures::RING_FORGER));
    cmd.args(["forge", &port.to_string()]);
    let trace = Tracer::new().with_tracers(&[TracerKind::Preload]).run(cmd).unwrap();
    let dump = crate::support::dump(&trace);
    // Both of pid 1's records and the record of unknown kind (its own
    // attach record cannot be told from the library's without the kernel).
    assert_eq!(trace.outcome.losses.preload_invalid, 3, "{:?}\n{dump}", trace.outcome.losses);
    assert!(trace.events.iter().all(|e| e.pid != 1), "a forged pid-1 event is in the trace:\n{dump}");
    let connects =
        trace.events.iter().filter(|e| matches!(&e.kind, EventKind::Libc(c) if c.function == "connect")).count();
    assert_eq!(connects, 1, "{dump}");
    let v = trace.check_never_execs(["/bin/forged"]).expect_err("a trace with forged records showed no exec");
    assert!(v.to_string().contains("libc records were invalid"), "{v}");
}

#[test]
fn a_shell_pipeline_with_children_has_no_invalid_records_with_either_tracer_set() {
    require_tracing();
    for tracers in [&[TracerKind::Ebpf, TracerKind::Preload][..], &[TracerKind::Preload]] {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "ls / | wc -l; env | grep -c PATH; cat /etc/hostname >/dev/null"]).stdout(Stdio::null());
        let trace = Tracer::new().with_tracers(tracers).run(cmd).unwrap();
        assert_eq!(trace.outcome.losses.lost_events(), 0, "{tracers:?}: {:?}", trace.outcome.losses);
        let pids: std::collections::BTreeSet<u32> =
            trace.events.iter().filter(|e| e.as_libc().is_some()).map(|e| e.pid).collect();
        assert!(pids.len() >= 3, "{tracers:?}: libc calls of the children are kept: {pids:?}");
    }
}

#[test]
fn libc_calls_made_in_a_pid_namespace_carry_the_kernels_pids() {
    require_tracing();
    let mut cmd = Command::new("unshare");
    cmd.args(["-pf", "--mount-proc", "sh", "-c", "cat /etc/hostname; echo $$"]).stdout(Stdio::piped());
    let trace = Tracer::new().run(cmd).unwrap();
    let dump = crate::support::dump(&trace);
    assert_eq!(trace.outcome.losses.lost_events(), 0, "{:?}\n{dump}", trace.outcome.losses);
    // sh is pid 1 in its namespace; the trace names it by its real pid.
    let kernel_pids: std::collections::BTreeSet<u32> =
        trace.events.iter().filter(|e| e.as_libc().is_none()).map(|e| e.pid).collect();
    let libc: Vec<&probity::Event> = trace.events.iter().filter(|e| e.as_libc().is_some()).collect();
    assert!(libc.iter().any(|e| e.pid != trace.outcome.root_pid), "no libc call inside the namespace:\n{dump}");
    for e in &libc {
        assert!(
            kernel_pids.contains(&e.pid),
            "a libc call under a pid the kernel never saw: {}\n{dump}",
            probity::text::event_line(e)
        );
    }
    let open = libc.iter().find(
        |e| matches!(&e.kind, EventKind::Libc(c) if c.function.starts_with("open") || c.function.starts_with("fopen")),
    );
    let open = open.unwrap_or_else(|| panic!("cat's open of /etc/hostname is missing:\n{dump}"));
    assert_ne!(open.pid, 1, "{dump}");
}
