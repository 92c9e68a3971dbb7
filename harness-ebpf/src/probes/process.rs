//! Process lifecycle: forks (processes and threads), execs, exits and
//! signals, from the `sched` and `signal` tracepoints.
//!
//! These are classic tracepoints because their records carry pids and file
//! names directly; the raw ones only give `task_struct` pointers, which this
//! code could not read portably without CO-RE.

use aya_ebpf::{
    helpers::{bpf_ktime_get_ns, bpf_probe_read_kernel_str_bytes},
    macros::tracepoint,
    programs::TracePointContext,
    EbpfContext,
};
use probity_common::{
    EventHeader, EventKind, ExecEvent, ExitEvent, ForkEvent, SignalEvent, FORK_UNTRACKED,
    SIGNAL_GENERATED,
};

use crate::maps::{count_loss, current_ids, session_of, wake_flags, EVENTS, INFLIGHT, TASKS};

/// `sched:sched_process_fork`, in the parent's context:
/// ```text
/// field:__data_loc char[] parent_comm; offset:8;  size:4;
/// field:pid_t parent_pid;              offset:12; size:4;
/// field:__data_loc char[] child_comm;  offset:16; size:4;
/// field:pid_t child_pid;               offset:20; size:4;
/// ```
/// Fires for every new task, threads included (`child_pid` is a thread id).
#[tracepoint(category = "sched", name = "sched_process_fork")]
pub fn sched_process_fork(ctx: TracePointContext) -> u32 {
    let _ = try_fork(&ctx);
    0
}

fn try_fork(ctx: &TracePointContext) -> Result<(), i64> {
    let (pid, tid) = current_ids();
    let Some(session) = session_of(tid) else { return Ok(()) };
    // SAFETY: offset from the tracepoint format above.
    let child: i32 = unsafe { ctx.read_at(20)? };
    let child = child as u32;
    let mut flags = 0;
    if TASKS.insert(child, session, 0).is_err() {
        // The child and everything it starts will be missing: say so.
        flags |= FORK_UNTRACKED;
        count_loss(session, |l| l.task_map_full += 1);
    }
    let ev = ForkEvent {
        header: EventHeader::new(EventKind::Fork, session, now(), pid, tid),
        child_tid: child,
        flags,
    };
    output(session, &ev);
    Ok(())
}

/// `sched:sched_process_exec`, in the context of the task after the exec:
/// ```text
/// field:__data_loc char[] filename; offset:8;  size:4;
/// field:pid_t pid;                  offset:12; size:4;
/// field:pid_t old_pid;              offset:16; size:4;
/// ```
/// When a non-leader thread execs, it takes the process id as its thread
/// id (`old_pid` is its old one), and the old leader has already exited.
#[tracepoint(category = "sched", name = "sched_process_exec")]
pub fn sched_process_exec(ctx: TracePointContext) -> u32 {
    let _ = try_exec(&ctx);
    0
}

