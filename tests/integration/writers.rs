//! The fast writers of `probity run` (`Event::write_json`,
//! `text::write_line`) against the forms they replace, on real traces
//! with every kind of event and argument: serde's JSON, and the line put
//! together from `format_syscall` as the text trace always was.

use std::process::{Command, Stdio};

use probity::{Event, EventKind, Trace, Tracer};

use crate::support::{fixture, require_tracing};

/// Traces `cmd` with both tracers, so that libc calls and nesting show.
fn traced(cmd: Command) -> Trace {
    let shown = format!("{cmd:?}");
    require_tracing();
    let trace = Tracer::new().run(cmd).unwrap();
    assert_eq!(trace.outcome.losses.lost_events(), 0, "events lost: {:?}", trace.outcome.losses);
    assert_eq!(trace.outcome.status, probity::ExitStatus::Code(0), "{shown}");
    trace
}

/// Traces that hold syscalls with every kind of argument, failures,
/// execs, forks, exits, signals, libc calls and network events.
fn traces() -> Vec<Trace> {
    let dir = tempfile::tempdir().unwrap();
    let mut zoo = Command::new(fixture(probity_fixtures::DECODE_ZOO));
    zoo.arg(dir.path());
    let mut files = Command::new(fixture(probity_fixtures::LIBC_FILES));
    files.arg(dir.path());
    let mut shell = Command::new("/bin/sh");
    shell.args(["-c", "trap : USR1; cat /etc/hostname /nonexistent; ls / | wc -l; kill -USR1 $$; true"]);
    let mut dns = Command::new("unshare");
    dns.args(["-n", "sh", "-c"])
        .arg(format!("ip link set lo up && {} example.com", fixture(probity_fixtures::DNS_QUERY)));
    [zoo, files, shell, dns]
        .into_iter()
        .map(|mut cmd| {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            traced(cmd)
        })
        .collect()
}

#[test]
fn json_lines_are_the_bytes_serde_writes() {
    let mut kinds = std::collections::BTreeSet::new();
    let mut count = 0;
    for trace in traces() {
        let mut out = Vec::new();
        for e in &trace.events {
            out.clear();
            e.write_json(&mut out);
            let want = serde_json::to_vec(e).unwrap();
            assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(&want));
            kinds.insert(e.kind_name());
            count += 1;
        }
    }
    assert!(count > 200, "only {count} events");
    for kind in ["syscall", "libc", "exec", "fork", "exit", "signal", "net"] {
        assert!(kinds.contains(kind), "no {kind} event in the traces: {kinds:?}");
    }
}

/// A syscall line as it was put together before `write_line`: the
/// process, `format_syscall`'s line, and the duration.
fn old_syscall_line(e: &Event, depth: usize) -> Option<String> {
    let EventKind::Syscall(s) = &e.kind else { return None };
    let who = if e.pid == e.tid { format!("[{}] ", e.pid) } else { format!("[{}:{}] ", e.pid, e.tid) };
    let mut line = format!("{who}{}{}", "  ".repeat(depth), probity::text::syscall_line(s));
    if s.ret.is_some() {
        line += &format!(" <{}.{:06}>", s.duration_ns / 1_000_000_000, (s.duration_ns / 1000) % 1_000_000);
    }
    Some(line)
}

#[test]
fn text_lines_are_the_lines_probity_printed() {
    let mut syscalls = 0;
    let mut nested = 0;
    for trace in traces() {
        let mut out = String::new();
        for (i, e) in trace.events.iter().enumerate() {
            let line = probity::text::nested_line(&trace.events, i);
            out.clear();
            let depth = usize::from(e.parent().is_some());
            probity::text::write_line(&mut out, e, depth);
            assert_eq!(out, probity::text::line_at_depth(e, depth));
            if e.parent().is_none() {
                assert_eq!(out, line);
            } else {
                nested += 1;
            }
            if let Some(old) = old_syscall_line(e, depth) {
                assert_eq!(out, old);
                syscalls += 1;
            }
        }
    }
    assert!(syscalls > 200, "only {syscalls} syscalls");
    assert!(nested > 0, "no event nested under a libc call");
}
