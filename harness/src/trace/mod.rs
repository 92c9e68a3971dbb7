//! The [`Trace`]: every event of a traced process tree, with what was lost
//! and which tracers were active.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::{Event, EventKind, ExitStatus};

/// Names of the tracers probity has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TracerKind {
    /// The eBPF programs: execs, forks, exits, signals and every syscall.
    Ebpf,
    /// The LD_PRELOAD library: libc calls (files, network, DNS, processes,
    /// environment) with their arguments.
    Preload,
}

/// A process a tracer could not see into, and why.
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

/// Events that were not recorded, by cause. Any non-zero count in the
/// first four fields means the trace is incomplete.
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
    /// libc calls dropped because the preload ring was full.
    #[serde(default)]
    pub preload_ring_full: u64,
    /// libc calls not recorded because they were made inside probity's own
    /// recording code (a signal handler interrupting it).
    #[serde(default)]
    pub preload_skipped: u64,
}

impl Losses {
    /// Events lost: everything but capture faults.
    pub fn lost_events(&self) -> u64 {
        self.ring_full + self.inflight_full + self.task_map_full + self.undecodable + self.preload_ring_full + self.preload_skipped
    }

    pub(crate) fn from_kernel(l: probity_common::Losses, undecodable: u64) -> Self {
        Losses {
            ring_full: l.ring_full,
            inflight_full: l.inflight_full,
            task_map_full: l.task_map_full,
            undecodable,
            capture_faults: l.capture_faults,
            preload_ring_full: 0,
            preload_skipped: 0,
        }
    }
}

/// Per-syscall counts, as `strace -c` gives them.
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

/// How a traced run ended, without its events (the CLI streams those).
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
}

/// Every event of a traced process tree, in order of start, with each
/// syscall linked to the libc call it was made in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// The events.
    pub events: Vec<Event>,
    /// How the run ended, what was lost, which tracers ran.
    pub outcome: Outcome,
}

/// One process of the tree, as the trace saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Process {
    /// Its pid.
    pub pid: u32,
    /// The pid of the process that forked it, when traced.
    pub parent: Option<u32>,
    /// Its threads' ids, the main one first.
    pub threads: Vec<u32>,
    /// The programs it exec'd, in order, with their argv.
    pub execs: Vec<(String, Vec<String>)>,
    /// How it ended, when it did.
    pub exit: Option<ExitStatus>,
}

impl Trace {
    /// The syscalls of the trace.
    pub fn syscalls(&self) -> impl Iterator<Item = (&Event, &crate::event::Syscall)> {
        self.events.iter().filter_map(|e| e.as_syscall().map(|s| (e, s)))
    }

    /// The processes of the tree, by pid.
    pub fn processes(&self) -> BTreeMap<u32, Process> {
        let mut procs: BTreeMap<u32, Process> = BTreeMap::new();
        let root = self.outcome.root_pid;
        procs.entry(root).or_insert_with(|| Process { pid: root, threads: vec![root], ..Default::default() });
        // A fork's child is a thread when it later shows up with its
        // parent's pid; collect forks first.
        let mut forks = Vec::new();
        for e in &self.events {
            let p = procs.entry(e.pid).or_insert_with(|| Process { pid: e.pid, ..Default::default() });
            if !p.threads.contains(&e.tid) {
                if e.tid == e.pid {
                    p.threads.insert(0, e.tid);
                } else {
                    p.threads.push(e.tid);
                }
            }
            match &e.kind {
                EventKind::Fork(f) => forks.push((e.pid, f.child_tid)),
                EventKind::Exec(x) => p.execs.push((x.filename.clone(), x.argv.clone())),
                EventKind::Exit(x) if x.process_exited => p.exit = x.status,
                _ => {}
            }
        }
        for (parent, child) in forks {
            if let Some(c) = procs.get_mut(&child) {
                if child != parent {
                    c.parent = Some(parent);
                }
            }
        }
        procs
    }
}
