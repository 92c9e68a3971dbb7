//! `probity run`: trace one command, stream its events out.

use std::collections::HashMap;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use anyhow::Context;
use clap::{Args, ValueEnum};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use probity::{
    Event, EventKind, KnobError, MaxTasks, Outcome, RingBytes, StringLimit, SyscallCount, Tracer, TracerKind,
};

use crate::output;

/// Exit status when events were lost.
const EXIT_LOST: u8 = 120;
/// Exit status when the network gate (`--deny-network`, `--allow-connect`)
/// failed.
const EXIT_GATE: u8 = 121;
/// Exit status when probity itself failed.
const EXIT_PROBITY: u8 = 125;

#[derive(Args)]
pub struct RunArgs {
    /// Write the human-readable trace to FILE instead of stderr. A new
    /// FILE is made 0600 (a trace holds what the command read); an existing
    /// one is overwritten only if it is yours, with no other name; a
    /// symbolic link is followed only if it is yours or root's.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Write the trace as JSON Lines to FILE (schema: docs/json-schema.md),
    /// made as `-o` makes its file; not the same file as `-o`'s.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Count calls, errors and time per syscall (like `strace -c`), and per
    /// libc function with the preload tracer, instead of printing each event.
    #[arg(short = 'c', long)]
    summary: bool,
    /// The tracers to use, comma-separated. Default: every tracer available.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    tracers: Vec<TracerArg>,
    /// Bytes of read/write buffers to show (like `strace -s`), 0 to 4095.
    #[arg(short = 's', long = "string-limit", default_value_t = StringLimit::DEFAULT, value_name = "N")]
    string_limit: StringLimit,
    /// Most tasks traced at once, 1 to 4194304; further forks are counted
    /// as lost.
    #[arg(long, default_value_t = MaxTasks::DEFAULT, value_name = "N")]
    max_tasks: MaxTasks,
    /// Kernel ring buffer size in MiB, a power of two from 1 to 2048
    /// [default: 64, or 4 with --summary, whose ring carries process
    /// events only].
    #[arg(long, value_name = "MIB", value_parser = parse_ring_mib)]
    ring_mib: Option<RingBytes>,
    /// The preload library's ring in MiB, a power of two from 1 to 2048
    /// [default: 16]. Its memory is reserved in /dev/shm at start: lower
    /// it where /dev/shm is small (a container's is often 64 MiB).
    #[arg(long, value_name = "MIB", value_parser = parse_ring_mib)]
    preload_ring_mib: Option<RingBytes>,
    /// Exit with the command's status even when events were lost.
    #[arg(long)]
    allow_loss: bool,
    /// Fail (exit 121) if the command used the network at all: an internet
    /// socket, an IP address in a syscall, or a network event.
    #[arg(long, conflicts_with = "allow_connect")]
    deny_network: bool,
    /// Fail (exit 121) if the command sent to or connected to anything but
    /// these: IP addresses, CIDR blocks or host names it resolved
    /// (repeatable, or comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "HOST|CIDR", value_parser = parse_destination)]
    allow_connect: Vec<String>,
    #[command(flatten)]
    pub gate: crate::gate::GateArgs,
    /// Tamper with calls, as `strace --inject`:
    /// SET[:error=ERRNO|:retval=N][:signal=SIG][:delay_enter=D][:delay_exit=D][:when=EXPR],
    /// with probity's filters :path=GLOB, :fd=N and :host=NAME|CIDR
    /// (repeatable). SET may be a libc function instead: getaddrinfo
    /// (error=EAI_AGAIN, :host=NAME-GLOB) or fopen (error=ERRNO,
    /// :path=GLOB), answered by the preload library. Injected calls are
    /// marked in the trace.
    #[arg(long, value_name = "SPEC", value_parser = |s: &str| s.parse::<probity::inject::Inject>())]
    inject: Vec<probity::inject::Inject>,
    /// `strace --fault`: SET[:error=ERRNO][:when=EXPR], failing with ENOSYS
    /// unless ERRNO is given (repeatable).
    #[arg(long, value_name = "SPEC", value_parser = probity::inject::Inject::fault)]
    fault: Vec<probity::inject::Inject>,
    /// The command and its arguments. Options before it are probity's: put
    /// `--` first when the command starts with `-`. Taken as bytes, as
    /// the shell gave them: they need not be UTF-8.
    #[arg(
        required_unless_present = "attach",
        trailing_var_arg = true,
        value_name = "CMD",
        value_parser = clap::value_parser!(std::ffi::OsString)
    )]
    command: Vec<std::ffi::OsString>,
    /// Trace running processes instead of starting CMD, like `strace -p`
    /// (comma-separated or repeated): their threads, the children they
    /// have and every process they start from now on, with the eBPF
    /// tracer. Ends when they have all ended; Ctrl-C detaches and leaves
    /// them running. Needs root, or whatever `ptrace` would need.
    #[arg(
        short = 'p',
        long = "attach",
        value_delimiter = ',',
        value_name = "PID",
        conflicts_with_all = ["command", "inject", "fault"]
    )]
    attach: Vec<u32>,
}

