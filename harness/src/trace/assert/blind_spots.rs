//! Channels whose network traffic the tracer does not see (io_uring,
//! descriptors from outside the tree, raw and packet sockets): the
//! network checks cannot pass over them.

use super::calls::call;
use super::sockets::{socket_kind, OTHER_NETWORK_FAMILIES};
use super::violation::{Violation, ViolationKind};
use crate::event::Arg;
use crate::trace::index::{FdTarget, Index};
use crate::trace::query::offset;

pub(super) const IO_URING: &str = "it set up io_uring, whose submissions probity does not decode (a socket, connect or send made through it is not in the trace)";

pub(super) const OLD_IO_URING: &str = "a process had an io_uring when probity attached, which can send without any syscall (SQPOLL): what it sent is not in the trace";

pub(super) const MOVING_THEN: &str = "a thread was inside a call that moves data, on a descriptor that may be a network connection, when probity attached (or inside a call /proc did not name, beside one): what that call moved is not in the trace";

pub(super) const MID_FLIGHT: &str = "it moved data through a descriptor opened before probity attached that may be a network connection (/proc showed a socket, or nothing probity could name): where that traffic goes is not in the trace";

/// The calls that move data through their first descriptor.
const MOVES_DATA: &[&str] = &[
    "read", "readv", "pread64", "preadv", "preadv2", "write", "writev", "pwrite64", "pwritev", "pwritev2", "sendfile",
    "splice", "recvfrom", "recvmsg", "recvmmsg", "sendto", "sendmsg", "sendmmsg",
];

/// The events that opened a channel whose network traffic the tracer
/// does not see, each with why: the network gates cannot pass over them.
pub(super) fn blind_spots(idx: &Index<'_>) -> Vec<(usize, &'static str)> {
    let mut out = Vec::new();
    // Processes that received a message on a socket that can carry
    // descriptors (a Unix socket, or one from outside the tree).
    let mut may_hold_received: std::collections::HashSet<u32> = std::collections::HashSet::new();
    let received_by = |pid: u32, set: &std::collections::HashSet<u32>| {
        let mut p = Some(pid);
        let mut hops = 0;
        while let Some(q) = p {
            if set.contains(&q) {
                return true;
            }
            hops += 1;
            p = idx.procs.get(&q).and_then(|x| x.parent).filter(|_| hops <= idx.procs.len());
        }
        false
    };
    let mid_flight = idx.trace.outcome.attach.is_some();
    // An io_uring a process had when probity attached may send with no
    // syscall at all (SQPOLL): the whole trace is blind to it.
    let old_ring = idx.trace.outcome.attach.as_ref().is_some_and(|a| {
        a.processes.iter().any(|p| p.descriptors.iter().any(|d| d.target == crate::trace::index::IO_URING_TARGET))
    });
    if old_ring && !idx.trace.events.is_empty() {
        out.push((0, OLD_IO_URING));
    }
    // A call under way at the attach, whose data is not in the trace, on
    // a descriptor that may be an old connection.
    let sending_then = idx.trace.outcome.attach.as_ref().is_some_and(|a| {
        a.processes.iter().any(|p| {
            let network = |fd: Option<u64>| match fd.and_then(|f| p.descriptors.iter().find(|d| d.fd as u64 == f)) {
                Some(d) => d.socket == Some(crate::trace::SocketKind::Network),
                None => true,
            };
            let has_network = p.descriptors.iter().any(|d| d.socket == Some(crate::trace::SocketKind::Network));
            p.in_flight.iter().any(|c| match c.syscall.as_str() {
                "unknown" => has_network,
                name => MOVES_DATA.contains(&name) && network(c.first_arg),
            })
        })
    });
    if sending_then && !idx.trace.events.is_empty() {
        out.push((0, MOVING_THEN));
    }
    for (i, e) in idx.trace.events.iter().enumerate() {
        let Some(s) = e.as_syscall() else { continue };
        let ok = s.ret.is_some_and(|r| r >= 0) && !s.failed();
        let unknown_fd = || idx.access(i).is_some_and(|a| a.fd.is_none());
        let fd_at_least_3 = || matches!(s.args.first(), Some(Arg::Fd(fd)) if *fd >= 3);
        // Attached mid-flight: a descriptor the trace never saw created
        // nor /proc showed as a file, pipe or Unix socket may be a
        // connection made before the attach.
        let before_attach =
            || idx.access(i).is_some_and(|a| matches!(a.fd.as_deref(), None | Some(FdTarget::BeforeAttach)));
        // `splice` moves data into its second descriptor too, which the
        // index does not resolve: mid-flight, any one is a blind spot.
        let spliced = mid_flight && ok && s.name == "splice";
        if spliced
            || (mid_flight
                && ok
                && MOVES_DATA.contains(&&*s.name)
                && matches!(s.args.first(), Some(Arg::Fd(_)))
                && before_attach())
        {
            if matches!(&*s.name, "recvmsg" | "recvmmsg") {
                may_hold_received.insert(e.pid);
            }
            out.push((i, MID_FLIGHT));
            continue;
        }
        let why = match s.name.as_ref() {
            "recvmsg" | "recvmmsg" if ok => {
                match idx.access(i).and_then(|a| a.fd.as_deref()) {
                    Some(FdTarget::Socket { family, .. }) if *family == libc::AF_UNIX => {
                        may_hold_received.insert(e.pid);
                    }
                    None => {
                        may_hold_received.insert(e.pid);
                    }
                    _ => {}
                }
                continue;
            }
            "write" | "writev" | "pwrite64" | "pwritev" | "pwritev2" | "sendfile"
                if ok && unknown_fd() && fd_at_least_3() && received_by(e.pid, &may_hold_received) =>
            {
                "it wrote to a descriptor the trace never saw created, after its process (or an ancestor) received a message that can carry descriptors (SCM_RIGHTS): it may be a socket from outside the tree"
            }
            // A failed setup made no ring; a ring from outside the tree is
            // caught where it is used.
            "io_uring_setup" if ok => IO_URING,
            "io_uring_enter" | "io_uring_register" if unknown_fd() => {
                "it used an io_uring the trace never saw set up (inherited or received), whose submissions probity does not decode"
            }
            "io_submit" if ok => {
                "it submitted Linux AIO requests, which probity does not decode (one may write to a socket)"
            }
            "pidfd_getfd" if ok => {
                "it took a descriptor from another process with pidfd_getfd; probity does not know what it refers to"
            }
            "socket" if ok => match call(idx, i).as_ref().and_then(socket_kind) {
                Some((libc::AF_PACKET, _)) => {
                    "it opened a packet socket: where its frames go is in their bytes, which probity does not decode"
                }
                Some((libc::AF_INET | libc::AF_INET6, libc::SOCK_RAW)) => {
                    "it opened a raw socket: with IP_HDRINCL where its packets go is in their bytes, which probity does not decode"
                }
                Some((f, _)) if OTHER_NETWORK_FAMILIES.contains(&f) => {
                    "it opened a socket of a family whose destinations probity does not record"
                }
                _ => continue,
            },
            _ => continue,
        };
        out.push((i, why));
    }
    out
}

