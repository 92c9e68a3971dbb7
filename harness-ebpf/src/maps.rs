//! The maps shared by all probes, and small helpers around them.
//!
//! The harness sizes `EVENTS`, `TASKS` and `INFLIGHT` at load time and fills
//! `SPECS` (what to capture per syscall) and `SESSIONS`.

use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, ProgramArray, RingBuf},
};
use probity_common::{
    Losses, MaxTasks, RingBytes, SessionConfig, SockOwner, SyscallSpec, SyscallStats, MAX_CAPTURE, MAX_SESSIONS,
    MAX_SUMMARY_SESSIONS, MAX_SYSCALLS,
};

/// Every record for userspace. Resized by the harness.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(RingBytes::DEFAULT.get(), 0);

/// Traced tasks: thread id to session id. A task is added when its parent
/// forks it (or, for a session's first process, by the harness before it
/// execs) and removed when it exits.
#[map]
pub static TASKS: HashMap<u32, u32> = HashMap::with_max_entries(MaxTasks::DEFAULT.get(), 0);

/// A syscall between entry and exit.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct InFlight {
    pub session: u32,
    pub nr: u32,
    pub args: [u64; 6],
    pub ts_ns: u64,
}

/// What the syscall probes know about the task running on this CPU.
///
/// The syscall a traced task is inside: most syscalls end where they
/// began, without a context switch in between, so their entry and exit
/// meet here instead of in a hash map (a lookup at each end, the largest
/// cost of a traced syscall after the ring). When the task is switched
/// out with its syscall unfinished, `sched_switch` moves the entry to
/// [`INFLIGHT`] (see `probes/syscalls.rs`).
///
/// And whether it is traced: once `TASKS` said so, its next syscalls skip
/// that lookup until it is switched out (`sched_switch` forgets it), exits
/// (the exit probe does), or its session ends (the session's generation
/// in `SESSIONS` changes, and the cache is not trusted).
///
/// And, for every other task on the machine, that it is not traced: its
/// syscall's exit then skips the `INFLIGHT` lookup, and its next entries
/// on this CPU skip the `TASKS` lookup, the whole cost of a syscall of a
/// process beside a session, until it is switched out or [`TASKS_EPOCH`]
/// changes. A task is added to `TASKS` only as a new task (which is
/// switched in before it runs, and the switch forgets the slot) or by a
/// `bpf` syscall (whose exit changes the epoch).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CpuSlot {
    /// The thread in the syscall; 0 when the slot is empty.
    pub tid: u32,
    /// The running thread, if `TASKS` had it; 0 when unknown.
    pub owner: u32,
    /// The owner's session, and its `SessionConfig::generation` then.
    pub owner_session: u32,
    pub owner_generation: u32,
    /// The thread whose last syscall entry on this CPU was untraced, so
    /// that the exit knows it has nothing to look for; 0 after a traced
    /// entry, and `sched_switch` forgets it.
    pub quiet: u32,
    /// `quiet`'s syscall is a `bpf` call (which may add to `TASKS`).
    pub quiet_bpf: u32,
    /// Records this CPU's syscall probes wrote or tried to (see
    /// [`wake_flags_sampled`]).
    pub records: u32,
    pub _pad: u32,
    /// [`TASKS_EPOCH`] when `TASKS` was asked about `quiet`.
    pub quiet_epoch: u64,
    pub call: InFlight,
}

#[map]
pub static CPU_SLOT: PerCpuArray<CpuSlot> = PerCpuArray::with_max_entries(1, 0);

/// Changes after every `bpf` syscall that may have added a task to
/// `TASKS` (any whose kind the exit cannot tell), so that no CPU keeps
/// believing that task untraced (see [`CpuSlot::quiet`]). It holds the
/// time of the last change: a plain store (this target has no atomic add
/// in Rust) of a value later than any a slot saw before the addition, so
/// that two CPUs racing cannot bring back one a slot holds.
#[map]
pub static TASKS_EPOCH: Array<u64> = Array::with_max_entries(1, 0);

/// The current [`TASKS_EPOCH`].
#[inline(always)]
pub fn tasks_epoch() -> u64 {
    TASKS_EPOCH.get(0).copied().unwrap_or(0)
}

/// Changes [`TASKS_EPOCH`]: `TASKS` may have gained a task.
#[inline(always)]
pub fn new_tasks_epoch() {
    if let Some(epoch) = TASKS_EPOCH.get_ptr_mut(0) {
        // SAFETY: a valid, aligned map value for the life of the program,
        // which other CPUs read whole (an aligned 8-byte store).
        unsafe { core::ptr::write_volatile(epoch, aya_ebpf::helpers::bpf_ktime_get_ns()) };
    }
}

/// Syscalls whose task was switched out before their exit, keyed by
/// thread id. A task keeps its entry for its life once it has one,
/// marked idle between syscalls, so that blocking syscalls do not insert
/// and delete an entry each time.
#[map]
pub static INFLIGHT: HashMap<u32, InFlight> = HashMap::with_max_entries(MaxTasks::DEFAULT.get(), 0);

/// What to capture for each syscall number, filled by the harness.
#[map]
pub static SPECS: Array<SyscallSpec> = Array::with_max_entries(MAX_SYSCALLS, 0);

/// Settings of each session, indexed by session id.
#[map]
pub static SESSIONS: Array<SessionConfig> = Array::with_max_entries(MAX_SESSIONS, 0);

