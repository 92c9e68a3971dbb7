//! The network gates against a hostile program, for real: a UDP datagram
//! sent through io_uring (no socket syscall carries its address), a
//! `getaddrinfo` record forged in the preload ring, and DNS answers that
//! do or do not come from the resolver probity read before the run. Each
//! attack is checked to have really happened (the datagram arrived, the
//! connection was accepted, the forged record was read) before the gate's
//! verdict is.

use std::net::{TcpListener, UdpSocket};
use std::process::{Command, Output};
use std::time::Duration;

use probity::{Tracer, TracerKind, ViolationKind};

use crate::support::{fixture, require_tracing};

/// `probity run ARGS -- CMD...`, its output captured.
fn probity_run(args: &[&str], cmd: &[&str]) -> Output {
    require_tracing();
    let mut c = Command::new(env!("CARGO_BIN_EXE_probity"));
    c.arg("run").args(args).arg("--").args(cmd);
    c.output().expect("failed to run probity")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A UDP socket on a free loopback port, and the port.
fn udp_listener() -> (UdpSocket, String) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = s.local_addr().unwrap().port().to_string();
    (s, port)
}

/// The datagram `uring_udp` sends really arrived.
fn datagram_arrived(s: &UdpSocket) {
    let mut buf = [0u8; 64];
    let (n, _) = s.recv_from(&mut buf).expect("the datagram sent through io_uring did not arrive");
    assert_eq!(&buf[..n], b"probity-uring");
}

/// A UDP datagram sent with IORING_OP_SOCKET and IORING_OP_SENDMSG: no
/// socket syscall carries it, so `--deny-network` and `--allow-connect`
/// cannot pass; they fail as undecided, naming io_uring.
#[test]
fn a_datagram_sent_through_io_uring_fails_the_gates_closed() {
    let (listener, port) = udp_listener();
    let uring = fixture("uring_udp");

    let o = probity_run(&["-o", "/dev/null", "--deny-network"], &[&uring, &port]);
    datagram_arrived(&listener);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(121), "{err}");
    assert!(err.contains("network gate failed: expected no network access"), "{err}");
    assert!(err.contains("set up io_uring at +"), "{err}");
    assert!(err.contains("whose submissions probity does not decode"), "{err}");

    let o = probity_run(&["-o", "/dev/null", "--allow-connect", "10.0.0.1"], &[&uring, &port]);
    datagram_arrived(&listener);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(121), "{err}");
    assert!(err.contains("expected network access only to 10.0.0.1"), "{err}");
    assert!(err.contains("set up io_uring at +"), "{err}");

    // The library's checks, on the same attack.
    let mut cmd = Command::new(&uring);
    cmd.arg(&port);
    let trace = Tracer::new().with_tracers(&[TracerKind::Ebpf]).run(cmd).unwrap();
    datagram_arrived(&listener);
    assert_eq!(trace.outcome.status, probity::ExitStatus::Code(0));
    assert_eq!(trace.outcome.losses.lost_events(), 0);
    assert!(trace.syscalls().named("io_uring_setup").count() == 1, "{}", crate::support::dump(&trace));
    assert_eq!(trace.syscalls().named("socket").count(), 0, "no socket syscall: the ring made it");
    let v = trace.check_no_network().unwrap_err();
    assert_eq!(v.kind(), ViolationKind::Undecided, "{v}");
    let root = trace.outcome.root_pid;
    assert!(v.to_string().contains(&format!("note: process {root} set up io_uring at +")), "{v}");
    let v = trace.check_network_only_to(["10.0.0.1"]).unwrap_err();
    assert_eq!(v.kind(), ViolationKind::Undecided, "{v}");
    assert!(v.to_string().contains("it set up io_uring"), "{v}");
}

