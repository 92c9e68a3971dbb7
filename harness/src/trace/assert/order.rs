//! Whether the events of one query all happen before those of another.

use super::absence::absence;
use super::violation::{Violation, ViolationKind};
use crate::trace::query::Query;

pub(super) fn order_check(a: &Query<'_>, b: &Query<'_>) -> Result<(), Violation> {
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
