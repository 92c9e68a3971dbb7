//! How much slower a command runs under probity than untraced (and under
//! strace, for reference), and how much memory tracing takes.
//!
//! `cargo bench -p probity --bench overhead [-- --quick]` (after `cargo
//! build --release -p probity-cli`), or
//! `cargo xtask bench [--quick]`. Needs root (or CAP_BPF + CAP_PERFMON).
//!
//! This is a measurement, not a test: a ratio over its target is reported,
//! never fatal. What does make it exit non-zero is a traced run that lost
//! events or counted the workload's syscalls wrong, because then the
//! figures describe a trace that was not complete.
//!
//! Every time is wall-clock around a whole command, spawn to exit, so the
//! fixed costs of tracing (loading the eBPF programs, draining the ring at
//! the end) are in it. The modes run round-robin within each repetition
//! so that machine noise hits them all alike instead of one block of runs.
//! Results: a table on stdout and `target/bench/overhead.json`.
//!
//! Two modes measure what is not probity's to save, for comparison: the
//! floor (the command untraced, with two empty programs attached to the
//! raw `sys_enter` and `sys_exit` tracepoints, which any per-syscall
//! tracer pays on every syscall of the machine), and the command untraced
//! beside a probity session (what probity's programs cost the syscalls of
//! processes they do not trace).

#[path = "support/cli.rs"]
mod cli;

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use nix::sys::signal::Signal;
use probity::{Trace, Tracee, Tracer};
use serde_json::{json, Value};

/// getppid calls of workload A.
const LOOP_CALLS: u64 = 1_000_000;
/// getppid calls of the CLI memory run: twice A, so that memory growing
/// with the number of events would show.
const MEMORY_LOOP_CALLS: u64 = 2_000_000;

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("overhead: FAILED: some traced runs lost events or counted wrong (see LOST above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("overhead: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs everything; `Ok(false)` when some traced run was incomplete.
fn run() -> anyhow::Result<bool> {
    let opts = Options::parse(std::env::args().skip(1))?;
    let bench = Bench::new()?;
    let workloads = [Workload::getppid_loop(LOOP_CALLS), Workload::tar()?];
    warn_about_other_tracers();
    // Other busy processes skew the ratios too (there are only so many
    // cores); the load average before and after says if there were any.
    let load_before = loadavg();
    eprintln!("load average before: {load_before}");

    // Memory first: the bench process's peak RSS is a high-water mark, so
    // the in-memory figure is only clean before any other large trace.
    let memory = bench.memory()?;
    let fixed = bench.fixed_costs(&opts)?;
    let cases = bench.time_all(&opts, &workloads)?;

    print_table(&cases);
    print_fixed_costs(&fixed);
    print_time_breakdown(&cases);
    print_memory(&memory);
    warn_about_other_tracers();
    let load = [load_before, loadavg()];
    println!("\nload average before / after: {} / {}", load[0], load[1]);
    let complete = report_losses(&cases) && memory.complete;
    let out = write_json(&opts, &cases, &fixed, &memory, &load)?;
    println!("\nresults written to {}", out.display());
    Ok(complete)
}

/// Command-line options (after `--`; cargo adds `--bench` itself).
struct Options {
    quick: bool,
    /// Repetitions of every mode.
    reps: usize,
    /// Repetitions of strace on the getppid loop, which takes ~30 s a run.
    strace_loop_reps: usize,
    /// Leave strace out (`--no-strace`): its runs take most of the time,
    /// and its ratio does not change with probity's code.
    strace: bool,
}

impl Options {
    fn parse(args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
        let mut quick = false;
        let mut strace = true;
        for arg in args {
            match arg.as_str() {
                "--quick" => quick = true,
                "--no-strace" => strace = false,
                // cargo bench passes --bench to every harness = false bench.
                "--bench" => {}
                "-h" | "--help" => {
                    println!("usage: cargo bench -p probity --bench overhead [-- [--quick] [--no-strace]]");
                    std::process::exit(0);
                }
                other => bail!("unknown argument {other:?} (the options are --quick and --no-strace)"),
            }
        }
        Ok(if quick {
            Options { quick, reps: 2, strace_loop_reps: 1, strace }
        } else {
            Options { quick, reps: 5, strace_loop_reps: 2, strace }
        })
    }
}

/// A command to measure, with what a complete trace of it must count.
struct Workload {
    /// Short name used in the table and the JSON.
    key: &'static str,
    program: PathBuf,
    args: Vec<OsString>,
    /// Exactly this many getppid calls, when the workload is the loop.
    getppid_calls: Option<u64>,
}

impl Workload {
    fn getppid_loop(calls: u64) -> Workload {
        Workload {
            key: "loop",
            program: probity_fixtures::path(probity_fixtures::GETPPID_LOOP),
            args: vec![calls.to_string().into()],
            getppid_calls: Some(calls),
        }
    }

    fn tar() -> anyhow::Result<Workload> {
        ensure!(Path::new("/usr/include").is_dir(), "/usr/include is missing; install libc6-dev");
        Ok(Workload {
            key: "tar",
            // Resolved once, so no mode pays (or traces) a PATH search.
            program: probity::resolve_program("tar").context("the tar workload needs tar")?,
            args: ["cf", "/dev/null", "/usr/include"].map(OsString::from).to_vec(),
            getppid_calls: None,
        })
    }

    /// `true`: nothing but the fixed cost of starting a (traced) process.
    fn truth() -> anyhow::Result<Workload> {
        let program = probity::resolve_program("true").context("true is missing")?;
        Ok(Workload { key: "true", program, args: vec![], getppid_calls: None })
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args);
        cmd
    }

    fn describe(&self) -> String {
        let args: Vec<_> = self.args.iter().map(|a| a.to_string_lossy()).collect();
        format!("{} {}", self.program.display(), args.join(" "))
    }
}

