//! The normaliser: renames what changes from run to run in an event
//! (pids, tids, descriptors, ephemeral ports, connections, directories)
//! and turns it into a snapshot row.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;

use super::filters::Filters;
use super::row::{Row, What};
use crate::event::{Arg, Event, EventKind, SignalAction, SockAddr, Syscall};
use crate::trace::index::Access;

/// A descriptor as the normalizer numbers it: by the call that created it
/// when the trace saw that, else by its number.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum FdKey {
    Id(usize),
    Raw(i32),
}

/// Renames what differs between runs, keeping everything else.
pub(crate) struct Normalizer {
    pub(super) filters: Filters,
    ids: HashMap<u32, u32>,
    fds: HashMap<FdKey, i32>,
    ports: HashMap<u16, usize>,
    conns: HashMap<u32, u32>,
}

impl Normalizer {
    /// A normalizer with `extra` replacements first, then the built-in
    /// placeholders.
    pub(crate) fn new(extra: &[(String, String)]) -> Normalizer {
        Normalizer {
            filters: Filters::new(extra),
            ids: HashMap::new(),
            fds: HashMap::new(),
            ports: HashMap::new(),
            conns: HashMap::new(),
        }
    }

    /// A pid or tid, numbered from 1 by first appearance.
    pub(crate) fn id(&mut self, raw: u32) -> u32 {
        let next = self.ids.len() as u32 + 1;
        *self.ids.entry(raw).or_insert(next)
    }

    fn signed_id(&mut self, raw: i64) -> i64 {
        match raw {
            v if v > 0 => i64::from(self.id(v as u32)),
            v if v < -1 => -i64::from(self.id((-v) as u32)),
            v => v,
        }
    }

    /// A descriptor: 0 to 2 and negative ones as they are, others
    /// numbered from 3 by first appearance, each descriptor the trace saw
    /// created (`id`) with its own number, so that which number the
    /// kernel picked (which depends on what other threads had open) does
    /// not show.
    fn fd(&mut self, raw: i32, id: Option<usize>) -> i32 {
        if raw < 3 {
            return raw;
        }
        let key = id.map_or(FdKey::Raw(raw), FdKey::Id);
        let next = self.fds.len() as i32 + 3;
        *self.fds.entry(key).or_insert(next)
    }

    /// `[1]` or `[1:2]`.
    pub(crate) fn task(&mut self, pid: u32, tid: u32) -> String {
        let p = self.id(pid);
        if pid == tid {
            p.to_string()
        } else {
            format!("{p}:{}", self.id(tid))
        }
    }

    /// Numbers "process N", "thread N" and "task N" in free text as pids
    /// are numbered.
    pub(crate) fn words(&mut self, s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        loop {
            let next = ["process ", "thread ", "task "].iter().filter_map(|w| rest.find(w).map(|i| (i, w.len()))).min();
            let Some((i, len)) = next else { break };
            let after = i + len;
            out.push_str(&rest[..after]);
            let digits = rest[after..].bytes().take_while(u8::is_ascii_digit).count();
            match rest[after..after + digits].parse::<u32>() {
                Ok(n) => {
                    let _ = write!(out, "{}", self.id(n));
                }
                Err(_) => out.push_str(&rest[after..after + digits]),
            }
            rest = &rest[after + digits..];
        }
        out.push_str(rest);
        self.filters.apply_to(&out)
    }

    /// An ephemeral port (32768 and up, Linux's default range) numbered by
    /// first appearance, as `<portN>`.
    fn port(&mut self, p: u16) -> String {
        if p < 32768 {
            return p.to_string();
        }
        let next = self.ports.len() + 1;
        let n = *self.ports.entry(p).or_insert(next);
        format!("<port{n}>")
    }

    /// A network event's text with its ephemeral ports numbered, and
    /// without what a run does not decide: byte counts of a connection
    /// still open at the end.
    fn net(&mut self, n: &crate::event::Net) -> String {
        let mut n = n.clone();
        if let Some(c) = n.conn {
            let next = self.conns.len() as u32 + 1;
            n.conn = Some(*self.conns.entry(c).or_insert(next));
        }
        if n.open_at_end {
            n.bytes_sent = None;
            n.bytes_received = None;
            n.retransmits = None;
        }
        crate::render::net_text(&n, &mut |a| {
            let port = self.port(a.port());
            match a {
                std::net::SocketAddr::V4(v4) => format!("{}:{port}", v4.ip()),
                std::net::SocketAddr::V6(v6) => format!("[{}]:{port}", v6.ip()),
            }
        })
    }

