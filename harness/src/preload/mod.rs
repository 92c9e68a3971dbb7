//! The preload tracer: libc calls recorded by `libprobity_preload.so` in
//! the traced processes, read from a shared-memory ring.
//!
//! A [`PreloadSession`] creates the ring file, tells a command to preload
//! the library (embedded in this crate, see [`library`]), and drains the
//! ring into [`Event`]s. Its records carry the same header as the kernel
//! tracer's and the same clock, so [`crate::merge`] puts both in one
//! timeline.

mod clock;
pub(crate) mod coverage;
mod decode;
pub(crate) mod own;
pub mod library;

use std::ffi::OsString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use probity_common::shm::{file_bytes, map::map, valid_data_bytes, Records, Ring, RingHeader, RING_DATA_BYTES, RING_ENV};

use crate::error::Error;
use crate::event::Event;

/// How long a claimed slot may stay unpublished before its writer is
/// taken for dead (killed between claiming and publishing).
const STUCK_AFTER: Duration = Duration::from_millis(200);

/// One session's ring, mapped in this process, and the thread draining it.
pub(crate) struct PreloadSession {
    path: PathBuf,
    ring: Ring,
    len: usize,
    drain: Option<Drain>,
    /// Per-function counts of the calls, once finished.
    counts: Vec<crate::SyscallCount>,
    /// Where and when the library started, once per image.
    pub(crate) attached: Vec<Attached>,
}

/// The library started in a process: its setup ran on `tid` from
/// `start_ns` to `end_ns`, and it sleeps on `wake_addr` when the ring is full.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Attached {
    pub pid: u32,
    pub tid: u32,
    pub start_ns: u64,
    pub end_ns: u64,
    pub wake_addr: u64,
}

/// The draining thread. It copies records out of the ring in batches (a
/// hot loop of hooked calls outruns anything slower), and decodes what it
/// copied while the ring is quiet, so that little is left to decode when
/// the traced tree ends.
struct Drain {
    shared: Arc<Shared>,
    thread: JoinHandle<Drained>,
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
}

/// What the drain thread hands back once it stopped.
struct Drained {
    /// Every libc call, times converted to `CLOCK_MONOTONIC`.
    events: Vec<Event>,
    attached: Vec<Attached>,
    counts: Vec<crate::SyscallCount>,
}

// SAFETY: the mapping is owned by the session; the drain thread is joined
// before it is unmapped.
unsafe impl Send for PreloadSession {}

impl PreloadSession {
    /// Creates a ring with a data area of `bytes` (rounded up to a power
    /// of two). With `block`, a process that finds it full waits for room
    /// while this harness drains it, instead of losing the record. With
    /// `count_only`, libc calls are counted per function as they are
    /// drained, not kept (a summary run).
    pub(crate) fn new(bytes: usize, block: bool, count_only: bool) -> Result<PreloadSession, Error> {
        let data = bytes.next_power_of_two().max(4096);
        let path = ring_path();
        let io = |source| Error::Preload { what: format!("failed to create the preload ring {}", path.display()), source };
        if !valid_data_bytes(data as u64) {
            return Err(io(std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("a ring of {data} bytes is too large"))));
        }
        // Only this user's processes may write records into it.
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        let clock = clock::choose();
        let header = RingHeader::new(data as u64, clock, block);
        let written = std::io::Write::write_all(&mut file, header.as_bytes())
            .and_then(|()| file.set_len(file_bytes(data) as u64));
        let mapped = written.map_err(io).and_then(|()| {
            // SAFETY: the file is open; the mapping is kept until `drop`.
            unsafe { map(file.as_raw_fd(), file_bytes(data)) }.ok_or_else(|| io(std::io::Error::other("failed to map it")))
        });
        let (ring, len) = match mapped {
            Ok(m) => m,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        let shared = Arc::new(Shared::default());
        let thread = std::thread::Builder::new()
            .name("probity-preload".into())
            .spawn({
                let shared = Arc::clone(&shared);
                let counter = count_only.then(decode::Counter::default);
                move || drain(ring, &shared, clock, counter)
            })
            .map_err(Error::Thread)?;
        Ok(PreloadSession {
            path,
            ring,
            len,
            drain: Some(Drain { shared, thread }),
            counts: Vec::new(),
            attached: Vec::new(),
        })
    }

