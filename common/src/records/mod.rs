//! The records the eBPF programs write into the BPF ring buffer, one file
//! per family: every record is an [`EventHeader`] followed by the body its
//! [`EventKind`] names.

mod net;
mod process;
mod signal;
mod syscall;

pub use net::*;
pub use process::*;
pub use signal::*;
pub use syscall::*;

/// What a record is. Stored as the first field of every header.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A finished (or never-returning) syscall: [`SyscallEvent`].
    Syscall = 1,
    /// The file name and argv of an `execve`/`execveat` at entry: [`ExecArgsEvent`].
    ExecArgs = 2,
    /// A successful exec, from `sched_process_exec`: [`ExecEvent`].
    Exec = 3,
    /// A new task (process or thread), from `sched_process_fork`: [`ForkEvent`].
    Fork = 4,
    /// A task ended, from `sched_process_exit`: [`ExitEvent`].
    Exit = 5,
    /// A signal was delivered, from `signal_deliver`: [`SignalEvent`].
    Signal = 6,
    /// A libc call, from the preload library: [`shm::LibcCallFixed`](crate::shm::LibcCallFixed).
    LibcCall = 7,
    /// The preload library started in a process: [`shm::Attach`](crate::shm::Attach).
    PreloadAttach = 8,
    /// A TCP connection event, charged to the socket's owner: [`NetEvent`].
    Net = 9,
}

impl EventKind {
    /// The kind for a raw header value, if it is one.
    pub const fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            1 => Self::Syscall,
            2 => Self::ExecArgs,
            3 => Self::Exec,
            4 => Self::Fork,
            5 => Self::Exit,
            6 => Self::Signal,
            7 => Self::LibcCall,
            8 => Self::PreloadAttach,
            9 => Self::Net,
            _ => return None,
        })
    }
}

/// The start of every record.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventHeader {
    /// An [`EventKind`] as `u32`.
    pub kind: u32,
    /// The session whose process tree produced the record.
    pub session: u32,
    /// `CLOCK_MONOTONIC` nanoseconds (`bpf_ktime_get_ns`). For syscalls,
    /// the time of entry.
    pub ts_ns: u64,
    /// Process id (thread group id) of the task the record is about.
    pub pid: u32,
    /// Thread id of that task.
    pub tid: u32,
}

impl EventHeader {
    /// A header with every field given.
    pub const fn new(kind: EventKind, session: u32, ts_ns: u64, pid: u32, tid: u32) -> Self {
        Self { kind: kind as u32, session, ts_ns, pid, tid }
    }
}

/// Rounds a capture length up to the 8-byte alignment records keep.
pub const fn pad8(len: usize) -> usize {
    (len + 7) & !7
}

/// The bytes of a record struct, for writing it out.
pub fn as_bytes<T: Copy>(v: &T) -> &[u8] {
    // SAFETY: every record type is `repr(C)` plain data with no padding
    // (checked by the size assertions above), so all its bytes are initialised.
    unsafe { core::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }
}

const _: () = assert!(size_of::<EventHeader>() == 24);
