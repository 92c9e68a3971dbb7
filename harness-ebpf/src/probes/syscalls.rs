//! Every syscall of a traced task, from the raw `sys_enter`/`sys_exit`
//! tracepoints.
//!
//! Entry saves the raw arguments in this CPU's `CPU_SLOT` (moved to the
//! `INFLIGHT` map by `sched_switch` if the task is switched out before
//! its syscall returns); exit writes one record with
//! the arguments, the result, the duration and the captures the harness
//! asked for in `SPECS` (paths, buffers, socket addresses), read after the
//! call so that output buffers hold what the kernel wrote, and input ones
//! have been faulted in by the kernel (a BPF read cannot fault a page in).
//! Syscalls that never return (`exit_group`) are recorded at entry. An
//! exec's argv as passed is recorded at its point of no return
//! (`sched_prepare_exec`, while the old memory is still there and paged
//! in), or at exit after a failed exec; a successful exec's exit also
//! records the argv the new image got, from its stack.
//!
//! Raw tracepoints are used here because these two fire for every syscall
//! on the machine, traced or not, and the raw form is the cheapest:
//! ```text
//! TP_PROTO(struct pt_regs *regs, long id)   // sys_enter
//! TP_PROTO(struct pt_regs *regs, long ret)  // sys_exit
//! ```
//! <https://github.com/torvalds/linux/blob/v6.18/include/trace/events/syscalls.h>

use aya_ebpf::{
    bindings::pt_regs,
    helpers::{
        bpf_ktime_get_ns, bpf_probe_read_kernel, bpf_probe_read_user, bpf_probe_read_user_buf,
        bpf_probe_read_user_str_bytes, generated,
    },
    macros::raw_tracepoint,
    programs::RawTracePointContext,
};
use probity_common::{
    Capture, CaptureKind, EventHeader, EventKind, ExecArgsHeader, SyscallEvent, SyscallSpec, CAPTURE_FAULT,
    CAPTURE_TRUNCATED, EXEC_ARGS_AT_EXEC, EXEC_ARGS_FAULT, EXEC_ARGS_LEN, EXEC_ARGS_RAN, EXEC_ARGS_TRUNCATED,
    EXEC_MAX_ARGS, MAX_CAPTURE, MAX_CAPTURES, MAX_SUMMARY_SESSIONS, MAX_SYSCALLS, PR_GET_NAME, PR_SET_NAME,
    SESSION_SUMMARY, SPEC_ACCEPT, SPEC_EXEC, SPEC_NO_RETURN, SYSCALL_NO_RETURN,
};

use crate::maps::{
    count_loss, current_ids, new_tasks_epoch, session_of, tasks_epoch, wake_flags, wake_flags_sampled, CpuSlot,
    ExecJob, InFlight, Scratch, CPU_SLOT, EVENTS, EXEC_JOB, INFLIGHT, SCRATCH, SCRATCH_LEN, SESSIONS, SPECS, STATS,
    TAILS, TAIL_ACCEPT, TAIL_EXEC_ARGS,
};

const EVENT_LEN: usize = core::mem::size_of::<SyscallEvent>();
/// `InFlight::nr` of a task that is not inside a syscall.
const IDLE: u32 = u32::MAX;
const CAPTURE_HDR: usize = core::mem::size_of::<Capture>();
/// Socket addresses are at most `sizeof(struct sockaddr_storage)`.
const SOCKADDR_MAX: u64 = 128;
/// The `bpf` syscall's number: the one that adds tasks to `TASKS` from
/// userspace.
#[cfg(bpf_target_arch = "x86_64")]
const SYS_BPF: u32 = 321;
#[cfg(bpf_target_arch = "aarch64")]
const SYS_BPF: u32 = 280;

#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn sys_enter(ctx: RawTracePointContext) -> i32 {
    let _ = try_sys_enter(&ctx);
    0
}

