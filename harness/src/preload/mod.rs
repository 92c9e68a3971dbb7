//! The preload tracer: libc calls recorded by `libprobity_preload.so` in
//! the traced processes, read from a shared-memory ring.
//!
//! A [`PreloadSession`] creates the ring file, tells a command to preload
//! the library (embedded in this crate, see [`library`]), and drains the
//! ring into [`Event`]s. Its records carry the same header as the kernel
//! tracer's and the same clock, so [`crate::merge`] puts both in one
//! timeline.

mod claims;
mod clock;
pub(crate) mod coverage;
mod decode;
pub mod library;
pub(crate) mod own;
pub(crate) mod ring_file;

use std::ffi::{OsStr, OsString};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use probity_common::shm::{
    file_bytes, map::map, valid_data_bytes, Reader, Records, Ring, RingHeader, RING_DATA_BYTES, RING_ENV,
};

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
    decoder: decode::Decoder,
    /// The ring's clock (`CLOCK_*`).
    clock: u32,
    /// Per-function counts of the calls, once finished.
    counts: Vec<crate::SyscallCount>,
    /// Where and when the library started, once per image.
    pub(crate) attached: Vec<Attached>,
    /// Records dropped as invalid, once finished (see [`PreloadSession::invalid`]).
    invalid: u64,
    /// Without the kernel tracer: the root's program and argv, which no
    /// record shows exec'd (the library loads after that exec).
    root_exec: std::sync::OnceLock<(String, Vec<String>)>,
    /// Records the drain gave up on (claimed, never published), once finished.
    abandoned: u64,
}

/// The library started in a process: its setup ran on `tid` from
/// `start_ns` to `end_ns`, and it sleeps on `wake_addr` when the ring is full.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Attached {
    pub pid: u32,
    pub tid: u32,
    /// Its parent, as the library asked (`getppid`).
    pub ppid: u32,
    pub start_ns: u64,
    pub end_ns: u64,
    pub wake_addr: u64,
    /// `ATTACH_*` bits: a new image, a `vfork` child, or neither.
    pub flags: u32,
}

/// The draining thread: it only copies records out of the ring (a hot
/// loop of hooked calls outruns anything slower), so decoding happens
/// later, off the program's back.
struct Drain {
    shared: Arc<Shared>,
    /// Returns the counts, when it counted calls instead of keeping them.
    thread: JoinHandle<Option<decode::Counter>>,
}

#[derive(Default)]
struct Shared {
    /// Copied records, framed as in the ring (see [`Records`]).
    chunks: Mutex<Vec<Vec<u8>>>,
    stop: AtomicBool,
    /// Readings of the counter and the monotonic clock, when records are
    /// stamped with the counter.
    pairs: Mutex<Vec<clock::Pair>>,
    /// Impossible values the drain met in the ring ([`Reader::corrupt`]).
    corrupt: AtomicU64,
    /// Records the drain gave up on ([`Reader::abandoned`]).
    abandoned: AtomicU64,
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
        if !valid_data_bytes(data as u64) {
            return Err(Error::Preload {
                what: "failed to create the preload ring".into(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("a ring of {data} bytes is too large"),
                ),
            });
        }
        let ring_file::RingFile { path, mut file } = ring_file::create(file_bytes(data))?;
        let io =
            |source| Error::Preload { what: format!("failed to create the preload ring {}", path.display()), source };
        let clock = clock::choose();
        let header = RingHeader::new(data as u64, clock, block);
        // The file's pages are already reserved (see `ring_file`).
        let written = std::io::Write::write_all(&mut file, header.as_bytes());
        let mapped = written.map_err(io).and_then(|()| {
            // SAFETY: the file is open; the mapping is kept until `drop`.
            unsafe { map(file.as_raw_fd(), file_bytes(data)) }
                .ok_or_else(|| io(std::io::Error::other("failed to map it")))
        });
        let (ring, len) = match mapped {
            Ok(m) => m,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        let shared = Arc::new(Shared::default());
        if clock == probity_common::shm::CLOCK_TSC {
            shared.pairs.lock().unwrap_or_else(|e| e.into_inner()).push(clock::pair());
        }
        let thread = std::thread::Builder::new()
            .name("probity-preload".into())
            .spawn({
                let shared = Arc::clone(&shared);
                let counter = count_only.then(decode::Counter::default);
                move || drain(ring, &shared, clock == probity_common::shm::CLOCK_TSC, counter)
            })
            .map_err(Error::Thread)?;
        Ok(PreloadSession {
            path,
            ring,
            len,
            drain: Some(Drain { shared, thread }),
            decoder: decode::Decoder::default(),
            clock,
            counts: Vec::new(),
            attached: Vec::new(),
            invalid: 0,
            abandoned: 0,
            root_exec: std::sync::OnceLock::new(),
        })
    }

