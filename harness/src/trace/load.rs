//! Reading a trace saved by `probity run --json` back into a [`Trace`],
//! and writing one in that format.
//!
//! The file is JSON Lines (see `docs/json-schema.md`): one event per line,
//! then one `{"kind":"summary",...}` line. Reading never panics: a line that
//! is not JSON, not an event, or a file that stops before its summary gives
//! a [`LoadError`] naming the line.

use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::trace::{Outcome, Trace};

/// Why a saved trace could not be read.
///
/// ```
/// let err = probity::Trace::from_jsonl(&b"{\"kind\":\"syscall\""[..]).unwrap_err();
/// assert_eq!(err.line(), Some(1));
/// assert!(err.to_string().contains("line 1"), "{err}");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be opened.
    #[error("failed to open the trace {path}")]
    Open {
        /// The file.
        path: PathBuf,
        /// What opening it said.
        #[source]
        source: io::Error,
    },
    /// Reading failed at a line.
    #[error("failed to read line {line} of the trace")]
    Read {
        /// The line (from 1).
        line: usize,
        /// What reading said.
        #[source]
        source: io::Error,
    },
    /// A line is not JSON.
    #[error("failed to parse line {line} of the trace: it is not valid JSON")]
    Json {
        /// The line (from 1).
        line: usize,
        /// What the parser said.
        #[source]
        source: serde_json::Error,
    },
    /// A line is JSON but not a probity event or summary.
    #[error("failed to read line {line} of the trace: it is not a probity event or summary")]
    NotAnEvent {
        /// The line (from 1).
        line: usize,
        /// What did not fit.
        #[source]
        source: serde_json::Error,
    },
    /// The file ends before its summary line: the run did not finish
    /// writing it, or the file was cut.
    #[error(
        "failed to load the trace: it is truncated, {}; a complete trace ends with a {{\"kind\":\"summary\",...}} line (was probity killed, or the file cut?)",
        match (.last_line, .cut_line) {
            (0, _) => "the file is empty".to_owned(),
            (n, true) => format!("line {n} is cut short and no summary line follows"),
            (n, false) => format!("no summary line follows line {n}"),
        }
    )]
    Truncated {
        /// The last line of the file (0 when it is empty).
        last_line: usize,
        /// The last line itself stops mid-way.
        cut_line: bool,
    },
    /// More lines follow the summary.
    #[error(
        "failed to load the trace: line {line} follows the summary line (line {summary_line}), which must be last"
    )]
    AfterSummary {
        /// The first line after the summary.
        line: usize,
        /// The summary's line.
        summary_line: usize,
    },
    /// The trace was recorded with `--summary`: it has counts, no events.
    #[error(
        "failed to load the trace: it was recorded with --summary (line {line} says summary_only), so it has per-syscall counts but no events to check; record it without --summary"
    )]
    SummaryOnly {
        /// The summary's line.
        line: usize,
    },
}

impl LoadError {
    /// The line the error is about, when it is about one.
    ///
    /// ```
    /// let err = probity::Trace::from_jsonl(&b""[..]).unwrap_err();
    /// assert_eq!(err.line(), None);
    /// ```
    #[must_use]
    pub fn line(&self) -> Option<usize> {
        match self {
            LoadError::Read { line, .. }
            | LoadError::Json { line, .. }
            | LoadError::NotAnEvent { line, .. }
            | LoadError::AfterSummary { line, .. }
            | LoadError::SummaryOnly { line } => Some(*line),
            LoadError::Truncated { last_line, .. } if *last_line > 0 => Some(*last_line),
            LoadError::Open { .. } | LoadError::Truncated { .. } => None,
        }
    }
}

/// Just enough of a line to tell a summary from an event.
#[derive(Deserialize)]
struct Kind<'a> {
    #[serde(borrow)]
    kind: Option<std::borrow::Cow<'a, str>>,
}