fn try_sys_enter(ctx: &RawTracePointContext) -> Result<(), i64> {
    let (pid, tid) = current_ids();
    let Some(slot) = CPU_SLOT.get_ptr_mut(0) else { return Ok(()) };
    // SAFETY: a per-CPU slot; BPF programs do not preempt each other on one CPU.
    let slot = unsafe { &mut *slot };
    let nr: i64 = ctx.arg(1);
    let nr = nr as u32;
    let epoch = tasks_epoch();
    if slot.quiet == tid && slot.quiet_epoch == epoch && nr != SYS_BPF {
        // Untraced, as `TASKS` said at an earlier entry (see `CpuSlot`).
        // A `bpf` call goes the long way, for its exit to see it.
        return Ok(());
    }
    let Some((session, flags)) = traced(slot, tid) else {
        slot.quiet = tid;
        slot.quiet_epoch = epoch;
        slot.quiet_bpf = u32::from(nr == SYS_BPF);
        return Ok(());
    };
    slot.quiet = 0;
    // A summary session only counts: the arguments are never looked at,
    // and reading them is a good part of this program's cost.
    let counting = flags & SESSION_SUMMARY != 0;
    let args = if counting {
        [0; 6]
    } else {
        let regs: *const pt_regs = ctx.arg(0);
        read_args(regs)?
    };
    let ts_ns = now();
    let spec = spec_of(nr);
    let inflight = InFlight { session, nr, args, ts_ns };
    if spec.flags & SPEC_NO_RETURN != 0 {
        // There will be no exit: record it now. These syscalls (`exit`,
        // `exit_group`) capture nothing, so the capture code is left out
        // here, where the verifier would otherwise check it a second time.
        finish::<false>(pid, tid, &inflight, &spec, 0, ts_ns, SYSCALL_NO_RETURN, &mut slot.records);
        return Ok(());
    }
    // This CPU's slot: the task runs here until its syscall returns or it
    // is switched out (then `sched_switch` moves the entry to `INFLIGHT`).
    // A slot still holding another task's syscall is impossible: that
    // task was switched out, which emptied it.
    slot.tid = tid;
    slot.call = inflight;
    Ok(())
}

/// The session tracing thread `tid`, which runs on this CPU, and its
/// `SessionConfig::flags`; `None` if it is not traced.
#[inline(always)]
fn traced(slot: &mut CpuSlot, tid: u32) -> Option<(u32, u32)> {
    if slot.owner == tid {
        if let Some(config) = SESSIONS.get(slot.owner_session) {
            if config.generation == slot.owner_generation {
                return Some((slot.owner_session, config.flags));
            }
        }
        // The session ended since: ask `TASKS` again.
        slot.owner = 0;
    }
    let session = session_of(tid)?;
    let config = SESSIONS.get(session)?;
    slot.owner = tid;
    slot.owner_session = session;
    slot.owner_generation = config.generation;
    Some((session, config.flags))
}

/// `sched_switch`, in the context of the task being switched out:
/// `TP_PROTO(bool preempt, struct task_struct *prev, struct task_struct
/// *next, unsigned int prev_state)`.
/// <https://github.com/torvalds/linux/blob/v6.18/include/trace/events/sched.h>
/// If that task is inside a traced syscall, its entry leaves this CPU's
/// slot for `INFLIGHT`, where its exit will find it, on whatever CPU.
#[raw_tracepoint(tracepoint = "sched_switch")]
pub fn sched_switch(_ctx: RawTracePointContext) -> i32 {
    spill_slot();
    0
}

#[inline(always)]
fn spill_slot() {
    let Some(slot) = CPU_SLOT.get_ptr_mut(0) else { return };
    // SAFETY: a per-CPU slot; BPF programs do not preempt each other on one CPU.
    let slot = unsafe { &mut *slot };
    // Whether the next task is traced is for its own syscalls to find out.
    slot.owner = 0;
    slot.quiet = 0;
    if slot.tid == 0 {
        return;
    }
    let (_, tid) = current_ids();
    if slot.tid != tid {
        return;
    }
    slot.tid = 0;
    let call = slot.call;
    // A task keeps its entry once it has one (see `INFLIGHT`).
    match INFLIGHT.get_ptr_mut(tid) {
        // SAFETY: this task's own entry; only this task's programs write
        // it, and preallocated entries stay valid until removed.
        Some(entry) => unsafe { *entry = call },
        None => {
            if INFLIGHT.insert(tid, call, 0).is_err() {
                count_loss(call.session, |l| l.inflight_full += 1);
            }
        }
    }
}

#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn sys_exit(ctx: RawTracePointContext) -> i32 {
    let _ = try_sys_exit(&ctx);
    0
}

