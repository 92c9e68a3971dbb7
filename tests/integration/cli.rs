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
    let line = err.lines().find(|l| l.contains("write(1, ")).unwrap_or_else(|| panic!("no write line in:\n{err}"));
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
    let o = Command::new(&bin).args(["run", "--", "true"]).current_dir("/").uid(65534).gid(65534).output().unwrap();
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
    if nix::unistd::getuid().is_root() {
        assert!(out.contains("ok   attach        `probity run -p PID` can attach to any process"), "{out}");
    }
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
    assert_eq!(
        s["lost"].as_u64().unwrap(),
        untracked
            + s["losses"]["ring_full"].as_u64().unwrap()
            + s["losses"]["inflight_full"].as_u64().unwrap()
            + s["losses"]["undecodable"].as_u64().unwrap()
    );
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

/// A marker file the command creates, to tell whether it ran.
struct Marker(tempfile::TempDir);

impl Marker {
    fn new() -> Marker {
        Marker(tempfile::tempdir().unwrap())
    }

    fn path(&self) -> String {
        self.0.path().join("ran").to_str().unwrap().to_owned()
    }

    fn ran(&self) -> bool {
        self.0.path().join("ran").exists()
    }
}

/// `probity run ARGS -- touch MARKER` must be a usage error (exit 2)
/// whose message has each of `says`, and the command must not run.
fn assert_usage_error(args: &[&str], says: &[&str]) {
    let marker = Marker::new();
    let o = run(&[&["run"], args, &["--", "touch", &marker.path()]].concat());
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    for s in says {
        assert!(err.contains(s), "{args:?}: no {s:?} in: {err}");
    }
    assert!(!marker.ran(), "{args:?}: the command ran before the usage error");
}

#[test]
fn an_unwritable_stderr_is_exit_125_after_the_command_ran() {
    require_tracing();
    for tracers in ["all", "preload", "ebpf"] {
        let marker = Marker::new();
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let o =
            probity().args(["run", "--tracers", tracers, "--", "touch", &marker.path()]).stderr(full).output().unwrap();
        // Not 101 (a panic): probity says, by its status, that the trace
        // was not written.
        assert_eq!(o.status.code(), Some(125), "--tracers {tracers}");
        assert!(marker.ran(), "--tracers {tracers}: the command did not run");
    }
    // A trace file that fills up: the JSON keeps going, the status says.
    let marker = Marker::new();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("t.jsonl");
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let o = probity()
        .args(["run", "-o", "/dev/stdout", "--json", json.to_str().unwrap(), "--", "touch", &marker.path()])
        .stdout(full)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert!(err.contains("failed to write the trace to /dev/stdout") && err.contains("No space left"), "{err}");
    assert!(marker.ran());
    assert_eq!(json_lines(&json).last().unwrap()["kind"], "summary");
    // A closed stderr is /dev/null to a Rust program: the run succeeds.
    let marker = Marker::new();
    let mut cmd = probity();
    cmd.args(["run", "--", "touch", &marker.path()]);
    // SAFETY: close is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::close(2);
            Ok(())
        });
    }
    let o = cmd.output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(marker.ran());
}

