//! The exact events fixtures with known behaviour must produce.

use std::path::Path;

use probity::{Arg, EventKind, ExitStatus};
use probity_fixtures as fx;

use crate::support::{dump, fixture, syscalls_of, trace};

/// known_io: openat/write/close of a known file, two threads, a forked
/// child that execs /bin/true, and a chosen exit code.
fn check_known_io(name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.txt");
    let out_s = out.to_string_lossy().into_owned();
    let exe = fixture(name);
    let t = trace(&exe, &[&out_s, "7"]);
    let root = t.outcome.root_pid;
    let ctx = || dump(&t);
    assert_eq!(t.outcome.status, ExitStatus::Code(7), "{}", ctx());

    // The very first syscall of the root is its execve, with argv.
    let main = syscalls_of(&t, root);
    let first = main.first().expect("root made no syscalls");
    assert_eq!(first.name, "execve", "{}", ctx());
    assert_eq!(first.path(), Some(Path::new(&exe)));
    assert_eq!(first.ret, Some(0));
    assert!(t.events.iter().any(|e| e.pid == root
        && matches!(&e.kind, EventKind::Exec(x) if x.filename == *exe && x.argv == [&exe, &out_s, "7"])));

    // openat(AT_FDCWD, OUT, O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0644) = fd,
    // then write(fd, "probity fixture\n", 16) = 16, then close(fd) = 0.
    let open_at = main
        .iter()
        .position(|s| s.name == "openat" && s.path() == Some(Path::new(&out_s)))
        .unwrap_or_else(|| panic!("no openat of {out_s}:\n{}", ctx()));
    let open = main[open_at];
    assert_eq!(open.args[0], Arg::Fd(-100), "{}", ctx());
    let Arg::Flags { text, .. } = &open.args[2] else { panic!("flags not decoded: {:?}", open.args) };
    assert_eq!(text, "O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC");
    assert!(matches!(&open.args[3], Arg::Flags { value: 0o644, .. }), "{:?}", open.args[3]);
    let fd = open.ret.expect("openat returns");
    assert!(fd >= 3);
    let write = main[open_at + 1];
    assert_eq!(write.name, "write", "{}", ctx());
    assert_eq!(write.args[0], Arg::Fd(fd as i32));
    assert_eq!(write.args[1], Arg::Bytes { data: b"probity fixture\n".to_vec(), len: 16 });
    assert_eq!(write.ret, Some(16));
    let close = main[open_at + 2];
    assert_eq!((close.name.as_ref(), &close.args[0], close.ret), ("close", &Arg::Fd(fd as i32), Some(0)));
    assert_eq!(std::fs::read(&out).unwrap(), b"probity fixture\n");

    // Two threads: created by clone3, each calls getppid once and exits.
    let forks: Vec<u32> = t
        .events
        .iter()
        .filter(|e| e.tid == root)
        .filter_map(|e| match &e.kind {
            EventKind::Fork(f) => Some(f.child_tid),
            _ => None,
        })
        .collect();
    assert_eq!(forks.len(), 3, "two threads and one process:\n{}", ctx());
    let threads: Vec<u32> =
        forks.iter().copied().filter(|&c| t.events.iter().any(|e| e.tid == c && e.pid == root)).collect();
    assert_eq!(threads.len(), 2, "{}", ctx());
    for tid in &threads {
        let calls: Vec<&str> = syscalls_of(&t, *tid).iter().map(|s| s.name.as_ref()).collect();
        assert!(calls.contains(&"getppid"), "thread {tid}: {calls:?}");
        assert_eq!(calls.last(), Some(&"exit"), "thread {tid}: {calls:?}");
    }
    assert_eq!(main.iter().filter(|s| s.name == "clone3").count(), 2, "{}", ctx());

    // The forked child execs /bin/true and exits 0.
    let child = forks.iter().copied().find(|c| !threads.contains(c)).unwrap();
    let child_calls = syscalls_of(&t, child);
    let exec =
        child_calls.iter().find(|s| s.name == "execve").unwrap_or_else(|| panic!("child did not exec:\n{}", ctx()));
    assert_eq!(exec.path(), Some(Path::new("/bin/true")));
    assert_eq!(exec.ret, Some(0));
    let procs = t.processes();
    assert_eq!(procs[&child].parent, Some(root));
    assert_eq!(procs[&child].execs, vec![("/bin/true".into(), vec!["true".into()])]);
    assert_eq!(procs[&child].exit, Some(ExitStatus::Code(0)));
    // The parent reaps it with wait4, then exits with exit_group(7).
    assert!(main.iter().any(|s| s.name == "wait4" && s.ret == Some(i64::from(child))), "{}", ctx());
    let last = main.last().unwrap();
    assert_eq!((last.name.as_ref(), last.ret, &last.args[0]), ("exit_group", None, &Arg::Int(7)), "{}", ctx());
    assert_eq!(procs[&root].exit, Some(ExitStatus::Code(7)));
    assert_eq!(procs[&root].threads.len(), 3);
}

