//! Network events, for real, in private network namespaces: loopback TCP
//! over IPv4 and IPv6, retransmits forced by an nftables drop rule,
//! resets, host names from `getaddrinfo`, DNS over UDP, concurrent
//! sessions and socket reuse. Each event must be charged to the process
//! that owns the socket, never to whatever ran when the kernel saw it.

use std::collections::BTreeSet;
use std::process::Command;

use probity::{Arg, Event, Net, NetOp, StringLimit, Trace, Tracer, TracerKind};

use crate::support::{dump, fixture, require_tracing};

/// Runs `script` with `sh` in a new network namespace whose loopback is
/// up, traced by `tracer`; the trace must be complete.
fn in_netns(tracer: &Tracer, script: &str) -> Trace {
    require_tracing();
    let mut cmd = Command::new(probity::resolve_program("unshare").unwrap());
    cmd.args(["-n", "sh", "-c", &format!("ip link set lo up && {script}")]);
    let trace = tracer.run(cmd).unwrap_or_else(|e| panic!("failed to trace `{script}`: {e}"));
    assert_eq!(trace.outcome.losses.lost_events(), 0, "events lost: {:?}", trace.outcome.losses);
    assert_eq!(trace.outcome.status, probity::ExitStatus::Code(0), "`{script}` failed:\n{}", dump(&trace));
    trace
}

fn ebpf() -> Tracer {
    Tracer::new().with_tracers(&[TracerKind::Ebpf])
}

/// The pids of the processes that ran `program` (a fixture name).
fn pids_of(trace: &Trace, program: &str) -> BTreeSet<u32> {
    trace.processes().values().filter(|p| p.program().is_some_and(|f| f.ends_with(program))).map(|p| p.pid).collect()
}

fn net_of(trace: &Trace, op: NetOp) -> Vec<(&Event, &Net)> {
    trace.net().op(op).map(|e| (e, e.as_net().unwrap())).collect()
}

/// Every network event of the trace is charged to a process of `allowed`.
fn all_charged_to(trace: &Trace, allowed: &BTreeSet<u32>) {
    for e in trace.net() {
        assert!(
            allowed.contains(&e.pid),
            "charged to {} (not one of {allowed:?}): {}",
            e.pid,
            probity::text::event_line(e)
        );
        assert_ne!(e.pid, 0);
        assert!(trace.process(e.pid).is_some_and(|p| p.threads.contains(&e.tid) || p.pid == e.tid));
    }
}

fn loopback(family: &str, addr: &str) {
    let (server, client) = (fixture("tcp_server"), fixture("tcp_client"));
    let trace = in_netns(&ebpf(), &format!("{server} {family} 8080 1 | {client} -w {family} {addr} 8080 100000 1"));
    let servers = pids_of(&trace, "tcp_server");
    let clients = pids_of(&trace, "tcp_client");
    assert_eq!((servers.len(), clients.len()), (1, 1), "{}", dump(&trace));
    all_charged_to(&trace, &servers.union(&clients).copied().collect());
    let ip: std::net::IpAddr = addr.parse().unwrap();

    let listens = net_of(&trace, NetOp::Listen);
    assert_eq!(listens.len(), 1);
    assert!(servers.contains(&listens[0].0.pid));
    assert_eq!(listens[0].1.local, Some((ip, 8080).into()));

    let connects = net_of(&trace, NetOp::Connect);
    assert_eq!(connects.len(), 1, "{}", dump(&trace));
    assert!(clients.contains(&connects[0].0.pid));
    assert_eq!(connects[0].1.peer, Some((ip, 8080).into()));

    let accepts = net_of(&trace, NetOp::Accept);
    assert_eq!(accepts.len(), 1);
    assert!(servers.contains(&accepts[0].0.pid));
    let client_addr = accepts[0].1.peer.expect("the accepted peer");

    let closes = net_of(&trace, NetOp::Close);
    assert_eq!(closes.len(), 3, "listener, client, accepted: {}", dump(&trace));
    let reply = b"got 100000\n".len() as u64;
    let client_close = closes.iter().find(|(e, _)| clients.contains(&e.pid)).expect("the client's close");
    assert_eq!((client_close.1.bytes_sent, client_close.1.bytes_received), (Some(100_000), Some(reply)));
    assert_eq!(client_close.1.local, Some(client_addr), "both ends agree on the client's address");
    assert_eq!(client_close.1.conn, connects[0].1.conn);
    let accepted_close = closes.iter().find(|(_, n)| n.conn == accepts[0].1.conn).expect("the accepted close");
    assert!(servers.contains(&accepted_close.0.pid));
    assert_eq!((accepted_close.1.bytes_sent, accepted_close.1.bytes_received), (Some(reply), Some(100_000)));
    // Retransmits can happen on a loaded loopback; they are counted.
    let retransmits = net_of(&trace, NetOp::Retransmit).len() as u32;
    assert_eq!(closes.iter().filter_map(|(_, n)| n.retransmits).sum::<u32>(), retransmits);
    trace.assert_network_only_to([addr]);
    assert!(trace.check_no_network().is_err());
    assert_eq!(trace.net().peer(addr).peer_port(8080).op(NetOp::Connect).count(), 1);
}

