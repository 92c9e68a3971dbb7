//! Why an expectation that something did not happen cannot be shown met:
//! lost events, processes no suitable tracer covered, undecided events.
//!
//! With the preload tracer alone, that no exec happened is decided when
//! the libc layer saw every way into a new program in every process of
//! the tree ([`libc_gaps`] finds none): each program the library started
//! in was exec'd by a recorded call (or is the root's, which probity
//! exec'd), each recorded exec was followed by the library starting in
//! the new program (none was static, setuid, or stripped of
//! `LD_PRELOAD`), and each process was made by a recorded call or named
//! its parent. What the layer watches is [`WATCHED`]; what it cannot see
//! is [`NOT_SEEN`], and both are said when a check refuses. The records
//! are the program's own account: a program that forges them or execs by
//! the syscall instruction can make such a check pass, which is why
//! probity's CLI gates never rest on them.
//!
//! That the tree made no network access (or none outside an allow-list)
//! is decided on the same coverage, when also no process received a
//! descriptor from another ([`network_absence`]); the calls watched are
//! [`NET_WATCHED`]. Other "did not happen" checks (syscalls, TCP events)
//! still fail, naming what the libc layer cannot see
//! ([`libc_cannot_see`]), and the checks that something did happen use
//! the libc calls.

use std::collections::BTreeMap;
use std::ffi::OsStr;

use super::calls::call;
use super::violation::{Violation, ViolationKind};
use crate::coverage::TracerKind;
use crate::event::Arg;
use crate::trace::index::{kernel_traced, libc_proc, locate, Index, LibcProc};
use crate::trace::query::{offset, Query};
use crate::trace::LibcStartKind;

/// The ways into a new program or process the libc layer watches.
pub(super) const WATCHED: &str = "the exec family (execve, execv, execvp, execvpe, fexecve, execl, execle, execlp), posix_spawn and posix_spawnp, system and popen, fork, vfork and clone, and the syscall() wrapper for execve, execveat, fork and clone";

/// The calls by which the libc layer sees a process reach the network.
pub(super) const NET_WATCHED: &str = "the calls that name a destination (connect, sendto, sendmsg and sendmmsg), the ones that make or accept a socket (socket, socketpair, accept and accept4), the receives that can carry descriptors (recvmsg and recvmmsg) and pidfd_getfd, and the syscall() wrapper for connect, sendto, sendmsg, sendmmsg, recvmsg, recvmmsg and pidfd_getfd";

/// What the libc layer does not see, whatever it watches.
pub(super) const NOT_SEEN: &str = "a program that issues the syscall instruction itself, submits work through io_uring, or writes its own records into probity's ring is not seen as it is";

/// What the trace says of a family of events, with the preload tracer
/// alone, and why that cannot show that one of them did not happen.
pub(super) fn libc_cannot_see(family: &str) -> String {
    const UNSEEN: &str = "a raw syscall, io_uring, or a program the library is not loaded in (static, setuid, or started without LD_PRELOAD) leaves nothing in the trace";
    const FIX: &str = "trace with the eBPF tracer to show that something did not happen";
    match family {
        "exec" => format!("only the preload tracer ran, which watches {WATCHED}; {NOT_SEEN}; {FIX}"),
        "syscall" => format!(
            "only the preload tracer ran, which records the libc functions probity hooks, not syscalls: a function it does not hook, {UNSEEN}; {FIX}"
        ),
        "net" => format!("only the preload tracer ran, and TCP events (retransmits, resets) are seen by the eBPF tracer alone; {FIX}"),
        other => format!("only the preload tracer ran, which records libc calls, not {other} events; {FIX}"),
    }
}

/// The failure of an expectation that no `family` event happened, in a
/// trace the kernel tracer was not part of, with notes on the processes
/// the libc layer did not see into or cannot place.
fn libc_only(idx: &Index<'_>, expectation: &str, family: &str) -> Violation {
    let trace = idx.trace;
    let mut v = Violation::new(ViolationKind::NotCovered, expectation, libc_cannot_see(family), trace);
    for (pid, (program, why)) in &idx.libc_uncovered {
        v = v.note(format!(
            "process {pid} ran {}, which the library cannot be loaded in: {why}; nothing it did after is in the trace",
            crate::event::shown(program)
        ));
    }
    let orphans = orphans(idx);
    if !orphans.is_empty() {
        v = v.note(format!(
            "{}: made by no recorded call, and named no parent in the tree, so where they came from is unknown",
            orphans.join(", ")
        ));
    }
    v
}

