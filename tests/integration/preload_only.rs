//! The preload tracer alone: the process tree, execs and network activity
//! come from the libc calls it recorded, checks that something happened
//! decide on them, and checks that something did not happen fail, saying
//! what the libc layer cannot see (an exec in a vfork child, `execl`, a
//! raw syscall, a static program), never passing on the program's word.
//!
//! The preload tracer needs no privilege: these tests run anywhere.

use std::net::TcpListener;
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

/// The refusal of a check that something did not happen, with the
/// preload tracer alone.
fn refused(r: Result<(), Violation>, why: &[&str]) -> String {
    let v = r.expect_err("a check that something did not happen must not pass on libc records alone");
    let text = v.to_string();
    assert_eq!(v.kind(), ViolationKind::NotCovered, "{text}");
    assert!(text.contains("only the preload tracer ran"), "{text}");
    for w in why {
        assert!(text.contains(w), "no {w:?} in:\n{text}");
    }
    text
}

/// No message may claim what the trace cannot show.
fn honest(text: &str) {
    for false_claim in ["never exec'd", "nothing was exec'd", "covered only by preload"] {
        assert!(!text.contains(false_claim), "{false_claim:?} in:\n{text}");
    }
}

#[test]
fn a_shell_pipeline_builds_the_tree_from_forks_and_execs() {
    let mut c = Command::new("/bin/sh");
    c.args(["-c", "echo hi | cat; /bin/true"]);
    let t = preload_only(c);
    let root = t.outcome.root_pid;
    let procs = t.processes();
    // dash forks both sides of the pipe; the right one execs cat.
    let children: Vec<_> = procs.values().filter(|p| p.parent == Some(root)).collect();
    assert_eq!(children.len(), 2, "{procs:#?}");
    let cat: Vec<_> = children.iter().filter(|p| p.program() == Some("/usr/bin/cat".as_ref())).collect();
    assert_eq!(cat.len(), 1, "{procs:#?}");
    assert_eq!(cat[0].execs[0].1, ["cat"]);
    assert!(cat[0].tracers.contains(&TracerKind::Preload));
    t.assert_execs_at_least(["cat"]);

    // Seen through libc: a decided failure.
    let v = t.check_never_execs(["cat"]).unwrap_err();
    assert_eq!(v.kind(), ViolationKind::Found, "{v}");
    assert!(v.to_string().contains("libc execve(\"/usr/bin/cat\", [\"cat\"]"), "{v}");
    // dash runs the last command in a vfork child, whose exec the library
    // does not record: not seen, and not said never to have happened.
    let v = t.check_execs_at_least(["true"]).unwrap_err();
    assert_eq!(v.kind(), ViolationKind::Missing, "{v}");
    let text = v.to_string();
    assert!(text.contains("these were not seen exec'd: true"), "{text}");
    assert!(text.contains("vfork child"), "{text}");
    assert!(text.contains("the execs that happened"), "{text}");
    honest(&text);
    // Nothing else exec'd, and no curl: not shown.
    honest(&refused(t.check_never_execs(["curl"]), &["vfork child", "execl", "raw syscall", "eBPF tracer"]));
    honest(&refused(t.check_execs_exactly(["cat"]), &["execl"]));
    // Extra programs are found; the missing one is not said never exec'd.
    let v = t.check_execs_exactly(["sh"]).unwrap_err();
    assert_eq!(v.kind(), ViolationKind::Found, "{v}");
    assert!(v.to_string().contains("note: these were not seen exec'd: sh"), "{v}");
    honest(&v.to_string());
}

#[test]
fn python_fork_execv_and_posix_spawn_make_children() {
    let t = python(concat!(
        "import os\n",
        "pid = os.fork()\n",
        "if pid == 0:\n",
        "    os.execv('/bin/true', ['true', 'forked'])\n",
        "os.waitpid(pid, 0)\n",
        "spawned = os.posix_spawn('/bin/echo', ['echo', 'spawned'], {})\n",
        "os.waitpid(spawned, 0)\n",
    ));
    let root = t.outcome.root_pid;
    let procs = t.processes();
    let forked = procs.values().find(|p| p.program() == Some("/bin/true".as_ref())).expect("the forked child");
    assert_eq!(forked.parent, Some(root), "{procs:#?}");
    assert_eq!(forked.execs[0].1, ["true", "forked"]);
    let spawned = procs.values().find(|p| p.program() == Some("/bin/echo".as_ref())).expect("the spawned child");
    assert_eq!(spawned.parent, Some(root), "{procs:#?}");
    assert_eq!(spawned.execs[0].1, ["echo", "spawned"]);
    t.assert_execs_at_least(["/bin/true", "echo"]);
    assert_eq!(t.check_never_execs(["echo"]).unwrap_err().kind(), ViolationKind::Found);
    refused(t.check_never_execs(["curl"]), &["posix_spawn"]);
}

/// Python's subprocess execs in a vfork child: the libc layer sees no
/// exec at all, and the gate must not pass.
#[test]
fn python_subprocess_is_not_seen_and_the_gate_refuses() {
    let t = python("import subprocess; subprocess.run(['/bin/true'], check=True)");
    let text = refused(t.check_never_execs(["true"]), &["vfork child"]);
    honest(&text);
    let v = t.check_execs_at_least(["true"]).unwrap_err();
    assert!(v.to_string().contains("no exec was seen through libc"), "{v}");
    honest(&v.to_string());
}

/// A program that execs by a raw syscall or with execl hides the exec from
/// the libc layer: the exec gate refuses instead of passing.
#[test]
fn an_exec_that_skips_libc_never_passes_the_gate() {
    for how in ["syscall", "execl"] {
        let mut c = Command::new(fixture(probity_fixtures::RAW_EXEC));
        c.args([how, "/bin/true"]);
        let t = preload_only(c);
        assert_eq!(t.outcome.status, probity::ExitStatus::Code(0), "{how}");
        assert!(t.check_execs_at_least(["true"]).is_err(), "{how}: the libc layer cannot have seen it");
        let text = refused(t.check_never_execs(["true"]), &["raw syscall", "execl, execle and execlp"]);
        honest(&text);
        refused(t.check_execs_exactly(Vec::<&str>::new()), &[]);
    }
}

/// A static program loads no library: it is not covered, and says why.
#[test]
fn a_static_program_is_uncovered_with_the_reason() {
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
    let text = refused(t.check_never_execs(["curl"]), &[]);
    assert!(
        text.contains(&format!("process {} ran ", child.pid)) && text.contains("statically linked (no dynamic loader)"),
        "{text}"
    );
}

/// A connect through libc is network activity; that there was none
/// cannot be shown.
#[test]
fn a_connect_through_libc_is_found_and_the_network_gates_refuse() {
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
    // Allowed, as far as libc saw: still not shown.
    honest(&refused(t.check_network_only_to(["127.0.0.1"]), &["raw syscall", "io_uring"]));

    // Nothing through libc: not shown either.
    let t = python("print('quiet')");
    honest(&refused(t.check_no_network(), &["not syscalls", "raw syscall"]));
}
