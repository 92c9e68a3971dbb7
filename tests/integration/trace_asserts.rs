//! Assertions against real traces: each one passing, and failing with a
//! message that is snapshotted (in its stable form, without pids, times
//! or temp paths). Absence is never shown by default: lost events,
//! processes no suitable tracer covered and unresolvable paths fail it.

use std::path::Path;
use std::process::{Command, Stdio};

use probity::event::Fork;
use probity::{Event, EventKind, Trace, Tracer, TracerKind, Violation, ViolationKind};

use crate::support::{fixture, require_tracing};

fn traced_with(tracer: &Tracer, mut cmd: Command) -> Trace {
    require_tracing();
    cmd.env_clear().env("PATH", "/usr/bin:/bin").stdin(Stdio::null()).stdout(Stdio::null());
    let t = tracer.run(cmd).expect("traced");
    assert_eq!(t.outcome.losses.lost_events(), 0, "{:?}", t.outcome.losses);
    t
}

fn sh_in(dir: &Path, script: &str) -> Trace {
    let mut c = Command::new("/bin/sh");
    c.args(["-c", script]).current_dir(dir);
    traced_with(&Tracer::new(), c)
}

/// A shell session that creates, writes, renames and deletes a file in
/// `dir`, reads /etc/hostname and fails to read a missing file.
const FILES: &str = "echo hi > a.txt; mv a.txt b.txt; rm b.txt; cat /etc/hostname missing.txt >/dev/null 2>&1; true";

fn files(dir: &Path) -> Trace {
    sh_in(dir, FILES)
}

/// The violation's stable message, with the test's directory named.
fn stable(v: &Violation, dir: &Path) -> String {
    v.stable_text().replace(&dir.display().to_string(), "<dir>")
}

fn err<T: std::fmt::Debug>(r: Result<T, Violation>) -> Violation {
    r.expect_err("the expectation should fail")
}

#[test]
fn file_changes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = files(d);
    t.assert_opened(d.join("a.txt"));
    t.assert_opened("a.txt");
    t.assert_opened("/etc/hostname");
    t.assert_created(d.join("a.txt"));
    t.assert_created(d.join("b.txt"));
    t.assert_wrote(d.join("a.txt"));
    t.assert_renamed(d.join("a.txt"), d.join("b.txt"));
    t.assert_deleted(d.join("b.txt"));
    t.assert_writes_only_under([d]);

    let v = err(t.check_opened(d.join("missing.txt")));
    assert_eq!(v.kind(), ViolationKind::Missing);
    assert_eq!(v.events().count(), 1, "{v}");
    insta::assert_snapshot!("opened_failed_open", stable(&v, d));

    let v = err(t.check_deleted(d.join("a.txt")));
    assert_eq!(v.kind(), ViolationKind::Missing);
    insta::assert_snapshot!("deleted_missing_with_near_misses", stable(&v, d));

    let v = err(t.check_wrote("/etc/shadow"));
    insta::assert_snapshot!("wrote_untouched_path", stable(&v, d));
    let v = err(t.check_renamed(d.join("b.txt"), d.join("a.txt")));
    insta::assert_snapshot!("renamed_the_other_way", stable(&v, d));
    assert!(t.check_created("/etc/hostname").is_err());

    let v = err(t.check_writes_only_under([d.join("sub")]));
    assert_eq!(v.kind(), ViolationKind::Found);
    insta::assert_snapshot!("writes_outside_a_directory", stable(&v, d));
}

#[test]
fn execs() {
    let dir = tempfile::tempdir().unwrap();
    let t = files(dir.path());
    t.assert_execs_exactly(["sh", "mv", "rm", "cat"]);
    // Paths are compared as the kernel exec'd them (sh runs as /bin/sh).
    t.assert_execs_exactly(["/bin/sh", "/usr/bin/mv", "rm", "/usr/bin/cat"]);
    assert!(t.check_execs_at_least(["/usr/bin/sh"]).is_err());
    t.assert_execs_at_least(["mv"]);
    t.assert_never_execs(["curl", "wget", "/usr/bin/sh"]);

    let v = err(t.check_execs_exactly(["sh", "cat", "python3"]));
    assert_eq!(v.kind(), ViolationKind::Found);
    insta::assert_snapshot!("execs_exactly", stable(&v, dir.path()));
    let v = err(t.check_execs_at_least(["cat", "python3"]));
    assert_eq!(v.kind(), ViolationKind::Missing);
    insta::assert_snapshot!("execs_at_least", stable(&v, dir.path()));
    let v = err(t.check_never_execs(["curl", "rm"]));
    assert_eq!(v.kind(), ViolationKind::Found);
    insta::assert_snapshot!("never_execs", stable(&v, dir.path()));
}

