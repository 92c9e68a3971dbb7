//! The consumer's side of the ring ([`Reader`]): what the harness reads
//! from memory the traced program can write.

use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicU64, Ordering};

use super::ring::wake_all;
use super::{Frame, Ring, MAX_RECORD, UNIT};

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
