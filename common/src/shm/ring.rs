//! The ring itself: the header at the start of the file, the frame
//! before each record, and the producers' side ([`Ring`]): claiming units,
//! publishing records and waiting for room.

use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::{HEADER_BYTES, MAX_RECORD, RING_MAGIC, RING_VERSION, UNIT};

/// The start of the ring file. Padded so the counters each side writes
/// sit on their own cache lines.
#[repr(C, align(64))]
pub struct RingHeader {
    pub magic: u64,
    pub version: u32,
    /// How record times are taken: `CLOCK_*`.
    pub clock: u32,
    /// Bytes of the data area (a power of two, a multiple of the page size).
    pub data_bytes: u64,
    /// Non-zero: a producer that finds the ring full waits for room while
    /// the consumer is alive.
    pub block: u32,
    /// Non-zero: the library records its parent's pid when it starts
    /// (`Attach::ppid`), which costs a `getppid` in every process; asked
    /// for only when no kernel tracer shows the tree.
    pub parents: AtomicU32,
    _pad0: [u8; 32],
    /// The next byte position to claim (monotonic; the offset in the data
    /// area is `head % data_bytes`).
    pub head: AtomicU64,
    _pad1: [u8; 56],
    /// The next byte position the harness will read.
    pub tail: AtomicU64,
    /// Moved by the consumer every time it looks at the ring: a producer
    /// waiting for room gives up when this stands still.
    pub heartbeat: AtomicU64,
    /// Set by a producer that gave up waiting; records then are counted
    /// as lost at once, until the consumer clears it.
    pub stalled: AtomicU32,
    /// Bumped by the consumer to wake producers sleeping on it (a futex)
    /// while they wait for room.
    pub wake: AtomicU32,
    /// Producers sleeping on `wake`.
    pub sleepers: AtomicU32,
    _pad2: [u8; 36],
    /// Records dropped because the ring was full.
    pub lost: AtomicU64,
    /// Calls not recorded because they happened inside probity's own
    /// recording code (a signal handler interrupting it).
    pub skipped: AtomicU64,
    /// Records that had to wait for room.
    pub waited: AtomicU64,
    _pad3: [u8; 40],
}

impl RingHeader {
    /// A header for a data area of `data_bytes` bytes.
    pub const fn new(data_bytes: u64, clock: u32, block: bool) -> Self {
        RingHeader {
            magic: RING_MAGIC,
            version: RING_VERSION,
            clock,
            data_bytes,
            block: block as u32,
            parents: AtomicU32::new(0),
            _pad0: [0; 32],
            head: AtomicU64::new(0),
            _pad1: [0; 56],
            tail: AtomicU64::new(0),
            heartbeat: AtomicU64::new(0),
            stalled: AtomicU32::new(0),
            wake: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
            _pad2: [0; 36],
            lost: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            waited: AtomicU64::new(0),
            _pad3: [0; 40],
        }
    }

    /// The header's bytes, for writing it at the start of a ring file.
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: `repr(C)` with explicit padding fields (no implicit
        // padding: the size is asserted below); atomics are plain integers.
        unsafe { core::slice::from_raw_parts((self as *const Self).cast::<u8>(), size_of::<Self>()) }
    }
}

/// The first 16 bytes of every record in the data area.
#[repr(C)]
pub struct Frame {
    /// The record's byte position plus one once it is published; anything
    /// else means it is not (yet) there.
    pub commit: AtomicU64,
    /// Bytes of payload after the frame.
    pub len: u32,
    /// Units the record takes, frame included.
    pub units: u32,
}

/// What [`Ring::push_record`] copies at a time: one SSE register (a loop
/// of these stays inline, where whole units became a `memcpy` call).
#[derive(Clone, Copy)]
#[repr(C, align(16))]
struct Chunk([MaybeUninit<u8>; 16]);

/// Where a producer builds a record before [`Ring::push_record`] copies it:
/// the frame's 16 bytes, then the payload.
#[repr(C, align(64))]
pub struct RecordBuf(pub [MaybeUninit<u8>; MAX_RECORD]);

