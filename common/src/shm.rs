//! The shared-memory channel from the preload library to the harness.
//!
//! The harness creates a file (in `/dev/shm`): one page holding a
//! [`RingHeader`], then [`RingHeader::data_bytes`] of records. It names the
//! file in the `PROBITY_PRELOAD_RING` environment variable. Every process
//! that loads the preload library maps it shared, so forks keep writing to
//! the same ring and exec'd images map it again. Both sides map the data
//! area twice, back to back ([`map`]), so a record that runs past the end
//! of the area continues at its start without a copy.
//!
//! Many producers (threads and processes), one consumer, no locks and no
//! syscalls. A record takes whole 64-byte units: a producer claims its
//! units with a compare-and-swap on `head`, writes them, and publishes the
//! record by storing its position (plus one) in the record's first word.
//! The consumer reads records in order, zeroes the first word of every
//! unit it frees (so no stale word can pass for a published record later),
//! and moves `tail`.
//!
//! When the ring is full a producer waits for room, spinning, as long as
//! the consumer shows signs of life (its heartbeat moves) and the harness
//! asked for it (`block`); otherwise, or when the consumer stalls, the
//! record is counted in `lost`. A slow or dead harness therefore cannot
//! block the program for long, and never forever. Everything here is
//! async-signal-safe.

use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::EventHeader;

/// `RingHeader::magic`.
pub const RING_MAGIC: u64 = u64::from_le_bytes(*b"PRBTYRNG");
/// `RingHeader::version`: bumped when the layout changes.
pub const RING_VERSION: u32 = 3;
/// Bytes before the data area: the header, padded to a page so the data
/// area can be mapped on its own.
pub const HEADER_BYTES: usize = 4096;
/// The unit records are made of; records start on a unit.
pub const UNIT: usize = 64;
/// Most bytes of one record, its frame included.
pub const MAX_RECORD: usize = 512;
/// Default bytes of the data area (16 MiB).
pub const RING_DATA_BYTES: usize = 16 << 20;
/// The environment variable naming the ring file.
pub const RING_ENV: &str = "PROBITY_PRELOAD_RING";
/// Most bytes of a function name kept in a record.
pub const NAME_LEN: usize = 63;
/// Arguments a record holds.
pub const MAX_ARGS: usize = 6;

/// `RingHeader::clock`: record times are `CLOCK_MONOTONIC` nanoseconds.
pub const CLOCK_MONOTONIC_NS: u32 = 0;
/// `RingHeader::clock`: record times are time-stamp counter ticks
/// (`rdtsc`); the harness converts them to `CLOCK_MONOTONIC` nanoseconds
/// from pairs of readings it takes while it drains. Chosen by the harness
/// only when the kernel's own clock source is that counter.
pub const CLOCK_TSC: u32 = 1;

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