/// Adds to a violation, for each process that set up io_uring, a note
/// naming it and when.
pub(super) fn blind_spot_notes(idx: &Index<'_>, mut v: Violation) -> Violation {
    if v.kind() != ViolationKind::Undecided {
        return v;
    }
    for e in &idx.trace.events {
        if e.as_syscall().is_some_and(|s| s.name == "io_uring_setup" && s.ret.is_some_and(|r| r >= 0)) {
            v = v.note(format!(
                "process {} set up io_uring at {}, whose submissions probity does not decode: the network gates cannot tell what it sent",
                e.pid,
                offset(e.ts_ns, idx.trace.start_ns())
            ));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use crate::event::Arg;
    use crate::trace::test_support::{sys, trace};
    use crate::trace::{Attach, AttachedProcess, OpenDescriptor, ViolationKind};

    fn write(ts: u64, fd: i32) -> crate::event::Event {
        sys(ts, 10, 10, "write", vec![Arg::Fd(fd), Arg::Int(1), Arg::Int(1)], 1)
    }

    /// Attached at 100 with fd 4 a file and fd 5 a network socket.
    fn attached(events: Vec<crate::event::Event>) -> crate::trace::Trace {
        let mut t = trace(events, Some("/"));
        let fd = |fd, target: &str, socket| OpenDescriptor { fd, target: target.into(), socket, cloexec: false };
        t.outcome.attach = Some(Attach {
            at_ns: 90,
            processes: vec![AttachedProcess {
                pid: 10,
                ppid: 1,
                descriptors: vec![fd(4, "/tmp/f", None), fd(5, "socket:[77]", Some(crate::trace::SocketKind::Network))],
                described_ns: 100,
                ..Default::default()
            }],
            detached: true,
        });
        t
    }

    #[test]
    fn descriptors_read_at_attach_count_from_when_they_were_read() {
        // After /proc was read, fd 4 is the file it showed.
        attached(vec![write(150, 4)]).check_no_network().unwrap();
        // Before, it may have been something else: undecided.
        let v = attached(vec![write(95, 4)]).check_no_network().unwrap_err();
        assert_eq!(v.kind(), ViolationKind::Undecided, "{v}");
        // An old network socket is undecided whenever it is used.
        let v = attached(vec![write(150, 5)]).check_no_network().unwrap_err();
        assert_eq!(v.kind(), ViolationKind::Undecided, "{v}");
    }
}
