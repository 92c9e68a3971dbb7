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
//! Every probe is a raw tracepoint: it gets the `struct sock` pointer and
//! reads the family, ports, addresses, state and protocol itself, at the
//! offsets the harness found in the kernel's BTF (`*_OFF` below), where a
//! classic tracepoint would first format all of them into a record for
//! every state change, open or not, traced or not. Raw tracepoints attach
//! by name (no tracefs) and detach without an RCU grace period each.
//! Without BTF the harness attaches the classic tracepoints instead, whose
//! records carry the same fields; both kinds share the logic below
//! through [`SockFields`]. The prototypes and formats:
//! <https://github.com/torvalds/linux/blob/v6.18/include/trace/events/sock.h>,
//! <https://github.com/torvalds/linux/blob/v6.18/include/trace/events/tcp.h>.
//!
//! The accept probe is reached from `sys_exit` by a tail call, only for
//! `accept` and `accept4` (see `probes/syscalls.rs`).

use aya_ebpf::{
    helpers::{bpf_get_current_task, bpf_ktime_get_ns, bpf_probe_read_kernel},
    macros::{raw_tracepoint, tracepoint},
    programs::{RawTracePointContext, TracePointContext},
};
use probity_common::{EventHeader, EventKind, NetEvent, NetOp, SockOwner, NET_ADDR_UNKNOWN};

use crate::maps::{count_loss, current_ids, session_of, wake_flags, Tuple, EVENTS, LISTEN_PORTS, PENDING, SOCKS};

const IPPROTO_TCP: u16 = 6;
const AF_INET: u16 = 2;
const TCP_ESTABLISHED: i32 = 1;
const TCP_SYN_SENT: i32 = 2;
const TCP_SYN_RECV: i32 = 3;
const TCP_CLOSE: i32 = 7;
const TCP_LISTEN: i32 = 10;
const MSG_PEEK: i32 = 2;

/// Where a probe finds a socket's protocol, local port and addresses:
/// the `struct sock` itself (raw tracepoints) or a classic tracepoint's
/// record.
trait SockFields {
    fn protocol(&self) -> Result<u16, i64>;
    /// The local port, in host byte order.
    fn sport(&self) -> Result<u16, i64>;
    /// The TCP state (0 where the classic record has none).
    fn state(&self) -> Result<i32, i64>;
    fn tuple(&self) -> Result<Tuple, i64>;
}

/// A `struct sock` (an `inet_sock` for IPv4 and IPv6), read at the
/// offsets from BTF, as the classic tracepoints fill their records:
/// `inet_sport`, `inet_dport`, `inet_saddr`, `inet_daddr`,
/// `sk_v6_rcv_saddr` and `sk_v6_daddr`.
struct Sock(*const u8);

impl Sock {
    #[inline(always)]
    fn read<T>(&self, off: &'static u32) -> Result<T, i64> {
        // SAFETY: a checked kernel read inside the socket.
        unsafe { bpf_probe_read_kernel(self.0.wrapping_add(offset(off)).cast::<T>()).map_err(i64::from) }
    }
}

impl SockFields for Sock {
    #[inline(always)]
    fn protocol(&self) -> Result<u16, i64> {
        self.read(&SK_PROTOCOL_OFF)
    }

    #[inline(always)]
    fn sport(&self) -> Result<u16, i64> {
        Ok(u16::from_be(self.read(&INET_SPORT_OFF)?))
    }

    /// `sk_state`, which is the TCP state for a TCP socket.
    #[inline(always)]
    fn state(&self) -> Result<i32, i64> {
        Ok(i32::from(self.read::<u8>(&SK_STATE_OFF)?))
    }

    #[inline(always)]
    fn tuple(&self) -> Result<Tuple, i64> {
        let family: u16 = self.read(&SK_FAMILY_OFF)?;
        let mut t = Tuple {
            family,
            sport: self.sport()?,
            dport: u16::from_be(self.read(&INET_DPORT_OFF)?),
            ..Tuple::default()
        };
        if family == AF_INET {
            let s: [u8; 4] = self.read(&INET_SADDR_OFF)?;
            let d: [u8; 4] = self.read(&INET_DADDR_OFF)?;
            t.saddr[..4].copy_from_slice(&s);
            t.daddr[..4].copy_from_slice(&d);
        } else {
            t.saddr = self.read(&SK_V6_SADDR_OFF)?;
            t.daddr = self.read(&SK_V6_DADDR_OFF)?;
        }
        Ok(t)
    }
}

