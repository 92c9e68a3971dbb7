//! Queries and failure messages as test authors reach for them, on real
//! programs: opens for writing and flags by name, events and traces
//! printed, `matching` on the pair a syscall query yields, descriptors
//! shown with their files, the closest calls to a missing rename, and
//! what a host name matches.

use std::path::Path;
use std::process::{Command, Stdio};

use probity::{NetOp, Trace, Tracer, ViolationKind};

use crate::support::require_tracing;

fn traced(mut cmd: Command) -> Trace {
    require_tracing();
    cmd.env_clear().env("PATH", "/usr/bin:/bin").stdin(Stdio::null()).stdout(Stdio::null());
    let t = Tracer::new().run(cmd).expect("traced");
    assert_eq!(t.outcome.losses.lost_events(), 0, "{:?}", t.outcome.losses);
    t
}

fn python(script: &str, dir: &Path) -> Trace {
    let mut c = Command::new("python3");
    c.args(["-c", script]).arg(dir);
    traced(c)
}

/// Writes `db` in place, with an fsync, instead of writing `db.tmp` and
/// renaming it over `db`.
const IN_PLACE: &str = "import os, sys
fd = os.open(os.path.join(sys.argv[1], 'db'), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b'v2')
os.fsync(fd)
os.close(fd)";

#[test]
fn a_missing_rename_shows_the_destination_written_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = python(IN_PLACE, d);
    let v = t.check_renamed(d.join("db.tmp"), d.join("db")).expect_err("nothing was renamed");
    assert_eq!(v.kind(), ViolationKind::Missing);
    let stable = v.stable_text().replace(&d.display().to_string(), "<dir>");
    let listed = "but no rename that succeeded did that
the calls that touched <tmp>/.tmp<1>/db:
  python3 [1] openat(AT_FDCWD, \"<tmp>/.tmp<1>/db\", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0644) = 3
  python3 [1] write(3<<tmp>/.tmp<1>/db>, \"v2\", 2) = 2
  python3 [1] fsync(3<<tmp>/.tmp<1>/db>) = 0
  python3 [1] close(3<<tmp>/.tmp<1>/db>) = 0
the trace of process 1 around the first one:
";
    assert!(stable.contains(listed), "{stable}");
    assert!(stable.ends_with("note: nothing touched <tmp>/.tmp<1>/db.tmp nor a file of that name\n"), "{stable}");
    // The message itself names the real paths, strace -y style.
    let raw = v.to_string();
    let db = d.join("db").display().to_string();
    assert!(raw.contains(&format!("] fsync(3<{db}>) = 0 <")), "{raw}");
    assert!(raw.contains(&format!("] write(3<{db}>, \"v2\", 2) = 2 <")), "{raw}");

    // The other checks of what is missing list the same closest calls.
    let v = t.check_deleted(d.join("db")).expect_err("nothing was deleted").stable_text();
    assert!(v.contains("the calls that touched it:\n  python3 [1] openat("), "{v}");
    assert!(v.contains("  python3 [1] fsync(3<<tmp>/.tmp<1>/db>) = 0\n"), "{v}");
}

#[test]
fn descriptors_show_their_files_in_found_messages() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = python(IN_PLACE, d);
    let v = t.syscalls().named("fsync").check_none().expect_err("python fsync'd").stable_text();
    let db = "<tmp>/.tmp<1>/db";
    assert!(
        v.starts_with(&format!("expected no [syscalls named fsync]\nbut found 1:\n  python3 [1] fsync(3<{db}>) = 0\n")),
        "{v}"
    );
    assert!(v.contains(&format!("    [1] write(3<{db}>, \"v2\", 2) = 2\n  > [1] fsync(3<{db}>) = 0\n")), "{v}");
    // libc calls too, where the preload tracer saw them.
    assert!(v.contains(&format!("    [1] libc close(3<{db}>) = 0\n    [1] close(3<{db}>) = 0\n")), "{v}");
}

