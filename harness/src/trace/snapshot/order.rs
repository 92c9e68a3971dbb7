//! The canonical order of a snapshot: each task's events in program
//! order, tasks in the order they were created, and how deep in the libc
//! calls shown each event is.

use std::collections::{HashMap, HashSet};

use crate::event::{Event, EventKind, NetOp};
use crate::trace::index::Index;

/// How an event appears in the canonical order.
#[derive(Clone, Copy)]
pub(super) enum As {
    Event,
    /// A process's last task exiting, as that task's thread exit.
    ThreadExit,
    /// A process's end, at the end of its main task.
    ProcessExit,
}

#[derive(Clone, Copy)]
/// An event, and how it appears.
pub(super) struct Item {
    pub(super) index: usize,
    pub(super) as_: As,
}

/// The kept events, each task's in program order, tasks depth first in
/// the order their creators created them. A process's end goes last in
/// its main task, whichever task the kernel saw exit last.
pub(super) fn canonical_order(idx: &Index<'_>, keep: &[bool]) -> Vec<Item> {
    let events = &idx.trace.events;
    let mut by_task: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        by_task.entry(e.tid).or_default().push(i);
    }
    for v in by_task.values_mut() {
        // A connection's close and resets come when the peer's packets
        // do, racing with the owner's syscalls: they go last in the
        // owner's task, in the order of its connections.
        v.sort_by_key(|&i| match events[i].as_net() {
            Some(n) if matches!(n.op, NetOp::Close | NetOp::ResetSent | NetOp::ResetReceived) => {
                (1, u64::from(n.conn.unwrap_or(0)), n.op == NetOp::Close, events[i].ts_ns, i)
            }
            _ => (0, 0, false, events[i].ts_ns, i),
        });
    }
    // Tasks each task created, in its program order.
    let mut created: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut has_creator: HashSet<u32> = HashSet::new();
    let mut tasks_in_order: Vec<u32> = by_task.keys().copied().collect();
    tasks_in_order.sort_by_key(|t| by_task[t].first().map(|&i| (events[i].ts_ns, i)));
    for &t in &tasks_in_order {
        for &i in &by_task[&t] {
            if let EventKind::Fork(f) = &events[i].kind {
                if f.child_tid != t && has_creator.insert(f.child_tid) {
                    created.entry(t).or_default().push(f.child_tid);
                }
            }
        }
    }
    let process_exits: HashMap<u32, usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(&e.kind, EventKind::Exit(x) if x.process_exited))
        .map(|(i, e)| (e.pid, i))
        .collect();
    let root = idx.trace.outcome.root_pid;
    let mut roots: Vec<u32> =
        tasks_in_order.iter().copied().filter(|t| !has_creator.contains(t) && *t != root).collect();
    roots.insert(0, root);
    let mut out = Vec::new();
    let mut seen: HashSet<u32> = HashSet::new();
    let mut stack: Vec<u32> = roots.into_iter().rev().collect();
    while let Some(t) = stack.pop() {
        if !seen.insert(t) {
            continue;
        }
        for &i in by_task.get(&t).map_or(&[][..], Vec::as_slice) {
            let e = &events[i];
            match &e.kind {
                // The task that happened to exit last: its own end here, the
                // process's at the end of the main task.
                EventKind::Exit(x) if x.process_exited && e.tid != e.pid && keep[i] => {
                    out.push(Item { index: i, as_: As::ThreadExit });
                }
                EventKind::Exit(x) if x.process_exited => {}
                // The main task's own end, when the process's is shown.
                EventKind::Exit(_) if e.tid == e.pid && process_exits.contains_key(&e.pid) => {}
                _ if keep[i] => out.push(Item { index: i, as_: As::Event }),
                _ => {}
            }
        }
        if let Some(&i) = process_exits.get(&t) {
            if keep[i] {
                out.push(Item { index: i, as_: As::ProcessExit });
            }
        }
        if let Some(children) = created.get(&t) {
            stack.extend(children.iter().rev());
        }
    }
    out
}

/// How many of the libc calls event `i` was made in are shown.
pub(super) fn shown_depth(events: &[Event], keep: &[bool], i: usize) -> usize {
    let mut d = 0;
    let mut cur = events[i].parent();
    let mut hops = 0;
    while let Some(p) = cur.filter(|&p| p < events.len()) {
        d += usize::from(keep[p]);
        cur = events[p].parent();
        hops += 1;
        if hops > events.len() {
            break;
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use crate::event::{Arg, Event, EventKind, Exit, Fork};
    use crate::trace::test_support::{path, sys, trace};

    fn fork(ts: u64, pid: u32, tid: u32, child: u32) -> Event {
        Event { ts_ns: ts, pid, tid, kind: EventKind::Fork(Fork { child_tid: child, untracked: false }) }
    }

    fn exit(ts: u64, pid: u32, tid: u32, process: bool) -> Event {
        let status = process.then_some(crate::ExitStatus::Code(0));
        Event { ts_ns: ts, pid, tid, kind: EventKind::Exit(Exit { process_exited: process, status }) }
    }

    #[test]
    fn tasks_in_creation_order_whatever_the_interleaving() {
        // Two threads (11, 12) whose calls interleave differently in two
        // runs, and whose last one to end ends the process.
        let run = |second_first: bool, last: u32| {
            let (a, b) = if second_first { (21, 20) } else { (20, 21) };
            let mut events = vec![
                fork(1, 10, 10, 11),
                fork(2, 10, 10, 12),
                sys(a, 10, 11, "openat", vec![Arg::Fd(libc::AT_FDCWD), path("/x/one")], 3),
                sys(
                    b,
                    10,
                    12,
                    "openat",
                    vec![Arg::Fd(libc::AT_FDCWD), path("/x/two")],
                    if second_first { 3 } else { 4 },
                ),
                sys(30, 10, 10, "exit_group", vec![Arg::Int(0)], 0),
            ];
            for (ts, tid) in [(31, 10), (32, 11), (33, 12)] {
                events.push(exit(ts, 10, tid, tid == last));
            }
            events.sort_by_key(Event::end_ns);
            trace(events, None).snapshot().text()
        };
        let expected =
            "[1] +++ new task 2 +++\n[1] +++ new task 3 +++\n[1] exit_group(0) = 0\n[1] +++ exited with 0 +++\n\
                        [1:2] openat(AT_FDCWD, \"/x/one\") = 3\n[1:2] +++ thread exited +++\n\
                        [1:3] openat(AT_FDCWD, \"/x/two\") = 4\n[1:3] +++ thread exited +++\n";
        assert_eq!(run(false, 10), expected);
        assert_eq!(run(true, 12), expected);
        assert_eq!(run(true, 11), expected);
    }
}