fn try_sys_exit(ctx: &RawTracePointContext) -> Result<(), i64> {
    let (pid, tid) = current_ids();
    let Some(slot) = CPU_SLOT.get_ptr_mut(0) else { return Ok(()) };
    // SAFETY: a per-CPU slot; BPF programs do not preempt each other on one CPU.
    let slot = unsafe { &mut *slot };
    let inflight = if slot.tid == tid {
        slot.tid = 0;
        slot.call
    } else {
        if slot.quiet == tid {
            // Entered untraced on this CPU, and not switched out since.
            if slot.quiet_bpf != 0 {
                // It may have added a task that runs now on another CPU.
                slot.quiet_bpf = 0;
                slot.quiet = 0;
                new_tasks_epoch();
            }
            return Ok(());
        }
        // Switched out since its entry (or not traced at all).
        let Some(entry) = INFLIGHT.get_ptr_mut(tid) else {
            // Untraced, and switched out since its entry: if the call was
            // a `bpf` one, it may have added a task, and the other CPUs
            // must ask `TASKS` again. Any other call leaves the caches be:
            // blocking calls of untraced processes are everywhere.
            if exit_nr(ctx).is_none_or(|nr| nr == SYS_BPF) {
                new_tasks_epoch();
            }
            return Ok(());
        };
        // SAFETY: this task's own entry (see `spill_slot`).
        let inflight = unsafe { *entry };
        if inflight.nr == IDLE {
            // Not in a syscall (a fork child's first return, say).
            return Ok(());
        }
        // SAFETY: as above.
        unsafe { (*entry).nr = IDLE };
        inflight
    };
    if inflight.nr == SYS_BPF {
        // A traced `bpf` call (probity traced by itself) may add a task.
        new_tasks_epoch();
    }
    let ret: i64 = ctx.arg(1);
    let end_ns = now();
    let spec = spec_of(inflight.nr);
    finish::<true>(pid, tid, &inflight, &spec, ret, end_ns, 0, &mut slot.records);
    if spec.flags & SPEC_EXEC != 0 {
        // Read argv now, not at entry: the kernel has just touched the
        // memory (a BPF read cannot fault a page in, and a forked child's
        // file-backed pages are often not mapped yet). After a successful
        // exec the old memory is gone, but the new stack holds argc and
        // argv at the stack pointer. The reading is its own program,
        // reached by a tail call, so the verifier checks its loop apart.
        // The argv a successful exec was passed was read at its point of
        // no return (`sched_prepare_exec`); this one is what the new image
        // was given, which differs when the kernel ran an interpreter (a
        // `#!` script, a binfmt_misc format).
        let (path, argv, flags) = if ret == 0 {
            let regs: *const pt_regs = ctx.arg(0);
            (0, read_sp(regs)? + 8, EXEC_ARGS_RAN)
        } else {
            let path_arg = (spec.exec_path_arg as usize).min(4);
            (inflight.args[path_arg], inflight.args[path_arg + 1], 0)
        };
        let job = ExecJob { session: inflight.session, pid, tid, flags, ts_ns: inflight.ts_ns, path, argv };
        if let Some(slot) = EXEC_JOB.get_ptr_mut(0) {
            // SAFETY: the per-CPU slot is ours until the tail-called program returns.
            unsafe { *slot = job };
            // SAFETY: a tail call with this program's own context.
            unsafe { TAILS.tail_call(ctx, TAIL_EXEC_ARGS) };
        }
        // Only reached when the tail call failed.
        count_loss(inflight.session, |l| l.ring_full += 1);
    } else if spec.flags & SPEC_ACCEPT != 0 && ret >= 0 {
        // The network probe that claims the accepted socket (see
        // `probes/net.rs`); without its slot filled, a no-op.
        // SAFETY: a tail call with this program's own context.
        unsafe { TAILS.tail_call(ctx, TAIL_ACCEPT) };
    }
    Ok(())
}

/// The exec argv program, reached from `sys_exit` and
/// `sched_prepare_exec` by a tail call.
#[raw_tracepoint]
pub fn exec_args_tail(_ctx: RawTracePointContext) -> i32 {
    if let Some(job) = EXEC_JOB.get(0) {
        let job = *job;
        exec_args(job.session, job.pid, job.tid, job.ts_ns, job.path, job.argv, job.flags);
    }
    0
}

/// `sched_prepare_exec`, in the exec'ing task, at the exec's point of no
/// return: the old memory is still mapped, and the kernel has just copied
/// the path and every argv string from it, so they are all paged in (a
/// BPF read cannot fault a page in; at syscall entry a fork child's
/// file-backed strings often are not yet). The argv recorded here is the
/// one the program passed, before a `#!` script's interpreter is put in
/// front of it. Kernels before 6.10 lack this tracepoint: the harness
/// then goes without it, and an exec's argv is the one the new image got.
/// ```text
/// TP_PROTO(struct task_struct *task, struct linux_binprm *bprm)
/// ```
/// <https://github.com/torvalds/linux/blob/v6.18/include/trace/events/sched.h>
#[raw_tracepoint(tracepoint = "sched_prepare_exec")]
pub fn sched_prepare_exec(ctx: RawTracePointContext) -> i32 {
    let _ = try_prepare_exec(&ctx);
    0
}