    /// Makes `cmd` preload the library and find this ring.
    pub(crate) fn prepare(&self, cmd: &mut Command) -> Result<(), Error> {
        let lib = library::path()?;
        let mut preload = OsString::from(lib.as_os_str());
        // Keep what the caller preloads already, after ours.
        let existing = cmd
            .get_envs()
            .find(|(k, _)| *k == "LD_PRELOAD")
            .map(|(_, v)| v.map(OsString::from))
            .unwrap_or_else(|| std::env::var_os("LD_PRELOAD"));
        if let Some(existing) = existing.filter(|e| !e.is_empty()) {
            preload.push(":");
            preload.push(existing);
        }
        cmd.env("LD_PRELOAD", preload).env(RING_ENV, &self.path);
        Ok(())
    }

    /// How many records were claimed in the ring so far: when this stops
    /// moving, no traced process is making calls (how a run without the
    /// kernel tracer tells that the tree has ended).
    pub(crate) fn activity(&self) -> u64 {
        self.ring.header().head.load(Ordering::Acquire)
    }

    /// Tells the drain thread to take what is left and stop: the traced
    /// tree has ended. It finishes decoding while the caller does other
    /// work; [`PreloadSession::finish`] waits for it.
    pub(crate) fn stop(&self) {
        if let Some(d) = &self.drain {
            d.shared.stop.store(true, Ordering::Release);
            d.thread.thread().unpark();
        }
    }

    /// Stops draining, and adds every libc call to `out`. Fails only if
    /// the drain thread panicked (a bug): the libc calls are gone then,
    /// and a trace without them must not pass for complete.
    pub(crate) fn finish(&mut self, out: &mut Vec<Event>) -> Result<(), Error> {
        self.stop();
        if let Some(d) = self.drain.take() {
            let drained = d.thread.join().map_err(|_| Error::Preload {
                what: "the thread reading the preload ring panicked, so the libc calls are lost (a bug in probity; please report it)".into(),
                source: std::io::Error::other("panicked"),
            })?;
            self.attached = drained.attached;
            self.counts = drained.counts;
            let mut events = drained.events;
            // Append the shorter of the two: events are a few hundred bytes.
            if out.len() < events.len() {
                std::mem::swap(out, &mut events);
            }
            out.append(&mut events);
        }
        Ok(())
    }

    /// Per-function counts of the libc calls, once finished.
    pub(crate) fn counts(&self) -> &[crate::SyscallCount] {
        &self.counts
    }

    /// Records that waited for room in the ring.
    pub(crate) fn waits(&self) -> u64 {
        self.ring.header().waited.load(Ordering::Relaxed)
    }

    /// Records dropped because the ring was full, and calls not recorded
    /// because they came from inside probity's recording code.
    pub(crate) fn losses(&self) -> (u64, u64) {
        let h = self.ring.header();
        (h.lost.load(Ordering::Relaxed), h.skipped.load(Ordering::Relaxed))
    }
}

