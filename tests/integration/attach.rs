//! Attaching to running processes (`Tracer::attach`, `probity run -p`):
//! their next calls and children are traced, detaching leaves them
//! running, and a trace that began mid-flight says so and keeps the
//! network checks from passing over connections made before it.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use probity::{Event, EventKind, ExitStatus, SocketKind, Tracer, ViolationKind};

use crate::support::require_tracing;

/// A python3 process that, for each line of its input, opens the file the
/// line names, runs `true`, and answers `done`; with `connect` it first
/// opens a TCP connection to that port, and sends each line's name on it.
struct Worker {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Worker {
    fn start(connect: Option<u16>) -> Worker {
        let script = format!(
            "import socket, subprocess, sys\n\
             conn = socket.create_connection(('127.0.0.1', {port})) if {port} else None\n\
             print('ready', flush=True)\n\
             for line in sys.stdin:\n\
             \x20   name = line.strip()\n\
             \x20   open(name).close()\n\
             \x20   subprocess.run(['true'])\n\
             \x20   if conn: conn.sendall(name.encode())\n\
             \x20   print('done', flush=True)\n",
            port = connect.unwrap_or(0)
        );
        let mut child =
            Command::new("python3").args(["-c", &script]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        let input = child.stdin.take().unwrap();
        let mut output = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        output.read_line(&mut line).unwrap();
        assert_eq!(line, "ready\n");
        Worker { child, input, output }
    }

    /// Has it open `path`, and waits for its answer.
    fn poke(&mut self, path: &std::path::Path) {
        writeln!(self.input, "{}", path.display()).unwrap();
        let mut line = String::new();
        self.output.read_line(&mut line).unwrap();
        assert_eq!(line, "done\n");
    }

    fn end(mut self) {
        drop(self.input);
        assert!(self.child.wait().unwrap().success());
    }
}

/// A local TCP server that reads one connection to its end: its port,
/// and what it read.
fn local_sink() -> (u16, std::thread::JoinHandle<Vec<u8>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let reader = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        std::io::Read::read_to_end(&mut s, &mut got).unwrap();
        got
    });
    (port, reader)
}

/// Reads a `probity run -p` child's standard error until it says it
/// attached; returns the reader and what it said so far.
fn until_attached(probity: &mut Child) -> (BufReader<std::process::ChildStderr>, String) {
    let mut stderr = BufReader::new(probity.stderr.take().unwrap());
    let mut said = String::new();
    while !said.contains("Ctrl-C detaches") {
        assert_ne!(stderr.read_line(&mut said).unwrap(), 0, "{said}");
    }
    (stderr, said)
}

/// A child killed and reaped when dropped, even when a test fails.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Attaches to `pid`, runs `work` on another thread once attached, then
/// detaches; returns the trace.
fn attached_while(pid: u32, work: impl FnOnce() + Send + 'static) -> probity::Trace {
    let tracee = Tracer::new().attach(&[pid]).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let worker = std::thread::spawn(move || {
        work();
        stop2.store(true, Ordering::Relaxed);
    });
    let mut events: Vec<Event> = Vec::new();
    let outcome = tracee.wait_with(Some(&stop), |e| events.push(e)).unwrap();
    worker.join().unwrap();
    probity::Trace { events, outcome }
}

