//! Expectations about the network: none at all, only to allowed
//! destinations, no TCP retransmits.

use std::net::IpAddr;

use super::absence::{absence, network_absence};
use super::blind_spots::{blind_spot_notes, blind_spots};
use super::destination::{destination, Dest, LibcFds};
use super::dns::{dns_distrust, trusted_answer};
use super::sockets::is_network;
use super::violation::{found, list, ok_or_panic, Violation, ViolationKind, MAX_LISTED};
use crate::net::canonical;
use crate::trace::index::{kernel_traced, Index};
use crate::trace::Trace;

impl Trace {
    /// Checks that the process tree made no network access: it created no
    /// `AF_INET`, `AF_INET6` or `AF_PACKET` socket (nor one of another
    /// family that reaches beyond this machine's processes, such as
    /// `AF_VSOCK` or `AF_XDP`), no syscall carries an IP address or works
    /// on an internet socket, and there is no network event. Attempts
    /// count, even when they failed. Unix and netlink sockets are not
    /// network. Fails, saying why, when events were lost, a process was
    /// not covered by the eBPF tracer, or the tree used a channel whose
    /// traffic probity does not see (io_uring, a descriptor taken from
    /// another process with `pidfd_getfd`, a send on a descriptor the
    /// trace never saw created, a write on one after a message that can
    /// carry descriptors was received).
    ///
    /// With the preload tracer alone it decides on the libc calls (an
    /// internet socket, or a connect or send naming an IP address) when
    /// the library covered every process of the tree and none received
    /// a descriptor from another or set up io_uring, and fails as not
    /// covered, naming the process and why, otherwise. Those records are
    /// the program's own account, which a gate never passes on
    /// ([`check_network_gate`](Trace::check_network_gate)).
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.check_no_network()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_no_network(&self) -> Result<(), Violation> {
        let idx = Index::new(self);
        let expectation = "no network access (no internet or packet socket, no IP address in any syscall)";
        let bad: Vec<usize> = (0..self.events.len()).filter(|&i| is_network(&idx, i)).collect();
        if !bad.is_empty() {
            return Err(found(&idx, expectation, &bad, |_| None));
        }
        let mut undecided = blind_spots(&idx);
        let fds = LibcFds::new(&idx);
        undecided.extend((0..self.events.len()).filter_map(|i| match destination(&idx, &fds, i) {
            Dest::Unknown(why) => Some((i, why)),
            _ => None,
        }));
        undecided.sort_unstable();
        undecided.dedup_by_key(|(i, _)| *i);
        network_absence(&idx, expectation, &undecided).map_err(|v| blind_spot_notes(&idx, v))
    }

    /// Panics unless [`check_no_network`](Trace::check_no_network) passes.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.assert_no_network();
    /// # Ok::<(), probity::Error>(())
    /// ```
    #[track_caller]
    pub fn assert_no_network(&self) {
        ok_or_panic(self.check_no_network());
    }

