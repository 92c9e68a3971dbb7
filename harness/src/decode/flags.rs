//! Symbolic names for flag and enumeration arguments, as strace prints them.
//!
//! Every name and value comes from the `libc` crate, so they track the
//! target architecture (`O_DIRECTORY` differs between x86_64 and aarch64).
//! The tables are ours rather than nix's bitflags types because their order
//! decides how aliases print: nix lists flags alphabetically, so `O_NONBLOCK`
//! would print as `O_NDELAY` and `AT_REMOVEDIR` as `AT_EACCESS`, and it lacks
//! flags every trace shows (`CLONE_SETTLS`, `CLONE_CHILD_CLEARTID`). Each
//! table follows strace's order, multi-bit flags before the bits they share.

use std::fmt::Write as _;

use super::signal_name;

/// Names and values of the flags or enumerators one argument takes.
type Table = &'static [(&'static str, u32)];

/// Declares `fn $name(v: u64) -> String` naming the set bits of `v` with the
/// given libc flags, the bits no flag covers in hex, and 0 as `$zero`.
macro_rules! flag_set {
    ($(#[$doc:meta])* $name:ident, zero = $zero:literal, [$($(#[$cfg:meta])* $flag:ident),+ $(,)?]) => {
        $(#[$doc])*
        pub(crate) fn $name(v: u64) -> String {
            const TABLE: Table = &[$($(#[$cfg])* (stringify!($flag), libc::$flag as u32)),+];
            // Flag arguments are C `int`s or fit in 32 bits; the kernel
            // ignores the upper half of the register.
            bits(v as u32, TABLE, $zero)
        }
    };
}

/// Declares `fn $name(v: u64) -> String` naming `v` by the libc constant
/// equal to it, or showing it in decimal.
macro_rules! enumeration {
    ($(#[$doc:meta])* $name:ident, [$($(#[$cfg:meta])* $value:ident),+ $(,)?]) => {
        $(#[$doc])*
        pub(crate) fn $name(v: u64) -> String {
            const TABLE: Table = &[$($(#[$cfg])* (stringify!($value), libc::$value as u32)),+];
            lookup(v as u32, TABLE).map_or_else(|| (v as i32).to_string(), str::to_owned)
        }
    };
}

/// Names the bits of `v` from `table`, in table order. A flag is named when
/// all its bits are set and some are not yet named, so an alias listed after
/// the flag it repeats is skipped.
fn bits(v: u32, table: Table, zero: &str) -> String {
    if v == 0 {
        return zero.to_owned();
    }
    let mut out = String::new();
    let mut rest = v;
    for &(name, flag) in table {
        if flag != 0 && v & flag == flag && rest & flag != 0 {
            push_name(&mut out, name);
            rest &= !flag;
        }
    }
    if rest != 0 {
        push_name(&mut out, &format!("{rest:#x}"));
    }
    out
}

fn push_name(out: &mut String, name: &str) {
    if !out.is_empty() {
        out.push('|');
    }
    out.push_str(name);
}

fn lookup(v: u32, table: Table) -> Option<&'static str> {
    table
        .iter()
        .find(|&&(_, value)| value == v)
        .map(|&(name, _)| name)
}

/// `open` flags: the access mode (`O_RDONLY` is 0, so it needs its own
/// case), then the other flags.
pub(crate) fn open(v: u64) -> String {
    let v = v as u32;
    let accmode = v & libc::O_ACCMODE as u32;
    let mut out = match accmode as i32 {
        libc::O_RDONLY => "O_RDONLY",
        libc::O_WRONLY => "O_WRONLY",
        libc::O_RDWR => "O_RDWR",
        _ => "O_ACCMODE",
    }
    .to_owned();
    let rest = v & !accmode;
    if rest != 0 {
        push_name(&mut out, &fd_flags(rest.into()));
    }
    out
}

flag_set!(
    /// The `open` flags besides the access mode, also taken by `pipe2`, `dup3`
    /// and the `*_CLOEXEC`/`*_NONBLOCK` arguments that share their values.
    fd_flags, zero = "0", [
        O_CREAT, O_EXCL, O_NOCTTY, O_TRUNC, O_APPEND, O_NONBLOCK, O_SYNC, O_DSYNC,
        O_DIRECT, O_LARGEFILE, O_NOFOLLOW, O_NOATIME, O_CLOEXEC, O_PATH, O_TMPFILE,
        O_DIRECTORY, O_ASYNC,
    ]
);

/// Whether `open` flags create a file, so that the mode argument matters.
pub(crate) fn creates(flags: u64) -> bool {
    let flags = flags as i32;
    flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE
}

flag_set!(
    /// `AT_*` flags of the `*at` syscalls.
    at, zero = "0", [
        AT_SYMLINK_NOFOLLOW, AT_REMOVEDIR, AT_SYMLINK_FOLLOW, AT_NO_AUTOMOUNT,
        AT_EMPTY_PATH, AT_STATX_FORCE_SYNC, AT_STATX_DONT_SYNC, AT_RECURSIVE,
    ]
);

flag_set!(
    /// `faccessat2` flags, where 0x200 means `AT_EACCESS`, not `AT_REMOVEDIR`.
    at_access, zero = "0", [AT_SYMLINK_NOFOLLOW, AT_EACCESS, AT_EMPTY_PATH]
);

flag_set!(
    /// `access` modes.
    access, zero = "F_OK", [R_OK, W_OK, X_OK]
);

/// A file mode in octal like strace (`0644`), after its file type when it
/// has one (`S_IFREG|0644`, as `mknod` takes).
pub(crate) fn mode(v: u64) -> String {
    const TYPES: Table = &[
        ("S_IFREG", libc::S_IFREG),
        ("S_IFDIR", libc::S_IFDIR),
        ("S_IFLNK", libc::S_IFLNK),
        ("S_IFCHR", libc::S_IFCHR),
        ("S_IFBLK", libc::S_IFBLK),
        ("S_IFIFO", libc::S_IFIFO),
        ("S_IFSOCK", libc::S_IFSOCK),
    ];
    const PERMS: u32 = libc::S_ISUID
        | libc::S_ISGID
        | libc::S_ISVTX
        | libc::S_IRWXU
        | libc::S_IRWXG
        | libc::S_IRWXO;
    let v = v as u32;
    let mut out = String::new();
    let kind = v & libc::S_IFMT;
    if kind != 0 {
        match lookup(kind, TYPES) {
            Some(name) => out.push_str(name),
            None => {
                let _ = write!(out, "0{kind:o}");
            }
        }
        out.push('|');
    }
    let _ = write!(out, "0{:03o}", v & PERMS);
    let rest = v & !(libc::S_IFMT | PERMS);
    if rest != 0 {
        let _ = write!(out, "|{rest:#x}");
    }
    out
}

flag_set!(
    /// `mmap`/`mprotect` protections.
    prot, zero = "PROT_NONE", [PROT_READ, PROT_WRITE, PROT_EXEC, PROT_GROWSDOWN, PROT_GROWSUP]
);

flag_set!(
    /// `mmap` flags.
    map, zero = "0", [
        MAP_SHARED_VALIDATE, MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS,
        #[cfg(target_arch = "x86_64")]
        MAP_32BIT,
        MAP_GROWSDOWN, MAP_DENYWRITE, MAP_EXECUTABLE, MAP_LOCKED, MAP_NORESERVE,
        MAP_POPULATE, MAP_NONBLOCK, MAP_STACK, MAP_HUGETLB, MAP_SYNC, MAP_FIXED_NOREPLACE,
    ]
);

flag_set!(
    /// `mremap` flags.
    mremap, zero = "0", [MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP]
);

enumeration!(
    /// `madvise` advice.
    madvise, [
        MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED, MADV_DONTNEED, MADV_FREE,
        MADV_REMOVE, MADV_DONTFORK, MADV_DOFORK, MADV_HWPOISON, MADV_MERGEABLE,
        MADV_UNMERGEABLE, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_DONTDUMP, MADV_DODUMP,
        MADV_WIPEONFORK, MADV_KEEPONFORK, MADV_COLD, MADV_PAGEOUT, MADV_POPULATE_READ,
        MADV_POPULATE_WRITE,
    ]
);

flag_set!(
    /// `CLONE_*` flags without the exit signal, as `unshare` and `setns` take.
    namespaces, zero = "0", [
        CLONE_VM, CLONE_FS, CLONE_FILES, CLONE_SIGHAND, CLONE_PIDFD, CLONE_PTRACE,
        CLONE_VFORK, CLONE_PARENT, CLONE_THREAD, CLONE_NEWNS, CLONE_SYSVSEM, CLONE_SETTLS,
        CLONE_PARENT_SETTID, CLONE_CHILD_CLEARTID, CLONE_DETACHED, CLONE_UNTRACED,
        CLONE_CHILD_SETTID, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER,
        CLONE_NEWPID, CLONE_NEWNET, CLONE_IO, CLONE_NEWTIME,
    ]
);

/// `clone` flags: the `CLONE_*` bits, then the signal sent to the parent
/// when the child exits, which the low byte (`CSIGNAL`) holds.
pub(crate) fn clone(v: u64) -> String {
    let signal_mask = libc::CSIGNAL as u64;
    let sig = v & signal_mask;
    let mut out = namespaces(v & !signal_mask);
    if sig != 0 {
        if out == "0" {
            out.clear();
        }
        push_name(&mut out, &signal_name(sig as i32));
    }
    out
}

flag_set!(
    /// `wait4`/`waitid` options.
    wait, zero = "0", [
        WNOHANG, WUNTRACED, WEXITED, WCONTINUED, WNOWAIT, __WNOTHREAD, __WALL, __WCLONE,
    ]
);

enumeration!(
    /// `waitid` id types.
    id_type, [P_ALL, P_PID, P_PGID, P_PIDFD]
);

enumeration!(
    /// Address families (`socket` domains, `sa_family`).
    family, [
        AF_UNSPEC, AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, AF_PACKET, AF_BLUETOOTH,
        AF_VSOCK, AF_ALG, AF_CAN, AF_KEY, AF_XDP, AF_TIPC, AF_BRIDGE, AF_APPLETALK, AF_IPX,
        AF_X25, AF_AX25, AF_RDS, AF_LLC, AF_IB, AF_MPLS, AF_NFC,
    ]
);

enumeration!(
    /// Socket types without their flags.
    sock_type_only, [SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, SOCK_RDM, SOCK_SEQPACKET, SOCK_DCCP]
);

flag_set!(
    /// `SOCK_NONBLOCK`/`SOCK_CLOEXEC`, as `accept4` takes them.
    sock_flags, zero = "0", [SOCK_NONBLOCK, SOCK_CLOEXEC]
);

/// A `socket` type: the type, then the flags the kernel lets callers OR
/// into it.
pub(crate) fn sock_type(v: u64) -> String {
    let flag_bits = (libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) as u64;
    let mut out = sock_type_only(v & !flag_bits);
    if v & flag_bits != 0 {
        push_name(&mut out, &sock_flags(v & flag_bits));
    }
    out
}

flag_set!(
    /// `send`/`recv` flags.
    msg, zero = "0", [
        MSG_OOB, MSG_PEEK, MSG_DONTROUTE, MSG_CTRUNC, MSG_TRUNC, MSG_DONTWAIT, MSG_EOR,
        MSG_WAITALL, MSG_FIN, MSG_SYN, MSG_CONFIRM, MSG_RST, MSG_ERRQUEUE, MSG_NOSIGNAL,
        MSG_MORE, MSG_WAITFORONE, MSG_ZEROCOPY, MSG_FASTOPEN, MSG_CMSG_CLOEXEC,
    ]
);

enumeration!(
    /// `shutdown` directions.
    shutdown, [SHUT_RD, SHUT_WR, SHUT_RDWR]
);

/// A signal number by name; 0 (as `kill` takes to probe a process) as is.
pub(crate) fn signal(v: u64) -> String {
    match v as i32 {
        0 => "0".to_owned(),
        sig => signal_name(sig).into_owned(),
    }
}

enumeration!(
    /// `rt_sigprocmask` actions.
    sig_how, [SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK]
);

enumeration!(
    /// `lseek` origins.
    whence, [SEEK_SET, SEEK_CUR, SEEK_END, SEEK_DATA, SEEK_HOLE]
);

enumeration!(
    /// `fcntl` commands.
    fcntl_cmd, [
        F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_GETLK, F_SETLK, F_SETLKW, F_SETOWN,
        F_GETOWN, F_SETLEASE, F_GETLEASE, F_NOTIFY, F_DUPFD_CLOEXEC, F_SETPIPE_SZ,
        F_GETPIPE_SZ, F_ADD_SEALS, F_GET_SEALS, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW,
    ]
);

flag_set!(
    /// File descriptor flags (`fcntl(F_SETFD)`).
    fd_cloexec, zero = "0", [FD_CLOEXEC]
);

flag_set!(
    /// `flock` operations.
    flock, zero = "0", [LOCK_SH, LOCK_EX, LOCK_NB, LOCK_UN]
);

enumeration!(
    /// Clock ids.
    clock, [
        CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID,
        CLOCK_MONOTONIC_RAW, CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE, CLOCK_BOOTTIME,
        CLOCK_REALTIME_ALARM, CLOCK_BOOTTIME_ALARM, CLOCK_TAI,
    ]
);

flag_set!(
    /// `clock_nanosleep`/`timerfd_settime` flags.
    timer, zero = "0", [TIMER_ABSTIME]
);

flag_set!(
    /// `renameat2` flags.
    rename, zero = "0", [RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT]
);

flag_set!(
    /// `eventfd2` flags.
    efd, zero = "0", [EFD_SEMAPHORE, EFD_NONBLOCK, EFD_CLOEXEC]
);

enumeration!(
    /// `epoll_ctl` operations.
    epoll_op, [EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD]
);

flag_set!(
    /// `umount2` flags.
    umount, zero = "0", [MNT_FORCE, MNT_DETACH, MNT_EXPIRE, UMOUNT_NOFOLLOW]
);

flag_set!(
    /// `mount` flags; `MS_MGC_VAL` is the magic old callers put in the upper
    /// half, listed first so its bits do not print as hex.
    mount, zero = "0", [
        MS_MGC_VAL, MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_SYNCHRONOUS, MS_REMOUNT,
        MS_MANDLOCK, MS_DIRSYNC, MS_NOSYMFOLLOW, MS_NOATIME, MS_NODIRATIME, MS_BIND,
        MS_MOVE, MS_REC, MS_SILENT, MS_POSIXACL, MS_UNBINDABLE, MS_PRIVATE, MS_SLAVE,
        MS_SHARED, MS_RELATIME, MS_KERNMOUNT, MS_I_VERSION, MS_STRICTATIME, MS_LAZYTIME,
        MS_ACTIVE, MS_NOUSER,
    ]
);

enumeration!(
    /// The command part of a `futex` operation.
    futex_cmd, [
        FUTEX_WAIT, FUTEX_WAKE, FUTEX_FD, FUTEX_REQUEUE, FUTEX_CMP_REQUEUE, FUTEX_WAKE_OP,
        FUTEX_LOCK_PI, FUTEX_UNLOCK_PI, FUTEX_TRYLOCK_PI, FUTEX_WAIT_BITSET,
        FUTEX_WAKE_BITSET, FUTEX_WAIT_REQUEUE_PI, FUTEX_CMP_REQUEUE_PI, FUTEX_LOCK_PI2,
    ]
);

/// A `futex` operation as strace prints it: `FUTEX_WAIT_PRIVATE`,
/// `FUTEX_WAIT_BITSET_PRIVATE|FUTEX_CLOCK_REALTIME`.
pub(crate) fn futex_op(v: u64) -> String {
    let op = v as u32;
    let private = libc::FUTEX_PRIVATE_FLAG as u32;
    let realtime = libc::FUTEX_CLOCK_REALTIME as u32;
    let cmd = op & libc::FUTEX_CMD_MASK as u32;
    let mut out = futex_cmd(cmd.into());
    if op & private != 0 {
        out.push_str("_PRIVATE");
    }
    if op & realtime != 0 {
        out.push_str("|FUTEX_CLOCK_REALTIME");
    }
    let rest = op & !(cmd | private | realtime);
    if rest != 0 {
        let _ = write!(out, "|{rest:#x}");
    }
    out
}

enumeration!(
    /// Resource limits.
    rlimit, [
        RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_DATA, RLIMIT_STACK, RLIMIT_CORE, RLIMIT_RSS,
        RLIMIT_NPROC, RLIMIT_NOFILE, RLIMIT_MEMLOCK, RLIMIT_AS, RLIMIT_LOCKS,
        RLIMIT_SIGPENDING, RLIMIT_MSGQUEUE, RLIMIT_NICE, RLIMIT_RTPRIO, RLIMIT_RTTIME,
    ]
);

flag_set!(
    /// `memfd_create` flags.
    memfd, zero = "0", [MFD_CLOEXEC, MFD_ALLOW_SEALING, MFD_HUGETLB, MFD_NOEXEC_SEAL, MFD_EXEC]
);

flag_set!(
    /// `getrandom` flags.
    grnd, zero = "0", [GRND_NONBLOCK, GRND_RANDOM, GRND_INSECURE]
);

flag_set!(
    /// `close_range` flags.
    close_range, zero = "0", [CLOSE_RANGE_UNSHARE, CLOSE_RANGE_CLOEXEC]
);

enumeration!(
    /// `prctl` options, the common ones.
    prctl, [
        PR_SET_PDEATHSIG, PR_GET_PDEATHSIG, PR_GET_DUMPABLE, PR_SET_DUMPABLE, PR_SET_NAME,
        PR_GET_NAME, PR_GET_SECCOMP, PR_SET_SECCOMP, PR_CAPBSET_READ, PR_CAPBSET_DROP,
        PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS,
        PR_GET_NO_NEW_PRIVS, PR_SET_VMA, PR_CAP_AMBIENT,
    ]
);

#[cfg(test)]
mod tests {
    use super::*;

    fn o(flags: libc::c_int) -> u64 {
        flags as u64
    }

    #[test]
    fn open_flags_name_the_access_mode() {
        assert_eq!(
            open(o(libc::O_RDONLY | libc::O_CLOEXEC)),
            "O_RDONLY|O_CLOEXEC"
        );
        assert_eq!(
            open(o(libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC)),
            "O_WRONLY|O_CREAT|O_TRUNC"
        );
        assert_eq!(open(o(libc::O_RDONLY)), "O_RDONLY");
        assert_eq!(
            open(o(libc::O_RDONLY
                | libc::O_NONBLOCK
                | libc::O_CLOEXEC
                | libc::O_DIRECTORY)),
            "O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_DIRECTORY"
        );
    }

    #[test]
    fn aliases_and_multi_bit_flags_print_once() {
        // O_SYNC includes O_DSYNC's bit; O_TMPFILE includes O_DIRECTORY's.
        assert_eq!(open(o(libc::O_WRONLY | libc::O_SYNC)), "O_WRONLY|O_SYNC");
        assert_eq!(open(o(libc::O_RDWR | libc::O_TMPFILE)), "O_RDWR|O_TMPFILE");
        assert_eq!(open(o(libc::O_RDWR | libc::O_DSYNC)), "O_RDWR|O_DSYNC");
        assert!(creates(o(libc::O_TMPFILE)) && !creates(o(libc::O_DIRECTORY)));
        assert_eq!(at(libc::AT_REMOVEDIR as u64), "AT_REMOVEDIR");
        assert_eq!(at_access(libc::AT_EACCESS as u64), "AT_EACCESS");
    }

    #[test]
    fn unknown_bits_show_in_hex() {
        assert_eq!(
            prot(0x8000_0000 | libc::PROT_READ as u64),
            "PROT_READ|0x80000000"
        );
        assert_eq!(rename(0x100), "0x100");
        assert_eq!(whence(77), "77");
        assert_eq!(family(u64::MAX), "-1");
    }

    #[test]
    fn zero_has_its_own_name() {
        assert_eq!(access(0), "F_OK");
        assert_eq!(access((libc::R_OK | libc::W_OK) as u64), "R_OK|W_OK");
        assert_eq!(prot(0), "PROT_NONE");
        assert_eq!(at(0), "0");
    }

    #[test]
    fn modes_are_octal() {
        assert_eq!(mode(0o644), "0644");
        assert_eq!(mode(0), "0000");
        assert_eq!(mode(0o4755), "04755");
        assert_eq!(mode(u64::from(libc::S_IFREG | 0o600)), "S_IFREG|0600");
    }

    #[test]
    fn compound_arguments() {
        let fork = (libc::CLONE_CHILD_SETTID | libc::CLONE_CHILD_CLEARTID | libc::SIGCHLD) as u64;
        assert_eq!(
            clone(fork),
            "CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD"
        );
        assert_eq!(clone(libc::SIGCHLD as u64), "SIGCHLD");
        assert_eq!(clone(0), "0");
        let stream = (libc::SOCK_STREAM | libc::SOCK_CLOEXEC) as u64;
        assert_eq!(sock_type(stream), "SOCK_STREAM|SOCK_CLOEXEC");
        assert_eq!(family(libc::AF_INET6 as u64), "AF_INET6");
        let wait = (libc::FUTEX_WAIT_BITSET | libc::FUTEX_PRIVATE_FLAG | libc::FUTEX_CLOCK_REALTIME)
            as u64;
        assert_eq!(
            futex_op(wait),
            "FUTEX_WAIT_BITSET_PRIVATE|FUTEX_CLOCK_REALTIME"
        );
        assert_eq!(
            map((libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64),
            "MAP_PRIVATE|MAP_ANONYMOUS"
        );
        assert_eq!(map(libc::MAP_SHARED as u64), "MAP_SHARED");
    }
}
