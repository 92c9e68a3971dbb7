//! Which arguments the kernel side captures for each syscall.
//!
//! The harness writes [`capture_spec`] for every syscall number into the
//! eBPF `SPECS` map. A syscall gets at most [`MAX_CAPTURES`] captures, so each
//! one lists the arguments that say most about what it did: its paths, its
//! data buffer, its socket address.
//!
//! [`MAX_CAPTURES`]: probity_common::MAX_CAPTURES

use probity_common::{ArgCapture, CaptureKind, SyscallSpec, SPEC_EXEC, SPEC_NO_RETURN};
use syscalls::Sysno;

/// What the kernel must capture for syscall `nr` of this architecture.
/// Syscalls probity does not decode specially capture nothing.
pub fn capture_spec(nr: u32) -> SyscallSpec {
    let Some(sysno) = Sysno::new(nr as usize) else {
        return SyscallSpec::default();
    };
    match sysno {
        Sysno::execve => exec(0),
        Sysno::execveat => exec(1),
        Sysno::exit | Sysno::exit_group => SyscallSpec { flags: SPEC_NO_RETURN, ..SyscallSpec::default() },

        // A path (or name) in the first argument.
        Sysno::chdir
        | Sysno::chroot
        | Sysno::truncate
        | Sysno::statfs
        | Sysno::listxattr
        | Sysno::llistxattr
        | Sysno::acct
        | Sysno::swapon
        | Sysno::swapoff
        | Sysno::umount2
        | Sysno::memfd_create
        | Sysno::fsopen => one(path(0)),
        #[cfg(target_arch = "x86_64")]
        Sysno::open
        | Sysno::creat
        | Sysno::stat
        | Sysno::lstat
        | Sysno::access
        | Sysno::unlink
        | Sysno::rmdir
        | Sysno::mkdir
        | Sysno::chmod
        | Sysno::chown
        | Sysno::lchown
        | Sysno::mknod
        | Sysno::utime
        | Sysno::utimes
        | Sysno::uselib => one(path(0)),

        // A path after a directory fd (or other first argument).
        Sysno::openat
        | Sysno::openat2
        | Sysno::statx
        | Sysno::faccessat
        | Sysno::faccessat2
        | Sysno::unlinkat
        | Sysno::mkdirat
        | Sysno::mknodat
        | Sysno::fchmodat
        | Sysno::fchmodat2
        | Sysno::fchownat
        | Sysno::utimensat
        | Sysno::name_to_handle_at
        | Sysno::inotify_add_watch
        | Sysno::open_tree
        | Sysno::fspick
        | Sysno::mount_setattr
        | Sysno::quotactl
        | Sysno::fgetxattr
        | Sysno::fsetxattr
        | Sysno::fremovexattr => one(path(1)),
        #[cfg(target_arch = "x86_64")]
        Sysno::newfstatat | Sysno::futimesat => one(path(1)),
        #[cfg(target_arch = "aarch64")]
        Sysno::fstatat => one(path(1)),
        Sysno::fanotify_mark => one(path(4)),

        // Two paths, or a path and an attribute name.
        Sysno::mount
        | Sysno::pivot_root
        | Sysno::getxattr
        | Sysno::lgetxattr
        | Sysno::setxattr
        | Sysno::lsetxattr
        | Sysno::removexattr
        | Sysno::lremovexattr => two(path(0), path(1)),
        #[cfg(target_arch = "x86_64")]
        Sysno::rename | Sysno::link | Sysno::symlink => two(path(0), path(1)),
        Sysno::renameat | Sysno::renameat2 | Sysno::linkat | Sysno::move_mount => two(path(1), path(3)),
        Sysno::symlinkat => two(path(0), path(2)),

        // Paths the kernel writes: the link target, the working directory.
        // They are read as strings, after the call, so that they are cut
        // at the path limit like every other path, not at the buffer
        // limit; the decoder cuts a link target at the result, since
        // `readlink` writes no NUL.
        #[cfg(target_arch = "x86_64")]
        Sysno::readlink => two(path(0), path(1)),
        Sysno::readlinkat => two(path(1), path(2)),
        Sysno::getcwd => one(path(0)),
        // The name `PR_SET_NAME` sets or `PR_GET_NAME` reads, which the
        // kernel side captures only for those two options.
        Sysno::prctl => one(cap(CaptureKind::TaskName, 1, 0)),

        // Data and addresses.
        Sysno::write | Sysno::pwrite64 => one(cap(CaptureKind::BufLenArg, 1, 2)),
        Sysno::read | Sysno::pread64 => one(cap(CaptureKind::BufLenRet, 1, 0)),
        Sysno::sendto => two(cap(CaptureKind::BufLenArg, 1, 2), cap(CaptureKind::SockaddrLenArg, 4, 5)),
        Sysno::recvfrom => two(cap(CaptureKind::BufLenRet, 1, 0), cap(CaptureKind::SockaddrLenPtr, 4, 5)),
        // A message header: its first buffer and its address (for the
        // `mmsg` forms, the first message's).
        Sysno::sendmsg | Sysno::sendmmsg => two(cap(CaptureKind::MsgIov, 1, 0), cap(CaptureKind::MsgName, 1, 0)),
        Sysno::recvmsg => two(cap(CaptureKind::MsgIovRet, 1, 0), cap(CaptureKind::MsgName, 1, 0)),
        Sysno::recvmmsg => two(cap(CaptureKind::MmsgIovLen, 1, 0), cap(CaptureKind::MsgName, 1, 0)),
        Sysno::connect | Sysno::bind => one(cap(CaptureKind::SockaddrLenArg, 1, 2)),
        Sysno::accept | Sysno::accept4 | Sysno::getsockname | Sysno::getpeername => {
            one(cap(CaptureKind::SockaddrLenPtr, 1, 2))
        }

        _ => SyscallSpec::default(),
    }
}

