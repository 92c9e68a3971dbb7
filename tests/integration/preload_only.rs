//! The preload tracer alone: the process tree, execs and network activity
//! come from the libc calls it recorded and the library's own starts,
//! checks that something happened decide on them, and checks that no
//! exec happened decide when the libc layer saw every way into a new
//! program (the exec family, `posix_spawn`, `system`, `popen`, `fork`,
//! `vfork`, `clone`, the `syscall()` wrapper), and refuse, saying why,
//! when it did not (a static program, an exec by the syscall instruction,
//! a program started without `LD_PRELOAD`). Network checks that nothing
//! happened decide likewise when the library covered every process and
//! none received a descriptor or set up io_uring; the CLI's gates still
//! refuse, never passing on the program's word.
//!
//! The preload tracer needs no privilege: these tests run anywhere.

use std::net::{TcpListener, UdpSocket};
use std::process::{Command, Stdio};

use probity::{Trace, Tracer, TracerKind, Violation, ViolationKind};

use crate::support::fixture;

/// Runs `cmd` under the preload tracer alone, with a small environment,
/// checking that nothing was lost.
fn preload_only(mut cmd: Command) -> Trace {
    cmd.env_clear().env("PATH", "/usr/bin:/bin").stdin(Stdio::null()).stdout(Stdio::null());
    let t = Tracer::new().with_tracers(&[TracerKind::Preload]).run(cmd).expect("traced");
    assert_eq!(t.outcome.tracers, [TracerKind::Preload]);
    assert_eq!(t.outcome.losses.lost_events(), 0, "{:?}", t.outcome.losses);
    t
}

fn python(script: &str) -> Trace {
    let mut c = Command::new("/usr/bin/python3");
    c.args(["-c", script]);
    preload_only(c)
}

fn sh(script: &str) -> Trace {
    let mut c = Command::new("/bin/sh");
    c.args(["-c", script]);
    preload_only(c)
}

fn raw_exec(how: &str, program: &str) -> Trace {
    let mut c = Command::new(fixture(probity_fixtures::RAW_EXEC));
    c.args([how, program, "x"]);
    let t = preload_only(c);
    assert_eq!(t.outcome.status, probity::ExitStatus::Code(0), "{how}");
    t
}

/// The refusal of a check that something did not happen, with the
/// preload tracer alone.
fn refused(r: Result<(), Violation>, why: &[&str]) -> String {
    let v = r.expect_err("a check that something did not happen must not pass here");
    let text = v.to_string();
    assert_eq!(v.kind(), ViolationKind::NotCovered, "{text}");
    assert!(text.contains("only the preload tracer ran"), "{text}");
    for w in why {
        assert!(text.contains(w), "no {w:?} in:\n{text}");
    }
    honest(&text);
    text
}

/// A decided failure: the exec was recorded, shown by `call`.
fn found(r: Result<(), Violation>, call: &str) {
    let v = r.expect_err("the exec was recorded");
    assert_eq!(v.kind(), ViolationKind::Found, "{v}");
    assert!(v.to_string().contains(call), "no {call:?} in:\n{v}");
    honest(&v.to_string());
}

/// No message may claim what the trace cannot show.
fn honest(text: &str) {
    for false_claim in ["never exec'd", "nothing was exec'd", "covered only by preload"] {
        assert!(!text.contains(false_claim), "{false_claim:?} in:\n{text}");
    }
}

/// The one process that ran `program`, with its parent.
fn ran<'t>(
    t: &'t Trace,
    procs: &'t std::collections::BTreeMap<u32, probity::Process>,
    program: &str,
) -> &'t probity::Process {
    let p: Vec<_> = procs.values().filter(|p| p.program() == Some(program.as_ref())).collect();
    assert_eq!(p.len(), 1, "{program} in {procs:#?}\n{:?}", t.outcome.libc_starts);
    p[0]
}

