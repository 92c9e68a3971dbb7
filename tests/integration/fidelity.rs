//! Fidelity against strace: for real programs, each task's sequence of
//! syscall names is the one `strace -ff` records.
//!
//! Thread and process ids differ between the two runs, so the sequences
//! are compared as a sorted list, one per task.

use std::collections::BTreeMap;
use std::process::Command;

use crate::support::{names_by_task, trace};

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

fn sorted(tasks: BTreeMap<u32, Vec<String>>) -> Vec<Vec<String>> {
    let mut v: Vec<Vec<String>> = tasks.into_values().collect();
    v.sort();
    v
}

fn probity(program: &str, args: &[&str]) -> Vec<Vec<String>> {
    let t = trace(program, args);
    sorted(names_by_task(&t))
}

fn check(program: &str, args: &[&str]) {
    let ours = probity(program, args);
    let theirs = strace(program, args);
    if ours != theirs {
        let show = |v: &Vec<Vec<String>>| v.iter().map(|t| t.join(" ")).collect::<Vec<_>>().join("\n  ");
        panic!(
            "{program} {args:?}: per-task syscall sequences differ\nprobity:\n  {}\nstrace:\n  {}",
            show(&ours),
            show(&theirs)
        );
    }
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
    check("python3", &["-S", "-c", "import os; print(sum(range(10)), os.getcwd())"]);
}
