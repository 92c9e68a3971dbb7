//! UDP datagrams, derived from the syscalls that carry them.
//!
//! The kernel's UDP paths have no tracepoint with the peer's address, but
//! the syscalls do: `sendto` and `recvfrom` capture it, `sendmsg` and
//! `recvmsg` (and the first message of their `mmsg` forms) capture the
//! address their message names, and a connected UDP socket's `connect`
//! names it for later sends and receives that name none. So each process's
//! UDP descriptors are followed from `socket` through their copies to
//! `close` or a close-on-exec `exec` ([`FdTable`]), copied at `fork`, and
//! each datagram syscall that succeeded is followed by a
//! [`Net`] event of the same task (with the local address when `bind`
//! gave one). Datagrams to or from port 53, or on a socket bound to it, are
//! decoded as DNS ([`super::dns()`]) as far as their bytes were
//! captured (of a message, its first buffer; of an `mmsg` call, the first
//! message's).
//!
//! Known limitations: descriptors received over a Unix socket are not
//! followed unless a `sendto` or `recvfrom` names an address on them; a
//! `connect` or `bind` is seen on the descriptor it names, not on copies
//! made before it; a datagram socket of another protocol (ICMP, raw) that
//! names an internet address is taken as UDP.

use foldhash::HashMap;
use std::net::SocketAddr;

use crate::event::{Arg, Event, EventKind, Net, NetOp, SockAddr, Syscall};
use crate::fds::{copies_or_closes, FdTable};

/// A UDP socket of a process.
#[derive(Clone, Copy, Default)]
struct UdpSock {
    /// The address `bind` gave it.
    local: Option<SocketAddr>,
    /// The address `connect` gave it.
    peer: Option<SocketAddr>,
}

/// The UDP descriptors of each process, by pid and descriptor.
#[derive(Default)]
pub(crate) struct Datagrams {
    socks: HashMap<u32, FdTable<UdpSock>>,
}

impl Datagrams {
    /// A new task `child` of process `parent`: a process gets a copy of
    /// the descriptors (a thread's entry is never used, as its events
    /// carry the process's pid).
    pub(crate) fn on_fork(&mut self, parent: u32, child: u32) {
        match self.socks.get(&parent).cloned() {
            Some(t) => {
                self.socks.insert(child, t);
            }
            // The child has no UDP socket, whatever a dead process that
            // had its pid left behind.
            None => {
                self.socks.remove(&child);
            }
        }
    }

    /// Process `pid` exec'd: its close-on-exec descriptors are gone.
    pub(crate) fn on_exec(&mut self, pid: u32) {
        if let Some(table) = self.socks.get_mut(&pid) {
            table.exec();
        }
    }

    /// Follows syscall event `e`, and returns the datagram it moved.
    pub(crate) fn on_syscall(&mut self, e: &Event) -> Option<Event> {
        let s = e.as_syscall()?;
        if copies_or_closes(&s.name) {
            if let Some(table) = self.socks.get_mut(&e.pid) {
                table.follow(s);
            }
            return None;
        }
        let ret = s.ret?;
        if ret < 0 {
            return None;
        }
        let fd = match s.args.first() {
            Some(Arg::Fd(fd)) => *fd,
            _ if s.name == "socket" => -1,
            _ => return None,
        };
        // Moved nothing: an `mmsg` call that moved no message, or an
        // error-queue read (its address is where an earlier datagram was
        // going).
        let moved_none = || {
            (ret == 0 && s.name.ends_with("mmsg"))
                || (s.name == "recvmsg"
                    && matches!(s.args.get(2), Some(Arg::Flags { value, .. }) if *value & libc::MSG_ERRQUEUE as u64 != 0))
        };
        let inet = || {
            s.args.iter().find_map(|a| match a.sockaddr() {
                Some(SockAddr::Inet { addr }) => Some(*addr),
                _ => None,
            })
        };
        // Tables exist only for processes that made a UDP socket: most
        // syscalls of most traces look nothing up.
        let (op, peer) = match &*s.name {
            "socket" => {
                if let Some(cloexec) = udp_socket(s) {
                    self.socks.entry(e.pid).or_default().insert(ret as i32, UdpSock::default(), cloexec);
                }
                return None;
            }
            "connect" => {
                if let Some(sock) = self.sock_mut(e.pid, fd) {
                    sock.peer = inet();
                }
                return None;
            }
            "bind" => {
                if let Some(sock) = self.sock_mut(e.pid, fd) {
                    sock.local = inet();
                }
                return None;
            }
            // An address names the datagram's peer, on any descriptor: a
            // TCP socket ignores it or fails.
            "sendto" | "sendmsg" | "sendmmsg" if !moved_none() => {
                (NetOp::Send, inet().or_else(|| self.sock(e.pid, fd)?.peer)?)
            }
            "recvfrom" | "recvmsg" | "recvmmsg" if !moved_none() => {
                (NetOp::Receive, inet().or_else(|| self.sock(e.pid, fd)?.peer)?)
            }
            "write" => (NetOp::Send, self.sock(e.pid, fd)?.peer?),
            "read" => (NetOp::Receive, self.sock(e.pid, fd)?.peer?),
            _ => return None,
        };
        // `sendmmsg` and `recvmmsg` return a count of messages.
        let len = (!s.name.ends_with("mmsg")).then_some(ret as u64);
        let local = self.sock(e.pid, fd).and_then(|s| s.local);
        let dns = if peer.port() == 53 || local.is_some_and(|l| l.port() == 53) {
            buffer(s).and_then(|(data, full)| super::dns(data, full)).map(Box::new)
        } else {
            None
        };
        let net = Net::udp(op, local, peer, len, dns);
        Some(Event { ts_ns: e.ts_ns, pid: e.pid, tid: e.tid, kind: EventKind::Net(Box::new(net)) })
    }
}

