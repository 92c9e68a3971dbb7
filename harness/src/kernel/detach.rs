//! Detaching classic tracepoints off the critical path.
//!
//! Closing the last reference to a perf event with a BPF program on a
//! classic tracepoint waits for an RCU grace period: 70 to 90 ms each here,
//! about half a second for the network probes, paid when a session ends or
//! the process exits (and so by every `probity run` and every test process).
//!
//! A small process forked right after attaching keeps a second reference
//! to each of those perf events. This process's own closes are then cheap,
//! and the slow releases happen in that process, which waits until this
//! one has let go (a pipe reaching end of file) and then exits. It is
//! forked twice so it belongs to init rather than becoming a zombie here,
//! and it closes every other descriptor (standard output included, so a
//! test runner waiting for end of file on it is not held up).

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// The write end of the holder's pipe: dropping it lets the holder go.
pub(crate) struct Holder {
    _release: OwnedFd,
}

/// The descriptors of this process that are perf events or BPF links
/// (aya attaches a program to a perf event through a link where it can).
pub(crate) fn perf_event_fds() -> Vec<RawFd> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return Vec::new() };
    let mut fds: Vec<RawFd> = dir
        .filter_map(Result::ok)
        .filter(|e| {
            std::fs::read_link(e.path())
                .is_ok_and(|t| t.as_os_str() == "anon_inode:[perf_event]" || t.as_os_str() == "anon_inode:bpf_link")
        })
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    fds
}

/// Forks the holder of the perf event descriptors opened since `before`
/// was taken, if any. On any failure they are released the slow way.
pub(crate) fn hold_perf_events(before: &[RawFd]) -> Option<Holder> {
    let keep: Vec<RawFd> = perf_event_fds().into_iter().filter(|fd| !before.contains(fd)).collect();
    if keep.is_empty() || keep.len() > 63 {
        return None;
    }
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ok()?;
    let read_fd = read.as_raw_fd();
    // SAFETY: the child runs only async-signal-safe syscalls on values
    // prepared before the fork, then `_exit`s.
    match unsafe { libc::fork() } {
        -1 => None,
        // SAFETY: this is the freshly forked child.
        0 => unsafe { holder(read_fd, &keep) },
        pid => {
            drop(read);
            // Reap the first child, which exits at once.
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            Some(Holder { _release: write })
        }
    }
}

/// The forked side: fork again, keep `keep` and `read`, wait for end of
/// file on `read`, exit.
///
/// # Safety
/// Only in a child just forked; never returns.
unsafe fn holder(read: RawFd, keep: &[RawFd]) -> ! {
    // SAFETY: async-signal-safe syscalls only.
    unsafe {
        if libc::fork() != 0 {
            libc::_exit(0);
        }
        libc::setsid();
        // `keep` is sorted; with `read` added, close every gap between them.
        let mut wanted = [0 as RawFd; 64];
        let mut n = 0;
        for &fd in keep {
            wanted[n] = fd;
            n += 1;
        }
        wanted[n] = read;
        n += 1;
        wanted[..n].sort_unstable();
        let mut from: RawFd = 0;
        for &fd in &wanted[..n] {
            if fd > from {
                close_range(from, fd - 1);
            }
            from = fd + 1;
        }
        close_range(from, RawFd::MAX);
        let mut b = 0u8;
        while libc::read(read, std::ptr::from_mut(&mut b).cast(), 1) < 0 && *libc::__errno_location() == libc::EINTR {}
        libc::_exit(0)
    }
}

/// Closes `first..=last`, with `close_range(2)` where the kernel has it.
///
/// # Safety
/// Only in the holder, whose other descriptors are not in use.
unsafe fn close_range(first: RawFd, last: RawFd) {
    // SAFETY: a plain syscall; on failure (before Linux 5.9) close one by
    // one up to a bound.
    unsafe {
        if libc::syscall(libc::SYS_close_range, first as libc::c_uint, last as libc::c_uint, 0) != 0 {
            for fd in first..=last.min(4095) {
                libc::close(fd);
            }
        }
    }
}