/// How a workload is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Untraced,
    /// Untraced, with two empty programs on the raw `sys_enter` and
    /// `sys_exit` tracepoints: the floor any per-syscall tracer pays.
    Floor,
    /// Untraced, while probity traces another command: what a traced
    /// test costs the rest of the machine.
    Bystander,
    /// `probity run --summary --json FILE -o /dev/null`: counts in the kernel.
    Summary,
    /// `Tracer::run` into memory, loading the eBPF programs itself, as a
    /// lone `Tracer::run` in a process does.
    InMemoryFirst,
    /// `Tracer::run` into memory with the programs already loaded (another
    /// session holds them), as in a test binary whose traces overlap.
    InMemorySteady,
    /// `probity run --json FILE -o /dev/null`.
    Json,
    /// `probity run -o FILE`: the strace-like text, to a file.
    Text,
    /// `probity run --json FILE -o FILE2`: both writers at once.
    JsonText,
    /// `strace -f -o /dev/null`.
    Strace,
    /// `strace -f -c -o FILE`.
    StraceSummary,
}

impl Mode {
    const ALL: [Mode; 11] = [
        Mode::Untraced,
        Mode::Floor,
        Mode::Bystander,
        Mode::Summary,
        Mode::InMemoryFirst,
        Mode::InMemorySteady,
        Mode::Json,
        Mode::Text,
        Mode::JsonText,
        Mode::Strace,
        Mode::StraceSummary,
    ];

    fn key(self) -> &'static str {
        match self {
            Mode::Untraced => "untraced",
            Mode::Floor => "floor",
            Mode::Bystander => "bystander",
            Mode::Summary => "summary",
            Mode::InMemoryFirst => "in_memory_first_run",
            Mode::InMemorySteady => "in_memory_steady",
            Mode::Json => "json",
            Mode::Text => "text",
            Mode::JsonText => "json_and_text",
            Mode::Strace => "strace",
            Mode::StraceSummary => "strace_summary",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Mode::Untraced => "untraced",
            Mode::Floor => "floor: empty programs",
            Mode::Bystander => "untraced, beside probity",
            Mode::Summary => "probity --summary",
            Mode::InMemoryFirst => "in-memory, first run",
            Mode::InMemorySteady => "in-memory, steady",
            Mode::Json => "probity --json",
            Mode::Text => "probity -o FILE (text)",
            Mode::JsonText => "probity --json -o FILE",
            Mode::Strace => "strace -f",
            Mode::StraceSummary => "strace -f -c",
        }
    }

    /// Whether this mode is measured on `w`: strace -c only on the loop,
    /// to compare with --summary, and strace not at all with `--no-strace`.
    fn applies_to(self, w: &Workload, opts: &Options) -> bool {
        let strace = matches!(self, Mode::Strace | Mode::StraceSummary);
        (opts.strace || !strace) && (self != Mode::StraceSummary || w.getppid_calls.is_some())
    }

    fn reps(self, w: &Workload, opts: &Options) -> usize {
        match self {
            Mode::Strace | Mode::StraceSummary if w.getppid_calls.is_some() => opts.strace_loop_reps,
            _ => opts.reps,
        }
    }

    /// The goal for the ratio to untraced, if there is one.
    fn target(self, w: &Workload) -> Option<Target> {
        let is_loop = w.getppid_calls.is_some();
        match self {
            Mode::Summary if is_loop => Some(Target::AtMost(3.0)),
            Mode::InMemoryFirst | Mode::InMemorySteady if is_loop => Some(Target::AtMost(3.5)),
            Mode::InMemoryFirst | Mode::InMemorySteady => Some(Target::AtMost(1.15)),
            Mode::Json if is_loop => Some(Target::AtMost(5.0)),
            Mode::Strace if is_loop => Some(Target::About(140.0)),
            _ => None,
        }
    }
}

#[derive(Clone, Copy)]
enum Target {
    /// A goal: the ratio should be at most this.
    AtMost(f64),
    /// For reference only: what strace is known to cost.
    About(f64),
}

impl Target {
    fn met(self, ratio: f64) -> Option<bool> {
        match self {
            Target::AtMost(t) => Some(ratio <= t),
            Target::About(_) => None,
        }
    }

    fn describe(self, ratio: Option<f64>) -> String {
        match self {
            Target::AtMost(t) => {
                let verdict = match ratio.and_then(|r| self.met(r)) {
                    Some(true) => "met",
                    Some(false) => "MISSED",
                    None => "?",
                };
                format!("<= {t:.2}x {verdict}")
            }
            Target::About(t) => format!("~{t:.0}x (reference)"),
        }
    }
}

/// Whether a traced run's trace was complete.
enum Check {
    /// Nothing to check (untraced) or nothing checkable (strace -f with
    /// its output thrown away; ptrace stops the tracee, so it cannot lose).
    NotApplicable,
    Passed(String),
    Failed(String),
}

/// One timed run.
struct Sample {
    elapsed: Duration,
    check: Check,
    /// For in-memory runs, what the trace says of the command's own run.
    span: Option<Span>,
}

impl Sample {
    fn new(elapsed: Duration, check: Check) -> Sample {
        Sample { elapsed, check, span: None }
    }
}

/// How long the traced command itself ran (its first event to its last),
/// as opposed to the wall time around the whole traced run: the
/// difference is spawning, draining the ring and ending the session,
/// while the span's excess over untraced is the kernel side's cost.
#[derive(Clone, Copy)]
struct Span {
    running: Duration,
    syscalls: u64,
}