fn try_prepare_exec(ctx: &RawTracePointContext) -> Result<(), i64> {
    let (pid, tid) = current_ids();
    let Some(slot) = CPU_SLOT.get_ptr_mut(0) else { return Ok(()) };
    // SAFETY: a per-CPU slot; BPF programs do not preempt each other on one CPU.
    let slot = unsafe { &*slot };
    // The `execve` entry, where the task left it: in this CPU's slot, or
    // in `INFLIGHT` if it was switched out since (reading the file, say).
    let call = if slot.tid == tid {
        slot.call
    } else {
        // SAFETY: this task's own entry (see `spill_slot`), copied out.
        match unsafe { INFLIGHT.get(tid) } {
            Some(c) if c.nr != IDLE => *c,
            _ => return Ok(()),
        }
    };
    let spec = spec_of(call.nr);
    if spec.flags & SPEC_EXEC == 0 {
        return Ok(());
    }
    let path_arg = (spec.exec_path_arg as usize).min(4);
    let job = ExecJob {
        session: call.session,
        pid,
        tid,
        flags: EXEC_ARGS_AT_EXEC,
        ts_ns: call.ts_ns,
        path: call.args[path_arg],
        argv: call.args[path_arg + 1],
    };
    let Some(out) = EXEC_JOB.get_ptr_mut(0) else { return Ok(()) };
    // SAFETY: the per-CPU slot is ours until the tail-called program returns.
    unsafe { *out = job };
    // SAFETY: a tail call with this program's own context.
    unsafe { TAILS.tail_call(ctx, TAIL_EXEC_ARGS) };
    // Only reached when the tail call failed.
    count_loss(call.session, |l| l.ring_full += 1);
    Ok(())
}

/// Counts or records a finished syscall; with `CAPTURES` false, without
/// the captures its spec asks for.
#[inline(always)]
#[expect(clippy::too_many_arguments, reason = "kept flat for the verifier")]
fn finish<const CAPTURES: bool>(
    pid: u32,
    tid: u32,
    call: &InFlight,
    spec: &SyscallSpec,
    ret: i64,
    end_ns: u64,
    flags: u32,
    records: &mut u32,
) {
    let session = call.session;
    let duration_ns = end_ns.saturating_sub(call.ts_ns);
    let Some(config) = SESSIONS.get(session) else { return };
    if config.flags & SESSION_SUMMARY != 0 {
        let idx = config.stats_slot.min(MAX_SUMMARY_SESSIONS - 1) * MAX_SYSCALLS + call.nr.min(MAX_SYSCALLS - 1);
        if let Some(stats) = STATS.get_ptr_mut(idx) {
            // SAFETY: a per-CPU slot; BPF programs do not preempt each other on one CPU.
            let stats = unsafe { &mut *stats };
            stats.calls += 1;
            stats.errors += u64::from(flags == 0 && (-4095..0).contains(&ret));
            stats.total_ns += duration_ns;
        }
        return;
    }
    let event = SyscallEvent {
        header: EventHeader::new(EventKind::Syscall, session, call.ts_ns, pid, tid),
        nr: call.nr,
        flags,
        args: call.args,
        ret,
        duration_ns,
        ncaptures: 0,
        _pad: 0,
    };
    // Exec paths were recorded at entry with argv (after a successful exec
    // the old memory is gone).
    if !CAPTURES || spec.captures[0].kind == CaptureKind::None as u8 || spec.flags & SPEC_EXEC != 0 {
        // The common case: a fixed-size record straight into the ring.
        if EVENTS.output::<SyscallEvent>(&event, wake_flags_sampled(records)).is_err() {
            count_loss(session, |l| l.ring_full += 1);
        }
        return;
    }
    let Some(scratch) = SCRATCH.get_ptr_mut(0) else { return };
    // SAFETY: the per-CPU scratch buffer is ours until this program returns.
    let scratch = unsafe { &mut *scratch };
    let mut len = EVENT_LEN;
    let mut ncaptures = 0u32;
    for i in 0..MAX_CAPTURES {
        let c = spec.captures[i];
        if c.kind == CaptureKind::None as u8 {
            break;
        }
        if let Some(used) = capture(scratch, len, call, config.string_limit, c.kind, c.arg, c.len_arg, ret) {
            if used.1 {
                count_loss(session, |l| l.capture_faults += 1);
            }
            len += used.0;
            ncaptures += 1;
        }
    }
    let event = SyscallEvent { ncaptures, ..event };
    // SAFETY: `EVENT_LEN` bytes at the start of the scratch buffer, which
    // is aligned for the record. An aligned write takes a few 8-byte
    // stores where an unaligned one takes a store per byte, and the
    // verifier walks this once per path through the captures.
    unsafe { scratch.bytes.as_mut_ptr().cast::<SyscallEvent>().write(event) };
    let len = len & (SCRATCH_LEN - 1);
    if EVENTS.output::<[u8]>(&scratch.bytes[..len], wake_flags_sampled(records)).is_err() {
        count_loss(session, |l| l.ring_full += 1);
    }
}

