//! Errors of the `probity` library.
//!
//! A message says what failed; the error it wraps (its
//! [`source`](std::error::Error::source)) says why, and is not repeated in
//! the message, so print the whole chain (`{:#}` with `anyhow`, or a loop
//! over `source()`) to show both. The errors of the eBPF loader are kept
//! as causes behind `Box<dyn Error>`, so that its types stay out of
//! probity's API.

use std::io;

/// Why tracing could not start or finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The fault-injection filter or its supervisor could not be set up.
    #[error("failed to prepare fault injection")]
    Inject(#[source] crate::inject::FilterError),
    /// This process lacks the capabilities eBPF tracing needs.
    #[error(
        "eBPF tracing needs CAP_BPF and CAP_PERFMON (or root), and this process is missing {missing}; \
         run as root (`sudo -E cargo test`, `sudo probity run ...`) or see `probity doctor`"
    )]
    Privileges {
        /// The missing capabilities, comma-separated.
        missing: String,
    },
    /// The caller is not root, and the kernel's BTF does not give the
    /// credential offsets the exec probe needs to keep processes with more
    /// privilege than the caller out of the trace.
    #[error(
        "eBPF tracing by a user other than root needs the kernel's BTF (/sys/kernel/btf/vmlinux, with struct cred) \
         to keep setuid, setgid and capability-raising programs out of the trace, and this kernel's BTF lacks them; \
         run probity as root (`sudo probity run ...`)"
    )]
    NoCredentialOffsets,
    /// tracefs was not mounted and mounting it failed.
    #[error(
        "failed to mount tracefs at /sys/kernel/tracing (mount it with `sudo mount -t tracefs nodev /sys/kernel/tracing`)"
    )]
    Tracefs(#[source] io::Error),
    /// The kernel refused the eBPF object.
    #[error("failed to load the eBPF programs")]
    Load(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A program could not be loaded or attached.
    #[error("failed to attach the eBPF program {0}")]
    Attach(&'static str, #[source] Box<dyn std::error::Error + Send + Sync>),
    /// A map operation failed.
    #[error("failed to use the eBPF map {0}")]
    Map(&'static str, #[source] Box<dyn std::error::Error + Send + Sync>),
    /// The embedded object lacks a program or map this harness uses.
    #[error("the embedded eBPF object has no {0}: it does not match this harness (rebuild it with `cargo xtask build-ebpf`)")]
    MissingItem(&'static str),
    /// Every session id is taken.
    #[error("failed to open a session: at most {0} can run at once on one loaded tracer")]
    TooManySessions(u32),
    /// Every block of kernel counters for summary sessions is taken.
    #[error(
        "failed to open a session: at most {0} summary sessions (`--summary`) can count at once on one loaded tracer; \
         record whole traces instead, or run fewer at a time"
    )]
    TooManySummarySessions(u32),
    /// The ring buffer thread could not start.
    #[error("failed to start the ring buffer thread")]
    Thread(#[source] io::Error),
    /// The kernel's ring buffer could not be mapped into this process.
    #[error("failed to map the eBPF ring buffer")]
    RingMap(#[source] io::Error),
    /// The command does not exist.
    #[error("command not found: {program}")]
    NotFound {
        /// The program as given.
        program: String,
    },
    /// The command is a script whose `#!` interpreter (or a program whose
    /// dynamic loader) does not exist.
    #[error("command not found: {interpreter}, the interpreter of {program}")]
    InterpreterNotFound {
        /// The program as given.
        program: String,
        /// The interpreter its `#!` line names, or a description of its
        /// dynamic loader.
        interpreter: String,
    },
    /// The command exists but cannot be run.
    #[error("cannot execute {program}")]
    NotExecutable {
        /// The program as given.
        program: String,
        /// What exec said.
        #[source]
        source: io::Error,
    },
    /// Starting the command failed for another reason.
    #[error("failed to start {program}")]
    Spawn {
        /// The program as given.
        program: String,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// A function run by `probity::traced` started a traced run of its
    /// own: it is already traced.
    #[error(
        "failed to start a nested traced run: a function run by probity::traced is already traced; start commands \
         from it with std::process::Command (they are in its trace) rather than probity::Cmd or probity::traced"
    )]
    Nested,
    /// The preload tracer could not be set up.
    #[error("{what}")]
    Preload {
        /// What failed.
        what: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// No tracer was chosen.
    #[error("no tracer chosen: pick at least one of ebpf, preload")]
    NoTracer,
    /// Waiting for the command failed.
    #[error("failed to wait for process {pid}")]
    Wait {
        /// The root process.
        pid: u32,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// This process may not load the eBPF programs, and no probity daemon
    /// answers for it.
    #[error(
        "eBPF tracing needs CAP_BPF and CAP_PERFMON (or root), and this process is missing {missing}; \
         and no probity daemon answers at {socket}. Either run as root (`sudo -E cargo test`), \
         or start the daemon (`sudo probity daemon --install`) and join its group, \
         or name a running daemon's socket in PROBITY_DAEMON"
    )]
    NoWayToTrace {
        /// The missing capabilities, comma-separated.
        missing: String,
        /// Where the daemon was looked for.
        socket: std::path::PathBuf,
    },
    /// The probity daemon could not be reached.
    #[error("failed to reach the probity daemon at {socket} (is `probity daemon` running, and are you in its group?)")]
    DaemonConnect {
        /// Its socket.
        socket: std::path::PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// The probity daemon refused a request.
    #[error("the probity daemon at {socket} refused: {message}")]
    DaemonRefused {
        /// Its socket.
        socket: std::path::PathBuf,
        /// Its reason.
        message: String,
    },
    /// The probity daemon ended a session before its trace was complete.
    #[error("the trace is incomplete: {reason} (probity daemon at {socket})")]
    DaemonLost {
        /// Its socket.
        socket: std::path::PathBuf,
        /// What happened.
        reason: String,
    },
    /// The daemon could not listen on its socket.
    #[error("the probity daemon cannot listen on {socket}")]
    DaemonSocket {
        /// The socket.
        socket: std::path::PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// The daemon's socket failed while serving.
    #[error("the probity daemon's socket failed")]
    DaemonIo(#[source] io::Error),
    /// probity could not attach to a running process.
    #[error("cannot attach to process {pid}: {reason}")]
    AttachProcess {
        /// The process.
        pid: u32,
        /// Why.
        reason: String,
    },
}

impl Error {
    /// A short suggestion of what to do about it.
    pub fn hint(&self) -> String {
        match self {
            Error::Privileges { .. } => "run probity as root (`sudo -E probity ...`); see `probity doctor`".into(),
            Error::NoWayToTrace { .. } | Error::DaemonConnect { .. } => {
                "run as root, or start `probity daemon` and join its group; see `probity doctor`".into()
            }
            Error::Tracefs(_) => "sudo mount -t tracefs nodev /sys/kernel/tracing".into(),
            Error::Load(_) | Error::Attach(..) => {
                "run `probity doctor`; the kernel needs BPF ring buffers (5.8+) and tracepoints".into()
            }
            Error::MissingItem(_) => "cargo xtask build-ebpf".into(),
            Error::NotFound { .. } => {
                "check the name, or give its path (`./name`); PATH is searched for a bare name".into()
            }
            Error::InterpreterNotFound { .. } => {
                "install the interpreter, or fix the `#!` line (`#!/usr/bin/env NAME` searches PATH)".into()
            }
            Error::AttachProcess { .. } => {
                "name a running process you could trace with `strace -p` (see `probity doctor`), with the eBPF tracer loaded in this process (as root)".into()
            }
            Error::Spawn { .. } => "the system refused a new process: check free memory and `ulimit -u`".into(),
            Error::NotExecutable { .. } => {
                "give the path of an executable file (`chmod +x` it; every directory on the way must exist)".into()
            }
            _ => String::new(),
        }
    }
}

/// Shows an error and its causes, each once: `what failed: why: why`.
pub(crate) struct Chain<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_leaves_its_cause_to_the_chain() {
        let e = Error::Spawn { program: "sh".into(), source: io::Error::from_raw_os_error(libc::EAGAIN) };
        let cause = io::Error::from_raw_os_error(libc::EAGAIN).to_string();
        assert_eq!(e.to_string(), "failed to start sh");
        assert_eq!(Chain(&e).to_string(), format!("failed to start sh: {cause}"));
        let e = Error::Map("SESSIONS", Box::new(io::Error::from_raw_os_error(libc::ENOMEM)));
        let cause = io::Error::from_raw_os_error(libc::ENOMEM).to_string();
        assert_eq!(Chain(&e).to_string(), format!("failed to use the eBPF map SESSIONS: {cause}"));
    }
}
