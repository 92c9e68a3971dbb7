//! The whole test suite, as CI runs it: every crate under `cargo test`,
//! then the `#[traced_test]` suites again under `cargo nextest run`, which
//! runs each test in a process of its own (so each pays the eBPF load).

use std::process::Command;

use clap::Args;

use crate::sh;

#[derive(Args)]
pub struct TestArgs {
    /// Skip the nextest pass.
    #[arg(long)]
    no_nextest: bool,
}

/// The test binaries of `#[traced_test]`s, as a nextest filter.
const TRACED_SUITES: &str = "binary(traced) | binary(traced_harness) | package(confsave)";

pub fn run(args: &TestArgs) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    sh(Command::new(&cargo).current_dir(crate::root()).args(["test", "--workspace", "--locked"]))?;
    if args.no_nextest {
        return Ok(());
    }
    if !Command::new(&cargo).args(["nextest", "--version"]).output().is_ok_and(|o| o.status.success()) {
        println!("installing cargo-nextest (a few minutes)");
        sh(Command::new(&cargo).args(["install", "cargo-nextest", "--locked"]))?;
    }
    sh(Command::new(&cargo).current_dir(crate::root()).args([
        "nextest",
        "run",
        "--workspace",
        "--locked",
        "--no-fail-fast",
        "-E",
        TRACED_SUITES,
    ]))
}
