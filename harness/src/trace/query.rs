//! Queries: iterators over a trace's events that a test narrows with a
//! few filters, such as
//! `trace.syscalls().named("openat").path_glob("/tmp/**").failed()`.
//!
//! Each filter narrows the query (they combine with "and"). Filters that
//! need the process tree or resolved paths build an index of the trace
//! once, the first time a query needs it; events are never copied.

use std::cell::OnceCell;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::rc::Rc;

use crate::event::{Arg, Event, EventKind, NetOp, Syscall};
use crate::trace::classes::Class;
use crate::trace::index::{joined, normalize, Index, Resolved};
use crate::trace::{Process, Trace};

/// The answer of a filter for one event: a path that cannot be resolved
/// makes it unknown whether the event matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tri {
    Yes,
    No,
    Unknown(&'static str),
}

#[derive(Clone)]
pub(crate) enum PathMatch {
    Exact(OsString),
    Prefix(OsString),
    Glob(glob::Pattern),
}

impl PathMatch {
    fn is_match(&self, path: &OsStr) -> bool {
        match self {
            PathMatch::Exact(p) => path == p,
            PathMatch::Prefix(dir) => under(path, dir),
            // A glob is text: a name that is not UTF-8 is matched with its
            // odd bytes as U+FFFD, which only a wildcard matches.
            PathMatch::Glob(g) => g.matches_with(
                &path.to_string_lossy(),
                glob::MatchOptions {
                    case_sensitive: true,
                    require_literal_separator: true,
                    require_literal_leading_dot: false,
                },
            ),
        }
    }

    fn is_absolute(&self) -> bool {
        match self {
            PathMatch::Exact(p) | PathMatch::Prefix(p) => p.as_bytes().starts_with(b"/"),
            PathMatch::Glob(g) => g.as_str().starts_with('/'),
        }
    }
}

/// Whether `path` is `dir` or inside it, comparing whole components.
pub(crate) fn under(path: impl AsRef<OsStr>, dir: impl AsRef<OsStr>) -> bool {
    let (path, mut dir) = (path.as_ref().as_bytes(), dir.as_ref().as_bytes());
    while let Some(d) = dir.strip_suffix(b"/") {
        dir = d;
    }
    dir.is_empty() || path == dir || path.strip_prefix(dir).is_some_and(|rest| rest.starts_with(b"/"))
}

/// The last component of `path`: what follows its last `/`.
pub(crate) fn base_name(path: &OsStr) -> &OsStr {
    let b = path.as_bytes();
    OsStr::from_bytes(b.rsplit(|&c| c == b'/').next().unwrap_or(b))
}

/// `path` without its leading `./`s.
pub(crate) fn trim_dot_slash(path: &OsStr) -> &OsStr {
    let mut b = path.as_bytes();
    while let Some(rest) = b.strip_prefix(b"./") {
        b = rest;
    }
    OsStr::from_bytes(b)
}

#[derive(Clone)]
pub(crate) enum Filter<'t> {
    Kind(String),
    Pid(u32),
    Tid(u32),
    Subtree(u32),
    Program(String),
    Named(Vec<String>),
    Class(Class),
    Path(PathMatch),
    Ok,
    Failed,
    Injected,
    Errno(String),
    Window { from: u64, to: u64 },
    After(u64),
    Before(u64),
    Inside { tid: u32, from: u64, to: u64, outer: usize },
    Custom(Rc<dyn Fn(&Event) -> bool + 't>),
    OpenedForWrite,
    Flags(Vec<String>),
    NetOp(NetOp),
    Peer(ipnet::IpNet),
    PeerPort(u16),
    Host(String),
}

