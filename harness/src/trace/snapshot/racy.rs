//! What the scheduler decides inside an event loop, settled: a run of
//! `poll`s and the non-blocking reads and writes they wake up differs
//! from run to run in how many wake-ups there were, which descriptor was
//! ready first, how the data was split and how often a read found
//! nothing (`EAGAIN`). A snapshot shows such a run as one `poll` that was
//! `ready`, then each descriptor's I/O in turn, consecutive reads (or
//! writes) folded into one with the total.

use std::collections::HashMap;

use probity_common::StringLimit;

use super::order::{As, Item};
use super::row::{Row, What};
use crate::event::{Arg, Event, EventKind, Syscall};
use crate::trace::index::Index;

/// Calls that wait for descriptors to be ready.
const WAITS: &[&str] = &["poll", "ppoll", "select", "pselect6", "epoll_wait", "epoll_pwait", "epoll_pwait2"];

/// I/O on a descriptor whose first argument is the descriptor.
const IO: &[&str] = &["read", "write", "readv", "writev", "recvfrom", "sendto", "recvmsg", "sendmsg", "recv", "send"];

/// Reads and writes that can be folded: a descriptor, a buffer and a
/// count.
const FOLDABLE: &[&str] = &["read", "write", "recvfrom", "sendto"];

/// How an item is shown once the event loops are settled.
pub(super) struct Shown {
    pub(super) item: Item,
    /// The wait that stands for all of its loop's, shown as `ready`.
    pub(super) ready: bool,
    /// Reads or writes folded into this one.
    pub(super) folded: Option<Folded>,
}

/// Several reads (or writes) on one descriptor as one.
pub(super) struct Folded {
    /// The first bytes of all they moved, at most the default string
    /// limit, so that how the data was split does not show.
    pub(super) data: Vec<u8>,
    /// More bytes were moved than `data` has.
    pub(super) cut: bool,
    /// The bytes moved in all.
    pub(super) total: i64,
}

impl Folded {
    /// The syscall `s` with its buffer, count and result replaced by the
    /// fold's.
    pub(super) fn apply(&self, s: &Syscall) -> Syscall {
        let mut s = s.clone();
        let len = self.data.len() as u64 + u64::from(self.cut);
        if let Some(a) = s.args.get_mut(1) {
            *a = Arg::Bytes { data: self.data.clone(), len };
        }
        if let Some(a) = s.args.get_mut(2) {
            *a = Arg::Int(self.total);
        }
        s.ret = Some(self.total);
        s
    }
}

/// What role a syscall plays in an event loop.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Wait,
    Io,
    /// Switching a descriptor to non-blocking and back, or asking.
    Toggle,
    /// Closing a descriptor the loop is done with (libc's `close` or the
    /// syscall), which a loop does when its peer ends.
    Close,
}

fn role(e: &Event) -> Option<Role> {
    let s = match &e.kind {
        EventKind::Syscall(s) => s,
        EventKind::Libc(c) if c.function == "close" && matches!(c.args.first(), Some(Arg::Fd(_))) => {
            return Some(Role::Close);
        }
        _ => return None,
    };
    let name = s.name.as_ref();
    let flag = |i: usize, f: &dyn Fn(&str) -> bool| matches!(s.args.get(i), Some(Arg::Flags { text, .. }) if f(text));
    if WAITS.contains(&name) {
        Some(Role::Wait)
    } else if IO.contains(&name) && matches!(s.args.first(), Some(Arg::Fd(_))) {
        Some(Role::Io)
    } else if name == "close" && matches!(s.args.first(), Some(Arg::Fd(_))) {
        Some(Role::Close)
    } else if (name == "ioctl" && flag(1, &|t| t == "FIONBIO"))
        || (name == "fcntl" && flag(1, &|t| matches!(t, "F_GETFL" | "F_SETFL")))
    {
        Some(Role::Toggle)
    } else {
        None
    }
}

