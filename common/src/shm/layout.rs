//! The records the preload library writes into the ring: a libc call
//! ([`LibcCallFixed`] and its parts) and the library's start in a process
//! ([`Attach`]).

use super::{Frame, MAX_ARGS, MAX_RECORD, NAME_LEN};
use crate::EventHeader;

/// What a [`ArgSlot`] holds, so the harness can show any hook's record,
/// including hooks users write for their own libraries.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgKind {
    None = 0,
    Int = 1,
    Uint = 2,
    Hex = 3,
    Fd = 4,
    Ptr = 5,
    /// A string in the record's string area.
    Str = 6,
    /// Open flags (`O_*`), decoded like the syscall's.
    OpenFlags = 7,
    /// A file mode, shown in octal.
    Mode = 8,
    /// A socket address, its bytes in the string area.
    Sockaddr = 9,
    /// A list of strings (argv, resolved addresses), NUL-separated in the
    /// string area.
    StrList = 10,
    /// `AT_*` flags.
    AtFlags = 11,
}

impl ArgKind {
    pub const fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::None,
            1 => Self::Int,
            2 => Self::Uint,
            3 => Self::Hex,
            4 => Self::Fd,
            5 => Self::Ptr,
            6 => Self::Str,
            7 => Self::OpenFlags,
            8 => Self::Mode,
            9 => Self::Sockaddr,
            10 => Self::StrList,
            11 => Self::AtFlags,
            _ => return None,
        })
    }
}

/// `ArgSlot::flags`: the string was cut to fit.
pub const ARG_TRUNCATED: u8 = 1;
/// `ArgSlot::flags`: a NULL pointer where a string was expected.
pub const ARG_NULL: u8 = 2;

/// One argument (or the result) of a libc call.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArgSlot {
    /// An [`ArgKind`].
    pub kind: u8,
    /// `ARG_*` flags.
    pub flags: u8,
    /// Offset of its bytes in the string area.
    pub off: u16,
    /// Length of its bytes in the string area.
    pub len: u16,
    pub _pad: u16,
    /// The raw value (the pointer, for strings).
    pub value: u64,
}

/// `LibcCallFixed::flags`: the record was written before the call, which
/// may not return (`exec*`, `exit`); `ret` means nothing.
pub const CALL_BEFORE: u16 = 1;
/// `LibcCallFixed::flags`: the result of a call recorded before it ran
/// (`CALL_BEFORE`), which did return; only `ret`, `errno` and `end` are set.
pub const CALL_RESULT: u16 = 2;
/// `LibcCallFixed::flags`: the call did not run; a fault-injection rule
/// gave its result.
pub const CALL_INJECTED: u16 = 4;

/// The fixed part of a libc call record. After it come `name_len` bytes
/// of the function's name, then the string area the argument slots point
/// into, then `nargs` [`ArgSlot`]s (unaligned) to the end of the record.
/// (Strings before slots: a hook writes strings as it goes, and learns how
/// many arguments it has at the end.)
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LibcCallFixed {
    /// `ts_ns` is the time of entry, in the ring's clock (`RingHeader::clock`).
    pub header: EventHeader,
    /// The time of return (of entry, for `CALL_BEFORE`), same clock.
    pub end: u64,
    /// `CALL_*` flags.
    pub flags: u16,
    /// Arguments that follow.
    pub nargs: u8,
    /// Bytes of the name that follows them.
    pub name_len: u8,
    /// `errno` after the call.
    pub errno: i32,
    /// The result, shown as its kind says.
    pub ret: ArgSlot,
}

/// Where a libc call record of `len` payload bytes has its name, strings
/// and argument slots; `None` when they do not fit in it.
pub const fn libc_call_parts(len: usize, nargs: usize, name_len: usize) -> Option<LibcCallParts> {
    let name = size_of::<LibcCallFixed>();
    let strings = name + name_len;
    let args_bytes = nargs * size_of::<ArgSlot>();
    if len < strings + args_bytes {
        return None;
    }
    Some(LibcCallParts { name, strings, args: len - args_bytes })
}

/// Offsets of a libc call record's parts (see [`libc_call_parts`]); each
/// runs to the next, the slots to the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LibcCallParts {
    pub name: usize,
    pub strings: usize,
    pub args: usize,
}

/// Bytes of a libc call record's string area: what is left of the
/// largest record after the frame, the fixed part, every argument and
/// the longest name.
pub const STRINGS_LEN: usize =
    MAX_RECORD - size_of::<Frame>() - size_of::<LibcCallFixed>() - MAX_ARGS * size_of::<ArgSlot>() - NAME_LEN;

/// The preload library started in a process (once per exec'd image). The
/// header's time is when it finished setting up; the syscalls the thread
/// made between `init_start_ns` and then are the library's own. Both
/// times are `CLOCK_MONOTONIC` nanoseconds, whatever the ring's clock.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Attach {
    pub header: EventHeader,
    /// When the library's initialisation began.
    pub init_start_ns: u64,
    /// The address of the ring's `wake` futex in this process (and in the
    /// processes it forks): its waits for room are probity's, not the
    /// program's.
    pub wake_addr: u64,
    /// The parent process (`getppid`) when the harness asked for it
    /// (`RingHeader::parents`), else 0: it links the process into the tree
    /// when only the preload tracer runs.
    pub ppid: u32,
    /// `ATTACH_*` bits: what the window was.
    pub flags: u32,
}

/// An [`Attach`] flag: the library's set-up in a newly loaded image (the
/// others are a thread or forked child learning its ids).
pub const ATTACH_IMAGE: u32 = 1;
/// An [`Attach`] flag: a `vfork` child learning its pid, on its parent's
/// stack and thread state, before it execs or exits.
pub const ATTACH_VFORK_CHILD: u32 = 2;

const _: () = {
    assert!(size_of::<ArgSlot>() == 16);
    assert!(size_of::<LibcCallFixed>() == 24 + 8 + 8 + 16);
    assert!(size_of::<Attach>() == 48);
    assert!(STRINGS_LEN < u16::MAX as usize);
};