impl Span {
    fn of(trace: &Trace) -> Option<Span> {
        let start = trace.events.iter().map(|e| e.ts_ns).min()?;
        let end = trace.events.iter().map(probity::Event::end_ns).max()?;
        let syscalls = trace.syscalls().count() as u64;
        Some(Span { running: Duration::from_nanos(end.saturating_sub(start)), syscalls })
    }
}

/// Every repetition of one workload in one mode.
struct Case<'w> {
    workload: &'w Workload,
    mode: Mode,
    reps: usize,
    samples: Vec<Duration>,
    /// In-memory runs only: the command's own running time in each.
    spans: Vec<Span>,
    /// What the checks said, one line per run that was checked.
    passed: Vec<String>,
    failed: Vec<String>,
}

impl Case<'_> {
    fn median(&self) -> Option<Duration> {
        median(&self.samples)
    }

    fn min(&self) -> Option<Duration> {
        self.samples.iter().min().copied()
    }
}

/// What the timing loop needs to start each mode.
struct Bench {
    probity: PathBuf,
    strace: PathBuf,
    /// One tracer for every in-memory run (the programs' lifetime is the
    /// sessions', not the Tracer's; see [`Keeper`]).
    tracer: Tracer,
    /// Holds JSON traces, strace's counts and the commands' stderr.
    scratch: tempfile::TempDir,
}

/// A finished child process.
struct Finished {
    elapsed: Duration,
    status: ExitStatus,
    /// Peak resident set of the child, KiB.
    max_rss_kib: u64,
}

impl Bench {
    fn new() -> anyhow::Result<Bench> {
        let probity = cli::probity_bin()?;
        let strace = probity::resolve_program("strace").context("strace is the reference; install it")?;
        let scratch = tempfile::tempdir().context("failed to create a scratch directory")?;
        // The kernel tracer alone: the targets are the eBPF core's. (The
        // preload layer adds loading itself into every process and a record
        // per libc call; see the README.)
        let tracer = Tracer::new().with_tracers(&[probity::TracerKind::Ebpf]);
        Ok(Bench { probity, strace, tracer, scratch })
    }

    fn json_path(&self) -> PathBuf {
        self.scratch.path().join("trace.jsonl")
    }

    fn stderr_path(&self) -> PathBuf {
        self.scratch.path().join("stderr.txt")
    }

