//! `probity`: trace a command's whole process tree, print or save the trace,
//! and check a machine's readiness.
//!
//! Exit status of `probity run`: the command's own (128 + N when signal N
//! killed it), except, first match first:
//! - 2 for a usage error (nothing ran);
//! - 127 when the command, or the interpreter its `#!` line names, does not
//!   exist; 126 when it cannot be executed;
//! - 125 when probity itself failed (privileges, trace files it may not or
//!   could not write);
//! - 121 when the network gate failed (`--deny-network`, `--allow-connect`),
//!   the policy did in enforce mode, or `--fail-on-new` found something new;
//! - 128 + N when signal N (SIGINT, SIGTERM, SIGHUP) interrupted probity:
//!   the tree was stopped and the trace is cut short;
//! - 120 when events were lost (unless `--allow-loss`): the trace is incomplete.

mod daemon;
mod gate;
mod junit;
mod output;
mod report;
mod run;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "probity",
    version,
    about = "Prove what a program does to the system: trace every exec, fork, exit and syscall of its process tree."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a command traced and print its trace (to stderr by default).
    Run(run::RunArgs),
    /// Check that this machine and process can trace, and say what to fix.
    Doctor,
    /// Serve eBPF tracing to the members of a group, so they trace without
    /// root (run as root; see docs/daemon.md).
    Daemon(daemon::DaemonArgs),
    /// Record what each unit of a run used, for `probity run --baseline
    /// FILE --fail-on-new`.
    #[command(subcommand)]
    Baseline(gate::BaselineCommand),
    /// Add what each test used (hosts, programs, writes, violations) from
    /// a run's bom.json to nextest's junit.xml, as <properties>.
    JunitMerge(junit::JunitMergeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => {
            if let Err(msg) = args.check() {
                let mut cmd = Cli::command();
                // Usage lines then read `probity run`.
                cmd.build();
                let run = cmd.find_subcommand_mut("run").expect("the run subcommand exists");
                run.error(clap::error::ErrorKind::ArgumentConflict, msg).exit();
            }
            run::main(args)
        }
        Command::Doctor => doctor(),
        Command::Daemon(args) => daemon::main(args),
        Command::JunitMerge(args) => match junit::main(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                run::say(format_args!("{e:#}"));
                ExitCode::from(1)
            }
        },
        Command::Baseline(gate::BaselineCommand::Record { out, mut run }) => {
            run.gate.record_baseline = Some(out);
            run::main(run)
        }
    }
}

fn doctor() -> ExitCode {
    let checks = probity::doctor::diagnose();
    let mut ok = true;
    for c in &checks {
        println!("{} {:<13} {}", if c.ok { "ok  " } else { "FAIL" }, c.name, c.detail);
        if let Some(fix) = &c.fix {
            // A passing check may still say what to know (`privilege`).
            println!("     {:<13} {}: {fix}", "", if c.ok { "note" } else { "fix" });
        }
        ok &= c.ok;
    }
    if ok {
        println!("tracers available: ebpf, preload");
        ExitCode::SUCCESS
    } else {
        println!("eBPF tracing cannot work here; see the fixes above");
        println!("tracers available: preload (`probity run --tracers preload`: libc calls only)");
        ExitCode::FAILURE
    }
}
