//! The preload library's own syscalls, taken out of the trace.
//!
//! Loading the library and setting it up makes syscalls in every traced
//! process: the dynamic loader opens and maps `libprobity_preload.so`, and
//! the library's constructor learns its ids and maps the ring. They are
//! probity's, not the program's, and would otherwise break assertions such
//! as "writes only under this directory". They are removed and counted in
//! [`crate::Outcome::own_syscalls`]. So are the library's sleeps on the
//! ring's futex while it waits for room (the harness draining too slowly).

use foldhash::{HashMap, HashSet};

use super::Attached;
use crate::event::{Arg, Event, EventKind};

/// Tells the library's syscalls apart, shown the events one by one with
/// each thread's syscalls in the order the thread made them (the kernel
/// tracer's delivery order, before [`crate::merge::sort`]): which
/// descriptor is the library's depends on the thread's earlier calls.
pub(crate) struct OwnSyscalls<'a> {
    /// Per thread, the windows in which the library set itself up there
    /// (a trace of a large build has thousands).
    setup: HashMap<u32, Vec<(u64, u64)>>,
    library: &'a str,
    /// Per thread, the file descriptors the loader opened the library on,
    /// until it closes them.
    lib_fds: HashSet<(u32, i32)>,
    /// The ring's futex, in every process (a child inherits its parent's).
    wake_addrs: HashSet<u64>,
}

impl<'a> OwnSyscalls<'a> {
    pub(crate) fn new(attached: &'a [Attached], library: &'a str) -> Self {
        let wake_addrs = attached.iter().map(|a| a.wake_addr).collect();
        let mut setup: HashMap<u32, Vec<(u64, u64)>> = HashMap::default();
        for a in attached {
            setup.entry(a.tid).or_default().push((a.start_ns, a.end_ns));
        }
        OwnSyscalls { setup, library, lib_fds: HashSet::default(), wake_addrs }
    }

    /// Whether `e`, the next event (see above), is the library's.
    pub(crate) fn is_own(&mut self, e: &Event) -> bool {
        let EventKind::Syscall(s) = &e.kind else { return false };
        let in_setup = |w: &Vec<(u64, u64)>| w.iter().any(|&(start, end)| start <= e.ts_ns && e.ts_ns <= end);
        if self.setup.get(&e.tid).is_some_and(in_setup) {
            return true;
        }
        let fd_arg = |n: usize| match s.args.get(n) {
            Some(Arg::Fd(fd)) => Some(*fd),
            Some(Arg::Int(v)) => Some(*v as i32),
            _ => None,
        };
        let lib_fds = &mut self.lib_fds;
        match &*s.name {
            "openat" | "open" if s.path() == Some(self.library) => {
                if let Some(fd) = s.ret.filter(|&r| r >= 0) {
                    lib_fds.insert((e.tid, fd as i32));
                }
                true
            }
            // The loader holds the library open only briefly: most of the
            // time there is no descriptor to look for.
            "read" | "pread64" | "newfstatat" | "fstat" if !lib_fds.is_empty() => {
                fd_arg(0).is_some_and(|fd| lib_fds.contains(&(e.tid, fd)))
            }
            "mmap" if !lib_fds.is_empty() => fd_arg(4).is_some_and(|fd| lib_fds.contains(&(e.tid, fd))),
            "close" if !lib_fds.is_empty() => fd_arg(0).is_some_and(|fd| lib_fds.remove(&(e.tid, fd))),
            "futex" => matches!(s.args.first(), Some(Arg::Ptr(a) | Arg::Hex(a)) if self.wake_addrs.contains(a)),
            _ => false,
        }
    }
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
        let ring = Attached { pid: 7, tid: 7, ppid: 1, start_ns: 1, end_ns: 2, wake_addr: 0x7f00_0000_0114 };
        let mut events = vec![
            futex(10, 7, 0x7f00_0000_0114, "FUTEX_WAIT"),
            futex(11, 8, 0x5555_0000_0040, "FUTEX_WAIT_PRIVATE"),
            // A forked child sleeps on the same address, inherited.
            futex(12, 9, 0x7f00_0000_0114, "FUTEX_WAIT"),
        ];
        let attached = [ring];
        let mut own = OwnSyscalls::new(&attached, "/tmp/libprobity_preload.so");
        events.retain(|e| !own.is_own(e));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].tid, 8);
    }

    #[test]
    fn syscalls_inside_any_setup_window_of_their_thread_are_the_librarys() {
        // A thread that execs twice sets the library up twice.
        let attached = [
            Attached { pid: 7, tid: 7, ppid: 1, start_ns: 10, end_ns: 20, wake_addr: 1 },
            Attached { pid: 7, tid: 7, ppid: 1, start_ns: 50, end_ns: 60, wake_addr: 1 },
            Attached { pid: 8, tid: 8, ppid: 1, start_ns: 30, end_ns: 40, wake_addr: 2 },
        ];
        let mut own = OwnSyscalls::new(&attached, "/tmp/libprobity_preload.so");
        let mut is_own = |ts, tid| own.is_own(&futex(ts, tid, 0x99, "FUTEX_WAKE"));
        assert!(is_own(10, 7) && is_own(20, 7) && is_own(55, 7) && is_own(35, 8));
        assert!(!is_own(35, 7), "between its windows");
        assert!(!is_own(15, 8), "another thread's window");
        assert!(!is_own(15, 9), "a thread without one");
    }
}
