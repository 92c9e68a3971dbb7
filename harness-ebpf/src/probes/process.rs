//! Process lifecycle: forks (processes and threads), execs, exits and
//! signals, from the `sched` and `signal` tracepoints.
//!
//! These are classic tracepoints because their records carry pids and file
//! names directly; the raw ones only give `task_struct` pointers, which this
//! code could not read portably without CO-RE.

use aya_ebpf::{
    helpers::{bpf_get_current_task, bpf_ktime_get_ns, bpf_probe_read_kernel, bpf_probe_read_kernel_str_bytes},
    macros::{raw_tracepoint, tracepoint},
    programs::{RawTracePointContext, TracePointContext},
    EbpfContext,
};
use probity_common::{
    EventHeader, EventKind, ExecEvent, ExitEvent, ForkEvent, SignalEvent, EXEC_PRIVILEGED, FORK_UNTRACKED,
    SESSION_CHECK_PRIVILEGE, SIGNAL_GENERATED,
};

use crate::maps::{count_loss, current_ids, session_of, wake_flags, CPU_SLOT, EVENTS, INFLIGHT, SESSIONS, TASKS};

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
    let (_, tid) = current_ids();
    if session_of(tid).is_none() {
        return Ok(());
    }
    // SAFETY: offset from the tracepoint format above.
    let child: i32 = unsafe { ctx.read_at(20)? };
    on_fork(child as u32);
    Ok(())
}

/// `sched_process_fork` as a raw tracepoint (cheaper, and quick to detach):
/// `TP_PROTO(struct task_struct *parent, struct task_struct *child)`.
/// The child's thread id is read at the `task_struct.pid` offset the
/// harness found in the kernel's BTF.
#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn raw_sched_process_fork(ctx: RawTracePointContext) -> i32 {
    let _ = try_raw_fork(&ctx);
    0
}

fn try_raw_fork(ctx: &RawTracePointContext) -> Result<(), i64> {
    let (_, tid) = current_ids();
    if session_of(tid).is_none() {
        return Ok(());
    }
    let child: *const u8 = ctx.arg(1);
    // SAFETY: a checked kernel read inside the child's task_struct.
    let child_tid: i32 = unsafe { bpf_probe_read_kernel(child.wrapping_add(offset(&TASK_PID_OFF)).cast::<i32>()) }?;
    on_fork(child_tid as u32);
    Ok(())
}

/// Adds a new task to its parent's session and records it.
#[inline(always)]
fn on_fork(child: u32) {
    let (pid, tid) = current_ids();
    let Some(session) = session_of(tid) else { return };
    let mut flags = 0;
    if TASKS.insert(child, session, 0).is_err() {
        // The child and everything it starts will be missing: say so.
        flags |= FORK_UNTRACKED;
        count_loss(session, |l| l.task_map_full += 1);
    }
    let ev = ForkEvent { header: EventHeader::new(EventKind::Fork, session, now(), pid, tid), child_tid: child, flags };
    output(session, &ev);
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
    // SAFETY: offsets from the tracepoint format above.
    let old: i32 = unsafe { ctx.read_at(16)? };
    let loc: u32 = unsafe { ctx.read_at(8)? };
    // SAFETY: `__data_loc`: the low 16 bits are the offset of the string in the record.
    let name = unsafe { ctx.as_ptr().cast::<u8>().add((loc & 0xffff) as usize) };
    on_exec(old as u32, name);
    Ok(())
}

/// `sched_process_exec` as a raw tracepoint:
/// `TP_PROTO(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)`;
/// the file name is `bprm->filename`, at the offset the harness found in BTF.
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn raw_sched_process_exec(ctx: RawTracePointContext) -> i32 {
    let _ = try_raw_exec(&ctx);
    0
}

fn try_raw_exec(ctx: &RawTracePointContext) -> Result<(), i64> {
    let old: i32 = ctx.arg(1);
    let bprm: *const u8 = ctx.arg(2);
    // SAFETY: a checked kernel read of the `filename` pointer in `bprm`.
    let name: *const u8 =
        unsafe { bpf_probe_read_kernel(bprm.wrapping_add(offset(&BINPRM_FILENAME_OFF)).cast::<*const u8>()) }?;
    on_exec(old as u32, name);
    Ok(())
}

