//! The caller's pid and tid without a syscall per record: cached per
//! thread and refreshed after `fork` (a child inherits its parent's cache).
//!
//! Learning them takes the `getpid` and `gettid` syscalls, which the
//! program did not make: when the library loads (inside its set-up window),
//! and at the first record of each new thread and of each forked child.
//! Those two are bracketed by an announcement of their own (see
//! [`super::ring::announce`]), so the harness cuts them from the trace as
//! it cuts the set-up. Nothing cheaper is exact: the kernel tells a thread
//! its id only through a syscall, and glibc's cached copy lives at an
//! offset of its private thread descriptor that changes between versions.

use std::sync::atomic::{AtomicU32, Ordering};

use super::thread::{state, ThreadState};

/// Bumped in every forked child, so thread caches know they are stale.
static GENERATION: AtomicU32 = AtomicU32::new(1);

/// Only marks the caches stale: the child learns its ids at its first
/// record, inside an announced window, or never if it makes none (most
/// children of a shell exec at once).
pub(crate) extern "C" fn after_fork_in_child() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
    super::faults::after_fork_in_child();
}

/// Registers the fork handler and learns the main thread's ids; called
/// once when the library loads, before the program's `main`, inside the
/// set-up window.
pub(crate) fn init() {
    // SAFETY: a plain C callback with no preconditions. glibc keeps the
    // first handlers in static storage: no allocation.
    unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
    let _ = current(state());
}

/// The process id and thread id of the thread `t` belongs to.
#[inline]
pub(crate) fn current(t: &ThreadState) -> (u32, u32) {
    let generation = GENERATION.load(Ordering::Relaxed);
    let (g, pid, tid) = t.ids.get();
    if g == generation {
        return (pid, tid);
    }
    learn(t, generation)
}

/// Asks the kernel, and tells the harness when it did (once the ring is
/// mapped; before that, the load's own set-up window covers it).
#[cold]
#[inline(never)]
fn learn(t: &ThreadState, generation: u32) -> (u32, u32) {
    let start = super::now_ns();
    // SAFETY: plain syscalls with no arguments.
    let (pid, tid) = unsafe { (libc::getpid() as u32, libc::gettid() as u32) };
    t.ids.set((generation, pid, tid));
    super::ring::announce(t, start, pid, tid, 0);
    (pid, tid)
}
