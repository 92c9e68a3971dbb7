//! Expectations about a trace that explain themselves when they fail.
//!
//! Each check comes twice: `check_*` returns `Result<(), Violation>`, and
//! `assert_*` panics with the violation's message at the caller's line.
//! A failure names the expectation, lists the events that break it (or,
//! when something is missing, the events closest to it) with their process,
//! time and arguments, and shows the trace around the first one.
//!
//! An expectation that something did not happen is never met by default:
//! it fails, saying why, when events were lost, when a process it is about
//! was not covered by a tracer that sees that kind of event, or when an
//! event's path could not be resolved to tell whether it matches.

use std::ffi::OsStr;
use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::event::{Arg, Event, EventKind, SockAddr};
use crate::trace::index::{FdTarget, Index, Resolved};
use crate::trace::query::{base_name, offset, program_is, trim_dot_slash, under, Events, Query, Syscalls};
use crate::trace::snapshot::Normalizer;
use crate::trace::Trace;

/// What kind of failure a [`Violation`] is.
///
/// ```
/// use probity::ViolationKind;
/// assert_ne!(ViolationKind::Found, ViolationKind::Missing);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ViolationKind {
    /// Events the expectation rules out happened (or too many did).
    Found,
    /// What the expectation requires did not happen (or too few times).
    Missing,
    /// Events happened in the wrong order.
    Order,
    /// Events were lost, so that something did not happen cannot be shown.
    Lost,
    /// A process the expectation is about was not covered by a tracer that
    /// sees the events it is about.
    NotCovered,
    /// Some events might match but their paths or destinations could not
    /// be resolved.
    Undecided,
    /// The expectation itself is malformed, such as an invalid CIDR block.
    Invalid,
}

/// An event a violation points at.
#[derive(Clone, Debug)]
struct Finding {
    event: Event,
    /// The program the process ran then, as its file name.
    program: Option<String>,
    /// Why this event is listed, when the event does not say it itself.
    note: Option<String>,
}

/// Why an expectation about a trace does not hold: the expectation, the
/// events that break it, and the trace around the first one. Its
/// `Display` is the failure message; [`Violation::stable_text`] is the
/// same message with run-dependent details taken out, for snapshots.
///
/// ```no_run
/// let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
/// match trace.check_opened("/etc/hostname") {
///     Ok(()) => {}
///     Err(v) => {
///         assert_eq!(v.kind(), probity::ViolationKind::Missing);
///         eprintln!("{v}");
///     }
/// }
/// # Ok::<(), probity::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Violation(Box<Details>);

/// What a [`Violation`] says, boxed so that a `Result` stays small.
#[derive(Clone, Debug)]
struct Details {
    kind: ViolationKind,
    expectation: String,
    problem: String,
    findings: Vec<Finding>,
    /// What the listed events are, when they do not break the expectation
    /// themselves (the closest to what is missing).
    title: Option<String>,
    omitted: usize,
    /// The trace around the first finding: its process's events, with the
    /// finding's position.
    excerpt: Option<(Vec<Event>, usize)>,
    notes: Vec<String>,
    start_ns: u64,
}

/// How many events a message lists, and how many it shows around the
/// first one on each side.
const MAX_LISTED: usize = 10;
const CONTEXT: usize = 3;

impl Violation {
    fn new(
        kind: ViolationKind,
        expectation: impl Into<String>,
        problem: impl Into<String>,
        trace: &Trace,
    ) -> Violation {
        Violation(Box::new(Details {
            kind,
            expectation: expectation.into(),
            problem: problem.into(),
            findings: Vec::new(),
            title: None,
            omitted: 0,
            excerpt: None,
            notes: Vec::new(),
            start_ns: trace.start_ns(),
        }))
    }

    /// Lists events `indexes` of the trace (the first [`MAX_LISTED`]), and
    /// the trace around the first one.
    fn with_events(mut self, idx: &Index<'_>, indexes: &[usize], note: impl Fn(usize) -> Option<String>) -> Violation {
        let events = &idx.trace.events;
        for &i in indexes.iter().take(MAX_LISTED) {
            let e = &events[i];
            let program = idx.image_at(e.pid, e.ts_ns).map(|(f, _)| crate::event::shown(base_name(f)).into_owned());
            self.0.findings.push(Finding { event: e.clone(), program, note: note(i) });
        }
        self.0.omitted = indexes.len().saturating_sub(MAX_LISTED);
        if let Some(&first) = indexes.first() {
            let e = &events[first];
            // The process's own events, without the runtime noise a
            // snapshot leaves out.
            let noise = crate::trace::snapshot::noise(idx);
            let mut same: Vec<usize> =
                (0..events.len()).filter(|&j| events[j].pid == e.pid && (j == first || !noise[j])).collect();
            same.sort_by_key(|&j| (events[j].ts_ns, j));
            if let Some(pos) = same.iter().position(|&j| j == first) {
                let lo = pos.saturating_sub(CONTEXT);
                let hi = (pos + CONTEXT + 1).min(same.len());
                self.0.excerpt = Some((same[lo..hi].iter().map(|&j| events[j].clone()).collect(), pos - lo));
            }
        }
        self
    }

    fn titled(mut self, title: impl Into<String>) -> Violation {
        self.0.title = Some(title.into());
        self
    }

    fn note(mut self, note: impl Into<String>) -> Violation {
        self.0.notes.push(note.into());
        self
    }

    /// What kind of failure this is.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// let v = trace.check_never_execs(["true"]).unwrap_err();
    /// assert_eq!(v.kind(), probity::ViolationKind::Found);
    /// # Ok::<(), probity::Error>(())
    /// ```
    #[must_use]
    pub fn kind(&self) -> ViolationKind {
        self.0.kind
    }

    /// The expectation, in words.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// let v = trace.check_never_execs(["true"]).unwrap_err();
    /// assert_eq!(v.expectation(), "none of these programs exec'd: true");
    /// # Ok::<(), probity::Error>(())
    /// ```
    #[must_use]
    pub fn expectation(&self) -> &str {
        &self.0.expectation
    }

    /// The events the message lists: those that break the expectation, or
    /// those closest to what is missing (at most ten).
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// let v = trace.check_never_execs(["true"]).unwrap_err();
    /// assert_eq!(v.events().count(), 1);
    /// # Ok::<(), probity::Error>(())
    /// ```
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.0.findings.iter().map(|f| &f.event)
    }

    /// The message without what changes from run to run: pids and tids
    /// numbered by first appearance, no times or durations, addresses and
    /// descriptors as a [`Snapshot`](crate::Snapshot) shows them, and the
    /// temp, home, working and target directories as placeholders. For
    /// snapshotting failure messages.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// let v = trace.check_never_execs(["true"]).unwrap_err();
    /// // insta::assert_snapshot!(v.stable_text());
    /// assert!(v.stable_text().contains("[1] +++ exec"));
    /// # Ok::<(), probity::Error>(())
    /// ```
    #[must_use]
    pub fn stable_text(&self) -> String {
        let mut n = Normalizer::new(&[]);
        self.render(&mut Stable(&mut n))
    }

    fn render(&self, style: &mut dyn Style) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "expected {}", style.text(&self.0.expectation));
        let _ = write!(s, "but {}", style.text(&self.0.problem));
        match (&self.0.title, self.0.findings.is_empty()) {
            (_, true) => s.push('\n'),
            (None, false) => s.push_str(":\n"),
            (Some(title), false) => {
                let _ = writeln!(s, "\n{}:", style.text(title));
            }
        }
        for f in &self.0.findings {
            let when = style.time(f.event.ts_ns, self.0.start_ns);
            let program = f.program.as_deref().map(|p| format!("{p} ")).unwrap_or_default();
            let _ = writeln!(s, "  {when}{program}{}", style.line(&f.event));
            if let Some(note) = &f.note {
                let _ = writeln!(s, "      ({})", style.text(note));
            }
        }
        if self.0.omitted > 0 {
            let _ = writeln!(s, "  ... and {} more", self.0.omitted);
        }
        if let Some((events, at)) = &self.0.excerpt {
            if events.len() > 1 {
                let pid = style.text(&format!("process {}", events[*at].pid));
                let _ = writeln!(s, "the trace of {pid} around the first one:");
                for (k, e) in events.iter().enumerate() {
                    let mark = if k == *at { ">" } else { " " };
                    let _ = writeln!(s, "  {mark} {}", style.line(e));
                }
            }
        }
        for note in &self.0.notes {
            let _ = writeln!(s, "note: {}", style.text(note));
        }
        s
    }
}

/// How a message shows events: as they are, or stable.
trait Style {
    fn line(&mut self, e: &Event) -> String;
    fn time(&self, ts: u64, start: u64) -> String;
    fn text(&mut self, s: &str) -> String;
}

struct Raw;

impl Style for Raw {
    fn line(&mut self, e: &Event) -> String {
        crate::render::event_line(e)
    }
    fn time(&self, ts: u64, start: u64) -> String {
        format!("{} ", offset(ts, start))
    }
    fn text(&mut self, s: &str) -> String {
        s.to_owned()
    }
}

struct Stable<'n>(&'n mut Normalizer);

impl Style for Stable<'_> {
    fn line(&mut self, e: &Event) -> String {
        self.0.line(e)
    }
    fn time(&self, _: u64, _: u64) -> String {
        String::new()
    }
    fn text(&mut self, s: &str) -> String {
        self.0.words(s)
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.render(&mut Raw).trim_end())
    }
}

impl std::error::Error for Violation {}

