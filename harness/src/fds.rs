//! A process's descriptor table, as far as the trace shows it.
//!
//! The table holds what its owner wants to know of each descriptor (where
//! a file is, a UDP socket's addresses); the owner inserts descriptors as
//! the calls that create them succeed, and the table follows the calls
//! that copy and close them: `dup`, `dup2`, `dup3`, `fcntl(F_DUPFD)` and
//! `fcntl(F_DUPFD_CLOEXEC)`, `close`, `close_range`, and close-on-exec at
//! `exec`. A forked process starts with a clone of its parent's table.
//!
//! Known limitations: a copy is a copy of what was known when it was made;
//! what is learned later on one descriptor (a `connect`) is not seen on
//! the others that share its open file description. Descriptors received
//! over a Unix socket or taken with `pidfd_getfd` are not followed.

use foldhash::HashMap;

use crate::event::{Arg, Syscall};

/// The descriptors of one process, each with a `T`.
#[derive(Clone, Debug)]
pub(crate) struct FdTable<T> {
    fds: HashMap<i32, Slot<T>>,
}

#[derive(Clone, Debug)]
struct Slot<T> {
    value: T,
    /// Closed at the next `exec`.
    cloexec: bool,
}

impl<T> Default for FdTable<T> {
    fn default() -> Self {
        FdTable { fds: HashMap::default() }
    }
}

impl<T: Clone> FdTable<T> {
    /// What descriptor `fd` refers to, when the table has it.
    pub(crate) fn get(&self, fd: i32) -> Option<&T> {
        self.fds.get(&fd).map(|s| &s.value)
    }

    /// The same, to change.
    pub(crate) fn get_mut(&mut self, fd: i32) -> Option<&mut T> {
        self.fds.get_mut(&fd).map(|s| &mut s.value)
    }

    /// A descriptor a call created (or replaced).
    pub(crate) fn insert(&mut self, fd: i32, value: T, cloexec: bool) {
        self.fds.insert(fd, Slot { value, cloexec });
    }

    /// The lowest number with no descriptor, which the kernel gives the
    /// next new one: right only when the table is the process's whole one.
    pub(crate) fn lowest_free(&self) -> i32 {
        (0..).find(|fd| !self.fds.contains_key(fd)).unwrap_or(i32::MAX)
    }

    /// An `exec` succeeded: the close-on-exec descriptors are gone.
    pub(crate) fn exec(&mut self) {
        self.fds.retain(|_, s| !s.cloexec);
    }

    /// Follows syscall `s` if it copies or closes descriptors; returns
    /// the descriptor a copy made, when it now names something.
    pub(crate) fn follow(&mut self, s: &Syscall) -> Option<i32> {
        let ret = s.ret?;
        let ok = s.errno.is_none();
        let fd_arg = |n: usize| s.args.get(n).and_then(int_arg).and_then(|v| i32::try_from(v).ok());
        let new_fd = i32::try_from(ret).ok().filter(|_| ok);
        match &*s.name {
            "dup" => {
                if let (Some(new), Some(old)) = (new_fd, fd_arg(0)) {
                    return self.copy(old, new, false);
                }
            }
            "dup2" | "dup3" => {
                if let (true, Some(old), Some(new)) = (ok, fd_arg(0), fd_arg(1)) {
                    let cloexec = s.args.get(2).and_then(int_arg).is_some_and(|f| f & i64::from(libc::O_CLOEXEC) != 0);
                    return self.copy(old, new, cloexec);
                }
            }
            "fcntl" => {
                let cmd = match s.args.get(1) {
                    Some(Arg::Flags { text, .. }) => text.as_str(),
                    _ => "",
                };
                if let (Some(new), Some(old), true) = (new_fd, fd_arg(0), cmd.starts_with("F_DUPFD")) {
                    return self.copy(old, new, cmd == "F_DUPFD_CLOEXEC");
                }
                // Close-on-exec set or cleared on a descriptor.
                if let (true, "F_SETFD", Some(fd)) = (ok, cmd, fd_arg(0)) {
                    let on = s.args.get(2).and_then(int_arg).is_some_and(|f| f & i64::from(libc::FD_CLOEXEC) != 0);
                    if let Some(slot) = self.fds.get_mut(&fd) {
                        slot.cloexec = on;
                    }
                }
            }
            // Only EBADF leaves the descriptor table as it was.
            "close" if s.errno.as_deref() != Some("EBADF") => {
                if let Some(fd) = fd_arg(0) {
                    self.fds.remove(&fd);
                }
            }
            "close_range" => {
                if let (true, Some(lo), Some(hi)) =
                    (ok, s.args.first().and_then(int_arg), s.args.get(1).and_then(int_arg))
                {
                    let (lo, hi) = (lo as u32, hi as u32);
                    let in_range = |fd: i32| (lo..=hi).contains(&(fd as u32));
                    let flags = s.args.get(2).and_then(int_arg).unwrap_or(0);
                    if flags & i64::from(libc::CLOSE_RANGE_CLOEXEC) != 0 {
                        // Marked close-on-exec, not closed.
                        self.fds.iter_mut().filter(|(&fd, _)| in_range(fd)).for_each(|(_, slot)| slot.cloexec = true);
                    } else {
                        self.fds.retain(|&fd, _| !in_range(fd));
                    }
                }
            }
            _ => {}
        }
        None
    }

