//! Which preload records to believe.
//!
//! The ring is the traced program's memory: a program can write records
//! of its own, well formed, naming any pid. A record is kept only when it
//! fits what is known about the traced tree; the others are dropped and
//! counted ([`crate::Losses::preload_invalid`]), which makes every
//! assertion that something did not happen fail, saying why.
//!
//! With the kernel tracer, the kernel's view decides. A libc record is
//! valid when the kernel saw a task with that thread id in that process
//! in the traced tree, and the record does not start after that task
//! ended. An attach record (a window of the library's own syscalls: its
//! set-up in an image, or a new thread or forked child learning its ids)
//! must in addition describe a window of at most [`MAX_SETUP_NS`]. The
//! harness leaves the syscalls in such a window out of the trace, but only
//! the kinds the library makes there ([`super::own`]): a forged window can
//! hide no other.
//!
//! With the preload tracer alone, the tree is what the records build: the
//! root process, and every process a kept record says it created (the
//! result of `fork` or `clone`, the pid `posix_spawn` stored) or whose
//! library says it is the child of one (`Attach::ppid`), repeated until
//! nothing is added. A record of any other process is invalid. These are
//! all claims of the program's: this catches stray and corrupt records and
//! foreign pids, not a forger who also forges the chain.
//!
//! Inside a PID namespace the library's records carry the namespace's
//! ids. The library learns its ids with the `getpid` and `gettid`
//! syscalls before it records anything in a process or thread, and the
//! kernel tracer sees those calls with the task's real ids and the
//! namespace's as their results: a record whose ids the kernel never saw
//! is put in the kernel's terms through them, when exactly one task of the
//! tree alive at the record's time answered those ids.
//!
//! Known limitations: a program can still write well-formed records under
//! its own ids, or under the ids of another process of the tree, for
//! calls never made (they are claims, and can make a gate fail, never
//! pass). With the preload tracer alone, records made inside a PID
//! namespace have only the namespace's ids, which no record links to the
//! root: they are counted invalid.

use foldhash::{HashMap, HashSet};

use super::Attached;
use crate::event::{Arg, Event, EventKind};

/// `getpid` and `gettid` on this architecture.
const GETPID: u32 = libc::SYS_getpid as u32;
const GETTID: u32 = libc::SYS_gettid as u32;

/// How far a record's time may be past its task's end: both clocks are
/// `CLOCK_MONOTONIC`, but counter stamps are converted (an error of
/// microseconds).
const SLACK_NS: u64 = 1_000_000;

/// The longest set-up window an attach record may describe: the
/// library's start takes well under a millisecond; this leaves room for a
/// loaded machine.
pub(crate) const MAX_SETUP_NS: u64 = 250_000_000;

/// Drops the libc events in `events[first..]` and the `attached` records
/// that do not fit the tree (see the module docs); `events[..first]` are
/// the kernel tracer's, when `kernel`. Returns how many were dropped.
pub(crate) fn drop_invalid(
    events: &mut Vec<Event>,
    first: usize,
    attached: &mut Vec<Attached>,
    root: u32,
    kernel: bool,
) -> u64 {
    let before = events.len() + attached.len();
    if kernel {
        let view = KernelView::new(&events[..first]);
        view.keep_attaches(attached);
        let keep: Vec<bool> =
            events[first..].iter_mut().map(|e| view.resolve(&mut e.pid, &mut e.tid, e.ts_ns)).collect();
        let mut i = 0;
        events.retain(|_| {
            i += 1;
            i <= first || keep[i - 1 - first]
        });
    } else {
        let tree = preload_tree(&events[first..], attached, root);
        attached.retain(|a| tree.contains(&a.pid));
        let mut i = 0;
        events.retain(|e| {
            i += 1;
            i <= first || tree.contains(&e.pid)
        });
    }
    (before - events.len() - attached.len()) as u64
}

/// [`drop_invalid`], counting nothing when the kernel tracer lost track of
/// tasks: when its task map was full (records of those tasks cannot be
/// placed, and their loss is counted already: `task_map_full`, each such
/// task's whole subtree missing), or when it left out processes that gained
/// privilege (`excluded`: their children are in no kernel record, a child
/// that loads the library again writes records no task explains, and the
/// trace already lists those processes as uncovered).
pub(crate) fn drop_invalid_counted(
    events: &mut Vec<Event>,
    first: usize,
    attached: &mut Vec<Attached>,
    root: u32,
    kernel: bool,
    excluded: bool,
) -> u64 {
    let incomplete =
        kernel && (excluded || events[..first].iter().any(|e| matches!(&e.kind, EventKind::Fork(f) if f.untracked)));
    let dropped = drop_invalid(events, first, attached, root, kernel);
    if incomplete {
        0
    } else {
        dropped
    }
}