/// The drain thread: copy every published record out, in batches. It
/// notes where producers are (`head`), copies everything before that, and
/// sleeps: 1 ms after a batch, longer (up to 4 ms) while the ring stays
/// empty, and only 50 µs while producers are waiting for room. It never
/// chases the producers record by record, which would make the cache
/// lines they write travel to this CPU and back on every call; and it
/// wakes rarely, because on a small machine every wake-up can delay the
/// traced program's own threads (a client and server handing a
/// connection back and forth felt each one). A 16 MiB ring holds several
/// milliseconds of the fastest stream of calls, and a producer that finds
/// it full waits for room rather than lose a call.
///
/// Between batches it decodes what it copied, a slice of time at a time,
/// and looks at the ring again after each slice, so decoding never keeps
/// the ring from being drained; times stay in the ring's clock until the
/// end, when the clock readings around them are all known. On `stop`,
/// take what is left (a record still claimed but unpublished by then
/// never will be: its writer died), decode it, and convert the times.
fn drain(ring: Ring, shared: &Shared, clock: u32, mut counter: Option<decode::Counter>) -> Drained {
    let tsc = clock == probity_common::shm::CLOCK_TSC;
    let mut pairs = Vec::new();
    if tsc {
        pairs.push(clock::pair());
    }
    let mut backlog = Backlog::default();
    let mut decoded = Decoded::default();
    let mut stuck_since: Option<Instant> = None;
    let mut nap = MIN_NAP;
    let mut last_pair = Instant::now();
    loop {
        let stopping = shared.stop.load(Ordering::Acquire);
        let head = ring.head();
        let mut copied = 0u32;
        while ring.tail() < head {
            let popped = ring.pop_span(head, |span| match counter.as_mut() {
                // Counted in place; only what is not a libc call is kept.
                Some(c) => {
                    for record in Records::new(span) {
                        if !c.push(record) {
                            backlog.push_framed(record);
                        }
                    }
                }
                None => backlog.push_span(span),
            });
            match popped {
                Ok(n) => {
                    stuck_since = None;
                    copied += n as u32;
                    ring.beat();
                }
                Err(_) => {
                    // Claimed, not yet published.
                    let since = *stuck_since.get_or_insert_with(Instant::now);
                    if stopping || since.elapsed() > STUCK_AFTER {
                        ring.skip_pending();
                        stuck_since = None;
                        continue;
                    }
                    break;
                }
            }
        }
        // Signs of life for producers waiting for room (and a wake-up for
        // those asleep), and now and then a reading of both clocks for
        // converting counter stamps.
        let woke = ring.beat();
        if tsc && last_pair.elapsed() >= PAIR_EVERY {
            last_pair = Instant::now();
            pairs.push(clock::pair());
        }
        let until = Instant::now() + DECODE_SLICE;
        while !backlog.is_empty() && Instant::now() < until {
            backlog.decode(DECODE_STEP, &mut decoded);
        }
        if stopping && ring.tail() >= ring.head() && backlog.is_empty() {
            break;
        }
        if !backlog.is_empty() && !woke {
            // More to decode: look at the ring again, then go on.
            nap = MIN_NAP;
            continue;
        }
        nap = if woke {
            HURRIED_NAP
        } else if copied > 0 {
            MIN_NAP
        } else {
            (nap * 2).min(MAX_NAP)
        };
        // Woken early (unparked) when the session stops.
        std::thread::park_timeout(nap);
    }
    decoded.decoder.finish(&mut decoded.events);
    if tsc {
        pairs.push(clock::pair());
    }
    let convert = clock::Convert::new(clock, pairs);
    decoded.events.iter_mut().for_each(|e| convert.event(e));
    let counts = match counter {
        Some(c) => c.finish(&convert),
        None => decode::count(&decoded.events),
    };
    Drained { events: decoded.events, attached: decoded.attached, counts }
}

/// Records decoded so far, times in the ring's clock.
#[derive(Default)]
struct Decoded {
    decoder: decode::Decoder,
    events: Vec<Event>,
    attached: Vec<Attached>,
}

/// Records copied out of the ring and not decoded yet, oldest first:
/// whole chunks, then the one being filled. A chunk decoded to its end is
/// reused, so a drain that keeps up holds one chunk.
#[derive(Default)]
struct Backlog {
    full: std::collections::VecDeque<Vec<u8>>,
    current: Vec<u8>,
    /// Bytes of the oldest chunk (the first full one, else `current`)
    /// already decoded.
    done: usize,
    spare: Option<Vec<u8>>,
}

impl Backlog {
    /// Appends a span of framed records as the ring holds them.
    fn push_span(&mut self, span: &[u8]) {
        self.make_room(span.len());
        self.current.extend_from_slice(span);
    }