/// Writes one capture at `offset` in the scratch buffer. Returns the bytes
/// used (header and padded data) and whether user memory could not be read,
/// or `None` when there is nothing to capture (a failed `read`).
#[inline(always)]
#[expect(clippy::too_many_arguments, reason = "kept flat for the verifier")]
fn capture(
    scratch: &mut Scratch,
    offset: usize,
    call: &InFlight,
    string_limit: u32,
    kind: u8,
    arg: u8,
    len_arg: u8,
    ret: i64,
) -> Option<(usize, bool)> {
    let ptr = call.args[(arg & 7) as usize % 6];
    let len_val = call.args[(len_arg & 7) as usize % 6];
    if ptr == 0 {
        // NULL: the harness shows it from the raw argument.
        return None;
    }
    // Keep the capture inside the first half of the buffer so the
    // verifier can bound every write below.
    let offset = offset & (2 * MAX_CAPTURE - 1);
    let data_off = offset + CAPTURE_HDR;
    let mut flags = 0u8;
    // Where the bytes are, and how many the object has.
    let (src, want): (u64, u64) = match kind {
        k if k == CaptureKind::CStr as u8 => (ptr, u64::MAX),
        k if k == CaptureKind::TaskName as u8 => {
            if len_val != PR_SET_NAME && len_val != PR_GET_NAME {
                return None;
            }
            (ptr, u64::MAX)
        }
        k if k == CaptureKind::BufLenArg as u8 => (ptr, len_val),
        k if k == CaptureKind::BufLenRet as u8 => {
            if ret <= 0 {
                return None;
            }
            (ptr, ret as u64)
        }
        k if k == CaptureKind::SockaddrLenArg as u8 => (ptr, len_val.min(SOCKADDR_MAX)),
        k if k == CaptureKind::SockaddrLenPtr as u8 => {
            if ret < 0 || len_val == 0 {
                return None;
            }
            // SAFETY: a checked read of user memory.
            match unsafe { bpf_probe_read_user(len_val as *const u32) } {
                Ok(l) => (ptr, u64::from(l).min(SOCKADDR_MAX)),
                Err(_) => return None,
            }
        }
        // `CaptureKind::is_msg`, as a range of raw values.
        k if k >= CaptureKind::MsgIov as u8 && k <= CaptureKind::MsgName as u8 => {
            if ret < 0 {
                return None;
            }
            let (src, len, more) = msg_part(ptr, k, ret)?;
            if more {
                flags |= CAPTURE_TRUNCATED;
            }
            (src, len)
        }
        _ => return None,
    };
    let dst = &mut scratch.bytes[data_off..data_off + MAX_CAPTURE];
    let got: usize = if kind == CaptureKind::CStr as u8 || kind == CaptureKind::TaskName as u8 {
        // SAFETY: a checked read of user memory into our buffer.
        match unsafe { bpf_probe_read_user_str_bytes(src as *const u8, dst) } {
            Ok(s) => {
                if s.len() >= MAX_CAPTURE - 1 {
                    flags |= CAPTURE_TRUNCATED;
                }
                s.len()
            }
            Err(_) => {
                flags |= CAPTURE_FAULT;
                0
            }
        }
    } else {
        let limit = if kind == CaptureKind::SockaddrLenArg as u8
            || kind == CaptureKind::SockaddrLenPtr as u8
            || kind == CaptureKind::MsgName as u8
        {
            SOCKADDR_MAX
        } else {
            u64::from(string_limit)
        };
        let mut n = want.min(limit).min(MAX_CAPTURE as u64 - 1) as usize;
        if (n as u64) < want {
            flags |= CAPTURE_TRUNCATED;
        }
        n &= MAX_CAPTURE - 1;
        if n > 0 {
            // SAFETY: a checked read of user memory into our buffer.
            if unsafe { bpf_probe_read_user_buf(src as *const u8, &mut dst[..n]) }.is_err() {
                flags |= CAPTURE_FAULT;
                n = 0;
            }
        }
        n
    };
    let header = Capture { arg, kind, flags, _pad: 0, len: got as u32 };
    // SAFETY: `offset + 8` is within the buffer (masked above).
    unsafe { core::ptr::write_unaligned(scratch.bytes.as_mut_ptr().add(offset).cast::<Capture>(), header) };
    Some((CAPTURE_HDR + ((got + 7) & !7), flags & CAPTURE_FAULT != 0))
}

