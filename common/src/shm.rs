//! The shared-memory channel from the preload library to the harness.
//!
//! The harness creates a file (in `/dev/shm`) holding a [`RingHeader`] and
//! [`RING_SLOTS`] fixed-size [`Slot`]s, and names it in the
//! `PROBITY_PRELOAD_RING` environment variable. Every process that loads the
//! preload library maps it shared, so forks keep writing to the same ring
//! and exec'd images map it again.
//!
//! Many producers (threads and processes), one consumer, no locks and no
//! syscalls: a producer claims a slot with a compare-and-swap on `head`,
//! writes it, then publishes it by storing its sequence number. When the
//! ring is full the record is counted in `lost`, never waited for, so a slow
//! or dead harness cannot block the program. Everything here is
//! async-signal-safe.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::EventHeader;

/// `RingHeader::magic`.
pub const RING_MAGIC: u64 = u64::from_le_bytes(*b"PRBTYRNG");
/// `RingHeader::version`: bumped when the layout changes.
pub const RING_VERSION: u32 = 1;
/// Bytes of one slot.
pub const SLOT_SIZE: usize = 512;
/// Default slots in a ring (16 MiB).
pub const RING_SLOTS: u32 = 32768;
/// The environment variable naming the ring file.
pub const RING_ENV: &str = "PROBITY_PRELOAD_RING";
/// Bytes of a function name kept in a record.
pub const NAME_LEN: usize = 32;
/// Arguments a record holds.
pub const MAX_ARGS: usize = 6;
/// Bytes for the strings of one record (304).
pub const STRINGS_LEN: usize = SLOT_SIZE - 16 - core::mem::size_of::<LibcCallFixed>();

/// The start of the ring file. Padded so the counters sit on their own
/// cache lines.
#[repr(C, align(64))]
pub struct RingHeader {
    pub magic: u64,
    pub version: u32,
    /// Slots that follow the header (a power of two).
    pub nslots: u32,
    _pad0: [u8; 48],
    /// The next slot to claim (monotonic; the slot index is `head % nslots`).
    pub head: AtomicU64,
    _pad1: [u8; 56],
    /// The next slot the harness will read.
    pub tail: AtomicU64,
    _pad2: [u8; 56],
    /// Records dropped because the ring was full.
    pub lost: AtomicU64,
    /// Calls not recorded because they happened inside probity's own
    /// recording code (a signal handler interrupting it).
    pub skipped: AtomicU64,
    _pad3: [u8; 48],
}

impl RingHeader {
    /// A header for `nslots` slots (a power of two).
    pub const fn new(nslots: u32) -> Self {
        RingHeader {
            magic: RING_MAGIC,
            version: RING_VERSION,
            nslots,
            _pad0: [0; 48],
            head: AtomicU64::new(0),
            _pad1: [0; 56],
            tail: AtomicU64::new(0),
            _pad2: [0; 56],
            lost: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            _pad3: [0; 48],
        }
    }
}

/// One record's place in the ring.
#[repr(C, align(8))]
pub struct Slot {
    /// `claimed index + 1` once the record is published; anything else
    /// means the slot is empty or being written.
    pub seq: AtomicU64,
    /// Bytes of `data` used.
    pub len: u32,
    _pad: u32,
    pub data: [u8; SLOT_SIZE - 16],
}

/// Bytes of the ring file for `nslots` slots.
pub const fn ring_bytes(nslots: u32) -> usize {
    core::mem::size_of::<RingHeader>() + nslots as usize * SLOT_SIZE
}

/// A ring mapped in memory.
///
/// # Safety
/// `base` must point at a mapping of at least `ring_bytes(nslots)` bytes
/// laid out by this module, shared by every user.
#[derive(Clone, Copy)]
pub struct Ring {
    base: *mut u8,
}

// SAFETY: all shared state is accessed through atomics or through slots
// that one party owns at a time (claimed by CAS, published by `seq`).
unsafe impl Send for Ring {}
// SAFETY: as above.
unsafe impl Sync for Ring {}

impl Ring {
    /// Wraps a mapping; returns `None` when it is not a ring of this version.
    ///
    /// # Safety
    /// `base` must be valid for `len` bytes for as long as the `Ring` is used.
    pub unsafe fn from_raw(base: *mut u8, len: usize) -> Option<Ring> {
        if len < core::mem::size_of::<RingHeader>() || !(base as usize).is_multiple_of(64) {
            return None;
        }
        // SAFETY: the caller vouches for `len` bytes; checked against the header below.
        let h = unsafe { &*base.cast::<RingHeader>() };
        if h.magic != RING_MAGIC || h.version != RING_VERSION || !h.nslots.is_power_of_two() || len < ring_bytes(h.nslots) {
            return None;
        }
        Some(Ring { base })
    }