/// A record forged in the preload ring claims `allowed.example` resolved
/// to 127.0.0.1; the program then connects there. The claim is read and
/// shown, and allows nothing: `--allow-connect allowed.example` fails.
#[test]
fn a_lookup_forged_in_the_preload_ring_does_not_open_the_allow_list() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("t.jsonl");
    let forge = fixture("forge_dns");
    let args = [forge.as_str(), "allowed.example", "127.0.0.1", &port];

    let o = probity_run(
        &["-o", "/dev/null", "--json", json.to_str().unwrap(), "--allow-connect", "allowed.example"],
        &args,
    );
    let err = stderr(&o);
    // The attack happened: the connection was made, and the forged
    // record was read as a getaddrinfo of this process.
    listener.set_nonblocking(false).unwrap();
    listener.accept().expect("forge_dns did not connect");
    let text = std::fs::read_to_string(&json).unwrap();
    let forged: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l["kind"] == "libc" && l["function"] == "getaddrinfo")
        .collect();
    assert_eq!(forged.len(), 1, "the forged record was not read:\n{text}");
    assert_eq!(forged[0]["args"][0]["path"]["path"], "allowed.example");
    assert_eq!(forged[0]["args"][2]["strings"]["items"][0], format!("127.0.0.1:{port}"));
    // And the gate did not believe it.
    assert_eq!(o.status.code(), Some(121), "{err}");
    assert!(err.contains("expected network access only to allowed.example"), "{err}");
    assert!(err.contains("resolved as allowed.example, by the program's own account, which allows nothing"), "{err}");

    // The address itself is allowed, so the name was the only question.
    let o = probity_run(&["-o", "/dev/null", "--allow-connect", "127.0.0.1"], &args);
    listener.accept().expect("forge_dns did not connect");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// Without the eBPF tracer no connect is seen by the kernel: the checks
/// decide on the program's own records, which can make a gate fail,
/// never pass.
#[test]
fn without_the_kernel_tracer_the_gates_stay_closed() {
    require_tracing();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let mut cmd = Command::new(fixture("forge_dns"));
    cmd.args(["allowed.example", "127.0.0.1", &port]);
    let trace = Tracer::new().with_tracers(&[TracerKind::Preload]).run(cmd).unwrap();
    listener.accept().expect("forge_dns did not connect");
    assert_eq!(trace.outcome.status, probity::ExitStatus::Code(0));
    let v = trace.check_no_network().unwrap_err();
    assert_eq!(v.kind(), ViolationKind::Found, "{v}");
    assert!(v.to_string().contains("libc connect(4, {sa_family=AF_INET"), "{v}");
    // The forged lookup allows nothing; the address itself is allowed.
    let v = trace.check_network_only_to(["allowed.example"]).unwrap_err();
    assert_eq!(v.kind(), ViolationKind::Found, "{v}");
    assert!(v.to_string().contains("by the program's own account, which allows nothing"), "{v}");
    // Its lookup went through glibc's resolver, which the library cannot
    // see send: even the allowed address does not decide.
    let v = trace.check_network_only_to(["127.0.0.0/8"]).unwrap_err();
    assert_eq!(v.kind(), ViolationKind::NotCovered, "{v}");
    assert!(v.to_string().contains("looked a name up (getaddrinfo)"), "{v}");
    // The gates: the connect fails one, and the other does not pass on
    // the program's word that it went nowhere else.
    assert_eq!(trace.check_network_gate(None::<&[&str]>).unwrap_err().kind(), ViolationKind::Found);
    let v = trace.check_network_gate(Some(["127.0.0.0/8"])).unwrap_err();
    assert_eq!(v.kind(), ViolationKind::NotCovered, "{v}");
    assert!(v.to_string().contains("only the preload tracer ran"), "{v}");
}

/// Passes a UDP socket connected to 127.0.0.1:PORT to each of two
/// clients of the Unix socket at PATH (argv 1 and 2), with SCM_RIGHTS.
const FD_PASSER: &str = r#"
import os, socket, sys
path, port = sys.argv[1], int(sys.argv[2])
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.connect(("127.0.0.1", port))
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path + ".tmp")
srv.listen(2)
os.rename(path + ".tmp", path)
for _ in range(2):
    c, _ = srv.accept()
    socket.send_fds(c, [b"x"], [udp.fileno()])
    c.close()
"#;

