//! `#[traced_test(preload_only)]`: the libc layer's account of processes
//! and execs, and the checks that something did not happen refusing.

use probity::{traced_test, Cmd, TracerKind, ViolationKind};

/// A child forked and exec'd through libc is in the tree with its parent
/// and program; that nothing else ran cannot be shown.
#[traced_test(preload_only)]
fn a_forked_child_has_its_parent_and_program() {
    let script = "import os\npid = os.fork()\nif pid == 0:\n    os.execv('/bin/true', ['true'])\nos.waitpid(pid, 0)\n";
    let run = Cmd::new("/usr/bin/python3").args(["-c", script]).run();
    run.assert_success();
    let trace = &run.trace;
    assert_eq!(trace.outcome.tracers, [TracerKind::Preload]);
    let root = trace.outcome.root_pid;
    let procs = trace.processes();
    let child = procs.values().find(|p| p.parent == Some(root)).unwrap_or_else(|| panic!("{procs:#?}"));
    assert_eq!(child.program(), Some(std::path::Path::new("/bin/true")), "{}", crate::dump(trace));
    trace.assert_execs_at_least(["true"]);
    assert_eq!(trace.check_never_execs(["true"]).unwrap_err().kind(), ViolationKind::Found);
    let v = trace.check_execs_exactly(["true"]).unwrap_err();
    assert_eq!(v.kind(), ViolationKind::NotCovered, "{v}");
    assert!(v.to_string().contains("only the preload tracer ran"), "{v}");
}
