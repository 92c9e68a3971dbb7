//! The traces of a failing `#[traced_test]`, written where its author can
//! look at them: `target/probity/<test>/run-N.jsonl` (for
//! `Trace::load`) and `run-N.perfetto.json` (for ui.perfetto.dev).
//!
//! Each traced run of a test keeps a copy of its trace until the test
//! ends; a test that passes drops them, one that fails writes them and
//! says where. A test that panics as `#[should_panic]` expects writes
//! nothing.

use std::path::Path;
use std::sync::Mutex;

use crate::trace::Trace;

/// How many events a test keeps in all: far more than a test a person
/// reads has, bounded so that a test tracing a build does not hold a
/// second copy of it (an event is about 200 bytes: at most about 100 MB).
/// Runs past it are counted, not kept.
const KEEP_EVENTS: usize = 500_000;

/// What the tests running in this process have kept, by scope.
#[derive(Default)]
struct Kept {
    traces: Vec<Trace>,
    events: usize,
    /// Runs not kept: the test had kept its fill.
    skipped: usize,
}

static KEPT: Mutex<Vec<(u64, Kept)>> = Mutex::new(Vec::new());

fn kept() -> std::sync::MutexGuard<'static, Vec<(u64, Kept)>> {
    KEPT.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Keeps a copy of a run's trace for the test of `scope`, if a test is
/// keeping.
pub(crate) fn keep(scope: Option<u64>, trace: &Trace) {
    let Some(scope) = scope else { return };
    let mut all = kept();
    let Some((_, k)) = all.iter_mut().find(|(id, _)| *id == scope) else { return };
    if k.events + trace.events.len() > KEEP_EVENTS {
        k.skipped += 1;
        return;
    }
    k.events += trace.events.len();
    k.traces.push(trace.clone());
}

/// Keeps the runs of the test of `scope` while it lives; written if the
/// test fails.
pub(crate) struct Keeping {
    scope: u64,
    name: String,
    /// The test panics when it passes: its panic is no failure.
    expects_panic: bool,
}

impl Keeping {
    pub(crate) fn start(scope: u64, name: String, expects_panic: bool) -> Keeping {
        kept().push((scope, Kept::default()));
        Keeping { scope, name, expects_panic }
    }

    /// The test failed: write what it kept and say where.
    pub(crate) fn failed(&self) {
        let k = self.take();
        if k.traces.is_empty() && k.skipped == 0 {
            return;
        }
        let Some(target) = crate::target_dir::target_dir() else {
            eprintln!("probity: the traces of this failing test were not written: no cargo target directory was found");
            return;
        };
        let dir = target.join("probity").join(file_name(&self.name));
        // A target directory this user cannot write (another user's
        // build, say): a new folder of its own in the temporary directory.
        let written = write(&dir, &k.traces).map(|()| dir.clone()).or_else(|e| {
            let other = fresh_temp_dir().ok_or_else(|| std::io::Error::new(e.kind(), e.to_string()))?;
            eprintln!("probity: {} cannot be written ({e}), so the traces go to {}", dir.display(), other.display());
            write(&other, &k.traces).map(|()| other)
        });
        match written {
            Ok(dir) => {
                let more = if k.skipped > 0 {
                    format!("; {} later runs not kept, past {KEEP_EVENTS} events", k.skipped)
                } else {
                    String::new()
                };
                // The folder ends the line, so that it can be copied whole.
                eprintln!(
                    "probity: the traces of this failing test (run-N.jsonl for `Trace::load`, run-N.perfetto.json \
                     for ui.perfetto.dev{more}) are in {}",
                    dir.display()
                );
            }
            Err(e) => eprintln!("probity: the traces of this failing test were not written to {}: {e}", dir.display()),
        }
    }

    fn take(&self) -> Kept {
        let mut all = kept();
        match all.iter().position(|(id, _)| *id == self.scope) {
            Some(i) => all.swap_remove(i).1,
            None => Kept::default(),
        }
    }
}

impl Drop for Keeping {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.expects_panic {
            self.failed();
        } else {
            self.take();
        }
    }
}

/// Writes `traces` into `dir`, replacing what an earlier run of the test
/// left there.
fn write(dir: &Path, traces: &[Trace]) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::fs::create_dir_all(dir)?;
    for (n, t) in traces.iter().enumerate() {
        let n = n + 1;
        t.write_jsonl(std::io::BufWriter::new(std::fs::File::create(dir.join(format!("run-{n}.jsonl")))?))?;
        t.write_perfetto(std::io::BufWriter::new(std::fs::File::create(dir.join(format!("run-{n}.perfetto.json")))?))?;
    }
    Ok(())
}

/// A new folder of this process's own under the temporary directory
/// (`mkdtemp`: a name no one else can have taken).
fn fresh_temp_dir() -> Option<std::path::PathBuf> {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let mut template = std::env::temp_dir().join("probity-traces-XXXXXX").into_os_string().into_vec();
    template.push(0);
    // SAFETY: a NUL-terminated template that mkdtemp fills in place.
    let made = unsafe { libc::mkdtemp(template.as_mut_ptr().cast()) };
    if made.is_null() {
        return None;
    }
    template.pop();
    Some(std::path::PathBuf::from(std::ffi::OsStr::from_bytes(&template)))
}

/// A test's name as one file name.
fn file_name(test: &str) -> String {
    test.chars().map(|c| if c == '/' || c == '\0' { '_' } else { c }).collect()
}
