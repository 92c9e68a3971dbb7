//! Where a call sends to: the address a connect or send names, else the
//! connected socket's peer, or why it cannot be told.

use std::collections::HashMap;
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
pub(super) fn destination(idx: &Index<'_>, fds: &LibcFds, i: usize) -> Dest {
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
                    Some(Arg::Fd(fd)) => fds.peer(idx, i, *fd),
                    _ => Dest::None,
                }
            }
            (None, None) => Dest::None,
        },
        _ => Dest::None,
    }
}

/// Why a send naming no address on a descriptor no recorded libc call
/// made or connected cannot be placed.
const UNSEEN: &str = "it sent, naming no address, on a descriptor the libc layer never saw connected (inherited, received from another process, or connected by a raw syscall), whose destination is unknown";

/// What a libc call did to a descriptor, as a later send naming no
/// address on it reads it.
#[derive(Clone, Copy)]
enum FdUse {
    /// Connected (judged at the connect), or one end of a socket pair.
    Placed,
    /// Accepted from this peer.
    Peer(IpAddr, u16),
    /// Made unconnected, or closed: a later connect was not recorded.
    Unseen,
}

/// The libc calls that made, connected or closed each descriptor, per
/// process, for sends naming no address with the preload tracer alone
/// (the libc layer keeps no descriptor table). Built once per check.
#[derive(Default)]
pub(super) struct LibcFds {
    /// By process and descriptor, in event order: the call's index and
    /// what it did.
    uses: HashMap<(u32, i32), Vec<(usize, FdUse)>>,
}

impl LibcFds {
    pub(super) fn new(idx: &Index<'_>) -> LibcFds {
        let mut uses: HashMap<(u32, i32), Vec<(usize, FdUse)>> = HashMap::new();
        for (i, e) in idx.trace.events.iter().enumerate() {
            let Some(l) = e.as_libc() else { continue };
            let Some(c) = call(idx, i) else { continue };
            let ret_fd = match l.ret {
                Some(Arg::Fd(r)) => Some(r),
                _ => None,
            };
            let on_fd = match c.args.first() {
                Some(Arg::Fd(a)) => Some(*a),
                _ => None,
            };
            let mut put = |fd: i32, u: FdUse| uses.entry((e.pid, fd)).or_default().push((i, u));
            match c.name {
                "connect" => on_fd.into_iter().for_each(|fd| put(fd, FdUse::Placed)),
                "socketpair" if c.ok => {
                    for a in c.args.iter().skip(3) {
                        if let Arg::Fd(fd) = a {
                            put(*fd, FdUse::Placed);
                        }
                    }
                }
                "accept" | "accept4" => {
                    if let Some(fd) = ret_fd {
                        match c.args.iter().find_map(Arg::sockaddr) {
                            Some(SockAddr::Inet { addr }) => put(fd, FdUse::Peer(canonical(addr.ip()), addr.port())),
                            _ => put(fd, FdUse::Placed),
                        }
                    }
                }
                "socket" => ret_fd.into_iter().for_each(|fd| put(fd, FdUse::Unseen)),
                "close" => on_fd.into_iter().for_each(|fd| put(fd, FdUse::Unseen)),
                _ => {}
            }
        }
        LibcFds { uses }
    }

    /// Where a send naming no address on descriptor `fd`, libc call `i`,
    /// goes: what the last libc call of its process, or of an ancestor
    /// (which it inherited the descriptor from), that made or connected
    /// `fd` says.
    fn peer(&self, idx: &Index<'_>, i: usize, fd: i32) -> Dest {
        let mut last: Option<(usize, FdUse)> = None;
        let mut p = Some(idx.trace.events[i].pid);
        let mut hops = 0;
        while let Some(pid) = p {
            let before = self.uses.get(&(pid, fd)).and_then(|v| v[..v.partition_point(|(j, _)| *j < i)].last());
            if let Some(&(j, u)) = before {
                if last.is_none_or(|(k, _)| j > k) {
                    last = Some((j, u));
                }
            }
            hops += 1;
            p = idx.procs.get(&pid).and_then(|x| x.parent).filter(|_| hops <= idx.procs.len());
        }
        match last.map(|(_, u)| u) {
            Some(FdUse::Placed) => Dest::None,
            Some(FdUse::Peer(ip, port)) => Dest::Ip(ip, port),
            Some(FdUse::Unseen) | None => Dest::Unknown(UNSEEN),
        }
    }
}