/// Where a `struct msghdr` at `ptr` (a `struct mmsghdr` array starts with
/// one) keeps what capture `kind` wants, how many bytes that is, and
/// whether the message holds more than that: its first `iovec`'s buffer
/// (more when other buffers follow, or a receive got more than the first
/// holds), or its address (`msg_name`). `None` when there is none, or the
/// header cannot be read.
/// <https://github.com/torvalds/linux/blob/v6.18/include/linux/socket.h>
#[inline(always)]
fn msg_part(ptr: u64, kind: u8, ret: i64) -> Option<(u64, u64, bool)> {
    // `msg_name`, `msg_namelen` (an int, padded), `msg_iov`, `msg_iovlen`.
    // SAFETY: a checked read of user memory.
    let hdr: [u64; 4] = unsafe { bpf_probe_read_user(ptr as *const [u64; 4]) }.ok()?;
    if kind == CaptureKind::MsgName as u8 {
        let len = hdr[1] & 0xffff_ffff;
        if hdr[0] == 0 || len == 0 {
            return None;
        }
        return Some((hdr[0], len.min(SOCKADDR_MAX), false));
    }
    if hdr[2] == 0 || hdr[3] == 0 {
        return None;
    }
    // The first `iovec`: `iov_base`, `iov_len`.
    // SAFETY: a checked read of user memory.
    let iov: [u64; 2] = unsafe { bpf_probe_read_user(hdr[2] as *const [u64; 2]) }.ok()?;
    // The bytes the message moved, as far as known here.
    let moved = if kind == CaptureKind::MsgIovRet as u8 {
        // What `recvmsg` received.
        ret as u64
    } else if kind == CaptureKind::MmsgIovLen as u8 {
        if ret == 0 {
            return None;
        }
        // `recvmmsg` counts messages; the first one's length follows its
        // header (`struct mmsghdr { struct msghdr; unsigned msg_len; }`).
        // SAFETY: a checked read of user memory.
        let got: u32 = unsafe { bpf_probe_read_user((ptr + MSGHDR_LEN) as *const u32) }.ok()?;
        u64::from(got)
    } else {
        // A send: every buffer goes.
        return Some((iov[0], iov[1], hdr[3] > 1));
    };
    Some((iov[0], iov[1].min(moved), iov[1] < moved))
}

/// `sizeof(struct msghdr)` on 64-bit architectures.
const MSGHDR_LEN: u64 = 56;