/// Fails an expectation that something did not happen when the trace
/// cannot show it: events were lost, a process it is about was not covered
/// by a tracer that sees `family` events, or some events are `undecided`.
fn absence(
    idx: &Index<'_>,
    expectation: &str,
    family: Option<&str>,
    scope: Option<&Query<'_>>,
    undecided: &[(usize, &'static str)],
) -> Result<(), Violation> {
    let trace = idx.trace;
    let losses = &trace.outcome.losses;
    if losses.lost_events() > 0 {
        let problem = format!(
            "{}, so an event that breaks it may be missing from the trace (the run's losses must be 0 to show that something did not happen)",
            losses.describe()
        );
        return Err(Violation::new(ViolationKind::Lost, expectation, problem, trace));
    }
    let uncovered: Vec<&crate::trace::Process> = idx
        .procs
        .values()
        .filter(|p| scope.is_none_or(|q| !q.excludes(p)))
        .filter(|p| !p.tracers.iter().any(|t| family.is_none_or(|k| t.observes(k))))
        .collect();
    if !uncovered.is_empty() {
        let what = family.map_or("events".to_owned(), |k| format!("{k} events"));
        let list: Vec<String> = uncovered
            .iter()
            .map(|p| {
                let parent = p.parent.map(|pp| format!(", forked by process {pp}")).unwrap_or_default();
                let tracers: Vec<&str> = p.tracers.iter().map(|t| t.name()).collect();
                let why = if p.untracked {
                    "not traced: the task map was full".to_owned()
                } else if tracers.is_empty() {
                    "covered by no tracer".to_owned()
                } else {
                    format!("covered only by {}", tracers.join(", "))
                };
                format!("process {} ({why}{parent})", p.pid)
            })
            .collect();
        let problem =
            format!("no tracer that sees {what} covered {}, so what it did is not in the trace", list.join(", "));
        return Err(Violation::new(ViolationKind::NotCovered, expectation, problem, trace));
    }
    if !undecided.is_empty() {
        let indexes: Vec<usize> = undecided.iter().map(|(i, _)| *i).collect();
        let problem = format!(
            "{} {} might break it but cannot be told apart",
            undecided.len(),
            if undecided.len() == 1 { "event" } else { "events" }
        );
        let v = Violation::new(ViolationKind::Undecided, expectation, problem, trace);
        return Err(v.with_events(idx, &indexes, |i| {
            undecided.iter().find(|(j, _)| *j == i).map(|(_, why)| (*why).to_owned())
        }));
    }
    Ok(())
}

fn found(idx: &Index<'_>, expectation: &str, indexes: &[usize], note: impl Fn(usize) -> Option<String>) -> Violation {
    let n = indexes.len();
    let problem = format!(
        "found {n} {} that {} it",
        if n == 1 { "event" } else { "events" },
        if n == 1 { "breaks" } else { "break" }
    );
    Violation::new(ViolationKind::Found, expectation, problem, idx.trace).with_events(idx, indexes, note)
}

fn list(items: &[String]) -> String {
    items.join(", ")
}

/// A kind of change to a file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Open,
    Create,
    Write,
    Delete,
    /// A rename: the first path is the old name, the second the new one.
    Rename,
    /// Any change to the file system: the check of `writes_only_under`.
    Modify,
}

const O_ACCMODE: u64 = libc::O_ACCMODE as u64;

/// A syscall, or a libc call in a process no syscall tracer covered (where
/// the syscalls would say the same, they are what counts).
struct Call<'a> {
    name: &'a str,
    args: &'a [Arg],
    /// It returned, without an error.
    ok: bool,
    /// What a syscall returned.
    ret: Option<i64>,
}

fn call<'a>(idx: &Index<'a>, i: usize) -> Option<Call<'a>> {
    let e = &idx.trace.events[i];
    match &e.kind {
        EventKind::Syscall(s) => {
            Some(Call { name: &s.name, args: &s.args, ok: s.ret.is_some() && !s.failed(), ret: s.ret })
        }
        EventKind::Libc(c) => {
            let syscalls_seen = idx.procs.get(&e.pid).is_some_and(|p| p.tracers.iter().any(|t| t.observes("syscall")));
            (!syscalls_seen).then(|| Call {
                // `open64`, `fopen64`, `stat64`... are their plain forms.
                name: c.function.strip_suffix("64").unwrap_or(&c.function),
                args: &c.args,
                ok: c.ret.is_some() && c.errno.is_none(),
                ret: None,
            })
        }
        _ => None,
    }
}

fn open_flags(args: &[Arg]) -> Option<u64> {
    args.iter().find_map(|a| match a {
        Arg::Flags { value, text } if text.starts_with("O_") => Some(*value),
        _ => None,
    })
}

/// The mode string of `fopen` and `freopen` as open flags.
fn fopen_flags(args: &[Arg]) -> u64 {
    let mut mode = args.iter().filter_map(|a| match a {
        Arg::Path { path, .. } => Some(path.to_string_lossy()),
        _ => None,
    });
    match mode.nth(1).as_deref().unwrap_or("r") {
        m if m.starts_with('w') => (libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC) as u64,
        m if m.starts_with('a') => (libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND) as u64,
        m if m.contains('+') => libc::O_RDWR as u64,
        _ => 0,
    }
}