#[test]
fn a_shell_pipeline_builds_the_tree_from_forks_vforks_and_execs() {
    let t = sh("echo hi | cat; /bin/true");
    let root = t.outcome.root_pid;
    let procs = t.processes();
    assert_eq!(
        procs[&root].execs,
        [("/bin/sh".into(), vec!["/bin/sh".into(), "-c".into(), "echo hi | cat; /bin/true".into()])]
    );
    // dash forks both sides of the pipe and runs /bin/true in a vfork
    // child: three children, each placed.
    let children: Vec<_> = procs.values().filter(|p| p.parent == Some(root)).collect();
    assert_eq!(children.len(), 3, "{procs:#?}");
    let cat = ran(&t, &procs, "/usr/bin/cat");
    assert_eq!((cat.parent, cat.execs[0].1.as_slice()), (Some(root), ["cat".into()].as_slice()));
    let tru = ran(&t, &procs, "/bin/true");
    assert_eq!((tru.parent, tru.execs[0].1.as_slice()), (Some(root), ["/bin/true".into()].as_slice()));
    assert!(tru.tracers.contains(&TracerKind::Preload));

    t.assert_execs_at_least(["cat", "true", "sh"]);
    t.assert_execs_exactly(["sh", "cat", "true"]);
    t.assert_never_execs(["curl", "wget"]);
    found(t.check_never_execs(["cat"]), "libc execve(\"/usr/bin/cat\", [\"cat\"]");
    // The vfork child recorded its exec under its own pid.
    found(t.check_never_execs(["true"]), &format!("[{}] libc execve(\"/bin/true\", [\"/bin/true\"]", tru.pid));
    let v = t.check_execs_exactly(["cat", "true"]).unwrap_err();
    assert_eq!(v.kind(), ViolationKind::Found, "{v}");
    assert!(v.to_string().contains(&format!("the root process {root} ran /bin/sh (probity exec'd it)")), "{v}");
}

/// `sh -c 'curl ...; true'`: dash runs curl in a vfork child. That it ran
/// is found; without it, that it did not is shown.
#[test]
fn an_exec_chain_through_dash_decides_never_execs() {
    let t = sh("curl --version >/dev/null; true");
    let procs = t.processes();
    let curl = ran(&t, &procs, "/usr/bin/curl");
    assert_eq!(curl.parent, Some(t.outcome.root_pid), "{procs:#?}");
    found(t.check_never_execs(["curl"]), "libc execve(\"/usr/bin/curl\", [\"curl\", \"--version\"]");
    t.assert_never_execs(["wget"]);

    let t = sh("ls / >/dev/null; true");
    t.assert_never_execs(["curl", "wget"]);
    t.assert_execs_exactly(["sh", "ls"]);
}

/// `execl`, `execle` and `execlp` are recorded with their list as argv,
/// and so is an exec through the `syscall()` wrapper.
#[test]
fn execl_execle_execlp_and_the_syscall_wrapper_are_seen() {
    for (how, shown) in [
        ("execl", "libc execl(\"/bin/true\", [\"/bin/true\", \"x\"])"),
        ("execle", "libc execle(\"/bin/true\", [\"/bin/true\", \"x\"], 0x"),
        ("syscall", &format!("libc syscall({}, \"/bin/true\", [\"/bin/true\", \"x\"], 0x", libc::SYS_execve)),
    ] {
        let t = raw_exec(how, "/bin/true");
        let root = t.outcome.root_pid;
        assert_eq!(t.processes()[&root].program(), Some("/bin/true".as_ref()), "{how}");
        found(t.check_never_execs(["true"]), shown);
        t.assert_execs_exactly(["raw_exec", "true"]);
        t.assert_never_execs(["curl"]);
    }
    let t = raw_exec("execlp", "true");
    found(t.check_never_execs(["true"]), "libc execlp(\"true\", [\"true\", \"x\"])");
    t.assert_never_execs(["curl"]);
}

/// A C program's vfork child: recorded under its own pid, with its parent.
#[test]
fn a_vfork_child_is_recorded_under_its_own_pid() {
    let t = raw_exec("vfork", "/bin/true");
    let procs = t.processes();
    let child = ran(&t, &procs, "/bin/true");
    assert_eq!(child.parent, Some(t.outcome.root_pid), "{procs:#?}");
    assert_eq!(child.execs, [("/bin/true".into(), vec!["/bin/true".into(), "x".into()])]);
    found(t.check_never_execs(["true"]), &format!("[{}] libc execv(\"/bin/true\"", child.pid));
    t.assert_execs_exactly(["raw_exec", "true"]);
    t.assert_never_execs(["curl"]);
}