#[test]
fn opens_for_writing_and_flags_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("r"), "x").unwrap();
    std::fs::write(d.join("rw"), "x").unwrap();
    let t = python(
        "import os, sys
d = sys.argv[1]
open(os.path.join(d, 'r')).close()
open(os.path.join(d, 'w'), 'w').close()
open(os.path.join(d, 'a'), 'a').close()
open(os.path.join(d, 'rw'), 'r+').close()
os.close(os.open(os.path.join(d, 'x'), os.O_CREAT | os.O_EXCL | os.O_RDONLY, 0o600))",
        d,
    );
    let opened = |q: probity::Syscalls<'_>| -> Vec<String> {
        q.path_prefix(d).map(|(_, s)| s.path().unwrap().file_name().unwrap().to_string_lossy().into_owned()).collect()
    };
    assert_eq!(opened(t.syscalls().opened_for_write()), ["w", "a", "rw", "x"]);
    assert_eq!(opened(t.syscalls().named("openat")), ["r", "w", "a", "rw", "x"]);
    assert_eq!(opened(t.syscalls().flags("O_WRONLY")), ["w", "a"]);
    assert_eq!(opened(t.syscalls().flags("O_WRONLY|O_APPEND")), ["a"]);
    assert_eq!(opened(t.syscalls().flags("O_CREAT|O_EXCL")), ["x"]);
    assert_eq!(opened(t.syscalls().flags("O_RDONLY")), ["r", "x"]);
    // The libc layer's opens count too, in an events query.
    let libc_opens = t.events().kind("libc").opened_for_write().path_prefix(d).count();
    assert_eq!(libc_opens, 4, "{}", t);
    // Nothing outside the directory was opened for writing by python.
    let v = t.syscalls().opened_for_write().path_prefix(d.join("r")).check_none();
    assert!(v.is_ok(), "{}", v.unwrap_err());
}

#[test]
fn events_and_traces_print_as_probity_run_does() {
    let mut c = Command::new("cat");
    c.arg("/etc/hostname");
    let t = traced(c);
    let text = t.to_string();
    let open = t.syscalls().named("openat").path("/etc/hostname").next().expect("cat opened it").0;
    assert_eq!(open.to_string(), probity::text::event_line(open));
    assert!(open.to_string().contains("openat(AT_FDCWD, \"/etc/hostname\", O_RDONLY) = 3 <"), "{open}");
    let lines: Vec<&str> = text.lines().collect();
    let first_exec = t.events().kind("exec").next().unwrap();
    assert_eq!(lines[t.events.iter().position(|e| std::ptr::eq(e, first_exec)).unwrap()], first_exec.to_string());
    assert_eq!(lines.len(), t.events.len() + probity::text::outcome_lines(&t.outcome).lines().count());
    assert!(text.ends_with(&probity::text::outcome_lines(&t.outcome)), "{text}");
    // A libc call's syscalls sit under it.
    assert!(lines.iter().any(|l| l.contains("]   openat(AT_FDCWD, \"/etc/hostname\"")), "{text}");
}

#[test]
fn matching_sees_the_event_and_the_syscall() {
    let mut c = Command::new("cat");
    c.args(["/etc/hostname", "/nonexistent-probity"]);
    let t = traced(c);
    let root = t.outcome.root_pid;
    let mine: Vec<_> = t.syscalls().matching(|(e, s)| e.pid == root && s.errno.as_deref() == Some("ENOENT")).collect();
    let filtered: Vec<_> = t.syscalls().pid(root).errno("ENOENT").collect();
    assert_eq!(mine, filtered);
    assert!(mine.iter().any(|(_, s)| s.path() == Some(Path::new("/nonexistent-probity"))));
}

#[test]
fn a_host_name_matches_only_peers_the_program_resolved_from_it() {
    // A connection to 127.0.0.1 made without looking up any name.
    let dir = tempfile::tempdir().unwrap();
    let t = python(
        "import socket
s = socket.socket()
try:
    s.connect(('127.0.0.1', 9))
except OSError:
    pass",
        dir.path(),
    );
    assert_eq!(t.net().op(NetOp::Connect).peer("127.0.0.1").count(), 1, "{t}");
    let q = t.net().host("localhost").op(NetOp::Connect);
    assert_eq!(q.clone().count(), 0);
    let v = q.check_at_least(1).expect_err("the program resolved no name");
    assert_eq!(v.kind(), ViolationKind::Missing);
    let text = v.to_string();
    assert!(
        text.starts_with(
            "expected at least 1 [events of kind net, with a peer the program resolved from the host name localhost, \
             of network op connect]\nbut found 0"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "note: 1 more event might match, but it cannot be told: a host name matches only the peers the program \
             resolved that name to"
        ),
        "{text}"
    );
}
