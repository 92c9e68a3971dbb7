//! What `#[traced_test]` expansions call. Not a public API.

use std::fmt::Debug;
use std::time::{Duration, Instant};

pub use inventory;

use super::{FailsBecause, Scope, Settings};
use crate::trace::TracerKind;

/// A `#[traced_test]` as the macro saw it.
#[derive(Debug)]
pub struct TestMeta {
    /// `module_path!()` of the test, crate name first.
    pub module: &'static str,
    /// The function's name.
    pub name: &'static str,
    /// Where it is defined.
    pub file: &'static str,
    pub line: u32,
    /// `timeout = ".."`, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// `preload_only`: needs no eBPF.
    pub preload_only: bool,
    /// `#[ignore]`, with its reason if any.
    pub ignore: Option<Option<&'static str>>,
    /// `#[should_panic]`, with its expected text if any.
    pub should_panic: Option<Option<&'static str>>,
}

impl TestMeta {
    /// The name libtest gives the test: the module path without the
    /// crate, then the function.
    pub fn test_name(&self) -> String {
        match self.module.split_once("::") {
            Some((_, rest)) => format!("{rest}::{}", self.name),
            None => self.name.to_string(),
        }
    }

    /// The test's time limit.
    pub fn timeout(&self) -> Duration {
        self.timeout_ms.map_or_else(super::default_timeout, Duration::from_millis)
    }

    /// The tracers its runs use.
    pub fn tracers(&self) -> Vec<TracerKind> {
        if self.preload_only {
            vec![TracerKind::Preload]
        } else {
            vec![TracerKind::Ebpf, TracerKind::Preload]
        }
    }
}

/// A registered test, for [`super::harness::main`].
pub struct TestCase {
    pub meta: &'static TestMeta,
    /// Runs the test; a failure is a panic or an `Err`.
    pub run: fn() -> Result<(), String>,
}

inventory::collect!(TestCase);

/// What a test function may return.
pub trait TestResult {
    /// `Err` with a message when the test failed.
    fn into_result(self) -> Result<(), String>;

    /// Whether the test failed.
    fn failed(&self) -> bool;
}

impl TestResult for () {
    fn into_result(self) -> Result<(), String> {
        Ok(())
    }

    fn failed(&self) -> bool {
        false
    }
}

impl<E: Debug> TestResult for Result<(), E> {
    fn into_result(self) -> Result<(), String> {
        self.map_err(|e| format!("Error: {e:?}"))
    }

    fn failed(&self) -> bool {
        self.is_err()
    }
}

/// Runs the registered test of `meta` (for libtest's `#[test]`). A test
/// that cannot trace here fails with the reason before it starts, and its
/// `#[should_panic]` is judged here, so that a panic of probity's saying
/// it cannot trace never counts as the panic the test expected.
pub fn run_registered(meta: &'static TestMeta) {
    if let Some(reason) = super::cannot_trace(&meta.tracers()) {
        panic!("{}", super::cannot_trace_failure(&reason, FailsBecause::Libtest));
    }
    let case = inventory::iter::<TestCase>.into_iter().find(|c| std::ptr::eq(c.meta, meta)).unwrap_or_else(|| {
        panic!("probity: {} is not registered (was the binary linked with a different probity?)", meta.name)
    });
    if meta.should_panic.is_none() {
        if let Err(msg) = (case.run)() {
            panic!("{msg}");
        }
        return;
    }
    match judge(meta.should_panic, std::panic::catch_unwind(case.run)) {
        Ok(()) => {}
        Err(Failure::Panicked(payload)) => std::panic::resume_unwind(payload),
        Err(Failure::Message(msg)) => panic!("{msg}"),
    }
}

/// Why a test failed.
pub(crate) enum Failure {
    /// It panicked, and was not expected to.
    Panicked(Box<dyn std::any::Any + Send>),
    /// It returned an error, or did not panic as it was expected to.
    Message(String),
}

/// Whether a test that ended with `outcome` passed, given its
/// `#[should_panic]` (and the text expected in the panic, if any).
pub(crate) fn judge(
    should_panic: Option<Option<&'static str>>,
    outcome: std::thread::Result<Result<(), String>>,
) -> Result<(), Failure> {
    match (outcome, should_panic) {
        (Ok(Ok(())), None) | (Err(_), Some(None)) => Ok(()),
        (Ok(Err(msg)), _) => Err(Failure::Message(msg)),
        (Err(payload), None) => Err(Failure::Panicked(payload)),
        (Ok(Ok(())), Some(_)) => Err(Failure::Message("note: test did not panic as expected".into())),
        (Err(payload), Some(Some(expected))) => {
            let msg = super::child::panic_message(&*payload);
            if msg.contains(expected) {
                Ok(())
            } else {
                Err(Failure::Message(format!(
                    "note: panic did not contain expected string\n      panic message: {msg:?}\n expected substring: \
                     {expected:?}"
                )))
            }
        }
    }
}

/// Runs a test body with its settings in force on this thread. When it
/// fails, the traces of its runs are written under `target/probity/`.
pub fn run_test<R: TestResult>(meta: &'static TestMeta, body: impl FnOnce() -> R) -> R {
    let limit = meta.timeout();
    let settings = Settings {
        test: Some(meta.name),
        full_name: Some(meta.test_name()),
        deadline: Instant::now() + limit,
        limit,
        tracers: meta.tracers(),
        scope: None,
    };
    let scope = Scope::enter(settings);
    let keeping = super::keep::Keeping::start(scope.id, meta.test_name(), meta.should_panic.is_some());
    let r = body();
    if r.failed() {
        keeping.failed();
    }
    r
}
