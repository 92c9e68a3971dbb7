//! How many events a query selects: none, exactly, at most, at least.

use super::absence::absence;
use super::violation::{Violation, ViolationKind};
use crate::trace::index::Index;
use crate::trace::query::Query;

#[derive(Clone, Copy)]
pub(super) enum Bound {
    Exactly(usize),
    AtMost(usize),
    AtLeast(usize),
}

pub(super) fn count_check(q: &Query<'_>, bound: Bound) -> Result<(), Violation> {
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
            // Each filter says why it cannot tell (a path not resolved, a
            // host name the program did not report resolving).
            let mut whys: Vec<&str> = undecided.iter().map(|(_, why)| *why).collect();
            whys.sort_unstable();
            whys.dedup();
            let more = if undecided.len() == 1 { "event" } else { "events" };
            v.note(format!("{} more {more} might match, but it cannot be told: {}", undecided.len(), whys.join("; ")))
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

pub(super) fn found_count(idx: &Index<'_>, expectation: &str, hits: &[usize]) -> Violation {
    let n = hits.len();
    let problem = format!("found {n}");
    Violation::new(ViolationKind::Found, expectation, problem, idx.trace).with_events(idx, hits, |_| None)
}
