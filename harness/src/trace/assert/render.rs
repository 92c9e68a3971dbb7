//! How a [`Violation`] reads: its `Display` (the failure message) and its
//! stable text, the same message without what changes from run to run.

use std::fmt::{self, Write as _};

use super::violation::Violation;
use crate::event::{Arg, Event, EventKind};
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
            let _ = writeln!(s, "  {when}{program}{}", style.line(&f.event, &f.fds));
            if let Some(note) = &f.note {
                let _ = writeln!(s, "      ({})", style.text(note));
            }
        }
        if self.0.omitted > 0 {
            let _ = writeln!(s, "  ... and {} more", self.0.omitted);
        }
        if let Some((events, at)) = &self.0.excerpt {
            if events.len() > 1 {
                let pid = style.text(&format!("process {}", events[*at].event.pid));
                let _ = writeln!(s, "the trace of {pid} around the first one:");
                for (k, e) in events.iter().enumerate() {
                    let mark = if k == *at { ">" } else { " " };
                    let _ = writeln!(s, "  {mark} {}", style.line(&e.event, &e.fds));
                }
            }
        }
        for note in &self.0.notes {
            let _ = writeln!(s, "note: {}", style.text(note));
        }
        s
    }
}

/// How a message shows events: as they are, or stable. `fds` names the
/// files behind descriptor arguments, by argument index.
trait Style {
    fn line(&mut self, e: &Event, fds: &[(usize, String)]) -> String;
    fn time(&self, ts: u64, start: u64) -> String;
    fn text(&mut self, s: &str) -> String;
}

struct Raw;

impl Style for Raw {
    fn line(&mut self, e: &Event, fds: &[(usize, String)]) -> String {
        crate::render::event_line_with(e, &|i| fd_path(fds, i).map(str::to_owned))
    }
    fn time(&self, ts: u64, start: u64) -> String {
        format!("{} ", offset(ts, start))
    }
    fn text(&mut self, s: &str) -> String {
        s.to_owned()
    }
}

fn fd_path(fds: &[(usize, String)], i: usize) -> Option<&str> {
    fds.iter().find(|(k, _)| *k == i).map(|(_, p)| p.as_str())
}

struct Stable<'n>(&'n mut Normalizer);

impl Style for Stable<'_> {
    fn line(&mut self, e: &Event, fds: &[(usize, String)]) -> String {
        let plain = self.0.line(e);
        if fds.is_empty() {
            return plain;
        }
        // The normalizer shows each argument on its own terms; each
        // annotated descriptor is put in as a marker string, then the
        // marker replaced with the descriptor as the normalizer numbers it
        // (the plain line above numbered it first) and its path.
        let mut marked = e.clone();
        let args = match &mut marked.kind {
            EventKind::Syscall(s) => &mut s.args,
            EventKind::Libc(c) => &mut c.args,
            _ => return plain,
        };
        let mut replacements = Vec::new();
        for (k, path) in fds {
            let Some(Arg::Fd(fd)) = args.get(*k).cloned() else { continue };
            let marker = format!("probity-descriptor-argument-{k}");
            args[*k] = Arg::Path { path: marker.clone().into(), truncated: false };
            let number = self.descriptor(e, fd);
            replacements.push((format!("\"{marker}\""), format!("{number}<{}>", self.0.words(path))));
        }
        let mut line = self.0.line(&marked);
        for (marker, shown) in replacements {
            line = line.replacen(&marker, &shown, 1);
        }
        line
    }
    fn time(&self, _: u64, _: u64) -> String {
        String::new()
    }
    fn text(&mut self, s: &str) -> String {
        self.0.words(s)
    }
}

impl Stable<'_> {
    /// Descriptor `fd` of `e`'s process as the normalizer shows it.
    fn descriptor(&mut self, e: &Event, fd: i32) -> String {
        let close = Event {
            kind: EventKind::Syscall(crate::event::Syscall {
                name: "close".into(),
                nr: 3,
                args: vec![Arg::Fd(fd)],
                ret: Some(0),
                errno: None,
                duration_ns: 0,
                parent: None,
                injected: false,
            }),
            ..e.clone()
        };
        let line = self.0.line(&close);
        line.split_once("close(")
            .and_then(|(_, rest)| rest.split_once(')'))
            .map_or_else(|| fd.to_string(), |(n, _)| n.to_owned())
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.render(&mut Raw).trim_end())
    }
}

impl std::error::Error for Violation {}