/// Records an exec, whose file name is the kernel string at `name`.
#[inline(always)]
fn on_exec(old: u32, name: *const u8) {
    let (pid, tid) = current_ids();
    let session = match session_of(tid) {
        Some(s) => s,
        None => match session_of(old) {
            Some(s) => s,
            None => return,
        },
    };
    let privileged = elevated(session);
    if privileged {
        // Out of the session from here: no record of the new image (not
        // even its `execve`'s return, whose entry is dropped too), and no
        // task it forks, is ever written.
        let _ = TASKS.remove(tid);
        let _ = TASKS.remove(old);
        let _ = INFLIGHT.remove(tid);
        let _ = INFLIGHT.remove(old);
        if let Some(slot) = CPU_SLOT.get_ptr_mut(0) {
            // SAFETY: a per-CPU slot; BPF programs do not preempt each other on one CPU.
            unsafe {
                if (*slot).tid == old || (*slot).tid == tid {
                    (*slot).tid = 0;
                }
                if (*slot).owner == old || (*slot).owner == tid {
                    (*slot).owner = 0;
                }
            }
        }
    } else if old != tid {
        // Carry the task's entries over to its new thread id, so its
        // `execve` record and its later syscalls are not lost.
        let _ = TASKS.insert(tid, session, 0);
        let _ = TASKS.remove(old);
        // SAFETY: the value is copied out before the map changes.
        if let Some(inflight) = unsafe { INFLIGHT.get(old).copied() } {
            let _ = INFLIGHT.insert(tid, inflight, 0);
            let _ = INFLIGHT.remove(old);
        }
        if let Some(slot) = CPU_SLOT.get_ptr_mut(0) {
            // SAFETY: a per-CPU slot; BPF programs do not preempt each other on one CPU.
            unsafe {
                if (*slot).tid == old {
                    (*slot).tid = tid;
                }
                if (*slot).owner == old {
                    (*slot).owner = tid;
                }
            }
        }
    }
    let Some(mut entry) = EVENTS.reserve::<ExecEvent>(0) else {
        count_loss(session, |l| l.ring_full += 1);
        return;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: `ev` points at a reserved, exclusively owned ring slot; every
    // field is written before submit.
    unsafe {
        (*ev).header = EventHeader::new(EventKind::Exec, session, now(), pid, tid);
        (*ev).old_tid = old;
        (*ev).flags = if privileged { EXEC_PRIVILEGED } else { 0 };
        (*ev)._pad = 0;
        let len = match bpf_probe_read_kernel_str_bytes(name, &mut (*ev).filename) {
            Ok(s) => s.len() as u32,
            Err(_) => 0,
        };
        (*ev).filename_len = len;
    }
    entry.submit(wake_flags());
}

/// Whether the current task, which has just exec'd, runs with more
/// privilege than the session's owner: any of its user or group ids
/// (real, effective, saved, filesystem) is not the owner's real one, or it
/// has a capability. Only asked when the owner is not root
/// (`SESSION_CHECK_PRIVILEGE`, with the owner's ids in the session's
/// config: sessions of one loaded tracer may have different owners, as
/// under the daemon); the harness refuses to load without the offsets.
/// A read that fails counts as privileged.
///
/// The credentials are `task->real_cred`, the ones `ptrace` checks, which
/// `begin_new_exec` has committed before `sched_process_exec` fires, and
/// before the new image runs a single instruction.
/// <https://github.com/torvalds/linux/blob/v6.18/include/linux/cred.h>
#[inline(always)]
fn elevated(session: u32) -> bool {
    // The session's owner: root sessions see everything; a session whose
    // config cannot be read counts as checked against nobody, so privileged.
    let Some(config) = SESSIONS.get(session) else {
        return true;
    };
    if config.flags & SESSION_CHECK_PRIVILEGE == 0 {
        return false;
    }
    if offset(&TASK_REAL_CRED_OFF) == 0 {
        // Without the offsets nothing can be compared: fail closed.
        return true;
    }
    // SAFETY: the current task's own `task_struct`.
    let task = unsafe { bpf_get_current_task() } as *const u8;
    // SAFETY: a checked kernel read of the `real_cred` pointer.
    let Ok(cred) =
        (unsafe { bpf_probe_read_kernel(task.wrapping_add(offset(&TASK_REAL_CRED_OFF)).cast::<*const u8>()) })
    else {
        return true;
    };
    // `uid, gid, suid, sgid, euid, egid, fsuid, fsgid`, in this order
    // (the harness checked it in BTF).
    // SAFETY: a checked kernel read inside `struct cred`.
    let Ok(ids) = (unsafe { bpf_probe_read_kernel(cred.wrapping_add(offset(&CRED_UID_OFF)).cast::<[u32; 8]>()) })
    else {
        return true;
    };
    let (uid, gid) = (config.owner_uid, config.owner_gid);
    if ids[0] != uid || ids[2] != uid || ids[4] != uid || ids[6] != uid {
        return true;
    }
    if ids[1] != gid || ids[3] != gid || ids[5] != gid || ids[7] != gid {
        return true;
    }
    // SAFETY: checked kernel reads inside `struct cred`.
    let permitted = unsafe { bpf_probe_read_kernel(cred.wrapping_add(offset(&CRED_CAP_PERMITTED_OFF)).cast::<u64>()) };
    // SAFETY: as above.
    let effective = unsafe { bpf_probe_read_kernel(cred.wrapping_add(offset(&CRED_CAP_EFFECTIVE_OFF)).cast::<u64>()) };
    !matches!((permitted, effective), (Ok(0), Ok(0)))
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
    // SAFETY: offset from the tracepoint format above.
    let group_dead: u8 = unsafe { ctx.read_at(32)? };
    on_exit(group_dead != 0);
    Ok(())
}

/// `sched_process_exit` as a raw tracepoint:
/// `TP_PROTO(struct task_struct *p, bool group_dead)`.
#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn raw_sched_process_exit(ctx: RawTracePointContext) -> i32 {
    let group_dead: u64 = ctx.arg(1);
    on_exit(group_dead & 0xff != 0);
    0
}