    /// Checks that every network destination of the process tree (the
    /// address of a `connect`, or of a `sendto`, `sendmsg` or `sendmmsg`:
    /// the one it names, else the connected socket's) is in `allowed`: IP
    /// addresses (`127.0.0.1`, `::1`), CIDR blocks (`10.0.0.0/8`) or host
    /// names (`localhost`, `example.com`). IPv4-mapped IPv6 addresses count
    /// as IPv4.
    ///
    /// A host name allows only addresses probity itself saw it resolve to,
    /// from a source the traced program could not steer: the addresses
    /// `/etc/hosts` gave it when the command started (and the loopback
    /// addresses for `localhost`), and those of DNS answers for it that the
    /// kernel saw arrive over UDP from a nameserver of `/etc/resolv.conf`
    /// as it was when the command started (port 53). Answers are not
    /// believed when the trace shows a way the tree could have forged one:
    /// a process that bound port 53, opened a raw or packet socket,
    /// entered another network namespace with `setns`, had a second
    /// thread, or shared or wrote another process's memory (the answer's
    /// bytes are read from the receiver's memory when the call returns).
    /// What the program reports itself (a `getaddrinfo` or
    /// `gethostbyname` the preload tracer saw) is a claim: it is shown
    /// next to a destination that breaks the expectation, and never allows
    /// one. A name allows the addresses it resolved to; it does not show
    /// that the program meant to reach that host, nor that nothing else
    /// is served at those addresses. Only whole answers count: capture
    /// enough of each buffer (`with_string_limit(StringLimit::new(512)?)`, `probity run -s
    /// 512`). An allow-list with a host name also allows DNS queries to
    /// port 53 of the nameservers, without which no name could be looked
    /// up (a query's name can carry data to the servers of any domain).
    ///
    /// Fails, saying why, when events were lost, a process was not covered
    /// by the eBPF tracer, or a destination was not recorded: a send
    /// naming no address on a socket whose `connect` is not in the trace
    /// (or on a descriptor the trace never saw created), a `sendmmsg`
    /// that sent several messages whose first names an address (only the
    /// first message's is recorded), or a channel whose traffic probity
    /// does not see: io_uring, a raw, packet or other non-internet
    /// network socket, a descriptor taken from another process with
    /// `pidfd_getfd`, a write on a descriptor the trace never saw created
    /// after a message that can carry descriptors was received. A `sendmmsg` whose first message names no address,
    /// on a connected socket, is taken to send every message to the
    /// socket's peer, as glibc's resolver does; a later message naming
    /// another address would not be seen. With the preload tracer alone
    /// it decides as [`check_no_network`](Trace::check_no_network) does;
    /// a send naming no address goes where the descriptor's recorded
    /// `connect` (or `accept`) pointed, and is undecided on one no
    /// recorded call made or connected.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.check_network_only_to(["127.0.0.0/8", "::1", "localhost"])?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_network_only_to<I, S>(&self, allowed: I) -> Result<(), Violation>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let allowed: Vec<String> = allowed.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let expectation = format!("network access only to {}", list(&allowed));
        let mut nets = Vec::new();
        let mut hosts = Vec::new();
        for a in &allowed {
            if let Some(n) = crate::trace::query::parse_net(a) {
                nets.push(n);
            } else if is_host_name(a) {
                hosts.push(a.trim_end_matches('.').to_ascii_lowercase());
            } else {
                let problem = format!("`{a}` is not an IP address, a CIDR block or a host name");
                return Err(Violation::new(ViolationKind::Invalid, expectation, problem, self));
            }
        }
        let idx = Index::new(self);
        let resolution = &self.outcome.resolution;
        // Addresses the allowed names resolved to, from trusted sources.
        let mut resolved: Vec<IpAddr> = hosts.iter().flat_map(|h| resolution.host_addrs(h)).collect();
        let distrust = if hosts.is_empty() { Vec::new() } else { dns_distrust(&idx) };
        let mut bad = Vec::new();
        let mut undecided = blind_spots(&idx);
        let mut names: Vec<(usize, String)> = Vec::new();
        // What the program's own lookups claim, for the message only.
        let mut claims = crate::net::HostLinker::default();
        // An answer for an allowed name came, and was not believed.
        let mut ignored_answers = false;
        let fds = LibcFds::new(&idx);
        let mut order: Vec<usize> = (0..self.events.len()).collect();
        order.sort_by_key(|&i| (self.events[i].ts_ns, i));
        for i in order {
            let e = &self.events[i];
            claims.learn_from(e);
            if let Some(d) = trusted_answer(resolution, e).filter(|d| hosts.contains(&d.name.to_ascii_lowercase())) {
                if distrust.is_empty() {
                    resolved.extend(d.addrs.iter().map(|ip| canonical(*ip)));
                } else {
                    ignored_answers = true;
                }
            }
            match destination(&idx, &fds, i) {
                Dest::None => {}
                Dest::Ip(ip, _) if nets.iter().any(|n| n.contains(&ip)) || resolved.contains(&ip) => {}
                // Names are looked up through the nameservers: allowing a
                // name allows asking them.
                Dest::Ip(ip, 53) if !hosts.is_empty() && resolution.is_nameserver(ip) => {}
                Dest::Ip(ip, _) => {
                    if let Some(n) = claims.name_for(e.pid, ip) {
                        let n = n.to_ascii_lowercase();
                        let note = if hosts.contains(&n) {
                            format!("resolved as {n}, by the program's own account, which allows nothing")
                        } else {
                            format!("resolved as {n}")
                        };
                        names.push((i, note));
                    }
                    bad.push(i);
                }
                Dest::Unknown(why) => undecided.push((i, why)),
            }
        }
        bad.sort_unstable();
        if !bad.is_empty() {
            let mut v =
                found(&idx, &expectation, &bad, |i| names.iter().find(|(j, _)| *j == i).map(|(_, n)| n.clone()));
            if !hosts.is_empty() {
                v = v.note(
                    "a host name allows the addresses /etc/hosts gave it when the command started, and those of DNS answers the kernel saw arrive from a nameserver of /etc/resolv.conf; what the program reports of its own lookups allows nothing",
                );
            }
            if ignored_answers {
                let mut whys: Vec<&str> = distrust.iter().map(|(_, why)| why.as_str()).collect();
                let more = whys.len().saturating_sub(MAX_LISTED);
                whys.truncate(MAX_LISTED);
                let more = if more > 0 { format!("; and {more} more") } else { String::new() };
                v = v.note(format!("DNS answers were not believed: {}{more}", whys.join("; ")));
            }
            return Err(v);
        }
        undecided.sort_unstable();
        undecided.dedup_by_key(|(i, _)| *i);
        network_absence(&idx, &expectation, &undecided).map_err(|v| blind_spot_notes(&idx, v))
    }

    /// Panics unless [`check_network_only_to`](Trace::check_network_only_to) passes.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.assert_network_only_to(["127.0.0.0/8"]);
    /// # Ok::<(), probity::Error>(())
    /// ```
    #[track_caller]
    pub fn assert_network_only_to<I, S>(&self, allowed: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        ok_or_panic(self.check_network_only_to(allowed));
    }

    /// The check behind a network gate (`probity run --deny-network`
    /// when `allowed` is `None`, `--allow-connect` with the list):
    /// [`check_no_network`](Trace::check_no_network) or
    /// [`check_network_only_to`](Trace::check_network_only_to), and
    /// then, unlike those, a refusal when the kernel tracer did not run.
    /// The preload tracer's records are written by the traced program
    /// itself, which can leave out what it likes: a gate never passes on
    /// them, though a test's check may.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.check_network_gate(Some(&["127.0.0.0/8"]))?;
    /// trace.check_network_gate(None::<&[&str]>)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_network_gate<I, S>(&self, allowed: Option<I>) -> Result<(), Violation>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let (expectation, checked) = match allowed {
            None => ("no network access".to_owned(), self.check_no_network()),
            Some(allowed) => {
                let allowed: Vec<String> = allowed.into_iter().map(|a| a.as_ref().to_owned()).collect();
                (format!("network access only to {}", list(&allowed)), self.check_network_only_to(&allowed))
            }
        };
        checked?;
        if kernel_traced(self) {
            return Ok(());
        }
        let problem = "only the preload tracer ran, and its records are written by the traced program itself, which can leave out what it likes: no gate (probity run --deny-network, --allow-connect) passes on them; trace with the eBPF tracer (as root, see probity doctor)";
        Err(Violation::new(ViolationKind::NotCovered, expectation, problem, self))
    }

    /// Checks that no TCP segment of the process tree was retransmitted.
    /// Retransmits fire in softirq or timer context; each is charged to
    /// the process that owns the socket. Fails, saying why, when events
    /// were lost (including sockets the kernel's socket map had no room
    /// for) or a process was not covered by the eBPF tracer.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.check_no_retransmits()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_no_retransmits(&self) -> Result<(), Violation> {
        let idx = Index::new(self);
        let expectation = "no TCP retransmits";
        let bad: Vec<usize> = (0..self.events.len())
            .filter(|&i| self.events[i].as_net().is_some_and(|n| n.op == crate::event::NetOp::Retransmit))
            .collect();
        if !bad.is_empty() {
            return Err(found(&idx, expectation, &bad, |_| None));
        }
        absence(&idx, expectation, Some("net"), None, &[])
    }

    /// Panics unless [`check_no_retransmits`](Trace::check_no_retransmits) passes.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.assert_no_retransmits();
    /// # Ok::<(), probity::Error>(())
    /// ```
    #[track_caller]
    pub fn assert_no_retransmits(&self) {
        ok_or_panic(self.check_no_retransmits());
    }
}