/// The summary line's fields beyond the [`Outcome`].
#[derive(Deserialize)]
struct SummaryExtra {
    #[serde(default)]
    summary_only: bool,
}

/// The last line of a JSON trace, as `probity run --json` writes it.
#[derive(Serialize)]
struct SummaryLine<'a> {
    kind: &'static str,
    lost: u64,
    #[serde(flatten)]
    outcome: &'a Outcome,
    summary_only: bool,
}

impl Trace {
    /// Reads a trace in `probity run --json`'s JSON Lines format: events,
    /// then the summary line. Blank lines are skipped.
    ///
    /// ```
    /// let text = r#"{"kind":"exec","pid":7,"tid":7,"ts_ns":10,"filename":"/bin/true","argv":["true"]}
    /// {"kind":"summary","lost":0,"root_pid":7,"status":{"code":0},"tracers":["ebpf"],"losses":{"ring_full":0,"inflight_full":0,"task_map_full":0,"undecodable":0,"capture_faults":0},"syscalls":[],"interrupted":false,"summary_only":false}
    /// "#;
    /// let trace = probity::Trace::from_jsonl(text.as_bytes())?;
    /// assert_eq!(trace.events.len(), 1);
    /// trace.assert_execs_exactly(["true"]);
    /// # Ok::<(), probity::LoadError>(())
    /// ```
    pub fn from_jsonl(mut reader: impl BufRead) -> Result<Trace, LoadError> {
        let mut events = Vec::new();
        let mut outcome: Option<(Outcome, usize)> = None;
        let mut buf = Vec::new();
        let mut line = 0;
        // A line that stopped mid-way: the file was cut there, unless more
        // lines follow.
        let mut cut: Option<(usize, serde_json::Error)> = None;
        loop {
            buf.clear();
            let n = reader.read_until(b'\n', &mut buf).map_err(|source| LoadError::Read { line: line + 1, source })?;
            if n == 0 {
                break;
            }
            line += 1;
            let text = buf.trim_ascii();
            if text.is_empty() {
                continue;
            }
            if let Some((at, source)) = cut.take() {
                return Err(LoadError::Json { line: at, source });
            }
            if let Some((_, summary_line)) = &outcome {
                return Err(LoadError::AfterSummary { line, summary_line: *summary_line });
            }
            let kind: Kind<'_> = match serde_json::from_slice(text) {
                Ok(k) => k,
                Err(e) if e.is_eof() => {
                    cut = Some((line, e));
                    continue;
                }
                Err(e) if e.is_syntax() => return Err(LoadError::Json { line, source: e }),
                Err(e) => return Err(LoadError::NotAnEvent { line, source: e }),
            };
            if kind.kind.as_deref() == Some("summary") {
                let extra: SummaryExtra =
                    serde_json::from_slice(text).map_err(|source| LoadError::NotAnEvent { line, source })?;
                if extra.summary_only {
                    return Err(LoadError::SummaryOnly { line });
                }
                let o: Outcome =
                    serde_json::from_slice(text).map_err(|source| LoadError::NotAnEvent { line, source })?;
                outcome = Some((o, line));
            } else {
                let e: Event = serde_json::from_slice(text).map_err(|source| LoadError::NotAnEvent { line, source })?;
                events.push(e);
            }
        }
        match outcome {
            Some((outcome, _)) => Ok(Trace { events, outcome }),
            None => Err(LoadError::Truncated {
                last_line: cut.as_ref().map_or(line, |(at, _)| *at),
                cut_line: cut.is_some(),
            }),
        }
    }

    /// Reads the trace `probity run --json FILE` wrote to `path`.
    ///
    /// ```no_run
    /// let trace = probity::Trace::load("trace.jsonl")?;
    /// trace.assert_no_network();
    /// # Ok::<(), probity::LoadError>(())
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<Trace, LoadError> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|source| LoadError::Open { path: path.to_owned(), source })?;
        Trace::from_jsonl(io::BufReader::new(file))
    }

    /// Writes the trace as `probity run --json` does: one event per line,
    /// then the summary line. [`Trace::from_jsonl`] reads it back.
    ///
    /// ```no_run
    /// let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// let mut out = Vec::new();
    /// trace.write_jsonl(&mut out)?;
    /// assert_eq!(probity::Trace::from_jsonl(&out[..]).unwrap(), trace);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_jsonl(&self, mut out: impl Write) -> io::Result<()> {
        for e in &self.events {
            serde_json::to_writer(&mut out, e)?;
            out.write_all(b"\n")?;
        }
        self.outcome.write_summary_line(&mut out, false)?;
        out.flush()
    }
}