impl Filter<'_> {
    fn needs_index(&self) -> bool {
        matches!(self, Filter::Subtree(_) | Filter::Program(_) | Filter::Path(_))
    }

    /// Whether event `i` (`e`) passes the filter.
    fn eval(&self, e: &Event, i: usize, idx: Option<&Index<'_>>) -> Tri {
        let s = e.as_syscall();
        let yes = |b: bool| if b { Tri::Yes } else { Tri::No };
        match self {
            Filter::Kind(k) => yes(e.kind_name() == k),
            Filter::Pid(p) => yes(e.pid == *p),
            Filter::Tid(t) => yes(e.tid == *t),
            Filter::Subtree(root) => yes(idx.is_some_and(|x| x.in_subtree(*root, e.pid))),
            Filter::Program(name) => {
                let img = idx.and_then(|x| x.image_at(e.pid, e.ts_ns));
                // An exec event is about the program it starts.
                let img = match &e.kind {
                    EventKind::Exec(x) => Some(x.filename.as_os_str()),
                    _ => img.map(|(f, _)| f),
                };
                yes(img.is_some_and(|f| program_is(f, name)))
            }
            Filter::Named(names) => yes(s.is_some_and(|s| names.iter().any(|n| *n == s.name))),
            Filter::Class(c) => yes(s.is_some_and(|s| c.contains(&s.name))),
            Filter::Path(m) => path_eval(m, e, i, idx),
            Filter::Ok => yes(s.is_some_and(|s| s.ret.is_some() && !s.failed())),
            Filter::Failed => yes(s.is_some_and(Syscall::failed)),
            Filter::Injected => yes(s.is_some_and(|s| s.injected)),
            Filter::Errno(name) => yes(s.is_some_and(|s| s.errno.as_deref() == Some(name.as_str()))),
            Filter::Window { from, to } => yes(e.ts_ns >= *from && e.ts_ns <= *to),
            Filter::After(t) => yes(e.ts_ns > *t),
            Filter::Before(t) => yes(e.end_ns() < *t),
            Filter::Inside { tid, from, to, outer } => {
                yes(e.tid == *tid && e.ts_ns >= *from && e.end_ns() <= *to && !std::ptr::eq(e, *outer as *const Event))
            }
            Filter::Custom(f) => yes(f(e)),
            Filter::OpenedForWrite => opened_for_write(e),
            Filter::Flags(names) => yes(call_args(e).is_some_and(|args| has_flags(args, names))),
            Filter::NetOp(op) => yes(e.as_net().is_some_and(|n| n.op == *op)),
            Filter::Peer(net) => {
                yes(e.as_net().and_then(|n| n.peer).is_some_and(|p| net.contains(&crate::net::canonical(p.ip()))))
            }
            Filter::PeerPort(port) => yes(e.as_net().and_then(|n| n.peer).is_some_and(|p| p.port() == *port)),
            Filter::Host(h) => match e.as_net() {
                Some(n) if n.host.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(h)) => Tri::Yes,
                // The name an event carries is the program's own account
                // (or a DNS answer): that a peer is not `h` cannot be shown.
                Some(n) if n.peer.is_some() => Tri::Unknown(
                    "a host name matches only the peers the program resolved that name to (its getaddrinfo or gethostbyname calls, or DNS answers in the trace), so that another peer is not that host cannot be shown",
                ),
                _ => Tri::No,
            },
        }
    }

    fn describe(&self, start: u64) -> String {
        match self {
            Filter::Kind(k) => format!("of kind {k}"),
            Filter::Pid(p) => format!("in process {p}"),
            Filter::Tid(t) => format!("in thread {t}"),
            Filter::Subtree(p) => format!("in process {p} or its descendants"),
            Filter::Program(n) => format!("run by {n}"),
            Filter::Named(n) if n.len() == 1 => format!("named {}", n[0]),
            Filter::Named(n) => format!("named one of {}", n.join(", ")),
            Filter::Class(c) => format!("in class {c}"),
            Filter::Path(PathMatch::Exact(p)) => format!("on {}", crate::event::shown(p)),
            Filter::Path(PathMatch::Prefix(p)) => format!("on a path under {}", crate::event::shown(p)),
            Filter::Path(PathMatch::Glob(g)) => format!("on a path matching {}", g.as_str()),
            Filter::Ok => "that succeeded".into(),
            Filter::Failed => "that failed".into(),
            Filter::Injected => "that probity injected".into(),
            Filter::Errno(e) => format!("that failed with {e}"),
            Filter::Window { from, to } => {
                format!("starting between {} and {}", offset(*from, start), offset(*to, start))
            }
            Filter::After(t) => format!("starting after {}", offset(*t, start)),
            Filter::Before(t) => format!("ending before {}", offset(*t, start)),
            Filter::Inside { tid, from, to, .. } => {
                format!("of thread {tid} inside {}..{}", offset(*from, start), offset(*to, start))
            }
            Filter::Custom(_) => "matching a custom condition".into(),
            Filter::OpenedForWrite => "opening a file for writing".into(),
            Filter::Flags(names) if names.len() == 1 => format!("with flag {}", names[0]),
            Filter::Flags(names) => format!("with flags {}", names.join("|")),
            Filter::NetOp(op) => format!("of network op {}", op.name()),
            Filter::Peer(net) if net.prefix_len() == net.max_prefix_len() => format!("with peer {}", net.addr()),
            Filter::Peer(net) => format!("with a peer in {net}"),
            Filter::PeerPort(p) => format!("with peer port {p}"),
            Filter::Host(h) => format!("with a peer the program resolved from the host name {h}"),
        }
    }
}

/// The arguments of a syscall or libc call.
fn call_args(e: &Event) -> Option<&[Arg]> {
    match &e.kind {
        EventKind::Syscall(s) => Some(&s.args),
        EventKind::Libc(c) => Some(&c.args),
        _ => None,
    }
}

/// Whether every flag of `names` is among the flag arguments of `args`,
/// by the names the trace shows (`O_WRONLY|O_CREAT`).
fn has_flags(args: &[Arg], names: &[String]) -> bool {
    let shown: Vec<&str> = args
        .iter()
        .filter_map(|a| match a {
            Arg::Flags { text, .. } => Some(text.split('|')),
            _ => None,
        })
        .flatten()
        .collect();
    names.iter().all(|n| shown.contains(&n.as_str()))
}