/// Bytes of address space a [`map`] of that file takes.
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
fn wake_all(word: &AtomicU32) {
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
fn wake_all(_: &AtomicU32) {}

/// A ring mapped in memory.
///
/// # Safety
/// `base` must point at a mapping made by [`map`] (or laid out the same
/// way), shared by every user.
#[derive(Clone, Copy)]
pub struct Ring {
    base: *mut u8,
    /// Bytes of the data area, read once when the ring was wrapped: every
    /// process that maps the ring can write its header, so the harness
    /// never reads the size from there again (a larger one would point its
    /// reads outside the mapping).
    data_bytes: u64,
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
    /// used, with the data area mapped twice as [`map`] does.
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
    fn at(&self, pos: u64) -> *mut u8 {
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

/// The consumer's side of a [`Ring`]: the harness's only way to read it.
///
/// The traced program can write every byte of the mapping, header
/// included, at any time. So the reader keeps its own copy of everything
/// that decides where it reads (the data area's size, in the [`Ring`], and
/// its own `tail`; it only ever writes the shared `tail`, for producers),
/// checks every value it reads from the ring against them before using
/// it, and walks at most one ring's worth of units per call. Whatever is
/// there, it reads only inside the mapping, and every call ends after a
/// bounded amount of work; impossible values are counted
/// ([`Reader::corrupt`]) and skipped, never followed.
pub struct Reader {
    ring: Ring,
    /// The next byte position to read: the shared `tail` is only written.
    tail: u64,
    /// Impossible values seen: a `head` behind `tail` or more than a ring
    /// ahead of it, a published record of no units or more than were
    /// claimed.
    corrupt: u64,
    /// The last impossible `head` counted (the same one is seen on every
    /// look until it changes).
    bad_head: Option<u64>,
    /// Records given up on because they stayed claimed and unpublished.
    abandoned: u64,
}

/// Most units of one record.
const MAX_UNITS: u64 = (MAX_RECORD / UNIT) as u64;

impl Reader {
    /// Reads `ring` from its start (a ring the caller just created, before
    /// any producer could run).
    pub fn new(ring: Ring) -> Reader {
        Reader { ring, tail: 0, corrupt: 0, bad_head: None, abandoned: 0 }
    }

    pub fn ring(&self) -> Ring {
        self.ring
    }

    /// Where this reader is.
    pub fn tail(&self) -> u64 {
        self.tail
    }

    /// Impossible values seen in the ring so far (see [`Reader`]).
    pub fn corrupt(&self) -> u64 {
        self.corrupt
    }

    /// Records given up on by [`Reader::skip_pending`].
    pub fn abandoned(&self) -> u64 {
        self.abandoned
    }

    /// Where producers are, as far as it can be true: between `tail` and
    /// one ring ahead of it. A consumer reads this once per batch and then
    /// only records before it: reading `head` (or a record being written)
    /// while producers write makes their cache lines travel between CPUs
    /// on every record.
    pub fn head(&mut self) -> u64 {
        let head = self.ring.header().head.load(Ordering::Acquire);
        let most = self.tail.saturating_add(self.ring.data_bytes);
        if head >= self.tail && head <= most && head.is_multiple_of(UNIT as u64) {
            return head;
        }
        if self.bad_head != Some(head) {
            self.bad_head = Some(head);
            self.corrupt += 1;
        }
        if head < self.tail {
            self.tail
        } else {
            most
        }
    }

    /// The units of the published record at `pos`, when it is one whose
    /// extent fits before `before`: `Ok(None)` when it is not published
    /// (yet), `Err(())` when its frame is impossible.
    fn published(&self, pos: u64, before: u64) -> Result<Option<u64>, ()> {
        let frame = self.ring.at(pos).cast::<Frame>();
        // SAFETY: a unit-aligned frame inside the mapping; the commit word
        // is atomic, `units` read once, volatile (the program may write it).
        let units = unsafe {
            if (*core::ptr::addr_of!((*frame).commit)).load(Ordering::Acquire) != pos.wrapping_add(1) {
                return Ok(None);
            }
            u64::from(core::ptr::addr_of!((*frame).units).read_volatile())
        };
        // A producer claims a record's units at once, so a record published
        // at `pos < before` ends at or before `before`.
        if units == 0 || units > MAX_UNITS || pos + units * UNIT as u64 > before {
            return Err(());
        }
        Ok(Some(units))
    }

    /// Hands every published record from `tail` up to `before` (at most,
    /// and at most half the data area) to `f` as one span of framed
    /// records (each a [`Frame`] and its payload, padded to whole units:
    /// walk a copy of them with [`Records`]), then frees them. One copy of
    /// a span is far cheaper than one per record. Returns the records
    /// handed over (0 when the next one was impossible, and skipped);
    /// `Err(Pending)` when the next one is claimed but not published yet.
    pub fn pop_span(&mut self, before: u64, f: impl FnOnce(Span<'_>)) -> Result<usize, PopError> {
        let tail = self.tail;
        let before = before.clamp(tail, tail.saturating_add(self.ring.data_bytes));
        let (mut end, mut count) = (tail, 0);
        let mut bad = false;
        while end < before && end - tail < self.ring.data_bytes / 2 {
            match self.published(end, before) {
                Ok(Some(units)) => {
                    end += units * UNIT as u64;
                    count += 1;
                }
                Ok(None) => break,
                Err(()) => {
                    bad = true;
                    break;
                }
            }
        }
        if count == 0 {
            if bad {
                // Not a record a producer wrote: skip its first unit; the
                // next look goes on from there.
                self.corrupt += 1;
                self.free(tail, 1);
                return Ok(0);
            }
            return Err(if self.head() == tail { PopError::Empty } else { PopError::Pending });
        }
        // `end - tail` is at most half the data area plus one record,
        // contiguous from `tail` thanks to the second mapping.
        f(Span { at: self.ring.at(tail), len: (end - tail) as usize, _reader: core::marker::PhantomData });
        self.free(tail, ((end - tail) / UNIT as u64) as usize);
        Ok(count)
    }

    /// Hands the next published record's payload to `f` (a copy of it, as
    /// read), then frees its units. An impossible record is skipped
    /// without calling `f`.
    pub fn pop_with(&mut self, f: impl FnOnce(&[u8])) -> Result<(), PopError> {
        let tail = self.tail;
        let head = self.head();
        if head == tail {
            return Err(PopError::Empty);
        }
        match self.published(tail, head) {
            Ok(None) => Err(PopError::Pending),
            Err(()) => {
                self.corrupt += 1;
                self.free(tail, 1);
                Ok(())
            }
            Ok(Some(units)) => {
                let mut buf = [0u8; MAX_RECORD];
                let len = (units * UNIT as u64) as usize;
                let span = Span { at: self.ring.at(tail), len, _reader: core::marker::PhantomData };
                let n = span.copy_to(&mut buf);
                self.free(tail, units as usize);
                if let Some(rec) = Records::new(&buf[..n]).next() {
                    f(rec);
                }
                Ok(())
            }
        }
    }

    /// Zeroes the first word of `units` units at `tail` and moves past them.
    fn free(&mut self, tail: u64, units: usize) {
        for u in 0..units {
            let word = self.ring.at(tail + (u * UNIT) as u64).cast::<AtomicU64>();
            // SAFETY: unit-aligned words inside the data area; this
            // consumer owns them until `tail` moves.
            unsafe { (*word).store(0, Ordering::Relaxed) };
        }
        self.tail = tail + (units * UNIT) as u64;
        self.ring.header().tail.store(self.tail, Ordering::Release);
    }

    /// Gives up on a record that was claimed but never published (its
    /// writer died mid-record): counts it and moves on. Its length is
    /// unknown, so everything claimed up to `head` now is dropped (at most
    /// one ring's worth); returns how many units that was.
    pub fn skip_pending(&mut self) -> u64 {
        let tail = self.tail;
        let head = self.head();
        if head == tail {
            return 0;
        }
        // Later records may be published already: keep those that are, up
        // to the first unit that looks like a frame of a published record.
        let mut pos = tail + UNIT as u64;
        while pos < head {
            // SAFETY: a unit-aligned word inside the data area.
            let commit = unsafe { (*self.ring.at(pos).cast::<AtomicU64>()).load(Ordering::Acquire) };
            if commit == pos + 1 {
                break;
            }
            pos += UNIT as u64;
        }
        self.abandoned += 1;
        let units = ((pos - tail) / UNIT as u64) as usize;
        self.free(tail, units);
        units as u64
    }

    /// The consumer is alive and looking: lets waiting producers know,
    /// and wakes those sleeping for room. Returns whether any were (as the
    /// ring says: a program can make this true, which costs it only
    /// earlier looks).
    pub fn beat(&self) -> bool {
        let h = self.ring.header();
        h.heartbeat.fetch_add(1, Ordering::Relaxed);
        if h.stalled.load(Ordering::Relaxed) != 0 {
            h.stalled.store(0, Ordering::Relaxed);
        }
        if h.sleepers.load(Ordering::SeqCst) == 0 {
            return false;
        }
        h.wake.fetch_add(1, Ordering::SeqCst);
        wake_all(&h.wake);
        true
    }
}

/// Published records in the ring, handed to [`Reader::pop_span`]'s
/// callback: only to be copied out (the program may be writing them).
pub struct Span<'a> {
    at: *const u8,
    len: usize,
    _reader: core::marker::PhantomData<&'a Reader>,
}

impl Span<'_> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies the span (as much of it as fits) to the start of `dst`;
    /// returns how many bytes that was.
    pub fn copy_to(&self, dst: &mut [u8]) -> usize {
        let n = self.len.min(dst.len());
        // SAFETY: `n` bytes of the span, inside the mapping (see
        // `pop_span`), into as many of `dst`; the two never overlap.
        unsafe { core::ptr::copy_nonoverlapping(self.at, dst.as_mut_ptr(), n) };
        n
    }

    /// Copies the span (as much of it as fits) to the start of `dst`, which
    /// need not be initialised; returns the bytes written, initialised.
    pub fn copy_to_uninit<'d>(&self, dst: &'d mut [MaybeUninit<u8>]) -> &'d mut [u8] {
        let n = self.len.min(dst.len());
        // SAFETY: as in `copy_to`; the first `n` bytes of `dst` are then
        // initialised.
        unsafe {
            core::ptr::copy_nonoverlapping(self.at, dst.as_mut_ptr().cast::<u8>(), n);
            core::slice::from_raw_parts_mut(dst.as_mut_ptr().cast::<u8>(), n)
        }
    }
}