    /// Appends one record's payload, framed as in the ring (see [`Records`]).
    fn push_framed(&mut self, payload: &[u8]) {
        let units = probity_common::shm::units_for(payload.len());
        self.make_room(units * probity_common::shm::UNIT);
        let buf = &mut self.current;
        let start = buf.len();
        buf.extend_from_slice(&0u64.to_ne_bytes());
        buf.extend_from_slice(&(payload.len() as u32).to_ne_bytes());
        buf.extend_from_slice(&(units as u32).to_ne_bytes());
        buf.extend_from_slice(payload);
        buf.resize(start + units * probity_common::shm::UNIT, 0);
    }

    /// Starts a new chunk when `len` more bytes do not fit the current one.
    fn make_room(&mut self, len: usize) {
        if self.current.len() + len <= self.current.capacity() {
            return;
        }
        let next = match self.spare.take() {
            Some(mut s) if s.capacity() >= len => {
                s.clear();
                s
            }
            // Small at first (most traces are): later chunks are whole
            // and populated.
            _ if self.current.capacity() == 0 => Vec::with_capacity((64 << 10).max(len)),
            _ => new_chunk(CHUNK.max(len)),
        };
        let full = std::mem::replace(&mut self.current, next);
        if full.len() > self.done || !self.full.is_empty() {
            self.full.push_back(full);
        } else {
            // Decoded to its end already.
            self.done = 0;
            self.spare = Some(full);
        }
    }

    fn is_empty(&self) -> bool {
        self.full.is_empty() && self.done >= self.current.len()
    }

    /// Decodes up to `max` records into `out`.
    fn decode(&mut self, max: usize, out: &mut Decoded) {
        let mut n = 0;
        while n < max && !self.is_empty() {
            let chunk = self.full.front().unwrap_or(&self.current);
            let mut records = Records::new(&chunk[self.done..]);
            let mut ended = false;
            while n < max {
                let Some(record) = records.next() else {
                    ended = true;
                    break;
                };
                n += 1;
                if let Some(at) = out.decoder.push(record, &clock::Convert::Identity, &mut out.events) {
                    out.attached.push(at);
                }
            }
            // A chunk holds whole records: what cannot be one is dropped.
            let len = chunk.len();
            self.done = if ended { len } else { len - records.rest().len() };
            if self.done < len {
                break;
            }
            match self.full.pop_front() {
                Some(chunk) => {
                    self.done = 0;
                    if chunk.capacity() >= CHUNK {
                        self.spare = Some(chunk);
                    }
                }
                None => {
                    self.current.clear();
                    self.done = 0;
                }
            }
        }
    }
}

/// Records decoded between two looks at the ring, at most, and how long
/// that may go on before the next look.
const DECODE_STEP: usize = 256;
const DECODE_SLICE: Duration = Duration::from_millis(1);

/// The drain's sleep after a batch, and its longest while the ring is empty.
const MIN_NAP: Duration = Duration::from_millis(1);
const MAX_NAP: Duration = Duration::from_millis(4);
/// Its sleep while producers wait for room.
const HURRIED_NAP: Duration = Duration::from_micros(50);
/// How often both clocks are read while draining.
const PAIR_EVERY: Duration = Duration::from_millis(5);

/// Bytes of a chunk of copied records after the first.
const CHUNK: usize = 4 << 20;

/// An empty buffer of `capacity` bytes whose pages are already there: one
/// `madvise(MADV_POPULATE_WRITE)` instead of a page fault every 4 KiB
/// while the drain copies into it, which made it slower than a tight loop
/// of hooked calls filling the ring. (Without that call, on kernels older
/// than 5.14, the pages fault in as before.)
fn new_chunk(capacity: usize) -> Vec<u8> {
    const MADV_POPULATE_WRITE: libc::c_int = 23;
    let buf: Vec<u8> = Vec::with_capacity(capacity);
    let page = 4096;
    let start = (buf.as_ptr() as usize).next_multiple_of(page);
    let end = (buf.as_ptr() as usize + buf.capacity()) / page * page;
    if end > start {
        // SAFETY: advice on whole pages of this buffer's own allocation;
        // populating does not change its contents' meaning (unused bytes).
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, MADV_POPULATE_WRITE) };
    }
    buf
}