/// The paths syscall `i` changed in the way `op` says (for [`Op::Rename`],
/// the old and new names in order). Only calls that succeeded count.
fn op_paths<'a>(idx: &'a Index<'_>, i: usize, op: Op) -> Vec<&'a Resolved> {
    let Some(s) = call(idx, i) else { return Vec::new() };
    let Some(a) = idx.access(i) else { return Vec::new() };
    if !s.ok {
        return Vec::new();
    }
    let paths: Vec<&Resolved> = a.paths.iter().map(|(_, r)| r).collect();
    let fd_file = match a.fd.as_deref() {
        Some(FdTarget::File(r)) => Some(r),
        _ => None,
    };
    let name = s.name;
    let is_fopen = matches!(name, "fopen" | "freopen");
    let is_open = is_fopen || matches!(name, "open" | "openat" | "openat2" | "creat");
    let flags = if is_fopen { fopen_flags(s.args) } else { open_flags(s.args).unwrap_or(0) };
    let creates = name == "creat" || (is_open && flags & libc::O_CREAT as u64 != 0);
    let writes = name == "creat" || flags & O_ACCMODE != 0 || flags & (libc::O_CREAT | libc::O_TRUNC) as u64 != 0;
    match op {
        Op::Open if is_open => paths.into_iter().take(1).collect(),
        Op::Create if creates => paths.into_iter().take(1).collect(),
        Op::Create => match name {
            "mkdir" | "mkdirat" | "mknod" | "mknodat" | "mkfifo" => paths.into_iter().take(1).collect(),
            "symlink" | "symlinkat" | "link" | "linkat" | "rename" | "renameat" | "renameat2" => {
                paths.into_iter().last().into_iter().collect()
            }
            _ => Vec::new(),
        },
        Op::Write => match name {
            "write" | "pwrite64" | "writev" | "pwritev" | "pwritev2" | "sendfile" => fd_file.into_iter().collect(),
            _ => Vec::new(),
        },
        Op::Delete => match name {
            "unlink" | "unlinkat" | "rmdir" | "remove" => paths,
            _ => Vec::new(),
        },
        Op::Rename => match name {
            "rename" | "renameat" | "renameat2" => paths,
            _ => Vec::new(),
        },
        Op::Modify if is_open => {
            if writes {
                paths.into_iter().take(1).collect()
            } else {
                Vec::new()
            }
        }
        Op::Modify => match name {
            "mkdir" | "mkdirat" | "mknod" | "mknodat" | "unlink" | "unlinkat" | "rmdir" | "rename" | "renameat"
            | "renameat2" | "link" | "linkat" | "symlink" | "symlinkat" | "chmod" | "fchmodat" | "fchmodat2"
            | "chown" | "lchown" | "fchownat" | "truncate" | "utime" | "utimes" | "utimensat" | "futimesat"
            | "setxattr" | "lsetxattr" | "removexattr" | "lremovexattr" | "remove" | "mkfifo" => {
                if paths.is_empty() {
                    fd_file.into_iter().collect()
                } else {
                    paths
                }
            }
            "fchmod" | "fchown" | "ftruncate" | "fallocate" | "fsetxattr" | "fremovexattr" => {
                fd_file.into_iter().collect()
            }
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Devices a write to changes nothing on disk.
const HARMLESS_DEVICES: &[&str] = &["/dev/null", "/dev/zero", "/dev/full", "/dev/tty", "/dev/stdout", "/dev/stderr"];

impl Trace {
    /// The user's path as the trace's resolved paths are: absolute
    /// (against the starting directory) when it can be, normalized.
    fn user_path(&self, p: &Path) -> Resolved {
        use std::os::unix::ffi::OsStrExt;
        let s = p.as_os_str();
        if s.as_bytes().starts_with(b"/") {
            Resolved::Abs(crate::trace::index::normalize(s))
        } else {
            match &self.outcome.cwd {
                Some(cwd) if cwd.starts_with('/') => {
                    Resolved::Abs(crate::trace::index::normalize(crate::trace::index::joined(OsStr::new(cwd), s)))
                }
                _ => Resolved::Rel(trim_dot_slash(s).to_owned()),
            }
        }
    }

    /// Checks that syscalls changed `path` as `op` says; `what` words it.
    fn check_op(&self, op: Op, path: &Path, what: &str) -> Result<(), Violation> {
        let idx = Index::new(self);
        let want = self.user_path(path);
        let shown = want.shown().unwrap_or_default().into_owned();
        let expectation = format!("{what} {shown}");
        if (0..self.events.len()).any(|i| op_paths(&idx, i, op).contains(&&want)) {
            return Ok(());
        }
        let problem = format!("no call that succeeded {what} it");
        Err(near_misses(&idx, Violation::new(ViolationKind::Missing, expectation, problem, self), &want))
    }

    /// Checks that the process tree opened `path` (an `open`, `openat`,
    /// `openat2` or `creat` of it that succeeded). A relative path is
    /// taken from the directory the command started in.
    ///
    /// ```no_run
    /// use std::process::Command;
    ///
    /// let mut cmd = Command::new("cat");
    /// cmd.arg("/etc/hostname");
    /// let trace = probity::Tracer::new().run(cmd)?;
    /// assert!(trace.check_opened("/etc/hostname").is_ok());
    /// # Ok::<(), probity::Error>(())
    /// ```
    pub fn check_opened(&self, path: impl AsRef<Path>) -> Result<(), Violation> {
        self.check_op(Op::Open, path.as_ref(), "opened")
    }

    /// Panics unless [`check_opened`](Trace::check_opened) passes.
    ///
    /// ```no_run
    /// # let mut cmd = std::process::Command::new("cat");
    /// # cmd.arg("/etc/hostname");
    /// let trace = probity::Tracer::new().run(cmd)?;
    /// trace.assert_opened("/etc/hostname");
    /// # Ok::<(), probity::Error>(())
    /// ```
    #[track_caller]
    pub fn assert_opened(&self, path: impl AsRef<Path>) {
        ok_or_panic(self.check_opened(path));
    }

    /// Checks that the process tree created `path`: an open with `O_CREAT`
    /// (or `creat`), a `mkdir`, `mknod`, `link` or `symlink` made it, or a
    /// `rename` gave it that name. With `O_CREAT` the kernel does not say
    /// whether the file existed before.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.check_created("/tmp/out.txt")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_created(&self, path: impl AsRef<Path>) -> Result<(), Violation> {
        self.check_op(Op::Create, path.as_ref(), "created")
    }

    /// Panics unless [`check_created`](Trace::check_created) passes.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.assert_created("/tmp/out.txt");
    /// # Ok::<(), probity::Error>(())
    /// ```
    #[track_caller]
    pub fn assert_created(&self, path: impl AsRef<Path>) {
        ok_or_panic(self.check_created(path));
    }

    /// Checks that the process tree wrote to `path`: a `write`, `pwrite64`,
    /// `writev`, `pwritev*` or `sendfile` that succeeded on a descriptor
    /// opened on it. (Writes through shared memory maps are not syscalls.)
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.check_wrote("/tmp/out.txt")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_wrote(&self, path: impl AsRef<Path>) -> Result<(), Violation> {
        self.check_op(Op::Write, path.as_ref(), "wrote to")
    }

    /// Panics unless [`check_wrote`](Trace::check_wrote) passes.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.assert_wrote("/tmp/out.txt");
    /// # Ok::<(), probity::Error>(())
    /// ```
    #[track_caller]
    pub fn assert_wrote(&self, path: impl AsRef<Path>) {
        ok_or_panic(self.check_wrote(path));
    }

    /// Checks that the process tree deleted `path` (`unlink`, `unlinkat`
    /// or `rmdir` that succeeded).
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.check_deleted("/tmp/old.txt")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_deleted(&self, path: impl AsRef<Path>) -> Result<(), Violation> {
        self.check_op(Op::Delete, path.as_ref(), "deleted")
    }

    /// Panics unless [`check_deleted`](Trace::check_deleted) passes.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.assert_deleted("/tmp/old.txt");
    /// # Ok::<(), probity::Error>(())
    /// ```
    #[track_caller]
    pub fn assert_deleted(&self, path: impl AsRef<Path>) {
        ok_or_panic(self.check_deleted(path));
    }

    /// Checks that the process tree renamed `from` to `to` (`rename`,
    /// `renameat` or `renameat2` that succeeded).
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.check_renamed("/tmp/out.tmp", "/tmp/out.txt")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_renamed(&self, from: impl AsRef<Path>, to: impl AsRef<Path>) -> Result<(), Violation> {
        let idx = Index::new(self);
        let (from, to) = (self.user_path(from.as_ref()), self.user_path(to.as_ref()));
        let expectation = format!("renamed {} to {}", from.shown().unwrap_or_default(), to.shown().unwrap_or_default());
        if (0..self.events.len()).any(|i| op_paths(&idx, i, Op::Rename) == [&from, &to]) {
            return Ok(());
        }
        let v = Violation::new(ViolationKind::Missing, expectation, "no rename that succeeded did that", self);
        Err(near_misses(&idx, v, &from))
    }

    /// Panics unless [`check_renamed`](Trace::check_renamed) passes.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.assert_renamed("/tmp/out.tmp", "/tmp/out.txt");
    /// # Ok::<(), probity::Error>(())
    /// ```
    #[track_caller]
    pub fn assert_renamed(&self, from: impl AsRef<Path>, to: impl AsRef<Path>) {
        ok_or_panic(self.check_renamed(from, to));
    }

    /// Checks that every change the process tree made to the file system
    /// is under one of `dirs`: opens for writing, creating or truncating,
    /// and `mkdir`, `mknod`, `unlink`, `rmdir`, `rename` (both names),
    /// `link`, `symlink`, `chmod`, `chown`, `truncate`, `utimes` and
    /// `setxattr`/`removexattr` in all their forms, when they succeeded.
    /// Writes to `/dev/null`, `/dev/zero`, `/dev/full`, `/dev/tty`,
    /// `/dev/stdout` and `/dev/stderr` change nothing and are allowed.
    /// Fails, saying why, when events were lost or a path could not be
    /// resolved.
    ///
    /// ```no_run
    /// let dir = std::env::temp_dir();
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.check_writes_only_under([&dir])?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_writes_only_under<I, P>(&self, dirs: I) -> Result<(), Violation>
    where
        I: IntoIterator<Item = P>,
        P: AsRef<Path>,
    {
        let idx = Index::new(self);
        let dirs: Vec<Resolved> = dirs.into_iter().map(|d| self.user_path(d.as_ref())).collect();
        let shown: Vec<String> = dirs.iter().filter_map(|d| d.shown().map(|s| s.into_owned())).collect();
        let expectation = format!("changes to the file system only under {}", list(&shown));
        let mut bad = Vec::new();
        let mut undecided = Vec::new();
        for i in 0..self.events.len() {
            for r in op_paths(&idx, i, Op::Modify) {
                let inside = match r {
                    Resolved::Abs(p) => {
                        HARMLESS_DEVICES.iter().any(|d| p.as_os_str() == *d)
                            || dirs.iter().any(|d| matches!(d, Resolved::Abs(d) if under(p, d)))
                    }
                    Resolved::Rel(p) => dirs.iter().any(|d| matches!(d, Resolved::Rel(d) if under(p, d))),
                    Resolved::Unknown(_) => false,
                };
                if inside {
                    continue;
                }
                match r {
                    Resolved::Abs(_) => bad.push(i),
                    Resolved::Rel(_) => {
                        undecided.push((i, "its path is relative to a starting directory the trace does not record"))
                    }
                    Resolved::Unknown(why) => undecided.push((i, *why)),
                }
                break;
            }
        }
        if !bad.is_empty() {
            return Err(found(&idx, &expectation, &bad, |_| None));
        }
        absence(&idx, &expectation, Some("syscall"), None, &undecided)
    }

    /// Panics unless [`check_writes_only_under`](Trace::check_writes_only_under) passes.
    ///
    /// ```no_run
    /// let dir = std::env::temp_dir();
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.assert_writes_only_under([&dir]);
    /// # Ok::<(), probity::Error>(())
    /// ```
    #[track_caller]
    pub fn assert_writes_only_under<I, P>(&self, dirs: I)
    where
        I: IntoIterator<Item = P>,
        P: AsRef<Path>,
    {
        ok_or_panic(self.check_writes_only_under(dirs));
    }

    /// The indexes of the exec events, and each one's program.
    fn execs(&self) -> Vec<(usize, &OsStr)> {
        self.events
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match &e.kind {
                EventKind::Exec(x) => Some((i, x.filename.as_os_str())),
                _ => None,
            })
            .collect()
    }

    /// Checks that the programs the process tree exec'd are exactly
    /// `programs`: each one at least once, and nothing else. A program is a
    /// path (`/usr/bin/cat`) or a file name (`cat`), compared with the path
    /// the kernel exec'd. Fails, saying why, when events were lost.
    ///
    /// ```no_run
    /// use std::process::Command;
    ///
    /// let mut cmd = Command::new("sh");
    /// cmd.args(["-c", "cat /etc/hostname"]);
    /// let trace = probity::Tracer::new().run(cmd)?;
    /// trace.check_execs_exactly(["sh", "cat"])?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_execs_exactly<I, S>(&self, programs: I) -> Result<(), Violation>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let programs: Vec<String> = programs.into_iter().map(|p| p.as_ref().to_owned()).collect();
        let idx = Index::new(self);
        let expectation = format!("exactly these programs exec'd: {}", list(&programs));
        let execs = self.execs();
        let unexpected: Vec<usize> =
            execs.iter().filter(|(_, f)| !programs.iter().any(|p| program_is(f, p))).map(|(i, _)| *i).collect();
        let missing: Vec<String> =
            programs.iter().filter(|p| !execs.iter().any(|(_, f)| program_is(f, p))).cloned().collect();
        if !unexpected.is_empty() {
            let mut v = found(&idx, &expectation, &unexpected, |_| None);
            if !missing.is_empty() {
                v = v.note(format!("these were never exec'd: {}", list(&missing)));
            }
            return Err(v);
        }
        if !missing.is_empty() {
            return Err(missing_execs(&idx, &expectation, &missing, &execs));
        }
        absence(&idx, &expectation, Some("exec"), None, &[])
    }

    /// Panics unless [`check_execs_exactly`](Trace::check_execs_exactly) passes.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.assert_execs_exactly(["true"]);
    /// # Ok::<(), probity::Error>(())
    /// ```
    #[track_caller]
    pub fn assert_execs_exactly<I, S>(&self, programs: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        ok_or_panic(self.check_execs_exactly(programs));
    }

    /// Checks that the process tree exec'd each of `programs` (paths or
    /// file names) at least once.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.check_execs_at_least(["true"])?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_execs_at_least<I, S>(&self, programs: I) -> Result<(), Violation>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let programs: Vec<String> = programs.into_iter().map(|p| p.as_ref().to_owned()).collect();
        let expectation = format!("at least these programs exec'd: {}", list(&programs));
        let execs = self.execs();
        let missing: Vec<String> =
            programs.iter().filter(|p| !execs.iter().any(|(_, f)| program_is(f, p))).cloned().collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(missing_execs(&Index::new(self), &expectation, &missing, &execs))
    }

    /// Panics unless [`check_execs_at_least`](Trace::check_execs_at_least) passes.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.assert_execs_at_least(["true"]);
    /// # Ok::<(), probity::Error>(())
    /// ```
    #[track_caller]
    pub fn assert_execs_at_least<I, S>(&self, programs: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        ok_or_panic(self.check_execs_at_least(programs));
    }

    /// Checks that the process tree exec'd none of `programs` (paths or
    /// file names). Fails, saying why, when events were lost.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.check_never_execs(["curl", "wget"])?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_never_execs<I, S>(&self, programs: I) -> Result<(), Violation>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let programs: Vec<String> = programs.into_iter().map(|p| p.as_ref().to_owned()).collect();
        let idx = Index::new(self);
        let expectation = format!("none of these programs exec'd: {}", list(&programs));
        let bad: Vec<usize> =
            self.execs().iter().filter(|(_, f)| programs.iter().any(|p| program_is(f, p))).map(|(i, _)| *i).collect();
        if !bad.is_empty() {
            return Err(found(&idx, &expectation, &bad, |_| None));
        }
        absence(&idx, &expectation, Some("exec"), None, &[])
    }

    /// Panics unless [`check_never_execs`](Trace::check_never_execs) passes.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.assert_never_execs(["curl", "wget"]);
    /// # Ok::<(), probity::Error>(())
    /// ```
    #[track_caller]
    pub fn assert_never_execs<I, S>(&self, programs: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        ok_or_panic(self.check_never_execs(programs));
    }

    /// Checks that the process tree made no network access: it created no
    /// `AF_INET`, `AF_INET6` or `AF_PACKET` socket (nor one of another
    /// family that reaches beyond this machine's processes, such as
    /// `AF_VSOCK` or `AF_XDP`), no syscall carries an IP address or works
    /// on an internet socket, and there is no network event. Attempts
    /// count, even when they failed. Unix and netlink sockets are not
    /// network. Fails, saying why, when events were lost, a process was
    /// not covered by the eBPF tracer, or the tree used a channel whose
    /// traffic probity does not see (io_uring, a descriptor taken from
    /// another process with `pidfd_getfd`, a send on a descriptor the
    /// trace never saw created, a write on one after a message that can
    /// carry descriptors was received).
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.check_no_network()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_no_network(&self) -> Result<(), Violation> {
        let idx = Index::new(self);
        let expectation = "no network access (no internet or packet socket, no IP address in any syscall)";
        let bad: Vec<usize> = (0..self.events.len()).filter(|&i| is_network(&idx, i)).collect();
        if !bad.is_empty() {
            return Err(found(&idx, expectation, &bad, |_| None));
        }
        let mut undecided = blind_spots(&idx);
        undecided.extend((0..self.events.len()).filter_map(|i| match destination(&idx, i) {
            Dest::Unknown(why) => Some((i, why)),
            _ => None,
        }));
        undecided.sort_unstable();
        undecided.dedup_by_key(|(i, _)| *i);
        absence(&idx, expectation, Some("syscall"), None, &undecided).map_err(|v| blind_spot_notes(&idx, v))
    }

    /// Panics unless [`check_no_network`](Trace::check_no_network) passes.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.assert_no_network();
    /// # Ok::<(), probity::Error>(())
    /// ```
    #[track_caller]
    pub fn assert_no_network(&self) {
        ok_or_panic(self.check_no_network());
    }

    /// Checks that every network destination of the process tree (the
    /// address of a `connect`, or of a `sendto`, `sendmsg` or `sendmmsg`:
    /// the one it names, else the connected socket's) is in `allowed`: IP
    /// addresses (`127.0.0.1`, `::1`), CIDR blocks (`10.0.0.0/8`) or host
    /// names (`localhost`, `example.com`). IPv4-mapped IPv6 addresses count
    /// as IPv4.
    ///
    /// A host name allows only addresses probity itself saw it resolve to,
    /// from a source the traced program could not steer: the addresses
    /// `/etc/hosts` gave it when the command started (and the loopback
    /// addresses for `localhost`), and those of DNS answers for it that the
    /// kernel saw arrive over UDP from a nameserver of `/etc/resolv.conf`
    /// as it was when the command started (port 53). Answers are not
    /// believed when the trace shows a way the tree could have forged one:
    /// a process that bound port 53, opened a raw or packet socket,
    /// entered another network namespace with `setns`, had a second
    /// thread, or shared or wrote another process's memory (the answer's
    /// bytes are read from the receiver's memory when the call returns).
    /// What the program reports itself (a `getaddrinfo` or
    /// `gethostbyname` the preload tracer saw) is a claim: it is shown
    /// next to a destination that breaks the expectation, and never allows
    /// one. A name allows the addresses it resolved to; it does not show
    /// that the program meant to reach that host, nor that nothing else
    /// is served at those addresses. Only whole answers count: capture
    /// enough of each buffer (`with_buffer_bytes(512)`, `probity run -s
    /// 512`). An allow-list with a host name also allows DNS queries to
    /// port 53 of the nameservers, without which no name could be looked
    /// up (a query's name can carry data to the servers of any domain).
    ///
    /// Fails, saying why, when events were lost, a process was not covered
    /// by the eBPF tracer, or a destination was not recorded: a send
    /// naming no address on a socket whose `connect` is not in the trace
    /// (or on a descriptor the trace never saw created), a `sendmmsg`
    /// that sent several messages whose first names an address (only the
    /// first message's is recorded), or a channel whose traffic probity
    /// does not see: io_uring, a raw, packet or other non-internet
    /// network socket, a descriptor taken from another process with
    /// `pidfd_getfd`, a write on a descriptor the trace never saw created
    /// after a message that can carry descriptors was received. A `sendmmsg` whose first message names no address,
    /// on a connected socket, is taken to send every message to the
    /// socket's peer, as glibc's resolver does; a later message naming
    /// another address would not be seen.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.check_network_only_to(["127.0.0.0/8", "::1", "localhost"])?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_network_only_to<I, S>(&self, allowed: I) -> Result<(), Violation>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let allowed: Vec<String> = allowed.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let expectation = format!("network access only to {}", list(&allowed));
        let mut nets = Vec::new();
        let mut hosts = Vec::new();
        for a in &allowed {
            if let Some(n) = crate::trace::query::parse_net(a) {
                nets.push(n);
            } else if is_host_name(a) {
                hosts.push(a.trim_end_matches('.').to_ascii_lowercase());
            } else {
                let problem = format!("`{a}` is not an IP address, a CIDR block or a host name");
                return Err(Violation::new(ViolationKind::Invalid, expectation, problem, self));
            }
        }
        let idx = Index::new(self);
        let resolution = &self.outcome.resolution;
        // Addresses the allowed names resolved to, from trusted sources.
        let mut resolved: Vec<IpAddr> = hosts.iter().flat_map(|h| resolution.host_addrs(h)).collect();
        let distrust = if hosts.is_empty() { Vec::new() } else { dns_distrust(&idx) };
        let mut bad = Vec::new();
        let mut undecided = blind_spots(&idx);
        let mut names: Vec<(usize, String)> = Vec::new();
        // What the program's own lookups claim, for the message only.
        let mut claims = crate::net::HostLinker::default();
        // An answer for an allowed name came, and was not believed.
        let mut ignored_answers = false;
        let mut order: Vec<usize> = (0..self.events.len()).collect();
        order.sort_by_key(|&i| (self.events[i].ts_ns, i));
        for i in order {
            let e = &self.events[i];
            claims.learn_from(e);
            if let Some(d) = trusted_answer(resolution, e).filter(|d| hosts.contains(&d.name.to_ascii_lowercase())) {
                if distrust.is_empty() {
                    resolved.extend(d.addrs.iter().map(|ip| canonical_ip(*ip)));
                } else {
                    ignored_answers = true;
                }
            }
            match destination(&idx, i) {
                Dest::None => {}
                Dest::Ip(ip, _) if nets.iter().any(|n| n.contains(&ip)) || resolved.contains(&ip) => {}
                // Names are looked up through the nameservers: allowing a
                // name allows asking them.
                Dest::Ip(ip, 53) if !hosts.is_empty() && resolution.is_nameserver(ip) => {}
                Dest::Ip(ip, _) => {
                    if let Some(n) = claims.name_for(e.pid, ip) {
                        let n = n.to_ascii_lowercase();
                        let note = if hosts.contains(&n) {
                            format!("resolved as {n}, by the program's own account, which allows nothing")
                        } else {
                            format!("resolved as {n}")
                        };
                        names.push((i, note));
                    }
                    bad.push(i);
                }
                Dest::Unknown(why) => undecided.push((i, why)),
            }
        }
        bad.sort_unstable();
        if !bad.is_empty() {
            let mut v =
                found(&idx, &expectation, &bad, |i| names.iter().find(|(j, _)| *j == i).map(|(_, n)| n.clone()));
            if !hosts.is_empty() {
                v = v.note(
                    "a host name allows the addresses /etc/hosts gave it when the command started, and those of DNS answers the kernel saw arrive from a nameserver of /etc/resolv.conf; what the program reports of its own lookups allows nothing",
                );
            }
            if ignored_answers {
                let mut whys: Vec<&str> = distrust.iter().map(|(_, why)| why.as_str()).collect();
                let more = whys.len().saturating_sub(MAX_LISTED);
                whys.truncate(MAX_LISTED);
                let more = if more > 0 { format!("; and {more} more") } else { String::new() };
                v = v.note(format!("DNS answers were not believed: {}{more}", whys.join("; ")));
            }
            return Err(v);
        }
        undecided.sort_unstable();
        undecided.dedup_by_key(|(i, _)| *i);
        absence(&idx, &expectation, Some("syscall"), None, &undecided).map_err(|v| blind_spot_notes(&idx, v))
    }

    /// Panics unless [`check_network_only_to`](Trace::check_network_only_to) passes.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.assert_network_only_to(["127.0.0.0/8"]);
    /// # Ok::<(), probity::Error>(())
    /// ```
    #[track_caller]
    pub fn assert_network_only_to<I, S>(&self, allowed: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        ok_or_panic(self.check_network_only_to(allowed));
    }

    /// Checks that no TCP segment of the process tree was retransmitted.
    /// Retransmits fire in softirq or timer context; each is charged to
    /// the process that owns the socket. Fails, saying why, when events
    /// were lost (including sockets the kernel's socket map had no room
    /// for) or a process was not covered by the eBPF tracer.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.check_no_retransmits()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_no_retransmits(&self) -> Result<(), Violation> {
        let idx = Index::new(self);
        let expectation = "no TCP retransmits";
        let bad: Vec<usize> = (0..self.events.len())
            .filter(|&i| self.events[i].as_net().is_some_and(|n| n.op == crate::event::NetOp::Retransmit))
            .collect();
        if !bad.is_empty() {
            return Err(found(&idx, expectation, &bad, |_| None));
        }
        absence(&idx, expectation, Some("net"), None, &[])
    }

    /// Panics unless [`check_no_retransmits`](Trace::check_no_retransmits) passes.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.assert_no_retransmits();
    /// # Ok::<(), probity::Error>(())
    /// ```
    #[track_caller]
    pub fn assert_no_retransmits(&self) {
        ok_or_panic(self.check_no_retransmits());
    }
}

