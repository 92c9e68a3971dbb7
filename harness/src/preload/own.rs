//! The preload library's own syscalls, taken out of the trace.
//!
//! Loading the library and setting it up makes syscalls in every traced
//! process: the dynamic loader opens and maps `libprobity_preload.so` and
//! makes its relocated data read-only, and the library's constructor
//! learns its ids and maps the ring. Each new thread and forked child
//! learns its ids (`getpid`, `gettid`) at its first recorded call. They are
//! probity's, not the program's, and would otherwise break assertions such
//! as "writes only under this directory". They are removed and counted in
//! [`crate::Outcome::own_syscalls`]. So are the library's sleeps on the
//! ring's futex while it waits for room (the harness draining too slowly).
//!
//! The library announces the windows in which it made syscalls of its own
//! (an attach record: thread, start, end). Inside one, only the kinds of
//! syscall the library makes there are cut (its ids, and opening a ring
//! file, measuring and mapping it): a signal handler of the program's
//! that runs inside a window keeps its other calls, and a forged
//! announcement can hide no more than those kinds.

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
    /// Per thread, where the loader mapped the library, until it has made
    /// the library's relocated data read-only (`PT_GNU_RELRO`, one
    /// `mprotect` inside the mapping, after the relocations). Meanwhile it
    /// may also map zeroed pages there (a `.bss` that outgrows the file).
    extent: HashMap<u32, (u64, u64)>,
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
        OwnSyscalls { setup, library, lib_fds: HashSet::default(), extent: HashMap::default(), wake_addrs }
    }

    /// Whether `e`, the next event (see above), is the library's.
    pub(crate) fn is_own(&mut self, e: &Event) -> bool {
        let EventKind::Syscall(s) = &e.kind else { return false };
        let in_setup = |w: &Vec<(u64, u64)>| w.iter().any(|&(start, end)| start <= e.ts_ns && e.ts_ns <= end);
        if is_setup_call(s) && self.setup.get(&e.tid).is_some_and(in_setup) {
            return true;
        }
        let fd_arg = |n: usize| match s.args.get(n) {
            Some(Arg::Fd(fd)) => Some(*fd),
            Some(Arg::Int(v)) => Some(*v as i32),
            _ => None,
        };
        let addr_arg = |n: usize| match s.args.get(n) {
            Some(Arg::Ptr(a) | Arg::Hex(a)) => Some(*a),
            Some(Arg::Int(v)) => Some(*v as u64),
            _ => None,
        };
        let lib_fds = &mut self.lib_fds;
        match &*s.name {
            "openat" | "open" if s.path() == Some(std::path::Path::new(self.library)) => {
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
            "mmap" if !lib_fds.is_empty() || !self.extent.is_empty() => {
                if fd_arg(4).is_some_and(|fd| lib_fds.contains(&(e.tid, fd))) {
                    // The first mapping, at an address of the kernel's
                    // choice, reserves the library's whole extent.
                    if let (Some(0), Some(len), Some(base)) = (addr_arg(0), addr_arg(1), s.ret) {
                        self.extent.insert(e.tid, (base as u64, (base as u64).saturating_add(len)));
                    }
                    return true;
                }
                self.in_extent(e.tid, addr_arg(0))
            }
            "mprotect" if !self.extent.is_empty() => {
                let own = self.in_extent(e.tid, addr_arg(0));
                if own {
                    self.extent.remove(&e.tid);
                }
                own
            }
            "close" if !lib_fds.is_empty() => fd_arg(0).is_some_and(|fd| lib_fds.remove(&(e.tid, fd))),
            "futex" => matches!(s.args.first(), Some(Arg::Ptr(a) | Arg::Hex(a)) if self.wake_addrs.contains(a)),
            _ => false,
        }
    }
}

impl OwnSyscalls<'_> {
    /// Whether `addr` lies in the library's mapping on thread `tid`, while
    /// the loader is still setting it up there.
    fn in_extent(&self, tid: u32, addr: Option<u64>) -> bool {
        matches!((self.extent.get(&tid), addr), (Some(&(start, end)), Some(a)) if start <= a && a < end)
    }
}

