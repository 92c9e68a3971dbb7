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
pub mod library;

use std::ffi::OsString;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use probity_common::shm::{ring_bytes, PopError, Ring, RingHeader, RING_ENV, RING_SLOTS, SLOT_SIZE};

use crate::error::Error;
use crate::event::Event;

/// How long a claimed slot may stay unpublished before its writer is
/// taken for dead (killed between claiming and publishing).
const STUCK_AFTER: Duration = Duration::from_millis(200);

/// One session's ring, mapped in this process.
pub(crate) struct PreloadSession {
    path: PathBuf,
    ring: Ring,
    len: usize,
    decoder: decode::Decoder,
    /// Since when the next slot has been claimed but not published.
    stuck_since: Option<Instant>,
    /// Where and when the library started: (pid, time), once per image.
    pub(crate) attached: Vec<(u32, u64)>,
}

// SAFETY: the mapping is owned by the session and used from one thread at a time.
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
        Ok(PreloadSession {
            path,
            ring,
            len,
            decoder: decode::Decoder::default(),
            stuck_since: None,
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

    /// Decodes every published record into `out`.
    pub(crate) fn drain(&mut self, out: &mut Vec<Event>) {
        let mut buf = Box::new([0u8; SLOT_SIZE - 16]);
        loop {
            match self.ring.pop(&mut buf) {
                Ok(len) => {
                    self.stuck_since = None;
                    if let Some(at) = self.decoder.push(&buf[..len], out) {
                        self.attached.push(at);
                    }
                }
                Err(PopError::Empty) => break,
                Err(PopError::Pending) => {
                    let since = *self.stuck_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > STUCK_AFTER {
                        self.ring.skip_pending();
                        self.stuck_since = None;
                        continue;
                    }
                    break;
                }
            }
        }
    }

    /// Drains what is left; a slot still unpublished now never will be.
    pub(crate) fn finish(&mut self, out: &mut Vec<Event>) {
        self.drain(out);
        while self.ring.header().head.load(std::sync::atomic::Ordering::Acquire)
            != self.ring.header().tail.load(std::sync::atomic::Ordering::Acquire)
        {
            self.ring.skip_pending();
            self.drain(out);
        }
        self.decoder.finish(out);
    }

    /// Records dropped because the ring was full, and calls not recorded
    /// because they came from inside probity's recording code.
    pub(crate) fn losses(&self) -> (u64, u64) {
        let h = self.ring.header();
        (h.lost.load(std::sync::atomic::Ordering::Relaxed), h.skipped.load(std::sync::atomic::Ordering::Relaxed))
    }
}

impl Drop for PreloadSession {
    fn drop(&mut self) {
        // SAFETY: our own mapping, not used after this.
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
