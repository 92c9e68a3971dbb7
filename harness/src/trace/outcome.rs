//! How a traced run ended: its exit status, what was lost, which tracers
//! ran and what each counted, without the events themselves.

use serde::{Deserialize, Serialize};

use crate::coverage::{TracerKind, Uncovered};
use crate::event::ExitStatus;
use crate::trace::attach::Attach;
use crate::trace::resolvers::Resolution;

/// Events that were not recorded, by cause. Any non-zero count but
/// `capture_faults` means the trace is incomplete.
///
/// ```
/// let l = probity::Losses { ring_full: 2, capture_faults: 5, ..Default::default() };
/// assert_eq!(l.lost_events(), 2);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Losses {
    /// Records dropped because the kernel ring buffer was full.
    pub ring_full: u64,
    /// Syscalls not recorded because too many were in flight at once.
    pub inflight_full: u64,
    /// Tasks not followed because the task map was full (each one's whole
    /// subtree is missing).
    pub task_map_full: u64,
    /// Records that reached userspace but could not be decoded.
    pub undecodable: u64,
    /// Captured arguments (paths, buffers) whose memory could not be read.
    /// The syscalls themselves are in the trace; this is not event loss.
    pub capture_faults: u64,
    /// Sockets not followed because the kernel's socket map was full: their
    /// later network events (state changes, retransmits, resets, close and
    /// byte counts) are missing.
    #[serde(default)]
    pub sock_map_full: u64,
    /// libc calls dropped because the preload ring was full.
    #[serde(default)]
    pub preload_ring_full: u64,
    /// libc calls not recorded because they were made inside probity's own
    /// recording code (a signal handler interrupting it).
    #[serde(default)]
    pub preload_skipped: u64,
    /// libc records dropped as invalid: the preload ring is the traced
    /// program's memory, and these were not records its library wrote
    /// (impossible values, unknown kinds) or named a process outside the
    /// traced tree or one the kernel's view contradicts (forged, corrupt,
    /// or from outside the tree).
    #[serde(default)]
    pub preload_invalid: u64,
    /// Kernel records the probity daemon dropped because this client did
    /// not read them as fast as they came (its queue was full).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub daemon_queue_full: u64,
}

impl Losses {
    /// Events lost: everything but capture faults.
    ///
    /// ```
    /// assert_eq!(probity::Losses::default().lost_events(), 0);
    /// ```
    pub fn lost_events(&self) -> u64 {
        // Saturating: the preload counts are read from memory the traced
        // program can write.
        [
            self.inflight_full,
            self.task_map_full,
            self.undecodable,
            self.sock_map_full,
            self.preload_ring_full,
            self.preload_skipped,
            self.preload_invalid,
            self.daemon_queue_full,
        ]
        .iter()
        .fold(self.ring_full, |sum, &n| sum.saturating_add(n))
    }

    pub(crate) fn from_kernel(l: probity_common::Losses, undecodable: u64, daemon_queue_full: u64) -> Self {
        Losses {
            daemon_queue_full,
            ring_full: l.ring_full,
            inflight_full: l.inflight_full,
            task_map_full: l.task_map_full,
            undecodable,
            capture_faults: l.capture_faults,
            sock_map_full: l.sock_map_full,
            preload_ring_full: 0,
            preload_skipped: 0,
            preload_invalid: 0,
        }
    }

    /// "12 events were lost (ring buffer full: 12)", naming the non-zero causes.
    pub(crate) fn describe(&self) -> String {
        let causes: Vec<String> = [
            ("ring buffer full", self.ring_full),
            ("syscalls in flight", self.inflight_full),
            ("untraced tasks", self.task_map_full),
            ("undecodable", self.undecodable),
            ("untraced sockets", self.sock_map_full),
            ("probity daemon's queue full", self.daemon_queue_full),
            ("preload ring full", self.preload_ring_full),
            ("libc calls made inside probity's recording", self.preload_skipped),
        ]
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(what, n)| format!("{what}: {n}"))
        .collect();
        let invalid = match self.preload_invalid {
            0 => String::new(),
            n => format!("{n} libc records were invalid (forged, corrupt, or from outside the traced tree)"),
        };
        match (causes.is_empty(), invalid.is_empty()) {
            (true, false) => invalid,
            (false, false) => format!("{} events were lost ({}); {invalid}", self.lost_events(), causes.join(", ")),
            _ => format!("{} events were lost ({})", self.lost_events(), causes.join(", ")),
        }
    }
}