/// Waits until process `pid` is inside one of the syscalls numbered `nrs`.
fn wait_in_syscall(pid: u32, nrs: &[&str]) {
    let start = std::time::Instant::now();
    loop {
        let now = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
        if nrs.contains(&now.split(' ').next().unwrap_or_default()) {
            return;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(20), "process {pid} never entered {nrs:?}: {now}");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn an_attached_process_shows_its_next_calls_and_children_and_runs_on_after_detaching() {
    require_tracing();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("while-attached");
    std::fs::write(&file, "x").unwrap();
    let after = dir.path().join("after-detaching");
    std::fs::write(&after, "x").unwrap();
    let mut worker = Worker::start(None);
    let pid = worker.child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let trace = {
        let file = file.clone();
        let mut w = worker;
        let t = attached_while(pid, move || {
            w.poke(&file);
            tx.send(w).unwrap();
        });
        worker = rx.recv().unwrap();
        t
    };
    // It runs on, untraced, and still answers.
    worker.poke(&after);
    worker.end();

    let dump = crate::support::dump(&trace);
    // Its open of the file, with the path as it gave it.
    let opens: Vec<_> = trace
        .syscalls()
        .pid(pid)
        .named("openat")
        .filter(|(_, s)| s.args.iter().any(|a| a.as_path() == Some(file.as_path())))
        .collect();
    assert_eq!(opens.len(), 1, "{dump}");
    assert!(!dump.contains("after-detaching"), "{dump}");
    // The child it started, in the tree under it, and its exec of true.
    let tree = trace.processes();
    let child = tree.values().find(|p| p.parent == Some(pid)).unwrap_or_else(|| panic!("no child of {pid}: {dump}"));
    assert!(child.execs.iter().any(|(prog, _)| prog.to_string_lossy().ends_with("/true")), "{:?}", child.execs);
    // The trace says it began mid-flight, with what, and that probity left.
    let a = trace.outcome.attach.as_ref().expect("no attach in the outcome");
    assert!(a.detached);
    assert_eq!(trace.outcome.status, ExitStatus::Running);
    assert!(trace.outcome.interrupted);
    assert_eq!(a.processes[0].pid, pid);
    assert!(a.processes[0].program.contains("python3"), "{:?}", a.processes[0]);
    assert!(a.processes[0].argv[0].ends_with("python3"), "{:?}", a.processes[0].argv);
    assert_eq!(a.processes[0].argv[1], "-c");
    let fd0 = a.processes[0].descriptors.iter().find(|d| d.fd == 0).unwrap();
    assert!(fd0.target.starts_with("pipe:["), "{fd0:?}");
    assert!(a.at_ns <= trace.events[0].ts_ns, "{} > {}", a.at_ns, trace.events[0].ts_ns);
    let text = format!("{trace}");
    assert!(text.contains(&format!("attached mid-flight to 1 process ({pid})")), "{text}");
    assert!(text.contains("root process") && text.contains("still running when probity detached"), "{text}");
    // Pipes and files opened before: nothing the network checks cannot see.
    trace.check_network_gate(None::<&[&str]>).unwrap();
}

#[test]
fn a_process_that_ends_while_attached_gives_its_exit_status() {
    require_tracing();
    let mut child =
        Command::new("sh").args(["-c", "read x; cat /dev/null; exit 7"]).stdin(Stdio::piped()).spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    let pid = child.id();
    // Once it waits in `read`: its exec is over.
    wait_in_syscall(pid, &["0"]);
    let tracee = Tracer::new().attach(&[pid]).unwrap();
    writeln!(input, "go").unwrap();
    let trace = tracee.wait().unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(7));
    assert_eq!(trace.outcome.status, ExitStatus::Code(7));
    let a = trace.outcome.attach.as_ref().unwrap();
    assert!(!a.detached && !trace.outcome.interrupted);
    let execs: Vec<_> = trace
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Exec(x) => Some(x.filename.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(execs, ["/usr/bin/cat"], "{}", crate::support::dump(&trace));
    // Its `read` began before the attach: only calls entered since are in.
    assert_eq!(trace.syscalls().pid(pid).named("exit_group").count(), 1, "{}", crate::support::dump(&trace));
}

#[test]
fn a_connection_made_before_attaching_fails_the_network_gate_closed() {
    require_tracing();
    let (port, reader) = local_sink();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, "x").unwrap();
    let mut worker = Worker::start(Some(port));
    let pid = worker.child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let trace = attached_while(pid, move || {
        worker.poke(&file);
        tx.send(worker).unwrap();
    });
    rx.recv().unwrap().end();
    assert!(!reader.join().unwrap().is_empty());
    let a = trace.outcome.attach.as_ref().unwrap();
    assert!(
        a.processes[0].descriptors.iter().any(|d| d.socket == Some(SocketKind::Network)),
        "{:?}",
        a.processes[0].descriptors
    );
    // The send on it has no connect in the trace: the gates cannot say
    // where it went, so they do not pass.
    for allowed in [None, Some(&["10.0.0.0/8".to_string()][..])] {
        let v = trace.check_network_gate(allowed.map(<[String]>::to_vec).as_ref()).unwrap_err();
        assert_eq!(v.kind(), ViolationKind::Undecided, "{v}");
        assert!(v.to_string().contains("descriptor opened before probity attached"), "{v}");
    }
    assert!(trace.check_no_network().is_err());
}

#[test]
fn what_cannot_be_attached_is_refused_with_the_reason() {
    require_tracing();
    let e = Tracer::new().attach(&[u32::MAX - 7]).err().unwrap();
    assert!(e.to_string().contains("no such process"), "{e}");
    let e = Tracer::new().with_tracers(&[probity::TracerKind::Preload]).attach(&[std::process::id()]).err().unwrap();
    assert!(e.to_string().contains("only the eBPF tracer can attach"), "{e}");
    let e =
        Tracer::new().with_inject("openat:error=ENOENT".parse().unwrap()).attach(&[std::process::id()]).err().unwrap();
    assert!(e.to_string().contains("fault injection needs its filter installed"), "{e}");
    let e = Tracer::new().attach(&[std::process::id()]).err().unwrap();
    assert!(e.to_string().contains("it is this probity process"), "{e}");
}

#[test]
fn a_process_another_session_traces_is_not_taken_from_it() {
    require_tracing();
    let (r, w) = nix::unistd::pipe().unwrap();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "read x; cat /dev/null"]).stdin(Stdio::from(r));
    let traced = Tracer::new().with_tracers(&[probity::TracerKind::Ebpf]).spawn(cmd).unwrap();
    let pid = traced.pid();
    wait_in_syscall(pid, &["0"]);
    let e = Tracer::new().attach(&[pid]).err().unwrap();
    assert!(e.to_string().contains("another probity session traces it"), "{e}");
    // The first session still has it, and sees it to its end.
    let mut input = std::fs::File::from(w);
    writeln!(input, "go").unwrap();
    drop(input);
    let trace = traced.wait().unwrap();
    assert!(trace
        .events
        .iter()
        .any(|e| matches!(&e.kind, EventKind::Exec(x) if x.filename.to_string_lossy().ends_with("/cat"))));
}

