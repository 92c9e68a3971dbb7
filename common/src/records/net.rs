//! TCP events of the sockets traced tasks own ([`NetEvent`]), and the
//! map entry that ties a socket to its owner ([`SockOwner`]).

use super::EventHeader;

/// What a [`NetEvent`] reports, as `NetEvent::op`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetOp {
    /// A traced task started a TCP connect (`TCP_CLOSE` to `TCP_SYN_SENT`).
    Connect = 1,
    /// A traced task made a TCP socket listen.
    Listen = 2,
    /// A traced task accepted a TCP connection.
    Accept = 3,
    /// An owned socket changed TCP state (`old_state` to `new_state`).
    State = 4,
    /// An owned socket was destroyed (after `TCP_CLOSE`, once its owner
    /// closed it); the counters are its totals.
    Close = 5,
    /// An owned socket retransmitted a segment (softirq or timer context).
    Retransmit = 6,
    /// The kernel sent a reset on an owned socket.
    ResetSent = 7,
    /// An owned socket received a reset.
    ResetReceived = 8,
}

impl NetOp {
    /// The op for a raw value, if it is one.
    pub const fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            1 => Self::Connect,
            2 => Self::Listen,
            3 => Self::Accept,
            4 => Self::State,
            5 => Self::Close,
            6 => Self::Retransmit,
            7 => Self::ResetSent,
            8 => Self::ResetReceived,
            _ => return None,
        })
    }
}

/// `NetEvent::flags`: the socket's addresses were not known when the
/// record was written (an accept whose handshake probity did not see).
pub const NET_ADDR_UNKNOWN: u32 = 1;
/// `NetEvent::flags`: the socket was still open when the session ended;
/// the record was made by the harness from the socket map.
pub const NET_OPEN_AT_END: u32 = 2;

/// A TCP event of a socket a traced task owns. The header's `pid` and
/// `tid` are the owner's (the task that connected, listened or accepted),
/// whatever task the kernel ran when the event happened: retransmits and
/// most state changes fire in softirq or timer context.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetEvent {
    pub header: EventHeader,
    /// A [`NetOp`] as `u32`.
    pub op: u32,
    /// `AF_INET` or `AF_INET6`.
    pub family: u16,
    /// `IPPROTO_TCP`.
    pub protocol: u16,
    /// Local port, host byte order.
    pub sport: u16,
    /// Remote port, host byte order.
    pub dport: u16,
    /// TCP state before (`State`) or at (`Retransmit`, resets) the event.
    pub old_state: u8,
    /// TCP state after the event.
    pub new_state: u8,
    pub _pad: u16,
    /// The kernel's socket address: an identity while the socket lives
    /// (the harness numbers connections by it and never shows it).
    pub sk: u64,
    /// Local address: 4 bytes for `AF_INET`, 16 for `AF_INET6`.
    pub saddr: [u8; 16],
    /// Remote address, likewise.
    pub daddr: [u8; 16],
    /// Bytes sent and received on the socket so far (totals at `Close`).
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Segments retransmitted so far.
    pub retransmits: u32,
    /// `NET_*` flags.
    pub flags: u32,
}

/// The owner of a socket and its counters, in the `SOCKS` map keyed by
/// the kernel's socket address. Filled in process context (connect,
/// listen, accept), read in any context, removed when the kernel destroys
/// the socket.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SockOwner {
    pub session: u32,
    pub pid: u32,
    pub tid: u32,
    pub retransmits: u32,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

const _: () = {
    assert!(size_of::<NetEvent>() == 104);
    assert!(size_of::<SockOwner>() == 32);
};