/// Connects (refused) and sends to loopback only.
const NETWORK_PY: &str = r#"import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
try:
    s.connect(("127.0.0.1", 9))
except OSError:
    pass
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.sendto(b"probity", ("127.0.0.1", 9))
"#;

fn python(dir: &Path, code: &str) -> Trace {
    let script = dir.join("net.py");
    std::fs::write(&script, code).unwrap();
    let mut c = Command::new("/usr/bin/python3");
    c.arg(&script);
    traced_with(&Tracer::new(), c)
}

#[test]
fn network() {
    let dir = tempfile::tempdir().unwrap();
    let t = python(dir.path(), NETWORK_PY);
    t.assert_network_only_to(["127.0.0.0/8"]);
    t.assert_network_only_to(["127.0.0.1", "::1"]);
    let v = err(t.check_no_network());
    assert_eq!(v.kind(), ViolationKind::Found);
    insta::assert_snapshot!("no_network", stable(&v, dir.path()));
    let v = err(t.check_network_only_to(["192.0.2.0/24", "::1/128"]));
    assert_eq!(v.kind(), ViolationKind::Found);
    insta::assert_snapshot!("network_only_to", stable(&v, dir.path()));
    for bad in ["300.1.2.3/8", "10.0.0.0/33", "not a host"] {
        let v = err(t.check_network_only_to([bad]));
        assert_eq!(v.kind(), ViolationKind::Invalid, "{bad}");
        assert!(v.to_string().contains(bad), "{v}");
    }
    // `localhost` allows the loopback addresses, whether or not the
    // program looked the name up; a name probity cannot resolve (not in
    // /etc/hosts, and no DNS answer in the trace) allows nothing.
    t.assert_network_only_to(["localhost"]);
    let v = err(t.check_network_only_to(["db.probity.test"]));
    assert_eq!(v.kind(), ViolationKind::Found);
    insta::assert_snapshot!("network_host_name", stable(&v, dir.path()));

    // A program with no network passes, and so does an allow-list.
    let quiet = files(dir.path());
    quiet.assert_no_network();
    quiet.assert_network_only_to(["127.0.0.1"]);
}

/// A message's destination is the address it names.
#[test]
fn message_destinations_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    // Two buffers: the first is kept, and marked as not the whole message.
    let t = python(dir.path(), "import socket\nu = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nu.sendmsg([b'x', b'y'], [], 0, ('127.0.0.1', 9))\n");
    t.assert_network_only_to(["127.0.0.0/8"]);
    let v = err(t.check_network_only_to(["10.0.0.0/8"]));
    assert_eq!(v.kind(), ViolationKind::Found, "{v}");
    assert!(
        v.to_string().contains(r#"{msg_name={sa_family=AF_INET, sin_port=htons(9), sin_addr=inet_addr("127.0.0.1")}, msg_iov=[{iov_base="x"...}]}, 0) = 2"#),
        "{v}"
    );
}

/// Of a `sendmmsg`, only the first message is recorded: when it names an
/// address, the others may name others, and the check cannot decide.
const SENDMMSG_PY: &str = r#"import ctypes, socket, struct
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
class msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.POINTER(iovec)),
                ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]
class mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", msghdr), ("len", ctypes.c_uint)]
libc = ctypes.CDLL(None, use_errno=True)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
data = ctypes.create_string_buffer(b"x", 1)
iov = iovec(ctypes.cast(data, ctypes.c_void_p), 1)
names = [ctypes.create_string_buffer(struct.pack("=H", socket.AF_INET) + struct.pack("!H", 9) + socket.inet_aton(ip) + bytes(8), 16)
         for ip in ("127.0.0.1", "127.0.0.2")]
msgs = (mmsghdr * 2)()
for m, name in zip(msgs, names):
    m.hdr.name = ctypes.cast(name, ctypes.c_void_p)
    m.hdr.namelen = 16
    m.hdr.iov = ctypes.pointer(iov)
    m.hdr.iovlen = 1