    /// With `on` (no kernel tracer), the library records each process's
    /// parent, so that the records alone build the tree ([`claims`]), and
    /// the root's exec of `cmd` is kept for the trace.
    pub(crate) fn record_parents(&self, on: bool, cmd: &std::process::Command) {
        self.ring.header().parents.store(u32::from(on), Ordering::Relaxed);
        if on {
            let path = cmd.get_envs().find(|(k, _)| *k == "PATH").and_then(|(_, v)| v.map(OsString::from));
            let program = crate::tracer::resolve_in(cmd.get_program(), path.or_else(|| std::env::var_os("PATH")))
                .map_or_else(|_| cmd.get_program().to_owned(), PathBuf::into_os_string);
            let text = |s: &OsStr| s.to_string_lossy().into_owned();
            let argv = std::iter::once(text(cmd.get_program())).chain(cmd.get_args().map(text)).collect();
            let _ = self.root_exec.set((text(&program), argv));
        }
    }

    /// The root's program and argv, when [`PreloadSession::record_parents`] kept them.
    pub(crate) fn root_exec(&self) -> Option<(String, Vec<String>)> {
        self.root_exec.get().cloned()
    }

    /// The variables that make a command preload the library and find
    /// this ring: `LD_PRELOAD` (ours first, then what `existing` preloads
    /// already) and the ring's name.
    pub(crate) fn variables(&self, existing: Option<&OsStr>) -> Result<[(OsString, OsString); 2], Error> {
        let lib = library::path()?;
        let mut preload = OsString::from(lib.as_os_str());
        if let Some(existing) = existing.filter(|e| !e.is_empty()) {
            preload.push(":");
            preload.push(existing);
        }
        Ok([("LD_PRELOAD".into(), preload), (RING_ENV.into(), self.path.clone().into_os_string())])
    }

    /// How many records were claimed in the ring so far: when this stops
    /// moving, no traced process is making calls (how a run without the
    /// kernel tracer tells that the tree has ended).
    pub(crate) fn activity(&self) -> u64 {
        self.ring.header().head.load(Ordering::Acquire)
    }

    /// Stops draining, decodes every record into `out`, and drops those
    /// that do not fit the tree ([`claims`]): `out` holds the kernel
    /// tracer's events already when `kernel`, and `root` is the root
    /// process; `excluded`: the kernel tracer left out processes that
    /// gained privilege, so records it cannot place are dropped uncounted.
    pub(crate) fn finish(&mut self, out: &mut Vec<Event>, root: u32, kernel: bool, excluded: bool) {
        if let Some(d) = self.drain.take() {
            d.shared.stop.store(true, Ordering::Release);
            d.thread.thread().unpark();
            let counter = d.thread.join().ok().flatten();
            let chunks = std::mem::take(&mut *d.shared.chunks.lock().unwrap_or_else(|e| e.into_inner()));
            let mut pairs = std::mem::take(&mut *d.shared.pairs.lock().unwrap_or_else(|e| e.into_inner()));
            if self.clock == probity_common::shm::CLOCK_TSC {
                pairs.push(clock::pair());
            }
            let convert = clock::Convert::new(self.clock, pairs);
            let first = out.len();
            for chunk in chunks {
                for record in Records::new(&chunk) {
                    if let Some(at) = self.decoder.push(record, &convert, out) {
                        self.attached.push(at);
                    }
                }
            }
            self.decoder.finish(out);
            let dropped = claims::drop_invalid_counted(out, first, &mut self.attached, root, kernel, excluded);
            self.abandoned = d.shared.abandoned.load(Ordering::Relaxed);
            self.invalid = d.shared.corrupt.load(Ordering::Relaxed) + self.decoder.invalid + dropped;
            self.counts = match counter {
                Some(c) => {
                    self.invalid += c.invalid;
                    c.finish(&convert)
                }
                None => decode::count(&out[first..]),
            };
        }
    }

