//! A finished syscall ([`SyscallEvent`]) and the argument payloads
//! ([`Capture`]s) that follow it.

use super::EventHeader;

/// Largest bytes captured for one path, buffer or address.
pub const MAX_CAPTURE: usize = 4096;
/// Captures a syscall record can carry.
pub const MAX_CAPTURES: usize = 2;

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
    /// Nothing to capture (an unused [`ArgCapture`](crate::ArgCapture) slot).
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

const _: () = {
    assert!(size_of::<SyscallEvent>() == 104);
    assert!(size_of::<Capture>() == 8);
    assert!(MAX_CAPTURE.is_power_of_two());
};
