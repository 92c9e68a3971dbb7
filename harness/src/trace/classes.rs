//! strace's syscall classes (`-e trace=%file`, `%net`, ...), by name.
//!
//! The lists follow strace's x86_64 table (`src/linux/x86_64/syscallent.h`
//! and `syscallent-common.h`: the `TF`, `TN`, `TP`, `TS`, `TI`, `TD` and
//! `TM` flags). They are names, not numbers, so they compile on every
//! architecture; a name a kernel does not have simply never matches.

use std::fmt;
use std::str::FromStr;

/// A class of syscalls, as strace groups them for `-e trace=%class`.
///
/// ```
/// use probity::Class;
///
/// assert!(Class::File.contains("openat"));
/// assert!(Class::Desc.contains("openat"));
/// assert!(!Class::Network.contains("openat"));
/// assert_eq!("%net".parse::<Class>(), Ok(Class::Network));
/// assert_eq!(Class::Memory.to_string(), "%memory");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Class {
    /// `%file`: syscalls that take a file name.
    File,
    /// `%network` (`%net`): sockets.
    Network,
    /// `%process`: creating, running, waiting for and ending processes.
    Process,
    /// `%memory`: mapping and managing memory.
    Memory,
    /// `%signal`: signal handling and sending.
    Signal,
    /// `%ipc`: System V IPC.
    Ipc,
    /// `%desc`: syscalls that take or return a file descriptor.
    Desc,
}

#[rustfmt::skip]
const FILE: &[&str] = &[
    "open", "stat", "lstat", "access", "execve", "truncate", "getcwd", "chdir", "rename", "mkdir", "rmdir", "creat",
    "link", "unlink", "symlink", "readlink", "chmod", "chown", "lchown", "utime", "mknod", "uselib", "statfs",
    "pivot_root", "chroot", "acct", "mount", "umount2", "swapon", "swapoff", "quotactl", "setxattr", "lsetxattr",
    "getxattr", "lgetxattr", "listxattr", "llistxattr", "removexattr", "lremovexattr", "utimes", "inotify_add_watch",
    "openat", "mkdirat", "mknodat", "fchownat", "futimesat", "newfstatat", "unlinkat", "renameat", "linkat",
    "symlinkat", "readlinkat", "fchmodat", "faccessat", "utimensat", "fanotify_mark", "name_to_handle_at",
    "renameat2", "execveat", "statx", "open_tree", "move_mount", "fsconfig", "fspick", "openat2", "faccessat2",
    "mount_setattr", "fchmodat2", "setxattrat", "getxattrat",
    // Names other architectures use for the same calls.
    "fstatat", "fstatat64", "stat64", "lstat64", "statfs64", "truncate64", "umount",
];

#[rustfmt::skip]
const NETWORK: &[&str] = &[
    "sendfile", "socket", "connect", "accept", "sendto", "recvfrom", "sendmsg", "recvmsg", "shutdown", "bind",
    "listen", "getsockname", "getpeername", "socketpair", "setsockopt", "getsockopt", "getpmsg", "putpmsg", "accept4",
    "recvmmsg", "sendmmsg", "sendfile64", "socketcall", "send", "recv",
];

#[rustfmt::skip]
const PROCESS: &[&str] = &[
    "clone", "fork", "vfork", "execve", "exit", "wait4", "kill", "rt_sigqueueinfo", "tkill", "exit_group", "tgkill",
    "waitid", "rt_tgsigqueueinfo", "execveat", "pidfd_send_signal", "clone3", "waitpid",
];

#[rustfmt::skip]
const MEMORY: &[&str] = &[
    "mmap", "mprotect", "munmap", "brk", "mremap", "msync", "mincore", "madvise", "shmat", "shmdt", "mlock",
    "munlock", "mlockall", "munlockall", "io_setup", "io_destroy", "remap_file_pages", "mbind", "set_mempolicy",
    "get_mempolicy", "migrate_pages", "move_pages", "mlock2", "pkey_mprotect", "io_uring_register",
    "set_mempolicy_home_node", "map_shadow_stack", "mseal", "mmap2",
];

#[rustfmt::skip]
const SIGNAL: &[&str] = &[
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "pause", "kill", "rt_sigpending", "rt_sigtimedwait",
    "rt_sigqueueinfo", "rt_sigsuspend", "sigaltstack", "tkill", "tgkill", "signalfd", "signalfd4",
    "rt_tgsigqueueinfo", "pidfd_send_signal", "io_uring_enter", "sigaction", "sigprocmask", "sigreturn", "sigpending",
    "sigsuspend", "signal",
];

#[rustfmt::skip]
const IPC: &[&str] = &[
    "shmget", "shmat", "shmctl", "semget", "semop", "semctl", "shmdt", "msgget", "msgsnd", "msgrcv", "msgctl",
    "semtimedop", "ipc",
];

