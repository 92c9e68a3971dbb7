//! The decoded events a trace is made of.
//!
//! Kernel records (see `probity-common`) are decoded into [`Event`]s by
//! the harness's `decode` module. Events serialize to the JSON Lines schema documented in
//! `docs/json-schema.md`: every line has `kind`, `pid`, `tid` and `ts_ns`.

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

mod json;
pub(crate) mod strace;

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
    Libc(Box<LibcCall>),
    /// A network event, charged to the process and thread that own the
    /// socket (see [`Net`]).
    Net(Box<Net>),
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
    /// probity answered the call instead of the kernel (fault
    /// injection): it did not run.
    #[serde(default, skip_serializing_if = "is_false")]
    pub injected: bool,
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
    /// A fault-injection rule gave the result: the function did not run.
    #[serde(default, skip_serializing_if = "is_false")]
    pub injected: bool,
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
        /// The string's bytes, as the program passed them.
        #[serde(with = "os_text")]
        path: OsString,
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
        /// The strings' bytes, as the program passed them.
        #[serde(with = "os_text::list")]
        items: Vec<OsString>,
        /// More entries or bytes were there than probity keeps.
        #[serde(default, skip_serializing_if = "is_false")]
        truncated: bool,
    },
    /// A pointer whose memory could not be read.
    Unreadable(u64),
    /// A `struct msghdr` (`sendmsg`, `recvmsg`), or the first message of
    /// a `struct mmsghdr` array (`sendmmsg`, `recvmmsg`): the address it
    /// names and the first bytes of its first buffer.
    Msg {
        /// `msg_name`, when it names an address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<SockAddr>,
        /// The first bytes of the first `iovec` (for a receive, of what
        /// was received into it).
        #[serde(with = "bytes_as_string")]
        data: Vec<u8>,
        /// That buffer held more than `data`.
        #[serde(default, skip_serializing_if = "is_false")]
        truncated: bool,
    },
}

impl Arg {
    /// The string of a [`Arg::Path`] argument, as a path.
    pub fn as_path(&self) -> Option<&Path> {
        match self {
            Arg::Path { path, .. } => Some(Path::new(path)),
            _ => None,
        }
    }

    /// The socket address this argument is or names: a `struct
    /// sockaddr`, or a message's `msg_name`.
    pub fn sockaddr(&self) -> Option<&SockAddr> {
        match self {
            Arg::Sockaddr(sa) | Arg::Msg { name: Some(sa), .. } => Some(sa),
            _ => None,
        }
    }
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
        /// The path or name, as bytes.
        #[serde(with = "os_text")]
        path: OsString,
    },
    /// `AF_NETLINK`: the port id and the multicast groups.
    Netlink {
        /// `nl_pid`: the socket's port id (0 for the kernel, or to let it
        /// choose).
        pid: u32,
        /// `nl_groups`: a mask of multicast groups.
        groups: u32,
    },
    /// Any other family, by number.
    Other {
        /// `sa_family`.
        sa_family: u16,
    },
}

/// A network event. Its [`Event::pid`] and [`Event::tid`] are those of
/// the task that owns the socket (the one that connected, listened,
/// accepted or sent), whatever ran on the CPU when the kernel saw it:
/// retransmits and most TCP state changes happen in softirq or timer
/// context.
///
/// TCP events come from the kernel's TCP tracepoints; UDP sends and
/// receives from the syscalls that carry their peer address (`sendto`,
/// `recvfrom`, and sends on a connected UDP socket), so a UDP event
/// follows the syscall it was derived from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Net {
    /// What happened.
    pub op: NetOp,
    /// `tcp` or `udp`.
    pub protocol: Protocol,
    /// The socket's own address, when known (not yet at a TCP `connect`,
    /// whose source port the kernel picks later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<std::net::SocketAddr>,
    /// The other end, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<std::net::SocketAddr>,
    /// The TCP connection (or listening socket) this is about, numbered
    /// from 1 in the order the trace first saw them; absent for UDP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conn: Option<u32>,
    /// The host name the program resolved to the peer's address
    /// (`getaddrinfo` or a DNS answer seen earlier in the trace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// For a state change, the state before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_state: Option<TcpState>,
    /// The TCP state after a state change, or at a retransmit or reset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<TcpState>,
    /// At a close: bytes the owner sent on the connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_sent: Option<u64>,
    /// At a close: bytes the owner received on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_received: Option<u64>,
    /// At a close: segments retransmitted on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retransmits: Option<u32>,
    /// For a UDP send or receive: the datagram's length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub len: Option<u64>,
    /// For a UDP datagram to or from port 53: the DNS message in it.
    /// Boxed: few events have one, and every event is as large as the
    /// largest kind of event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Box<Dns>>,
    /// At a close: the connection was still open when the trace ended,
    /// and the counters are those of that moment.
    #[serde(default, skip_serializing_if = "is_false")]
    pub open_at_end: bool,
}