/// An exec by the syscall instruction itself passes no libc function: the
/// new program started with no recorded exec, and the check refuses.
#[test]
fn an_exec_by_the_syscall_instruction_is_refused() {
    let t = raw_exec("asm", "/bin/true");
    assert!(t.check_execs_at_least(["true"]).is_err(), "the libc layer cannot have seen it");
    let text = refused(
        t.check_never_execs(["true"]),
        &["started a new program at", "that no recorded call exec'd", "syscall instruction", "io_uring"],
    );
    assert!(text.contains(&format!("process {} started", t.outcome.root_pid)), "{text}");
    refused(t.check_execs_exactly(["raw_exec"]), &["that no recorded call exec'd"]);
    // A program that makes raw syscalls may reach the network by them.
    refused(t.check_no_network(), &["that no recorded call exec'd", "connect, sendto, sendmsg and sendmmsg"]);
}

/// Python's subprocess execs in a vfork child, now seen.
#[test]
fn python_subprocess_is_seen_and_decided() {
    let t = python("import subprocess; subprocess.run(['/bin/true'], check=True)");
    let procs = t.processes();
    let child = ran(&t, &procs, "/bin/true");
    assert_eq!(child.parent, Some(t.outcome.root_pid), "{procs:#?}");
    found(t.check_never_execs(["true"]), "/bin/true");
    t.assert_never_execs(["curl"]);
    t.assert_execs_exactly(["python3", "true"]);
}

/// `system` runs a shell whose pid no call gives: the library's parent
/// places it, and the shell's exec of `true` is seen.
#[test]
fn system_places_its_shell_and_decides() {
    let t = python("import os\nos.system('/bin/true; /bin/true x')");
    let procs = t.processes();
    let shell = ran(&t, &procs, "/bin/sh");
    assert_eq!(shell.parent, Some(t.outcome.root_pid), "{procs:#?}");
    t.assert_execs_at_least(["sh", "true"]);
    t.assert_never_execs(["curl"]);
}

#[test]
fn python_fork_execv_and_posix_spawn_make_children() {
    let t = python(concat!(
        "import os\n",
        "pid = os.fork()\n",
        "if pid == 0:\n",
        "    os.execv('/bin/true', ['true', 'forked'])\n",
        "os.waitpid(pid, 0)\n",
        "spawned = os.posix_spawn('/bin/echo', ['echo', 'spawned'], os.environ)\n",
        "os.waitpid(spawned, 0)\n",
    ));
    let root = t.outcome.root_pid;
    let procs = t.processes();
    let forked = ran(&t, &procs, "/bin/true");
    assert_eq!(forked.parent, Some(root), "{procs:#?}");
    assert_eq!(forked.execs[0].1, ["true", "forked"]);
    let spawned = ran(&t, &procs, "/bin/echo");
    assert_eq!(spawned.parent, Some(root), "{procs:#?}");
    assert_eq!(spawned.execs[0].1, ["echo", "spawned"]);
    t.assert_execs_at_least(["/bin/true", "echo"]);
    assert_eq!(t.check_never_execs(["echo"]).unwrap_err().kind(), ViolationKind::Found);
    t.assert_never_execs(["curl"]);
}

/// io_uring set up through the `syscall()` wrapper: its submissions are
/// not seen, so the exec check refuses, naming it.
#[test]
fn io_uring_set_up_through_the_wrapper_refuses() {
    let t = python(concat!(
        "import ctypes, os\n",
        "libc = ctypes.CDLL(None, use_errno=True)\n",
        "params = ctypes.create_string_buffer(120)\n",
        "fd = libc.syscall(425, 4, params)\n",
        "assert fd >= 0, ctypes.get_errno()\n",
        "os.close(fd)\n",
    ));
    assert_eq!(t.outcome.status, probity::ExitStatus::Code(0));
    let root = t.outcome.root_pid;
    for r in [t.check_never_execs(["curl"]), t.check_no_network()] {
        let text = refused(r, &["whose submissions the libc layer does not see"]);
        assert!(text.contains(&format!("process {root} set up io_uring at")), "{text}");
    }
}

