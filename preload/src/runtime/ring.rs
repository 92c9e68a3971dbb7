//! Mapping the harness's ring when the library loads in a process.

use std::sync::atomic::{AtomicPtr, Ordering};

use probity_common::shm::{Attach, Ring, RING_ENV};
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
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if fd < 0 {
            return;
        }
        let mut st: libc::stat = std::mem::zeroed();
        let ok = libc::fstat(fd, &mut st) == 0;
        let len = st.st_size as usize;
        let base = if ok {
            libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0)
        } else {
            libc::MAP_FAILED
        };
        libc::close(fd);
        if base == libc::MAP_FAILED {
            return;
        }
        let Some(ring) = Ring::from_raw(base.cast(), len) else {
            libc::munmap(base, len);
            return;
        };
        RING.store(base.cast(), Ordering::Release);
        let (pid, tid) = super::ids::current();
        let hello = Attach {
            header: EventHeader::new(EventKind::PreloadAttach, 0, super::now_ns(), pid, tid),
            init_start_ns,
        };
        ring.push(|d| {
            let b = probity_common::as_bytes(&hello);
            d[..b.len()].copy_from_slice(b);
            b.len()
        });
    }
}