    /// Wraps a mapping already checked by [`Ring::from_raw`].
    ///
    /// # Safety
    /// `base` must be a pointer `from_raw` accepted, still mapped.
    pub const unsafe fn from_checked(base: *mut u8) -> Ring {
        Ring { base }
    }

    /// The start of the mapping.
    pub fn as_ptr(&self) -> *mut u8 {
        self.base
    }

    pub fn header(&self) -> &RingHeader {
        // SAFETY: checked in `from_raw`.
        unsafe { &*self.base.cast::<RingHeader>() }
    }

    fn slot(&self, index: u64) -> *mut Slot {
        let n = u64::from(self.header().nslots);
        // SAFETY: the index is reduced modulo the slot count checked in `from_raw`.
        unsafe { self.base.add(core::mem::size_of::<RingHeader>()).cast::<Slot>().add((index % n) as usize) }
    }

    /// Writes one record with `fill`, which gets the slot's data and returns
    /// the bytes it used. Counts the record as lost when the ring is full.
    pub fn push(&self, fill: impl FnOnce(&mut [u8; SLOT_SIZE - 16]) -> usize) -> bool {
        let h = self.header();
        let n = u64::from(h.nslots);
        let mut head = h.head.load(Ordering::Relaxed);
        loop {
            let tail = h.tail.load(Ordering::Acquire);
            if head.wrapping_sub(tail) >= n {
                h.lost.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            match h.head.compare_exchange_weak(head, head + 1, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => head = now,
            }
        }
        let slot = self.slot(head);
        // SAFETY: the CAS above gave this producer slot `head` alone until it
        // publishes it; the consumer does not read it before `seq` says so.
        unsafe {
            let len = fill(&mut (*slot).data).min(SLOT_SIZE - 16);
            (*slot).len = len as u32;
            (*slot).seq.store(head + 1, Ordering::Release);
        }
        true
    }

    /// Reads the next published record into `out`, returning its length.
    /// `Err(Pending)` when the next slot was claimed but not yet published.
    pub fn pop(&self, out: &mut [u8; SLOT_SIZE - 16]) -> Result<usize, PopError> {
        let mut len = 0;
        self.pop_with(|bytes| {
            out[..bytes.len()].copy_from_slice(bytes);
            len = bytes.len();
        })?;
        Ok(len)
    }

    /// Hands the next published record to `f` straight from its slot (no
    /// copy), then frees the slot.
    pub fn pop_with(&self, f: impl FnOnce(&[u8])) -> Result<(), PopError> {
        let h = self.header();
        let tail = h.tail.load(Ordering::Relaxed);
        if h.head.load(Ordering::Acquire) == tail {
            return Err(PopError::Empty);
        }
        let slot = self.slot(tail);
        // SAFETY: as `pop`: read only once published, by the one consumer.
        unsafe {
            if (*slot).seq.load(Ordering::Acquire) != tail + 1 {
                return Err(PopError::Pending);
            }
            let len = ((*slot).len as usize).min(SLOT_SIZE - 16);
            f(core::slice::from_raw_parts(core::ptr::addr_of!((*slot).data).cast::<u8>(), len));
            h.tail.store(tail + 1, Ordering::Release);
        }
        Ok(())
    }

    /// Gives up on a slot that was claimed but never published (its writer
    /// died mid-record): counts it as lost and moves on.
    pub fn skip_pending(&self) {
        let h = self.header();
        let tail = h.tail.load(Ordering::Relaxed);
        if h.head.load(Ordering::Acquire) != tail {
            h.lost.fetch_add(1, Ordering::Relaxed);
            h.tail.store(tail + 1, Ordering::Release);
        }
    }
}

/// Why [`Ring::pop`] returned nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PopError {
    /// No record was claimed.
    Empty,
    /// The next record is still being written.
    Pending,
}

/// What a [`ArgSlot`] holds, so the harness can show any hook's record,
/// including hooks users write for their own libraries.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgKind {
    None = 0,
    Int = 1,
    Uint = 2,
    Hex = 3,
    Fd = 4,
    Ptr = 5,
    /// A string in the record's string area.
    Str = 6,
    /// Open flags (`O_*`), decoded like the syscall's.
    OpenFlags = 7,
    /// A file mode, shown in octal.
    Mode = 8,
    /// A socket address, its bytes in the string area.
    Sockaddr = 9,
    /// A list of strings (argv, resolved addresses), NUL-separated in the
    /// string area.
    StrList = 10,
    /// `AT_*` flags.
    AtFlags = 11,
}

impl ArgKind {
    pub const fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::None,
            1 => Self::Int,
            2 => Self::Uint,
            3 => Self::Hex,
            4 => Self::Fd,
            5 => Self::Ptr,
            6 => Self::Str,
            7 => Self::OpenFlags,
            8 => Self::Mode,
            9 => Self::Sockaddr,
            10 => Self::StrList,
            11 => Self::AtFlags,
            _ => return None,
        })
    }
}