/// Whether event `e` opens a file for writing: with `O_WRONLY`, `O_RDWR`,
/// `O_CREAT` or `O_TRUNC`, a `creat`, or an `fopen` mode other than `r`.
fn opened_for_write(e: &Event) -> Tri {
    const WRITES: u64 = (libc::O_ACCMODE | libc::O_CREAT | libc::O_TRUNC) as u64;
    let (name, args) = match &e.kind {
        EventKind::Syscall(s) => (s.name.as_ref(), s.args.as_slice()),
        // `open64`, `fopen64`: their plain forms.
        EventKind::Libc(c) => (c.function.strip_suffix("64").unwrap_or(&c.function), c.args.as_slice()),
        _ => return Tri::No,
    };
    let open_flags = || {
        args.iter().find_map(|a| match a {
            Arg::Flags { value, text } if text.starts_with("O_") => Some(*value),
            _ => None,
        })
    };
    match name {
        "creat" => Tri::Yes,
        "open" | "openat" => {
            if open_flags().is_some_and(|f| f & WRITES != 0) {
                Tri::Yes
            } else {
                Tri::No
            }
        }
        "openat2" if e.as_syscall().is_some() => {
            Tri::Unknown("an openat2's flags are in a structure probity does not read")
        }
        "openat2" => Tri::No,
        "fopen" | "freopen" => {
            // The mode is the second argument: `r` alone only reads.
            let mode = match args.get(1) {
                Some(Arg::Path { path, .. }) => Some(path.as_bytes()),
                _ => None,
            };
            match mode {
                Some(m) if m.starts_with(b"r") && !m.contains(&b'+') => Tri::No,
                Some(_) => Tri::Yes,
                None => Tri::Unknown("its mode could not be read"),
            }
        }
        _ => Tri::No,
    }
}

/// `+0.001234s`: a time from the start of the trace.
pub(crate) fn offset(ts: u64, start: u64) -> String {
    let d = ts.saturating_sub(start);
    format!("+{}.{:06}s", d / 1_000_000_000, (d / 1000) % 1_000_000)
}

/// Whether the exec'd path `program` is `name`: the same path when `name`
/// has a `/`, else the same file name.
pub(crate) fn program_is(program: impl AsRef<OsStr>, name: &str) -> bool {
    let (program, name) = (program.as_ref(), OsStr::new(name));
    if name.as_bytes().contains(&b'/') {
        program == name || normalize(program) == normalize(name)
    } else {
        base_name(program) == name
    }
}

fn path_eval(m: &PathMatch, e: &Event, i: usize, idx: Option<&Index<'_>>) -> Tri {
    let check = |r: &Resolved, unknown: &mut Option<&'static str>| -> bool {
        match r {
            Resolved::Abs(p) if m.is_absolute() => m.is_match(p),
            Resolved::Rel(p) if !m.is_absolute() => m.is_match(p),
            Resolved::Abs(_) => false,
            Resolved::Rel(_) => {
                unknown.get_or_insert("its path is relative to a starting directory the trace does not record");
                false
            }
            Resolved::Unknown(why) => {
                unknown.get_or_insert(why);
                false
            }
        }
    };
    let mut unknown = None;
    let hit = match &e.kind {
        EventKind::Syscall(_) | EventKind::Libc(_) => {
            idx.and_then(|x| x.access(i)).is_some_and(|a| a.targets().any(|r| check(r, &mut unknown)))
        }
        EventKind::Exec(x) => {
            let r = if x.filename.as_bytes().starts_with(b"/") {
                Resolved::Abs(normalize(&x.filename))
            } else {
                Resolved::Rel(x.filename.clone())
            };
            check(&r, &mut unknown)
        }
        _ => false,
    };
    match (hit, unknown) {
        (true, _) => Tri::Yes,
        (false, Some(why)) => Tri::Unknown(why),
        (false, None) => Tri::No,
    }
}

/// The shared core of [`Events`] and [`Syscalls`].
#[derive(Clone)]
pub(crate) struct Query<'t> {
    pub(crate) trace: &'t Trace,
    pub(crate) filters: Vec<Filter<'t>>,
    /// Only syscalls (a [`Syscalls`] query).
    pub(crate) syscalls_only: bool,
    pub(crate) label: Option<String>,
    index: Rc<OnceCell<Index<'t>>>,
    pos: usize,
}

impl<'t> Query<'t> {
    fn new(trace: &'t Trace, syscalls_only: bool) -> Self {
        Query { trace, filters: Vec::new(), syscalls_only, label: None, index: Rc::default(), pos: 0 }
    }

