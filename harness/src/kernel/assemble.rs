//! Turns kernel records into [`Event`]s.
//!
//! Most records map one to one. Some need state: an exec's argv as passed
//! arrives at its point of no return, before the exec, and the argv its
//! new image got after the `execve`; both are joined to the exec and its
//! `execve` record (a failed `execve`'s argv to that record alone);
//! a process's exit status is worked out from what it did (its
//! `exit_group` code, or a fatal signal), since the exit tracepoint does not
//! carry it; the SIGKILLs the kernel tears a dying process's threads down
//! with are not signal events, but the signal sent that killed it is; TCP
//! connections are numbered by socket ([`Connections`]), and remembered so
//! an accept or a socket still open at the end gets its addresses; and UDP
//! datagrams are derived from the syscalls that carry them ([`Datagrams`]).
//! A process that exec'd into more privilege than a non-root caller (see
//! [`super::privilege`]) ends at that exec: nothing of it after that is
//! decoded, whatever reaches the ring.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use foldhash::HashMap;

use probity_common::{
    ParseError, Record, SockOwner, CAPTURE_FAULT, CAPTURE_TRUNCATED, EXEC_ARGS_AT_EXEC, EXEC_ARGS_RAN,
    EXEC_ARGS_TRUNCATED, EXEC_PRIVILEGED, FORK_UNTRACKED, SIGNAL_GENERATED, SYSCALL_NO_RETURN,
};

use crate::decode::{self, CaptureData};
use crate::event::{Event, EventKind, Exec, Exit, ExitStatus, Fork, Signal, SignalAction};
use crate::net::{Connections, Datagrams};

/// Per-session decoding state.
#[derive(Default)]
pub(crate) struct Assembler {
    /// Exec events held back until their argv arrives, by thread id.
    pending_exec: HashMap<u32, Event>,
    /// `execve` syscall records held back likewise: the kernel side writes
    /// the argv record just after the syscall's.
    pending_execve: HashMap<u32, Event>,
    /// The path and argv a successful exec was passed, read at its point
    /// of no return, before its other records, by thread id (moved to the
    /// new one when a non-leader thread execs).
    passed: HashMap<u32, ExecArgs>,
    /// What each process did that decides its exit status, by pid.
    ending: HashMap<u32, Ending>,
    /// Statuses known from elsewhere (the root's `waitpid`).
    known: HashMap<u32, ExitStatus>,
    /// The process each thread id belongs to, as seen so far.
    process_of: HashMap<u32, u32>,
    /// The (pid, tid) last put in `process_of`.
    last_ids: (u32, u32),
    /// TCP connections, numbered by socket.
    tcp: Connections,
    /// UDP datagrams from syscalls.
    datagrams: Datagrams,
    /// Processes that exec'd into more privilege than the caller, by pid,
    /// with the time of that exec: none of their later records is decoded.
    privileged: HashMap<u32, u64>,
    /// Those execs, in arrival order: time, pid, program.
    privileged_execs: Vec<(u64, u32, OsString)>,
}

/// What an exec's argv record said.
#[derive(Default, Clone)]
struct ExecArgs {
    /// `None` when the record has no path: unreadable, or read after a
    /// successful exec, when the exec event's file name stands for it.
    path: Option<OsString>,
    argv: Vec<OsString>,
    truncated: bool,
}

impl ExecArgs {
    fn parse(h: &probity_common::ExecArgsHeader, data: &[u8]) -> ExecArgs {
        let mut strings = data.split(|&b| b == 0).map(|s| OsStr::from_bytes(s).to_owned());
        let path = if h.nstrings > 0 { strings.next() } else { None };
        let argv: Vec<OsString> = strings.take(h.nstrings.saturating_sub(1) as usize).collect();
        let path = path.filter(|_| h.flags & EXEC_ARGS_RAN == 0);
        ExecArgs { path, argv, truncated: h.flags & EXEC_ARGS_TRUNCATED != 0 }
    }
}

/// The signal last sent to a process and not yet handled.
#[derive(Clone, Copy)]
struct Sent {
    sig: i32,
    code: i32,
}