impl Net {
    /// A UDP datagram sent or received: its addresses, its length when the
    /// call gave one, and the DNS message in it, if any.
    pub(crate) fn udp(
        op: NetOp,
        local: Option<std::net::SocketAddr>,
        peer: std::net::SocketAddr,
        len: Option<u64>,
        dns: Option<Box<Dns>>,
    ) -> Net {
        Net {
            op,
            protocol: Protocol::Udp,
            local,
            peer: Some(peer),
            conn: None,
            host: None,
            old_state: None,
            state: None,
            bytes_sent: None,
            bytes_received: None,
            retransmits: None,
            len,
            dns,
            open_at_end: false,
        }
    }
}

/// What a [`Net`] event reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NetOp {
    /// An outgoing TCP connection was started (`connect`).
    Connect,
    /// A TCP socket started listening.
    Listen,
    /// An incoming TCP connection was accepted.
    Accept,
    /// A TCP connection changed state.
    State,
    /// A TCP connection (or listening socket) ended: the kernel freed it,
    /// once it was closed and its owner had closed it too. With its byte
    /// counts.
    Close,
    /// A TCP segment was retransmitted.
    Retransmit,
    /// The kernel sent a TCP reset on the connection.
    ResetSent,
    /// The connection received a TCP reset.
    ResetReceived,
    /// A UDP datagram was sent.
    Send,
    /// A UDP datagram was received.
    Receive,
}

impl NetOp {
    /// The op's name, as JSON and the text output spell it.
    ///
    /// ```
    /// assert_eq!(probity::NetOp::ResetSent.name(), "reset_sent");
    /// ```
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            NetOp::Connect => "connect",
            NetOp::Listen => "listen",
            NetOp::Accept => "accept",
            NetOp::State => "state",
            NetOp::Close => "close",
            NetOp::Retransmit => "retransmit",
            NetOp::ResetSent => "reset_sent",
            NetOp::ResetReceived => "reset_received",
            NetOp::Send => "send",
            NetOp::Receive => "receive",
        }
    }
}

/// A transport protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// A TCP state, as the kernel numbers them (`include/net/tcp_states.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[expect(missing_docs, reason = "the kernel's TCP state names")]
pub enum TcpState {
    Established,
    SynSent,
    SynRecv,
    FinWait1,
    FinWait2,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    Closing,
    NewSynRecv,
}

impl TcpState {
    /// The state for the kernel's number, if it is one.
    ///
    /// ```
    /// assert_eq!(probity::TcpState::from_kernel(1), Some(probity::TcpState::Established));
    /// ```
    #[must_use]
    pub fn from_kernel(v: u8) -> Option<TcpState> {
        use TcpState::*;
        Some(match v {
            1 => Established,
            2 => SynSent,
            3 => SynRecv,
            4 => FinWait1,
            5 => FinWait2,
            6 => TimeWait,
            7 => Close,
            8 => CloseWait,
            9 => LastAck,
            10 => Listen,
            11 => Closing,
            12 => NewSynRecv,
            _ => return None,
        })
    }
}

impl fmt::Display for TcpState {
    /// The kernel's name without `TCP_`: `ESTABLISHED`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait1 => "FIN_WAIT1",
            TcpState::FinWait2 => "FIN_WAIT2",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
            TcpState::NewSynRecv => "NEW_SYN_RECV",
        };
        f.write_str(s)
    }
}

