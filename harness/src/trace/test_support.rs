//! Builders for the events and traces that the trace modules' tests (and
//! other modules' tests that read a trace) are written with.

use std::borrow::Cow;

use crate::event::{Arg, Event, EventKind, Exec, ExitStatus, Syscall};
use crate::trace::{Losses, Outcome, Trace, TracerKind};

/// A syscall event of task `pid`.`tid` at `ts`.
pub(crate) fn sys(ts: u64, pid: u32, tid: u32, name: &'static str, args: Vec<Arg>, ret: i64) -> Event {
    let errno = (ret < 0).then(|| Cow::Owned(crate::decode::errno_name((-ret) as i32).into_owned()));
    Event {
        ts_ns: ts,
        pid,
        tid,
        kind: EventKind::Syscall(Syscall {
            name: Cow::Borrowed(name),
            nr: 0,
            args,
            ret: Some(ret),
            errno,
            duration_ns: 1,
            parent: None,
            injected: false,
        }),
    }
}

/// A successful exec of `filename` by process `pid` at `ts`.
pub(crate) fn exec(ts: u64, pid: u32, filename: &str) -> Event {
    Event {
        ts_ns: ts,
        pid,
        tid: pid,
        kind: EventKind::Exec(Exec {
            filename: filename.into(),
            argv: vec![],
            argv_truncated: false,
            interpreter_argv: vec![],
            old_tid: None,
        }),
    }
}

pub(crate) fn path(p: &str) -> Arg {
    Arg::Path { path: p.into(), truncated: false }
}

pub(crate) fn flags(value: i32, text: &str) -> Arg {
    Arg::Flags { value: value as u64, text: text.into() }
}

pub(crate) fn trace(events: Vec<Event>, cwd: Option<&str>) -> Trace {
    let outcome = Outcome {
        root_pid: 10,
        status: ExitStatus::Code(0),
        tracers: vec![TracerKind::Ebpf],
        losses: Losses::default(),
        syscalls: vec![],
        interrupted: false,
        uncovered: vec![],
        cwd: cwd.map(str::to_owned),
        own_syscalls: 0,
        libc_calls: vec![],
        preload_waits: 0,
        resolution: crate::trace::Resolution::default(),
        daemon: None,
        libc_starts: None,
        attach: None,
    };
    Trace { events, outcome }
}