/// Whether `s` failed because nothing was ready, or a signal came first.
fn retry(s: &Syscall) -> bool {
    matches!(s.errno.as_deref(), Some("EAGAIN" | "EWOULDBLOCK" | "EINTR"))
}

/// The items in order, each event loop settled: a maximal run of one
/// task's consecutive waits, I/O calls, closes and non-blocking switches
/// that has a wait in it.
pub(super) fn settle(idx: &Index<'_>, items: Vec<Item>) -> Vec<Shown> {
    let events = &idx.trace.events;
    let role_of = |it: &Item| if matches!(it.as_, As::Event) { role(&events[it.index]) } else { None };
    let mut out = Vec::with_capacity(items.len());
    let mut i = 0;
    while i < items.len() {
        let tid = events[items[i].index].tid;
        let mut end = i;
        while end < items.len() && events[items[end].index].tid == tid && role_of(&items[end]).is_some() {
            end += 1;
        }
        // Closes before the loop's first call are not the loop's.
        let start = (i..end).find(|&k| role_of(&items[k]) != Some(Role::Close)).unwrap_or(end);
        let run = &items[start..end];
        if run.iter().any(|it| role_of(it) == Some(Role::Wait)) {
            out.extend(items[i..start].iter().map(|&item| Shown { item, ready: false, folded: None }));
            settle_loop(idx, run, &mut out);
            i = end;
        } else {
            out.push(Shown { item: items[i], ready: false, folded: None });
            i += 1;
        }
    }
    out
}

/// One event loop: its first wait as `ready`, then each descriptor's I/O
/// in the order the descriptors were created, retries left out and
/// consecutive reads or writes folded.
fn settle_loop(idx: &Index<'_>, run: &[Item], out: &mut Vec<Shown>) {
    let events = &idx.trace.events;
    let sys = |it: &Item| events[it.index].as_syscall();
    if let Some(first) = run.iter().find(|it| role(&events[it.index]) == Some(Role::Wait)) {
        out.push(Shown { item: *first, ready: true, folded: None });
    }
    // Each descriptor's calls (a loop neither opens nor duplicates, so
    // its number names it), in the order of the calls that created them.
    let mut by_fd: HashMap<i32, (usize, Vec<Item>)> = HashMap::new();
    for it in run {
        let e = &events[it.index];
        let args = match &e.kind {
            EventKind::Syscall(s) if retry(s) => continue,
            EventKind::Syscall(s) => &s.args,
            EventKind::Libc(c) => &c.args,
            _ => continue,
        };
        if !matches!(role(e), Some(Role::Io | Role::Close)) {
            continue;
        }
        let Some(Arg::Fd(fd)) = args.first() else { continue };
        let id = idx.access(it.index).and_then(|a| a.fd_ids.iter().find(|(k, _)| *k == 0).map(|(_, id)| *id));
        let entry = by_fd.entry(*fd).or_insert((usize::MAX, Vec::new()));
        entry.0 = entry.0.min(id.unwrap_or(usize::MAX));
        entry.1.push(*it);
    }
    let mut fds: Vec<(i32, (usize, Vec<Item>))> = by_fd.into_iter().collect();
    fds.sort_by_key(|(fd, (id, _))| (*id, *fd));
    for (_, (_, calls)) in fds {
        let mut k = 0;
        while k < calls.len() {
            let name = sys(&calls[k]).map(|s| s.name.clone());
            let foldable = name.as_deref().is_some_and(|n| FOLDABLE.contains(&n));
            let mut end = k + 1;
            while foldable && end < calls.len() && sys(&calls[end]).map(|s| s.name.clone()) == name {
                end += 1;
            }
            let group: Vec<&Syscall> = calls[k..end].iter().filter_map(sys).collect();
            let folded = foldable.then(|| fold(&group));
            out.push(Shown { item: calls[k], ready: false, folded });
            k = end;
        }
    }
}

