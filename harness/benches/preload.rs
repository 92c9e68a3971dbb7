//! What a hooked libc call costs: a loop of 10,000,000 `getenv` calls
//! (the `getenv_loop` fixture, which times its own loop, so process
//! start-up is not in the figures), run untraced, under `probity run
//! --summary` with the preload tracer alone and with both tracers, and
//! under `ltrace` on a shorter loop, in the same run; and 1,000,000 calls
//! captured into an in-memory trace, as a test does.
//!
//! `cargo bench -p probity --bench preload [-- --quick]` (after `cargo
//! build --release -p probity-cli`), or
//! `cargo xtask bench [--quick]`. The figure is the median over the
//! repetitions (5, or 2 with `--quick`) of the loop's time per call; the
//! extra cost is the traced median minus the untraced one. A traced run
//! that lost or miscounted a call makes the bench exit non-zero. Target:
//! at most 50 ns extra per call, nothing lost.

#[path = "support/cli.rs"]
mod cli;

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{ensure, Context};
use probity::{Tracer, TracerKind};

const CALLS: u64 = 10_000_000;
const IN_MEMORY_CALLS: u64 = 1_000_000;
const LTRACE_CALLS: u64 = 100_000;
const TARGET_NS: f64 = 50.0;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Untraced,
    PreloadSummary,
    BothSummary,
    InMemory,
    Ltrace,
}

impl Mode {
    const ALL: [Mode; 5] = [Mode::Untraced, Mode::PreloadSummary, Mode::BothSummary, Mode::InMemory, Mode::Ltrace];

    fn label(self) -> &'static str {
        match self {
            Mode::Untraced => "untraced",
            Mode::PreloadSummary => "probity run --tracers preload --summary",
            Mode::BothSummary => "probity run --summary (both tracers)",
            Mode::InMemory => "in-memory trace, preload tracer",
            Mode::Ltrace => "ltrace -e getenv",
        }
    }

    fn calls(self) -> u64 {
        match self {
            Mode::InMemory => IN_MEMORY_CALLS,
            Mode::Ltrace => LTRACE_CALLS,
            _ => CALLS,
        }
    }
}

