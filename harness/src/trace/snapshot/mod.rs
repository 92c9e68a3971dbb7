//! Snapshots: a view of a trace that stays byte-identical from run to run
//! and machine to machine until the program's behaviour changes, for
//! `insta::assert_snapshot!` (text) and `insta::assert_yaml_snapshot!` or
//! `assert_json_snapshot!` (serde).
//!
//! What changes between runs is taken out or renamed: pids, tids, file
//! descriptors, TCP connections and ephemeral ports are numbered by first
//! appearance;
//! addresses, timestamps and durations are dropped; the temp, home,
//! working and cargo target directories become placeholders; the dynamic
//! loader's, libc's and Python's start-up and their run-time file lookups
//! are left out (see [`Snapshot::with_noise`]); and the events of
//! concurrent tasks are grouped per task, tasks in the order they were
//! created, because their interleaving is not causal.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fmt::{self, Write as _};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde::ser::{Serialize, SerializeSeq, Serializer};

use crate::event::{Arg, Event, EventKind, NetOp, SignalAction, SockAddr, Syscall};
use crate::trace::index::{Access, FdTarget, Index, Resolved};
use crate::trace::query::{Query, Tri};
use crate::trace::Trace;

/// A stable view of a trace, or of the events a query selects.
///
/// Its text ([`Snapshot::text`], also its `Display`) has one strace-like
/// line per event, `[task] call(args) = result`, tasks numbered from 1
/// (`[1:2]` is task 2 of process 1); a libc call reads `libc fopen(...)`
/// and the calls made inside it are indented under it. Its serde form is
/// a list of records with `task`, `depth` (when nested), `kind`
/// (`syscall`, `libc`, `exec`, `new_task`, `thread_exited`, `exited`,
/// `signal`) and the kind's fields, every value a string as the text
/// shows it.
///
/// Every task's events are in program order; tasks come depth first in
/// the order they were created, so a thread's events follow its
/// creator's. Descriptors are numbered by the call that created them, so
/// two threads opening files at once get the same numbers every run; 0
/// to 2 stay as they are. For snapshots that are the same on every
/// machine, run the program with a clean environment
/// (`Command::env_clear`): what it reads from it shows.
///
/// ```no_run
/// use std::process::{Command, Stdio};
///
/// let dir = std::env::temp_dir().join("probity-doc");
/// std::fs::create_dir_all(&dir).unwrap();
/// let mut cmd = Command::new("ls");
/// cmd.arg(&dir).stdout(Stdio::null());
/// let trace = probity::Tracer::new().run(cmd)?;
/// let snap = trace.snapshot().with_replacement(dir.to_str().unwrap(), "<dir>");
/// // insta::assert_snapshot!(snap.text());
/// // insta::assert_yaml_snapshot!(snap);
/// assert!(snap.text().contains(r#"openat(AT_FDCWD, "<dir>", "#));
/// # Ok::<(), probity::Error>(())
/// ```
#[must_use]
pub struct Snapshot<'t> {
    query: Query<'t>,
    select: bool,
    keep_noise: bool,
    fold: bool,
    replacements: Vec<(String, String)>,
}

impl Trace {
    /// A stable view of the whole trace; see [`Snapshot`].
    ///
    /// ```no_run
    /// let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// println!("{}", trace.snapshot());
    /// # Ok::<(), probity::Error>(())
    /// ```
    pub fn snapshot(&self) -> Snapshot<'_> {
        Snapshot::from_query(self.events().0)
    }
}

