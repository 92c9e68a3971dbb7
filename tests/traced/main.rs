//! `#[traced_test]` under libtest: commands and Rust functions traced from
//! ordinary tests, run in parallel, with their failures checked too.
//!
//! Tests named `demo_*` fail on purpose and are `#[ignore]`d; the tests in
//! `failures` run them in a child copy of this binary and check that each
//! failure explains itself. `unprivileged` runs this binary and the
//! custom-harness one as an unprivileged user; `plain_tests` shows that
//! the custom harness fails a plain `#[test]` it cannot run.

mod commands;
mod failures;
mod functions;
mod inject;
mod isolation;
mod late_join;
mod plain_tests;
mod preload_only;
mod readme;
mod unprivileged;

use probity::{Event, Trace};

/// The rendered lines of a trace, for failure messages.
pub fn dump(trace: &Trace) -> String {
    trace.events.iter().map(probity::text::event_line).collect::<Vec<_>>().join("\n")
}

/// The pids of the trace's process tree: the root and every process a
/// fork in the trace created.
pub fn tree_pids(trace: &Trace) -> std::collections::BTreeSet<u32> {
    let mut pids = std::collections::BTreeSet::from([trace.outcome.root_pid]);
    for e in &trace.events {
        if let probity::EventKind::Fork(f) = &e.kind {
            if pids.contains(&e.pid) {
                pids.insert(f.child_tid);
            }
        }
    }
    pids
}

/// Every event must come from the trace's own process tree.
pub fn assert_own_tree(trace: &Trace) {
    let pids = tree_pids(trace);
    let strays: Vec<&Event> = trace.events.iter().filter(|e| !pids.contains(&e.pid)).collect();
    assert!(strays.is_empty(), "events from outside the tree {pids:?}: {strays:#?}\n{}", dump(trace));
}

/// Fails loudly when this process cannot trace: these tests are for root.
/// Fails the test, loudly, when this process cannot trace with eBPF: in
/// this process, or through the probity daemon (`PROBITY_DAEMON`).
pub fn require_tracing() {
    assert!(
        probity::testing::harness::ebpf_unavailable().is_none(),
        "these tests trace for real: {}",
        probity::testing::harness::ebpf_unavailable().unwrap_or_default()
    );
}

/// Fails the test, loudly, unless this process is root: the tests that
/// act as another user (through `setpriv`) need it.
pub fn require_root() {
    let missing = probity::doctor::missing_capabilities();
    assert!(
        missing.is_empty(),
        "these tests trace for real and need root; missing {missing:?}. Run `sudo -E cargo test`."
    );
}