/// The records of a span [`Reader::pop_span`] handed over, copied: each
/// record's payload, in order.
pub struct Records<'a> {
    rest: &'a [u8],
}

impl<'a> Records<'a> {
    pub fn new(span: &'a [u8]) -> Self {
        Records { rest: span }
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.len() < size_of::<Frame>() {
            return None;
        }
        let len = u32::from_ne_bytes([self.rest[8], self.rest[9], self.rest[10], self.rest[11]]) as usize;
        let units = u32::from_ne_bytes([self.rest[12], self.rest[13], self.rest[14], self.rest[15]]) as usize;
        let size = (units.clamp(1, MAX_RECORD / UNIT) * UNIT).min(self.rest.len());
        let payload = &self.rest[size_of::<Frame>()..size];
        let payload = &payload[..len.min(payload.len())];
        self.rest = &self.rest[size..];
        Some(payload)
    }
}

/// Why [`Reader::pop_with`] returned nothing.
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

/// `LibcCallFixed::flags`: the record was written before the call, which
/// may not return (`exec*`, `exit`); `ret` means nothing.
pub const CALL_BEFORE: u16 = 1;
/// `LibcCallFixed::flags`: the result of a call recorded before it ran
/// (`CALL_BEFORE`), which did return; only `ret`, `errno` and `end` are set.
pub const CALL_RESULT: u16 = 2;

