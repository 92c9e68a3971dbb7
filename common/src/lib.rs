//! The binary layout of every record probity's tracers write.
//!
//! The eBPF programs in `harness-ebpf/` write these structs into a BPF ring
//! buffer, and the harness reads them back with [`Record::parse`]. Every
//! struct is `#[repr(C)]`, `Copy`, made of explicit-width integers and
//! fixed-size arrays (no `bool`, no implicit padding), and its size is pinned
//! by a `const` assertion, so both sides agree byte for byte.
//!
//! A record is an [`EventHeader`] followed by the body its [`EventKind`]
//! names. Syscall records may carry up to [`MAX_CAPTURES`] captured payloads
//! (a path, a buffer, a socket address) after the fixed body.
//!
//! # Example
//! ```
//! use probity_common::{EventHeader, EventKind, ExitEvent, Record};
//!
//! let ev = ExitEvent {
//!     header: EventHeader::new(EventKind::Exit, 1, 10, 42, 42),
//!     group_dead: 1,
//!     _pad: 0,
//! };
//! let bytes = probity_common::as_bytes(&ev);
//! match Record::parse(bytes) {
//!     Ok(Record::Exit(e)) => assert_eq!(e.header.tid, 42),
//!     _ => unreachable!(),
//! }
//! ```
//!
//! # Known limitations
//! - The layout is little-endian and tied to one build of the eBPF object;
//!   it is not a stable on-disk format (saved traces are JSON).
#![no_std]

use core::mem::size_of;

/// Largest number of sessions one loaded tracer serves at once.
pub const MAX_SESSIONS: u32 = 64;
/// Syscall numbers at or above this are folded into the last slot.
pub const MAX_SYSCALLS: u32 = 512;
/// Largest bytes captured for one path, buffer or address.
pub const MAX_CAPTURE: usize = 4096;
/// Captures a syscall record can carry.
pub const MAX_CAPTURES: usize = 2;
/// Bytes of exec file name kept in an [`ExecEvent`].
pub const EXEC_FILENAME_LEN: usize = 512;
/// Bytes of argument strings kept for one exec (file name and argv).
pub const EXEC_ARGS_LEN: usize = 4096;
/// Most argv entries read for one exec.
pub const EXEC_MAX_ARGS: u32 = 64;
/// Default bytes of read/write buffers kept, like `strace -s 32`.
pub const DEFAULT_BUF_LEN: u32 = 32;

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
    /// A libc call, from the preload library: [`shm::LibcCallFixed`].
    LibcCall = 7,
    /// The preload library started in a process: [`shm::Attach`].
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

/// `SyscallEvent::flags`: the syscall does not return (`exit`, `exit_group`),
/// so the record was written at entry and `ret` means nothing.
pub const SYSCALL_NO_RETURN: u32 = 1;

/// A syscall, written at its exit with the arguments saved at entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallEvent {
    pub header: EventHeader,
    /// The syscall number of this architecture.
    pub nr: u32,
    /// `SYSCALL_*` flags.
    pub flags: u32,
    /// The six raw arguments.
    pub args: [u64; 6],
    /// The raw return value (negative errno on failure).
    pub ret: i64,
    /// Nanoseconds from entry to exit.
    pub duration_ns: u64,
    /// How many [`Capture`]s follow this struct.
    pub ncaptures: u32,
    pub _pad: u32,
}

/// What a [`Capture`] holds.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureKind {
    /// Nothing to capture (an unused [`ArgCapture`] slot).
    None = 0,
    /// A NUL-terminated string such as a path, read with `probe_read_user_str`.
    CStr = 1,
    /// A buffer whose length is another argument (`write(fd, buf, len)`).
    BufLenArg = 2,
    /// A buffer whose length is the return value (`read(fd, buf, len)`).
    BufLenRet = 3,
    /// A socket address whose length is another argument (`connect`).
    SockaddrLenArg = 4,
    /// A socket address whose length is in a `socklen_t` another argument
    /// points at, read after the call (`accept`, `recvfrom`).
    SockaddrLenPtr = 5,
    /// The bytes of the first `iovec` of a `struct msghdr` (or of the
    /// first message of a `struct mmsghdr` array), `iov_len` of them
    /// (`sendmsg`, `sendmmsg`).
    MsgIov = 6,
    /// As [`CaptureKind::MsgIov`], at most the result's count of bytes
    /// (`recvmsg`).
    MsgIovRet = 7,
    /// As [`CaptureKind::MsgIov`] for the first message of a `struct
    /// mmsghdr` array, at most its `msg_len` bytes (`recvmmsg`).
    MmsgIovLen = 8,
    /// The socket address a `struct msghdr` (or the first `struct
    /// mmsghdr`) names: `msg_name`, `msg_namelen` bytes of it, read after
    /// the call (`sendmsg`, `recvmsg` and their `mmsg` forms).
    MsgName = 9,
    /// A thread name, read as [`CaptureKind::CStr`] after the call, but
    /// only when the `prctl` option (the argument `len_arg` names) is
    /// `PR_SET_NAME` or `PR_GET_NAME`: for the other options the argument
    /// is a number, not a pointer.
    TaskName = 10,
}

