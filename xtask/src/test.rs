//! The whole test suite, as CI runs it: every crate under `cargo test`,
//! then the `#[traced_test]` suites again under `cargo nextest run`, which
//! runs each test in a process of its own (so each pays the eBPF load),
//! then once more as a user without privileges through `probity daemon`
//! (`test_daemon.rs`).

use std::process::Command;

use clap::Args;

use crate::sh;

#[derive(Args)]
pub struct TestArgs {
    /// Skip the nextest pass.
    #[arg(long)]
    no_nextest: bool,
    /// Skip the pass that runs the traced suites as a user without
    /// privileges, through `probity daemon`.
    #[arg(long)]
    no_daemon_pass: bool,
    /// Run only that pass.
    #[arg(long, conflicts_with = "no_daemon_pass")]
    daemon_pass_only: bool,
}

/// The test binaries of `#[traced_test]`s, as a nextest filter.
const TRACED_SUITES: &str = "binary(traced) | binary(traced_harness) | package(confsave)";

pub fn run(args: &TestArgs) -> anyhow::Result<()> {
    if args.daemon_pass_only {
        return crate::test_daemon::run();
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    sh(Command::new(&cargo).current_dir(crate::root()).args(["test", "--workspace", "--locked"]))?;
    if !args.no_nextest {
        nextest(&cargo)?;
    }
    if !args.no_daemon_pass {
        crate::test_daemon::run()?;
    }
    Ok(())
}

fn nextest(cargo: &std::ffi::OsStr) -> anyhow::Result<()> {
    if !Command::new(cargo).args(["nextest", "--version"]).output().is_ok_and(|o| o.status.success()) {
        println!("installing cargo-nextest (a few minutes)");
        sh(Command::new(cargo).args(["install", "cargo-nextest", "--locked"]))?;
    }
    sh(Command::new(cargo).current_dir(crate::root()).args([
        "nextest",
        "run",
        "--workspace",
        "--locked",
        "--no-fail-fast",
        "-E",
        TRACED_SUITES,
    ]))
}