/// The fixed part of a libc call record. After it come `name_len` bytes
/// of the function's name, then the string area the argument slots point
/// into, then `nargs` [`ArgSlot`]s (unaligned) to the end of the record.
/// (Strings before slots: a hook writes strings as it goes, and learns how
/// many arguments it has at the end.)
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LibcCallFixed {
    /// `ts_ns` is the time of entry, in the ring's clock (`RingHeader::clock`).
    pub header: EventHeader,
    /// The time of return (of entry, for `CALL_BEFORE`), same clock.
    pub end: u64,
    /// `CALL_*` flags.
    pub flags: u16,
    /// Arguments that follow.
    pub nargs: u8,
    /// Bytes of the name that follows them.
    pub name_len: u8,
    /// `errno` after the call.
    pub errno: i32,
    /// The result, shown as its kind says.
    pub ret: ArgSlot,
}

/// Where a libc call record of `len` payload bytes has its name, strings
/// and argument slots; `None` when they do not fit in it.
pub const fn libc_call_parts(len: usize, nargs: usize, name_len: usize) -> Option<LibcCallParts> {
    let name = size_of::<LibcCallFixed>();
    let strings = name + name_len;
    let args_bytes = nargs * size_of::<ArgSlot>();
    if len < strings + args_bytes {
        return None;
    }
    Some(LibcCallParts { name, strings, args: len - args_bytes })
}