    /// Every applicable (workload, mode), repeated round-robin.
    fn time_all<'w>(&self, opts: &Options, workloads: &'w [Workload]) -> anyhow::Result<Vec<Case<'w>>> {
        let mut cases: Vec<Case<'w>> = workloads
            .iter()
            .flat_map(|w| Mode::ALL.iter().filter(|m| m.applies_to(w, opts)).map(move |&mode| (w, mode)))
            .map(|(workload, mode)| Case {
                workload,
                mode,
                reps: mode.reps(workload, opts),
                samples: Vec::new(),
                spans: Vec::new(),
                passed: Vec::new(),
                failed: Vec::new(),
            })
            .collect();
        for rep in 0..opts.reps {
            for case in cases.iter_mut().filter(|c| rep < c.reps) {
                let sample = self
                    .run_once(case.workload, case.mode)
                    .with_context(|| format!("{} {}", case.workload.key, case.mode.label()))?;
                record(case, rep, sample);
            }
        }
        Ok(cases)
    }

    fn run_once(&self, w: &Workload, mode: Mode) -> anyhow::Result<Sample> {
        match mode {
            Mode::Untraced => self.untraced(w),
            Mode::Floor => {
                let _floor = floor::Floor::attach()?;
                self.untraced(w)
            }
            Mode::Bystander => {
                // The same keeper as the steady runs': its session is
                // live, so probity's programs run for every syscall.
                let _keeper = Keeper::start(&self.tracer)?;
                self.untraced(w)
            }
            Mode::Summary | Mode::Json | Mode::Text | Mode::JsonText => self.cli(w, mode),
            Mode::InMemoryFirst => self.in_memory(w),
            Mode::InMemorySteady => {
                // Loading happens here, before the clock starts, and the
                // programs stay loaded only while the keeper lives: a
                // second set attached during the other modes would slow
                // every syscall on the machine, untraced ones included.
                let _keeper = Keeper::start(&self.tracer)?;
                self.in_memory(w)
            }
            Mode::Strace | Mode::StraceSummary => self.strace(w, mode),
        }
    }

    fn untraced(&self, w: &Workload) -> anyhow::Result<Sample> {
        let done = self.timed(w.command())?;
        let check = if done.status.success() {
            Check::NotApplicable
        } else {
            Check::Failed(format!("untraced run failed: {}", self.failure(&done)))
        };
        Ok(Sample::new(done.elapsed, check))
    }

    /// Spawns `cmd` with its output discarded (stderr kept for failure
    /// messages) and times it to its exit.
    fn timed(&self, mut cmd: Command) -> anyhow::Result<Finished> {
        let stderr = File::create(self.stderr_path()).context("failed to create the stderr file")?;
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr);
        let started = Instant::now();
        let child = cmd.spawn().with_context(|| format!("failed to start {cmd:?}"))?;
        let (status, max_rss_kib) = wait4(child.id()).with_context(|| format!("failed to wait for {cmd:?}"))?;
        Ok(Finished { elapsed: started.elapsed(), status, max_rss_kib })
    }

    /// Why a finished child failed: its status and the end of its stderr.
    fn failure(&self, done: &Finished) -> String {
        let stderr = std::fs::read_to_string(self.stderr_path()).unwrap_or_default();
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect::<Vec<_>>().into_iter().rev().collect();
        format!("{} [{}]", done.status, tail.join(" | "))
    }

    /// The probity CLI, its text trace to a scratch file in the modes
    /// that measure the text writer, else thrown away.
    fn cli(&self, w: &Workload, mode: Mode) -> anyhow::Result<Sample> {
        let json = self.json_path();
        let text = self.scratch.path().join("trace.txt");
        // So that a summary line can only come from this run, and each
        // run writes a new file.
        let _ = std::fs::remove_file(&json);
        let _ = std::fs::remove_file(&text);
        let mut cmd = Command::new(&self.probity);
        cmd.args(["run", "--tracers", "ebpf"]);
        if matches!(mode, Mode::Summary) {
            cmd.arg("--summary");
        }
        if matches!(mode, Mode::Summary | Mode::Json | Mode::JsonText) {
            cmd.arg("--json").arg(&json);
        }
        cmd.arg("-o");
        if matches!(mode, Mode::Text | Mode::JsonText) {
            cmd.arg(&text);
        } else {
            cmd.arg("/dev/null");
        }
        cmd.arg("--").arg(&w.program).args(&w.args);
        let done = self.timed(cmd)?;
        let check = if !done.status.success() {
            // 120 is probity's "events were lost".
            Check::Failed(format!("probity run failed: {}", self.failure(&done)))
        } else if mode == Mode::Text {
            // Nothing to parse in the text; the exit status says it all.
            Check::Passed("exit 0, so nothing lost (a loss exits 120)".into())
        } else {
            check_summary_line(&json, w)?
        };
        Ok(Sample::new(done.elapsed, check))
    }

    /// `Tracer::run` into an in-memory trace; the clock stops once the
    /// events are counted, before the trace is checked or freed.
    fn in_memory(&self, w: &Workload) -> anyhow::Result<Sample> {
        let (trace, elapsed) = self.trace_in_memory(w)?;
        Ok(Sample { elapsed, check: check_trace(&trace, w), span: Span::of(&trace) })
    }

    fn trace_in_memory(&self, w: &Workload) -> anyhow::Result<(Trace, Duration)> {
        let stderr = File::create(self.stderr_path()).context("failed to create the stderr file")?;
        let mut cmd = w.command();
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr);
        let started = Instant::now();
        let trace = self.tracer.run(cmd).with_context(|| format!("failed to trace {}", w.describe()))?;
        std::hint::black_box(trace.events.len());
        Ok((trace, started.elapsed()))
    }

    fn strace(&self, w: &Workload, mode: Mode) -> anyhow::Result<Sample> {
        // strace -c prints a small table at the end: into a file (rather
        // than /dev/null) so the getppid count can be checked, at no cost.
        let counts = self.scratch.path().join("strace-c.txt");
        let _ = std::fs::remove_file(&counts);
        let mut cmd = Command::new(&self.strace);
        cmd.arg("-f");
        match mode {
            Mode::StraceSummary => cmd.arg("-c").arg("-o").arg(&counts),
            _ => cmd.args(["-o", "/dev/null"]),
        };
        cmd.arg(&w.program).args(&w.args);
        let done = self.timed(cmd)?;
        let check = if !done.status.success() {
            Check::Failed(format!("strace failed: {}", self.failure(&done)))
        } else if mode == Mode::StraceSummary {
            check_strace_counts(&counts, w)?
        } else {
            Check::NotApplicable
        };
        Ok(Sample::new(done.elapsed, check))
    }
}

/// Keeps the eBPF programs loaded: the process's programs live as long as
/// some session does, so a session on a command that just sleeps makes
/// the next `Tracer::run` find them loaded instead of loading its own.
struct Keeper(Option<Tracee>);

impl Keeper {
    fn start(tracer: &Tracer) -> anyhow::Result<Keeper> {
        let mut sleeper = Command::new("sleep");
        sleeper.arg("infinity");
        let keeper =
            Keeper(Some(tracer.spawn(sleeper).context("failed to start the session that keeps the tracer loaded")?));
        // Warm-up: one whole run through the loaded programs first.
        tracer.run(Command::new("true")).context("failed to trace the warm-up run")?;
        Ok(keeper)
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        if let Some(tracee) = self.0.take() {
            tracee.signal_tree(Signal::SIGKILL);
            let _ = tracee.wait();
        }
    }
}

/// Files the sample in its case, and says at once if its trace was
/// incomplete: a loss must be loud, not a footnote after minutes of runs.
fn record(case: &mut Case<'_>, rep: usize, sample: Sample) {
    let ms = ms(sample.elapsed);
    let what = format!("{} / {}", case.workload.key, case.mode.label());
    match sample.check {
        Check::NotApplicable => eprintln!("  rep {}: {what}: {ms:.0} ms", rep + 1),
        Check::Passed(note) => {
            eprintln!("  rep {}: {what}: {ms:.0} ms ({note})", rep + 1);
            case.passed.push(note);
        }
        Check::Failed(problem) => {
            eprintln!("  rep {}: {what}: {ms:.0} ms\n  *** LOST / WRONG COUNT: {problem}", rep + 1);
            case.failed.push(problem);
        }
    }
    case.samples.push(sample.elapsed);
    case.spans.extend(sample.span);
}