#[test]
fn loopback_ipv4_connections_are_charged_to_their_processes() {
    loopback("4", "127.0.0.1");
}

#[test]
fn loopback_ipv6_connections_are_charged_to_their_processes() {
    loopback("6", "::1");
}

/// An nftables rule on the INPUT hook drops the first data segments to
/// port 8080: the client's kernel retransmits them from a timer (or a
/// tail-loss probe), in softirq context, where the current task is not
/// the client.
#[test]
fn retransmits_are_charged_to_the_sender() {
    let (server, client) = (fixture("tcp_server"), fixture("tcp_client"));
    let script = format!(
        "nft add table inet probity && \
         nft add chain inet probity in '{{ type filter hook input priority 0; }}' && \
         nft add rule inet probity in tcp dport 8080 meta length '>' 100 quota until 50000 bytes drop && \
         {server} 4 8080 1 | {client} -w 4 127.0.0.1 8080 20000 1"
    );
    let trace = in_netns(&ebpf(), &script);
    let clients = pids_of(&trace, "tcp_client");
    let retransmits = net_of(&trace, NetOp::Retransmit);
    assert!(!retransmits.is_empty(), "no retransmit: {}", dump(&trace));
    for (e, n) in &retransmits {
        assert!(clients.contains(&e.pid), "retransmit charged to {}, not the client: {}", e.pid, dump(&trace));
        assert_eq!(n.peer, Some(([127, 0, 0, 1], 8080).into()));
    }
    let close = net_of(&trace, NetOp::Close).into_iter().find(|(e, _)| clients.contains(&e.pid)).unwrap();
    assert_eq!(close.1.retransmits, Some(retransmits.len() as u32), "the close counts them too");
    let v = trace.check_no_retransmits().unwrap_err();
    assert_eq!(v.kind(), probity::ViolationKind::Found);
    assert!(v.to_string().contains("net tcp retransmit"), "{v}");
}

/// A server that closes a connection with unread data sends a reset; a
/// connect to a closed port receives one.
#[test]
fn resets_are_charged_to_both_ends() {
    let (server, client) = (fixture("tcp_server"), fixture("tcp_client"));
    let trace = in_netns(
        &ebpf(),
        &format!("{server} 4 8080 1 reset | {client} -w 4 127.0.0.1 8080 1000 1 && {client} 4 127.0.0.1 9 1 1"),
    );
    let servers = pids_of(&trace, "tcp_server");
    let clients = pids_of(&trace, "tcp_client");
    let sent = net_of(&trace, NetOp::ResetSent);
    assert!(!sent.is_empty() && sent.iter().all(|(e, _)| servers.contains(&e.pid)), "{}", dump(&trace));
    let received = net_of(&trace, NetOp::ResetReceived);
    assert_eq!(received.len(), 2, "the reset connection and the refused one: {}", dump(&trace));
    assert!(received.iter().all(|(e, _)| clients.contains(&e.pid)));
    assert!(received.iter().any(|(_, n)| n.peer == Some(([127, 0, 0, 1], 9).into())));
}

