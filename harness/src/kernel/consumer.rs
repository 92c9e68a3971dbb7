//! The one thread that drains the ring buffer and routes records to
//! sessions.
//!
//! The kernel side wakes this thread only when the ring is filling up;
//! otherwise it polls every few milliseconds and takes everything that
//! arrived in one pass, so records cost no wake-up each. A session that
//! needs everything routed now (its tree has ended) wakes it through an
//! eventfd instead of waiting for the next poll.

use foldhash::HashMap;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use probity_common::Record;

use super::assemble::Assembler;
use super::ring::Ring;
use crate::error::Error;
use crate::event::Event;

/// How long the consumer sleeps when the kernel side did not wake it.
const POLL_INTERVAL: Duration = Duration::from_millis(4);
/// The ring reader's nice value, where it may raise its priority.
const READER_NICE: libc::c_int = -10;

/// Events of a session's buffer that stay allocated between batches.
const KEEP_CAPACITY: usize = 1 << 16;

/// Where one session's records go.
pub(crate) struct Sink {
    state: Mutex<SinkState>,
    /// Notified when events were added, and by [`Sink::wake`].
    ready: Condvar,
    /// Notified by [`Sink::wake`] alone (see [`Sink::wait_woken`]).
    woke: Condvar,
    /// When the session opened (`CLOCK_MONOTONIC`, the records' clock).
    /// Session ids are reused: a record older than this was made for the
    /// id's previous session (still in the ring when it closed).
    opened_ns: u64,
    /// Where a daemon's session's records go instead of the assembler:
    /// to its client, undecoded.
    forward: Option<Arc<crate::daemon::Outbox>>,
}

#[derive(Default)]
struct SinkState {
    assembler: Assembler,
    pending: Vec<Event>,
    /// Records that could not be parsed (a layout mismatch).
    malformed: u64,
    /// Set by [`Sink::wake`]: a waiting [`Sink::take_into`] returns at once.
    woken: bool,
}

impl Sink {
    /// A sink fed by something other than the consumer thread: a daemon
    /// client's reader (see [`Sink::push`]).
    pub(crate) fn detached() -> Arc<Sink> {
        Arc::new(Sink {
            state: Mutex::default(),
            ready: Condvar::new(),
            woke: Condvar::new(),
            opened_ns: 0,
            forward: None,
        })
    }

    /// Decodes one record's bytes into this sink's events, as the
    /// consumer does for a session of this process.
    pub(crate) fn push(&self, bytes: &[u8]) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let SinkState { assembler, pending, malformed, .. } = &mut *st;
        match Record::parse(bytes) {
            Ok(record) => {
                if assembler.push(record, pending).is_err() {
                    *malformed += 1;
                }
            }
            Err(_) => *malformed += 1,
        }
    }

    /// Tells waiting takers that events arrived.
    pub(crate) fn notify(&self) {
        self.ready.notify_all();
    }

    /// Moves the decoded events so far to the end of `out`, waiting up to
    /// `timeout` for some (or for [`Sink::wake`]); returns how many.
    ///
    /// An empty `out` trades buffers with the consumer: the events move
    /// with their vector, and the consumer goes on filling `out`'s old,
    /// already grown buffer instead of growing a new one (copying it at
    /// each doubling, in fresh memory) for every batch. Into a non-empty
    /// `out` the events are moved one by one, and the consumer keeps its
    /// buffer.
    pub(crate) fn take_into(&self, out: &mut Vec<Event>, timeout: Duration) -> usize {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.pending.is_empty() && !st.woken {
            st = self.ready.wait_timeout(st, timeout).unwrap_or_else(|e| e.into_inner()).0;
        }
        st.woken = false;
        let n = st.pending.len();
        if out.is_empty() {
            std::mem::swap(out, &mut st.pending);
        } else {
            out.append(&mut st.pending);
        }
        if st.pending.capacity() > KEEP_CAPACITY {
            // A burst's buffer is not kept for the rest of the session.
            st.pending = Vec::new();
        }
        n
    }

    /// Ends the current (or next) [`Sink::take_into`]'s wait: something other
    /// than a record happened, such as the root process exiting.
    pub(crate) fn wake(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).woken = true;
        self.ready.notify_all();
        self.woke.notify_all();
    }

    /// Waits up to `timeout` for [`Sink::wake`], leaving the events where
    /// they are: a caller that only needs them at the end takes them then,
    /// all at once, in the consumer's own buffer (no copy, and no wake-up
    /// per batch while the command runs).
    pub(crate) fn wait_woken(&self, timeout: Duration) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !st.woken {
            st = self.woke.wait_timeout(st, timeout).unwrap_or_else(|e| e.into_inner()).0;
        }
        st.woken = false;
    }

    /// Ends decoding: flushes what the assembler held back, and closes the
    /// sockets still open (`sockets`, from the kernel's socket map).
    pub(crate) fn finish(&self, sockets: &[(u64, probity_common::SockOwner)]) -> (Vec<Event>, u64) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = std::mem::take(&mut st.pending);
        if !sockets.is_empty() {
            st.assembler.open_at_end(sockets, crate::monotonic_ns(), &mut out);
        }
        st.assembler.finish(&mut out);
        (out, st.malformed)
    }

    /// The execs into more privilege than the caller so far: time, pid
    /// and program.
    pub(crate) fn privileged_execs(&self) -> Vec<(u64, u32, std::ffi::OsString)> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.assembler.privileged_execs().to_vec()
    }

    /// Gives the assembler the root process's status as its parent saw it.
    pub(crate) fn set_root_status(&self, pid: u32, status: crate::event::ExitStatus) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.assembler.set_known_status(pid, status);
    }
}

