//! What the raw events of a trace imply: the process tree, the program each
//! process ran at each moment, and the file or socket behind every path and
//! descriptor a syscall names.
//!
//! Paths are resolved the way the kernel would, as far as the trace tells:
//! relative to the process's working directory (followed through `chdir`
//! and `fchdir` from the directory the command started in) or to the
//! directory a descriptor names, lexically (`..` is not checked against
//! symlinks). Descriptors are followed through `open`, `dup`, `fcntl`,
//! `close`, `fork` and close-on-exec. Paths are bytes, as the program
//! passed them: two names that differ in a byte that is not UTF-8 stay
//! two names.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use foldhash::{HashMap, HashSet};
use std::sync::Arc;

use crate::coverage::TracerKind;
use crate::event::{Arg, EventKind, SockAddr, Syscall};
use crate::fds::{int_arg, FdTable};
use crate::trace::model::{Process, Trace};
use crate::trace::LibcStartKind;

/// A path as far as the trace can tell where it points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// An absolute, lexically normalized path.
    Abs(OsString),
    /// Relative to the directory the command started in, which the trace
    /// does not record.
    Rel(OsString),
    /// Where it points cannot be told, and why.
    Unknown(&'static str),
}

impl Resolved {
    /// The path: absolute, relative, or `None` when unknown.
    pub(crate) fn as_os(&self) -> Option<&OsStr> {
        match self {
            Resolved::Abs(p) | Resolved::Rel(p) => Some(p),
            Resolved::Unknown(_) => None,
        }
    }

    /// The path as text for messages (see [`crate::event::shown`]).
    pub(crate) fn shown(&self) -> Option<std::borrow::Cow<'_, str>> {
        self.as_os().map(crate::event::shown)
    }

    fn join(&self, rel: impl AsRef<OsStr>) -> Resolved {
        let rel = rel.as_ref();
        if rel.as_bytes().starts_with(b"/") {
            return Resolved::Abs(normalize(rel));
        }
        match self {
            Resolved::Abs(base) => Resolved::Abs(normalize(joined(base, rel))),
            Resolved::Rel(base) if base.is_empty() => Resolved::Rel(normalize_rel(rel)),
            Resolved::Rel(base) => Resolved::Rel(normalize_rel(joined(base, rel))),
            Resolved::Unknown(why) => Resolved::Unknown(why),
        }
    }
}

/// `base/rel`.
pub(crate) fn joined(base: &OsStr, rel: &OsStr) -> OsString {
    OsString::from_vec([base.as_bytes(), b"/", rel.as_bytes()].concat())
}

/// `/a/./b//c/../d` as `/a/b/d`; `..` above the root stays at the root.
pub(crate) fn normalize(path: impl AsRef<OsStr>) -> OsString {
    let path = path.as_ref();
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in path.as_bytes().split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    OsString::from_vec([&b"/"[..], &parts.join(&b'/')].concat())
}

/// A relative path normalized, keeping leading `..`s.
fn normalize_rel(path: impl AsRef<OsStr>) -> OsString {
    let path = path.as_ref();
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in path.as_bytes().split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." if parts.last().is_some_and(|p| *p != b"..") => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    OsString::from_vec(parts.join(&b'/'))
}

/// What a descriptor refers to.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum FdTarget {
    /// A file or directory opened by path.
    File(Resolved),
    /// A socket of address family `family` (`AF_INET`...), connected to
    /// `peer` when it was.
    Socket { family: i32, peer: Option<SockAddr> },
    /// Something else the trace saw created (an eventfd, a memfd...).
    Other,
    /// A socket that was open when probity attached, other than a Unix
    /// one: it may be a network connection whose peer the trace never saw.
    BeforeAttach,
}

#[derive(Clone, Debug)]
struct FdEntry {
    target: Arc<FdTarget>,
    /// Which descriptor this is, in the whole trace: each one a call
    /// created has its own, whatever number the kernel gave it.
    id: usize,
}

/// The paths and descriptor of one syscall, resolved.
#[derive(Clone, Debug, Default)]
pub(crate) struct Access {
    /// Each filesystem path argument: its index and where it points.
    pub paths: Vec<(usize, Resolved)>,
    /// What the syscall's first descriptor argument referred to, when the
    /// syscall names no path (a `write`, an `fstat`, a `connect`).
    pub fd: Option<Arc<FdTarget>>,
    /// Each descriptor argument the trace saw created: its index and the
    /// descriptor's id.
    pub fd_ids: Vec<(usize, usize)>,
    /// The id of the descriptor the call created, when it created one.
    pub new_fd: Option<usize>,
}

impl Access {
    /// The file the syscall works on: its paths, or its descriptor's file.
    pub(crate) fn targets(&self) -> impl Iterator<Item = &Resolved> {
        let fd_file = match self.fd.as_deref() {
            Some(FdTarget::File(r)) => Some(r),
            _ => None,
        };
        self.paths.iter().map(|(_, r)| r).chain(fd_file)
    }
}

/// The state of one process: its working directory and descriptors.
#[derive(Clone, Debug)]
struct ProcState {
    cwd: Resolved,
    fds: FdTable<FdEntry>,
    /// The table holds every descriptor of the process (seeded from
    /// `/proc` when probity attached), so a call that makes descriptors
    /// without naming them (`pipe2`, `socketpair`) got the lowest free
    /// numbers. A call that may bring in unseen ones (`recvmsg`) ends it.
    complete: bool,
}

/// What `/proc/PID/fd` names an io_uring by.
pub(crate) const IO_URING_TARGET: &str = "anon_inode:[io_uring]";

