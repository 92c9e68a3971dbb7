//! Human-readable renderings: strace-like event lines and the `-c` table.

use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;

use crate::event::{Arg, Event, EventKind, Net, NetOp, Protocol, SignalAction};
use crate::trace::{Outcome, SyscallCount, Trace};

/// One event as a line, strace-like, with its process and duration:
/// `[1234] openat(AT_FDCWD, "/etc/hostname", O_RDONLY|O_CLOEXEC) = 3 <0.000012>`.
/// Threads other than the main one show as `[pid:tid]`.
pub fn event_line(e: &Event) -> String {
    let mut s = String::new();
    write_line_with(&mut s, e, 0, &|_| None);
    s
}

/// [`event_line`], with the path of descriptor arguments after them, as
/// `strace -y` shows them: `fsync(3</tmp/x/db.tmp>) = 0`. `fd_path` gives
/// the path of the descriptor that is argument `i`, when known.
pub(crate) fn event_line_with(e: &Event, fd_path: &dyn Fn(usize) -> Option<String>) -> String {
    let mut s = String::new();
    write_line_with(&mut s, e, 0, fd_path);
    s
}

/// Appends [`line_at_depth`]`(e, depth)` to `out`, without a newline:
/// for writing many lines through one buffer, with no allocation for
/// most events.
///
/// ```
/// let e = probity::Event {
///     ts_ns: 0,
///     pid: 7,
///     tid: 8,
///     kind: probity::EventKind::Syscall(probity::Syscall {
///         name: "close".into(),
///         nr: 3,
///         args: vec![probity::Arg::Fd(3)],
///         ret: Some(0),
///         errno: None,
///         duration_ns: 2000,
///         parent: Some(0),
///         injected: false,
///     }),
/// };
/// let mut out = String::new();
/// probity::text::write_line(&mut out, &e, 1);
/// assert_eq!(out, "[7:8]   close(3) = 0 <0.000002>");
/// ```
pub fn write_line(out: &mut String, e: &Event, depth: usize) {
    write_line_with(out, e, depth, &|_| None);
}

/// The line of `e`, indented for `depth` enclosing libc calls, with
/// descriptor paths from `fd_path`.
fn write_line_with(s: &mut String, e: &Event, depth: usize, fd_path: &dyn Fn(usize) -> Option<String>) {
    let mut digits = itoa::Buffer::new();
    s.push('[');
    s.push_str(digits.format(e.pid));
    if e.pid != e.tid {
        s.push(':');
        s.push_str(digits.format(e.tid));
    }
    s.push_str("] ");
    for _ in 0..depth {
        s.push_str("  ");
    }
    match &e.kind {
        EventKind::Syscall(c) => {
            s.push_str(&c.name);
            s.push('(');
            args_text(s, &c.args, fd_path);
            s.push_str(") = ");
            crate::decode::write_result(s, c);
            if c.ret.is_some() {
                duration(s, c.duration_ns);
            }
        }
        EventKind::Exec(x) => {
            let argv: Vec<String> =
                x.argv.iter().map(|a| format!("\"{}\"", crate::decode::escape_bytes(a.as_bytes()))).collect();
            let _ = write!(
                s,
                "+++ exec \"{}\" [{}{}]",
                crate::decode::escape_bytes(x.filename.as_bytes()),
                argv.join(", "),
                if x.argv_truncated { ", ..." } else { "" }
            );
            if !x.interpreter_argv.is_empty() {
                // What the kernel ran for a script: not the program's argv.
                let ran: Vec<String> = x
                    .interpreter_argv
                    .iter()
                    .map(|a| format!("\"{}\"", crate::decode::escape_bytes(a.as_bytes())))
                    .collect();
                let _ = write!(s, " interpreter [{}]", ran.join(", "));
            }
            s.push_str(" +++");
        }
        EventKind::Fork(f) => {
            let _ = write!(
                s,
                "+++ new task {}{} +++",
                f.child_tid,
                if f.untracked { " (NOT TRACED: task map full)" } else { "" }
            );
        }
        EventKind::Exit(x) => match (x.process_exited, x.status) {
            (true, Some(st)) => {
                let _ = write!(s, "+++ {st} +++");
            }
            (true, None) => s.push_str("+++ exited +++"),
            (false, _) => s.push_str("+++ thread exited +++"),
        },
        EventKind::Libc(c) => {
            s.push_str("libc ");
            s.push_str(&c.function);
            s.push('(');
            args_text(s, &c.args, fd_path);
            s.push(')');
            match (&c.ret, &c.errno) {
                (Some(r), Some(errno)) => {
                    let _ = write!(s, " = {r} {errno}");
                }
                (Some(r), None) => {
                    let _ = write!(s, " = {r}");
                }
                (None, _) => s.push_str(" = ?"),
            }
            if c.injected {
                s.push_str(" (injected)");
            }
            if c.ret.is_some() {
                duration(s, c.duration_ns);
            }
        }
        EventKind::Signal(sig) => {
            let action = match sig.action {
                SignalAction::Default => "default action",
                SignalAction::Ignore => "ignored",
                SignalAction::Handler => "handler",
            };
            let _ = write!(
                s,
                "--- {} {{si_signo={}, si_code={}}} ({action}) ---",
                sig.name,
                sig.name,
                si_code_name(sig.signo, sig.code)
            );
        }
        EventKind::Net(n) => s.push_str(&net_text(n, &mut |a| a.to_string())),
    }
}