/// The syscalls the library makes inside an announced window: learning
/// its ids, and opening, measuring and mapping the ring. The only file
/// it opens there is a ring, so a forged window cannot hide the opening
/// of any other.
fn is_setup_call(s: &crate::event::Syscall) -> bool {
    match &*s.name {
        "getpid" | "gettid" | "newfstatat" | "fstat" | "statx" | "mmap" | "munmap" | "close" => true,
        "openat" | "open" => s.path().is_some_and(super::ring_file::is_ring_path),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Syscall;

    fn call(ts_ns: u64, tid: u32, name: &'static str, args: Vec<Arg>, ret: i64) -> Event {
        Event {
            ts_ns,
            pid: 7,
            tid,
            kind: EventKind::Syscall(Syscall {
                name: name.into(),
                nr: 0,
                args,
                ret: Some(ret),
                errno: None,
                duration_ns: 10,
                parent: None,
                injected: false,
            }),
        }
    }

    fn futex(ts_ns: u64, tid: u32, addr: u64, op: &str) -> Event {
        call(ts_ns, tid, "futex", vec![Arg::Ptr(addr), Arg::Flags { value: 0, text: op.into() }, Arg::Int(3)], 0)
    }

    fn getpid(ts_ns: u64, tid: u32) -> Event {
        call(ts_ns, tid, "getpid", vec![], 7)
    }

    #[test]
    fn sleeps_on_the_rings_futex_are_taken_out_and_the_programs_kept() {
        let ring = Attached { pid: 7, tid: 7, ppid: 1, start_ns: 1, end_ns: 2, wake_addr: 0x7f00_0000_0114, flags: 0 };
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
            Attached { pid: 7, tid: 7, ppid: 1, start_ns: 10, end_ns: 20, wake_addr: 1, flags: 0 },
            Attached { pid: 7, tid: 7, ppid: 1, start_ns: 50, end_ns: 60, wake_addr: 1, flags: 0 },
            Attached { pid: 8, tid: 8, ppid: 1, start_ns: 30, end_ns: 40, wake_addr: 2, flags: 0 },
        ];
        let mut own = OwnSyscalls::new(&attached, "/tmp/libprobity_preload.so");
        let mut is_own = |ts, tid| own.is_own(&getpid(ts, tid));
        assert!(is_own(10, 7) && is_own(20, 7) && is_own(55, 7) && is_own(35, 8));
        assert!(!is_own(35, 7), "between its windows");
        assert!(!is_own(15, 8), "another thread's window");
        assert!(!is_own(15, 9), "a thread without one");
    }

    #[test]
    fn inside_a_window_only_what_the_library_does_there_is_cut() {
        // A signal handler of the program's runs while the library learns
        // a new thread's ids: its write and connect stay in the trace.
        let attached = [Attached { pid: 7, ppid: 0, tid: 8, start_ns: 10, end_ns: 20, wake_addr: 1, flags: 0 }];
        let mut own = OwnSyscalls::new(&attached, "/tmp/libprobity_preload.so");
        let write = call(12, 8, "write", vec![Arg::Fd(2), Arg::Int(1)], 1);
        let connect = call(13, 8, "connect", vec![Arg::Fd(3)], 0);
        let gettid = call(14, 8, "gettid", vec![], 8);
        assert!(!own.is_own(&write) && !own.is_own(&connect));
        assert!(own.is_own(&getpid(11, 8)) && own.is_own(&gettid));
    }

    #[test]
    fn inside_a_window_only_a_ring_is_opened() {
        let attached = [Attached { pid: 7, ppid: 0, tid: 8, start_ns: 10, end_ns: 20, wake_addr: 1, flags: 0 }];
        let mut own = OwnSyscalls::new(&attached, "/tmp/libprobity_preload.so");
        let open = |path: &str| {
            call(12, 8, "openat", vec![Arg::Fd(-100), Arg::Path { path: path.into(), truncated: false }], 3)
        };
        assert!(own.is_own(&open("/dev/shm/probity-ring-4026531836-4242-123456-0123456789abcdef")));
        assert!(!own.is_own(&open("/dev/shm/probity-ring-planted")));
        assert!(!own.is_own(&open("/home/user/.ssh/id_ed25519")));
    }

    #[test]
    fn the_loaders_bss_and_relro_calls_for_the_library_are_cut_once() {
        let lib = "/tmp/libprobity_preload.so";
        let mut own = OwnSyscalls::new(&[], lib);
        let open = call(1, 7, "openat", vec![Arg::Fd(-100), Arg::Path { path: lib.into(), truncated: false }], 3);
        let base = 0x7f00_0000_0000u64;
        let reserve = call(
            2,
            7,
            "mmap",
            vec![Arg::Ptr(0), Arg::Int(0x7_6000), Arg::Hex(1), Arg::Hex(2), Arg::Fd(3), Arg::Int(0)],
            base as i64,
        );
        // The library's `.bss` outgrows its last file page, then libc's
        // mapping goes on the same way.
        let bss = call(
            3,
            7,
            "mmap",
            vec![Arg::Ptr(base + 0x7_5000), Arg::Int(430), Arg::Hex(3), Arg::Hex(0x32), Arg::Fd(-1), Arg::Int(0)],
            0,
        );
        let libc_bss = call(
            3,
            7,
            "mmap",
            vec![Arg::Ptr(0x7e00_0000_0000), Arg::Int(430), Arg::Hex(3), Arg::Hex(0x32), Arg::Fd(-1), Arg::Int(0)],
            0,
        );
        let close = call(3, 7, "close", vec![Arg::Fd(3)], 0);
        let mprotect =
            |ts, tid, addr| call(ts, tid, "mprotect", vec![Arg::Ptr(addr), Arg::Int(0x4000), Arg::Hex(1)], 0);
        assert!(own.is_own(&open) && own.is_own(&reserve) && own.is_own(&bss) && own.is_own(&close));
        assert!(!own.is_own(&libc_bss));
        // libc's relro, then another thread's call in the range: not the library's.
        assert!(!own.is_own(&mprotect(4, 7, 0x7e00_0000_0000)));
        assert!(!own.is_own(&mprotect(5, 9, base + 0x6_0000)));
        assert!(own.is_own(&mprotect(6, 7, base + 0x6_0000)));
        // The program's own, later, in the same range: kept.
        assert!(!own.is_own(&mprotect(7, 7, base + 0x6_0000)));
    }
}
