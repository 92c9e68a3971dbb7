//! Snapshots: a view of a trace that stays byte-identical from run to run
//! and machine to machine until the program's behaviour changes, for
//! `insta::assert_snapshot!` (text) and `insta::assert_yaml_snapshot!` or
//! `assert_json_snapshot!` (serde).
//!
//! What changes between runs is taken out or renamed: pids, tids, file
//! descriptors, TCP connections and ephemeral ports are numbered by first
//! appearance (pids wherever they are an argument or a result);
//! addresses, timestamps and durations are dropped; the temp, home,
//! working and cargo target directories become placeholders; the dynamic
//! loader's, libc's and Python's start-up and their run-time file lookups
//! are left out (see [`Snapshot::with_noise`]); and the events of
//! concurrent tasks are grouped per task, tasks in the order they were
//! created, because their interleaving is not causal; event loops, I/O
//! retries, the children reaped by waits for any child and asynchronous
//! signals are settled by the rules in [`Snapshot::with_noise`].

mod filters;
mod fold;
mod noise;
mod normalize;
mod order;
mod racy;
mod row;

use std::fmt::{self, Write as _};

use serde::ser::{Serialize, SerializeSeq, Serializer};

pub(crate) use self::filters::Filters;
pub(crate) use self::noise::noise;
pub(crate) use self::normalize::Normalizer;
use self::order::{canonical_order, shown_depth, As};
use self::row::{Row, What};
use crate::event::EventKind;
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
    ///   also its `SIGPIPE`/`SIGSEGV`/`SIGBUS` handlers, `sigaltstack`,
    ///   `sched_getaffinity` and the stack guard's read of
    ///   `/proc/self/maps` (addresses and sizes change with ASLR).
    ///   The same again in a child after a `fork` the libc layer saw;
    /// - for Python running a script: everything, libc calls included,
    ///   until it first touches the script;
    /// - anywhere: calls on shared libraries, `ld.so` files, locale,
    ///   `gconv` and time zone files (and, in Python, on its library and
    ///   `__pycache__`), with everything done on the descriptors they
    ///   open; memory management (`brk`, anonymous `mmap`, `munmap`,
    ///   `mprotect`, `madvise`, `mremap`, `membarrier`); `futex` (lock
    ///   contention differs from run to run), `rseq` and
    ///   `set_robust_list`; ignored signals, and asynchronous ones
    ///   (`SIGCHLD`, `SIGURG`, `SIGWINCH`, `SIGCONT`) whatever their action,
    ///   with their handler's `rt_sigreturn`, since when they arrive is up
    ///   to the scheduler; reads, writes and accepts that failed with
    ///   `EAGAIN` or `EINTR` (the program tries again); a debug build's
    ///   `fcntl(fd, F_GETFD)` right before it closes `fd` (Rust's debug
    ///   assertions); and glibc `posix_spawn`'s `rt_sigaction` and
    ///   `rt_sigprocmask` in the child before its exec;
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
    /// Whatever this setting, what the scheduler decides is settled:
    /// - an event loop (one task's consecutive `poll`/`select`/`epoll_wait`
    ///   calls, I/O on descriptors, closes and `FIONBIO`/`F_GETFL`/`F_SETFL`
    ///   switches, with at least one wait) is its first wait, whose result
    ///   reads `ready`, then each descriptor's I/O and close in the order
    ///   the descriptors were created, without retries, consecutive `read`s
    ///   (or `write`s, `recvfrom`s, `sendto`s) on one descriptor folded
    ///   into one whose count and result are the total and whose data is
    ///   the first 32 bytes of all of it;
    /// - consecutive waits for any child (`wait4(-1, ...)`, `waitpid(-1,
    ///   ...)`, `wait`) show the children they reaped in increasing order;
    /// - `rt_sigreturn` shows `?` (its value is the interrupted call's),
    ///   `getcwd` and `sched_getaffinity` `<len>`, and cargo's `<target>/debug` and
    ///   `<target>/release` are both `<target>/<profile>`.
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
        for shown in racy::settle(idx, canonical_order(idx, &keep)) {
            let item = shown.item;
            let e = &events[item.index];
            let row = match item.as_ {
                As::Event => {
                    let folded = match (&shown.folded, &e.kind) {
                        (Some(f), EventKind::Syscall(s)) => {
                            Some(crate::event::Event { kind: EventKind::Syscall(f.apply(s)), ..e.clone() })
                        }
                        _ => None,
                    };
                    let mut row = norm.row(folded.as_ref().unwrap_or(e), idx.access(item.index), self.fold);
                    row.depth = shown_depth(events, &keep, item.index);
                    if shown.ready {
                        if let What::Syscall { result, .. } = &mut row.what {
                            "ready".clone_into(result);
                        }
                    }
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
        racy::settle_waits(&mut rows);
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