#[test]
fn known_io_exact_events() {
    check_known_io(fx::KNOWN_IO);
}

#[test]
fn statically_linked_program_is_traced_the_same() {
    check_known_io(fx::STATIC_KNOWN_IO);
}

#[test]
fn kill_by_signal_is_the_exit_status() {
    let t = trace(&fixture(fx::SELF_KILL), &["9"]);
    assert_eq!(t.outcome.status, ExitStatus::Signal(9));
    // A grandchild's status comes from the trace alone (nobody here waits for it).
    let t = trace("sh", &["-c", &format!("{} 15; exit 4", fixture(fx::SELF_KILL))]);
    assert_eq!(t.outcome.status, ExitStatus::Code(4));
    let procs = t.processes();
    let killed: Vec<_> = procs.values().filter(|p| p.exit == Some(ExitStatus::Signal(15))).collect();
    assert_eq!(killed.len(), 1, "{}", dump(&t));
    // It sent itself SIGTERM; the kernel turns a fatal signal into a group
    // SIGKILL, yet the signal event, like the status, names SIGTERM.
    assert!(t.syscalls().any(|(_, s)| s.name == "tgkill" && s.args[2].to_string() == "SIGTERM"), "{}", dump(&t));
    let signals: Vec<&str> = t
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Signal(s) if s.action == probity::event::SignalAction::Default => Some(&*s.name),
            _ => None,
        })
        .collect();
    assert_eq!(signals, ["SIGTERM"], "{}", dump(&t));
}

#[test]
fn handled_signal_is_recorded() {
    let t = trace(&fixture(fx::SIGNALS), &[]);
    assert_eq!(t.outcome.status, ExitStatus::Code(0));
    let sig = t
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Signal(s) => Some(s),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no signal:\n{}", dump(&t)));
    assert_eq!((sig.name.as_ref(), sig.action), ("SIGUSR1", probity::event::SignalAction::Handler));
    assert!(t.syscalls().any(|(_, s)| s.name == "rt_sigreturn"));
}

#[test]
fn exec_from_a_thread_keeps_the_process() {
    let t = trace(&fixture(fx::THREADS_EXEC), &[]);
    let root = t.outcome.root_pid;
    assert_eq!(t.outcome.status, ExitStatus::Code(0));
    let execs: Vec<_> = t
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Exec(x) => Some((e.pid, e.tid, x)),
            _ => None,
        })
        .collect();
    assert_eq!(execs.len(), 2, "{}", dump(&t));
    let (pid, tid, x) = execs[1];
    assert_eq!((pid, tid), (root, root), "after exec the thread takes the process id");
    assert_eq!(x.filename, "/bin/true");
    assert!(x.old_tid.is_some_and(|o| o != root));
    // The execve itself is recorded, under its new thread id.
    assert!(
        t.syscalls().any(|(e, s)| e.tid == root
            && s.name == "execve"
            && s.path() == Some(Path::new("/bin/true"))
            && s.ret == Some(0)),
        "{}",
        dump(&t)
    );
}

#[test]
fn failed_exec_is_recorded_with_its_error() {
    let t = trace("sh", &["-c", "exec /nonexistent/probity-test"]);
    assert_eq!(t.outcome.status, ExitStatus::Code(127));
    let failed = t
        .syscalls()
        .find(|(_, s)| s.name == "execve" && s.path() == Some(Path::new("/nonexistent/probity-test")))
        .unwrap_or_else(|| panic!("no failed execve:\n{}", dump(&t)))
        .1;
    assert_eq!(failed.ret, Some(-2));
    assert_eq!(failed.errno.as_deref(), Some("ENOENT"));
}

