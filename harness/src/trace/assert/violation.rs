//! The [`Violation`] a `check_*` returns: what was expected, what broke
//! it, and the events that show it.

use crate::event::{Arg, Event, EventKind};
use crate::trace::index::{FdTarget, Index};
use crate::trace::query::base_name;
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
pub(super) struct Finding {
    pub(super) event: Event,
    /// The program the process ran then, as its file name.
    pub(super) program: Option<String>,
    /// Why this event is listed, when the event does not say it itself.
    pub(super) note: Option<String>,
    /// The files behind its descriptor arguments (see [`fd_paths`]).
    pub(super) fds: Vec<(usize, String)>,
}

/// An event with the files behind its descriptor arguments: a listed one,
/// or one of the excerpt.
#[derive(Clone, Debug)]
pub(super) struct Shown {
    pub(super) event: Event,
    pub(super) fds: Vec<(usize, String)>,
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
pub struct Violation(pub(super) Box<Details>);

/// What a [`Violation`] says, boxed so that a `Result` stays small.
#[derive(Clone, Debug)]
pub(super) struct Details {
    pub(super) kind: ViolationKind,
    pub(super) expectation: String,
    pub(super) problem: String,
    pub(super) findings: Vec<Finding>,
    /// What the listed events are, when they do not break the expectation
    /// themselves (the closest to what is missing).
    pub(super) title: Option<String>,
    pub(super) omitted: usize,
    /// The trace around the first finding: its process's events, with the
    /// finding's position.
    pub(super) excerpt: Option<(Vec<Shown>, usize)>,
    pub(super) notes: Vec<String>,
    pub(super) start_ns: u64,
}

/// How many events a message lists, and how many it shows around the
/// first one on each side.
pub(super) const MAX_LISTED: usize = 10;
const CONTEXT: usize = 3;

impl Violation {
    pub(super) fn new(
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
    pub(super) fn with_events(
        mut self,
        idx: &Index<'_>,
        indexes: &[usize],
        note: impl Fn(usize) -> Option<String>,
    ) -> Violation {
        let events = &idx.trace.events;
        for &i in indexes.iter().take(MAX_LISTED) {
            let e = &events[i];
            let program = idx.image_at(e.pid, e.ts_ns).map(|(f, _)| crate::event::shown(base_name(f)).into_owned());
            self.0.findings.push(Finding { event: e.clone(), program, note: note(i), fds: fd_paths(idx, i) });
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
                let shown = same[lo..hi].iter().map(|&j| Shown { event: events[j].clone(), fds: fd_paths(idx, j) });
                self.0.excerpt = Some((shown.collect(), pos - lo));
            }
        }
        self
    }

    pub(super) fn titled(mut self, title: impl Into<String>) -> Violation {
        self.0.title = Some(title.into());
        self
    }

    pub(super) fn note(mut self, note: impl Into<String>) -> Violation {
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
}

/// The file behind the descriptor argument of call `i`, when the index
/// knows it (the call works on a descriptor and names no path), as
/// `(argument index, path)`: what a message shows as `fsync(3</tmp/db>)`.
pub(super) fn fd_paths(idx: &Index<'_>, i: usize) -> Vec<(usize, String)> {
    let Some(a) = idx.access(i) else { return Vec::new() };
    let Some(FdTarget::File(r)) = a.fd.as_deref() else { return Vec::new() };
    let Some(path) = r.shown() else { return Vec::new() };
    let args = match &idx.trace.events[i].kind {
        EventKind::Syscall(s) => &s.args,
        EventKind::Libc(c) => &c.args,
        _ => return Vec::new(),
    };
    // The index's descriptor is the call's first one.
    args.iter().position(|x| matches!(x, Arg::Fd(_))).map(|k| vec![(k, path.into_owned())]).unwrap_or_default()
}

pub(super) fn found(
    idx: &Index<'_>,
    expectation: &str,
    indexes: &[usize],
    note: impl Fn(usize) -> Option<String>,
) -> Violation {
    let n = indexes.len();
    let problem = format!(
        "found {n} {} that {} it",
        if n == 1 { "event" } else { "events" },
        if n == 1 { "breaks" } else { "break" }
    );
    Violation::new(ViolationKind::Found, expectation, problem, idx.trace).with_events(idx, indexes, note)
}

pub(super) fn list(items: &[String]) -> String {
    items.join(", ")
}

#[track_caller]
pub(super) fn ok_or_panic(r: Result<(), Violation>) {
    if let Err(v) = r {
        panic!("{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_are_errors_that_cross_threads() {
        fn error<T: std::error::Error + Send + Sync + 'static>() {}
        error::<Violation>();
        error::<crate::LoadError>();
        assert!(std::mem::size_of::<Result<(), Violation>>() <= 16);
    }
}
