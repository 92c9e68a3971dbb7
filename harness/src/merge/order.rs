//! One timeline from both tracers: events ordered by when they started,
//! and each syscall (or nested libc call) linked to the libc call it was
//! made in.
//!
//! Both tracers stamp events with `CLOCK_MONOTONIC`, so ordering is a sort.
//! A call is inside another when it ran on the same thread within the
//! other's entry-to-return window; the innermost such call is its parent.

use foldhash::HashMap;

use crate::event::{Event, EventKind};

/// Puts `events` in start order; on a tie a libc call comes before the
/// syscalls it made, and a longer call before a shorter one it contains.
/// Events for which `cut` is true are left out; `cut` sees every event
/// once, in the order they are in now (for the kernel's events, each
/// thread's in the order it made them).
///
/// Only the keys are sorted; the events are then swapped into place, and
/// the cut ones, sorted last, are dropped at the end. An event is a few
/// hundred bytes and the trace can hold millions: a sort moving events
/// would move each many times, moving them into a new vector would fault
/// in as much fresh memory, and removing events from the middle of the
/// sorted trace would move all the events after them once more.
pub(crate) fn sort(events: &mut Vec<Event>, mut cut: impl FnMut(&Event) -> bool) {
    let mut cuts = 0;
    let mut keys: Vec<(SortKey, usize)> = events
        .iter()
        .map(|e| {
            let c = cut(e);
            cuts += usize::from(c);
            (c, e.ts_ns, rank(e), std::cmp::Reverse(e.end_ns()))
        })
        .enumerate()
        .map(|(i, k)| (k, i))
        .collect();
    // The index makes every key distinct, so an unstable sort is stable.
    keys.sort_unstable();
    // Swap each event into place: position `i` takes the event that was
    // at `keys[i].1`, which may have been swapped away by an earlier step;
    // the chain of earlier steps says where it went (as the standard
    // library's `sort_by_cached_key` does).
    for i in 0..keys.len() {
        let mut index = keys[i].1;
        while index < i {
            index = keys[index].1;
        }
        keys[i].1 = index;
        events.swap(i, index);
    }
    events.truncate(events.len() - cuts);
}

/// Sets the `parent` link of each event, shown to it in [`sort`]ed order
/// with its index in the final trace.
#[derive(Default)]
pub(crate) struct Linker {
    /// Per thread, the libc calls still open at this point of the sweep:
    /// their index and end.
    open: HashMap<u32, Vec<(usize, u64)>>,
}

impl Linker {
    pub(crate) fn link(&mut self, event: &mut Event, index: usize) {
        if !matches!(event.kind, EventKind::Syscall(_) | EventKind::Libc(_)) {
            return;
        }
        let (tid, start, end) = (event.tid, event.ts_ns, event.end_ns());
        let stack = self.open.entry(tid).or_default();
        while stack.last().is_some_and(|&(_, until)| until < start) {
            stack.pop();
        }
        let parent = stack.iter().rev().find(|&&(_, until)| end <= until).map(|&(p, _)| p);
        match &mut event.kind {
            EventKind::Syscall(s) => s.parent = parent,
            EventKind::Libc(c) => {
                c.parent = parent;
                // A call recorded before it ran that never returned has no
                // window to hold anything.
                if c.ret.is_some() {
                    stack.push((index, end));
                }
            }
            _ => {}
        }
    }
}

/// Sets every `parent` link of events in [`sort`]ed order.
#[cfg(test)]
fn link(events: &mut [Event]) {
    let mut linker = Linker::default();
    for (i, e) in events.iter_mut().enumerate() {
        linker.link(e, i);
    }
}

/// Cut events last, then start time, libc calls first, longer calls first.
type SortKey = (bool, u64, u8, std::cmp::Reverse<u64>);

fn rank(e: &Event) -> u8 {
    match e.kind {
        EventKind::Libc(_) => 0,
        _ => 1,
    }
}

/// How deep an event is nested under libc calls.
pub fn depth(events: &[Event], i: usize) -> usize {
    let mut d = 0;
    let mut cur = events.get(i).and_then(Event::parent);
    while let Some(p) = cur {
        d += 1;
        cur = events.get(p).and_then(Event::parent);
        if d > events.len() {
            break;
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{LibcCall, Syscall};

    fn libc(ts: u64, dur: u64, tid: u32) -> Event {
        Event {
            ts_ns: ts,
            pid: 1,
            tid,
            kind: EventKind::Libc(Box::new(LibcCall {
                function: "fopen".into(),
                args: vec![],
                ret: Some(crate::event::Arg::Ptr(1)),
                errno: None,
                duration_ns: dur,
                parent: None,
                injected: false,
            })),
        }
    }

    fn sys(ts: u64, dur: u64, tid: u32) -> Event {
        Event {
            ts_ns: ts,
            pid: 1,
            tid,
            kind: EventKind::Syscall(Syscall {
                name: "openat".into(),
                nr: 257,
                args: vec![],
                ret: Some(3),
                errno: None,
                duration_ns: dur,
                parent: None,
                injected: false,
            }),
        }
    }

    #[test]
    fn syscalls_link_to_the_innermost_call_on_their_thread() {
        let mut evs =
            vec![sys(15, 2, 7), libc(10, 20, 7), sys(12, 1, 8), sys(13, 1, 9), libc(11, 10, 7), sys(40, 1, 7)];
        sort(&mut evs, |e| e.tid == 9);
        link(&mut evs);
        let order: Vec<(u64, u32)> = evs.iter().map(|e| (e.ts_ns, e.tid)).collect();
        assert_eq!(order, [(10, 7), (11, 7), (12, 8), (15, 7), (40, 7)]);
        assert_eq!(evs[1].parent(), Some(0), "nested libc call");
        assert_eq!(evs[2].parent(), None, "another thread");
        assert_eq!(evs[3].parent(), Some(1), "innermost");
        assert_eq!(evs[4].parent(), None, "after the calls returned");
        assert_eq!(depth(&evs, 3), 2);
    }
}
