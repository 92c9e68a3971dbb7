//! `#[traced_test]`s under probity's own harness (`harness = false`):
//! libtest's command line through libtest-mimic, so `cargo test` and
//! `cargo nextest run` drive it. Where eBPF is not available, tests that
//! need it are listed as ignored with the reason, and fail when asked to
//! run or in CI; an expected panic prints nothing in a passing run.

use std::path::PathBuf;

use probity::{traced, traced_test, Cmd, TracerKind};

#[traced_test]
fn kernel_tracing_sees_the_exec_tree() {
    let run = Cmd::new("sh").args(["-c", "uname >/dev/null; echo done"]).run();
    run.assert_success();
    assert_eq!(run.stdout, "done\n");
    run.trace.assert_execs_exactly(["/usr/bin/sh", "/usr/bin/uname"]);
}

#[traced_test]
fn a_function_is_traced_too() {
    let run = traced(PathBuf::from("/etc/hostname"), |p: PathBuf| std::fs::read(p).map(|b| b.len()).unwrap_or(0));
    assert!(run.value > 0);
    run.trace.syscalls().named("openat").path("/etc/hostname").assert_exactly(1);
}

#[traced_test(preload_only)]
fn preload_only_runs_anywhere() {
    let run = Cmd::new("sh").args(["-c", "cat /etc/hostname > /dev/null"]).run();
    run.assert_success();
    assert_eq!(run.trace.outcome.tracers, [TracerKind::Preload]);
    assert!(run.trace.events().kind("libc").any(|e| probity::text::event_line(e).contains("/etc/hostname")));
}

#[traced_test]
#[should_panic(expected = "exited with 1")]
fn should_panic_is_honoured() {
    Cmd::new("false").run().assert_success();
}

#[traced_test(preload_only)]
#[should_panic(expected = "the panic this test expects")]
fn an_expected_panic_prints_nothing() {
    panic!("the panic this test expects, which a passing run keeps to itself");
}

#[traced_test]
#[ignore = "shows that #[ignore] is kept"]
fn ignored_by_its_author() {
    panic!("never runs unless asked");
}

fn main() {
    probity::testing::main()
}
