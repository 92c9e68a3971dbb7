//! What fault injection costs: the getppid loop traced with a rule on
//! another syscall against the same run without (the filter's cost on
//! every call), and the cost of a call the supervisor answers.
//!
//! `cargo bench -p probity --bench inject [-- --quick]`, or `cargo xtask
//! bench`. Needs root for the eBPF tracer.
//!
//! A measurement, not a test: the figures are printed, never checked.
//! The modes run round-robin within each repetition, so that machine noise
//! hits them alike, and each figure is the median of the repetitions.

use std::process::Command;
use std::time::{Duration, Instant};

use probity::{Tracer, TracerKind};

/// getppid calls of the loop.
const LOOP_CALLS: u64 = 1_000_000;
/// getppid calls answered by the supervisor.
const ANSWERED_CALLS: u64 = 20_000;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let reps = if quick { 2 } else { 7 };
    let program = probity_fixtures::path(probity_fixtures::GETPPID_LOOP);
    let cmd = |n: u64| {
        let mut c = Command::new(&program);
        c.arg(n.to_string());
        c
    };
    // Whole traces: injection refuses summary counts, which only the kernel
    // keeps and which would miss the injected calls.
    let ebpf = Tracer::new().with_tracers(&[TracerKind::Ebpf]).with_kept_loaded(true);
    let elsewhere = ebpf.clone().with_inject("connect:error=ECONNREFUSED".parse().expect("a valid rule"));
    let answered = ebpf.clone().with_inject("getppid:retval=1".parse().expect("a valid rule"));
    // Loads the programs once, outside the timed runs.
    ebpf.run(cmd(1)).expect("eBPF tracing works here (run as root)");

    let modes: [Box<dyn Fn()>; 5] = [
        Box::new(|| assert!(cmd(LOOP_CALLS).status().expect("the loop runs").success())),
        Box::new(|| check(ebpf.run(cmd(LOOP_CALLS)))),
        Box::new(|| check(elsewhere.run(cmd(LOOP_CALLS)))),
        Box::new(|| check(ebpf.run(cmd(ANSWERED_CALLS)))),
        Box::new(|| check(answered.run(cmd(ANSWERED_CALLS)))),
    ];
    let mut times: [Vec<Duration>; 5] = Default::default();
    for rep in 0..reps {
        eprintln!("inject: repetition {}/{reps}", rep + 1);
        // Each repetition starts with another mode, so that none always
        // runs first (or right after the same neighbour).
        for i in 0..modes.len() {
            let m = (rep + i) % modes.len();
            times[m].push(time(&modes[m]));
        }
    }
    let [untraced, traced, with_rule, small, small_answered] = times.map(median);
    println!("getppid loop, {LOOP_CALLS} calls, median of {reps}:");
    println!("  untraced                          {:>9.1} ms", ms(untraced));
    println!("  probity (eBPF)                    {:>9.1} ms", ms(traced));
    println!(
        "  probity (eBPF) + rule on connect  {:>9.1} ms   {:.3}x the run without",
        ms(with_rule),
        with_rule.as_secs_f64() / traced.as_secs_f64()
    );
    let per_call = (small_answered.saturating_sub(small)).as_secs_f64() / ANSWERED_CALLS as f64;
    println!("getppid loop, {ANSWERED_CALLS} calls, each answered by the supervisor (retval=1):");
    println!("  probity (eBPF)                    {:>9.1} ms", ms(small));
    println!("  probity (eBPF), answered          {:>9.1} ms", ms(small_answered));
    println!("  cost of an answered call          {:>9.1} us", per_call * 1e6);
}

fn check(trace: Result<probity::Trace, probity::Error>) {
    let trace = trace.expect("the traced loop runs");
    assert_eq!(trace.outcome.status, probity::ExitStatus::Code(0));
    assert_eq!(trace.outcome.losses.lost_events(), 0, "{:?}", trace.outcome.losses);
}

fn time(f: &dyn Fn()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
