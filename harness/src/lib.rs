//! probity: prove what a program does to the system.
//!
//! probity runs a command under eBPF tracing and records every exec, fork,
//! exit, signal and syscall of its whole process tree, decoded as strace
//! shows them, and its network events (TCP connections, retransmits,
//! resets, UDP datagrams, each charged to the process that owns the
//! socket), into a [`Trace`] a test can check.
//!
//! ```no_run
//! use std::process::Command;
//!
//! let mut cmd = Command::new("sh");
//! cmd.args(["-c", "cat /etc/hostname"]);
//! let trace = probity::Tracer::new().run(cmd)?;
//! let hostname = std::path::Path::new("/etc/hostname");
//! assert!(trace.syscalls().any(|(_, s)| s.name == "openat" && s.path() == Some(hostname)));
//! assert_eq!(trace.outcome.losses.lost_events(), 0);
//! # Ok::<(), probity::Error>(())
//! ```
//!
//! How an event travels: the eBPF programs (`harness-ebpf/`) write records
//! laid out by `probity-common` into a ring buffer; the harness drains it and
//! decodes each record into an [`Event`]; a [`Tracer`] session collects them
//! into a [`Trace`], which [`text`] prints as strace does.
//!
//! Whether this machine can trace, and what to fix when it cannot, is
//! [`doctor`]'s (`probity doctor` prints its report).
//!
//! # Known limitations
//! - eBPF tracing needs root, or CAP_BPF with CAP_PERFMON (see
//!   `probity doctor`).
//! - Syscall arguments are decoded for x86_64; other architectures get
//!   names and raw values.
//! - Paths and strings longer than 4095 bytes, and argv beyond 64 entries or
//!   4 KiB, are cut and marked as truncated.
//! - Network events cover TCP and UDP over IPv4 and IPv6; UDP datagrams
//!   are derived from the syscalls that carry their peer, and DNS decoded
//!   only as far as the datagram was captured (see [`Net`]).

mod coverage;
pub mod daemon;
mod decode;
mod error;
pub mod event;
mod fds;
pub mod inject;
mod kernel;
mod launch;
mod merge;
mod net;
pub mod policy;
mod preload;
mod render;
mod target_dir;
pub mod testing;
pub mod text;
mod trace;
mod tracer;

/// `CLOCK_MONOTONIC` now, in nanoseconds: the clock of `bpf_ktime_get_ns`
/// and of every event. Through the vDSO: no syscall.
pub(crate) fn monotonic_ns() -> u64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid timespec to write to.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

pub use error::Error;
pub use event::{Arg, Dns, Event, EventKind, ExitStatus, LibcCall, Net, NetOp, Protocol, SockAddr, Syscall, TcpState};
pub use kernel::doctor;
pub use preload::library::path as preload_library;
pub use probity_common::{KnobError, MaxTasks, RingBytes, StringLimit};
pub use probity_macros::traced_test;
pub use testing::{traced, traced_with, Cmd, Run};
pub use trace::{Attach, AttachedProcess, CallUnderWay, OpenDescriptor, SocketKind};
pub use trace::{Class, Events, LoadError, Snapshot, Syscalls, Violation, ViolationKind};
pub use trace::{LibcStart, LibcStartKind, LibcStarts};
pub use trace::{Losses, Outcome, Process, Resolution, SyscallCount, Trace, TracerKind, Uncovered};
pub use tracer::{resolve_program, Tracee, Tracer};

#[doc(hidden)]
pub mod __private {
    //! What `#[traced_test]` expansions call. Not a public API.
    pub use crate::testing::support::*;
}
