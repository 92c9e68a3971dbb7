//! The end of a run: once the tree has ended and each tracer has handed
//! over what it collected, [`finish`] cuts what the trace must not show,
//! puts the held events in one timeline, links them, names their hosts,
//! and builds the run's [`Outcome`].

use foldhash::{HashMap, HashSet};
use probity_common::SyscallStats;

use super::{sort, Linker};
use crate::event::{Event, EventKind, ExitStatus};
use crate::net::HostLinker;
use crate::preload::coverage::Coverage;
use crate::preload::own::OwnSyscalls;
use crate::preload::Attached;
use crate::trace::{
    LibcStart, LibcStartKind, LibcStarts, Losses, Outcome, Resolution, SyscallCount, TracerKind, Uncovered,
};

/// What the run left once its tree ended and the tracers were drained.
pub(crate) struct Collected<'a> {
    /// The root process's pid.
    pub root: u32,
    /// How the root process ended.
    pub status: ExitStatus,
    /// The tracers that ran.
    pub tracers: Vec<TracerKind>,
    /// Whether probity stopped the tree (asked to, or at its timeout).
    pub interrupted: bool,
    /// The directory the command started in.
    pub cwd: Option<String>,
    /// Name resolution as read before the command started.
    pub resolution: Resolution,
    /// The events held to be merged at the end (with the preload tracer,
    /// or for a late-joining root); `None` when they were handed over as
    /// they came.
    pub held: Option<Vec<Event>>,
    /// For a late-joining root: when probity began adding it to the
    /// session, and when all its threads were in (`u64::MAX` when it never
    /// was). Its events before the first are its start-up; its main
    /// thread's before the second, its wait for probity's answer.
    pub joined_at: Option<(u64, u64)>,
    /// What the kernel tracer counted, when it ran.
    pub kernel: Option<KernelEnd>,
    /// What the preload tracer counted, when it ran.
    pub preload: Option<PreloadEnd<'a>>,
    /// For running processes probity attached to: which, and what they
    /// had open then.
    pub attach: Option<crate::trace::Attach>,
    /// Their descendants it left out of the session, with why.
    pub left_out: Vec<Uncovered>,
}

/// The kernel tracer's counts at the end of a run.
pub(crate) struct KernelEnd {
    /// Per syscall number, what a summary session counted in the kernel.
    pub stats: Vec<(u32, SyscallStats)>,
    /// Records the kernel side could not write.
    pub losses: probity_common::Losses,
    /// Records that could not be decoded.
    pub undecodable: u64,
    /// Records the daemon dropped for a slow reader.
    pub queue_full: u64,
    /// The daemon's socket, when the session was the daemon's.
    pub daemon: Option<String>,
    /// The processes that exec'd into more privilege than the caller,
    /// with the time of that exec, in time order.
    pub privileged: Vec<(u64, Uncovered)>,
}

/// The preload tracer's counts at the end of a run.
pub(crate) struct PreloadEnd<'a> {
    /// Where and when the library attached to each process.
    pub attached: &'a [Attached],
    /// libc calls counted in summary mode.
    pub counts: Vec<SyscallCount>,
    /// How often a process waited for room in the ring.
    pub waits: u64,
    /// Records lost to a full ring.
    pub ring_full: u64,
    /// Records skipped by processes that found the ring unusable.
    pub skipped: u64,
    /// Records dropped as invalid.
    pub invalid: u64,
    /// Without the kernel tracer: the root's program and argv.
    pub root_exec: Option<(String, Vec<String>)>,
}