#[test]
fn a_bad_allow_connect_is_a_usage_error_before_anything_runs() {
    for bad in ["", "999.1.1.1/99", "10.0.0.0/33", "bad host!", "1.2.3.4.5"] {
        assert_usage_error(
            &["--allow-connect", bad],
            &[&format!("`{bad}` is not an IP address"), "CIDR block", "host name"],
        );
    }
    // One bad entry of a list is enough.
    assert_usage_error(&["--allow-connect", "127.0.0.1,::1/129"], &["`::1/129`"]);
    // What the gate understands still runs.
    let marker = Marker::new();
    let o = run(&["run", "--allow-connect", "127.0.0.0/8,::1,localhost", "--", "touch", &marker.path()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(marker.ran());
}

#[test]
fn out_of_range_knobs_are_usage_errors_naming_the_range() {
    for mib in ["0", "3", "4096", "lots"] {
        assert_usage_error(&["--ring-mib", mib], &["--ring-mib", "a power of two from 1 to 2048"]);
    }
    for n in ["0", "4194305"] {
        assert_usage_error(&["--max-tasks", n], &["--max-tasks", "1..=4194304"]);
    }
    assert_usage_error(&["-s", "4096"], &["--string-limit", "0..=4095"]);
    // The ends of each range run.
    let marker = Marker::new();
    let o = run(&[
        "run",
        "--ring-mib",
        "1",
        "--max-tasks",
        "1",
        "-s",
        "4095",
        "--",
        "sh",
        "-c",
        &format!("touch {}", marker.path()),
    ]);
    // One task: sh's child is not traced, and that is loss (120).
    assert_eq!(o.status.code(), Some(120), "{}", stderr(&o));
    assert!(stderr(&o).contains("untraced tasks: 1"), "{}", stderr(&o));
    assert!(marker.ran());
}

#[test]
fn o_and_json_naming_one_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let x = dir.path().join("x");
    let xs = x.to_str().unwrap();
    let says = ["name the same file", "give two different files"];
    // A file still to be created, by one path and by another.
    assert_usage_error(&["-o", xs, "--json", xs], &says);
    let dotted = dir.path().join(".").join("x");
    assert_usage_error(&["-o", xs, "--json", dotted.to_str().unwrap()], &says);
    assert!(!x.exists(), "the refused file was created");
    // Relative to the working directory.
    let marker = Marker::new();
    let o = probity()
        .args(["run", "-o", "x", "--json", "./x", "--", "touch", &marker.path()])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!marker.ran());
    // An existing file and its hard link: refused, and left as it was.
    std::fs::write(&x, "keep me\n").unwrap();
    let link = dir.path().join("link");
    std::fs::hard_link(&x, &link).unwrap();
    assert_usage_error(&["-o", link.to_str().unwrap(), "--json", xs], &says);
    assert_eq!(std::fs::read_to_string(&x).unwrap(), "keep me\n");
    // /dev/null takes both.
    let o = run(&["run", "-o", "/dev/null", "--json", "/dev/null", "--", "true"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn an_unknown_option_is_a_usage_error_naming_it() {
    assert_usage_error(&["--polcy", "x"], &["unexpected argument '--polcy'", "Usage: probity run"]);
    let o = run(&["run", "--polcy", "x", "--", "ls"]);
    assert!(!stderr(&o).contains("command not found"), "{}", stderr(&o));
    // After the command's name, options are the command's.
    let o = run(&["run", "-o", "/dev/null", "sh", "-c", "echo $0", "--polcy"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(o.stdout, b"--polcy\n");
    // After `--`, a command may start with `-`.
    let o = run(&["run", "--", "-probity-no-such-command"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    assert!(stderr(&o).contains("command not found: -probity-no-such-command"), "{}", stderr(&o));
}

#[test]
fn exec_failures_are_126_or_127_with_the_reason() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    std::os::unix::fs::symlink(p("loop2"), p("loop1")).unwrap();
    std::os::unix::fs::symlink(p("loop1"), p("loop2")).unwrap();
    std::fs::write(p("plain"), "not executable\n").unwrap();
    std::fs::write(p("script"), "#!/nonexistent/probity-interp -x\necho hi\n").unwrap();
    std::fs::set_permissions(p("script"), std::fs::Permissions::from_mode(0o755)).unwrap();
    // (A file in no known format is not among them: execvp hands it to
    // /bin/sh, as shells do.)
    let cases: [(String, i32, &[&str]); 5] = [
        (p("loop1"), 126, &["cannot execute", "Too many levels of symbolic links"]),
        (format!("{}/x", p("plain")), 126, &["cannot execute", "Not a directory"]),
        (p("plain"), 126, &["cannot execute", "Permission denied"]),
        (dir.path().to_str().unwrap().to_owned(), 126, &["cannot execute", "Permission denied"]),
        (p("script"), 127, &["command not found: /nonexistent/probity-interp, the interpreter of", "/script", "#!"]),
    ];
    for (program, code, says) in cases {
        let o = run(&["run", "--", &program]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(code), "{program}: {err}");
        for s in says {
            assert!(err.contains(s), "{program}: no {s:?} in: {err}");
        }
        assert!(err.contains("hint: "), "{program}: no advice in: {err}");
    }
}

/// Runs `probity run -- sh -c 'sleep 30 & echo up; exit 0'` (its root
/// exits 0 at once, its tree lives on), sends probity `sig` once the tree
/// is up, and returns its output and JSON summary.
fn interrupted_after_root_exited(sig: nix::sys::signal::Signal) -> (std::process::ExitStatus, String, Value) {
    require_tracing();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("t.jsonl");
    let mut child = probity()
        .args([
            "run",
            "-o",
            "/dev/null",
            "--json",
            json.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "sleep 30 & echo up; exit 0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line, "up\n");
    // Let the root's exit reach probity first.
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
    let out = child.wait_with_output().unwrap();
    let summary = json_lines(&json).pop().unwrap();
    (out.status, String::from_utf8_lossy(&out.stderr).into_owned(), summary)
}

#[test]
fn an_interrupted_run_whose_root_exited_0_is_not_a_success() {
    use nix::sys::signal::Signal;
    for (sig, code, name) in
        [(Signal::SIGINT, 130, "SIGINT"), (Signal::SIGTERM, 143, "SIGTERM"), (Signal::SIGHUP, 129, "SIGHUP")]
    {
        let (status, err, summary) = interrupted_after_root_exited(sig);
        assert_eq!(status.code(), Some(code), "{name}: {err}");
        assert!(err.contains(&format!("interrupted by {name}")) && err.contains("exited with 0"), "{err}");
        assert_eq!(summary["interrupted"], true, "{summary}");
        assert_eq!(summary["status"], serde_json::json!({"code": 0}), "{summary}");
    }
}

#[test]
fn a_smaller_preload_ring_fits_a_small_dev_shm() {
    require_tracing();
    // A 4 MiB /dev/shm (containers often have 64 MiB, shared by every
    // session): the default 16 MiB ring cannot be reserved, a 2 MiB one can.
    let bin = env!("CARGO_BIN_EXE_probity");
    let script = format!(
        "mount -t tmpfs -o size=4m tmpfs /dev/shm && \
         {bin} run -o /dev/null -- true; echo default=$?; \
         {bin} run -o /dev/null --preload-ring-mib 2 -- true; echo small=$?"
    );
    let o = Command::new("unshare").args(["-m", "sh", "-c", &script]).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("default=125\n") && out.contains("small=0\n"), "{out}\n{}", stderr(&o));
    assert!(stderr(&o).contains("--preload-ring-mib"), "the error names the option: {}", stderr(&o));
}