/// `prctl` options whose second argument is a thread name; see
/// `include/uapi/linux/prctl.h`.
pub const PR_SET_NAME: u64 = 15;
/// See [`PR_SET_NAME`].
pub const PR_GET_NAME: u64 = 16;

impl CaptureKind {
    /// Whether this is a part of a message header (`MsgIov` to `MsgName`):
    /// such an argument is captured twice, for its buffer and its address.
    pub const fn is_msg(self) -> bool {
        matches!(self, Self::MsgIov | Self::MsgIovRet | Self::MmsgIovLen | Self::MsgName)
    }

    /// The kind for a raw value, if it is one.
    pub const fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::None,
            1 => Self::CStr,
            2 => Self::BufLenArg,
            3 => Self::BufLenRet,
            4 => Self::SockaddrLenArg,
            5 => Self::SockaddrLenPtr,
            6 => Self::MsgIov,
            7 => Self::MsgIovRet,
            8 => Self::MmsgIovLen,
            9 => Self::MsgName,
            10 => Self::TaskName,
            _ => return None,
        })
    }
}

/// `Capture::flags`: fewer bytes were kept than the object has.
pub const CAPTURE_TRUNCATED: u8 = 1;
/// `Capture::flags`: reading user memory failed (bad pointer); no bytes kept.
pub const CAPTURE_FAULT: u8 = 2;

/// The header of one captured argument payload; `len` bytes follow it,
/// padded to a multiple of 8.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capture {
    /// Which argument (0-5) this is.
    pub arg: u8,
    /// A [`CaptureKind`] as `u8`.
    pub kind: u8,
    /// `CAPTURE_*` flags.
    pub flags: u8,
    pub _pad: u8,
    /// Bytes that follow (without padding). For strings, without the NUL.
    pub len: u32,
}

/// How to capture one argument of a syscall, set by the harness per
/// syscall number in the `SPECS` map.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ArgCapture {
    /// A [`CaptureKind`] as `u8`; 0 for an unused slot.
    pub kind: u8,
    /// The argument holding the pointer.
    pub arg: u8,
    /// The argument holding the length (or the length pointer).
    pub len_arg: u8,
    pub _pad: u8,
}

/// `SyscallSpec::flags`: the syscall never returns; record it at entry.
pub const SPEC_NO_RETURN: u32 = 1;
/// `SyscallSpec::flags`: record an [`ExecArgsEvent`] at entry, with the path
/// in argument `exec_path_arg` and argv in the one after it.
pub const SPEC_EXEC: u32 = 2;
/// `SyscallSpec::flags`: after a successful return, hand over to the
/// network probe that claims the accepted socket (set by the harness for
/// `accept` and `accept4` when it can find that socket).
pub const SPEC_ACCEPT: u32 = 4;

/// What the kernel side captures for one syscall number.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SyscallSpec {
    pub captures: [ArgCapture; MAX_CAPTURES],
    /// `SPEC_*` flags.
    pub flags: u32,
    /// With `SPEC_EXEC`: the argument holding the program path.
    pub exec_path_arg: u32,
}

/// `SessionConfig::flags`: the session is live; its tree is traced.
pub const SESSION_ACTIVE: u32 = 1;
/// `SessionConfig::flags`: count syscalls in the kernel instead of
/// recording each one (`probity run --summary`).
pub const SESSION_SUMMARY: u32 = 2;

/// Summary sessions that can count at once in one loaded tracer.
pub const MAX_SUMMARY_SESSIONS: u32 = 8;