#[test]
fn probity_never_traces_itself_as_a_descendant_of_what_it_attaches_to() {
    require_tracing();
    // A shell that runs probity, which attaches to that very shell: it
    // is a descendant of the process it names.
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("t.jsonl");
    let mut shell = Command::new("sh")
        .args(["-c", "\"$0\" run -o /dev/null --json \"$1\" -p $$; echo \"probity ended: $?\" >&2"])
        .arg(env!("CARGO_BIN_EXE_probity"))
        .arg(&json)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut stderr, mut said) = until_attached(&mut shell);
    let probity = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|&p| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| {
                s.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().nth(1)) == Some(&shell.id().to_string())
            })
        })
        .expect("probity, the shell's child");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(probity as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    std::io::Read::read_to_string(&mut stderr, &mut said).unwrap();
    assert!(shell.wait().unwrap().success(), "{said}");
    assert!(said.contains("probity ended: 0"), "{said}");
    let trace = probity::Trace::load(&json).unwrap();
    let a = trace.outcome.attach.as_ref().unwrap();
    // The shell alone: not probity, which was its only child.
    assert_eq!(a.processes.iter().map(|p| p.pid).collect::<Vec<_>>(), [shell.id()]);
    assert!(trace.events.iter().all(|e| e.pid != probity), "{}", crate::support::dump(&trace));
    assert!(a.detached);
}