impl Trace {
    /// Checks one entry of the allow-list of
    /// [`check_network_only_to`](Trace::check_network_only_to) before any
    /// trace exists, so that a mistyped entry is refused up front rather
    /// than failing the check after the run; the error says what the entry
    /// may be.
    ///
    /// ```
    /// assert!(probity::Trace::check_allowed_destination("10.0.0.0/8").is_ok());
    /// assert!(probity::Trace::check_allowed_destination("999.1.1.1/99").is_err());
    /// ```
    pub fn check_allowed_destination(entry: &str) -> Result<(), String> {
        if crate::trace::query::parse_net(entry).is_some() || is_host_name(entry) {
            return Ok(());
        }
        Err(format!(
            "`{entry}` is not an IP address (127.0.0.1, ::1), a CIDR block (10.0.0.0/8) or a host name \
             (letters, digits, `-`, `_` and `.`, at most 253 bytes, with a letter)"
        ))
    }
}

/// Whether `s` can be a host name: letters, digits, `-`, `_` and dots.
fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes().any(|b| b.is_ascii_alphabetic())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::event::{Arg, Event, EventKind, SockAddr};
    use crate::trace::test_support::{flags, path, sys, trace};

    fn inet(addr: &str) -> Arg {
        Arg::Sockaddr(SockAddr::Inet { addr: addr.parse::<SocketAddr>().unwrap() })
    }

    /// A `sendmsg` or `sendmmsg` on an unconnected socket is checked
    /// against the address its message names.
    #[test]
    fn a_message_is_checked_against_the_address_it_names() {
        let msg = |addr: &str| Arg::Msg {
            name: Some(SockAddr::Inet { addr: addr.parse::<SocketAddr>().unwrap() }),
            data: b"q".to_vec(),
            truncated: false,
        };
        let udp =
            || sys(1, 10, 10, "socket", vec![flags(libc::AF_INET, "AF_INET"), flags(2, "SOCK_DGRAM"), Arg::Int(0)], 3);
        let t = trace(
            vec![udp(), sys(2, 10, 10, "sendmsg", vec![Arg::Fd(3), msg("192.0.2.1:53"), flags(0, "0")], 1)],
            None,
        );
        t.assert_network_only_to(["192.0.2.0/24"]);
        let v = t.check_network_only_to(["127.0.0.1"]).unwrap_err();
        assert_eq!(v.kind(), ViolationKind::Found, "{v}");
        assert!(v.to_string().contains("192.0.2.1"), "{v}");
        // One message of several: the others may name other addresses.
        let t = trace(
            vec![
                udp(),
                sys(2, 10, 10, "sendmmsg", vec![Arg::Fd(3), msg("192.0.2.1:53"), Arg::Int(2), flags(0, "0")], 2),
            ],
            None,
        );
        let v = t.check_network_only_to(["192.0.2.0/24"]).unwrap_err();
        assert_eq!(v.kind(), ViolationKind::Undecided, "{v}");
        // One message asked for, or two asked for and one sent: decided.
        for (asked, sent) in [(1, 1), (2, 1)] {
            let t = trace(
                vec![
                    udp(),
                    sys(
                        2,
                        10,
                        10,
                        "sendmmsg",
                        vec![Arg::Fd(3), msg("192.0.2.1:53"), Arg::Int(asked), flags(0, "0")],
                        sent,
                    ),
                ],
                None,
            );
            t.assert_network_only_to(["192.0.2.0/24"]);
        }
    }

    #[test]
    fn destinations_against_allowed_blocks() {
        let t = trace(
            vec![
                sys(
                    1,
                    10,
                    10,
                    "socket",
                    vec![flags(libc::AF_INET6, "AF_INET6"), flags(1, "SOCK_STREAM"), Arg::Int(0)],
                    3,
                ),
                sys(2, 10, 10, "connect", vec![Arg::Fd(3), inet("[::ffff:10.1.2.3]:80"), Arg::Int(28)], 0),
                sys(3, 10, 10, "sendmsg", vec![Arg::Fd(3), Arg::Ptr(1), flags(0, "0")], 5),
            ],
            None,
        );
        t.assert_network_only_to(["10.0.0.0/8"]);
        let v = t.check_network_only_to(["10.1.2.4", "::ffff:10.1.2.3/128"]).unwrap_err();
        assert_eq!(v.kind(), ViolationKind::Found, "mapped addresses are IPv4: {v}");
        assert_eq!(v.events().count(), 2, "the connect, and the send on the connected socket: {v}");
        let v = t.check_no_network().unwrap_err();
        assert_eq!(v.events().count(), 3);
        // A message: expectation, events with time and program, excerpt.
        let text = v.to_string();
        assert!(text.starts_with("expected no network access"), "{text}");
        assert!(text.contains("\n  +0.000000s [10] socket(AF_INET6, SOCK_STREAM, 0) = 3 <0.000000>\n"), "{text}");
        assert!(text.contains("\n  > [10] socket("), "{text}");
        assert_eq!(
            v.stable_text().lines().nth(2),
            Some("  [1] socket(AF_INET6, SOCK_STREAM, 0) = 3"),
            "{}",
            v.stable_text()
        );
    }

    fn libc_lookup(ts: u64, name: &str, addr: &str) -> Event {
        Event {
            ts_ns: ts,
            pid: 10,
            tid: 10,
            kind: EventKind::Libc(Box::new(crate::event::LibcCall {
                function: "getaddrinfo".into(),
                args: vec![path(name), Arg::Ptr(0), Arg::Strings { items: vec![addr.into()], truncated: false }],
                ret: Some(Arg::Int(0)),
                errno: None,
                duration_ns: 1,
                parent: None,
                injected: false,
            })),
        }
    }

    fn answer(ts: u64, from: &str, name: &str, addr: &str) -> Event {
        let dns = crate::event::Dns {
            name: name.into(),
            qtype: "A".into(),
            response: true,
            addrs: vec![addr.parse().unwrap()],
            truncated: false,
        };
        let net = crate::event::Net::udp(
            crate::event::NetOp::Receive,
            None,
            from.parse().unwrap(),
            Some(40),
            Some(Box::new(dns)),
        );
        Event { ts_ns: ts, pid: 10, tid: 10, kind: EventKind::Net(Box::new(net)) }
    }

    fn tcp(ts: u64, fd: i64) -> Event {
        sys(ts, 10, 10, "socket", vec![flags(libc::AF_INET, "AF_INET"), flags(1, "SOCK_STREAM"), Arg::Int(0)], fd)
    }

    fn connect(ts: u64, fd: i32, addr: &str) -> Event {
        sys(ts, 10, 10, "connect", vec![Arg::Fd(fd), inet(addr), Arg::Int(16)], 0)
    }

    fn with_resolution(mut t: Trace, resolv: &str, hosts: &str) -> Trace {
        t.outcome.resolution = crate::trace::Resolution::parse(resolv, hosts);
        t
    }

    /// What the program says it resolved never allows a destination; it
    /// is shown as its own account.
    #[test]
    fn a_lookup_the_program_reports_allows_nothing() {
        let t = trace(
            vec![libc_lookup(1, "allowed.example", "127.0.0.1:80"), tcp(2, 3), connect(3, 3, "127.0.0.1:80")],
            None,
        );
        let t = with_resolution(t, "nameserver 10.0.0.53\n", "127.0.0.1 localhost\n");
        let v = t.check_network_only_to(["allowed.example"]).unwrap_err();
        assert_eq!(v.kind(), ViolationKind::Found, "{v}");
        assert!(
            v.to_string().contains("resolved as allowed.example, by the program's own account, which allows nothing"),
            "{v}"
        );
        // The same address by a name probity resolved before the run.
        t.assert_network_only_to(["localhost"]);
        t.assert_network_only_to(["LOCALHOST."]);
    }

    /// A DNS answer counts when the kernel saw it arrive from a
    /// configured nameserver's port 53, and nothing in the trace could
    /// have forged it.
    #[test]
    fn dns_answers_count_from_configured_nameservers_only() {
        let run = |from: &str, extra: Vec<Event>| {
            let mut events =
                vec![answer(1, from, "allowed.example", "192.0.2.7"), tcp(2, 3), connect(3, 3, "192.0.2.7:443")];
            events.extend(extra);
            with_resolution(trace(events, None), "nameserver 10.0.0.53\n", "")
        };
        run("10.0.0.53:53", vec![]).assert_network_only_to(["allowed.example"]);
        // From another address, or another port: not an answer probity
        // trusts.
        for from in ["10.0.0.54:53", "10.0.0.53:5353"] {
            let v = run(from, vec![]).check_network_only_to(["allowed.example"]).unwrap_err();
            assert_eq!(v.kind(), ViolationKind::Found, "{from}: {v}");
        }
        // A process that bound port 53 could have answered itself.
        let bind = sys(4, 10, 10, "bind", vec![Arg::Fd(3), inet("0.0.0.0:53"), Arg::Int(16)], 0);
        let v = run("10.0.0.53:53", vec![bind]).check_network_only_to(["allowed.example"]).unwrap_err();
        assert!(v.to_string().contains("DNS answers were not believed: process 10 bound port 53"), "{v}");
        // A second thread could have rewritten the received bytes.
        let thread = sys(4, 10, 11, "getpid", vec![], 10);
        let v = run("10.0.0.53:53", vec![thread]).check_network_only_to(["allowed.example"]).unwrap_err();
        assert!(v.to_string().contains("process 10 had more than one thread"), "{v}");
        // Another process's memory file, opened to write an answer in.
        let mem = sys(4, 10, 10, "openat", vec![Arg::Fd(-100), path("/proc/11/mem"), flags(2, "O_RDWR")], 4);
        let v = run("10.0.0.53:53", vec![mem]).check_network_only_to(["allowed.example"]).unwrap_err();
        assert!(v.to_string().contains("opened a process's memory file"), "{v}");
        // The answer names the addresses of the name asked, not others.
        let v = run("10.0.0.53:53", vec![]).check_network_only_to(["other.example"]).unwrap_err();
        assert_eq!(v.kind(), ViolationKind::Found, "{v}");
        // A host name allows asking the nameservers (port 53 only).
        let ask = |to: &str| {
            let udp =
                sys(1, 10, 10, "socket", vec![flags(libc::AF_INET, "AF_INET"), flags(2, "SOCK_DGRAM"), Arg::Int(0)], 5);
            let send = sys(
                2,
                10,
                10,
                "sendto",
                vec![Arg::Fd(5), Arg::Ptr(1), Arg::Int(3), flags(0, "0"), inet(to), Arg::Int(16)],
                3,
            );
            with_resolution(trace(vec![udp, send], None), "nameserver 10.0.0.53\n", "")
        };
        ask("10.0.0.53:53").assert_network_only_to(["allowed.example"]);
        assert!(ask("10.0.0.53:53").check_network_only_to(["10.9.0.0/16"]).is_err(), "without a name, no");
        assert!(ask("10.0.0.53:80").check_network_only_to(["allowed.example"]).is_err(), "another port");
    }

    /// Channels the tracer does not see into make the network checks
    /// undecided.
    #[test]
    fn unseen_channels_fail_closed() {
        let setup = sys(1, 10, 10, "io_uring_setup", vec![Arg::Int(4), Arg::Ptr(1)], 3);
        let t = trace(vec![setup.clone()], None);
        let v = t.check_no_network().unwrap_err();
        assert_eq!(v.kind(), ViolationKind::Undecided, "{v}");
        assert!(
            v.to_string()
                .contains("note: process 10 set up io_uring at +0.000000s, whose submissions probity does not decode"),
            "{v}"
        );
        assert_eq!(t.check_network_only_to(["10.0.0.1"]).unwrap_err().kind(), ViolationKind::Undecided);
        // A setup that failed made no ring.
        let failed = sys(1, 10, 10, "io_uring_setup", vec![Arg::Int(4), Arg::Ptr(1)], -libc::ENOSYS as i64);
        trace(vec![failed], None).assert_no_network();
        // A ring from outside the tree, used.
        let enter = sys(1, 10, 10, "io_uring_enter", vec![Arg::Fd(7), Arg::Int(1), Arg::Int(1), Arg::Int(1)], 1);
        let v = trace(vec![enter], None).check_no_network().unwrap_err();
        assert!(v.to_string().contains("an io_uring the trace never saw set up"), "{v}");
        // A send on a descriptor the trace never saw made.
        let send = sys(
            1,
            10,
            10,
            "sendto",
            vec![Arg::Fd(5), Arg::Ptr(1), Arg::Int(3), flags(0, "0"), Arg::Ptr(0), Arg::Int(0)],
            3,
        );
        let v = trace(vec![send], None).check_network_only_to(["10.0.0.1"]).unwrap_err();
        assert_eq!(v.kind(), ViolationKind::Undecided, "{v}");
        assert!(v.to_string().contains("a descriptor the trace never saw created"), "{v}");
        // A packet socket: found by check_no_network, undecided for an
        // allow-list.
        let packet =
            sys(1, 10, 10, "socket", vec![flags(libc::AF_PACKET, "AF_PACKET"), flags(3, "SOCK_RAW"), Arg::Int(0)], 3);
        let t = trace(vec![packet], None);
        assert_eq!(t.check_no_network().unwrap_err().kind(), ViolationKind::Found);
        assert_eq!(t.check_network_only_to(["10.0.0.1"]).unwrap_err().kind(), ViolationKind::Undecided);
        let vsock =
            sys(1, 10, 10, "socket", vec![flags(libc::AF_VSOCK, "AF_VSOCK"), flags(1, "SOCK_STREAM"), Arg::Int(0)], 3);
        assert_eq!(trace(vec![vsock], None).check_no_network().unwrap_err().kind(), ViolationKind::Found);
        // A Unix socket is not network.
        let unix =
            sys(1, 10, 10, "socket", vec![flags(libc::AF_UNIX, "AF_UNIX"), flags(1, "SOCK_STREAM"), Arg::Int(0)], 3);
        let send = sys(
            2,
            10,
            10,
            "sendto",
            vec![Arg::Fd(3), Arg::Ptr(1), Arg::Int(3), flags(0, "0"), Arg::Ptr(0), Arg::Int(0)],
            3,
        );
        let t = trace(vec![unix, send], None);
        t.assert_no_network();
        t.assert_network_only_to(["10.0.0.1"]);
    }

    /// Without the eBPF tracer, in a trace that does not say where the
    /// library started (saved by an older probity), the network checks
    /// are not covered.
    #[test]
    fn network_checks_need_the_kernel_tracer() {
        let mut t = trace(vec![libc_lookup(1, "localhost", "127.0.0.1:80")], None);
        t.outcome.tracers = vec![crate::TracerKind::Preload];
        assert_eq!(t.check_no_network().unwrap_err().kind(), ViolationKind::NotCovered);
        assert_eq!(t.check_network_only_to(["localhost"]).unwrap_err().kind(), ViolationKind::NotCovered);
    }
}