    /// The index, built the first time it is needed.
    pub(crate) fn index(&self) -> &Index<'t> {
        self.index.get_or_init(|| Index::new(self.trace))
    }

    fn needs_index(&self) -> bool {
        self.filters.iter().any(Filter::needs_index)
    }

    /// Whether event `i` matches every filter.
    pub(crate) fn eval(&self, i: usize) -> Tri {
        let e = &self.trace.events[i];
        if self.syscalls_only && e.as_syscall().is_none() {
            return Tri::No;
        }
        let idx = self.needs_index().then(|| self.index());
        let mut result = Tri::Yes;
        for f in &self.filters {
            match f.eval(e, i, idx) {
                Tri::Yes => {}
                Tri::No => return Tri::No,
                Tri::Unknown(why) => result = Tri::Unknown(why),
            }
        }
        result
    }

    /// The indexes of the matching events, and of the events whose match
    /// cannot be told, with why.
    pub(crate) fn partition(&self) -> (Vec<usize>, Vec<(usize, &'static str)>) {
        let mut hits = Vec::new();
        let mut unknown = Vec::new();
        for i in 0..self.trace.events.len() {
            match self.eval(i) {
                Tri::Yes => hits.push(i),
                Tri::Unknown(why) => unknown.push((i, why)),
                Tri::No => {}
            }
        }
        (hits, unknown)
    }

    /// The event kind the query is about, for coverage: `None` for any.
    pub(crate) fn family(&self) -> Option<String> {
        if self.syscalls_only {
            return Some("syscall".into());
        }
        for f in &self.filters {
            match f {
                Filter::Kind(k) => return Some(k.clone()),
                Filter::Named(_)
                | Filter::Class(_)
                | Filter::Ok
                | Filter::Failed
                | Filter::Injected
                | Filter::Errno(_)
                | Filter::OpenedForWrite
                | Filter::Flags(_) => return Some("syscall".into()),
                Filter::NetOp(_) | Filter::Peer(_) | Filter::PeerPort(_) | Filter::Host(_) => {
                    return Some("net".into())
                }
                _ => {}
            }
        }
        None
    }

    /// Whether the query cannot be about process `p` whatever it did: its
    /// pid, thread or subtree filters leave it out, or its program filter
    /// does and the trace knows what `p` ran.
    pub(crate) fn excludes(&self, p: &Process) -> bool {
        let idx = self.index();
        self.filters.iter().any(|f| match f {
            Filter::Pid(pid) => p.pid != *pid,
            Filter::Tid(t) => !p.threads.contains(t) && p.pid != *t,
            Filter::Subtree(root) => !idx.in_subtree(*root, p.pid),
            Filter::Program(name) => {
                if p.untracked || p.execs.is_empty() {
                    return false;
                }
                let inherited = idx.image_at(p.pid, 0).map(|(f, _)| f);
                !p.execs.iter().map(|(f, _)| f.as_os_str()).chain(inherited).any(|f| program_is(f, name))
            }
            _ => false,
        })
    }

    pub(crate) fn describe(&self) -> String {
        if let Some(l) = &self.label {
            return l.clone();
        }
        let noun = if self.syscalls_only { "syscalls" } else { "events" };
        let start = self.trace.start_ns();
        let parts: Vec<String> = self.filters.iter().map(|f| f.describe(start)).collect();
        if parts.is_empty() {
            noun.to_owned()
        } else {
            format!("{noun} {}", parts.join(", "))
        }
    }

    fn next_index(&mut self) -> Option<usize> {
        while self.pos < self.trace.events.len() {
            let i = self.pos;
            self.pos += 1;
            if self.eval(i) == Tri::Yes {
                return Some(i);
            }
        }
        None
    }

    fn resolve_pattern(&self, p: &OsStr) -> OsString {
        match (&self.trace.outcome.cwd, p.as_bytes().starts_with(b"/")) {
            (_, true) => normalize(p),
            (Some(cwd), false) if cwd.starts_with('/') => normalize(joined(OsStr::new(cwd), p)),
            (_, false) => trim_dot_slash(p).to_owned(),
        }
    }
}