/// Whether `s` can be a host name: letters, digits, `-`, `_` and dots.
impl Trace {
    /// Checks one entry of the allow-list of
    /// [`check_network_only_to`](Trace::check_network_only_to) before any
    /// trace exists, so that a mistyped entry is refused up front rather
    /// than failing the check after the run; the error says what the entry
    /// may be.
    ///
    /// ```
    /// assert!(probity::Trace::check_allowed_destination("10.0.0.0/8").is_ok());
    /// assert!(probity::Trace::check_allowed_destination("999.1.1.1/99").is_err());
    /// ```
    pub fn check_allowed_destination(entry: &str) -> Result<(), String> {
        if crate::trace::query::parse_net(entry).is_some() || is_host_name(entry) {
            return Ok(());
        }
        Err(format!(
            "`{entry}` is not an IP address (127.0.0.1, ::1), a CIDR block (10.0.0.0/8) or a host name \
             (letters, digits, `-`, `_` and `.`, at most 253 bytes, with a letter)"
        ))
    }
}

fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes().any(|b| b.is_ascii_alphabetic())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[track_caller]
fn ok_or_panic(r: Result<(), Violation>) {
    if let Err(v) = r {
        panic!("{v}");
    }
}

/// Events that touched `want` (or, when none did, a file of the same
/// name), listed to help see why an expected change is missing.
fn near_misses(idx: &Index<'_>, v: Violation, want: &Resolved) -> Violation {
    let n = idx.trace.events.len();
    // Calls only: a libc call where a syscall says the same is left out.
    let targets = |i: usize| {
        call(idx, i).and_then(|_| idx.access(i)).map(|a| a.targets().cloned().collect::<Vec<_>>()).unwrap_or_default()
    };
    let same: Vec<usize> = (0..n).filter(|&i| targets(i).contains(want)).collect();
    if !same.is_empty() {
        return v.with_events(idx, &same, |_| None).titled("the calls that touched it");
    }
    let name = want.as_os().map(base_name).unwrap_or_default().to_owned();
    let similar: Vec<usize> =
        (0..n).filter(|&i| targets(i).iter().filter_map(Resolved::as_os).any(|p| base_name(p) == name)).collect();
    if similar.is_empty() || name.is_empty() {
        return v.note("nothing touched that path");
    }
    v.with_events(idx, &similar, |_| None).titled("nothing touched that path; the calls on files of the same name")
}