/// `sock:inet_sock_set_state`, in whatever context changed the state:
/// `TP_PROTO(const struct sock *sk, const int oldstate, const int newstate)`.
/// `connect(2)` moves the socket to `TCP_SYN_SENT` in the caller's
/// context, with the destination set and the source port not yet chosen;
/// `listen(2)` to `TCP_LISTEN` likewise.
#[raw_tracepoint(tracepoint = "inet_sock_set_state")]
pub fn raw_inet_sock_set_state(ctx: RawTracePointContext) -> i32 {
    let sk: u64 = ctx.arg(0);
    let _ = on_set_state(sk, ctx.arg(1), ctx.arg(2), &Sock(sk as *const u8));
    0
}

/// Records a state change of an owned socket, or claims a socket a
/// traced task connects or listens on, or keeps the addresses of a
/// server-side socket for its accept.
#[inline(always)]
fn on_set_state(sk: u64, old: i32, new: i32, fields: &impl SockFields) -> Result<(), i64> {
    // SAFETY: the value is copied out at once.
    if let Some(owner) = unsafe { SOCKS.get(sk) }.copied() {
        // Only TCP sockets are claimed. Even in `TCP_CLOSE` the socket
        // lives on, with data to read, until it is destroyed (see
        // `tcp_destroy_sock`).
        emit(&owner, NetOp::State, sk, &fields.tuple()?, old, new, 0);
        return Ok(());
    }
    let claims = (old == TCP_CLOSE && new == TCP_SYN_SENT) || new == TCP_LISTEN;
    if claims {
        let (pid, tid) = current_ids();
        let Some(session) = session_of(tid) else { return Ok(()) };
        if fields.protocol()? != IPPROTO_TCP {
            return Ok(());
        }
        let tuple = fields.tuple()?;
        let owner = SockOwner { session, pid, tid, ..SockOwner::default() };
        if SOCKS.insert(sk, owner, 0).is_err() {
            count_loss(session, |l| l.sock_map_full += 1);
        }
        if new == TCP_LISTEN {
            // Handshakes on this port are worth remembering for `accept`.
            let _ = LISTEN_PORTS.insert(u32::from(tuple.sport), session, 0);
        }
        let op = if new == TCP_LISTEN { NetOp::Listen } else { NetOp::Connect };
        emit(&owner, op, sk, &tuple, old, new, 0);
        return Ok(());
    }
    // A server-side socket completing its handshake, in softirq context:
    // nobody owns it until a traced task accepts it, but its addresses
    // are here, so keep them for the accept.
    if old == TCP_SYN_RECV && new == TCP_ESTABLISHED {
        // SAFETY: the map value is only tested for presence.
        if unsafe { LISTEN_PORTS.get(u32::from(fields.sport()?)) }.is_some() && fields.protocol()? == IPPROTO_TCP {
            let _ = PENDING.insert(sk, fields.tuple()?, 0);
        }
    }
    Ok(())
}

/// `tcp:tcp_destroy_sock`, when the kernel frees a TCP socket's state:
/// `TP_PROTO(struct sock *sk)`. It comes after `TCP_CLOSE` once the owner
/// closed the socket (or at once if it had), so every byte the owner read
/// is counted. The socket address may be reused from here on, so the
/// socket leaves the map.
#[raw_tracepoint(tracepoint = "tcp_destroy_sock")]
pub fn raw_tcp_destroy_sock(ctx: RawTracePointContext) -> i32 {
    let sk: u64 = ctx.arg(0);
    let _ = on_destroy(sk, &Sock(sk as *const u8));
    0
}

#[inline(always)]
fn on_destroy(sk: u64, fields: &impl SockFields) -> Result<(), i64> {
    // SAFETY: the value is copied out at once.
    let Some(owner) = (unsafe { SOCKS.get(sk) }).copied() else {
        // A server-side socket nobody accepted.
        // SAFETY: only tested for presence.
        if unsafe { LISTEN_PORTS.get(u32::from(fields.sport()?)) }.is_some() {
            let _ = PENDING.remove(sk);
        }
        return Ok(());
    };
    emit(&owner, NetOp::Close, sk, &fields.tuple()?, TCP_CLOSE, TCP_CLOSE, 0);
    let _ = SOCKS.remove(sk);
    Ok(())
}

/// The accept probe, reached from `sys_exit` by a tail call after
/// `accept` or `accept4` returned in a traced task:
/// `TP_PROTO(struct pt_regs *regs, long ret)`. The new descriptor's
/// socket is found by following
/// `current->files->fdt->fd[ret]->private_data->sk`, at offsets the
/// harness read from the kernel's BTF (the harness only installs this
/// program when it found them).
#[raw_tracepoint]
pub fn accept_tail(ctx: RawTracePointContext) -> i32 {
    let _ = try_accept(&ctx);
    0
}