/// Records an exec's path (0 for none) and argv.
///
/// Written for a quick verification: the loop runs up to
/// `EXEC_MAX_ARGS` times and the verifier walks every iteration, so each
/// must be short and must not leave it a distinct state per iteration.
/// The running counters (`off`, `nstrings`) live in the record's header in
/// the scratch buffer and are read back with volatile loads: to the
/// verifier they are unknown values bounded by a mask or a comparison, not
/// a constant or a range that differs from one iteration to the next, so
/// the paths that leave the loop at different iterations (a fault, the
/// end of argv, truncation) end in equal states, and all but the first are
/// pruned where they join.
#[inline(always)]
fn exec_args(session: u32, pid: u32, tid: u32, ts_ns: u64, path: u64, argv: u64, job_flags: u32) {
    let Some(scratch) = SCRATCH.get_ptr_mut(0) else { return };
    let hdr = scratch.cast::<ExecArgsHeader>();
    // SAFETY: the per-CPU scratch buffer is ours until this program
    // returns; it is 8-byte aligned (as the header is) and longer than the
    // header plus `2 * EXEC_ARGS_LEN`.
    let data = unsafe { (*scratch).bytes.as_mut_ptr().add(EXEC_HDR) };
    // SAFETY: the header's fields are in the scratch buffer (above).
    let (off_at, nstrings_at) = unsafe { (&raw mut (*hdr).len, &raw mut (*hdr).nstrings) };
    // SAFETY: as above, for every load and store of the counters below.
    unsafe {
        core::ptr::write_volatile(off_at, 0);
        core::ptr::write_volatile(nstrings_at, 0);
    }
    let mut flags = job_flags;
    // The path first, then argv[0..]. Each string lands at `data + off`
    // with `off` below `EXEC_ARGS_LEN - 1`, and reads at most
    // `EXEC_ARGS_LEN` bytes, so every write stays in the buffer.
    // No path (after a successful exec): an empty string stands for it,
    // and the harness takes the file name from the exec event.
    if path == 0 {
        // SAFETY: as above.
        unsafe {
            *data = 0;
            core::ptr::write_volatile(off_at, 1);
            core::ptr::write_volatile(nstrings_at, 1);
        }
    } else if !read_str(data, off_at, nstrings_at, path) {
        flags |= EXEC_ARGS_FAULT;
    }
    if argv != 0 {
        // One entry more than is kept: only a non-NULL one there means argv
        // had more than `EXEC_MAX_ARGS` entries.
        for i in 0..=EXEC_MAX_ARGS {
            // SAFETY: a checked read of user memory.
            let p: u64 = match unsafe { bpf_probe_read_user((argv as *const u64).wrapping_add(i as usize)) } {
                Ok(p) => p,
                Err(_) => {
                    flags |= EXEC_ARGS_FAULT;
                    break;
                }
            };
            if p == 0 {
                break;
            }
            // `i` is a known constant to the verifier, so this takes no
            // branch of its own there.
            if i == EXEC_MAX_ARGS {
                flags |= EXEC_ARGS_TRUNCATED;
                break;
            }
            if !read_str(data, off_at, nstrings_at, p) {
                // Either the buffer is full or the string is unreadable.
                // SAFETY: as above.
                let off = unsafe { core::ptr::read_volatile(off_at) };
                flags |= if off >= EXEC_ARGS_LEN as u32 - 1 { EXEC_ARGS_TRUNCATED } else { EXEC_ARGS_FAULT };
                break;
            }
        }
    }
    // SAFETY: as above.
    let off = unsafe { core::ptr::read_volatile(off_at) } as usize;
    let len = off.min(EXEC_ARGS_LEN);
    flags |= (off > EXEC_ARGS_LEN) as u32 * EXEC_ARGS_TRUNCATED;
    let header = ExecArgsHeader {
        header: EventHeader::new(EventKind::ExecArgs, session, ts_ns, pid, tid),
        // SAFETY: as above.
        nstrings: unsafe { core::ptr::read_volatile(nstrings_at) },
        flags,
        len: len as u32,
        _pad: 0,
    };
    // SAFETY: the header is at the start of the buffer, which is aligned for it.
    unsafe { hdr.write(header) };
    // SAFETY: `EXEC_HDR + len` is within the scratch buffer.
    let record = unsafe { core::slice::from_raw_parts(scratch.cast::<u8>(), EXEC_HDR + len) };
    if EVENTS.output::<[u8]>(record, wake_flags()).is_err() {
        count_loss(session, |l| l.ring_full += 1);
    }
}

/// Where an exec's strings start in the scratch buffer.
const EXEC_HDR: usize = core::mem::size_of::<ExecArgsHeader>();

/// Reads a user string with its NUL to `data + *off_at`, then adds the
/// bytes used to `*off_at` and one to `*nstrings_at`. False, with nothing
/// counted, when the buffer is full (`*off_at >= EXEC_ARGS_LEN - 1`) or
/// the string cannot be read.
#[inline(always)]
fn read_str(data: *mut u8, off_at: *mut u32, nstrings_at: *mut u32, ptr: u64) -> bool {
    // SAFETY: both counters are in the scratch buffer (see `exec_args`).
    let off = unsafe { core::ptr::read_volatile(off_at) };
    if off >= EXEC_ARGS_LEN as u32 - 1 {
        return false;
    }
    // SAFETY: a checked read of user memory to at most `EXEC_ARGS_LEN`
    // bytes from `data + off`, within the scratch buffer.
    let got = unsafe {
        generated::bpf_probe_read_user_str(data.add(off as usize).cast(), EXEC_ARGS_LEN as u32, ptr as *const _)
    };
    // The helper counts the NUL, except for an empty string: 0 (its NUL is
    // still written).
    if !(0..=EXEC_ARGS_LEN as i64).contains(&got) {
        return false;
    }
    // Count an empty string's NUL without a branch (`got == 0` gives
    // `got - 1` its top bit): a branch would be one more path for the
    // verifier to walk in every iteration.
    let used = got as u32 + ((got as u64).wrapping_sub(1) >> 63) as u32;
    // SAFETY: as above.
    unsafe {
        core::ptr::write_volatile(off_at, off + used);
        core::ptr::write_volatile(nstrings_at, core::ptr::read_volatile(nstrings_at) + 1);
    }
    true
}

