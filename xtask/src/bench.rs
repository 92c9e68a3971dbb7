//! Benchmarks: untraced, probity and strace on the same workloads.
//!
//! The measuring is `harness/benches/overhead.rs`,
//! `harness/benches/network.rs` and `harness/benches/preload.rs`; this
//! only runs them, so `cargo bench -p probity --bench overhead` (or
//! `network`, `preload`) does the same thing.

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
    for bench in ["overhead", "network", "preload"] {
        let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cmd.current_dir(crate::root()).args(["bench", "-p", "probity", "--bench", bench, "--"]);
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