/// A process running when probity attached: its working directory and
/// descriptors as `/proc` showed them. A socket other than a Unix one is
/// [`FdTarget::BeforeAttach`]: what it is connected to is unknown, and the
/// network checks fail closed over its use.
fn attached_state(p: &crate::trace::AttachedProcess, start_cwd: &Resolved) -> ProcState {
    let cwd = match &p.cwd {
        Some(d) if d.starts_with('/') => Resolved::Abs(normalize(d)),
        _ => start_cwd.clone(),
    };
    let mut fds = FdTable::default();
    for d in &p.descriptors {
        let target = match d.socket {
            Some(crate::trace::SocketKind::Network) => FdTarget::BeforeAttach,
            Some(crate::trace::SocketKind::Unix) => FdTarget::Socket { family: libc::AF_UNIX, peer: None },
            // An io_uring set up before: left unknown, so that using it is
            // a blind spot (see `blind_spots`).
            None if d.target == IO_URING_TARGET => continue,
            None if d.target.starts_with('/') => FdTarget::File(Resolved::Abs(normalize(&d.target))),
            None => FdTarget::Other,
        };
        fds.insert(d.fd, FdEntry { target: Arc::new(target), id: 0 }, d.cloexec);
    }
    // A call under way at attach time may have made a descriptor the
    // trace never sees; these make none.
    const NO_NEW_FD: &[&str] = &[
        "read",
        "write",
        "readv",
        "writev",
        "pread64",
        "pwrite64",
        "wait4",
        "waitid",
        "nanosleep",
        "clock_nanosleep",
        "futex",
        "poll",
        "ppoll",
        "select",
        "pselect6",
        "epoll_wait",
        "epoll_pwait",
        "epoll_pwait2",
        "pause",
        "rt_sigsuspend",
        "rt_sigtimedwait",
        "sched_yield",
        "connect",
        "sendto",
        "sendmsg",
        "flock",
        "fsync",
    ];
    let complete = p.in_flight.iter().all(|c| NO_NEW_FD.contains(&c.syscall.as_str()));
    ProcState { cwd, fds, complete }
}

impl Trace {
    /// The processes of the tree, by pid, with the tracers that covered
    /// each.
    ///
    /// ```no_run
    /// let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// let procs = trace.processes();
    /// assert_eq!(procs.len(), 1);
    /// # Ok::<(), probity::Error>(())
    /// ```
    #[must_use]
    pub fn processes(&self) -> BTreeMap<u32, Process> {
        Index::new(self).procs
    }

    /// The process `pid`, when the trace has it.
    ///
    /// ```no_run
    /// let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// let root = trace.process(trace.outcome.root_pid).unwrap();
    /// assert_eq!(root.parent, None);
    /// # Ok::<(), probity::Error>(())
    /// ```
    #[must_use]
    pub fn process(&self, pid: u32) -> Option<Process> {
        Index::new(self).procs.remove(&pid)
    }
}

/// Whether `tracer`, active for the run, covered process `p`. The
/// eBPF tracer follows every task of the tree except those it could not
/// add to its task map (shown by a fork marked `untracked`); the preload
/// library every image it was loaded in, so not the processes
/// [`Outcome::uncovered`](crate::Outcome::uncovered) lists for it
/// (`uncovered` holds them, with their tracer).
fn covers(tracer: TracerKind, p: &Process, uncovered: &HashSet<(u32, TracerKind)>) -> bool {
    !p.untracked && !uncovered.contains(&(p.pid, tracer))
}

/// What a libc call says about processes, in a trace without the kernel
/// tracer (where it is the only account of them).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum LibcProc<'t> {
    /// `fork` or `clone` returned `child` to the caller.
    Fork { child: u32, thread: bool },
    /// `posix_spawn` or `posix_spawnp` created `child`, which exec'd
    /// `program` (as given: `posix_spawnp` searches `PATH`).
    Spawn { child: u32, program: &'t OsStr, argv: &'t [OsString] },
    /// An `exec*` function did not return: the caller exec'd `program`
    /// (as given; `None` for `fexecve`, which names a descriptor).
    Exec { program: Option<&'t OsStr>, argv: &'t [OsString] },
    /// `system` or `popen` ran `/bin/sh -c command` in a child whose pid
    /// the call does not give.
    Shell { command: &'t OsStr },
}

/// What libc call `e` says about processes, when it made or replaced one.
/// Only calls that succeeded count: an `exec*` that returned failed.
pub(crate) fn libc_proc(e: &crate::event::Event) -> Option<LibcProc<'_>> {
    let c = e.as_libc()?;
    let str_at = |i: usize| match c.args.get(i) {
        Some(Arg::Path { path, .. }) => Some(path.as_os_str()),
        _ => None,
    };
    let argv_at = |i: usize| match c.args.get(i) {
        Some(Arg::Strings { items, .. }) => items.as_slice(),
        _ => &[],
    };
    let pid = |a: Option<&Arg>| match a {
        Some(Arg::Int(n)) => u32::try_from(*n).ok().filter(|&n| n > 0),
        _ => None,
    };
    match c.function.as_str() {
        "fork" | "clone" => {
            let thread = matches!(c.args.first(), Some(Arg::Hex(f)) if f & libc::CLONE_THREAD as u64 != 0);
            pid(c.ret.as_ref()).map(|child| LibcProc::Fork { child, thread })
        }
        "posix_spawn" | "posix_spawnp" if matches!(c.ret, Some(Arg::Int(0))) => {
            Some(LibcProc::Spawn { child: pid(c.args.first())?, program: str_at(1)?, argv: argv_at(2) })
        }
        "execve" | "execv" | "execvp" | "execvpe" | "execl" | "execle" | "execlp"
            if c.ret.is_none() && c.errno.is_none() =>
        {
            Some(LibcProc::Exec { program: Some(str_at(0)?), argv: argv_at(1) })
        }
        "fexecve" if c.ret.is_none() && c.errno.is_none() => Some(LibcProc::Exec { program: None, argv: argv_at(1) }),
        // The `syscall()` wrapper: the number, then that syscall's arguments.
        "syscall" => match c.args.first() {
            Some(&Arg::Int(nr)) if nr == libc::SYS_execve && c.ret.is_none() && c.errno.is_none() => {
                Some(LibcProc::Exec { program: Some(str_at(1)?), argv: argv_at(2) })
            }
            Some(&Arg::Int(nr)) if nr == libc::SYS_execveat && c.ret.is_none() && c.errno.is_none() => {
                Some(LibcProc::Exec { program: Some(str_at(2)?), argv: argv_at(3) })
            }
            Some(&Arg::Int(nr)) if nr == libc::SYS_fork || nr == libc::SYS_clone => {
                pid(c.ret.as_ref()).map(|child| LibcProc::Fork { child, thread: false })
            }
            _ => None,
        },
        "system" if !matches!(c.ret, Some(Arg::Int(-1))) => Some(LibcProc::Shell { command: str_at(0)? }),
        "popen" if !matches!(c.ret, Some(Arg::Ptr(0))) && c.errno.is_none() => {
            Some(LibcProc::Shell { command: str_at(0)? })
        }
        _ => None,
    }
}