/// With the preload tracer, `getaddrinfo("localhost")` names the
/// connection made to the address it returned.
#[test]
fn a_resolved_name_is_linked_to_its_connection() {
    let (server, client) = (fixture("tcp_server"), fixture("tcp_client"));
    let trace = in_netns(&Tracer::new(), &format!("{server} 4 8080 1 | {client} -w 4 localhost 8080 10 1"));
    let connects = net_of(&trace, NetOp::Connect);
    assert_eq!(connects.len(), 1, "{}", dump(&trace));
    assert_eq!(connects[0].1.host.as_deref(), Some("localhost"));
    let close = net_of(&trace, NetOp::Close).into_iter().find(|(_, n)| n.conn == connects[0].1.conn).unwrap();
    assert_eq!(close.1.host.as_deref(), Some("localhost"), "the whole connection carries the name");
    assert_eq!(trace.net().host("LOCALHOST").op(NetOp::Connect).count(), 1);
    // The program's getaddrinfo names the connection, but allows nothing:
    // `localhost` is allowed because probity resolved it itself (the
    // loopback addresses, and /etc/hosts as read before the run).
    trace.assert_network_only_to(["localhost"]);
    let v = trace.check_network_only_to(["example.com", "10.0.0.0/8"]).unwrap_err();
    assert_eq!(v.kind(), probity::ViolationKind::Found);
    assert!(v.to_string().contains("resolved as localhost"), "{v}");
    assert_eq!(trace.check_network_only_to(["not a host"]).unwrap_err().kind(), probity::ViolationKind::Invalid);
}

/// Two sessions at once, each in its own namespace with its own
/// connection on the same port: neither sees the other's.
#[test]
fn concurrent_sessions_do_not_see_each_others_connections() {
    let (server, client) = (fixture("tcp_server"), fixture("tcp_client"));
    let run = |bytes: u64| {
        let (server, client) = (server.clone(), client.clone());
        std::thread::spawn(move || {
            in_netns(&ebpf(), &format!("{server} 4 8080 3 | {client} -w 4 127.0.0.1 8080 {bytes} 3"))
        })
    };
    let (a, b) = (run(1111), run(2222));
    for (trace, bytes) in [(a.join().unwrap(), 1111), (b.join().unwrap(), 2222)] {
        let own: BTreeSet<u32> = trace.processes().keys().copied().collect();
        all_charged_to(&trace, &own);
        let closes = net_of(&trace, NetOp::Close);
        assert_eq!(closes.len(), 7, "{}", dump(&trace));
        let clients = pids_of(&trace, "tcp_client");
        for (e, n) in closes {
            if clients.contains(&e.pid) {
                assert_eq!(n.bytes_sent, Some(bytes), "{}", dump(&trace));
            }
        }
    }
}

/// Many short connections in a loop: socket addresses are reused by the
/// kernel, and each connection is still charged to its own process with
/// its own counts.
#[test]
fn reused_sockets_are_charged_to_their_current_owner() {
    let (server, client) = (fixture("tcp_server"), fixture("tcp_client"));
    let n = 300;
    let trace = in_netns(&ebpf(), &format!("{server} 4 8080 {n} | {client} -w 4 127.0.0.1 8080 10 {n}"));
    let servers = pids_of(&trace, "tcp_server");
    let clients = pids_of(&trace, "tcp_client");
    let count = |op, pids: &BTreeSet<u32>| net_of(&trace, op).iter().filter(|(e, _)| pids.contains(&e.pid)).count();
    assert_eq!(count(NetOp::Connect, &clients), n);
    assert_eq!(count(NetOp::Accept, &servers), n);
    assert_eq!(count(NetOp::Close, &clients), n, "{}", dump(&trace));
    assert_eq!(count(NetOp::Close, &servers), n + 1);
    let conns: BTreeSet<u32> = trace.net().filter_map(|e| e.as_net().unwrap().conn).collect();
    assert_eq!(conns.len(), 2 * n + 1, "a number per connection and the listener");
    for (e, c) in net_of(&trace, NetOp::Close) {
        let want = if clients.contains(&e.pid) {
            (Some(10), Some(7))
        } else if c.conn == Some(1) {
            (Some(0), Some(0))
        } else {
            (Some(7), Some(10))
        };
        assert_eq!((c.bytes_sent, c.bytes_received), want, "{}", probity::text::event_line(e));
    }
}

