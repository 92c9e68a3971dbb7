//! Eight traced tests at once in one binary, each seeing only its own
//! child. `eight_tests_run_at_once` runs them with eight test threads and
//! a barrier, so they are certainly concurrent; in a plain run they still
//! run, as many at a time as libtest's threads.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use probity::{traced, traced_test};

/// Set by `eight_tests_run_at_once`: a directory where each test leaves a
/// file and waits until all eight are there.
const BARRIER_ENV: &str = "PROBITY_ISOLATION_BARRIER";

fn barrier(i: usize) {
    let Some(dir) = std::env::var_os(BARRIER_ENV).map(PathBuf::from) else { return };
    std::fs::write(dir.join(i.to_string()), "").unwrap();
    let start = Instant::now();
    while std::fs::read_dir(&dir).unwrap().count() < 8 {
        assert!(start.elapsed() < Duration::from_secs(60), "the eight tests did not all start");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn marker(i: usize) -> String {
    format!("/nonexistent/probity-isolation-{i}")
}

/// Stats its own marker path, and lingers so the runs overlap.
fn check_isolated(i: usize) {
    barrier(i);
    let run = traced(i, |i: usize| {
        let _ = std::fs::metadata(marker(i));
        std::thread::sleep(Duration::from_millis(200));
        let _ = std::process::Command::new("true").status();
        i
    });
    assert_eq!(run.value, i);
    run.trace.syscalls().path(marker(i)).assert_exactly(1);
    for j in (0..8).filter(|&j| j != i) {
        run.trace.syscalls().path(marker(j)).assert_none();
    }
    run.trace.assert_execs_exactly(["/usr/bin/true"]);
    crate::assert_own_tree(&run.trace);
    assert_eq!(run.trace.outcome.losses.lost_events(), 0);
}

#[traced_test]
fn isolated_0() {
    check_isolated(0);
}
#[traced_test]
fn isolated_1() {
    check_isolated(1);
}
#[traced_test]
fn isolated_2() {
    check_isolated(2);
}
#[traced_test]
fn isolated_3() {
    check_isolated(3);
}
#[traced_test]
fn isolated_4() {
    check_isolated(4);
}
#[traced_test]
fn isolated_5() {
    check_isolated(5);
}
#[traced_test]
fn isolated_6() {
    check_isolated(6);
}
#[traced_test]
fn isolated_7() {
    check_isolated(7);
}

#[test]
fn eight_tests_run_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["isolation::isolated_", "--test-threads=8"])
        .env(BARRIER_ENV, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("test result: ok. 8 passed"), "{stdout}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 8);
}
