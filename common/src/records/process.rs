//! The life of a task: exec ([`ExecArgsEvent`] at entry, [`ExecEvent`]
//! on success), fork ([`ForkEvent`]) and exit ([`ExitEvent`]).

use super::EventHeader;

/// Bytes of exec file name kept in an [`ExecEvent`].
pub const EXEC_FILENAME_LEN: usize = 512;
/// Bytes of argument strings kept for one exec (file name and argv).
pub const EXEC_ARGS_LEN: usize = 4096;
/// Most argv entries read for one exec.
pub const EXEC_MAX_ARGS: u32 = 64;

/// The file name and arguments of an exec, read at syscall entry (after a
/// successful exec the old memory is gone). `data` holds `nstrings`
/// NUL-terminated strings: the path, then argv.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ExecArgsEvent {
    pub header: EventHeader,
    /// Strings in `data`.
    pub nstrings: u32,
    /// `EXEC_ARGS_*` flags.
    pub flags: u32,
    /// Bytes used in `data`.
    pub len: u32,
    pub _pad: u32,
    pub data: [u8; EXEC_ARGS_LEN],
}

/// The fixed part of an [`ExecArgsEvent`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ExecArgsHeader {
    pub header: EventHeader,
    pub nstrings: u32,
    pub flags: u32,
    pub len: u32,
    pub _pad: u32,
}

/// `ExecArgsEvent::flags`: argv had more entries or bytes than were kept.
pub const EXEC_ARGS_TRUNCATED: u32 = 1;
/// `ExecArgsEvent::flags`: argv could not be read (bad pointer).
pub const EXEC_ARGS_FAULT: u32 = 2;
/// `ExecArgsEvent::flags`: read at the exec's point of no return
/// (`sched_prepare_exec`), before the exec's own records: the path and
/// argv the program passed to a successful exec.
pub const EXEC_ARGS_AT_EXEC: u32 = 4;
/// `ExecArgsEvent::flags`: read from the new image's stack after a
/// successful exec (the path is empty): the argv the program that runs
/// got, an interpreter's for a `#!` script.
pub const EXEC_ARGS_RAN: u32 = 8;

/// A successful exec.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ExecEvent {
    pub header: EventHeader,
    /// The thread id before the exec (differs when a non-leader thread execs).
    pub old_tid: u32,
    /// Bytes used in `filename`, without the NUL.
    pub filename_len: u32,
    /// `EXEC_*` flags.
    pub flags: u32,
    pub _pad: u32,
    pub filename: [u8; EXEC_FILENAME_LEN],
}

/// `ExecEvent::flags`: the new image runs with more privilege than the
/// session's owner (another uid or gid, or capabilities), so the task was
/// dropped from the session at this exec: nothing it does from here on is
/// recorded.
pub const EXEC_PRIVILEGED: u32 = 1;

/// `ForkEvent::flags`: the task map was full, so the child is not traced.
pub const FORK_UNTRACKED: u32 = 1;

/// A new task; the header is the parent's.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForkEvent {
    pub header: EventHeader,
    /// Thread id of the new task.
    pub child_tid: u32,
    /// `FORK_*` flags.
    pub flags: u32,
}

/// A task ended.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitEvent {
    pub header: EventHeader,
    /// 1 when this was the last task of its process.
    pub group_dead: u32,
    pub _pad: u32,
}

const _: () = {
    assert!(size_of::<ExecArgsEvent>() == 40 + EXEC_ARGS_LEN);
    assert!(size_of::<ExecEvent>() == 40 + EXEC_FILENAME_LEN);
    assert!(size_of::<ForkEvent>() == 32);
    assert!(size_of::<ExitEvent>() == 32);
    assert!(EXEC_ARGS_LEN.is_power_of_two());
};