/// Records a task's end and forgets it.
#[inline(always)]
fn on_exit(group_dead: bool) {
    let (pid, tid) = current_ids();
    let Some(session) = session_of(tid) else { return };
    let ev = ExitEvent {
        header: EventHeader::new(EventKind::Exit, session, now(), pid, tid),
        group_dead: u32::from(group_dead),
        _pad: 0,
    };
    // Written before the task leaves the map: the harness takes an empty
    // map to mean every record of the tree is in the ring.
    output(session, &ev);
    let _ = TASKS.remove(tid);
    // A task that exits inside a syscall (`exit_group`, a fatal signal)
    // leaves its entry behind otherwise: in `INFLIGHT`, or in this CPU's
    // slot if it was not switched out since (then the slot must be
    // emptied now, or the last switch would move it to `INFLIGHT`).
    let _ = INFLIGHT.remove(tid);
    if let Some(slot) = CPU_SLOT.get_ptr_mut(0) {
        // SAFETY: a per-CPU slot; BPF programs do not preempt each other on one CPU.
        unsafe {
            if (*slot).tid == tid {
                (*slot).tid = 0;
            }
            if (*slot).owner == tid {
                (*slot).owner = 0;
            }
        }
    }
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
    // SAFETY: offsets from the tracepoint format above.
    unsafe { on_signal(ctx.read_at(8)?, ctx.read_at(12)?, ctx.read_at(16)?, ctx.read_at(24)?, ctx.read_at(32)?) };
    Ok(())
}

/// `signal_deliver` as a raw tracepoint:
/// `TP_PROTO(int sig, struct kernel_siginfo *info, struct k_sigaction *ka)`.
/// `kernel_siginfo` starts with `si_signo`, `si_errno`, `si_code` (uapi
/// layout); `k_sigaction` starts with the kernel's `struct sigaction`:
/// `sa_handler`, then `sa_flags`.
#[raw_tracepoint(tracepoint = "signal_deliver")]
pub fn raw_signal_deliver(ctx: RawTracePointContext) -> i32 {
    let _ = try_raw_signal(&ctx);
    0
}

fn try_raw_signal(ctx: &RawTracePointContext) -> Result<(), i64> {
    let (_, tid) = current_ids();
    if session_of(tid).is_none() {
        return Ok(());
    }
    let sig: i32 = ctx.arg(0);
    let info: *const i32 = ctx.arg(1);
    let ka: *const u64 = ctx.arg(2);
    // `SEND_SIG_NOINFO` (0) and `SEND_SIG_PRIV` (1) are not pointers: the
    // tracepoint itself reports them as SI_USER and SI_KERNEL.
    let (errno, code) = if (info as usize) < 4096 {
        (0, if info as usize == 1 { 0x80 } else { 0 })
    } else {
        // SAFETY: checked kernel reads inside `info`.
        unsafe { (bpf_probe_read_kernel(info.wrapping_add(1))?, bpf_probe_read_kernel(info.wrapping_add(2))?) }
    };
    // SAFETY: checked kernel reads inside `ka`.
    let (handler, flags) = unsafe { (bpf_probe_read_kernel(ka)?, bpf_probe_read_kernel(ka.wrapping_add(1))?) };
    on_signal(sig, errno, code, handler, flags);
    Ok(())
}