/// Whether the kernel tracer ran: without it, processes, forks and execs
/// are what the libc calls recorded say ([`libc_proc`]).
pub(crate) fn kernel_traced(trace: &Trace) -> bool {
    trace.outcome.tracers.contains(&TracerKind::Ebpf)
}

/// Everything derived from a trace's events, built once per query.
pub(crate) struct Index<'t> {
    pub trace: &'t Trace,
    pub procs: BTreeMap<u32, Process>,
    /// Per pid, the indexes of its exec events, in order.
    execs: HashMap<u32, Vec<usize>>,
    /// Per pid, the exec event of the program its parent ran when it forked.
    inherited: HashMap<u32, usize>,
    /// Per event, its resolved paths and descriptor (syscalls only).
    access: Vec<Option<Box<Access>>>,
    /// Without the kernel tracer: the processes whose last program the
    /// preload library cannot be loaded in, with that program and why.
    pub libc_uncovered: BTreeMap<u32, (OsString, &'static str)>,
}

impl<'t> Index<'t> {
    pub(crate) fn new(trace: &'t Trace) -> Index<'t> {
        let mut idx = Index {
            trace,
            procs: BTreeMap::new(),
            execs: HashMap::default(),
            inherited: HashMap::default(),
            access: Vec::new(),
            libc_uncovered: BTreeMap::new(),
        };
        idx.build_processes();
        idx.build_access();
        idx
    }

    fn build_processes(&mut self) {
        let trace = self.trace;
        let root = trace.outcome.root_pid;
        self.procs.entry(root).or_insert_with(|| Process { pid: root, threads: vec![root], ..Default::default() });
        let pids: HashSet<u32> = trace.events.iter().map(|e| e.pid).collect();
        let kernel = kernel_traced(trace);
        // A fork's child is a thread when it later shows up with its
        // parent's pid; collect forks first.
        let mut forks = Vec::new();
        let mut spawned = Vec::new();
        let mut seen: HashSet<(u32, u32)> = HashSet::default();
        for (i, e) in trace.events.iter().enumerate() {
            let p = self.procs.entry(e.pid).or_insert_with(|| Process { pid: e.pid, ..Default::default() });
            if seen.insert((e.pid, e.tid)) && !p.threads.contains(&e.tid) {
                if e.tid == e.pid {
                    p.threads.insert(0, e.tid);
                } else {
                    p.threads.push(e.tid);
                }
            }
            match &e.kind {
                EventKind::Fork(f) => forks.push((i, e.pid, f.child_tid, f.untracked)),
                EventKind::Exec(x) => {
                    p.execs.push((x.filename.clone(), x.argv.clone()));
                    self.execs.entry(e.pid).or_default().push(i);
                }
                EventKind::Exit(x) if x.process_exited => p.exit = x.status,
                EventKind::Libc(_) if !kernel => match libc_proc(e) {
                    Some(LibcProc::Fork { child, thread: false }) => forks.push((i, e.pid, child, false)),
                    Some(LibcProc::Spawn { child, program, argv }) => {
                        forks.push((i, e.pid, child, false));
                        spawned.push((i, child, program, argv));
                    }
                    Some(LibcProc::Exec { program, argv }) => {
                        let program = program.map_or_else(|| OsString::from("?"), OsStr::to_owned);
                        p.execs.push((program, argv.to_vec()));
                        self.execs.entry(e.pid).or_default().push(i);
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        if !kernel {
            // A process the records say was created is in the tree even
            // when it recorded nothing itself; a `clone` child that shows
            // up as a thread of its caller is not a process.
            let threads: HashSet<u32> = trace.events.iter().filter(|e| e.tid != e.pid).map(|e| e.tid).collect();
            for &(_, _, child, _) in &forks {
                if child != root && !threads.contains(&child) {
                    self.procs.entry(child).or_insert_with(|| Process {
                        pid: child,
                        threads: vec![child],
                        ..Default::default()
                    });
                }
            }
            for &(i, child, program, argv) in &spawned {
                if let Some(c) = self.procs.get_mut(&child) {
                    c.execs.insert(0, (program.to_owned(), argv.to_vec()));
                    self.execs.entry(child).or_default().insert(0, i);
                }
            }
        }
        for (i, parent, child, untracked) in forks {
            if child == parent || child == root {
                continue;
            }
            if untracked && !pids.contains(&child) {
                self.procs.entry(child).or_insert_with(|| Process {
                    pid: child,
                    parent: Some(parent),
                    threads: vec![child],
                    untracked: true,
                    ..Default::default()
                });
                continue;
            }
            let is_new_process = self.procs.get(&child).is_some_and(|c| c.parent.is_none());
            if !is_new_process {
                continue;
            }
            if let Some(c) = self.procs.get_mut(&child) {
                c.parent = Some(parent);
            }
            if let Some(img) = self.image_index_at(parent, trace.events[i].ts_ns) {
                self.inherited.insert(child, img);
            }
        }
        if let Some(a) = &trace.outcome.attach {
            // Running when probity attached: their parents are known
            // from /proc, not from a fork in the trace.
            for p in &a.processes {
                let attached_parent = a.process(p.ppid).is_some();
                let q = self.procs.entry(p.pid).or_insert_with(|| Process {
                    pid: p.pid,
                    threads: vec![p.pid],
                    ..Default::default()
                });
                if attached_parent && q.parent.is_none() && p.pid != p.ppid {
                    q.parent = Some(p.ppid);
                }
            }
        }
        if !kernel {
            self.place_by_starts();
        }
        let active = &trace.outcome.tracers;
        let mut uncovered: HashSet<(u32, TracerKind)> =
            trace.outcome.uncovered.iter().map(|u| (u.pid, u.tracer)).collect();
        if !kernel {
            self.find_libc_uncovered();
            uncovered.extend(self.libc_uncovered.keys().map(|&pid| (pid, TracerKind::Preload)));
        }
        for p in self.procs.values_mut() {
            p.tracers = active.iter().copied().filter(|&t| covers(t, p, &uncovered)).collect();
        }
    }

    /// Without the kernel tracer: the root's own exec, which probity made
    /// before the library loaded, and the parent each process's library
    /// reported (`getppid`) for those no recorded call created: children
    /// of `vfork`, `system`, `popen` and raw clones.
    fn place_by_starts(&mut self) {
        let trace = self.trace;
        let Some(starts) = &trace.outcome.libc_starts else { return };
        let root = trace.outcome.root_pid;
        if let Some(r) = self.procs.get_mut(&root) {
            let argv = starts.root_argv.iter().map(OsString::from).collect();
            r.execs.insert(0, (OsString::from(&starts.root_program), argv));
        }
        // The shells `system` and `popen` ran, by caller, in time order:
        // the pid of each is known only from its library's start.
        let mut shells: HashMap<u32, std::collections::VecDeque<(usize, &OsStr)>> = HashMap::default();
        for (i, e) in trace.events.iter().enumerate() {
            if let Some(LibcProc::Shell { command }) = libc_proc(e) {
                shells.entry(e.pid).or_default().push_back((i, command));
            }
        }
        for s in &starts.starts {
            if s.pid == root || s.ppid == 0 || s.ppid == s.pid || !self.procs.contains_key(&s.ppid) {
                continue;
            }
            let unnamed = self.procs.get(&s.pid).is_none_or(|p| p.execs.is_empty() && p.parent.is_none());
            if s.kind == LibcStartKind::Image && unnamed {
                let shell = shells.get_mut(&s.ppid).and_then(|q| {
                    q.iter().position(|&(i, _)| trace.events[i].ts_ns <= s.ts_ns).and_then(|at| q.remove(at))
                });
                if let Some((i, command)) = shell {
                    let p = self.procs.entry(s.pid).or_insert_with(|| Process {
                        pid: s.pid,
                        threads: vec![s.pid],
                        ..Default::default()
                    });
                    p.execs.push(("/bin/sh".into(), vec!["sh".into(), "-c".into(), command.to_owned()]));
                    self.execs.entry(s.pid).or_default().insert(0, i);
                }
            }
            let p = self.procs.entry(s.pid).or_insert_with(|| Process {
                pid: s.pid,
                threads: vec![s.pid],
                ..Default::default()
            });
            if p.parent.is_none() {
                p.parent = Some(s.ppid);
                if let Some(img) = self.image_index_at(s.ppid, s.ts_ns) {
                    self.inherited.entry(s.pid).or_insert(img);
                }
            }
        }
    }

    /// Without the kernel tracer, nothing records the images the library
    /// was not loaded in: a process whose last program, as an exec or
    /// spawn call named it, is static or setuid is not covered. The file
    /// is read as it is when the trace is queried; a name without a slash
    /// is looked up in probity's own `PATH` (the program's may differ), a
    /// relative path from the directory the command started in.
    fn find_libc_uncovered(&mut self) {
        let cwd = self.trace.outcome.cwd.as_deref().map(OsStr::new);
        // By program: a build runs the same tool many times.
        let mut seen: HashMap<&OsStr, Option<&'static str>> = HashMap::default();
        for p in self.procs.values() {
            let Some((program, _)) = p.execs.last() else { continue };
            let why = *seen.entry(program.as_os_str()).or_insert_with(|| {
                locate(program, cwd).and_then(|f| crate::preload::coverage::never_preloaded(f.as_os_str()))
            });
            if let Some(why) = why {
                self.libc_uncovered.insert(p.pid, (program.clone(), why));
            }
        }
    }

    /// The exec event of the program `pid` ran at `ts`.
    fn image_index_at(&self, pid: u32, ts: u64) -> Option<usize> {
        let own =
            self.execs.get(&pid).and_then(|v| v.iter().rev().find(|&&i| self.trace.events[i].ts_ns <= ts).copied());
        own.or_else(|| self.inherited.get(&pid).copied())
    }

    /// The program (exec'd path) and argv `pid` ran at `ts`, when known.
    pub(crate) fn image_at(&self, pid: u32, ts: u64) -> Option<(&'t OsStr, &'t [OsString])> {
        let i = self.image_index_at(pid, ts)?;
        let e = &self.trace.events[i];
        match &e.kind {
            EventKind::Exec(x) => Some((x.filename.as_os_str(), x.argv.as_slice())),
            _ => match libc_proc(e)? {
                LibcProc::Spawn { program, argv, .. } | LibcProc::Exec { program: Some(program), argv } => {
                    Some((program, argv))
                }
                _ => None,
            },
        }
    }

    /// Whether `pid` is `root` or descends from it.
    pub(crate) fn in_subtree(&self, root: u32, pid: u32) -> bool {
        let mut p = Some(pid);
        let mut hops = 0;
        while let Some(cur) = p {
            if cur == root {
                return true;
            }
            p = self.procs.get(&cur).and_then(|x| x.parent);
            hops += 1;
            if hops > self.procs.len() {
                return false;
            }
        }
        false
    }

    /// The resolved paths and descriptor of event `i`.
    pub(crate) fn access(&self, i: usize) -> Option<&Access> {
        self.access.get(i).and_then(|a| a.as_deref())
    }

    fn build_access(&mut self) {
        let trace = self.trace;
        let start_cwd = match &trace.outcome.cwd {
            Some(d) if d.starts_with('/') => Resolved::Abs(normalize(d)),
            _ => Resolved::Rel(OsString::new()),
        };
        let mut states: HashMap<u32, ProcState> = HashMap::default();
        let procs = &self.procs;
        let mut access: Vec<Option<Box<Access>>> = Vec::with_capacity(trace.events.len());
        let mut next_fd_id = 0;
        // Each attached process's descriptors, as /proc showed them, take
        // effect at the time they were read: its events before that (it
        // was in the session already) see an empty table, so data they
        // moved through an old descriptor is undecided, not judged by a
        // later picture.
        let mut seeds: HashMap<u32, (u64, ProcState)> = HashMap::default();
        if let Some(a) = &trace.outcome.attach {
            for p in &a.processes {
                states.insert(p.pid, ProcState { cwd: start_cwd.clone(), fds: FdTable::default(), complete: false });
                seeds.insert(p.pid, (p.described_ns, attached_state(p, &start_cwd)));
            }
        }
        for e in &trace.events {
            if let Some((at, _)) = seeds.get(&e.pid) {
                if e.ts_ns >= *at {
                    if let Some((_, seeded)) = seeds.remove(&e.pid) {
                        states.insert(e.pid, seeded);
                    }
                }
            }
            let st = states.entry(e.pid).or_insert_with(|| ProcState {
                cwd: start_cwd.clone(),
                fds: FdTable::default(),
                complete: false,
            });
            match &e.kind {
                EventKind::Syscall(s) => {
                    let mut a = resolve(st, s);
                    if let Some(e) = apply(st, s, &a).and_then(|fd| st.fds.get_mut(fd)) {
                        next_fd_id += 1;
                        e.id = next_fd_id;
                        a.new_fd = Some(next_fd_id);
                    }
                    access.push(Some(Box::new(a)));
                }
                // The syscalls a libc call makes update the tables; the
                // call itself is only resolved.
                EventKind::Libc(c) => {
                    let a = resolve_args(st, &c.args, |i, args| libc_path_arg(&c.function, i, args));
                    access.push(Some(Box::new(a)));
                }
                EventKind::Fork(f)
                    if f.child_tid != e.pid && procs.get(&f.child_tid).is_some_and(|c| c.parent == Some(e.pid)) =>
                {
                    // A new process starts with a copy of its parent's table.
                    let copy = st.clone();
                    states.insert(f.child_tid, copy);
                    access.push(None);
                }
                EventKind::Exec(_) => {
                    st.fds.exec();
                    access.push(None);
                }
                _ => access.push(None),
            }
        }
        // A libc call that returns a descriptor returns the one the first
        // syscall it made that returned that number created.
        let returns_fd = |i: usize| match trace.events[i].as_libc().and_then(|c| c.ret.as_ref()) {
            Some(Arg::Fd(fd)) => Some(i64::from(*fd)),
            _ => None,
        };
        for (k, x) in trace.events.iter().enumerate() {
            let (Some(i), Some(s)) = (x.parent(), x.as_syscall()) else { continue };
            if i >= k || s.ret.is_none() || returns_fd(i) != s.ret {
                continue;
            }
            let made = access[k].as_ref().and_then(|a| a.new_fd);
            if let (Some(id), Some(a)) = (made, access[i].as_mut()) {
                a.new_fd.get_or_insert(id);
            }
        }
        self.access = access;
    }
}

/// The file `program` (as an exec call named it) is, when it can be found:
/// a path as it is (relative ones from `cwd`), a bare name in `PATH`.
pub(crate) fn locate(program: &OsStr, cwd: Option<&OsStr>) -> Option<std::path::PathBuf> {
    let path = std::path::Path::new(program);
    if program.as_bytes().contains(&b'/') {
        return match cwd {
            Some(d) if path.is_relative() => Some(std::path::Path::new(d).join(path)),
            _ => Some(path.to_owned()),
        };
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(path)).find(|f| f.is_file())
}

/// Whether argument `i` (a string) of syscall `name` is a path the call
/// looks up, rather than a name, a link's content or an output.
pub(crate) fn is_lookup_path(name: &str, i: usize) -> bool {
    !matches!(
        (name, i),
        ("symlink" | "symlinkat", 0)
            | ("getxattr" | "lgetxattr" | "setxattr" | "lsetxattr" | "removexattr" | "lremovexattr", 1)
            | ("fgetxattr" | "fsetxattr" | "fremovexattr", 1)
            | ("readlink", 1)
            | ("readlinkat", 2)
            | ("getcwd" | "memfd_create" | "fsopen", _)
            | ("mount", 0)
    )
}

/// AT_EMPTY_PATH: the path is empty and the call is about the descriptor.
pub(crate) const AT_EMPTY_PATH: u64 = 0x1000;

fn resolve(st: &ProcState, s: &Syscall) -> Access {
    let mut a = resolve_args(st, &s.args, |i, _| is_lookup_path(&s.name, i));
    for (i, arg) in s.args.iter().enumerate() {
        if let Arg::Unreadable(_) = arg {
            // A path argument that could not be read: a lookup of unknown
            // target. Only the syscalls that capture paths have those.
            let spec = crate::decode::capture_spec(s.nr);
            let is_path = spec
                .captures
                .iter()
                .any(|c| usize::from(c.arg) == i && c.kind == probity_common::CaptureKind::CStr as u8);
            if is_path && is_lookup_path(&s.name, i) {
                a.paths.push((i, Resolved::Unknown("its path could not be read")));
            }
        }
    }
    a
}

/// Whether string argument `i` of libc function `f` is a file path.
fn libc_path_arg(f: &str, i: usize, args: &[Arg]) -> bool {
    let strings: Vec<usize> =
        args.iter().enumerate().filter(|(_, a)| matches!(a, Arg::Path { .. })).map(|(k, _)| k).collect();
    match f {
        "rename" | "renameat" | "renameat2" | "link" | "linkat" => true,
        "symlink" | "symlinkat" => strings.last() == Some(&i),
        "open" | "open64" | "openat" | "openat64" | "creat" | "creat64" | "fopen" | "fopen64" | "freopen"
        | "freopen64" | "unlink" | "unlinkat" | "remove" | "mkdir" | "mkdirat" | "rmdir" | "chmod" | "fchmodat"
        | "chown" | "lchown" | "fchownat" | "truncate" | "truncate64" | "stat" | "stat64" | "lstat" | "lstat64"
        | "fstatat" | "fstatat64" | "__xstat" | "__xstat64" | "__lxstat" | "__lxstat64" | "__fxstatat"
        | "__fxstatat64" | "statx" | "access" | "faccessat" | "euidaccess" | "eaccess" | "opendir" | "chdir"
        | "readlink" | "readlinkat" | "realpath" | "dlopen" | "execve" | "execv" | "execvp" | "execvpe" | "execl"
        | "execlp" | "execle" | "posix_spawn" | "posix_spawnp" | "utime" | "utimes" | "utimensat" | "mkfifo"
        | "mknod" | "mkstemp" | "mkdtemp" => strings.first() == Some(&i),
        _ => false,
    }
}

/// The paths (the string arguments `is_path` picks) and the descriptor of
/// a call with arguments `args`.
fn resolve_args(st: &ProcState, args: &[Arg], is_path: impl Fn(usize, &[Arg]) -> bool) -> Access {
    let mut a = Access::default();
    let empty_path_ok = args.iter().any(
        |x| matches!(x, Arg::Flags { value, text } if value & AT_EMPTY_PATH != 0 && text.contains("AT_EMPTY_PATH")),
    );
    for (i, arg) in args.iter().enumerate() {
        let Arg::Path { path, truncated } = arg else { continue };
        if !is_path(i, args) {
            continue;
        }
        let dirfd = match i.checked_sub(1).map(|j| &args[j]) {
            Some(Arg::Fd(d)) if *d != libc::AT_FDCWD => Some(*d),
            _ => None,
        };
        let r = if *truncated {
            Resolved::Unknown("its path was cut")
        } else if path.is_empty() && empty_path_ok {
            match dirfd.and_then(|d| st.fds.get(d)).map(|f| &*f.target) {
                Some(FdTarget::File(r)) => r.clone(),
                _ => Resolved::Unknown("it names a descriptor whose path is unknown"),
            }
        } else if path.as_bytes().starts_with(b"/") {
            Resolved::Abs(normalize(path))
        } else if let Some(d) = dirfd {
            match st.fds.get(d).map(|f| &*f.target) {
                Some(FdTarget::File(dir)) => dir.join(path),
                _ => Resolved::Unknown("it is relative to a descriptor whose path is unknown"),
            }
        } else {
            st.cwd.join(path)
        };
        a.paths.push((i, r));
    }
    for (i, x) in args.iter().enumerate() {
        if let Arg::Fd(d) = x {
            if let Some(e) = st.fds.get(*d) {
                a.fd_ids.push((i, e.id));
            }
        }
    }
    if a.paths.is_empty() {
        // The descriptor the call works on is its first one.
        a.fd = args
            .iter()
            .find_map(|x| match x {
                Arg::Fd(d) => Some(*d),
                _ => None,
            })
            .and_then(|d| st.fds.get(d))
            .map(|f| f.target.clone());
    }
    a
}

/// Updates a process's descriptors and directory after syscall `s`;
/// returns the descriptor it created, whose id is 0 until the caller
/// numbers it.
fn apply(st: &mut ProcState, s: &Syscall, a: &Access) -> Option<i32> {
    let ret = s.ret?;
    let ok = s.errno.is_none();
    let name = s.name.as_ref();
    let fd_arg = |n: usize| s.args.get(n).and_then(int_arg).and_then(|v| i32::try_from(v).ok());
    let new_fd = i32::try_from(ret).ok().filter(|_| ok);
    match name {
        "open" | "openat" | "openat2" | "creat" => {
            if let (Some(fd), Some((idx, path))) = (new_fd, a.paths.first()) {
                let flags = s.args.iter().skip(idx + 1).find_map(|x| match x {
                    Arg::Flags { value, .. } => Some(*value),
                    _ => None,
                });
                let cloexec = flags.is_some_and(|f| f & libc::O_CLOEXEC as u64 != 0);
                st.fds.insert(fd, FdEntry { target: Arc::new(FdTarget::File(path.clone())), id: 0 }, cloexec);
                return Some(fd);
            }
        }
        "socket" => {
            if let Some(fd) = new_fd {
                let family = fd_arg(0).unwrap_or(-1);
                let cloexec = s.args.get(1).and_then(int_arg).is_some_and(|t| t & i64::from(libc::SOCK_CLOEXEC) != 0);
                st.fds.insert(
                    fd,
                    FdEntry { target: Arc::new(FdTarget::Socket { family, peer: None }), id: 0 },
                    cloexec,
                );
                return Some(fd);
            }
        }
        "pipe" | "pipe2" | "socketpair" if ok && ret == 0 && st.complete => {
            // The kernel gave the two lowest free numbers.
            let (target, flags) = match name {
                "socketpair" => (FdTarget::Socket { family: fd_arg(0).unwrap_or(-1), peer: None }, fd_arg(1)),
                "pipe2" => (FdTarget::Other, fd_arg(1)),
                _ => (FdTarget::Other, None),
            };
            let cloexec = flags.is_some_and(|f| f & libc::O_CLOEXEC != 0);
            let target = Arc::new(target);
            for _ in 0..2 {
                let fd = st.fds.lowest_free();
                st.fds.insert(fd, FdEntry { target: Arc::clone(&target), id: 0 }, cloexec);
            }
        }
        "recvmsg" | "recvmmsg" | "io_uring_enter" if ok => {
            // Descriptors may have come in (SCM_RIGHTS, a registered
            // file) that the trace does not number.
            st.complete = false;
        }
        "accept" | "accept4" => {
            if let Some(fd) = new_fd {
                let family = match a.fd.as_deref() {
                    Some(FdTarget::Socket { family, .. }) => *family,
                    _ => -1,
                };
                let peer = s.args.iter().find_map(|x| match x {
                    Arg::Sockaddr(sa) => Some(sa.clone()),
                    _ => None,
                });
                st.fds.insert(fd, FdEntry { target: Arc::new(FdTarget::Socket { family, peer }), id: 0 }, false);
                return Some(fd);
            }
        }
        "connect" => {
            let connected = ok || s.errno.as_deref() == Some("EINPROGRESS");
            if let (true, Some(fd)) = (connected, fd_arg(0)) {
                let peer = s.args.iter().find_map(|x| match x {
                    Arg::Sockaddr(sa) => Some(sa.clone()),
                    _ => None,
                });
                if let Some(e) = st.fds.get_mut(fd) {
                    if let FdTarget::Socket { family, .. } = &*e.target {
                        e.target = Arc::new(FdTarget::Socket { family: *family, peer });
                    }
                }
            }
        }
        "dup" | "dup2" | "dup3" | "fcntl" | "close" | "close_range" => return st.fds.follow(s),
        "chdir" if ok => {
            if let Some((_, r)) = a.paths.first() {
                st.cwd = r.clone();
            }
        }
        "fchdir" if ok => {
            if let Some(FdTarget::File(r)) = a.fd.as_deref() {
                st.cwd = r.clone();
            }
        }
        "getcwd" if ok => {
            // The kernel's answer fixes a working directory the trace did
            // not know.
            if let Some(Arg::Path { path, truncated: false }) = s.args.first() {
                if path.as_bytes().starts_with(b"/") && !matches!(st.cwd, Resolved::Abs(_)) {
                    st.cwd = Resolved::Abs(normalize(path));
                }
            }
        }
        "eventfd" | "eventfd2" | "epoll_create" | "epoll_create1" | "timerfd_create" | "signalfd" | "signalfd4"
        | "inotify_init" | "inotify_init1" | "memfd_create" | "pidfd_open" | "pidfd_getfd" | "perf_event_open"
        | "userfaultfd" | "fanotify_init" | "io_uring_setup" | "memfd_secret" | "fsopen" | "fsmount" | "open_tree"
        | "open_by_handle_at" | "bpf" => {
            if let Some(fd) = new_fd.filter(|_| !matches!(name, "signalfd" | "signalfd4") || fd_arg(0) == Some(-1)) {
                st.fds.insert(fd, FdEntry { target: Arc::new(FdTarget::Other), id: 0 }, false);
                return Some(fd);
            }
        }
        _ => {}
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, Fork};
    use crate::trace::test_support::{exec, flags, path, sys, trace};

    fn targets(idx: &Index<'_>, i: usize) -> Vec<Resolved> {
        idx.access(i).map(|a| a.targets().cloned().collect()).unwrap_or_default()
    }

    #[test]
    fn follows_descriptors_directories_and_forks() {
        let abs = |p: &str| Resolved::Abs(p.into());
        let t = trace(
            vec![
                sys(
                    1,
                    10,
                    10,
                    "openat",
                    vec![
                        Arg::Fd(libc::AT_FDCWD),
                        path("d"),
                        flags(libc::O_RDONLY | libc::O_DIRECTORY, "O_RDONLY|O_DIRECTORY"),
                    ],
                    3,
                ),
                sys(
                    2,
                    10,
                    10,
                    "openat",
                    vec![
                        Arg::Fd(3),
                        path("f.txt"),
                        flags(libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC, "O_WRONLY|O_CREAT|O_CLOEXEC"),
                    ],
                    4,
                ),
                sys(3, 10, 10, "dup2", vec![Arg::Fd(4), Arg::Fd(1)], 1),
                sys(4, 10, 10, "write", vec![Arg::Fd(1), Arg::Bytes { data: b"x".to_vec(), len: 1 }, Arg::Int(1)], 1),
                sys(
                    5,
                    10,
                    10,
                    "newfstatat",
                    vec![Arg::Fd(4), path(""), Arg::Ptr(1), flags(0x1000, "AT_EMPTY_PATH")],
                    0,
                ),
                sys(6, 10, 10, "chdir", vec![path("/tmp")], 0),
                sys(7, 10, 10, "unlinkat", vec![Arg::Fd(libc::AT_FDCWD), path("../tmp/./g"), flags(0, "0")], 0),
                Event { ts_ns: 8, pid: 10, tid: 10, kind: EventKind::Fork(Fork { child_tid: 11, untracked: false }) },
                exec(9, 11, "/bin/true"),
                sys(10, 11, 11, "write", vec![Arg::Fd(4), Arg::Ptr(1), Arg::Int(1)], 1),
                sys(11, 11, 11, "write", vec![Arg::Fd(1), Arg::Ptr(1), Arg::Int(1)], 1),
                sys(12, 10, 10, "close", vec![Arg::Fd(4)], 0),
                sys(13, 10, 10, "write", vec![Arg::Fd(4), Arg::Ptr(1), Arg::Int(1)], -9),
                sys(14, 10, 10, "openat", vec![Arg::Fd(99), path("x")], -2),
            ],
            Some("/work"),
        );
        let idx = Index::new(&t);
        assert_eq!(targets(&idx, 0), [abs("/work/d")]);
        assert_eq!(targets(&idx, 1), [abs("/work/d/f.txt")], "relative to a directory descriptor");
        assert_eq!(targets(&idx, 3), [abs("/work/d/f.txt")], "through dup2");
        assert_eq!(targets(&idx, 4), [abs("/work/d/f.txt")], "AT_EMPTY_PATH is the descriptor");
        assert_eq!(targets(&idx, 6), [abs("/tmp/g")], "after chdir, normalized");
        // The child inherited the table; fd 4 was close-on-exec, fd 1 not.
        assert_eq!(targets(&idx, 9), []);
        assert_eq!(targets(&idx, 10), [abs("/work/d/f.txt")]);
        assert_eq!(targets(&idx, 12), [], "closed");
        assert_eq!(targets(&idx, 13), [Resolved::Unknown("it is relative to a descriptor whose path is unknown")]);
        assert_eq!(idx.procs[&11].parent, Some(10));
        assert_eq!(idx.image_at(11, 10).map(|(f, _)| f), Some(OsStr::new("/bin/true")));
        assert_eq!(idx.image_at(10, 10), None);
        // Descriptors get ids by the call that created them.
        let new = |i: usize| idx.access(i).and_then(|a| a.new_fd);
        assert_eq!((new(0), new(1), new(2), new(3)), (Some(1), Some(2), Some(3), None));
    }

    #[test]
    fn a_libc_call_returns_the_descriptor_its_syscall_created() {
        let child = |ts, name, args, ret, parent| {
            let mut e = sys(ts, 10, 10, name, args, ret);
            if let EventKind::Syscall(s) = &mut e.kind {
                s.parent = parent;
            }
            e
        };
        let libc_call = Event {
            ts_ns: 1,
            pid: 10,
            tid: 10,
            kind: EventKind::Libc(Box::new(crate::event::LibcCall {
                function: "accept".into(),
                args: vec![Arg::Fd(3)],
                ret: Some(Arg::Fd(5)),
                errno: None,
                duration_ns: 10,
                parent: None,
                injected: false,
            })),
        };
        let t = trace(
            vec![
                child(0, "socket", vec![Arg::Int(2), Arg::Int(1), Arg::Int(0)], 3, None),
                libc_call,
                // Made inside the call: one creates another number first.
                child(2, "eventfd2", vec![Arg::Int(0), Arg::Int(0)], 4, Some(1)),
                child(3, "accept4", vec![Arg::Fd(3), Arg::Ptr(0), Arg::Ptr(0), Arg::Int(0)], 5, Some(1)),
                // After it, on another thread's behalf: not its own.
                child(20, "dup", vec![Arg::Fd(5)], 6, None),
            ],
            Some("/work"),
        );
        let idx = Index::new(&t);
        let new = |i: usize| idx.access(i).and_then(|a| a.new_fd);
        assert_eq!((new(0), new(2), new(3), new(4)), (Some(1), Some(2), Some(3), Some(4)));
        assert_eq!(new(1), Some(3), "the accept4's descriptor, not the eventfd's");
    }

    #[test]
    fn without_a_starting_directory_relative_paths_stay_relative_until_getcwd() {
        let t = trace(
            vec![
                sys(1, 10, 10, "openat", vec![Arg::Fd(libc::AT_FDCWD), path("./a/../b")], 3),
                sys(2, 10, 10, "getcwd", vec![path("/srv"), Arg::Int(4096)], 5),
                sys(3, 10, 10, "openat", vec![Arg::Fd(libc::AT_FDCWD), path("c")], 4),
                sys(
                    4,
                    10,
                    10,
                    "openat",
                    vec![Arg::Fd(libc::AT_FDCWD), Arg::Path { path: "/very/long".into(), truncated: true }],
                    5,
                ),
            ],
            None,
        );
        let idx = Index::new(&t);
        assert_eq!(targets(&idx, 0), [Resolved::Rel("b".into())]);
        assert_eq!(targets(&idx, 2), [Resolved::Abs("/srv/c".into())]);
        assert_eq!(targets(&idx, 3), [Resolved::Unknown("its path was cut")]);
    }

    fn libc_call(ts_ns: u64, pid: u32, tid: u32, function: &str, args: Vec<Arg>, ret: Option<Arg>) -> Event {
        let errno = None;
        let call = crate::event::LibcCall {
            function: function.into(),
            args,
            ret,
            errno,
            duration_ns: 1,
            parent: None,
            injected: false,
        };
        Event { ts_ns, pid, tid, kind: EventKind::Libc(Box::new(call)) }
    }

    #[test]
    fn without_the_kernel_tracer_libc_calls_make_the_tree() {
        let argv = |a: &[&str]| Arg::Strings { items: a.iter().map(OsString::from).collect(), truncated: false };
        let mut t = trace(
            vec![
                libc_call(1, 10, 10, "fork", vec![], Some(Arg::Int(11))),
                libc_call(1, 11, 11, "fork", vec![], Some(Arg::Int(0))),
                libc_call(2, 11, 11, "execve", vec![path("/bin/cat"), argv(&["cat"]), Arg::Ptr(1)], None),
                // A failed exec replaced nothing.
                libc_call(3, 10, 10, "execvp", vec![path("nope"), argv(&["nope"])], Some(Arg::Int(-1))),
                libc_call(
                    4,
                    10,
                    10,
                    "posix_spawnp",
                    vec![Arg::Int(12), path("echo"), argv(&["echo", "x"])],
                    Some(Arg::Int(0)),
                ),
                // A thread, which records under its process's pid.
                libc_call(5, 10, 10, "clone", vec![Arg::Hex(0x10000), Arg::Ptr(1)], Some(Arg::Int(13))),
                libc_call(6, 10, 13, "close", vec![Arg::Fd(3)], Some(Arg::Int(0))),
                // Made by a vfork: no call names it.
                libc_call(7, 14, 14, "close", vec![Arg::Fd(3)], Some(Arg::Int(0))),
                libc_call(8, 10, 10, "system", vec![path("ls")], Some(Arg::Int(0))),
            ],
            Some("/work"),
        );
        t.outcome.tracers = vec![TracerKind::Preload];
        let idx = Index::new(&t);
        let pids: Vec<u32> = idx.procs.keys().copied().collect();
        assert_eq!(pids, [10, 11, 12, 14], "the clone made a thread");
        assert_eq!(idx.procs[&10].threads, [10, 13]);
        assert_eq!((idx.procs[&11].parent, idx.procs[&12].parent, idx.procs[&14].parent), (Some(10), Some(10), None));
        assert_eq!(idx.procs[&11].execs, [("/bin/cat".into(), vec!["cat".into()])]);
        assert_eq!(idx.procs[&12].execs, [("echo".into(), vec!["echo".into(), "x".into()])]);
        assert!(idx.procs[&10].execs.is_empty(), "the root's own exec is not recorded; a failed one is none");
        assert_eq!(idx.image_at(11, 3).map(|(f, _)| f), Some(OsStr::new("/bin/cat")));
        assert_eq!(idx.image_at(12, 5).map(|(f, _)| f), Some(OsStr::new("echo")));
        assert!(matches!(libc_proc(&t.events[8]), Some(LibcProc::Shell { command }) if command == "ls"));
        assert!(idx.procs.values().all(|p| p.tracers.contains(&TracerKind::Preload)));

        // With the kernel tracer, its events make the tree, not the calls.
        t.outcome.tracers = vec![TracerKind::Ebpf, TracerKind::Preload];
        let idx = Index::new(&t);
        assert_eq!(idx.procs[&11].parent, None);
        assert!(!idx.procs.contains_key(&12));
    }

    #[test]
    fn normalizes_lexically() {
        assert_eq!(normalize("/a/./b//c/../d"), "/a/b/d");
        assert_eq!(normalize("/../x"), "/x");
        assert_eq!(normalize("/"), "/");
        assert_eq!(normalize_rel("./a/../../b"), "../b");
        assert_eq!(Resolved::Abs("/tmp".into()).join("x/./y"), Resolved::Abs("/tmp/x/y".into()));
        assert_eq!(Resolved::Rel(OsString::new()).join("x"), Resolved::Rel("x".into()));
        assert_eq!(Resolved::Rel("d".into()).join("/abs"), Resolved::Abs("/abs".into()));
    }
}
