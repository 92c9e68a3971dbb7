//! Queries over real traces (fixtures, coreutils, sh), and traces saved as
//! JSON Lines and loaded back.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};

use probity::{Class, Event, EventKind, Trace, Tracer, TracerKind};

use crate::support::{fixture, require_tracing};

/// Runs `cmd` traced with a clean environment, checking nothing was lost.
fn traced(mut cmd: Command) -> Trace {
    require_tracing();
    cmd.env_clear().env("PATH", "/usr/bin:/bin").stdin(Stdio::null()).stdout(Stdio::null());
    let t = Tracer::new().run(cmd).expect("traced");
    assert_eq!(t.outcome.losses.lost_events(), 0, "{:?}", t.outcome.losses);
    t
}

fn sh(script: &str, dir: &Path) -> Trace {
    let mut c = Command::new("/bin/sh");
    c.args(["-c", script]).current_dir(dir);
    traced(c)
}

fn known_io(dir: &Path) -> Trace {
    let mut c = Command::new(fixture(probity_fixtures::KNOWN_IO));
    c.arg(dir.join("out.txt")).arg("5");
    traced(c)
}

fn names<'t>(q: impl Iterator<Item = (&'t Event, &'t probity::Syscall)>) -> Vec<String> {
    q.map(|(_, s)| s.name.to_string()).collect()
}

#[test]
fn by_kind_and_process() {
    let dir = tempfile::tempdir().unwrap();
    let t = known_io(dir.path());
    let root = t.outcome.root_pid;
    let execs: Vec<&std::ffi::OsStr> = t
        .events()
        .kind("exec")
        .map(|e| match &e.kind {
            EventKind::Exec(x) => x.filename.as_os_str(),
            _ => unreachable!("kind(\"exec\") gave {e:?}"),
        })
        .collect();
    assert_eq!(execs, [fixture(probity_fixtures::KNOWN_IO).as_str(), "/bin/true"]);
    assert_eq!(t.events().kind("fork").count(), 3, "two threads and a process");
    assert!(t.events().kind("libc").count() > 0, "the preload tracer ran too");

    let procs = t.processes();
    let child = procs.values().find(|p| p.program() == Some(std::path::Path::new("/bin/true"))).expect("the child").pid;
    assert_eq!(procs[&child].parent, Some(root));
    assert_eq!(procs[&root].threads.len(), 3);
    assert_eq!(procs[&root].tracers, BTreeSet::from([TracerKind::Ebpf, TracerKind::Preload]));
    assert_eq!(t.process(child).unwrap().exit, Some(probity::ExitStatus::Code(0)));

    assert!(t.events().pid(child).count() > 0);
    assert!(t.events().pid(child).all(|e| e.pid == child));
    assert_eq!(t.events().subtree(root).count(), t.events.len());
    assert_eq!(t.events().subtree(child).count(), t.events().pid(child).count());
    let thread = procs[&root].threads[1];
    assert_eq!(names(t.syscalls().tid(thread).named("getppid")), ["getppid"]);
    assert!(t.events().tid(thread).all(|e| e.tid == thread && e.pid == root));

    // A syscall is the program's that made it: the child's execve is made
    // while it still runs the fixture; what follows is /bin/true's.
    assert_eq!(t.syscalls().program("true").named("execve").count(), 0);
    assert_eq!(t.syscalls().program("known_io").named("execve").count(), 1);
    assert_eq!(names(t.syscalls().program("/bin/true").named("exit_group")), ["exit_group"]);
    assert_eq!(t.syscalls().program("true").count(), t.syscalls().program("/bin/true").count());
    // An exec event is about the program it starts.
    assert_eq!(t.events().kind("exec").program("true").count(), 1);
}

