//! Per-session state shared with the kernel side: the session's settings
//! ([`SessionConfig`]), its summary counters ([`SyscallStats`]) and what
//! it lost ([`Losses`]).

/// Largest number of sessions one loaded tracer serves at once (one
/// fewer: id 0 means none). The daemon serves every user's tests from one
/// loaded tracer, so this is sized for many concurrent test processes.
pub const MAX_SESSIONS: u32 = 256;
/// Syscall numbers at or above this are folded into the last slot.
pub const MAX_SYSCALLS: u32 = 512;

/// `SessionConfig::flags`: the session is live; its tree is traced.
pub const SESSION_ACTIVE: u32 = 1;
/// `SessionConfig::flags`: count syscalls in the kernel instead of
/// recording each one (`probity run --summary`).
pub const SESSION_SUMMARY: u32 = 2;
/// `SessionConfig::flags`: the session's owner is not root, so a task
/// that execs into more privilege than `owner_uid`/`owner_gid` (setuid,
/// setgid, file capabilities) leaves the session at that exec.
pub const SESSION_CHECK_PRIVILEGE: u32 = 4;

/// Summary sessions that can count at once in one loaded tracer.
pub const MAX_SUMMARY_SESSIONS: u32 = 8;

/// Per-session settings, in the `SESSIONS` array indexed by session id.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SessionConfig {
    /// `SESSION_*` flags.
    pub flags: u32,
    /// Bytes of read/write buffers to keep: a [`StringLimit`](crate::StringLimit).
    pub string_limit: u32,
    /// With `SESSION_SUMMARY`: which block of `MAX_SYSCALLS` counters in
    /// `STATS` is this session's (below [`MAX_SUMMARY_SESSIONS`]).
    pub stats_slot: u32,
    /// Changes each time the id is given to a new session. The syscall
    /// probes cache "this thread is traced by this session" per CPU, and
    /// trust the cache only while the generation is the one they saw.
    pub generation: u32,
    /// With `SESSION_CHECK_PRIVILEGE`: the real user and group ids of the
    /// session's owner (the process that loaded the tracer, or the
    /// daemon's client), the most a traced task may hold.
    pub owner_uid: u32,
    pub owner_gid: u32,
}

/// Per-session, per-syscall counters for summary sessions, in a per-CPU
/// array indexed by `stats_slot * MAX_SYSCALLS + nr`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SyscallStats {
    pub calls: u64,
    pub errors: u64,
    pub total_ns: u64,
}

/// Per-session loss counters, in a per-CPU array indexed by session id.
/// Every record the kernel side could not write is counted here.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Losses {
    /// Records dropped because the ring buffer was full.
    pub ring_full: u64,
    /// Syscalls not recorded because the in-flight map was full.
    pub inflight_full: u64,
    /// New tasks not followed because the task map was full; their whole
    /// subtree is missing from the trace.
    pub task_map_full: u64,
    /// Captures whose user memory could not be read.
    pub capture_faults: u64,
    /// Sockets not followed because the socket map was full: their later
    /// events (state changes, retransmits, resets, bytes) are missing.
    pub sock_map_full: u64,
}

const _: () = {
    assert!(size_of::<SessionConfig>() == 24);
    assert!(size_of::<SyscallStats>() == 24);
    assert!(size_of::<Losses>() == 40);
};