#[derive(Default, Clone, Copy)]
struct Ending {
    /// The code of the first `exit_group`, or the last `exit`.
    code: Option<i32>,
    /// The last signal sent to the process and not yet handled: the one
    /// the kernel turns into a group SIGKILL when it is fatal.
    pending: Option<Sent>,
    /// A signal whose default action killed the process.
    fatal_signal: Option<i32>,
    /// `exit_group` came first: later SIGKILLs are the group exit itself.
    group_exit: bool,
    /// The signal that killed the process, delivered as a group SIGKILL,
    /// with that SIGKILL's time, pid and tid: its event is written when
    /// the process ends, not at once, since a thread's exec tears the
    /// other threads down the same way and then nothing killed the
    /// process (its exec record forgets this).
    killed_by: Option<(u64, u32, u32, Sent)>,
}

impl Assembler {
    /// Decodes one record, appending what it yields to `out`.
    pub(crate) fn push(&mut self, record: Record<'_>, out: &mut Vec<Event>) -> Result<(), ParseError> {
        if !self.privileged.is_empty() && self.hides(&record) {
            return Ok(());
        }
        if let Some((pid, tid)) = ids(&record) {
            // Consecutive records are mostly one thread's: skip the map then.
            if self.last_ids != (pid, tid) {
                self.last_ids = (pid, tid);
                self.process_of.insert(tid, pid);
            }
        }
        match record {
            Record::Syscall(ev, captures) => {
                let mut caps: [Option<CaptureData<'_>>; probity_common::MAX_CAPTURES] = Default::default();
                for (slot, c) in caps.iter_mut().zip(captures) {
                    let c = c?;
                    *slot = Some(CaptureData {
                        arg: c.capture.arg,
                        kind: probity_common::CaptureKind::from_u8(c.capture.kind)
                            .unwrap_or(probity_common::CaptureKind::None),
                        truncated: c.capture.flags & CAPTURE_TRUNCATED != 0,
                        fault: c.capture.flags & CAPTURE_FAULT != 0,
                        data: c.data,
                    });
                }
                let caps: Vec<CaptureData<'_>> = caps.into_iter().flatten().collect();
                let no_return = ev.flags & SYSCALL_NO_RETURN != 0;
                let call = decode::decode_syscall(ev.nr, &ev.args, ev.ret, no_return, ev.duration_ns, &caps);
                let h = ev.header;
                if !matches!(&*call.name, "execve" | "execveat") {
                    // No argv record is coming for what this thread held.
                    self.flush(h.tid, out);
                }
                match &*call.name {
                    "exit_group" => {
                        let e = self.ending.entry(h.pid).or_default();
                        if !e.group_exit && e.fatal_signal.is_none() {
                            e.code = Some(ev.args[0] as i32);
                            e.group_exit = true;
                        }
                    }
                    "exit" => {
                        let e = self.ending.entry(h.pid).or_default();
                        if !e.group_exit {
                            e.code = Some(ev.args[0] as i32);
                        }
                    }
                    "execve" | "execveat" => {
                        if let Some(e) = self.pending_execve.remove(&h.tid) {
                            out.push(e);
                        }
                        let ev = Event { ts_ns: h.ts_ns, pid: h.pid, tid: h.tid, kind: EventKind::Syscall(call) };
                        self.pending_execve.insert(h.tid, ev);
                        return Ok(());
                    }
                    _ => {}
                }
                let ev = Event { ts_ns: h.ts_ns, pid: h.pid, tid: h.tid, kind: EventKind::Syscall(call) };
                let datagram = self.datagrams.on_syscall(&ev);
                out.push(ev);
                out.extend(datagram);
            }
            Record::Net(n) => {
                let ev = self.tcp.on_record(&n);
                out.push(ev);
            }
            Record::ExecArgs(h, data) => {
                let args = ExecArgs::parse(h, data);
                let tid = h.header.tid;
                if h.flags & EXEC_ARGS_AT_EXEC != 0 {
                    // Before the exec's own records: held for them.
                    self.passed.insert(tid, args);
                    return Ok(());
                }
                // After a successful exec, what the new image got; the
                // argv as passed came at the point of no return (unless
                // the kernel lacks that tracepoint).
                let (mut passed, ran) = match self.passed.remove(&tid) {
                    Some(p) if h.flags & EXEC_ARGS_RAN != 0 => (p, Some(args.argv)),
                    _ => (args, None),
                };
                if let Some(mut exec) = self.pending_exec.remove(&tid) {
                    if let EventKind::Exec(x) = &mut exec.kind {
                        x.argv.clone_from(&passed.argv);
                        x.argv_truncated = passed.truncated;
                        x.interpreter_argv = ran.filter(|r| *r != passed.argv).unwrap_or_default();
                        if passed.path.is_none() {
                            passed.path = Some(x.filename.clone());
                        }
                    }
                    out.push(exec);
                }
                if let Some(mut call) = self.pending_execve.remove(&tid) {
                    if let EventKind::Syscall(s) = &mut call.kind {
                        attach_exec_args(s, passed);
                    }
                    out.push(call);
                }
            }
            Record::Exec(e) if e.flags & EXEC_PRIVILEGED != 0 => {
                // The kernel took the task out of the session at this exec:
                // no argv record follows, and nothing else of it.
                let h = e.header;
                let filename = OsStr::from_bytes(e.filename).to_owned();
                self.flush(h.tid, out);
                self.passed.remove(&e.old_tid);
                self.ending.remove(&h.pid);
                self.privileged.insert(h.pid, h.ts_ns);
                self.privileged_execs.push((h.ts_ns, h.pid, filename.clone()));
                out.push(Event {
                    ts_ns: h.ts_ns,
                    pid: h.pid,
                    tid: h.tid,
                    kind: EventKind::Exec(Exec {
                        filename,
                        argv: Vec::new(),
                        argv_truncated: false,
                        interpreter_argv: Vec::new(),
                        old_tid: (e.old_tid != h.tid).then_some(e.old_tid),
                    }),
                });
            }
            Record::Exec(e) => {
                let h = e.header;
                // A new image starts with a clean slate for its exit.
                self.ending.remove(&h.pid);
                self.datagrams.on_exec(h.pid);
                if e.old_tid != h.tid {
                    // A non-leader thread exec'd and took the process id.
                    if let Some(p) = self.passed.remove(&e.old_tid) {
                        self.passed.insert(h.tid, p);
                    }
                }
                // Held until the argv record, which the `execve` exit writes next.
                self.pending_exec.insert(
                    h.tid,
                    Event {
                        ts_ns: h.ts_ns,
                        pid: h.pid,
                        tid: h.tid,
                        kind: EventKind::Exec(Exec {
                            filename: OsStr::from_bytes(e.filename).to_owned(),
                            argv: Vec::new(),
                            argv_truncated: false,
                            interpreter_argv: Vec::new(),
                            old_tid: (e.old_tid != h.tid).then_some(e.old_tid),
                        }),
                    },
                );
            }
            Record::Fork(f) => {
                let h = f.header;
                // A new task of the tree that reuses a privileged process's id.
                self.privileged.remove(&f.child_tid);
                self.flush(h.tid, out);
                self.datagrams.on_fork(h.pid, f.child_tid);
                out.push(Event {
                    ts_ns: h.ts_ns,
                    pid: h.pid,
                    tid: h.tid,
                    kind: EventKind::Fork(Fork { child_tid: f.child_tid, untracked: f.flags & FORK_UNTRACKED != 0 }),
                });
            }
            Record::Exit(x) => {
                let h = x.header;
                let process_exited = x.group_dead != 0;
                let status = if process_exited { self.status_of(h.pid) } else { None };
                if process_exited {
                    if let Some(e) = self.ending.remove(&h.pid) {
                        out.extend(e.killed_by.map(killing_signal));
                    }
                }
                self.flush(h.tid, out);
                out.push(Event {
                    ts_ns: h.ts_ns,
                    pid: h.pid,
                    tid: h.tid,
                    kind: EventKind::Exit(Exit { process_exited, status }),
                });
            }
            Record::Signal(s) if s.flags & SIGNAL_GENERATED != 0 => {
                // Only delivered ones matter (result 0); the target's
                // process is the one its thread id belongs to.
                if s.sa_handler == 0 {
                    let tid = s.header.tid;
                    let pid = self.process_of.get(&tid).copied().unwrap_or(tid);
                    self.ending.entry(pid).or_default().pending = Some(Sent { sig: s.sig, code: s.code });
                }
            }
            Record::Signal(s) if s.sig == libc::SIGKILL => {
                // The kernel tearing the thread down: its group is exiting
                // (`exit_group`, a fatal signal, another thread's exec),
                // and every thread dequeues a SIGKILL that nobody sent
                // (`zap_other_threads`, or `complete_signal` for a fatal
                // signal). Not a signal event: strace shows none either.
                // When a signal was sent to the process, that one killed
                // it: a fatal SIGTERM is delivered this way, and so is a
                // SIGKILL that was sent.
                let h = s.header;
                let e = self.ending.entry(h.pid).or_default();
                if !e.group_exit && e.fatal_signal.is_none() {
                    let sent = e.pending.take();
                    e.fatal_signal = Some(sent.map_or(libc::SIGKILL, |p| p.sig));
                    e.killed_by = sent.map(|p| (h.ts_ns, h.pid, h.tid, p));
                }
            }
            Record::Signal(s) => {
                let h = s.header;
                let action = match s.sa_handler {
                    0 => SignalAction::Default,
                    1 => SignalAction::Ignore,
                    _ => SignalAction::Handler,
                };
                let e = self.ending.entry(h.pid).or_default();
                if e.pending.is_some_and(|p| p.sig == s.sig) {
                    e.pending = None;
                }
                if action == SignalAction::Default
                    && kills_by_default(s.sig)
                    && !e.group_exit
                    && e.fatal_signal.is_none()
                {
                    // Dequeued as itself: a core-dumping signal, or one
                    // that was blocked when it was sent.
                    e.fatal_signal = Some(s.sig);
                }
                out.push(Event {
                    ts_ns: h.ts_ns,
                    pid: h.pid,
                    tid: h.tid,
                    kind: EventKind::Signal(Signal {
                        signo: s.sig,
                        name: decode::signal_name(s.sig),
                        code: s.code,
                        action,
                    }),
                });
            }
        }
        Ok(())
    }

    /// Closes the sockets still open when the session ends (`sockets`,
    /// from the kernel's socket map), with their counters at `ts_ns`.
    pub(crate) fn open_at_end(&mut self, sockets: &[(u64, SockOwner)], ts_ns: u64, out: &mut Vec<Event>) {
        for (sk, owner) in sockets {
            if self.privileged.contains_key(&owner.pid) {
                // Its counters are about a process the caller may not see.
                continue;
            }
            out.extend(self.tcp.open_at_end(*sk, owner, ts_ns));
        }
    }

    /// Emits what a thread held back, when its next record shows that no
    /// argv record is coming.
    fn flush(&mut self, tid: u32, out: &mut Vec<Event>) {
        // Called for nearly every record, and the maps are nearly always
        // empty: no lookup then.
        if !self.pending_exec.is_empty() {
            if let Some(e) = self.pending_exec.remove(&tid) {
                out.push(e);
            }
        }
        if !self.pending_execve.is_empty() {
            if let Some(e) = self.pending_execve.remove(&tid) {
                out.push(e);
            }
        }
        if !self.passed.is_empty() {
            // The exec it was read for left no other record.
            self.passed.remove(&tid);
        }
    }

    /// Whether `record` belongs to a process that left the session for
    /// more privilege (including a socket it owns): it is not decoded.
    fn hides(&self, record: &Record<'_>) -> bool {
        let pid = match record {
            Record::Syscall(e, _) => e.header.pid,
            Record::ExecArgs(h, _) => h.header.pid,
            Record::Exec(e) => e.header.pid,
            Record::Fork(e) => e.header.pid,
            Record::Exit(e) => e.header.pid,
            Record::Signal(e) => e.header.pid,
            Record::Net(e) => e.header.pid,
        };
        self.privileged.contains_key(&pid)
    }

    /// The execs into more privilege than the caller so far: time, pid
    /// and program, in the order they came.
    pub(crate) fn privileged_execs(&self) -> &[(u64, u32, OsString)] {
        &self.privileged_execs
    }

    /// Records a status known from outside the trace (the root's `waitpid`).
    pub(crate) fn set_known_status(&mut self, pid: u32, status: ExitStatus) {
        self.known.insert(pid, status);
    }

    /// Called once no more records will come; fills in known statuses.
    pub(crate) fn finish(&mut self, out: &mut Vec<Event>) {
        out.extend(self.pending_exec.drain().map(|(_, e)| e));
        out.extend(self.pending_execve.drain().map(|(_, e)| e));
        self.passed.clear();
        // Processes killed whose end the trace did not see.
        out.extend(self.ending.values_mut().filter_map(|e| e.killed_by.take()).map(killing_signal));
        if self.known.is_empty() {
            return;
        }
        for ev in out.iter_mut() {
            if let EventKind::Exit(x) = &mut ev.kind {
                if x.process_exited {
                    if let Some(s) = self.known.get(&ev.pid) {
                        x.status = Some(*s);
                    }
                }
            }
        }
    }

    fn status_of(&self, pid: u32) -> Option<ExitStatus> {
        if let Some(s) = self.known.get(&pid) {
            return Some(*s);
        }
        let e = self.ending.get(&pid)?;
        match (e.fatal_signal, e.code) {
            (Some(sig), _) if !e.group_exit => Some(ExitStatus::Signal(sig)),
            (_, Some(code)) => Some(ExitStatus::Code(code & 0xff)),
            (Some(sig), None) => Some(ExitStatus::Signal(sig)),
            (None, None) => None,
        }
    }
}

/// The event of a signal that killed a process as a group SIGKILL, at
/// that SIGKILL's time and thread.
fn killing_signal((ts_ns, pid, tid, sent): (u64, u32, u32, Sent)) -> Event {
    Event {
        ts_ns,
        pid,
        tid,
        kind: EventKind::Signal(Signal {
            signo: sent.sig,
            name: decode::signal_name(sent.sig),
            code: sent.code,
            action: SignalAction::Default,
        }),
    }
}

/// Shows an exec's path and argv, as passed, in its syscall record.
fn attach_exec_args(call: &mut crate::event::Syscall, x: ExecArgs) {
    let (path_idx, argv_idx) = if call.name == "execveat" { (1, 2) } else { (0, 1) };
    if let Some(slot) = call.args.get_mut(path_idx) {
        *slot = crate::event::Arg::Path { path: x.path.unwrap_or_default(), truncated: false };
    }
    if let Some(slot) = call.args.get_mut(argv_idx) {
        *slot = crate::event::Arg::Strings { items: x.argv, truncated: x.truncated };
    }
}

/// The process and thread a record is about, when its header says.
fn ids(record: &Record<'_>) -> Option<(u32, u32)> {
    let h = match record {
        // Charged to the socket's owner, which may not be running.
        Record::Net(_) => return None,
        Record::Syscall(e, _) => e.header,
        Record::ExecArgs(h, _) => h.header,
        Record::Exec(e) => e.header,
        Record::Fork(e) => e.header,
        Record::Exit(e) => e.header,
        Record::Signal(e) if e.flags & SIGNAL_GENERATED != 0 => return None,
        Record::Signal(e) => e.header,
    };
    Some((h.pid, h.tid))
}

/// Whether a signal's default action ends the process (term or core).
fn kills_by_default(sig: i32) -> bool {
    use nix::sys::signal::Signal::*;
    match nix::sys::signal::Signal::try_from(sig) {
        Ok(SIGCHLD | SIGCONT | SIGURG | SIGWINCH | SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU) => false,
        Ok(_) => true,
        // Real-time signals terminate by default.
        Err(_) => sig > 0,
    }
}

#[cfg(test)]
mod tests {
    use probity_common::{
        as_bytes, EventHeader, EventKind as K, ExitEvent, NetEvent, SignalEvent, SyscallEvent, SIGNAL_GENERATED,
    };

