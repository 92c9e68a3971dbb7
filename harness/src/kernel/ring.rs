//! The kernel's BPF ring buffer, read in batches.
//!
//! The eBPF programs reserve records here (`bpf_ringbuf_output`), and
//! each reservation reads the consumer position to see whether there is
//! room. A reader that moves that position after every record (as aya's
//! `RingBuf` does) takes its cache line away from the producing CPU once
//! per record while it drains, so every traced syscall then waits for
//! the line to come back. This reader walks all the records committed so
//! far, hands each to its caller, and moves the position once at the end
//! of the batch (and every eighth of the ring, at most every
//! [`FREE_EVERY`] bytes, on the way, so that a long batch frees room
//! early).
//!
//! The layout is the kernel's (`kernel/bpf/ringbuf.c`): the consumer
//! position on the first page (the only one user space may write), the
//! producer position on the second, then the data pages, mapped twice in
//! a row so that a record that runs past the end of the area reads on at
//! its start. Each record starts with an 8-byte header: its length, with
//! a busy bit while it is being written and a discard bit if it was
//! dropped, and the record is padded to 8 bytes.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// `BPF_RINGBUF_BUSY_BIT`: the record is still being written.
const BUSY: u32 = 1 << 31;
/// `BPF_RINGBUF_DISCARD_BIT`: the producer dropped the record.
const DISCARD: u32 = 1 << 30;
/// `BPF_RINGBUF_HDR_SZ`.
const HEADER: usize = 8;
/// At most how much a batch reads before it frees what it read.
const FREE_EVERY: u64 = 1 << 20;

/// What one batch found.
#[derive(Default)]
pub(crate) struct Drained {
    /// Records handed over.
    pub records: u64,
    /// A record header gave a length the ring cannot hold. The kernel never
    /// writes one; should it happen, where the next record starts is
    /// unknown, so the rest of the batch was skipped (and is lost).
    pub corrupt: bool,
}

pub(crate) struct Ring {
    fd: OwnedFd,
    /// The consumer page, read-write.
    consumer: *mut libc::c_void,
    /// The producer page and the data area twice, read-only.
    producer: *mut libc::c_void,
    page: usize,
    /// Bytes of data: a power of two.
    size: usize,
    /// Where this reader is: what it has read, not yet all freed.
    pos: u64,
}

// SAFETY: the mappings belong to this value alone, and the kernel side
// only ever synchronizes through the atomic positions and headers.
unsafe impl Send for Ring {}

impl Ring {
    /// Maps the ring buffer map `fd`, whose data area is `size` bytes.
    pub(crate) fn new(fd: OwnedFd, size: u32) -> io::Result<Ring> {
        let size = size as usize;
        if !size.is_power_of_two() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a ring buffer's size is a power of two"));
        }
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let map = |len: usize, prot: libc::c_int, offset: usize| {
            // SAFETY: a new shared mapping of the map's fd; nothing else is
            // at the address the kernel picks.
            let p = unsafe {
                libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_SHARED, fd.as_raw_fd(), offset as libc::off_t)
            };
            if p == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            // The data area is twice the ring, and a forked child that
            // copied this mapping's page table entry by entry would pay
            // milliseconds for it before its exec dropped it again.
            // SAFETY: the mapping just made; only what a child inherits
            // changes. A failure only costs time.
            unsafe { libc::madvise(p, len, libc::MADV_DONTFORK) };
            Ok(p)
        };
        let consumer = map(page, libc::PROT_READ | libc::PROT_WRITE, 0)?;
        let producer = match map(page + 2 * size, libc::PROT_READ, page) {
            Ok(p) => p,
            Err(e) => {
                // SAFETY: the mapping made above, not used since.
                unsafe { libc::munmap(consumer, page) };
                return Err(e);
            }
        };
        let mut ring = Ring { fd, consumer, producer, page, size, pos: 0 };
        ring.pos = ring.consumer_pos().load(Ordering::Acquire);
        Ok(ring)
    }

    fn consumer_pos(&self) -> &AtomicU64 {
        // SAFETY: the consumer position is the first word of its page,
        // mapped for as long as `self` lives.
        unsafe { &*self.consumer.cast::<AtomicU64>() }
    }

    fn producer_pos(&self) -> &AtomicU64 {
        // SAFETY: likewise, on the producer page.
        unsafe { &*self.producer.cast::<AtomicU64>() }
    }

    /// Hands every record committed so far to `f`, oldest first, and
    /// returns how many. Stops early at a record still being written: it
    /// and those after it come with the next batch.
    pub(crate) fn drain(&mut self, mut f: impl FnMut(&[u8])) -> Drained {
        // Acquire: the records before this position are fully written.
        let end = self.producer_pos().load(Ordering::Acquire);
        // SAFETY: the data area starts on the page after the producer's.
        let data = unsafe { self.producer.cast::<u8>().add(self.page) };
        let free_every = FREE_EVERY.min(self.size as u64 / 8);
        let mut freed = self.pos;
        let mut done = Drained::default();
        while self.pos < end {
            let off = (self.pos as usize) & (self.size - 1);
            // SAFETY: `off` is inside the first copy of the data area, and
            // a header is 8-byte aligned there.
            let header = unsafe { &*data.add(off).cast::<AtomicU32>() }.load(Ordering::Acquire);
            if header & BUSY != 0 {
                break;
            }
            let len = (header & !(BUSY | DISCARD)) as usize;
            if len > self.size - HEADER {
                // Reading on would leave the mapping (see `Drained`).
                done.corrupt = true;
                self.pos = end;
                break;
            }
            if header & DISCARD == 0 {
                // SAFETY: the record lies within the two copies of the
                // data area (it starts in the first and is shorter than
                // one), and the kernel does not reuse it until the
                // consumer position passes it.
                f(unsafe { std::slice::from_raw_parts(data.add(off + HEADER), len) });
                done.records += 1;
            }
            self.pos += ((len + HEADER + 7) & !7) as u64;
            if self.pos - freed >= free_every {
                self.consumer_pos().store(self.pos, Ordering::Release);
                freed = self.pos;
            }
        }
        if self.pos != freed {
            // Release: the kernel may reuse the space only after it was read.
            self.consumer_pos().store(self.pos, Ordering::Release);
        }
        done
    }
}

impl AsFd for Ring {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: the two mappings made in `new`, no longer referenced.
        unsafe {
            libc::munmap(self.producer, self.page + 2 * self.size);
            libc::munmap(self.consumer, self.page);
        }
    }
}
