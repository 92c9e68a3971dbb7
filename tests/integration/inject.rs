//! Fault injection: strace's `--inject` is the oracle for what a rule
//! does to real programs; then what only probity has (the injected calls
//! in the trace, path filters, the preload tracer alone) and bad rules.

use std::process::Command;
use std::time::{Duration, Instant};

use probity::inject::Inject;
use probity::{Cmd, ExitStatus, Tracer, TracerKind};

use crate::support::{fixture, require_tracing};

/// What strace reports of `program args` under `strace -f --inject=SPEC`.
struct Strace {
    /// The exit status, as a shell would report it.
    status: ExitStatus,
    stderr: String,
    /// How many calls strace injected in each process, in the order the
    /// processes first had one.
    injected: Vec<usize>,
}

fn under_strace(spec: &str, program: &str, args: &[&str], dir: &std::path::Path) -> Strace {
    use std::os::unix::process::ExitStatusExt;
    let log = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new("strace")
        .args(["-f", "-qq", "-o"])
        .arg(log.path())
        .arg(format!("--inject={spec}"))
        .arg("--")
        .arg(program)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("strace is installed (cargo xtask setup)");
    // strace dies of the signal that killed the program, as a shell sees it.
    let status = match (out.status.code(), out.status.signal()) {
        (Some(c), _) => ExitStatus::Code(c),
        (None, Some(s)) => ExitStatus::Signal(s),
        _ => unreachable!("a process ends with a code or a signal"),
    };
    // With -f, each line starts with the pid: `1234 openat(...) = -1 ENOSPC (...) (INJECTED)`.
    let log = std::fs::read_to_string(log.path()).unwrap();
    let pids = log.lines().filter(|l| l.ends_with("(INJECTED)")).filter_map(|l| l.split(' ').next());
    let injected = per_process(pids.map(|p| p.parse::<u32>().expect("strace -f prefixes the pid")));
    Strace { status, stderr: String::from_utf8_lossy(&out.stderr).into_owned(), injected }
}

/// How many of `pids` each process has, in the order of first appearance.
fn per_process(pids: impl Iterator<Item = u32>) -> Vec<usize> {
    let mut counts: Vec<(u32, usize)> = Vec::new();
    for pid in pids {
        match counts.iter_mut().find(|(p, _)| *p == pid) {
            Some((_, n)) => *n += 1,
            None => counts.push((pid, 1)),
        }
    }
    counts.into_iter().map(|(_, n)| n).collect()
}

/// How many calls probity injected in each process of `run`, as
/// [`Strace::injected`].
fn injected_per_process(run: &probity::Run) -> Vec<usize> {
    per_process(run.trace.syscalls().injected().map(|(e, _)| e.pid))
}

/// The same under probity, with the eBPF tracer: the preload library's
/// loading and its own calls would be counted too, and strace has no such
/// library.
fn under_probity(spec: &str, program: &str, args: &[&str], dir: &std::path::Path) -> probity::Run {
    let rule: Inject = spec.parse().unwrap_or_else(|e| panic!("{spec}: {e}"));
    Cmd::new(program)
        .args(args)
        .current_dir(dir)
        .tracer(Tracer::new().with_tracers(&[TracerKind::Ebpf]))
        .inject(rule)
        .try_run()
        .unwrap_or_else(|e| panic!("failed to trace {program}: {e}"))
}