/// Offsets of a libc call record's parts (see [`libc_call_parts`]); each
/// runs to the next, the slots to the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LibcCallParts {
    pub name: usize,
    pub strings: usize,
    pub args: usize,
}

/// Bytes of a libc call record's string area: what is left of the
/// largest record after the frame, the fixed part, every argument and
/// the longest name.
pub const STRINGS_LEN: usize =
    MAX_RECORD - size_of::<Frame>() - size_of::<LibcCallFixed>() - MAX_ARGS * size_of::<ArgSlot>() - NAME_LEN;

/// The preload library started in a process (once per exec'd image). The
/// header's time is when it finished setting up; the syscalls the thread
/// made between `init_start_ns` and then are the library's own. Both
/// times are `CLOCK_MONOTONIC` nanoseconds, whatever the ring's clock.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Attach {
    pub header: EventHeader,
    /// When the library's initialisation began.
    pub init_start_ns: u64,
    /// The address of the ring's `wake` futex in this process (and in the
    /// processes it forks): its waits for room are probity's, not the
    /// program's.
    pub wake_addr: u64,
    /// The parent process (`getppid`) when the harness asked for it
    /// (`RingHeader::parents`), else 0: it links the process into the tree
    /// when only the preload tracer runs.
    pub ppid: u32,
    pub _pad: u32,
}

const _: () = {
    // No implicit padding: four lines of explicitly laid out fields.
    assert!(size_of::<RingHeader>() == 256);
    assert!(core::mem::offset_of!(RingHeader, lost) == 192);
    assert!(size_of::<RingHeader>() <= HEADER_BYTES);
    assert!(size_of::<Frame>() == 16);
    assert!(size_of::<ArgSlot>() == 16);
    assert!(size_of::<LibcCallFixed>() == 24 + 8 + 8 + 16);
    assert!(size_of::<Attach>() == 48);
    assert!(MAX_RECORD.is_multiple_of(UNIT));
    assert!(STRINGS_LEN < u16::MAX as usize);
};

/// Mapping a ring file the way [`Ring`] needs: the header page, then the
/// data area twice in a row.
#[cfg(feature = "mmap")]
pub mod map {
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
}