/// A DNS message in a UDP datagram: its first question and, in an
/// answer, the addresses it gave.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    /// The name asked, such as `example.com` (without the final dot).
    pub name: String,
    /// The record type asked: `A`, `AAAA`, or `TYPE<n>` for others.
    pub qtype: String,
    /// This is an answer (the QR bit is set).
    #[serde(default, skip_serializing_if = "is_false")]
    pub response: bool,
    /// In an answer: the `A` and `AAAA` addresses it holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addrs: Vec<std::net::IpAddr>,
    /// The datagram was captured only in part (see `with_string_limit`):
    /// the name may be cut, and an answer's addresses missing.
    #[serde(default, skip_serializing_if = "is_false")]
    pub truncated: bool,
}

/// A successful exec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exec {
    /// The program the kernel ran.
    #[serde(with = "os_text")]
    pub filename: OsString,
    /// The arguments as the program passed them to `execve`.
    #[serde(with = "os_text::list")]
    pub argv: Vec<OsString>,
    /// argv had more entries or bytes than probity keeps.
    #[serde(default, skip_serializing_if = "is_false")]
    pub argv_truncated: bool,
    /// The argv the kernel gave the program it ran instead, when that
    /// differs from `argv`: a `#!` script's interpreter with the script
    /// (`["/bin/sh", "./s.sh", "a"]` for `./s.sh a`), or a binfmt_misc
    /// handler. Empty when the file named ran itself.
    #[serde(default, with = "os_text::list", skip_serializing_if = "Vec::is_empty")]
    pub interpreter_argv: Vec<OsString>,
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
    /// It was still running when probity detached from it (a trace of
    /// running processes, see [`Tracer::attach`](crate::Tracer::attach)).
    Running,
}

impl ExitStatus {
    /// The shell's view: the code, or 128 + the signal number.
    pub fn shell_code(self) -> i32 {
        match self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signal(s) => 128 + s,
            ExitStatus::Running => 0,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // No process exits with a negative code: it stands for one
            // probity could not learn (an attached process under
            // `--summary`, whose `exit_group` is counted, not recorded).
            ExitStatus::Code(c) if *c < 0 => write!(f, "ended (its exit status is unknown)"),
            ExitStatus::Code(c) => write!(f, "exited with {c}"),
            ExitStatus::Signal(s) => write!(f, "killed by {}", strace::signal_name(*s)),
            ExitStatus::Running => write!(f, "still running when probity detached"),
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

impl fmt::Display for Event {
    /// The event as `probity run` prints it, strace-like:
    /// `[1234] openat(AT_FDCWD, "/etc/hostname", O_RDONLY) = 3 <0.000012>`.
    ///
    /// ```
    /// let e = probity::Event {
    ///     ts_ns: 0,
    ///     pid: 7,
    ///     tid: 7,
    ///     kind: probity::EventKind::Syscall(probity::Syscall {
    ///         name: "close".into(),
    ///         nr: 3,
    ///         args: vec![probity::Arg::Fd(3)],
    ///         ret: Some(0),
    ///         errno: None,
    ///         duration_ns: 2000,
    ///         parent: None,
    ///         injected: false,
    ///     }),
    /// };
    /// assert_eq!(e.to_string(), "[7] close(3) = 0 <0.000002>");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::render::event_line(self))
    }
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

    /// The network event, when this event is one.
    pub fn as_net(&self) -> Option<&Net> {
        match &self.kind {
            EventKind::Net(n) => Some(n),
            _ => None,
        }
    }

    /// The syscall, when this event is one.
    pub fn as_syscall(&self) -> Option<&Syscall> {
        match &self.kind {
            EventKind::Syscall(s) => Some(s),
            _ => None,
        }
    }

    /// The kind's JSON tag: `syscall`, `libc`, `exec`, `fork`, `exit`,
    /// `signal` or `net`.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            EventKind::Syscall(_) => "syscall",
            EventKind::Exec(_) => "exec",
            EventKind::Fork(_) => "fork",
            EventKind::Exit(_) => "exit",
            EventKind::Signal(_) => "signal",
            EventKind::Libc(_) => "libc",
            EventKind::Net(_) => "net",
        }
    }
}

impl Syscall {
    /// The syscall failed.
    pub fn failed(&self) -> bool {
        self.errno.is_some()
    }