/// Per-syscall counts, as `strace -c` gives them.
///
/// ```
/// let c = probity::SyscallCount { name: "read".into(), calls: 3, errors: 1, total_ns: 900 };
/// assert_eq!(c.calls - c.errors, 2);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyscallCount {
    /// The syscall's name.
    pub name: String,
    /// Calls made.
    pub calls: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Total time spent in them.
    pub total_ns: u64,
}

impl SyscallCount {
    /// Puts counts in summary order: most total time first, then most
    /// calls, then by name.
    pub fn sort_by_time(counts: &mut [SyscallCount]) {
        counts.sort_by(|a, b| b.total_ns.cmp(&a.total_ns).then(b.calls.cmp(&a.calls)).then(a.name.cmp(&b.name)));
    }
}

/// How a traced run ended, without its events (the CLI streams those).
///
/// ```no_run
/// let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
/// assert_eq!(trace.outcome.status, probity::ExitStatus::Code(0));
/// assert_eq!(trace.outcome.losses.lost_events(), 0);
/// # Ok::<(), probity::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The root process's pid.
    pub root_pid: u32,
    /// How the root process ended.
    pub status: ExitStatus,
    /// The tracers that were active.
    pub tracers: Vec<TracerKind>,
    /// What was not recorded.
    pub losses: Losses,
    /// Per-syscall counts, sorted by total time, then calls.
    pub syscalls: Vec<SyscallCount>,
    /// The run was stopped early (timeout or a signal to the tracer).
    #[serde(default)]
    pub interrupted: bool,
    /// Processes an active tracer could not see into.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uncovered: Vec<Uncovered>,
    /// The working directory the command started in, when known: relative
    /// paths in the trace are resolved against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Syscalls the preload library made in the traced processes (loading
    /// it, mapping its ring), left out of the events.
    #[serde(default)]
    pub own_syscalls: u64,
    /// Per-function counts of the libc calls the preload tracer saw,
    /// sorted like `syscalls` (empty without that tracer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub libc_calls: Vec<SyscallCount>,
    /// libc calls that found the preload ring full and waited for room
    /// (nothing was lost, but the program was slowed).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub preload_waits: u64,
    /// Name resolution as probity read it before the command started:
    /// what host-name allow-lists rest on.
    #[serde(default, skip_serializing_if = "Resolution::is_empty")]
    pub resolution: Resolution,
    /// The socket of the probity daemon that ran the eBPF tracer for this
    /// trace; `None` when it ran in the tracing process (or did not run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon: Option<String>,
    /// With the preload tracer alone, how the processes started as the
    /// library told it (with the kernel tracer, its fork and exec events
    /// say so): `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub libc_starts: Option<LibcStarts>,
    /// For a trace of running processes probity attached to: which, when,
    /// and what they had open then. `None` when probity started the
    /// command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach: Option<Attach>,
}

/// With the preload tracer alone: the root's own exec, which probity made
/// before the library could load, and each time the library started in a
/// process. These are what placing a process in the tree, and telling
/// whether every new program was exec'd by a recorded call, rest on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LibcStarts {
    /// The program probity exec'd as the root process (searched in the
    /// command's `PATH`).
    pub root_program: String,
    /// Its argv.
    pub root_argv: Vec<String>,
    /// Each start of the library, in time order.
    pub starts: Vec<LibcStart>,
}

/// One start of the preload library in a process, as it announced it.
/// Written by the traced process: a claim, like its libc records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LibcStart {
    /// The process.
    pub pid: u32,
    /// Its parent, as the library asked the kernel (`getppid`).
    pub ppid: u32,
    /// When, on the trace's clock.
    pub ts_ns: u64,
    /// What started.
    pub kind: LibcStartKind,
}

/// What a [`LibcStart`] was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LibcStartKind {
    /// The library loaded in a new program: the root's, or one an exec
    /// started.
    Image,
    /// A `vfork` child learned its pid (before it execs or exits).
    VforkChild,
    /// A forked child, or a new thread, learned its ids.
    Ids,
}

/// For `skip_serializing_if`: a count that is zero.
pub(crate) fn is_zero<T: Default + PartialEq>(n: &T) -> bool {
    *n == T::default()
}

impl Outcome {
    /// The working directory `cmd` will start in: its own, joined to this
    /// process's, or this process's.
    pub(crate) fn command_cwd(cmd: &std::process::Command) -> Option<String> {
        let here = std::env::current_dir().ok();
        let dir = match (cmd.get_current_dir(), here) {
            (Some(d), _) if d.is_absolute() => d.to_path_buf(),
            (Some(d), Some(here)) => here.join(d),
            (Some(_), None) => return None,
            (None, here) => here?,
        };
        Some(dir.to_string_lossy().into_owned())
    }
}