/// Per-session settings, in the `SESSIONS` array indexed by session id.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SessionConfig {
    /// `SESSION_*` flags.
    pub flags: u32,
    /// Bytes of read/write buffers to keep (at most [`MAX_CAPTURE`]).
    pub buf_len: u32,
    /// With `SESSION_SUMMARY`: which block of `MAX_SYSCALLS` counters in
    /// `STATS` is this session's (below [`MAX_SUMMARY_SESSIONS`]).
    pub stats_slot: u32,
    /// Changes each time the id is given to a new session. The syscall
    /// probes cache "this thread is traced by this session" per CPU, and
    /// trust the cache only while the generation is the one they saw.
    pub generation: u32,
}

/// Per-session, per-syscall counters for summary sessions, in a per-CPU
/// array indexed by `stats_slot * MAX_SYSCALLS + nr`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SyscallStats {
    pub calls: u64,
    pub errors: u64,
    pub total_ns: u64,
}

/// Per-session loss counters, in a per-CPU array indexed by session id.
/// Every record the kernel side could not write is counted here.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Losses {
    /// Records dropped because the ring buffer was full.
    pub ring_full: u64,
    /// Syscalls not recorded because the in-flight map was full.
    pub inflight_full: u64,
    /// New tasks not followed because the task map was full; their whole
    /// subtree is missing from the trace.
    pub task_map_full: u64,
    /// Captures whose user memory could not be read.
    pub capture_faults: u64,
    /// Sockets not followed because the socket map was full: their later
    /// events (state changes, retransmits, resets, bytes) are missing.
    pub sock_map_full: u64,
}

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

/// `ExecArgsEvent::flags`: argv had more entries or bytes than were kept.
pub const EXEC_ARGS_TRUNCATED: u32 = 1;
/// `ExecArgsEvent::flags`: argv could not be read (bad pointer).
pub const EXEC_ARGS_FAULT: u32 = 2;

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

/// A signal delivered to a task (it is about to be handled, ignored or
/// take its default action).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalEvent {
    pub header: EventHeader,
    pub sig: i32,
    pub errno: i32,
    /// `si_code`.
    pub code: i32,
    /// `SIGNAL_*` flags.
    pub flags: u32,
    /// The handler address: 0 for `SIG_DFL`, 1 for `SIG_IGN`. For a
    /// generated signal, the `result` of `signal_generate` (0: delivered).
    pub sa_handler: u64,
    pub sa_flags: u64,
}

/// `SignalEvent::flags`: the signal was sent to the task (from
/// `signal_generate`, in the sender's context), not yet delivered. The
/// header's `tid` is the target's and its `pid` is unknown (equal to `tid`).
/// The kernel turns a fatal signal into a SIGKILL of the whole group at
/// once, so this is how a process's real killing signal is known.
pub const SIGNAL_GENERATED: u32 = 1;

/// What a [`NetEvent`] reports, as `NetEvent::op`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetOp {
    /// A traced task started a TCP connect (`TCP_CLOSE` to `TCP_SYN_SENT`).
    Connect = 1,
    /// A traced task made a TCP socket listen.
    Listen = 2,
    /// A traced task accepted a TCP connection.
    Accept = 3,
    /// An owned socket changed TCP state (`old_state` to `new_state`).
    State = 4,
    /// An owned socket was destroyed (after `TCP_CLOSE`, once its owner
    /// closed it); the counters are its totals.
    Close = 5,
    /// An owned socket retransmitted a segment (softirq or timer context).
    Retransmit = 6,
    /// The kernel sent a reset on an owned socket.
    ResetSent = 7,
    /// An owned socket received a reset.
    ResetReceived = 8,
}

impl NetOp {
    /// The op for a raw value, if it is one.
    pub const fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            1 => Self::Connect,
            2 => Self::Listen,
            3 => Self::Accept,
            4 => Self::State,
            5 => Self::Close,
            6 => Self::Retransmit,
            7 => Self::ResetSent,
            8 => Self::ResetReceived,
            _ => return None,
        })
    }
}

/// `NetEvent::flags`: the socket's addresses were not known when the
/// record was written (an accept whose handshake probity did not see).
pub const NET_ADDR_UNKNOWN: u32 = 1;
/// `NetEvent::flags`: the socket was still open when the session ended;
/// the record was made by the harness from the socket map.
pub const NET_OPEN_AT_END: u32 = 2;

