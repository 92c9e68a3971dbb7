//! Which calls reach the network: the socket families that do, and the
//! calls that create or work on such sockets.

use super::calls::{call, Call};
use crate::event::{Arg, SockAddr};
use crate::trace::index::{FdTarget, Index};

pub(super) const INET_FAMILIES: [i32; 3] = [libc::AF_INET, libc::AF_INET6, libc::AF_PACKET];

/// Address families besides [`INET_FAMILIES`] whose sockets reach beyond
/// this machine's processes, or move packets past the sockets the tracer
/// follows: their traffic and destinations are not in the trace.
pub(super) const OTHER_NETWORK_FAMILIES: [i32; 11] = [
    libc::AF_VSOCK,
    libc::AF_XDP,
    libc::AF_TIPC,
    libc::AF_RDS,
    libc::AF_CAN,
    libc::AF_BLUETOOTH,
    libc::AF_AX25,
    libc::AF_X25,
    libc::AF_IPX,
    libc::AF_APPLETALK,
    libc::AF_ATMPVC,
];

/// The address family a `socket` or `socketpair` call names, and its type
/// without flags.
pub(super) fn socket_kind(s: &Call<'_>) -> Option<(i32, i32)> {
    if !matches!(s.name, "socket" | "socketpair") {
        return None;
    }
    let int = |a: Option<&Arg>| match a {
        Some(Arg::Flags { value, .. }) => Some(*value as i32),
        Some(Arg::Int(v)) => Some(*v as i32),
        _ => None,
    };
    Some((int(s.args.first())?, int(s.args.get(1)).unwrap_or(0) & 0xf))
}

/// Whether syscall `i` is network access.
pub(super) fn is_network(idx: &Index<'_>, i: usize) -> bool {
    if idx.trace.events[i].as_net().is_some() {
        return true;
    }
    let Some(s) = call(idx, i) else { return false };
    if let Some((family, _)) = socket_kind(&s) {
        return INET_FAMILIES.contains(&family) || OTHER_NETWORK_FAMILIES.contains(&family);
    }
    if s.args.iter().any(|a| matches!(a.sockaddr(), Some(SockAddr::Inet { .. }))) {
        return true;
    }
    // Working on an internet socket: its network calls and data transfers
    // (closing one is not network access).
    let data = matches!(s.name, "read" | "write" | "readv" | "writev" | "pread64" | "pwrite64" | "splice" | "sendfile");
    (data || crate::Class::Network.contains(s.name))
        && matches!(idx.access(i).and_then(|a| a.fd.as_deref()), Some(FdTarget::Socket { family, .. }) if INET_FAMILIES.contains(family))
}
