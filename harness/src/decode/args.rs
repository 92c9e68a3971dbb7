//! Turning a syscall record's raw arguments and captures into [`Syscall`].
//!
//! Each syscall probity knows has a signature: one [`Ty`] per argument, in
//! order, as the kernel declares it. A captured argument is decoded from
//! its capture whatever its type says, so the signatures and [`capture_spec`]
//! cannot disagree about what a capture holds.

use probity_common::CaptureKind;
use syscalls::Sysno;

use super::{capture_spec, errno_name, flags, sockaddr, syscall_name, CaptureData};
use crate::event::{Arg, Syscall};

/// The largest errno the kernel returns: results in `-MAX_ERRNO..=-1` are
/// errors, anything else (such as an `mmap` address) is a value. See
/// `include/linux/err.h` (`MAX_ERRNO`, `IS_ERR_VALUE`).
const MAX_ERRNO: i64 = 4095;

/// How to show one argument.
#[derive(Clone, Copy)]
enum Ty {
    /// A C `int`: the low 32 bits, signed.
    Int,
    /// A `long`, `off_t` or `ssize_t`.
    Long,
    /// An address-sized value with no meaning in decimal.
    Hex,
    /// A file descriptor or directory fd (`AT_FDCWD`).
    Fd,
    /// A pointer, shown by its captured target when the kernel captured one
    /// (a string, a buffer, a socket address).
    Ptr,
    /// A buffer the kernel fills with a string (`getcwd`, `readlink`).
    StrOut,
    /// A flag set or enumeration.
    Flags(fn(u64) -> String),
    /// The mode of `open`, shown only when the flags before it create a file.
    OpenMode,
    /// The third argument of `fcntl`, whose meaning depends on the command.
    FcntlArg,
    /// The third argument of `ioctl`, whose meaning depends on the request.
    IoctlArg,
    /// The second argument of `arch_prctl`: an address to set, or a
    /// pointer the kernel writes to.
    ArchPrctlArg,
    /// The protocol of `socket`, named for the family before it.
    SockProto,
    /// A socket option, named for the level before it.
    SockOpt,
}

use Ty::{ArchPrctlArg, FcntlArg, Fd, Flags, Hex, Int, IoctlArg, Long, OpenMode, Ptr, SockOpt, SockProto, StrOut};

/// What the decoders share about one call.
struct Call<'a> {
    nr: u32,
    raw: &'a [u64; 6],
    /// The return value; `None` when the syscall failed or never returned,
    /// so that nothing it would have written is trusted.
    ok: Option<i64>,
    captures: &'a [CaptureData<'a>],
}