/// `ArgSlot::flags`: the string was cut to fit.
pub const ARG_TRUNCATED: u8 = 1;
/// `ArgSlot::flags`: a NULL pointer where a string was expected.
pub const ARG_NULL: u8 = 2;

/// One argument (or the result) of a libc call.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArgSlot {
    /// An [`ArgKind`].
    pub kind: u8,
    /// `ARG_*` flags.
    pub flags: u8,
    /// Offset of its bytes in the string area.
    pub off: u16,
    /// Length of its bytes in the string area.
    pub len: u16,
    pub _pad: u16,
    /// The raw value (the pointer, for strings).
    pub value: u64,
}

/// `LibcCall::flags`: the record was written before the call, which may
/// not return (`exec*`, `exit`); `ret` means nothing.
pub const CALL_BEFORE: u32 = 1;
/// `LibcCall::flags`: the result of a call recorded before it ran
/// (`CALL_BEFORE`), which did return; only `ret`, `errno` and the duration
/// are set.
pub const CALL_RESULT: u32 = 2;

/// The fixed part of a libc call record; strings follow.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LibcCallFixed {
    pub header: EventHeader,
    /// The function's name, NUL-padded.
    pub name: [u8; NAME_LEN],
    /// `CALL_*` flags.
    pub flags: u32,
    /// Arguments used in `args`.
    pub nargs: u32,
    pub args: [ArgSlot; MAX_ARGS],
    /// The result, shown as its kind says.
    pub ret: ArgSlot,
    /// `errno` after the call.
    pub errno: i32,
    pub _pad: u32,
    /// Nanoseconds from entry to return.
    pub duration_ns: u64,
}

/// A whole libc call record as it sits in a slot.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct LibcCall {
    pub fixed: LibcCallFixed,
    pub strings: [u8; STRINGS_LEN],
}

/// The preload library started in a process (once per exec'd image). The
/// header's time is when it finished setting up; the syscalls the thread
/// made between `init_start_ns` and then are the library's own.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Attach {
    pub header: EventHeader,
    /// When the library's initialisation began.
    pub init_start_ns: u64,
}

const _: () = {
    assert!(core::mem::size_of::<RingHeader>() == 256);
    assert!(core::mem::size_of::<Slot>() == SLOT_SIZE);
    assert!(core::mem::size_of::<ArgSlot>() == 16);
    assert!(core::mem::size_of::<LibcCallFixed>() == 24 + NAME_LEN + 8 + 16 * MAX_ARGS + 16 + 8 + 8);
    assert!(core::mem::size_of::<LibcCall>() == SLOT_SIZE - 16);
    assert!(core::mem::size_of::<Attach>() == 32);
};

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec;

    use super::*;

    #[repr(C, align(64))]
    #[derive(Clone, Copy)]
    struct Line([u8; 64]);

    fn ring(nslots: u32) -> (std::vec::Vec<Line>, Ring) {
        let mut mem = vec![Line([0; 64]); ring_bytes(nslots) / 64];
        // SAFETY: a fresh buffer of the right size, initialised below.
        unsafe { mem.as_mut_ptr().cast::<RingHeader>().write(RingHeader::new(nslots)) };
        // SAFETY: the buffer is `ring_bytes(nslots)` long and outlives the ring.
        let ring = unsafe { Ring::from_raw(mem.as_mut_ptr().cast(), ring_bytes(nslots)) }.unwrap();
        (mem, ring)
    }

    #[test]
    fn records_come_out_in_order_and_overflow_is_counted() {
        let (_mem, r) = ring(4);
        for i in 0..6u8 {
            r.push(|d| {
                d[0] = i;
                1
            });
        }
        assert_eq!(r.header().lost.load(Ordering::Relaxed), 2);
        let mut out = [0u8; SLOT_SIZE - 16];
        for i in 0..4u8 {
            assert_eq!(r.pop(&mut out), Ok(1));
            assert_eq!(out[0], i);
        }
        assert_eq!(r.pop(&mut out), Err(PopError::Empty));
    }

    #[test]
    fn many_threads_lose_nothing_when_drained() {
        let (_mem, r) = ring(1024);
        let threads: std::vec::Vec<_> = (0..4u8)
            .map(|t| {
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        r.push(|d| {
                            d[0] = t;
                            1
                        });
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let mut counts = [0; 4];
        let mut out = [0u8; SLOT_SIZE - 16];
        while r.pop(&mut out).is_ok() {
            counts[out[0] as usize] += 1;
        }
        assert_eq!(counts, [200; 4]);
        assert_eq!(r.header().lost.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn foreign_memory_is_not_a_ring() {
        let mut mem = vec![Line([0; 64]); 8];
        // SAFETY: 512 readable bytes.
        assert!(unsafe { Ring::from_raw(mem.as_mut_ptr().cast(), 512) }.is_none());
    }
}
