//! The `probity` CLI, end to end: output, JSON, summary, exit statuses and
//! bad input.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use probity_fixtures as fx;
use serde_json::Value;

use crate::support::{fixture, require_tracing};

fn probity() -> Command {
    Command::new(env!("CARGO_BIN_EXE_probity"))
}

fn run(args: &[&str]) -> Output {
    require_tracing();
    probity().args(args).output().expect("probity runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

#[test]
fn prints_strace_like_lines_and_keeps_stdout_and_status() {
    let o = run(&["run", "--", &fixture(fx::WRITE_STDOUT)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The program's own stdout is untouched; the trace goes to stderr.
    assert_eq!(o.stdout, b"hello from fixture\n");
    let err = stderr(&o);
    let line = err
        .lines()
        .find(|l| l.contains("write(1, "))
        .unwrap_or_else(|| panic!("no write line in:\n{err}"));
    let pid_end = line.find(']').unwrap();
    assert!(line[1..pid_end].parse::<u32>().is_ok(), "{line}");
    assert!(line.contains(r#"] write(1, "hello from fixture\n", 19) = 19 <0."#), "{line}");
    assert!(err.contains("execve(\""), "{err}");
    assert!(err.contains("no events lost"), "{err}");

    let o = run(&["run", "--", "sh", "-c", "exit 3"]);
    assert_eq!(o.status.code(), Some(3));
}

#[test]
fn output_file_and_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("trace.txt");
    let json = dir.path().join("trace.jsonl");
    let o = run(&["run", "-o", text.to_str().unwrap(), "--json", json.to_str().unwrap(), "--", "cat", "/etc/hostname"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "with -o, stderr is the program's: {}", stderr(&o));
    let text = std::fs::read_to_string(&text).unwrap();
    assert!(text.contains(r#"openat(AT_FDCWD, "/etc/hostname", O_RDONLY"#), "{text}");

    let lines = json_lines(&json);
    let (last, events) = lines.split_last().unwrap();
    for e in events {
        for key in ["kind", "pid", "tid", "ts_ns"] {
            assert!(e.get(key).is_some(), "{key} missing in {e}");
        }
    }
    let open = events
        .iter()
        .find(|e| e["kind"] == "syscall" && e["name"] == "openat" && e["args"][1]["path"]["path"] == "/etc/hostname")
        .unwrap_or_else(|| panic!("no openat of /etc/hostname in JSON"));
    assert!(open["ret"].as_i64().unwrap() >= 3);
    let exec = events.iter().find(|e| e["kind"] == "exec").unwrap();
    assert_eq!(exec["argv"], serde_json::json!(["cat", "/etc/hostname"]));
    assert_eq!(last["kind"], "summary");
    assert_eq!(last["lost"], 0);
    assert_eq!(last["status"], serde_json::json!({"code": 0}));
    assert_eq!(last["tracers"], serde_json::json!(["ebpf", "preload"]));
    // The saved events load back as the library's events.
    let back: Vec<probity::Event> = events.iter().map(|e| serde_json::from_value(e.clone()).unwrap()).collect();
    assert_eq!(back.len(), events.len());
}

#[test]
fn summary_counts_every_call() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("s.jsonl");
    let o = run(&["run", "--summary", "--json", json.to_str().unwrap(), "--", &fixture(fx::GETPPID_LOOP), "200000"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("% time"), "{err}");
    let lines = json_lines(&json);
    assert_eq!(lines.len(), 1, "--summary writes only the summary line");
    let s = &lines[0];
    assert_eq!(s["lost"], 0);
    let getppid = s["syscalls"].as_array().unwrap().iter().find(|c| c["name"] == "getppid").unwrap();
    assert_eq!(getppid["calls"], 200_000);
    assert_eq!(getppid["errors"], 0);
}

#[test]
fn a_small_kernel_ring_wraps_many_times_and_every_record_is_read_once() {
    // 200,000 syscall records of about 100 bytes through a 1 MiB ring: it
    // wraps about twenty times, and some records run over its end.
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("loop.jsonl");
    let calls = 200_000u64;
    let o = run(&[
        "run",
        "--tracers",
        "ebpf",
        "--ring-mib",
        "1",
        "--allow-loss",
        "--json",
        json.to_str().unwrap(),
        "--",
        &fixture(fx::GETPPID_LOOP),
        &calls.to_string(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines = json_lines(&json);
    let summary = lines.last().unwrap();
    let ring_full = summary["losses"]["ring_full"].as_u64().unwrap();
    let mut stamps: Vec<u64> = lines
        .iter()
        .filter(|e| e["kind"] == "syscall" && e["name"] == "getppid")
        .map(|e| e["ts_ns"].as_u64().unwrap())
        .collect();
    let read = stamps.len() as u64;
    // One thread's calls: a record read twice would repeat a time.
    stamps.sort_unstable();
    stamps.dedup();
    assert_eq!(stamps.len() as u64, read, "a record was read twice");
    assert!(read <= calls, "{read} getppid records for {calls} calls");
    // A record is about 110 bytes, so the ring holds about 9,500: a
    // reader that stopped freeing space would deliver one ringful and
    // count the rest as lost.
    assert!(read >= 50_000, "only {read} of {calls} records read ({ring_full} lost): the ring did not wrap");
    // The ring may overflow on a busy machine, but never silently.
    assert!(read + ring_full >= calls, "{read} read and {ring_full} counted lost of {calls}: {summary}");
    if ring_full == 0 {
        assert_eq!(read, calls);
    }
}

#[test]
fn missing_command_is_127_with_a_message() {
    let o = run(&["run", "--", "/nonexistent/probity-cmd"]);
    assert_eq!(o.status.code(), Some(127));
    assert!(stderr(&o).contains("command not found: /nonexistent/probity-cmd"), "{}", stderr(&o));
    let o = run(&["run", "--", "probity-no-such-command-anywhere"]);
    assert_eq!(o.status.code(), Some(127));
}

#[test]
fn unprivileged_run_fails_at_once_naming_capabilities() {
    require_tracing();
    // setuid from root to nobody drops every capability.
    let (_dir, bin) = crate::support::probity_for_nobody();
    let o = Command::new(&bin)
        .args(["run", "--", "true"])
        .current_dir("/")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("CAP_BPF") && err.contains("CAP_PERFMON") && err.contains("probity doctor"), "{err}");
    let o = Command::new(&bin).arg("doctor").current_dir("/").uid(65534).gid(65534).output().unwrap();
    assert_ne!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("FAIL capabilities"));
}

#[test]
fn doctor_passes_here() {
    let o = run(&["doctor"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("ok   ebpf tracer"), "{out}");
}

#[test]
fn killed_child_gives_128_plus_signal() {
    let o = run(&["run", "--", &fixture(fx::SELF_KILL), "9"]);
    assert_eq!(o.status.code(), Some(137));
    assert!(stderr(&o).contains("killed by SIGKILL"), "{}", stderr(&o));
}

#[test]
fn fork_storm_filling_the_task_map_is_reported_as_loss() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("storm.jsonl");
    let o = run(&["run", "--max-tasks", "32", "--json", json.to_str().unwrap(), "--", &fixture(fx::FORK_STORM), "200"]);
    // The storm itself succeeds; probity says its trace is incomplete.
    assert_eq!(o.status.code(), Some(120), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("events lost") && err.contains("untraced tasks"), "{err}");
    let lines = json_lines(&json);
    let s = lines.last().unwrap();
    let untracked = s["losses"]["task_map_full"].as_u64().unwrap();
    assert!(untracked > 0 && untracked <= 200, "{s}");
    assert_eq!(s["lost"].as_u64().unwrap(), untracked + s["losses"]["ring_full"].as_u64().unwrap() + s["losses"]["inflight_full"].as_u64().unwrap() + s["losses"]["undecodable"].as_u64().unwrap());
    let marked = lines.iter().filter(|e| e["kind"] == "fork" && e["untracked"] == true).count() as u64;
    assert_eq!(marked, untracked);
    // --allow-loss keeps the command's status.
    let o = run(&["run", "--max-tasks", "32", "--allow-loss", "--", &fixture(fx::FORK_STORM), "200"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn interrupt_stops_the_tree_and_completes_the_trace() {
    require_tracing();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("spin.jsonl");
    let mut child = probity()
        .args(["run", "-o", "/dev/null", "--json", json.to_str().unwrap(), "--", &fixture(fx::SPIN)])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the fixture's tree is up.
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line, "spinning\n");
    let started = Instant::now();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(20));
    // An interrupted run exits 128 + the interrupt's signal (SIGINT: 2).
    assert_eq!(status.code(), Some(130));
    let lines = json_lines(&json);
    let s = lines.last().unwrap();
    assert_eq!(s["kind"], "summary");
    assert_eq!(s["interrupted"], true);
    // Both processes of the tree ended, and the trace says how.
    let exits = lines.iter().filter(|e| e["kind"] == "exit" && e["process_exited"] == true).count();
    assert_eq!(exits, 2, "{lines:?}");
}