macro_rules! filters {
    ($ty:ident, $ctor:literal) => {
        impl<'t> $ty<'t> {
            /// Only events of process `pid` (any of its threads).
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("let root_only = trace.", $ctor, "().pid(trace.outcome.root_pid).count();")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            pub fn pid(mut self, pid: u32) -> Self {
                self.0.filters.push(Filter::Pid(pid));
                self
            }

            /// Only events of thread `tid`.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("let main_thread = trace.", $ctor, "().tid(trace.outcome.root_pid).count();")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            pub fn tid(mut self, tid: u32) -> Self {
                self.0.filters.push(Filter::Tid(tid));
                self
            }

            /// Only events of process `pid` and the processes it forked,
            /// and theirs.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("let everything = trace.", $ctor, "().subtree(trace.outcome.root_pid).count();")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            pub fn subtree(mut self, pid: u32) -> Self {
                self.0.filters.push(Filter::Subtree(pid));
                self
            }

            /// Only events of processes while they run `program`: a path
            /// (`/usr/bin/cat`) or a file name (`cat`). An exec event is
            /// about the program it starts; a syscall about the program
            /// that made it, so the `execve` that starts `cat` is still the
            /// shell's.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("let by_cat = trace.", $ctor, "().program(\"cat\").count();")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            pub fn program(mut self, program: impl Into<String>) -> Self {
                self.0.filters.push(Filter::Program(program.into()));
                self
            }

            /// Only syscalls named `name`, such as `openat`.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("let opens = trace.", $ctor, "().named(\"openat\").count();")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            pub fn named(mut self, name: impl Into<String>) -> Self {
                self.0.filters.push(Filter::Named(vec![name.into()]));
                self
            }

            /// Only syscalls named any of `names`.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("let opens = trace.", $ctor, "().named_any([\"open\", \"openat\"]).count();")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            pub fn named_any<I, S>(mut self, names: I) -> Self
            where
                I: IntoIterator<Item = S>,
                S: Into<String>,
            {
                self.0.filters.push(Filter::Named(names.into_iter().map(Into::into).collect()));
                self
            }

            /// Only syscalls in strace's class `class` (`%file`, `%net`...).
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("let net = trace.", $ctor, "().class(probity::Class::Network).count();")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            pub fn class(mut self, class: Class) -> Self {
                self.0.filters.push(Filter::Class(class));
                self
            }

            /// Only events on the file `path`: a syscall that names it (after
            /// resolving a relative path or a directory descriptor) or works
            /// on a descriptor opened on it, or an exec of it. A relative
            /// `path` is taken from the directory the command started in.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("let hostname = trace.", $ctor, "().path(\"/etc/hostname\").count();")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            pub fn path(mut self, path: impl AsRef<std::path::Path>) -> Self {
                let p = self.0.resolve_pattern(path.as_ref().as_os_str());
                self.0.filters.push(Filter::Path(PathMatch::Exact(p)));
                self
            }

            /// Only events on `dir` or a path inside it (whole components:
            /// `/tmp/a` is not under `/tmp/ab`).
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("let in_etc = trace.", $ctor, "().path_prefix(\"/etc\").count();")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            pub fn path_prefix(mut self, dir: impl AsRef<std::path::Path>) -> Self {
                let p = self.0.resolve_pattern(dir.as_ref().as_os_str());
                self.0.filters.push(Filter::Path(PathMatch::Prefix(p)));
                self
            }

            /// Only events on a path matching the shell pattern `pattern`:
            /// `*` and `?` within a component, `[abc]`, and `**` for any
            /// number of components.
            ///
            /// # Panics
            ///
            /// If `pattern` is not a valid pattern (an unclosed `[`): a
            /// typo in a test should fail loudly.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("let libs = trace.", $ctor, "().path_glob(\"/usr/lib/**/*.so*\").count();")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            #[track_caller]
            pub fn path_glob(mut self, pattern: &str) -> Self {
                let p = self.0.resolve_pattern(OsStr::new(pattern));
                let g = glob::Pattern::new(&p.to_string_lossy())
                    .unwrap_or_else(|e| panic!("invalid path pattern {pattern:?}: {e}"));
                self.0.filters.push(Filter::Path(PathMatch::Glob(g)));
                self
            }

            /// Only syscalls that returned without an error.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("let ok = trace.", $ctor, "().ok().count();")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            pub fn ok(mut self) -> Self {
                self.0.filters.push(Filter::Ok);
                self
            }

            /// Only opens for writing: `open`, `openat` (and libc's `open`,
            /// `fopen`, `freopen`) with `O_WRONLY` or `O_RDWR`, or with
            /// `O_CREAT` or `O_TRUNC`, which change the file too; and every
            /// `creat`. An `openat2`'s flags are in a structure probity does
            /// not read: whether it opened for writing is unknown, so
            /// absence checks over this filter fail as undecided on one.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("let writers = trace.", $ctor, "().opened_for_write().path_prefix(\"/etc\").count();")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            pub fn opened_for_write(mut self) -> Self {
                self.0.filters.push(Filter::OpenedForWrite);
                self
            }

            /// Only calls with every flag of `flags` among their flag
            /// arguments, by name as the trace shows them: `"O_WRONLY"`,
            /// `"O_CREAT|O_EXCL"`, `"MAP_SHARED"`, `"AT_REMOVEDIR"`.
            ///
            /// # Panics
            ///
            /// If `flags` names no flag (it is empty or all `|`): a typo in
            /// a test should fail loudly.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("let exclusive = trace.", $ctor, "().flags(\"O_CREAT|O_EXCL\").count();")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            #[track_caller]
            pub fn flags(mut self, flags: &str) -> Self {
                let names: Vec<String> =
                    flags.split('|').map(str::trim).filter(|f| !f.is_empty()).map(str::to_owned).collect();
                assert!(!names.is_empty(), "`{flags}` names no flag");
                self.0.filters.push(Filter::Flags(names));
                self
            }

            /// Only syscalls that failed.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("let failed = trace.", $ctor, "().failed().count();")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            pub fn failed(mut self) -> Self {
                self.0.filters.push(Filter::Failed);
                self
            }

            /// Only syscalls probity answered instead of the kernel: the
            /// calls a fault-injection rule chose (see
            /// [`Tracer::with_inject`](crate::Tracer::with_inject)).
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("let injected = trace.", $ctor, "().injected().count();")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            pub fn injected(mut self) -> Self {
                self.0.filters.push(Filter::Injected);
                self
            }

            /// Only syscalls that failed with errno `name`, such as `ENOENT`.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("let missing = trace.", $ctor, "().errno(\"ENOENT\").count();")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            pub fn errno(mut self, name: impl Into<String>) -> Self {
                self.0.filters.push(Filter::Errno(name.into()));
                self
            }

            /// Only events that start between `from_ns` and `to_ns`
            /// (`CLOCK_MONOTONIC` nanoseconds, as [`Event::ts_ns`], both
            /// included).
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            /// let start = trace.start_ns();
            #[doc = concat!("let first_ms = trace.", $ctor, "().between(start, start + 1_000_000).count();")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            pub fn between(mut self, from_ns: u64, to_ns: u64) -> Self {
                self.0.filters.push(Filter::Window { from: from_ns, to: to_ns });
                self
            }

            /// Only events that start after `event` ended.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            /// let exec = trace.events().kind("exec").next().unwrap();
            #[doc = concat!("let later = trace.", $ctor, "().after(exec).count();")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            pub fn after(mut self, event: &Event) -> Self {
                self.0.filters.push(Filter::After(event.end_ns()));
                self
            }

            /// Only events that end before `event` starts.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            /// let exit = trace.events().kind("exit").last().unwrap();
            #[doc = concat!("let earlier = trace.", $ctor, "().before(exit).count();")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            pub fn before(mut self, event: &Event) -> Self {
                self.0.filters.push(Filter::Before(event.ts_ns));
                self
            }

            /// Only events nested in `outer`: events of the same thread that
            /// start and end within it, such as the syscalls (and libc
            /// calls) a libc call made, which [`Event::parent`] links to it.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            /// let execve = trace.syscalls().named("execve").next().unwrap().0;
            #[doc = concat!("let nested = trace.", $ctor, "().inside(execve).count();")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            pub fn inside(mut self, outer: &Event) -> Self {
                self.0.filters.push(Filter::Inside {
                    tid: outer.tid,
                    from: outer.ts_ns,
                    to: outer.end_ns(),
                    outer: outer as *const Event as usize,
                });
                self
            }

            /// Names what the query selects in failure messages, instead of
            /// the list of its filters.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("let q = trace.", $ctor, "().named(\"openat\").describe(\"opens\");")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            pub fn describe(mut self, what: impl Into<String>) -> Self {
                self.0.label = Some(what.into());
                self
            }

            /// What the query selects, in words, as failure messages say it.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("println!(\"{}\", trace.", $ctor, "().named(\"openat\").failed().description());")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            #[must_use]
            pub fn description(&self) -> String {
                self.0.describe()
            }

            /// A snapshot of the events the query selects (see
            /// [`Snapshot`](crate::Snapshot)).
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("let text = trace.", $ctor, "().path_prefix(\"/etc\").snapshot().text();")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            pub fn snapshot(self) -> crate::Snapshot<'t> {
                crate::Snapshot::from_query(self.0)
            }
        }

        impl fmt::Debug for $ty<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($ty)).field(&self.0.describe()).finish()
            }
        }
    };
}

