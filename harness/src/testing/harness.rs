//! A test harness for `harness = false` targets: every `#[traced_test]` of
//! the binary, run by `libtest-mimic` with libtest's command line (so
//! `cargo test` and `cargo nextest run` drive it as usual). A test this
//! machine cannot run (eBPF without the privileges for it) never passes:
//! it is listed as ignored with the reason, fails with the reason when
//! asked to run, and fails outright in CI (see [`main`]). As under
//! libtest, a test's panic message is shown only if the test fails.
//!
//! A plain `#[test]` in such a target never runs: rustc drops `#[test]`
//! items from a crate built without `--test`, before any macro or this
//! harness could see them. The harness reads the binary's sources for
//! them and fails each one it finds, saying to write `#[traced_test]` (it
//! runs under both harnesses) or to keep plain tests in a target with the
//! standard harness (see `plain_tests.rs` for why at run time).
//!
//! ```toml
//! [[test]]
//! name = "traced"
//! harness = false
//! ```
//!
//! ```no_run
//! // tests/traced.rs
//! #[probity::traced_test]
//! fn true_exits_cleanly() {
//!     probity::Cmd::new("true").run().assert_success();
//! }
//!
//! fn main() {
//!     probity::testing::main()
//! }
//! ```

use std::panic::{catch_unwind, AssertUnwindSafe};

use libtest_mimic::{Arguments, Failed, Trial};

use super::support::{judge, Failure, TestCase, TestMeta};
use super::{cannot_trace, cannot_trace_failure, tracing_required, FailsBecause};

/// Why eBPF tests cannot run here, if they cannot.
/// It can when this process may load the programs, or when a probity
/// daemon answers for it (see `PROBITY_DAEMON`).
pub fn ebpf_unavailable() -> Option<String> {
    crate::daemon::route().err().map(|e| e.to_string())
}

/// The kind shown before the name of a test that cannot trace here, as
/// `[needs eBPF, missing CAP_BPF, CAP_PERFMON] name`: nextest shows a
/// skipped test by its listed name alone, so the reason travels in it.
/// `--exact name` still selects the test (libtest-mimic matches the name
/// with or without its kind).
fn kind_for_missing() -> String {
    let missing = crate::kernel::doctor::missing_capabilities();
    format!("needs eBPF, missing {} and no probity daemon", missing.join(", "))
}

/// Runs the binary's `#[traced_test]`s and exits with libtest's status.
///
/// A test that needs eBPF where this process cannot use it never passes:
/// it is listed as ignored (its reason in its listed name and on standard
/// error) and fails with the reason when asked to run (`--ignored`,
/// `--include-ignored`, `cargo nextest run --run-ignored all`); with
/// `PROBITY_REQUIRE_EBPF=1`, or `CI` set unless `PROBITY_REQUIRE_EBPF=0`,
/// it is not ignored and fails.
pub fn main() -> ! {
    let args = Arguments::from_args();
    let required = tracing_required();
    let capture = !args.nocapture;
    let mut skipped = 0;
    let mut reason_shown = None;
    let mut trials: Vec<Trial> = inventory::iter::<TestCase>
        .into_iter()
        .map(|case| {
            let meta = case.meta;
            let cannot = cannot_trace(&meta.tracers());
            let run = case.run;
            match cannot {
                None => Trial::test(meta.test_name(), move || run_case(meta, run, capture))
                    .with_ignored_flag(meta.ignore.is_some()),
                Some(reason) => {
                    let because = if required { FailsBecause::Required } else { FailsBecause::Asked };
                    let failure = cannot_trace_failure(&reason, because);
                    skipped += usize::from(!required);
                    reason_shown = Some(reason);
                    let trial = Trial::test(meta.test_name(), move || Err(failure.into()))
                        .with_ignored_flag(!required || meta.ignore.is_some());
                    if required {
                        trial
                    } else {
                        trial.with_kind(kind_for_missing())
                    }
                }
            }
        })
        .collect();
    // A plain `#[test]` here was dropped by rustc: each one found in the
    // sources fails, so that it is not silently never run.
    trials.extend(super::plain_tests::in_this_binary().into_iter().map(|plain| {
        let name = plain.name.clone().unwrap_or_else(|| format!("{}:{}", plain.file, plain.line));
        let failure = plain.failure();
        Trial::test(name, move || Err(failure.into())).with_kind("plain #[test], never runs")
    }));
    trials.sort_by(|a, b| a.name().cmp(b.name()));
    if let (Some(reason), true) = (&reason_shown, skipped > 0) {
        eprintln!(
            "probity: {skipped} traced test(s) need eBPF and are ignored here: {reason}\n\
             probity: asked to run them (--include-ignored), they fail; PROBITY_REQUIRE_EBPF=1 (or CI=true) \
             makes them fail in every run"
        );
    }
    libtest_mimic::run(&args, trials).exit()
}

/// Runs a test, its panic messages kept back unless it fails (or
/// `--nocapture` asked for them as they come).
fn run_case(meta: &'static TestMeta, run: fn() -> Result<(), String>, capture: bool) -> Result<(), Failed> {
    let (verdict, shown) = if capture {
        super::capture::capturing(&meta.test_name(), || judge(meta.should_panic, catch_unwind(AssertUnwindSafe(run))))
    } else {
        (judge(meta.should_panic, catch_unwind(AssertUnwindSafe(run))), String::new())
    };
    match verdict {
        Ok(()) => Ok(()),
        // The message is in what the hook kept; with `--nocapture` it was
        // printed as it came, and the payload says it again.
        Err(Failure::Panicked(payload)) if shown.is_empty() => Err(super::child::panic_message(&*payload).into()),
        Err(Failure::Panicked(_)) => Err(shown.trim_end().to_string().into()),
        Err(Failure::Message(msg)) if shown.is_empty() => Err(msg.into()),
        Err(Failure::Message(msg)) => Err(format!("{}\n{msg}", shown.trim_end()).into()),
    }
}