/// A static program loads no library: the exec of it is refused with the
/// reason, and so is the program a static child starts.
#[test]
fn a_static_child_refuses_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.txt");
    let t = python(&format!(
        "import os\npid = os.fork()\nif pid == 0:\n    os.execv({:?}, ['static', {:?}, '0'])\nos.waitpid(pid, 0)\n",
        fixture(probity_fixtures::STATIC_KNOWN_IO),
        out.display().to_string(),
    ));
    assert!(out.exists(), "the static program ran");
    let procs = t.processes();
    let root = t.outcome.root_pid;
    let child = procs.values().find(|p| p.parent == Some(root)).expect("the forked child");
    assert!(child.program().is_some_and(|p| p.ends_with(probity_fixtures::STATIC_KNOWN_IO)), "{child:?}");
    assert!(child.tracers.is_empty(), "a static program is covered by no tracer: {child:?}");
    assert!(procs[&root].tracers.contains(&TracerKind::Preload));
    for r in [t.check_never_execs(["curl"]), t.check_network_only_to(["127.0.0.1"])] {
        let text = refused(r, &["statically linked (no dynamic loader)"]);
        assert!(text.contains(&format!("process {} exec'd ", child.pid)), "{text}");
    }
}

/// A program exec'd or spawned without `LD_PRELOAD` in its environment
/// escapes the library: refused, saying so.
#[test]
fn a_program_started_without_the_library_refuses() {
    let t = sh("env -i /bin/true");
    let text = refused(t.check_never_execs(["curl"]), &["LD_PRELOAD not in its environment"]);
    assert!(text.contains("exec'd /bin/true at"), "{text}");

    let t = python("import os\nos.waitpid(os.posix_spawn('/bin/echo', ['echo'], {}), 0)\n");
    let echo = ran(&t, &t.processes(), "/bin/echo").pid;
    let text = refused(t.check_execs_exactly(["python3", "echo"]), &["LD_PRELOAD not in its environment"]);
    assert!(text.contains(&format!("process {echo} exec'd /bin/echo at")), "{text}");
}

/// A TCP connect through libc is network activity, and a destination
/// the allow-list leaves out; one it allows is decided, as every
/// process was covered by the library. A gate still refuses.
#[test]
fn a_tcp_connect_is_found_and_an_allowed_one_decides() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let t = python(&format!(
        "import socket\ns = socket.create_connection(('127.0.0.1', {port}))\ns.sendall(b'x')\ns.close()\n"
    ));
    listener.accept().expect("the program connected");
    let v = t.check_no_network().unwrap_err();
    assert_eq!(v.kind(), ViolationKind::Found, "{v}");
    let text = v.to_string();
    assert!(text.contains("libc connect(") && text.contains(&format!("sin_port=htons({port})")), "{text}");
    let v = t.check_network_only_to(["10.0.0.0/8"]).unwrap_err();
    assert_eq!(v.kind(), ViolationKind::Found, "{v}");
    t.assert_network_only_to(["127.0.0.1"]);
    t.assert_network_only_to(["localhost"]);
    gate_refused(t.check_network_gate(Some(["127.0.0.1"])));
}

/// A UDP datagram sent with `sendto` is found with its destination; a
/// program that made no network call passes, and so does a dash chain
/// of programs that made none.
#[test]
fn a_udp_sendto_is_found_and_a_quiet_program_decides() {
    let (udp, port) = udp_listener();
    let t = python(&format!(
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.sendto(b'probity-udp', ('127.0.0.1', {port}))\n"
    ));
    arrived(&udp, b"probity-udp");
    let v = t.check_no_network().unwrap_err();
    assert_eq!(v.kind(), ViolationKind::Found, "{v}");
    let v = t.check_network_only_to(["192.0.2.0/24"]).unwrap_err();
    assert_eq!(v.kind(), ViolationKind::Found, "{v}");
    let text = v.to_string();
    assert!(text.contains("libc sendto(") && text.contains(&format!("sin_port=htons({port})")), "{text}");
    t.assert_network_only_to(["127.0.0.1"]);

    python("print('quiet')").assert_no_network();
    let t = sh("/usr/bin/python3 -c pass; /bin/true | /bin/cat");
    assert!(t.processes().len() >= 3, "{:?}", t.processes());
    t.assert_no_network();
    t.assert_network_only_to(["192.0.2.1"]);
    gate_refused(t.check_network_gate(None::<&[&str]>));
}