#[cfg(all(test, feature = "mmap"))]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    /// A ring in a memfd, mapped as the harness and the library map it.
    fn ring(data_bytes: usize, block: bool) -> Ring {
        // SAFETY: plain syscalls on a fresh memfd; the mapping is leaked
        // for the test's life.
        unsafe {
            let fd = libc::memfd_create(c"ring".as_ptr(), 0);
            assert!(fd >= 0);
            assert_eq!(libc::ftruncate(fd, file_bytes(data_bytes) as libc::off_t), 0);
            let p = libc::mmap(
                core::ptr::null_mut(),
                HEADER_BYTES,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            );
            p.cast::<RingHeader>().write(RingHeader::new(data_bytes as u64, CLOCK_MONOTONIC_NS, block));
            libc::munmap(p, HEADER_BYTES);
            let (r, _) = map::map(fd, file_bytes(data_bytes)).unwrap();
            libc::close(fd);
            r
        }
    }

    fn drain(r: &mut Reader) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while r.pop_with(|b| out.push(b.to_vec())).is_ok() {}
        out
    }

    #[test]
    fn records_come_out_in_order_across_the_wrap_and_overflow_is_counted() {
        let r = ring(4096, false);
        let mut reader = Reader::new(r);
        let mut hint = 0;
        // 100-byte payloads take 2 units: 32 fit in 4 KiB.
        for round in 0..3u8 {
            for i in 0..34u8 {
                r.push(&[round ^ i; 100], &mut hint);
            }
            let got = drain(&mut reader);
            assert_eq!(got.len(), 32);
            for (i, rec) in got.iter().enumerate() {
                assert_eq!(rec, &[round ^ i as u8; 100]);
            }
        }
        assert_eq!(r.header().lost.load(Ordering::Relaxed), 6);
        // A record of odd size straddling the end comes out whole.
        r.push(&[7; 300], &mut hint);
        assert_eq!(drain(&mut reader), [[7u8; 300].to_vec()]);
        assert_eq!(reader.corrupt(), 0);
    }

    #[test]
    fn many_threads_lose_nothing_when_producers_wait_for_a_live_consumer() {
        let r = ring(4096, true);
        let stop = std::sync::Arc::new(core::sync::atomic::AtomicBool::new(false));
        let consumer = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut counts = [0u32; 4];
                let mut r = Reader::new(r);
                loop {
                    r.beat();
                    match r.pop_with(|b| {
                        assert!(b[1..].iter().all(|&x| x == b[0]), "a torn record");
                        counts[b[0] as usize] += 1;
                    }) {
                        Ok(()) => {}
                        Err(PopError::Empty) if stop.load(Ordering::Acquire) => break counts,
                        Err(_) => std::thread::yield_now(),
                    }
                }
            })
        };
        let producers: Vec<_> = (0..4u8)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut hint = 0;
                    for i in 0..20_000usize {
                        r.push(&std::vec![t; 20 + i % 200], &mut hint);
                    }
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        stop.store(true, Ordering::Release);
        assert_eq!(consumer.join().unwrap(), [20_000; 4]);
        assert_eq!(r.header().lost.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_stalled_consumer_costs_one_wait_then_records_are_lost_at_once() {
        let r = ring(4096, true);
        let mut hint = 0;
        for _ in 0..32 {
            assert!(r.push(&[1; 100], &mut hint));
        }
        assert!(!r.push(&[1; 100], &mut hint));
        assert_eq!(r.header().stalled.load(Ordering::Relaxed), 1);
        assert!(!r.push(&[1; 100], &mut hint));
        assert_eq!(r.header().waited.load(Ordering::Relaxed), 1);
        assert_eq!(r.header().lost.load(Ordering::Relaxed), 2);
        // The consumer coming back clears it.
        let mut reader = Reader::new(r);
        reader.beat();
        assert_eq!(drain(&mut reader).len(), 32);
        assert!(r.push(&[1; 100], &mut hint));
    }

    #[test]
    fn spans_hand_over_published_records_in_order_across_the_wrap() {
        let r = ring(4096, false);
        let mut reader = Reader::new(r);
        let mut hint = 0;
        let mut got: Vec<Vec<u8>> = Vec::new();
        for round in 0..5u8 {
            for i in 0..20u8 {
                r.push(&std::vec![round ^ i; 1 + usize::from(i) * 7], &mut hint);
            }
            loop {
                let head = reader.head();
                let Ok(n) = reader.pop_span(head, |span| {
                    let mut copy = std::vec![0; span.len()];
                    span.copy_to(&mut copy);
                    got.extend(Records::new(&copy).map(<[u8]>::to_vec));
                }) else {
                    break;
                };
                assert!(n > 0);
            }
        }
        assert_eq!(got.len(), 100);
        for (k, rec) in got.iter().enumerate() {
            let (round, i) = ((k / 20) as u8, (k % 20) as u8);
            assert_eq!(rec, &std::vec![round ^ i; 1 + usize::from(i) * 7]);
        }
        let head = reader.head();
        assert_eq!(reader.pop_span(head, |_| {}), Err(PopError::Empty));
        assert_eq!(reader.corrupt(), 0);
        assert_eq!(r.header().lost.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_record_never_published_is_skipped_and_later_ones_kept() {
        let r = ring(4096, false);
        let h = r.header();
        // A writer claims two units and dies.
        h.head.fetch_add(128, Ordering::AcqRel);
        let mut hint = 0;
        r.push(&[9; 10], &mut hint);
        let mut reader = Reader::new(r);
        assert_eq!(reader.pop_with(|_| {}), Err(PopError::Pending));
        assert_eq!(reader.skip_pending(), 2);
        assert_eq!(drain(&mut reader), [[9u8; 10].to_vec()]);
        assert_eq!(reader.abandoned(), 1);
    }

    #[test]
    fn foreign_memory_is_not_a_ring() {
        #[repr(C, align(64))]
        struct Page([u8; 4096]);
        let mut mem = Page([0; 4096]);
        // SAFETY: 4096 readable bytes.
        assert!(unsafe { Ring::from_raw(mem.0.as_mut_ptr(), 4096) }.is_none());
    }
}

/// The reader fed arbitrary bytes: a ring in a heap buffer (no second
/// mapping, which the reader's soundness does not depend on), header and
/// records written by a hostile program before and between its reads.
/// Runs under Miri too (`cargo +nightly miri test -p probity-common fuzz`).
#[cfg(test)]
mod fuzz {
    extern crate std;
    use std::alloc::{alloc_zeroed, dealloc, Layout};
    use std::vec::Vec;

    use proptest::prelude::*;

    use super::*;

    const DATA: usize = 4096;

    /// A ring over heap memory, freed on drop.
    struct HeapRing {
        base: *mut u8,
        layout: Layout,
    }

    impl HeapRing {
        fn new() -> HeapRing {
            let layout = Layout::from_size_align(mapping_bytes(DATA), UNIT).unwrap();
            // SAFETY: a non-zero size.
            let base = unsafe { alloc_zeroed(layout) };
            assert!(!base.is_null());
            let header = RingHeader::new(DATA as u64, CLOCK_MONOTONIC_NS, false);
            // SAFETY: the buffer holds a header, 64-aligned.
            unsafe { base.cast::<RingHeader>().write(header) };
            HeapRing { base, layout }
        }

        fn ring(&self) -> Ring {
            // SAFETY: the buffer is as long as a mapping and outlives the test.
            unsafe { Ring::from_raw(self.base, self.layout.size()) }.unwrap()
        }

        /// What the program writes: `bytes` at `at`, wrapped to the buffer.
        fn scribble(&self, at: usize, bytes: &[u8]) {
            for (i, &b) in bytes.iter().enumerate() {
                // SAFETY: an offset inside the buffer.
                unsafe { self.base.add((at + i) % self.layout.size()).write_volatile(b) };
            }
        }

        /// A published-looking frame at data unit `unit`, as a forger would.
        fn frame(&self, unit: usize, len: u32, units: u32) {
            let pos = (unit * UNIT) as u64;
            let mut f = [0u8; 16];
            f[..8].copy_from_slice(&(pos + 1).to_ne_bytes());
            f[8..12].copy_from_slice(&len.to_ne_bytes());
            f[12..].copy_from_slice(&units.to_ne_bytes());
            self.scribble(HEADER_BYTES + unit * UNIT, &f);
        }
    }

    impl Drop for HeapRing {
        fn drop(&mut self) {
            // SAFETY: allocated in `new` with this layout.
            unsafe { dealloc(self.base, self.layout) };
        }
    }

    /// Passes of the harness's drain: each takes `head` once and reads up
    /// to it; one write of the program's lands between every two steps.
    /// Returns the payload bytes read.
    fn drain(r: &mut Reader, ring: &HeapRing, mut writes: impl Iterator<Item = (usize, Vec<u8>)>) -> usize {
        let mut read = 0;
        for _ in 0..3 {
            let head = r.head();
            assert!(head >= r.tail() && head - r.tail() <= DATA as u64, "head {head} tail {}", r.tail());
            let mut steps = 0;
            while r.tail() < head {
                steps += 1;
                assert!(steps <= DATA / UNIT + 1, "a pass did not end");
                let before = r.tail();
                let popped = r.pop_span(head, |span| {
                    assert!(span.len() <= DATA / 2 + MAX_RECORD);
                    let mut copy = std::vec![0; span.len()];
                    assert_eq!(span.copy_to(&mut copy), span.len());
                    for rec in Records::new(&copy) {
                        assert!(rec.len() <= MAX_RECORD - size_of::<Frame>());
                        read += rec.len();
                    }
                });
                match popped {
                    Ok(_) => assert!(r.tail() > before),
                    Err(_) => {
                        if r.skip_pending() == 0 {
                            break;
                        }
                    }
                }
                r.beat();
                if let Some((at, bytes)) = writes.next() {
                    ring.scribble(at, &bytes);
                }
            }
        }
        read
    }

    fn writes() -> impl Strategy<Value = Vec<(usize, Vec<u8>)>> {
        prop::collection::vec((0..mapping_bytes(DATA), prop::collection::vec(any::<u8>(), 1..24)), 0..16)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn any_header_and_data_are_read_inside_the_ring_in_bounded_time(
            header in prop::collection::vec(any::<u8>(), 256),
            data in prop::collection::vec(any::<u8>(), 0..DATA),
            frames in prop::collection::vec((0..DATA / UNIT, any::<u32>(), 0u32..12), 0..24),
            head in prop_oneof![Just(u64::MAX), Just(0), 0..2 * DATA as u64, any::<u64>()],
            later in writes(),
        ) {
            let ring = HeapRing::new();
            let wrapped = ring.ring();
            let mut r = Reader::new(wrapped);
            ring.scribble(HEADER_BYTES, &data);
            for &(unit, len, units) in &frames {
                ring.frame(unit, len, units);
            }
            ring.scribble(0, &header);
            wrapped.header().head.store(head, Ordering::Relaxed);
            drain(&mut r, &ring, later.into_iter());
            prop_assert_eq!(r.ring().data_bytes(), DATA as u64);
        }

        #[test]
        fn well_formed_records_come_out_whole_whatever_else_is_written(
            sizes in prop::collection::vec(0usize..MAX_RECORD - 16, 1..20),
            later in writes(),
        ) {
            let ring = HeapRing::new();
            let mut r = Reader::new(ring.ring());
            let mut hint = 0;
            let mut want = 0;
            for (i, &n) in sizes.iter().enumerate() {
                if ring.ring().push(&std::vec![i as u8; n], &mut hint) {
                    want += n;
                }
            }
            let quiet = later.is_empty();
            let read = drain(&mut r, &ring, later.into_iter());
            // Nothing written beside the records: all of them, nothing else.
            if quiet {
                prop_assert_eq!(read, want);
                prop_assert_eq!(r.corrupt(), 0);
            }
        }

        #[test]
        fn records_of_any_bytes_stay_inside_them(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            let mut total = 0;
            for rec in Records::new(&bytes) {
                total += rec.len();
            }
            prop_assert!(total <= bytes.len());
        }

        #[test]
        fn any_header_is_a_ring_only_with_a_size_that_fits(header in prop::collection::vec(any::<u8>(), 64), len in 0usize..3 * DATA + HEADER_BYTES) {
            let ring = HeapRing::new();
            ring.scribble(0, &header);
            ring.scribble(0, &RING_MAGIC.to_ne_bytes());
            ring.scribble(8, &RING_VERSION.to_ne_bytes());
            // SAFETY: at most as long as the buffer.
            let r = unsafe { Ring::from_raw(ring.base, len.min(mapping_bytes(DATA))) };
            if let Some(r) = r {
                prop_assert!(mapping_bytes(r.data_bytes() as usize) <= len);
            }
        }
    }
}