#[test]
fn real_programs_react_as_under_strace() {
    require_tracing();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("src"), "probity\n").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let cases: &[(&str, &str, &[&str])] = &[
        ("openat:error=ENOSPC:when=3", "cat", &["/etc/hostname"]),
        ("openat:error=EACCES:when=2+", "cat", &["/etc/hostname", "src"]),
        ("read:error=EIO:when=2", "cat", &["src"]),
        ("copy_file_range,write:error=ENOSPC", "cp", &["src", "dst-write"]),
        ("openat:error=EROFS:when=4..6", "cp", &["src", "dst-open"]),
        ("getdents64:error=EIO", "ls", &["sub"]),
        ("fstat,newfstatat,statx:error=EACCES:when=3+2", "ls", &["-l", "."]),
        ("openat:error=EMFILE:when=30..40+3", "python3", &["-c", "print(open('src').read())"]),
        ("chdir:error=ENOENT", "sh", &["-c", "cd /tmp && echo moved"]),
        ("openat:error=ENOSPC:when=3", "sh", &["-c", "cat src; cat src"]),
        ("wait4:error=ECHILD", "sh", &["-c", "/bin/true; echo $?"]),
        ("close:signal=SIGUSR1:when=2", "cat", &["src"]),
    ];
    for (spec, program, args) in cases {
        let strace = under_strace(spec, program, args, dir.path());
        let run = under_probity(spec, program, args, dir.path());
        // How often sh calls wait4 is a race in sh itself: a refused wait
        // returns at once, and when the child exits after it, its SIGCHLD
        // makes sh wait once more before it exits. Under strace the child
        // is slower and sh is gone first; under probity either can happen.
        // The status and output must still match.
        let (ours, theirs) = if *spec == "wait4:error=ECHILD" {
            (Vec::new(), Vec::new())
        } else {
            (injected_per_process(&run), strace.injected)
        };
        assert_eq!(
            (run.status, &run.stderr, ours),
            (strace.status, &strace.stderr, theirs),
            "{program} {args:?} with {spec}: probity (left) and strace (right) differ"
        );
        // The rules fail calls (but the signal): each run has some.
        if !spec.contains("signal") {
            assert!(run.trace.syscalls().injected().count() > 0, "{program} {args:?} with {spec}: nothing injected");
        }
    }
}

#[test]
fn a_static_program_is_covered_from_its_first_call() {
    require_tracing();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let spec = "open,openat:error=EACCES";
    let program = fixture(probity_fixtures::STATIC_KNOWN_IO);
    let args = [out.to_str().unwrap(), "0"];
    let strace = under_strace(spec, &program, &args, dir.path());
    let run = under_probity(spec, &program, &args, dir.path());
    assert_eq!((run.status, &run.stderr, injected_per_process(&run)), (strace.status, &strace.stderr, strace.injected));
    assert_eq!(run.status, ExitStatus::Code(99));
    assert_eq!(run.stderr, "known_io: open OUT_PATH\n");
    let injected: Vec<_> = run.trace.syscalls().injected().collect();
    assert_eq!(injected.len(), 1, "{injected:?}");
    assert_eq!(injected[0].1.errno.as_deref(), Some("EACCES"));
    assert_eq!(injected[0].1.path(), Some(out.as_path()));
    assert!(!out.exists(), "the open did not run");
}

#[test]
fn each_thread_and_each_child_is_counted_apart() {
    require_tracing();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // known_io: two threads call getppid once each; a child execs true.
    let run = Cmd::new(fixture(probity_fixtures::KNOWN_IO))
        .args([out.to_str().unwrap(), "0"])
        .inject("getppid:retval=4242:when=1".parse().unwrap())
        .inject("execve:error=ENOEXEC:when=2".parse().unwrap())
        .try_run()
        .unwrap();
    let getppid: Vec<_> = run.trace.syscalls().named("getppid").collect();
    assert_eq!(getppid.len(), 2, "{getppid:?}");
    for (e, s) in &getppid {
        assert!(s.injected, "{e:?}");
        assert_eq!(s.ret, Some(4242));
        assert_ne!(e.tid, e.pid, "called from a thread");
    }
    assert_ne!(getppid[0].0.tid, getppid[1].0.tid);
    // Each process's first execve is its own first: none is the second.
    assert_eq!(run.trace.syscalls().named("execve").injected().count(), 0);
    assert_eq!(run.status, ExitStatus::Code(0));
}

/// The libc calls a rule answered, as (function, result, errno).
fn injected_libc(run: &probity::Run) -> Vec<(String, String, Option<String>)> {
    run.trace
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            probity::EventKind::Libc(c) if c.injected => Some((
                c.function.clone(),
                c.ret.as_ref().map(ToString::to_string).unwrap_or_default(),
                c.errno.as_deref().map(str::to_owned),
            )),
            _ => None,
        })
        .collect()
}

