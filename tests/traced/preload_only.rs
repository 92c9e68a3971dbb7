//! `#[traced_test(preload_only)]`: the libc layer's account of processes
//! and execs, and the checks that no exec happened deciding on it when it
//! saw every way in, refusing when it did not.

use probity::{traced_test, Cmd, TracerKind, ViolationKind};

/// A child forked and exec'd through libc is in the tree with its parent
/// and program; that nothing else ran is shown, and a program started
/// without the library is not.
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
    trace.assert_execs_exactly(["python3", "true"]);
    trace.assert_never_execs(["curl"]);

    // `env -i` drops LD_PRELOAD: what /bin/true did then is not seen.
    let run = Cmd::new("/bin/sh").args(["-c", "env -i /bin/true"]).run();
    run.assert_success();
    let v = run.trace.check_never_execs(["curl"]).unwrap_err();
    assert_eq!(v.kind(), ViolationKind::NotCovered, "{v}");
    let text = v.to_string();
    assert!(text.contains("only the preload tracer ran"), "{text}");
    assert!(text.contains("exec'd /bin/true at") && text.contains("LD_PRELOAD not in its environment"), "{text}");
}
