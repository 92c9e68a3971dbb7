//! `cargo xtask`: probity's chores that are not plain cargo.
//!
//! - `setup`: install what a fresh Debian machine lacks to build and test
//!   probity (add `--ebpf` for the eBPF toolchain).
//! - `build-ebpf`: rebuild the objects in `harness/ebpf/` from `harness-ebpf/`.
//! - `check-ebpf`: fail unless the committed objects are what the sources build.
//! - `test`: the whole test suite, as CI runs it (`cargo test`, then the
//!   `#[traced_test]` suites under `cargo nextest run`).
//! - `bench`: compare untraced, probity and strace runs.
//! - `bench-tests`: the fixed cost a `#[traced_test]` adds to a test
//!   (`--user-crate`: in a fresh crate against the packaged probity).
//! - `bench-daemon`: what tracing through `probity daemon` costs.
//! - `bench-gate`: what gating `cargo nextest run` on a policy costs.
//! - `package-check`: package the published crates and build a fresh crate
//!   against them, offline, running a traced test.
//! - `public-api`: fail when a library crate's public API differs from its
//!   committed listing in `public-api/` (`--bless` writes it anew).

mod bench;
mod bench_daemon;
mod bench_gate;
mod bench_tests;
mod ebpf;
mod package_check;
mod public_api;
mod setup;
mod test;
mod test_daemon;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install Debian packages (and with --ebpf the eBPF toolchain).
    Setup(setup::SetupArgs),
    /// Rebuild the embedded eBPF objects from harness-ebpf/.
    BuildEbpf,
    /// Check that the committed eBPF objects match their sources.
    CheckEbpf,
    /// Run the whole test suite (cargo test, then traced suites under nextest).
    Test(test::TestArgs),
    /// Run the benchmarks.
    Bench(bench::BenchArgs),
    /// Time the fixed cost of a `#[traced_test]`, in one process and under nextest.
    BenchTests(bench_tests::BenchTestsArgs),
    /// What tracing through `probity daemon` costs, against in-process.
    BenchDaemon(bench_daemon::BenchDaemonArgs),
    /// What gating `cargo nextest run` on a policy costs, on 100 tests.
    BenchGate(bench_gate::BenchGateArgs),
    /// Package the published crates, then build and test a fresh crate against them.
    PackageCheck,
    /// Compare the library crates' public API with public-api/ (needs nightly).
    PublicApi(public_api::PublicApiArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Setup(a) => setup::run(&a),
        Task::BuildEbpf => ebpf::build_into(&ebpf::committed_dir()),
        Task::CheckEbpf => ebpf::check(),
        Task::Test(a) => test::run(&a),
        Task::Bench(a) => bench::run(&a),
        Task::BenchTests(a) => bench_tests::run(&a),
        Task::BenchDaemon(a) => bench_daemon::run(&a),
        Task::BenchGate(a) => bench_gate::run(&a),
        Task::PackageCheck => package_check::run(),
        Task::PublicApi(a) => public_api::run(&a),
    }
}

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

/// Runs a command, failing with its name when it fails.
pub fn sh(cmd: &mut std::process::Command) -> anyhow::Result<()> {
    use anyhow::Context;
    let status = cmd.status().with_context(|| format!("failed to start {cmd:?}"))?;
    anyhow::ensure!(status.success(), "{cmd:?} failed with {status}");
    Ok(())
}
