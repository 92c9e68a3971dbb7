//! What every hook shares: the mapped ring, the per-thread state, the
//! clock, and the recorder the `#[hook]` bodies write with.
//!
//! Nothing here blocks, allocates or takes a lock on the recording path, so
//! hooks are safe in signal handlers and in forked children.

pub(crate) mod arglist;
mod faults;
mod ids;
pub(crate) mod raw_syscall;
mod real;
mod record;
mod ring;
mod thread;
pub(crate) mod vfork;

pub(crate) use ids::after_fork_in_child;

use std::sync::atomic::{AtomicBool, Ordering};

pub use faults::{injected_fault, Injectable};
pub use real::Real;
pub use record::{AsRet, Call, ListWriter, Pending, Rec};
/// Sets up recording in a newly loaded process. It allocates nothing (the
/// program's `malloc` must start as it would untraced) and its syscalls,
/// from `start` on, are announced as the library's.
pub(crate) fn init() {
    let start = now_ns();
    // Panics in probity's recording are caught and counted; the default
    // hook would print to the program's stderr. (This library has its own
    // copy of std, so a Rust program's hook is untouched.) The closure
    // has no state: boxing it allocates nothing.
    std::panic::set_hook(Box::new(|_| {}));
    ids::init();
    faults::init();
    raw_syscall::resolve();
    ring::attach(thread::state(), start);
}

/// Whether records are stamped with the time-stamp counter (the harness
/// said so in the ring's header: the kernel's clock source is that
/// counter, and the harness converts).
static USE_TSC: AtomicBool = AtomicBool::new(false);

/// The time for a record, in the clock the ring's header names: the
/// time-stamp counter (about 10 ns to read) or `CLOCK_MONOTONIC`
/// nanoseconds through the vDSO (about 30 ns). No syscall either way.
#[inline(always)]
pub(crate) fn stamp() -> u64 {
    #[cfg(target_arch = "x86_64")]
    if USE_TSC.load(Ordering::Relaxed) {
        // SAFETY: `rdtsc` has no preconditions on x86_64.
        return unsafe { core::arch::x86_64::_rdtsc() };
    }
    now_ns()
}

/// The monotonic clock the kernel tracer uses too (`bpf_ktime_get_ns`), so
/// both streams merge into one timeline. Read through the vDSO: no syscall.
#[inline]
pub(crate) fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `errno` of the calling thread.
#[inline]
pub(crate) fn errno_ptr() -> *mut libc::c_int {
    // SAFETY: always valid for the calling thread.
    unsafe { libc::__errno_location() }
}