/// The routing table, and a pass counter for flushes.
pub(crate) struct Router {
    sinks: Mutex<HashMap<u32, Arc<Sink>>>,
    /// Bumped whenever a session opens or closes. Session ids are reused,
    /// so the consumer must not route by a table older than this.
    version: std::sync::atomic::AtomicU64,
    /// Records whose header could not be read, so no session can be told
    /// it lost them; every session open meanwhile counts them as lost.
    unroutable: std::sync::atomic::AtomicU64,
    passes: Mutex<Passes>,
    pass_done: Condvar,
    /// Wakes the consumer from its poll for a flush.
    wakeup: Option<OwnedFd>,
}

impl Default for Router {
    fn default() -> Self {
        // SAFETY: eventfd has no memory preconditions; a valid fd is owned below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        Router {
            sinks: Mutex::default(),
            version: std::sync::atomic::AtomicU64::new(0),
            unroutable: std::sync::atomic::AtomicU64::new(0),
            passes: Mutex::default(),
            pass_done: Condvar::new(),
            // SAFETY: `fd` is a new eventfd that nothing else owns. Without
            // one (fd < 0), flushes wait for the next poll instead.
            wakeup: (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) }),
        }
    }
}

impl Router {
    pub(crate) fn add(&self, id: u32) -> Arc<Sink> {
        self.add_sink(id, None)
    }

    /// Routes session `id`'s records, undecoded, to `outbox`.
    pub(crate) fn add_forward(&self, id: u32, outbox: Arc<crate::daemon::Outbox>) -> Arc<Sink> {
        self.add_sink(id, Some(outbox))
    }

    fn add_sink(&self, id: u32, forward: Option<Arc<crate::daemon::Outbox>>) -> Arc<Sink> {
        let sink = Arc::new(Sink {
            state: Mutex::default(),
            ready: Condvar::new(),
            woke: Condvar::new(),
            opened_ns: crate::monotonic_ns(),
            forward,
        });
        self.sinks.lock().unwrap_or_else(|e| e.into_inner()).insert(id, Arc::clone(&sink));
        self.version.fetch_add(1, Ordering::Release);
        sink
    }

    /// Records no session could be given so far.
    pub(crate) fn unroutable(&self) -> u64 {
        self.unroutable.load(Ordering::Relaxed)
    }

    pub(crate) fn remove(&self, id: u32) {
        self.sinks.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        self.version.fetch_add(1, Ordering::Release);
    }

