//! The fixed cost a `#[traced_test]` adds to a test: spawn, attach,
//! collect, detach. Times the 100-test groups of `tests/traced_bench/`
//! (tracing `true`, tracing a trivial function, and plain untraced
//! `#[test]`s running `true`) in one process, one test at a time, and under
//! `cargo nextest run -j 1`, where each test is a process of its own and
//! pays the eBPF load. The cost per test is the difference to the plain
//! group, divided by 100.
//!
//! By default in probity's workspace, whose dev profile builds aya
//! optimised; with `--user-crate`, in the fresh crate `package-check`
//! builds against the packaged probity with cargo's default profiles, as a
//! user's crate has them.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;

use crate::package_check::{self, Fresh};

#[derive(Args)]
pub struct BenchTestsArgs {
    /// Repetitions of each measurement (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Measure in a fresh crate that depends on the packaged probity (as
    /// `cargo xtask package-check` builds it), not in probity's workspace.
    #[arg(long)]
    user_crate: bool,
    /// Trace through a `probity daemon` started for the run
    /// (`PROBITY_DAEMON`), instead of loading the programs in each test
    /// process.
    #[arg(long)]
    daemon: bool,
}

/// Where the tests are built and run.
enum Place {
    /// probity's workspace, as `-p probity --test traced_bench`.
    Workspace(std::ffi::OsString),
    /// A fresh crate with the test file copied into its `tests/`.
    UserCrate(Fresh),
}

impl Place {
    /// A cargo command for the test target `traced_bench`, with `args`
    /// before the target selection.
    fn cargo(&self, args: &[&str]) -> Command {
        match self {
            Place::Workspace(cargo) => {
                let mut cmd = Command::new(cargo);
                cmd.current_dir(crate::root()).args(args).args(["-p", "probity", "--test", "traced_bench"]);
                cmd
            }
            Place::UserCrate(fresh) => {
                let mut cmd = fresh.cargo();
                cmd.args(args).args(["--offline", "--test", "traced_bench"]);
                cmd
            }
        }
    }
}

const GROUPS: [(&str, &str); 3] = [("plain", "plain_"), ("command", "cmd_"), ("function", "func_")];

pub fn run(args: &BenchTestsArgs) -> anyhow::Result<()> {
    let place = if args.user_crate {
        let fresh = package_check::prepare()?;
        // The bench file uses only probity's public API, so it is the
        // user's test file as is.
        let source = crate::root().join("tests/traced_bench/main.rs");
        let dest = fresh.dir.join("tests/traced_bench.rs");
        std::fs::copy(&source, &dest).with_context(|| format!("failed to copy {}", source.display()))?;
        Place::UserCrate(fresh)
    } else {
        Place::Workspace(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
    };
    let binary = build(&place)?;
    let daemon = if args.daemon {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        crate::sh(Command::new(&cargo).current_dir(crate::root()).args(["build", "--locked", "-p", "probity-cli"]))?;
        let d = crate::test_daemon::Daemon::start(&crate::root().join("target/debug/probity"))?;
        // The tests, and nextest's processes, trace through it.
        std::env::set_var("PROBITY_DAEMON", &d.socket);
        println!("tracing through the daemon at {}", d.socket.display());
        Some(d)
    } else {
        None
    };
    println!("test binary: {}", binary.display());
    let mut in_process = Vec::new();
    for (name, prefix) in GROUPS {
        let t = median(args.runs, || {
            let mut cmd = Command::new(&binary);
            cmd.args([prefix, "--test-threads=1", "-q"]);
            timed(&mut cmd)
        })?;
        in_process.push((name, t));
    }
    let mut nextest = Vec::new();
    for (name, prefix) in GROUPS {
        let filter = format!("test(/^{prefix}/)");
        let t = median(args.runs, || {
            let mut cmd = place.cargo(&["nextest", "run"]);
            cmd.args([
                "-j",
                "1",
                "--no-fail-fast",
                "--status-level",
                "fail",
                "--final-status-level",
                "fail",
                "-E",
                &filter,
            ]);
            timed(&mut cmd)
        })?;
        nextest.push((name, t));
    }
    report("one process, one test at a time", &in_process);
    report("cargo nextest run -j 1 (a process per test)", &nextest);
    drop(daemon);
    Ok(())
}

fn build(place: &Place) -> anyhow::Result<std::path::PathBuf> {
    let out = place
        .cargo(&["test", "--no-run", "--message-format=json"])
        .output()
        .context("failed to build the traced_bench test binary")?;
    anyhow::ensure!(out.status.success(), "building traced_bench failed:\n{}", String::from_utf8_lossy(&out.stderr));
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if v["target"]["name"] == "traced_bench" {
            if let Some(exe) = v["executable"].as_str() {
                return Ok(exe.into());
            }
        }
    }
    anyhow::bail!("cargo did not report the traced_bench executable")
}

fn timed(cmd: &mut Command) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let out = cmd.output().with_context(|| format!("failed to run {cmd:?}"))?;
    let took = start.elapsed();
    anyhow::ensure!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(took)
}

fn median(runs: usize, mut f: impl FnMut() -> anyhow::Result<Duration>) -> anyhow::Result<Duration> {
    let mut times = (0..runs.max(1)).map(|_| f()).collect::<anyhow::Result<Vec<_>>>()?;
    times.sort();
    Ok(times[times.len() / 2])
}

fn report(title: &str, groups: &[(&str, Duration)]) {
    println!("\n{title}: 100 tests per group (median of runs)");
    let plain = groups[0].1;
    for (name, t) in groups {
        let per = t.as_secs_f64() * 10.0;
        let extra = (t.as_secs_f64() - plain.as_secs_f64()) * 10.0;
        println!("  {name:<9} {:>8.2} s total  {per:>7.1} ms/test  {extra:>+7.1} ms/test over plain", t.as_secs_f64());
    }
}
