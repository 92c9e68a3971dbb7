//! How a [`Violation`] reads: its `Display` (the failure message) and its
//! stable text, the same message without what changes from run to run.

use std::fmt::{self, Write as _};

use super::violation::Violation;
use crate::event::Event;
use crate::trace::query::offset;
use crate::trace::snapshot::Normalizer;

impl Violation {
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