#[test]
fn by_name_class_and_result() {
    let dir = tempfile::tempdir().unwrap();
    let t = sh("cat /nonexistent-probity-query 2>/dev/null; exec /bin/true", dir.path());
    let missing: Vec<_> = t.syscalls().named("openat").errno("ENOENT").path("/nonexistent-probity-query").collect();
    assert_eq!(missing.len(), 1, "{:?}", missing);
    assert_eq!(missing[0].1.ret, Some(-2));
    assert!(t.syscalls().failed().all(|(_, s)| s.errno.is_some()));
    assert!(t.syscalls().ok().all(|(_, s)| s.errno.is_none() && s.ret.is_some()));
    assert_eq!(
        t.syscalls().ok().count()
            + t.syscalls().failed().count()
            + t.syscalls().matching(|(_, s)| s.ret.is_none()).count(),
        t.syscalls().count()
    );
    assert!(t.syscalls().named_any(["open", "openat"]).count() >= t.syscalls().named("openat").count());

    let process: BTreeSet<String> = names(t.syscalls().class(Class::Process)).into_iter().collect();
    for expected in ["execve", "wait4", "exit_group"] {
        assert!(process.contains(expected), "{expected} not in {process:?}");
    }
    assert!(process.iter().all(|n| Class::Process.contains(n)));
    assert_eq!(t.syscalls().class(Class::Network).count(), 0);
    assert!(t.syscalls().class(Class::File).all(|(_, s)| Class::File.contains(&s.name)));
    assert!(t.syscalls().class(Class::Memory).count() > 0, "the loader maps libraries");
    // A filter that is about syscalls leaves other events out of an event query.
    assert!(t.events().named("execve").all(|e| e.as_syscall().is_some()));
}

#[test]
fn by_path_resolves_relative_paths_and_directory_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let t = sh("mkdir sub && echo hi > sub/a.txt && cat sub/a.txt >/dev/null && rm -r sub", dir.path());
    assert_eq!(t.outcome.cwd.as_deref(), Some(d));
    let file = dir.path().join("sub/a.txt");
    let on_file = names(t.syscalls().path(&file));
    // Created through a relative path, written through a descriptor dup'd
    // to stdout, read by cat, removed by rm relative to a directory fd.
    for expected in ["openat", "write", "read", "unlinkat"] {
        assert!(on_file.iter().any(|n| n == expected), "no {expected} on {}: {on_file:?}", file.display());
    }
    let unlink = t.syscalls().named("unlinkat").path(&file).next().unwrap().1;
    assert!(
        matches!(unlink.args[0], probity::Arg::Fd(fd) if fd >= 0),
        "rm removes relative to a directory: {unlink:?}"
    );
    // A relative pattern is taken from the starting directory.
    assert_eq!(names(t.syscalls().path("sub/a.txt")), on_file);
    assert_eq!(names(t.syscalls().path(format!("{d}/sub/../sub/./a.txt"))), on_file);

    let under = t.syscalls().path_prefix(dir.path().join("sub")).count();
    assert!(under > on_file.len(), "sub itself is under sub");
    assert_eq!(t.syscalls().path_prefix(format!("{d}/su")).count(), 0, "whole components only");
    assert_eq!(t.syscalls().path_glob(&format!("{d}/**/*.txt")).count(), on_file.len());
    assert_eq!(t.syscalls().path_glob(&format!("{d}/*.txt")).count(), 0, "* stays within a component");
    assert_eq!(t.syscalls().path_glob(&format!("{d}/s?b/[a-c].txt")).count(), on_file.len());
    // An exec event is on the program it runs.
    assert_eq!(t.events().kind("exec").path("/usr/bin/rm").count(), 1);
}