/// A name lookup sends DNS queries through glibc's own calls, which the
/// library cannot hook: "no network" refuses, naming the lookup.
#[test]
fn a_name_lookup_refuses_the_network_checks() {
    let t = python("import socket\nsocket.getaddrinfo('localhost', 80)\n");
    assert!(t.events().kind("libc").any(|e| e.as_libc().is_some_and(|c| c.function == "getaddrinfo")));
    refused(t.check_no_network(), &["looked a name up (getaddrinfo)", "glibc's resolver"]);
    refused(t.check_network_only_to(["127.0.0.1"]), &["looked a name up (getaddrinfo)"]);
}

/// curl started by dash: its connect is found, in the child; allowed,
/// the chain is decided.
#[test]
fn a_curl_in_a_dash_chain_is_found_in_its_process() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().expect("curl connected");
        let mut buf = [0u8; 1024];
        let _ = std::io::Read::read(&mut c, &mut buf);
        std::io::Write::write_all(&mut c, b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok").unwrap();
    });
    let t = sh(&format!("/bin/true && curl -s -o /dev/null http://127.0.0.1:{port}/ && /bin/true"));
    server.join().unwrap();
    assert_eq!(t.outcome.status, probity::ExitStatus::Code(0));
    let curl = ran(&t, &t.processes(), "/usr/bin/curl").pid;
    let v = t.check_no_network().unwrap_err();
    assert_eq!(v.kind(), ViolationKind::Found, "{v}");
    assert!(v.to_string().contains(&format!("[{curl}] libc connect(")), "{v}");
    assert_eq!(t.check_network_only_to(["10.0.0.0/8"]).unwrap_err().kind(), ViolationKind::Found);
    t.assert_network_only_to(["127.0.0.0/8"]);
}

/// `sendmsg` and `sendmmsg` name their destination in the message
/// header; through `syscall()` too. A `sendmsg` naming none goes where
/// its socket was connected; one on a socket pair is no network.
#[test]
fn sendmsg_and_sendmmsg_are_found_with_their_destination() {
    let (udp, port) = udp_listener();
    for how in ["udp", "mmsg", "syscall", "connected"] {
        let mut c = Command::new(fixture(probity_fixtures::MSG_SEND));
        c.args([how, "127.0.0.1", &port.to_string()]);
        let t = preload_only(c);
        assert_eq!(t.outcome.status, probity::ExitStatus::Code(0), "{how}");
        arrived(&udp, b"probity-msg");
        let v = t.check_network_only_to(["192.0.2.0/24"]).unwrap_err();
        assert_eq!(v.kind(), ViolationKind::Found, "{how}: {v}");
        let call = match how {
            "udp" => "libc sendmsg(".to_owned(),
            "mmsg" => "libc sendmmsg(".to_owned(),
            "syscall" => format!("libc syscall({}, ", libc::SYS_sendmsg),
            _ => "libc connect(".to_owned(),
        };
        let text = v.to_string();
        assert!(text.contains(&call) && text.contains(&format!("sin_port=htons({port})")), "{how}: {text}");
        t.assert_network_only_to(["127.0.0.1"]);
    }
    let mut c = Command::new(fixture(probity_fixtures::MSG_SEND));
    c.arg("pair");
    let t = preload_only(c);
    assert_eq!(t.outcome.status, probity::ExitStatus::Code(0));
    assert!(t.events.iter().any(|e| e.as_libc().is_some_and(|c| c.function == "sendmsg")), "the send was recorded");
    t.assert_no_network();
}

/// Passes a UDP socket connected to 127.0.0.1:PORT to one client of the
/// Unix socket at PATH (argv 1 and 2), with SCM_RIGHTS.
const FD_PASSER: &str = r#"
import os, socket, sys
path, port = sys.argv[1], int(sys.argv[2])
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.connect(("127.0.0.1", port))
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path + ".tmp")
srv.listen(1)
os.rename(path + ".tmp", path)
c, _ = srv.accept()
socket.send_fds(c, [b"x"], [udp.fileno()])
c.close()
"#;