const fn cap(kind: CaptureKind, arg: u8, len_arg: u8) -> ArgCapture {
    ArgCapture { kind: kind as u8, arg, len_arg, _pad: 0 }
}

const fn path(arg: u8) -> ArgCapture {
    cap(CaptureKind::CStr, arg, 0)
}

fn one(capture: ArgCapture) -> SyscallSpec {
    two(capture, ArgCapture::default())
}

fn two(first: ArgCapture, second: ArgCapture) -> SyscallSpec {
    SyscallSpec { captures: [first, second], ..SyscallSpec::default() }
}

/// An exec: the kernel records its argv at entry (the memory is gone after
/// a successful exec), and the path is captured like any other.
fn exec(path_arg: u8) -> SyscallSpec {
    SyscallSpec { flags: SPEC_EXEC, exec_path_arg: path_arg.into(), ..one(path(path_arg)) }
}

#[cfg(test)]
mod tests {
    use probity_common::MAX_CAPTURES;

    use super::*;

    /// Every syscall that takes a path, with the arguments holding one.
    /// Names, not `Sysno`s, so one list serves every architecture.
    const PATHS: &[(&str, &[u8])] = &[
        ("open", &[0]),
        ("openat", &[1]),
        ("openat2", &[1]),
        ("creat", &[0]),
        ("stat", &[0]),
        ("lstat", &[0]),
        ("newfstatat", &[1]),
        ("fstatat", &[1]),
        ("statx", &[1]),
        ("access", &[0]),
        ("faccessat", &[1]),
        ("faccessat2", &[1]),
        ("execve", &[0]),
        ("execveat", &[1]),
        ("unlink", &[0]),
        ("unlinkat", &[1]),
        ("rename", &[0, 1]),
        ("renameat", &[1, 3]),
        ("renameat2", &[1, 3]),
        ("mkdir", &[0]),
        ("mkdirat", &[1]),
        ("rmdir", &[0]),
        ("chdir", &[0]),
        ("chroot", &[0]),
        ("readlink", &[0, 1]),
        ("readlinkat", &[1, 2]),
        ("getcwd", &[0]),
        ("symlink", &[0, 1]),
        ("symlinkat", &[0, 2]),
        ("link", &[0, 1]),
        ("linkat", &[1, 3]),
        ("chmod", &[0]),
        ("fchmodat", &[1]),
        ("fchmodat2", &[1]),
        ("chown", &[0]),
        ("lchown", &[0]),
        ("fchownat", &[1]),
        ("truncate", &[0]),
        ("utime", &[0]),
        ("utimes", &[0]),
        ("futimesat", &[1]),
        ("utimensat", &[1]),
        ("mknod", &[0]),
        ("mknodat", &[1]),
        ("statfs", &[0]),
        ("getxattr", &[0]),
        ("lgetxattr", &[0]),
        ("setxattr", &[0]),
        ("lsetxattr", &[0]),
        ("listxattr", &[0]),
        ("llistxattr", &[0]),
        ("removexattr", &[0]),
        ("lremovexattr", &[0]),
        ("mount", &[0, 1]),
        ("umount2", &[0]),
        ("inotify_add_watch", &[1]),
        ("swapon", &[0]),
        ("swapoff", &[0]),
        ("acct", &[0]),
        ("pivot_root", &[0, 1]),
        ("fanotify_mark", &[4]),
        ("name_to_handle_at", &[1]),
        ("open_tree", &[1]),
        ("move_mount", &[1, 3]),
        ("fspick", &[1]),
        ("mount_setattr", &[1]),
        ("uselib", &[0]),
    ];

