//! Symbolic names for flag and enumeration arguments, as strace prints them.
//!
//! Every name and value comes from the `libc` crate, so they track the
//! target architecture (`O_DIRECTORY` differs between x86_64 and aarch64),
//! or from `linux-raw-sys` (the kernel's headers) where libc lacks a name
//! or gives it the C library's value rather than the kernel's: on x86_64
//! glibc's `O_LARGEFILE` is 0, the kernel's 0x8000.
//! The tables are ours rather than nix's bitflags types because their order
//! decides how aliases print: nix lists flags alphabetically, so `O_NONBLOCK`
//! would print as `O_NDELAY` and `AT_REMOVEDIR` as `AT_EACCESS`, and it lacks
//! flags every trace shows (`CLONE_SETTLS`, `CLONE_CHILD_CLEARTID`). Each
//! table follows strace's order, multi-bit flags before the bits they share.

use std::fmt::Write as _;

use linux_raw_sys::{general, ioctl, net, netlink};

use super::signal_name;

/// Names and values of the flags or enumerators one argument takes.
type Table = &'static [(&'static str, u32)];

/// Declares `fn $name(v: u64) -> String` naming the set bits of `v` with the
/// given libc flags, the bits no flag covers in hex, and 0 as `$zero`.
macro_rules! flag_set {
    ($(#[$doc:meta])* $name:ident, zero = $zero:literal, [$($(#[$cfg:meta])* $flag:ident),+ $(,)?]) => {
        flag_set!($(#[$doc])* $name, zero = $zero, in libc, [$($(#[$cfg])* $flag),+]);
    };
    ($(#[$doc:meta])* $name:ident, zero = $zero:literal, in $m:ident, [$($(#[$cfg:meta])* $flag:ident),+ $(,)?]) => {
        $(#[$doc])*
        pub(crate) fn $name(v: u64) -> String {
            const TABLE: Table = &[$($(#[$cfg])* (stringify!($flag), $m::$flag as u32)),+];
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
        enumeration!($(#[$doc])* $name, in libc, [$($(#[$cfg])* $value),+]);
    };
    ($(#[$doc:meta])* $name:ident, in $m:ident, [$($(#[$cfg:meta])* $value:ident),+ $(,)?]) => {
        $(#[$doc])*
        pub(crate) fn $name(v: u64) -> String {
            const TABLE: Table = &[$($(#[$cfg])* (stringify!($value), $m::$value as u32)),+];
            lookup(v as u32, TABLE).map_or_else(|| (v as i32).to_string(), str::to_owned)
        }
    };
}

/// Declares `fn $name(v: u64) -> Option<&'static str>` looking `v` up
/// among the given constants, for enumerations whose unknown values strace
/// prints in its own way ([`unknown`]).
macro_rules! names {
    ($(#[$doc:meta])* $name:ident, in $m:ident, [$($(#[$cfg:meta])* $value:ident),+ $(,)?]) => {
        $(#[$doc])*
        pub(crate) fn $name(v: u64) -> Option<&'static str> {
            const TABLE: Table = &[$($(#[$cfg])* (stringify!($value), $m::$value as u32)),+];
            lookup_u64(v, TABLE)
        }
    };
}

/// [`lookup`] for a register value: none above 32 bits is in a table.
fn lookup_u64(v: u64, table: Table) -> Option<&'static str> {
    u32::try_from(v).ok().and_then(|v| lookup(v, table))
}

/// `name`, or for an enumerator strace has no name for,
/// `0x3001 /* ARCH_??? */`: the hex value and a comment naming the prefix
/// it would have.
fn named_or_unknown(name: Option<&str>, v: u64, prefix: &str) -> String {
    name.map_or_else(|| format!("{v:#x} /* {prefix}??? */"), str::to_owned)
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
    table.iter().find(|&&(_, value)| value == v).map(|&(name, _)| name)
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

/// The `open` flags besides the access mode, also taken by `pipe2`, `dup3`
/// and the `*_CLOEXEC`/`*_NONBLOCK` arguments that share their values.
pub(crate) fn fd_flags(v: u64) -> String {
    const TABLE: Table = &[
        ("O_CREAT", libc::O_CREAT as u32),
        ("O_EXCL", libc::O_EXCL as u32),
        ("O_NOCTTY", libc::O_NOCTTY as u32),
        ("O_TRUNC", libc::O_TRUNC as u32),
        ("O_APPEND", libc::O_APPEND as u32),
        ("O_NONBLOCK", libc::O_NONBLOCK as u32),
        ("O_SYNC", libc::O_SYNC as u32),
        ("O_DSYNC", libc::O_DSYNC as u32),
        ("O_DIRECT", libc::O_DIRECT as u32),
        // The kernel's value: 64-bit kernels set it on every open file, so
        // `fcntl(F_GETFL)` returns it and programs pass it back to
        // `F_SETFL`, while glibc defines it as 0 there.
        ("O_LARGEFILE", linux_raw_sys::general::O_LARGEFILE),
        ("O_NOFOLLOW", libc::O_NOFOLLOW as u32),
        ("O_NOATIME", libc::O_NOATIME as u32),
        ("O_CLOEXEC", libc::O_CLOEXEC as u32),
        ("O_PATH", libc::O_PATH as u32),
        ("O_TMPFILE", libc::O_TMPFILE as u32),
        ("O_DIRECTORY", libc::O_DIRECTORY as u32),
        ("O_ASYNC", libc::O_ASYNC as u32),
    ];
    bits(v as u32, TABLE, "0")
}

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
    const PERMS: u32 = libc::S_ISUID | libc::S_ISGID | libc::S_ISVTX | libc::S_IRWXU | libc::S_IRWXG | libc::S_IRWXO;
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
    /// `SOCK_CLOEXEC`/`SOCK_NONBLOCK`, as `accept4` takes them, in
    /// strace's order.
    sock_flags, zero = "0", [SOCK_CLOEXEC, SOCK_NONBLOCK]
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
    /// Interval timers (`setitimer`, `getitimer`).
    itimer, [ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF]
);

flag_set!(
    /// `epoll_create1` flags.
    epoll_flags, zero = "0", [EPOLL_CLOEXEC]
);

enumeration!(
    /// `fadvise64` advice.
    fadvise, [
        POSIX_FADV_NORMAL, POSIX_FADV_RANDOM, POSIX_FADV_SEQUENTIAL, POSIX_FADV_WILLNEED,
        POSIX_FADV_DONTNEED, POSIX_FADV_NOREUSE,
    ]
);

flag_set!(
    /// The `statx` mask; `STATX_ALL` and `STATX_BASIC_STATS` first, so that
    /// they name the bits they cover, as strace prints them.
    statx_mask, zero = "0", in general, [
        STATX_ALL, STATX_BASIC_STATS, STATX_TYPE, STATX_MODE, STATX_NLINK, STATX_UID,
        STATX_GID, STATX_ATIME, STATX_MTIME, STATX_CTIME, STATX_INO, STATX_SIZE,
        STATX_BLOCKS, STATX_BTIME, STATX_MNT_ID, STATX_DIOALIGN, STATX_MNT_ID_UNIQUE,
        STATX_SUBVOL, STATX_WRITE_ATOMIC, STATX_DIO_READ_ALIGN,
    ]
);

/// `statx` flags: the sync type first, which is `AT_STATX_SYNC_AS_STAT`
/// when its two bits are clear, then the other `AT_*` flags.
pub(crate) fn statx_flags(v: u64) -> String {
    use linux_raw_sys::general::{AT_STATX_DONT_SYNC, AT_STATX_FORCE_SYNC, AT_STATX_SYNC_TYPE};
    let v = v as u32;
    let mut out = match v & AT_STATX_SYNC_TYPE {
        0 => "AT_STATX_SYNC_AS_STAT".to_owned(),
        AT_STATX_FORCE_SYNC => "AT_STATX_FORCE_SYNC".to_owned(),
        AT_STATX_DONT_SYNC => "AT_STATX_DONT_SYNC".to_owned(),
        // Both bits: let the flag table name them.
        _ => String::new(),
    };
    let rest = if out.is_empty() { v } else { v & !AT_STATX_SYNC_TYPE };
    if rest != 0 {
        push_name(&mut out, &at(rest.into()));
    }
    out
}

/// `arch_prctl` codes, from `arch/x86/include/uapi/asm/prctl.h` (libc has
/// none of them, and linux-raw-sys only `ARCH_SET_FS`).
pub(crate) fn arch_prctl(v: u64) -> String {
    const TABLE: Table = &[
        ("ARCH_SET_GS", 0x1001),
        ("ARCH_SET_FS", 0x1002),
        ("ARCH_GET_FS", 0x1003),
        ("ARCH_GET_GS", 0x1004),
        ("ARCH_GET_CPUID", 0x1011),
        ("ARCH_SET_CPUID", 0x1012),
        ("ARCH_GET_XCOMP_SUPP", 0x1021),
        ("ARCH_GET_XCOMP_PERM", 0x1022),
        ("ARCH_REQ_XCOMP_PERM", 0x1023),
        ("ARCH_GET_XCOMP_GUEST_PERM", 0x1024),
        ("ARCH_REQ_XCOMP_GUEST_PERM", 0x1025),
        ("ARCH_MAP_VDSO_X32", 0x2001),
        ("ARCH_MAP_VDSO_32", 0x2002),
        ("ARCH_MAP_VDSO_64", 0x2003),
        ("ARCH_GET_UNTAG_MASK", 0x4001),
        ("ARCH_ENABLE_TAGGED_ADDR", 0x4002),
        ("ARCH_GET_MAX_TAG_BITS", 0x4003),
        ("ARCH_FORCE_TAGGED_SVA", 0x4004),
        ("ARCH_SHSTK_ENABLE", 0x5001),
        ("ARCH_SHSTK_DISABLE", 0x5002),
        ("ARCH_SHSTK_LOCK", 0x5003),
        ("ARCH_SHSTK_UNLOCK", 0x5004),
        ("ARCH_SHSTK_STATUS", 0x5005),
    ];
    // glibc asks for 0x3001 (a CET code that never reached the kernel) at
    // every start: strace shows it as unknown, and so does probity.
    named_or_unknown(lookup_u64(v, TABLE), v, "ARCH_")
}

/// Whether an `arch_prctl` code passes a pointer the kernel writes to.
pub(crate) fn arch_prctl_gets(code: u64) -> bool {
    matches!(code, 0x1003 | 0x1004 | 0x1011 | 0x1021 | 0x1022 | 0x1024 | 0x4001 | 0x4003 | 0x5005)
}

names!(
    /// Socket option levels, by strace's names (`SOL_TCP`, not `IPPROTO_TCP`).
    sock_level_name, in net, [
        SOL_IP, SOL_SOCKET, SOL_TCP, SOL_UDP, SOL_IPV6, SOL_ICMPV6, SOL_SCTP, SOL_UDPLITE,
        SOL_RAW, SOL_IPX, SOL_AX25, SOL_ATALK, SOL_NETROM, SOL_ROSE, SOL_DECNET, SOL_X25,
        SOL_PACKET, SOL_ATM, SOL_AAL, SOL_IRDA, SOL_NETBEUI, SOL_LLC, SOL_DCCP, SOL_NETLINK,
        SOL_TIPC, SOL_RXRPC, SOL_PPPOL2TP, SOL_BLUETOOTH, SOL_PNPIPE, SOL_RDS, SOL_IUCV,
        SOL_CAIF, SOL_ALG, SOL_NFC, SOL_KCM, SOL_TLS, SOL_XDP, SOL_MPTCP, SOL_MCTP, SOL_SMC,
    ]
);

/// A socket option level; an unknown one as strace prints it,
/// `0x3e7 /* SOL_?? */`.
pub(crate) fn sock_level(v: u64) -> String {
    let v = v as u32;
    sock_level_name(v.into()).map_or_else(|| format!("{v:#x} /* SOL_?? */"), str::to_owned)
}

names!(
    /// `SOL_SOCKET` options; the names x86_64 programs use first where
    /// two share a value (`SO_TIMESTAMP` is `SO_TIMESTAMP_OLD` there).
    so_option, in net, [
        SO_DEBUG, SO_REUSEADDR, SO_TYPE, SO_ERROR, SO_DONTROUTE, SO_BROADCAST, SO_SNDBUF,
        SO_RCVBUF, SO_SNDBUFFORCE, SO_RCVBUFFORCE, SO_KEEPALIVE, SO_OOBINLINE, SO_NO_CHECK,
        SO_PRIORITY, SO_LINGER, SO_BSDCOMPAT, SO_REUSEPORT, SO_PASSCRED, SO_PEERCRED,
        SO_RCVLOWAT, SO_SNDLOWAT, SO_RCVTIMEO_OLD, SO_SNDTIMEO_OLD,
        SO_SECURITY_AUTHENTICATION, SO_SECURITY_ENCRYPTION_TRANSPORT,
        SO_SECURITY_ENCRYPTION_NETWORK, SO_BINDTODEVICE, SO_ATTACH_FILTER, SO_DETACH_FILTER,
        SO_PEERNAME, SO_TIMESTAMP_OLD, SO_ACCEPTCONN, SO_PEERSEC, SO_PASSSEC,
        SO_TIMESTAMPNS_OLD, SO_MARK, SO_TIMESTAMPING_OLD, SO_PROTOCOL, SO_DOMAIN,
        SO_RXQ_OVFL, SO_WIFI_STATUS, SO_PEEK_OFF, SO_NOFCS, SO_LOCK_FILTER,
        SO_SELECT_ERR_QUEUE, SO_BUSY_POLL, SO_MAX_PACING_RATE, SO_BPF_EXTENSIONS,
        SO_INCOMING_CPU, SO_ATTACH_BPF, SO_ATTACH_REUSEPORT_CBPF, SO_ATTACH_REUSEPORT_EBPF,
        SO_CNX_ADVICE, SO_MEMINFO, SO_INCOMING_NAPI_ID, SO_COOKIE, SO_PEERGROUPS,
        SO_ZEROCOPY, SO_TXTIME, SO_BINDTOIFINDEX, SO_TIMESTAMP_NEW, SO_TIMESTAMPNS_NEW,
        SO_TIMESTAMPING_NEW, SO_RCVTIMEO_NEW, SO_SNDTIMEO_NEW, SO_DETACH_REUSEPORT_BPF,
        SO_PREFER_BUSY_POLL, SO_BUSY_POLL_BUDGET, SO_NETNS_COOKIE, SO_BUF_LOCK,
        SO_RESERVE_MEM, SO_TXREHASH, SO_RCVMARK, SO_PASSPIDFD, SO_PEERPIDFD,
    ]
);

names!(
    /// `SOL_TCP` options.
    tcp_option, in net, [
        TCP_NODELAY, TCP_MAXSEG, TCP_CORK, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT,
        TCP_SYNCNT, TCP_LINGER2, TCP_DEFER_ACCEPT, TCP_WINDOW_CLAMP, TCP_INFO, TCP_QUICKACK,
        TCP_CONGESTION, TCP_MD5SIG, TCP_THIN_LINEAR_TIMEOUTS, TCP_THIN_DUPACK,
        TCP_USER_TIMEOUT, TCP_REPAIR, TCP_REPAIR_QUEUE, TCP_QUEUE_SEQ, TCP_REPAIR_OPTIONS,
        TCP_FASTOPEN, TCP_TIMESTAMP, TCP_NOTSENT_LOWAT, TCP_CC_INFO, TCP_SAVE_SYN,
        TCP_SAVED_SYN, TCP_REPAIR_WINDOW, TCP_FASTOPEN_CONNECT, TCP_ULP, TCP_MD5SIG_EXT,
        TCP_FASTOPEN_KEY, TCP_FASTOPEN_NO_COOKIE, TCP_ZEROCOPY_RECEIVE, TCP_INQ,
        TCP_TX_DELAY,
    ]
);

names!(
    /// `SOL_IP` options.
    ip_option, in net, [
        IP_TOS, IP_TTL, IP_HDRINCL, IP_OPTIONS, IP_ROUTER_ALERT, IP_RECVOPTS, IP_RETOPTS,
        IP_PKTINFO, IP_PKTOPTIONS, IP_MTU_DISCOVER, IP_RECVERR, IP_RECVTTL, IP_RECVTOS,
        IP_MTU, IP_FREEBIND, IP_IPSEC_POLICY, IP_XFRM_POLICY, IP_PASSSEC, IP_TRANSPARENT,
        IP_ORIGDSTADDR, IP_MINTTL, IP_NODEFRAG, IP_CHECKSUM, IP_BIND_ADDRESS_NO_PORT,
        IP_RECVFRAGSIZE, IP_RECVERR_RFC4884, IP_MULTICAST_IF, IP_MULTICAST_TTL,
        IP_MULTICAST_LOOP, IP_ADD_MEMBERSHIP, IP_DROP_MEMBERSHIP, IP_UNBLOCK_SOURCE,
        IP_BLOCK_SOURCE, IP_ADD_SOURCE_MEMBERSHIP, IP_DROP_SOURCE_MEMBERSHIP, IP_MSFILTER,
        IP_MULTICAST_ALL, IP_UNICAST_IF, IP_LOCAL_PORT_RANGE, IP_PROTOCOL,
    ]
);

names!(
    /// `SOL_IPV6` options.
    ipv6_option, in net, [
        IPV6_ADDRFORM, IPV6_2292PKTINFO, IPV6_2292HOPOPTS, IPV6_2292DSTOPTS,
        IPV6_2292RTHDR, IPV6_2292PKTOPTIONS, IPV6_CHECKSUM, IPV6_2292HOPLIMIT,
        IPV6_NEXTHOP, IPV6_AUTHHDR, IPV6_FLOWINFO, IPV6_UNICAST_HOPS, IPV6_MULTICAST_IF,
        IPV6_MULTICAST_HOPS, IPV6_MULTICAST_LOOP, IPV6_ADD_MEMBERSHIP, IPV6_DROP_MEMBERSHIP,
        IPV6_ROUTER_ALERT, IPV6_MTU_DISCOVER, IPV6_MTU, IPV6_RECVERR, IPV6_V6ONLY,
        IPV6_JOIN_ANYCAST, IPV6_LEAVE_ANYCAST, IPV6_MULTICAST_ALL, IPV6_ROUTER_ALERT_ISOLATE,
        IPV6_RECVERR_RFC4884, IPV6_FLOWLABEL_MGR, IPV6_FLOWINFO_SEND, IPV6_IPSEC_POLICY,
        IPV6_XFRM_POLICY, IPV6_HDRINCL, IPV6_RECVPKTINFO, IPV6_PKTINFO, IPV6_RECVHOPLIMIT,
        IPV6_HOPLIMIT, IPV6_RECVHOPOPTS, IPV6_HOPOPTS, IPV6_RTHDRDSTOPTS, IPV6_RECVRTHDR,
        IPV6_RTHDR, IPV6_RECVDSTOPTS, IPV6_DSTOPTS, IPV6_RECVPATHMTU, IPV6_PATHMTU,
        IPV6_DONTFRAG, IPV6_RECVTCLASS, IPV6_TCLASS, IPV6_AUTOFLOWLABEL,
        IPV6_ADDR_PREFERENCES, IPV6_MINHOPCOUNT, IPV6_ORIGDSTADDR, IPV6_TRANSPARENT,
        IPV6_UNICAST_IF, IPV6_RECVFRAGSIZE, IPV6_FREEBIND,
    ]
);

names!(
    /// `SOL_NETLINK` options.
    netlink_option, in netlink, [
        NETLINK_ADD_MEMBERSHIP, NETLINK_DROP_MEMBERSHIP, NETLINK_PKTINFO,
        NETLINK_BROADCAST_ERROR, NETLINK_NO_ENOBUFS, NETLINK_RX_RING, NETLINK_TX_RING,
        NETLINK_LISTEN_ALL_NSID, NETLINK_LIST_MEMBERSHIPS, NETLINK_CAP_ACK, NETLINK_EXT_ACK,
        NETLINK_GET_STRICT_CHK,
    ]
);

/// A socket option, named by the table of its `level`: `SO_REUSEADDR`,
/// `0x270f /* SO_??? */` when that table lacks it, and in decimal when
/// probity has no table for the level (as strace does).
pub(crate) fn sock_option(level: u64, v: u64) -> String {
    use linux_raw_sys::net::{SOL_IP, SOL_IPV6, SOL_NETLINK, SOL_SOCKET, SOL_TCP};
    let v = u64::from(v as u32);
    let (name, prefix): (fn(u64) -> Option<&'static str>, _) = match level as u32 {
        SOL_SOCKET => (so_option, "SO_"),
        SOL_TCP => (tcp_option, "TCP_"),
        SOL_IP => (ip_option, "IP_"),
        SOL_IPV6 => (ipv6_option, "IPV6_"),
        SOL_NETLINK => (netlink_option, "NETLINK_"),
        _ => return (v as i32).to_string(),
    };
    named_or_unknown(name(v), v, prefix)
}

names!(
    /// IP protocols, as `socket` takes them for `AF_INET` and `AF_INET6`.
    ip_proto, in libc, [
        IPPROTO_IP, IPPROTO_ICMP, IPPROTO_IGMP, IPPROTO_IPIP, IPPROTO_TCP, IPPROTO_EGP,
        IPPROTO_PUP, IPPROTO_UDP, IPPROTO_IDP, IPPROTO_TP, IPPROTO_DCCP, IPPROTO_IPV6,
        IPPROTO_RSVP, IPPROTO_GRE, IPPROTO_ESP, IPPROTO_AH, IPPROTO_ICMPV6, IPPROTO_MTP,
        IPPROTO_BEETPH, IPPROTO_ENCAP, IPPROTO_PIM, IPPROTO_COMP, IPPROTO_SCTP,
        IPPROTO_UDPLITE, IPPROTO_MPLS, IPPROTO_ETHERNET, IPPROTO_RAW, IPPROTO_MPTCP,
    ]
);

names!(
    /// Netlink protocols (`socket(AF_NETLINK, ...)`).
    netlink_proto, in netlink, [
        NETLINK_ROUTE, NETLINK_UNUSED, NETLINK_USERSOCK, NETLINK_FIREWALL, NETLINK_SOCK_DIAG,
        NETLINK_NFLOG, NETLINK_XFRM, NETLINK_SELINUX, NETLINK_ISCSI, NETLINK_AUDIT,
        NETLINK_FIB_LOOKUP, NETLINK_CONNECTOR, NETLINK_NETFILTER, NETLINK_IP6_FW,
        NETLINK_DNRTMSG, NETLINK_KOBJECT_UEVENT, NETLINK_GENERIC, NETLINK_SCSITRANSPORT,
        NETLINK_ECRYPTFS, NETLINK_RDMA, NETLINK_CRYPTO, NETLINK_SMC,
    ]
);

/// The protocol argument of `socket`, named for its address family
/// (`IPPROTO_IP` for 0 under `AF_INET`, `NETLINK_ROUTE` under
/// `AF_NETLINK`); other families' in decimal.
pub(crate) fn sock_proto(family: u64, v: u64) -> String {
    let (name, prefix): (fn(u64) -> Option<&'static str>, _) = match family as i32 {
        libc::AF_INET | libc::AF_INET6 => (ip_proto, "IPPROTO_"),
        libc::AF_NETLINK => (netlink_proto, "NETLINK_"),
        _ => return (v as i32).to_string(),
    };
    let v = u64::from(v as u32);
    named_or_unknown(name(v), v, prefix)
}

names!(
    /// `prctl` options, the common ones.
    prctl_name, in libc, [
        PR_SET_PDEATHSIG, PR_GET_PDEATHSIG, PR_GET_DUMPABLE, PR_SET_DUMPABLE, PR_SET_NAME,
        PR_GET_NAME, PR_GET_SECCOMP, PR_SET_SECCOMP, PR_CAPBSET_READ, PR_CAPBSET_DROP,
        PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS,
        PR_GET_NO_NEW_PRIVS, PR_SET_VMA, PR_CAP_AMBIENT, PR_SET_MM, PR_SET_TIMERSLACK,
        PR_GET_TIMERSLACK, PR_SET_KEEPCAPS, PR_GET_KEEPCAPS, PR_SET_SECUREBITS,
        PR_GET_SECUREBITS, PR_SET_THP_DISABLE, PR_GET_THP_DISABLE, PR_SET_PTRACER,
        PR_GET_TID_ADDRESS, PR_MCE_KILL, PR_MCE_KILL_GET, PR_GET_SPECULATION_CTRL,
        PR_SET_SPECULATION_CTRL,
    ]
);

/// A `prctl` option; an unknown one as `0x270f /* PR_??? */`.
pub(crate) fn prctl(v: u64) -> String {
    let v = u64::from(v as u32);
    named_or_unknown(prctl_name(v), v, "PR_")
}

names!(
    /// Capabilities.
    capability_name, in general, [
        CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID, CAP_KILL,
        CAP_SETGID, CAP_SETUID, CAP_SETPCAP, CAP_LINUX_IMMUTABLE, CAP_NET_BIND_SERVICE,
        CAP_NET_BROADCAST, CAP_NET_ADMIN, CAP_NET_RAW, CAP_IPC_LOCK, CAP_IPC_OWNER,
        CAP_SYS_MODULE, CAP_SYS_RAWIO, CAP_SYS_CHROOT, CAP_SYS_PTRACE, CAP_SYS_PACCT,
        CAP_SYS_ADMIN, CAP_SYS_BOOT, CAP_SYS_NICE, CAP_SYS_RESOURCE, CAP_SYS_TIME,
        CAP_SYS_TTY_CONFIG, CAP_MKNOD, CAP_LEASE, CAP_AUDIT_WRITE, CAP_AUDIT_CONTROL,
        CAP_SETFCAP, CAP_MAC_OVERRIDE, CAP_MAC_ADMIN, CAP_SYSLOG, CAP_WAKE_ALARM,
        CAP_BLOCK_SUSPEND, CAP_AUDIT_READ, CAP_PERFMON, CAP_BPF, CAP_CHECKPOINT_RESTORE,
    ]
);

/// A capability (`prctl(PR_CAPBSET_READ, ...)`); one the kernel may not
/// have as `0x30 /* CAP_??? */`, as programs probe for them.
pub(crate) fn capability(v: u64) -> String {
    named_or_unknown(capability_name(v), v, "CAP_")
}

/// `PR_SET_DUMPABLE` values, from `include/linux/sched/coredump.h` (in no
/// libc).
pub(crate) fn suid_dump(v: u64) -> String {
    const TABLE: Table = &[("SUID_DUMP_DISABLE", 0), ("SUID_DUMP_USER", 1), ("SUID_DUMP_ROOT", 2)];
    named_or_unknown(lookup_u64(v, TABLE), v, "SUID_DUMP_")
}

names!(
    /// `ioctl` requests, the common tty, file, block-device and socket ones.
    ioctl_name, in ioctl, [
        TCGETS, TCSETS, TCSETSW, TCSETSF, TCGETA, TCSETA, TCSETAW, TCSETAF, TCSBRK, TCXONC,
        TCFLSH, TIOCEXCL, TIOCNXCL, TIOCSCTTY, TIOCGPGRP, TIOCSPGRP, TIOCOUTQ, TIOCSTI,
        TIOCGWINSZ, TIOCSWINSZ, TIOCMGET, TIOCMBIS, TIOCMBIC, TIOCMSET, TIOCGSOFTCAR,
        TIOCSSOFTCAR, FIONREAD, TIOCLINUX, TIOCCONS, TIOCGSERIAL, TIOCSSERIAL, TIOCPKT,
        FIONBIO, TIOCNOTTY, TIOCSETD, TIOCGETD, TCSBRKP, TIOCSBRK, TIOCCBRK, TIOCGSID,
        TCGETS2, TCSETS2, TCSETSW2, TCSETSF2, TIOCGRS485, TIOCSRS485, TIOCGPTN, TIOCSPTLCK,
        TIOCGDEV, TIOCSIG, TIOCVHANGUP, TIOCGPKT, TIOCGPTLCK, TIOCGEXCL, TIOCGPTPEER,
        FIONCLEX, FIOCLEX, FIOASYNC, FIOQSIZE, FIOSETOWN, FIOGETOWN, SIOCATMARK,
        SIOCGSTAMP, SIOCADDRT, SIOCDELRT, SIOCGIFNAME, SIOCSIFLINK, SIOCGIFCONF,
        SIOCGIFFLAGS, SIOCSIFFLAGS, SIOCGIFADDR, SIOCSIFADDR, SIOCGIFDSTADDR,
        SIOCGIFBRDADDR, SIOCGIFNETMASK, SIOCSIFNETMASK, SIOCGIFMETRIC, SIOCGIFMTU,
        SIOCSIFMTU, SIOCSIFNAME, SIOCSIFHWADDR, SIOCGIFHWADDR, SIOCGIFINDEX, SIOCGIFTXQLEN,
        SIOCGIFPFLAGS, FS_IOC_GETFLAGS, FS_IOC_SETFLAGS, FS_IOC_GETVERSION,
        FS_IOC_SETVERSION, FS_IOC_FIEMAP, FS_IOC_FSGETXATTR, FS_IOC_FSSETXATTR,
        FS_IOC_GETFSLABEL, FICLONE, FICLONERANGE, FIDEDUPERANGE, FIFREEZE, FITHAW, FITRIM,
        FIBMAP, FIGETBSZ, BLKGETSIZE, BLKGETSIZE64, BLKSSZGET, BLKBSZGET, BLKRRPART,
        BLKFLSBUF, BLKROGET, BLKROSET, BLKDISCARD, BLKIOMIN, BLKIOOPT, BLKPBSZGET,
        BLKZEROOUT, TUNSETIFF, RNDGETENTCNT,
    ]
);

/// An `ioctl` request: its name, or, as strace prints a request it does
/// not know, its fields `_IOC(dir, type, nr, size)` (see
/// `include/uapi/asm-generic/ioctl.h`).
pub(crate) fn ioctl_request(v: u64) -> String {
    let v = v as u32;
    if let Some(name) = ioctl_name(v.into()) {
        return name.to_owned();
    }
    let dir = match v >> 30 {
        0 => "_IOC_NONE",
        1 => "_IOC_WRITE",
        2 => "_IOC_READ",
        _ => "_IOC_READ|_IOC_WRITE",
    };
    let (kind, nr, size) = ((v >> 8) & 0xff, v & 0xff, (v >> 16) & 0x3fff);
    format!("_IOC({dir}, {kind:#x}, {nr:#x}, {})", c_hex(size.into()))
}

/// How an `ioctl` request's third argument shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IoctlArg {
    /// The request takes none: strace leaves it out.
    None,
    /// An integer passed by value.
    Int,
    /// A pointer to the request's structure.
    Ptr,
    /// A request probity does not know: the raw value in hex.
    Hex,
}

/// What the third argument of `ioctl` request `v` is.
pub(crate) fn ioctl_arg(v: u64) -> IoctlArg {
    use linux_raw_sys::ioctl::*;
    match v as u32 {
        FIOCLEX | FIONCLEX | TIOCEXCL | TIOCNXCL | TIOCNOTTY | TIOCSBRK | TIOCCBRK | TIOCVHANGUP => IoctlArg::None,
        TCSBRK | TCSBRKP | TCXONC | TCFLSH | TIOCSCTTY | TIOCSIG | FIBMAP => IoctlArg::Int,
        r if ioctl_name(r.into()).is_some() => IoctlArg::Ptr,
        _ => IoctlArg::Hex,
    }
}

/// A value as C's `%#x` prints it, as strace does for raw values: `0` for
/// zero, `0x1f` otherwise.
fn c_hex(v: u64) -> String {
    if v == 0 {
        "0".to_owned()
    } else {
        format!("{v:#x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(flags: libc::c_int) -> u64 {
        flags as u64
    }

    #[test]
    fn open_flags_name_the_access_mode() {
        assert_eq!(open(o(libc::O_RDONLY | libc::O_CLOEXEC)), "O_RDONLY|O_CLOEXEC");
        assert_eq!(open(o(libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC)), "O_WRONLY|O_CREAT|O_TRUNC");
        assert_eq!(open(o(libc::O_RDONLY)), "O_RDONLY");
        assert_eq!(
            open(o(libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_DIRECTORY)),
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
        assert_eq!(prot(0x8000_0000 | libc::PROT_READ as u64), "PROT_READ|0x80000000");
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

    // The expected strings below are strace 6.1's, from a real run.

    #[test]
    fn ioctl_requests() {
        assert_eq!(ioctl_request(0x5401), "TCGETS");
        assert_eq!(ioctl_request(libc::TIOCGWINSZ), "TIOCGWINSZ");
        assert_eq!(ioctl_request(libc::FIONBIO), "FIONBIO");
        assert_eq!(ioctl_request(libc::FIOCLEX), "FIOCLEX");
        assert_eq!(ioctl_request(libc::SIOCGIFINDEX), "SIOCGIFINDEX");
        assert_eq!(ioctl_request(ioctl::BLKGETSIZE64.into()), "BLKGETSIZE64");
        assert_eq!(ioctl_request(ioctl::FICLONE.into()), "FICLONE");
        assert_eq!(ioctl_request(0x1234), "_IOC(_IOC_NONE, 0x12, 0x34, 0)");
        assert_eq!(ioctl_request(0x8004_7803), "_IOC(_IOC_READ, 0x78, 0x3, 0x4)");
        assert_eq!(ioctl_request(0xc008_5499), "_IOC(_IOC_READ|_IOC_WRITE, 0x54, 0x99, 0x8)");
        assert_eq!(ioctl_arg(libc::FIOCLEX), IoctlArg::None);
        assert_eq!(ioctl_arg(libc::TIOCSCTTY), IoctlArg::Int);
        assert_eq!(ioctl_arg(libc::TCGETS), IoctlArg::Ptr);
        assert_eq!(ioctl_arg(0x1234), IoctlArg::Hex);
    }

    #[test]
    fn socket_options() {
        let (sol_socket, sol_tcp) = (libc::SOL_SOCKET as u64, libc::SOL_TCP as u64);
        assert_eq!(sock_level(sol_socket), "SOL_SOCKET");
        assert_eq!(sock_level(sol_tcp), "SOL_TCP");
        assert_eq!(sock_level(libc::IPPROTO_IP as u64), "SOL_IP");
        assert_eq!(sock_level(libc::IPPROTO_IPV6 as u64), "SOL_IPV6");
        assert_eq!(sock_level(999), "0x3e7 /* SOL_?? */");
        assert_eq!(sock_option(sol_socket, libc::SO_REUSEADDR as u64), "SO_REUSEADDR");
        assert_eq!(sock_option(sol_tcp, libc::TCP_NODELAY as u64), "TCP_NODELAY");
        assert_eq!(sock_option(0, libc::IP_TOS as u64), "IP_TOS");
        assert_eq!(sock_option(libc::SOL_IPV6 as u64, libc::IPV6_V6ONLY as u64), "IPV6_V6ONLY");
        assert_eq!(sock_option(sol_socket, 9999), "0x270f /* SO_??? */");
        assert_eq!(sock_option(999, 1), "1");
        let inet = libc::AF_INET as u64;
        assert_eq!(sock_proto(inet, 0), "IPPROTO_IP");
        assert_eq!(sock_proto(libc::AF_INET6 as u64, libc::IPPROTO_UDP as u64), "IPPROTO_UDP");
        assert_eq!(sock_proto(libc::AF_NETLINK as u64, 0), "NETLINK_ROUTE");
        assert_eq!(sock_proto(libc::AF_UNIX as u64, 0), "0");
    }

    #[test]
    fn statx_arguments() {
        assert_eq!(statx_mask(libc::STATX_BASIC_STATS.into()), "STATX_BASIC_STATS");
        assert_eq!(statx_mask(libc::STATX_ALL.into()), "STATX_ALL");
        let some = libc::STATX_TYPE | libc::STATX_MODE | libc::STATX_MNT_ID;
        assert_eq!(statx_mask(some.into()), "STATX_TYPE|STATX_MODE|STATX_MNT_ID");
        assert_eq!(statx_mask(0x8000_0fff), "STATX_ALL|0x80000000");
        assert_eq!(statx_mask((libc::STATX_BASIC_STATS | libc::STATX_MNT_ID).into()), "STATX_BASIC_STATS|STATX_MNT_ID");
        assert_eq!(statx_flags(0), "AT_STATX_SYNC_AS_STAT");
        assert_eq!(statx_flags(libc::AT_EMPTY_PATH as u64), "AT_STATX_SYNC_AS_STAT|AT_EMPTY_PATH");
        let flags = (libc::AT_SYMLINK_NOFOLLOW | libc::AT_STATX_DONT_SYNC) as u64;
        assert_eq!(statx_flags(flags), "AT_STATX_DONT_SYNC|AT_SYMLINK_NOFOLLOW");
    }

    #[test]
    fn kernel_values_where_libc_differs() {
        // O_LARGEFILE is what 64-bit kernels report, whatever glibc says.
        let fl = (libc::O_RDWR | libc::O_NONBLOCK) as u64 | 0x8000;
        #[cfg(target_arch = "x86_64")]
        assert_eq!(open(fl), "O_RDWR|O_NONBLOCK|O_LARGEFILE");
        assert!(!open(fl).contains("0x"));
        assert_eq!(epoll_flags(libc::EPOLL_CLOEXEC as u64), "EPOLL_CLOEXEC");
        assert_eq!(fadvise(libc::POSIX_FADV_SEQUENTIAL as u64), "POSIX_FADV_SEQUENTIAL");
        assert_eq!(fadvise(libc::POSIX_FADV_DONTNEED as u64), "POSIX_FADV_DONTNEED");
        assert_eq!(arch_prctl(0x1003), "ARCH_GET_FS");
        assert_eq!(arch_prctl(0x1002), "ARCH_SET_FS");
        assert_eq!(arch_prctl(0x3001), "0x3001 /* ARCH_??? */");
        assert!(arch_prctl_gets(0x1003) && !arch_prctl_gets(0x1002));
        assert_eq!(prctl(libc::PR_SET_NAME as u64), "PR_SET_NAME");
        assert_eq!(prctl(9999), "0x270f /* PR_??? */");
        assert_eq!(suid_dump(1), "SUID_DUMP_USER");
        assert_eq!(capability(32), "CAP_MAC_OVERRIDE");
        assert_eq!(capability(40), "CAP_CHECKPOINT_RESTORE");
        assert_eq!(capability(0x30), "0x30 /* CAP_??? */");
    }

    #[test]
    fn compound_arguments() {
        let fork = (libc::CLONE_CHILD_SETTID | libc::CLONE_CHILD_CLEARTID | libc::SIGCHLD) as u64;
        assert_eq!(clone(fork), "CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD");
        assert_eq!(clone(libc::SIGCHLD as u64), "SIGCHLD");
        assert_eq!(clone(0), "0");
        let stream = (libc::SOCK_STREAM | libc::SOCK_CLOEXEC) as u64;
        assert_eq!(sock_type(stream), "SOCK_STREAM|SOCK_CLOEXEC");
        assert_eq!(family(libc::AF_INET6 as u64), "AF_INET6");
        let wait = (libc::FUTEX_WAIT_BITSET | libc::FUTEX_PRIVATE_FLAG | libc::FUTEX_CLOCK_REALTIME) as u64;
        assert_eq!(futex_op(wait), "FUTEX_WAIT_BITSET_PRIVATE|FUTEX_CLOCK_REALTIME");
        assert_eq!(map((libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64), "MAP_PRIVATE|MAP_ANONYMOUS");
        assert_eq!(map(libc::MAP_SHARED as u64), "MAP_SHARED");
    }
}