/// Summary counters, indexed by `stats_slot * MAX_SYSCALLS + nr`: only a
/// few summary sessions at once, as a large per-CPU array is slow to create.
#[map]
pub static STATS: PerCpuArray<SyscallStats> = PerCpuArray::with_max_entries(MAX_SUMMARY_SESSIONS * MAX_SYSCALLS, 0);

/// Loss counters, indexed by session id.
#[map]
pub static LOSSES: PerCpuArray<Losses> = PerCpuArray::with_max_entries(MAX_SESSIONS, 0);

/// Sockets owned by traced tasks, keyed by the kernel's socket address
/// (see `probes/net.rs`). A full map is counted as `sock_map_full`.
#[map]
pub static SOCKS: HashMap<u64, SockOwner> = HashMap::with_max_entries(65536, 0);

/// A connection's ports (host byte order) and addresses (4 bytes used for
/// `AF_INET`).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Tuple {
    pub family: u16,
    pub sport: u16,
    pub dport: u16,
    pub _pad: u16,
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
}

/// Server-side sockets whose handshake completed on a port a traced task
/// listens on, with their addresses, until a traced task accepts them.
/// Least recently used entries go first: a connection nobody accepts is
/// forgotten.
#[map]
pub static PENDING: LruHashMap<u64, Tuple> = LruHashMap::with_max_entries(4096, 0);

/// Ports traced tasks listen on (any family), to the session that last
/// listened there; the harness removes a session's ports when it ends.
#[map]
pub static LISTEN_PORTS: HashMap<u32, u32> = HashMap::with_max_entries(1024, 0);

/// Room to build a variable-length record before it is copied into the
/// ring: a syscall record with two captures, or an exec's argv.
pub const SCRATCH_LEN: usize = 4 * MAX_CAPTURE;

#[repr(C, align(8))]
pub struct Scratch {
    pub bytes: [u8; SCRATCH_LEN],
}

#[map]
pub static SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(1, 0);

/// Programs `sys_exit` hands over to with a tail call, so the verifier
/// checks each on its own: slot [`TAIL_EXEC_ARGS`] records an exec's argv,
/// slot [`TAIL_ACCEPT`] claims the socket an `accept` returned.
#[map]
pub static TAILS: ProgramArray = ProgramArray::with_max_entries(2, 0);
pub const TAIL_EXEC_ARGS: u32 = 0;
pub const TAIL_ACCEPT: u32 = 1;

/// What `sys_exit` and `sched_prepare_exec` pass to the exec argv program.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ExecJob {
    pub session: u32,
    pub pid: u32,
    pub tid: u32,
    /// `EXEC_ARGS_*` flags for the record: which moment it was read at.
    pub flags: u32,
    pub ts_ns: u64,
    /// The path string (0: none, after a successful exec).
    pub path: u64,
    /// The argv array.
    pub argv: u64,
}

#[map]
pub static EXEC_JOB: PerCpuArray<ExecJob> = PerCpuArray::with_max_entries(1, 0);

/// Ring fill level above which a record wakes the consumer. Below it the
/// consumer is not woken: it polls every few milliseconds, so records are
/// batched instead of costing a wake-up each. Set by the harness.
#[unsafe(no_mangle)]
static WAKE_THRESHOLD: u64 = 1 << 20;

/// The flags to submit a record with: a wake-up only once the ring is
/// filling up.
#[inline(always)]
pub fn wake_flags() -> u64 {
    // SAFETY: a read of a constant the loader may have rewritten.
    let threshold = unsafe { core::ptr::read_volatile(&WAKE_THRESHOLD) };
    if EVENTS.query(BPF_RB_AVAIL_DATA as u64) > threshold {
        BPF_RB_FORCE_WAKEUP as u64
    } else {
        BPF_RB_NO_WAKEUP as u64
    }
}

/// Which of this CPU's syscall records ask for the ring's fill level:
/// those whose count has these low bits clear. 0 (every record) unless
/// the harness, for a ring with room to spare, set it higher.
#[unsafe(no_mangle)]
static WAKE_SAMPLE_MASK: u32 = 0;

/// [`wake_flags`], asked only for some of the records this CPU's syscall
/// probes write or try to (`records` counts them; see
/// [`WAKE_SAMPLE_MASK`]): asking reads both ring positions, one of them
/// written by the consumer on another CPU.
#[inline(always)]
pub fn wake_flags_sampled(records: &mut u32) -> u64 {
    *records = records.wrapping_add(1);
    // SAFETY: a read of a constant the loader may have rewritten.
    let mask = unsafe { core::ptr::read_volatile(&WAKE_SAMPLE_MASK) };
    if *records & mask == 0 {
        wake_flags()
    } else {
        BPF_RB_NO_WAKEUP as u64
    }
}

/// The session the current task belongs to, if it is traced.
#[inline(always)]
pub fn session_of(tid: u32) -> Option<u32> {
    // SAFETY: the value is a plain `u32` copied out at once.
    unsafe { TASKS.get(tid).copied() }
}

/// Applies `f` to the current CPU's loss counters of `session`.
#[inline(always)]
pub fn count_loss(session: u32, f: impl FnOnce(&mut Losses)) {
    if let Some(l) = LOSSES.get_ptr_mut(session) {
        // SAFETY: a per-CPU slot; BPF programs do not preempt each other on one CPU.
        f(unsafe { &mut *l });
    }
}

/// The current task's process id and thread id.
#[inline(always)]
pub fn current_ids() -> (u32, u32) {
    let pid_tgid = aya_ebpf::helpers::bpf_get_current_pid_tgid();
    ((pid_tgid >> 32) as u32, pid_tgid as u32)
}