/// Checks the last line of a JSON trace: nothing lost, and the loop's
/// getppid count exact.
fn check_summary_line(json: &Path, w: &Workload) -> anyhow::Result<Check> {
    let line = last_line(json)?;
    let summary: Value = serde_json::from_str(&line)
        .with_context(|| format!("the last line of {} is not JSON: {line:.200}", json.display()))?;
    ensure!(summary["kind"] == "summary", "the last line of {} is not the summary: {line:.200}", json.display());
    let lost = summary["lost"].as_u64().context("the summary line has no `lost`")?;
    if lost != 0 {
        return Ok(Check::Failed(format!("LOST {lost} events; losses: {}", summary["losses"])));
    }
    let calls = |name: &str| -> u64 {
        summary["syscalls"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| name == "*" || s["name"] == name)
            .filter_map(|s| s["calls"].as_u64())
            .sum()
    };
    Ok(count_check(w, calls("getppid"), calls("*")))
}

/// Whether the loop's getppid count is exact, with the total for the record.
fn count_check(w: &Workload, getppid: u64, total: u64) -> Check {
    match w.getppid_calls {
        Some(want) if getppid < want => Check::Failed(format!(
            "WRONG COUNT: {getppid} getppid calls, want {want}: calls are missing though no loss was reported"
        )),
        Some(want) if getppid > want => Check::Failed(format!(
            "WRONG COUNT: {getppid} getppid calls, want {want}: something other than the loop, \
             such as code the tracer put in the process, made the rest"
        )),
        Some(_) => Check::Passed(format!("lost 0, getppid {getppid}")),
        None => Check::Passed(format!("lost 0, {total} syscalls")),
    }
}

/// The last non-empty line of a file, read from its end: a JSON trace of
/// the loop is over 100 MB and only its summary line matters here.
fn last_line(path: &Path) -> anyhow::Result<String> {
    const TAIL: u64 = 1 << 20;
    let mut f = File::open(path).with_context(|| format!("failed to open {}", path.display()))?;
    let len = f.metadata().with_context(|| format!("failed to stat {}", path.display()))?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(TAIL)))?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail).with_context(|| format!("failed to read {}", path.display()))?;
    // Lossy: the seek may land inside a character of an earlier line.
    String::from_utf8_lossy(&tail)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .with_context(|| format!("{} is empty", path.display()))
}

/// An in-memory trace: nothing lost, and the loop's getppid count exact.
fn check_trace(trace: &Trace, w: &Workload) -> Check {
    let losses = trace.outcome.losses;
    if losses.lost_events() != 0 {
        return Check::Failed(format!("LOST {} events: {losses:?}", losses.lost_events()));
    }
    let getppid = trace.syscalls().filter(|(_, s)| s.name == "getppid").count() as u64;
    count_check(w, getppid, trace.syscalls().count() as u64)
}

/// The getppid line of an `strace -c` table: `% time  seconds  usecs/call
/// calls  [errors]  syscall`, so calls is always the fourth column.
fn check_strace_counts(path: &Path, w: &Workload) -> anyhow::Result<Check> {
    let table = std::fs::read_to_string(path).with_context(|| format!("failed to read {}", path.display()))?;
    let getppid = table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.last() == Some(&"getppid"))
        .and_then(|cols| cols.get(3).and_then(|c| c.parse::<u64>().ok()))
        .unwrap_or(0);
    Ok(count_check(w, getppid, 0))
}

