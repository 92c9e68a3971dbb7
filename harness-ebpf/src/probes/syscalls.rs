//! Every syscall of a traced task, from the raw `sys_enter`/`sys_exit`
//! tracepoints.
//!
//! Entry saves the raw arguments in `INFLIGHT`; exit writes one record with
//! the arguments, the result, the duration and the captures the harness
//! asked for in `SPECS` (paths, buffers, socket addresses), read after the
//! call so that output buffers hold what the kernel wrote, and input ones
//! have been faulted in by the kernel (a BPF read cannot fault a page in).
//! Syscalls that never return (`exit_group`) are recorded at entry. An
//! exec's argv is recorded at exit too: from the new stack after a
//! successful exec, from the old memory after a failed one.
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
        bpf_probe_read_user_str_bytes,
    },
    macros::raw_tracepoint,
    programs::RawTracePointContext,
};
use probity_common::{
    Capture, CaptureKind, EventHeader, EventKind, SyscallEvent, SyscallSpec, CAPTURE_FAULT,
    CAPTURE_TRUNCATED, EXEC_ARGS_FAULT, EXEC_ARGS_LEN, EXEC_ARGS_TRUNCATED, EXEC_MAX_ARGS,
    MAX_CAPTURE, MAX_CAPTURES, MAX_SUMMARY_SESSIONS, MAX_SYSCALLS, SESSION_SUMMARY, SPEC_EXEC, SPEC_NO_RETURN,
    SYSCALL_NO_RETURN,
};

use crate::maps::{
    count_loss, current_ids, session_of, wake_flags, ExecJob, InFlight, Scratch, EVENTS, EXEC_JOB, INFLIGHT, TAILS, TAIL_EXEC_ARGS,
    SCRATCH, SCRATCH_LEN, SESSIONS, SPECS, STATS,
};

const EVENT_LEN: usize = core::mem::size_of::<SyscallEvent>();
/// `InFlight::nr` of a task that is not inside a syscall.
const IDLE: u32 = u32::MAX;
const CAPTURE_HDR: usize = core::mem::size_of::<Capture>();
/// Socket addresses are at most `sizeof(struct sockaddr_storage)`.
const SOCKADDR_MAX: u64 = 128;

#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn sys_enter(ctx: RawTracePointContext) -> i32 {
    let _ = try_sys_enter(&ctx);
    0
}

fn try_sys_enter(ctx: &RawTracePointContext) -> Result<(), i64> {
    let (pid, tid) = current_ids();
    let Some(session) = session_of(tid) else { return Ok(()) };
    let regs: *const pt_regs = ctx.arg(0);
    let nr: i64 = ctx.arg(1);
    let nr = nr as u32;
    let args = read_args(regs)?;
    let ts_ns = now();
    let spec = spec_of(nr);
    let inflight = InFlight { session, nr, args, ts_ns };
    if spec.flags & SPEC_NO_RETURN != 0 {
        // There will be no exit: record it now.
        finish(pid, tid, &inflight, &spec, 0, ts_ns, SYSCALL_NO_RETURN);
        return Ok(());
    }
    // Each task keeps one entry for its life (removed when it exits),
    // rewritten in place at every entry: no map insert or delete per
    // syscall, which would cost more than the rest of the probe.
    match INFLIGHT.get_ptr_mut(tid) {
        // SAFETY: this task's own entry; only this task writes it, and
        // preallocated entries stay valid until removed.
        Some(slot) => unsafe { *slot = inflight },
        None => {
            if INFLIGHT.insert(tid, inflight, 0).is_err() {
                count_loss(session, |l| l.inflight_full += 1);
            }
        }
    }
    Ok(())
}

#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn sys_exit(ctx: RawTracePointContext) -> i32 {
    let _ = try_sys_exit(&ctx);
    0
}

