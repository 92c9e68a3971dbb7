//! One session: a process tree traced by the shared [`Kernel`] (loaded
//! here or in the daemon), and the bookkeeping of session ids
//! ([`SessionIds`]).

use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use probity_common::{
    Losses, SessionConfig, StringLimit, SyscallStats, MAX_SESSIONS, MAX_SUMMARY_SESSIONS, SESSION_ACTIVE,
    SESSION_CHECK_PRIVILEGE, SESSION_SUMMARY,
};

use super::consumer::Sink;
use super::{privilege, raw_bpf, Kernel, LoadOptions};
use crate::error::Error;
use crate::event::{Event, ExitStatus};

/// What a session records.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SessionOptions {
    pub summary: bool,
    pub string_limit: StringLimit,
    pub load: LoadOptions,
}

/// A session of the kernel tracer: loaded in this process, or served by
/// the daemon. Either way its events arrive decoded in one [`Sink`].
pub(crate) struct KernelSession {
    sink: Arc<Sink>,
    backend: Backend,
    /// Whose trace it is: processes with more privilege leave it.
    owner: privilege::Owner,
}

enum Backend {
    /// Programs loaded by this process.
    Local(Local),
    /// A session of the probity daemon.
    Remote(crate::daemon::RemoteSession),
}

struct Local {
    kernel: Arc<Kernel>,
    id: u32,
    /// The router's unroutable count when the session opened.
    unroutable_at_open: u64,
}

impl Drop for Local {
    fn drop(&mut self) {
        self.kernel.close(self.id);
    }
}

/// The session's configuration for the kernel side, owned by `owner`.
pub(crate) fn config_for(summary: bool, string_limit: u32, owner: privilege::Owner) -> SessionConfig {
    let mut flags = SESSION_ACTIVE;
    if summary {
        flags |= SESSION_SUMMARY;
    }
    if !owner.is_root() {
        flags |= SESSION_CHECK_PRIVILEGE;
    }
    SessionConfig { flags, string_limit, stats_slot: 0, generation: 0, owner_uid: owner.uid, owner_gid: owner.gid }
}

impl KernelSession {
    /// Opens a session where this process can: with the programs loaded
    /// here when it has the privileges, through the daemon when it has
    /// not and the daemon answers (see [`crate::daemon::route`]).
    pub(crate) fn open(opts: SessionOptions) -> Result<KernelSession, Error> {
        match crate::daemon::route()? {
            crate::daemon::Route::Local => Self::open_local(opts),
            crate::daemon::Route::Daemon(socket) => {
                let remote = crate::daemon::RemoteSession::open(&socket, opts.summary, opts.string_limit.get())?;
                Ok(KernelSession {
                    sink: remote.sink(),
                    owner: privilege::Owner::current(),
                    backend: Backend::Remote(remote),
                })
            }
        }
    }

    fn open_local(opts: SessionOptions) -> Result<KernelSession, Error> {
        let kernel = Kernel::acquire(opts.load)?;
        let owner = privilege::Owner::current();
        let id = kernel.open(config_for(opts.summary, opts.string_limit.get(), owner))?;
        let sink = kernel.router.add(id);
        let unroutable_at_open = kernel.router.unroutable();
        Ok(KernelSession { sink, owner, backend: Backend::Local(Local { kernel, id, unroutable_at_open }) })
    }

    /// Which way the session is served: `None` in this process, or the
    /// daemon's socket.
    pub(crate) fn daemon_socket(&self) -> Option<&std::path::Path> {
        match &self.backend {
            Backend::Local(_) => None,
            Backend::Remote(r) => Some(r.socket()),
        }
    }