fn missing_execs(idx: &Index<'_>, expectation: &str, missing: &[String], execs: &[(usize, &OsStr)]) -> Violation {
    let problem = format!("these were never exec'd: {}", list(missing));
    let v = Violation::new(ViolationKind::Missing, expectation, problem, idx.trace);
    let all: Vec<usize> = execs.iter().map(|(i, _)| *i).collect();
    if all.is_empty() {
        return v.note("nothing was exec'd");
    }
    v.with_events(idx, &all, |_| None).titled("the execs that happened")
}

const INET_FAMILIES: [i32; 3] = [libc::AF_INET, libc::AF_INET6, libc::AF_PACKET];

/// Address families besides [`INET_FAMILIES`] whose sockets reach beyond
/// this machine's processes, or move packets past the sockets the tracer
/// follows: their traffic and destinations are not in the trace.
const OTHER_NETWORK_FAMILIES: [i32; 11] = [
    libc::AF_VSOCK,
    libc::AF_XDP,
    libc::AF_TIPC,
    libc::AF_RDS,
    libc::AF_CAN,
    libc::AF_BLUETOOTH,
    libc::AF_AX25,
    libc::AF_X25,
    libc::AF_IPX,
    libc::AF_APPLETALK,
    libc::AF_ATMPVC,
];

/// The address family a `socket` or `socketpair` call names, and its type
/// without flags.
fn socket_kind(s: &Call<'_>) -> Option<(i32, i32)> {
    if !matches!(s.name, "socket" | "socketpair") {
        return None;
    }
    let int = |a: Option<&Arg>| match a {
        Some(Arg::Flags { value, .. }) => Some(*value as i32),
        Some(Arg::Int(v)) => Some(*v as i32),
        _ => None,
    };
    Some((int(s.args.first())?, int(s.args.get(1)).unwrap_or(0) & 0xf))
}

/// Whether syscall `i` is network access.
fn is_network(idx: &Index<'_>, i: usize) -> bool {
    if idx.trace.events[i].as_net().is_some() {
        return true;
    }
    let Some(s) = call(idx, i) else { return false };
    if let Some((family, _)) = socket_kind(&s) {
        return INET_FAMILIES.contains(&family) || OTHER_NETWORK_FAMILIES.contains(&family);
    }
    if s.args.iter().any(|a| matches!(a.sockaddr(), Some(SockAddr::Inet { .. }))) {
        return true;
    }
    // Working on an internet socket: its network calls and data transfers
    // (closing one is not network access).
    let data = matches!(s.name, "read" | "write" | "readv" | "writev" | "pread64" | "pwrite64" | "splice" | "sendfile");
    (data || crate::Class::Network.contains(s.name))
        && matches!(idx.access(i).and_then(|a| a.fd.as_deref()), Some(FdTarget::Socket { family, .. }) if INET_FAMILIES.contains(family))
}

const IO_URING: &str = "it set up io_uring, whose submissions probity does not decode (a socket, connect or send made through it is not in the trace)";

/// The events that opened a channel whose network traffic the tracer
/// does not see, each with why: the network gates cannot pass over them.
fn blind_spots(idx: &Index<'_>) -> Vec<(usize, &'static str)> {
    let mut out = Vec::new();
    // Processes that received a message on a socket that can carry
    // descriptors (a Unix socket, or one from outside the tree).
    let mut may_hold_received: std::collections::HashSet<u32> = std::collections::HashSet::new();
    let received_by = |pid: u32, set: &std::collections::HashSet<u32>| {
        let mut p = Some(pid);
        let mut hops = 0;
        while let Some(q) = p {
            if set.contains(&q) {
                return true;
            }
            hops += 1;
            p = idx.procs.get(&q).and_then(|x| x.parent).filter(|_| hops <= idx.procs.len());
        }
        false
    };
    for (i, e) in idx.trace.events.iter().enumerate() {
        let Some(s) = e.as_syscall() else { continue };
        let ok = s.ret.is_some_and(|r| r >= 0) && !s.failed();
        let unknown_fd = || idx.access(i).is_some_and(|a| a.fd.is_none());
        let fd_at_least_3 = || matches!(s.args.first(), Some(Arg::Fd(fd)) if *fd >= 3);
        let why = match s.name.as_ref() {
            "recvmsg" | "recvmmsg" if ok => {
                match idx.access(i).and_then(|a| a.fd.as_deref()) {
                    Some(FdTarget::Socket { family, .. }) if *family == libc::AF_UNIX => {
                        may_hold_received.insert(e.pid);
                    }
                    None => {
                        may_hold_received.insert(e.pid);
                    }
                    _ => {}
                }
                continue;
            }
            "write" | "writev" | "pwrite64" | "pwritev" | "pwritev2" | "sendfile"
                if ok && unknown_fd() && fd_at_least_3() && received_by(e.pid, &may_hold_received) =>
            {
                "it wrote to a descriptor the trace never saw created, after its process (or an ancestor) received a message that can carry descriptors (SCM_RIGHTS): it may be a socket from outside the tree"
            }
            // A failed setup made no ring; a ring from outside the tree is
            // caught where it is used.
            "io_uring_setup" if ok => IO_URING,
            "io_uring_enter" | "io_uring_register" if unknown_fd() => {
                "it used an io_uring the trace never saw set up (inherited or received), whose submissions probity does not decode"
            }
            "pidfd_getfd" if ok => {
                "it took a descriptor from another process with pidfd_getfd; probity does not know what it refers to"
            }
            "socket" if ok => match call(idx, i).as_ref().and_then(socket_kind) {
                Some((libc::AF_PACKET, _)) => {
                    "it opened a packet socket: where its frames go is in their bytes, which probity does not decode"
                }
                Some((libc::AF_INET | libc::AF_INET6, libc::SOCK_RAW)) => {
                    "it opened a raw socket: with IP_HDRINCL where its packets go is in their bytes, which probity does not decode"
                }
                Some((f, _)) if OTHER_NETWORK_FAMILIES.contains(&f) => {
                    "it opened a socket of a family whose destinations probity does not record"
                }
                _ => continue,
            },
            _ => continue,
        };
        out.push((i, why));
    }
    out
}

