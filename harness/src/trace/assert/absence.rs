//! Why an expectation that something did not happen cannot be shown met:
//! lost events, processes no suitable tracer covered, undecided events.
//!
//! With the preload tracer alone, nothing that did not happen can be
//! shown: the libc layer sees only what a program does through the
//! functions probity hooks, in the programs the library is loaded in, and
//! its records are the program's own account (it writes the ring). Such a
//! check fails, naming what the libc layer cannot see
//! ([`libc_cannot_see`]), and the checks that something did happen use
//! the libc calls.

use super::violation::{Violation, ViolationKind};
use crate::coverage::TracerKind;
use crate::trace::index::{kernel_traced, Index};
use crate::trace::query::Query;

/// What the trace says of a family of events, with the preload tracer
/// alone, and why that cannot show that one of them did not happen.
pub(super) fn libc_cannot_see(family: &str) -> String {
    const UNSEEN: &str = "a raw syscall, io_uring, or a program the library is not loaded in (static, setuid, or started without LD_PRELOAD) leaves nothing in the trace; and the libc records are written by the program itself, which can leave out what it likes";
    const FIX: &str = "trace with the eBPF tracer to show that something did not happen";
    match family {
        "exec" => format!(
            "only the preload tracer ran, which sees an exec only when it is made through execve, execv, execvp, execvpe, fexecve, posix_spawn, posix_spawnp, system or popen: an exec in a vfork child (dash and Python's subprocess make theirs so) and execl, execle and execlp are not recorded, {UNSEEN}; {FIX}"
        ),
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
    let root = trace.outcome.root_pid;
    let orphans: Vec<String> = idx
        .procs
        .values()
        .filter(|p| p.pid != root && p.parent.is_none() && !p.untracked)
        .map(|p| format!("process {}", p.pid))
        .collect();
    if !orphans.is_empty() {
        v = v.note(format!(
            "{}: made by no recorded fork or spawn (vfork, system, popen and raw clones do not record the child's pid), so where they came from is unknown",
            orphans.join(", ")
        ));
    }
    v
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
    let losses = &trace.outcome.losses;
    if losses.lost_events() > 0 {
        let problem = format!(
            "{}, so an event that breaks it may be missing from the trace (the run's losses must be 0 to show that something did not happen)",
            losses.describe()
        );
        return Err(Violation::new(ViolationKind::Lost, expectation, problem, trace));
    }
    if let Some(k) = family {
        let unobserved = trace.outcome.tracers.iter().all(|t| !t.observes(k));
        if !kernel_traced(trace) && trace.outcome.tracers.contains(&TracerKind::Preload) && unobserved {
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