    /// A function for `pre_exec` that adds the calling process to this
    /// session. It is async-signal-safe.
    pub(crate) fn registrar(&self) -> Box<dyn Fn() -> std::io::Result<()> + Send + Sync + 'static> {
        match &self.backend {
            Backend::Local(l) => {
                let fd: RawFd = l.kernel.tasks_fd;
                let id = l.id;
                Box::new(move || {
                    // SAFETY: getpid has no preconditions and is async-signal-safe.
                    let pid = unsafe { libc::getpid() } as u32;
                    raw_bpf::update_u32(fd, pid, id)
                })
            }
            Backend::Remote(r) => Box::new(r.registrar()),
        }
    }

    /// A function that adds a process, by pid, to this session from this
    /// process: for a child that joins late (see `Tracer::spawn_late`),
    /// which is never given a descriptor of the task map. It keeps the
    /// maps open while it lives.
    pub(crate) fn late_registrar(&self) -> crate::testing::join::Register {
        match &self.backend {
            Backend::Local(l) => {
                let kernel = Arc::clone(&l.kernel);
                let id = l.id;
                Box::new(move |pid| raw_bpf::update_u32(kernel.tasks_fd, pid, id))
            }
            Backend::Remote(r) => r.late_registrar(),
        }
    }

    /// A function that adds a running task to this session unless it is
    /// in a session already (then `EEXIST`): for attaching, which must not
    /// take another trace's tasks. `None` through the daemon, which adds
    /// only the children of its clients.
    /// It answers whether it put the task in (`false`: it was this
    /// session's already, added by the fork probe as a task added before
    /// forked it).
    pub(crate) fn attacher(&self) -> Option<Box<dyn Fn(u32) -> std::io::Result<bool> + Send>> {
        match &self.backend {
            Backend::Local(l) => {
                let kernel = Arc::clone(&l.kernel);
                let id = l.id;
                Some(Box::new(move |tid| match raw_bpf::insert_new_u32(kernel.tasks_fd, tid, id) {
                    Ok(()) => Ok(true),
                    Err(e)
                        if e.raw_os_error() == Some(libc::EEXIST)
                            && raw_bpf::lookup_u32(kernel.tasks_fd, tid) == Some(id) =>
                    {
                        Ok(false)
                    }
                    Err(e) => Err(e),
                }))
            }
            Backend::Remote(_) => None,
        }
    }

    /// Stops tracing the whole tree, which runs on: detaching from
    /// processes probity attached to. Their records already written are
    /// still read; nothing more comes.
    pub(crate) fn detach(&self) {
        match &self.backend {
            Backend::Local(l) => l.kernel.detach(l.id),
            // Never attached: the daemon adds only its clients' children.
            Backend::Remote(_) => {}
        }
    }

    /// Takes thread `pid` out of this session if it is in it: a thread of
    /// a late-joining child added just as it ended, whose end the kernel
    /// tracer saw before the addition, so nothing else would take it out.
    pub(crate) fn forget(&self, pid: u32) {
        match &self.backend {
            Backend::Local(l) => l.kernel.forget_task(l.id, pid),
            Backend::Remote(r) => r.forget(pid),
        }
    }

    /// Moves the events decoded so far to the end of `out`, waiting up to
    /// `timeout` for some; returns how many.
    pub(crate) fn take_into(&self, out: &mut Vec<Event>, timeout: Duration) -> usize {
        self.sink.take_into(out, timeout)
    }

    /// Waits up to `timeout` for the wake-up [`wake_when_exited`](Self::wake_when_exited)
    /// arranges, without taking events (see [`Sink::wait_woken`]).
    pub(crate) fn wait_woken(&self, timeout: Duration) {
        self.sink.wait_woken(timeout)
    }

    /// Makes a waiting [`take_into`](Self::take_into) return as soon as process
    /// `pid` (a child not yet reaped) exits, instead of at its timeout: a
    /// short command's trace is then complete a poll interval sooner.
    pub(crate) fn wake_when_exited(&self, pid: u32) {
        // SAFETY: pidfd_open takes plain integers; a valid fd is owned below.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        if fd < 0 {
            // An old kernel: the wait loop's timeout still notices the exit.
            return;
        }
        // SAFETY: `fd` is a new pidfd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        let sink = Arc::clone(&self.sink);
        let _ = std::thread::Builder::new().name("probity-wait".into()).spawn(move || {
            // A pidfd turns readable when its process exits.
            let mut fds = [nix::poll::PollFd::new(fd.as_fd(), nix::poll::PollFlags::POLLIN)];
            while matches!(nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE), Err(nix::errno::Errno::EINTR)) {}
            sink.wake();
        });
    }

    /// Whether any task of the tree is alive.
    pub(crate) fn alive(&self) -> bool {
        match &self.backend {
            Backend::Local(l) => l.kernel.has_tasks(l.id),
            Backend::Remote(r) => !r.tasks().is_empty(),
        }
    }

    /// The tree's live thread ids.
    pub(crate) fn tasks(&self) -> Vec<u32> {
        match &self.backend {
            Backend::Local(l) => l.kernel.tasks_of(l.id),
            Backend::Remote(r) => r.tasks(),
        }
    }

    /// Waits until every record already written has been decoded.
    pub(crate) fn flush(&self) {
        match &self.backend {
            Backend::Local(l) => l.kernel.router.flush(),
            Backend::Remote(r) => r.flush(),
        }
    }

    pub(crate) fn set_root_status(&self, pid: u32, status: ExitStatus) {
        self.sink.set_root_status(pid, status);
    }

    /// The last events, and records that could not be decoded (including
    /// any whose session could not be told while this one was open).
    pub(crate) fn finish(&self) -> (Vec<Event>, u64) {
        let (events, malformed) = self.sink.finish(&self.sockets());
        let unroutable = match &self.backend {
            Backend::Local(l) => l.kernel.router.unroutable() - l.unroutable_at_open,
            Backend::Remote(r) => r.losses().unroutable,
        };
        (events, malformed + unroutable)
    }

    /// Why the session's events stopped before its end, if they did: the
    /// daemon went away or ended it. A trace without its end must not be
    /// taken for a whole one.
    pub(crate) fn broken(&self) -> Option<Error> {
        match &self.backend {
            Backend::Local(_) => None,
            Backend::Remote(r) => r.broken(),
        }
    }

    /// The processes that exec'd into more privilege than the caller
    /// and left the trace there, with the time of that exec, in time order.
    /// Call after [`finish`](Self::finish).
    pub(crate) fn privileged(&self) -> Vec<(u64, crate::trace::Uncovered)> {
        let mut execs = self.sink.privileged_execs();
        execs.sort_by_key(|(ts, _, _)| *ts);
        execs.into_iter().map(|(ts, pid, program)| (ts, privilege::uncovered(pid, &program, self.owner))).collect()
    }

    /// What the session lost, and records its daemon dropped for a slow
    /// reader.
    pub(crate) fn losses(&self) -> (Losses, u64) {
        match &self.backend {
            Backend::Local(l) => (l.kernel.losses(l.id), 0),
            Backend::Remote(r) => {
                let w = r.losses();
                let l = Losses {
                    ring_full: w.ring_full,
                    inflight_full: w.inflight_full,
                    task_map_full: w.task_map_full,
                    capture_faults: w.capture_faults,
                    sock_map_full: w.sock_map_full,
                };
                (l, w.queue_full)
            }
        }
    }

    /// Waits up to `timeout` for the tree's TCP sockets to close: once its
    /// last process has ended, a connection may still be finishing its
    /// close handshake in the kernel.
    pub(crate) fn settle_sockets(&self, timeout: Duration) {
        let start = std::time::Instant::now();
        while !self.sockets().is_empty() && start.elapsed() < timeout {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The sockets the tree still owns, with their counters.
    pub(crate) fn sockets(&self) -> Vec<(u64, probity_common::SockOwner)> {
        match &self.backend {
            Backend::Local(l) => l.kernel.sockets_of(l.id),
            Backend::Remote(r) => r.sockets(),
        }
    }

    pub(crate) fn stats(&self) -> Vec<(u32, SyscallStats)> {
        match &self.backend {
            Backend::Local(l) => l.kernel.stats(l.id),
            Backend::Remote(r) => r.stats(),
        }
    }
}

/// Which session ids are taken, and what goes with each: its generation,
/// and for a session counting in the kernel, its slot of `STATS`.
pub(super) struct SessionIds {
    used: [bool; MAX_SESSIONS as usize],
    /// The `STATS` slot of each session counting in the kernel.
    summary: [Option<u32>; MAX_SESSIONS as usize],
    /// The last `SessionConfig::generation` given to each id.
    generations: [u32; MAX_SESSIONS as usize],
}

impl Default for SessionIds {
    fn default() -> Self {
        SessionIds {
            used: [false; MAX_SESSIONS as usize],
            summary: [None; MAX_SESSIONS as usize],
            generations: [0; MAX_SESSIONS as usize],
        }
    }
}

/// A session id just claimed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Claim {
    pub id: u32,
    /// Its `SessionConfig::generation`: never 0, the generation of a
    /// closed id's zeroed config.
    pub generation: u32,
    /// Its slot of `STATS`, for a summary session.
    pub stats_slot: Option<u32>,
}