impl RecordBuf {
    pub const fn new() -> Self {
        RecordBuf([MaybeUninit::uninit(); MAX_RECORD])
    }

    /// The payload area.
    pub fn payload(&mut self) -> *mut u8 {
        // SAFETY: the frame is 16 bytes of the `MAX_RECORD`.
        unsafe { self.0.as_mut_ptr().add(size_of::<Frame>()).cast::<u8>() }
    }
}

impl Default for RecordBuf {
    fn default() -> Self {
        Self::new()
    }
}

/// Bytes of the ring file for a data area of `data_bytes`.
pub const fn file_bytes(data_bytes: usize) -> usize {
    HEADER_BYTES + data_bytes
}

/// Bytes of address space a [`map`](super::map) of that file takes.
pub const fn mapping_bytes(data_bytes: usize) -> usize {
    HEADER_BYTES + 2 * data_bytes
}

/// Whether `data_bytes` is a size a ring can have.
pub const fn valid_data_bytes(data_bytes: u64) -> bool {
    data_bytes.is_power_of_two() && data_bytes >= HEADER_BYTES as u64 && data_bytes <= 1 << 34
}

/// Units a record with `payload` bytes takes.
pub const fn units_for(payload: usize) -> usize {
    (size_of::<Frame>() + payload).div_ceil(UNIT)
}

/// Spins (about 30 ns each) a producer waits for room before sleeping.
const SPINS_BEFORE_SLEEPING: u32 = 2_000;
/// How long one sleep for room lasts at most.
#[cfg(feature = "mmap")]
const SLEEP_NS: i64 = 5_000_000;
/// Sleeps through which the consumer's heartbeat stood still before a
/// waiting producer gives up (a quarter of a second: far longer than the
/// consumer ever sleeps, long enough for it to get a CPU on a busy machine).
const SLEEPS_BEFORE_GIVING_UP: u32 = 50;

/// Sleeps until `word` is no longer `seq`, woken, or `SLEEP_NS` passed.
#[cfg(feature = "mmap")]
fn sleep_on(word: &AtomicU32, seq: u32) {
    let timeout = libc::timespec { tv_sec: 0, tv_nsec: SLEEP_NS };
    // SAFETY: a futex wait on a word of the shared mapping (not private:
    // the consumer is another process), with a valid timeout.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, seq, &timeout) };
}

/// Wakes every producer sleeping on `word`.
#[cfg(feature = "mmap")]
pub(super) fn wake_all(word: &AtomicU32) {
    // SAFETY: a futex wake on a word of the shared mapping.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX) };
}

/// Without the system interface, waiting producers spin.
#[cfg(not(feature = "mmap"))]
fn sleep_on(_: &AtomicU32, _: u32) {
    for _ in 0..SPINS_BEFORE_SLEEPING {
        core::hint::spin_loop();
    }
}

#[cfg(not(feature = "mmap"))]
pub(super) fn wake_all(_: &AtomicU32) {}

/// A ring mapped in memory.
///
/// # Safety
/// `base` must point at a mapping made by [`map`](super::map) (or laid out the same
/// way), shared by every user.
#[derive(Clone, Copy)]
pub struct Ring {
    pub(super) base: *mut u8,
    /// Bytes of the data area, read once when the ring was wrapped: every
    /// process that maps the ring can write its header, so the harness
    /// never reads the size from there again (a larger one would point its
    /// reads outside the mapping).
    pub(super) data_bytes: u64,
}

// SAFETY: all shared state is accessed through atomics or through records
// that one party owns at a time (claimed by CAS, published by `commit`).
unsafe impl Send for Ring {}
// SAFETY: as above.
unsafe impl Sync for Ring {}