#[inline(always)]
fn try_accept(ctx: &RawTracePointContext) -> Result<(), i64> {
    let (pid, tid) = current_ids();
    let Some(session) = session_of(tid) else { return Ok(()) };
    let ret: i64 = ctx.arg(1);
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
/// `TP_PROTO(const struct sock *sk, const struct sk_buff *skb, int err)`.
#[raw_tracepoint(tracepoint = "tcp_retransmit_skb")]
pub fn raw_tcp_retransmit_skb(ctx: RawTracePointContext) -> i32 {
    let sk: u64 = ctx.arg(0);
    let _ = on_retransmit(sk, &Sock(sk as *const u8));
    0
}

#[inline(always)]
fn on_retransmit(sk: u64, fields: &impl SockFields) -> Result<(), i64> {
    let Some(slot) = SOCKS.get_ptr_mut(sk) else { return Ok(()) };
    // SAFETY: a preallocated map value (see `count_bytes`).
    let owner = unsafe {
        (*slot).retransmits += 1;
        *slot
    };
    let state = fields.state()?;
    emit(&owner, NetOp::Retransmit, sk, &fields.tuple()?, state, state, 0);
    Ok(())
}

/// `tcp:tcp_send_reset`, in any context: `TP_PROTO(const struct sock *sk,
/// const struct sk_buff *skb, const enum sk_rst_reason reason)`; `sk` is
/// NULL for a reset sent for no socket (a segment to a closed port).
#[raw_tracepoint(tracepoint = "tcp_send_reset")]
pub fn raw_tcp_send_reset(ctx: RawTracePointContext) -> i32 {
    let sk: u64 = ctx.arg(0);
    let _ = on_send_reset(sk, &Sock(sk as *const u8));
    0
}

#[inline(always)]
fn on_send_reset(sk: u64, fields: &impl SockFields) -> Result<(), i64> {
    if sk == 0 {
        return Ok(());
    }
    // SAFETY: the value is copied out at once.
    let Some(owner) = (unsafe { SOCKS.get(sk) }).copied() else { return Ok(()) };
    let state = fields.state()?;
    emit(&owner, NetOp::ResetSent, sk, &fields.tuple()?, state, state, 0);
    Ok(())
}

/// `tcp:tcp_receive_reset`, in softirq context: `TP_PROTO(struct sock *sk)`.
#[raw_tracepoint(tracepoint = "tcp_receive_reset")]
pub fn raw_tcp_receive_reset(ctx: RawTracePointContext) -> i32 {
    let sk: u64 = ctx.arg(0);
    let _ = on_receive_reset(sk, &Sock(sk as *const u8));
    0
}

#[inline(always)]
fn on_receive_reset(sk: u64, fields: &impl SockFields) -> Result<(), i64> {
    // SAFETY: the value is copied out at once.
    let Some(owner) = (unsafe { SOCKS.get(sk) }).copied() else { return Ok(()) };
    emit(&owner, NetOp::ResetReceived, sk, &fields.tuple()?, 0, 0, 0);
    Ok(())
}

// The classic tracepoints, for a kernel without BTF. Their records hold
// the ports (host byte order), the family, then the IPv4 and IPv6
// addresses, in this order, at offsets given in each format below.

/// A classic TCP tracepoint's record.
struct Record<'a> {
    ctx: &'a TracePointContext,
    /// Offset of `sport`; `dport` and `family` follow.
    sport: usize,
    /// Offset of `saddr[4]`; `daddr[4]`, `saddr_v6[16]` and
    /// `daddr_v6[16]` follow.
    saddr: usize,
    /// Offset of `protocol`, or 0 for the `tcp` events (TCP only).
    protocol: usize,
    /// Offset of `state`, or 0 when the record has none.
    state: usize,
}

impl Record<'_> {
    #[inline(always)]
    fn read<T>(&self, off: usize) -> Result<T, i64> {
        // SAFETY: offsets from the caller's tracepoint format.
        unsafe { self.ctx.read_at(off).map_err(i64::from) }
    }
}

impl SockFields for Record<'_> {
    #[inline(always)]
    fn protocol(&self) -> Result<u16, i64> {
        if self.protocol == 0 {
            return Ok(IPPROTO_TCP);
        }
        self.read(self.protocol)
    }

    #[inline(always)]
    fn sport(&self) -> Result<u16, i64> {
        self.read(self.sport)
    }

    #[inline(always)]
    fn state(&self) -> Result<i32, i64> {
        if self.state == 0 {
            return Ok(0);
        }
        self.read(self.state)
    }

    #[inline(always)]
    fn tuple(&self) -> Result<Tuple, i64> {
        let family: u16 = self.read(self.sport + 4)?;
        let mut t = Tuple { family, sport: self.sport()?, dport: self.read(self.sport + 2)?, ..Tuple::default() };
        if family == AF_INET {
            let s: [u8; 4] = self.read(self.saddr)?;
            let d: [u8; 4] = self.read(self.saddr + 4)?;
            t.saddr[..4].copy_from_slice(&s);
            t.daddr[..4].copy_from_slice(&d);
        } else {
            t.saddr = self.read(self.saddr + 8)?;
            t.daddr = self.read(self.saddr + 24)?;
        }
        Ok(t)
    }
}