/// A DNS query over UDP port 53 is decoded to the name asked, and its
/// answer to the address given.
#[test]
fn dns_over_udp_is_decoded() {
    let trace = in_netns(
        &ebpf().with_string_limit(StringLimit::new(512).unwrap()),
        &format!("{} db.probity.test", fixture("dns_query")),
    );
    let sends: Vec<&Net> = net_of(&trace, NetOp::Send).into_iter().map(|(_, n)| n).collect();
    assert_eq!(sends.len(), 2, "query and answer: {}", dump(&trace));
    let query = sends.iter().find(|n| n.peer.is_some_and(|p| p.port() == 53)).unwrap();
    let dns = query.dns.as_ref().expect("a DNS query");
    assert_eq!((dns.name.as_str(), dns.qtype.as_str(), dns.response), ("db.probity.test", "A", false));
    let answer = net_of(&trace, NetOp::Receive)
        .into_iter()
        .find_map(|(_, n)| n.dns.clone().filter(|d| d.response))
        .expect("the answer, received");
    assert_eq!(answer.addrs, vec![std::net::IpAddr::from([127, 0, 0, 1])]);
    let snap = trace.snapshot().text();
    for line in [
        r#"net udp send * -> 127.0.0.1:53 len=33 dns query A "db.probity.test""#,
        r#"net udp receive 127.0.0.1:53 -> 127.0.0.1:<port1> len=33 dns query A "db.probity.test""#,
        r#"net udp send 127.0.0.1:53 -> 127.0.0.1:<port1> len=49 dns answer A "db.probity.test" [127.0.0.1]"#,
    ] {
        assert!(snap.contains(line), "{line:?} not in\n{snap}");
    }
    // With the default 32 bytes of buffers the short query still decodes.
    let short = in_netns(&ebpf(), &format!("{} db.test", fixture("dns_query")));
    assert!(short.net().any(|e| e.as_net().unwrap().dns.as_ref().is_some_and(|d| d.name == "db.test" && !d.truncated)));
}

/// DNS in message headers, as glibc's resolver sends its queries (an A
/// and an AAAA query in one `sendmmsg` on a connected socket), and as
/// servers receive and answer them (`recvmsg` and `sendmsg` naming the
/// peer): each message's first buffer and address are captured, so the
/// datagrams are decoded and attributed like `sendto`'s.
#[test]
fn dns_in_message_headers_is_decoded() {
    let trace = in_netns(
        &ebpf().with_string_limit(StringLimit::new(512).unwrap()),
        &format!("{} --msg db.probity.test", fixture("dns_query")),
    );
    let snap = trace.snapshot().text();
    for line in [
        // In snapshots a message shows its address, not its bytes (which
        // change from run to run in netlink replies and DNS ids).
        r#", {msg_iov=<data>}, 2, 0) = 2"#,
        r#", {msg_name={sa_family=AF_INET, sin_port=htons(<port1>), sin_addr=inet_addr("127.0.0.1")}, msg_iov=<data>}, 0) = 49"#,
        r#"net udp send * -> 127.0.0.1:53 dns query A "db.probity.test""#,
        r#"net udp receive 127.0.0.1:53 -> 127.0.0.1:<port1> len=33 dns query A "db.probity.test""#,
        r#"net udp receive 127.0.0.1:53 -> 127.0.0.1:<port1> len=33 dns query AAAA "db.probity.test""#,
        r#"net udp send 127.0.0.1:53 -> 127.0.0.1:<port1> len=49 dns answer A "db.probity.test" [127.0.0.1]"#,
        r#"net udp receive * -> 127.0.0.1:53 (db.probity.test) dns answer A "db.probity.test" [127.0.0.1]"#,
    ] {
        assert!(snap.contains(line), "{line:?} not in\n{snap}");
    }
    // The trace itself keeps the bytes: the first query as sent, each
    // query as received with its sender (`ip`, setting the loopback up,
    // talks netlink with message headers too), the first answer as
    // received by `recvmmsg` (49 bytes, from its `msg_len`).
    let arg = |name: &str| -> Vec<&Arg> { trace.syscalls().named(name).map(|(_, s)| &s.args[1]).collect() };
    let sent = arg("sendmmsg");
    assert!(
        matches!(sent[..], [Arg::Msg { name: None, data, truncated: false }] if data.len() == 33 && data.ends_with(b"\x04test\0\0\x01\0\x01")),
        "{sent:?}"
    );
    let received: Vec<&Arg> =
        arg("recvmsg").into_iter().filter(|a| matches!(a.sockaddr(), Some(probity::SockAddr::Inet { .. }))).collect();
    assert_eq!(received.len(), 2, "{received:?}");
    for a in received {
        assert!(
            matches!(a, Arg::Msg { name: Some(probity::SockAddr::Inet { addr }), data, truncated: false }
                if addr.ip().is_loopback() && data.len() == 33),
            "{a:?}"
        );
    }
    let answers = arg("recvmmsg");
    assert!(matches!(answers[..], [Arg::Msg { data, truncated: false, .. }] if data.len() == 49), "{answers:?}");
    // The client talked to the resolver's address alone, as recorded in
    // the first message and the connected socket.
    trace.assert_network_only_to(["127.0.0.1"]);
}