impl Drop for PreloadSession {
    fn drop(&mut self) {
        if let Some(d) = self.drain.take() {
            d.shared.stop.store(true, Ordering::Release);
            d.thread.thread().unpark();
            let _ = d.thread.join();
        }
        // SAFETY: our own mapping, no longer used by anyone here.
        unsafe { libc::munmap(self.ring.as_ptr().cast(), self.len) };
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A fresh ring file name: in `/dev/shm` (memory, not disk) when it exists.
fn ring_path() -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = if std::path::Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
    dir.join(format!("probity-ring-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)))
}

/// Default bytes of a ring's data area.
pub(crate) const DEFAULT_RING_BYTES: usize = RING_DATA_BYTES;

#[cfg(test)]
mod tests {
    use probity_common::shm::{LibcCallFixed, UNIT};
    use probity_common::{as_bytes, EventHeader, EventKind as RecordKind};

    use super::*;
    use crate::event::EventKind;

    /// A libc call record named `f`, stamped `start`..`start + 5`.
    fn call(tid: u32, start: u64) -> Vec<u8> {
        let fixed = LibcCallFixed {
            header: EventHeader::new(RecordKind::LibcCall, 0, start, 1, tid),
            end: start + 5,
            flags: 0,
            nargs: 0,
            name_len: 1,
            errno: 0,
            ret: Default::default(),
        };
        let mut bytes = as_bytes(&fixed).to_vec();
        bytes.push(b'f');
        bytes
    }

    fn starts(d: &Decoded) -> Vec<u64> {
        d.events.iter().map(|e| e.ts_ns).collect()
    }

    #[test]
    fn the_backlog_decodes_every_record_once_in_order_across_chunks_and_slices() {
        let mut backlog = Backlog::default();
        let mut out = Decoded::default();
        // Enough records to fill the small first chunk and a whole one.
        let per_chunk = (64 << 10) / (probity_common::shm::units_for(call(1, 0).len()) * UNIT);
        let total = per_chunk as u64 * 3 + 7;
        for i in 0..total {
            backlog.push_framed(&call(1, i * 10));
            if i % 97 == 0 {
                // Decoding while records keep coming, a few at a time.
                backlog.decode(5, &mut out);
            }
        }
        assert!(!backlog.is_empty());
        while !backlog.is_empty() {
            backlog.decode(DECODE_STEP, &mut out);
        }
        assert_eq!(starts(&out), (0..total).map(|i| i * 10).collect::<Vec<_>>());
        // A drained backlog keeps one chunk to fill again, not all of them.
        assert!(backlog.full.is_empty());
        backlog.push_framed(&call(1, 99_999));
        backlog.decode(DECODE_STEP, &mut out);
        assert_eq!(out.events.last().map(|e| e.ts_ns), Some(99_999));
        assert!(backlog.is_empty());
    }

    #[test]
    fn counter_stamps_decoded_early_convert_as_when_decoded_at_the_end() {
        let convert = clock::Convert::new(
            probity_common::shm::CLOCK_TSC,
            vec![clock::Pair { tsc: 1000, ns: 1000 }, clock::Pair { tsc: 3000, ns: 2000 }],
        );
        let mut raw = Decoded::default();
        let record = call(4, 1000);
        raw.decoder.push(&record, &clock::Convert::Identity, &mut raw.events);
        let mut at_end = Vec::new();
        decode::Decoder::default().push(&record, &convert, &mut at_end);
        let mut early = raw.events.remove(0);
        convert.event(&mut early);
        assert_eq!(early.ts_ns, at_end[0].ts_ns);
        let duration = |e: &Event| match &e.kind {
            EventKind::Libc(c) => c.duration_ns,
            _ => unreachable!("a libc call"),
        };
        assert_eq!(duration(&early), duration(&at_end[0]));
        assert_eq!((early.ts_ns, duration(&early)), (1000, 2));
    }
}
