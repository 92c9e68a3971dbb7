//! TCP connections of traced tasks, charged to the task that owns the
//! socket: connects, listens, accepts, state changes, closes with their
//! byte counts, retransmits and resets.
//!
//! Ownership is decided in process context only: a traced task that
//! connects (`TCP_CLOSE` to `TCP_SYN_SENT`, in `connect(2)`), listens, or
//! accepts (the socket behind the descriptor `accept` returned) owns the
//! socket, and `SOCKS` maps the kernel's socket address to that owner.
//! Everything else looks the socket up there, so events that fire in
//! softirq or timer context, where the current task is whoever happened
//! to run (pid 0, or the peer process on loopback), are charged to the
//! owner. A socket leaves the map when the kernel destroys it
//! (`tcp_destroy_sock`, after `TCP_CLOSE`), so a reused socket address is
//! never charged to its previous owner.
//!
//! Bytes are counted per socket in the map, from `sock_send_length` and
//! `sock_recv_length`, and reported once at close: a bulk transfer costs a
//! map update per `sendmsg`, not a record.
//!
//! The classic tracepoints are used where their formatted records carry
//! the addresses and ports (no struct walking without CO-RE); the byte
//! counters use raw tracepoints, whose arguments are all they need:
//! <https://github.com/torvalds/linux/blob/v6.18/include/trace/events/sock.h>,
//! <https://github.com/torvalds/linux/blob/v6.18/include/trace/events/tcp.h>.

use aya_ebpf::{
    helpers::{bpf_get_current_task, bpf_ktime_get_ns, bpf_probe_read_kernel},
    macros::{raw_tracepoint, tracepoint},
    programs::{RawTracePointContext, TracePointContext},
};
use probity_common::{EventHeader, EventKind, NetEvent, NetOp, SockOwner, NET_ADDR_UNKNOWN};

use crate::maps::{
    count_loss, current_ids, session_of, wake_flags, Tuple, EVENTS, LISTEN_PORTS, PENDING, SOCKS,
};

const IPPROTO_TCP: u16 = 6;
const AF_INET: u16 = 2;
const TCP_ESTABLISHED: i32 = 1;
const TCP_SYN_SENT: i32 = 2;
const TCP_SYN_RECV: i32 = 3;
const TCP_CLOSE: i32 = 7;
const TCP_LISTEN: i32 = 10;
const MSG_PEEK: i32 = 2;

/// `sock:inet_sock_set_state`, in whatever context changed the state:
/// ```text
/// field:const void * skaddr;  offset:8;  size:8;
/// field:int oldstate;         offset:16; size:4;
/// field:int newstate;         offset:20; size:4;
/// field:__u16 sport;          offset:24; size:2;
/// field:__u16 dport;          offset:26; size:2;
/// field:__u16 family;         offset:28; size:2;
/// field:__u16 protocol;       offset:30; size:2;
/// field:__u8 saddr[4];        offset:32; size:4;
/// field:__u8 daddr[4];        offset:36; size:4;
/// field:__u8 saddr_v6[16];    offset:40; size:16;
/// field:__u8 daddr_v6[16];    offset:56; size:16;
/// ```
/// Ports are in host byte order. `connect(2)` moves the socket to
/// `TCP_SYN_SENT` in the caller's context, with the destination set and
/// the source port not yet chosen; `listen(2)` to `TCP_LISTEN` likewise.
#[tracepoint(category = "sock", name = "inet_sock_set_state")]
pub fn inet_sock_set_state(ctx: TracePointContext) -> u32 {
    let _ = try_set_state(&ctx);
    0
}