/// Decodes one syscall record. See [`crate::decode`].
pub fn decode_syscall(
    nr: u32,
    raw: &[u64; 6],
    ret: i64,
    no_return: bool,
    duration_ns: u64,
    captures: &[CaptureData<'_>],
) -> Syscall {
    let sysno = Sysno::new(nr as usize);
    let failed = !no_return && (-MAX_ERRNO..0).contains(&ret) && sysno.is_none_or(can_fail);
    let call = Call { nr, raw, ok: (!no_return && !failed).then_some(ret), captures };
    // The syscalls crate knows names but not arities: show all six
    // registers of the ones probity has no signature for.
    let tys = match sysno {
        Some(Sysno::prctl) => prctl_signature(raw[0]),
        _ => sysno.and_then(signature).unwrap_or(&[Hex; 6]),
    };
    // One allocation of the right size: collecting the filtered
    // arguments would start at four and grow for five or six.
    let mut args = Vec::with_capacity(tys.len());
    args.extend(tys.iter().enumerate().filter_map(|(i, &ty)| call.arg(i, ty)));
    Syscall {
        name: syscall_name(nr),
        nr,
        args,
        ret: (!no_return).then_some(ret),
        errno: failed.then(|| errno_name((-ret) as i32)),
        duration_ns,
        parent: None,
        injected: false,
    }
}

impl Call<'_> {
    /// Argument `i` shown as `ty`; `None` for an argument that is left out.
    fn arg(&self, i: usize, ty: Ty) -> Option<Arg> {
        let raw = *self.raw.get(i)?;
        if let Some(capture) = self.captures.iter().find(|c| usize::from(c.arg) == i) {
            if capture.kind.is_msg() {
                return Some(self.msg(i, raw));
            }
            return Some(self.captured(i, raw, ty, capture));
        }
        // A read that returned 0 bytes has nothing to capture; strace shows `""`.
        if raw != 0 && self.ok == Some(0) && !matches!(ty, StrOut) {
            let spec = capture_spec(self.nr);
            if spec.captures.iter().any(|c| usize::from(c.arg) == i && c.kind == CaptureKind::BufLenRet as u8) {
                return Some(Arg::Bytes { data: Vec::new(), len: 0 });
            }
        }
        Some(match ty {
            Int => Arg::Int((raw as i32).into()),
            Long => Arg::Int(raw as i64),
            Hex => Arg::Hex(raw),
            Fd => Arg::Fd(raw as i32),
            Ptr | StrOut => Arg::Ptr(raw),
            Flags(render) => flags_arg(raw, render),
            OpenMode => {
                let flags = self.raw[i.checked_sub(1)?];
                return flags::creates(flags).then(|| flags_arg(raw, flags::mode));
            }
            FcntlArg => return self.fcntl_arg(raw),
            IoctlArg => match flags::ioctl_arg(self.raw[1]) {
                flags::IoctlArg::None => return None,
                flags::IoctlArg::Int => Arg::Int((raw as i32).into()),
                flags::IoctlArg::Ptr => Arg::Ptr(raw),
                flags::IoctlArg::Hex => Arg::Hex(raw),
            },
            ArchPrctlArg if flags::arch_prctl_gets(self.raw[0]) => Arg::Ptr(raw),
            ArchPrctlArg => Arg::Hex(raw),
            SockProto => Arg::Flags { value: raw, text: flags::sock_proto(self.raw[0], raw) },
            SockOpt => Arg::Flags { value: raw, text: flags::sock_option(self.raw[1], raw) },
        })
    }

    /// Argument `i`, whose register holds `raw`, shown by its capture `c`.
    fn captured(&self, i: usize, raw: u64, ty: Ty, c: &CaptureData<'_>) -> Arg {
        let written_by_kernel =
            matches!(c.kind, CaptureKind::BufLenRet | CaptureKind::SockaddrLenPtr) || matches!(ty, StrOut);
        if raw == 0 {
            return Arg::Ptr(0);
        }
        // A failed call wrote nothing; what was read is stale.
        if written_by_kernel && self.ok.is_none() {
            return Arg::Ptr(raw);
        }
        if c.fault {
            return Arg::Unreadable(raw);
        }
        let ret = self.ok.unwrap_or(0).max(0) as u64;
        match c.kind {
            // A path the kernel wrote (`getcwd`, `readlink`), read as a
            // string so that it is cut at the path limit, not at the
            // buffer limit. `readlink` writes no NUL: what was read past
            // its result is the buffer's old contents, and is dropped;
            // fewer bytes than the result means the path was cut.
            CaptureKind::CStr if matches!(ty, StrOut) => {
                let len = usize::try_from(ret).unwrap_or(usize::MAX);
                let data = &c.data[..c.data.len().min(len)];
                let data = data.strip_suffix(b"\0").unwrap_or(data);
                let kept = c.data.len() as u64;
                string(data, kept < ret && !(kept + 1 == ret && self.counts_nul()))
            }
            CaptureKind::CStr => string(c.data, c.truncated),
            // A thread name: what `PR_GET_NAME` read is only there when
            // it succeeded.
            CaptureKind::TaskName if self.raw[0] == probity_common::PR_GET_NAME && self.ok.is_none() => Arg::Ptr(raw),
            CaptureKind::TaskName => string(c.data, c.truncated),
            // The working directory and link targets are strings, but
            // `getcwd` counts the NUL and `readlink` has none.
            CaptureKind::BufLenRet if matches!(ty, StrOut) => {
                let data = c.data.strip_suffix(b"\0").unwrap_or(c.data);
                string(data, c.truncated || (c.data.len() as u64) < ret)
            }
            CaptureKind::BufLenRet => Arg::Bytes { data: c.data.to_vec(), len: ret },
            CaptureKind::BufLenArg => {
                Arg::Bytes { data: c.data.to_vec(), len: self.len_arg(i).unwrap_or(c.data.len() as u64) }
            }
            CaptureKind::SockaddrLenArg | CaptureKind::SockaddrLenPtr => {
                sockaddr::decode(c.data).map_or(Arg::Ptr(raw), Arg::Sockaddr)
            }
            CaptureKind::None
            | CaptureKind::MsgIov
            | CaptureKind::MsgIovRet
            | CaptureKind::MmsgIovLen
            | CaptureKind::MsgName => Arg::Ptr(raw),
        }
    }

    /// Argument `i`, a message header whose register holds `raw`, from
    /// its captures: its address and its first buffer.
    fn msg(&self, i: usize, raw: u64) -> Arg {
        // A failed call sent nothing, or wrote nothing to show.
        if raw == 0 || self.ok.is_none() {
            return Arg::Ptr(raw);
        }
        let mut name = None;
        let mut data = Vec::new();
        let mut truncated = false;
        for c in self.captures.iter().filter(|c| usize::from(c.arg) == i) {
            match c.kind {
                CaptureKind::MsgName if !c.fault => name = sockaddr::decode(c.data),
                CaptureKind::MsgIov | CaptureKind::MsgIovRet | CaptureKind::MmsgIovLen => {
                    data = c.data.to_vec();
                    // An unreadable buffer shows as cut before its first byte.
                    truncated = c.truncated || c.fault;
                }
                _ => {}
            }
        }
        Arg::Msg { name, data, truncated }
    }

    /// Whether the result counts a NUL after the string (`getcwd`'s does,
    /// `readlink`'s does not).
    fn counts_nul(&self) -> bool {
        self.nr == Sysno::getcwd.id() as u32
    }

    /// The value of the argument that holds argument `i`'s length.
    fn len_arg(&self, i: usize) -> Option<u64> {
        let spec = capture_spec(self.nr);
        let capture = spec.captures.iter().find(|c| usize::from(c.arg) == i)?;
        self.raw.get(usize::from(capture.len_arg)).copied()
    }

    fn fcntl_arg(&self, raw: u64) -> Option<Arg> {
        Some(match self.raw[1] as i32 {
            libc::F_GETFD
            | libc::F_GETFL
            | libc::F_GETOWN
            | libc::F_GETLEASE
            | libc::F_GETPIPE_SZ
            | libc::F_GET_SEALS => return None,
            libc::F_SETFL => flags_arg(raw, flags::open),
            libc::F_SETFD => flags_arg(raw, flags::fd_cloexec),
            libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => Arg::Fd(raw as i32),
            libc::F_GETLK
            | libc::F_SETLK
            | libc::F_SETLKW
            | libc::F_OFD_GETLK
            | libc::F_OFD_SETLK
            | libc::F_OFD_SETLKW => Arg::Ptr(raw),
            _ => Arg::Int((raw as i32).into()),
        })
    }
}

fn flags_arg(value: u64, render: fn(u64) -> String) -> Arg {
    Arg::Flags { value, text: render(value) }
}

fn string(data: &[u8], truncated: bool) -> Arg {
    Arg::Path { path: <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(data).to_owned(), truncated }
}

/// Whether a syscall can return an errno; the rest return any value.
///
/// `rt_sigreturn` returns the interrupted code's register: after a
/// syscall that a handler interrupted, that syscall's error, such as
/// `EINTR`, which strace shows as `rt_sigreturn's` own (`= -1 EINTR`), and
/// so does probity.
fn can_fail(sysno: Sysno) -> bool {
    !matches!(
        sysno,
        Sysno::getpid
            | Sysno::getppid
            | Sysno::gettid
            | Sysno::getuid
            | Sysno::geteuid
            | Sysno::getgid
            | Sysno::getegid
            | Sysno::umask
    )
}