/// A call's duration as strace's `-T` shows it: ` <0.000012>`, seconds
/// with six decimals (microseconds, rounded down).
fn duration(s: &mut String, ns: u64) {
    let mut digits = itoa::Buffer::new();
    s.push_str(" <");
    s.push_str(digits.format(ns / 1_000_000_000));
    s.push('.');
    let micros = digits.format((ns / 1000) % 1_000_000);
    for _ in micros.len()..6 {
        s.push('0');
    }
    s.push_str(micros);
    s.push('>');
}

/// Arguments as strace shows them, each descriptor `fd_path` knows
/// followed by its path in angle brackets.
fn args_text(s: &mut String, args: &[Arg], fd_path: &dyn Fn(usize) -> Option<String>) {
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        match a {
            // The most common arguments, without the formatting machinery.
            Arg::Int(v) => s.push_str(itoa::Buffer::new().format(*v)),
            Arg::Fd(fd) if *fd != libc::AT_FDCWD => s.push_str(itoa::Buffer::new().format(*fd)),
            Arg::Flags { text, .. } => s.push_str(text),
            _ => {
                let _ = write!(s, "{a}");
            }
        }
        if let (Arg::Fd(_), Some(path)) = (a, fd_path(i)) {
            let _ = write!(s, "<{path}>");
        }
    }
}

/// A signal's `si_code` as strace names it (`SI_USER`, `SI_TKILL`,
/// `CLD_EXITED`), or its number when it has no name.
fn si_code_name(signo: i32, code: i32) -> std::borrow::Cow<'static, str> {
    // <https://github.com/torvalds/linux/blob/v6.18/include/uapi/asm-generic/siginfo.h>
    let name = match code {
        0 => Some("SI_USER"),
        0x80 => Some("SI_KERNEL"),
        -1 => Some("SI_QUEUE"),
        -2 => Some("SI_TIMER"),
        -3 => Some("SI_MESGQ"),
        -4 => Some("SI_ASYNCIO"),
        -5 => Some("SI_SIGIO"),
        -6 => Some("SI_TKILL"),
        -7 => Some("SI_DETHREAD"),
        -60 => Some("SI_ASYNCNL"),
        1..=6 if signo == libc::SIGCHLD => {
            ["CLD_EXITED", "CLD_KILLED", "CLD_DUMPED", "CLD_TRAPPED", "CLD_STOPPED", "CLD_CONTINUED"]
                .get(code as usize - 1)
                .copied()
        }
        1..=2 if signo == libc::SIGSEGV => ["SEGV_MAPERR", "SEGV_ACCERR"].get(code as usize - 1).copied(),
        1..=3 if signo == libc::SIGBUS => ["BUS_ADRALN", "BUS_ADRERR", "BUS_OBJERR"].get(code as usize - 1).copied(),
        _ => None,
    };
    name.map_or_else(|| code.to_string().into(), Into::into)
}