fn try_sys_exit(ctx: &RawTracePointContext) -> Result<(), i64> {
    let (pid, tid) = current_ids();
    let Some(slot) = INFLIGHT.get_ptr_mut(tid) else { return Ok(()) };
    // SAFETY: this task's own entry (see `try_sys_enter`).
    let inflight = unsafe { *slot };
    if inflight.nr == IDLE {
        // Not in a syscall (a fork child's first return, say).
        return Ok(());
    }
    // SAFETY: as above.
    unsafe { (*slot).nr = IDLE };
    let ret: i64 = ctx.arg(1);
    let end_ns = now();
    let spec = spec_of(inflight.nr);
    finish(pid, tid, &inflight, &spec, ret, end_ns, 0);
    if spec.flags & SPEC_EXEC != 0 {
        // Read argv now, not at entry: the kernel has just touched the
        // memory (a BPF read cannot fault a page in, and a forked child's
        // file-backed pages are often not mapped yet). After a successful
        // exec the old memory is gone, but the new stack holds argc and
        // argv at the stack pointer. The reading is its own program,
        // reached by a tail call, so the verifier checks its loop apart.
        let (path, argv) = if ret == 0 {
            let regs: *const pt_regs = ctx.arg(0);
            (0, read_sp(regs)? + 8)
        } else {
            let path_arg = (spec.exec_path_arg as usize).min(4);
            (inflight.args[path_arg], inflight.args[path_arg + 1])
        };
        let job = ExecJob { session: inflight.session, pid, tid, _pad: 0, ts_ns: inflight.ts_ns, path, argv };
        if let Some(slot) = EXEC_JOB.get_ptr_mut(0) {
            // SAFETY: the per-CPU slot is ours until the tail-called program returns.
            unsafe { *slot = job };
            // SAFETY: a tail call with this program's own context.
            unsafe { TAILS.tail_call(ctx, TAIL_EXEC_ARGS) };
        }
        // Only reached when the tail call failed.
        count_loss(inflight.session, |l| l.ring_full += 1);
    }
    Ok(())
}

/// The exec argv program, reached from `sys_exit` by a tail call.
#[raw_tracepoint]
pub fn exec_args_tail(_ctx: RawTracePointContext) -> i32 {
    if let Some(job) = EXEC_JOB.get(0) {
        let job = *job;
        exec_args(job.session, job.pid, job.tid, job.ts_ns, job.path, job.argv);
    }
    0
}