/// A process that received a descriptor over a Unix socket (SCM_RIGHTS)
/// can reach the network through it with calls the libc layer does not
/// record: the network checks refuse, naming it.
#[test]
fn a_received_descriptor_refuses() {
    let (udp, port) = udp_listener();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pass.sock");
    let py = dir.path().join("pass.py");
    std::fs::write(&py, FD_PASSER).unwrap();
    let mut passer = Command::new("/usr/bin/python3").arg(&py).arg(&path).arg(port.to_string()).spawn().unwrap();
    for _ in 0..400 {
        if path.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert!(path.exists(), "the descriptor passer did not start");
    let mut c = Command::new(fixture(probity_fixtures::SCM_WRITE));
    c.arg(&path);
    let t = preload_only(c);
    assert!(passer.wait().unwrap().success());
    assert_eq!(t.outcome.status, probity::ExitStatus::Code(0));
    arrived(&udp, b"probity-scm");
    let root = t.outcome.root_pid;
    for r in [t.check_no_network(), t.check_network_only_to(["10.0.0.0/8"])] {
        let text = refused(r, &["(SCM_RIGHTS)", "recvmsg and recvmmsg", "syscall instruction"]);
        assert!(text.contains(&format!("process {root} received 1 descriptor over a socket at")), "{text}");
    }
}

/// A descriptor taken from another process with `pidfd_getfd` (the
/// libc function, or through `syscall()`) refuses likewise.
#[test]
fn a_descriptor_taken_with_pidfd_getfd_refuses() {
    for how in ["libc.pidfd_getfd(pidfd, 1, 0)", &format!("libc.syscall({}, pidfd, 1, 0)", libc::SYS_pidfd_getfd)] {
        let t = python(&format!(
            "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\npidfd = os.pidfd_open(os.getpid())\nfd = {how}\nassert fd >= 0, ctypes.get_errno()\n"
        ));
        assert_eq!(t.outcome.status, probity::ExitStatus::Code(0), "{how}");
        let root = t.outcome.root_pid;
        let text = refused(t.check_no_network(), &["pidfd_getfd", "syscall instruction"]);
        assert!(
            text.contains(&format!("process {root} took a descriptor from another process with pidfd_getfd at")),
            "{text}"
        );
    }
}

/// A bound UDP socket on the loopback, and its port.
fn udp_listener() -> (UdpSocket, u16) {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let port = udp.local_addr().unwrap().port();
    (udp, port)
}

/// The datagram `want` arrived.
fn arrived(udp: &UdpSocket, want: &[u8]) {
    let mut buf = [0u8; 64];
    let (n, _) = udp.recv_from(&mut buf).expect("the datagram arrived");
    assert_eq!(&buf[..n], want);
}

/// A gate's refusal on the program's own records.
fn gate_refused(r: Result<(), Violation>) {
    let v = r.expect_err("a gate never passes on libc records");
    assert_eq!(v.kind(), ViolationKind::NotCovered, "{v}");
    assert!(v.to_string().contains("no gate (probity run --deny-network, --allow-connect) passes on them"), "{v}");
}

/// The CLI's network gates fail closed without the kernel tracer, even
/// for a program that made no network call at all, and say why.
#[test]
fn the_cli_gates_never_pass_on_libc_records() {
    for gate in [&["--deny-network"][..], &["--allow-connect", "127.0.0.1"][..]] {
        let o = Command::new(env!("CARGO_BIN_EXE_probity"))
            .args(["run", "--tracers", "preload", "-o", "/dev/null"])
            .args(gate)
            .args(["--", "/bin/true"])
            .output()
            .expect("probity runs");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(121), "{gate:?}: {err}");
        assert!(err.contains("network gate failed"), "{err}");
        assert!(err.contains("only the preload tracer ran"), "{err}");
        assert!(err.contains("no gate (probity run --deny-network, --allow-connect) passes on them"), "{err}");
    }
}
