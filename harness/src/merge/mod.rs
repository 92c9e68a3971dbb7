//! The merge stage: what the tracers collected becomes one [`Trace`]
//! timeline and its [`Outcome`].
//!
//! [`order`] sorts both tracers' events into start order and links each
//! call to the libc call it was made in; [`finish`] is the end of a run
//! (the cuts, coverage, probity's own syscalls, the links and the host
//! names) and builds the outcome; [`HostLinker`] names network peers.
//!
//! [`Trace`]: crate::Trace
//! [`Outcome`]: crate::Outcome

mod finish;
mod order;

use foldhash::HashMap;

pub(crate) use finish::{finish, Collected, KernelEnd, PreloadEnd};
pub use order::depth;
pub(crate) use order::{sort, Linker};

use crate::event::{Event, EventKind};

/// Links network events to the host names the program resolved: each
/// `getaddrinfo` or `gethostbyname` libc call (from the preload tracer)
/// and each DNS answer seen in a UDP datagram maps the addresses it gave
/// to the name asked, and a later network event whose peer is one of them
/// gets that name as its `host`, the same process's lookups first. A TCP
/// connection keeps the name its first event got. Feed events in start
/// (or completion) order.
///
/// The names are for showing only: a lookup record is the program's own
/// account (the preload ring is writable by it), and a DNS datagram here
/// may come from anywhere. Gates never rest on them; see
/// [`Trace::check_network_only_to`](crate::Trace::check_network_only_to).
#[derive(Default)]
pub(crate) struct HostLinker {
    /// Names by address, per process and for the whole tree.
    by_pid: HashMap<u32, HashMap<std::net::IpAddr, String>>,
    any: HashMap<std::net::IpAddr, String>,
    /// Names given to TCP connections, by process and connection number.
    conns: HashMap<u32, String>,
}

impl HostLinker {
    /// Learns from `event`, or names its peer.
    pub(crate) fn apply(&mut self, event: &mut Event) {
        let pid = event.pid;
        let EventKind::Net(n) = &mut event.kind else {
            self.learn_from(event);
            return;
        };
        // Nothing to name it with before the first name is learned (the
        // common case: a trace without lookups).
        if n.host.is_some() || self.any.is_empty() {
            if n.dns.is_some() {
                self.learn_from(event);
            }
            return;
        }
        let known = n.conn.and_then(|c| self.conns.get(&c)).cloned();
        let host = known.or_else(|| self.name_for(pid, n.peer?.ip()).map(str::to_owned));
        if let (Some(h), Some(c)) = (&host, n.conn) {
            self.conns.entry(c).or_insert_with(|| h.clone());
        }
        n.host = host;
        // A DNS answer names addresses for later events, not its server.
        self.learn_from(event);
    }

    /// The name process `pid` (or, failing that, any process) last
    /// resolved to `ip`.
    pub(crate) fn name_for(&self, pid: u32, ip: std::net::IpAddr) -> Option<&str> {
        let ip = canonical(ip);
        self.by_pid.get(&pid).and_then(|m| m.get(&ip)).or_else(|| self.any.get(&ip)).map(String::as_str)
    }

    /// Learns the names a lookup or a DNS answer gave.
    pub(crate) fn learn_from(&mut self, event: &Event) {
        match &event.kind {
            EventKind::Libc(c) if matches!(c.function.as_str(), "getaddrinfo" | "gethostbyname") => {
                let ok = match (&c.ret, c.function.as_str()) {
                    (Some(crate::event::Arg::Int(0)), "getaddrinfo") => true,
                    (Some(crate::event::Arg::Ptr(p)), "gethostbyname") => *p != 0,
                    _ => false,
                };
                let name = match c.args.first() {
                    Some(crate::event::Arg::Path { path, .. }) if ok => crate::event::shown(path).into_owned(),
                    _ => return,
                };
                let addrs: Vec<std::net::IpAddr> = c
                    .args
                    .iter()
                    .filter_map(|a| match a {
                        crate::event::Arg::Strings { items, .. } => Some(items),
                        _ => None,
                    })
                    .flatten()
                    .filter_map(|s| s.to_str())
                    .filter_map(|s| s.parse::<std::net::SocketAddr>().map(|a| a.ip()).or_else(|_| s.parse()).ok())
                    .collect();
                self.learn(event.pid, &name, &addrs);
            }
            EventKind::Net(n) => {
                if let Some(d) = n.dns.as_ref().filter(|d| d.response && !d.addrs.is_empty()) {
                    self.learn(event.pid, &d.name, &d.addrs);
                }
            }
            _ => {}
        }
    }

    fn learn(&mut self, pid: u32, name: &str, addrs: &[std::net::IpAddr]) {
        for ip in addrs {
            let ip = canonical(*ip);
            self.by_pid.entry(pid).or_default().insert(ip, name.to_owned());
            self.any.insert(ip, name.to_owned());
        }
    }
}

/// IPv4-mapped IPv6 addresses as the IPv4 ones they are.
pub(crate) fn canonical(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
        v4 => v4,
    }
}