/// Records a delivered signal.
#[inline(always)]
fn on_signal(sig: i32, errno: i32, code: i32, sa_handler: u64, sa_flags: u64) {
    let (pid, tid) = current_ids();
    let Some(session) = session_of(tid) else { return };
    let ev = SignalEvent {
        header: EventHeader::new(EventKind::Signal, session, now(), pid, tid),
        sig,
        errno,
        code,
        flags: 0,
        sa_handler,
        sa_flags,
    };
    output(session, &ev);
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
/// tell which signal killed a process, and sees SIGKILL where the
/// process got SIGTERM. The tracepoint fires after `complete_signal`.
/// <https://github.com/torvalds/linux/blob/v6.18/kernel/signal.c>
#[tracepoint(category = "signal", name = "signal_generate")]
pub fn signal_generate(ctx: TracePointContext) -> u32 {
    let _ = try_signal_generate(&ctx);
    0
}

fn try_signal_generate(ctx: &TracePointContext) -> Result<(), i64> {
    // SAFETY: offsets from the tracepoint format above.
    unsafe {
        let target: i32 = ctx.read_at(36)?;
        let result: i32 = ctx.read_at(44)?;
        on_signal_generate(ctx.read_at(8)?, ctx.read_at(12)?, ctx.read_at(16)?, target as u32, result);
    }
    Ok(())
}

/// `signal_generate` as a raw tracepoint: `TP_PROTO(int sig, struct
/// kernel_siginfo *info, struct task_struct *task, int group, int result)`;
/// the target's thread id is read at the `task_struct.pid` offset.
#[raw_tracepoint(tracepoint = "signal_generate")]
pub fn raw_signal_generate(ctx: RawTracePointContext) -> i32 {
    let _ = try_raw_signal_generate(&ctx);
    0
}

fn try_raw_signal_generate(ctx: &RawTracePointContext) -> Result<(), i64> {
    let task: *const u8 = ctx.arg(2);
    // SAFETY: a checked kernel read inside the target's task_struct.
    let target: i32 = unsafe { bpf_probe_read_kernel(task.wrapping_add(offset(&TASK_PID_OFF)).cast::<i32>()) }?;
    if session_of(target as u32).is_none() {
        return Ok(());
    }
    let result: i32 = ctx.arg(4);
    let info: *const i32 = ctx.arg(1);
    // `si_errno` and `si_code`, as `try_raw_signal` reads them: the
    // killing signal's event is made from this record (the kernel
    // delivers a fatal one as a group SIGKILL).
    let (errno, code) = if (info as usize) < 4096 {
        (0, if info as usize == 1 { 0x80 } else { 0 })
    } else {
        // SAFETY: checked kernel reads inside `info`.
        unsafe { (bpf_probe_read_kernel(info.wrapping_add(1))?, bpf_probe_read_kernel(info.wrapping_add(2))?) }
    };
    on_signal_generate(ctx.arg(0), errno, code, target as u32, result);
    Ok(())
}

/// Records a signal sent to a traced task.
#[inline(always)]
fn on_signal_generate(sig: i32, errno: i32, code: i32, target: u32, result: i32) {
    let Some(session) = session_of(target) else { return };
    let ev = SignalEvent {
        header: EventHeader::new(EventKind::Signal, session, now(), target, target),
        sig,
        errno,
        code,
        flags: SIGNAL_GENERATED,
        sa_handler: u64::from(result as u32),
        sa_flags: 0,
    };
    output(session, &ev);
}

/// Kernel struct offsets, set by the harness from the kernel's BTF before
/// loading; the raw probes are only attached when it found them.
#[unsafe(no_mangle)]
static TASK_PID_OFF: u32 = 0;
#[unsafe(no_mangle)]
static BINPRM_FILENAME_OFF: u32 = 0;
/// `task_struct.real_cred`, and in `struct cred`: `uid` (the first of the
/// eight ids), `cap_permitted`, `cap_effective`.
#[unsafe(no_mangle)]
static TASK_REAL_CRED_OFF: u32 = 0;
#[unsafe(no_mangle)]
static CRED_UID_OFF: u32 = 0;
#[unsafe(no_mangle)]
static CRED_CAP_PERMITTED_OFF: u32 = 0;
#[unsafe(no_mangle)]
static CRED_CAP_EFFECTIVE_OFF: u32 = 0;

#[inline(always)]
fn offset(v: &'static u32) -> usize {
    // SAFETY: a read of a constant the loader may have rewritten.
    (unsafe { core::ptr::read_volatile(v) }) as usize
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