/// A query over all of a trace's events; an iterator of `&Event`.
/// Start one with [`Trace::events`].
///
/// ```no_run
/// use std::process::Command;
///
/// let trace = probity::Tracer::new().run(Command::new("true"))?;
/// let execs: Vec<&probity::Event> = trace.events().kind("exec").collect();
/// assert_eq!(execs.len(), 1);
/// # Ok::<(), probity::Error>(())
/// ```
#[derive(Clone)]
#[must_use = "a query does nothing until it is iterated or checked"]
pub struct Events<'t>(pub(crate) Query<'t>);

/// A query over a trace's syscalls; an iterator of
/// `(&Event, &Syscall)`. Start one with [`Trace::syscalls`].
///
/// ```no_run
/// use std::process::Command;
///
/// let trace = probity::Tracer::new().run(Command::new("ls"))?;
/// for (event, call) in trace.syscalls().named("openat").failed() {
///     println!("{} failed with {:?}", call.path().unwrap_or("?".as_ref()).display(), call.errno);
/// }
/// # Ok::<(), probity::Error>(())
/// ```
#[derive(Clone)]
#[must_use = "a query does nothing until it is iterated or checked"]
pub struct Syscalls<'t>(pub(crate) Query<'t>);

filters!(Events, "events");
filters!(Syscalls, "syscalls");

impl<'t> Events<'t> {
    /// Only events for which `pred` is true, for what the other filters
    /// do not say.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// let even = trace.events().matching(|e| e.pid % 2 == 0).count();
    /// # Ok::<(), probity::Error>(())
    /// ```
    pub fn matching(mut self, pred: impl Fn(&Event) -> bool + 't) -> Self {
        self.0.filters.push(Filter::Custom(Rc::new(pred)));
        self
    }