assert libc.sendmmsg(u.fileno(), msgs, 2, 0) == 2
"#;

#[test]
fn unrecorded_destinations_are_undecided() {
    let dir = tempfile::tempdir().unwrap();
    let t = python(dir.path(), SENDMMSG_PY);
    let v = err(t.check_network_only_to(["127.0.0.1"]));
    assert_eq!(v.kind(), ViolationKind::Undecided, "{v}");
    // Undecided for that reason, not for a destination missing altogether.
    assert!(v.to_string().contains("only the first message of a sendmmsg is recorded"), "{v}");
    insta::assert_snapshot!("network_undecided", stable(&v, dir.path()));
}

#[test]
fn counts_and_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = files(d);
    let renames = || t.syscalls().named_any(["rename", "renameat", "renameat2"]);
    renames().assert_exactly(1);
    renames().assert_at_most(1);
    renames().assert_at_least(1);
    t.syscalls().path("/etc/shadow").assert_none();
    t.events().kind("exec").assert_exactly(4);

    let v = err(t.syscalls().named("unlinkat").path_prefix(d).check_exactly(2));
    assert_eq!(v.kind(), ViolationKind::Missing);
    insta::assert_snapshot!("count_exactly_too_few", stable(&v, d));
    let v = err(t.syscalls().path(d.join("a.txt")).check_at_most(1));
    assert_eq!(v.kind(), ViolationKind::Found);
    insta::assert_snapshot!("count_at_most", stable(&v, d));
    let v = err(t.syscalls().errno("ENOENT").path(d.join("missing.txt")).check_none());
    insta::assert_snapshot!("count_none", stable(&v, d));
    let v = err(t.events().kind("exec").program("rm").check_at_least(2));
    insta::assert_snapshot!("count_at_least", stable(&v, d));

    let write = || t.syscalls().named("write").path(d.join("a.txt"));
    write().assert_before(renames());
    renames().assert_before(t.syscalls().named_any(["unlink", "unlinkat"]).path(d.join("b.txt")));
    let v = err(renames().check_before(write()));
    assert_eq!(v.kind(), ViolationKind::Order);
    insta::assert_snapshot!("before_wrong_order", stable(&v, d));
    let v = err(write().check_before(t.syscalls().named("connect")));
    assert_eq!(v.kind(), ViolationKind::Missing);
    insta::assert_snapshot!("before_nothing_after", stable(&v, d));
}

#[test]
fn absence_fails_when_events_were_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = files(dir.path());
    t.outcome.losses.ring_full = 7;
    let v = err(t.check_no_network());
    assert_eq!(v.kind(), ViolationKind::Lost);
    insta::assert_snapshot!("lost_events", stable(&v, dir.path()));
    for v in [
        err(t.check_never_execs(["curl"])),
        err(t.check_execs_exactly(["sh", "mv", "rm", "cat"])),
        err(t.check_writes_only_under([dir.path()])),
        err(t.check_network_only_to(["127.0.0.1"])),
        err(t.syscalls().named("connect").check_none()),
        err(t.syscalls().named("execve").check_at_most(10)),
    ] {
        assert_eq!(v.kind(), ViolationKind::Lost, "{v}");
    }
    // What did happen is still shown.
    t.assert_opened("/etc/hostname");
    t.assert_execs_at_least(["cat"]);
    t.syscalls().named("execve").assert_at_least(1);
}

#[test]
fn absence_fails_where_no_tracer_that_sees_it_was_active() {
    let dir = tempfile::tempdir().unwrap();
    // The preload tracer alone sees no syscalls.
    let mut c = Command::new("/bin/sh");
    c.args(["-c", FILES]).current_dir(dir.path());
    let t = traced_with(&Tracer::new().with_tracers(&[TracerKind::Preload]), c);
    let v = err(t.syscalls().named("ptrace").check_none());
    assert_eq!(v.kind(), ViolationKind::NotCovered);
    // The network checks decide where the library covered every process.
    t.assert_no_network();
    insta::assert_snapshot!("not_covered_preload_only", stable(&v, dir.path()));
    // It still sees libc calls: what they did counts where no syscall
    // tracer covered the process.
    t.assert_created(dir.path().join("a.txt"));
    t.assert_deleted(dir.path().join("b.txt"));

    // A static program has no libc layer: libc calls cannot be shown absent.
    let mut c = Command::new(fixture(probity_fixtures::STATIC_KNOWN_IO));
    c.arg(dir.path().join("out.txt")).arg("0");
    let t = traced_with(&Tracer::new(), c);
    let root = t.processes()[&t.outcome.root_pid].clone();
    assert_eq!(root.tracers, [TracerKind::Ebpf].into(), "{:?}", t.outcome.uncovered);
    let v = err(t.events().kind("libc").named_any(["getaddrinfo"]).check_none());
    assert_eq!(v.kind(), ViolationKind::NotCovered);
    let v = err(t.events().kind("libc").check_none());
    insta::assert_snapshot!("not_covered_static", stable(&v, dir.path()));
    // Syscalls, the eBPF tracer saw.
    t.syscalls().named("connect").assert_none();
}