/// What one run's loop said about itself.
#[derive(Clone, Copy)]
struct Loop {
    wall_ns: f64,
    cpu_ns: f64,
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("preload: FAILED: some traced runs lost or miscounted calls");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("preload: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<bool> {
    let quick = std::env::args().any(|a| a == "--quick");
    let reps = if quick { 2 } else { 5 };
    let fixture = probity_fixtures::path(probity_fixtures::GETENV_LOOP);
    let probity = cli::probity_bin()?;
    let ltrace = probity::resolve_program("ltrace").ok();
    let scratch = tempfile::tempdir().context("failed to create a scratch directory")?;
    let json = scratch.path().join("summary.jsonl");
    let mut samples: Vec<Vec<Loop>> = vec![Vec::new(); Mode::ALL.len()];
    let mut complete = true;
    for rep in 0..reps {
        for (m, &mode) in Mode::ALL.iter().enumerate() {
            let n = mode.calls();
            let got = match mode {
                Mode::Untraced => loop_line(&output(Command::new(&fixture).arg(n.to_string()))?)?,
                Mode::PreloadSummary | Mode::BothSummary => {
                    let mut cmd = Command::new(&probity);
                    cmd.arg("run");
                    if mode == Mode::PreloadSummary {
                        cmd.args(["--tracers", "preload"]);
                    }
                    cmd.args(["--summary", "-o", "/dev/null", "--json"])
                        .arg(&json)
                        .arg("--")
                        .arg(&fixture)
                        .arg(n.to_string());
                    let l = loop_line(&output(&mut cmd)?)?;
                    if let Err(e) = check_summary(&json, n) {
                        eprintln!("  LOST or WRONG: {}: {e:#}", mode.label());
                        complete = false;
                    }
                    l
                }
                Mode::InMemory => {
                    let out = scratch.path().join("stdout.txt");
                    let mut cmd = Command::new(&fixture);
                    cmd.arg(n.to_string()).stdout(std::fs::File::create(&out)?);
                    let trace = Tracer::new().with_tracers(&[TracerKind::Preload]).run(cmd)?;
                    let recorded =
                        trace.events.iter().filter_map(|e| e.as_libc()).filter(|c| c.function == "getenv").count()
                            as u64;
                    let lost = trace.outcome.losses.lost_events();
                    if recorded != n || lost != 0 {
                        eprintln!("  LOST or WRONG: {}: {recorded} of {n} calls recorded, {lost} lost", mode.label());
                        complete = false;
                    }
                    loop_line(&std::fs::read_to_string(&out)?)?
                }
                Mode::Ltrace => {
                    let Some(ltrace) = &ltrace else { continue };
                    let mut cmd = Command::new(ltrace);
                    cmd.args(["-e", "getenv", "-o", "/dev/null", "--"]).arg(&fixture).arg(n.to_string());
                    loop_line(&output(&mut cmd)?)?
                }
            };
            eprintln!("  rep {}: {}: {:.1} ns per call ({:.1} of CPU)", rep + 1, mode.label(), got.wall_ns, got.cpu_ns);
            samples[m].push(got);
        }
    }
    let base = median(&samples[0]);
    println!(
        "{:<42} {:>11} {:>14} {:>14} {:>9}",
        "mode (getenv calls)", "ns per call", "extra ns/call", "CPU extra", "target"
    );
    for (m, &mode) in Mode::ALL.iter().enumerate() {
        if samples[m].is_empty() {
            println!("{:<42} not run: ltrace is not installed (apt-get install ltrace)", mode.label());
            continue;
        }
        let s = median(&samples[m]);
        let label = format!("{} ({})", mode.label(), mode.calls());
        if mode == Mode::Untraced {
            println!("{label:<42} {:>11.1}", s.wall_ns);
            continue;
        }
        let extra = s.wall_ns - base.wall_ns;
        let target = match mode {
            Mode::PreloadSummary | Mode::BothSummary | Mode::InMemory => {
                format!("{}{TARGET_NS:.0}", if extra <= TARGET_NS { "<=" } else { "OVER " })
            }
            _ => String::new(),
        };
        println!("{label:<42} {:>11.1} {:>14.1} {:>14.1} {target:>9}", s.wall_ns, extra, s.cpu_ns - base.cpu_ns);
    }
    Ok(complete)
}

/// Runs `cmd` to the end; its stdout.
fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let out =
        cmd.stdin(Stdio::null()).stderr(Stdio::inherit()).output().with_context(|| format!("failed to run {cmd:?}"))?;
    ensure!(out.status.success(), "{cmd:?} failed: {}", out.status);
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Parses the fixture's `N calls: W ns per call, C ns of CPU per call`.
fn loop_line(out: &str) -> anyhow::Result<Loop> {
    let line = out.lines().find(|l| l.contains(" calls: ")).with_context(|| format!("no loop line in {out:?}"))?;
    let rest = line.split_once(" calls: ").map(|(_, r)| r).unwrap_or_default();
    let (wall, cpu) = rest
        .strip_suffix(" ns of CPU per call")
        .and_then(|r| r.split_once(" ns per call, "))
        .with_context(|| format!("not a loop line: {line:?}"))?;
    Ok(Loop { wall_ns: wall.parse()?, cpu_ns: cpu.parse()? })
}

/// The summary counted every call and lost nothing.
fn check_summary(json: &Path, n: u64) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(json).context("failed to read the JSON summary")?;
    let last = text.lines().last().context("an empty JSON file")?;
    let v: serde_json::Value = serde_json::from_str(last)?;
    ensure!(v["lost"] == 0, "lost: {}", v["losses"]);
    let getenv = v["libc_calls"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "getenv"))
        .context("no getenv count in the summary")?;
    ensure!(getenv["calls"].as_u64() == Some(n), "getenv counted {} times, not {n}", getenv["calls"]);
    Ok(())
}

fn median(v: &[Loop]) -> Loop {
    let mut w: Vec<f64> = v.iter().map(|l| l.wall_ns).collect();
    let mut c: Vec<f64> = v.iter().map(|l| l.cpu_ns).collect();
    w.sort_by(f64::total_cmp);
    c.sort_by(f64::total_cmp);
    Loop { wall_ns: w[w.len() / 2], cpu_ns: c[c.len() / 2] }
}
