//! Expectations about the programs the process tree exec'd.

use std::ffi::OsStr;

use super::absence::{absence, NOT_SEEN, WATCHED};
use super::violation::{found, list, ok_or_panic, Violation, ViolationKind};
use crate::event::EventKind;
use crate::trace::index::{kernel_traced, libc_proc, Index, LibcProc};
use crate::trace::query::program_is;
use crate::trace::Trace;

impl Trace {
    /// The indexes of the exec events, and each one's program. Without the
    /// kernel tracer, the libc calls that exec'd a program (as the call
    /// named it; `system` and `popen` run `/bin/sh`) stand for them.
    fn execs(&self) -> Vec<(usize, &OsStr)> {
        let kernel = kernel_traced(self);
        self.events
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match &e.kind {
                EventKind::Exec(x) => Some((i, x.filename.as_os_str())),
                EventKind::Libc(_) if !kernel => match libc_proc(e)? {
                    LibcProc::Spawn { program, .. } | LibcProc::Exec { program: Some(program), .. } => {
                        Some((i, program))
                    }
                    LibcProc::Shell { .. } => Some((i, OsStr::new("/bin/sh"))),
                    LibcProc::Exec { program: None, .. } | LibcProc::Fork { .. } => None,
                },
                _ => None,
            })
            .collect()
    }

    /// With the preload tracer alone, the program probity exec'd as the
    /// root process, which no libc call shows (the kernel tracer sees it).
    fn root_exec(&self) -> Option<&OsStr> {
        let starts = self.outcome.libc_starts.as_ref().filter(|_| !kernel_traced(self))?;
        Some(OsStr::new(&starts.root_program))
    }

    /// A violation naming the root's own exec, which is not an event.
    fn root_found(&self, idx: &Index<'_>, expectation: &str, program: &OsStr) -> Violation {
        let problem = format!(
            "the root process {} ran {} (probity exec'd it)",
            self.outcome.root_pid,
            crate::event::shown(program)
        );
        Violation::new(ViolationKind::Found, expectation, problem, idx.trace)
    }

    /// Checks that the programs the process tree exec'd are exactly
    /// `programs`: each one at least once, and nothing else. A program is a
    /// path (`/usr/bin/cat`) or a file name (`cat`), compared with the path
    /// the kernel exec'd. Fails, saying why, when events were lost.
    ///
    /// With the preload tracer alone, the execs are the root's (probity
    /// made it) and those the libc calls recorded (see
    /// [`Process::execs`](crate::Process::execs)): one that is not
    /// expected fails the check, and "nothing else" is shown only when the
    /// libc layer saw every way into a new program in every process;
    /// otherwise the check fails as not covered, saying why.
    ///
    /// ```no_run
    /// use std::process::Command;
    ///
    /// let mut cmd = Command::new("sh");
    /// cmd.args(["-c", "cat /etc/hostname"]);
    /// let trace = probity::Tracer::new().run(cmd)?;
    /// trace.check_execs_exactly(["sh", "cat"])?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_execs_exactly<I, S>(&self, programs: I) -> Result<(), Violation>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let programs: Vec<String> = programs.into_iter().map(|p| p.as_ref().to_owned()).collect();
        let idx = Index::new(self);
        let expectation = format!("exactly these programs exec'd: {}", list(&programs));
        let execs = self.execs();
        let root = self.root_exec();
        let unexpected: Vec<usize> =
            execs.iter().filter(|(_, f)| !programs.iter().any(|p| program_is(f, p))).map(|(i, _)| *i).collect();
        let missing: Vec<String> = programs
            .iter()
            .filter(|p| !execs.iter().any(|(_, f)| program_is(f, p)) && !root.is_some_and(|r| program_is(r, p)))
            .cloned()
            .collect();
        if let Some(r) = root.filter(|r| unexpected.is_empty() && !programs.iter().any(|p| program_is(r, p))) {
            return Err(self.root_found(&idx, &expectation, r));
        }
        if !unexpected.is_empty() {
            let mut v = found(&idx, &expectation, &unexpected, |_| None);
            if !missing.is_empty() {
                v = v.note(format!("{}: {}", never_execd(self), list(&missing)));
            }
            return Err(v);
        }
        if !missing.is_empty() {
            return Err(missing_execs(&idx, &expectation, &missing, &execs));
        }
        absence(&idx, &expectation, Some("exec"), None, &[])
    }

    /// Panics unless [`check_execs_exactly`](Trace::check_execs_exactly) passes.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.assert_execs_exactly(["true"]);
    /// # Ok::<(), probity::Error>(())
    /// ```
    #[track_caller]
    pub fn assert_execs_exactly<I, S>(&self, programs: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        ok_or_panic(self.check_execs_exactly(programs));
    }

    /// Checks that the process tree exec'd each of `programs` (paths or
    /// file names) at least once. With the preload tracer alone, the execs
    /// the libc calls recorded count.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.check_execs_at_least(["true"])?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_execs_at_least<I, S>(&self, programs: I) -> Result<(), Violation>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let programs: Vec<String> = programs.into_iter().map(|p| p.as_ref().to_owned()).collect();
        let expectation = format!("at least these programs exec'd: {}", list(&programs));
        let execs = self.execs();
        let root = self.root_exec();
        let missing: Vec<String> = programs
            .iter()
            .filter(|p| !execs.iter().any(|(_, f)| program_is(f, p)) && !root.is_some_and(|r| program_is(r, p)))
            .cloned()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(missing_execs(&Index::new(self), &expectation, &missing, &execs))
    }

    /// Panics unless [`check_execs_at_least`](Trace::check_execs_at_least) passes.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.assert_execs_at_least(["true"]);
    /// # Ok::<(), probity::Error>(())
    /// ```
    #[track_caller]
    pub fn assert_execs_at_least<I, S>(&self, programs: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        ok_or_panic(self.check_execs_at_least(programs));
    }

    /// Checks that the process tree exec'd none of `programs` (paths or
    /// file names). Fails, saying why, when events were lost. With the
    /// preload tracer alone, a libc call that exec'd one of them fails it
    /// as found; it passes only when the libc layer saw every way into a
    /// new program in every process of the tree (no static or setuid
    /// program, the library started in every program exec'd, and every
    /// program it started in exec'd by a recorded call), and otherwise
    /// fails as not covered, saying why. Those records are the program's
    /// own account: a program issuing the syscall instruction itself is
    /// not seen.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.check_never_execs(["curl", "wget"])?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_never_execs<I, S>(&self, programs: I) -> Result<(), Violation>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let programs: Vec<String> = programs.into_iter().map(|p| p.as_ref().to_owned()).collect();
        let idx = Index::new(self);
        let expectation = format!("none of these programs exec'd: {}", list(&programs));
        let bad: Vec<usize> =
            self.execs().iter().filter(|(_, f)| programs.iter().any(|p| program_is(f, p))).map(|(i, _)| *i).collect();
        if !bad.is_empty() {
            return Err(found(&idx, &expectation, &bad, |_| None));
        }
        if let Some(r) = self.root_exec().filter(|r| programs.iter().any(|p| program_is(r, p))) {
            return Err(self.root_found(&idx, &expectation, r));
        }
        absence(&idx, &expectation, Some("exec"), None, &[])
    }

    /// Panics unless [`check_never_execs`](Trace::check_never_execs) passes.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.assert_never_execs(["curl", "wget"]);
    /// # Ok::<(), probity::Error>(())
    /// ```
    #[track_caller]
    pub fn assert_never_execs<I, S>(&self, programs: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        ok_or_panic(self.check_never_execs(programs));
    }
}

pub(super) fn missing_execs(
    idx: &Index<'_>,
    expectation: &str,
    missing: &[String],
    execs: &[(usize, &OsStr)],
) -> Violation {
    let problem = format!("{}: {}", never_execd(idx.trace), list(missing));
    let mut v = Violation::new(ViolationKind::Missing, expectation, problem, idx.trace);
    if !kernel_traced(idx.trace) {
        v = v.note(format!(
            "only the preload tracer ran: it sees the execs made through {WATCHED}, in the programs the library is loaded in; {NOT_SEEN}"
        ));
    }
    let all: Vec<usize> = execs.iter().map(|(i, _)| *i).collect();
    if all.is_empty() {
        return v.note(if kernel_traced(idx.trace) {
            "no exec is in the trace"
        } else {
            "no exec was seen through libc"
        });
    }
    v.with_events(idx, &all, |_| None).titled("the execs that happened")
}

/// How a missing exec is told: with the kernel tracer it was never
/// exec'd; with the libc layer alone it was not seen.
fn never_execd(trace: &Trace) -> &'static str {
    if kernel_traced(trace) {
        "these were never exec'd"
    } else {
        "these were not seen exec'd"
    }
}