/// A network event as text, with `addr` showing each address:
/// `net tcp close #1 127.0.0.1:36958 -> 127.0.0.1:8080 (localhost) sent=10 received=0 retransmits=0`.
/// The local address comes first (`*` while unknown), then the peer.
pub(crate) fn net_text(n: &Net, addr: &mut dyn FnMut(std::net::SocketAddr) -> String) -> String {
    let proto = match n.protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    };
    let mut s = format!("net {proto} {}", n.op.name());
    if let Some(c) = n.conn {
        let _ = write!(s, " #{c}");
    }
    let local = n.local.map_or_else(|| "*".to_owned(), &mut *addr);
    match n.peer {
        Some(p) => {
            let _ = write!(s, " {local} -> {}", addr(p));
        }
        None if n.op == NetOp::Listen => {
            let _ = write!(s, " {local}");
        }
        None => {
            let _ = write!(s, " {local} -> *");
        }
    }
    if let Some(h) = &n.host {
        let _ = write!(s, " ({h})");
    }
    match (n.old_state, n.state) {
        (Some(old), Some(new)) => {
            let _ = write!(s, " {old} => {new}");
        }
        (None, Some(st)) => {
            let _ = write!(s, " in {st}");
        }
        _ => {}
    }
    if let (Some(tx), Some(rx)) = (n.bytes_sent, n.bytes_received) {
        let _ = write!(s, " sent={tx} received={rx}");
    }
    if let Some(r) = n.retransmits {
        let _ = write!(s, " retransmits={r}");
    }
    if let Some(len) = n.len {
        let _ = write!(s, " len={len}");
    }
    if let Some(d) = &n.dns {
        let what = if d.response { "answer" } else { "query" };
        let _ = write!(
            s,
            " dns {what} {} \"{}{}\"",
            d.qtype,
            crate::decode::escape_bytes(d.name.as_bytes()),
            if d.truncated { "..." } else { "" }
        );
        if !d.addrs.is_empty() {
            let addrs: Vec<String> = d.addrs.iter().map(ToString::to_string).collect();
            let _ = write!(s, " [{}]", addrs.join(", "));
        }
    }
    if n.open_at_end {
        s.push_str(" (still open when the trace ended)");
    }
    s
}

/// Event `i` of a merged trace as a line, indented two spaces for each
/// libc call it was made in, so a call's syscalls sit under it.
pub fn nested_line(events: &[Event], i: usize) -> String {
    line_at_depth(&events[i], crate::merge::depth(events, i))
}

/// An event line indented for `depth` enclosing libc calls.
pub fn line_at_depth(e: &Event, depth: usize) -> String {
    let mut s = String::new();
    write_line(&mut s, e, depth);
    s
}

impl std::fmt::Display for Trace {
    /// The whole trace as `probity run` prints it: a line per event (a
    /// libc call's syscalls indented under it), then the lines that say
    /// how the run ended and what was lost. For reading while debugging a
    /// test; [`Snapshot`](crate::Snapshot) is the form that stays the
    /// same from run to run.
    ///
    /// ```no_run
    /// let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// eprintln!("{trace}");
    /// # Ok::<(), probity::Error>(())
    /// ```
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for i in 0..self.events.len() {
            writeln!(f, "{}", nested_line(&self.events, i))?;
        }
        f.write_str(&outcome_lines(&self.outcome))
    }
}

/// The closing lines of a text trace: how it ended and what was lost.
pub fn outcome_lines(o: &Outcome) -> String {
    let mut s = String::new();
    let tracers: Vec<String> = o.tracers.iter().map(|t| format!("{t:?}").to_lowercase()).collect();
    let _ = writeln!(s, "probity: root process {} {}; tracers: {}", o.root_pid, o.status, tracers.join(", "));
    if let Some(a) = &o.attach {
        let pids: Vec<String> = a.processes.iter().map(|p| p.pid.to_string()).collect();
        let _ = writeln!(
            s,
            "probity: attached mid-flight to {} process{} ({}): what they did before is not in the trace{}",
            pids.len(),
            if pids.len() == 1 { "" } else { "es" },
            pids.join(", "),
            if a.detached { "; probity detached and they run on" } else { "" }
        );
    }
    if o.tracers.contains(&crate::trace::TracerKind::Ebpf) && crate::kernel::privilege::excludes_privileged() {
        let _ = writeln!(
            s,
            "probity: not running as root (uid {}): processes with more privilege than that user (setuid, setgid, file capabilities) are left out of the trace at their exec",
            nix::unistd::getuid()
        );
    }
    let l = &o.losses;
    if l.lost_events() > 0 {
        let _ = writeln!(
            s,
            "probity: WARNING: {} events lost (ring buffer full: {}, syscalls in flight: {}, untraced tasks: {}, undecodable: {}, untraced sockets: {}); the trace is incomplete",
            l.lost_events(),
            l.ring_full,
            l.inflight_full,
            l.task_map_full,
            l.undecodable,
            l.sock_map_full
        );
    } else {
        let _ = writeln!(s, "probity: no events lost");
    }
    // Saturating: both counts are read from the ring, which the traced
    // program can write.
    let libc_lost = l.preload_ring_full.saturating_add(l.preload_skipped);
    if libc_lost > 0 {
        let _ = writeln!(
            s,
            "probity: WARNING: {} libc calls lost (preload ring full: {}, made inside probity's recording: {})",
            libc_lost, l.preload_ring_full, l.preload_skipped
        );
    }
    if l.preload_invalid > 0 {
        let _ = writeln!(
            s,
            "probity: WARNING: {} libc records were invalid (forged, corrupt, or from outside the traced tree) and were left out",
            l.preload_invalid
        );
    }
    if o.own_syscalls > 0 {
        let _ = writeln!(
            s,
            "probity: {} syscalls of probity's preload library (loading it, mapping its ring, waiting for room in it) left out",
            o.own_syscalls
        );
    }
    if o.preload_waits > 0 {
        let _ = writeln!(
            s,
            "probity: {} libc calls waited for room in the preload ring (probity drained it more slowly than they came)",
            o.preload_waits
        );
    }
    for u in &o.uncovered {
        let _ = match u.tracer {
            crate::trace::TracerKind::Ebpf => {
                writeln!(s, "probity: process {} ({}) is not traced: {}", u.pid, u.program, u.reason)
            }
            _ => writeln!(s, "probity: process {} ({}) had no libc layer: {}", u.pid, u.program, u.reason),
        };
    }
    if l.capture_faults > 0 {
        let _ = writeln!(s, "probity: {} arguments could not be read from the process's memory", l.capture_faults);
    }
    if o.interrupted && o.attach.is_none() {
        let _ = writeln!(s, "probity: interrupted: the process tree was stopped");
    }
    s
}