/// Reads (or writes) as one: the first bytes of their data, and the total.
fn fold(calls: &[&Syscall]) -> Folded {
    let limit = StringLimit::DEFAULT.get() as usize;
    let mut data = Vec::new();
    let mut cut = false;
    let mut total = 0i64;
    for s in calls {
        let moved = s.ret.unwrap_or(0).max(0);
        total = total.saturating_add(moved);
        if cut {
            continue;
        }
        match s.args.get(1) {
            Some(Arg::Bytes { data: d, len }) => {
                data.extend_from_slice(d);
                cut = (d.len() as u64) < (*len).min(moved as u64);
            }
            _ => cut = true,
        }
    }
    if data.len() > limit {
        data.truncate(limit);
        cut = true;
    }
    cut |= (data.len() as i64) < total;
    Folded { data, cut, total }
}

/// Whether a row waits for any child (`wait4(-1, ...)`, `waitpid(-1,
/// ...)`, `wait(...)`): which child it reaps first is the scheduler's
/// choice.
fn waits_for_any(row: &Row) -> Option<String> {
    let (name, args) = match &row.what {
        What::Syscall { name, args, .. } => (name, args),
        What::Libc { function, args, .. } => (function, args),
        _ => return None,
    };
    let any = match name.as_str() {
        "wait4" | "waitpid" | "wait3" => args.first().is_some_and(|a| a == "-1"),
        "wait" => true,
        _ => false,
    };
    any.then(|| format!("{}|{name}|{}", row.depth, args.join(",")))
}

/// Consecutive waits for any child in one task, with their children's
/// numbers in increasing order: the same set of children is reaped, in
/// an order the scheduler chose.
pub(super) fn settle_waits(rows: &mut [Row]) {
    let mut i = 0;
    while i < rows.len() {
        let mut end = i;
        while end < rows.len() && rows[end].task == rows[i].task && waits_for_any(&rows[end]).is_some() {
            end += 1;
        }
        let mut kinds: HashMap<String, Vec<usize>> = HashMap::new();
        for (k, row) in rows.iter().enumerate().take(end).skip(i) {
            if let Some(key) = waits_for_any(row) {
                kinds.entry(key).or_default().push(k);
            }
        }
        for at in kinds.values() {
            let mut results: Vec<String> = at.iter().map(|&k| result(&rows[k]).to_owned()).collect();
            results.sort_by_key(|r| (r.parse::<i64>().map_or((1, 0), |n| (0, n)), r.clone()));
            for (&k, r) in at.iter().zip(results) {
                set_result(&mut rows[k], r);
            }
        }
        i = end.max(i + 1);
    }
}

fn result(row: &Row) -> &str {
    match &row.what {
        What::Syscall { result, .. } | What::Libc { result, .. } => result,
        _ => "",
    }
}

