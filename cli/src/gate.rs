//! `probity run`'s CI gate: the policy (`--policy`, or `probity.toml`
//! found at the workspace root), the bill of materials (`--report-dir`),
//! the reports CI systems show (GitHub Actions, `--sarif`) and the
//! baseline (`--baseline --fail-on-new`, `probity baseline record`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use probity::policy::{Baseline, Mode, Policy, Verdict, Where};
use probity::Trace;

use crate::output;
use crate::run::say;

#[derive(Args, Default)]
pub struct GateArgs {
    /// Gate the run on a policy file (default: `probity.toml` in this
    /// folder or the nearest above it, up to the repository's root). See
    /// docs/ci-gating.md.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Write the bill of materials, bom.json, into DIR: per unit, the
    /// hosts, programs and writes outside the allowed roots, and what
    /// could not be decided.
    #[arg(long, value_name = "DIR")]
    report_dir: Option<PathBuf>,
    /// Write the policy's violations as SARIF 2.1.0 to FILE.
    #[arg(long, value_name = "FILE")]
    sarif: Option<PathBuf>,
    /// Write the trace for ui.perfetto.dev to FILE (Perfetto's JSON
    /// format): a track per process and thread, programs from exec to
    /// exit, syscalls, execs, connections and forks.
    #[arg(long, value_name = "FILE")]
    perfetto: Option<PathBuf>,
    /// Compare with a baseline (`probity baseline record`) and print what
    /// is new.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// With --baseline: fail (exit 121) when a unit used a host, program
    /// or write root the baseline does not have.
    #[arg(long, requires = "baseline")]
    fail_on_new: bool,
    /// Record a baseline of this run into FILE (`probity baseline record`).
    #[arg(long, hide = true, value_name = "FILE")]
    pub record_baseline: Option<PathBuf>,
}

/// A policy to judge the run by, and the places its roots are read
/// against.
pub struct Gate {
    policy: Policy,
    at: Where,
}

impl GateArgs {
    /// The policy of this run: `--policy`, or the one found from the
    /// working directory, with `--deny-network` and `--allow-connect`
    /// added; `None` when there is nothing to gate or report.
    pub fn load(&self, deny_network: bool, allow_connect: &[String]) -> anyhow::Result<Option<Gate>> {
        let cwd = std::env::current_dir().context("failed to read the working directory")?;
        let file = match &self.policy {
            Some(p) => Some(Policy::load(p)?),
            None => Policy::discover(&cwd)?,
        };
        let flags = Policy::from_network_flags(deny_network, allow_connect).map_err(anyhow::Error::msg)?;
        let reports = self.report_dir.is_some()
            || self.sarif.is_some()
            || self.baseline.is_some()
            || self.record_baseline.is_some()
            || self.perfetto.is_some();
        let policy = match (file, flags) {
            (Some(p), Some(f)) => p.and_network_of(&f),
            (Some(p), None) => p,
            (None, Some(f)) if reports => f,
            (None, _) if reports => Policy::nothing(),
            (None, _) => return Ok(None),
        };
        if let Some(o) = policy.origin() {
            let mode = match policy.mode() {
                Mode::Audit => "audit",
                Mode::Enforce => "enforce",
            };
            say(format_args!("policy {} ({mode} mode)", o.display()));
        }
        let workspace = policy
            .origin()
            .and_then(Path::parent)
            .filter(|p| p.is_absolute())
            .map_or_else(|| cwd.clone(), |p| p.to_owned());
        let workspace = if workspace.as_os_str().is_empty() { cwd } else { workspace };
        Ok(Some(Gate { policy, at: Where::new(workspace) }))
    }
}

impl Gate {
    /// Judges the trace, writes the reports asked for, and says whether
    /// the run fails.
    pub fn finish(&self, args: &GateArgs, trace: &Trace) -> anyhow::Result<bool> {
        let mut verdict = self.policy.check(trace, &self.at);
        // Reports name the policy file as the repository does: relative to
        // the working directory when it is under it.
        if let (Some(p), Ok(cwd)) = (&verdict.policy, std::env::current_dir()) {
            if let Ok(rel) = Path::new(p).strip_prefix(&cwd) {
                verdict.policy = Some(rel.to_string_lossy().into_owned());
            }
        }
        for why in &verdict.undecided {
            say(format_args!("policy: undecided for every unit: {why}"));
        }
        for (unit, f) in verdict.findings() {
            say(format_args!("policy: {}: {}: {}", unit.unit, f.rule.id(), f.message));
        }
        if let Some(dir) = &args.report_dir {
            std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
            let path = dir.join("bom.json");
            let mut f = output::create(&path, "--report-dir")?;
            verdict.write_json(&mut f).with_context(|| format!("failed to write {}", path.display()))?;
        }
        if let Some(path) = &args.sarif {
            let f = output::create(path, "--sarif")?;
            serde_json::to_writer_pretty(f, &crate::report::sarif(&verdict))
                .with_context(|| format!("failed to write {}", path.display()))?;
        }
        if let Some(path) = &args.perfetto {
            let f = std::io::BufWriter::new(output::create(path, "--perfetto")?);
            trace.write_perfetto(f).with_context(|| format!("failed to write {}", path.display()))?;
        }
        github(&verdict)?;
        let mut fails = verdict.fails();
        if let Some(out) = &args.record_baseline {
            let b = Baseline::of(&verdict, &self.at);
            let f = output::create(out, "--out")?;
            serde_json::to_writer_pretty(f, &b).with_context(|| format!("failed to write {}", out.display()))?;
            say(format_args!("baseline recorded in {}", out.display()));
        }
        if let Some(path) = &args.baseline {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("failed to read the baseline {}", path.display()))?;
            let before: Baseline = serde_json::from_str(&text)
                .with_context(|| format!("failed to read the baseline {}", path.display()))?;
            let new = before.new_in(&Baseline::of(&verdict, &self.at));
            if new.is_empty() {
                say(format_args!("nothing new since the baseline {}", path.display()));
            } else {
                say(format_args!("new since the baseline {}:", path.display()));
                for n in &new {
                    say(n);
                }
                fails |= args.fail_on_new;
            }
        }
        if verdict.violated() && !verdict.fails() {
            say("policy: audit mode: violations reported, the run keeps the command's status");
        }
        Ok(fails)
    }
}

/// Annotations and the job summary, when running in GitHub Actions.
fn github(verdict: &Verdict) -> anyhow::Result<()> {
    if std::env::var_os("GITHUB_ACTIONS").is_none_or(|v| v != "true") {
        return Ok(());
    }
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(crate::report::annotations(verdict).as_bytes());
    let _ = out.flush();
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .with_context(|| format!("failed to open the job summary {}", Path::new(&path).display()))?;
        f.write_all(crate::report::summary(verdict).as_bytes())
            .with_context(|| format!("failed to write the job summary {}", Path::new(&path).display()))?;
    }
    Ok(())
}

#[derive(clap::Subcommand)]
pub enum BaselineCommand {
    /// Run a command traced and record what each unit used (hosts,
    /// programs, write roots), normalised, into FILE.
    Record {
        /// The baseline file to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[command(flatten)]
        run: crate::run::RunArgs,
    },
}