impl Ring {
    /// Wraps a mapping of `len` bytes; returns `None` when it is not a ring
    /// of this version or the mapping is too short.
    ///
    /// # Safety
    /// `base` must be valid for `len` bytes for as long as the `Ring` is
    /// used, with the data area mapped twice as [`map`](super::map) does.
    pub unsafe fn from_raw(base: *mut u8, len: usize) -> Option<Ring> {
        if len < HEADER_BYTES || !(base as usize).is_multiple_of(UNIT) {
            return None;
        }
        let h = base.cast::<RingHeader>();
        // SAFETY: the caller vouches for `len >= HEADER_BYTES` bytes. Read
        // once each, volatile: another process may be writing them.
        let (magic, version, data_bytes) = unsafe {
            (
                core::ptr::addr_of!((*h).magic).read_volatile(),
                core::ptr::addr_of!((*h).version).read_volatile(),
                core::ptr::addr_of!((*h).data_bytes).read_volatile(),
            )
        };
        if magic != RING_MAGIC
            || version != RING_VERSION
            || !valid_data_bytes(data_bytes)
            || (len as u64) < mapping_bytes(data_bytes as usize) as u64
        {
            return None;
        }
        Some(Ring { base, data_bytes })
    }

    /// Wraps a mapping already checked by [`Ring::from_raw`], taking its
    /// size from the header again (a producer's view: it trusts its own
    /// process's memory; the harness keeps the `Ring` `from_raw` gave it).
    ///
    /// # Safety
    /// `base` must be a pointer `from_raw` accepted, still mapped, whose
    /// header's `data_bytes` nobody changed.
    pub unsafe fn from_checked(base: *mut u8) -> Ring {
        // SAFETY: the caller vouches for the header.
        let data_bytes = unsafe { core::ptr::addr_of!((*base.cast::<RingHeader>()).data_bytes).read_volatile() };
        Ring { base, data_bytes }
    }

    /// The start of the mapping.
    pub fn as_ptr(&self) -> *mut u8 {
        self.base
    }

    pub fn header(&self) -> &RingHeader {
        // SAFETY: checked in `from_raw`.
        unsafe { &*self.base.cast::<RingHeader>() }
    }

    /// Bytes of the data area, as checked when the ring was wrapped.
    pub fn data_bytes(&self) -> u64 {
        self.data_bytes
    }

    /// The record at byte position `pos` (contiguous for `MAX_RECORD`
    /// bytes thanks to the second mapping).
    pub(super) fn at(&self, pos: u64) -> *mut u8 {
        let off = pos & (self.data_bytes - 1);
        // SAFETY: the offset is inside the first copy of the data area,
        // and the second copy follows it.
        unsafe { self.base.add(HEADER_BYTES + off as usize) }
    }

    /// Writes one record with `payload` as its bytes (cut at
    /// `MAX_RECORD - 16`). `tail_hint` is the caller's last look at `tail`
    /// (any value not past it will do; 0 at first), kept so that the
    /// consumer's line is read only when the ring may be full. Returns
    /// `false` when the record was counted as lost.
    pub fn push(&self, payload: &[u8], tail_hint: &mut u64) -> bool {
        let len = payload.len().min(MAX_RECORD - size_of::<Frame>());
        let Some((head, units)) = self.claim(len, tail_hint) else { return false };
        let rec = self.at(head);
        // SAFETY: `claim` gave this producer the record's units alone until
        // it publishes them; `len` bytes fit after the frame.
        unsafe { core::ptr::copy_nonoverlapping(payload.as_ptr(), rec.add(size_of::<Frame>()), len) };
        self.publish(head, len, units);
        true
    }

    /// Writes the record built in `buf` (its first `len` payload bytes),
    /// copying whole units, which the compiler turns into a few wide moves
    /// instead of a call. As [`Ring::push`] otherwise.
    #[inline]
    pub fn push_record(&self, buf: &RecordBuf, len: usize, tail_hint: &mut u64) -> bool {
        let len = len.min(MAX_RECORD - size_of::<Frame>());
        let Some((head, units)) = self.claim(len, tail_hint) else { return false };
        let rec = self.at(head).cast::<Chunk>();
        let src = buf.0.as_ptr().cast::<Chunk>();
        for c in 0..units * (UNIT / size_of::<Chunk>()) {
            // SAFETY: `claim` gave this producer `units` units at `rec`, and
            // `buf` holds `MAX_RECORD / UNIT >= units` of them, all 16-byte
            // aligned. The frame's bytes copied here are overwritten by
            // `publish` (the consumer only trusts `commit`, stored last).
            unsafe { rec.add(c).write(src.add(c).read()) };
        }
        self.publish(head, len, units);
        true
    }