/// The tasks of the tree as the kernel tracer saw them.
struct KernelView {
    /// Per (pid, tid), when the task ended (`u64::MAX` if it did not).
    tasks: HashMap<(u32, u32), u64>,
    /// The tasks that live in a PID namespace, by the (pid, tid) they have
    /// there: what `getpid` and `gettid` returned to them, which the
    /// library asks before it records anything in a process or thread.
    namespaced: HashMap<(u32, u32), Vec<(u32, u32)>>,
}

impl KernelView {
    fn new(kernel: &[Event]) -> Self {
        // Every task seen, with `u64::MAX` for now; the latest exit of each.
        let mut tasks: HashMap<(u32, u32), u64> = HashMap::default();
        let mut exits: HashMap<(u32, u32), u64> = HashMap::default();
        let mut execs: HashMap<u32, Vec<u64>> = HashMap::default();
        // Per task seen in a namespace, its pid and tid there.
        let mut inner: HashMap<(u32, u32), (Option<u32>, Option<u32>)> = HashMap::default();
        // Events of one task come in runs: look it up once per run.
        let mut last = None;
        for e in kernel {
            match &e.kind {
                EventKind::Libc(_) => continue,
                EventKind::Exit(_) => {
                    let end = exits.entry((e.pid, e.tid)).or_default();
                    *end = (*end).max(e.ts_ns);
                }
                // The new task, as a thread of this process or a process
                // of its own (the event does not say which): its first
                // records may come before any event of its own.
                EventKind::Fork(f) => {
                    tasks.entry((e.pid, f.child_tid)).or_insert(u64::MAX);
                    tasks.entry((f.child_tid, f.child_tid)).or_insert(u64::MAX);
                }
                EventKind::Exec(_) => execs.entry(e.pid).or_default().push(e.ts_ns),
                EventKind::Syscall(sc) if sc.nr == GETPID || sc.nr == GETTID => {
                    let own = if sc.nr == GETPID { e.pid } else { e.tid };
                    if let Some(id) = sc.ret.and_then(|r| u32::try_from(r).ok()).filter(|&id| id != own) {
                        let ids = inner.entry((e.pid, e.tid)).or_default();
                        if sc.nr == GETPID {
                            ids.0 = Some(id)
                        } else {
                            ids.1 = Some(id)
                        }
                    }
                }
                _ => {}
            }
            if last != Some((e.pid, e.tid)) {
                last = Some((e.pid, e.tid));
                tasks.entry((e.pid, e.tid)).or_insert(u64::MAX);
            }
        }
        for v in execs.values_mut() {
            v.sort_unstable();
        }
        for (&(pid, tid), &end) in &exits {
            // A thread's exec ends the old leader and takes its id: the
            // process's main thread lives on after that exit.
            let taken_over = pid == tid && execs.get(&pid).and_then(|x| x.last()).is_some_and(|&exec| exec >= end);
            tasks.insert((pid, tid), if taken_over { u64::MAX } else { end });
        }
        let mut namespaced: HashMap<(u32, u32), Vec<(u32, u32)>> = HashMap::default();
        for (task, ids) in inner {
            // A thread's `getpid` answers for its whole process.
            if let (Some(pid), Some(tid)) = (ids.0, ids.1) {
                namespaced.entry((pid, tid)).or_default().push(task);
            }
        }
        KernelView { tasks, namespaced }
    }

    /// Whether a record of `pid` and `tid` at `ts` is believed, with the
    /// ids put in the kernel's terms: as they are when the kernel saw that
    /// task; otherwise the one task of the tree that has these ids in its
    /// PID namespace and was alive then (none, or more than one: not
    /// believed).
    fn resolve(&self, pid: &mut u32, tid: &mut u32, ts: u64) -> bool {
        if self.believes(*pid, *tid, ts) {
            return true;
        }
        let Some(tasks) = self.namespaced.get(&(*pid, *tid)) else { return false };
        let mut alive = tasks.iter().filter(|&&(p, t)| self.believes(p, t, ts));
        match (alive.next(), alive.next()) {
            (Some(&(p, t)), None) => {
                (*pid, *tid) = (p, t);
                true
            }
            _ => false,
        }
    }