/// A TCP event of a socket a traced task owns. The header's `pid` and
/// `tid` are the owner's (the task that connected, listened or accepted),
/// whatever task the kernel ran when the event happened: retransmits and
/// most state changes fire in softirq or timer context.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetEvent {
    pub header: EventHeader,
    /// A [`NetOp`] as `u32`.
    pub op: u32,
    /// `AF_INET` or `AF_INET6`.
    pub family: u16,
    /// `IPPROTO_TCP`.
    pub protocol: u16,
    /// Local port, host byte order.
    pub sport: u16,
    /// Remote port, host byte order.
    pub dport: u16,
    /// TCP state before (`State`) or at (`Retransmit`, resets) the event.
    pub old_state: u8,
    /// TCP state after the event.
    pub new_state: u8,
    pub _pad: u16,
    /// The kernel's socket address: an identity while the socket lives
    /// (the harness numbers connections by it and never shows it).
    pub sk: u64,
    /// Local address: 4 bytes for `AF_INET`, 16 for `AF_INET6`.
    pub saddr: [u8; 16],
    /// Remote address, likewise.
    pub daddr: [u8; 16],
    /// Bytes sent and received on the socket so far (totals at `Close`).
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Segments retransmitted so far.
    pub retransmits: u32,
    /// `NET_*` flags.
    pub flags: u32,
}

/// The owner of a socket and its counters, in the `SOCKS` map keyed by
/// the kernel's socket address. Filled in process context (connect,
/// listen, accept), read in any context, removed when the kernel destroys
/// the socket.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SockOwner {
    pub session: u32,
    pub pid: u32,
    pub tid: u32,
    pub retransmits: u32,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

const _: () = {
    assert!(size_of::<EventHeader>() == 24);
    assert!(size_of::<SyscallEvent>() == 104);
    assert!(size_of::<Capture>() == 8);
    assert!(size_of::<ArgCapture>() == 4);
    assert!(size_of::<SyscallSpec>() == 16);
    assert!(size_of::<SessionConfig>() == 16);
    assert!(size_of::<SyscallStats>() == 24);
    assert!(size_of::<Losses>() == 40);
    assert!(size_of::<NetEvent>() == 104);
    assert!(size_of::<SockOwner>() == 32);
    assert!(size_of::<ExecArgsEvent>() == 40 + EXEC_ARGS_LEN);
    assert!(size_of::<ExecEvent>() == 40 + EXEC_FILENAME_LEN);
    assert!(size_of::<ForkEvent>() == 32);
    assert!(size_of::<ExitEvent>() == 32);
    assert!(size_of::<SignalEvent>() == 56);
    assert!(MAX_CAPTURE.is_power_of_two());
    assert!(EXEC_ARGS_LEN.is_power_of_two());
};

// The preload ring needs 64-bit atomics, which the eBPF target lacks (and
// the eBPF programs do not use it).
#[cfg(not(target_arch = "bpf"))]
pub mod shm;

#[cfg(feature = "user")]
mod user {
    use super::*;

    // SAFETY: plain `repr(C)` data without padding, valid for any bit
    // pattern (checked by the size assertions above); likewise below.
    unsafe impl aya::Pod for SyscallSpec {}
    // SAFETY: as above.
    unsafe impl aya::Pod for SessionConfig {}
    // SAFETY: as above.
    unsafe impl aya::Pod for SyscallStats {}
    // SAFETY: as above.
    unsafe impl aya::Pod for Losses {}
    // SAFETY: as above.
    unsafe impl aya::Pod for SockOwner {}
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

/// Why a record could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Shorter than its header or body says.
    Truncated,
    /// The header names no known kind.
    UnknownKind(u32),
}

/// One syscall capture as read back: its header and its bytes.
#[derive(Clone, Copy, Debug)]
pub struct CaptureRef<'a> {
    pub capture: Capture,
    pub data: &'a [u8],
}

/// A record read back from the ring buffer.
#[derive(Clone, Copy)]
pub enum Record<'a> {
    Syscall(SyscallEvent, Captures<'a>),
    ExecArgs(&'a ExecArgsHeader, &'a [u8]),
    Exec(ExecEventRef<'a>),
    Fork(ForkEvent),
    Exit(ExitEvent),
    Signal(SignalEvent),
    Net(NetEvent),
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

/// A read-back [`ExecEvent`].
#[derive(Clone, Copy, Debug)]
pub struct ExecEventRef<'a> {
    pub header: EventHeader,
    pub old_tid: u32,
    /// `EXEC_*` flags.
    pub flags: u32,
    pub filename: &'a [u8],
}

/// The captures that follow a [`SyscallEvent`].
#[derive(Clone, Copy, Debug)]
pub struct Captures<'a> {
    rest: &'a [u8],
    left: u32,
}

