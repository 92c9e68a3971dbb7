//! The preload tracer: libc calls recorded by `libprobity_preload.so` in
//! the traced processes, read from a shared-memory ring.
//!
//! A [`PreloadSession`] creates the ring file, tells a command to preload
//! the library (embedded in this crate, see [`library`]), and drains the
//! ring into [`Event`]s. Its records carry the same header as the kernel
//! tracer's and the same clock, so [`crate::merge`] puts both in one
//! timeline.

pub(crate) mod coverage;
mod decode;
pub(crate) mod own;
pub mod library;

use std::ffi::OsString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use probity_common::shm::{ring_bytes, PopError, Ring, RingHeader, RING_ENV, RING_SLOTS};

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
    /// Where and when the library started, once per image.
    pub(crate) attached: Vec<Attached>,
}

/// The library started in a process: its setup ran on `tid` from
/// `start_ns` to `end_ns`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Attached {
    pub pid: u32,
    pub tid: u32,
    pub start_ns: u64,
    pub end_ns: u64,
}

/// The draining thread: it only copies records out of the ring (a hot
/// loop of hooked calls outruns anything slower), so decoding happens
/// later, off the program's back.
struct Drain {
    shared: Arc<Shared>,
    thread: JoinHandle<()>,
}

#[derive(Default)]
struct Shared {
    /// Copied records, each as a little-endian `u32` length and its bytes.
    chunks: Mutex<Vec<Vec<u8>>>,
    stop: AtomicBool,
    /// Records copied so far.
    copied: std::sync::atomic::AtomicU64,
}

// SAFETY: the mapping is owned by the session; the drain thread is joined
// before it is unmapped.
unsafe impl Send for PreloadSession {}

impl PreloadSession {
    /// Creates a ring with `slots` slots (a power of two).
    pub(crate) fn new(slots: u32) -> Result<PreloadSession, Error> {
        let slots = slots.max(2).next_power_of_two();
        let path = ring_path();
        let io = |source| Error::Preload { what: format!("failed to create the preload ring {}", path.display()), source };
        // Only this user's processes may write records into it.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        let len = ring_bytes(slots);
        file.set_len(len as u64).map_err(io)?;
        // SAFETY: a fresh shared mapping of the file we just sized.
        let base = unsafe {
            libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, file.as_raw_fd(), 0)
        };
        if base == libc::MAP_FAILED {
            let _ = std::fs::remove_file(&path);
            return Err(io(std::io::Error::last_os_error()));
        }
        // SAFETY: the mapping is `len` bytes, page-aligned, zero-filled.
        let ring = unsafe {
            base.cast::<RingHeader>().write(RingHeader::new(slots));
            Ring::from_raw(base.cast(), len)
        };
        let ring = ring.expect("a ring laid out just now");
        let shared = Arc::new(Shared::default());
        let thread = std::thread::Builder::new()
            .name("probity-preload".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || drain(ring, &shared)
            })
            .map_err(Error::Thread)?;
        Ok(PreloadSession {
            path,
            ring,
            len,
            drain: Some(Drain { shared, thread }),
            decoder: decode::Decoder::default(),
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

    /// Stops draining, and decodes every record into `out`.
    pub(crate) fn finish(&mut self, out: &mut Vec<Event>) {
        if let Some(d) = self.drain.take() {
            d.shared.stop.store(true, Ordering::Release);
            let _ = d.thread.join();
            let chunks = std::mem::take(&mut *d.shared.chunks.lock().unwrap_or_else(|e| e.into_inner()));
            for chunk in chunks {
                let mut rest = &chunk[..];
                while rest.len() >= 4 {
                    let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                    let Some(record) = rest.get(4..4 + len) else { break };
                    if let Some(at) = self.decoder.push(record, out) {
                        self.attached.push(at);
                    }
                    rest = &rest[4 + len..];
                }
            }
        }
        self.decoder.finish(out);
    }

    /// Records dropped because the ring was full, and calls not recorded
    /// because they came from inside probity's recording code.
    pub(crate) fn losses(&self) -> (u64, u64) {
        let h = self.ring.header();
        (h.lost.load(Ordering::Relaxed), h.skipped.load(Ordering::Relaxed))
    }
}

/// The drain thread: copy every published record out, sleeping briefly
/// only when the ring is empty. On `stop`, take what is left; a slot still
/// claimed but unpublished by then never will be (its writer died).
fn drain(ring: Ring, shared: &Shared) {
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK);
    let mut stuck_since: Option<Instant> = None;
    let mut idle = 0u32;
    loop {
        let popped = ring.pop_with(|bytes| {
            buf.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            buf.extend_from_slice(bytes);
        });
        match popped {
            Ok(()) => {
                shared.copied.fetch_add(1, Ordering::Relaxed);
                idle = 0;
                stuck_since = None;
                if buf.len() >= CHUNK {
                    let full = std::mem::replace(&mut buf, Vec::with_capacity(CHUNK));
                    shared.chunks.lock().unwrap_or_else(|e| e.into_inner()).push(full);
                }
                continue;
            }
            Err(PopError::Pending) => {
                let stopping = shared.stop.load(Ordering::Acquire);
                let since = *stuck_since.get_or_insert_with(Instant::now);
                if stopping || since.elapsed() > STUCK_AFTER {
                    ring.skip_pending();
                    stuck_since = None;
                    continue;
                }
            }
            Err(PopError::Empty) => {
                if shared.stop.load(Ordering::Acquire) {
                    break;
                }
            }
        }
        if !buf.is_empty() {
            let part = std::mem::replace(&mut buf, Vec::with_capacity(CHUNK));
            shared.chunks.lock().unwrap_or_else(|e| e.into_inner()).push(part);
        }
        idle += 1;
        if idle < 100 {
            std::hint::spin_loop();
        } else {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    if !buf.is_empty() {
        shared.chunks.lock().unwrap_or_else(|e| e.into_inner()).push(buf);
    }
}

/// Bytes copied before a chunk is handed over.
const CHUNK: usize = 1 << 20;

impl Drop for PreloadSession {
    fn drop(&mut self) {
        if let Some(d) = self.drain.take() {
            d.shared.stop.store(true, Ordering::Release);
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

/// Default ring size.
pub(crate) const DEFAULT_SLOTS: u32 = RING_SLOTS;