/// The arguments of `prctl`, which depend on its option, as strace shows
/// them: `prctl(PR_SET_NAME, "name")`, `prctl(PR_GET_DUMPABLE)`; the
/// options probity knows no more about show all five.
fn prctl_signature(option: u64) -> &'static [Ty] {
    const OPTION: Ty = Flags(flags::prctl);
    match option as i32 {
        libc::PR_GET_DUMPABLE
        | libc::PR_GET_KEEPCAPS
        | libc::PR_GET_SECUREBITS
        | libc::PR_GET_TIMERSLACK
        | libc::PR_MCE_KILL_GET => &[OPTION],
        libc::PR_SET_NAME | libc::PR_GET_NAME => &[OPTION, StrOut],
        libc::PR_SET_PDEATHSIG => &[OPTION, Flags(flags::signal)],
        libc::PR_GET_PDEATHSIG | libc::PR_GET_CHILD_SUBREAPER | libc::PR_GET_TID_ADDRESS => &[OPTION, Ptr],
        libc::PR_SET_DUMPABLE => &[OPTION, Flags(flags::suid_dump)],
        libc::PR_CAPBSET_READ | libc::PR_CAPBSET_DROP => &[OPTION, Flags(flags::capability)],
        libc::PR_SET_NO_NEW_PRIVS | libc::PR_GET_NO_NEW_PRIVS => &[OPTION, Long, Long, Long, Long],
        libc::PR_SET_CHILD_SUBREAPER | libc::PR_SET_KEEPCAPS | libc::PR_SET_TIMERSLACK => &[OPTION, Long],
        _ => &[OPTION, Hex, Hex, Hex, Hex],
    }
}

