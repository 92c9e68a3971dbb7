//! The caller's pid and tid without a syscall per record: cached per
//! thread and refreshed after `fork` (a child inherits its parent's cache).
//! The `getpid`/`gettid` syscalls this takes happen when the library loads,
//! inside `fork`, and at a new thread's first recorded call.

use std::sync::atomic::{AtomicU32, Ordering};

use super::thread::{state, ThreadState};

/// Bumped in every forked child, so thread caches know they are stale.
static GENERATION: AtomicU32 = AtomicU32::new(1);

extern "C" fn after_fork_in_child() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
    // Asked now, inside `fork`, rather than at the child's first record:
    // the two syscalls then sit under the fork call in the trace instead
    // of between two of the program's own.
    let _ = current(state());
}

/// Registers the fork handler and learns the main thread's ids; called
/// once when the library loads, before the program's `main`.
pub(crate) fn init() {
    // SAFETY: a plain C callback with no preconditions.
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
    // SAFETY: plain syscalls with no arguments.
    let (pid, tid) = unsafe { (libc::getpid() as u32, libc::gettid() as u32) };
    t.ids.set((generation, pid, tid));
    (pid, tid)
}