#[test]
fn by_time_window_and_nesting() {
    let dir = tempfile::tempdir().unwrap();
    let t = known_io(dir.path());
    let start = t.start_ns();
    let last = t.events.iter().map(Event::end_ns).max().unwrap();
    assert_eq!(t.events().between(start, last).count(), t.events.len());
    let second_exec = t.events().kind("exec").nth(1).unwrap();
    let after: Vec<&Event> = t.events().after(second_exec).collect();
    assert!(!after.is_empty());
    assert!(after.iter().all(|e| e.ts_ns > second_exec.end_ns()));
    assert!(t.events().before(second_exec).all(|e| e.end_ns() < second_exec.ts_ns));
    assert_eq!(
        t.events().after(second_exec).count()
            + t.events().before(second_exec).count()
            + t.events().matching(|e| e.ts_ns <= second_exec.end_ns() && e.end_ns() >= second_exec.ts_ns).count(),
        t.events.len()
    );

    // The libc open of the output file, and the openat it made.
    let out = dir.path().join("out.txt");
    let open = t
        .events()
        .kind("libc")
        .path(&out)
        .find(|e| e.as_libc().is_some_and(|c| c.function.starts_with("open")))
        .expect("libc open");
    let nested: Vec<(&Event, &probity::Syscall)> = t.syscalls().inside(open).collect();
    assert_eq!(names(nested.iter().copied()), ["openat"]);
    let at = t.events.iter().position(|e| std::ptr::eq(e, open)).unwrap();
    assert_eq!(nested[0].0.parent(), Some(at), "the same nesting as the parent link");
    // A syscall has nothing inside it.
    assert_eq!(t.events().inside(nested[0].0).count(), 0);
}

#[test]
fn queries_borrow_the_trace() {
    let dir = tempfile::tempdir().unwrap();
    let t = known_io(dir.path());
    let q = t.syscalls().named("clone3");
    let desc = q.description();
    assert_eq!(desc, "syscalls named clone3");
    for (e, s) in q {
        assert!(t.events.iter().any(|x| std::ptr::eq(x, e)), "an event of the trace itself");
        assert!(std::ptr::eq(e.as_syscall().unwrap(), s));
    }
    let q = t.syscalls().named("openat").failed().path_prefix("/etc").describe("failed opens in /etc");
    assert_eq!(q.description(), "failed opens in /etc");
    let q2 = q.clone();
    assert_eq!(q.count(), q2.count());
}

/// Facts a test might check, to compare two traces of the same run.
fn facts(t: &Trace, dir: &Path) -> Vec<String> {
    let out = dir.join("out.txt");
    vec![
        format!("events {}", t.events().count()),
        format!("syscalls {:?}", names(t.syscalls())),
        format!("execs {}", t.events().kind("exec").count()),
        format!("on out {:?}", names(t.syscalls().path(&out))),
        format!("failed {}", t.syscalls().failed().count()),
        format!("file class {}", t.syscalls().class(Class::File).count()),
        format!("processes {:?}", t.processes()),
        format!("root subtree {}", t.events().subtree(t.outcome.root_pid).count()),
        format!("libc {}", t.events().kind("libc").count()),
        format!("opened {:?}", t.check_opened(&out).map_err(|v| v.to_string())),
        format!("snapshot {}", t.snapshot().with_replacement(dir.to_str().unwrap(), "<dir>").text()),
    ]
}

#[test]
fn serde_and_jsonl_round_trips_keep_every_answer() {
    let dir = tempfile::tempdir().unwrap();
    let t = known_io(dir.path());
    let json = serde_json::to_string(&t).unwrap();
    let back: Trace = serde_json::from_str(&json).unwrap();
    assert_eq!(back, t);
    assert_eq!(facts(&back, dir.path()), facts(&t, dir.path()));

    let mut lines = Vec::new();
    t.write_jsonl(&mut lines).unwrap();
    let back = Trace::from_jsonl(&lines[..]).unwrap();
    assert_eq!(back, t);
    assert_eq!(facts(&back, dir.path()), facts(&t, dir.path()));
}

