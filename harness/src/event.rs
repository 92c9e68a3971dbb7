//! The decoded events a trace is made of.
//!
//! Kernel records (see `probity-common`) are decoded into [`Event`]s by
//! [`crate::decode`]. Events serialize to the JSON Lines schema documented in
//! `docs/json-schema.md`: every line has `kind`, `pid`, `tid` and `ts_ns`.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

/// One thing a traced process did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// `CLOCK_MONOTONIC` nanoseconds; for a syscall, the time of entry.
    pub ts_ns: u64,
    /// Process id (thread group id).
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What an [`Event`] records, tagged by `kind` in JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A syscall with its decoded arguments and result.
    Syscall(Syscall),
    /// A successful exec: the process now runs `filename`.
    Exec(Exec),
    /// A new process or thread.
    Fork(Fork),
    /// A task ended; `status` is set when the whole process did.
    Exit(Exit),
    /// A signal was delivered.
    Signal(Signal),
    /// A libc call, recorded by the preload library.
    Libc(LibcCall),
}

/// A syscall.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Syscall {
    /// The syscall's name, such as `openat`.
    pub name: Cow<'static, str>,
    /// The architecture's syscall number.
    pub nr: u32,
    /// The arguments, decoded as far as probity knows the syscall.
    pub args: Vec<Arg>,
    /// The return value; `None` for a syscall that never returns
    /// (`exit_group`) or an `execve` that replaced the process.
    pub ret: Option<i64>,
    /// The errno name when the syscall failed, such as `ENOENT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<Cow<'static, str>>,
    /// Nanoseconds from entry to exit.
    pub duration_ns: u64,
    /// The libc call this syscall was made in (same thread, inside its
    /// time window), as an index into the trace's events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<usize>,
}

/// A libc call, with the arguments the preload library decoded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LibcCall {
    /// The function's name, such as `fopen`.
    pub function: String,
    /// Its arguments.
    pub args: Vec<Arg>,
    /// What it returned; `None` when it did not return (a successful
    /// `execve`, `exit`) or was still running when the trace ended.
    pub ret: Option<Arg>,
    /// The errno name when the result says the call failed (`-1`, `NULL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<Cow<'static, str>>,
    /// Nanoseconds from entry to return.
    pub duration_ns: u64,
    /// The libc call this one was made in, as an index into the trace's
    /// events (`getaddrinfo` calling `socket`, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<usize>,
}

/// One decoded syscall argument. Its JSON form is an object with one key
/// naming the variant, such as `{"fd":3}` or `{"path":"/etc/hostname"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Arg {
    /// A signed integer.
    Int(i64),
    /// An unsigned integer shown in hex (a mask, a size of no meaning).
    Hex(u64),
    /// A file descriptor; `AT_FDCWD` is `-100`.
    Fd(i32),
    /// A pointer whose target probity does not read; 0 is `NULL`.
    Ptr(u64),
    /// A flag set or enumeration, with its symbolic form.
    Flags {
        /// The raw value.
        value: u64,
        /// Its names, such as `O_RDONLY|O_CLOEXEC`.
        text: String,
    },
    /// A file path or other string argument.
    Path {
        /// The string (invalid UTF-8 replaced).
        path: String,
        /// The kernel side kept fewer bytes than the string has.
        #[serde(default, skip_serializing_if = "is_false")]
        truncated: bool,
    },
    /// The first bytes of a data buffer.
    Bytes {
        /// The bytes kept.
        #[serde(with = "bytes_as_string")]
        data: Vec<u8>,
        /// The buffer's full length.
        len: u64,
    },
    /// A socket address.
    Sockaddr(SockAddr),
    /// A list of strings, such as an exec's argv.
    Strings {
        /// The strings.
        items: Vec<String>,
        /// More entries or bytes were there than probity keeps.
        #[serde(default, skip_serializing_if = "is_false")]
        truncated: bool,
    },
    /// A pointer whose memory could not be read.
    Unreadable(u64),
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A decoded `struct sockaddr`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SockAddr {
    /// `AF_INET` or `AF_INET6`.
    Inet {
        /// The address and port.
        addr: std::net::SocketAddr,
    },
    /// `AF_UNIX`: a path, an abstract name (starting with `@`), or unnamed.
    Unix {
        /// The path or name.
        path: String,
    },
    /// Any other family, by number.
    Other {
        /// `sa_family`.
        sa_family: u16,
    },
}

