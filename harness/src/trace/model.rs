//! What a trace is: the events of a traced process tree with how its run
//! ended, and the processes of that tree.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::coverage::TracerKind;
use crate::event::{Event, ExitStatus};
use crate::trace::outcome::Outcome;

/// Every event of a traced process tree. With the eBPF tracer alone they
/// are in the order they completed; with the preload tracer, in the order
/// they started, each syscall linked to the libc call it was made in
/// ([`Event::parent`]).
///
/// Besides the raw [`events`](Trace::events), a trace answers questions:
/// [`Trace::events()`] and [`Trace::syscalls()`] start queries,
/// [`Trace::processes`] gives the process tree, the `check_*` and
/// `assert_*` methods test expectations, and [`Trace::snapshot`] gives a
/// view that stays the same from run to run.
///
/// ```no_run
/// use std::process::Command;
///
/// let mut cmd = Command::new("sh");
/// cmd.args(["-c", "cat /etc/hostname > /dev/null"]);
/// let trace = probity::Tracer::new().run(cmd)?;
/// trace.assert_opened("/etc/hostname");
/// trace.assert_no_network();
/// assert_eq!(trace.syscalls().named("openat").path("/etc/hostname").ok().count(), 1);
/// # Ok::<(), probity::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// The events.
    pub events: Vec<Event>,
    /// How the run ended, what was lost, which tracers ran.
    pub outcome: Outcome,
}

/// One process of the tree, as the trace saw it.
///
/// ```no_run
/// let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
/// let root = &trace.processes()[&trace.outcome.root_pid];
/// assert_eq!(root.program(), Some(std::path::Path::new("/usr/bin/true")));
/// assert!(root.tracers.contains(&probity::TracerKind::Ebpf));
/// # Ok::<(), probity::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Process {
    /// Its pid.
    pub pid: u32,
    /// The pid of the process that forked it, when traced. Without the
    /// eBPF tracer, the process whose `fork`, `clone` or `posix_spawn*`
    /// call returned its pid (a child of `vfork`, `system` or `popen` has
    /// none).
    pub parent: Option<u32>,
    /// Its threads' ids, the main one first.
    pub threads: Vec<u32>,
    /// The programs it exec'd, in order, with their argv. Without the
    /// eBPF tracer, those the `exec*` and `posix_spawn*` calls recorded
    /// named (`posix_spawnp` and `execvp` before their `PATH` search; `?`
    /// for `fexecve`); the root's own exec, made by probity before the
    /// library was loaded, is not among them.
    #[serde(with = "crate::event::os_text::pairs")]
    pub execs: Vec<(std::ffi::OsString, Vec<std::ffi::OsString>)>,
    /// How it ended, when it did.
    pub exit: Option<ExitStatus>,
    /// The tracers that covered it: what they see of it is in the trace.
    pub tracers: BTreeSet<TracerKind>,
    /// The task was forked but could not be followed (the task map was
    /// full): nothing it or its subtree did is in the trace. probity cannot
    /// tell whether it was a thread or a process.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub untracked: bool,
}

impl Process {
    /// The program it runs last, the path the kernel exec'd (without the
    /// eBPF tracer, as the libc call named it).
    ///
    /// ```
    /// let p = probity::Process::default();
    /// assert_eq!(p.program(), None);
    /// ```
    #[must_use]
    pub fn program(&self) -> Option<&std::path::Path> {
        self.execs.last().map(|(f, _)| std::path::Path::new(f))
    }
}

impl Trace {
    /// When the trace starts: the time of its earliest event, in
    /// `CLOCK_MONOTONIC` nanoseconds. Failure messages show times from here.
    ///
    /// ```no_run
    /// let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// assert!(trace.events.iter().all(|e| e.ts_ns >= trace.start_ns()));
    /// # Ok::<(), probity::Error>(())
    /// ```
    #[must_use]
    pub fn start_ns(&self) -> u64 {
        self.events.iter().map(|e| e.ts_ns).min().unwrap_or(0)
    }
}
