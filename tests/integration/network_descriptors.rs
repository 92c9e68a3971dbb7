//! A UDP socket's descriptor followed through its copies, for real: a
//! datagram sent on a `dup`, `dup2`, `dup3` or `fcntl(F_DUPFD)` copy of a
//! connected socket, or on a copy that survived an exec, is charged to
//! its sender with the socket's peer.

use std::process::Command;

use probity::{NetOp, TracerKind};

use crate::support::{dump, fixture, require_tracing};

#[test]
fn datagrams_on_copied_descriptors_are_attributed() {
    require_tracing();
    let mut cmd = Command::new(probity::resolve_program("unshare").unwrap());
    cmd.args(["-n", "sh", "-c", &format!("ip link set lo up && {}", fixture("udp_dup"))]);
    let tracer = probity::Tracer::new()
        .with_tracers(&[TracerKind::Ebpf])
        .with_string_limit(probity::StringLimit::new(512).unwrap());
    let trace = tracer.run(cmd).unwrap_or_else(|e| panic!("failed to trace udp_dup: {e}"));
    assert_eq!(trace.outcome.losses.lost_events(), 0, "events lost: {:?}", trace.outcome.losses);
    assert_eq!(trace.outcome.status, probity::ExitStatus::Code(0), "udp_dup failed:\n{}", dump(&trace));
    let pid = trace
        .processes()
        .values()
        .find(|p| p.execs.first().is_some_and(|(f, _)| f.to_string_lossy().ends_with("/udp_dup")))
        .expect("the fixture's process")
        .pid;
    let server: std::net::SocketAddr = "127.0.0.1:53".parse().unwrap();
    let mut asked: Vec<&str> = trace
        .net()
        .op(NetOp::Send)
        .map(|e| (e, e.as_net().unwrap()))
        .filter(|(e, n)| e.pid == pid && n.peer == Some(server))
        .filter_map(|(_, n)| n.dns.as_ref().map(|d| d.name.as_str()))
        .collect();
    asked.sort_unstable();
    assert_eq!(
        asked,
        ["dup.test", "dup2.test", "dup3.test", "dupfd-cloexec.test", "dupfd.test", "exec.test"],
        "{}",
        dump(&trace)
    );
}
