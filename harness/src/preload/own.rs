//! The preload library's own syscalls, taken out of the trace.
//!
//! Loading the library and setting it up makes syscalls in every traced
//! process: the dynamic loader opens and maps `libprobity_preload.so`, and
//! the library's constructor learns its ids and maps the ring. They are
//! probity's, not the program's, and would otherwise break assertions such
//! as "writes only under this directory". They are removed and counted in
//! [`crate::Outcome::own_syscalls`]. So are the library's sleeps on the
//! ring's futex while it waits for room (the harness draining too slowly).

use std::collections::HashSet;

use super::Attached;
use crate::event::{Arg, Event, EventKind};

/// Removes the library's syscalls from `events`, which are in start order
/// ([`crate::merge::sort`]); returns how many.
pub(crate) fn strip(events: &mut Vec<Event>, attached: &[Attached], library: &str) -> u64 {
    let before = events.len();
    // Per thread, the file descriptors the loader opened the library on,
    // until it closes them.
    let mut lib_fds: HashSet<(u32, i32)> = HashSet::new();
    let mut drop = vec![false; events.len()];
    let wake_addrs: HashSet<u64> = attached.iter().map(|a| a.wake_addr).collect();
    for (i, e) in events.iter().enumerate() {
        let EventKind::Syscall(s) = &e.kind else { continue };
        if attached.iter().any(|a| a.tid == e.tid && a.start_ns <= e.ts_ns && e.ts_ns <= a.end_ns) {
            drop[i] = true;
            continue;
        }
        let fd_arg = |n: usize| match s.args.get(n) {
            Some(Arg::Fd(fd)) => Some(*fd),
            Some(Arg::Int(v)) => Some(*v as i32),
            _ => None,
        };
        match &*s.name {
            "openat" | "open" if s.path() == Some(library) => {
                if let Some(fd) = s.ret.filter(|&r| r >= 0) {
                    lib_fds.insert((e.tid, fd as i32));
                }
                drop[i] = true;
            }
            "read" | "pread64" | "newfstatat" | "fstat" => {
                drop[i] = fd_arg(0).is_some_and(|fd| lib_fds.contains(&(e.tid, fd)));
            }
            "mmap" => drop[i] = fd_arg(4).is_some_and(|fd| lib_fds.contains(&(e.tid, fd))),
            "futex" => {
                drop[i] = matches!(s.args.first(), Some(Arg::Ptr(a) | Arg::Hex(a)) if wake_addrs.contains(a));
            }
            "close" => {
                if let Some(fd) = fd_arg(0) {
                    drop[i] = lib_fds.remove(&(e.tid, fd));
                }
            }
            _ => {}
        }
    }
    let mut i = 0;
    events.retain(|_| {
        let keep = !drop[i];
        i += 1;
        keep
    });
    (before - events.len()) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Syscall;

    fn futex(ts_ns: u64, tid: u32, addr: u64, op: &str) -> Event {
        Event {
            ts_ns,
            pid: 7,
            tid,
            kind: EventKind::Syscall(Syscall {
                name: "futex".into(),
                nr: 202,
                args: vec![Arg::Ptr(addr), Arg::Flags { value: 0, text: op.into() }, Arg::Int(3)],
                ret: Some(0),
                errno: None,
                duration_ns: 10,
                parent: None,
            }),
        }
    }

    #[test]
    fn sleeps_on_the_rings_futex_are_taken_out_and_the_programs_kept() {
        let ring = Attached { pid: 7, tid: 7, start_ns: 1, end_ns: 2, wake_addr: 0x7f00_0000_0114 };
        let mut events = vec![
            futex(10, 7, 0x7f00_0000_0114, "FUTEX_WAIT"),
            futex(11, 8, 0x5555_0000_0040, "FUTEX_WAIT_PRIVATE"),
            // A forked child sleeps on the same address, inherited.
            futex(12, 9, 0x7f00_0000_0114, "FUTEX_WAIT"),
        ];
        assert_eq!(strip(&mut events, &[ring], "/tmp/libprobity_preload.so"), 2);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].tid, 8);
    }
}