/// `sock:inet_sock_set_state`:
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
#[tracepoint(category = "sock", name = "inet_sock_set_state")]
pub fn inet_sock_set_state(ctx: TracePointContext) -> u32 {
    let _ = try_set_state(&ctx);
    0
}

#[inline(always)]
fn try_set_state(ctx: &TracePointContext) -> Result<(), i64> {
    let rec = Record { ctx, sport: 24, saddr: 32, protocol: 30, state: 0 };
    // Other protocols never reach the socket map.
    if rec.protocol()? != IPPROTO_TCP {
        return Ok(());
    }
    on_set_state(rec.read(8)?, rec.read(16)?, rec.read(20)?, &rec)
}

/// `tcp:tcp_destroy_sock` and `tcp:tcp_receive_reset` (`tcp_event_sk`):
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
    let rec = Record { ctx: &ctx, sport: 16, saddr: 22, protocol: 0, state: 0 };
    if let Ok(sk) = rec.read(8) {
        let _ = on_destroy(sk, &rec);
    }
    0
}

#[tracepoint(category = "tcp", name = "tcp_receive_reset")]
pub fn tcp_receive_reset(ctx: TracePointContext) -> u32 {
    let rec = Record { ctx: &ctx, sport: 16, saddr: 22, protocol: 0, state: 0 };
    if let Ok(sk) = rec.read(8) {
        let _ = on_receive_reset(sk, &rec);
    }
    0
}

/// `tcp:tcp_retransmit_skb`:
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
    let rec = Record { ctx: &ctx, sport: 28, saddr: 34, protocol: 0, state: 24 };
    if let Ok(sk) = rec.read(16) {
        let _ = on_retransmit(sk, &rec);
    }
    0
}

/// `tcp:tcp_send_reset`:
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
    if let Ok(sk) = (ResetRecord { ctx: &ctx }).read(16) {
        let _ = on_send_reset(sk, &ResetRecord { ctx: &ctx });
    }
    0
}

/// The record of `tcp:tcp_send_reset`, whose addresses are socket
/// addresses.
struct ResetRecord<'a> {
    ctx: &'a TracePointContext,
}

impl ResetRecord<'_> {
    #[inline(always)]
    fn read<T>(&self, off: usize) -> Result<T, i64> {
        // SAFETY: offsets from the format above.
        unsafe { self.ctx.read_at(off).map_err(i64::from) }
    }
}

impl SockFields for ResetRecord<'_> {
    #[inline(always)]
    fn protocol(&self) -> Result<u16, i64> {
        Ok(IPPROTO_TCP)
    }

    #[inline(always)]
    fn sport(&self) -> Result<u16, i64> {
        let src: [u8; 4] = self.read(32)?;
        Ok(u16::from_be_bytes([src[2], src[3]]))
    }

    #[inline(always)]
    fn state(&self) -> Result<i32, i64> {
        self.read(24)
    }

    #[inline(always)]
    fn tuple(&self) -> Result<Tuple, i64> {
        let src: [u8; 28] = self.read(32)?;
        let dst: [u8; 28] = self.read(60)?;
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
        Ok(tuple)
    }
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

/// Kernel struct offsets, set by the harness from the kernel's BTF before
/// loading. The raw TCP probes are only attached when it found those of
/// `struct sock`; the accept probe only when it found the descriptor
/// table's (accepts are then claimed at the first transfer instead).
#[unsafe(no_mangle)]
static SK_FAMILY_OFF: u32 = 0;
#[unsafe(no_mangle)]
static SK_STATE_OFF: u32 = 0;
#[unsafe(no_mangle)]
static SK_PROTOCOL_OFF: u32 = 0;
#[unsafe(no_mangle)]
static INET_SPORT_OFF: u32 = 0;
#[unsafe(no_mangle)]
static INET_DPORT_OFF: u32 = 0;
#[unsafe(no_mangle)]
static INET_SADDR_OFF: u32 = 0;
#[unsafe(no_mangle)]
static INET_DADDR_OFF: u32 = 0;
#[unsafe(no_mangle)]
static SK_V6_SADDR_OFF: u32 = 0;
#[unsafe(no_mangle)]
static SK_V6_DADDR_OFF: u32 = 0;
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
