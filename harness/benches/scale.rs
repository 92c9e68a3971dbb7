//! Whether a session's cost per syscall stays the same when many sessions
//! run at once: 1 and then 16 concurrent sessions of one loaded tracer,
//! each tracing the getppid loop, against the same number of loops run
//! untraced at the same time.
//!
//! `cargo bench -p probity --bench scale [-- --quick]`, or `cargo xtask
//! bench`. Needs root for the eBPF tracer.
//!
//! The cost per call is the extra CPU time the traced loops took, divided
//! by their calls. Loops keep the CPUs busy, so the extra CPU time of N
//! concurrent loops is the extra wall time times the CPUs they occupy
//! (`min(N, CPUs)`). Two modes: counts kept in the kernel (`--summary`,
//! of which one loaded tracer runs at most `MAX_SUMMARY_SESSIONS` at
//! once), and whole traces kept in memory (fewer calls a loop, so that
//! sixteen traces fit in memory at once).
//!
//! A measurement, not a test: the figures are printed, never checked,
//! but a traced run that lost events or counted wrong ends the bench with
//! a failure, as its figures would then describe an incomplete trace.
//! Modes run round-robin within each repetition, so that machine noise
//! hits them alike; each figure is the median of the repetitions.

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use probity::{Trace, Tracer, TracerKind};
use probity_common::MAX_SUMMARY_SESSIONS;

/// getppid calls of each loop when only counts are kept.
const SUMMARY_CALLS: u64 = 400_000;
/// getppid calls of each loop when whole traces are kept.
const TRACE_CALLS: u64 = 50_000;
/// The session counts compared.
const SESSIONS: [usize; 3] = [1, 8, 16];

fn main() -> ExitCode {
    let quick = std::env::args().any(|a| a == "--quick");
    let reps = if quick { 2 } else { 5 };
    let program = probity_fixtures::path(probity_fixtures::GETPPID_LOOP);
    let cmd = |n: u64| {
        let mut c = Command::new(&program);
        c.arg(n.to_string());
        c
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let ebpf = Tracer::new().with_tracers(&[TracerKind::Ebpf]).with_kept_loaded(true);
    let summary = ebpf.clone().with_summary(true);
    // Loads the programs once, outside the timed runs.
    if let Err(e) = ebpf.run(cmd(1)) {
        eprintln!("scale: error: eBPF tracing does not work here (run as root): {e}");
        return ExitCode::from(2);
    }

    // (label, calls a loop, tracer or None for untraced)
    let kinds: [(&str, u64, Option<&Tracer>); 4] = [
        ("untraced", SUMMARY_CALLS, None),
        ("summary", SUMMARY_CALLS, Some(&summary)),
        ("untraced", TRACE_CALLS, None),
        ("in-memory trace", TRACE_CALLS, Some(&ebpf)),
    ];
    let mut times = vec![vec![Vec::new(); kinds.len()]; SESSIONS.len()];
    let mut failures = Vec::new();
    let modes = SESSIONS.len() * kinds.len();
    for rep in 0..reps {
        eprintln!("scale: repetition {}/{reps}", rep + 1);
        for i in 0..modes {
            let m = (rep + i) % modes;
            let (s, k) = (m / kinds.len(), m % kinds.len());
            let (_, calls, tracer) = kinds[k];
            if k < 2 && SESSIONS[s] > MAX_SUMMARY_SESSIONS as usize {
                continue;
            }
            let (elapsed, failed) = batch(SESSIONS[s], calls, tracer, &cmd);
            times[s][k].push(elapsed);
            failures.extend(failed);
        }
    }

    println!("getppid loops run at once, median of {reps} ({cpus} CPUs):");
    let mut cost = vec![[0.0f64; 2]; SESSIONS.len()];
    for (s, &n) in SESSIONS.iter().enumerate() {
        for (pair, (label, calls)) in [(0, ("summary", SUMMARY_CALLS)), (1, ("in-memory trace", TRACE_CALLS))] {
            if times[s][pair * 2].is_empty() {
                println!("  {n:>2} x {calls:>7} calls, {label:<16} (at most {MAX_SUMMARY_SESSIONS} summary sessions at once)");
                continue;
            }
            let untraced = median(&times[s][pair * 2]);
            let traced = median(&times[s][pair * 2 + 1]);
            let busy = n.min(cpus) as f64;
            let per_call = traced.saturating_sub(untraced).as_secs_f64() * busy / (n as f64 * calls as f64);
            cost[s][pair] = per_call;
            println!(
                "  {n:>2} x {calls:>7} calls, {label:<16} untraced {:>8.1} ms  traced {:>8.1} ms  cost {:>6.0} ns a call",
                ms(untraced),
                ms(traced),
                per_call * 1e9
            );
        }
    }
    for (pair, label) in [(0, "summary"), (1, "in-memory trace")] {
        for (s, &n) in SESSIONS.iter().enumerate().skip(1) {
            if !times[s][pair * 2].is_empty() {
                println!("  {label}: cost a call with {n} sessions / with 1: {:.2}x", cost[s][pair] / cost[0][pair]);
            }
        }
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        for f in &failures {
            eprintln!("scale: FAILED: {f}");
        }
        ExitCode::FAILURE
    }
}

/// Runs `n` loops of `calls` at once, each in a session of `tracer` (or
/// untraced), and returns the wall time of the whole batch and what went
/// wrong in it.
fn batch(
    n: usize,
    calls: u64,
    tracer: Option<&Tracer>,
    cmd: &(dyn Fn(u64) -> Command + Sync),
) -> (Duration, Vec<String>) {
    let start = Instant::now();
    let failures = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..n)
            .map(|_| {
                scope.spawn(move || match tracer {
                    None => match cmd(calls).status() {
                        Ok(s) if s.success() => None,
                        other => Some(format!("the untraced loop failed: {other:?}")),
                    },
                    Some(t) => check(t.run(cmd(calls)), calls),
                })
            })
            .collect();
        runs.into_iter().filter_map(|r| r.join().unwrap_or_else(|_| Some("a run panicked".into()))).collect()
    });
    (start.elapsed(), failures)
}

/// What is wrong with a traced loop's trace, if anything.
fn check(trace: Result<Trace, probity::Error>, calls: u64) -> Option<String> {
    let trace = match trace {
        Ok(t) => t,
        Err(e) => return Some(format!("the traced loop failed: {e}")),
    };
    if trace.outcome.status != probity::ExitStatus::Code(0) {
        return Some(format!("the traced loop ended with {:?}", trace.outcome.status));
    }
    let lost = trace.outcome.losses.lost_events();
    if lost != 0 {
        return Some(format!("LOST {lost} events: {:?}", trace.outcome.losses));
    }
    let counted = if trace.outcome.syscalls.is_empty() {
        trace.syscalls().named("getppid").count() as u64
    } else {
        trace.outcome.syscalls.iter().find(|c| c.name == "getppid").map_or(0, |c| c.calls)
    };
    (counted != calls).then(|| format!("counted {counted} getppid calls of {calls}"))
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
