//! Decoding kernel syscall records into strace-like
//! [`Syscall`](crate::event::Syscall) events.
//!
//! This module is where syscall numbers become names, raw registers become
//! typed [`Arg`](crate::event::Arg)s (fds, paths, flags, socket addresses),
//! and results become errno names. It also says what the kernel side must
//! capture for each syscall ([`capture_spec`]) and prints events as strace
//! does ([`format_syscall`]).
//!
//! # Example
//! Crate-internal, so not run here; the unit tests in `args.rs` run this
//! case.
//! ```ignore
//! use probity::decode::{decode_syscall, format_syscall, CaptureData};
//! use probity_common::CaptureKind;
//! use syscalls::Sysno;
//!
//! let path = CaptureData { arg: 1, kind: CaptureKind::CStr, truncated: false, fault: false, data: b"/etc/hostname" };
//! let flags = (libc::O_RDONLY | libc::O_CLOEXEC) as u64;
//! let raw = [libc::AT_FDCWD as u64, 0x7ffd_1000, flags, 0, 0, 0];
//! let s = decode_syscall(Sysno::openat.id() as u32, &raw, 3, false, 2_500, &[path]);
//! assert_eq!(format_syscall(&s), r#"openat(AT_FDCWD, "/etc/hostname", O_RDONLY|O_CLOEXEC) = 3"#);
//! ```
//!
//! # Known limitations
//! - Names, signatures and flags are those of the architecture probity is
//!   built for; a trace recorded on another one decodes wrongly.
//! - Only the arguments the kernel captured are shown by content (at most
//!   two per syscall); other pointers, such as `struct stat *`, show as
//!   addresses.
//! - Syscalls without a signature here show all six registers in hex.

use std::borrow::Cow;

use nix::errno::Errno;
use probity_common::CaptureKind;
use syscalls::Sysno;

mod args;
pub(crate) mod flags;
pub(crate) mod sockaddr;
mod spec;
mod text;

pub use args::decode_syscall;
pub use spec::capture_spec;
pub use text::format_syscall;
pub(crate) use text::write_result;

pub use crate::event::strace::{escape_bytes, signal_name};

/// One captured argument of a syscall record, as read back from the ring
/// buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaptureData<'a> {
    /// Which argument (0-5) it belongs to.
    pub arg: u8,
    /// What the bytes are.
    pub kind: CaptureKind,
    /// The kernel kept fewer bytes than the object has.
    pub truncated: bool,
    /// The user memory could not be read; `data` is empty.
    pub fault: bool,
    /// The bytes (for strings, without the NUL).
    pub data: &'a [u8],
}

/// The name of syscall `nr` of this architecture, or `syscall_<nr>`.
pub fn syscall_name(nr: u32) -> Cow<'static, str> {
    match Sysno::new(nr as usize) {
        Some(sysno) => Cow::Borrowed(sysno.name()),
        None => Cow::Owned(format!("syscall_{nr}")),
    }
}

/// Errnos the kernel uses internally but which reach the syscall exit
/// tracepoint when a signal interrupts a call, before the restart logic
/// rewrites them. They are in no libc; see `include/linux/errno.h`.
const KERNEL_ERRNOS: &[(i32, &str, &str)] = &[
    (512, "ERESTARTSYS", "To be restarted if SA_RESTART is set"),
    (513, "ERESTARTNOINTR", "To be restarted"),
    (514, "ERESTARTNOHAND", "To be restarted if no handler"),
    (516, "ERESTART_RESTARTBLOCK", "Interrupted by signal"),
];

/// The name of an errno, such as `ENOENT`; `errno_<n>` when unknown.
pub fn errno_name(e: i32) -> Cow<'static, str> {
    if let Some(&(_, name, _)) = KERNEL_ERRNOS.iter().find(|k| k.0 == e) {
        return Cow::Borrowed(name);
    }
    match Errno::from_raw(e) {
        Errno::UnknownErrno => Cow::Owned(format!("errno_{e}")),
        errno => Cow::Owned(format!("{errno:?}")),
    }
}

/// The description of an errno, such as `No such file or directory`: the
/// C library's, as strace prints it (nix's differ for some, such as
/// `ENOTTY`'s "Not a typewriter").
pub fn errno_desc(e: i32) -> String {
    if let Some(&(_, _, desc)) = KERNEL_ERRNOS.iter().find(|k| k.0 == e) {
        return desc.to_owned();
    }
    match Errno::from_raw(e) {
        Errno::UnknownErrno => Errno::UnknownErrno.desc().to_owned(),
        // std asks the C library (`strerror_r`) and appends the number.
        _ => {
            let text = std::io::Error::from_raw_os_error(e).to_string();
            let suffix = format!(" (os error {e})");
            text.strip_suffix(&suffix).unwrap_or(&text).to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(syscall_name(Sysno::openat.id() as u32), "openat");
        assert_eq!(syscall_name(100_000), "syscall_100000");
        assert_eq!(errno_name(libc::ENOENT), "ENOENT");
        assert_eq!(errno_desc(libc::ENOENT), "No such file or directory");
        assert_eq!(errno_desc(libc::ENOTTY), "Inappropriate ioctl for device");
        assert_eq!(errno_name(512), "ERESTARTSYS");
        assert_eq!(errno_name(4000), "errno_4000");
    }
}