/// A resolver failure is a libc-level fault: getaddrinfo returns
/// `EAI_AGAIN` twice, and a client that retries resolves on its third try.
#[test]
fn a_libc_rule_fails_getaddrinfo_and_the_client_retries() {
    let script = "import socket\n\
                  for attempt in range(1, 5):\n    \
                      try:\n        \
                          socket.getaddrinfo('localhost', 80, type=socket.SOCK_STREAM)\n        \
                          print('resolved on attempt', attempt)\n        \
                          break\n    \
                      except socket.gaierror as e:\n        \
                          print('attempt', attempt, e.errno)\n";
    let run = Cmd::new("python3")
        .args(["-c", script])
        .tracer(Tracer::new().with_tracers(&[TracerKind::Preload]))
        .inject("getaddrinfo:error=EAI_AGAIN:when=1..2".parse().unwrap())
        .try_run()
        .unwrap();
    assert_eq!(run.status, ExitStatus::Code(0), "{}", run.stderr);
    assert_eq!(run.stdout, "attempt 1 -3\nattempt 2 -3\nresolved on attempt 3\n");
    let gai = ("getaddrinfo".to_owned(), "-3".to_owned(), None);
    assert_eq!(injected_libc(&run), [gai.clone(), gai]);
    // The third ran, and found the address.
    let resolved = run.trace.events.iter().filter(|e| {
        matches!(&e.kind, probity::EventKind::Libc(c)
        if c.function == "getaddrinfo" && !c.injected && c.ret.as_ref().is_some_and(|r| r.to_string() == "0"))
    });
    assert_eq!(resolved.count(), 1, "{}", crate::support::dump(&run.trace));

    // The variable that carries the rules, inherited from elsewhere (an
    // outer run, or a program's doing), brings no faults to a run that
    // asked for none.
    let run = Cmd::new("python3")
        .args(["-c", script])
        .env("PROBITY_PRELOAD_FAULTS", "getaddrinfo\t-3\t1\t4294967295\t1\t\n")
        .tracer(Tracer::new().with_tracers(&[TracerKind::Preload]))
        .try_run()
        .unwrap();
    assert_eq!(run.stdout, "resolved on attempt 1\n", "{}", run.stderr);
    assert_eq!(injected_libc(&run), []);
}

/// A rule on `fopen` answers before the real function runs: the program
/// sees its error, and the kernel tracer sees no `openat` of that file.
#[test]
fn a_libc_rule_fails_fopen_and_the_file_is_never_opened() {
    require_tracing();
    let dir = tempfile::tempdir().unwrap();
    let run = Cmd::new(fixture(probity_fixtures::LIBC_FILES))
        .arg(dir.path())
        .inject(format!("fopen:error=EACCES:path={}/a", dir.path().display()).parse().unwrap())
        .try_run()
        .unwrap();
    assert_eq!(run.status, ExitStatus::Code(99));
    assert_eq!(run.stderr, "libc_files: fopen DIR/a\n");
    assert_eq!(injected_libc(&run), [("fopen".to_owned(), "NULL".to_owned(), Some("EACCES".to_owned()))]);
    let a = dir.path().join("a");
    assert_eq!(run.trace.syscalls().path(&a).count(), 0, "{}", crate::support::dump(&run.trace));
    assert!(!a.exists());
    // Without the preload tracer nothing could answer it: refused.
    let refused = Cmd::new("true")
        .tracer(Tracer::new().with_tracers(&[TracerKind::Ebpf]))
        .inject("fopen:error=EACCES".parse().unwrap())
        .try_run()
        .unwrap_err();
    let why = std::error::Error::source(&refused).map(ToString::to_string).unwrap_or_default();
    assert!(why.contains("a fault-injection rule on fopen needs the preload tracer"), "{refused}: {why}");
}

