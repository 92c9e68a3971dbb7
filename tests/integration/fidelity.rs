//! Fidelity against strace: for real programs, each task's sequence of
//! syscall names is the one `strace -ff` records.
//!
//! Thread and process ids differ between the two runs, so the sequences
//! are compared as a sorted list, one per task.

use std::collections::BTreeMap;
use std::process::Command;

use crate::support::names_by_task;

/// Runs `strace -ff` and returns each task's syscall names in order.
fn strace(program: &str, args: &[&str]) -> Vec<Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("t");
    let status = Command::new("strace")
        .arg("-ff")
        .arg("-qq")
        .arg("-o")
        .arg(&prefix)
        .arg(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("strace is the oracle here: install it (`cargo xtask setup`)");
    assert!(status.code().is_some(), "strace itself failed: {status}");
    let mut tasks: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let tid: u32 = path.extension().unwrap().to_str().unwrap().parse().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let names: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with("---") && !l.starts_with("+++"))
            // A syscall interrupted by a signal that only exists because of
            // ptrace is restarted by the kernel; untraced it never is.
            .filter(|l| !l.contains("= ? ERESTART") && !l.starts_with("restart_syscall("))
            .filter_map(|l| l.split('(').next().map(str::to_owned))
            .collect();
        tasks.insert(tid, names);
    }
    sorted(tasks)
}

/// Both sides' sequences, sorted. `rt_sigreturn` is left out: where a
/// signal handler runs (dash's SIGCHLD handler, say) depends on when the
/// child exits, which is timing, not behaviour.
fn sorted(tasks: BTreeMap<u32, Vec<String>>) -> Vec<Vec<String>> {
    let mut v: Vec<Vec<String>> =
        tasks.into_values().map(|t| t.into_iter().filter(|n| n != "rt_sigreturn").collect()).collect();
    v.sort();
    v
}

fn probity(program: &str, args: &[&str]) -> Vec<Vec<String>> {
    crate::support::require_tracing();
    let mut cmd = Command::new(probity::resolve_program(program).unwrap());
    std::os::unix::process::CommandExt::arg0(&mut cmd, program);
    // The same stdio as the strace run: programs ask whether stdout is a tty.
    cmd.args(args).stdout(std::process::Stdio::null());
    // The eBPF tracer alone: the preload library would add its own loading.
    let t = probity::Tracer::new().with_tracers(&[probity::TracerKind::Ebpf]).run(cmd).unwrap();
    assert_eq!(t.outcome.losses.lost_events(), 0);
    sorted(names_by_task(&t))
}

fn check(program: &str, args: &[&str]) {
    let ours = probity(program, args);
    let theirs = strace(program, args);
    if ours != theirs {
        panic!("{program} {args:?}: per-task syscall sequences differ\n{}", diff(&ours, &theirs));
    }
}

/// Where the two lists of sequences part, with a little context.
fn diff(ours: &[Vec<String>], theirs: &[Vec<String>]) -> String {
    let mut out = format!("{} tasks traced by probity, {} by strace\n", ours.len(), theirs.len());
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        if a == b {
            continue;
        }
        let at = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
        let from = at.saturating_sub(3);
        out += &format!(
            "task {i}: first difference at call {at}\n  probity: ... {}\n  strace:  ... {}\n",
            a[from..(at + 5).min(a.len())].join(" "),
            b[from..(at + 5).min(b.len())].join(" ")
        );
    }
    out
}

#[test]
fn ls_matches_strace() {
    check("ls", &["-la", "/usr"]);
}

#[test]
fn sort_matches_strace() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("in.txt");
    std::fs::write(&f, "b\nc\na\n").unwrap();
    check("sort", &[f.to_str().unwrap()]);
}

#[test]
fn tar_matches_strace() {
    check("tar", &["cf", "/dev/null", "/usr/include/linux"]);
}

#[test]
fn shell_pipeline_matches_strace() {
    check("sh", &["-c", "echo probity | tr a-z A-Z | wc -c"]);
}

#[test]
fn python_matches_strace() {
    // Debian's interpreter itself, not a version manager's shim script.
    check("/usr/bin/python3", &["-c", "import os, json; print(json.dumps(sorted(os.listdir('/usr'))))"]);
}