#[test]
fn the_cli_attaches_prints_the_trace_and_detaches_on_ctrl_c() {
    require_tracing();
    let mut target = Command::new("sh").args(["-c", "while :; do cat /dev/null; sleep 0.05; done"]).spawn().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("t.jsonl");
    let mut probity = Command::new(env!("CARGO_BIN_EXE_probity"))
        .args(["run", "-o", "/dev/null", "--json"])
        .arg(&json)
        .args(["-p", &target.id().to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut stderr, mut said) = until_attached(&mut probity);
    // A few rounds of the loop, then Ctrl-C.
    let start = std::time::Instant::now();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let n = std::fs::read_to_string(&json).map(|t| t.matches("\"/usr/bin/cat\"").count()).unwrap_or(0);
        if n >= 1 || start.elapsed() > std::time::Duration::from_secs(30) {
            break;
        }
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(probity.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let status = probity.wait().unwrap();
    std::io::Read::read_to_string(&mut stderr, &mut said).unwrap();
    let running = target.try_wait().unwrap().is_none();
    let _ = target.kill();
    let _ = target.wait();
    assert_eq!(status.code(), Some(0), "{said}");
    assert!(said.contains("detached on SIGINT"), "{said}");
    assert!(running, "the attached process did not survive the detach");
    let trace = probity::Trace::load(&json).unwrap();
    assert!(trace.outcome.attach.as_ref().is_some_and(|a| a.detached));
    assert!(trace.processes().values().any(|p| p.parent == Some(target.id())), "{}", crate::support::dump(&trace));
}

#[test]
fn the_cli_refuses_attach_with_a_command_or_a_missing_process() {
    let out = Command::new(env!("CARGO_BIN_EXE_probity")).args(["run", "-p", "1", "--", "true"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    require_tracing();
    let out = Command::new(env!("CARGO_BIN_EXE_probity")).args(["run", "-p", "4294967000"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains("cannot attach to process 4294967000: no such process"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_probity"))
        .args(["run", "--tracers", "preload", "-p", &std::process::id().to_string()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains("--attach needs the eBPF tracer"), "{err}");
}

#[test]
fn a_connection_accepted_by_a_call_waiting_at_attach_time_fails_the_gate_closed() {
    require_tracing();
    // A server waiting in accept when probity attaches: the accept's
    // result, a new connection, is never in the trace.
    let script = "import socket, sys\n\
                  s = socket.socket()\n\
                  s.bind(('127.0.0.1', 0))\n\
                  s.listen()\n\
                  print(s.getsockname()[1], flush=True)\n\
                  fd, _ = s._accept()\n\
                  __import__('os').write(fd, b'hello')\n\
                  __import__('os')._exit(0)\n";
    let mut server = Command::new("python3").args(["-c", script]).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port: u16 = line.trim().parse().unwrap();
    let pid = server.id();
    wait_in_syscall(pid, &["43", "288"]);
    let tracee = Tracer::new().attach(&[pid]).unwrap();
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut std::net::TcpStream::connect(("127.0.0.1", port)).unwrap(), &mut got).unwrap();
    let trace = tracee.wait().unwrap();
    assert!(server.wait().unwrap().success());
    assert_eq!(got, b"hello");
    let a = trace.outcome.attach.as_ref().unwrap();
    assert!(a.processes[0].in_flight.iter().any(|c| c.syscall.starts_with("accept")), "{:?}", a.processes[0]);
    let v = trace.check_network_gate(None::<&[&str]>).unwrap_err();
    assert_eq!(v.kind(), ViolationKind::Undecided, "{v}");
    assert!(v.to_string().contains("descriptor opened before probity attached"), "{v}");
}

#[test]
fn the_cli_gate_over_an_attached_process_fails_closed_on_an_old_connection() {
    require_tracing();
    let (port, reader) = local_sink();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, "x").unwrap();
    let mut worker = Worker::start(Some(port));
    let mut probity = Command::new(env!("CARGO_BIN_EXE_probity"))
        .args(["run", "-o", "/dev/null", "--deny-network", "-p", &worker.child.id().to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut stderr, mut said) = until_attached(&mut probity);
    worker.poke(&file);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(probity.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let status = probity.wait().unwrap();
    std::io::Read::read_to_string(&mut stderr, &mut said).unwrap();
    worker.end();
    assert!(!reader.join().unwrap().is_empty());
    assert_eq!(status.code(), Some(121), "{said}");
    assert!(said.contains("network gate failed"), "{said}");
    assert!(said.contains("descriptor opened before probity attached"), "{said}");
}

#[test]
fn attaching_with_summary_counts_says_the_exit_status_is_unknown() {
    require_tracing();
    let mut child =
        Command::new("sh").args(["-c", "read x; cat /dev/null; exit 7"]).stdin(Stdio::piped()).spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    let pid = child.id();
    wait_in_syscall(pid, &["0"]);
    let tracee = Tracer::new().with_summary(true).attach(&[pid]).unwrap();
    writeln!(input, "go").unwrap();
    let trace = tracee.wait().unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(7));
    // Counted, not recorded: the exit_group that says 7 is only a count.
    assert_eq!(trace.outcome.status, ExitStatus::Code(-1));
    assert_eq!(trace.outcome.status.to_string(), "ended (its exit status is unknown)");
    let count = |name: &str| trace.outcome.syscalls.iter().find(|c| c.name == name).map_or(0, |c| c.calls);
    assert_eq!(count("exit_group"), 2, "{:?}", trace.outcome.syscalls);
    assert!(count("execve") >= 1, "{:?}", trace.outcome.syscalls);
}

#[test]
fn every_thread_of_an_attached_process_is_traced() {
    require_tracing();
    let dir = tempfile::tempdir().unwrap();
    // Three threads started before the attach, each waiting to open its
    // own file.
    let script = "import sys, threading\n\
                  go = threading.Event()\n\
                  def work(n):\n\
                  \x20   go.wait()\n\
                  \x20   open(f'{sys.argv[1]}/t{n}', 'w').close()\n\
                  ts = [threading.Thread(target=work, args=(n,)) for n in range(3)]\n\
                  [t.start() for t in ts]\n\
                  print('ready', flush=True)\n\
                  sys.stdin.readline()\n\
                  go.set()\n\
                  [t.join() for t in ts]\n";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    let pid = child.id();
    wait_in_syscall(pid, &["0"]);
    let tracee = Tracer::new().attach(&[pid]).unwrap();
    writeln!(child.stdin.take().unwrap(), "go").unwrap();
    let trace = tracee.wait().unwrap();
    assert!(child.wait().unwrap().success());
    let a = trace.outcome.attach.as_ref().unwrap();
    assert_eq!(a.processes.len(), 1);
    // The main thread was reading its input.
    assert!(
        a.processes[0].in_flight.iter().any(|c| c.syscall == "read" && c.first_arg == Some(0)),
        "{:?}",
        a.processes[0]
    );
    let mut openers: Vec<u32> = trace
        .syscalls()
        .pid(pid)
        .named("openat")
        .filter(|(_, s)| s.args.iter().any(|x| x.as_path().is_some_and(|p| p.starts_with(dir.path()))))
        .map(|(e, _)| e.tid)
        .collect();
    openers.sort_unstable();
    openers.dedup();
    assert_eq!(openers.len(), 3, "{}", crate::support::dump(&trace));
    assert!(!openers.contains(&pid));
    assert_eq!(trace.outcome.status, ExitStatus::Code(0));
}

#[test]
fn detaching_from_a_busy_process_ends_and_leaves_its_forks_alone() {
    require_tracing();
    // A loop of syscalls, threads and forks that never rests: it writes
    // records for as long as it is in the session, and its new threads
    // and children, added by the kernel's fork probe as attaching goes
    // on, are found again by the next read of /proc.
    let mut busy = Killed(
        Command::new("python3")
            .args([
                "-c",
                "import os, subprocess, threading, time\n\
                 n = 0\n\
                 while True:\n\
                 \x20   n += 1\n\
                 \x20   os.getppid()\n\
                 \x20   threading.Thread(target=time.sleep, args=(0.02,)).start()\n\
                 \x20   time.sleep(0.001)\n\
                 \x20   if n % 20 == 0: subprocess.run(['/bin/true'])\n",
            ])
            .spawn()
            .unwrap(),
    );
    let pid = busy.0.id();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let tracee = Tracer::new().attach(&[pid]).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let stop = AtomicBool::new(false);
        let mut n = 0u64;
        let outcome = tracee.wait_with(Some(&stop), |_| {
            n += 1;
            if n == 2000 {
                stop.store(true, Ordering::Relaxed);
            }
        });
        let _ = tx.send((outcome, n));
    });
    // Not a timing: a hang guard, far above what ending takes.
    let got = rx.recv_timeout(std::time::Duration::from_secs(60));
    let alive = busy.0.try_wait().unwrap().is_none();
    drop(busy);
    let (outcome, n) = got.expect("the trace never ended after the detach");
    let outcome = outcome.unwrap();
    assert!(n >= 2000 && alive);
    assert!(outcome.attach.as_ref().is_some_and(|a| a.detached));
    // Children the fork probe added as attaching went on are this
    // session's own, not another's.
    assert!(outcome.uncovered.iter().all(|u| !u.reason.contains("another probity session")), "{:?}", outcome.uncovered);
}

#[test]
fn a_tree_that_never_stops_forking_is_attached_whole() {
    require_tracing();
    // A shell that starts a child every few milliseconds, each living
    // long enough to be found in /proc after the kernel added it.
    let shell =
        Killed(Command::new("sh").args(["-c", "while :; do /bin/sleep 0.3 & /bin/sleep 0.005; done"]).spawn().unwrap());
    std::thread::sleep(std::time::Duration::from_millis(400));
    let tracee = Tracer::new().attach(&[shell.0.id()]).unwrap();
    let stop = AtomicBool::new(false);
    let mut execs = 0;
    let outcome = tracee
        .wait_with(Some(&stop), |e| {
            if matches!(e.kind, EventKind::Exec(_)) {
                execs += 1;
                if execs == 20 {
                    stop.store(true, Ordering::Relaxed);
                }
            }
        })
        .unwrap();
    drop(shell);
    let a = outcome.attach.unwrap();
    // The children running then are described, and none is taken for
    // another session's.
    assert!(a.processes.len() > 5, "{}", a.processes.len());
    assert!(outcome.uncovered.is_empty(), "{:?}", outcome.uncovered);
}

/// Sends `aio-hello` on a connection it opened before the attach, through
/// Linux AIO (`io_submit` of a write), once told to.
const AIO_SENDER: &str = r#"import ctypes, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
port = int(sys.argv[1])
conn = socket.create_connection(('127.0.0.1', port))
print('ready', flush=True)
sys.stdin.readline()
ctx = ctypes.c_ulong(0)
assert libc.syscall(206, 8, ctypes.byref(ctx)) == 0, ctypes.get_errno()
buf = ctypes.create_string_buffer(b'aio-hello')
class Iocb(ctypes.Structure):
    _fields_ = [('data', ctypes.c_uint64), ('key', ctypes.c_uint32), ('rw_flags', ctypes.c_uint32),
                ('opcode', ctypes.c_uint16), ('prio', ctypes.c_int16), ('fd', ctypes.c_uint32),
                ('buf', ctypes.c_uint64), ('nbytes', ctypes.c_uint64), ('offset', ctypes.c_int64),
                ('res2', ctypes.c_uint64), ('flags', ctypes.c_uint32), ('resfd', ctypes.c_uint32)]
cb = Iocb(opcode=1, fd=conn.fileno(), buf=ctypes.addressof(buf), nbytes=9)
arr = (ctypes.POINTER(Iocb) * 1)(ctypes.pointer(cb))
n = libc.syscall(209, ctx, 1, arr)
assert n == 1, (n, ctypes.get_errno())
ev = (ctypes.c_uint64 * 4)()
r = libc.syscall(208, ctx, 1, 1, ev, None)
print('done', r, ctypes.c_int64(ev[2]).value, flush=True)
import os
os._exit(0)
"#;

#[test]
fn data_sent_through_linux_aio_fails_the_gate_closed() {
    require_tracing();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut child = Command::new("python3")
        .args(["-c", AIO_SENDER, &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    let pid = child.id();
    wait_in_syscall(pid, &["0"]);
    let tracee = Tracer::new().attach(&[pid]).unwrap();
    writeln!(child.stdin.take().unwrap(), "go").unwrap();
    let trace = tracee.wait().unwrap();
    assert!(child.wait().unwrap().success());
    let mut got = [0u8; 9];
    std::io::Read::read_exact(&mut conn, &mut got).unwrap();
    assert_eq!(&got, b"aio-hello");
    let v = trace.check_network_gate(None::<&[&str]>).unwrap_err();
    assert_eq!(v.kind(), ViolationKind::Undecided, "{v}");
    assert!(v.to_string().contains("Linux AIO"), "{v}");
}

#[test]
fn a_send_under_way_at_attach_time_fails_the_gate_closed() {
    require_tracing();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // One send of 8 MiB on a connection nobody reads yet: it waits inside
    // the call, and finishes only once the test reads, after the attach.
    let script = format!(
        "import os, socket\n\
         c = socket.create_connection(('127.0.0.1', {port}))\n\
         c.sendall(b'x' * (8 << 20))\n\
         os._exit(0)\n"
    );
    let mut child = Command::new("python3").args(["-c", &script]).spawn().unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    let pid = child.id();
    // sendto (44) or sendmsg (46), whichever this python uses.
    wait_in_syscall(pid, &["44", "46"]);
    let tracee = Tracer::new().attach(&[pid]).unwrap();
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut conn, &mut got).unwrap();
    let trace = tracee.wait().unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(got.len(), 8 << 20);
    let a = trace.outcome.attach.as_ref().unwrap();
    assert!(a.processes[0].in_flight.iter().any(|c| c.syscall.starts_with("send")), "{:?}", a.processes[0]);
    // The send is not in the trace: nothing else in it moved data.
    assert_eq!(trace.syscalls().named("sendto").count() + trace.syscalls().named("sendmsg").count(), 0);
    let v = trace.check_network_gate(None::<&[&str]>).unwrap_err();
    assert_eq!(v.kind(), ViolationKind::Undecided, "{v}");
    assert!(v.to_string().contains("inside a call that moves data"), "{v}");
}