impl<'t> Snapshot<'t> {
    pub(crate) fn from_query(query: Query<'t>) -> Snapshot<'t> {
        let select = !query.filters.is_empty() || query.syscalls_only;
        Snapshot { query, select, keep_noise: false, fold: false, replacements: Vec::new() }
    }

    /// Keep the loader's and runtimes' noise (default: left out).
    ///
    /// Left out by default, for each program a task exec's:
    /// - the dynamic loader's work: every syscall from the exec until the
    ///   thread pointer is set (`set_tid_address`, or `arch_prctl` with
    ///   `ARCH_SET_FS`) that the loader makes (opening, reading, mapping
    ///   and closing libraries, probing `LD_LIBRARY_PATH`, `brk`,
    ///   `mprotect`);
    /// - then libc's, libraries' and probity's own start-up, until the
    ///   first syscall that is not part of it: `set_robust_list`, `rseq`,
    ///   `prlimit64`, `getrandom`, `getpid`/`gettid`/`getppid`, memory
    ///   calls, and lookups of SELinux, `/proc/filesystems`, locale and
    ///   loader files; with Rust's runtime (`poll` of descriptors 0 to 2)
    ///   also its `SIGPIPE`/`SIGSEGV`/`SIGBUS` handlers and `sigaltstack`.
    ///   The same again in a child after a `fork` the libc layer saw;
    /// - for Python running a script: everything, libc calls included,
    ///   until it first touches the script;
    /// - anywhere: calls on shared libraries, `ld.so` files, locale,
    ///   `gconv` and time zone files (and, in Python, on its library and
    ///   `__pycache__`), with everything done on the descriptors they
    ///   open; memory management (`brk`, anonymous `mmap`, `munmap`,
    ///   `mprotect`, `madvise`, `mremap`, `membarrier`); `futex` (lock
    ///   contention differs from run to run), `rseq` and
    ///   `set_robust_list`; and signals whose delivery changes nothing
    ///   (ignored, or `SIGCHLD`, `SIGURG`, `SIGWINCH`, `SIGCONT` with the
    ///   default action), since when they arrive is up to the scheduler;
    /// - network state changes and retransmits, whose number and timing
    ///   depend on the scheduler and the network (connects, listens,
    ///   accepts, closes with their byte counts, resets and UDP datagrams
    ///   stay; a connection's close and resets are listed last in its
    ///   owner's task, as they arrive when the peer's packets do);
    /// - how threads other than the main one end: glibc's last steps
    ///   (`rt_sigprocmask(SIG_BLOCK, ...)`, `exit`) race with another
    ///   thread's `exit_group`, which kills what still runs (`SIGKILL`), so
    ///   both are left out and `+++ thread exited +++` stays.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// let everything = trace.snapshot().with_noise(true).text();
    /// # Ok::<(), probity::Error>(())
    /// ```
    pub fn with_noise(mut self, keep: bool) -> Self {
        self.keep_noise = keep;
        self
    }

    /// Fold equivalent syscalls into one name and form: `open`, `openat`,
    /// `openat2` and `creat` are `open(path, flags[, mode])`; the stat
    /// family (`stat`, `lstat`, `fstat`, `newfstatat`, `statx`) is
    /// `stat(path)`; `access`/`faccessat*` are `access(path, mode)`;
    /// `unlink`/`unlinkat`, `rmdir`, `rename*`, `mkdir*`, `mknod*`,
    /// `link*`, `symlink*`, `readlink*`, `chmod`/`fchmodat*`,
    /// `chown`/`lchown`/`fchownat`, `utime*` likewise; `clone`, `clone3`,
    /// `fork` and `vfork` are `clone()`; `execve`/`execveat` are
    /// `execve(path, argv)`; `wait4`/`waitid` are `wait()`; and
    /// `dup2`/`dup3`, `pipe`/`pipe2`, `getdents`/`getdents64`,
    /// `poll`/`ppoll`/`select`/`pselect6`, `epoll_wait`/`epoll_pwait*`,
    /// `accept`/`accept4`, `eventfd*`, `signalfd*`, `inotify_init*`,
    /// `epoll_create*` keep their first name. Paths are shown resolved
    /// (absolute, before placeholders), so `openat(3, "x")` on a
    /// directory opened as `/d` reads `open("/d/x", ...)`.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// let folded = trace.snapshot().with_folding(true).text();
    /// # Ok::<(), probity::Error>(())
    /// ```
    pub fn with_folding(mut self, on: bool) -> Self {
        self.fold = on;
        self
    }

    /// Replace `from` with `to` wherever it appears in a path, a string or
    /// a buffer; applied before the built-in placeholders, longest `from`
    /// first.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// let text = trace.snapshot().with_replacement("/srv/data", "<data>").text();
    /// # Ok::<(), probity::Error>(())
    /// ```
    pub fn with_replacement(mut self, from: impl AsRef<str>, to: impl Into<String>) -> Self {
        let from = from.as_ref();
        if !from.is_empty() {
            self.replacements.push((from.to_owned(), to.into()));
        }
        self
    }

    /// The snapshot as text, one line per event (see [`Snapshot`]).
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// for line in trace.snapshot().text().lines() {
    ///     assert!(line.starts_with('['));
    /// }
    /// # Ok::<(), probity::Error>(())
    /// ```
    #[must_use]
    pub fn text(&self) -> String {
        let mut s = String::new();
        for r in self.rows() {
            let _ = writeln!(s, "{}", r.text());
        }
        s
    }

    fn rows(&self) -> Vec<Row> {
        let idx = self.query.index();
        let events = &idx.trace.events;
        let keep: Vec<bool> = (0..events.len()).map(|i| !self.select || self.query.eval(i) == Tri::Yes).collect();
        let noise = if self.keep_noise { vec![false; events.len()] } else { noise(idx) };
        let keep: Vec<bool> = keep.iter().zip(&noise).map(|(k, n)| *k && !n).collect();
        let mut norm = Normalizer::new(&self.replacements);
        let mut rows = Vec::new();
        for item in canonical_order(idx, &keep) {
            let e = &events[item.index];
            let row = match item.as_ {
                As::Event => {
                    let mut row = norm.row(e, idx.access(item.index), self.fold);
                    row.depth = shown_depth(events, &keep, item.index);
                    row
                }
                As::ThreadExit => Row { task: norm.task(e.pid, e.tid), depth: 0, what: What::ThreadExited },
                As::ProcessExit => {
                    let status = match &e.kind {
                        EventKind::Exit(x) => x.status.map_or_else(|| "exited".to_owned(), |s| s.to_string()),
                        _ => String::new(),
                    };
                    Row { task: norm.task(e.pid, e.pid), depth: 0, what: What::Exited { status } }
                }
            };
            rows.push(row);
        }
        rows
    }
}

impl fmt::Display for Snapshot<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl fmt::Debug for Snapshot<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("events", &self.query.describe())
            .field("keep_noise", &self.keep_noise)
            .field("fold", &self.fold)
            .field("replacements", &self.replacements)
            .finish()
    }
}

impl Serialize for Snapshot<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let rows = self.rows();
        let mut seq = s.serialize_seq(Some(rows.len()))?;
        for r in &rows {
            seq.serialize_element(r)?;
        }
        seq.end()
    }
}

/// One line of a snapshot.
#[derive(serde::Serialize)]
pub(crate) struct Row {
    task: String,
    /// How many libc calls (shown) this event was made in.
    #[serde(skip_serializing_if = "crate::trace::is_zero")]
    depth: usize,
    #[serde(flatten)]
    what: What,
}

#[derive(serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum What {
    Syscall {
        name: String,
        args: Vec<String>,
        result: String,
    },
    Exec {
        program: String,
        argv: Vec<String>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        argv_truncated: bool,
    },
    NewTask {
        child: String,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        untracked: bool,
    },
    Libc {
        function: String,
        args: Vec<String>,
        result: String,
    },
    ThreadExited,
    Exited {
        status: String,
    },
    Signal {
        signal: String,
        code: i32,
        action: String,
    },
    Net {
        text: String,
    },
}