    /// Claims the units of a record with `len` payload bytes: its byte
    /// position and unit count, or `None` when it was counted as lost.
    #[inline]
    fn claim(&self, len: usize, tail_hint: &mut u64) -> Option<(u64, usize)> {
        let h = self.header();
        let units = units_for(len);
        let bytes = (units * UNIT) as u64;
        let size = self.data_bytes;
        let mut head = h.head.load(Ordering::Relaxed);
        loop {
            // Saturating: a `tail` read after `head` may be past it (other
            // producers and the consumer moved on); the CAS then fails.
            if (head + bytes).saturating_sub(*tail_hint) > size {
                *tail_hint = h.tail.load(Ordering::Acquire);
                if (head + bytes).saturating_sub(*tail_hint) > size {
                    if !self.wait_for_room(head + bytes - size) {
                        h.lost.fetch_add(1, Ordering::Relaxed);
                        return None;
                    }
                    *tail_hint = h.tail.load(Ordering::Acquire);
                    head = h.head.load(Ordering::Relaxed);
                    continue;
                }
            }
            match h.head.compare_exchange_weak(head, head + bytes, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Some((head, units)),
                Err(now) => head = now,
            }
        }
    }

    /// Fills in the frame of the record claimed at `head` and publishes it.
    #[inline]
    fn publish(&self, head: u64, len: usize, units: usize) {
        let frame = self.at(head).cast::<Frame>();
        // SAFETY: the claimed record's frame, 8-aligned (units are 64).
        unsafe {
            core::ptr::addr_of_mut!((*frame).len).write(len as u32);
            core::ptr::addr_of_mut!((*frame).units).write(units as u32);
            (*frame).commit.store(head + 1, Ordering::Release);
        }
    }

    /// Waits until `tail` reaches `need`: `false` when the harness did not
    /// ask for it, or the consumer stopped moving. Spins for a moment, then
    /// sleeps on the `wake` futex (so that on a busy machine the consumer
    /// gets the CPU the waiting producers would burn); the harness takes
    /// these `futex` calls out of the trace.
    #[cold]
    fn wait_for_room(&self, need: u64) -> bool {
        let h = self.header();
        if h.block == 0 || h.stalled.load(Ordering::Relaxed) != 0 {
            return false;
        }
        h.waited.fetch_add(1, Ordering::Relaxed);
        for _ in 0..SPINS_BEFORE_SLEEPING {
            core::hint::spin_loop();
            if h.tail.load(Ordering::Acquire) >= need {
                return true;
            }
        }
        let mut beat = h.heartbeat.load(Ordering::Relaxed);
        let mut still = 0;
        loop {
            let seq = h.wake.load(Ordering::SeqCst);
            h.sleepers.fetch_add(1, Ordering::SeqCst);
            if h.tail.load(Ordering::SeqCst) < need {
                sleep_on(&h.wake, seq);
            }
            h.sleepers.fetch_sub(1, Ordering::SeqCst);
            if h.tail.load(Ordering::Acquire) >= need {
                return true;
            }
            let now = h.heartbeat.load(Ordering::Relaxed);
            if now != beat {
                beat = now;
                still = 0;
            } else {
                still += 1;
                if still >= SLEEPS_BEFORE_GIVING_UP {
                    h.stalled.store(1, Ordering::Relaxed);
                    return false;
                }
            }
        }
    }

    /// Where the `wake` futex is in this mapping (the harness recognises a
    /// producer's sleeps on it by this address).
    pub fn wake_addr(&self) -> u64 {
        core::ptr::addr_of!(self.header().wake) as u64
    }
}

const _: () = {
    // No implicit padding: four lines of explicitly laid out fields.
    assert!(size_of::<RingHeader>() == 256);
    assert!(core::mem::offset_of!(RingHeader, lost) == 192);
    assert!(size_of::<RingHeader>() <= HEADER_BYTES);
    assert!(size_of::<Frame>() == 16);
    assert!(MAX_RECORD.is_multiple_of(UNIT));
};