fn try_set_state(ctx: &TracePointContext) -> Result<(), i64> {
    // SAFETY: offsets from the tracepoint format above; likewise below.
    let protocol: u16 = unsafe { ctx.read_at(30)? };
    if protocol != IPPROTO_TCP {
        return Ok(());
    }
    let sk: u64 = unsafe { ctx.read_at(8)? };
    let old: i32 = unsafe { ctx.read_at(16)? };
    let new: i32 = unsafe { ctx.read_at(20)? };
    let family: u16 = unsafe { ctx.read_at(28)? };
    let sport: u16 = unsafe { ctx.read_at(24)? };
    let dport: u16 = unsafe { ctx.read_at(26)? };
    let tuple = read_tuple(ctx, family, sport, dport, 32, 36, 40, 56)?;

    // SAFETY: the value is copied out at once.
    if let Some(owner) = unsafe { SOCKS.get(sk) }.copied() {
        // Even in `TCP_CLOSE` the socket lives on, with data to read,
        // until it is destroyed (see `tcp_destroy_sock`).
        emit(&owner, NetOp::State, sk, &tuple, old, new, 0);
        return Ok(());
    }
    let claims = (old == TCP_CLOSE && new == TCP_SYN_SENT) || new == TCP_LISTEN;
    if claims {
        let (pid, tid) = current_ids();
        let Some(session) = session_of(tid) else { return Ok(()) };
        let owner = SockOwner { session, pid, tid, ..SockOwner::default() };
        if SOCKS.insert(sk, owner, 0).is_err() {
            count_loss(session, |l| l.sock_map_full += 1);
        }
        if new == TCP_LISTEN {
            // Handshakes on this port are worth remembering for `accept`.
            let _ = LISTEN_PORTS.insert(u32::from(sport), session, 0);
        }
        let op = if new == TCP_LISTEN { NetOp::Listen } else { NetOp::Connect };
        emit(&owner, op, sk, &tuple, old, new, 0);
        return Ok(());
    }
    // A server-side socket completing its handshake, in softirq context:
    // nobody owns it until a traced task accepts it, but its addresses
    // are here, so keep them for the accept.
    // SAFETY: the map value is only tested for presence.
    if old == TCP_SYN_RECV && new == TCP_ESTABLISHED && unsafe { LISTEN_PORTS.get(u32::from(sport)) }.is_some() {
        let _ = PENDING.insert(sk, tuple, 0);
    }
    Ok(())
}

/// `tcp:tcp_destroy_sock`, when the kernel frees a TCP socket's state:
/// after `TCP_CLOSE` once its owner closed it (or at once if it had),
/// so every byte the owner read is counted. The socket address may be
/// reused from here on, so the socket leaves the map.
/// ```text
/// field:const void * skaddr;  offset:8;  size:8;
/// field:__u16 sport;          offset:16; size:2;
/// field:__u16 dport;          offset:18; size:2;
/// field:__u16 family;         offset:20; size:2;
/// field:__u8 saddr[4];        offset:22; size:4;
/// field:__u8 daddr[4];        offset:26; size:4;
/// field:__u8 saddr_v6[16];    offset:30; size:16;
/// field:__u8 daddr_v6[16];    offset:46; size:16;
/// ```
#[tracepoint(category = "tcp", name = "tcp_destroy_sock")]
pub fn tcp_destroy_sock(ctx: TracePointContext) -> u32 {
    let _ = try_destroy(&ctx);
    0
}

fn try_destroy(ctx: &TracePointContext) -> Result<(), i64> {
    // SAFETY: offsets from the tracepoint format above; likewise below.
    let sk: u64 = unsafe { ctx.read_at(8)? };
    let sport: u16 = unsafe { ctx.read_at(16)? };
    // SAFETY: the value is copied out at once.
    let Some(owner) = (unsafe { SOCKS.get(sk) }).copied() else {
        // A server-side socket nobody accepted.
        // SAFETY: only tested for presence.
        if unsafe { LISTEN_PORTS.get(u32::from(sport)) }.is_some() {
            let _ = PENDING.remove(sk);
        }
        return Ok(());
    };
    let family: u16 = unsafe { ctx.read_at(20)? };
    let dport: u16 = unsafe { ctx.read_at(18)? };
    let tuple = read_tuple(ctx, family, sport, dport, 22, 26, 30, 46)?;
    emit(&owner, NetOp::Close, sk, &tuple, TCP_CLOSE, TCP_CLOSE, 0);
    let _ = SOCKS.remove(sk);
    Ok(())
}