impl<'a> Iterator for Captures<'a> {
    type Item = Result<CaptureRef<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let Some(capture) = read::<Capture>(self.rest) else {
            self.left = 0;
            return Some(Err(ParseError::Truncated));
        };
        let start = size_of::<Capture>();
        let end = start + capture.len as usize;
        if end > self.rest.len() || capture.len as usize > MAX_CAPTURE {
            self.left = 0;
            return Some(Err(ParseError::Truncated));
        }
        let data = &self.rest[start..end];
        self.rest = &self.rest[(start + pad8(capture.len as usize)).min(self.rest.len())..];
        Some(Ok(CaptureRef { capture, data }))
    }
}

fn read<T: Copy>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < size_of::<T>() {
        return None;
    }
    // SAFETY: length checked above; `read_unaligned` copes with any
    // alignment, and every record type is valid for any bit pattern.
    Some(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

fn cast<T>(bytes: &[u8]) -> Option<&T> {
    if bytes.len() < size_of::<T>() || !(bytes.as_ptr() as usize).is_multiple_of(core::mem::align_of::<T>()) {
        return None;
    }
    // SAFETY: length and alignment checked above; the type is plain data.
    Some(unsafe { &*bytes.as_ptr().cast::<T>() })
}

impl<'a> Record<'a> {
    /// Reads one record. Ring buffer records are 8-byte aligned.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ParseError> {
        let header = read::<EventHeader>(bytes).ok_or(ParseError::Truncated)?;
        let kind = EventKind::from_u32(header.kind).ok_or(ParseError::UnknownKind(header.kind))?;
        Ok(match kind {
            EventKind::Syscall => {
                let ev = read::<SyscallEvent>(bytes).ok_or(ParseError::Truncated)?;
                let rest = &bytes[size_of::<SyscallEvent>()..];
                Record::Syscall(ev, Captures { rest, left: ev.ncaptures.min(MAX_CAPTURES as u32) })
            }
            EventKind::ExecArgs => {
                let h = cast::<ExecArgsHeader>(bytes).ok_or(ParseError::Truncated)?;
                let data = &bytes[size_of::<ExecArgsHeader>()..];
                let len = (h.len as usize).min(EXEC_ARGS_LEN);
                if data.len() < len {
                    return Err(ParseError::Truncated);
                }
                Record::ExecArgs(h, &data[..len])
            }
            EventKind::Exec => {
                const FIXED: usize = size_of::<ExecEvent>() - EXEC_FILENAME_LEN;
                if bytes.len() < FIXED {
                    return Err(ParseError::Truncated);
                }
                let old_tid = u32::from_ne_bytes([bytes[24], bytes[25], bytes[26], bytes[27]]);
                let len = u32::from_ne_bytes([bytes[28], bytes[29], bytes[30], bytes[31]]) as usize;
                let flags = u32::from_ne_bytes([bytes[32], bytes[33], bytes[34], bytes[35]]);
                let len = len.min(EXEC_FILENAME_LEN).min(bytes.len() - FIXED);
                Record::Exec(ExecEventRef { header, old_tid, flags, filename: &bytes[FIXED..FIXED + len] })
            }
            EventKind::Fork => Record::Fork(read(bytes).ok_or(ParseError::Truncated)?),
            EventKind::Exit => Record::Exit(read(bytes).ok_or(ParseError::Truncated)?),
            EventKind::Signal => Record::Signal(read(bytes).ok_or(ParseError::Truncated)?),
            EventKind::Net => Record::Net(read(bytes).ok_or(ParseError::Truncated)?),
            // Preload records travel through the shared-memory ring (`shm`).
            EventKind::LibcCall | EventKind::PreloadAttach => return Err(ParseError::UnknownKind(header.kind)),
        })
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    #[repr(C, align(8))]
    struct Aligned([u8; 256]);

    fn aligned(bytes: &[u8]) -> Aligned {
        let mut a = Aligned([0; 256]);
        a.0[..bytes.len()].copy_from_slice(bytes);
        a
    }

    #[test]
    fn syscall_with_captures_round_trips() {
        let ev = SyscallEvent {
            header: EventHeader::new(EventKind::Syscall, 3, 1000, 7, 8),
            nr: 257,
            flags: 0,
            args: [0xffff_ff9c, 0x1000, 0o2000000, 0, 0, 0],
            ret: 3,
            duration_ns: 12,
            ncaptures: 2,
            _pad: 0,
        };
        let mut bytes = Vec::from(as_bytes(&ev));
        for (arg, s) in [(1u8, &b"/etc/hostname"[..]), (2, &b"xy"[..])] {
            let c = Capture { arg, kind: CaptureKind::CStr as u8, flags: 0, _pad: 0, len: s.len() as u32 };
            bytes.extend_from_slice(as_bytes(&c));
            bytes.extend_from_slice(s);
            bytes.resize(pad8(bytes.len()), 0);
        }
        let buf = aligned(&bytes);
        let Ok(Record::Syscall(back, caps)) = Record::parse(&buf.0[..bytes.len()]) else {
            panic!("not a syscall record");
        };
        assert_eq!(back, ev);
        let caps: Vec<_> = caps.map(|c| c.unwrap()).collect();
        assert_eq!(caps.len(), 2);
        assert_eq!(caps[0].data, b"/etc/hostname");
        assert_eq!(caps[1].capture.arg, 2);
        assert_eq!(caps[1].data, b"xy");
    }

    #[test]
    fn fork_exit_signal_round_trip() {
        let fork = ForkEvent { header: EventHeader::new(EventKind::Fork, 1, 5, 10, 11), child_tid: 12, flags: 0 };
        let buf = aligned(as_bytes(&fork));
        assert!(matches!(Record::parse(&buf.0[..32]), Ok(Record::Fork(f)) if f == fork));
        let sig = SignalEvent {
            header: EventHeader::new(EventKind::Signal, 1, 5, 10, 11),
            sig: 9,
            errno: 0,
            code: 0,
            flags: 0,
            sa_handler: 0,
            sa_flags: 0,
        };
        let buf = aligned(as_bytes(&sig));
        assert!(matches!(Record::parse(&buf.0[..56]), Ok(Record::Signal(s)) if s == sig));
    }

    #[test]
    fn net_round_trips() {
        let mut daddr = [0u8; 16];
        daddr[..4].copy_from_slice(&[127, 0, 0, 1]);
        let net = NetEvent {
            header: EventHeader::new(EventKind::Net, 2, 9, 100, 101),
            op: NetOp::Close as u32,
            family: 2,
            protocol: 6,
            sport: 40000,
            dport: 8080,
            old_state: 9,
            new_state: 7,
            _pad: 0,
            sk: 0xffff_8880_1234_5678,
            saddr: daddr,
            daddr,
            bytes_sent: 1 << 30,
            bytes_received: 12,
            retransmits: 3,
            flags: NET_OPEN_AT_END,
        };
        let buf = aligned(as_bytes(&net));
        assert!(matches!(Record::parse(&buf.0[..104]), Ok(Record::Net(n)) if n == net));
        assert_eq!(NetOp::from_u32(net.op), Some(NetOp::Close));
        assert_eq!(NetOp::from_u32(0), None);
        assert_eq!(Record::parse(&buf.0[..100]).err(), Some(ParseError::Truncated));
    }

    #[test]
    fn short_or_unknown_records_are_errors() {
        let buf = aligned(&[0; 8]);
        assert_eq!(Record::parse(&buf.0[..8]).err(), Some(ParseError::Truncated));
        let h = EventHeader { kind: 99, session: 0, ts_ns: 0, pid: 0, tid: 0 };
        let buf = aligned(as_bytes(&h));
        assert_eq!(Record::parse(&buf.0[..24]).err(), Some(ParseError::UnknownKind(99)));
        // A capture that claims more bytes than the record has.
        let ev = SyscallEvent {
            header: EventHeader::new(EventKind::Syscall, 1, 0, 1, 1),
            nr: 0,
            flags: 0,
            args: [0; 6],
            ret: 0,
            duration_ns: 0,
            ncaptures: 1,
            _pad: 0,
        };
        let mut bytes = Vec::from(as_bytes(&ev));
        let c = Capture { arg: 0, kind: 1, flags: 0, _pad: 0, len: 100 };
        bytes.extend_from_slice(as_bytes(&c));
        let buf = aligned(&bytes);
        let Ok(Record::Syscall(_, mut caps)) = Record::parse(&buf.0[..bytes.len()]) else { panic!() };
        assert!(matches!(caps.next(), Some(Err(ParseError::Truncated))));
        assert!(caps.next().is_none());
    }
}