impl Row {
    pub(crate) fn text(&self) -> String {
        let body = match &self.what {
            What::Syscall { name, args, result } => format!("{name}({}) = {result}", args.join(", ")),
            What::Exec { program, argv, argv_truncated } => {
                let argv: Vec<String> = argv.iter().map(|a| format!("\"{a}\"")).collect();
                format!(
                    "+++ exec \"{program}\" [{}{}] +++",
                    argv.join(", "),
                    if *argv_truncated { ", ..." } else { "" }
                )
            }
            What::NewTask { child, untracked } => {
                format!("+++ new task {child}{} +++", if *untracked { " (NOT TRACED: task map full)" } else { "" })
            }
            What::Libc { function, args, result } => format!("libc {function}({}) = {result}", args.join(", ")),
            What::ThreadExited => "+++ thread exited +++".to_owned(),
            What::Exited { status } => format!("+++ {status} +++"),
            What::Signal { signal, code, action } => {
                format!("--- {signal} {{si_signo={signal}, si_code={code}}} ({action}) ---")
            }
            What::Net { text } => text.clone(),
        };
        format!("[{}] {}{body}", self.task, "  ".repeat(self.depth))
    }
}

/// A descriptor as the normalizer numbers it: by the call that created it
/// when the trace saw that, else by its number.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum FdKey {
    Id(usize),
    Raw(i32),
}

/// Renames what differs between runs, keeping everything else.
pub(crate) struct Normalizer {
    replacements: Vec<(String, String)>,
    ids: HashMap<u32, u32>,
    fds: HashMap<FdKey, i32>,
    ports: HashMap<u16, usize>,
    temps: HashMap<String, usize>,
    conns: HashMap<u32, u32>,
}

/// The cargo target directory of the running test or program, found from
/// `CARGO_TARGET_DIR` or the executable's path (cargo marks the directory
/// with a `CACHEDIR.TAG`).
fn target_dir() -> Option<String> {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR").filter(|d| Path::new(d).is_absolute()) {
        return Some(d.to_string_lossy().into_owned());
    }
    let exe = std::env::current_exe().ok()?;
    exe.ancestors().skip(1).find(|d| d.join("CACHEDIR.TAG").is_file()).map(|d| d.to_string_lossy().into_owned())
}

/// The built-in placeholders: directories that differ between machines.
fn placeholders() -> Vec<(String, String)> {
    let mut v = Vec::new();
    let mut add = |dir: Option<String>, to: &str| {
        if let Some(d) = dir {
            let d = d.trim_end_matches('/').to_owned();
            if !d.is_empty() {
                if let Ok(canon) = std::fs::canonicalize(&d) {
                    let canon = canon.to_string_lossy().into_owned();
                    if canon != d && canon != "/" {
                        v.push((canon, to.to_owned()));
                    }
                }
                v.push((d, to.to_owned()));
            }
        }
    };
    add(target_dir(), "<target>");
    add(Some(std::env::temp_dir().to_string_lossy().into_owned()), "<tmp>");
    add(std::env::var("HOME").ok(), "<home>");
    add(std::env::current_dir().ok().map(|d| d.to_string_lossy().into_owned()), "<cwd>");
    v
}

