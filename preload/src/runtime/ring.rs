//! Mapping the harness's ring when the library loads in a process.

use std::sync::atomic::{AtomicPtr, Ordering};

use probity_common::shm::{map::map, Attach, Ring, CLOCK_TSC, RING_ENV};
use probity_common::{EventHeader, EventKind};

/// The mapped ring, or null when this process is not traced.
static RING: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());

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

/// Maps the ring named by the environment, if any, and says hello.
pub(crate) fn attach(init_start_ns: u64) {
    let Some(path) = std::env::var_os(RING_ENV) else { return };
    let Ok(path) = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str())) else { return };
    // SAFETY: plain syscalls on a path we own the string of; the mapping is
    // kept for the life of the process.
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
    let t = super::thread::state();
    let (pid, tid) = super::ids::current(t);
    let hello = Attach {
        header: EventHeader::new(EventKind::PreloadAttach, 0, super::now_ns(), pid, tid),
        init_start_ns,
        wake_addr: ring.wake_addr(),
        // SAFETY: no arguments, no failure.
        ppid: if ring.header().parents.load(Ordering::Relaxed) != 0 { unsafe { libc::getppid() as u32 } } else { 0 },
        _pad: 0,
    };
    let mut hint = t.tail_hint.get();
    ring.push(probity_common::as_bytes(&hello), &mut hint);
    t.tail_hint.set(hint);
}
