//! A trace that began mid-flight: the running processes probity attached
//! to (`probity run -p`, [`Tracer::attach`](crate::Tracer::attach)), as
//! `/proc` showed them then.
//!
//! What they did before is not in the trace. What they had open is: each
//! descriptor as `/proc/PID/fd` named it, so that a later `write(5, ...)`
//! is known to go to a file, a pipe or a socket. A network socket opened
//! before the attach has no connect in the trace, so the network checks
//! cannot tell where its traffic goes: using one is a blind spot, and
//! they fail closed over it.

use serde::{Deserialize, Serialize};

/// The processes probity attached to, and how the trace ended for them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attach {
    /// When probity began adding them, on the events' clock: what they
    /// did before is not in the trace.
    pub at_ns: u64,
    /// The processes named and every descendant they had then, parents
    /// first.
    pub processes: Vec<AttachedProcess>,
    /// probity detached (asked to, or at its time limit) while some of
    /// them still ran: they run on, untraced.
    #[serde(default)]
    pub detached: bool,
}

/// One process as it was when probity attached to it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedProcess {
    /// Its pid.
    pub pid: u32,
    /// Its parent's pid then.
    pub ppid: u32,
    /// The program it ran (`/proc/PID/exe`), when readable.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub program: String,
    /// Its arguments (`/proc/PID/cmdline`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub argv: Vec<String>,
    /// Its working directory, when readable: relative paths it uses are
    /// resolved against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Its open descriptors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub descriptors: Vec<OpenDescriptor>,
    /// The syscalls its threads were inside when probity attached: their
    /// results are not in the trace, so a descriptor one of them made (an
    /// `accept` that was waiting) is unknown to it, and data one of them
    /// moved is not in it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_flight: Vec<CallUnderWay>,
    /// When `/proc` was read for it, on the events' clock: its events
    /// before (after it was added to the session) are judged without its
    /// descriptors, which may have changed in between.
    #[serde(default)]
    pub described_ns: u64,
}

/// A syscall a thread was inside when probity attached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallUnderWay {
    /// Its name; `unknown` where `/proc` would not say (the thread was
    /// on a CPU).
    pub syscall: String,
    /// Its first argument (a descriptor, for most calls that move data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_arg: Option<u64>,
}

/// A descriptor a process had open when probity attached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenDescriptor {
    /// Its number.
    pub fd: i32,
    /// What `/proc/PID/fd` named it: a path, `pipe:[N]`, `socket:[N]`,
    /// `anon_inode:[eventfd]`...
    pub target: String,
    /// For a socket: `unix` for a Unix-domain one, `network` for any
    /// other (an internet socket, or one whose family `/proc` did not
    /// show, counted as network to fail closed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<SocketKind>,
    /// It was close-on-exec: an exec closes it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cloexec: bool,
}

/// What kind of socket a descriptor open at attach time was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SocketKind {
    /// A Unix-domain socket (`/proc/PID/net/unix` lists its inode).
    Unix,
    /// Any other socket: its traffic may leave the machine.
    Network,
}

impl Attach {
    /// The process `pid` as it was at attach time, if probity attached to it.
    pub fn process(&self, pid: u32) -> Option<&AttachedProcess> {
        self.processes.iter().find(|p| p.pid == pid)
    }
}