/// `--ring-mib` and `--preload-ring-mib`: the kernel takes a power of two
/// for a BPF ring buffer, and the preload ring is one too.
fn parse_ring_mib(s: &str) -> Result<RingBytes, KnobError> {
    s.parse().map_err(|_| KnobError::RingMib).and_then(RingBytes::from_mib)
}

/// `--allow-connect`: what the gate understands, checked by the gate's own
/// parser.
fn parse_destination(s: &str) -> Result<String, String> {
    probity::Trace::check_allowed_destination(s).map(|()| s.to_owned())
}

impl RunArgs {
    /// Checks what the value parsers cannot: that `-o` and `--json` do not
    /// name one file (their lines would interleave). `/dev/null` may be
    /// named twice.
    pub fn check(&self) -> Result<(), String> {
        if self.summary && (!self.inject.is_empty() || !self.fault.is_empty()) {
            return Err("--inject and --fault cannot be used with --summary: the kernel's counts miss the calls \
                        probity answers; drop --summary to see them"
                .into());
        }
        let (Some(text), Some(json)) = (&self.output, &self.json) else {
            return Ok(());
        };
        if output::is_dev_null(text) && output::is_dev_null(json) {
            return Ok(());
        }
        let same = match (output::identity(text), output::identity(json)) {
            (Some(a), Some(b)) => a == b,
            _ => text == json,
        };
        if same {
            return Err(format!(
                "-o {} and --json {} name the same file, and the text and JSON traces would be mixed in it; \
                 give two different files",
                text.display(),
                json.display()
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TracerArg {
    /// The eBPF programs: execs, forks, exits, signals and every syscall
    /// (needs root, or CAP_BPF and CAP_PERFMON).
    Ebpf,
    /// The LD_PRELOAD library: libc calls with their arguments (works
    /// unprivileged; not in static or setuid programs).
    Preload,
    /// Both.
    All,
}

static STOP: AtomicBool = AtomicBool::new(false);
/// The first of SIGINT, SIGTERM and SIGHUP that came, or 0.
static INTERRUPT: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    let _ = INTERRUPT.compare_exchange(0, sig, Ordering::Relaxed, Ordering::Relaxed);
    STOP.store(true, Ordering::Relaxed);
}

/// Writes a line to stderr, ignoring failure: stderr may be a full disk,
/// `/dev/full` or a closed pipe, and then the exit status says it all.
pub fn say(msg: impl std::fmt::Display) {
    let _ = writeln!(io::stderr(), "probity: {msg}");
}

pub fn main(args: RunArgs) -> ExitCode {
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            let lib = e.downcast_ref::<probity::Error>();
            let code = match lib {
                // A policy file that cannot be read: nothing ran.
                None if e.downcast_ref::<probity::policy::PolicyError>().is_some() => 2,
                Some(probity::Error::NotFound { .. } | probity::Error::InterpreterNotFound { .. }) => 127,
                Some(probity::Error::NotExecutable { .. }) => 126,
                _ => EXIT_PROBITY,
            };
            // The error and each of its causes, which its message does not repeat.
            say(format_args!("{e:#}"));
            if let Some(hint) = lib.map(probity::Error::hint).filter(|h| !h.is_empty()) {
                say(format_args!("hint: {hint}"));
            }
            ExitCode::from(code)
        }
    }
}

fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let mut tracers = Vec::new();
    if args.tracers.is_empty() || args.tracers.iter().any(|t| matches!(t, TracerArg::All | TracerArg::Ebpf)) {
        tracers.push(TracerKind::Ebpf);
    }
    if args.tracers.is_empty() || args.tracers.iter().any(|t| matches!(t, TracerArg::All | TracerArg::Preload)) {
        tracers.push(TracerKind::Preload);
    }
    if !args.attach.is_empty() {
        if !tracers.contains(&TracerKind::Ebpf) {
            anyhow::bail!(
                "--attach needs the eBPF tracer: the preload library is loaded when a program starts, not into a \
                 running one; drop --tracers preload"
            );
        }
        if tracers.contains(&TracerKind::Preload) {
            say("attaching with the eBPF tracer only: the preload library cannot be loaded into running processes");
        }
        tracers = vec![TracerKind::Ebpf];
    } else if !tracers.contains(&TracerKind::Ebpf) {
        say("preload tracer only: libc calls of dynamically linked programs; syscalls, and anything a static or setuid program does, are not traced");
    }
    // `-o /dev/null` (keep only the JSON, say): skip formatting lines
    // nobody reads.
    let discard_text = args.output.as_deref().is_some_and(output::is_dev_null);
    let mut text: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(output::Background::new(output::create(p, "-o")?, "-o")?),
        None => Box::new(BufWriter::new(io::stderr())),
    };
    let mut json = match &args.json {
        Some(p) => Some(output::Background::new(output::create(p, "--json")?, "--json")?),
        None => None,
    };
    // The same file by a path `check` could not see through (a link made
    // since, say): refuse before anything runs.
    if let (Some(t), Some(j)) = (&args.output, &args.json) {
        if !discard_text && !output::is_dev_null(j) && output::identity(t) == output::identity(j) {
            anyhow::bail!("-o {} and --json {} are the same file; give two different files", t.display(), j.display());
        }
    }
    // With --summary the kernel counts syscalls itself, and the ring only
    // carries process events: a small one is quicker to create and free
    // (64 MiB took about 15 ms each way).
    let ring_bytes =
        args.ring_mib.unwrap_or(if args.summary { RingBytes::SUMMARY_DEFAULT } else { RingBytes::DEFAULT });
    let tracer = Tracer::new()
        .with_summary(args.summary)
        .with_string_limit(args.string_limit)
        .with_max_tasks(args.max_tasks)
        .with_ring_bytes(ring_bytes)
        .with_tracers(&tracers);
    let tracer = match args.preload_ring_mib {
        Some(ring_bytes) => tracer.with_preload_ring_bytes(ring_bytes.get() as usize),
        None => tracer,
    };
    let tracer = args.inject.iter().chain(&args.fault).cloned().fold(tracer, Tracer::with_inject);

