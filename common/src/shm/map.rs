//! Mapping a ring file the way [`Ring`] needs: the header page, then the
//! data area twice in a row.

use super::{mapping_bytes, valid_data_bytes, Ring, RingHeader, HEADER_BYTES};

/// Maps the ring file open at `fd`, of `file_len` bytes. Returns the
/// ring and the length to `munmap` it with; `None` when the file is not
/// a ring or a mapping failed (nothing stays mapped then).
///
/// # Safety
/// `fd` must be an open descriptor; the caller keeps the mapping for as
/// long as it uses the ring.
pub unsafe fn map(fd: i32, file_len: usize) -> Option<(Ring, usize)> {
    use libc::{MAP_ANONYMOUS, MAP_FAILED, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, PROT_NONE, PROT_READ, PROT_WRITE};
    if file_len < HEADER_BYTES {
        return None;
    }
    // SAFETY: plain mmap calls; every MAP_FIXED lands inside the
    // reservation made first, which is unmapped whole on failure.
    unsafe {
        let head = libc::mmap(core::ptr::null_mut(), HEADER_BYTES, PROT_READ, MAP_SHARED, fd, 0);
        if head == MAP_FAILED {
            return None;
        }
        let data = (*head.cast::<RingHeader>()).data_bytes;
        libc::munmap(head, HEADER_BYTES);
        if !valid_data_bytes(data) || (file_len as u64) < HEADER_BYTES as u64 + data {
            return None;
        }
        let data = data as usize;
        let total = mapping_bytes(data);
        let base = libc::mmap(core::ptr::null_mut(), total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if base == MAP_FAILED {
            return None;
        }
        let rw = PROT_READ | PROT_WRITE;
        let first = libc::mmap(base, HEADER_BYTES + data, rw, MAP_SHARED | MAP_FIXED, fd, 0);
        let second = libc::mmap(
            base.cast::<u8>().add(HEADER_BYTES + data).cast(),
            data,
            rw,
            MAP_SHARED | MAP_FIXED,
            fd,
            HEADER_BYTES as libc::off_t,
        );
        if first == MAP_FAILED || second == MAP_FAILED {
            libc::munmap(base, total);
            return None;
        }
        match Ring::from_raw(base.cast(), total) {
            Some(r) => Some((r, total)),
            None => {
                libc::munmap(base, total);
                None
            }
        }
    }
}
