//! A test harness for `harness = false` targets: every `#[traced_test]` of
//! the binary, run by `libtest-mimic` with libtest's command line (so
//! `cargo test` and `cargo nextest run` drive it as usual). Tests this
//! machine cannot run (eBPF without the privileges for it) are listed as
//! ignored, and the reason is printed, instead of failing.
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

use libtest_mimic::{Arguments, Completion, Failed, Trial};

use super::support::TestCase;

/// Why eBPF tests cannot run here, if they cannot.
pub fn ebpf_unavailable() -> Option<String> {
    let missing = crate::kernel::doctor::missing_capabilities();
    if missing.is_empty() {
        return None;
    }
    Some(crate::Error::Privileges { missing: missing.join(", ") }.to_string())
}

/// Runs the binary's `#[traced_test]`s and exits with libtest's status.
pub fn main() -> ! {
    let args = Arguments::from_args();
    let unavailable = ebpf_unavailable();
    let mut skipped = 0;
    let mut trials: Vec<Trial> = inventory::iter::<TestCase>
        .into_iter()
        .map(|case| {
            let meta = case.meta;
            let cannot = if meta.preload_only { None } else { unavailable.clone() };
            skipped += usize::from(cannot.is_some());
            let run = case.run;
            let ignored = meta.ignore.is_some() || cannot.is_some();
            Trial::ignorable_test(meta.test_name(), move || {
                if let Some(reason) = cannot {
                    return Ok(Completion::ignored_with(reason));
                }
                run_case(run, meta.should_panic)
            })
            .with_ignored_flag(ignored)
        })
        .collect();
    trials.sort_by(|a, b| a.name().cmp(b.name()));
    if let (Some(reason), true) = (&unavailable, skipped > 0) {
        eprintln!("probity: {skipped} traced test(s) need eBPF and are ignored here: {reason}");
    }
    libtest_mimic::run(&args, trials).exit()
}

fn run_case(run: fn() -> Result<(), String>, should_panic: Option<Option<&'static str>>) -> Result<Completion, Failed> {
    let outcome = catch_unwind(AssertUnwindSafe(run));
    match (outcome, should_panic) {
        (Ok(Ok(())), None) => Ok(Completion::Completed),
        (Ok(Err(msg)), _) => Err(msg.into()),
        (Err(payload), None) => Err(super::child::panic_message(&*payload).into()),
        (Ok(Ok(())), Some(_)) => Err("test did not panic as expected".into()),
        (Err(_), Some(None)) => Ok(Completion::Completed),
        (Err(payload), Some(Some(expected))) => {
            let msg = super::child::panic_message(&*payload);
            if msg.contains(expected) {
                Ok(Completion::Completed)
            } else {
                Err(format!("panic did not contain expected string\n      panic message: {msg:?}\n expected substring: {expected:?}").into())
            }
        }
    }
}