#[test]
fn absence_fails_for_a_task_that_was_not_traced() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = files(dir.path());
    // As the eBPF tracer records a fork whose child did not fit in its task
    // map (the count of such tasks is kept apart here to show the coverage
    // check on its own).
    let root = t.outcome.root_pid;
    let last = t.events.iter().filter(|e| e.pid == root).map(|e| e.ts_ns).max().unwrap();
    t.events.push(Event {
        ts_ns: last,
        pid: root,
        tid: root,
        kind: EventKind::Fork(Fork { child_tid: 4_000_000, untracked: true }),
    });
    let procs = t.processes();
    assert!(procs[&4_000_000].untracked && procs[&4_000_000].tracers.is_empty());
    let v = err(t.check_never_execs(["curl"]));
    assert_eq!(v.kind(), ViolationKind::NotCovered);
    insta::assert_snapshot!("not_covered_untracked", stable(&v, dir.path()));
    // A query about another process is not about it.
    t.syscalls().pid(root).named("connect").assert_none();
}

#[test]
fn absence_fails_when_paths_cannot_be_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Command::new("/usr/bin/touch");
    c.arg("a.txt").current_dir(dir.path());
    let mut t = traced_with(&Tracer::new(), c);
    t.assert_created(dir.path().join("a.txt"));
    // A trace that does not say where the command started (and a program
    // that never asks): its relative paths could be anywhere.
    t.outcome.cwd = None;
    let v = err(t.check_writes_only_under([dir.path()]));
    assert_eq!(v.kind(), ViolationKind::Undecided);
    insta::assert_snapshot!("undecided_relative_paths", stable(&v, dir.path()));
    let v = err(t.syscalls().path_prefix("/etc/ssh").check_none());
    assert_eq!(v.kind(), ViolationKind::Undecided, "{v}");
    // Relative names still match relative patterns.
    t.assert_created("a.txt");
    t.syscalls().path("a.txt").assert_at_least(1);
    // A shell asks for its working directory, which settles it.
    let mut t = files(dir.path());
    t.outcome.cwd = None;
    t.assert_writes_only_under([dir.path()]);
}

#[test]
fn messages_show_times_processes_and_the_trace_around() {
    let dir = tempfile::tempdir().unwrap();
    let t = files(dir.path());
    let v = err(t.check_never_execs(["mv"]));
    let text = v.to_string();
    let mv =
        t.processes().into_values().find(|p| p.program() == Some(std::path::Path::new("/usr/bin/mv"))).unwrap().pid;
    assert!(
        text.starts_with("expected none of these programs exec'd: mv\nbut found 1 event that breaks it:\n  +0."),
        "{text}"
    );
    assert!(text.contains(&format!("mv [{mv}] +++ exec \"/usr/bin/mv\"")), "{text}");
    assert!(text.contains(&format!("the trace of process {mv} around the first one:")), "{text}");
    assert!(text.contains(&format!("  > [{mv}] +++ exec")), "{text}");
    assert!(text.contains(" <0.0"), "durations of the syscalls around: {text}");
    assert!(std::error::Error::source(&v).is_none());
    assert_eq!(v.expectation(), "none of these programs exec'd: mv");
    let events: Vec<&Event> = v.events().collect();
    assert!(matches!(&events[0].kind, EventKind::Exec(x) if x.filename == "/usr/bin/mv"));
}

#[test]
#[should_panic(expected = "expected opened /etc/shadow\nbut no call that succeeded opened it")]
fn assert_panics_with_the_message() {
    let dir = tempfile::tempdir().unwrap();
    files(dir.path()).assert_opened("/etc/shadow");
}