impl Outcome {
    /// Writes the closing `{"kind":"summary", ...}` line of a JSON Lines
    /// trace; `summary_only` says no event lines precede it
    /// (`probity run --summary`).
    pub fn write_summary_line(&self, mut out: impl Write, summary_only: bool) -> io::Result<()> {
        let line = SummaryLine { kind: "summary", lost: self.losses.lost_events(), outcome: self, summary_only };
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUMMARY: &str = r#"{"kind":"summary","lost":0,"root_pid":7,"status":{"code":0},"tracers":["ebpf"],"losses":{"ring_full":0,"inflight_full":0,"task_map_full":0,"undecodable":0,"capture_faults":0},"syscalls":[],"interrupted":false,"summary_only":false}"#;
    const EVENT: &str =
        r#"{"kind":"syscall","pid":7,"tid":7,"ts_ns":5,"name":"getpid","nr":39,"args":[],"ret":7,"duration_ns":1}"#;

    fn load(s: &str) -> Result<Trace, LoadError> {
        Trace::from_jsonl(s.as_bytes())
    }

    #[test]
    fn reads_events_and_summary() {
        let t = load(&format!("{EVENT}\n\n{SUMMARY}\n")).unwrap();
        assert_eq!(t.events.len(), 1);
        assert_eq!(t.outcome.root_pid, 7);
        let mut out = Vec::new();
        t.write_jsonl(&mut out).unwrap();
        assert_eq!(Trace::from_jsonl(&out[..]).unwrap(), t);
    }

    #[test]
    fn every_bad_input_names_its_line() {
        let cases: Vec<(String, Option<usize>, &str)> = vec![
            (String::new(), None, "the file is empty"),
            (format!("{EVENT}\n"), Some(1), "no summary line follows line 1"),
            (format!("{EVENT}\n{}", &EVENT[..20]), Some(2), "line 2 is cut short"),
            (format!("{EVENT}\nnot json\n{SUMMARY}\n"), Some(2), "line 2 of the trace: it is not valid JSON"),
            (format!("{EVENT}\n{{\"kind\":\"syscall\"}}\n{SUMMARY}\n"), Some(2), "not a probity event"),
            (format!("[1,2]\n{SUMMARY}\n"), Some(1), "not a probity event"),
            (format!("{SUMMARY}\n{EVENT}\n"), Some(2), "follows the summary line (line 1)"),
            (SUMMARY.replace("\"summary_only\":false", "\"summary_only\":true"), Some(1), "--summary"),
            ("{\"kind\":\"summary\"}\n".to_owned(), Some(1), "not a probity event"),
            (format!("{EVENT}\n{}\n{SUMMARY}\n", &EVENT[..30]), Some(2), "not valid JSON"),
            ("\u{1}\n".to_owned(), Some(1), "not valid JSON"),
        ];
        for (input, line, says) in cases {
            let err = load(&input).unwrap_err();
            assert_eq!(err.line(), line, "{input:?}: {err}");
            assert!(err.to_string().contains(says), "{input:?}: {err}");
        }
        let err = Trace::from_jsonl(&b"\xff\xfe\n"[..]).unwrap_err();
        assert_eq!(err.line(), Some(1), "{err}");
    }
}
