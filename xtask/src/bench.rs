//! Benchmarks: untraced, probity and strace on the same workloads.

use clap::Args;

#[derive(Args)]
pub struct BenchArgs {}

pub fn run(_args: &BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("not written yet")
}