fn cli_trace(dir: &Path) -> std::path::PathBuf {
    require_tracing();
    let json = dir.join("trace.jsonl");
    let o = Command::new(env!("CARGO_BIN_EXE_probity"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .args(["run", "-o", "/dev/null", "--json", json.to_str().unwrap(), "--"])
        .arg(fixture(probity_fixtures::KNOWN_IO))
        .arg(dir.join("out.txt"))
        .arg("5")
        .stdin(Stdio::null())
        .output()
        .expect("probity runs");
    assert_eq!(o.status.code(), Some(5), "{}", String::from_utf8_lossy(&o.stderr));
    json
}

#[test]
fn a_trace_saved_by_the_cli_loads_and_answers_like_a_live_one() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = Trace::load(cli_trace(dir.path())).expect("the CLI's JSON loads");
    let live_dir = tempfile::tempdir().unwrap();
    let live = known_io(live_dir.path());
    // Different runs: compare what does not depend on timing.
    assert_eq!(loaded.outcome.status, live.outcome.status);
    assert_eq!(loaded.outcome.tracers, live.outcome.tracers);
    assert_eq!(loaded.outcome.cwd, live.outcome.cwd);
    let stable = |t: &Trace, d: &Path| t.snapshot().with_replacement(d.to_str().unwrap(), "<dir>").text();
    assert_eq!(stable(&loaded, dir.path()), stable(&live, live_dir.path()));
    let out = dir.path().join("out.txt");
    loaded.assert_created(&out);
    loaded.assert_wrote(&out);
    loaded.assert_execs_exactly(["known_io", "true"]);
    assert_eq!(names(loaded.syscalls().path(&out)), names(live.syscalls().path(live_dir.path().join("out.txt"))));
    // And it round-trips through the library's own writer unchanged.
    let mut again = Vec::new();
    loaded.write_jsonl(&mut again).unwrap();
    assert_eq!(Trace::from_jsonl(&again[..]).unwrap(), loaded);
}

#[test]
fn malformed_or_truncated_json_names_the_line_and_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(cli_trace(dir.path())).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let n = lines.len();
    assert!(n > 20, "a real trace: {n} lines");
    let load = |s: &str| Trace::from_jsonl(s.as_bytes());
    assert!(load(&text).is_ok());

    // Cut after every line but the last: truncated, naming the last line.
    for k in 0..n {
        let cut = lines[..k].iter().map(|l| format!("{l}\n")).collect::<String>();
        let err = load(&cut).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{k}: {err}");
        assert_eq!(err.line(), (k > 0).then_some(k), "{k}: {err}");
    }
    // Cut in the middle of lines, every 7 bytes through the first and last
    // lines and at the middle of every line: a cut line, named.
    let mut offsets: Vec<usize> = (1..lines[0].len()).step_by(7).collect();
    let last_start = text.len() - lines[n - 1].len() - 1;
    offsets.extend((last_start + 1..text.len() - 1).step_by(7));
    let mut at = 0;
    for l in &lines {
        offsets.push(at + l.len() / 2);
        at += l.len() + 1;
    }
    for off in offsets {
        let cut = &text[..off];
        let line = cut.matches('\n').count() + 1;
        let err = load(cut).unwrap_err();
        assert_eq!(err.line(), Some(line), "cut at {off}: {err}");
        assert!(err.to_string().contains(&format!("line {line} is cut short")), "cut at {off}: {err}");
    }
    // A line that is not JSON, or JSON that is not an event, anywhere.
    for k in [0, n / 3, n / 2, n - 2, n - 1] {
        for (bad, says) in [
            ("{not json", "not valid JSON"),
            ("{\"kind\":\"syscall\",\"pid\":1}", "not a probity event"),
            ("42", "not a probity event"),
            ("\"text\"", "not a probity event"),
        ] {
            let mut v = lines.clone();
            v[k] = bad;
            let err = load(&(v.join("\n") + "\n")).unwrap_err();
            assert_eq!(err.line(), Some(k + 1), "{bad} at line {}: {err}", k + 1);
            assert!(err.to_string().contains(says), "{bad}: {err}");
        }
    }
    // Lines after the summary.
    let err = load(&format!("{text}{}\n", lines[0])).unwrap_err();
    assert_eq!(err.line(), Some(n + 1), "{err}");
    // Bytes that are not UTF-8 inside an event.
    let mut bytes = text.clone().into_bytes();
    let mid = text.len() - lines[n - 1].len() - 10;
    bytes[mid] = 0xff;
    let err = Trace::from_jsonl(&bytes[..]).unwrap_err();
    assert_eq!(err.line(), Some(n - 1), "{err}");
    // A file that does not exist.
    let err = Trace::load(dir.path().join("missing.jsonl")).unwrap_err();
    assert!(err.to_string().contains("missing.jsonl"), "{err}");
}
