//! The README's first example, in a crate that got probity from a
//! registry: the eBPF programs load and attach, the preload library
//! embedded by the packaged build script records libc calls, and the
//! trace is asserted on.

use probity::{traced_test, Cmd, TracerKind};

#[traced_test]
fn sort_runs_alone_and_offline() {
    let run = Cmd::new("sort").stdin("b\na\n").run();
    run.assert_success();
    assert_eq!(run.stdout, "a\nb\n");
    assert_eq!(run.trace.outcome.tracers, [TracerKind::Ebpf, TracerKind::Preload]);
    run.trace.assert_execs_exactly(["/usr/bin/sort"]);
    run.trace.assert_no_network();
    // Both layers saw the read of standard input.
    assert!(run.trace.syscalls().named("read").count() > 0, "no read syscall in the trace");
}