/// Adds to a violation, for each process that set up io_uring, a note
/// naming it and when.
fn blind_spot_notes(idx: &Index<'_>, mut v: Violation) -> Violation {
    if v.kind() != ViolationKind::Undecided {
        return v;
    }
    for e in &idx.trace.events {
        if e.as_syscall().is_some_and(|s| s.name == "io_uring_setup" && s.ret.is_some_and(|r| r >= 0)) {
            v = v.note(format!(
                "process {} set up io_uring at {}, whose submissions probity does not decode: the network gates cannot tell what it sent",
                e.pid,
                offset(e.ts_ns, idx.trace.start_ns())
            ));
        }
    }
    v
}

/// The DNS answer event `e` is, when the kernel saw it arrive over UDP
/// from port 53 of a nameserver probity read before the command started.
fn trusted_answer<'e>(resolution: &crate::trace::Resolution, e: &'e Event) -> Option<&'e crate::event::Dns> {
    let n = e.as_net()?;
    let d = n.dns.as_deref()?;
    let peer = n.peer?;
    (n.op == crate::event::NetOp::Receive
        && n.protocol == crate::event::Protocol::Udp
        && d.response
        && !d.truncated
        && peer.port() == 53
        && resolution.is_nameserver(peer.ip()))
    .then_some(d)
}

/// Why the DNS answers of this trace cannot be believed: the events that
/// show the tree could have forged one. The address and bytes of a
/// received datagram are read from the receiver's memory when the call
/// returns, so another thread or process writing that memory could
/// change them; and a process that can send from port 53, or from any
/// address, or that moved to a network namespace probity did not see made,
/// can answer its own queries.
fn dns_distrust(idx: &Index<'_>) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, e) in idx.trace.events.iter().enumerate() {
        let Some(s) = e.as_syscall() else { continue };
        let ok = s.ret.is_some_and(|r| r >= 0) && !s.failed();
        let pid = e.pid;
        let flag = |n: usize| match s.args.get(n) {
            Some(Arg::Flags { value, .. }) => *value,
            Some(Arg::Int(v)) => *v as u64,
            _ => 0,
        };
        let child_never_execd = || {
            s.ret
                .and_then(|r| u32::try_from(r).ok())
                .and_then(|c| idx.procs.get(&c))
                .is_some_and(|c| c.pid != pid && c.execs.is_empty())
        };
        let why = match s.name.as_ref() {
            "bind" if ok => match s.args.iter().find_map(|a| a.sockaddr()) {
                Some(SockAddr::Inet { addr }) if addr.port() == 53 => format!("process {pid} bound port 53"),
                _ => continue,
            },
            "socket" if ok => match call(idx, i).as_ref().and_then(socket_kind) {
                Some((libc::AF_PACKET, _)) | Some((libc::AF_INET | libc::AF_INET6, libc::SOCK_RAW)) => {
                    format!("process {pid} opened a raw or packet socket, which can send from any address")
                }
                _ => continue,
            },
            "setns" => format!("process {pid} called setns, and may have entered a network namespace probity did not see made"),
            "process_vm_writev" | "ptrace" | "shmat" => format!("process {pid} called {}, and may have written another process's memory", s.name),
            "open" | "openat" | "openat2"
                if s.args.iter().any(|a| matches!(a, Arg::Path { path, .. } if path.as_bytes().starts_with(b"/proc/") && path.as_bytes().ends_with(b"/mem"))) =>
            {
                format!("process {pid} opened a process's memory file, and may have written another process's memory")
            }
            "mmap" if ok && flag(3) & 0x3 != 0 && flag(3) & libc::MAP_PRIVATE as u64 == 0 => {
                format!("process {pid} mapped memory shared with other processes")
            }
            "clone" if ok && flag(0) & libc::CLONE_VM as u64 != 0 && flag(0) & libc::CLONE_THREAD as u64 == 0 && child_never_execd() => {
                format!("process {pid} made a process sharing its memory (clone with CLONE_VM) that never exec'd")
            }
            "clone3" if ok && child_never_execd() => {
                format!("process {pid} made a process with clone3 (whose flags are not recorded) that never exec'd, and may share its memory")
            }
            _ => continue,
        };
        out.push((i, why));
    }
    for p in idx.procs.values() {
        if p.threads.iter().any(|&t| t != p.pid) {
            out.push((0, format!("process {} had more than one thread", p.pid)));
        }
    }
    // The ways to answer directly first, each reason once.
    out.sort_by_key(|(_, why)| !why.contains("port 53") && !why.contains("raw") && !why.contains("setns"));
    let mut seen = std::collections::HashSet::new();
    out.retain(|(_, why)| seen.insert(why.clone()));
    out
}

