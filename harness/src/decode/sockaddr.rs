//! Socket addresses: decoding captured `struct sockaddr` bytes, and printing
//! them the way strace does.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::mem::offset_of;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use libc::{sockaddr_in, sockaddr_in6, sockaddr_nl, sockaddr_un};

use super::flags;
use crate::event::strace::escape_bytes;
use crate::event::SockAddr;

/// Decodes the bytes of a `struct sockaddr`, as long as the kernel gave it.
/// `None` when even the family is missing or an address is cut short.
pub(crate) fn decode(data: &[u8]) -> Option<SockAddr> {
    let family = u16::from_ne_bytes(array(data, 0)?);
    let addr = match i32::from(family) {
        libc::AF_INET => {
            let port = u16::from_be_bytes(array(data, offset_of!(sockaddr_in, sin_port))?);
            let ip: [u8; 4] = array(data, offset_of!(sockaddr_in, sin_addr))?;
            SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port))
        }
        libc::AF_INET6 => {
            let port = u16::from_be_bytes(array(data, offset_of!(sockaddr_in6, sin6_port))?);
            let flowinfo = u32::from_be_bytes(array(data, offset_of!(sockaddr_in6, sin6_flowinfo))?);
            let ip: [u8; 16] = array(data, offset_of!(sockaddr_in6, sin6_addr))?;
            // RFC 2133's 24-byte `sockaddr_in6` has no scope id; the kernel
            // still accepts it.
            let scope_id = array(data, offset_of!(sockaddr_in6, sin6_scope_id)).map_or(0, u32::from_ne_bytes);
            SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, flowinfo, scope_id))
        }
        libc::AF_UNIX => return Some(SockAddr::Unix { path: unix_path(data) }),
        libc::AF_NETLINK => {
            return Some(SockAddr::Netlink {
                pid: u32::from_ne_bytes(array(data, offset_of!(sockaddr_nl, nl_pid))?),
                groups: u32::from_ne_bytes(array(data, offset_of!(sockaddr_nl, nl_groups))?),
            })
        }
        _ => return Some(SockAddr::Other { sa_family: family }),
    };
    Some(SockAddr::Inet { addr })
}

/// The path of an `AF_UNIX` address: empty when unnamed, `@name` when
/// abstract (its first byte is NUL and its length is the address length, see
/// unix(7)), otherwise the bytes up to the first NUL.
fn unix_path(data: &[u8]) -> OsString {
    let path = data.get(offset_of!(sockaddr_un, sun_path)..).unwrap_or_default();
    match path.split_first() {
        None => OsString::new(),
        Some((0, name)) => OsString::from_vec([b"@", name].concat()),
        Some(_) => {
            let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
            OsStr::from_bytes(&path[..end]).to_owned()
        }
    }
}

fn array<const N: usize>(data: &[u8], offset: usize) -> Option<[u8; N]> {
    data.get(offset..offset.checked_add(N)?)?.try_into().ok()
}