impl Normalizer {
    /// A normalizer with `extra` replacements first, then the built-in
    /// placeholders.
    pub(crate) fn new(extra: &[(String, String)]) -> Normalizer {
        let mut replacements: Vec<(String, String)> = extra.to_vec();
        replacements.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
        let mut builtin = placeholders();
        builtin.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
        replacements.extend(builtin);
        Normalizer {
            replacements,
            ids: HashMap::new(),
            fds: HashMap::new(),
            ports: HashMap::new(),
            temps: HashMap::new(),
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

    /// Applies the replacements, then numbers `tempfile`-style names in the
    /// temp directory and cargo's hashes in the target directory.
    pub(crate) fn text(&mut self, s: &str) -> String {
        let mut out = s.to_owned();
        for (from, to) in &self.replacements {
            out = replace_path(&out, from, to);
        }
        if out.contains("<tmp>/.tmp") {
            out = self.number_temps(&out);
        }
        if out.contains("<target>") {
            out = cargo_hashes(&out);
        }
        out
    }

    /// `<tmp>/.tmpAb3dEf` as `<tmp>/.tmp<1>`: the names `tempfile` makes.
    fn number_temps(&mut self, s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(at) = rest.find("<tmp>/.tmp") {
            let after = at + "<tmp>/.tmp".len();
            out.push_str(&rest[..after]);
            let tail = &rest[after..];
            let len = tail.bytes().take_while(u8::is_ascii_alphanumeric).count();
            if len == 6 {
                let next = self.temps.len() + 1;
                let n = *self.temps.entry(tail[..6].to_owned()).or_insert(next);
                let _ = write!(out, "<{n}>");
                rest = &tail[6..];
            } else {
                rest = tail;
            }
        }
        out.push_str(rest);
        out
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
        self.text(&out)
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

    fn arg(&mut self, name: &str, i: usize, a: &Arg, fd_id: Option<usize>) -> String {
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
                    SockAddr::Unix { .. } => self.text(&s),
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
            other => self.text(&other.to_string()),
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
                program: self.text(&crate::decode::escape_bytes(x.filename.as_bytes())),
                argv: x.argv.iter().map(|a| self.text(&crate::decode::escape_bytes(a.as_bytes()))).collect(),
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

    fn args(&mut self, name: &str, args: &[Arg], access: Option<&Access>) -> Vec<String> {
        let id = |i: usize| access.and_then(|a| a.fd_ids.iter().find(|(k, _)| *k == i).map(|(_, id)| *id));
        args.iter().enumerate().map(|(i, a)| self.arg(name, i, a, id(i))).collect()
    }

    fn folded(&mut self, s: &Syscall, access: Option<&Access>) -> (String, Vec<String>) {
        let name = s.name.as_ref();
        let Some(fold) = fold_name(name, s) else {
            return (name.to_owned(), self.args(name, &s.args, access));
        };
        let id = |i: usize| access.and_then(|a| a.fd_ids.iter().find(|(k, _)| *k == i).map(|(_, id)| *id));
        let quoted = |n: &mut Normalizer, r: &Resolved| match r.as_os() {
            Some(p) => n.text(&format!("\"{}\"", crate::decode::escape_bytes(p.as_bytes()))),
            None => "?".to_owned(),
        };
        let paths: Vec<String> =
            access.map(|a| a.paths.iter().map(|(_, r)| quoted(self, r)).collect()).unwrap_or_default();
        let path_at: Vec<usize> = access.map(|a| a.paths.iter().map(|(i, _)| *i).collect()).unwrap_or_default();
        // The argument list with each (dirfd, path) pair as the resolved path.
        let mut generic = Vec::new();
        for (i, a) in s.args.iter().enumerate() {
            if path_at.contains(&(i + 1)) && matches!(a, Arg::Fd(_)) {
                continue;
            }
            match path_at.iter().position(|&p| p == i) {
                Some(k) => generic.push(paths[k].clone()),
                None => generic.push(self.arg(name, i, a, id(i))),
            }
        }
        let target = || -> Option<Resolved> {
            let a = access?;
            a.paths.first().map(|(_, r)| r.clone()).or_else(|| match a.fd.as_deref() {
                Some(FdTarget::File(r)) => Some(r.clone()),
                _ => None,
            })
        };
        let args = match fold {
            "stat" => match target() {
                Some(r) => vec![quoted(self, &r)],
                None => generic.into_iter().take(1).collect(),
            },
            "open" => {
                let flags: Vec<String> = s
                    .args
                    .iter()
                    .enumerate()
                    .filter(|(_, a)| matches!(a, Arg::Flags { .. }))
                    .map(|(i, a)| self.arg(name, i, a, None))
                    .collect();
                paths.iter().take(1).cloned().chain(flags).collect()
            }
            "access" => {
                let mode = s
                    .args
                    .iter()
                    .enumerate()
                    .find(|(_, a)| matches!(a, Arg::Flags { .. }))
                    .map(|(i, a)| self.arg(name, i, a, None));
                paths.iter().take(1).cloned().chain(mode).collect()
            }
            "unlink" | "rmdir" | "rename" | "link" | "mkdir" | "mknod" | "readlink" => {
                let mut v = paths.clone();
                if matches!(fold, "mkdir" | "mknod") {
                    v.extend(
                        s.args
                            .iter()
                            .enumerate()
                            .filter(|(_, a)| matches!(a, Arg::Flags { text, .. } if text.starts_with('0')))
                            .map(|(i, a)| self.arg(name, i, a, None)),
                    );
                }
                v
            }
            "symlink" => {
                let target = s.args.first().map(|a| self.arg(name, 0, a, None));
                target.into_iter().chain(paths.iter().cloned()).collect()
            }
            "clone" | "wait" => Vec::new(),
            "execve" => paths
                .iter()
                .take(1)
                .cloned()
                .chain(
                    s.args
                        .iter()
                        .enumerate()
                        .filter(|(_, a)| matches!(a, Arg::Strings { .. }))
                        .map(|(i, a)| self.arg(name, i, a, None)),
                )
                .collect(),
            _ => generic,
        };
        (fold.to_owned(), args)
    }
}

/// How many of the libc calls event `i` was made in are shown.
fn shown_depth(events: &[Event], keep: &[bool], i: usize) -> usize {
    let mut d = 0;
    let mut cur = events[i].parent();
    let mut hops = 0;
    while let Some(p) = cur.filter(|&p| p < events.len()) {
        d += usize::from(keep[p]);
        cur = events[p].parent();
        hops += 1;
        if hops > events.len() {
            break;
        }
    }
    d
}

/// Replaces `from` by `to` where `from` is a whole path prefix: what
/// follows is the end, a `/` or a character that cannot be in a name here.
fn replace_path(s: &str, from: &str, to: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(from) {
        let after = i + from.len();
        let next = rest[after..].chars().next();
        let boundary = next.is_none_or(|c| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.')));
        out.push_str(&rest[..i]);
        out.push_str(if boundary { to } else { from });
        rest = &rest[after..];
    }
    out.push_str(rest);
    out
}

/// Cargo's `-0123456789abcdef` metadata hashes, after `<target>`, as `-<hash>`.
fn cargo_hashes(s: &str) -> String {
    let mut out = String::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < s.len() {
        let hex = bytes
            .get(i + 1..i + 17)
            .is_some_and(|h| h.iter().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        let end_ok = bytes.get(i + 17).is_none_or(|b| !b.is_ascii_alphanumeric());
        if bytes[i] == b'-' && hex && end_ok {
            out.push_str("-<hash>");
            i += 17;
        } else {
            let c = s[i..].chars().next().unwrap_or_default();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
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

/// The folded name of a syscall, when it has one.
fn fold_name(name: &str, s: &Syscall) -> Option<&'static str> {
    Some(match name {
        "open" | "openat" | "openat2" | "creat" => "open",
        "stat" | "lstat" | "fstat" | "newfstatat" | "fstatat" | "fstatat64" | "statx" | "stat64" | "lstat64"
        | "fstat64" => "stat",
        "access" | "faccessat" | "faccessat2" => "access",
        "unlinkat" if s.args.iter().any(|a| matches!(a, Arg::Flags { text, .. } if text.contains("AT_REMOVEDIR"))) => {
            "rmdir"
        }
        "unlink" | "unlinkat" => "unlink",
        "rmdir" => "rmdir",
        "rename" | "renameat" | "renameat2" => "rename",
        "mkdir" | "mkdirat" => "mkdir",
        "mknod" | "mknodat" => "mknod",
        "link" | "linkat" => "link",
        "symlink" | "symlinkat" => "symlink",
        "readlink" | "readlinkat" => "readlink",
        "chmod" | "fchmodat" | "fchmodat2" => "chmod",
        "chown" | "lchown" | "fchownat" => "chown",
        "utime" | "utimes" | "futimesat" | "utimensat" => "utimes",
        "clone" | "clone3" | "fork" | "vfork" => "clone",
        "execve" | "execveat" => "execve",
        "wait4" | "waitid" => "wait",
        "dup2" | "dup3" => "dup2",
        "pipe" | "pipe2" => "pipe",
        "getdents" | "getdents64" => "getdents",
        "poll" | "ppoll" | "select" | "pselect6" => "poll",
        "epoll_wait" | "epoll_pwait" | "epoll_pwait2" => "epoll_wait",
        "accept" | "accept4" => "accept",
        "eventfd" | "eventfd2" => "eventfd",
        "signalfd" | "signalfd4" => "signalfd",
        "inotify_init" | "inotify_init1" => "inotify_init",
        "epoll_create" | "epoll_create1" => "epoll_create",
        _ => return None,
    })
}

/// How an event appears in the canonical order.
#[derive(Clone, Copy)]
enum As {
    Event,
    /// A process's last task exiting, as that task's thread exit.
    ThreadExit,
    /// A process's end, at the end of its main task.
    ProcessExit,
}

#[derive(Clone, Copy)]
struct Item {
    index: usize,
    as_: As,
}

/// The kept events, each task's in program order, tasks depth first in
/// the order their creators created them. A process's end goes last in
/// its main task, whichever task the kernel saw exit last.
fn canonical_order(idx: &Index<'_>, keep: &[bool]) -> Vec<Item> {
    let events = &idx.trace.events;
    let mut by_task: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        by_task.entry(e.tid).or_default().push(i);
    }
    for v in by_task.values_mut() {
        // A connection's close and resets come when the peer's packets
        // do, racing with the owner's syscalls: they go last in the
        // owner's task, in the order of its connections.
        v.sort_by_key(|&i| match events[i].as_net() {
            Some(n) if matches!(n.op, NetOp::Close | NetOp::ResetSent | NetOp::ResetReceived) => {
                (1, u64::from(n.conn.unwrap_or(0)), n.op == NetOp::Close, events[i].ts_ns, i)
            }
            _ => (0, 0, false, events[i].ts_ns, i),
        });
    }
    // Tasks each task created, in its program order.
    let mut created: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut has_creator: HashSet<u32> = HashSet::new();
    let mut tasks_in_order: Vec<u32> = by_task.keys().copied().collect();
    tasks_in_order.sort_by_key(|t| by_task[t].first().map(|&i| (events[i].ts_ns, i)));
    for &t in &tasks_in_order {
        for &i in &by_task[&t] {
            if let EventKind::Fork(f) = &events[i].kind {
                if f.child_tid != t && has_creator.insert(f.child_tid) {
                    created.entry(t).or_default().push(f.child_tid);
                }
            }
        }
    }
    let process_exits: HashMap<u32, usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(&e.kind, EventKind::Exit(x) if x.process_exited))
        .map(|(i, e)| (e.pid, i))
        .collect();
    let root = idx.trace.outcome.root_pid;
    let mut roots: Vec<u32> =
        tasks_in_order.iter().copied().filter(|t| !has_creator.contains(t) && *t != root).collect();
    roots.insert(0, root);
    let mut out = Vec::new();
    let mut seen: HashSet<u32> = HashSet::new();
    let mut stack: Vec<u32> = roots.into_iter().rev().collect();
    while let Some(t) = stack.pop() {
        if !seen.insert(t) {
            continue;
        }
        for &i in by_task.get(&t).map_or(&[][..], Vec::as_slice) {
            let e = &events[i];
            match &e.kind {
                // The task that happened to exit last: its own end here, the
                // process's at the end of the main task.
                EventKind::Exit(x) if x.process_exited && e.tid != e.pid && keep[i] => {
                    out.push(Item { index: i, as_: As::ThreadExit });
                }
                EventKind::Exit(x) if x.process_exited => {}
                // The main task's own end, when the process's is shown.
                EventKind::Exit(_) if e.tid == e.pid && process_exits.contains_key(&e.pid) => {}
                _ if keep[i] => out.push(Item { index: i, as_: As::Event }),
                _ => {}
            }
        }
        if let Some(&i) = process_exits.get(&t) {
            if keep[i] {
                out.push(Item { index: i, as_: As::ProcessExit });
            }
        }
        if let Some(children) = created.get(&t) {
            stack.extend(children.iter().rev());
        }
    }
    out
}

/// Where a task is in the start-up of the program it exec'd.
#[derive(Clone)]
enum Phase {
    /// The dynamic loader: from the exec until the thread pointer is set.
    Loader,
    /// libc's and libraries' initialisation, until the first call that is
    /// not part of it; `rust` once Rust's runtime showed up.
    Init { rust: bool },
    /// Python's start-up, until it first touches its script.
    Python(OsString),
}

/// Which events are loader and runtime noise (see [`Snapshot::with_noise`]).
pub(crate) fn noise(idx: &Index<'_>) -> Vec<bool> {
    let events = &idx.trace.events;
    let mut noise = vec![false; events.len()];
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by_key(|&i| (events[i].ts_ns, i));
    let mut phases: HashMap<u32, Phase> = HashMap::new();
    // Each process's events, for Python images (made at the first).
    let mut by_pid: Option<HashMap<u32, Vec<usize>>> = None;
    for &i in &order {
        let e = &events[i];
        let python = idx.image_at(e.pid, e.ts_ns).is_some_and(|(f, _)| is_python(f));
        let targets: Vec<&OsStr> =
            idx.access(i).map(|a| a.targets().filter_map(Resolved::as_os).collect()).unwrap_or_default();
        // Runtime files have UTF-8 names; any other name is the program's own.
        let runtime = targets.iter().filter_map(|p| p.to_str()).any(|p| runtime_file(p, python));
        match &e.kind {
            EventKind::Exec(x) => {
                let script = if is_python(&x.filename) { python_script(&x.argv) } else { None };
                let script = script.filter(|s| {
                    let by_pid = by_pid.get_or_insert_with(|| {
                        let mut m: HashMap<u32, Vec<usize>> = HashMap::new();
                        for (k, e) in events.iter().enumerate() {
                            m.entry(e.pid).or_default().push(k);
                        }
                        m
                    });
                    touches(idx, by_pid.get(&e.pid).map_or(&[][..], Vec::as_slice), e.ts_ns, s)
                });
                phases.insert(e.tid, Phase::Loader);
                if let Some(s) = script {
                    // The loader's part is left out the same way.
                    phases.insert(e.tid, Phase::Python(s));
                }
            }
            // State changes and retransmits depend on timing.
            EventKind::Net(n) => noise[i] = matches!(n.op, NetOp::State | NetOp::Retransmit),
            EventKind::Signal(sig) => {
                noise[i] = sig.action == SignalAction::Ignore
                    || (sig.action == SignalAction::Default
                        && matches!(sig.name.as_ref(), "SIGCHLD" | "SIGURG" | "SIGWINCH" | "SIGCONT"));
            }
            EventKind::Libc(c) => {
                noise[i] = runtime;
                // The preload library sets itself up again in a forked
                // child, as in a new image.
                if matches!(c.function.as_str(), "fork" | "vfork") && matches!(c.ret, Some(Arg::Int(0))) {
                    phases.insert(e.tid, Phase::Init { rust: false });
                }
                if let Some(Phase::Python(script)) = phases.get(&e.tid) {
                    if targets.iter().any(|p| is_script(p, script)) {
                        phases.remove(&e.tid);
                    } else {
                        noise[i] = true;
                    }
                }
            }
            EventKind::Syscall(s) => {
                let anywhere = runtime || always_noise(s);
                let mut phase = phases.get(&e.tid).cloned();
                if let Some(Phase::Loader) = phase {
                    if loader_call(s) {
                        noise[i] = true;
                        if sets_thread_pointer(s) {
                            phases.insert(e.tid, Phase::Init { rust: false });
                        }
                        continue;
                    }
                    phase = Some(Phase::Init { rust: false });
                }
                noise[i] = match phase {
                    None => anywhere,
                    Some(Phase::Python(script)) => {
                        if targets.iter().any(|p| is_script(p, &script)) {
                            phases.remove(&e.tid);
                            anywhere
                        } else {
                            true
                        }
                    }
                    Some(Phase::Init { rust }) => {
                        let rust_now = rust || rust_runtime_start(s);
                        let start = anywhere
                            || startup_call(s)
                            || targets.iter().filter_map(|p| p.to_str()).any(startup_file)
                            || (rust_now && rust_runtime_call(s));
                        if start {
                            phases.insert(e.tid, Phase::Init { rust: rust_now });
                        } else {
                            phases.remove(&e.tid);
                        }
                        start
                    }
                    Some(Phase::Loader) => anywhere,
                };
            }
            _ => {}
        }
    }
    thread_endings(events, &order, &mut noise);
    noise
}

/// How threads end is left to chance when the process ends while they
/// do: glibc's last steps in a thread (blocking signals, `exit`) race with
/// another thread's `exit_group`, which kills whatever is still running.
/// So those steps, and the `SIGKILL` of a group exit, are noise; the
/// `+++ thread exited +++` line stays.
fn thread_endings(events: &[Event], order: &[usize], noise: &mut [bool]) {
    let mut group_exit: HashMap<u32, (u64, u32)> = HashMap::new();
    let mut by_task: HashMap<u32, Vec<usize>> = HashMap::new();
    for &i in order {
        let e = &events[i];
        if e.as_syscall().is_some_and(|s| s.name == "exit_group") {
            group_exit.entry(e.pid).or_insert((e.ts_ns, e.tid));
        }
        by_task.entry(e.tid).or_default().push(i);
    }
    for (&tid, task) in &by_task {
        for &i in task.iter().rev() {
            let e = &events[i];
            let killed_by_group_exit = matches!(&e.kind, EventKind::Signal(sig) if sig.name == "SIGKILL")
                && group_exit.get(&e.pid).is_some_and(|&(ts, by)| by != tid && e.ts_ns >= ts);
            let ending = match &e.kind {
                EventKind::Exit(_) => true,
                EventKind::Syscall(s) if tid != e.pid => {
                    s.name == "exit"
                        || (s.name == "rt_sigprocmask"
                            && matches!(s.args.first(), Some(Arg::Flags { text, .. }) if text == "SIG_BLOCK"))
                }
                _ => false,
            };
            if killed_by_group_exit || (ending && !matches!(e.kind, EventKind::Exit(_))) {
                noise[i] = true;
            } else if !ending && !noise[i] {
                break;
            }
        }
    }
}

/// What the dynamic loader does while it maps the program's libraries.
fn loader_call(s: &Syscall) -> bool {
    matches!(
        s.name.as_ref(),
        "openat"
            | "open"
            | "newfstatat"
            | "fstat"
            | "stat"
            | "lstat"
            | "statx"
            | "access"
            | "faccessat"
            | "faccessat2"
            | "read"
            | "pread64"
            | "mmap"
            | "mprotect"
            | "munmap"
            | "close"
            | "brk"
            | "arch_prctl"
            | "readlink"
            | "getcwd"
            | "statfs"
            | "lseek"
            | "set_tid_address"
            | "set_thread_area"
            | "uname"
    )
}

/// The loader's last step: setting up the main thread's thread pointer.
fn sets_thread_pointer(s: &Syscall) -> bool {
    match s.name.as_ref() {
        "set_tid_address" | "set_thread_area" => true,
        // ARCH_SET_FS.
        "arch_prctl" => matches!(s.args.first(), Some(Arg::Hex(0x1002) | Arg::Int(0x1002))),
        _ => false,
    }
}

/// Rust's runtime starts `main` by checking that descriptors 0 to 2 are
/// open: `poll` of three descriptors with no timeout.
fn rust_runtime_start(s: &Syscall) -> bool {
    s.name == "poll" && matches!(s.args.get(1..3), Some([Arg::Int(3), Arg::Int(0)]))
}

/// What Rust's runtime does before `main`: ignore SIGPIPE, and set up
/// the stack overflow handler.
fn rust_runtime_call(s: &Syscall) -> bool {
    match s.name.as_ref() {
        "poll" | "sigaltstack" => true,
        "rt_sigaction" => {
            matches!(s.args.first(), Some(Arg::Flags { text, .. }) if matches!(text.as_str(), "SIGPIPE" | "SIGSEGV" | "SIGBUS"))
        }
        _ => false,
    }
}

fn is_python(program: &OsStr) -> bool {
    crate::trace::query::base_name(program).as_bytes().starts_with(b"python")
}

/// The script Python runs, from its argv: the first argument that is not
/// an option; none for `-c` and `-m`.
fn python_script(argv: &[OsString]) -> Option<OsString> {
    let mut args = argv.iter().skip(1);
    while let Some(a) = args.next() {
        match a.as_bytes() {
            b"-c" | b"-m" | b"-" => return None,
            b"-W" | b"-X" => {
                args.next();
            }
            o if o.starts_with(b"-") => {}
            _ => return Some(a.clone()),
        }
    }
    None
}

fn is_script(path: &OsStr, script: &OsStr) -> bool {
    if script.as_bytes().starts_with(b"/") {
        path == crate::trace::index::normalize(script)
    } else {
        let script = crate::trace::query::trim_dot_slash(script).as_bytes();
        let path = path.as_bytes();
        path == script || path.strip_suffix(script).is_some_and(|head| head.ends_with(b"/"))
    }
}

/// Whether a process whose events are `own` touches the file `script`
/// after `ts`.
fn touches(idx: &Index<'_>, own: &[usize], ts: u64, script: &OsStr) -> bool {
    own.iter().any(|&i| {
        idx.trace.events[i].ts_ns > ts
            && idx.access(i).is_some_and(|a| a.targets().filter_map(Resolved::as_os).any(|p| is_script(p, script)))
    })
}

/// Syscalls that are runtime noise wherever they are.
fn always_noise(s: &Syscall) -> bool {
    match s.name.as_ref() {
        "futex" | "futex_wait" | "futex_wake" | "futex_waitv" | "futex_requeue" | "rseq" | "set_robust_list"
        | "brk" | "munmap" | "mprotect" | "madvise" | "mremap" | "membarrier" => true,
        "mmap" => {
            let anon = s.args.iter().any(|a| matches!(a, Arg::Flags { text, .. } if text.contains("MAP_ANONYMOUS")));
            let no_fd = s.args.get(4).is_some_and(|a| matches!(a, Arg::Fd(-1)));
            anon || no_fd
        }
        _ => false,
    }
}

/// Syscalls of the loader's and libc's start-up.
fn startup_call(s: &Syscall) -> bool {
    matches!(
        s.name.as_ref(),
        "mmap"
            | "arch_prctl"
            | "set_tid_address"
            | "prlimit64"
            | "getrandom"
            | "set_thread_area"
            | "personality"
            | "getpid"
            | "gettid"
            | "getppid"
    )
}

/// Files libc and libraries look at while they start.
fn startup_file(path: &str) -> bool {
    matches!(path, "/proc/filesystems" | "/sys/fs/selinux" | "/selinux" | "/etc/selinux/config" | "/proc/self/exe")
        || path.starts_with("/sys/devices/system/cpu")
}

/// Files only the loader, libc's locale and time zone code, or (in Python)
/// the interpreter itself look up.
fn runtime_file(path: &str, python: bool) -> bool {
    let base = path.rsplit('/').next().unwrap_or(path);
    let components = || path.split('/');
    let lib = path.starts_with("/etc/ld.so")
        || base.starts_with("probity-ring-")
        || is_shared_library(base)
        || components().any(|c| c == "glibc-hwcaps" || c == "gconv")
        || path.starts_with("/usr/lib/locale")
        || path.starts_with("/usr/share/locale")
        || path.starts_with("/usr/share/i18n")
        || path == "/etc/localtime"
        || path.starts_with("/usr/share/zoneinfo");
    if lib {
        return true;
    }
    if !python {
        return false;
    }
    let mut prev = "";
    for c in components() {
        if c == "__pycache__"
            || ((prev == "lib" || prev == "lib64") && (c.starts_with("python3") || c.starts_with("python2")))
        {
            return true;
        }
        prev = c;
    }
    base.ends_with(".pyc") || base == "pyvenv.cfg" || base.ends_with("._pth") || base == "pybuilddir.txt"
}

/// `libc.so.6`, `libfoo.so`, `ld-linux-x86-64.so.2`, `_ssl.cpython-311-x86_64-linux-gnu.so`.
fn is_shared_library(base: &str) -> bool {
    match base.find(".so") {
        Some(i) => {
            let rest = &base[i + 3..];
            rest.is_empty()
                || (rest.starts_with('.')
                    && rest[1..].split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Exit, Fork};
    use crate::trace::test_support::{path, sys, trace};

    fn fork(ts: u64, pid: u32, tid: u32, child: u32) -> Event {
        Event { ts_ns: ts, pid, tid, kind: EventKind::Fork(Fork { child_tid: child, untracked: false }) }
    }

    fn exit(ts: u64, pid: u32, tid: u32, process: bool) -> Event {
        let status = process.then_some(crate::ExitStatus::Code(0));
        Event { ts_ns: ts, pid, tid, kind: EventKind::Exit(Exit { process_exited: process, status }) }
    }

    #[test]
    fn tasks_in_creation_order_whatever_the_interleaving() {
        // Two threads (11, 12) whose calls interleave differently in two
        // runs, and whose last one to end ends the process.
        let run = |second_first: bool, last: u32| {
            let (a, b) = if second_first { (21, 20) } else { (20, 21) };
            let mut events = vec![
                fork(1, 10, 10, 11),
                fork(2, 10, 10, 12),
                sys(a, 10, 11, "openat", vec![Arg::Fd(libc::AT_FDCWD), path("/x/one")], 3),
                sys(
                    b,
                    10,
                    12,
                    "openat",
                    vec![Arg::Fd(libc::AT_FDCWD), path("/x/two")],
                    if second_first { 3 } else { 4 },
                ),
                sys(30, 10, 10, "exit_group", vec![Arg::Int(0)], 0),
            ];
            for (ts, tid) in [(31, 10), (32, 11), (33, 12)] {
                events.push(exit(ts, 10, tid, tid == last));
            }
            events.sort_by_key(Event::end_ns);
            trace(events, None).snapshot().text()
        };
        let expected =
            "[1] +++ new task 2 +++\n[1] +++ new task 3 +++\n[1] exit_group(0) = 0\n[1] +++ exited with 0 +++\n\
                        [1:2] openat(AT_FDCWD, \"/x/one\") = 3\n[1:2] +++ thread exited +++\n\
                        [1:3] openat(AT_FDCWD, \"/x/two\") = 4\n[1:3] +++ thread exited +++\n";
        assert_eq!(run(false, 10), expected);
        assert_eq!(run(true, 12), expected);
        assert_eq!(run(true, 11), expected);
    }

    #[test]
    fn recognizes_runtime_files() {
        for p in [
            "/etc/ld.so.cache",
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3",
            "/usr/lib/locale/C.utf8/LC_CTYPE",
            "/usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache",
            "/work/target/debug/libprobity_preload.so",
        ] {
            assert!(runtime_file(p, false), "{p}");
        }
        for p in ["/tmp/x.so.txt", "/etc/hostname", "/usr/lib/python3.11/os.py", "/tmp/libsomething"] {
            assert!(!runtime_file(p, false), "{p}");
        }
        assert!(runtime_file("/usr/lib/python3.11/os.py", true));
        assert!(runtime_file("/tmp/x/__pycache__/m.cpython-311.pyc", true));
        assert!(!runtime_file("/tmp/x/script.py", true));
    }

    #[test]
    fn finds_the_python_script() {
        let argv = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(python_script(&argv(&["python3", "-u", "t.py", "x"])), Some("t.py".into()));
        assert_eq!(python_script(&argv(&["python3", "-W", "error", "t.py"])), Some("t.py".into()));
        assert_eq!(python_script(&argv(&["python3", "-c", "print(1)"])), None);
        assert_eq!(python_script(&argv(&["python3"])), None);
    }

    #[test]
    fn replaces_whole_paths_only() {
        assert_eq!(replace_path("\"/tmp/x\" /tmpfoo /tmp", "/tmp", "<tmp>"), "\"<tmp>/x\" /tmpfoo <tmp>");
        assert_eq!(
            cargo_hashes("<target>/debug/build/probity-fixtures-0123456789abcdef/out"),
            "<target>/debug/build/probity-fixtures-<hash>/out"
        );
        assert_eq!(cargo_hashes("a-0123456789abcdefg"), "a-0123456789abcdefg");
        let mut n = Normalizer {
            replacements: vec![],
            ids: HashMap::new(),
            fds: HashMap::new(),
            ports: HashMap::new(),
            temps: HashMap::new(),
            conns: HashMap::new(),
        };
        assert_eq!(
            n.text("<tmp>/.tmpAbC123/x <tmp>/.tmpZZZ999 <tmp>/.tmpAbC123"),
            "<tmp>/.tmp<1>/x <tmp>/.tmp<2> <tmp>/.tmp<1>"
        );
        assert_eq!(
            n.ports("sin_port=htons(80), sin_port=htons(40000), htons(40001), htons(40000)"),
            "sin_port=htons(80), sin_port=htons(<port1>), htons(<port2>), htons(<port1>)"
        );
        assert_eq!(n.words("process 4242 and thread 4243, process 4242"), "process 1 and thread 2, process 1");
    }
}
