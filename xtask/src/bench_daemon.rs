//! What tracing through `probity daemon` costs, against tracing in the
//! process, in the same run:
//! - opening and closing a session (connect, hello, open, close), the
//!   fixed cost a test process pays instead of loading the programs;
//! - the 1M-getppid loop traced by `probity run --tracers ebpf`, in the
//!   process and through the daemon, nothing lost (a loss exits 120).
//!
//! The per-test cost under `cargo nextest run` is `cargo xtask
//! bench-tests --daemon`.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use clap::Args;

use crate::test_daemon::Daemon;

#[derive(Args)]
pub struct BenchDaemonArgs {
    /// Repetitions of the loop in each mode (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

pub fn run(args: &BenchDaemonArgs) -> anyhow::Result<()> {
    let root = crate::root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    crate::sh(Command::new(&cargo).current_dir(&root).args(["build", "--release", "--locked", "-p", "probity-cli"]))?;
    let probity = root.join("target/release/probity");
    let work = tempfile_dir()?;
    let lp = work.join("getppid_loop");
    crate::sh(Command::new("cc").args(["-O2", "-o"]).arg(&lp).arg(root.join("fixtures/c/getppid_loop.c")))?;
    let daemon = Daemon::start(&probity)?;

    let mut cycles: Vec<Duration> = (0..300).map(|_| open_close(&daemon.socket)).collect::<anyhow::Result<_>>()?;
    cycles.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "session open+close through the daemon, 300 times: median {:.0} us, p90 {:.0} us, max {:.0} us",
        us(cycles[150]),
        us(cycles[270]),
        us(cycles[299])
    );

    let mut untraced = Vec::new();
    let mut local = Vec::new();
    let mut remote = Vec::new();
    for _ in 0..args.runs {
        untraced.push(timed(&mut Command::new(&lp))?);
        local.push(loop_run(&probity, &lp, None)?);
        remote.push(loop_run(&probity, &lp, Some(&daemon.socket))?);
    }
    let (u, l, r) = (median(untraced), median(local), median(remote));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("1M getppid, median of {} runs, nothing lost in any:", args.runs);
    println!("  untraced                      {:>8.1} ms", ms(u));
    println!("  probity run, in this process  {:>8.1} ms  {:.2}x untraced", ms(l), ms(l) / ms(u));
    println!(
        "  probity run, through daemon   {:>8.1} ms  {:.2}x untraced, {:.3}x in-process",
        ms(r),
        ms(r) / ms(u),
        ms(r) / ms(l)
    );
    drop(daemon);
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!("probity-bench-daemon-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

/// One session opened and closed over the protocol, timed.
fn open_close(socket: &Path) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut s = UnixStream::connect(socket).context("cannot reach the daemon")?;
    for req in
        [r#"{"op":"hello","version":1}"#, r#"{"op":"open","summary":false,"string_limit":64}"#, r#"{"op":"close"}"#]
    {
        let mut f = ((req.len() + 1) as u32).to_le_bytes().to_vec();
        f.push(1);
        f.extend_from_slice(req.as_bytes());
        s.write_all(&f)?;
        let mut len = [0u8; 4];
        s.read_exact(&mut len)?;
        let mut body = vec![0u8; u32::from_le_bytes(len) as usize];
        s.read_exact(&mut body)?;
        ensure!(!String::from_utf8_lossy(&body).contains("\"error\""), "{}", String::from_utf8_lossy(&body));
    }
    Ok(start.elapsed())
}

fn loop_run(probity: &Path, lp: &Path, daemon: Option<&Path>) -> anyhow::Result<Duration> {
    let mut cmd = Command::new(probity);
    cmd.args(["run", "--tracers", "ebpf", "-o", "/dev/null", "--"]).arg(lp);
    match daemon {
        Some(s) => cmd.env("PROBITY_DAEMON", s),
        None => cmd.env("PROBITY_DAEMON", "off"),
    };
    timed(&mut cmd)
}

fn timed(cmd: &mut Command) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let out = cmd.output().with_context(|| format!("failed to run {cmd:?}"))?;
    let took = start.elapsed();
    ensure!(out.status.success(), "{cmd:?} failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    Ok(took)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}