impl Datagrams {
    fn sock(&self, pid: u32, fd: i32) -> Option<&UdpSock> {
        self.socks.get(&pid)?.get(fd)
    }

    fn sock_mut(&mut self, pid: u32, fd: i32) -> Option<&mut UdpSock> {
        self.socks.get_mut(&pid)?.get_mut(fd)
    }
}

/// Whether a `socket` call made an internet datagram socket of UDP, and
/// if it did, whether it is close-on-exec.
fn udp_socket(s: &Syscall) -> Option<bool> {
    let value = |i: usize| match s.args.get(i) {
        Some(Arg::Flags { value, .. }) => Some(*value as i32),
        Some(Arg::Int(v)) => Some(*v as i32),
        _ => None,
    };
    let family = value(0);
    let ty = value(1).map(|t| t & 0xf);
    let proto = value(2).unwrap_or(0);
    let udp = matches!(family, Some(libc::AF_INET | libc::AF_INET6))
        && ty == Some(libc::SOCK_DGRAM)
        && (proto == 0 || proto == libc::IPPROTO_UDP);
    udp.then(|| value(1).is_some_and(|t| t & libc::SOCK_CLOEXEC != 0))
}

/// The captured bytes of the call's buffer, and its full length (for a
/// message, as far as known: one more byte when it was cut).
fn buffer(s: &Syscall) -> Option<(&[u8], u64)> {
    s.args.iter().find_map(|a| match a {
        Arg::Bytes { data, len } => Some((data.as_slice(), *len)),
        Arg::Msg { data, truncated, .. } => Some((data.as_slice(), data.len() as u64 + u64::from(*truncated))),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::test_support::{flags, sys};

    fn inet(addr: &str) -> Arg {
        Arg::Sockaddr(SockAddr::Inet { addr: addr.parse().unwrap() })
    }

    #[test]
    fn connected_and_addressed_datagrams() {
        let mut d = Datagrams::default();
        let sock = sys(
            1,
            10,
            10,
            "socket",
            vec![
                flags(libc::AF_INET, "AF_INET"),
                flags(libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, "SOCK_DGRAM"),
                Arg::Int(0),
            ],
            3,
        );
        assert!(d.on_syscall(&sock).is_none());
        assert!(d
            .on_syscall(&sys(2, 10, 10, "connect", vec![Arg::Fd(3), inet("127.0.0.53:53"), Arg::Int(16)], 0))
            .is_none());
        let q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x02io\x00\x00\x01\x00\x01".to_vec();
        let send = sys(
            3,
            10,
            10,
            "write",
            vec![Arg::Fd(3), Arg::Bytes { data: q.clone(), len: q.len() as u64 }, Arg::Int(q.len() as i64)],
            q.len() as i64,
        );
        let ev = d.on_syscall(&send).expect("a send on a connected UDP socket");
        let net = ev.as_net().unwrap();
        assert_eq!((net.op, net.peer, net.len), (NetOp::Send, Some("127.0.0.53:53".parse().unwrap()), Some(22)));
        assert_eq!(net.dns.as_ref().unwrap().name, "a.io");
        // A forked child has the descriptor; after close, nothing.
        d.on_fork(10, 11);
        assert!(d
            .on_syscall(&sys(4, 11, 11, "sendmmsg", vec![Arg::Fd(3), Arg::Ptr(1), Arg::Int(2), flags(0, "0")], 2))
            .is_some());
        d.on_syscall(&sys(5, 10, 10, "close", vec![Arg::Fd(3)], 0));
        assert!(d.on_syscall(&send).is_none());
        // An address on any descriptor names the peer.
        let to = sys(
            6,
            10,
            10,
            "sendto",
            vec![Arg::Fd(9), Arg::Ptr(1), Arg::Int(4), flags(0, "0"), inet("10.0.0.1:9"), Arg::Int(16)],
            4,
        );
        assert_eq!(d.on_syscall(&to).unwrap().as_net().unwrap().peer, Some("10.0.0.1:9".parse().unwrap()));
        // Failed calls move nothing.
        let failed = sys(
            7,
            10,
            10,
            "sendto",
            vec![Arg::Fd(9), Arg::Ptr(1), Arg::Int(4), flags(0, "0"), inet("10.0.0.1:9"), Arg::Int(16)],
            -111,
        );
        assert!(d.on_syscall(&failed).is_none());
    }

    /// A copy of a connected socket's descriptor sends to its peer, until
    /// it is closed or, when close-on-exec, the process execs.
    #[test]
    fn copies_of_a_descriptor_are_followed() {
        let mut d = Datagrams::default();
        let udp = |cloexec: i32, text: &str| {
            vec![flags(libc::AF_INET, "AF_INET"), flags(libc::SOCK_DGRAM | cloexec, text), Arg::Int(0)]
        };
        d.on_syscall(&sys(1, 10, 10, "socket", udp(libc::SOCK_CLOEXEC, "SOCK_DGRAM|SOCK_CLOEXEC"), 3));
        d.on_syscall(&sys(2, 10, 10, "connect", vec![Arg::Fd(3), inet("10.0.0.1:53"), Arg::Int(16)], 0));
        let write = |fd: i32| sys(9, 10, 10, "write", vec![Arg::Fd(fd), Arg::Ptr(1), Arg::Int(1)], 1);
        let peer = |d: &mut Datagrams, fd: i32| d.on_syscall(&write(fd)).and_then(|e| e.as_net().unwrap().peer);
        let to: SocketAddr = "10.0.0.1:53".parse().unwrap();
        d.on_syscall(&sys(3, 10, 10, "dup2", vec![Arg::Fd(3), Arg::Fd(7)], 7));
        d.on_syscall(&sys(4, 10, 10, "close", vec![Arg::Fd(3)], 0));
        assert_eq!((peer(&mut d, 3), peer(&mut d, 7)), (None, Some(to)), "dup2, then the original closed");
        let fcntl = vec![Arg::Fd(7), flags(libc::F_DUPFD_CLOEXEC, "F_DUPFD_CLOEXEC"), Arg::Fd(20)];
        d.on_syscall(&sys(5, 10, 10, "fcntl", fcntl, 20));
        d.on_syscall(&sys(6, 10, 10, "dup", vec![Arg::Fd(7)], 8));
        assert_eq!((peer(&mut d, 20), peer(&mut d, 8)), (Some(to), Some(to)));
        // dup2 gives a copy without close-on-exec; F_DUPFD_CLOEXEC with.
        d.on_exec(10);
        assert_eq!((peer(&mut d, 7), peer(&mut d, 8), peer(&mut d, 20)), (Some(to), Some(to), None));
        // A copy of what is no UDP socket replaces one that was.
        d.on_syscall(&sys(7, 10, 10, "dup2", vec![Arg::Fd(0), Arg::Fd(7)], 7));
        assert_eq!(peer(&mut d, 7), None);
        // A socket made close-on-exec is gone at the next exec.
        d.on_syscall(&sys(8, 10, 10, "socket", udp(libc::SOCK_CLOEXEC, "SOCK_DGRAM|SOCK_CLOEXEC"), 4));
        d.on_syscall(&sys(9, 10, 10, "connect", vec![Arg::Fd(4), inet("10.0.0.1:53"), Arg::Int(16)], 0));
        assert_eq!(peer(&mut d, 4), Some(to));
        d.on_exec(10);
        assert_eq!((peer(&mut d, 4), peer(&mut d, 8)), (None, Some(to)));
    }

    /// A message's own address names the peer, but not an error-queue
    /// read's (the address an earlier datagram was sent to) nor an `mmsg`
    /// call's that moved no message.
    #[test]
    fn message_addresses() {
        let mut d = Datagrams::default();
        let msg = |addr: &str| Arg::Msg {
            name: Some(SockAddr::Inet { addr: addr.parse().unwrap() }),
            data: b"x".to_vec(),
            truncated: false,
        };
        let recv = |flags_value: i32, name: &str| {
            sys(1, 10, 10, "recvmsg", vec![Arg::Fd(5), msg("10.0.0.2:53"), flags(flags_value, name)], 1)
        };
        let ev = d.on_syscall(&recv(0, "0")).expect("a datagram from the named address");
        assert_eq!(ev.as_net().unwrap().peer, Some("10.0.0.2:53".parse().unwrap()));
        assert!(d.on_syscall(&recv(libc::MSG_ERRQUEUE, "MSG_ERRQUEUE")).is_none());
        let none = sys(
            2,
            10,
            10,
            "recvmmsg",
            vec![Arg::Fd(5), msg("10.0.0.2:53"), Arg::Int(0), flags(0, "0"), Arg::Ptr(0)],
            0,
        );
        assert!(d.on_syscall(&none).is_none());
    }
}