#[rustfmt::skip]
const DESC: &[&str] = &[
    "read", "write", "open", "close", "fstat", "poll", "lseek", "mmap", "ioctl", "pread64", "pwrite64", "readv",
    "writev", "pipe", "select", "dup", "dup2", "sendfile", "fcntl", "flock", "fsync", "fdatasync", "ftruncate",
    "getdents", "fchdir", "creat", "fchmod", "fchown", "fstatfs", "readahead", "fsetxattr", "fgetxattr", "flistxattr",
    "fremovexattr", "epoll_create", "getdents64", "fadvise64", "epoll_wait", "epoll_ctl", "mq_open", "mq_timedsend",
    "mq_timedreceive", "mq_notify", "mq_getsetattr", "inotify_init", "inotify_add_watch", "inotify_rm_watch",
    "openat", "mkdirat", "mknodat", "fchownat", "futimesat", "newfstatat", "unlinkat", "renameat", "linkat",
    "symlinkat", "readlinkat", "fchmodat", "faccessat", "pselect6", "ppoll", "splice", "tee", "sync_file_range",
    "vmsplice", "utimensat", "epoll_pwait", "signalfd", "timerfd_create", "eventfd", "fallocate", "timerfd_settime",
    "timerfd_gettime", "signalfd4", "eventfd2", "epoll_create1", "dup3", "pipe2", "inotify_init1", "preadv",
    "pwritev", "perf_event_open", "fanotify_init", "fanotify_mark", "name_to_handle_at", "open_by_handle_at",
    "syncfs", "setns", "finit_module", "renameat2", "memfd_create", "kexec_file_load", "bpf", "execveat",
    "userfaultfd", "copy_file_range", "preadv2", "pwritev2", "statx", "pidfd_send_signal", "io_uring_setup",
    "io_uring_enter", "io_uring_register", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick",
    "pidfd_open", "openat2", "pidfd_getfd", "faccessat2", "process_madvise", "epoll_pwait2", "mount_setattr",
    "quotactl_fd", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self", "memfd_secret",
    "process_mrelease", "cachestat", "fchmodat2", "setxattrat", "getxattrat", "fstatat", "fstatat64", "fstat64",
    "fcntl64", "ftruncate64", "fstatfs64", "_llseek", "sendfile64",
];

impl Class {
    /// Every class, in the order listed here.
    ///
    /// ```
    /// assert_eq!(probity::Class::ALL.len(), 7);
    /// ```
    pub const ALL: [Class; 7] =
        [Class::File, Class::Network, Class::Process, Class::Memory, Class::Signal, Class::Ipc, Class::Desc];

    /// The names of the syscalls in the class.
    ///
    /// ```
    /// assert!(probity::Class::Ipc.syscalls().contains(&"shmget"));
    /// ```
    #[must_use]
    pub fn syscalls(self) -> &'static [&'static str] {
        match self {
            Class::File => FILE,
            Class::Network => NETWORK,
            Class::Process => PROCESS,
            Class::Memory => MEMORY,
            Class::Signal => SIGNAL,
            Class::Ipc => IPC,
            Class::Desc => DESC,
        }
    }

    /// Whether the syscall named `name` is in the class.
    ///
    /// ```
    /// assert!(probity::Class::Process.contains("clone3"));
    /// ```
    #[must_use]
    pub fn contains(self, name: &str) -> bool {
        self.syscalls().contains(&name)
    }

    /// The classes the syscall named `name` is in (a syscall can be in
    /// several, as `openat` is in `%file` and `%desc`).
    ///
    /// ```
    /// use probity::Class;
    /// assert_eq!(Class::of("kill"), vec![Class::Process, Class::Signal]);
    /// ```
    #[must_use]
    pub fn of(name: &str) -> Vec<Class> {
        Class::ALL.into_iter().filter(|c| c.contains(name)).collect()
    }

    /// strace's name for the class, such as `%file`.
    ///
    /// ```
    /// assert_eq!(probity::Class::Network.name(), "%network");
    /// ```
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Class::File => "%file",
            Class::Network => "%network",
            Class::Process => "%process",
            Class::Memory => "%memory",
            Class::Signal => "%signal",
            Class::Ipc => "%ipc",
            Class::Desc => "%desc",
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses strace's names, with or without `%`: `%file`, `net`, `%network`,
/// `process`, `memory`, `signal`, `ipc`, `desc`.
impl FromStr for Class {
    type Err = String;

    fn from_str(s: &str) -> Result<Class, String> {
        Ok(match s.strip_prefix('%').unwrap_or(s) {
            "file" => Class::File,
            "net" | "network" => Class::Network,
            "process" => Class::Process,
            "memory" => Class::Memory,
            "signal" => Class::Signal,
            "ipc" => Class::Ipc,
            "desc" => Class::Desc,
            other => {
                return Err(format!(
                    "unknown syscall class `{other}`; the classes are %file, %network, %process, %memory, %signal, %ipc, %desc"
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every x86_64 name in the tables is a syscall the `syscalls` crate
    /// knows, so a typo cannot hide.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn names_are_x86_64_syscalls() {
        // Names of other architectures, kept so the classes work there too.
        #[rustfmt::skip]
        const ELSEWHERE: &[&str] = &[
            "fstatat", "fstatat64", "stat64", "lstat64", "statfs64", "truncate64", "umount", "socketcall", "send",
            "recv", "sendfile64", "waitpid", "mmap2", "sigaction", "sigprocmask", "sigreturn", "sigpending",
            "sigsuspend", "signal", "ipc", "fstat64", "fcntl64", "ftruncate64", "fstatfs64", "_llseek",
        ];
        for class in Class::ALL {
            for name in class.syscalls() {
                if ELSEWHERE.contains(name) {
                    continue;
                }
                assert!(name.parse::<syscalls::Sysno>().is_ok(), "{class}: {name} is not an x86_64 syscall");
            }
        }
    }

    #[test]
    fn like_strace() {
        assert_eq!(Class::of("openat"), vec![Class::File, Class::Desc]);
        assert_eq!(Class::of("mmap"), vec![Class::Memory, Class::Desc]);
        assert_eq!(Class::of("execve"), vec![Class::File, Class::Process]);
        assert_eq!(Class::of("shmat"), vec![Class::Memory, Class::Ipc]);
        assert_eq!(Class::of("getpid"), vec![]);
        assert!("%bogus".parse::<Class>().is_err());
        for c in Class::ALL {
            assert_eq!(c.name().parse::<Class>(), Ok(c));
        }
    }
}