    /// The first path argument, if any, with the bytes the program
    /// passed.
    ///
    /// ```
    /// use std::path::Path;
    /// let s = probity::Syscall {
    ///     name: "unlink".into(),
    ///     nr: 87,
    ///     args: vec![probity::Arg::Path { path: "/tmp/x".into(), truncated: false }],
    ///     ret: Some(0),
    ///     errno: None,
    ///     duration_ns: 1,
    ///     parent: None,
    ///     injected: false,
    /// };
    /// assert_eq!(s.path(), Some(Path::new("/tmp/x")));
    /// ```
    pub fn path(&self) -> Option<&Path> {
        self.args.iter().find_map(Arg::as_path)
    }
}

/// The text of `s` for messages: as is when it is UTF-8, else with its
/// bytes escaped as strace shows them (`a\377b`).
pub(crate) fn shown(s: &OsStr) -> Cow<'_, str> {
    match s.to_str() {
        Some(t) => Cow::Borrowed(t),
        None => Cow::Owned(strace::escape_bytes(std::os::unix::ffi::OsStrExt::as_bytes(s))),
    }
}

pub(crate) mod os_text {
    //! Strings a program passed (paths, argv) are bytes, not always UTF-8.
    //! In JSON, one that is valid UTF-8 is a plain string, as it always
    //! was; any other is `{"bytes": "a\\377b"}`, its bytes C-escaped as
    //! strace shows them, so it loads back byte for byte and the two forms
    //! cannot be confused.
    use std::borrow::Cow;
    use std::ffi::{OsStr, OsString};
    use std::os::unix::ffi::{OsStrExt, OsStringExt};

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// One string, in either JSON form.
    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Form<'a> {
        Text(Cow<'a, str>),
        Bytes { bytes: Cow<'a, str> },
    }

    fn form(s: &OsStr) -> Form<'_> {
        match s.to_str() {
            Some(t) => Form::Text(Cow::Borrowed(t)),
            None => Form::Bytes { bytes: Cow::Owned(super::strace::escape_bytes(s.as_bytes())) },
        }
    }

    fn parse<E: serde::de::Error>(f: Form<'_>) -> Result<OsString, E> {
        match f {
            Form::Text(t) => Ok(OsString::from(t.into_owned())),
            Form::Bytes { bytes } => super::strace::unescape_bytes(&bytes)
                .map(OsString::from_vec)
                .map_err(|e| E::custom(format_args!("invalid \"bytes\" string: {e}"))),
        }
    }