impl SessionIds {
    /// Claims a free id, with a slot of `STATS` when the session counts
    /// in the kernel (`summary`).
    pub(super) fn claim(&mut self, summary: bool) -> Result<Claim, Error> {
        // Id 0 is never used, so a zeroed map slot means "no session".
        let id = (1..MAX_SESSIONS).find(|&i| !self.used[i as usize]).ok_or(Error::TooManySessions(MAX_SESSIONS - 1))?;
        let mut stats_slot = None;
        if summary {
            let slot = (0..MAX_SUMMARY_SESSIONS)
                .find(|s| !self.summary.contains(&Some(*s)))
                .ok_or(Error::TooManySummarySessions(MAX_SUMMARY_SESSIONS))?;
            self.summary[id as usize] = Some(slot);
            stats_slot = Some(slot);
        }
        self.used[id as usize] = true;
        let generation = self.generations[id as usize].wrapping_add(1).max(1);
        self.generations[id as usize] = generation;
        Ok(Claim { id, generation, stats_slot })
    }

    /// The slot of `STATS` session `id` counts in, if it does.
    pub(super) fn stats_slot(&self, id: u32) -> Option<u32> {
        self.summary.get(id as usize).copied().flatten()
    }

    /// Frees `id` (and its slot of `STATS`) for the next session.
    pub(super) fn release(&mut self, id: u32) {
        if let (Some(used), Some(slot)) = (self.used.get_mut(id as usize), self.summary.get_mut(id as usize)) {
            *used = false;
            *slot = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_reused_with_a_new_generation() {
        let mut ids = SessionIds::default();
        let a = ids.claim(false).unwrap();
        let b = ids.claim(true).unwrap();
        assert_eq!((a.id, a.generation, a.stats_slot), (1, 1, None));
        assert_eq!((b.id, b.generation, b.stats_slot), (2, 1, Some(0)));
        assert_eq!(ids.stats_slot(2), Some(0));
        ids.release(1);
        ids.release(2);
        assert_eq!(ids.stats_slot(2), None);
        let again = ids.claim(true).unwrap();
        assert_eq!((again.id, again.generation, again.stats_slot), (1, 2, Some(0)));
    }

    #[test]
    fn running_out_of_ids_or_summary_slots_is_an_error() {
        let mut ids = SessionIds::default();
        for _ in 0..MAX_SUMMARY_SESSIONS {
            ids.claim(true).unwrap();
        }
        assert!(matches!(ids.claim(true), Err(Error::TooManySummarySessions(n)) if n == MAX_SUMMARY_SESSIONS));
        while ids.claim(false).is_ok() {}
        assert!(matches!(ids.claim(false), Err(Error::TooManySessions(n)) if n == MAX_SESSIONS - 1));
        // Out of range ids are ignored, not a panic.
        ids.release(MAX_SESSIONS + 5);
        assert_eq!(ids.stats_slot(MAX_SESSIONS + 5), None);
    }
}
