//! Expectations about the programs the process tree exec'd.

use std::ffi::OsStr;

use super::absence::absence;
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

    /// Checks that the programs the process tree exec'd are exactly
    /// `programs`: each one at least once, and nothing else. A program is a
    /// path (`/usr/bin/cat`) or a file name (`cat`), compared with the path
    /// the kernel exec'd. Fails, saying why, when events were lost.
    ///
    /// With the preload tracer alone, the execs are those the libc calls
    /// recorded (see [`Process::execs`](crate::Process::execs)): one that
    /// is not expected fails the check, but "nothing else" cannot be shown
    /// (execs in `vfork` children, `execl*` and raw syscalls go unseen),
    /// so the check fails as not covered, saying so.
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
        let unexpected: Vec<usize> =
            execs.iter().filter(|(_, f)| !programs.iter().any(|p| program_is(f, p))).map(|(i, _)| *i).collect();
        let missing: Vec<String> =
            programs.iter().filter(|p| !execs.iter().any(|(_, f)| program_is(f, p))).cloned().collect();
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
        let missing: Vec<String> =
            programs.iter().filter(|p| !execs.iter().any(|(_, f)| program_is(f, p))).cloned().collect();
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
    /// file names). Fails, saying why, when events were lost, and always
    /// when only the preload tracer ran: a libc call that exec'd one of
    /// them fails it as found, and otherwise the libc layer cannot show
    /// that none was exec'd (the program writes its records, and can exec
    /// without libc).
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
        v = v.note(
            "only the preload tracer ran: it sees the execs made through the libc functions probity hooks, not the root process's own (probity exec'd it before the library was loaded), nor those made in a vfork child (dash and Python's subprocess make theirs so), with execl, execle, execlp or a raw syscall, nor any in a program the library is not loaded in",
        );
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