    /// Records dropped as invalid, once finished: impossible values in the
    /// ring, records the library does not write, and records of processes
    /// outside the traced tree or contradicting the kernel's view of it.
    pub(crate) fn invalid(&self) -> u64 {
        self.invalid
    }

    /// Per-function counts of the libc calls, once finished.
    pub(crate) fn counts(&self) -> &[crate::SyscallCount] {
        &self.counts
    }

    /// Records that waited for room in the ring.
    pub(crate) fn waits(&self) -> u64 {
        self.ring.header().waited.load(Ordering::Relaxed)
    }

    /// Records dropped because the ring was full (as producers counted
    /// them in the ring) or given up on by the drain (their writer died
    /// before publishing them), and calls not recorded because they came
    /// from inside probity's recording code.
    pub(crate) fn losses(&self) -> (u64, u64) {
        let h = self.ring.header();
        (h.lost.load(Ordering::Relaxed).saturating_add(self.abandoned), h.skipped.load(Ordering::Relaxed))
    }
}

/// The drain thread: copy every published record out, in batches. It
/// notes where producers are (`head`), copies everything before that, and
/// sleeps: after a batch, until the ring would be a quarter full at the
/// rate records came (from 1 to 8 ms, less for a ring smaller than the
/// default 16 MiB), as long while it stays empty, and only 50 µs while
/// producers are waiting for room. It never
/// chases the producers record by record, which would make the cache
/// lines they write travel to this CPU and back on every call; and it
/// wakes rarely, because on a small machine every wake-up can delay the
/// traced program's own threads (a client and server handing a
/// connection back and forth felt each one). A 16 MiB ring holds several
/// milliseconds of the fastest stream of calls, and a producer that finds
/// it full waits for room rather than lose a call. On `stop`, take what
/// is left; a record still claimed but unpublished by then never will be
/// (its writer died).
fn drain(ring: Ring, shared: &Shared, tsc: bool, mut counter: Option<decode::Counter>) -> Option<decode::Counter> {
    // Small at first (most traces are): later chunks are whole and
    // populated.
    let mut buf: Vec<u8> = Vec::with_capacity(64 << 10);
    // Where a span is copied to be counted in place.
    let mut scratch: Vec<u8> = Vec::new();
    let mut reader = Reader::new(ring);
    let mut stuck_since: Option<Instant> = None;
    let mut nap = MIN_NAP;
    let mut last_pair = Instant::now();
    let mut last_look = Instant::now();
    // Passes made since `stop`: a ring that producers (or a program
    // writing it) keep filling is taken as it is after a few.
    let mut passes_stopping = 0;
    // A ring smaller than the default fills sooner after a quiet spell:
    // its longest sleep is shorter in proportion.
    let longest = MAX_NAP.mul_f64((ring.data_bytes() as f64 / RING_DATA_BYTES as f64).min(1.0)).max(MIN_NAP);
    loop {
        let stopping = shared.stop.load(Ordering::Acquire);
        let tail_before = reader.tail();
        let head = reader.head();
        let mut copied = 0u32;
        while reader.tail() < head {
            let popped = reader.pop_span(head, |span| match counter.as_mut() {
                // Counted in place; only what is not a libc call is kept.
                Some(c) => {
                    scratch.resize(span.len(), 0);
                    let n = span.copy_to(&mut scratch);
                    for record in Records::new(&scratch[..n]) {
                        if !c.push(record) {
                            frame_into(&mut buf, record);
                        }
                    }
                }
                None => {
                    if buf.len() + span.len() > buf.capacity() {
                        let full = std::mem::replace(&mut buf, new_chunk(CHUNK.max(span.len())));
                        if !full.is_empty() {
                            shared.chunks.lock().unwrap_or_else(|e| e.into_inner()).push(full);
                        }
                    }
                    let n = span.copy_to_uninit(buf.spare_capacity_mut()).len();
                    // SAFETY: `copy_to_uninit` initialised the first `n`
                    // bytes of the spare capacity.
                    unsafe { buf.set_len(buf.len() + n) };
                }
            });
            match popped {
                Ok(n) => {
                    stuck_since = None;
                    copied += n as u32;
                    reader.beat();
                }
                Err(_) => {
                    // Claimed, not yet published.
                    let since = *stuck_since.get_or_insert_with(Instant::now);
                    if stopping || since.elapsed() > STUCK_AFTER {
                        stuck_since = None;
                        // Nothing to skip: `head` moved back (only a
                        // program writing the ring does that).
                        if reader.skip_pending() > 0 {
                            continue;
                        }
                    }
                    break;
                }
            }
        }
        // Signs of life for producers waiting for room (and a wake-up for
        // those asleep), and now and then a reading of both clocks for
        // converting counter stamps.
        let woke = reader.beat();
        if tsc && last_pair.elapsed() >= PAIR_EVERY {
            last_pair = Instant::now();
            shared.pairs.lock().unwrap_or_else(|e| e.into_inner()).push(clock::pair());
        }
        if stopping {
            passes_stopping += 1;
            if reader.tail() >= reader.head() || passes_stopping > STOPPING_PASSES {
                break;
            }
        }
        // At the rate records came since the last look, sleep until the
        // ring would be a quarter full (a slow stream costs few wake-ups,
        // a fast one is drained often).
        let bytes = reader.tail().saturating_sub(tail_before);
        let since = std::mem::replace(&mut last_look, Instant::now()).elapsed();
        nap = if woke {
            HURRIED_NAP
        } else if copied > 0 {
            let quarter = ring.data_bytes() / 4;
            since.mul_f64(quarter as f64 / bytes.max(1) as f64).clamp(MIN_NAP, longest)
        } else {
            (nap * 2).min(longest)
        };
        // Woken early (unparked) when the session stops.
        std::thread::park_timeout(nap);
    }
    if !buf.is_empty() {
        shared.chunks.lock().unwrap_or_else(|e| e.into_inner()).push(buf);
    }
    shared.corrupt.store(reader.corrupt(), Ordering::Relaxed);
    shared.abandoned.store(reader.abandoned(), Ordering::Relaxed);
    counter
}

/// Passes the drain makes after `stop` before it takes the ring as it is.
const STOPPING_PASSES: u32 = 3;

/// The drain's shortest sleep after a batch, and its longest (a slow
/// stream, or an empty ring).
const MIN_NAP: Duration = Duration::from_millis(1);
const MAX_NAP: Duration = Duration::from_millis(8);
/// Its sleep while producers wait for room.
const HURRIED_NAP: Duration = Duration::from_micros(50);
/// How often both clocks are read while draining.
const PAIR_EVERY: Duration = Duration::from_millis(5);

/// Appends `payload` to `buf` framed as in the ring (see [`Records`]).
fn frame_into(buf: &mut Vec<u8>, payload: &[u8]) {
    let units = probity_common::shm::units_for(payload.len());
    let start = buf.len();
    buf.extend_from_slice(&0u64.to_ne_bytes());
    buf.extend_from_slice(&(payload.len() as u32).to_ne_bytes());
    buf.extend_from_slice(&(units as u32).to_ne_bytes());
    buf.extend_from_slice(payload);
    buf.resize(start + units * probity_common::shm::UNIT, 0);
}

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

/// Default bytes of a ring's data area.
pub(crate) const DEFAULT_RING_BYTES: usize = RING_DATA_BYTES;
