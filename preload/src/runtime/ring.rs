//! Mapping the harness's ring when the library loads in a process, and
//! announcing the windows in which the library makes syscalls of its own.
//!
//! Nothing here allocates: the library's set-up must not be the first
//! user of the program's `malloc` (its first `brk` and `getrandom` would
//! then fall inside the set-up window and vanish from the trace).

use std::ffi::{c_char, CStr};
use std::sync::atomic::{AtomicPtr, Ordering};

use probity_common::shm::{map::map, Attach, Ring, ATTACH_IMAGE, CLOCK_TSC, RING_ENV};
use probity_common::{EventHeader, EventKind};

use super::thread::ThreadState;

/// The mapped ring, or null when this process is not traced.
static RING: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());

unsafe extern "C" {
    /// The process's environment, as the loader handed it to the program.
    static environ: *const *const c_char;
}

/// The ring, when recording is on.
#[inline]
pub(crate) fn ring() -> Option<Ring> {
    let base = RING.load(Ordering::Acquire);
    if base.is_null() {
        return None;
    }
    // SAFETY: `attach` only stores a mapping it checked as a ring, and
    // never unmaps it.
    Some(unsafe { Ring::from_checked(base) })
}

/// The value of `RING_ENV` in the environment.
fn ring_path() -> Option<&'static CStr> {
    env_value(RING_ENV)
}

/// The value of variable `name` in the environment, read in place:
/// `getenv` is one of the library's own hooks, and `std::env` would
/// allocate.
pub(crate) fn env_value(name: &str) -> Option<&'static CStr> {
    // SAFETY: `environ` is a NULL-terminated array of NUL-terminated
    // strings (glibc replaces the array whole when it grows it). At load
    // time only constructors have run, on this thread; the strings found
    // are the kernel's copy on the stack, or ones `setenv` never frees.
    unsafe {
        let mut entry = environ;
        if entry.is_null() {
            return None;
        }
        while !(*entry).is_null() {
            let var = CStr::from_ptr(*entry).to_bytes_with_nul();
            if let Some(value) = var.strip_prefix(name.as_bytes()).and_then(|v| v.strip_prefix(b"=")) {
                return CStr::from_bytes_with_nul(value).ok();
            }
            entry = entry.add(1);
        }
        None
    }
}

/// Maps the ring named by the environment, if any, and says hello: the
/// announcement covers the library's set-up since `init_start_ns`.
pub(crate) fn attach(t: &ThreadState, init_start_ns: u64) {
    let Some(path) = ring_path() else { return };
    // SAFETY: plain syscalls on a NUL-terminated path; the mapping is kept
    // for the life of the process.
    let ring = unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if fd < 0 {
            return;
        }
        let mut st: libc::stat = std::mem::zeroed();
        let mapped = if libc::fstat(fd, &mut st) == 0 { map(fd, st.st_size as usize) } else { None };
        libc::close(fd);
        let Some((ring, _len)) = mapped else { return };
        ring
    };
    if ring.header().clock == CLOCK_TSC {
        super::USE_TSC.store(cfg!(target_arch = "x86_64"), Ordering::Relaxed);
    }
    RING.store(ring.as_ptr(), Ordering::Release);
    let (pid, tid) = super::ids::current(t);
    announce(t, init_start_ns, pid, tid, ATTACH_IMAGE);
}

/// Tells the harness that the syscalls thread `tid` made from `start_ns`
/// until now were the library's; `flags` (`ATTACH_*`) say what the window
/// was. Nothing when the process is not traced.
pub(crate) fn announce(t: &ThreadState, start_ns: u64, pid: u32, tid: u32, flags: u32) {
    let Some(ring) = ring() else { return };
    let hello = Attach {
        header: EventHeader::new(EventKind::PreloadAttach, 0, super::now_ns(), pid, tid),
        init_start_ns: start_ns,
        wake_addr: ring.wake_addr(),
        // SAFETY: no arguments, no failure.
        ppid: if ring.header().parents.load(Ordering::Relaxed) != 0 { unsafe { libc::getppid() as u32 } } else { 0 },
        flags,
    };
    let mut hint = t.tail_hint.get();
    ring.push(probity_common::as_bytes(&hello), &mut hint);
    t.tail_hint.set(hint);
}