/// The processes of the tree that no recorded call made and whose library
/// named no parent in the tree.
fn orphans(idx: &Index<'_>) -> Vec<String> {
    let root = idx.trace.outcome.root_pid;
    idx.procs
        .values()
        .filter(|p| p.pid != root && p.parent.is_none() && !p.untracked)
        .map(|p| format!("process {}", p.pid))
        .collect()
}

/// Why the libc layer may have missed an exec in this trace, one reason
/// each (empty when it saw every way in; see the module docs).
pub(super) fn libc_gaps(idx: &Index<'_>) -> Vec<String> {
    let trace = idx.trace;
    let Some(starts) = &trace.outcome.libc_starts else {
        return vec!["the trace does not say where the library started (it was saved by an older probity)".into()];
    };
    let mut gaps = Vec::new();
    let root = trace.outcome.root_pid;
    let at = |ts: u64| offset(ts, trace.start_ns());
    // Per process, in time order: the execs recorded (`Some(program)`)
    // and the programs the library started in (`None`).
    let mut timeline: BTreeMap<u32, Vec<(u64, Option<&OsStr>)>> = BTreeMap::new();
    timeline.entry(root).or_default().push((0, Some(OsStr::new(&starts.root_program))));
    // Shells that `system` and `popen` ran, by the process that asked.
    let mut shells: BTreeMap<u32, usize> = BTreeMap::new();
    for e in &trace.events {
        match libc_proc(e) {
            Some(LibcProc::Exec { program, .. }) => {
                timeline.entry(e.pid).or_default().push((e.ts_ns, Some(program.unwrap_or(OsStr::new("?")))));
            }
            Some(LibcProc::Spawn { child, program, .. }) => {
                timeline.entry(child).or_default().push((e.ts_ns, Some(program)));
            }
            Some(LibcProc::Shell { .. }) => *shells.entry(e.pid).or_default() += 1,
            _ => {}
        }
    }
    let mut ppid_of: BTreeMap<u32, u32> = BTreeMap::new();
    for s in starts.starts.iter().filter(|s| s.kind == LibcStartKind::Image) {
        timeline.entry(s.pid).or_default().push((s.ts_ns, None));
        ppid_of.entry(s.pid).or_insert(s.ppid);
    }
    let cwd = trace.outcome.cwd.as_deref().map(OsStr::new);
    for (&pid, items) in &mut timeline {
        // An exec before the program it started at the same instant.
        items.sort_by_key(|&(ts, what)| (ts, what.is_none()));
        let mut pending: Option<(u64, &OsStr)> = None;
        let mut first = true;
        for &(ts, what) in items.iter() {
            match what {
                Some(program) => {
                    if let Some((ts, prev)) = pending.replace((ts, program)) {
                        gaps.push(not_loaded(pid, prev, at(ts), cwd));
                    }
                }
                None => {
                    let shell = first
                        && ppid_of.get(&pid).and_then(|pp| shells.get_mut(pp)).is_some_and(|n| {
                            let had = *n > 0;
                            *n = n.saturating_sub(1);
                            had
                        });
                    if pending.take().is_none() && !shell {
                        gaps.push(format!(
                            "process {pid} started a new program at {} that no recorded call exec'd (an exec by the syscall instruction, or in a child of a raw vfork or clone the library could not record)",
                            at(ts)
                        ));
                    }
                }
            }
            first &= what.is_some();
        }
        if let Some((ts, program)) = pending {
            gaps.push(not_loaded(pid, program, at(ts), cwd));
        }
    }
    for (pid, n) in shells {
        if n > 0 {
            gaps.push(format!(
                "process {pid} ran {n} shell{} with system or popen that the library never started in",
                if n == 1 { "" } else { "s" }
            ));
        }
    }
    for e in &trace.events {
        let Some(c) = e.as_libc().filter(|c| c.function == "syscall") else { continue };
        let set_up = matches!(c.args.first(), Some(&Arg::Int(nr)) if nr == libc::SYS_io_uring_setup)
            && matches!(c.ret, Some(Arg::Int(fd)) if fd >= 0);
        if set_up {
            gaps.push(format!(
                "process {} set up io_uring at {}, whose submissions the libc layer does not see",
                e.pid,
                at(e.ts_ns)
            ));
        }
    }
    let orphans = orphans(idx);
    if !orphans.is_empty() {
        gaps.push(format!(
            "{}: made by no recorded call, and named no parent in the tree (a raw clone, or a vfork child the library could not record)",
            orphans.join(", ")
        ));
    }
    gaps
}