    /// Only events of kind `kind`, an [`Event::kind_name`]: `syscall`,
    /// `exec`, `fork`, `exit` or `signal`.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// let forks = trace.events().kind("fork").count();
    /// # Ok::<(), probity::Error>(())
    /// ```
    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.0.filters.push(Filter::Kind(kind.into()));
        self
    }

    /// Only network events of `op` (see [`Trace::net`]).
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// let connects = trace.net().op(probity::NetOp::Connect).count();
    /// # Ok::<(), probity::Error>(())
    /// ```
    pub fn op(mut self, op: NetOp) -> Self {
        self.0.filters.push(Filter::NetOp(op));
        self
    }

    /// Only network events whose peer is `peer`: an IP address
    /// (`127.0.0.1`, `::1`) or a CIDR block (`10.0.0.0/8`). IPv4-mapped
    /// IPv6 peers count as IPv4.
    ///
    /// # Panics
    ///
    /// If `peer` is neither: a typo in a test should fail loudly.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// let private = trace.net().peer("10.0.0.0/8").count();
    /// # Ok::<(), probity::Error>(())
    /// ```
    #[track_caller]
    pub fn peer(mut self, peer: &str) -> Self {
        let net = parse_net(peer).unwrap_or_else(|| panic!("`{peer}` is not an IP address or a CIDR block"));
        self.0.filters.push(Filter::Peer(net));
        self
    }

    /// Only network events whose peer's port is `port`.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// let https = trace.net().peer_port(443).count();
    /// # Ok::<(), probity::Error>(())
    /// ```
    pub fn peer_port(mut self, port: u16) -> Self {
        self.0.filters.push(Filter::PeerPort(port));
        self
    }

    /// Only network events whose peer is the host the program resolved
    /// as `host` (case-insensitive; see [`Net::host`](crate::Net::host)).
    /// The name is what the program's lookups said, a claim: an absence
    /// check (`check_none`) over this filter fails as undecided on every
    /// network event with a peer of another name or none, since that its
    /// peer is not `host` cannot be shown. To rule out a destination, use
    /// [`Trace::check_network_only_to`](crate::Trace::check_network_only_to).
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// let local = trace.net().host("localhost").count();
    /// # Ok::<(), probity::Error>(())
    /// ```
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.0.filters.push(Filter::Host(host.into()));
        self
    }
}

impl<'t> Syscalls<'t> {
    /// Only syscalls for which `pred` is true, for what the other filters
    /// do not say. `pred` sees the pair the query yields.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// let short_reads = trace.syscalls().named("read").matching(|(_, s)| s.ret == Some(0)).count();
    /// let in_child = trace.syscalls().matching(|(e, _)| e.pid != trace.outcome.root_pid).count();
    /// # Ok::<(), probity::Error>(())
    /// ```
    pub fn matching(mut self, pred: impl Fn((&Event, &Syscall)) -> bool + 't) -> Self {
        self.0.filters.push(Filter::Custom(Rc::new(move |e: &Event| e.as_syscall().is_some_and(|s| pred((e, s))))));
        self
    }
}

/// An IP address or CIDR block.
pub(crate) fn parse_net(s: &str) -> Option<ipnet::IpNet> {
    s.parse::<ipnet::IpNet>().or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from)).ok()
}

impl<'t> Iterator for Events<'t> {
    type Item = &'t Event;

    fn next(&mut self) -> Option<&'t Event> {
        let trace = self.0.trace;
        self.0.next_index().map(|i| &trace.events[i])
    }
}

impl<'t> Iterator for Syscalls<'t> {
    type Item = (&'t Event, &'t Syscall);

    fn next(&mut self) -> Option<(&'t Event, &'t Syscall)> {
        let trace = self.0.trace;
        loop {
            let e = &trace.events[self.0.next_index()?];
            if let Some(s) = e.as_syscall() {
                return Some((e, s));
            }
        }
    }
}