    // Stop the tree and finish the trace on Ctrl-C or a termination request.
    let action = SigAction::new(SigHandler::Handler(on_signal), SaFlags::SA_RESTART, SigSet::empty());
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { sigaction(sig, &action) }.context("failed to install a signal handler")?;
    }

    // The policy is read before anything runs: a bad one is a usage error.
    let policy_gate = args.gate.load(args.deny_network, &args.allow_connect)?;

    let tracee = if args.attach.is_empty() {
        // Like strace, find the program first so the trace shows its one exec.
        let program = probity::resolve_program(&args.command[0])?;
        let mut cmd = std::process::Command::new(program);
        std::os::unix::process::CommandExt::arg0(&mut cmd, &args.command[0]);
        cmd.args(&args.command[1..]);
        tracer.spawn(cmd)?
    } else {
        let tracee = tracer.attach(&args.attach)?;
        // Like `strace -p`: the moment the trace begins, and how to end it.
        say(format_args!(
            "attached to process {}; Ctrl-C detaches and leaves {} running",
            args.attach.iter().map(u32::to_string).collect::<Vec<_>>().join(", "),
            if args.attach.len() == 1 { "it" } else { "them" }
        ));
        tracee
    };
    // A sink that failed is written no more; the command still runs to its
    // end, traced (stopping a build half way for a full disk would leave
    // worse behind), and probity exits 125.
    let mut text_err: Option<io::Error> = None;
    let mut json_err: Option<io::Error> = None;
    let mut counts: HashMap<String, SyscallCount> = HashMap::new();
    let summary = args.summary;
    // Nesting depth of each event so far (a libc call's syscalls sit under it).
    let mut depths: Vec<u32> = Vec::new();
    // The gate checks the whole trace, so it is kept.
    let gate = args.deny_network || !args.allow_connect.is_empty() || policy_gate.is_some();
    let mut kept: Vec<Event> = Vec::new();
    // One line of each output at a time, in buffers reused for every event.
    let mut line = String::new();
    let mut record: Vec<u8> = Vec::new();
    let outcome = tracee.wait_with(Some(&STOP), |e: Event| {
        if gate {
            kept.push(e.clone());
        }
        let depth = e.parent().and_then(|p| depths.get(p)).map_or(0, |d| d + 1);
        depths.push(depth);
        if summary {
            // Counts come from the kernel; process events are not printed.
        } else {
            if let EventKind::Syscall(s) = &e.kind {
                // Looked up by `&str` first: a key is allocated once a name.
                let c = match counts.get_mut(&*s.name) {
                    Some(c) => c,
                    None => counts.entry(s.name.to_string()).or_insert_with(|| SyscallCount {
                        name: s.name.to_string(),
                        calls: 0,
                        errors: 0,
                        total_ns: 0,
                    }),
                };
                c.calls += 1;
                c.errors += u64::from(s.failed());
                c.total_ns += s.duration_ns;
            }
            if discard_text || text_err.is_some() {
                // Nothing to write.
            } else {
                line.clear();
                probity::text::write_line(&mut line, &e, depth as usize);
                line.push('\n');
                if let Err(err) = text.write_all(line.as_bytes()) {
                    text_err = Some(err);
                }
            }
        }
        if let Some(j) = json.as_mut().filter(|_| !summary && json_err.is_none()) {
            record.clear();
            e.write_json(&mut record);
            record.push(b'\n');
            if let Err(err) = j.write_all(&record) {
                json_err = Some(err);
            }
        }
    })?;
    let mut outcome: Outcome = outcome;
    if !summary {
        let mut c: Vec<SyscallCount> = counts.into_values().collect();
        SyscallCount::sort_by_time(&mut c);
        outcome.syscalls = c;
    }
    let interrupt = INTERRUPT.load(Ordering::Relaxed);
    // A signal that came as the tree ended still cut the run short.
    outcome.interrupted |= interrupt != 0;
    if text_err.is_none() {
        let written = (|| {
            if summary {
                if !outcome.syscalls.is_empty() || outcome.libc_calls.is_empty() {
                    write!(text, "{}", probity::text::summary_table(&outcome.syscalls))?;
                }
                if !outcome.libc_calls.is_empty() {
                    write!(text, "{}", probity::text::libc_summary_table(&outcome.libc_calls))?;
                }
            }
            write!(text, "{}", probity::text::outcome_lines(&outcome))?;
            text.flush()
        })();
        text_err = written.err();
    }
    if let Some(mut j) = json.filter(|_| json_err.is_none()) {
        json_err = outcome.write_summary_line(&mut j, summary).and_then(|()| j.flush()).err();
    }
    let mut failed = false;
    for (err, sink) in [(text_err, args.output.as_deref()), (json_err, args.json.as_deref())] {
        if let Some(err) = err {
            failed = true;
            let what = sink.map_or("stderr".into(), |p| p.display().to_string());
            say(format_args!(
                "failed to write the trace to {what} ({err}); the command ran to its end ({}) but its trace is \
                 incomplete: free space or fix {what}, and run it again",
                outcome.status
            ));
        }
    }
    if failed {
        return Ok(ExitCode::from(EXIT_PROBITY));
    }
    if gate {
        let trace = probity::Trace { events: kept, outcome: outcome.clone() };
        // The policy's reports are written whichever gate fails.
        let policy_failed = match &policy_gate {
            Some(g) => g.finish(&args.gate, &trace)?,
            None => false,
        };
        // A gate never passes on the program's own records alone.
        let checked = if args.deny_network || !args.allow_connect.is_empty() {
            trace.check_network_gate((!args.deny_network).then_some(&args.allow_connect))
        } else {
            Ok(())
        };
        if let Err(v) = checked {
            say(format_args!("network gate failed: {v}"));
            return Ok(ExitCode::from(EXIT_GATE));
        }
        if policy_failed {
            say("policy gate failed");
            return Ok(ExitCode::from(EXIT_GATE));
        }
    }
    if let Some(a) = outcome.attach.as_ref().filter(|a| a.detached) {
        let name = Signal::try_from(interrupt).map_or("its time limit", Signal::as_str);
        say(format_args!(
            "detached on {name}: the {} attached process{} and their children run on, untraced",
            a.processes.len(),
            if a.processes.len() == 1 { "" } else { "es" }
        ));
    } else if interrupt != 0 {
        let name = Signal::try_from(interrupt).map_or("a signal", Signal::as_str);
        say(format_args!(
            "interrupted by {name}: the process tree was stopped and its trace is cut short (its root process {})",
            outcome.status
        ));
        return Ok(ExitCode::from(128 + interrupt as u8));
    }
    if outcome.losses.lost_events() > 0 && !args.allow_loss {
        let l = &outcome.losses;
        let fix = if l.task_map_full > 0 && l.task_map_full == l.lost_events() {
            "raise --max-tasks"
        } else {
            "raise --ring-mib (or --max-tasks when tasks went untraced)"
        };
        say(format_args!(
            "the trace is incomplete ({} events lost): {fix}, or pass --allow-loss to accept that (the command {})",
            l.lost_events(),
            outcome.status
        ));
        return Ok(ExitCode::from(EXIT_LOST));
    }
    Ok(ExitCode::from(outcome.status.shell_code().clamp(0, 255) as u8))
}
