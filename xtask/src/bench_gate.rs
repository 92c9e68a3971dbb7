//! What gating CI on a policy costs: `cargo nextest run` on a generated
//! workspace of 100 tests, untraced against `probity run` with a policy
//! (enforce mode, no network, writes under the target directory and the
//! temporary directory only), in the same run.
//!
//! The tests do what tests do: read and write files in a temporary
//! directory, run a small program now and then, compute. The workspace
//! is built before anything is timed, so the runs time the tests, not the
//! compiler; modes alternate within each repetition. A traced run must
//! pass the gate and lose nothing, or the bench fails: its figure would
//! describe an incomplete trace.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use clap::Args;

#[derive(Args)]
pub struct BenchGateArgs {
    /// Repetitions of each mode (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Make the workspace in DIR and keep it (to look into a run), instead
    /// of a temporary directory removed at the end.
    #[arg(long, value_name = "DIR")]
    keep_in: Option<std::path::PathBuf>,
}

/// Test files, and tests in each.
const FILES: usize = 4;
const TESTS_PER_FILE: usize = 25;

const POLICY: &str = r#"mode = "enforce"

[network]
allow = []

[exec]
deny = ["git", "curl"]

[files]
write_allow = ["$TARGET", "$TMP", "$HOME/.cargo", "/dev/fd"]
"#;

pub fn run(args: &BenchGateArgs) -> anyhow::Result<()> {
    ensure!(args.runs > 0, "--runs must be at least 1");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    crate::sh(Command::new(&cargo).current_dir(crate::root()).args([
        "build",
        "--release",
        "--locked",
        "-p",
        "probity-cli",
    ]))?;
    let probity = crate::root().join("target/release/probity");
    let temporary = tempfile::tempdir().context("failed to make a temporary directory")?;
    let dir = args.keep_in.as_deref().unwrap_or(temporary.path());
    let ws = dir.join("ws");
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp)?;
    write_workspace(&ws)?;
    let nextest = |cmd: &mut Command| {
        cmd.current_dir(&ws)
            .env("TMPDIR", &tmp)
            .env_remove("CARGO_TARGET_DIR")
            .args(["nextest", "run", "--offline", "--no-fail-fast", "--status-level", "fail"])
            .args(["--final-status-level", "fail"]);
    };
    // Built once, untimed.
    let mut build = Command::new(&cargo);
    build.current_dir(&ws).env_remove("CARGO_TARGET_DIR").args(["nextest", "run", "--offline", "--no-run"]);
    crate::sh(&mut build)?;

    let json = dir.join("trace.jsonl");
    let mut untraced = Vec::new();
    let mut traced = Vec::new();
    for rep in 0..args.runs {
        println!("bench-gate: repetition {}/{}", rep + 1, args.runs);
        // Each repetition starts with the other mode.
        for mode in [rep % 2, (rep + 1) % 2] {
            if mode == 0 {
                let mut cmd = Command::new(&cargo);
                nextest(&mut cmd);
                untraced.push(timed(&mut cmd)?);
            } else {
                let mut cmd = Command::new(&probity);
                cmd.args(["run", "--policy"]).arg(ws.join("probity.toml"));
                cmd.arg("--json").arg(&json).args(["-o", "/dev/null", "--"]).arg(&cargo);
                nextest(&mut cmd);
                traced.push(timed(&mut cmd)?);
                check_complete(&json)?;
            }
        }
    }
    let (u, t) = (median(&mut untraced), median(&mut traced));
    let ratio = t.as_secs_f64() / u.as_secs_f64();
    println!("cargo nextest run, {} tests, median of {}:", FILES * TESTS_PER_FILE, args.runs);
    println!("  untraced                               {:>9.1} ms", ms(u));
    println!("  probity run --policy (enforce)         {:>9.1} ms   {ratio:.2}x untraced (goal: at most 1.3x)", ms(t));
    let out = crate::root().join("target/bench");
    std::fs::create_dir_all(&out)?;
    let figures = serde_json::json!({
        "tests": FILES * TESTS_PER_FILE,
        "untraced_ms": untraced.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
        "gated_ms": traced.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
        "ratio": ratio,
    });
    std::fs::write(out.join("gate.json"), serde_json::to_string_pretty(&figures)?)?;
    Ok(())
}

/// A workspace of `FILES` test files of `TESTS_PER_FILE` tests each, and
/// its policy.
fn write_workspace(ws: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(ws.join("src"))?;
    std::fs::create_dir_all(ws.join("tests"))?;
    std::fs::write(
        ws.join("Cargo.toml"),
        "[workspace]\n\n[package]\nname = \"gatebench\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n",
    )?;
    std::fs::write(
        ws.join("src/lib.rs"),
        "/// The sum of the squares below `n`.\npub fn squares(n: u64) -> u64 {\n    (0..n).map(|i| i * i).sum()\n}\n",
    )?;
    std::fs::write(ws.join("probity.toml"), POLICY)?;
    for f in 0..FILES {
        let mut src = String::from("use std::io::{Read, Write};\n\n");
        for t in 0..TESTS_PER_FILE {
            let n = f * TESTS_PER_FILE + t;
            src.push_str(&format!(
                "#[test]\nfn test_{n}() {{\n    \
                 let dir = std::env::temp_dir().join(format!(\"gatebench-{{}}-{n}\", std::process::id()));\n    \
                 std::fs::create_dir_all(&dir).unwrap();\n    \
                 let path = dir.join(\"data\");\n    \
                 std::fs::File::create(&path).unwrap().write_all(&[{n} as u8; 4096]).unwrap();\n    \
                 let mut back = Vec::new();\n    \
                 std::fs::File::open(&path).unwrap().read_to_end(&mut back).unwrap();\n    \
                 assert_eq!(back.len(), 4096);\n    \
                 std::fs::remove_dir_all(&dir).unwrap();\n    \
                 assert_eq!(gatebench::squares({n}), (0..{n}u64).map(|i| i * i).sum::<u64>());\n{}}}\n\n",
                if n.is_multiple_of(10) {
                    "    assert!(std::process::Command::new(\"true\").status().unwrap().success());\n"
                } else {
                    ""
                }
            ));
        }
        std::fs::write(ws.join(format!("tests/group_{f}.rs")), src)?;
    }
    let lock = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(ws)
        .args(["generate-lockfile", "--offline"])
        .status()
        .context("failed to run cargo generate-lockfile")?;
    ensure!(lock.success(), "cargo generate-lockfile failed in {}", ws.display());
    Ok(())
}

/// Fails unless the trace's summary line says nothing was lost.
fn check_complete(json: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(json).with_context(|| format!("failed to read {}", json.display()))?;
    let last = text.lines().last().context("the trace is empty")?;
    let summary: serde_json::Value = serde_json::from_str(last).context("the trace's last line is not JSON")?;
    ensure!(summary["kind"] == "summary", "the trace's last line is not its summary: {last:.200}");
    ensure!(summary["lost"] == 0, "the gated run lost events: {}", summary["losses"]);
    Ok(())
}

fn timed(cmd: &mut Command) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let status = cmd.status().with_context(|| format!("failed to start {cmd:?}"))?;
    let elapsed = start.elapsed();
    ensure!(status.success(), "{cmd:?} failed with {status}");
    Ok(elapsed)
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