/// Prints `addr` like strace: `{sa_family=AF_INET, sin_port=htons(80),
/// sin_addr=inet_addr("127.0.0.1")}`.
pub(crate) fn fmt(addr: &SockAddr, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match addr {
        SockAddr::Inet { addr: SocketAddr::V4(a) } => {
            write!(f, "{{sa_family=AF_INET, sin_port=htons({}), sin_addr=inet_addr(\"{}\")}}", a.port(), a.ip())
        }
        SockAddr::Inet { addr: SocketAddr::V6(a) } => write!(
            f,
            "{{sa_family=AF_INET6, sin6_port=htons({}), sin6_flowinfo=htonl({}), \
             inet_pton(AF_INET6, \"{}\", &sin6_addr), sin6_scope_id={}}}",
            a.port(),
            a.flowinfo(),
            a.ip(),
            a.scope_id()
        ),
        SockAddr::Unix { path } if path.is_empty() => f.write_str("{sa_family=AF_UNIX}"),
        SockAddr::Unix { path } => match path.as_bytes().strip_prefix(b"@") {
            Some(name) => write!(f, "{{sa_family=AF_UNIX, sun_path=@\"{}\"}}", escape_bytes(name)),
            None => write!(f, "{{sa_family=AF_UNIX, sun_path=\"{}\"}}", escape_bytes(path.as_bytes())),
        },
        // strace prints the groups with C's `%#08x`: `00000000` for none,
        // `0x000005` otherwise.
        SockAddr::Netlink { pid, groups: 0 } => {
            write!(f, "{{sa_family=AF_NETLINK, nl_pid={pid}, nl_groups=00000000}}")
        }
        SockAddr::Netlink { pid, groups } => {
            write!(f, "{{sa_family=AF_NETLINK, nl_pid={pid}, nl_groups={groups:#08x}}}")
        }
        SockAddr::Other { sa_family } => {
            write!(f, "{{sa_family={}}}", flags::family((*sa_family).into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Arg;

    fn family(af: libc::c_int) -> [u8; 2] {
        (af as u16).to_ne_bytes()
    }

    fn show(addr: SockAddr) -> String {
        Arg::Sockaddr(addr).to_string()
    }

    #[test]
    fn inet() {
        let mut raw = family(libc::AF_INET).to_vec();
        raw.extend_from_slice(&80u16.to_be_bytes());
        raw.extend_from_slice(&[127, 0, 0, 1]);
        raw.extend_from_slice(&[0; 8]);
        let addr = decode(&raw).unwrap();
        assert_eq!(addr, SockAddr::Inet { addr: "127.0.0.1:80".parse().unwrap() });
        assert_eq!(show(addr), r#"{sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("127.0.0.1")}"#);
        // Cut inside the address.
        assert_eq!(decode(&raw[..6]), None);
    }

    #[test]
    fn inet6() {
        let mut raw = family(libc::AF_INET6).to_vec();
        raw.extend_from_slice(&443u16.to_be_bytes());
        raw.extend_from_slice(&0u32.to_be_bytes());
        raw.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        raw.extend_from_slice(&0u32.to_ne_bytes());
        let addr = decode(&raw).unwrap();
        assert_eq!(addr, SockAddr::Inet { addr: "[::1]:443".parse().unwrap() });
        assert_eq!(
            show(addr),
            r#"{sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}"#
        );
        // Without the scope id, as RFC 2133 laid it out.
        assert_eq!(decode(&raw[..24]).unwrap(), SockAddr::Inet { addr: "[::1]:443".parse().unwrap() });
    }

    #[test]
    fn unix_paths() {
        let mut raw = family(libc::AF_UNIX).to_vec();
        raw.extend_from_slice(b"/run/probity.sock\0garbage");
        let addr = decode(&raw).unwrap();
        assert_eq!(addr, SockAddr::Unix { path: "/run/probity.sock".into() });
        assert_eq!(show(addr), r#"{sa_family=AF_UNIX, sun_path="/run/probity.sock"}"#);

        let mut raw = family(libc::AF_UNIX).to_vec();
        raw.extend_from_slice(b"\0probity\0x");
        let addr = decode(&raw).unwrap();
        assert_eq!(addr, SockAddr::Unix { path: "@probity\0x".into() });
        assert_eq!(show(addr), r#"{sa_family=AF_UNIX, sun_path=@"probity\0x"}"#);

        let addr = decode(&family(libc::AF_UNIX)).unwrap();
        assert_eq!(addr, SockAddr::Unix { path: OsString::new() });
        assert_eq!(show(addr), "{sa_family=AF_UNIX}");
    }

    #[test]
    fn netlink() {
        let mut raw = family(libc::AF_NETLINK).to_vec();
        raw.extend_from_slice(&[0; 2]);
        raw.extend_from_slice(&4242u32.to_ne_bytes());
        raw.extend_from_slice(&0u32.to_ne_bytes());
        let addr = decode(&raw).unwrap();
        assert_eq!(addr, SockAddr::Netlink { pid: 4242, groups: 0 });
        assert_eq!(show(addr), "{sa_family=AF_NETLINK, nl_pid=4242, nl_groups=00000000}");
        raw[8..].copy_from_slice(&5u32.to_ne_bytes());
        assert_eq!(show(decode(&raw).unwrap()), "{sa_family=AF_NETLINK, nl_pid=4242, nl_groups=0x000005}");
        // Cut before the groups.
        assert_eq!(decode(&raw[..10]), None);
    }

    #[test]
    fn other_families() {
        let addr = decode(&family(libc::AF_PACKET)).unwrap();
        assert_eq!(addr, SockAddr::Other { sa_family: libc::AF_PACKET as u16 });
        assert_eq!(show(addr), "{sa_family=AF_PACKET}");
        assert_eq!(show(SockAddr::Other { sa_family: 999 }), "{sa_family=999}");
        assert_eq!(decode(&[1]), None);
        assert_eq!(decode(&[]), None);
    }
}