    /// Returns once every record committed before the call was routed.
    pub(crate) fn flush(&self) {
        let mut passes = self.passes.lock().unwrap_or_else(|e| e.into_inner());
        // A pass that starts after this point drains everything committed
        // before the call; the one under way may have started before it.
        let target = passes.started + 1;
        if let Some(fd) = &self.wakeup {
            let one = 1u64.to_ne_bytes();
            // SAFETY: writes 8 bytes from a live buffer to our eventfd. A
            // failure (the counter is full) means a wake-up is pending anyway.
            unsafe { libc::write(fd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
        }
        while passes.done < target {
            let (p, timeout) =
                self.pass_done.wait_timeout(passes, Duration::from_secs(5)).unwrap_or_else(|e| e.into_inner());
            passes = p;
            if timeout.timed_out() {
                break;
            }
        }
    }
}

/// The consumer's passes over the ring: how many began, how many ended.
#[derive(Default)]
struct Passes {
    started: u64,
    done: u64,
}

pub(crate) struct Handle {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Handle {
    pub(crate) fn start(ring: Ring, router: Arc<Router>) -> Result<Handle, Error> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("probity-ring".into())
            .spawn({
                let stop = Arc::clone(&stop);
                move || run(ring, &router, &stop)
            })
            .map_err(Error::Thread)?;
        Ok(Handle { stop, thread })
    }

    pub(crate) fn stop(self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.thread.join();
    }
}

fn run(mut ring: Ring, router: &Router, stop: &AtomicBool) {
    let fd = ring.as_fd().as_raw_fd();
    let mut cache: HashMap<u32, Arc<Sink>> = HashMap::default();
    let mut cache_version = u64::MAX;
    // The sinks that got records in the current pass, to be told so.
    let mut touched: Vec<Arc<Sink>> = Vec::new();
    // Every session of this loaded tracer shares the ring, and records
    // that find it full are lost: busy trees must not starve its reader.
    // Where that is allowed (root, CAP_SYS_NICE), the reader runs ahead of
    // ordinary processes; elsewhere the call fails and nothing changes.
    // SAFETY: plain integers; `gettid` names this thread.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, READER_NICE) };
    while !stop.load(Ordering::Acquire) {
        // SAFETY: the ring's fd lives as long as `ring`, which outlives this borrow.
        let bfd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let mut fds = vec![PollFd::new(bfd, PollFlags::POLLIN)];
        if let Some(w) = &router.wakeup {
            fds.push(PollFd::new(w.as_fd(), PollFlags::POLLIN));
        }
        let _ = poll(&mut fds, PollTimeout::from(POLL_INTERVAL.as_millis() as u16));
        drop(fds);
        let pass = {
            let mut passes = router.passes.lock().unwrap_or_else(|e| e.into_inner());
            passes.started += 1;
            passes.started
        };
        if let Some(w) = &router.wakeup {
            let mut count = [0u8; 8];
            // SAFETY: reads at most 8 bytes into a live buffer; the fd is
            // non-blocking, so this returns at once when nothing was written.
            unsafe { libc::read(w.as_raw_fd(), count.as_mut_ptr().cast(), count.len()) };
        }
        // The session of the records just seen. Each pass looks its first
        // session up afresh, to note it touched.
        let mut last: Option<(u32, Arc<Sink>)> = None;
        let drained = ring.drain(|bytes| {
            let Ok(record) = Record::parse(bytes) else {
                // Without a header we cannot even tell whose it was.
                router.unroutable.fetch_add(1, Ordering::Relaxed);
                return;
            };
            let (session, ts_ns) = header_session(&record);
            let version = router.version.load(Ordering::Acquire);
            if version != cache_version {
                // A session opened or closed (perhaps reusing an id).
                cache.clone_from(&router.sinks.lock().unwrap_or_else(|e| e.into_inner()));
                cache_version = version;
                last = None;
            }
            // Records come in runs of one session's: look up only when it changes.
            if last.as_ref().is_none_or(|(id, _)| *id != session) {
                // Still unknown: a straggler of a session that has closed.
                let Some(sink) = cache.get(&session) else { return };
                if !touched.iter().any(|t| Arc::ptr_eq(t, sink)) {
                    touched.push(Arc::clone(sink));
                }
                last = Some((session, Arc::clone(sink)));
            }
            let Some((_, sink)) = &last else { return };
            if ts_ns < sink.opened_ns {
                // The id's previous session's: its tree was made before
                // this session's command was even spawned.
                return;
            }
            if let Some(outbox) = &sink.forward {
                outbox.push_record(bytes);
                return;
            }
            let mut st = sink.state.lock().unwrap_or_else(|e| e.into_inner());
            let SinkState { assembler, pending, malformed, .. } = &mut *st;
            if assembler.push(record, pending).is_err() {
                *malformed += 1;
            }
        });
        if drained.corrupt {
            // Records were skipped that nobody can be told about.
            router.unroutable.fetch_add(1, Ordering::Relaxed);
        }
        // Only the sessions that got records: with many sessions open,
        // waking them all on every pass costs each of them.
        for sink in touched.drain(..) {
            match &sink.forward {
                Some(outbox) => outbox.kick(),
                None => sink.ready.notify_all(),
            }
        }
        router.passes.lock().unwrap_or_else(|e| e.into_inner()).done = pass;
        router.pass_done.notify_all();
    }
}

/// The session a record is for, and its time.
fn header_session(record: &Record<'_>) -> (u32, u64) {
    let h = match record {
        Record::Syscall(e, _) => &e.header,
        Record::ExecArgs(h, _) => &h.header,
        Record::Exec(e) => &e.header,
        Record::Fork(e) => &e.header,
        Record::Exit(e) => &e.header,
        Record::Signal(e) => &e.header,
        Record::Net(e) => &e.header,
    };
    (h.session, h.ts_ns)
}