/// Waits for `pid` with `wait4`, for its status and its own peak RSS
/// (`getrusage(RUSAGE_CHILDREN)` would give the largest of all children).
fn wait4(pid: u32) -> std::io::Result<(ExitStatus, u64)> {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: status and usage are valid for writes for the call.
        let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
        if r >= 0 {
            return Ok((ExitStatus::from_raw(status), usage.ru_maxrss.max(0) as u64));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// This process's peak RSS so far, KiB.
fn self_max_rss_kib() -> u64 {
    // SAFETY: an all-zero rusage is valid, and getrusage only writes it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: usage is valid for writes.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss.max(0) as u64
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(samples: &[Duration]) -> Option<Duration> {
    let mut s = samples.to_vec();
    s.sort();
    let n = s.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(s[n / 2]),
        _ => Some((s[n / 2 - 1] + s[n / 2]) / 2),
    }
}

/// The median of `case` over the untraced median of its workload.
fn ratio(cases: &[Case<'_>], case: &Case<'_>) -> Option<f64> {
    let base = cases.iter().find(|c| c.workload.key == case.workload.key && c.mode == Mode::Untraced)?;
    Some(case.median()?.as_secs_f64() / base.median()?.as_secs_f64())
}

/// The recording cost of `case`: what it takes over the floor (the
/// workload untraced beside two empty programs on `sys_enter` and
/// `sys_exit`), over the untraced run, all medians of this run. What no
/// per-syscall tracer can save is left out, so that figures from days
/// whose machine speed differs compare.
fn recording_cost(cases: &[Case<'_>], case: &Case<'_>) -> Option<f64> {
    let same = |mode: Mode| cases.iter().find(|c| c.workload.key == case.workload.key && c.mode == mode);
    let base = same(Mode::Untraced)?.median()?.as_secs_f64();
    let floor = same(Mode::Floor)?.median()?.as_secs_f64();
    Some((case.median()?.as_secs_f64() - floor) / base)
}

fn print_table(cases: &[Case<'_>]) {
    println!();
    println!(
        "{:<6} {:<22} {:>4} {:>10} {:>10} {:>8} {:>9}  target / check",
        "work", "mode", "reps", "median ms", "min ms", "ratio", "rec cost"
    );
    println!("{}", "-".repeat(106));
    for case in cases {
        let r = ratio(cases, case);
        let target = case.mode.target(case.workload).map(|t| t.describe(r)).unwrap_or_default();
        let check = match (case.failed.len(), case.passed.len()) {
            (0, 0) => String::new(),
            (0, n) => format!("complete x{n}"),
            (f, _) => format!("LOST/WRONG in {f} run(s)"),
        };
        // The untraced run and the floor are what recording costs are
        // measured from.
        let cost = match case.mode {
            Mode::Untraced | Mode::Floor => None,
            _ => recording_cost(cases, case),
        };
        println!(
            "{:<6} {:<22} {:>4} {:>10.1} {:>10.1} {:>7.2}x {:>9}  {}",
            case.workload.key,
            case.mode.label(),
            case.samples.len(),
            case.median().map_or(f64::NAN, ms),
            case.min().map_or(f64::NAN, ms),
            r.unwrap_or(f64::NAN),
            cost.map_or_else(String::new, |c| format!("{c:.2}")),
            [target, check].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join("; "),
        );
    }
}

/// Where the time of an in-memory run goes: loading the programs (first
/// run minus steady), the kernel side slowing the command down (its
/// running time traced minus untraced), and the rest (spawning, draining,
/// ending the session).
fn print_time_breakdown(cases: &[Case<'_>]) {
    println!("\nwhere the in-memory time goes (medians):");
    for steady in cases.iter().filter(|c| c.mode == Mode::InMemorySteady) {
        let untraced = cases.iter().find(|c| c.workload.key == steady.workload.key && c.mode == Mode::Untraced);
        let running = median(&steady.spans.iter().map(|s| s.running).collect::<Vec<_>>());
        let syscalls = steady.spans.first().map_or(0, |s| s.syscalls);
        if let (Some(wall), Some(running), Some(base)) = (steady.median(), running, untraced.and_then(Case::median)) {
            let slowdown = running.as_secs_f64() - base.as_secs_f64();
            println!(
                "{}: steady {:.0} ms = command running traced {:.0} ms (untraced {:.0} ms, so +{:.0} ns per syscall \
                 over {syscalls} syscalls) + {:.0} ms spawning, draining and ending the session",
                steady.workload.key,
                ms(wall),
                ms(running),
                ms(base),
                slowdown * 1e9 / syscalls.max(1) as f64,
                ms(wall.saturating_sub(running)),
            );
            let same = |mode: Mode| cases.iter().find(|c| c.workload.key == steady.workload.key && c.mode == mode);
            for (mode, what) in [
                (Mode::Floor, "two empty programs on sys_enter and sys_exit (the floor)"),
                (Mode::Bystander, "probity's programs on a command it does not trace"),
            ] {
                if let Some(t) = same(mode).and_then(Case::median) {
                    let extra = t.as_secs_f64() - base.as_secs_f64();
                    println!(
                        "{}:   of which {what}: +{:.0} ns per syscall ({:.2}x untraced)",
                        steady.workload.key,
                        extra * 1e9 / syscalls.max(1) as f64,
                        t.as_secs_f64() / base.as_secs_f64()
                    );
                }
            }
        }
    }
    for first in cases.iter().filter(|c| c.mode == Mode::InMemoryFirst) {
        let steady = cases.iter().find(|c| c.workload.key == first.workload.key && c.mode == Mode::InMemorySteady);
        if let (Some(f), Some(s)) = (first.median(), steady.and_then(Case::median)) {
            println!(
                "{}: a first in-memory run costs {:.0} ms more than a steady one (loading and unloading the eBPF programs)",
                first.workload.key,
                ms(f) - ms(s)
            );
        }
    }
}

/// Costs that do not depend on the workload, measured on `true`.
struct FixedCosts {
    /// `Tracer::run(true)` loading the programs itself.
    first_run: Vec<Duration>,
    /// `Tracer::run(true)` with the programs loaded.
    steady_run: Vec<Duration>,
    /// `probity run --summary -o /dev/null -- true`.
    cli: Vec<Duration>,
    untraced: Vec<Duration>,
}

impl Bench {
    fn fixed_costs(&self, opts: &Options) -> anyhow::Result<FixedCosts> {
        let mut fixed = FixedCosts { first_run: vec![], steady_run: vec![], cli: vec![], untraced: vec![] };
        let truth = Workload::truth()?;
        for _ in 0..opts.reps {
            fixed.untraced.push(self.timed(truth.command())?.elapsed);
            fixed.first_run.push(self.trace_in_memory(&truth)?.1);
            {
                let _keeper = Keeper::start(&self.tracer)?;
                fixed.steady_run.push(self.trace_in_memory(&truth)?.1);
            }
            let mut cli = Command::new(&self.probity);
            cli.args(["run", "--tracers", "ebpf", "--summary", "-o", "/dev/null", "--"]).arg(&truth.program);
            fixed.cli.push(self.timed(cli)?.elapsed);
        }
        Ok(fixed)
    }
}

fn print_fixed_costs(fixed: &FixedCosts) {
    println!("\nfixed costs, on `true` (median ms):");
    for (label, samples) in [
        ("untraced", &fixed.untraced),
        ("probity run --summary (loads + unloads)", &fixed.cli),
        ("Tracer::run, first run (loads + unloads)", &fixed.first_run),
        ("Tracer::run, steady (programs already loaded)", &fixed.steady_run),
    ] {
        println!("  {label:<48} {:>8.1}", median(samples).map_or(f64::NAN, ms));
    }
}

/// Peak memory of the CLI and of an in-memory trace.
struct Memory {
    /// The CLI's peak RSS tracing `true`, KiB: its floor.
    cli_floor_kib: u64,
    /// The CLI's peak RSS streaming the loop of MEMORY_LOOP_CALLS, KiB.
    cli_loop_kib: u64,
    /// Growth of this process's peak RSS for an in-memory trace of the
    /// loop, KiB, and the number of events in it.
    in_memory_delta_kib: u64,
    in_memory_events: usize,
    complete: bool,
}

impl Bench {
    fn memory(&self) -> anyhow::Result<Memory> {
        eprintln!("memory runs...");
        let mut complete = true;
        let truth = Workload::truth()?;
        let cli_floor = self.cli_rss(&truth)?;
        let big = Workload::getppid_loop(MEMORY_LOOP_CALLS);
        let cli_loop = self.cli_rss(&big)?;
        for (w, done) in [(&truth, &cli_floor), (&big, &cli_loop)] {
            if !done.status.success() {
                eprintln!("  *** LOST / FAILED: memory run of {}: {}", w.describe(), self.failure(done));
                complete = false;
            }
        }

        // Warm-up first, so the high-water mark already includes what any
        // run maps (the ring buffer) and the delta is the trace itself.
        self.tracer.run(Command::new("true")).context("failed to trace the warm-up run")?;
        let before = self_max_rss_kib();
        let w = Workload::getppid_loop(LOOP_CALLS);
        let (trace, _) = self.trace_in_memory(&w)?;
        let after = self_max_rss_kib();
        if let Check::Failed(problem) = check_trace(&trace, &w) {
            eprintln!("  *** LOST / WRONG COUNT: in-memory memory run: {problem}");
            complete = false;
        }
        Ok(Memory {
            cli_floor_kib: cli_floor.max_rss_kib,
            cli_loop_kib: cli_loop.max_rss_kib,
            in_memory_delta_kib: after.saturating_sub(before),
            in_memory_events: trace.events.len(),
            complete,
        })
    }

    /// `probity run --json /dev/null -o /dev/null -- W`: the peak RSS of
    /// the probity process itself (wait4 reports that one child's).
    fn cli_rss(&self, w: &Workload) -> anyhow::Result<Finished> {
        let mut cmd = Command::new(&self.probity);
        cmd.args(["run", "--tracers", "ebpf", "--json", "/dev/null", "-o", "/dev/null", "--"])
            .arg(&w.program)
            .args(&w.args);
        self.timed(cmd)
    }
}

fn print_memory(m: &Memory) {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let event = std::mem::size_of::<probity::Event>();
    println!("\nmemory:");
    println!("  probity run --json, peak RSS on `true`:               {:>8.1} MiB", mib(m.cli_floor_kib));
    println!(
        "  probity run --json, peak RSS on {MEMORY_LOOP_CALLS} getppid:      {:>8.1} MiB (+{:.1} MiB over `true`)",
        mib(m.cli_loop_kib),
        mib(m.cli_loop_kib.saturating_sub(m.cli_floor_kib))
    );
    println!(
        "  in-memory trace of {} events: peak RSS +{:.1} MiB ({:.0} bytes/event; size_of::<Event>() = {event})",
        m.in_memory_events,
        mib(m.in_memory_delta_kib),
        (m.in_memory_delta_kib * 1024) as f64 / m.in_memory_events.max(1) as f64,
    );
}

/// Prints every incomplete run again at the end; true if there were none.
fn report_losses(cases: &[Case<'_>]) -> bool {
    let failed: Vec<_> = cases.iter().filter(|c| !c.failed.is_empty()).collect();
    if failed.is_empty() {
        println!("\nno events lost: every traced run was checked complete");
        return true;
    }
    println!("\n*** LOST EVENTS OR WRONG COUNTS ***");
    for c in failed {
        // Runs of one case tend to fail alike: each problem once, counted.
        let mut problems: Vec<&String> = c.failed.iter().collect();
        problems.sort();
        problems.dedup();
        for problem in problems {
            let runs = c.failed.iter().filter(|p| *p == problem).count();
            println!("  {} / {} ({runs} of {} runs): {problem}", c.workload.key, c.mode.label(), c.samples.len());
        }
    }
    false
}

fn write_json(
    opts: &Options,
    cases: &[Case<'_>],
    fixed: &FixedCosts,
    m: &Memory,
    load: &[String; 2],
) -> anyhow::Result<PathBuf> {
    let ms_list = |s: &[Duration]| s.iter().map(|d| ms(*d)).collect::<Vec<_>>();
    let results: Vec<Value> = cases
        .iter()
        .map(|c| {
            let r = ratio(cases, c);
            let target = c.mode.target(c.workload);
            json!({
                "workload": c.workload.key,
                "command": c.workload.describe(),
                "mode": c.mode.key(),
                "samples_ms": ms_list(&c.samples),
                "command_running_ms": c.spans.iter().map(|s| ms(s.running)).collect::<Vec<_>>(),
                "median_ms": c.median().map(ms),
                "min_ms": c.min().map(ms),
                "ratio": r,
                "recording_cost": recording_cost(cases, c),
                "target_at_most": match target { Some(Target::AtMost(t)) => Some(t), _ => None },
                "target_met": target.zip(r).and_then(|(t, r)| t.met(r)),
                "checked_complete": c.passed.len(),
                "lost_or_wrong": c.failed,
            })
        })
        .collect();
    let doc = json!({
        "quick": opts.quick,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|s| s.trim().to_owned()),
        "load_average_before_after": load,
        "results": results,
        "fixed_costs_on_true_ms": {
            "untraced": ms_list(&fixed.untraced),
            "cli_summary": ms_list(&fixed.cli),
            "in_memory_first_run": ms_list(&fixed.first_run),
            "in_memory_steady": ms_list(&fixed.steady_run),
        },
        "memory": {
            "cli_json_true_max_rss_kib": m.cli_floor_kib,
            "cli_json_loop_max_rss_kib": m.cli_loop_kib,
            "cli_json_loop_calls": MEMORY_LOOP_CALLS,
            "in_memory_max_rss_delta_kib": m.in_memory_delta_kib,
            "in_memory_events": m.in_memory_events,
            "size_of_event": std::mem::size_of::<probity::Event>(),
        },
    });
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let path = dir.join("overhead.json");
    let text = serde_json::to_string_pretty(&doc).context("failed to serialize the results")?;
    std::fs::write(&path, text + "\n").with_context(|| format!("failed to write {}", path.display()))?;
    Ok(path)
}

/// The 1, 5 and 15 minute load averages.
fn loadavg() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// Cargo's target directory: the nearest ancestor of this bench binary
/// that holds `CACHEDIR.TAG` (cargo writes one there), which follows
/// CARGO_TARGET_DIR; the workspace's `target/` if none does.
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().find(|d| d.join("CACHEDIR.TAG").is_file()).map(Path::to_path_buf))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// Timings are only fair when nothing else has tracing programs attached:
/// another probity (a test run, say) makes every syscall on the machine
/// run its programs too, untraced ones included. Says so if it sees one.
fn warn_about_other_tracers() {
    // BPF_PROG_TYPE_KPROBE, _TRACEPOINT, _RAW_TRACEPOINT, _TRACING.
    const TRACING_TYPES: [&str; 4] = ["2", "5", "17", "26"];
    let me = std::process::id().to_string();
    let Ok(procs) = std::fs::read_dir("/proc") else { return };
    let mut holders = Vec::new();
    for proc_dir in procs.flatten() {
        let pid = proc_dir.file_name().to_string_lossy().into_owned();
        if pid == me || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(proc_dir.path().join("fd")) else { continue };
        let holds_tracer = fds.flatten().any(|fd| {
            let is_prog = std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == "anon_inode:bpf-prog");
            let info = proc_dir.path().join("fdinfo").join(fd.file_name());
            is_prog
                && std::fs::read_to_string(info).is_ok_and(|i| {
                    i.lines().any(|l| l.strip_prefix("prog_type:").is_some_and(|t| TRACING_TYPES.contains(&t.trim())))
                })
        });
        if holds_tracer {
            let comm = std::fs::read_to_string(proc_dir.path().join("comm")).unwrap_or_default();
            holders.push(format!("{pid} ({})", comm.trim()));
        }
    }
    if !holders.is_empty() {
        eprintln!(
            "overhead: warning: other processes have tracing eBPF programs loaded, which slows every syscall \
             and skews these timings: {}",
            holders.join(", ")
        );
    }
}

/// Two empty programs on the raw syscall tracepoints, loaded with bare
/// `bpf(2)` calls: what every syscall pays once anything traces syscalls,
/// before any tracer does any work.
mod floor {
    use std::os::fd::{FromRawFd, OwnedFd};

    use anyhow::Context;

    /// `union bpf_attr` as `BPF_PROG_LOAD` reads it (the fields used).
    #[repr(C)]
    #[derive(Default)]
    struct ProgLoad {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
        _rest: [u64; 12],
    }

    /// `union bpf_attr` as `BPF_RAW_TRACEPOINT_OPEN` reads it.
    #[repr(C)]
    #[derive(Default)]
    struct RawTpOpen {
        name: u64,
        prog_fd: u32,
        _pad: u32,
        _rest: [u64; 14],
    }

    const BPF_PROG_LOAD: libc::c_long = 5;
    const BPF_RAW_TRACEPOINT_OPEN: libc::c_long = 17;
    const BPF_PROG_TYPE_RAW_TRACEPOINT: u32 = 17;
    /// `r0 = 0; exit`, as two `struct bpf_insn`.
    const RETURN_0: [u64; 2] = [0x0000_0000_0000_00b7, 0x0000_0000_0000_0095];

    /// The attached programs; detached when dropped.
    pub struct Floor(#[allow(dead_code, reason = "held for their lifetime")] Vec<OwnedFd>);

    impl Floor {
        pub fn attach() -> anyhow::Result<Floor> {
            let mut fds = Vec::new();
            for tracepoint in [c"sys_enter", c"sys_exit"] {
                let load = ProgLoad {
                    prog_type: BPF_PROG_TYPE_RAW_TRACEPOINT,
                    insn_cnt: RETURN_0.len() as u32,
                    insns: RETURN_0.as_ptr() as u64,
                    license: c"GPL".as_ptr() as u64,
                    ..ProgLoad::default()
                };
                let prog = bpf(BPF_PROG_LOAD, &load).context("failed to load an empty program")?;
                let open = RawTpOpen { name: tracepoint.as_ptr() as u64, prog_fd: prog as u32, ..RawTpOpen::default() };
                // SAFETY: a file descriptor the kernel just gave us.
                fds.push(unsafe { OwnedFd::from_raw_fd(prog) });
                let link = bpf(BPF_RAW_TRACEPOINT_OPEN, &open)
                    .with_context(|| format!("failed to attach an empty program to {tracepoint:?}"))?;
                // SAFETY: as above.
                fds.push(unsafe { OwnedFd::from_raw_fd(link) });
            }
            Ok(Floor(fds))
        }
    }

    fn bpf<T>(cmd: libc::c_long, attr: &T) -> std::io::Result<i32> {
        // SAFETY: `attr` is a live, zero-padded `union bpf_attr` prefix of
        // the size passed, and what it points at outlives the call.
        let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, std::ptr::from_ref(attr), size_of::<T>() as u32) };
        if r < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(r as i32)
        }
    }
}
