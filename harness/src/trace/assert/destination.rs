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
            // The libc layer keeps no descriptor table: the socket's
            // destination is that of the call that made or connected it.
            (None, None)
                if s.ok
                    && matches!(idx.trace.events[i].kind, EventKind::Libc(_))
                    && !s.args.iter().any(|a| a.sockaddr().is_some()) =>
            {
                match s.args.first() {
                    Some(Arg::Fd(fd)) => libc_peer(idx, i, *fd),
                    _ => Dest::None,
                }
            }
            (None, None) => Dest::None,
        },
        _ => Dest::None,
    }
}

/// Where a send naming no address on descriptor `fd`, libc call `i`,
/// goes: what the last libc call of its process (or of an ancestor,
/// before it forked) that made or connected `fd` says.
fn libc_peer(idx: &Index<'_>, i: usize, fd: i32) -> Dest {
    const UNSEEN: &str = "it sent, naming no address, on a descriptor the libc layer never saw connected (inherited, received from another process, or connected by a raw syscall), whose destination is unknown";
    let events = &idx.trace.events;
    let pid = events[i].pid;
    for j in (0..i).rev() {
        let e = &events[j];
        if e.pid != pid && !idx.in_subtree(e.pid, pid) {
            continue;
        }
        let Some(c) = call(idx, j) else { continue };
        let ret_fd = matches!(e.as_libc().and_then(|l| l.ret.as_ref()), Some(Arg::Fd(r)) if *r == fd);
        let on_fd = matches!(c.args.first(), Some(Arg::Fd(a)) if *a == fd);
        match c.name {
            // A connect, made or attempted, is judged itself.
            "connect" if on_fd => return Dest::None,
            "socketpair" if c.ok && c.args.iter().skip(3).any(|a| matches!(a, Arg::Fd(a) if *a == fd)) => {
                return Dest::None;
            }
            "accept" | "accept4" if ret_fd => {
                return match c.args.iter().find_map(Arg::sockaddr) {
                    Some(SockAddr::Inet { addr }) => Dest::Ip(canonical(addr.ip()), addr.port()),
                    _ => Dest::None,
                };
            }
            "socket" if ret_fd => return Dest::Unknown(UNSEEN),
            "close" if on_fd => return Dest::Unknown(UNSEEN),
            _ => {}
        }
    }
    Dest::Unknown(UNSEEN)
}