/// Without any network, `check_no_network` passes; without the eBPF
/// tracer it passes on the libc layer's account, which no gate accepts,
/// and retransmits cannot be seen at all.
#[test]
fn no_network_needs_the_kernel_tracer() {
    let trace = in_netns(&ebpf(), "true");
    trace.assert_no_network();
    trace.assert_no_retransmits();
    let mut cmd = Command::new(fixture("write_stdout"));
    cmd.stdout(std::process::Stdio::null());
    let preload_only = Tracer::new().with_tracers(&[TracerKind::Preload]).run(cmd).unwrap();
    assert_eq!(preload_only.check_no_retransmits().unwrap_err().kind(), probity::ViolationKind::NotCovered);
    preload_only.assert_no_network();
    let v = preload_only.check_network_gate(None::<&[&str]>).unwrap_err();
    assert_eq!(v.kind(), probity::ViolationKind::NotCovered, "{v}");
}

/// `probity run`: network events in the text and JSON output with the
/// owner's pid, and the network gate.
#[test]
fn cli_shows_network_events_and_gates_connections() {
    require_tracing();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("t.jsonl");
    let (server, client) = (fixture("tcp_server"), fixture("tcp_client"));
    let script = format!("ip link set lo up && {server} 4 8080 1 | {client} -w 4 localhost 8080 10 1");
    let probity = |extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_probity"));
        cmd.arg("run").args(extra).args(["--json", json.to_str().unwrap(), "-o", "/dev/null", "--"]);
        cmd.args(["unshare", "-n", "sh", "-c", &script]);
        cmd.output().unwrap()
    };
    // Allowed by probity's own resolution of `localhost`, not by the
    // client's getaddrinfo record (a claim).
    let o = probity(&["--allow-connect", "localhost"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&json).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let connect = lines.iter().find(|l| l["kind"] == "net" && l["op"] == "connect").expect("a connect line");
    assert_eq!(connect["protocol"], "tcp");
    assert_eq!(connect["peer"], "127.0.0.1:8080");
    assert_eq!(connect["host"], "localhost");
    assert!(connect["pid"].as_u64().is_some_and(|p| p > 0) && connect["tid"].as_u64().is_some());
    let close = lines.iter().find(|l| l["op"] == "close" && l["bytes_sent"] == 10).expect("the client's close");
    assert_eq!(close["pid"], connect["pid"]);

    let o = probity(&["--allow-connect", "10.0.0.0/8,example.com"]);
    assert_eq!(o.status.code(), Some(121));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("network gate failed: expected network access only to 10.0.0.0/8, example.com"), "{err}");
    assert!(err.contains("(resolved as localhost)"), "{err}");
    let o = probity(&["--deny-network"]);
    assert_eq!(o.status.code(), Some(121), "{}", String::from_utf8_lossy(&o.stderr));
}
