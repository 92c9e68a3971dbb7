//! Which DNS answers a host-name allow-list may believe: those the kernel
//! saw arrive from a configured nameserver, in a trace that shows no way
//! the tree could have forged one.

use std::os::unix::ffi::OsStrExt;

use super::calls::call;
use super::sockets::socket_kind;
use crate::event::{Arg, Event, SockAddr};
use crate::trace::index::Index;

/// The DNS answer event `e` is, when the kernel saw it arrive over UDP
/// from port 53 of a nameserver probity read before the command started.
pub(super) fn trusted_answer<'e>(resolution: &crate::trace::Resolution, e: &'e Event) -> Option<&'e crate::event::Dns> {
    let n = e.as_net()?;
    let d = n.dns.as_deref()?;
    let peer = n.peer?;
    (n.op == crate::event::NetOp::Receive
        && n.protocol == crate::event::Protocol::Udp
        && d.response
        && !d.truncated
        && peer.port() == 53
        && resolution.is_nameserver(peer.ip()))
    .then_some(d)
}

/// Why the DNS answers of this trace cannot be believed: the events that
/// show the tree could have forged one. The address and bytes of a
/// received datagram are read from the receiver's memory when the call
/// returns, so another thread or process writing that memory could
/// change them; and a process that can send from port 53, or from any
/// address, or that moved to a network namespace probity did not see made,
/// can answer its own queries.
pub(super) fn dns_distrust(idx: &Index<'_>) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, e) in idx.trace.events.iter().enumerate() {
        let Some(s) = e.as_syscall() else { continue };
        let ok = s.ret.is_some_and(|r| r >= 0) && !s.failed();
        let pid = e.pid;
        let flag = |n: usize| match s.args.get(n) {
            Some(Arg::Flags { value, .. }) => *value,
            Some(Arg::Int(v)) => *v as u64,
            _ => 0,
        };
        let child_never_execd = || {
            s.ret
                .and_then(|r| u32::try_from(r).ok())
                .and_then(|c| idx.procs.get(&c))
                .is_some_and(|c| c.pid != pid && c.execs.is_empty())
        };
        let why = match s.name.as_ref() {
            "bind" if ok => match s.args.iter().find_map(|a| a.sockaddr()) {
                Some(SockAddr::Inet { addr }) if addr.port() == 53 => format!("process {pid} bound port 53"),
                _ => continue,
            },
            "socket" if ok => match call(idx, i).as_ref().and_then(socket_kind) {
                Some((libc::AF_PACKET, _)) | Some((libc::AF_INET | libc::AF_INET6, libc::SOCK_RAW)) => {
                    format!("process {pid} opened a raw or packet socket, which can send from any address")
                }
                _ => continue,
            },
            "setns" => format!("process {pid} called setns, and may have entered a network namespace probity did not see made"),
            "process_vm_writev" | "ptrace" | "shmat" => format!("process {pid} called {}, and may have written another process's memory", s.name),
            "open" | "openat" | "openat2"
                if s.args.iter().any(|a| matches!(a, Arg::Path { path, .. } if path.as_bytes().starts_with(b"/proc/") && path.as_bytes().ends_with(b"/mem"))) =>
            {
                format!("process {pid} opened a process's memory file, and may have written another process's memory")
            }
            "mmap" if ok && flag(3) & 0x3 != 0 && flag(3) & libc::MAP_PRIVATE as u64 == 0 => {
                format!("process {pid} mapped memory shared with other processes")
            }
            "clone" if ok && flag(0) & libc::CLONE_VM as u64 != 0 && flag(0) & libc::CLONE_THREAD as u64 == 0 && child_never_execd() => {
                format!("process {pid} made a process sharing its memory (clone with CLONE_VM) that never exec'd")
            }
            "clone3" if ok && child_never_execd() => {
                format!("process {pid} made a process with clone3 (whose flags are not recorded) that never exec'd, and may share its memory")
            }
            _ => continue,
        };
        out.push((i, why));
    }
    for p in idx.procs.values() {
        if p.threads.iter().any(|&t| t != p.pid) {
            out.push((0, format!("process {} had more than one thread", p.pid)));
        }
    }
    // The ways to answer directly first, each reason once.
    out.sort_by_key(|(_, why)| !why.contains("port 53") && !why.contains("raw") && !why.contains("setns"));
    let mut seen = std::collections::HashSet::new();
    out.retain(|(_, why)| seen.insert(why.clone()));
    out
}
