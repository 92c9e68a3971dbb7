//! What a policy gates, event by event: the destinations the tree sent
//! to, the programs it exec'd, the paths it changed, and what could not be
//! told. The same readings the network and file checks make, kept apart
//! from any expectation so that `crate::policy` can judge each event by
//! the rules of the unit it belongs to.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};

use super::blind_spots::blind_spots;
use super::changes::{op_paths, Op};
use super::destination::{destination, Dest};
use super::dns::{dns_distrust, trusted_answer};
use super::files::HARMLESS_DEVICES;
use super::sockets::is_network;
use crate::event::{EventKind, NetOp, Protocol};
use crate::net::canonical;
use crate::trace::index::{kernel_traced, Index, Resolved};
use crate::trace::Trace;

/// Traffic the kernel counted for one peer of one process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Traffic {
    /// TCP or UDP, when a network event named it.
    pub protocol: Option<Protocol>,
    /// Bytes sent: TCP counters at close, UDP datagram lengths.
    pub sent: u64,
    /// Bytes received.
    pub received: u64,
}

/// What kind of thing an undecided event may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Gated {
    /// Network access.
    Network,
    /// A change to the file system.
    Write,
}

/// The readings of one trace.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    /// Each call that sent to or connected to an address: its event, the
    /// address and port.
    pub dests: Vec<(usize, IpAddr, u16)>,
    /// Each event that is network access of any kind (a socket, a send, a
    /// network event): what "no network at all" forbids.
    pub network: Vec<usize>,
    /// Each exec: its event, program and argv.
    pub execs: Vec<(usize, OsString, Vec<OsString>)>,
    /// Each change to the file system at an absolute path, except to the
    /// devices that change nothing.
    pub writes: Vec<(usize, OsString)>,
    /// Events that may be network access or a write, but cannot be told
    /// apart, each with what it may be and why.
    pub undecided: Vec<(usize, Gated, String)>,
    /// Why nothing in the trace can be shown absent, whatever the unit
    /// (events were lost).
    pub whole: Vec<String>,
    /// Processes whose syscalls no tracer saw, with why.
    pub uncovered: Vec<(u32, String)>,
    /// The names each address was resolved from by a source the traced
    /// program could not steer (`/etc/hosts` at start, DNS answers the
    /// kernel saw arrive from a configured nameserver, when none could be
    /// forged).
    pub trusted_names: BTreeMap<IpAddr, BTreeSet<String>>,
    /// The name the program itself resolved each peer from, for display.
    pub claimed_names: BTreeMap<(u32, IpAddr), String>,
    /// What the kernel counted for each (process, peer).
    pub traffic: BTreeMap<(u32, SocketAddr), Traffic>,
}

impl Observed {
    /// Reads `trace`.
    pub(crate) fn new(trace: &Trace) -> Observed {
        let idx = Index::new(trace);
        let mut o = Observed::default();
        if trace.outcome.losses.lost_events() > 0 {
            o.whole.push(format!(
                "{}, so an event the policy forbids may be missing from the trace",
                trace.outcome.losses.describe()
            ));
        }
        if !kernel_traced(trace) {
            o.whole.push(
                "the eBPF tracer did not run: execs, writes and sends made without libc are not in the trace"
                    .to_owned(),
            );
        }
        for p in idx.procs.values() {
            if !p.tracers.iter().any(|t| t.observes("syscall")) {
                let why = if p.untracked {
                    "not traced: the task map was full"
                } else {
                    "covered by no tracer that sees syscalls"
                };
                o.uncovered.push((p.pid, why.to_owned()));
            }
        }
        for (h, addrs) in &trace.outcome.resolution.hosts {
            for a in addrs {
                o.trusted_names.entry(canonical(*a)).or_default().insert(h.to_ascii_lowercase());
            }
        }
        for a in [IpAddr::from([127, 0, 0, 1]), IpAddr::from(std::net::Ipv6Addr::LOCALHOST)] {
            o.trusted_names.entry(a).or_default().insert("localhost".to_owned());
        }
        let distrusted = !dns_distrust(&idx).is_empty();
        o.undecided.extend(blind_spots(&idx).into_iter().map(|(i, why)| (i, Gated::Network, why.to_owned())));
        let fds = super::destination::LibcFds::new(&idx);
        for (i, e) in trace.events.iter().enumerate() {
            if let Some(d) = trusted_answer(&trace.outcome.resolution, e).filter(|_| !distrusted) {
                for a in &d.addrs {
                    let name = d.name.trim_end_matches('.').to_ascii_lowercase();
                    o.trusted_names.entry(canonical(*a)).or_default().insert(name);
                }
            }
            if let Some(n) = e.as_net() {
                o.learn_traffic(e.pid, n);
            }
            if is_network(&idx, i) {
                o.network.push(i);
            }
            match destination(&idx, &fds, i) {
                Dest::None => {}
                Dest::Ip(ip, port) => o.dests.push((i, ip, port)),
                Dest::Unknown(why) => o.undecided.push((i, Gated::Network, why.to_owned())),
            }
            if let EventKind::Exec(x) = &e.kind {
                o.execs.push((i, x.filename.clone(), x.argv.clone()));
            }
            for r in op_paths(&idx, i, Op::Modify) {
                match r {
                    Resolved::Abs(p) if HARMLESS_DEVICES.iter().any(|d| p.as_os_str() == *d) => {}
                    Resolved::Abs(p) => o.writes.push((i, p.clone())),
                    Resolved::Rel(_) => o.undecided.push((
                        i,
                        Gated::Write,
                        "it changed a path relative to a starting directory the trace does not record".to_owned(),
                    )),
                    Resolved::Unknown(why) => o.undecided.push((i, Gated::Write, format!("it changed a path: {why}"))),
                }
            }
        }
        o.undecided.sort();
        o.undecided.dedup_by_key(|(i, g, _)| (*i, *g));
        o
    }

    /// Counts what a network event says about its peer, and keeps the
    /// name the program resolved it from.
    fn learn_traffic(&mut self, pid: u32, n: &crate::event::Net) {
        let Some(peer) = n.peer else { return };
        let peer = SocketAddr::new(canonical(peer.ip()), peer.port());
        if let Some(h) = &n.host {
            self.claimed_names.insert((pid, peer.ip()), h.clone());
        }
        let t = self.traffic.entry((pid, peer)).or_default();
        t.protocol = Some(n.protocol);
        match n.op {
            NetOp::Close => {
                t.sent += n.bytes_sent.unwrap_or(0);
                t.received += n.bytes_received.unwrap_or(0);
            }
            NetOp::Send => t.sent += n.len.unwrap_or(0),
            NetOp::Receive => t.received += n.len.unwrap_or(0),
            _ => {}
        }
    }
}