#[test]
fn paths_buffers_and_addresses_are_captured() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    std::fs::write(&a, "0123456789abcdefghijklmnopqrstuvwxyzEXTRA").unwrap();
    let script = format!(
        "cat {a} > /dev/null; mv {a} {b}; cat /nonexistent-probity 2>/dev/null; true",
        a = a.display(),
        b = b.display()
    );
    let t = trace("sh", &["-c", &script]);
    let ctx = || dump(&t);
    // cat's read shows the first 32 bytes and the full length.
    let read = t
        .syscalls()
        .find(|(_, s)| s.name == "read" && matches!(&s.args[1], Arg::Bytes { data, .. } if data.starts_with(b"0123")))
        .unwrap_or_else(|| panic!("no read of the file:\n{}", ctx()))
        .1;
    assert_eq!(read.args[1], Arg::Bytes { data: b"0123456789abcdefghijklmnopqrstuv".to_vec(), len: 41 });
    // mv renames with both paths.
    let rename =
        t.syscalls().find(|(_, s)| s.name.starts_with("rename")).unwrap_or_else(|| panic!("no rename:\n{}", ctx())).1;
    let paths: Vec<&Path> = rename.args.iter().filter_map(Arg::as_path).collect();
    assert_eq!(paths, [a.as_path(), b.as_path()], "{}", ctx());
    // A failed openat carries its errno.
    assert!(
        t.syscalls().any(|(_, s)| s.name == "openat"
            && s.path() == Some(Path::new("/nonexistent-probity"))
            && s.errno.as_deref() == Some("ENOENT")),
        "{}",
        ctx()
    );
}

#[test]
fn a_syscall_that_sleeps_is_recorded_once_with_its_time() {
    // A sleeping syscall's task is switched out between entry and exit,
    // and may wake on the other CPU: its entry leaves the CPU's slot for
    // the in-flight map (see harness-ebpf/src/probes/syscalls.rs).
    let t = trace("sh", &["-c", "sleep 0.02; sleep 0.02; sleep 0.02"]);
    assert_eq!(t.outcome.status, ExitStatus::Code(0));
    let sleeps: Vec<_> =
        t.syscalls().filter(|(_, s)| s.name == "clock_nanosleep" || s.name == "nanosleep").map(|(_, s)| s).collect();
    assert_eq!(sleeps.len(), 3, "{}", dump(&t));
    for s in sleeps {
        assert_eq!(s.ret, Some(0), "{}", dump(&t));
        assert!(s.duration_ns >= 20_000_000, "a 20 ms sleep took {} ns:\n{}", s.duration_ns, dump(&t));
    }
    // The shell waited for each child: its wait4 calls blocked too, and
    // each is there once, with the child's pid.
    let waits = t
        .syscalls()
        .filter(|(e, s)| e.pid == t.outcome.root_pid && s.name == "wait4" && s.ret.is_some_and(|r| r > 0))
        .count();
    assert_eq!(waits, 3, "{}", dump(&t));
}

#[test]
fn argv_of_up_to_64_entries_is_kept_whole() {
    // `true` with argv[0] and 63 more: 64 entries, the documented limit.
    let args63: Vec<String> = (1..=63).map(|i| format!("a{i}")).collect();
    let args64: Vec<String> = (1..=64).map(|i| format!("a{i}")).collect();
    for (args, whole) in [(&args63, true), (&args64, false)] {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let t = trace("/bin/true", &refs);
        let exec = t
            .events
            .iter()
            .find_map(|e| match &e.kind {
                EventKind::Exec(x) => Some(x),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no exec in\n{}", dump(&t)));
        assert_eq!(exec.argv.len(), 64, "{} arguments: {:?}", refs.len() + 1, exec.argv);
        assert_eq!(exec.argv_truncated, !whole, "{} arguments", refs.len() + 1);
        let execve = t.syscalls().named("execve").next().map(|(_, s)| s.clone()).expect("the execve record");
        let Some(Arg::Strings { items, truncated }) = execve.args.get(1) else { panic!("argv: {:?}", execve.args) };
        assert_eq!((items.len(), *truncated), (64, !whole), "the execve record's argv");
    }
}