    #[test]
    fn every_path_is_captured_as_a_string() {
        let mut checked = 0;
        for &(name, args) in PATHS {
            // Legacy syscalls such as `open` do not exist on aarch64.
            let Ok(sysno) = name.parse::<Sysno>() else {
                continue;
            };
            let spec = capture_spec(sysno.id() as u32);
            for &arg in args {
                let found = spec.captures.iter().any(|c| c.arg == arg && c.kind == CaptureKind::CStr as u8);
                assert!(found, "{name}: argument {arg} is not captured as a string: {spec:?}");
            }
            checked += 1;
        }
        assert!(checked >= 50, "only {checked} path syscalls exist here");
    }

    #[test]
    fn every_spec_is_well_formed() {
        for sysno in Sysno::iter() {
            let spec = capture_spec(sysno.id() as u32);
            let used: Vec<_> = spec.captures.iter().filter(|c| c.kind != CaptureKind::None as u8).collect();
            assert!(used.len() <= MAX_CAPTURES, "{sysno}");
            // Used slots come first, so the kernel can stop at the first empty one.
            assert!(spec.captures[..used.len()].iter().all(|c| c.kind != 0), "{sysno}: {spec:?}");
            for (i, c) in used.iter().enumerate() {
                assert!(CaptureKind::from_u8(c.kind).is_some(), "{sysno}: {spec:?}");
                assert!(c.arg < 6 && c.len_arg < 6, "{sysno}: {spec:?}");
                // A message header's buffer and address are the one
                // argument captured twice.
                let msg = |k: u8| CaptureKind::from_u8(k).is_some_and(CaptureKind::is_msg);
                let name = |k: u8| k == CaptureKind::MsgName as u8;
                assert!(
                    used[..i]
                        .iter()
                        .all(|d| d.arg != c.arg || (msg(c.kind) && msg(d.kind) && name(c.kind) != name(d.kind))),
                    "{sysno}: argument captured twice"
                );
            }
            if spec.flags & SPEC_EXEC != 0 {
                let arg = spec.exec_path_arg;
                assert!(used.iter().any(|c| u32::from(c.arg) == arg && c.kind == CaptureKind::CStr as u8));
            }
        }
    }

    #[test]
    fn special_syscalls() {
        let spec = capture_spec(Sysno::execve.id() as u32);
        assert_eq!((spec.flags, spec.exec_path_arg), (SPEC_EXEC, 0));
        let spec = capture_spec(Sysno::execveat.id() as u32);
        assert_eq!((spec.flags, spec.exec_path_arg), (SPEC_EXEC, 1));
        for sysno in [Sysno::exit, Sysno::exit_group] {
            assert_eq!(capture_spec(sysno.id() as u32).flags, SPEC_NO_RETURN);
        }
        let spec = capture_spec(Sysno::prctl.id() as u32);
        assert_eq!(spec.captures[0], cap(CaptureKind::TaskName, 1, 0));
        let spec = capture_spec(Sysno::sendto.id() as u32);
        assert_eq!(spec.captures, [cap(CaptureKind::BufLenArg, 1, 2), cap(CaptureKind::SockaddrLenArg, 4, 5)]);
        assert_eq!(capture_spec(Sysno::getpid.id() as u32), SyscallSpec::default());
        assert_eq!(capture_spec(u32::MAX), SyscallSpec::default());
    }
}