#[inline(always)]
fn spec_of(nr: u32) -> SyscallSpec {
    SPECS.get(nr.min(MAX_SYSCALLS - 1)).copied().unwrap_or_default()
}

/// The user stack pointer from the saved user registers.
#[inline(always)]
fn read_sp(regs: *const pt_regs) -> Result<u64, i64> {
    #[cfg(bpf_target_arch = "x86_64")]
    {
        // SAFETY: `regs` is the tracepoint's own `pt_regs` pointer.
        let r = unsafe { bpf_probe_read_kernel(regs) }.map_err(i64::from)?;
        Ok(r.rsp)
    }
    #[cfg(bpf_target_arch = "aarch64")]
    {
        // SAFETY: on arm64 `pt_regs` starts with `user_pt_regs`.
        let r = unsafe { bpf_probe_read_kernel(regs.cast::<aya_ebpf::bindings::user_pt_regs>()) }.map_err(i64::from)?;
        Ok(r.sp)
    }
}

/// The number of the syscall whose exit `ctx` is, read from its saved
/// registers (`orig_rax`); `None` where it is not read.
#[inline(always)]
fn exit_nr(ctx: &RawTracePointContext) -> Option<u32> {
    #[cfg(bpf_target_arch = "x86_64")]
    {
        let regs: *const pt_regs = ctx.arg(0);
        let at = regs.cast::<u8>().wrapping_add(core::mem::offset_of!(pt_regs, orig_rax)).cast::<u64>();
        // SAFETY: a checked kernel read inside the tracepoint's `pt_regs`.
        unsafe { bpf_probe_read_kernel(at) }.ok().map(|nr| nr as u32)
    }
    #[cfg(not(bpf_target_arch = "x86_64"))]
    {
        let _ = ctx;
        None
    }
}

/// The six syscall arguments from the saved user registers.
#[inline(always)]
fn read_args(regs: *const pt_regs) -> Result<[u64; 6], i64> {
    #[cfg(bpf_target_arch = "x86_64")]
    {
        // Only the eight registers from r10 to rdi, which hold the six
        // arguments, are read: the helper's cost grows with the bytes.
        // The syscall ABI passes the fourth argument in r10, not rcx.
        // <https://github.com/torvalds/linux/blob/v6.18/arch/x86/include/asm/ptrace.h#L103>
        #[repr(C)]
        #[derive(Clone, Copy)]
        struct ArgRegs {
            r10: u64,
            r9: u64,
            r8: u64,
            _ax: u64,
            _cx: u64,
            rdx: u64,
            rsi: u64,
            rdi: u64,
        }
        let first = core::mem::offset_of!(pt_regs, r10);
        const _: () = assert!(core::mem::offset_of!(pt_regs, rdi) - core::mem::offset_of!(pt_regs, r10) == 56);
        // SAFETY: `regs` is the tracepoint's own `pt_regs` pointer, and
        // `ArgRegs` mirrors its fields from r10 to rdi (checked above).
        let r = unsafe { bpf_probe_read_kernel(regs.cast::<u8>().wrapping_add(first).cast::<ArgRegs>()) }
            .map_err(i64::from)?;
        Ok([r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9])
    }
    #[cfg(bpf_target_arch = "aarch64")]
    {
        // SAFETY: on arm64 `pt_regs` starts with `user_pt_regs`.
        let r = unsafe { bpf_probe_read_kernel(regs.cast::<aya_ebpf::bindings::user_pt_regs>()) }.map_err(i64::from)?;
        Ok([r.regs[0], r.regs[1], r.regs[2], r.regs[3], r.regs[4], r.regs[5]])
    }
}

#[inline(always)]
fn now() -> u64 {
    // SAFETY: a helper with no preconditions.
    unsafe { bpf_ktime_get_ns() }
}
