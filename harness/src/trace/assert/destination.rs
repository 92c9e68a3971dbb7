//! Where a call sends to: the address a connect or send names, else the
//! connected socket's peer, or why it cannot be told.

use std::net::IpAddr;

use super::calls::{call, Call};
use super::sockets::INET_FAMILIES;
use crate::event::{Arg, EventKind, SockAddr};
use crate::net::canonical;
use crate::trace::index::{FdTarget, Index};

/// Where a call sends to.
pub(super) enum Dest {
    None,
    /// An address and port.
    Ip(IpAddr, u16),
    Unknown(&'static str),
}

/// The messages a `sendmmsg` sent: its result, or the count it asked for
/// when the result is unknown.
pub(super) fn messages_sent(s: &Call<'_>) -> Option<i64> {
    s.ret.or(match s.args.get(2) {
        Some(Arg::Int(n)) => Some(*n),
        _ => None,
    })
}

/// Where syscall `i` sends to, when it is a send or a connect.
pub(super) fn destination(idx: &Index<'_>, i: usize) -> Dest {
    let Some(s) = call(idx, i) else { return Dest::None };
    let addr = s.args.iter().find_map(|a| match a.sockaddr() {
        Some(SockAddr::Inet { addr }) => Some((canonical(addr.ip()), addr.port())),
        _ => None,
    });
    let target = idx.access(i).and_then(|a| a.fd.as_deref());
    let peer = match target {
        Some(FdTarget::Socket { family, peer }) if INET_FAMILIES.contains(family) => Some(match peer {
            Some(SockAddr::Inet { addr }) => Some((canonical(addr.ip()), addr.port())),
            _ => None,
        }),
        _ => None,
    };
    match s.name {
        "connect" => addr.map_or(Dest::None, |(ip, port)| Dest::Ip(ip, port)),
        // Only the first message of a `sendmmsg` is recorded. When it
        // names no address, on a connected socket, the others are taken to
        // name none either (glibc's resolver sends its A and AAAA queries
        // so; see the known limitations in docs/guide.md); when it names
        // one, the others may name others.
        "sendmmsg" if addr.is_some() && messages_sent(&s).is_some_and(|n| n > 1) => {
            Dest::Unknown("only the first message of a sendmmsg is recorded, and it names its own address")
        }
        // A message's address is its `msg_name`.
        "sendto" | "sendmsg" | "sendmmsg" => match (addr, peer) {
            (Some((ip, port)), _) | (None, Some(Some((ip, port)))) => Dest::Ip(ip, port),
            (None, Some(None)) => Dest::Unknown("the socket's destination was not recorded"),
            // Only a socket can be sent on: one the trace never saw made
            // came from outside the tree (inherited, or received from
            // another process), connected to who knows where.
            (None, None) if target.is_none() && s.ok && matches!(idx.trace.events[i].kind, EventKind::Syscall(_)) => {
                Dest::Unknown("it sent on a descriptor the trace never saw created (inherited, or received from another process), whose destination is unknown")
            }
            (None, None) => Dest::None,
        },
        _ => Dest::None,
    }
}