fn set_result(row: &mut Row, r: String) {
    if let What::Syscall { result, .. } | What::Libc { result, .. } = &mut row.what {
        *result = r;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Signal, SignalAction};
    use crate::trace::test_support::{flags, sys, trace};

    fn read(data: &[u8], len: u64, ret: i64) -> Syscall {
        Syscall {
            name: "read".into(),
            nr: 0,
            args: vec![Arg::Fd(7), Arg::Bytes { data: data.to_vec(), len }, Arg::Int(32)],
            ret: Some(ret),
            errno: None,
            duration_ns: 0,
            parent: None,
            injected: false,
        }
    }

    #[test]
    fn folding_hides_how_the_data_was_split() {
        let whole: Vec<u8> = (0..40u8).map(|b| b'a' + b % 26).collect();
        let one = fold(&[&read(&whole[..32], 40, 40), &read(b"", 32, 0)]);
        let (a, b) = (read(&whole[..10], 10, 10), read(&whole[10..], 30, 30));
        let two = fold(&[&a, &b, &read(b"", 32, 0)]);
        assert_eq!((one.data.clone(), one.cut, one.total), (two.data.clone(), two.cut, two.total));
        assert_eq!((one.data.len(), one.cut, one.total), (32, true, 40));
        let short = fold(&[&read(b"hi\n", 3, 3), &read(b"", 32, 0)]);
        assert_eq!((short.data, short.cut, short.total), (b"hi\n".to_vec(), false, 3));
    }

    /// Rust's `Command::output` reading a child's stdout (7) and stderr
    /// (8), as two runs' scheduling made it go, with a `SIGCHLD` handler
    /// that ran at different points.
    #[test]
    fn event_loops_and_asynchronous_signals_settle() {
        let nb = |ts, fd| sys(ts, 10, 10, "ioctl", vec![Arg::Fd(fd), flags(0x5421, "FIONBIO"), Arg::Ptr(1)], 0);
        let poll = |ts, n| sys(ts, 10, 10, "poll", vec![Arg::Ptr(1), Arg::Int(2), Arg::Int(-1)], n);
        let rd = |ts, fd, data: &[u8], ret| {
            let len = if ret < 0 { 0 } else { data.len() as u64 };
            sys(ts, 10, 10, "read", vec![Arg::Fd(fd), Arg::Bytes { data: data.to_vec(), len }, Arg::Int(32)], ret)
        };
        let sigchld = |ts| Event {
            ts_ns: ts,
            pid: 10,
            tid: 10,
            kind: EventKind::Signal(Signal {
                signo: 17,
                name: "SIGCHLD".into(),
                code: 1,
                action: SignalAction::Handler,
            }),
        };
        let sigreturn = |ts| sys(ts, 10, 10, "rt_sigreturn", vec![], 4321);
        let close = |ts, fd| sys(ts, 10, 10, "close", vec![Arg::Fd(fd)], 0);
        let first = vec![
            nb(1, 7),
            nb(2, 8),
            poll(3, 1),
            rd(4, 7, b"hi\n", 3),
            rd(5, 7, b"", -11),
            sigchld(6),
            sigreturn(7),
            poll(8, 1),
            rd(9, 8, b"", 0),
            nb(10, 7),
            rd(11, 7, b"", 0),
            close(12, 8),
            close(13, 7),
        ];
        let second = vec![
            nb(1, 7),
            nb(2, 8),
            poll(3, 2),
            rd(4, 7, b"h", 1),
            rd(5, 7, b"i\n", 2),
            rd(6, 7, b"", 0),
            nb(7, 8),
            rd(8, 8, b"", 0),
            close(9, 8),
            close(10, 7),
            sigchld(11),
            sigreturn(12),
        ];
        let text = |events| trace(events, None).snapshot().text();
        let expected = "[1] poll(<ptr>, 2, -1) = ready\n[1] read(3, \"hi\\n\", 3) = 3\n[1] close(3) = 0\n\
                        [1] read(4, \"\", 0) = 0\n[1] close(4) = 0\n";
        assert_eq!(text(first), expected);
        assert_eq!(text(second), expected);
    }

    #[test]
    fn waits_for_any_child_in_increasing_order() {
        let wait =
            |ts, child| sys(ts, 10, 10, "wait4", vec![Arg::Int(-1), Arg::Ptr(1), Arg::Int(0), Arg::Ptr(0)], child);
        let fork = |ts, child| Event {
            ts_ns: ts,
            pid: 10,
            tid: 10,
            kind: EventKind::Fork(crate::event::Fork { child_tid: child, untracked: false }),
        };
        let text = |a, b| trace(vec![fork(1, 20), fork(2, 21), wait(3, a), wait(4, b)], None).snapshot().text();
        assert_eq!(text(20, 21), text(21, 20));
        assert!(text(21, 20).ends_with("wait4(-1, <ptr>, 0, NULL) = 2\n[1] wait4(-1, <ptr>, 0, NULL) = 3\n"));
    }
}
