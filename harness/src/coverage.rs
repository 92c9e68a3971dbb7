//! The tracers probity has, and the processes one could not see into.
//!
//! Below both the tracers, which find the processes they miss, and the
//! [`Trace`](crate::Trace), which records them: an assertion that something
//! did not happen asks whether a tracer that sees it covered each process.

use serde::{Deserialize, Serialize};

/// Names of the tracers probity has.
///
/// Each tracer sees some kinds of events ([`TracerKind::observes`]) in the
/// processes it covers ([`Process::tracers`](crate::Process::tracers)). An assertion that something
/// did not happen asks, for every process it is about, whether a tracer
/// that sees that kind of event covered it.
///
/// ```
/// use probity::TracerKind;
///
/// assert!(TracerKind::Ebpf.observes("syscall"));
/// assert_eq!(TracerKind::Ebpf.name(), "ebpf");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TracerKind {
    /// The eBPF programs: execs, forks, exits, signals, every syscall, and
    /// network events.
    Ebpf,
    /// The LD_PRELOAD library: libc calls (files, network, DNS, processes,
    /// environment) with their arguments.
    Preload,
}

/// A process a tracer could not see into, and why.
///
/// ```
/// let u = probity::Uncovered {
///     pid: 42,
///     program: "/usr/bin/sudo".into(),
///     tracer: probity::TracerKind::Preload,
///     reason: "setuid or setgid (the loader ignores LD_PRELOAD)".into(),
/// };
/// assert_eq!(u.tracer.name(), "preload");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uncovered {
    /// The process.
    pub pid: u32,
    /// The program it ran.
    pub program: String,
    /// The tracer that missed it.
    pub tracer: TracerKind,
    /// Why: `statically linked`, `setuid or setgid`, `LD_PRELOAD not in
    /// its environment`.
    pub reason: String,
}

impl TracerKind {
    /// Whether this tracer records events of `kind` (an
    /// [`Event::kind_name`](crate::Event::kind_name), such as `"syscall"` or `"exec"`) in the
    /// processes it covers.
    ///
    /// ```
    /// assert!(probity::TracerKind::Ebpf.observes("exec"));
    /// assert!(!probity::TracerKind::Ebpf.observes("no_such_kind"));
    /// ```
    #[must_use]
    pub fn observes(self, kind: &str) -> bool {
        match self {
            TracerKind::Ebpf => matches!(kind, "syscall" | "exec" | "fork" | "exit" | "signal" | "net"),
            TracerKind::Preload => kind == "libc",
        }
    }

    /// The tracer's name, as `--tracers` and the JSON summary spell it.
    ///
    /// ```
    /// assert_eq!(probity::TracerKind::Ebpf.name(), "ebpf");
    /// ```
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            TracerKind::Ebpf => "ebpf",
            TracerKind::Preload => "preload",
        }
    }
}
