//! Fidelity against strace for execs: the path, argv and flags that every
//! `execve` and `execveat` record shows are the ones the program passed,
//! as strace prints them (a `#!` script's included, and failed execs), and
//! so is the result. What the kernel ran for a script is the exec event's
//! `interpreter_argv`, apart from the syscall's arguments.

use std::path::Path;
use std::process::{Command, Stdio};

use probity::{EventKind, TracerKind};

use crate::fidelity_args::{normalise, parse_strace_line};

/// An exec call as text, without its environment (a pointer in
/// probity's record, the variables' count in strace's).
fn exec_text(name: &str, args: &[String], ret: &str) -> String {
    let kept: Vec<&str> = match name {
        // dirfd, path, argv, envp, flags.
        "execveat" => [0, 1, 2, 4].iter().filter_map(|&i| args.get(i).map(String::as_str)).collect(),
        // path, argv, envp.
        _ => args.iter().take(2).map(String::as_str).collect(),
    };
    format!("{name}({}) = {ret}", kept.join(", "))
}

/// Every exec of the tree under `strace -ff`, sorted.
fn strace_execs(program: &str, args: &[&str], dir: &Path) -> Vec<String> {
    let out = tempfile::tempdir().unwrap();
    let prefix = out.path().join("t");
    let status = Command::new("strace")
        .args(["-ff", "-qq", "-s", "4096", "-e", "trace=execve,execveat", "-o"])
        .arg(&prefix)
        .arg(program)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .status()
        .expect("strace is the oracle here: install it (`cargo xtask setup`)");
    assert!(status.success(), "{program} under strace failed: {status}");
    let mut execs = Vec::new();
    for entry in std::fs::read_dir(out.path()).unwrap() {
        let path = entry.unwrap().path();
        let pid = path.extension().unwrap().to_str().unwrap().to_owned();
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            if let Some(c) = parse_strace_line(line, &pid) {
                execs.push(exec_text(&c.name, &c.args, &c.ret));
            }
        }
    }
    execs.sort();
    execs
}

/// Every exec of the tree traced by probity's eBPF tracer, sorted, and
/// the trace.
fn probity_execs(program: &str, args: &[&str], dir: &Path) -> (Vec<String>, probity::Trace) {
    crate::support::require_tracing();
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(dir).stdout(Stdio::null());
    let t = probity::Tracer::new().with_tracers(&[TracerKind::Ebpf]).run(cmd).unwrap();
    assert_eq!(t.outcome.losses.lost_events(), 0, "events lost: {:?}", t.outcome.losses);
    assert_eq!(t.outcome.status, probity::ExitStatus::Code(0), "{program} under probity failed");
    let mut execs: Vec<String> = t
        .syscalls()
        .filter(|(_, s)| matches!(&*s.name, "execve" | "execveat"))
        .map(|(e, s)| {
            let pid = e.pid.to_string();
            let line = probity::text::syscall_line(s);
            let ret = line.rsplit_once(" = ").map_or("?", |(_, r)| r);
            let args: Vec<String> = s.args.iter().map(|a| normalise(&a.to_string(), &pid)).collect();
            exec_text(&s.name, &args, &normalise(ret, &pid))
        })
        .collect();
    execs.sort();
    (execs, t)
}

/// Runs `program` under both, from `dir`, and checks that the execs read
/// the same; returns probity's execs and trace.
fn check(program: &str, args: &[&str], dir: &Path) -> (Vec<String>, probity::Trace) {
    let (ours, trace) = probity_execs(program, args, dir);
    let theirs = strace_execs(program, args, dir);
    assert_eq!(ours, theirs, "{program} {args:?}: execs differ from strace's (left: probity, right: strace)");
    (ours, trace)
}

/// A script run with arguments: its `execve` shows them as passed (strace
/// does too), not the argv the kernel rewrote for `/bin/sh -e`; the exec
/// event names that one apart. Then a `PATH` search whose first exec
/// fails: a failed exec's argv is read from the caller's memory.
#[test]
fn a_scripts_execve_shows_its_argv_as_passed() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.sh");
    std::fs::write(&script, "#!/bin/sh -e\nexit 0\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (execs, trace) =
        check("/bin/sh", &["-c", "./s.sh a 'b c'; export PATH=/nonexistent:/usr/bin; exec env x=1 true"], dir.path());
    for wanted in [
        r#"execve("./s.sh", ["./s.sh", "a", "b c"]) = 0"#,
        r#"execve("/nonexistent/env", ["env", "x=1", "true"]) = -1 ENOENT (No such file or directory)"#,
        r#"execve("/usr/bin/env", ["env", "x=1", "true"]) = 0"#,
    ] {
        assert!(execs.iter().any(|e| e == wanted), "no {wanted} in:\n{}", execs.join("\n"));
    }
    let event = trace
        .events
        .iter()
        .find(|e| matches!(&e.kind, EventKind::Exec(x) if x.filename == "./s.sh"))
        .unwrap_or_else(|| panic!("no exec of the script:\n{}", crate::support::dump(&trace)));
    let EventKind::Exec(script_exec) = &event.kind else { unreachable!() };
    assert_eq!(script_exec.argv, ["./s.sh", "a", "b c"]);
    assert_eq!(script_exec.interpreter_argv, ["/bin/sh", "-e", "./s.sh", "a", "b c"]);
    let line = probity::text::event_line(event);
    assert!(
        line.ends_with(
            r#"+++ exec "./s.sh" ["./s.sh", "a", "b c"] interpreter ["/bin/sh", "-e", "./s.sh", "a", "b c"] +++"#
        ),
        "{line}"
    );
    // A program that runs itself has no interpreter argv.
    assert!(trace.events.iter().all(|e| match &e.kind {
        EventKind::Exec(x) if x.filename != "./s.sh" => x.interpreter_argv.is_empty(),
        _ => true,
    }));
    let json = serde_json::to_string(script_exec).unwrap();
    assert!(json.contains(r#""interpreter_argv":["/bin/sh","-e","./s.sh","a","b c"]"#), "{json}");
}

/// `fexecve` is `execveat(fd, "", argv, envp, AT_EMPTY_PATH)` in glibc:
/// the empty path shows as passed, not as the file the kernel opened.
#[test]
fn an_execveat_shows_its_arguments_as_passed() {
    let dir = tempfile::tempdir().unwrap();
    let (execs, _) = check(
        "/usr/bin/python3",
        &["-c", "import os; fd = os.open('/bin/true', os.O_RDONLY); os.execve(fd, ['true', 'x y'], {})"],
        dir.path(),
    );
    assert!(
        execs.iter().any(|e| e.starts_with(r#"execveat(3, "", ["true", "x y"], AT_EMPTY_PATH) = 0"#)),
        "no execveat in:\n{}",
        execs.join("\n")
    );
}