    /// An ephemeral port (32768 and up, Linux's default range) numbered by
    /// first appearance.
    fn ports(&mut self, s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find("htons(") {
            let after = i + "htons(".len();
            out.push_str(&rest[..after]);
            let digits = rest[after..].bytes().take_while(u8::is_ascii_digit).count();
            let text = &rest[after..after + digits];
            match text.parse::<u16>() {
                Ok(p) if p >= 32768 => {
                    let next = self.ports.len() + 1;
                    let n = *self.ports.entry(p).or_insert(next);
                    let _ = write!(out, "<port{n}>");
                }
                _ => out.push_str(text),
            }
            rest = &rest[after + digits..];
        }
        out.push_str(rest);
        out
    }

    pub(super) fn arg(&mut self, name: &str, i: usize, a: &Arg, fd_id: Option<usize>) -> String {
        match a {
            // `fcntl(fd, F_DUPFD, n)`: the lowest number the new one may have.
            Arg::Fd(d) if name == "fcntl" && i == 2 => d.to_string(),
            Arg::Fd(d) => match *d {
                libc::AT_FDCWD => "AT_FDCWD".to_owned(),
                d => self.fd(d, fd_id).to_string(),
            },
            Arg::Int(v) if pid_arg(name, i) => self.signed_id(*v).to_string(),
            Arg::Ptr(0) => "NULL".to_owned(),
            Arg::Ptr(_) => "<ptr>".to_owned(),
            Arg::Hex(v) if looks_like_address(*v) => "<addr>".to_owned(),
            Arg::Unreadable(_) => "<unreadable>".to_owned(),
            Arg::Sockaddr(sa) => {
                let s = self.ports(&a.to_string());
                match sa {
                    SockAddr::Unix { .. } => self.filters.apply_to(&s),
                    _ => s,
                }
            }
            // The address, without the bytes: what a message carries
            // (netlink replies, DNS ids) changes from run to run.
            Arg::Msg { name, .. } => match name {
                Some(sa) => {
                    let addr = self.arg("", 0, &Arg::Sockaddr(sa.clone()), None);
                    format!("{{msg_name={addr}, msg_iov=<data>}}")
                }
                None => "{msg_iov=<data>}".to_owned(),
            },
            other => self.filters.apply_to(&other.to_string()),
        }
    }

    fn result(&mut self, s: &Syscall, new_fd: Option<usize>) -> String {
        match (s.ret, &s.errno) {
            (None, _) => "?".to_owned(),
            (Some(ret), Some(name)) => {
                let desc = ret.checked_neg().and_then(|e| i32::try_from(e).ok()).map(crate::decode::errno_desc);
                format!("-1 {name} ({})", desc.as_deref().unwrap_or("unknown error"))
            }
            (Some(_), None) if matches!(s.name.as_ref(), "mmap" | "mremap" | "brk" | "shmat") => "<addr>".to_owned(),
            // The value of the call the handler interrupted, not its own.
            (Some(_), None) if s.name == "rt_sigreturn" => "?".to_owned(),
            // The length of the directory's name, which differs between
            // machines as the name does.
            (Some(_), None) if s.name == "getcwd" => "<len>".to_owned(),
            // The size of the kernel's CPU mask, which follows the number
            // of CPUs the machine could have.
            (Some(_), None) if s.name == "sched_getaffinity" => "<len>".to_owned(),
            (Some(ret), None) if pid_result(&s.name) => self.signed_id(ret).to_string(),
            (Some(ret), None) if fd_result(s) => {
                i32::try_from(ret).map_or(ret.to_string(), |fd| self.fd(fd, new_fd).to_string())
            }
            (Some(ret), None) => ret.to_string(),
        }
    }

    /// One event as a row. With `fold`, equivalent syscalls share a name
    /// and form, and `access` gives their resolved paths.
    pub(crate) fn row(&mut self, e: &Event, access: Option<&Access>, fold: bool) -> Row {
        let task = self.task(e.pid, e.tid);
        let what = match &e.kind {
            EventKind::Syscall(s) => {
                let (name, args) = if fold {
                    self.folded(s, access)
                } else {
                    (s.name.to_string(), self.args(&s.name, &s.args, access))
                };
                let result = self.result(s, access.and_then(|a| a.new_fd));
                What::Syscall { name, args, result }
            }
            EventKind::Exec(x) => What::Exec {
                program: self.filters.apply_to(&crate::decode::escape_bytes(x.filename.as_bytes())),
                argv: x
                    .argv
                    .iter()
                    .map(|a| self.filters.apply_to(&crate::decode::escape_bytes(a.as_bytes())))
                    .collect(),
                argv_truncated: x.argv_truncated,
            },
            EventKind::Fork(f) => What::NewTask { child: self.id(f.child_tid).to_string(), untracked: f.untracked },
            EventKind::Exit(x) => match (x.process_exited, x.status) {
                (true, Some(st)) => What::Exited { status: st.to_string() },
                (true, None) => What::Exited { status: "exited".into() },
                (false, _) => What::ThreadExited,
            },
            EventKind::Libc(c) => {
                let args = self.args(&c.function, &c.args, access);
                let mut result = match &c.ret {
                    None => "?".to_owned(),
                    Some(Arg::Int(pid)) if pid_result(&c.function) => self.signed_id(*pid).to_string(),
                    Some(r) => self.arg(&c.function, usize::MAX, r, access.and_then(|a| a.new_fd)),
                };
                if let Some(errno) = &c.errno {
                    let _ = write!(result, " {errno}");
                }
                What::Libc { function: c.function.clone(), args, result }
            }
            EventKind::Signal(sig) => What::Signal {
                signal: sig.name.to_string(),
                code: sig.code,
                action: match sig.action {
                    SignalAction::Default => "default action",
                    SignalAction::Ignore => "ignored",
                    SignalAction::Handler => "handler",
                }
                .to_owned(),
            },
            EventKind::Net(n) => What::Net { text: self.net(n) },
        };
        Row { task, depth: 0, what }
    }