    use super::*;

    /// Parses record bytes as the consumer does (from an 8-aligned buffer).
    fn push(a: &mut Assembler, bytes: &[u8], out: &mut Vec<Event>) {
        let mut buf = vec![0u64; bytes.len().div_ceil(8)];
        // SAFETY: the u64 buffer has room for `bytes`.
        let dst = unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u8>(), bytes.len()) };
        dst.copy_from_slice(bytes);
        a.push(Record::parse(dst).unwrap(), out).unwrap();
    }

    fn syscall(pid: u32, tid: u32, nr: u32, arg0: u64, no_return: bool) -> SyscallEvent {
        SyscallEvent {
            header: EventHeader::new(K::Syscall, 1, 10, pid, tid),
            nr,
            flags: if no_return { SYSCALL_NO_RETURN } else { 0 },
            args: [arg0, 0, 0, 0, 0, 0],
            ret: 0,
            duration_ns: 1,
            ncaptures: 0,
            _pad: 0,
        }
    }

    fn exit(pid: u32, tid: u32, group_dead: bool) -> ExitEvent {
        ExitEvent { header: EventHeader::new(K::Exit, 1, 20, pid, tid), group_dead: u32::from(group_dead), _pad: 0 }
    }

    fn signal(pid: u32, tid: u32, sig: i32, handler: u64, flags: u32) -> SignalEvent {
        SignalEvent {
            header: EventHeader::new(K::Signal, 1, 15, pid, tid),
            sig,
            errno: 0,
            code: 0,
            flags,
            sa_handler: handler,
            sa_flags: 0,
        }
    }

    fn status(out: &[Event]) -> Option<ExitStatus> {
        out.iter().rev().find_map(|e| match &e.kind {
            EventKind::Exit(x) if x.process_exited => x.status,
            _ => None,
        })
    }

    const EXIT: u32 = syscalls::Sysno::exit as u32;
    const EXIT_GROUP: u32 = syscalls::Sysno::exit_group as u32;

    #[test]
    fn exit_group_code_wins_over_a_thread_exit() {
        let (mut a, mut out) = (Assembler::default(), Vec::new());
        push(&mut a, as_bytes(&syscall(5, 6, EXIT, 0, true)), &mut out);
        push(&mut a, as_bytes(&exit(5, 6, false)), &mut out);
        push(&mut a, as_bytes(&syscall(5, 5, EXIT_GROUP, 7, true)), &mut out);
        // The group exit SIGKILLs remaining threads: not a killing signal.
        push(&mut a, as_bytes(&signal(5, 8, 9, 0, 0)), &mut out);
        push(&mut a, as_bytes(&exit(5, 5, true)), &mut out);
        assert_eq!(status(&out), Some(ExitStatus::Code(7)));
    }

    #[test]
    fn a_fatal_signal_is_named_by_what_was_sent() {
        let (mut a, mut out) = (Assembler::default(), Vec::new());
        push(&mut a, as_bytes(&syscall(5, 5, 39, 0, false)), &mut out);
        push(&mut a, as_bytes(&signal(5, 5, libc::SIGTERM, 0, SIGNAL_GENERATED)), &mut out);
        push(&mut a, as_bytes(&signal(5, 5, libc::SIGKILL, 0, 0)), &mut out);
        push(&mut a, as_bytes(&exit(5, 5, true)), &mut out);
        assert_eq!(status(&out), Some(ExitStatus::Signal(libc::SIGTERM)));
        // Generated signals are not events of their own.
        assert_eq!(out.iter().filter(|e| matches!(e.kind, EventKind::Signal(_))).count(), 1);
    }

    fn signals(out: &[Event]) -> Vec<(u32, i32)> {
        out.iter()
            .filter_map(|e| match &e.kind {
                EventKind::Signal(s) => Some((e.tid, s.signo)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_group_exit_tears_threads_down_without_signal_events() {
        let (mut a, mut out) = (Assembler::default(), Vec::new());
        push(&mut a, as_bytes(&syscall(5, 5, EXIT_GROUP, 0, true)), &mut out);
        push(&mut a, as_bytes(&signal(5, 6, libc::SIGKILL, 0, 0)), &mut out);
        push(&mut a, as_bytes(&exit(5, 6, false)), &mut out);
        push(&mut a, as_bytes(&exit(5, 5, true)), &mut out);
        assert_eq!(signals(&out), []);
        assert_eq!(status(&out), Some(ExitStatus::Code(0)));
    }

    #[test]
    fn a_fatal_signal_is_shown_once_as_itself() {
        let (mut a, mut out) = (Assembler::default(), Vec::new());
        push(&mut a, as_bytes(&syscall(5, 5, 39, 0, false)), &mut out);
        push(&mut a, as_bytes(&syscall(5, 6, 39, 0, false)), &mut out);
        push(&mut a, as_bytes(&signal(5, 5, libc::SIGHUP, 0, SIGNAL_GENERATED)), &mut out);
        push(&mut a, as_bytes(&signal(5, 6, libc::SIGKILL, 0, 0)), &mut out);
        push(&mut a, as_bytes(&signal(5, 5, libc::SIGKILL, 0, 0)), &mut out);
        push(&mut a, as_bytes(&exit(5, 6, false)), &mut out);
        assert_eq!(signals(&out), []);
        push(&mut a, as_bytes(&exit(5, 5, true)), &mut out);
        assert_eq!(signals(&out), [(6, libc::SIGHUP)]);
        assert_eq!(status(&out), Some(ExitStatus::Signal(libc::SIGHUP)));
    }

    #[test]
    fn another_threads_exec_kills_no_one() {
        let (mut a, mut out) = (Assembler::default(), Vec::new());
        push(&mut a, as_bytes(&syscall(5, 5, 39, 0, false)), &mut out);
        // A handled signal, still pending when thread 6 execs.
        push(&mut a, as_bytes(&signal(5, 5, libc::SIGUSR1, 0, SIGNAL_GENERATED)), &mut out);
        push(&mut a, as_bytes(&signal(5, 5, libc::SIGKILL, 0, 0)), &mut out);
        push(&mut a, as_bytes(&exit(5, 5, false)), &mut out);
        push(&mut a, &exec(5, 0), &mut out);
        push(&mut a, as_bytes(&exit(5, 5, true)), &mut out);
        assert_eq!(signals(&out), []);
    }

    /// An argv record: `path` (or none) then `argv`, with `flags`.
    fn exec_args(tid: u32, flags: u32, path: Option<&str>, argv: &[&str]) -> Vec<u8> {
        let mut data = Vec::new();
        for s in path.iter().chain(argv) {
            data.extend_from_slice(s.as_bytes());
            data.push(0);
        }
        let h = probity_common::ExecArgsHeader {
            header: EventHeader::new(K::ExecArgs, 1, 10, tid, tid),
            nstrings: (argv.len() + usize::from(path.is_some())) as u32,
            flags,
            len: data.len() as u32,
            _pad: 0,
        };
        let mut bytes = as_bytes(&h).to_vec();
        bytes.extend_from_slice(&data);
        bytes
    }

    #[test]
    fn a_script_shows_its_argv_as_passed_and_what_ran_apart() {
        let (mut a, mut out) = (Assembler::default(), Vec::new());
        push(&mut a, &exec_args(5, EXEC_ARGS_AT_EXEC, Some("./s.sh"), &["./s.sh", "a"]), &mut out);
        push(&mut a, &exec(5, 0), &mut out);
        push(&mut a, as_bytes(&syscall(5, 5, syscalls::Sysno::execve as u32, 0, false)), &mut out);
        push(&mut a, &exec_args(5, EXEC_ARGS_RAN, Some(""), &["/bin/sh", "./s.sh", "a"]), &mut out);
        assert_eq!(out.len(), 2);
        let EventKind::Exec(x) = &out[0].kind else { panic!("{:?}", out[0]) };
        assert_eq!(x.argv, ["./s.sh", "a"]);
        assert_eq!(x.interpreter_argv, ["/bin/sh", "./s.sh", "a"]);
        let EventKind::Syscall(call) = &out[1].kind else { panic!("{:?}", out[1]) };
        assert_eq!(call.args[0].to_string(), "\"./s.sh\"");
        assert_eq!(call.args[1].to_string(), "[\"./s.sh\", \"a\"]");
    }

    #[test]
    fn a_program_that_ran_itself_has_no_interpreter_argv() {
        let (mut a, mut out) = (Assembler::default(), Vec::new());
        push(&mut a, &exec_args(5, EXEC_ARGS_AT_EXEC, Some("/bin/ls"), &["ls"]), &mut out);
        push(&mut a, &exec(5, 0), &mut out);
        push(&mut a, as_bytes(&syscall(5, 5, syscalls::Sysno::execve as u32, 0, false)), &mut out);
        push(&mut a, &exec_args(5, EXEC_ARGS_RAN, Some(""), &["ls"]), &mut out);
        let EventKind::Exec(x) = &out[0].kind else { panic!("{:?}", out[0]) };
        assert_eq!(x.argv, ["ls"]);
        assert!(x.interpreter_argv.is_empty());
    }

    #[test]
    fn a_handled_signal_does_not_name_a_later_kill() {
        let (mut a, mut out) = (Assembler::default(), Vec::new());
        push(&mut a, as_bytes(&signal(5, 5, libc::SIGUSR1, 0, SIGNAL_GENERATED)), &mut out);
        push(&mut a, as_bytes(&signal(5, 5, libc::SIGUSR1, 0x4000, 0)), &mut out);
        push(&mut a, as_bytes(&signal(5, 5, libc::SIGKILL, 0, 0)), &mut out);
        push(&mut a, as_bytes(&exit(5, 5, true)), &mut out);
        assert_eq!(status(&out), Some(ExitStatus::Signal(libc::SIGKILL)));
    }

    #[test]
    fn core_dumping_signals_are_delivered_as_themselves() {
        let (mut a, mut out) = (Assembler::default(), Vec::new());
        push(&mut a, as_bytes(&signal(5, 5, libc::SIGSEGV, 0, 0)), &mut out);
        push(&mut a, as_bytes(&exit(5, 5, true)), &mut out);
        assert_eq!(status(&out), Some(ExitStatus::Signal(libc::SIGSEGV)));
    }

    fn exec(pid: u32, flags: u32) -> Vec<u8> {
        let mut ev = probity_common::ExecEvent {
            header: EventHeader::new(K::Exec, 1, 12, pid, pid),
            old_tid: pid,
            filename_len: 4,
            flags,
            _pad: 0,
            filename: [0; probity_common::EXEC_FILENAME_LEN],
        };
        ev.filename[..4].copy_from_slice(b"/bin");
        as_bytes(&ev).to_vec()
    }

    #[test]
    fn nothing_of_a_privileged_process_is_decoded_after_its_exec() {
        let (mut a, mut out) = (Assembler::default(), Vec::new());
        push(&mut a, &exec(5, EXEC_PRIVILEGED), &mut out);
        // Whatever still reaches the ring for it is dropped.
        push(&mut a, as_bytes(&syscall(5, 5, 0, 3, false)), &mut out);
        push(&mut a, as_bytes(&exit(5, 5, true)), &mut out);
        assert_eq!(out.len(), 1);
        assert!(matches!(&out[0].kind, EventKind::Exec(x) if x.filename == "/bin" && x.argv.is_empty()));
        assert_eq!(a.privileged_execs(), [(12, 5, OsString::from("/bin"))]);
        // A later task of the tree that reuses the id is traced again.
        let fork = probity_common::ForkEvent { header: EventHeader::new(K::Fork, 1, 30, 4, 4), child_tid: 5, flags: 0 };
        push(&mut a, as_bytes(&fork), &mut out);
        push(&mut a, as_bytes(&syscall(5, 5, 0, 3, false)), &mut out);
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn a_privileged_processs_sockets_are_not_closed_at_the_end() {
        let (mut a, mut out) = (Assembler::default(), Vec::new());
        let connect = NetEvent {
            header: EventHeader::new(K::Net, 1, 11, 5, 5),
            op: probity_common::NetOp::Connect as u32,
            family: libc::AF_INET as u16,
            protocol: 6,
            sport: 4000,
            dport: 80,
            old_state: 0,
            new_state: 0,
            _pad: 0,
            sk: 0xfeed,
            saddr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            daddr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            bytes_sent: 0,
            bytes_received: 0,
            retransmits: 0,
            flags: 0,
        };
        push(&mut a, as_bytes(&connect), &mut out);
        push(&mut a, &exec(5, EXEC_PRIVILEGED), &mut out);
        let owner = SockOwner { session: 1, pid: 5, tid: 5, retransmits: 0, bytes_sent: 7, bytes_received: 9 };
        let before = out.len();
        a.open_at_end(&[(0xfeed, owner)], 40, &mut out);
        assert_eq!(out.len(), before, "the counters of a privileged process's socket were shown");
        // Another process's open socket still is.
        let mut other = Assembler::default();
        push(&mut other, as_bytes(&connect), &mut Vec::new());
        let mut end = Vec::new();
        other.open_at_end(&[(0xfeed, owner)], 40, &mut end);
        assert_eq!(end.len(), 1);
    }

    #[test]
    fn an_ordinary_exec_waits_for_its_argv() {
        let (mut a, mut out) = (Assembler::default(), Vec::new());
        push(&mut a, &exec(5, 0), &mut out);
        assert!(out.is_empty());
        assert!(a.privileged_execs().is_empty());
    }

    #[test]
    fn the_parents_view_of_the_root_wins() {
        let (mut a, mut out) = (Assembler::default(), Vec::new());
        a.set_known_status(5, ExitStatus::Code(3));
        push(&mut a, as_bytes(&exit(5, 5, true)), &mut out);
        assert_eq!(status(&out), Some(ExitStatus::Code(3)));
    }
}