/// A thread that gets the id of one that ended is a new thread: its
/// first call is its first, as under strace. The fixture cycles through
/// the kernel's thread ids until one comes back.
#[test]
fn a_reused_thread_id_counts_from_one_again() {
    let run = Cmd::new(fixture(probity_fixtures::TID_REUSE))
        .tracer(Tracer::new().with_tracers(&[TracerKind::Preload]))
        .inject("getppid:retval=4242:when=1".parse().unwrap())
        .try_run()
        .unwrap();
    assert_eq!(run.status, ExitStatus::Code(0), "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    assert!(lines[0].starts_with("first ") && lines[0].ends_with(" = 4242"), "{}", run.stdout);
    assert!(lines[1].starts_with("reused after ") && lines[1].ends_with(" = 4242"), "{}", run.stdout);
    // The threads' calls (the preload library makes one of its own on the
    // main thread as it starts, which counts too).
    let injected: Vec<u32> =
        run.trace.syscalls().named("getppid").injected().filter(|(e, _)| e.tid != e.pid).map(|(e, _)| e.tid).collect();
    assert_eq!(injected.len(), 2, "{injected:?}");
    assert_eq!(injected[0], injected[1], "the same thread id, twice");
}

#[test]
fn when_counts_start_afresh_in_each_process_of_an_exec_chain() {
    require_tracing();
    let dir = tempfile::tempdir().unwrap();
    for f in ["a", "b"] {
        std::fs::write(dir.path().join(f), f).unwrap();
    }
    // sh runs each `cat` in a child of its own: every process's counts
    // start from 1, so each `cat` has its third openat failed (and sh too
    // when the loader searches a library path first, as under cargo).
    let (spec, args) = ("openat:error=ENOSPC:when=3", ["-c", "cat a; cat b"]);
    let strace = under_strace(spec, "sh", &args, dir.path());
    let run = under_probity(spec, "sh", &args, dir.path());
    assert_eq!(
        (run.status, &run.stderr, injected_per_process(&run)),
        (strace.status, &strace.stderr, strace.injected),
        "{}",
        crate::support::dump(&run.trace)
    );
    let injected = injected_per_process(&run);
    assert!(injected.len() >= 2 && injected.iter().all(|&n| n == 1), "one injected call in each process: {injected:?}");
}

#[test]
fn a_path_filter_fails_only_that_file_absolute_or_relative() {
    require_tracing();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keep"), "kept\n").unwrap();
    std::fs::write(dir.path().join("lose"), "lost\n").unwrap();
    let pattern = format!("{}/lo*", dir.path().display());
    let run = Cmd::new("cat")
        .args(["keep", "lose"])
        .current_dir(dir.path())
        .inject(format!("openat:error=ENOENT:path={pattern}").parse().unwrap())
        .try_run()
        .unwrap();
    assert_eq!(run.stdout, "kept\n");
    assert_eq!(run.stderr, "cat: lose: No such file or directory\n");
    let injected: Vec<_> = run.trace.syscalls().injected().collect();
    assert_eq!(injected.len(), 1);
    assert_eq!(injected[0].1.path(), Some(std::path::Path::new("lose")));
    // Exactly one openat of `lose`: the kernel tracer has no second copy.
    assert_eq!(run.trace.syscalls().named("openat").path(dir.path().join("lose")).count(), 1);
}

#[test]
fn an_injected_signal_is_delivered_when_the_call_returns() {
    require_tracing();
    let run = Cmd::new("cat").arg("/etc/hostname").inject("close:signal=SIGTERM".parse().unwrap()).try_run().unwrap();
    assert_eq!(run.status, ExitStatus::Signal(libc::SIGTERM));
    let delivered =
        run.trace.events.iter().any(|e| matches!(&e.kind, probity::EventKind::Signal(s) if s.signo == libc::SIGTERM));
    assert!(delivered, "{}", crate::support::dump(&run.trace));
}

#[test]
fn a_delay_holds_the_call() {
    require_tracing();
    let start = Instant::now();
    let run = Cmd::new("true").inject("exit_group:delay_enter=300ms".parse().unwrap()).try_run().unwrap();
    assert_eq!(run.status, ExitStatus::Code(0));
    // A lower bound: the delay happened (nothing is said about speed).
    assert!(start.elapsed() >= Duration::from_millis(300));
}

#[test]
fn a_delay_holds_the_call_when_names_and_no_other() {
    require_tracing();
    // The delay comes before the call runs, so the kernel tracer sees the
    // second getppid enter at least the delay after the first; the third
    // follows the second at once, well within that.
    let delay = Duration::from_millis(300);
    let run = Cmd::new(fixture(probity_fixtures::GETPPID_LOOP))
        .arg("3")
        .tracer(Tracer::new().with_tracers(&[TracerKind::Ebpf]))
        .inject("getppid:delay_enter=300ms:when=2".parse().unwrap())
        .try_run()
        .unwrap();
    assert_eq!(run.status, ExitStatus::Code(0));
    let at: Vec<u64> = run.trace.syscalls().named("getppid").map(|(e, _)| e.ts_ns).collect();
    assert_eq!(at.len(), 3, "{at:?}");
    let (first, second) = (at[1] - at[0], at[2] - at[1]);
    assert!(first >= delay.as_nanos() as u64, "the second call entered {first} ns after the first");
    assert!(second < first, "the third call was held too: {second} ns after the second, {first} before");
    assert_eq!(run.trace.syscalls().injected().count(), 0, "a call that runs is the kernel tracer's record");
}

#[test]
fn injection_works_with_the_preload_tracer_alone() {
    // No eBPF: the supervisor is the only witness of a syscall.
    let run = Cmd::new("cat")
        .arg("/etc/hostname")
        .tracer(Tracer::new().with_tracers(&[TracerKind::Preload]))
        .inject("openat:error=ENOSPC:path=/etc/hostname".parse().unwrap())
        .try_run()
        .unwrap();
    assert_eq!(run.stderr, "cat: /etc/hostname: No space left on device\n");
    let (e, s) = run.trace.syscalls().injected().next().expect("the injected openat is in the trace");
    assert_eq!(s.name, "openat");
    assert_eq!(e.pid, run.trace.outcome.root_pid);
    // Linked to the libc call it was made in, as a traced syscall is.
    assert!(s.parent.is_some());
}

#[test]
fn the_cli_marks_injected_calls_in_text_and_json() {
    require_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (text, json) = (dir.path().join("trace.txt"), dir.path().join("trace.json"));
    let out = Command::new(env!("CARGO_BIN_EXE_probity"))
        .args(["run", "-o", text.to_str().unwrap(), "--json", json.to_str().unwrap()])
        .args(["--inject", "openat:error=ENOSPC:path=/etc/hostname", "--fault", "fsync"])
        .args(["--", "cat", "/etc/hostname"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(text).unwrap();
    assert!(
        text.contains(
            r#"openat(AT_FDCWD, "/etc/hostname", O_RDONLY) = -1 ENOSPC (No space left on device) (injected) <"#
        ),
        "{text}"
    );
    let json = std::fs::read_to_string(json).unwrap();
    let injected: Vec<&str> = json.lines().filter(|l| l.contains(r#""injected":true"#)).collect();
    assert_eq!(injected.len(), 1, "{json}");
    assert!(injected[0].contains(r#""errno":"ENOSPC""#));
}

#[test]
fn bad_rules_are_usage_errors_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let cases = [
        ("--inject", "nosuchcall:error=EIO", "unknown syscall \"nosuchcall\""),
        ("--inject", "openat:error=ENOSUCH", "unknown errno \"ENOSUCH\""),
        ("--inject", "openat:eror=EIO", "unknown key \"eror\""),
        ("--inject", ":error=EIO", "empty syscall set"),
        ("--inject", "openat:error=EIO:when=0", "invalid when=\"0\""),
        ("--inject", "openat:when=2", "missing :error"),
        ("--fault", "openat:retval=1", "unknown key \"retval\""),
    ];
    for (flag, spec, says) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_probity"))
            .args(["run", flag, spec, "--", "touch"])
            .arg(&marker)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{spec}: {stderr}");
        assert!(stderr.contains(says), "{spec}: {stderr}");
        assert!(!marker.exists(), "{spec}: the command ran");
    }
}

#[test]
fn injection_with_summary_counts_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_probity"))
        .args(["run", "--summary", "--inject", "openat:error=ENOENT", "--", "true"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--inject and --fault cannot be used with --summary"), "{stderr}");
    let e = probity::Tracer::new()
        .with_summary(true)
        .with_inject("openat:error=ENOENT".parse().unwrap())
        .run(Command::new("true"))
        .unwrap_err();
    let why = std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default();
    assert!(why.contains("fault injection cannot be combined with summary counts"), "{e}: {why}");
}

#[test]
fn a_connect_refused_twice_then_allowed_shows_the_retries() {
    require_tracing();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // A client that retries a refused connection three times.
    let client = format!(
        "import socket\n\
         for attempt in range(3):\n\
         \x20   try:\n\
         \x20       socket.create_connection(('127.0.0.1', {port})).close()\n\
         \x20       print('connected on attempt', attempt + 1)\n\
         \x20       break\n\
         \x20   except ConnectionRefusedError:\n\
         \x20       print('refused')\n"
    );
    // Only connections to this host: another address is left alone.
    let run = Cmd::new("python3")
        .args(["-c", &client])
        .inject("connect:error=ECONNREFUSED:when=1..2:host=127.0.0.0/8".parse().unwrap())
        .inject("connect:error=ENETUNREACH:host=192.0.2.1".parse().unwrap())
        .try_run()
        .unwrap();
    // The network calls, and what the run says of itself.
    let dump = format!(
        "{}\n{:?}",
        crate::support::dump(&run.trace)
            .lines()
            .filter(|l| l.contains("socket(") || l.contains("connect("))
            .collect::<Vec<_>>()
            .join("\n"),
        run.trace.outcome
    );
    assert_eq!(run.stdout, "refused\nrefused\nconnected on attempt 3\n", "{}\n{dump}", run.stderr);
    // Only the client's TCP connects: the C library may also try local
    // sockets (nscd, systemd's user database) when HOME is unset, and
    // those fail with ENOENT on hosts that run neither.
    let connects: Vec<_> = run
        .trace
        .syscalls()
        .named("connect")
        .filter(|(_, s)| s.args.iter().any(|a| matches!(a.sockaddr(), Some(probity::SockAddr::Inet { .. }))))
        .collect();
    let seen: Vec<(bool, Option<&str>)> = connects.iter().map(|(_, s)| (s.injected, s.errno.as_deref())).collect();
    assert_eq!(seen, [(true, Some("ECONNREFUSED")), (true, Some("ECONNREFUSED")), (false, None)], "{dump}");
    let peer = connects[0].1.args.iter().find_map(|a| a.sockaddr().cloned());
    assert_eq!(peer, Some(probity::SockAddr::Inet { addr: ([127, 0, 0, 1], port).into() }));
}

#[test]
fn a_path_relative_to_a_directory_descriptor_is_resolved_against_it() {
    require_tracing();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/f"), "x").unwrap();
    std::fs::write(dir.path().join("f"), "x").unwrap();
    // `f` relative to `sub` (a descriptor) is sub/f and fails; `f`
    // relative to the working directory is another file and opens.
    let script = "import os\n\
                  d = os.open('sub', os.O_RDONLY)\n\
                  for at in (d, None):\n\
                  \x20   try:\n\
                  \x20       os.close(os.open('f', os.O_RDONLY, dir_fd=at))\n\
                  \x20       print('opened')\n\
                  \x20   except PermissionError:\n\
                  \x20       print('refused')\n";
    let run = Cmd::new("python3")
        .args(["-c", script])
        .current_dir(dir.path())
        .inject(format!("openat:error=EACCES:path={}/sub/f", dir.path().display()).parse().unwrap())
        .try_run()
        .unwrap();
    assert_eq!(run.stdout, "refused\nopened\n", "{}", run.stderr);
    assert_eq!(run.trace.syscalls().injected().count(), 1);
}

#[test]
fn statx_paths_are_resolved_against_their_descriptor_or_name_it() {
    require_tracing();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/f"), "x").unwrap();
    std::fs::write(dir.path().join("f"), "x").unwrap();
    // statx (332 on x86_64) has no `at` in its name, but its first argument is a directory
    // descriptor: `f` relative to `sub` is sub/f and fails, `f` relative to
    // the working directory opens, and an empty path with AT_EMPTY_PATH
    // names the descriptor's own file (sub/f again), and fails.
    let script = "import ctypes, os\n\
                  libc = ctypes.CDLL(None, use_errno=True)\n\
                  buf = ctypes.create_string_buffer(256)\n\
                  d = os.open('sub', os.O_RDONLY)\n\
                  fd = os.open('sub/f', os.O_RDONLY)\n\
                  for at, path, flags in ((d, b'f', 0), (-100, b'f', 0), (fd, b'', 0x1000)):\n\
                  \x20   r = libc.syscall(332, at, path, flags, 0xfff, buf)\n\
                  \x20   print('refused' if r != 0 and ctypes.get_errno() == 13 else 'ok')\n";
    let run = Cmd::new("python3")
        .args(["-c", script])
        .current_dir(dir.path())
        .inject(format!("statx:error=EACCES:path={}/sub/f", dir.path().display()).parse().unwrap())
        .try_run()
        .unwrap();
    assert_eq!(run.stdout, "refused\nok\nrefused\n", "{}", run.stderr);
    assert_eq!(run.trace.syscalls().injected().count(), 2);
}
