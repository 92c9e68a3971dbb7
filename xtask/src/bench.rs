//! Benchmarks: untraced, probity and strace on the same workloads.
//!
//! The measuring is `harness/benches/overhead.rs`,
//! `harness/benches/network.rs`, `harness/benches/preload.rs`,
//! `harness/benches/inject.rs` and `harness/benches/scale.rs`; this
//! only runs them, so `cargo build --release -p probity-cli` then `cargo
//! bench -p probity --bench overhead` (or `network`, `preload`, `inject`,
//! `scale`) does the
//! same thing. The benches run the `probity` binary, which is the CLI
//! crate's, so it is built first and named to them in `PROBITY_BIN`.

use std::process::Command;

use clap::Args;

#[derive(Args)]
pub struct BenchArgs {
    /// Fewer repetitions (2, and 1 of strace on the getppid loop).
    #[arg(long)]
    quick: bool,
    /// Leave strace out of the overhead bench (its runs take most of the time).
    #[arg(long)]
    no_strace: bool,
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    crate::sh(Command::new(&cargo).current_dir(crate::root()).args(["build", "--release", "-p", "probity-cli"]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| crate::root().join("target"), Into::into);
    let probity = crate::root().join(target).join("release/probity");
    for bench in ["overhead", "network", "preload", "inject", "scale"] {
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(crate::root())
            .env("PROBITY_BIN", &probity)
            .args(["bench", "-p", "probity", "--bench", bench, "--"]);
        if args.quick {
            cmd.arg("--quick");
        }
        if args.no_strace && bench == "overhead" {
            cmd.arg("--no-strace");
        }
        crate::sh(&mut cmd)?;
    }
    Ok(())
}