    pub fn serialize<S: Serializer>(s: &OsStr, ser: S) -> Result<S::Ok, S::Error> {
        form(s).serialize(ser)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OsString, D::Error> {
        parse(Form::deserialize(d)?)
    }

    pub mod pairs {
        //! A process's execs: each program with its argv, in the forms
        //! `os_text` gives them.
        use std::ffi::OsString;

        use serde::ser::SerializeSeq;
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(items: &[(OsString, Vec<OsString>)], ser: S) -> Result<S::Ok, S::Error> {
            let mut seq = ser.serialize_seq(Some(items.len()))?;
            for (program, argv) in items {
                let argv: Vec<super::Form<'_>> = argv.iter().map(|a| super::form(a)).collect();
                seq.serialize_element(&(super::form(program), argv))?;
            }
            seq.end()
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(OsString, Vec<OsString>)>, D::Error> {
            Vec::<(super::Form<'_>, Vec<super::Form<'_>>)>::deserialize(d)?
                .into_iter()
                .map(|(p, argv)| Ok((super::parse(p)?, argv.into_iter().map(super::parse).collect::<Result<_, _>>()?)))
                .collect()
        }
    }

    pub mod list {
        //! A list of strings, each in the form `os_text` gives it.
        use std::ffi::OsString;

        use serde::ser::SerializeSeq;
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(items: &[OsString], ser: S) -> Result<S::Ok, S::Error> {
            let mut seq = ser.serialize_seq(Some(items.len()))?;
            for s in items {
                seq.serialize_element(&super::form(s))?;
            }
            seq.end()
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<OsString>, D::Error> {
            Vec::<super::Form<'_>>::deserialize(d)?.into_iter().map(super::parse).collect()
        }
    }
}

mod bytes_as_string {
    //! Buffers are kept in JSON as strings with C escapes, as strace shows
    //! them, so a saved trace stays readable and loads back byte for byte.
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::strace::escape_bytes(data))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        super::strace::unescape_bytes(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::os::unix::ffi::{OsStrExt, OsStringExt};

    use proptest::prelude::*;

    use super::*;

    fn exec(filename: OsString, argv: Vec<OsString>) -> Event {
        Event {
            ts_ns: 1,
            pid: 2,
            tid: 2,
            kind: EventKind::Exec(Exec {
                filename,
                argv,
                argv_truncated: false,
                interpreter_argv: Vec::new(),
                old_tid: None,
            }),
        }
    }

    fn open(path: OsString) -> Event {
        let s = Syscall {
            name: "openat".into(),
            nr: 257,
            args: vec![Arg::Fd(libc::AT_FDCWD), Arg::Path { path, truncated: false }],
            ret: Some(3),
            errno: None,
            duration_ns: 1,
            parent: None,
            injected: false,
        };
        Event { ts_ns: 1, pid: 2, tid: 2, kind: EventKind::Syscall(s) }
    }

    #[test]
    fn utf8_strings_stay_plain_json_strings() {
        let json = serde_json::to_string(&open("/tmp/é".into())).unwrap();
        assert!(json.contains(r#"{"path":{"path":"/tmp/é"}}"#), "{json}");
        let json = serde_json::to_string(&exec("/bin/ls".into(), vec!["ls".into(), "-l".into()])).unwrap();
        assert!(json.contains(r#""filename":"/bin/ls","argv":["ls","-l"]"#), "{json}");
    }

    #[test]
    fn other_bytes_are_an_object_with_their_escapes() {
        let json = serde_json::to_string(&open(OsString::from_vec(b"/tmp/a\xffb".to_vec()))).unwrap();
        assert!(json.contains(r#"{"path":{"path":{"bytes":"/tmp/a\\377b"}}}"#), "{json}");
        let back: Event = serde_json::from_str(&json).unwrap();
        assert_eq!(back.as_syscall().unwrap().path().unwrap().as_os_str().as_bytes(), b"/tmp/a\xffb");
    }

    #[test]
    fn a_bad_bytes_string_is_an_error() {
        let json = r#"{"ts_ns":1,"pid":2,"tid":2,"kind":"exec","filename":{"bytes":"a\\q"},"argv":[]}"#;
        let err = serde_json::from_str::<Event>(json).unwrap_err().to_string();
        assert!(err.contains("unknown escape"), "{err}");
    }

    proptest! {
        #[test]
        fn any_bytes_round_trip(
            name in proptest::collection::vec(any::<u8>(), 0..40),
            argv in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..12), 0..5),
            unix in proptest::collection::vec(any::<u8>(), 0..20),
        ) {
            let argv: Vec<OsString> = argv.into_iter().map(OsString::from_vec).collect();
            let events = [
                exec(OsString::from_vec(name.clone()), argv),
                open(OsString::from_vec(name.clone())),
                Event {
                    ts_ns: 1,
                    pid: 2,
                    tid: 2,
                    kind: EventKind::Syscall(Syscall {
                        name: "connect".into(),
                        nr: 42,
                        args: vec![Arg::Fd(3), Arg::Sockaddr(SockAddr::Unix { path: OsString::from_vec(unix) })],
                        ret: Some(0),
                        errno: None,
                        duration_ns: 1,
                        parent: None,
                        injected: false,
                    }),
                },
            ];
            for e in events {
                let json = serde_json::to_string(&e).unwrap();
                let back: Event = serde_json::from_str(&json).unwrap();
                prop_assert_eq!(&back, &e);
                // UTF-8 is written as it always was.
                if let Ok(text) = std::str::from_utf8(&name) {
                    if matches!(e.kind, EventKind::Syscall(_)) && e.as_syscall().unwrap().name == "openat" {
                        prop_assert!(json.contains(&serde_json::to_string(text).unwrap()), "{}", json);
                        prop_assert!(!json.contains("\"bytes\""), "{}", json);
                    }
                }
            }
        }
    }
}