/// A `strace -c` style table.
pub fn summary_table(counts: &[SyscallCount]) -> String {
    counts_table(counts, "syscall")
}

/// The same table for libc calls ([`crate::Outcome::libc_calls`]), with a
/// `function` column.
pub fn libc_summary_table(counts: &[SyscallCount]) -> String {
    counts_table(counts, "function")
}

fn counts_table(counts: &[SyscallCount], what: &str) -> String {
    let total_ns: u64 = counts.iter().map(|c| c.total_ns).sum();
    let mut s = String::new();
    let _ = writeln!(s, "% time     seconds  usecs/call     calls    errors {what}");
    let _ = writeln!(s, "------ ----------- ----------- --------- --------- ----------------");
    let (mut calls, mut errors) = (0, 0);
    for c in counts {
        calls += c.calls;
        errors += c.errors;
        let pct = if total_ns > 0 { 100.0 * c.total_ns as f64 / total_ns as f64 } else { 0.0 };
        let _ = writeln!(
            s,
            "{:6.2} {:11.6} {:11} {:9} {:>9} {}",
            pct,
            c.total_ns as f64 / 1e9,
            c.total_ns / c.calls.max(1) / 1000,
            c.calls,
            if c.errors > 0 { c.errors.to_string() } else { String::new() },
            c.name
        );
    }
    let _ = writeln!(s, "------ ----------- ----------- --------- --------- ----------------");
    let _ = writeln!(
        s,
        "100.00 {:11.6} {:11} {:9} {:>9} total",
        total_ns as f64 / 1e9,
        total_ns / calls.max(1) / 1000,
        calls,
        if errors > 0 { errors.to_string() } else { String::new() }
    );
    s
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::event::Syscall;

    fn syscall(name: &'static str, args: Vec<Arg>, ret: Option<i64>, errno: Option<&'static str>, ns: u64) -> Event {
        Event {
            ts_ns: 1,
            pid: 10,
            tid: 11,
            kind: EventKind::Syscall(Syscall {
                name: name.into(),
                nr: 0,
                args,
                ret,
                errno: errno.map(Into::into),
                duration_ns: ns,
                parent: None,
                injected: false,
            }),
        }
    }

    proptest! {
        /// The line is `format_syscall`'s, after the process and the
        /// indentation, with the duration as `format!` pads it.
        #[test]
        fn a_syscall_line_is_its_strace_form_and_duration(
            ret in proptest::option::of(any::<i64>()),
            failed in any::<bool>(),
            ns in any::<u64>(),
            depth in 0..4usize,
            ints in proptest::collection::vec(any::<i64>(), 0..3),
            fd in any::<i32>(),
            mmap in any::<bool>(),
        ) {
            let mut args: Vec<Arg> = ints.into_iter().map(Arg::Int).collect();
            args.push(Arg::Fd(fd));
            args.push(Arg::Fd(libc::AT_FDCWD));
            args.push(Arg::Flags { value: 1, text: "O_WRONLY".into() });
            args.push(Arg::Path { path: "/tmp/\"x\"".into(), truncated: true });
            let name = if mmap { "mmap" } else { "openat" };
            let e = syscall(name, args, ret, failed.then_some("ENOENT"), ns);
            let mut fast = String::new();
            write_line(&mut fast, &e, depth);
            let mut want = format!("[10:11] {}{}", "  ".repeat(depth), crate::decode::format_syscall(e.as_syscall().unwrap()));
            if ret.is_some() {
                want += &format!(" <{}.{:06}>", ns / 1_000_000_000, (ns / 1000) % 1_000_000);
            }
            prop_assert_eq!(fast, want);
        }
    }

    fn event(pid: u32, tid: u32, kind: EventKind) -> Event {
        Event { ts_ns: 1, pid, tid, kind }
    }

    /// Every kind of event but syscalls (whose lines the property above
    /// checks), against the text written out by hand.
    #[test]
    fn each_kind_of_event_has_its_line() {
        use crate::event::{Exec, Exit, ExitStatus, Fork, LibcCall, Signal, SignalAction};
        let cases = [
            (
                event(
                    10,
                    10,
                    EventKind::Exec(Exec {
                        filename: "/bin/sh".into(),
                        argv: vec!["sh".into(), "-c".into(), "echo \"hi\"\n".into()],
                        argv_truncated: false,
                        interpreter_argv: vec![],
                        old_tid: None,
                    }),
                ),
                r#"[10] +++ exec "/bin/sh" ["sh", "-c", "echo \"hi\"\n"] +++"#,
            ),
            (
                event(
                    10,
                    10,
                    EventKind::Exec(Exec {
                        filename: "/tmp/s.py".into(),
                        argv: vec!["./s.py".into()],
                        argv_truncated: true,
                        interpreter_argv: vec!["/usr/bin/python3".into(), "./s.py".into()],
                        old_tid: None,
                    }),
                ),
                r#"[10] +++ exec "/tmp/s.py" ["./s.py", ...] interpreter ["/usr/bin/python3", "./s.py"] +++"#,
            ),
            (event(10, 11, EventKind::Fork(Fork { child_tid: 12, untracked: false })), "[10:11] +++ new task 12 +++"),
            (
                event(10, 10, EventKind::Fork(Fork { child_tid: 12, untracked: true })),
                "[10] +++ new task 12 (NOT TRACED: task map full) +++",
            ),
            (
                event(10, 10, EventKind::Exit(Exit { process_exited: true, status: Some(ExitStatus::Code(3)) })),
                "[10] +++ exited with 3 +++",
            ),
            (
                event(10, 10, EventKind::Exit(Exit { process_exited: true, status: Some(ExitStatus::Signal(9)) })),
                "[10] +++ killed by SIGKILL +++",
            ),
            (event(10, 10, EventKind::Exit(Exit { process_exited: true, status: None })), "[10] +++ exited +++"),
            (
                event(10, 11, EventKind::Exit(Exit { process_exited: false, status: None })),
                "[10:11] +++ thread exited +++",
            ),
            (
                event(
                    10,
                    10,
                    EventKind::Libc(Box::new(LibcCall {
                        function: "fopen".into(),
                        args: vec![
                            Arg::Path { path: "/etc/x".into(), truncated: false },
                            Arg::Path { path: "r".into(), truncated: false },
                        ],
                        ret: Some(Arg::Int(0)),
                        errno: Some("ENOENT".into()),
                        duration_ns: 1_500,
                        parent: None,
                        injected: false,
                    })),
                ),
                r#"[10] libc fopen("/etc/x", "r") = 0 ENOENT <0.000001>"#,
            ),
            (
                event(
                    10,
                    10,
                    EventKind::Libc(Box::new(LibcCall {
                        function: "abort".into(),
                        args: vec![],
                        ret: None,
                        errno: None,
                        duration_ns: 0,
                        parent: None,
                        injected: false,
                    })),
                ),
                "[10] libc abort() = ?",
            ),
            (
                event(
                    10,
                    10,
                    EventKind::Signal(Signal {
                        signo: 15,
                        name: "SIGTERM".into(),
                        code: 0,
                        action: SignalAction::Handler,
                    }),
                ),
                "[10] --- SIGTERM {si_signo=SIGTERM, si_code=SI_USER} (handler) ---",
            ),
        ];
        for (e, want) in cases {
            let mut out = String::new();
            write_line(&mut out, &e, 0);
            assert_eq!(out, want, "{e:?}");
        }
    }

    #[test]
    fn lines_are_appended_to_what_the_buffer_holds() {
        let e = syscall("getppid", vec![], Some(1), None, 999);
        let mut out = String::from("x\n");
        write_line(&mut out, &e, 0);
        assert_eq!(out, "x\n[10:11] getppid() = 1 <0.000000>");
        assert_eq!(line_at_depth(&e, 2), "[10:11]     getppid() = 1 <0.000000>");
    }
}
