//! The syscall spec table: what the kernel side captures for each syscall
//! number ([`SyscallSpec`]), set by the harness in the `SPECS` map.

use crate::MAX_CAPTURES;

/// How to capture one argument of a syscall, set by the harness per
/// syscall number in the `SPECS` map.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ArgCapture {
    /// A [`CaptureKind`](crate::CaptureKind) as `u8`; 0 for an unused slot.
    pub kind: u8,
    /// The argument holding the pointer.
    pub arg: u8,
    /// The argument holding the length (or the length pointer).
    pub len_arg: u8,
    pub _pad: u8,
}

/// `SyscallSpec::flags`: the syscall never returns; record it at entry.
pub const SPEC_NO_RETURN: u32 = 1;
/// `SyscallSpec::flags`: record an [`ExecArgsEvent`](crate::ExecArgsEvent) at entry, with the path
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

const _: () = {
    assert!(size_of::<ArgCapture>() == 4);
    assert!(size_of::<SyscallSpec>() == 16);
};