fn try_exec(ctx: &TracePointContext) -> Result<(), i64> {
    let (pid, tid) = current_ids();
    // SAFETY: offsets from the tracepoint format above.
    let old: i32 = unsafe { ctx.read_at(16)? };
    let old = old as u32;
    let session = match session_of(tid) {
        Some(s) => s,
        None => match session_of(old) {
            Some(s) => s,
            None => return Ok(()),
        },
    };
    if old != tid {
        // Carry the task's entries over to its new thread id, so its
        // `execve` record and its later syscalls are not lost.
        let _ = TASKS.insert(tid, session, 0);
        let _ = TASKS.remove(old);
        // SAFETY: the value is copied out before the map changes.
        if let Some(inflight) = unsafe { INFLIGHT.get(old).copied() } {
            let _ = INFLIGHT.insert(tid, inflight, 0);
            let _ = INFLIGHT.remove(old);
        }
    }
    let Some(mut entry) = EVENTS.reserve::<ExecEvent>(0) else {
        count_loss(session, |l| l.ring_full += 1);
        return Ok(());
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: `ev` points at a reserved, exclusively owned ring slot; every
    // field is written before submit.
    unsafe {
        (*ev).header = EventHeader::new(EventKind::Exec, session, now(), pid, tid);
        (*ev).old_tid = old;
        let loc: u32 = ctx.read_at(8).unwrap_or(0);
        let name = ctx.as_ptr().cast::<u8>().add((loc & 0xffff) as usize);
        let len = match bpf_probe_read_kernel_str_bytes(name, &mut (*ev).filename) {
            Ok(s) => s.len() as u32,
            Err(_) => 0,
        };
        (*ev).filename_len = len;
    }
    entry.submit(wake_flags());
    Ok(())
}

/// `sched:sched_process_exit`, in the exiting task's context:
/// ```text
/// field:char comm[16];   offset:8;  size:16;
/// field:pid_t pid;       offset:24; size:4;
/// field:int prio;        offset:28; size:4;
/// field:bool group_dead; offset:32; size:1;
/// ```
#[tracepoint(category = "sched", name = "sched_process_exit")]
pub fn sched_process_exit(ctx: TracePointContext) -> u32 {
    let _ = try_exit(&ctx);
    0
}

fn try_exit(ctx: &TracePointContext) -> Result<(), i64> {
    let (pid, tid) = current_ids();
    let Some(session) = session_of(tid) else { return Ok(()) };
    let _ = TASKS.remove(tid);
    // A task that exits inside a syscall (`exit_group`, a fatal signal)
    // leaves its entry behind otherwise.
    let _ = INFLIGHT.remove(tid);
    // SAFETY: offset from the tracepoint format above.
    let group_dead: u8 = unsafe { ctx.read_at(32)? };
    let ev = ExitEvent {
        header: EventHeader::new(EventKind::Exit, session, now(), pid, tid),
        group_dead: u32::from(group_dead != 0),
        _pad: 0,
    };
    output(session, &ev);
    Ok(())
}

/// `signal:signal_deliver`, in the receiving task's context, when a signal
/// is dequeued to be handled, ignored or take its default action:
/// ```text
/// field:int sig;                   offset:8;  size:4;
/// field:int errno;                 offset:12; size:4;
/// field:int code;                  offset:16; size:4;
/// field:unsigned long sa_handler;  offset:24; size:8;
/// field:unsigned long sa_flags;    offset:32; size:8;
/// ```
#[tracepoint(category = "signal", name = "signal_deliver")]
pub fn signal_deliver(ctx: TracePointContext) -> u32 {
    let _ = try_signal(&ctx);
    0
}

fn try_signal(ctx: &TracePointContext) -> Result<(), i64> {
    let (pid, tid) = current_ids();
    let Some(session) = session_of(tid) else { return Ok(()) };
    // SAFETY: offsets from the tracepoint format above.
    let ev = unsafe {
        SignalEvent {
            header: EventHeader::new(EventKind::Signal, session, now(), pid, tid),
            sig: ctx.read_at(8)?,
            errno: ctx.read_at(12)?,
            code: ctx.read_at(16)?,
            flags: 0,
            sa_handler: ctx.read_at(24)?,
            sa_flags: ctx.read_at(32)?,
        }
    };
    output(session, &ev);
    Ok(())
}

/// `signal:signal_generate`, in the sender's context (any process, or
/// none: the kernel itself), when a signal is sent to a task:
/// ```text
/// field:int sig;        offset:8;  size:4;
/// field:int errno;      offset:12; size:4;
/// field:int code;       offset:16; size:4;
/// field:char comm[16];  offset:20; size:16;
/// field:pid_t pid;      offset:36; size:4;
/// field:int group;      offset:40; size:4;
/// field:int result;     offset:44; size:4;
/// ```
/// Recorded when the target is traced: a fatal signal is turned into a
/// group-wide SIGKILL when it is sent, so `signal_deliver` alone cannot
/// tell which signal killed a process.
#[tracepoint(category = "signal", name = "signal_generate")]
pub fn signal_generate(ctx: TracePointContext) -> u32 {
    let _ = try_signal_generate(&ctx);
    0
}

fn try_signal_generate(ctx: &TracePointContext) -> Result<(), i64> {
    // SAFETY: offsets from the tracepoint format above.
    let target: i32 = unsafe { ctx.read_at(36)? };
    let target = target as u32;
    let Some(session) = session_of(target) else { return Ok(()) };
    // SAFETY: offsets from the tracepoint format above.
    let ev = unsafe {
        SignalEvent {
            header: EventHeader::new(EventKind::Signal, session, now(), target, target),
            sig: ctx.read_at(8)?,
            errno: ctx.read_at(12)?,
            code: ctx.read_at(16)?,
            flags: SIGNAL_GENERATED,
            sa_handler: u64::from(ctx.read_at::<i32>(44)? as u32),
            sa_flags: 0,
        }
    };
    output(session, &ev);
    Ok(())
}

/// Copies a fixed-size record into the ring, counting it if there is no room.
#[inline(always)]
fn output<T: 'static>(session: u32, ev: &T) {
    if EVENTS.output::<T>(ev, wake_flags()).is_err() {
        count_loss(session, |l| l.ring_full += 1);
    }
}

#[inline(always)]
fn now() -> u64 {
    // SAFETY: a helper with no preconditions.
    unsafe { bpf_ktime_get_ns() }
}