    /// Whether thread `tid` of process `pid` was in the tree at `ts`.
    fn believes(&self, pid: u32, tid: u32, ts: u64) -> bool {
        self.tasks.get(&(pid, tid)).is_some_and(|&end| ts <= end.saturating_add(SLACK_NS))
    }

    /// Keeps the attach records of tasks the kernel saw, with a plausible
    /// window. A process has several: its set-up after each exec, and one
    /// where each new thread or forked child learns its ids (which may
    /// come just before that child execs).
    fn keep_attaches(&self, attached: &mut Vec<Attached>) {
        for a in attached.iter_mut() {
            let (mut pid, mut tid) = (a.pid, a.tid);
            if self.resolve(&mut pid, &mut tid, a.end_ns) {
                (a.pid, a.tid) = (pid, tid);
            }
        }
        attached.retain(|a| {
            self.believes(a.pid, a.tid, a.end_ns) && a.end_ns >= a.start_ns && a.end_ns - a.start_ns <= MAX_SETUP_NS
        });
    }
}

/// The processes the preload records connect to `root`.
fn preload_tree(libc: &[Event], attached: &[Attached], root: u32) -> HashSet<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::default();
    for a in attached {
        children.entry(a.ppid).or_default().push(a.pid);
    }
    for e in libc {
        let Some(call) = e.as_libc() else { continue };
        let child = match (call.function.as_str(), &call.ret, call.args.first()) {
            ("fork" | "clone", Some(Arg::Int(pid)), _) => *pid,
            ("posix_spawn" | "posix_spawnp", _, Some(Arg::Int(pid))) => *pid,
            _ => continue,
        };
        if let Ok(child) = u32::try_from(child) {
            if child > 0 {
                children.entry(e.pid).or_default().push(child);
            }
        }
    }
    let mut tree = HashSet::from_iter([root]);
    let mut todo = vec![root];
    while let Some(p) = todo.pop() {
        for &c in children.get(&p).map(Vec::as_slice).unwrap_or_default() {
            if tree.insert(c) {
                todo.push(c);
            }
        }
    }
    tree
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Exit, LibcCall};

    fn ev(ts_ns: u64, pid: u32, tid: u32, kind: EventKind) -> Event {
        Event { ts_ns, pid, tid, kind }
    }

    fn libc(ts_ns: u64, pid: u32, tid: u32, function: &str, ret: i64, args: Vec<Arg>) -> Event {
        let call = LibcCall {
            function: function.into(),
            args,
            ret: Some(Arg::Int(ret)),
            errno: None,
            duration_ns: 1,
            parent: None,
            injected: false,
        };
        ev(ts_ns, pid, tid, EventKind::Libc(Box::new(call)))
    }

    fn exec(ts_ns: u64, pid: u32) -> Event {
        crate::trace::test_support::exec(ts_ns, pid, "/bin/x")
    }

    fn exit(ts_ns: u64, pid: u32, tid: u32) -> Event {
        ev(ts_ns, pid, tid, EventKind::Exit(Exit { process_exited: pid == tid, status: None }))
    }

    fn attach(pid: u32, ppid: u32, start_ns: u64, end_ns: u64) -> Attached {
        Attached { pid, tid: pid, ppid, start_ns, end_ns, wake_addr: 0, flags: 0 }
    }

    #[test]
    fn with_the_kernel_only_its_tasks_in_their_lifetime_are_believed() {
        let ms = 1_000_000;
        let mut events = vec![exec(10, 100), exec(20 * ms, 101), exit(50 * ms, 101, 101), exit(90 * ms, 100, 100)];
        let first = events.len();
        events.extend([
            libc(30 * ms, 100, 100, "getenv", 0, vec![]),
            libc(30 * ms, 101, 101, "getenv", 0, vec![]),
            // Foreign: pid 1; a thread the kernel never saw; after the end.
            libc(30 * ms, 1, 1, "getaddrinfo", 0, vec![]),
            libc(30 * ms, 100, 555, "connect", 0, vec![]),
            libc(60 * ms, 101, 101, "getenv", 0, vec![]),
        ]);
        let mut attached = vec![
            attach(100, 0, 20, 30),
            attach(101, 100, 20 * ms + 5, 20 * ms + 9),
            // A second one in the same image (a thread's, a forked child's).
            attach(101, 100, 20 * ms + 10, 21 * ms),
            // A task the kernel never saw; after the task's end; too long.
            attach(1, 0, 20, 30),
            attach(101, 100, 60 * ms, 60 * ms + 1),
            attach(100, 0, 40, 40 + MAX_SETUP_NS + 1),
        ];
        let dropped = drop_invalid(&mut events, first, &mut attached, 100, true);
        assert_eq!(dropped, 3 + 3);
        let kept: Vec<(u32, u32, u64)> = events[first..].iter().map(|e| (e.pid, e.tid, e.ts_ns)).collect();
        assert_eq!(kept, [(100, 100, 30 * ms), (101, 101, 30 * ms)]);
        let kept: Vec<(u32, u64)> = attached.iter().map(|a| (a.pid, a.start_ns)).collect();
        assert_eq!(kept, [(100, 20), (101, 20 * ms + 5), (101, 20 * ms + 10)]);
    }

    #[test]
    fn a_root_traced_after_its_exec_keeps_its_attach() {
        // The kernel saw the root end, not its exec.
        let mut all = vec![exit(90, 100, 100), libc(1, 100, 100, "getenv", 0, vec![])];
        let first = 1;
        let mut attached = vec![attach(100, 0, 20, 30), attach(101, 100, 1, 2)];
        let dropped = drop_invalid(&mut all, first, &mut attached, 100, true);
        assert_eq!(dropped, 1);
        assert_eq!(attached.iter().map(|a| (a.pid, a.start_ns)).collect::<Vec<_>>(), [(100, 20)]);
    }

    #[test]
    fn records_made_in_a_pid_namespace_get_the_kernels_ids() {
        let syscall = |ts_ns, pid, tid, nr, ret| {
            let s = crate::event::Syscall {
                name: "x".into(),
                nr,
                args: vec![],
                ret: Some(ret),
                errno: None,
                duration_ns: 1,
                parent: None,
                injected: false,
            };
            ev(ts_ns, pid, tid, EventKind::Syscall(s))
        };
        // 500 is pid 1 in its namespace, 501 its thread 2; 600 is pid 1 in
        // another namespace, and ended before the second record.
        let mut events = vec![
            exec(5, 500),
            syscall(10, 500, 500, GETPID, 1),
            syscall(11, 500, 500, GETTID, 1),
            syscall(12, 500, 501, GETPID, 1),
            syscall(13, 500, 501, GETTID, 2),
            syscall(14, 600, 600, GETPID, 1),
            syscall(15, 600, 600, GETTID, 1),
            exit(16, 600, 600),
            // The root namespace: nothing to map.
            syscall(17, 700, 700, GETPID, 700),
            syscall(18, 700, 700, GETTID, 700),
        ];
        let first = events.len();
        events.extend([
            libc(15, 1, 1, "getenv", 0, vec![]),
            libc(20 * SLACK_NS, 1, 1, "getenv", 0, vec![]),
            libc(20 * SLACK_NS, 1, 2, "getenv", 0, vec![]),
            libc(20 * SLACK_NS, 1, 3, "getenv", 0, vec![]),
        ]);
        let mut attached = vec![attach(1, 0, 20 * SLACK_NS, 20 * SLACK_NS + 5)];
        let dropped = drop_invalid(&mut events, first, &mut attached, 500, true);
        // At 15 both tasks answered (1, 1): which one made it is not known.
        assert_eq!(dropped, 2);
        let kept: Vec<(u32, u32)> = events[first..].iter().map(|e| (e.pid, e.tid)).collect();
        assert_eq!(kept, [(500, 500), (500, 501)]);
        assert_eq!((attached[0].pid, attached[0].tid), (500, 500));
    }

    #[test]
    fn alone_the_preload_records_build_the_tree_from_the_root() {
        let mut events = vec![
            libc(1, 100, 100, "fork", 101, vec![]),
            libc(2, 101, 101, "posix_spawn", 0, vec![Arg::Int(102)]),
            libc(3, 102, 102, "getenv", 0, vec![]),
            libc(4, 103, 103, "getenv", 0, vec![]),
            libc(5, 104, 104, "fork", 105, vec![]),
            libc(6, 1, 1, "getaddrinfo", 0, vec![]),
        ];
        // 103 says its parent is 102 (a vfork child); 104 and 105 hang
        // from nothing.
        let mut attached = vec![attach(100, 1, 0, 1), attach(103, 102, 3, 4), attach(104, 7, 4, 5)];
        let dropped = drop_invalid(&mut events, 0, &mut attached, 100, false);
        assert_eq!(dropped, 3);
        let kept: Vec<u32> = events.iter().map(|e| e.pid).collect();
        assert_eq!(kept, [100, 101, 102, 103]);
        assert_eq!(attached.len(), 2);
    }
}