/// A successful exec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exec {
    /// The program the kernel ran.
    pub filename: String,
    /// The arguments, as read at the `execve` entry.
    pub argv: Vec<String>,
    /// argv had more entries or bytes than probity keeps.
    #[serde(default, skip_serializing_if = "is_false")]
    pub argv_truncated: bool,
    /// The thread id before the exec, when a non-leader thread exec'd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_tid: Option<u32>,
}

/// A new task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fork {
    /// The new task's thread id (its pid too when it is a process).
    pub child_tid: u32,
    /// The task map was full: the child and its subtree are not traced.
    #[serde(default, skip_serializing_if = "is_false")]
    pub untracked: bool,
}

/// A task ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    /// This was the last task of its process.
    pub process_exited: bool,
    /// How the process ended, when known (set when `process_exited`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ExitStatus>,
}

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

impl ExitStatus {
    /// The shell's view: the code, or 128 + the signal number.
    pub fn shell_code(self) -> i32 {
        match self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signal(s) => 128 + s,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exited with {c}"),
            ExitStatus::Signal(s) => write!(f, "killed by {}", crate::decode::signal_name(*s)),
        }
    }
}

/// A delivered signal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signal {
    /// The signal's number.
    pub signo: i32,
    /// Its name, such as `SIGCHLD`.
    pub name: Cow<'static, str>,
    /// `si_code`.
    pub code: i32,
    /// What the process does with it.
    pub action: SignalAction,
}

/// What a process does with a delivered signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalAction {
    /// The default action (`SIG_DFL`).
    Default,
    /// Ignored (`SIG_IGN`).
    Ignore,
    /// A handler runs.
    Handler,
}

impl Event {
    /// The libc call, when this event is one.
    pub fn as_libc(&self) -> Option<&LibcCall> {
        match &self.kind {
            EventKind::Libc(c) => Some(c),
            _ => None,
        }
    }

    /// The index of the libc call this event happened in, if any.
    pub fn parent(&self) -> Option<usize> {
        match &self.kind {
            EventKind::Syscall(s) => s.parent,
            EventKind::Libc(c) => c.parent,
            _ => None,
        }
    }

    /// When the event ended: a call's return, or the event's time.
    pub fn end_ns(&self) -> u64 {
        match &self.kind {
            EventKind::Syscall(s) => self.ts_ns + s.duration_ns,
            EventKind::Libc(c) => self.ts_ns + c.duration_ns,
            _ => self.ts_ns,
        }
    }

    /// The syscall, when this event is one.
    pub fn as_syscall(&self) -> Option<&Syscall> {
        match &self.kind {
            EventKind::Syscall(s) => Some(s),
            _ => None,
        }
    }

    /// The kind's JSON tag: `syscall`, `exec`, `fork`, `exit` or `signal`.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            EventKind::Syscall(_) => "syscall",
            EventKind::Exec(_) => "exec",
            EventKind::Fork(_) => "fork",
            EventKind::Exit(_) => "exit",
            EventKind::Signal(_) => "signal",
            EventKind::Libc(_) => "libc",
        }
    }
}

impl Syscall {
    /// The syscall failed.
    pub fn failed(&self) -> bool {
        self.errno.is_some()
    }

    /// The first path argument, if any.
    pub fn path(&self) -> Option<&str> {
        self.args.iter().find_map(|a| match a {
            Arg::Path { path, .. } => Some(path.as_str()),
            _ => None,
        })
    }
}

mod bytes_as_string {
    //! Buffers are kept in JSON as strings with C escapes, as strace shows
    //! them, so a saved trace stays readable and loads back byte for byte.
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::decode::escape_bytes(data))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        crate::decode::unescape_bytes(&s).map_err(serde::de::Error::custom)
    }
}