/// Counts or records a finished syscall.
#[inline(always)]
fn finish(pid: u32, tid: u32, call: &InFlight, spec: &SyscallSpec, ret: i64, end_ns: u64, flags: u32) {
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
    if spec.captures[0].kind == CaptureKind::None as u8 || spec.flags & SPEC_EXEC != 0 {
        // The common case: a fixed-size record straight into the ring.
        if EVENTS.output::<SyscallEvent>(&event, wake_flags()).is_err() {
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
        if let Some(used) = capture(scratch, len, call, config.buf_len, c.kind, c.arg, c.len_arg, ret) {
            if used.1 {
                count_loss(session, |l| l.capture_faults += 1);
            }
            len += used.0;
            ncaptures += 1;
        }
    }
    let event = SyscallEvent { ncaptures, ..event };
    // SAFETY: `EVENT_LEN` bytes at the start of the scratch buffer.
    unsafe { core::ptr::write_unaligned(scratch.bytes.as_mut_ptr().cast::<SyscallEvent>(), event) };
    let len = len & (SCRATCH_LEN - 1);
    if EVENTS.output::<[u8]>(&scratch.bytes[..len], wake_flags()).is_err() {
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
    buf_len: u32,
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
    let want: u64 = match kind {
        k if k == CaptureKind::CStr as u8 => u64::MAX,
        k if k == CaptureKind::BufLenArg as u8 => len_val,
        k if k == CaptureKind::BufLenRet as u8 => {
            if ret <= 0 {
                return None;
            }
            ret as u64
        }
        k if k == CaptureKind::SockaddrLenArg as u8 => len_val.min(SOCKADDR_MAX),
        k if k == CaptureKind::SockaddrLenPtr as u8 => {
            if ret < 0 || len_val == 0 {
                return None;
            }
            // SAFETY: a checked read of user memory.
            match unsafe { bpf_probe_read_user(len_val as *const u32) } {
                Ok(l) => u64::from(l).min(SOCKADDR_MAX),
                Err(_) => return None,
            }
        }
        _ => return None,
    };
    let dst = &mut scratch.bytes[data_off..data_off + MAX_CAPTURE];
    let got: usize = if kind == CaptureKind::CStr as u8 {
        // SAFETY: a checked read of user memory into our buffer.
        match unsafe { bpf_probe_read_user_str_bytes(ptr as *const u8, dst) } {
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
        let limit = if kind == CaptureKind::BufLenArg as u8 || kind == CaptureKind::BufLenRet as u8 {
            u64::from(buf_len)
        } else {
            SOCKADDR_MAX
        };
        let mut n = want.min(limit).min(MAX_CAPTURE as u64 - 1) as usize;
        if (n as u64) < want {
            flags |= CAPTURE_TRUNCATED;
        }
        n &= MAX_CAPTURE - 1;
        if n > 0 {
            // SAFETY: a checked read of user memory into our buffer.
            if unsafe { bpf_probe_read_user_buf(ptr as *const u8, &mut dst[..n]) }.is_err() {
                flags |= CAPTURE_FAULT;
                n = 0;
            }
        }
        n
    };
    let header = Capture { arg, kind, flags, _pad: 0, len: got as u32 };
    // SAFETY: `offset + 8` is within the buffer (masked above).
    unsafe {
        core::ptr::write_unaligned(scratch.bytes.as_mut_ptr().add(offset).cast::<Capture>(), header)
    };
    Some((CAPTURE_HDR + ((got + 7) & !7), flags & CAPTURE_FAULT != 0))
}

/// Records an exec's path (0 for none) and argv.
#[inline(always)]
fn exec_args(session: u32, pid: u32, tid: u32, ts_ns: u64, path: u64, argv: u64) {
    let Some(scratch) = SCRATCH.get_ptr_mut(0) else { return };
    // SAFETY: the per-CPU scratch buffer is ours until this program returns.
    let scratch = unsafe { &mut *scratch };
    const HDR: usize = 40;
    let mut off = 0usize;
    let mut nstrings = 0u32;
    let mut flags = 0u32;
    // The path first, then argv[0..]. Each string lands at `HDR + off`
    // with `off` masked below `EXEC_ARGS_LEN`, and reads at most
    // `EXEC_ARGS_LEN` bytes, so every write stays in the buffer.
    // No path (after a successful exec): an empty string stands for it,
    // and the harness takes the file name from the exec event.
    if path == 0 {
        scratch.bytes[HDR] = 0;
        off += 1;
        nstrings += 1;
    } else {
        match read_str(scratch, HDR + (off & (EXEC_ARGS_LEN - 1)), path) {
            Some(n) => {
                off += n;
                nstrings += 1;
            }
            None => flags |= EXEC_ARGS_FAULT,
        }
    }
    if argv != 0 {
        for i in 0..EXEC_MAX_ARGS {
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
            if off >= EXEC_ARGS_LEN - 1 || i == EXEC_MAX_ARGS - 1 {
                flags |= EXEC_ARGS_TRUNCATED;
                break;
            }
            match read_str(scratch, HDR + (off & (EXEC_ARGS_LEN - 1)), p) {
                Some(n) => {
                    off += n;
                    nstrings += 1;
                }
                None => {
                    flags |= EXEC_ARGS_FAULT;
                    break;
                }
            }
        }
    }
    let len = off.min(EXEC_ARGS_LEN);
    if off > EXEC_ARGS_LEN {
        flags |= EXEC_ARGS_TRUNCATED;
    }
    let header = probity_common::ExecArgsHeader {
        header: EventHeader::new(EventKind::ExecArgs, session, ts_ns, pid, tid),
        nstrings,
        flags,
        len: len as u32,
        _pad: 0,
    };
    // SAFETY: the header fits at the start of the buffer.
    unsafe {
        core::ptr::write_unaligned(scratch.bytes.as_mut_ptr().cast::<probity_common::ExecArgsHeader>(), header)
    };
    let total = (HDR + len) & (SCRATCH_LEN - 1);
    if EVENTS.output::<[u8]>(&scratch.bytes[..total], wake_flags()).is_err() {
        count_loss(session, |l| l.ring_full += 1);
    }
}

/// Reads a user string with its NUL at `at`; returns the bytes used.
#[inline(always)]
fn read_str(scratch: &mut Scratch, at: usize, ptr: u64) -> Option<usize> {
    let at = at & (2 * EXEC_ARGS_LEN - 1);
    let dst = &mut scratch.bytes[at..at + EXEC_ARGS_LEN];
    // SAFETY: a checked read of user memory into our buffer.
    match unsafe { bpf_probe_read_user_str_bytes(ptr as *const u8, dst) } {
        Ok(s) => Some(s.len() + 1),
        Err(_) => None,
    }
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
        let r = unsafe { bpf_probe_read_kernel(regs.cast::<aya_ebpf::bindings::user_pt_regs>()) }
            .map_err(i64::from)?;
        Ok(r.sp)
    }
}

/// The six syscall arguments from the saved user registers.
#[inline(always)]
fn read_args(regs: *const pt_regs) -> Result<[u64; 6], i64> {
    #[cfg(bpf_target_arch = "x86_64")]
    {
        // SAFETY: `regs` is the tracepoint's own `pt_regs` pointer.
        let r = unsafe { bpf_probe_read_kernel(regs) }.map_err(i64::from)?;
        // The syscall ABI passes the fourth argument in r10, not rcx.
        Ok([r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9])
    }
    #[cfg(bpf_target_arch = "aarch64")]
    {
        // SAFETY: on arm64 `pt_regs` starts with `user_pt_regs`.
        let r = unsafe { bpf_probe_read_kernel(regs.cast::<aya_ebpf::bindings::user_pt_regs>()) }
            .map_err(i64::from)?;
        Ok([r.regs[0], r.regs[1], r.regs[2], r.regs[3], r.regs[4], r.regs[5]])
    }
}

#[inline(always)]
fn now() -> u64 {
    // SAFETY: a helper with no preconditions.
    unsafe { bpf_ktime_get_ns() }
}