    /// One event as a stable line, for failure messages.
    pub(crate) fn line(&mut self, e: &Event) -> String {
        self.row(e, None, false).text()
    }

    pub(super) fn args(&mut self, name: &str, args: &[Arg], access: Option<&Access>) -> Vec<String> {
        let id = |i: usize| access.and_then(|a| a.fd_ids.iter().find(|(k, _)| *k == i).map(|(_, id)| *id));
        args.iter().enumerate().map(|(i, a)| self.arg(name, i, a, id(i))).collect()
    }
}

/// A value shown in hex that is a user-space address: at 4 GiB or more,
/// below the top of x86_64's user half.
fn looks_like_address(v: u64) -> bool {
    (0x1_0000_0000..0x8000_0000_0000).contains(&v)
}

/// Whether argument `i` of syscall `name` is a pid or tid.
fn pid_arg(name: &str, i: usize) -> bool {
    match name {
        "kill" | "tkill" | "wait4" | "rt_sigqueueinfo" | "pidfd_open" | "getpgid" | "getsid" | "prlimit64"
        | "sched_setaffinity" | "sched_getaffinity" | "sched_setscheduler" | "sched_getscheduler"
        | "sched_setparam" | "sched_getparam" | "sched_setattr" | "sched_getattr" | "get_robust_list"
        | "process_vm_readv" | "process_vm_writev" | "waitpid" => i == 0,
        "tgkill" | "rt_tgsigqueueinfo" | "setpgid" | "kcmp" => i <= 1,
        "waitid" | "ptrace" => i == 1,
        // libc's out-parameter: the pid of the child it started.
        "posix_spawn" | "posix_spawnp" | "pidfd_send_signal" => i == 0,
        _ => false,
    }
}

/// Whether syscall `name` returns a pid or tid.
fn pid_result(name: &str) -> bool {
    matches!(
        name,
        "clone"
            | "clone3"
            | "fork"
            | "vfork"
            | "getpid"
            | "gettid"
            | "getppid"
            | "getpgrp"
            | "getpgid"
            | "getsid"
            | "setsid"
            | "set_tid_address"
            | "wait4"
            | "waitpid"
            | "wait"
            | "wait3"
    )
}

/// Whether syscall `s` returns a new descriptor.
fn fd_result(s: &Syscall) -> bool {
    match s.name.as_ref() {
        "open" | "openat" | "openat2" | "creat" | "dup" | "dup2" | "dup3" | "socket" | "accept" | "accept4"
        | "epoll_create" | "epoll_create1" | "eventfd" | "eventfd2" | "timerfd_create" | "signalfd" | "signalfd4"
        | "inotify_init" | "inotify_init1" | "memfd_create" | "pidfd_open" | "pidfd_getfd" | "perf_event_open"
        | "userfaultfd" | "fanotify_init" | "io_uring_setup" | "open_tree" | "fsopen" | "fsmount" | "fspick"
        | "open_by_handle_at" | "memfd_secret" | "mq_open" => true,
        "fcntl" => matches!(s.args.get(1), Some(Arg::Flags { text, .. }) if text.starts_with("F_DUPFD")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_ports_and_tasks() {
        let mut n = Normalizer {
            filters: Filters::default(),
            ids: HashMap::new(),
            fds: HashMap::new(),
            ports: HashMap::new(),
            conns: HashMap::new(),
        };
        assert_eq!(
            n.ports("sin_port=htons(80), sin_port=htons(40000), htons(40001), htons(40000)"),
            "sin_port=htons(80), sin_port=htons(<port1>), htons(<port2>), htons(<port1>)"
        );
        assert_eq!(n.words("process 4242 and thread 4243, process 4242"), "process 1 and thread 2, process 1");
    }
}
