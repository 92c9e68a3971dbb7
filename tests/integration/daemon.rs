//! `probity daemon`: unprivileged users trace through it, and nothing a
//! client sends lets it see or touch more than its own children. Each
//! test starts a real daemon (as root, as CI runs) on a socket of its own
//! and acts as other users through `setpriv`; the attacks are really
//! attempted, over the real socket.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use probity::{EventKind, Trace};

use crate::support::{probity_for_nobody, require_tracing};

/// The group the test daemons serve.
const GROUP: &str = "probity-test";

/// The group's id, creating it once.
fn group_id() -> u32 {
    static GID: OnceLock<u32> = OnceLock::new();
    *GID.get_or_init(|| {
        let lookup = || nix::unistd::Group::from_name(GROUP).unwrap().map(|g| g.gid.as_raw());
        if let Some(gid) = lookup() {
            return gid;
        }
        // Another test process may be creating it at the same time.
        let _ = Command::new("groupadd").args(["--system", GROUP]).status();
        lookup().expect("groupadd made the test group")
    })
}

/// A daemon on a socket of its own, stopped when dropped.
struct TestDaemon {
    child: Option<Child>,
    dir: tempfile::TempDir,
    socket: PathBuf,
}

impl TestDaemon {
    fn start(extra: &[&str]) -> TestDaemon {
        require_tracing();
        group_id();
        let dir = tempfile::tempdir().unwrap();
        // Others must reach the socket inside it.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let socket = dir.path().join("probity.sock");
        let log = std::fs::File::create(dir.path().join("daemon.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_probity"))
            .args(["daemon", "--socket"])
            .arg(&socket)
            .args(["--group", GROUP, "--log-level", "debug"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let d = TestDaemon { child: Some(child), dir, socket };
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&d.socket).is_err() {
            assert!(Instant::now() < deadline, "the daemon did not start: {}", d.log());
            std::thread::sleep(Duration::from_millis(10));
        }
        d
    }

    /// Waits until the daemon's log says `what` (a session opened, a
    /// process added, a session closed).
    fn wait_for_log(&self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.log().contains(what) {
            assert!(Instant::now() < deadline, "the daemon's log never said {what:?}: {}", self.log());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// Waits for the daemon's exit after a signal.
    fn wait(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < deadline, "the daemon did not stop: {}", self.log());
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), nix::sys::signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(15);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A directory any user may write traces into.
fn open_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    d
}

/// `probity ARGS` as user `uid`, in the daemon's group or not.
fn as_user(uid: u32, in_group: bool, daemon: &TestDaemon, probity: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={uid}")).arg(format!("--regid={uid}"));
    if in_group {
        c.arg(format!("--groups={}", group_id()));
    } else {
        c.arg("--clear-groups");
    }
    c.arg("env").arg(format!("PROBITY_DAEMON={}", daemon.socket.display())).arg(probity).args(args);
    c.current_dir("/tmp");
    c
}

/// `probity run -- true` as user `uid` in the daemon's group succeeds:
/// the daemon serves a whole session.
fn traces_true_as(uid: u32, d: &TestDaemon, probity: &Path) {
    let o = as_user(uid, true, d, probity, &["run", "--tracers", "ebpf", "-o", "/dev/null", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stderr(&o), d.log());
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_user_in_the_group_traces_without_root() {
    let d = TestDaemon::start(&[]);
    let (_bin_dir, probity) = probity_for_nobody();
    let out = open_dir();
    let json = out.path().join("t.jsonl");
    let o = as_user(65534, true, &d, &probity, &["run", "--tracers", "ebpf", "--json"])
        .arg(&json)
        .args(["-o", "/dev/null", "--", "/bin/sh", "-c", "cat /etc/hostname > /dev/null; exit 3"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}\n{}", stderr(&o), d.log());
    let trace = Trace::load(&json).unwrap();
    assert_eq!(trace.outcome.daemon.as_deref(), Some(d.socket.to_str().unwrap()));
    assert_eq!(trace.outcome.losses.lost_events(), 0);
    let procs = trace.processes();
    let execs: Vec<String> =
        procs.values().flat_map(|p| p.execs.iter().map(|(f, _)| f.to_string_lossy().into_owned())).collect();
    assert_eq!(execs, ["/bin/sh", "/usr/bin/cat"], "{}", crate::support::dump(&trace));
    let cat = procs.values().find(|p| p.execs.iter().any(|(f, _)| f == "/usr/bin/cat")).unwrap();
    assert_eq!(cat.parent, Some(trace.outcome.root_pid));
    assert!(
        trace
            .syscalls()
            .any(|(e, s)| e.pid == cat.pid && s.name == "openat" && s.path() == Some(Path::new("/etc/hostname"))),
        "{}",
        crate::support::dump(&trace)
    );
    // Every event is the tree's: nothing of the daemon or of other users.
    let tree: Vec<u32> = procs.keys().copied().collect();
    assert!(trace.events.iter().all(|e| tree.contains(&e.pid)), "{}", crate::support::dump(&trace));
    assert!(d.log().contains("opened for pid"), "{}", d.log());
}

#[test]
fn a_user_outside_the_group_cannot_connect() {
    let d = TestDaemon::start(&[]);
    let (_bin_dir, probity) = probity_for_nobody();
    let o = as_user(65534, false, &d, &probity, &["run", "--tracers", "ebpf", "--", "true"]).output().unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("failed to reach the probity daemon at") && e.contains("Permission denied"), "{e}");
}

#[test]
fn a_setuid_program_leaves_a_users_daemon_session() {
    let su = Path::new("/usr/bin/su");
    if !su.exists() {
        panic!("this test needs the setuid program /usr/bin/su (Debian's util-linux)");
    }
    let d = TestDaemon::start(&[]);
    let (_bin_dir, probity) = probity_for_nobody();
    let out = open_dir();
    let json = out.path().join("t.jsonl");
    let o = as_user(65534, true, &d, &probity, &["run", "--tracers", "ebpf", "--json"])
        .arg(&json)
        .args(["-o", "/dev/null", "--", "/bin/sh", "-c", "/usr/bin/su --help > /dev/null; true"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let trace = Trace::load(&json).unwrap();
    let u = trace.outcome.uncovered.iter().find(|u| u.program == "/usr/bin/su").expect("su is listed uncovered");
    assert!(
        u.reason.starts_with("setuid (runs as uid 0): more privilege than probity's caller (uid 65534"),
        "{}",
        u.reason
    );
    // Nothing su did after its exec reached the user.
    let exec_ts =
        trace.events.iter().find(|e| e.pid == u.pid && matches!(&e.kind, EventKind::Exec(_))).map(|e| e.ts_ns);
    let after: Vec<String> = trace
        .events
        .iter()
        .filter(|e| e.pid == u.pid && exec_ts.is_none_or(|t| e.ts_ns > t))
        .map(probity::text::event_line)
        .collect();
    assert!(after.is_empty(), "su's events reached an unprivileged user: {after:#?}");
}

/// A raw connection to the daemon, speaking its protocol by hand.
struct Raw(UnixStream);

impl Raw {
    fn connect(d: &TestDaemon) -> Raw {
        let s = UnixStream::connect(&d.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Raw(s)
    }

    fn send_bytes(&mut self, b: &[u8]) {
        let _ = self.0.write_all(b);
    }

    fn send(&mut self, json: &str) {
        let mut f = ((json.len() + 1) as u32).to_le_bytes().to_vec();
        f.push(1);
        f.extend_from_slice(json.as_bytes());
        self.send_bytes(&f);
    }

    /// The next control message, skipping records; `None` at the end.
    fn reply(&mut self) -> Option<serde_json::Value> {
        loop {
            let mut len = [0u8; 4];
            self.0.read_exact(&mut len).ok()?;
            let mut body = vec![0u8; u32::from_le_bytes(len) as usize];
            self.0.read_exact(&mut body).ok()?;
            if body[0] == 1 {
                return Some(serde_json::from_slice(&body[1..]).unwrap());
            }
        }
    }

    /// Opens a session: its id and token.
    fn open(d: &TestDaemon) -> (Raw, u64, String) {
        let mut r = Raw::connect(d);
        r.send(r#"{"op":"hello","version":1}"#);
        assert_eq!(r.reply().unwrap()["reply"], "hello");
        r.send(r#"{"op":"open","summary":false,"string_limit":64}"#);
        let opened = r.reply().unwrap();
        assert_eq!(opened["reply"], "opened", "{opened}");
        let id = opened["session"].as_u64().unwrap();
        let token = opened["token"].as_str().unwrap().to_owned();
        (r, id, token)
    }

    fn ask(&mut self, json: &str) -> serde_json::Value {
        self.send(json);
        self.reply().expect("the daemon answers")
    }
}

/// A python3 process (a child of `parent_cmd`'s shell or of this test)
/// that registers itself with `session` and `token`, then prints the
/// daemon's answer and sleeps until killed.
const REGISTER_PY: &str = r#"
import json, socket, struct, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
m = json.dumps({"op": "register", "version": 1, "session": int(sys.argv[2]), "token": sys.argv[3]}).encode()
s.sendall(struct.pack("<I", len(m) + 1) + b"\x01" + m)
n = struct.unpack("<I", s.recv(4))[0]
print(s.recv(n)[1:].decode(), flush=True)
time.sleep(30)
"#;

fn register_reply(child: &mut Child) -> String {
    let mut out = child.stdout.take().unwrap();
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while out.read(&mut b).unwrap_or(0) == 1 && b[0] != b'\n' {
        line.push(b[0]);
    }
    String::from_utf8(line).unwrap()
}

#[test]
fn no_message_adds_a_process_that_is_not_the_clients_own_child() {
    let d = TestDaemon::start(&[]);
    let (mut client, id, token) = Raw::open(&d);
    let sock = d.socket.to_str().unwrap();
    let py = |args: &[&str]| {
        Command::new("python3").arg("-c").arg(REGISTER_PY).args(args).stdout(Stdio::piped()).spawn().unwrap()
    };
    // A wrong token, from this client's own child.
    let mut wrong = py(&[sock, &id.to_string(), "00000000000000000000000000000000"]);
    assert_eq!(register_reply(&mut wrong), r#"{"reply":"error","message":"wrong token"}"#);
    // The right token, from a grandchild: not the client's child.
    let mut grandchild = Command::new("sh")
        .arg("-c")
        .arg(r#"python3 -c "$0" "$@"; true"#)
        .arg(REGISTER_PY)
        .args([sock, &id.to_string(), &token])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let answer = register_reply(&mut grandchild);
    assert!(answer.contains(r#""reply":"error""#) && answer.contains("not the session's client"), "{answer}");
    // The right token, from this client's child running as another user.
    let mut other_user = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534"])
        .arg(format!("--groups={}", group_id()))
        .args(["/usr/bin/python3", "-c", REGISTER_PY])
        .args([sock, &id.to_string(), &token])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let answer = register_reply(&mut other_user);
    assert!(answer.contains(r#""reply":"error""#), "a child running as another user joined: {answer}");
    // Join by number: init, this process (the client, not its own
    // child), the other user's child.
    for tid in [1, std::process::id(), other_user.id()] {
        let r = client.ask(&format!(r#"{{"op":"join","tid":{tid}}}"#));
        assert_eq!(r["reply"], "error", "joined {tid}: {r}");
    }
    // A session id that is not the caller's, with its token: a second
    // client cannot reach the first one's session.
    let (mut second, _, _) = Raw::open(&d);
    let r = second.ask(&format!(r#"{{"op":"register","version":1,"session":{id},"token":"{token}"}}"#));
    assert_eq!(r["reply"], "error", "{r}");
    // Nothing joined; then the one process that may, does.
    assert_eq!(client.ask(r#"{"op":"tasks"}"#)["tids"], serde_json::json!([]));
    let mut own = py(&[sock, &id.to_string(), &token]);
    assert_eq!(register_reply(&mut own), r#"{"reply":"registered"}"#);
    assert_eq!(client.ask(r#"{"op":"tasks"}"#)["tids"], serde_json::json!([own.id()]));
    for mut c in [wrong, grandchild, other_user, own] {
        let _ = c.kill();
        let _ = c.wait();
    }
    assert!(d.log().contains("refused to add pid"), "{}", d.log());
}

#[test]
fn bad_messages_get_an_error_and_the_daemon_serves_on() {
    let d = TestDaemon::start(&[]);
    // Not a frame at all: "GET /" reads as a length far over the limit.
    let mut r = Raw::connect(&d);
    r.send_bytes(b"GET / HTTP/1.0\r\n\r\n");
    let e = r.reply().unwrap();
    assert!(e["message"].as_str().unwrap().contains("over the limit"), "{e}");
    // The largest length there is.
    let mut r = Raw::connect(&d);
    r.send_bytes(&[0xff, 0xff, 0xff, 0xff, 1]);
    assert_eq!(r.reply().unwrap()["reply"], "error");
    // Truncated: a frame announcing 100 bytes, then the end.
    let mut r = Raw::connect(&d);
    r.send_bytes(&[100, 0, 0, 0, 1, b'{']);
    r.0.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(r.reply().unwrap()["reply"], "error");
    // An unknown kind, and a message that is not the protocol's.
    let mut r = Raw::connect(&d);
    r.send_bytes(&[1, 0, 0, 0, 7]);
    assert_eq!(r.reply().unwrap()["reply"], "error");
    let mut r = Raw::connect(&d);
    r.send(r#"{"op":"open","summary":false,"string_limit":64}"#);
    assert_eq!(r.reply().unwrap()["message"], "say hello first");
    // In a session, a malformed request is answered and the session goes on.
    let (mut s, _, _) = Raw::open(&d);
    let e = s.ask(r#"{"op":"join","tid":"init"}"#);
    assert!(e["message"].as_str().unwrap().starts_with("malformed request"), "{e}");
    assert_eq!(s.ask(r#"{"op":"tasks"}"#)["reply"], "tasks");
    let e = s.ask(r#"{"op":"open","summary":false,"string_limit":64}"#);
    assert_eq!(e["reply"], "error");
    // An out-of-range setting is refused with the reason.
    let mut r = Raw::connect(&d);
    r.send(r#"{"op":"hello","version":1}"#);
    r.reply().unwrap();
    r.send(r#"{"op":"open","summary":false,"string_limit":1073741824}"#);
    assert!(r.reply().unwrap()["message"].as_str().unwrap().contains("out of range"));
    // Another version is named.
    let mut r = Raw::connect(&d);
    r.send(r#"{"op":"hello","version":99}"#);
    assert!(r.reply().unwrap()["message"].as_str().unwrap().contains("protocol version 99"));
    // A connection that says hello and then nothing is closed: it holds
    // no thread for ever.
    let mut idle = Raw::connect(&d);
    idle.send(r#"{"op":"hello","version":1}"#);
    assert_eq!(idle.reply().unwrap()["reply"], "hello");
    let waited = Instant::now();
    // At most an error, then the end.
    if let Some(r) = idle.reply() {
        assert_eq!(r["reply"], "error", "{r}");
    }
    assert!(idle.reply().is_none(), "the idle connection stayed open");
    assert!(waited.elapsed() < Duration::from_secs(19), "the idle connection was never closed");
    // And the daemon still serves a whole session.
    let (_bin_dir, probity) = probity_for_nobody();
    traces_true_as(65534, &d, &probity);
}

#[test]
fn a_client_killed_mid_session_frees_what_it_held() {
    let d = TestDaemon::start(&["--sessions-per-user", "1"]);
    let (_bin_dir, probity) = probity_for_nobody();
    let mut first = as_user(65534, true, &d, &probity, &["run", "--tracers", "ebpf", "--", "sleep", "30"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    d.wait_for_log("opened for pid");
    // setpriv execs probity: the child is the client itself.
    first.kill().unwrap();
    first.wait().unwrap();
    d.wait_for_log("closed");
    // With one session allowed, the user can open a new one.
    traces_true_as(65534, &d, &probity);
}

#[test]
fn the_per_user_limit_is_a_clear_error_and_other_users_go_on() {
    let d = TestDaemon::start(&["--sessions-per-user", "1"]);
    let (_bin_dir, probity) = probity_for_nobody();
    let mut first =
        as_user(65534, true, &d, &probity, &["run", "--tracers", "ebpf", "-o", "/dev/null", "--", "sleep", "5"])
            .spawn()
            .unwrap();
    d.wait_for_log("opened for pid");
    let o = as_user(65534, true, &d, &probity, &["run", "--tracers", "ebpf", "--", "true"]).output().unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("user 65534 already has 1 sessions open, the daemon's limit per user"),
        "{}",
        stderr(&o)
    );
    traces_true_as(65533, &d, &probity);
    let _ = first.kill();
    let _ = first.wait();
}

#[test]
fn a_killed_daemon_is_an_error_not_a_trace() {
    let mut d = TestDaemon::start(&[]);
    let (_bin_dir, probity) = probity_for_nobody();
    let run = as_user(65534, true, &d, &probity, &["run", "--tracers", "ebpf", "--", "sh", "-c", "sleep 1; echo done"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    d.wait_for_log(": added pid");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(d.pid()), nix::sys::signal::SIGKILL).unwrap();
    d.wait();
    let o = run.wait_with_output().unwrap();
    // The command ran to its end, and probity says the trace is not whole.
    assert_eq!(String::from_utf8_lossy(&o.stdout), "done\n");
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stderr(&o).contains("the trace is incomplete: the daemon closed the connection"), "{}", stderr(&o));
}

#[test]
fn a_stopping_daemon_tells_its_sessions_and_exits() {
    let mut d = TestDaemon::start(&["--grace", "0"]);
    let (_bin_dir, probity) = probity_for_nobody();
    let run = as_user(65534, true, &d, &probity, &["run", "--tracers", "ebpf", "--", "sleep", "2"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    d.wait_for_log(": added pid");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(d.pid()), nix::sys::signal::SIGTERM).unwrap();
    assert!(d.wait().success(), "{}", d.log());
    let o = run.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stderr(&o).contains("the daemon ended the session: the probity daemon is stopping"), "{}", stderr(&o));
    assert!(!d.socket.exists(), "the daemon left its socket behind");
}

#[test]
fn a_hundred_sessions_from_four_users_each_get_their_own_events() {
    let d = TestDaemon::start(&[]);
    let (_bin_dir, probity) = probity_for_nobody();
    let out = open_dir();
    let runs: Vec<(PathBuf, Child)> = (0..100)
        .map(|i| {
            let uid = 65534 - (i % 4);
            let json = out.path().join(format!("{i}.jsonl"));
            let child = as_user(uid, true, &d, &probity, &["run", "--tracers", "ebpf", "-o", "/dev/null", "--json"])
                .arg(&json)
                .args(["--", "/bin/sh", "-c", &format!("exit {}", i % 7)])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (json, child)
        })
        .collect();
    for (i, (json, child)) in runs.into_iter().enumerate() {
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(i as i32 % 7), "run {i}: {}", stderr(&o));
        let t = Trace::load(&json).unwrap();
        assert_eq!(t.outcome.losses.lost_events(), 0, "run {i}");
        // One process, its own: no other session's events.
        assert!(t.events.iter().all(|e| e.pid == t.outcome.root_pid), "run {i}: {}", crate::support::dump(&t));
        let procs = t.processes();
        assert_eq!(procs.len(), 1, "run {i}: {}", crate::support::dump(&t));
        assert_eq!(procs[&t.outcome.root_pid].execs.len(), 1, "run {i}: {}", crate::support::dump(&t));
    }
}

/// A python3 child of this test that registers itself, then execs
/// `program args`: a session's tree started by hand.
const REGISTER_THEN_EXEC_PY: &str = r#"
import json, os, socket, struct, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
m = json.dumps({"op": "register", "version": 1, "session": int(sys.argv[2]), "token": sys.argv[3]}).encode()
s.sendall(struct.pack("<I", len(m) + 1) + b"\x01" + m)
n = struct.unpack("<I", s.recv(4))[0]
assert s.recv(n)[1:] == b'{"reply":"registered"}'
s.close()
os.execv(sys.argv[4], sys.argv[4:])
"#;

#[test]
fn a_slow_client_loses_its_own_events_and_no_one_elses() {
    // A queue that holds all of the other session's records (100,000
    // syscalls of about 100 bytes), and a tenth of the slow one's.
    let d = TestDaemon::start(&["--queue-mib", "16"]);
    let loop_bin = probity_fixtures::path("getppid_loop");
    // A client that opens a session and then reads nothing while its
    // child makes a million syscalls: its queue fills, and its writer
    // blocks on the full socket.
    let (mut slow, id, token) = Raw::open(&d);
    let mut child = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(REGISTER_THEN_EXEC_PY)
        .args([d.socket.to_str().unwrap(), &id.to_string(), &token])
        .arg(&loop_bin)
        .arg("1000000")
        .spawn()
        .unwrap();
    assert!(child.wait().unwrap().success());
    // Once the daemon has taken the loop's records from the kernel's ring
    // (shared by all sessions: a flush on another session waits for that),
    let (mut probe, _, _) = Raw::open(&d);
    assert_eq!(probe.ask(r#"{"op":"flush"}"#)["reply"], "flushed");
    // and while the slow client still reads nothing, another user's
    // session traces a loop, whole: one blocked client holds up no one.
    let (_bin_dir, probity) = probity_for_nobody();
    let out = open_dir();
    let json = out.path().join("t.jsonl");
    let o = as_user(65534, true, &d, &probity, &["run", "--tracers", "ebpf", "-o", "/dev/null", "--json"])
        .arg(&json)
        .arg("--")
        .arg(&loop_bin)
        .arg("100000")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let t = Trace::load(&json).unwrap();
    assert_eq!(t.outcome.losses.lost_events(), 0, "{:?}", t.outcome.losses);
    assert_eq!(t.syscalls().filter(|(_, s)| s.name == "getppid").count(), 100_000);
    // The slow client's own losses are counted, in its session.
    let losses = slow.ask(r#"{"op":"losses"}"#);
    assert_eq!(losses["reply"], "losses", "{losses}");
    assert!(losses["queue_full"].as_u64().unwrap() > 0, "{losses}");
}

#[test]
fn a_detached_daemon_writes_its_pid_and_reloads_on_sighup() {
    require_tracing();
    group_id();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (socket, pidfile, log, limits) =
        (dir.path().join("d.sock"), dir.path().join("d.pid"), dir.path().join("d.log"), dir.path().join("l.toml"));
    std::fs::write(&limits, "sessions_per_user = 5\n").unwrap();
    // The parent returns once the daemon listens, with 0.
    let o = Command::new(env!("CARGO_BIN_EXE_probity"))
        .args(["daemon", "--daemon", "--group", GROUP, "--socket"])
        .arg(&socket)
        .arg("--pidfile")
        .arg(&pidfile)
        .arg("--log")
        .arg(&log)
        .arg("--limits")
        .arg(&limits)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(UnixStream::connect(&socket).is_ok());
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    let pid = nix::unistd::Pid::from_raw(pid);
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(read_log().contains("5 sessions per user"), "{}", read_log());
    // SIGHUP: the limits file is read again, the log reopened.
    std::fs::write(&limits, "sessions_per_user = 2\nqueue_mib = 3\n").unwrap();
    std::fs::rename(&log, dir.path().join("d.log.1")).unwrap();
    nix::sys::signal::kill(pid, nix::sys::signal::SIGHUP).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !read_log().contains("reloaded: 2 sessions per user, 3 MiB queue") {
        assert!(Instant::now() < deadline, "no reload in the reopened log: {}", read_log());
        std::thread::sleep(Duration::from_millis(20));
    }
    // A bad limits file leaves the limits as they were, and says so.
    std::fs::write(&limits, "sessions = 1\n").unwrap();
    nix::sys::signal::kill(pid, nix::sys::signal::SIGHUP).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !read_log().contains("reload failed, limits unchanged") {
        assert!(Instant::now() < deadline, "{}", read_log());
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGTERM: it stops, removing its socket and pid file.
    nix::sys::signal::kill(pid, nix::sys::signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while nix::sys::signal::kill(pid, None).is_ok() {
        assert!(Instant::now() < deadline, "the daemon did not stop: {}", read_log());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!socket.exists() && !pidfile.exists());
    assert!(read_log().ends_with("INFO stopped\n"), "{}", read_log());
}

#[test]
fn a_daemon_that_cannot_start_says_why_and_fails() {
    require_tracing();
    group_id();
    let o = Command::new(env!("CARGO_BIN_EXE_probity"))
        .args(["daemon", "--daemon", "--group", "no-such-group-here", "--socket", "/tmp/x.sock"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no group \"no-such-group-here\": create it with `sudo probity daemon --install`"),
        "{}",
        stderr(&o)
    );
    // Another daemon already answers on the socket.
    let d = TestDaemon::start(&[]);
    let o = Command::new(env!("CARGO_BIN_EXE_probity"))
        .args(["daemon", "--daemon", "--group", GROUP, "--socket"])
        .arg(&d.socket)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("another daemon answers on it"), "{}", stderr(&o));
}

#[test]
fn doctor_names_the_daemon_it_would_use() {
    let d = TestDaemon::start(&[]);
    let (_bin_dir, probity) = probity_for_nobody();
    let o = as_user(65534, true, &d, &probity, &["doctor"]).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let via = format!(
        "ok   tracing via   through the probity daemon at {} (PROBITY_DAEMON names it; it answers)",
        d.socket.display()
    );
    assert!(out.contains(&via), "{out}");
    assert!(out.contains("ok   ebpf tracer   loaded by the probity daemon"), "{out}");
    assert!(
        out.contains(
            "ok   attach        not from here: attaching (`probity run -p`) needs the eBPF tracer in this process"
        ),
        "{out}"
    );
}