enum Dest {
    None,
    /// An address and port.
    Ip(IpAddr, u16),
    Unknown(&'static str),
}

fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The messages a `sendmmsg` sent: its result, or the count it asked for
/// when the result is unknown.
fn messages_sent(s: &Call<'_>) -> Option<i64> {
    s.ret.or(match s.args.get(2) {
        Some(Arg::Int(n)) => Some(*n),
        _ => None,
    })
}

/// Where syscall `i` sends to, when it is a send or a connect.
fn destination(idx: &Index<'_>, i: usize) -> Dest {
    let Some(s) = call(idx, i) else { return Dest::None };
    let addr = s.args.iter().find_map(|a| match a.sockaddr() {
        Some(SockAddr::Inet { addr }) => Some((canonical_ip(addr.ip()), addr.port())),
        _ => None,
    });
    let target = idx.access(i).and_then(|a| a.fd.as_deref());
    let peer = match target {
        Some(FdTarget::Socket { family, peer }) if INET_FAMILIES.contains(family) => Some(match peer {
            Some(SockAddr::Inet { addr }) => Some((canonical_ip(addr.ip()), addr.port())),
            _ => None,
        }),
        _ => None,
    };
    match s.name {
        "connect" => addr.map_or(Dest::None, |(ip, port)| Dest::Ip(ip, port)),
        // Only the first message of a `sendmmsg` is recorded. When it
        // names no address, on a connected socket, the others are taken to
        // name none either (glibc's resolver sends its A and AAAA queries
        // so; see the known limitations in docs/guide.md); when it names
        // one, the others may name others.
        "sendmmsg" if addr.is_some() && messages_sent(&s).is_some_and(|n| n > 1) => {
            Dest::Unknown("only the first message of a sendmmsg is recorded, and it names its own address")
        }
        // A message's address is its `msg_name`.
        "sendto" | "sendmsg" | "sendmmsg" => match (addr, peer) {
            (Some((ip, port)), _) | (None, Some(Some((ip, port)))) => Dest::Ip(ip, port),
            (None, Some(None)) => Dest::Unknown("the socket's destination was not recorded"),
            // Only a socket can be sent on: one the trace never saw made
            // came from outside the tree (inherited, or received from
            // another process), connected to who knows where.
            (None, None) if target.is_none() && s.ok && matches!(idx.trace.events[i].kind, EventKind::Syscall(_)) => {
                Dest::Unknown("it sent on a descriptor the trace never saw created (inherited, or received from another process), whose destination is unknown")
            }
            (None, None) => Dest::None,
        },
        _ => Dest::None,
    }
}

/// Expectations about the events a query selects.
macro_rules! query_checks {
    ($ty:ident, $ctor:literal) => {
        impl<'t> $ty<'t> {
            /// Checks that the query selects no event. Fails, saying why,
            /// when events were lost, a process the query is about was not
            /// covered by a tracer that sees these events, or an event's
            /// path could not be resolved.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("trace.", $ctor, "().named(\"connect\").check_none()?;")]
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn check_none(&self) -> Result<(), Violation> {
                count_check(&self.0, Bound::AtMost(0))
            }

            /// Panics unless [`check_none`](Self::check_none) passes.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("trace.", $ctor, "().named(\"connect\").assert_none();")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            #[track_caller]
            pub fn assert_none(&self) {
                ok_or_panic(self.check_none());
            }

            /// Checks that the query selects exactly `n` events. Fails,
            /// saying why, when it cannot be shown that there are no more.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("trace.", $ctor, "().named(\"execve\").check_exactly(1)?;")]
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn check_exactly(&self, n: usize) -> Result<(), Violation> {
                count_check(&self.0, Bound::Exactly(n))
            }

            /// Panics unless [`check_exactly`](Self::check_exactly) passes.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("trace.", $ctor, "().named(\"execve\").assert_exactly(1);")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            #[track_caller]
            pub fn assert_exactly(&self, n: usize) {
                ok_or_panic(self.check_exactly(n));
            }

            /// Checks that the query selects at most `n` events. Fails,
            /// saying why, when it cannot be shown that there are no more.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("trace.", $ctor, "().named(\"openat\").check_at_most(100)?;")]
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn check_at_most(&self, n: usize) -> Result<(), Violation> {
                count_check(&self.0, Bound::AtMost(n))
            }

            /// Panics unless [`check_at_most`](Self::check_at_most) passes.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("trace.", $ctor, "().named(\"openat\").assert_at_most(100);")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            #[track_caller]
            pub fn assert_at_most(&self, n: usize) {
                ok_or_panic(self.check_at_most(n));
            }

            /// Checks that the query selects at least `n` events.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("trace.", $ctor, "().named(\"execve\").check_at_least(1)?;")]
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn check_at_least(&self, n: usize) -> Result<(), Violation> {
                count_check(&self.0, Bound::AtLeast(n))
            }

            /// Panics unless [`check_at_least`](Self::check_at_least) passes.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("trace.", $ctor, "().named(\"execve\").assert_at_least(1);")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            #[track_caller]
            pub fn assert_at_least(&self, n: usize) {
                ok_or_panic(self.check_at_least(n));
            }

            /// Checks that this query's events all happen before any of
            /// `later`'s: both select something, and the last of these ends
            /// before the first of `later` starts. To compare only the
            /// first occurrence, narrow this query (for example with
            /// [`before`](Self::before)). Fails, saying why, when events
            /// were lost.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("trace.", $ctor, "().named(\"execve\").check_before(trace.syscalls().named(\"exit_group\"))?;")]
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn check_before(&self, later: impl Into<Events<'t>>) -> Result<(), Violation> {
                order_check(&self.0, &later.into().0)
            }

            /// Panics unless [`check_before`](Self::check_before) passes.
            ///
            /// ```no_run
            /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
            #[doc = concat!("trace.", $ctor, "().named(\"execve\").assert_before(trace.syscalls().named(\"exit_group\"));")]
            /// # Ok::<(), probity::Error>(())
            /// ```
            #[track_caller]
            pub fn assert_before(&self, later: impl Into<Events<'t>>) {
                ok_or_panic(self.check_before(later));
            }
        }
    };
}

query_checks!(Events, "events");
query_checks!(Syscalls, "syscalls");

/// A syscall query is also a query over events (that are syscalls).
impl<'t> From<Syscalls<'t>> for Events<'t> {
    fn from(s: Syscalls<'t>) -> Events<'t> {
        Events(s.0)
    }
}

#[derive(Clone, Copy)]
enum Bound {
    Exactly(usize),
    AtMost(usize),
    AtLeast(usize),
}

fn count_check(q: &Query<'_>, bound: Bound) -> Result<(), Violation> {
    let what = q.describe();
    let expectation = match bound {
        Bound::AtMost(0) => format!("no [{what}]"),
        Bound::Exactly(n) => format!("exactly {n} [{what}]"),
        Bound::AtMost(n) => format!("at most {n} [{what}]"),
        Bound::AtLeast(n) => format!("at least {n} [{what}]"),
    };
    let (hits, undecided) = q.partition();
    let idx = q.index();
    let n = hits.len();
    let (too_many, too_few) = match bound {
        Bound::Exactly(k) => (n > k, n < k),
        Bound::AtMost(k) => (n > k, false),
        Bound::AtLeast(k) => (false, n < k),
    };
    if too_many {
        return Err(found_count(idx, &expectation, &hits));
    }
    if too_few {
        let problem = format!("found {n}");
        let v = Violation::new(ViolationKind::Missing, expectation, problem, idx.trace);
        let v = v.with_events(idx, &hits, |_| None);
        return Err(if undecided.is_empty() {
            v
        } else {
            v.note(format!("{} more events might match but their paths could not be resolved", undecided.len()))
        });
    }
    match bound {
        Bound::AtLeast(_) => Ok(()),
        Bound::Exactly(k) | Bound::AtMost(k) => {
            // The undecided events only matter if they could push the count
            // over the bound.
            let undecided: &[(usize, &'static str)] = if n + undecided.len() > k { &undecided } else { &[] };
            absence(idx, &expectation, q.family().as_deref(), Some(q), undecided)
        }
    }
}

fn found_count(idx: &Index<'_>, expectation: &str, hits: &[usize]) -> Violation {
    let n = hits.len();
    let problem = format!("found {n}");
    Violation::new(ViolationKind::Found, expectation, problem, idx.trace).with_events(idx, hits, |_| None)
}

fn order_check(a: &Query<'_>, b: &Query<'_>) -> Result<(), Violation> {
    let (da, db) = (a.describe(), b.describe());
    let expectation = format!("all [{da}] before any [{db}]");
    let idx = a.index();
    let trace = idx.trace;
    let (hits_a, _) = a.partition();
    let (hits_b, _) = b.partition();
    for (hits, d) in [(&hits_a, &da), (&hits_b, &db)] {
        if hits.is_empty() {
            let v = Violation::new(ViolationKind::Missing, expectation.clone(), format!("there are no [{d}]"), trace);
            return Err(v);
        }
    }
    let events = &trace.events;
    let first_b = *hits_b.iter().min_by_key(|&&i| (events[i].ts_ns, i)).unwrap_or(&hits_b[0]);
    let b_start = events[first_b].ts_ns;
    let mut late_a: Vec<usize> =
        hits_a.iter().copied().filter(|&i| events[i].end_ns() > b_start && i != first_b).collect();
    if !late_a.is_empty() {
        late_a.sort_by_key(|&i| (events[i].ts_ns, i));
        let mut shown = vec![first_b];
        shown.extend(late_a.iter().copied());
        let n = late_a.len();
        let problem = format!("the first [{db}] starts before {n} [{da}] {}", if n == 1 { "ends" } else { "end" });
        let v = Violation::new(ViolationKind::Order, expectation, problem, trace);
        return Err(v.with_events(idx, &shown, |i| (i == first_b).then(|| format!("the first [{db}]"))));
    }
    // Nothing out of order in the trace; lost events could still be.
    absence(idx, &expectation, None, None, &[])
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::trace::index::tests::{flags, path, sys, trace};

    fn inet(addr: &str) -> Arg {
        Arg::Sockaddr(SockAddr::Inet { addr: addr.parse::<SocketAddr>().unwrap() })
    }

    /// A `sendmsg` or `sendmmsg` on an unconnected socket is checked
    /// against the address its message names.
    #[test]
    fn a_message_is_checked_against_the_address_it_names() {
        let msg = |addr: &str| Arg::Msg {
            name: Some(SockAddr::Inet { addr: addr.parse::<SocketAddr>().unwrap() }),
            data: b"q".to_vec(),
            truncated: false,
        };
        let udp =
            || sys(1, 10, 10, "socket", vec![flags(libc::AF_INET, "AF_INET"), flags(2, "SOCK_DGRAM"), Arg::Int(0)], 3);
        let t = trace(
            vec![udp(), sys(2, 10, 10, "sendmsg", vec![Arg::Fd(3), msg("192.0.2.1:53"), flags(0, "0")], 1)],
            None,
        );
        t.assert_network_only_to(["192.0.2.0/24"]);
        let v = t.check_network_only_to(["127.0.0.1"]).unwrap_err();
        assert_eq!(v.kind(), ViolationKind::Found, "{v}");
        assert!(v.to_string().contains("192.0.2.1"), "{v}");
        // One message of several: the others may name other addresses.
        let t = trace(
            vec![
                udp(),
                sys(2, 10, 10, "sendmmsg", vec![Arg::Fd(3), msg("192.0.2.1:53"), Arg::Int(2), flags(0, "0")], 2),
            ],
            None,
        );
        let v = t.check_network_only_to(["192.0.2.0/24"]).unwrap_err();
        assert_eq!(v.kind(), ViolationKind::Undecided, "{v}");
        // One message asked for, or two asked for and one sent: decided.
        for (asked, sent) in [(1, 1), (2, 1)] {
            let t = trace(
                vec![
                    udp(),
                    sys(
                        2,
                        10,
                        10,
                        "sendmmsg",
                        vec![Arg::Fd(3), msg("192.0.2.1:53"), Arg::Int(asked), flags(0, "0")],
                        sent,
                    ),
                ],
                None,
            );
            t.assert_network_only_to(["192.0.2.0/24"]);
        }
    }

    #[test]
    fn destinations_against_allowed_blocks() {
        let t = trace(
            vec![
                sys(
                    1,
                    10,
                    10,
                    "socket",
                    vec![flags(libc::AF_INET6, "AF_INET6"), flags(1, "SOCK_STREAM"), Arg::Int(0)],
                    3,
                ),
                sys(2, 10, 10, "connect", vec![Arg::Fd(3), inet("[::ffff:10.1.2.3]:80"), Arg::Int(28)], 0),
                sys(3, 10, 10, "sendmsg", vec![Arg::Fd(3), Arg::Ptr(1), flags(0, "0")], 5),
            ],
            None,
        );
        t.assert_network_only_to(["10.0.0.0/8"]);
        let v = t.check_network_only_to(["10.1.2.4", "::ffff:10.1.2.3/128"]).unwrap_err();
        assert_eq!(v.kind(), ViolationKind::Found, "mapped addresses are IPv4: {v}");
        assert_eq!(v.events().count(), 2, "the connect, and the send on the connected socket: {v}");
        let v = t.check_no_network().unwrap_err();
        assert_eq!(v.events().count(), 3);
        // A message: expectation, events with time and program, excerpt.
        let text = v.to_string();
        assert!(text.starts_with("expected no network access"), "{text}");
        assert!(text.contains("\n  +0.000000s [10] socket(AF_INET6, SOCK_STREAM, 0) = 3 <0.000000>\n"), "{text}");
        assert!(text.contains("\n  > [10] socket("), "{text}");
        assert_eq!(
            v.stable_text().lines().nth(2),
            Some("  [1] socket(AF_INET6, SOCK_STREAM, 0) = 3"),
            "{}",
            v.stable_text()
        );
    }

    fn libc_lookup(ts: u64, name: &str, addr: &str) -> Event {
        Event {
            ts_ns: ts,
            pid: 10,
            tid: 10,
            kind: EventKind::Libc(crate::event::LibcCall {
                function: "getaddrinfo".into(),
                args: vec![path(name), Arg::Ptr(0), Arg::Strings { items: vec![addr.into()], truncated: false }],
                ret: Some(Arg::Int(0)),
                errno: None,
                duration_ns: 1,
                parent: None,
            }),
        }
    }

    fn answer(ts: u64, from: &str, name: &str, addr: &str) -> Event {
        let dns = crate::event::Dns {
            name: name.into(),
            qtype: "A".into(),
            response: true,
            addrs: vec![addr.parse().unwrap()],
            truncated: false,
        };
        let net = crate::event::Net {
            op: crate::event::NetOp::Receive,
            protocol: crate::event::Protocol::Udp,
            local: None,
            peer: Some(from.parse().unwrap()),
            conn: None,
            host: None,
            old_state: None,
            state: None,
            bytes_sent: None,
            bytes_received: None,
            retransmits: None,
            len: Some(40),
            dns: Some(Box::new(dns)),
            open_at_end: false,
        };
        Event { ts_ns: ts, pid: 10, tid: 10, kind: EventKind::Net(net) }
    }

    fn tcp(ts: u64, fd: i64) -> Event {
        sys(ts, 10, 10, "socket", vec![flags(libc::AF_INET, "AF_INET"), flags(1, "SOCK_STREAM"), Arg::Int(0)], fd)
    }

    fn connect(ts: u64, fd: i32, addr: &str) -> Event {
        sys(ts, 10, 10, "connect", vec![Arg::Fd(fd), inet(addr), Arg::Int(16)], 0)
    }

    fn with_resolution(mut t: Trace, resolv: &str, hosts: &str) -> Trace {
        t.outcome.resolution = crate::trace::Resolution::parse(resolv, hosts);
        t
    }

    /// What the program says it resolved never allows a destination; it
    /// is shown as its own account.
    #[test]
    fn a_lookup_the_program_reports_allows_nothing() {
        let t = trace(
            vec![libc_lookup(1, "allowed.example", "127.0.0.1:80"), tcp(2, 3), connect(3, 3, "127.0.0.1:80")],
            None,
        );
        let t = with_resolution(t, "nameserver 10.0.0.53\n", "127.0.0.1 localhost\n");
        let v = t.check_network_only_to(["allowed.example"]).unwrap_err();
        assert_eq!(v.kind(), ViolationKind::Found, "{v}");
        assert!(
            v.to_string().contains("resolved as allowed.example, by the program's own account, which allows nothing"),
            "{v}"
        );
        // The same address by a name probity resolved before the run.
        t.assert_network_only_to(["localhost"]);
        t.assert_network_only_to(["LOCALHOST."]);
    }

    /// A DNS answer counts when the kernel saw it arrive from a
    /// configured nameserver's port 53, and nothing in the trace could
    /// have forged it.
    #[test]
    fn dns_answers_count_from_configured_nameservers_only() {
        let run = |from: &str, extra: Vec<Event>| {
            let mut events =
                vec![answer(1, from, "allowed.example", "192.0.2.7"), tcp(2, 3), connect(3, 3, "192.0.2.7:443")];
            events.extend(extra);
            with_resolution(trace(events, None), "nameserver 10.0.0.53\n", "")
        };
        run("10.0.0.53:53", vec![]).assert_network_only_to(["allowed.example"]);
        // From another address, or another port: not an answer probity
        // trusts.
        for from in ["10.0.0.54:53", "10.0.0.53:5353"] {
            let v = run(from, vec![]).check_network_only_to(["allowed.example"]).unwrap_err();
            assert_eq!(v.kind(), ViolationKind::Found, "{from}: {v}");
        }
        // A process that bound port 53 could have answered itself.
        let bind = sys(4, 10, 10, "bind", vec![Arg::Fd(3), inet("0.0.0.0:53"), Arg::Int(16)], 0);
        let v = run("10.0.0.53:53", vec![bind]).check_network_only_to(["allowed.example"]).unwrap_err();
        assert!(v.to_string().contains("DNS answers were not believed: process 10 bound port 53"), "{v}");
        // A second thread could have rewritten the received bytes.
        let thread = sys(4, 10, 11, "getpid", vec![], 10);
        let v = run("10.0.0.53:53", vec![thread]).check_network_only_to(["allowed.example"]).unwrap_err();
        assert!(v.to_string().contains("process 10 had more than one thread"), "{v}");
        // Another process's memory file, opened to write an answer in.
        let mem = sys(4, 10, 10, "openat", vec![Arg::Fd(-100), path("/proc/11/mem"), flags(2, "O_RDWR")], 4);
        let v = run("10.0.0.53:53", vec![mem]).check_network_only_to(["allowed.example"]).unwrap_err();
        assert!(v.to_string().contains("opened a process's memory file"), "{v}");
        // The answer names the addresses of the name asked, not others.
        let v = run("10.0.0.53:53", vec![]).check_network_only_to(["other.example"]).unwrap_err();
        assert_eq!(v.kind(), ViolationKind::Found, "{v}");
        // A host name allows asking the nameservers (port 53 only).
        let ask = |to: &str| {
            let udp =
                sys(1, 10, 10, "socket", vec![flags(libc::AF_INET, "AF_INET"), flags(2, "SOCK_DGRAM"), Arg::Int(0)], 5);
            let send = sys(
                2,
                10,
                10,
                "sendto",
                vec![Arg::Fd(5), Arg::Ptr(1), Arg::Int(3), flags(0, "0"), inet(to), Arg::Int(16)],
                3,
            );
            with_resolution(trace(vec![udp, send], None), "nameserver 10.0.0.53\n", "")
        };
        ask("10.0.0.53:53").assert_network_only_to(["allowed.example"]);
        assert!(ask("10.0.0.53:53").check_network_only_to(["10.9.0.0/16"]).is_err(), "without a name, no");
        assert!(ask("10.0.0.53:80").check_network_only_to(["allowed.example"]).is_err(), "another port");
    }

    /// Channels the tracer does not see into make the network checks
    /// undecided.
    #[test]
    fn unseen_channels_fail_closed() {
        let setup = sys(1, 10, 10, "io_uring_setup", vec![Arg::Int(4), Arg::Ptr(1)], 3);
        let t = trace(vec![setup.clone()], None);
        let v = t.check_no_network().unwrap_err();
        assert_eq!(v.kind(), ViolationKind::Undecided, "{v}");
        assert!(
            v.to_string()
                .contains("note: process 10 set up io_uring at +0.000000s, whose submissions probity does not decode"),
            "{v}"
        );
        assert_eq!(t.check_network_only_to(["10.0.0.1"]).unwrap_err().kind(), ViolationKind::Undecided);
        // A setup that failed made no ring.
        let failed = sys(1, 10, 10, "io_uring_setup", vec![Arg::Int(4), Arg::Ptr(1)], -libc::ENOSYS as i64);
        trace(vec![failed], None).assert_no_network();
        // A ring from outside the tree, used.
        let enter = sys(1, 10, 10, "io_uring_enter", vec![Arg::Fd(7), Arg::Int(1), Arg::Int(1), Arg::Int(1)], 1);
        let v = trace(vec![enter], None).check_no_network().unwrap_err();
        assert!(v.to_string().contains("an io_uring the trace never saw set up"), "{v}");
        // A send on a descriptor the trace never saw made.
        let send = sys(
            1,
            10,
            10,
            "sendto",
            vec![Arg::Fd(5), Arg::Ptr(1), Arg::Int(3), flags(0, "0"), Arg::Ptr(0), Arg::Int(0)],
            3,
        );
        let v = trace(vec![send], None).check_network_only_to(["10.0.0.1"]).unwrap_err();
        assert_eq!(v.kind(), ViolationKind::Undecided, "{v}");
        assert!(v.to_string().contains("a descriptor the trace never saw created"), "{v}");
        // A packet socket: found by check_no_network, undecided for an
        // allow-list.
        let packet =
            sys(1, 10, 10, "socket", vec![flags(libc::AF_PACKET, "AF_PACKET"), flags(3, "SOCK_RAW"), Arg::Int(0)], 3);
        let t = trace(vec![packet], None);
        assert_eq!(t.check_no_network().unwrap_err().kind(), ViolationKind::Found);
        assert_eq!(t.check_network_only_to(["10.0.0.1"]).unwrap_err().kind(), ViolationKind::Undecided);
        let vsock =
            sys(1, 10, 10, "socket", vec![flags(libc::AF_VSOCK, "AF_VSOCK"), flags(1, "SOCK_STREAM"), Arg::Int(0)], 3);
        assert_eq!(trace(vec![vsock], None).check_no_network().unwrap_err().kind(), ViolationKind::Found);
        // A Unix socket is not network.
        let unix =
            sys(1, 10, 10, "socket", vec![flags(libc::AF_UNIX, "AF_UNIX"), flags(1, "SOCK_STREAM"), Arg::Int(0)], 3);
        let send = sys(
            2,
            10,
            10,
            "sendto",
            vec![Arg::Fd(3), Arg::Ptr(1), Arg::Int(3), flags(0, "0"), Arg::Ptr(0), Arg::Int(0)],
            3,
        );
        let t = trace(vec![unix, send], None);
        t.assert_no_network();
        t.assert_network_only_to(["10.0.0.1"]);
    }

    /// Without the eBPF tracer the network checks are not covered.
    #[test]
    fn network_checks_need_the_kernel_tracer() {
        let mut t = trace(vec![libc_lookup(1, "localhost", "127.0.0.1:80")], None);
        t.outcome.tracers = vec![crate::TracerKind::Preload];
        assert_eq!(t.check_no_network().unwrap_err().kind(), ViolationKind::NotCovered);
        assert_eq!(t.check_network_only_to(["localhost"]).unwrap_err().kind(), ViolationKind::NotCovered);
    }

    #[test]
    fn violations_are_errors_that_cross_threads() {
        fn error<T: std::error::Error + Send + Sync + 'static>() {}
        error::<Violation>();
        error::<crate::LoadError>();
        assert!(std::mem::size_of::<Result<(), Violation>>() <= 16);
    }

    #[test]
    fn file_changes_need_success() {
        let t = trace(
            vec![
                sys(
                    1,
                    10,
                    10,
                    "openat",
                    vec![
                        Arg::Fd(libc::AT_FDCWD),
                        path("/d/a"),
                        flags(libc::O_WRONLY | libc::O_CREAT, "O_WRONLY|O_CREAT"),
                    ],
                    -13,
                ),
                sys(2, 10, 10, "mkdir", vec![path("/d/sub"), flags(0o755, "0755")], 0),
                sys(
                    3,
                    10,
                    10,
                    "renameat2",
                    vec![
                        Arg::Fd(libc::AT_FDCWD),
                        path("/d/sub"),
                        Arg::Fd(libc::AT_FDCWD),
                        path("/e/sub"),
                        flags(0, "0"),
                    ],
                    0,
                ),
            ],
            Some("/"),
        );
        assert_eq!(t.check_created("/d/a").unwrap_err().kind(), ViolationKind::Missing);
        t.assert_created("/d/sub");
        t.assert_created("/e/sub");
        t.assert_renamed("/d/sub", "/e/sub");
        t.assert_writes_only_under(["/d", "/e"]);
        let v = t.check_writes_only_under(["/d"]).unwrap_err();
        assert_eq!(v.events().count(), 1, "{v}");
    }
}