/// `syscalls:sys_exit_accept4` and `sys_exit_accept`, in the caller's
/// context:
/// ```text
/// field:int __syscall_nr;  offset:8;  size:4;
/// field:long ret;          offset:16; size:8;
/// ```
/// The new descriptor's socket is found by following
/// `current->files->fdt->fd[ret]->private_data->sk`, at offsets the
/// harness read from the kernel's BTF.
#[tracepoint(category = "syscalls", name = "sys_exit_accept4")]
pub fn sys_exit_accept4(ctx: TracePointContext) -> u32 {
    let _ = try_accept(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_accept")]
pub fn sys_exit_accept(ctx: TracePointContext) -> u32 {
    let _ = try_accept(&ctx);
    0
}

// Inlined into both accept probes: an out-of-line function would carry a
// mangled name whose hash depends on the checkout path, and the committed
// object must be the same wherever it is built.
#[inline(always)]
fn try_accept(ctx: &TracePointContext) -> Result<(), i64> {
    let (pid, tid) = current_ids();
    let Some(session) = session_of(tid) else { return Ok(()) };
    // SAFETY: offset from the tracepoint format above.
    let ret: i64 = unsafe { ctx.read_at(16)? };
    if ret < 0 || offset(&TASK_FILES_OFF) == 0 {
        return Ok(());
    }
    let sk = socket_of_fd(ret as u32)?;
    if sk == 0 {
        return Ok(());
    }
    claim_accepted(session, pid, tid, sk);
    Ok(())
}

/// Makes the current task the owner of `sk`, which it accepted, and
/// records the accept with the addresses seen at its handshake.
#[inline(always)]
fn claim_accepted(session: u32, pid: u32, tid: u32, sk: u64) {
    // SAFETY: an existing entry means the socket is owned already.
    if unsafe { SOCKS.get(sk) }.is_some() {
        return;
    }
    let owner = SockOwner { session, pid, tid, ..SockOwner::default() };
    if SOCKS.insert(sk, owner, 0).is_err() {
        count_loss(session, |l| l.sock_map_full += 1);
    }
    // SAFETY: the value is copied out at once.
    let (tuple, flags) = match unsafe { PENDING.get(sk) }.copied() {
        Some(t) => {
            let _ = PENDING.remove(sk);
            (t, 0)
        }
        None => (Tuple::default(), NET_ADDR_UNKNOWN),
    };
    emit(&owner, NetOp::Accept, sk, &tuple, TCP_ESTABLISHED, TCP_ESTABLISHED, flags);
}

/// The `struct sock` behind descriptor `fd` of the current task, or 0.
#[inline(always)]
fn socket_of_fd(fd: u32) -> Result<u64, i64> {
    // SAFETY: checked kernel reads along the descriptor table, at BTF offsets.
    unsafe {
        let task = bpf_get_current_task() as *const u8;
        let files: *const u8 = bpf_probe_read_kernel(task.wrapping_add(offset(&TASK_FILES_OFF)).cast())?;
        let fdt: *const u8 = bpf_probe_read_kernel(files.wrapping_add(offset(&FILES_FDT_OFF)).cast())?;
        let max: u32 = bpf_probe_read_kernel(fdt.wrapping_add(offset(&FDT_MAX_FDS_OFF)).cast())?;
        if fd >= max {
            return Ok(0);
        }
        let fds: *const u64 = bpf_probe_read_kernel(fdt.wrapping_add(offset(&FDT_FD_OFF)).cast())?;
        let file: *const u8 = bpf_probe_read_kernel(fds.wrapping_add(fd as usize).cast())?;
        if file.is_null() {
            return Ok(0);
        }
        let socket: *const u8 = bpf_probe_read_kernel(file.wrapping_add(offset(&FILE_PRIVATE_DATA_OFF)).cast())?;
        if socket.is_null() {
            return Ok(0);
        }
        let sk: u64 = bpf_probe_read_kernel(socket.wrapping_add(offset(&SOCKET_SK_OFF)).cast())?;
        Ok(sk)
    }
}

/// `sock_send_length` as a raw tracepoint, in the sender's context:
/// `TP_PROTO(struct sock *sk, int ret, int flags)`.
#[raw_tracepoint(tracepoint = "sock_send_length")]
pub fn sock_send_length(ctx: RawTracePointContext) -> i32 {
    let sk: u64 = ctx.arg(0);
    let ret: i32 = ctx.arg(1);
    count_bytes(sk, ret, true);
    0
}

/// `sock_recv_length` as a raw tracepoint, in the receiver's context:
/// `TP_PROTO(struct sock *sk, int ret, int flags)`; a `MSG_PEEK` read
/// leaves the data queued, so it is not counted.
#[raw_tracepoint(tracepoint = "sock_recv_length")]
pub fn sock_recv_length(ctx: RawTracePointContext) -> i32 {
    let sk: u64 = ctx.arg(0);
    let ret: i32 = ctx.arg(1);
    let flags: i32 = ctx.arg(2);
    if flags & MSG_PEEK == 0 {
        count_bytes(sk, ret, false);
    }
    0
}

/// Adds `ret` bytes to the socket's counters when a traced task moved
/// them on an owned socket. A traced task's first transfer on a socket
/// whose handshake was seen but whose accept was not (the harness found
/// no BTF offsets) claims it as accepted.
#[inline(always)]
fn count_bytes(sk: u64, ret: i32, sent: bool) {
    let (pid, tid) = current_ids();
    let Some(session) = session_of(tid) else { return };
    match SOCKS.get_ptr_mut(sk) {
        Some(owner) => {
            if ret > 0 {
                // SAFETY: a preallocated map value; counters are only
                // summed, and a lost race costs a count, never memory safety.
                let owner = unsafe { &mut *owner };
                if sent {
                    owner.bytes_sent += ret as u64;
                } else {
                    owner.bytes_received += ret as u64;
                }
            }
        }
        None => {
            // SAFETY: only tested for presence.
            if unsafe { PENDING.get(sk) }.is_some() {
                claim_accepted(session, pid, tid, sk);
                if let Some(owner) = SOCKS.get_ptr_mut(sk) {
                    if ret > 0 {
                        // SAFETY: as above.
                        let owner = unsafe { &mut *owner };
                        if sent {
                            owner.bytes_sent += ret as u64;
                        } else {
                            owner.bytes_received += ret as u64;
                        }
                    }
                }
            }
        }
    }
}

/// `tcp:tcp_retransmit_skb`, in softirq or timer context (the current
/// task is not the sender):
/// ```text
/// field:const void * skaddr;  offset:16; size:8;
/// field:int state;            offset:24; size:4;
/// field:__u16 sport;          offset:28; size:2;
/// field:__u16 dport;          offset:30; size:2;
/// field:__u16 family;         offset:32; size:2;
/// field:__u8 saddr[4];        offset:34; size:4;
/// field:__u8 daddr[4];        offset:38; size:4;
/// field:__u8 saddr_v6[16];    offset:42; size:16;
/// field:__u8 daddr_v6[16];    offset:58; size:16;
/// field:int err;              offset:76; size:4;
/// ```
#[tracepoint(category = "tcp", name = "tcp_retransmit_skb")]
pub fn tcp_retransmit_skb(ctx: TracePointContext) -> u32 {
    let _ = try_retransmit(&ctx);
    0
}

fn try_retransmit(ctx: &TracePointContext) -> Result<(), i64> {
    // SAFETY: offsets from the tracepoint format above; likewise below.
    let sk: u64 = unsafe { ctx.read_at(16)? };
    let Some(slot) = SOCKS.get_ptr_mut(sk) else { return Ok(()) };
    // SAFETY: a preallocated map value (see `count_bytes`).
    let owner = unsafe {
        (*slot).retransmits += 1;
        *slot
    };
    let state: i32 = unsafe { ctx.read_at(24)? };
    let family: u16 = unsafe { ctx.read_at(32)? };
    let sport: u16 = unsafe { ctx.read_at(28)? };
    let dport: u16 = unsafe { ctx.read_at(30)? };
    let tuple = read_tuple(ctx, family, sport, dport, 34, 38, 42, 58)?;
    emit(&owner, NetOp::Retransmit, sk, &tuple, state, state, 0);
    Ok(())
}

/// `tcp:tcp_send_reset`, in any context; `skaddr` is NULL for a reset
/// sent for no socket (a segment to a closed port):
/// ```text
/// field:const void * skaddr;  offset:16; size:8;
/// field:int state;            offset:24; size:4;
/// field:__u8 saddr[28];       offset:32; size:28;
/// field:__u8 daddr[28];       offset:60; size:28;
/// ```
/// The addresses are a `struct sockaddr_in` or `sockaddr_in6`, ports in
/// network byte order.
#[tracepoint(category = "tcp", name = "tcp_send_reset")]
pub fn tcp_send_reset(ctx: TracePointContext) -> u32 {
    let _ = try_send_reset(&ctx);
    0
}

fn try_send_reset(ctx: &TracePointContext) -> Result<(), i64> {
    // SAFETY: offsets from the tracepoint format above; likewise below.
    let sk: u64 = unsafe { ctx.read_at(16)? };
    if sk == 0 {
        return Ok(());
    }
    // SAFETY: the value is copied out at once.
    let Some(owner) = (unsafe { SOCKS.get(sk) }).copied() else { return Ok(()) };
    let state: i32 = unsafe { ctx.read_at(24)? };
    let src: [u8; 28] = unsafe { ctx.read_at(32)? };
    let dst: [u8; 28] = unsafe { ctx.read_at(60)? };
    let family = u16::from_ne_bytes([src[0], src[1]]);
    let mut tuple = Tuple {
        family,
        sport: u16::from_be_bytes([src[2], src[3]]),
        dport: u16::from_be_bytes([dst[2], dst[3]]),
        ..Tuple::default()
    };
    if family == AF_INET {
        tuple.saddr[..4].copy_from_slice(&src[4..8]);
        tuple.daddr[..4].copy_from_slice(&dst[4..8]);
    } else {
        tuple.saddr.copy_from_slice(&src[8..24]);
        tuple.daddr.copy_from_slice(&dst[8..24]);
    }
    emit(&owner, NetOp::ResetSent, sk, &tuple, state, state, 0);
    Ok(())
}

/// `tcp:tcp_receive_reset`, in softirq context:
/// ```text
/// field:const void * skaddr;  offset:8;  size:8;
/// field:__u16 sport;          offset:16; size:2;
/// field:__u16 dport;          offset:18; size:2;
/// field:__u16 family;         offset:20; size:2;
/// field:__u8 saddr[4];        offset:22; size:4;
/// field:__u8 daddr[4];        offset:26; size:4;
/// field:__u8 saddr_v6[16];    offset:30; size:16;
/// field:__u8 daddr_v6[16];    offset:46; size:16;
/// ```
#[tracepoint(category = "tcp", name = "tcp_receive_reset")]
pub fn tcp_receive_reset(ctx: TracePointContext) -> u32 {
    let _ = try_receive_reset(&ctx);
    0
}

fn try_receive_reset(ctx: &TracePointContext) -> Result<(), i64> {
    // SAFETY: offsets from the tracepoint format above; likewise below.
    let sk: u64 = unsafe { ctx.read_at(8)? };
    // SAFETY: the value is copied out at once.
    let Some(owner) = (unsafe { SOCKS.get(sk) }).copied() else { return Ok(()) };
    let family: u16 = unsafe { ctx.read_at(20)? };
    let sport: u16 = unsafe { ctx.read_at(16)? };
    let dport: u16 = unsafe { ctx.read_at(18)? };
    let tuple = read_tuple(ctx, family, sport, dport, 22, 26, 30, 46)?;
    emit(&owner, NetOp::ResetReceived, sk, &tuple, 0, 0, 0);
    Ok(())
}

/// Reads the addresses of a TCP tracepoint record: the 4-byte fields for
/// `AF_INET`, the 16-byte ones otherwise.
#[inline(always)]
#[expect(clippy::too_many_arguments, reason = "the field offsets of one tracepoint")]
fn read_tuple(
    ctx: &TracePointContext,
    family: u16,
    sport: u16,
    dport: u16,
    saddr4: usize,
    daddr4: usize,
    saddr6: usize,
    daddr6: usize,
) -> Result<Tuple, i64> {
    let mut t = Tuple { family, sport, dport, ..Tuple::default() };
    // SAFETY: offsets from the caller's tracepoint format.
    unsafe {
        if family == AF_INET {
            let s: [u8; 4] = ctx.read_at(saddr4)?;
            let d: [u8; 4] = ctx.read_at(daddr4)?;
            t.saddr[..4].copy_from_slice(&s);
            t.daddr[..4].copy_from_slice(&d);
        } else {
            t.saddr = ctx.read_at(saddr6)?;
            t.daddr = ctx.read_at(daddr6)?;
        }
    }
    Ok(t)
}

/// Writes a record charged to `owner`.
#[inline(always)]
fn emit(owner: &SockOwner, op: NetOp, sk: u64, t: &Tuple, old: i32, new: i32, flags: u32) {
    let ev = NetEvent {
        header: EventHeader::new(EventKind::Net, owner.session, now(), owner.pid, owner.tid),
        op: op as u32,
        family: t.family,
        protocol: IPPROTO_TCP,
        sport: t.sport,
        dport: t.dport,
        old_state: old as u8,
        new_state: new as u8,
        _pad: 0,
        sk,
        saddr: t.saddr,
        daddr: t.daddr,
        bytes_sent: owner.bytes_sent,
        bytes_received: owner.bytes_received,
        retransmits: owner.retransmits,
        flags,
    };
    if EVENTS.output::<NetEvent>(&ev, wake_flags()).is_err() {
        count_loss(owner.session, |l| l.ring_full += 1);
    }
}

/// Kernel struct offsets for the accept probes, set by the harness from
/// the kernel's BTF before loading (0: not found; accepts are then claimed
/// at the first transfer instead).
#[unsafe(no_mangle)]
static TASK_FILES_OFF: u32 = 0;
#[unsafe(no_mangle)]
static FILES_FDT_OFF: u32 = 0;
#[unsafe(no_mangle)]
static FDT_MAX_FDS_OFF: u32 = 0;
#[unsafe(no_mangle)]
static FDT_FD_OFF: u32 = 0;
#[unsafe(no_mangle)]
static FILE_PRIVATE_DATA_OFF: u32 = 0;
#[unsafe(no_mangle)]
static SOCKET_SK_OFF: u32 = 0;

#[inline(always)]
fn offset(v: &'static u32) -> usize {
    // SAFETY: a read of a constant the loader may have rewritten.
    (unsafe { core::ptr::read_volatile(v) }) as usize
}

#[inline(always)]
fn now() -> u64 {
    // SAFETY: a helper with no preconditions.
    unsafe { bpf_ktime_get_ns() }
}