/// Ends the run: cuts, orders, links and names the held events (handing
/// them to `deliver` unless `keep_merged`, in which case they are
/// returned), and builds the [`Outcome`]. `hosts` has seen every event
/// already handed over.
pub(crate) fn finish(
    run: Collected<'_>,
    mut hosts: HostLinker,
    mut deliver: impl FnMut(Event),
    keep_merged: bool,
) -> (Outcome, Vec<Event>) {
    let kernel_ran = run.kernel.is_some();
    let both = kernel_ran && run.preload.is_some();
    let mut losses = Losses::default();
    let mut syscalls = Vec::new();
    // Processes that exec'd into more privilege than a non-root caller.
    let mut privileged = Vec::new();
    let mut daemon = None;
    if let Some(k) = run.kernel {
        syscalls = k
            .stats
            .into_iter()
            .map(|(nr, s)| SyscallCount {
                name: crate::decode::syscall_name(nr).into_owned(),
                calls: s.calls,
                errors: s.errors,
                total_ns: s.total_ns,
            })
            .collect();
        SyscallCount::sort_by_time(&mut syscalls);
        losses = Losses::from_kernel(k.losses, k.undecodable, k.queue_full);
        daemon = k.daemon;
        privileged = k.privileged;
    }
    let mut libc_calls = Vec::new();
    let mut preload_waits = 0;
    let mut attached: &[Attached] = &[];
    let mut libc_starts = None;
    if let Some(p) = run.preload {
        if !kernel_ran {
            libc_starts = p.root_exec.map(|(root_program, root_argv)| starts(root_program, root_argv, p.attached));
        }
        libc_calls = p.counts;
        preload_waits = p.waits;
        losses.preload_ring_full = p.ring_full;
        losses.preload_skipped = p.skipped;
        losses.preload_invalid = p.invalid;
        attached = p.attached;
    }
    let mut uncovered = Vec::new();
    let mut own_syscalls = 0;
    let mut held = run.held;
    if let Some(held) = &mut held {
        let library = crate::preload::library::path().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        // With both tracers: which execs the library missed, and which
        // syscalls were its own (left out of the trace).
        let mut cut = Cut {
            privileged_since: privileged.iter().map(|(ts, u)| (u.pid, *ts)).collect(),
            kernel_pids: HashSet::default(),
            coverage: both.then(|| Coverage::new(attached)),
            own: both.then(|| OwnSyscalls::new(attached, &library)),
            own_syscalls: 0,
            startup: run.joined_at.map(|(at, added)| (run.root, at, added)),
        };
        cut.note_kernel_pids(held);
        sort(held, |e| cut.cuts(e));
        own_syscalls = cut.own_syscalls;
        uncovered = cut.coverage.map(Coverage::finish).unwrap_or_default();
        // One sweep for the links that need the final order: the
        // merged trace can be hundreds of megabytes, and a pass over
        // it costs more than the little work done per event.
        let mut parents = Linker::default();
        for (i, e) in held.iter_mut().enumerate() {
            parents.link(e, i);
            hosts.apply(e);
        }
        if !keep_merged {
            std::mem::take(held).into_iter().for_each(&mut deliver);
        }
    }
    uncovered.extend(privileged.into_iter().map(|(_, u)| u));
    uncovered.extend(run.left_out);
    let outcome = Outcome {
        root_pid: run.root,
        status: run.status,
        tracers: run.tracers,
        losses,
        syscalls,
        interrupted: run.interrupted,
        uncovered,
        cwd: run.cwd,
        own_syscalls,
        libc_calls,
        preload_waits,
        resolution: run.resolution,
        daemon,
        libc_starts,
        attach: run.attach,
    };
    (outcome, held.unwrap_or_default())
}

/// What the library told of how the processes started, for a run without
/// the kernel tracer.
fn starts(root_program: String, root_argv: Vec<String>, attached: &[Attached]) -> LibcStarts {
    use probity_common::shm::{ATTACH_IMAGE, ATTACH_VFORK_CHILD};
    let mut starts: Vec<LibcStart> = attached
        .iter()
        .map(|a| LibcStart {
            pid: a.pid,
            ppid: a.ppid,
            ts_ns: a.end_ns,
            kind: if a.flags & ATTACH_IMAGE != 0 {
                LibcStartKind::Image
            } else if a.flags & ATTACH_VFORK_CHILD != 0 {
                LibcStartKind::VforkChild
            } else {
                LibcStartKind::Ids
            },
        })
        .collect();
    starts.sort_by_key(|s| s.ts_ns);
    LibcStarts { root_program, root_argv, starts }
}

/// Which held events the trace leaves out, seeing each once in the order
/// the tracers delivered them (see [`sort`]).
struct Cut<'a> {
    /// Nothing of these processes after their privileged exec may be
    /// shown, libc records included: the time of that exec, by pid.
    privileged_since: HashMap<u32, u64>,
    /// The processes in kernel records, when some process was privileged.
    kernel_pids: HashSet<u32>,
    /// Which execs the library missed (with both tracers).
    coverage: Option<Coverage>,
    /// Which syscalls were the library's own (with both tracers).
    own: Option<OwnSyscalls<'a>>,
    /// How many of them were cut.
    own_syscalls: u64,
    /// A late-joining root, when probity began adding it and when it was
    /// all in: its start-up before the first is cut off (all of it when it
    /// never asked to join: the run fails), and its main thread's wait
    /// before the second.
    startup: Option<(u32, u64, u64)>,
}

impl Cut<'_> {
    /// A child of a privileged process is in no kernel record (the kernel
    /// stopped following at the privileged exec), but may have loaded the
    /// library itself: its libc records go too. Notes which processes the
    /// kernel records show.
    fn note_kernel_pids(&mut self, held: &[Event]) {
        if self.privileged_since.is_empty() {
            return;
        }
        self.kernel_pids = held
            .iter()
            .filter(|e| e.as_libc().is_none())
            .flat_map(|e| match &e.kind {
                EventKind::Fork(f) => [Some(e.pid), Some(f.child_tid)],
                _ => [Some(e.pid), None],
            })
            .flatten()
            .collect();
    }

    /// Whether `e` is left out.
    fn cuts(&mut self, e: &Event) -> bool {
        if self.privileged_since.get(&e.pid).is_some_and(|&since| e.ts_ns > since) {
            return true;
        }
        if !self.privileged_since.is_empty() && e.as_libc().is_some() && !self.kernel_pids.contains(&e.pid) {
            return true;
        }
        if let Some(c) = &mut self.coverage {
            c.see(e);
        }
        if self.own.as_mut().is_some_and(|o| o.is_own(e)) {
            self.own_syscalls += 1;
            return true;
        }
        self.startup
            .is_some_and(|(root, from, added)| e.pid == root && (e.ts_ns < from || (e.tid == root && e.ts_ns < added)))
    }
}