/// The arguments of the syscalls probity knows, as the kernel declares them
/// (`include/linux/syscalls.h`).
fn signature(sysno: Sysno) -> Option<&'static [Ty]> {
    Some(match sysno {
        // No arguments.
        Sysno::getpid
        | Sysno::getppid
        | Sysno::gettid
        | Sysno::getuid
        | Sysno::geteuid
        | Sysno::getgid
        | Sysno::getegid
        | Sysno::setsid
        | Sysno::sched_yield
        | Sysno::sync
        | Sysno::munlockall
        | Sysno::vhangup
        | Sysno::rt_sigreturn
        | Sysno::restart_syscall => &[],
        #[cfg(target_arch = "x86_64")]
        Sysno::fork | Sysno::vfork | Sysno::pause | Sysno::getpgrp | Sysno::inotify_init => &[],

        // Files.
        Sysno::read | Sysno::write => &[Fd, Ptr, Long],
        Sysno::pread64 | Sysno::pwrite64 => &[Fd, Ptr, Long, Long],
        Sysno::readv | Sysno::writev => &[Fd, Ptr, Int],
        Sysno::preadv | Sysno::pwritev => &[Fd, Ptr, Int, Long, Long],
        Sysno::close | Sysno::fsync | Sysno::fdatasync | Sysno::fchdir | Sysno::syncfs | Sysno::dup => &[Fd],
        Sysno::close_range => &[Fd, Fd, Flags(flags::close_range)],
        Sysno::dup3 => &[Fd, Fd, Flags(flags::fd_flags)],
        Sysno::pipe2 => &[Ptr, Flags(flags::fd_flags)],
        Sysno::lseek => &[Fd, Long, Flags(flags::whence)],
        Sysno::openat => &[Fd, Ptr, Flags(flags::open), OpenMode],
        Sysno::openat2 => &[Fd, Ptr, Ptr, Long],
        Sysno::name_to_handle_at => &[Fd, Ptr, Ptr, Ptr, Flags(flags::at)],
        Sysno::open_by_handle_at => &[Fd, Ptr, Flags(flags::open)],
        Sysno::fstat | Sysno::fstatfs => &[Fd, Ptr],
        Sysno::statx => &[Fd, Ptr, Flags(flags::statx_flags), Flags(flags::statx_mask), Ptr],
        Sysno::faccessat => &[Fd, Ptr, Flags(flags::access)],
        Sysno::faccessat2 => &[Fd, Ptr, Flags(flags::access), Flags(flags::at_access)],
        Sysno::mkdirat => &[Fd, Ptr, Flags(flags::mode)],
        Sysno::mknodat => &[Fd, Ptr, Flags(flags::mode), Hex],
        Sysno::unlinkat => &[Fd, Ptr, Flags(flags::at)],
        Sysno::renameat => &[Fd, Ptr, Fd, Ptr],
        Sysno::renameat2 => &[Fd, Ptr, Fd, Ptr, Flags(flags::rename)],
        Sysno::linkat => &[Fd, Ptr, Fd, Ptr, Flags(flags::at)],
        Sysno::symlinkat => &[Ptr, Fd, Ptr],
        Sysno::readlinkat => &[Fd, Ptr, StrOut, Long],
        Sysno::fchmod => &[Fd, Flags(flags::mode)],
        Sysno::fchmodat => &[Fd, Ptr, Flags(flags::mode)],
        Sysno::fchmodat2 => &[Fd, Ptr, Flags(flags::mode), Flags(flags::at)],
        Sysno::fchown => &[Fd, Int, Int],
        Sysno::fchownat => &[Fd, Ptr, Int, Int, Flags(flags::at)],
        Sysno::utimensat => &[Fd, Ptr, Ptr, Flags(flags::at)],
        Sysno::truncate => &[Ptr, Long],
        Sysno::ftruncate => &[Fd, Long],
        Sysno::fallocate => &[Fd, Int, Long, Long],
        Sysno::fadvise64 => &[Fd, Long, Long, Flags(flags::fadvise)],
        Sysno::chdir | Sysno::chroot | Sysno::acct | Sysno::swapoff => &[Ptr],
        Sysno::getcwd => &[StrOut, Long],
        Sysno::umask => &[Flags(flags::mode)],
        Sysno::fcntl => &[Fd, Flags(flags::fcntl_cmd), FcntlArg],
        Sysno::flock => &[Fd, Flags(flags::flock)],
        Sysno::ioctl => &[Fd, Flags(flags::ioctl_request), IoctlArg],
        Sysno::getdents64 => &[Fd, Ptr, Long],
        Sysno::statfs => &[Ptr, Ptr],
        Sysno::sendfile => &[Fd, Fd, Ptr, Long],
        Sysno::copy_file_range => &[Fd, Ptr, Fd, Ptr, Long, Int],
        Sysno::splice => &[Fd, Ptr, Fd, Ptr, Long, Int],
        Sysno::getxattr | Sysno::lgetxattr => &[Ptr, Ptr, Ptr, Long],
        Sysno::setxattr | Sysno::lsetxattr => &[Ptr, Ptr, Ptr, Long, Int],
        Sysno::listxattr | Sysno::llistxattr => &[Ptr, Ptr, Long],
        Sysno::removexattr | Sysno::lremovexattr => &[Ptr, Ptr],
        Sysno::fgetxattr => &[Fd, Ptr, Ptr, Long],
        Sysno::fsetxattr => &[Fd, Ptr, Ptr, Long, Int],
        Sysno::flistxattr => &[Fd, Ptr, Long],
        Sysno::fremovexattr => &[Fd, Ptr],
        Sysno::memfd_create => &[Ptr, Flags(flags::memfd)],
        Sysno::inotify_init1 => &[Flags(flags::fd_flags)],
        Sysno::inotify_add_watch => &[Fd, Ptr, Hex],
        Sysno::inotify_rm_watch => &[Fd, Int],
        Sysno::fanotify_mark => &[Fd, Hex, Hex, Fd, Ptr],
        Sysno::quotactl => &[Hex, Ptr, Int, Ptr],
        #[cfg(target_arch = "x86_64")]
        Sysno::newfstatat => &[Fd, Ptr, Ptr, Flags(flags::at)],
        #[cfg(target_arch = "aarch64")]
        Sysno::fstatat => &[Fd, Ptr, Ptr, Flags(flags::at)],
        #[cfg(target_arch = "x86_64")]
        Sysno::open => &[Ptr, Flags(flags::open), OpenMode],
        #[cfg(target_arch = "x86_64")]
        Sysno::creat | Sysno::mkdir | Sysno::chmod => &[Ptr, Flags(flags::mode)],
        #[cfg(target_arch = "x86_64")]
        Sysno::stat | Sysno::lstat | Sysno::utime | Sysno::utimes => &[Ptr, Ptr],
        #[cfg(target_arch = "x86_64")]
        Sysno::access => &[Ptr, Flags(flags::access)],
        #[cfg(target_arch = "x86_64")]
        Sysno::unlink | Sysno::rmdir | Sysno::uselib => &[Ptr],
        #[cfg(target_arch = "x86_64")]
        Sysno::rename | Sysno::link | Sysno::symlink => &[Ptr, Ptr],
        #[cfg(target_arch = "x86_64")]
        Sysno::readlink => &[Ptr, StrOut, Long],
        #[cfg(target_arch = "x86_64")]
        Sysno::chown | Sysno::lchown => &[Ptr, Int, Int],
        #[cfg(target_arch = "x86_64")]
        Sysno::mknod => &[Ptr, Flags(flags::mode), Hex],
        #[cfg(target_arch = "x86_64")]
        Sysno::futimesat => &[Fd, Ptr, Ptr],
        #[cfg(target_arch = "x86_64")]
        Sysno::dup2 => &[Fd, Fd],
        #[cfg(target_arch = "x86_64")]
        Sysno::pipe => &[Ptr],
        #[cfg(target_arch = "x86_64")]
        Sysno::getdents => &[Fd, Ptr, Long],

        // Polling and event fds.
        Sysno::ppoll => &[Ptr, Int, Ptr, Ptr, Long],
        Sysno::pselect6 => &[Int, Ptr, Ptr, Ptr, Ptr, Ptr],
        Sysno::epoll_create1 => &[Flags(flags::epoll_flags)],
        Sysno::epoll_ctl => &[Fd, Flags(flags::epoll_op), Fd, Ptr],
        Sysno::epoll_pwait | Sysno::epoll_pwait2 => &[Fd, Ptr, Int, Int, Ptr, Long],
        Sysno::eventfd2 => &[Int, Flags(flags::efd)],
        Sysno::signalfd4 => &[Fd, Ptr, Long, Flags(flags::fd_flags)],
        Sysno::timerfd_create => &[Flags(flags::clock), Flags(flags::fd_flags)],
        Sysno::timerfd_settime => &[Fd, Flags(flags::timer), Ptr, Ptr],
        Sysno::timerfd_gettime => &[Fd, Ptr],
        #[cfg(target_arch = "x86_64")]
        Sysno::poll => &[Ptr, Int, Int],
        #[cfg(target_arch = "x86_64")]
        Sysno::select => &[Int, Ptr, Ptr, Ptr, Ptr],
        #[cfg(target_arch = "x86_64")]
        Sysno::epoll_create | Sysno::eventfd | Sysno::alarm => &[Int],
        #[cfg(target_arch = "x86_64")]
        Sysno::epoll_wait => &[Fd, Ptr, Int, Int],
        #[cfg(target_arch = "x86_64")]
        Sysno::signalfd => &[Fd, Ptr, Long],

        // Memory.
        Sysno::mmap => &[Ptr, Long, Flags(flags::prot), Flags(flags::map), Fd, Long],
        Sysno::munmap | Sysno::mlock | Sysno::munlock => &[Ptr, Long],
        Sysno::mprotect => &[Ptr, Long, Flags(flags::prot)],
        Sysno::mremap => &[Ptr, Long, Long, Flags(flags::mremap), Ptr],
        Sysno::madvise => &[Ptr, Long, Flags(flags::madvise)],
        Sysno::msync | Sysno::mlock2 => &[Ptr, Long, Hex],
        Sysno::mincore => &[Ptr, Long, Ptr],
        Sysno::mlockall => &[Hex],
        Sysno::brk => &[Ptr],

        // Processes.
        Sysno::execve => &[Ptr, Ptr, Ptr],
        Sysno::execveat => &[Fd, Ptr, Ptr, Ptr, Flags(flags::at)],
        Sysno::exit | Sysno::exit_group => &[Int],
        Sysno::clone => &[Flags(flags::clone), Ptr, Ptr, Ptr, Ptr],
        Sysno::clone3 => &[Ptr, Long],
        Sysno::unshare => &[Flags(flags::namespaces)],
        Sysno::setns => &[Fd, Flags(flags::namespaces)],
        Sysno::wait4 => &[Int, Ptr, Flags(flags::wait), Ptr],
        Sysno::waitid => &[Flags(flags::id_type), Int, Ptr, Flags(flags::wait), Ptr],
        Sysno::kill | Sysno::tkill => &[Int, Flags(flags::signal)],
        Sysno::tgkill => &[Int, Int, Flags(flags::signal)],
        Sysno::pidfd_open => &[Int, Hex],
        Sysno::pidfd_send_signal => &[Fd, Flags(flags::signal), Ptr, Hex],
        Sysno::pidfd_getfd => &[Fd, Fd, Hex],
        Sysno::set_tid_address => &[Ptr],
        Sysno::set_robust_list => &[Ptr, Long],
        Sysno::futex => &[Ptr, Flags(flags::futex_op), Int, Ptr, Ptr, Hex],
        Sysno::rseq => &[Ptr, Int, Hex, Hex],
        Sysno::prlimit64 => &[Int, Flags(flags::rlimit), Ptr, Ptr],
        Sysno::getrlimit | Sysno::setrlimit => &[Flags(flags::rlimit), Ptr],
        Sysno::getrusage => &[Int, Ptr],
        Sysno::setuid | Sysno::setgid | Sysno::getpgid | Sysno::getsid | Sysno::personality => &[Int],
        Sysno::setreuid | Sysno::setregid | Sysno::setpgid => &[Int, Int],
        Sysno::setresuid | Sysno::setresgid => &[Int, Int, Int],
        Sysno::getresuid | Sysno::getresgid => &[Ptr, Ptr, Ptr],
        Sysno::getgroups | Sysno::setgroups => &[Int, Ptr],
        Sysno::capget | Sysno::capset => &[Ptr, Ptr],
        Sysno::getpriority | Sysno::setpriority => &[Int, Int, Int],
        Sysno::sched_getaffinity | Sysno::sched_setaffinity => &[Int, Long, Ptr],
        Sysno::seccomp => &[Int, Hex, Ptr],
        Sysno::getrandom => &[Ptr, Long, Flags(flags::grnd)],
        Sysno::uname | Sysno::sysinfo | Sysno::times => &[Ptr],
        Sysno::mount => &[Ptr, Ptr, Ptr, Flags(flags::mount), Ptr],
        Sysno::umount2 => &[Ptr, Flags(flags::umount)],
        Sysno::pivot_root => &[Ptr, Ptr],
        Sysno::fsopen => &[Ptr, Hex],
        Sysno::open_tree | Sysno::fspick => &[Fd, Ptr, Hex],
        Sysno::move_mount => &[Fd, Ptr, Fd, Ptr, Hex],
        Sysno::mount_setattr => &[Fd, Ptr, Flags(flags::at), Ptr, Long],
        Sysno::swapon => &[Ptr, Hex],
        Sysno::sethostname | Sysno::setdomainname => &[Ptr, Long],
        #[cfg(target_arch = "x86_64")]
        Sysno::arch_prctl => &[Flags(flags::arch_prctl), ArchPrctlArg],

        // Time.
        Sysno::nanosleep => &[Ptr, Ptr],
        Sysno::clock_nanosleep => &[Flags(flags::clock), Flags(flags::timer), Ptr, Ptr],
        Sysno::clock_gettime | Sysno::clock_getres | Sysno::clock_settime => &[Flags(flags::clock), Ptr],
        Sysno::gettimeofday | Sysno::settimeofday => &[Ptr, Ptr],
        Sysno::getitimer => &[Flags(flags::itimer), Ptr],
        Sysno::setitimer => &[Flags(flags::itimer), Ptr, Ptr],
        #[cfg(target_arch = "x86_64")]
        Sysno::time => &[Ptr],

        // Signals.
        Sysno::rt_sigaction => &[Flags(flags::signal), Ptr, Ptr, Long],
        Sysno::rt_sigprocmask => &[Flags(flags::sig_how), Ptr, Ptr, Long],
        Sysno::rt_sigpending | Sysno::rt_sigsuspend => &[Ptr, Long],
        Sysno::rt_sigtimedwait => &[Ptr, Ptr, Ptr, Long],
        Sysno::rt_sigqueueinfo => &[Int, Flags(flags::signal), Ptr],
        Sysno::rt_tgsigqueueinfo => &[Int, Int, Flags(flags::signal), Ptr],
        Sysno::sigaltstack => &[Ptr, Ptr],

        // Network.
        Sysno::socket => &[Flags(flags::family), Flags(flags::sock_type), SockProto],
        Sysno::socketpair => &[Flags(flags::family), Flags(flags::sock_type), SockProto, Ptr],
        Sysno::connect | Sysno::bind => &[Fd, Ptr, Int],
        Sysno::listen => &[Fd, Int],
        Sysno::accept | Sysno::getsockname | Sysno::getpeername => &[Fd, Ptr, Ptr],
        Sysno::accept4 => &[Fd, Ptr, Ptr, Flags(flags::sock_flags)],
        Sysno::sendto => &[Fd, Ptr, Long, Flags(flags::msg), Ptr, Int],
        Sysno::recvfrom => &[Fd, Ptr, Long, Flags(flags::msg), Ptr, Ptr],
        Sysno::sendmsg | Sysno::recvmsg => &[Fd, Ptr, Flags(flags::msg)],
        Sysno::sendmmsg => &[Fd, Ptr, Int, Flags(flags::msg)],
        Sysno::recvmmsg => &[Fd, Ptr, Int, Flags(flags::msg), Ptr],
        Sysno::shutdown => &[Fd, Flags(flags::shutdown)],
        Sysno::setsockopt => &[Fd, Flags(flags::sock_level), SockOpt, Ptr, Int],
        Sysno::getsockopt => &[Fd, Flags(flags::sock_level), SockOpt, Ptr, Ptr],

        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::format_syscall;
    use crate::event::SockAddr;

    fn nr(sysno: Sysno) -> u32 {
        sysno.id() as u32
    }

    fn cstr(arg: u8, data: &[u8]) -> CaptureData<'_> {
        CaptureData { arg, kind: CaptureKind::CStr, truncated: false, fault: false, data }
    }

    fn line(sysno: Sysno, raw: [u64; 6], ret: i64, captures: &[CaptureData<'_>]) -> String {
        format_syscall(&decode_syscall(nr(sysno), &raw, ret, false, 0, captures))
    }

    const AT_FDCWD: u64 = libc::AT_FDCWD as u64;
    const PATH_PTR: u64 = 0x7ffd_0000;

    #[test]
    fn openat_success_and_failure() {
        let flags = (libc::O_RDONLY | libc::O_CLOEXEC) as u64;
        let raw = [AT_FDCWD, PATH_PTR, flags, 0, 0, 0];
        let capture = [cstr(1, b"/etc/hostname")];
        let s = decode_syscall(nr(Sysno::openat), &raw, 3, false, 10, &capture);
        assert_eq!(s.name, "openat");
        assert_eq!(s.path(), Some(std::path::Path::new("/etc/hostname")));
        assert_eq!((s.ret, s.errno.as_deref(), s.duration_ns), (Some(3), None, 10));
        assert_eq!(format_syscall(&s), r#"openat(AT_FDCWD, "/etc/hostname", O_RDONLY|O_CLOEXEC) = 3"#);

        let capture = [cstr(1, b"/nonexistent")];
        let s = decode_syscall(nr(Sysno::openat), &raw, -i64::from(libc::ENOENT), false, 0, &capture);
        assert_eq!(s.errno.as_deref(), Some("ENOENT"));
        assert!(s.failed());
        assert_eq!(
            format_syscall(&s),
            r#"openat(AT_FDCWD, "/nonexistent", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or directory)"#
        );
    }

    #[test]
    fn open_mode_shows_only_when_creating() {
        let flags = (libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC) as u64;
        let raw = [3, PATH_PTR, flags, 0o644, 0, 0];
        let mut capture = [cstr(1, b"out.txt")];
        capture[0].truncated = true;
        assert_eq!(
            line(Sysno::openat, raw, 4, &capture),
            r#"openat(3, "out.txt"..., O_WRONLY|O_CREAT|O_TRUNC, 0644) = 4"#
        );
    }

    #[test]
    fn exit_group_never_returns() {
        let s = decode_syscall(nr(Sysno::exit_group), &[0; 6], -2, true, 0, &[]);
        assert_eq!((s.ret, s.errno.as_deref()), (None, None));
        assert_eq!(format_syscall(&s), "exit_group(0) = ?");
    }

    #[test]
    fn buffers() {
        let data =
            CaptureData { arg: 1, kind: CaptureKind::BufLenArg, truncated: true, fault: false, data: b"hello\n" };
        assert_eq!(
            line(Sysno::write, [1, PATH_PTR, 100, 0, 0, 0], 100, &[data]),
            r#"write(1, "hello\n"..., 100) = 100"#
        );
        let data = CaptureData { arg: 1, kind: CaptureKind::BufLenRet, truncated: false, fault: false, data: b"hi" };
        assert_eq!(line(Sysno::read, [0, PATH_PTR, 4096, 0, 0, 0], 2, &[data]), r#"read(0, "hi", 4096) = 2"#);
        // A failed read wrote nothing: show the pointer.
        assert_eq!(
            line(Sysno::read, [0, PATH_PTR, 4096, 0, 0, 0], -i64::from(libc::EAGAIN), &[data]),
            format!("read(0, 0x7ffd0000, 4096) = -1 EAGAIN ({})", crate::decode::errno_desc(libc::EAGAIN))
        );
        let fault = CaptureData { fault: true, data: b"", ..data };
        assert_eq!(line(Sysno::read, [0, 0x10, 8, 0, 0, 0], 8, &[fault]), "read(0, 0x10, 8) = 8");
    }

    #[test]
    fn strings_the_kernel_writes() {
        let cwd =
            CaptureData { arg: 0, kind: CaptureKind::BufLenRet, truncated: false, fault: false, data: b"/home\0" };
        assert_eq!(line(Sysno::getcwd, [PATH_PTR, 4096, 0, 0, 0, 0], 6, &[cwd]), r#"getcwd("/home", 4096) = 6"#);
        let target =
            CaptureData { arg: 2, kind: CaptureKind::BufLenRet, truncated: false, fault: false, data: b"/usr/bi" };
        let link = cstr(1, b"/bin");
        assert_eq!(
            line(Sysno::readlinkat, [AT_FDCWD, PATH_PTR, PATH_PTR, 64, 0, 0], 8, &[link, target]),
            r#"readlinkat(AT_FDCWD, "/bin", "/usr/bi"..., 64) = 8"#
        );
    }

    #[test]
    fn socket_calls() {
        let domain = libc::AF_INET as u64;
        let ty = (libc::SOCK_STREAM | libc::SOCK_CLOEXEC) as u64;
        assert_eq!(
            line(Sysno::socket, [domain, ty, 0, 0, 0, 0], 3, &[]),
            "socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_IP) = 3"
        );

        let mut addr = (libc::AF_INET as u16).to_ne_bytes().to_vec();
        addr.extend_from_slice(&8080u16.to_be_bytes());
        addr.extend_from_slice(&[10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        let capture =
            CaptureData { arg: 1, kind: CaptureKind::SockaddrLenArg, truncated: false, fault: false, data: &addr };
        let s = decode_syscall(nr(Sysno::connect), &[3, PATH_PTR, 16, 0, 0, 0], 0, false, 0, &[capture]);
        assert_eq!(s.args[1], Arg::Sockaddr(SockAddr::Inet { addr: "10.0.0.1:8080".parse().unwrap() }));
        assert_eq!(
            format_syscall(&s),
            r#"connect(3, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("10.0.0.1")}, 16) = 0"#
        );
    }

    #[test]
    fn results() {
        let prot = (libc::PROT_READ | libc::PROT_WRITE) as u64;
        let flags = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;
        let raw = [0, 4096, prot, flags, u64::MAX, 0];
        assert_eq!(
            line(Sysno::mmap, raw, 0x7f00_0000_0000, &[]),
            "mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000000000"
        );
        // Below -4095 is a value, not an error.
        let s = decode_syscall(nr(Sysno::lseek), &[3, 0, 0, 0, 0, 0], -4096, false, 0, &[]);
        assert_eq!(s.errno, None);
        assert_eq!(format_syscall(&s), "lseek(3, 0, SEEK_SET) = -4096");
    }

    // The expected lines below are strace 6.1's, from a real run, with its
    // addresses.

    #[test]
    fn requests_and_options_by_name() {
        let ptr = 0x7fff_ced6_e010;
        let enotty = -i64::from(libc::ENOTTY);
        assert_eq!(
            line(Sysno::ioctl, [3, libc::TCGETS, ptr, 0, 0, 0], enotty, &[]),
            "ioctl(3, TCGETS, 0x7fffced6e010) = -1 ENOTTY (Inappropriate ioctl for device)"
        );
        assert_eq!(line(Sysno::ioctl, [3, libc::FIOCLEX, 0, 0, 0, 0], 0, &[]), "ioctl(3, FIOCLEX) = 0");
        assert_eq!(
            line(Sysno::ioctl, [3, 0x8004_7803, ptr, 0, 0, 0], enotty, &[]),
            "ioctl(3, _IOC(_IOC_READ, 0x78, 0x3, 0x4), 0x7fffced6e010) = -1 ENOTTY (Inappropriate ioctl for device)"
        );
        let advice = libc::POSIX_FADV_DONTNEED as u64;
        assert_eq!(
            line(Sysno::fadvise64, [3, 10, 100, advice, 0, 0], 0, &[]),
            "fadvise64(3, 10, 100, POSIX_FADV_DONTNEED) = 0"
        );
        let (sol, opt) = (libc::SOL_SOCKET as u64, libc::SO_REUSEADDR as u64);
        assert_eq!(
            line(Sysno::setsockopt, [4, sol, opt, ptr, 4, 0], 0, &[]),
            "setsockopt(4, SOL_SOCKET, SO_REUSEADDR, 0x7fffced6e010, 4) = 0"
        );
        let (sol, opt) = (libc::SOL_TCP as u64, libc::TCP_NODELAY as u64);
        assert_eq!(
            line(Sysno::getsockopt, [4, sol, opt, ptr, ptr, 0], 0, &[]),
            "getsockopt(4, SOL_TCP, TCP_NODELAY, 0x7fffced6e010, 0x7fffced6e010) = 0"
        );
        let (domain, ty) = (libc::AF_NETLINK as u64, (libc::SOCK_RAW | libc::SOCK_CLOEXEC) as u64);
        assert_eq!(
            line(Sysno::socket, [domain, ty, 0, 0, 0, 0], 9, &[]),
            "socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, NETLINK_ROUTE) = 9"
        );
        let cloexec = libc::EPOLL_CLOEXEC as u64;
        assert_eq!(line(Sysno::epoll_create1, [cloexec, 0, 0, 0, 0, 0], 7, &[]), "epoll_create1(EPOLL_CLOEXEC) = 7");
        let raw = [AT_FDCWD, PATH_PTR, 0, libc::STATX_BASIC_STATS.into(), ptr, 0];
        assert_eq!(
            line(Sysno::statx, raw, 0, &[cstr(1, b"/")]),
            r#"statx(AT_FDCWD, "/", AT_STATX_SYNC_AS_STAT, STATX_BASIC_STATS, 0x7fffced6e010) = 0"#
        );
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn arch_prctl_codes() {
        assert_eq!(
            line(Sysno::arch_prctl, [0x1003, 0x7fff_ced6_e010, 0, 0, 0, 0], 0, &[]),
            "arch_prctl(ARCH_GET_FS, 0x7fffced6e010) = 0"
        );
        assert_eq!(
            line(Sysno::arch_prctl, [0x3001, 0x7fff_ced6_dff8, 0, 0, 0, 0], -i64::from(libc::EINVAL), &[]),
            "arch_prctl(0x3001 /* ARCH_??? */, 0x7fffced6dff8) = -1 EINVAL (Invalid argument)"
        );
    }

    #[test]
    fn prctl_arguments_follow_the_option() {
        let opt = |o: libc::c_int| o as u64;
        let name = CaptureData { kind: CaptureKind::TaskName, ..cstr(1, b"decode-zoo") };
        assert_eq!(
            line(Sysno::prctl, [opt(libc::PR_SET_NAME), PATH_PTR, 0, 0, 0, 0], 0, &[name]),
            r#"prctl(PR_SET_NAME, "decode-zoo") = 0"#
        );
        assert_eq!(
            line(Sysno::prctl, [opt(libc::PR_GET_NAME), PATH_PTR, 0, 0, 0, 0], 0, &[name]),
            r#"prctl(PR_GET_NAME, "decode-zoo") = 0"#
        );
        // What a failed PR_GET_NAME's buffer holds is stale.
        assert_eq!(
            line(Sysno::prctl, [opt(libc::PR_GET_NAME), PATH_PTR, 0, 0, 0, 0], -i64::from(libc::EFAULT), &[name]),
            "prctl(PR_GET_NAME, 0x7ffd0000) = -1 EFAULT (Bad address)"
        );
        assert_eq!(
            line(Sysno::prctl, [opt(libc::PR_GET_DUMPABLE), 0, 0, 0, 0, 0], 1, &[]),
            "prctl(PR_GET_DUMPABLE) = 1"
        );
        assert_eq!(
            line(Sysno::prctl, [opt(libc::PR_SET_PDEATHSIG), libc::SIGKILL as u64, 0, 0, 0, 0], 0, &[]),
            "prctl(PR_SET_PDEATHSIG, SIGKILL) = 0"
        );
        assert_eq!(
            line(Sysno::prctl, [opt(libc::PR_SET_NO_NEW_PRIVS), 1, 0, 0, 0, 0], 0, &[]),
            "prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) = 0"
        );
        assert_eq!(
            line(Sysno::prctl, [opt(libc::PR_SET_DUMPABLE), 1, 0, 0, 0, 0], 0, &[]),
            "prctl(PR_SET_DUMPABLE, SUID_DUMP_USER) = 0"
        );
        assert_eq!(
            line(Sysno::prctl, [9999, 1, 2, 3, 4, 0], -i64::from(libc::EINVAL), &[]),
            "prctl(0x270f /* PR_??? */, 0x1, 0x2, 0x3, 0x4) = -1 EINVAL (Invalid argument)"
        );
    }

    #[test]
    fn rt_sigreturn_carries_the_interrupted_error() {
        let s = decode_syscall(nr(Sysno::rt_sigreturn), &[0; 6], -i64::from(libc::EINTR), false, 0, &[]);
        assert_eq!(s.errno.as_deref(), Some("EINTR"));
        assert_eq!(format_syscall(&s), "rt_sigreturn() = -1 EINTR (Interrupted system call)");
        // A restarted syscall leaves its number in the register: a value.
        let s = decode_syscall(nr(Sysno::rt_sigreturn), &[0; 6], 61, false, 0, &[]);
        assert_eq!((s.ret, s.errno), (Some(61), None));
    }

    #[test]
    fn link_targets_are_paths_not_buffers() {
        let target = b"/a/very/long/target/path/that/is/more/than/thirty/two/bytes/long";
        // What the kernel side reads: the target, then the buffer's old
        // bytes up to a NUL.
        let mut read = target.to_vec();
        read.extend_from_slice(b"stale");
        let raw = [PATH_PTR, PATH_PTR, 256, 0, 0, 0];
        let ret = target.len() as i64;
        let expected = format!(r#"readlink("/tmp/l", "{}", 256) = 64"#, std::str::from_utf8(target).unwrap());
        #[cfg(target_arch = "x86_64")]
        assert_eq!(line(Sysno::readlink, raw, ret, &[cstr(0, b"/tmp/l"), cstr(1, &read)]), expected);
        let raw = [AT_FDCWD, PATH_PTR, PATH_PTR, 256, 0, 0];
        let s = decode_syscall(nr(Sysno::readlinkat), &raw, ret, false, 0, &[cstr(1, b"/tmp/l"), cstr(2, &read)]);
        assert_eq!(s.args[2], Arg::Path { path: String::from_utf8(target.to_vec()).unwrap().into(), truncated: false });
        // Cut by the kernel side: fewer bytes than the result.
        let s =
            decode_syscall(nr(Sysno::readlinkat), &raw, ret, false, 0, &[cstr(1, b"/tmp/l"), cstr(2, &target[..10])]);
        assert!(matches!(&s.args[2], Arg::Path { truncated: true, path } if path.len() == 10));
        // A failed call wrote nothing.
        let s = decode_syscall(
            nr(Sysno::readlinkat),
            &raw,
            -i64::from(libc::EINVAL),
            false,
            0,
            &[cstr(1, b"/tmp/l"), cstr(2, &read)],
        );
        assert_eq!(s.args[2], Arg::Ptr(PATH_PTR));
        // getcwd's result counts the NUL.
        assert_eq!(
            line(Sysno::getcwd, [PATH_PTR, 256, 0, 0, 0, 0], 9, &[cstr(0, b"/tmp/zoo")]),
            r#"getcwd("/tmp/zoo", 256) = 9"#
        );
    }

    #[test]
    fn unknown_syscalls_show_raw_arguments() {
        let s = decode_syscall(100_000, &[1, 2, 3, 4, 5, 6], -1, false, 0, &[]);
        assert_eq!(
            format_syscall(&s),
            "syscall_100000(0x1, 0x2, 0x3, 0x4, 0x5, 0x6) = -1 EPERM (Operation not permitted)"
        );
    }

    #[test]
    fn fcntl_argument_follows_the_command() {
        let setfl = [3, libc::F_SETFL as u64, (libc::O_RDWR | libc::O_NONBLOCK) as u64, 0, 0, 0];
        assert_eq!(line(Sysno::fcntl, setfl, 0, &[]), "fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0");
        let getfd = [3, libc::F_GETFD as u64, 0, 0, 0, 0];
        assert_eq!(line(Sysno::fcntl, getfd, 1, &[]), "fcntl(3, F_GETFD) = 1");
    }

    #[test]
    fn signatures_agree_with_capture_specs() {
        for sysno in Sysno::iter() {
            let spec = capture_spec(sysno.id() as u32);
            let used = spec.captures.iter().filter(|c| c.kind != CaptureKind::None as u8);
            for c in used {
                let tys = match sysno {
                    Sysno::prctl => prctl_signature(libc::PR_SET_NAME as u64),
                    _ => signature(sysno).unwrap_or_else(|| panic!("{sysno} captures but has no signature")),
                };
                let ty = tys.get(usize::from(c.arg)).copied();
                assert!(matches!(ty, Some(Ptr | StrOut)), "{sysno}: argument {} is captured but not a pointer", c.arg);
                // Strings end with a NUL, `BufLenRet` buffers at the result,
                // and a message header holds its own lengths.
                let kind = CaptureKind::from_u8(c.kind).expect("a capture kind");
                if !matches!(kind, CaptureKind::CStr | CaptureKind::BufLenRet | CaptureKind::TaskName) && !kind.is_msg()
                {
                    let len = tys.get(usize::from(c.len_arg)).copied();
                    assert!(matches!(len, Some(Int | Long | Ptr)), "{sysno}: bad length argument {}", c.len_arg);
                }
            }
        }
    }

    /// A tiny xorshift generator, so the test needs no dependency and
    /// fails the same way every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn garbage_never_panics() {
        const KINDS: [CaptureKind; 7] = [
            CaptureKind::TaskName,
            CaptureKind::None,
            CaptureKind::CStr,
            CaptureKind::BufLenArg,
            CaptureKind::BufLenRet,
            CaptureKind::SockaddrLenArg,
            CaptureKind::SockaddrLenPtr,
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let pool: Vec<u8> = (0..512).map(|_| rng.next() as u8).collect();
        let families = [libc::AF_INET, libc::AF_INET6, libc::AF_UNIX, libc::AF_NETLINK];
        for round in 0..20_000 {
            let nr = match round % 4 {
                0 => rng.next() as u32,
                _ => (rng.next() % 460) as u32,
            };
            let raw: [u64; 6] = std::array::from_fn(|_| match rng.next() % 4 {
                0 => 0,
                1 => rng.next() % 8,
                _ => rng.next(),
            });
            let ret = match rng.next() % 3 {
                0 => -((rng.next() % 4200) as i64),
                1 => (rng.next() % 64) as i64,
                _ => rng.next() as i64,
            };
            let mut datas: Vec<Vec<u8>> = Vec::new();
            for _ in 0..rng.next() % 4 {
                let start = (rng.next() % 256) as usize;
                let len = (rng.next() % 200) as usize;
                let mut data = pool[start..start + len].to_vec();
                // Make sockaddr decoding go past the family now and then.
                if data.len() >= 2 && rng.next().is_multiple_of(2) {
                    let family = families[(rng.next() % 4) as usize] as u16;
                    data[..2].copy_from_slice(&family.to_ne_bytes());
                }
                datas.push(data);
            }
            let captures: Vec<CaptureData<'_>> = datas
                .iter()
                .map(|data| CaptureData {
                    arg: (rng.next() % 8) as u8,
                    kind: KINDS[(rng.next() % 7) as usize],
                    truncated: rng.next().is_multiple_of(2),
                    fault: rng.next().is_multiple_of(5),
                    data,
                })
                .collect();
            let s = decode_syscall(nr, &raw, ret, rng.next().is_multiple_of(7), 0, &captures);
            let text = format_syscall(&s);
            for arg in &s.args {
                if let Arg::Bytes { data, .. } = arg {
                    assert_eq!(
                        crate::event::strace::unescape_bytes(&crate::decode::escape_bytes(data)).as_ref(),
                        Ok(data)
                    );
                }
            }
            assert!(text.starts_with(&*s.name), "{text}");
        }
    }
}
