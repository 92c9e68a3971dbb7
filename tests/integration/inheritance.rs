//! The traced command starts as it would untraced: the signal
//! dispositions and mask probity was started with, and the environment in
//! its order, with only probity's own variables added at the end.

use std::process::{Command, Output};

use crate::support::require_tracing;

/// The `--tracers` settings that start the command.
const TRACERS: [&str; 3] = ["ebpf", "preload", "all"];

/// Runs `cmd` under a Python parent that first ignores SIGHUP, SIGINT,
/// SIGPIPE and SIGTERM and blocks SIGUSR1 and SIGUSR2 (as `nohup`, a
/// shell's `trap '' HUP` or a supervisor would), then execs it.
fn under_a_parent_that_ignores_signals(cmd: &[&str]) -> Output {
    let script = "import os, signal, sys\n\
                  for s in (signal.SIGHUP, signal.SIGINT, signal.SIGPIPE, signal.SIGTERM):\n    \
                      signal.signal(s, signal.SIG_IGN)\n\
                  signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1, signal.SIGUSR2})\n\
                  os.execv(sys.argv[1], sys.argv[1:])\n";
    Command::new("python3").arg("-c").arg(script).args(cmd).output().expect("python3 runs")
}

/// The `SigIgn` and `SigBlk` lines of the command's own status.
fn signal_lines(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("SigIgn:") || l.starts_with("SigBlk:"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The signal set on the line starting with `key`.
fn mask(lines: &str, key: &str) -> u64 {
    let line = lines.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("no {key} in {lines}"));
    u64::from_str_radix(line[key.len()..].trim(), 16).unwrap()
}

#[test]
fn ignored_and_blocked_signals_reach_the_command_as_untraced() {
    require_tracing();
    let grep = ["/usr/bin/grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status"];
    let untraced = under_a_parent_that_ignores_signals(&grep);
    let expected = signal_lines(&untraced);
    // The parent really ignores and blocks them: SIGHUP, SIGINT, SIGPIPE
    // and SIGTERM are bits 0, 1, 12 and 14; SIGUSR1 and SIGUSR2 9 and 11.
    assert_eq!(mask(&expected, "SigIgn:") & 0x5003, 0x5003, "the untraced run: {expected}");
    assert_eq!(mask(&expected, "SigBlk:") & 0xa00, 0xa00, "the untraced run: {expected}");
    for tracers in TRACERS {
        let mut args = vec![env!("CARGO_BIN_EXE_probity"), "run", "--tracers", tracers, "-o", "/dev/null", "--"];
        args.extend(grep);
        let traced = under_a_parent_that_ignores_signals(&args);
        assert_eq!(traced.status.code(), Some(0), "{tracers}: {}", String::from_utf8_lossy(&traced.stderr));
        assert_eq!(signal_lines(&traced), expected, "--tracers {tracers}");
    }
}

#[test]
fn a_command_started_normally_gets_no_ignored_signal() {
    require_tracing();
    // probity itself handles SIGINT, SIGTERM and SIGHUP, and Rust ignores
    // SIGPIPE in probity: none of that may reach the command.
    let out = Command::new(env!("CARGO_BIN_EXE_probity"))
        .args(["run", "-o", "/dev/null", "--", "/usr/bin/grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let untraced = Command::new("/usr/bin/grep").args(["-E", "^Sig(Ign|Blk):", "/proc/self/status"]).output().unwrap();
    assert_eq!(signal_lines(&out), signal_lines(&untraced));
}

/// The command's environment, a `KEY=VALUE` line each, in order.
fn env_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

#[test]
fn the_environment_keeps_its_order_and_probity_only_appends() {
    require_tracing();
    // Deliberately unsorted, with a value that is not ASCII.
    let vars = ["ZED=1", "ALPHA=2", "MIDDLE=3", "PATH=/usr/bin:/bin", "BYTES=\u{e9}"];
    let untraced = Command::new("/usr/bin/env").arg("-i").args(vars).arg("/usr/bin/env").output().unwrap();
    let expected = env_lines(&untraced);
    assert_eq!(expected, vars, "env -i itself keeps the order");
    for tracers in TRACERS {
        let out = Command::new("/usr/bin/env")
            .arg("-i")
            .args(vars)
            .args([env!("CARGO_BIN_EXE_probity"), "run", "--tracers", tracers, "-o", "/dev/null", "--", "/usr/bin/env"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{tracers}: {}", String::from_utf8_lossy(&out.stderr));
        let got = env_lines(&out);
        assert_eq!(got[..vars.len()], expected[..], "--tracers {tracers}: the original variables in their order");
        let added: Vec<&str> = got[vars.len()..].iter().map(|l| l.split('=').next().unwrap()).collect();
        let want: &[&str] = if tracers == "ebpf" { &[] } else { &["LD_PRELOAD", "PROBITY_PRELOAD_RING"] };
        assert_eq!(added, want, "--tracers {tracers}: only probity's variables, appended");
    }
}

#[test]
fn an_existing_ld_preload_keeps_its_place() {
    require_tracing();
    let out = Command::new("/usr/bin/env")
        .args(["-i", "B=1", "LD_PRELOAD=", "A=2", "PATH=/usr/bin:/bin"])
        .args([env!("CARGO_BIN_EXE_probity"), "run", "--tracers", "preload", "-o", "/dev/null", "--", "/usr/bin/env"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let names: Vec<String> = env_lines(&out).iter().map(|l| l.split('=').next().unwrap().to_owned()).collect();
    assert_eq!(names, ["B", "LD_PRELOAD", "A", "PATH", "PROBITY_PRELOAD_RING"]);
}