/// A process exec'd `program` and the library never started in it.
fn not_loaded(pid: u32, program: &OsStr, at: String, cwd: Option<&OsStr>) -> String {
    let why = locate(program, cwd)
        .and_then(|f| crate::preload::coverage::never_preloaded(f.as_os_str()))
        .unwrap_or("LD_PRELOAD not in its environment, or not loaded");
    format!(
        "process {pid} exec'd {} at {at}, which the library was not loaded in: {why}; nothing it did after is in the trace",
        crate::event::shown(program)
    )
}

/// With the preload tracer alone, an expectation that no exec happened:
/// decided when the libc layer saw every way in, refused otherwise,
/// with the reasons.
fn libc_execs(idx: &Index<'_>, expectation: &str) -> Result<(), Violation> {
    let gaps = libc_gaps(idx);
    if gaps.is_empty() {
        return Ok(());
    }
    let problem = format!(
        "only the preload tracer ran, and it cannot show that no exec happened: {}. It watches {WATCHED}; {NOT_SEEN}; trace with the eBPF tracer to show it",
        gaps.join("; ")
    );
    Err(Violation::new(ViolationKind::NotCovered, expectation, problem, idx.trace))
}

/// Fails an expectation that something did not happen when the trace
/// cannot show it: events were lost, a process it is about was not covered
/// by a tracer that sees `family` events, or some events are `undecided`.
pub(super) fn absence(
    idx: &Index<'_>,
    expectation: &str,
    family: Option<&str>,
    scope: Option<&Query<'_>>,
    undecided: &[(usize, &'static str)],
) -> Result<(), Violation> {
    let trace = idx.trace;
    nothing_lost(idx, expectation)?;
    if let Some(k) = family {
        let unobserved = trace.outcome.tracers.iter().all(|t| !t.observes(k));
        if !kernel_traced(trace) && trace.outcome.tracers.contains(&TracerKind::Preload) && unobserved {
            if k == "exec" && undecided.is_empty() {
                return libc_execs(idx, expectation);
            }
            return Err(libc_only(idx, expectation, k));
        }
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
    decided(idx, expectation, undecided)
}

/// Fails when events were lost: one that breaks the expectation may be
/// among them.
fn nothing_lost(idx: &Index<'_>, expectation: &str) -> Result<(), Violation> {
    let losses = &idx.trace.outcome.losses;
    if losses.lost_events() > 0 {
        let problem = format!(
            "{}, so an event that breaks it may be missing from the trace (the run's losses must be 0 to show that something did not happen)",
            losses.describe()
        );
        return Err(Violation::new(ViolationKind::Lost, expectation, problem, idx.trace));
    }
    Ok(())
}

/// Fails when some events might break the expectation but cannot be
/// told apart.
fn decided(idx: &Index<'_>, expectation: &str, undecided: &[(usize, &'static str)]) -> Result<(), Violation> {
    if undecided.is_empty() {
        return Ok(());
    }
    let indexes: Vec<usize> = undecided.iter().map(|(i, _)| *i).collect();
    let problem = format!(
        "{} {} might break it but cannot be told apart",
        undecided.len(),
        if undecided.len() == 1 { "event" } else { "events" }
    );
    let v = Violation::new(ViolationKind::Undecided, expectation, problem, idx.trace);
    Err(v.with_events(idx, &indexes, |i| undecided.iter().find(|(j, _)| *j == i).map(|(_, why)| (*why).to_owned())))
}

/// The absence half of a network check (no network, only to allowed
/// destinations), once the events that break it were looked for.
///
/// With the preload tracer alone it is decided when the libc layer saw
/// every way out: every process of the tree was covered by the library
/// ([`libc_gaps`] finds no way in it missed, and no io_uring), and none
/// received a descriptor from another process ([`received_descriptors`]).
/// Otherwise it refuses, naming each process and why; the refusal says
/// which calls are watched ([`NET_WATCHED`]) and what is not seen.
pub(super) fn network_absence(
    idx: &Index<'_>,
    expectation: &str,
    undecided: &[(usize, &'static str)],
) -> Result<(), Violation> {
    let trace = idx.trace;
    if kernel_traced(trace) || !trace.outcome.tracers.contains(&TracerKind::Preload) {
        return absence(idx, expectation, Some("syscall"), None, undecided);
    }
    nothing_lost(idx, expectation)?;
    let mut gaps = libc_gaps(idx);
    gaps.extend(received_descriptors(idx));
    gaps.extend(name_lookups(idx));
    if !gaps.is_empty() {
        let problem = format!(
            "only the preload tracer ran, and it cannot show that the tree had no other way out: {}. It watches {NET_WATCHED}; {NOT_SEEN}; trace with the eBPF tracer to show it",
            gaps.join("; ")
        );
        return Err(Violation::new(ViolationKind::NotCovered, expectation, problem, trace));
    }
    decided(idx, expectation, undecided)
}

/// The processes that looked a name up through glibc's resolver: it
/// sends its queries through calls inside libc that the library cannot
/// hook, so a lookup is network traffic the libc layer does not see.
fn name_lookups(idx: &Index<'_>) -> Vec<String> {
    let trace = idx.trace;
    let mut seen = std::collections::BTreeSet::new();
    trace
        .events
        .iter()
        .filter_map(|e| {
            let c = e.as_libc()?;
            let resolver = matches!(
                c.function.as_str(),
                "getaddrinfo" | "gethostbyname" | "gethostbyname2" | "gethostbyname_r" | "gethostbyname2_r"
                    | "getnameinfo" | "gethostbyaddr" | "res_query" | "res_search" | "res_send"
            );
            // A numeric address is converted, never looked up.
            let numeric = matches!(
                c.args.first(),
                Some(Arg::Path { path, .. }) if path.to_str().is_some_and(|n| n.parse::<std::net::IpAddr>().is_ok())
            );
            (resolver && !numeric && seen.insert(e.pid)).then(|| {
                format!(
                    "process {} looked a name up ({}), and glibc's resolver sends its queries through calls the library cannot hook",
                    e.pid, c.function
                )
            })
        })
        .collect()
}

/// The processes that received descriptors from another process
/// (`SCM_RIGHTS` on a `recvmsg` or `recvmmsg` the libc layer recorded,
/// or a `pidfd_getfd`): the libc layer never saw what such a descriptor
/// is connected to.
pub(super) fn received_descriptors(idx: &Index<'_>) -> Vec<String> {
    let trace = idx.trace;
    (0..trace.events.len())
        .filter_map(|i| {
            let c = call(idx, i).filter(|c| matches!(c.name, "recvmsg" | "recvmmsg" | "pidfd_getfd") && c.ok)?;
            let e = &trace.events[i];
            if c.name == "pidfd_getfd" {
                return Some(format!(
                    "process {} took a descriptor from another process with pidfd_getfd at {}, and the libc layer never saw what it is connected to",
                    e.pid,
                    offset(e.ts_ns, trace.start_ns())
                ));
            }
            let n = match c.args.get(3) {
                Some(Arg::Int(n)) if *n > 0 => *n,
                _ => return None,
            };
            Some(format!(
                "process {} received {n} descriptor{} over a socket at {} (SCM_RIGHTS), and the libc layer never saw what {} connected to",
                e.pid,
                if n == 1 { "" } else { "s" },
                offset(e.ts_ns, trace.start_ns()),
                if n == 1 { "it is" } else { "they are" }
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Arg, Event, EventKind, LibcCall};
    use crate::trace::test_support::{path, trace};
    use crate::trace::{LibcStart, LibcStarts, Trace};

    /// A libc call of process `pid` at `ts`.
    fn libc(ts: u64, pid: u32, function: &str, args: Vec<Arg>, ret: Option<Arg>) -> Event {
        let call = LibcCall {
            function: function.into(),
            args,
            ret,
            errno: None,
            duration_ns: 1,
            parent: None,
            injected: false,
        };
        Event { ts_ns: ts, pid, tid: pid, kind: EventKind::Libc(Box::new(call)) }
    }

    fn image(ts_ns: u64, pid: u32, ppid: u32) -> LibcStart {
        LibcStart { pid, ppid, ts_ns, kind: LibcStartKind::Image }
    }

    /// A preload-only trace of root 10 (`/bin/sh`) with these events and starts.
    fn preload_only(events: Vec<Event>, starts: Vec<LibcStart>) -> Trace {
        let mut t = trace(events, Some("/"));
        t.outcome.tracers = vec![TracerKind::Preload];
        t.outcome.libc_starts =
            Some(LibcStarts { root_program: "/bin/sh".into(), root_argv: vec!["sh".into()], starts });
        t
    }

    fn execve(ts: u64, pid: u32, program: &str) -> Event {
        let argv = Arg::Strings { items: vec![program.into()], truncated: false };
        libc(ts, pid, "execve", vec![path(program), argv], None)
    }

    fn gaps(t: &Trace) -> Vec<String> {
        libc_gaps(&Index::new(t))
    }

    #[test]
    fn every_program_exec_d_by_a_recorded_call_leaves_no_gap() {
        // The root's image, a fork, an exec in the child, and its image.
        let t = preload_only(
            vec![libc(5, 10, "fork", vec![], Some(Arg::Int(11))), execve(6, 11, "/bin/true")],
            vec![image(1, 10, 9), image(7, 11, 10)],
        );
        assert_eq!(gaps(&t), Vec::<String>::new());
        // A `system` shell, placed by the parent its library named.
        let t = preload_only(
            vec![libc(5, 10, "system", vec![path("true")], Some(Arg::Int(0)))],
            vec![image(1, 10, 9), image(7, 12, 10)],
        );
        assert_eq!(gaps(&t), Vec::<String>::new());
        assert_eq!(Index::new(&t).procs[&12].parent, Some(10));
    }

    #[test]
    fn a_program_no_call_exec_d_and_an_exec_the_library_missed_are_gaps() {
        // The root started a second program with no exec recorded.
        let t = preload_only(vec![], vec![image(1, 10, 9), image(7, 10, 9)]);
        let g = gaps(&t);
        assert_eq!(g.len(), 1, "{g:?}");
        assert!(g[0].starts_with("process 10 started a new program at") && g[0].contains("no recorded call exec'd"));
        // An exec after which the library never started.
        let t = preload_only(vec![execve(6, 10, "/no/such/program")], vec![image(1, 10, 9)]);
        let g = gaps(&t);
        assert_eq!(g.len(), 1, "{g:?}");
        assert!(g[0].starts_with("process 10 exec'd /no/such/program at"), "{g:?}");
        assert!(g[0].contains("LD_PRELOAD not in its environment"), "{g:?}");
        // The root's own program never started the library (static, say).
        let t = preload_only(vec![], vec![]);
        assert!(gaps(&t)[0].starts_with("process 10 exec'd /bin/sh at"), "{:?}", gaps(&t));
        // A shell that never started it, and a process of unknown origin.
        let t = preload_only(
            vec![
                libc(5, 10, "popen", vec![path("true"), path("r")], Some(Arg::Ptr(1))),
                libc(6, 13, "getenv", vec![path("HOME")], None),
            ],
            vec![image(1, 10, 9)],
        );
        let g = gaps(&t);
        assert_eq!(g.len(), 2, "{g:?}");
        assert!(g[0].contains("ran 1 shell with system or popen that the library never started in"), "{g:?}");
        assert!(g[1].starts_with("process 13: made by no recorded call"), "{g:?}");
        // A trace saved without the starts: nothing can be told.
        let mut t = preload_only(vec![], vec![image(1, 10, 9)]);
        t.outcome.libc_starts = None;
        assert!(gaps(&t)[0].contains("does not say where the library started"));
    }

    fn inet(addr: &str) -> Arg {
        let addr = addr.parse::<std::net::SocketAddr>().unwrap();
        Arg::Sockaddr(crate::event::SockAddr::Inet { addr })
    }

    fn sendto(ts: u64, fd: i32, to: Option<&str>) -> Event {
        let to = to.map_or(Arg::Ptr(0), inet);
        libc(ts, 10, "sendto", vec![Arg::Fd(fd), Arg::Ptr(1), Arg::Int(1), Arg::Int(0), to], Some(Arg::Int(1)))
    }

    /// With the library in every process, the network checks decide on
    /// the libc records; a received descriptor makes them refuse.
    #[test]
    fn network_checks_decide_on_a_covered_tree() {
        let quiet = preload_only(vec![], vec![image(1, 10, 9)]);
        quiet.assert_no_network();
        quiet.assert_network_only_to(["192.0.2.1"]);
        // A datagram to an address, and one on the socket it connected.
        let t = preload_only(
            vec![
                libc(2, 10, "connect", vec![Arg::Fd(3), inet("127.0.0.1:53"), Arg::Int(16)], Some(Arg::Int(0))),
                sendto(3, 3, None),
                sendto(4, 4, Some("127.0.0.2:53")),
            ],
            vec![image(1, 10, 9)],
        );
        t.assert_network_only_to(["127.0.0.0/8"]);
        let v = t.check_network_only_to(["127.0.0.1"]).unwrap_err();
        assert_eq!(v.kind(), ViolationKind::Found, "{v}");
        assert_eq!(v.events().count(), 1, "the sendto naming 127.0.0.2: {v}");
        // A send naming no address on a socket no recorded call connected.
        let t = preload_only(vec![sendto(3, 5, None)], vec![image(1, 10, 9)]);
        let v = t.check_network_only_to(["127.0.0.1"]).unwrap_err();
        assert_eq!(v.kind(), ViolationKind::Undecided, "{v}");
        assert!(v.to_string().contains("never saw connected"), "{v}");
        // A child sends on the socket its parent connected before the fork.
        let mut child_send = sendto(8, 3, None);
        child_send.pid = 11;
        child_send.tid = 11;
        let t = preload_only(
            vec![
                libc(2, 10, "connect", vec![Arg::Fd(3), inet("127.0.0.1:53"), Arg::Int(16)], Some(Arg::Int(0))),
                libc(5, 10, "fork", vec![], Some(Arg::Int(11))),
                child_send,
            ],
            vec![image(1, 10, 9)],
        );
        t.assert_network_only_to(["127.0.0.1"]);
        // One end of a socket pair stays in the tree.
        let pair = libc(
            2,
            10,
            "socketpair",
            vec![Arg::Int(1), Arg::Hex(2), Arg::Int(0), Arg::Fd(5), Arg::Fd(6)],
            Some(Arg::Int(0)),
        );
        preload_only(vec![pair, sendto(3, 5, None)], vec![image(1, 10, 9)]).assert_no_network();
        // A descriptor received with recvmsg, or through syscall().
        let rights = |function: &str, pre: Vec<Arg>| {
            let mut args = pre;
            args.extend([Arg::Fd(3), Arg::Ptr(0), Arg::Hex(0), Arg::Int(2)]);
            preload_only(vec![libc(2, 10, function, args, Some(Arg::Int(1)))], vec![image(1, 10, 9)])
        };
        for t in [rights("recvmsg", vec![]), rights("syscall", vec![Arg::Int(libc::SYS_recvmsg)])] {
            let v = t.check_no_network().unwrap_err();
            assert_eq!(v.kind(), ViolationKind::NotCovered, "{v}");
            assert!(v.to_string().contains("process 10 received 2 descriptors over a socket at"), "{v}");
            assert!(v.to_string().contains(NET_WATCHED), "{v}");
        }
    }
}
