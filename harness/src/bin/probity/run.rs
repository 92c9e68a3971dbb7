//! `probity run`: trace one command, stream its events out.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::{Args, ValueEnum};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use probity::{Event, EventKind, Outcome, SyscallCount, Tracer, TracerKind};

/// Exit status when events were lost.
const EXIT_LOST: u8 = 120;
/// Exit status when the network gate (`--deny-network`, `--allow-connect`)
/// failed.
const EXIT_GATE: u8 = 121;
/// Exit status when probity itself failed.
const EXIT_PROBITY: u8 = 125;
/// Default kernel ring size, MiB.
const RING_MIB: u32 = 64;
/// Default kernel ring size with `--summary`, MiB.
const SUMMARY_RING_MIB: u32 = 4;

#[derive(Args)]
pub struct RunArgs {
    /// Write the human-readable trace to FILE instead of stderr.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Write the trace as JSON Lines to FILE (schema: docs/json-schema.md).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Count calls, errors and time per syscall (like `strace -c`), and per
    /// libc function with the preload tracer, instead of printing each event.
    #[arg(short = 'c', long)]
    summary: bool,
    /// The tracers to use, comma-separated. Default: every tracer available.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    tracers: Vec<TracerArg>,
    /// Bytes of read/write buffers to show (like `strace -s`).
    #[arg(short = 's', long = "string-limit", default_value_t = 32, value_name = "N")]
    string_limit: u32,
    /// Most tasks traced at once; further forks are counted as lost.
    #[arg(long, default_value_t = 32768, value_name = "N")]
    max_tasks: u32,
    /// Kernel ring buffer size in MiB [default: 64, or 4 with --summary,
    /// whose ring carries process events only].
    #[arg(long, value_name = "MIB")]
    ring_mib: Option<u32>,
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
    #[arg(long, value_delimiter = ',', value_name = "HOST|CIDR")]
    allow_connect: Vec<String>,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "CMD")]
    command: Vec<String>,
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

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

pub fn main(args: RunArgs) -> ExitCode {
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            let code = match e.downcast_ref::<probity::Error>() {
                Some(probity::Error::NotFound { .. }) => 127,
                Some(probity::Error::NotExecutable { .. }) => 126,
                _ => EXIT_PROBITY,
            };
            eprintln!("probity: {e:#}");
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
    if !tracers.contains(&TracerKind::Ebpf) {
        eprintln!("probity: preload tracer only: libc calls of dynamically linked programs; syscalls, and anything a static or setuid program does, are not traced");
    }
    // `-o /dev/null` (keep only the JSON, say): skip formatting lines
    // nobody reads.
    let discard_text = args.output.as_deref() == Some(std::path::Path::new("/dev/null"));
    let mut text: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(BufWriter::new(
            File::create(p).with_context(|| format!("failed to create the trace file {}", p.display()))?,
        )),
        None => Box::new(BufWriter::new(io::stderr())),
    };
    let mut json = match &args.json {
        Some(p) => Some(BufWriter::new(
            File::create(p).with_context(|| format!("failed to create the JSON file {}", p.display()))?,
        )),
        None => None,
    };
    // With --summary the kernel counts syscalls itself, and the ring only
    // carries process events: a small one is quicker to create and free
    // (64 MiB took about 15 ms each way).
    let ring_mib = args.ring_mib.unwrap_or(if args.summary { SUMMARY_RING_MIB } else { RING_MIB });
    let tracer = Tracer::new()
        .with_summary(args.summary)
        .with_buffer_bytes(args.string_limit)
        .with_max_tasks(args.max_tasks)
        .with_ring_bytes(ring_mib.saturating_mul(1 << 20))
        .with_tracers(&tracers);
    // Like strace, find the program first so the trace shows its one exec.
    let program = probity::resolve_program(&args.command[0])?;
    let mut cmd = std::process::Command::new(program);
    std::os::unix::process::CommandExt::arg0(&mut cmd, &args.command[0]);
    cmd.args(&args.command[1..]);

    // Stop the tree and finish the trace on Ctrl-C or a termination request.
    let action = SigAction::new(SigHandler::Handler(on_signal), SaFlags::SA_RESTART, SigSet::empty());
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { sigaction(sig, &action) }.context("failed to install a signal handler")?;
    }

    let tracee = tracer.spawn(cmd)?;
    let mut write_err: Option<io::Error> = None;
    let mut counts: HashMap<String, SyscallCount> = HashMap::new();
    let summary = args.summary;
    // Nesting depth of each event so far (a libc call's syscalls sit under it).
    let mut depths: Vec<u32> = Vec::new();
    // The gate checks the whole trace, so it is kept.
    let gate = args.deny_network || !args.allow_connect.is_empty();
    let mut kept: Vec<Event> = Vec::new();
    let outcome = tracee.wait_with(Some(&STOP), |e: Event| {
        if gate {
            kept.push(e.clone());
        }
        let depth = e.parent().and_then(|p| depths.get(p)).map_or(0, |d| d + 1);
        depths.push(depth);
        if write_err.is_some() {
            return;
        }
        if summary {
            // Counts come from the kernel; process events are not printed.
        } else {
            if let EventKind::Syscall(s) = &e.kind {
                let c = counts.entry(s.name.to_string()).or_insert_with(|| SyscallCount {
                    name: s.name.to_string(),
                    calls: 0,
                    errors: 0,
                    total_ns: 0,
                });
                c.calls += 1;
                c.errors += u64::from(s.failed());
                c.total_ns += s.duration_ns;
            }
            if discard_text {
                // Nothing to write.
            } else if let Err(err) = writeln!(text, "{}", probity::render::line_at_depth(&e, depth as usize)) {
                write_err = Some(err);
            }
        }
        if let Some(j) = json.as_mut() {
            if !summary {
                if let Err(err) = serde_json::to_writer(&mut *j, &e).map_err(io::Error::from).and_then(|()| j.write_all(b"\n")) {
                    write_err = Some(err);
                }
            }
        }
    })?;
    let mut outcome: Outcome = outcome;
    if !summary {
        let mut c: Vec<SyscallCount> = counts.into_values().collect();
        SyscallCount::sort_by_time(&mut c);
        outcome.syscalls = c;
    }
    if let Some(err) = write_err {
        return Err(err).context("failed to write the trace");
    }
    if summary {
        if !outcome.syscalls.is_empty() || outcome.libc_calls.is_empty() {
            write!(text, "{}", probity::render::summary_table(&outcome.syscalls))?;
        }
        if !outcome.libc_calls.is_empty() {
            write!(text, "{}", probity::render::libc_summary_table(&outcome.libc_calls))?;
        }
    }
    write!(text, "{}", probity::render::outcome_lines(&outcome))?;
    text.flush().context("failed to write the trace")?;
    if let Some(mut j) = json {
        outcome.write_summary_line(&mut j, summary)?;
        j.flush().context("failed to write the JSON trace")?;
    }
    if gate {
        let trace = probity::Trace { events: kept, outcome: outcome.clone() };
        let checked =
            if args.deny_network { trace.check_no_network() } else { trace.check_network_only_to(&args.allow_connect) };
        if let Err(v) = checked {
            eprintln!("probity: network gate failed: {v}");
            return Ok(ExitCode::from(EXIT_GATE));
        }
    }
    if outcome.losses.lost_events() > 0 && !args.allow_loss {
        return Ok(ExitCode::from(EXIT_LOST));
    }
    Ok(ExitCode::from(outcome.status.shell_code().clamp(0, 255) as u8))
}
