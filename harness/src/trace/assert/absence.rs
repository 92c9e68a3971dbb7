//! Why an expectation that something did not happen cannot be shown met:
//! lost events, processes no suitable tracer covered, undecided events.

use super::violation::{Violation, ViolationKind};
use crate::trace::index::Index;
use crate::trace::query::Query;

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