/// A connected UDP socket received from a process outside the tree over
/// a Unix socket (SCM_RIGHTS), then written to: no socket, connect or
/// send syscall in the tree names the destination, so the gates cannot
/// pass.
#[test]
fn a_socket_received_from_outside_fails_the_gates_closed() {
    require_tracing();
    let (listener, port) = udp_listener();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pass.sock");
    let py = dir.path().join("pass.py");
    std::fs::write(&py, FD_PASSER).unwrap();
    let mut passer = Command::new("python3").arg(&py).arg(&path).arg(&port).spawn().unwrap();
    for _ in 0..400 {
        if path.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(path.exists(), "the descriptor passer did not start");
    let scm = fixture("scm_write");
    let path = path.to_str().unwrap();
    let arrived = |what: &str| {
        let mut buf = [0u8; 64];
        let (n, _) =
            listener.recv_from(&mut buf).unwrap_or_else(|e| panic!("{what}: the datagram did not arrive: {e}"));
        assert_eq!(&buf[..n], b"probity-scm");
    };
    for gate in [&["--deny-network"][..], &["--allow-connect", "10.0.0.1"][..]] {
        let mut args = vec!["-o", "/dev/null"];
        args.extend_from_slice(gate);
        let o = probity_run(&args, &[&scm, path]);
        arrived(gate[0]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(121), "{gate:?}: {err}");
        assert!(err.contains("it wrote to a descriptor the trace never saw created"), "{gate:?}: {err}");
        assert!(err.contains("(SCM_RIGHTS)"), "{err}");
    }
    assert!(passer.wait().unwrap().success());
}

/// A fake DNS resolver in Python: answers every A query with 127.0.0.1
/// and any other with no record, on 127.0.0.1:53, until killed. Prints
/// "ready" once bound.
const RESOLVER: &str = r#"
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
print("ready", flush=True)
while True:
    q, peer = s.recvfrom(512)
    end = 12
    while q[end] != 0:
        end += 1 + q[end]
    question = q[12:end + 5]
    qtype = struct.unpack(">H", q[end + 1:end + 3])[0]
    answers = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x7f\x00\x00\x01" if qtype == 1 else b""
    head = q[:2] + b"\x81\x80" + struct.pack(">HHHH", 1, 1 if answers else 0, 0, 0)
    s.sendto(head + question + answers, peer)
"#;

/// Runs `inner` with `sh` in a private mount and network namespace whose
/// loopback is up and whose /etc/resolv.conf names 127.0.0.1, with
/// `$RESOLVER` (a Python file), `$DIR` (a temporary directory) and
/// `$PROBITY`, `$SERVER`, `$CLIENT` set.
fn in_private_resolver_ns(inner: &str) -> Output {
    require_tracing();
    let dir = tempfile::tempdir().unwrap();
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.1\n").unwrap();
    let py = dir.path().join("resolver.py");
    std::fs::write(&py, RESOLVER).unwrap();
    let script = format!("mount --bind {} /etc/resolv.conf && ip link set lo up && {inner}", resolv.display());
    Command::new("unshare")
        .args(["-m", "-n", "--propagation", "private", "sh", "-c", &script])
        .env("RESOLVER", &py)
        .env("DIR", dir.path())
        .env("PROBITY", env!("CARGO_BIN_EXE_probity"))
        .env("SERVER", fixture("tcp_server"))
        .env("CLIENT", fixture("tcp_client"))
        .output()
        .unwrap()
}

/// A name the program looked up through the resolver probity read before
/// the run (running beside the traced tree, not in it) allows the
/// address of the answer the kernel saw arrive; the same lookup answered
/// by a resolver inside the traced tree allows nothing.
#[test]
fn a_dns_answer_counts_only_from_the_configured_resolver() {
    // The resolver is started outside the traced tree, and waited for.
    let o = in_private_resolver_ns(
        "python3 -u \"$RESOLVER\" > \"$DIR/ready\" & \
         for i in $(seq 400); do grep -q ready \"$DIR/ready\" && break; sleep 0.05; done; \
         \"$PROBITY\" run -s 512 -o /dev/null --allow-connect db.probity.test -- \
           sh -c '\"$SERVER\" 4 8080 1 | \"$CLIENT\" -w 4 db.probity.test 8080 10 1'; \
         echo \"exit=$?\"; kill $!",
    );
    let (out, err) = (String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(out.contains("exit=0"), "the trusted answer should allow db.probity.test:\n{out}\n{err}");

    // The same, with the resolver inside the traced tree: it bound port
    // 53, so it could have answered anything.
    let o = in_private_resolver_ns(
        "\"$PROBITY\" run -s 512 -o /dev/null --allow-connect db.probity.test -- \
           sh -c 'python3 -u \"$RESOLVER\" > \"$DIR/ready\" & \
             for i in $(seq 400); do grep -q ready \"$DIR/ready\" && break; sleep 0.05; done; \
             \"$SERVER\" 4 8080 1 | \"$CLIENT\" -w 4 db.probity.test 8080 10 1; kill $!'; \
         echo \"exit=$?\"",
    );
    let (out, err) = (String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(out.contains("exit=121"), "{out}\n{err}");
    assert!(err.contains("DNS answers were not believed: process"), "{err}");
    assert!(err.contains("bound port 53"), "{err}");
}
