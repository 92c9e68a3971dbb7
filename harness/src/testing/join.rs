//! How a re-executed child joins its trace session late, without holding
//! any descriptor of probity's maps.
//!
//! The child and probity share one word of the child's shared memory
//! (see [`super::child`]). When its traced part is about to begin, the
//! child stores [`REQUESTED`] there and waits on the word (a futex). A
//! thread of probity, the [`Joiner`], sees the request, adds the child's
//! pid (the one `fork` returned to probity, never a number read from the
//! shared memory) to the session once, with every thread the kernel lists
//! for it (a constructor may have started some), notes the time, and
//! answers [`JOINED`] (or [`REFUSED`] when the map update failed).
//!
//! Everything in the child can write the word, its dependencies'
//! constructors included: the worst they can do is have the child added
//! early (it is then traced for longer, never less) or make the child run
//! on without being added, which probity notices, since it alone records
//! whether it added the child: such a run fails.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

/// The child has not asked yet.
pub(crate) const IDLE: u32 = 0;
/// The child asks to be added to the session and waits.
pub(crate) const REQUESTED: u32 = 1;
/// probity added the child; it may go on.
pub(crate) const JOINED: u32 = 2;
/// probity could not add the child; it must not run its function.
pub(crate) const REFUSED: u32 = 3;

/// How long the child waits for probity's answer.
pub(crate) const CHILD_WAIT: Duration = Duration::from_secs(20);

/// How often the joiner looks at its stop flag while the word is unchanged.
const POLL: Duration = Duration::from_millis(20);

/// Waits while `*word == seen`, for at most `timeout`; returns early on a
/// wake-up, a change, a signal or a spurious wake-up: callers check again.
pub(crate) fn futex_wait(word: &AtomicU32, seen: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: `word` is a valid, aligned u32 for the call; `ts` lives
    // across it. A shared (not private) futex: the other side is another
    // process mapping the same file.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            seen,
            &ts as *const libc::timespec,
            0usize,
            0u32,
        )
    };
}

/// Wakes whoever waits on `word`.
pub(crate) fn futex_wake(word: &AtomicU32) {
    // SAFETY: `word` is a valid, aligned u32; FUTEX_WAKE only reads its address.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX, 0usize, 0usize, 0u32) };
}

/// probity's mapping of the page of the shared memory that holds the word.
pub(crate) struct JoinWord {
    page: *mut u8,
    offset: usize,
}

// SAFETY: the mapping is plain shared memory, touched only through atomics,
// and unmapped once, on drop.
unsafe impl Send for JoinWord {}
// SAFETY: as above: shared references only ever load, store and wake
// through the atomic word.
unsafe impl Sync for JoinWord {}

const PAGE: usize = 4096;

impl JoinWord {
    /// Maps the first page of `file`; the word is at `offset` in it.
    pub(crate) fn map(file: &File, offset: usize) -> std::io::Result<JoinWord> {
        assert!(offset.is_multiple_of(4) && offset + 4 <= PAGE, "the join word lies in the first page, aligned");
        // SAFETY: a new shared mapping of one page of a file at least that
        // long; nothing else in this process refers to it.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if page == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(JoinWord { page: page.cast(), offset })
    }

    fn word(&self) -> &AtomicU32 {
        // SAFETY: `offset` is aligned and inside the page, which stays
        // mapped as long as `self`; the child writes it only atomically
        // (or, if hostile, with plain stores, which tear nothing in a u32).
        unsafe { AtomicU32::from_ptr(self.page.add(self.offset).cast()) }
    }
}

impl Drop for JoinWord {
    fn drop(&mut self) {
        // SAFETY: `page` is the one-page mapping made in `map`.
        unsafe { libc::munmap(self.page.cast(), PAGE) };
    }
}

/// What the joiner did, for whoever started the child.
#[derive(Default)]
pub(crate) struct JoinRecord {
    /// When probity added the child (`CLOCK_MONOTONIC`, as trace events),
    /// taken just before the map update: the child's events before it
    /// are its start-up.
    pub at: OnceLock<u64>,
    /// When every thread of it was in the session (adding them may take a
    /// round trip each, through the daemon): until then its main thread
    /// only waits for the answer.
    pub added: OnceLock<u64>,
    /// Why probity could not add it.
    pub error: OnceLock<String>,
}

/// Adds `pid` to the trace session (the kernel tracer's task map), or
/// nothing when only the preload tracer runs.
pub(crate) type Register = Box<dyn Fn(u32) -> std::io::Result<()> + Send>;

/// A late-joining child: the word it asks through, and what probity did.
pub(crate) struct LateJoin {
    /// The child's shared memory, which it inherits: its own input and
    /// output, not a map of probity's.
    pub shm_fd: std::os::fd::RawFd,
    pub word: JoinWord,
    pub record: Arc<JoinRecord>,
}