    /// Makes `new` a copy of `old`; returns `new` when it now names something.
    fn copy(&mut self, old: i32, new: i32, cloexec: bool) -> Option<i32> {
        if old == new {
            return None;
        }
        match self.get(old).cloned() {
            Some(value) => {
                self.insert(new, value, cloexec);
                Some(new)
            }
            None => {
                self.fds.remove(&new);
                None
            }
        }
    }
}

/// Whether syscall `name` is one [`FdTable::follow`] follows.
pub(crate) fn copies_or_closes(name: &str) -> bool {
    matches!(name, "dup" | "dup2" | "dup3" | "fcntl" | "close" | "close_range")
}

/// An integer argument's value, whatever it was decoded as.
pub(crate) fn int_arg(a: &Arg) -> Option<i64> {
    match a {
        Arg::Int(v) => Some(*v),
        Arg::Fd(v) => Some(i64::from(*v)),
        Arg::Flags { value, .. } | Arg::Hex(value) => Some(*value as i64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::test_support::{flags, sys};

    fn call(name: &'static str, args: Vec<Arg>, ret: i64) -> Syscall {
        sys(0, 1, 1, name, args, ret).as_syscall().unwrap().clone()
    }

    #[test]
    fn copies_close_and_exec() {
        let mut t: FdTable<&str> = FdTable::default();
        t.insert(3, "a", false);
        assert_eq!(t.follow(&call("dup", vec![Arg::Fd(3)], 4)), Some(4));
        assert_eq!(t.follow(&call("dup2", vec![Arg::Fd(3), Arg::Fd(10)], 10)), Some(10));
        let dup3 = call("dup3", vec![Arg::Fd(3), Arg::Fd(11), flags(libc::O_CLOEXEC, "O_CLOEXEC")], 11);
        assert_eq!(t.follow(&dup3), Some(11));
        let f = |cmd: i32, text: &str, ret| call("fcntl", vec![Arg::Fd(3), flags(cmd, text), Arg::Fd(20)], ret);
        assert_eq!(t.follow(&f(libc::F_DUPFD, "F_DUPFD", 20)), Some(20));
        assert_eq!(t.follow(&f(libc::F_DUPFD_CLOEXEC, "F_DUPFD_CLOEXEC", 21)), Some(21));
        assert_eq!(t.follow(&f(libc::F_GETFD, "F_GETFD", 0)), None);
        for fd in [3, 4, 10, 11, 20, 21] {
            assert_eq!(t.get(fd), Some(&"a"), "fd {fd}");
        }
        // A copy of nothing empties the target; a failed copy changes nothing.
        assert_eq!(t.follow(&call("dup2", vec![Arg::Fd(99), Arg::Fd(4)], 4)), None);
        assert_eq!(t.get(4), None);
        assert_eq!(t.follow(&call("dup2", vec![Arg::Fd(3), Arg::Fd(4)], -(libc::EBADF as i64))), None);
        assert_eq!(t.get(4), None);
        // A close that failed with EBADF closed nothing; any other closed it.
        t.follow(&call("close", vec![Arg::Fd(3)], -(libc::EBADF as i64)));
        assert!(t.get(3).is_some());
        t.follow(&call("close", vec![Arg::Fd(3)], -(libc::EINTR as i64)));
        assert!(t.get(3).is_none());
        t.follow(&call("close_range", vec![Arg::Fd(20), Arg::Fd(20), flags(0, "0")], 0));
        assert!(t.get(20).is_none() && t.get(21).is_some());
        // Exec closes the close-on-exec ones.
        t.exec();
        assert_eq!((t.get(10), t.get(11), t.get(21)), (Some(&"a"), None, None));
        assert!(["dup", "dup3", "fcntl", "close_range"].iter().all(|n| copies_or_closes(n)));
        assert!(!copies_or_closes("write"));
    }

    #[test]
    fn close_on_exec_set_later_is_followed() {
        let mut t: FdTable<&str> = FdTable::default();
        for fd in [3, 4, 5, 6] {
            t.insert(fd, "a", false);
        }
        // CLOSE_RANGE_CLOEXEC marks, it does not close.
        let cloexec = libc::CLOSE_RANGE_CLOEXEC as i32;
        t.follow(&call("close_range", vec![Arg::Fd(3), Arg::Fd(4), flags(cloexec, "CLOSE_RANGE_CLOEXEC")], 0));
        assert!(t.get(3).is_some() && t.get(4).is_some());
        let setfd =
            |fd, on: i32| call("fcntl", vec![Arg::Fd(fd), flags(libc::F_SETFD, "F_SETFD"), flags(on, "FD_CLOEXEC")], 0);
        t.follow(&setfd(5, libc::FD_CLOEXEC));
        t.follow(&setfd(4, 0));
        t.exec();
        assert_eq!((t.get(3), t.get(4), t.get(5), t.get(6)), (None, Some(&"a"), None, Some(&"a")));
    }
}
