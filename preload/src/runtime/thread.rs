//! Everything the library keeps per thread, in one thread-local block, so
//! a hooked call finds it with one thread-local lookup.

use std::cell::Cell;

/// A thread's recording state.
pub(crate) struct ThreadState {
    /// Set while this thread runs probity's own recording code: a hooked
    /// call made then (from a signal handler, say) is not recorded.
    pub recording: Cell<bool>,
    /// Set while this thread's state is borrowed by a `vfork` child.
    pub in_vfork: Cell<bool>,
    /// The pid of the `vfork` child running on this state, once it has
    /// learned it; 0 otherwise.
    pub vfork_child: Cell<u32>,
    /// (fork generation, pid, tid) last learned, 0 when unknown.
    pub ids: Cell<(u32, u32, u32)>,
    /// This thread's last look at the ring's `tail`.
    pub tail_hint: Cell<u64>,
}

thread_local! {
    static STATE: ThreadState = const {
        ThreadState {
            recording: Cell::new(false),
            in_vfork: Cell::new(false),
            vfork_child: Cell::new(0),
            ids: Cell::new((0, 0, 0)),
            tail_hint: Cell::new(0),
        }
    };
}

/// The calling thread's state. The reference must not leave the thread
/// or outlive the call it was taken for (it is only handed to a `Call`,
/// which is neither `Send` nor kept).
#[inline]
pub(crate) fn state() -> &'static ThreadState {
    // SAFETY: the block has no destructor and lives as long as the thread;
    // callers use it only on this thread, within a hooked call.
    STATE.with(|s| unsafe { &*std::ptr::from_ref(s) })
}