impl Trace {
    /// A query over every event, in order of completion.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// let signals = trace.events().kind("signal").count();
    /// # Ok::<(), probity::Error>(())
    /// ```
    pub fn events(&self) -> Events<'_> {
        Events(Query::new(self, false))
    }

    /// A query over the syscalls, in order of completion; it yields
    /// `(&Event, &Syscall)`.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// assert!(trace.syscalls().any(|(_, s)| s.name == "execve"));
    /// let failed_opens = trace.syscalls().named("openat").failed().count();
    /// # Ok::<(), probity::Error>(())
    /// ```
    pub fn syscalls(&self) -> Syscalls<'_> {
        Syscalls(Query::new(self, true))
    }

    /// A query over the network events (`events().kind("net")`): TCP
    /// connections and UDP datagrams, each charged to the process and
    /// thread that own the socket.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// for e in trace.net().op(probity::NetOp::Retransmit) {
    ///     println!("process {} retransmitted to {:?}", e.pid, e.as_net().unwrap().peer);
    /// }
    /// # Ok::<(), probity::Error>(())
    /// ```
    pub fn net(&self) -> Events<'_> {
        self.events().kind("net")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Arg;
    use crate::trace::test_support::{flags, path, sys, trace};

    #[test]
    fn helpers() {
        assert!(under("/tmp/a/b", "/tmp/a") && under("/tmp/a", "/tmp/a/") && under("/x", "/"));
        assert!(!under("/tmp/ab", "/tmp/a"));
        assert!(program_is("/usr/bin/cat", "cat") && program_is("/usr/bin/cat", "/usr/bin//cat"));
        assert!(!program_is("/usr/bin/cat", "/bin/cat") && !program_is("/usr/bin/concat", "cat"));
        assert_eq!(offset(1_234_567_890, 1_000), "+1.234566s");
    }

    #[test]
    fn filters_combine_and_describe_themselves() {
        let t = trace(
            vec![
                sys(100, 10, 10, "openat", vec![Arg::Fd(libc::AT_FDCWD), path("/etc/a")], 3),
                sys(200, 10, 11, "openat", vec![Arg::Fd(libc::AT_FDCWD), path("/etc/b")], -2),
                sys(300, 10, 10, "close", vec![Arg::Fd(3)], 0),
            ],
            None,
        );
        assert_eq!(t.syscalls().named("openat").count(), 2);
        assert_eq!(t.syscalls().named("openat").ok().count(), 1);
        assert_eq!(t.syscalls().errno("ENOENT").tid(11).count(), 1);
        assert_eq!(t.syscalls().path("/etc/a").count(), 2, "the open and the close of its descriptor");
        assert_eq!(t.syscalls().path_glob("/etc/?").count(), 3);
        assert_eq!(t.syscalls().between(150, 300).count(), 2);
        let first = &t.events[0];
        assert_eq!(t.events().after(first).count(), 2);
        assert_eq!(t.events().before(&t.events[2]).count(), 2);
        let q = t.syscalls().named("openat").path_prefix("/etc").failed().after(first);
        assert_eq!(
            q.description(),
            "syscalls named openat, on a path under /etc, that failed, starting after +0.000000s"
        );
        assert_eq!(format!("{q:?}"), format!("Syscalls({:?})", q.description()));
    }

    #[test]
    fn opens_for_writing_and_named_flags() {
        let open = |ts, p: &str, value: i32, text: &str, ret| {
            sys(ts, 10, 10, "openat", vec![Arg::Fd(libc::AT_FDCWD), path(p), flags(value, text)], ret)
        };
        let fopen = |ts, mode: &str| Event {
            ts_ns: ts,
            pid: 10,
            tid: 10,
            kind: EventKind::Libc(Box::new(crate::event::LibcCall {
                function: "fopen64".into(),
                args: vec![path("/d/f"), path(mode)],
                ret: Some(Arg::Ptr(0x1000)),
                errno: None,
                duration_ns: 1,
                parent: None,
                injected: false,
            })),
        };
        let t = trace(
            vec![
                open(1, "/d/r", libc::O_RDONLY | libc::O_CLOEXEC, "O_RDONLY|O_CLOEXEC", 3),
                open(2, "/d/w", libc::O_WRONLY, "O_WRONLY", 4),
                open(3, "/d/rw", libc::O_RDWR, "O_RDWR", 5),
                open(4, "/d/c", libc::O_RDONLY | libc::O_CREAT, "O_RDONLY|O_CREAT", 6),
                open(5, "/d/t", libc::O_RDONLY | libc::O_TRUNC, "O_RDONLY|O_TRUNC", 7),
                sys(6, 10, 10, "creat", vec![path("/d/creat"), flags(0o644, "0644")], 8),
                sys(7, 10, 10, "openat2", vec![Arg::Fd(libc::AT_FDCWD), path("/d/2"), Arg::Ptr(1), Arg::Int(24)], 9),
                sys(8, 10, 10, "mmap", vec![Arg::Ptr(0), Arg::Int(4096), flags(3, "PROT_READ|PROT_WRITE")], 0),
                fopen(9, "r"),
                fopen(10, "r+"),
                fopen(11, "ab"),
            ],
            Some("/"),
        );
        let opened: Vec<u64> = t.events().opened_for_write().map(|e| e.ts_ns).collect();
        assert_eq!(opened, [2, 3, 4, 5, 6, 10, 11]);
        assert_eq!(t.syscalls().opened_for_write().count(), 5);
        let q = t.syscalls().opened_for_write().path_prefix("/d");
        assert_eq!(q.0.partition().1, [(6, "an openat2's flags are in a structure probity does not read")]);
        assert_eq!(q.description(), "syscalls opening a file for writing, on a path under /d");

        assert_eq!(t.syscalls().flags("O_WRONLY").count(), 1);
        assert_eq!(t.syscalls().flags("O_CREAT|O_RDONLY").map(|(e, _)| e.ts_ns).collect::<Vec<_>>(), [4]);
        assert_eq!(t.syscalls().flags(" O_CLOEXEC | O_RDONLY ").count(), 1);
        assert_eq!(t.syscalls().flags("PROT_WRITE").count(), 1);
        assert_eq!(t.syscalls().flags("O_CREA").count(), 0, "whole names only");
        assert_eq!(t.syscalls().flags("O_CREAT|O_EXCL").description(), "syscalls with flags O_CREAT|O_EXCL");
        assert_eq!(t.events().flags("O_TRUNC").description(), "events with flag O_TRUNC");
        let typo = std::panic::catch_unwind(|| t.syscalls().flags("|"));
        assert!(typo.is_err(), "a filter on no flag is a mistake");
    }

    #[test]
    fn matching_sees_what_the_query_yields() {
        let t = trace(
            vec![
                sys(1, 10, 10, "close", vec![Arg::Fd(3)], 0),
                sys(2, 11, 11, "close", vec![Arg::Fd(4)], -9),
                Event {
                    ts_ns: 3,
                    pid: 10,
                    tid: 10,
                    kind: EventKind::Exit(crate::event::Exit { process_exited: true, status: None }),
                },
            ],
            None,
        );
        let failed_in_11: Vec<u64> =
            t.syscalls().matching(|(e, s)| e.pid == 11 && s.failed()).map(|(e, _)| e.ts_ns).collect();
        assert_eq!(failed_in_11, [2]);
        assert_eq!(t.events().matching(|e| e.pid == 10).count(), 2, "a close and an exit");
        assert_eq!(t.syscalls().matching(|(e, _)| e.pid == 10).count(), 1, "syscalls only");
    }
}
