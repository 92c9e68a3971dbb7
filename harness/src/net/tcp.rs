//! TCP connections, numbered by socket.
//!
//! The kernel's TCP records name a socket by its address in the kernel;
//! each socket gets a number the first time its connect, listen or accept
//! is seen, and keeps the addresses it had, so that an accept or a socket
//! still open at the end of the session gets them.

use foldhash::HashMap;

use probity_common::{NetEvent, SockOwner, NET_ADDR_UNKNOWN, NET_OPEN_AT_END};

use crate::event::{Event, EventKind, Net, NetOp, Protocol, TcpState};

/// The live TCP sockets of a session, numbered.
#[derive(Default)]
pub(crate) struct Connections {
    /// Live TCP sockets by the kernel's socket address.
    conns: HashMap<u64, Conn>,
    /// Connections numbered so far.
    count: u32,
}

/// What is known of a live TCP socket.
#[derive(Clone, Copy)]
struct Conn {
    number: u32,
    /// Its connect, listen or accept was seen. An event of another socket
    /// can come first: the kernel side claims an accepted socket just
    /// before it writes the accept, and a softirq on another CPU may
    /// report the socket in between.
    claimed: bool,
    local: Option<std::net::SocketAddr>,
    peer: Option<std::net::SocketAddr>,
}

impl Connections {
    /// A TCP record as an event, numbering its connection.
    pub(crate) fn on_record(&mut self, n: &NetEvent) -> Event {
        let h = n.header;
        let op = match probity_common::NetOp::from_u32(n.op) {
            Some(probity_common::NetOp::Connect) => NetOp::Connect,
            Some(probity_common::NetOp::Listen) => NetOp::Listen,
            Some(probity_common::NetOp::Accept) => NetOp::Accept,
            Some(probity_common::NetOp::Close) => NetOp::Close,
            Some(probity_common::NetOp::Retransmit) => NetOp::Retransmit,
            Some(probity_common::NetOp::ResetSent) => NetOp::ResetSent,
            Some(probity_common::NetOp::ResetReceived) => NetOp::ResetReceived,
            Some(probity_common::NetOp::State) | None => NetOp::State,
        };
        let known = n.flags & NET_ADDR_UNKNOWN == 0;
        let mut local = known.then(|| sockaddr(n.family, &n.saddr, n.sport)).flatten();
        // A listening socket has no peer (port 0).
        let peer = (known && n.dport != 0).then(|| sockaddr(n.family, &n.daddr, n.dport)).flatten();
        if n.sport == 0 {
            // A connect, before the kernel picked the source port.
            local = None;
        }
        let fresh = matches!(op, NetOp::Connect | NetOp::Listen | NetOp::Accept);
        let conn = match self.conns.get_mut(&n.sk) {
            Some(c) if !fresh || !c.claimed => c,
            _ => {
                self.count += 1;
                let c = Conn { number: self.count, claimed: false, local: None, peer: None };
                self.conns.entry(n.sk).insert_entry(c).into_mut()
            }
        };
        conn.claimed |= fresh;
        conn.local = local.or(conn.local);
        conn.peer = peer.or(conn.peer);
        let conn = *conn;
        let closed = op == NetOp::Close;
        if closed {
            self.conns.remove(&n.sk);
        }
        let state = TcpState::from_kernel(n.new_state);
        let net = Net {
            op,
            protocol: Protocol::Tcp,
            local: conn.local,
            peer: conn.peer,
            conn: Some(conn.number),
            host: None,
            old_state: if op == NetOp::State { TcpState::from_kernel(n.old_state) } else { None },
            state: if matches!(op, NetOp::State | NetOp::Retransmit | NetOp::ResetSent) { state } else { None },
            bytes_sent: closed.then_some(n.bytes_sent),
            bytes_received: closed.then_some(n.bytes_received),
            retransmits: closed.then_some(n.retransmits),
            len: None,
            dns: None,
            open_at_end: n.flags & NET_OPEN_AT_END != 0,
        };
        Event { ts_ns: h.ts_ns, pid: h.pid, tid: h.tid, kind: EventKind::Net(Box::new(net)) }
    }

    /// The close of socket `sk`, still open when the session ends, with
    /// `owner`'s counters at `ts_ns`; `None` when it is no connection.
    pub(crate) fn open_at_end(&mut self, sk: u64, owner: &SockOwner, ts_ns: u64) -> Option<Event> {
        let conn = self.conns.get(&sk).copied()?;
        let mut n = NetEvent {
            header: probity_common::EventHeader::new(
                probity_common::EventKind::Net,
                owner.session,
                ts_ns,
                owner.pid,
                owner.tid,
            ),
            op: probity_common::NetOp::Close as u32,
            family: 0,
            protocol: 6,
            sport: 0,
            dport: 0,
            old_state: 0,
            new_state: 0,
            _pad: 0,
            sk,
            saddr: [0; 16],
            daddr: [0; 16],
            bytes_sent: owner.bytes_sent,
            bytes_received: owner.bytes_received,
            retransmits: owner.retransmits,
            flags: NET_OPEN_AT_END | NET_ADDR_UNKNOWN,
        };
        n.sport = conn.local.map_or(0, |a| a.port());
        Some(self.on_record(&n))
    }
}

/// A socket address from a TCP record's family, address bytes and port.
fn sockaddr(family: u16, addr: &[u8; 16], port: u16) -> Option<std::net::SocketAddr> {
    let ip: std::net::IpAddr = match i32::from(family) {
        libc::AF_INET => std::net::Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]).into(),
        libc::AF_INET6 => std::net::Ipv6Addr::from(*addr).into(),
        _ => return None,
    };
    Some(std::net::SocketAddr::new(ip, port))
}