/// Whether the joiner may still add the child.
pub(crate) struct Gate {
    stopped: bool,
    /// The child's threads the joiner added.
    added: Vec<u32>,
}

impl Gate {
    /// No more registrations: the child was reaped, so its pid may be
    /// reused by another process. Returns the thread ids that were added,
    /// all ended now: one that ended as it was added, after the kernel
    /// tracer saw it end, is still in the session, and must be taken out.
    pub(crate) fn stop(&mut self) -> Vec<u32> {
        self.stopped = true;
        std::mem::take(&mut self.added)
    }
}

/// The thread that answers one child's request to join.
pub(crate) struct Joiner {
    gate: Arc<Mutex<Gate>>,
    record: Arc<JoinRecord>,
    /// The child's request word, to wake the thread when it must stop.
    late: Arc<LateJoin>,
    thread: Option<JoinHandle<()>>,
}

impl Joiner {
    /// Answers requests on `late.word` for the child `pid` until stopped.
    pub(crate) fn start(late: LateJoin, pid: u32, register: Option<Register>) -> std::io::Result<Joiner> {
        let gate = Arc::new(Mutex::new(Gate { stopped: false, added: Vec::new() }));
        let record = Arc::clone(&late.record);
        let late = Arc::new(late);
        let thread = {
            let gate = Arc::clone(&gate);
            let late = Arc::clone(&late);
            std::thread::Builder::new()
                .name("probity-join".into())
                .spawn(move || answer(&late, pid, register.as_deref(), &gate))?
        };
        Ok(Joiner { gate, record, late, thread: Some(thread) })
    }

    /// Holds off registration; reap the child while holding it, and
    /// [`Gate::stop`] once it is reaped.
    pub(crate) fn hold(&self) -> MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// When probity added the child, if it did.
    pub(crate) fn joined_at(&self) -> Option<u64> {
        self.record.at.get().copied()
    }

    /// When every thread of the child was added, if it was.
    pub(crate) fn added_at(&self) -> Option<u64> {
        self.record.added.get().copied()
    }
}

impl Drop for Joiner {
    fn drop(&mut self) {
        self.hold().stop();
        // It sleeps on the word between looks at its stop flag: wake it
        // now rather than at its next look, up to `POLL` later (a
        // traced function's test paid 10 ms of it on average).
        futex_wake(self.late.word.word());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn answer(
    late: &LateJoin,
    pid: u32,
    register: Option<&(dyn Fn(u32) -> std::io::Result<()> + Send)>,
    gate: &Mutex<Gate>,
) {
    let word = late.word.word();
    loop {
        let seen = {
            let mut gate = gate.lock().unwrap_or_else(|e| e.into_inner());
            if gate.stopped {
                return;
            }
            let seen = word.load(Ordering::Acquire);
            if seen == REQUESTED {
                // Only ever `pid`, and only once: a second request (a
                // constructor asked first) gets the same answer.
                if late.record.at.get().is_none() && late.record.error.get().is_none() {
                    let at = crate::monotonic_ns();
                    let added = register.map_or(Ok(()), |r| add_threads(pid, r, &mut gate.added));
                    let _ = late.record.added.set(crate::monotonic_ns());
                    match added {
                        Ok(()) => drop(late.record.at.set(at)),
                        Err(e) => {
                            drop(late.record.error.set(format!("failed to add pid {pid} to the trace session: {e}")))
                        }
                    }
                }
                let answer = if late.record.at.get().is_some() { JOINED } else { REFUSED };
                word.store(answer, Ordering::Release);
                futex_wake(word);
                answer
            } else {
                seen
            }
        };
        futex_wait(word, seen, POLL);
    }
}

/// How many passes over the child's threads may still find new ones.
const THREAD_PASSES: usize = 16;

/// Adds `pid` and each of its threads to the session. A thread created by
/// one already added is followed by the kernel tracer; one created by a
/// thread not yet added shows up in the next pass over `/proc` (the
/// kernel's list, which the child cannot forge), so the passes end once
/// one finds nothing new.
fn add_threads(
    pid: u32,
    register: &(dyn Fn(u32) -> std::io::Result<()> + Send),
    added: &mut Vec<u32>,
) -> std::io::Result<()> {
    register(pid)?;
    added.push(pid);
    for _ in 0..THREAD_PASSES {
        let mut new = false;
        for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
            let Some(tid) = entry?.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            if !added.contains(&tid) {
                register(tid)?;
                added.push(tid);
                new = true;
            }
        }
        if !new {
            return Ok(());
        }
    }
    Err(std::io::Error::other(format!("its threads kept multiplying over {THREAD_PASSES} passes")))
}
