//! Network and DNS: sockets (`socket`, `socketpair`, `connect`, `bind`,
//! `listen`, `accept`, `accept4`), the sends that name a destination
//! (`sendto`, `sendmsg`, `sendmmsg`), the receives that can carry
//! descriptors (`recvmsg`, `recvmmsg`: how many arrived with
//! `SCM_RIGHTS`), `pidfd_getfd` (a descriptor taken from another
//! process) and name resolution (`getaddrinfo`, `gethostbyname`,
//! `getnameinfo`), with the addresses a lookup returned.
//!
//! Socket addresses are recorded as bytes and decoded by the harness.
//! Resolved addresses are recorded as text, `"127.0.0.1:80"` or
//! `"[::1]:80"` (`"127.0.0.1"` for `gethostbyname`, which has no port),
//! formatted here without allocating or calling libc.

use std::ffi::{c_char, c_int, c_uint, c_void};
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use libc::{addrinfo, hostent, mmsghdr, msghdr, size_t, sockaddr, socklen_t, ssize_t, timespec};

use crate::{hook, Rec};

/// `socket(2)`: domain and protocol as numbers, the type (with
/// `SOCK_NONBLOCK`/`SOCK_CLOEXEC`) in hex.
#[hook]
unsafe extern "C" fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    rec.int(domain).hex(ty as u32).int(protocol).ret_fd(ret);
}

/// `connect(2)`.
#[hook]
unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    rec.fd(fd).sockaddr(addr, len).ret_int(ret);
}

/// `socketpair(2)`: domain, type and protocol as `socket` records them,
/// then the two descriptors it made (`-1` when it failed), so that a
/// send naming no address on one of them is known to stay in the tree.
#[hook]
unsafe extern "C" fn socketpair(domain: c_int, ty: c_int, protocol: c_int, sv: *mut c_int) -> c_int {
    // SAFETY: on success the call wrote two descriptors at `sv`.
    let (a, b) = if ret == 0 && !sv.is_null() { unsafe { (*sv, *sv.add(1)) } } else { (-1, -1) };
    rec.int(domain).hex(ty as u32).int(protocol).fd(a).fd(b).ret_int(ret);
}

/// `sendto(2)`: the buffer's length and the destination it names (NULL
/// on a connected socket, whose destination is its `connect`'s).
#[hook]
unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    len: size_t,
    flags: c_int,
    addr: *const sockaddr,
    addrlen: socklen_t,
) -> ssize_t {
    rec.fd(fd).ptr(buf).uint(len as u64).hex(flags as u32).sockaddr(addr, addrlen).ret_int(ret as i64);
}

/// `sendmsg(2)`: the destination its header names (`msg_name`).
#[hook]
unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    // SAFETY: the caller's header, for the call that returned `ret`.
    unsafe { sent_msg(rec, fd, msg, flags, ret as i64) };
}

/// `sendmmsg(2)`: the destination the first message names, how many
/// messages were asked for, and how many were sent.
#[hook]
unsafe extern "C" fn sendmmsg(fd: c_int, msgs: *mut mmsghdr, vlen: c_uint, flags: c_int) -> c_int {
    // SAFETY: the caller's array of `vlen` headers.
    unsafe { sent_mmsg(rec, fd, msgs, vlen, flags, ret.into()) };
}

/// `recvmsg(2)`: the sender's address, and how many descriptors arrived
/// with the message (`SCM_RIGHTS`).
#[hook]
unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    // SAFETY: the caller's header, for the call that returned `ret`.
    unsafe { received_msg(rec, fd, msg, flags, ret as i64) };
}

/// `recvmmsg(2)`: how many messages were asked for, and how many
/// descriptors arrived with those received (`SCM_RIGHTS`).
#[hook]
unsafe extern "C" fn recvmmsg(
    fd: c_int,
    msgs: *mut mmsghdr,
    vlen: c_uint,
    flags: c_int,
    timeout: *mut timespec,
) -> c_int {
    // SAFETY: the caller's array of `vlen` headers.
    unsafe { received_mmsg(rec, fd, msgs, vlen, flags, ret.into()) };
}

/// `pidfd_getfd(2)`: a descriptor taken from another process.
#[hook]
unsafe extern "C" fn pidfd_getfd(pidfd: c_int, targetfd: c_int, flags: c_uint) -> c_int {
    rec.fd(pidfd).int(targetfd).hex(flags).ret_fd(ret);
}

/// Whether the kernel read the caller's header: it did when the call
/// succeeded, and may have when it failed for another reason than a bad
/// address (a failed attempt to reach an address is still recorded).
fn header_read(ret: i64) -> bool {
    // The kernel looks the descriptor up before it copies the header: a
    // bad descriptor fails with the header unread, maybe unreadable.
    ret >= 0
        || !matches!(std::io::Error::last_os_error().raw_os_error(), Some(libc::EFAULT | libc::EBADF | libc::ENOTSOCK))
}

/// Records a `sendmsg`: descriptor, destination, flags and result. Also
/// used by the `syscall()` wrapper.
///
/// # Safety
/// `msg` is what the caller passed to a call that returned `ret`.
pub(crate) unsafe fn sent_msg(rec: &mut Rec<'_>, fd: c_int, msg: *const msghdr, flags: c_int, ret: i64) {
    rec.fd(fd);
    if msg.is_null() || !header_read(ret) {
        rec.ptr(msg);
    } else {
        // SAFETY: a header the kernel read, naming `msg_namelen` bytes.
        unsafe { rec.sockaddr((*msg).msg_name.cast(), (*msg).msg_namelen) };
    }
    rec.hex(flags as u32).ret_int(ret);
}

/// Records a `sendmmsg`: descriptor, the first message's destination,
/// the count asked for, flags, and the count sent. Also used by the
/// `syscall()` wrapper.
///
/// # Safety
/// `msgs` is what the caller passed to a call that returned `ret`.
pub(crate) unsafe fn sent_mmsg(
    rec: &mut Rec<'_>,
    fd: c_int,
    msgs: *const mmsghdr,
    vlen: c_uint,
    flags: c_int,
    ret: i64,
) {
    rec.fd(fd);
    if msgs.is_null() || vlen == 0 || !header_read(ret) {
        rec.ptr(msgs);
    } else {
        // SAFETY: the first of the headers the kernel read.
        unsafe { rec.sockaddr((*msgs).msg_hdr.msg_name.cast(), (*msgs).msg_hdr.msg_namelen) };
    }
    rec.int(vlen).hex(flags as u32).ret_int(ret);
}

/// Records a `recvmsg`: descriptor, the sender's address, flags, the
/// descriptors received, and the result. Also used by the `syscall()`
/// wrapper.
///
/// # Safety
/// `msg` is what the caller passed to a call that returned `ret`.
pub(crate) unsafe fn received_msg(rec: &mut Rec<'_>, fd: c_int, msg: *const msghdr, flags: c_int, ret: i64) {
    rec.fd(fd);
    if msg.is_null() || ret < 0 {
        rec.ptr(msg).hex(flags as u32).int(0);
    } else {
        // SAFETY: the header the kernel filled in.
        unsafe {
            let name_len = (*msg).msg_namelen;
            rec.sockaddr((*msg).msg_name.cast(), name_len).hex(flags as u32).int(rights(msg));
        }
    }
    rec.ret_int(ret);
}

/// Records a `recvmmsg`: descriptor, the count asked for, flags, the
/// descriptors received with all the messages, and the count received.
/// Also used by the `syscall()` wrapper.
///
/// # Safety
/// `msgs` is what the caller passed to a call that returned `ret`.
pub(crate) unsafe fn received_mmsg(
    rec: &mut Rec<'_>,
    fd: c_int,
    msgs: *const mmsghdr,
    vlen: c_uint,
    flags: c_int,
    ret: i64,
) {
    let received = if msgs.is_null() { 0 } else { ret.clamp(0, i64::from(vlen)) as usize };
    let mut fds = 0;
    for i in 0..received {
        // SAFETY: the kernel filled in the first `ret` headers.
        fds += unsafe { rights(&raw const (*msgs.add(i)).msg_hdr) };
    }
    rec.fd(fd).int(vlen).hex(flags as u32).int(fds).ret_int(ret);
}

/// How many descriptors a received message carried (`SCM_RIGHTS`).
///
/// # Safety
/// `msg` is a header a successful receive filled in.
unsafe fn rights(msg: *const msghdr) -> i64 {
    let mut n = 0;
    // SAFETY: the control buffer is `msg_controllen` bytes the kernel
    // wrote; the CMSG macros stay inside it.
    unsafe {
        if (*msg).msg_control.is_null() {
            return 0;
        }
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = (*c).cmsg_len.saturating_sub(libc::CMSG_LEN(0) as usize);
                n += (data / size_of::<c_int>()) as i64;
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    n
}

/// `bind(2)`.
#[hook]
unsafe extern "C" fn bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    rec.fd(fd).sockaddr(addr, len).ret_int(ret);
}

/// `listen(2)`.
#[hook]
unsafe extern "C" fn listen(fd: c_int, backlog: c_int) -> c_int {
    rec.fd(fd).int(backlog).ret_int(ret);
}

/// `accept(2)`: the listening socket and the peer's address, when the
/// caller asked for it and the call succeeded (else the buffer pointer).
#[hook]
unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, addrlen: *mut socklen_t) -> c_int {
    rec.fd(fd);
    // SAFETY: the caller's buffers, which `accept` filled in on success.
    unsafe { peer(rec, ret, addr, addrlen) };
    rec.ret_fd(ret);
}

/// `accept4(2)`; `flags` (`SOCK_NONBLOCK`, `SOCK_CLOEXEC`) in hex.
#[hook]
unsafe extern "C" fn accept4(fd: c_int, addr: *mut sockaddr, addrlen: *mut socklen_t, flags: c_int) -> c_int {
    rec.fd(fd);
    // SAFETY: as in `accept`.
    unsafe { peer(rec, ret, addr, addrlen) };
    rec.hex(flags as u32).ret_fd(ret);
}

/// Records the peer address `accept` wrote, or the buffer pointer.
///
/// `*addrlen` is the address's full length, which is more than the
/// caller's buffer when the address was cut; the buffer's own size is
/// gone once the call has returned. Callers size the buffer for the
/// socket's family, so at most the family's size is read.
///
/// # Safety
/// `addr` and `addrlen` are what the caller passed to a call that returned `ret`.
unsafe fn peer(rec: &mut Rec<'_>, ret: c_int, addr: *mut sockaddr, addrlen: *mut socklen_t) {
    if ret < 0 || addr.is_null() || addrlen.is_null() {
        rec.ptr(addr);
        return;
    }
    // SAFETY: filled in by the successful call.
    let (len, family) = unsafe { (*addrlen, c_int::from((*addr).sa_family)) };
    let cap = match family {
        libc::AF_INET => size_of::<libc::sockaddr_in>(),
        libc::AF_INET6 => size_of::<libc::sockaddr_in6>(),
        _ => size_of::<libc::sockaddr_storage>(),
    };
    // SAFETY: the call wrote `len` bytes, at most the family's size.
    unsafe { rec.sockaddr(addr, len.min(cap as socklen_t)) };
}

/// `getaddrinfo(3)`: host, service and the addresses it returned, one per
/// entry of the result list (so an address appears once per socket type
/// when the hints do not fix one); the result is the `EAI_*` code.
#[hook(inject)]
unsafe extern "C" fn getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const addrinfo,
    res: *mut *mut addrinfo,
) -> c_int {
    rec.str(node).str(service).list(|w| {
        if ret != 0 || res.is_null() {
            return;
        }
        // SAFETY: on success `*res` is the list getaddrinfo allocated,
        // which the caller cannot have freed yet.
        let mut ai = unsafe { *res };
        while !ai.is_null() {
            // SAFETY: a node of that list.
            let a = unsafe { &*ai };
            let mut text = Text::new();
            // SAFETY: `ai_addr` holds `ai_addrlen` bytes.
            if unsafe { format_sockaddr(a.ai_addr, a.ai_addrlen, &mut text) }.is_ok() {
                w.push(text.as_bytes());
            }
            ai = a.ai_next;
        }
    });
    rec.ret_int(ret);
}

/// `gethostbyname(3)`: the name and the addresses of the result.
#[hook]
unsafe extern "C" fn gethostbyname(name: *const c_char) -> *mut hostent {
    rec.str(name).list(|w| {
        if ret.is_null() {
            return;
        }
        // SAFETY: the static result of the call that just returned.
        let h = unsafe { &*ret };
        if h.h_addr_list.is_null() {
            return;
        }
        for i in 0.. {
            // SAFETY: a NULL-terminated array of `h_length`-byte addresses.
            let p = unsafe { *h.h_addr_list.add(i) };
            if p.is_null() {
                break;
            }
            let mut text = Text::new();
            // SAFETY: as above.
            if unsafe { format_raw_addr(h.h_addrtype, p.cast(), h.h_length, &mut text) }.is_ok() {
                w.push(text.as_bytes());
            }
        }
    });
    rec.ret_ptr(ret);
}

/// `getnameinfo(3)`: the address, the host and service it was turned into
/// (NULL when the call failed or did not ask for them), and the `NI_*`
/// flags in hex; the result is the `EAI_*` code.
#[hook]
unsafe extern "C" fn getnameinfo(
    addr: *const sockaddr,
    addrlen: socklen_t,
    host: *mut c_char,
    hostlen: socklen_t,
    serv: *mut c_char,
    servlen: socklen_t,
    flags: c_int,
) -> c_int {
    let filled = |buf: *mut c_char, len: socklen_t| {
        if ret == 0 && len > 0 {
            buf.cast_const()
        } else {
            std::ptr::null()
        }
    };
    rec.sockaddr(addr, addrlen).str(filled(host, hostlen)).str(filled(serv, servlen)).hex(flags as u32).ret_int(ret);
}

/// A short text built without allocating: an address and port.
struct Text {
    buf: [u8; 64],
    len: usize,
}

impl Text {
    fn new() -> Self {
        Text { buf: [0; 64], len: 0 }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::fmt::Write for Text {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Writes an IPv4 or IPv6 socket address as `ip:port` or `[ip]:port`
/// (`[ip%scope]:port` for a scoped IPv6 address).
///
/// # Safety
/// `addr` is NULL or readable for `len` bytes.
unsafe fn format_sockaddr(addr: *const sockaddr, len: socklen_t, out: &mut Text) -> std::fmt::Result {
    let len = len as usize;
    if addr.is_null() || len < size_of::<libc::sa_family_t>() {
        return Err(std::fmt::Error);
    }
    // SAFETY: at least the family is readable; the address structs are
    // read only when `len` covers them, unaligned in case the caller's
    // buffer is not.
    unsafe {
        match c_int::from((*addr).sa_family) {
            libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
                let sin = addr.cast::<libc::sockaddr_in>().read_unaligned();
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                write!(out, "{ip}:{}", u16::from_be(sin.sin_port))
            }
            libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
                let sin6 = addr.cast::<libc::sockaddr_in6>().read_unaligned();
                let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                match sin6.sin6_scope_id {
                    0 => write!(out, "[{ip}]:{}", u16::from_be(sin6.sin6_port)),
                    scope => write!(out, "[{ip}%{scope}]:{}", u16::from_be(sin6.sin6_port)),
                }
            }
            _ => Err(std::fmt::Error),
        }
    }
}

/// Writes a bare IPv4 or IPv6 address of family `family` and `len` bytes.
///
/// # Safety
/// `addr` is readable for `len` bytes.
unsafe fn format_raw_addr(family: c_int, addr: *const c_void, len: c_int, out: &mut Text) -> std::fmt::Result {
    // SAFETY: the caller's promise, checked against each family's size.
    unsafe {
        match (family, len) {
            (libc::AF_INET, 4) => write!(out, "{}", Ipv4Addr::from(addr.cast::<[u8; 4]>().read_unaligned())),
            (libc::AF_INET6, 16) => write!(out, "{}", Ipv6Addr::from(addr.cast::<[u8; 16]>().read_unaligned())),
            _ => Err(std::fmt::Error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sockaddr_text<T>(sa: &T) -> String {
        let mut text = Text::new();
        // SAFETY: a whole socket address struct.
        unsafe { format_sockaddr((sa as *const T).cast(), size_of::<T>() as socklen_t, &mut text) }.unwrap();
        String::from_utf8(text.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn ipv4_addresses_show_with_their_port() {
        // SAFETY: all-zero is a valid sockaddr_in.
        let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        sin.sin_family = libc::AF_INET as libc::sa_family_t;
        sin.sin_port = 80u16.to_be();
        sin.sin_addr.s_addr = u32::from(Ipv4Addr::LOCALHOST).to_be();
        assert_eq!(sockaddr_text(&sin), "127.0.0.1:80");
    }

    #[test]
    fn ipv6_addresses_are_bracketed_and_keep_their_scope() {
        // SAFETY: all-zero is a valid sockaddr_in6.
        let mut sin6: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
        sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
        sin6.sin6_port = 443u16.to_be();
        sin6.sin6_addr.s6_addr = Ipv6Addr::LOCALHOST.octets();
        assert_eq!(sockaddr_text(&sin6), "[::1]:443");
        sin6.sin6_addr.s6_addr = "fe80::1".parse::<Ipv6Addr>().unwrap().octets();
        sin6.sin6_scope_id = 2;
        assert_eq!(sockaddr_text(&sin6), "[fe80::1%2]:443");
    }

    #[test]
    fn short_or_foreign_addresses_are_not_formatted() {
        // SAFETY: all-zero is a valid sockaddr_in.
        let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        sin.sin_family = libc::AF_INET as libc::sa_family_t;
        let mut text = Text::new();
        // SAFETY: 4 readable bytes, fewer than a sockaddr_in.
        assert!(unsafe { format_sockaddr((&raw const sin).cast(), 4, &mut text) }.is_err());
        sin.sin_family = libc::AF_UNIX as libc::sa_family_t;
        // SAFETY: a whole sockaddr_in, of a family not formatted.
        assert!(unsafe { format_sockaddr((&raw const sin).cast(), 16, &mut text) }.is_err());
    }

    #[test]
    fn raw_addresses_have_no_port() {
        let mut text = Text::new();
        let v4 = [10u8, 0, 0, 1];
        // SAFETY: 4 readable bytes.
        unsafe { format_raw_addr(libc::AF_INET, v4.as_ptr().cast(), 4, &mut text) }.unwrap();
        assert_eq!(text.as_bytes(), b"10.0.0.1");
        let mut text = Text::new();
        // SAFETY: 4 readable bytes, too few for an IPv6 address.
        let v6 = unsafe { format_raw_addr(libc::AF_INET6, v4.as_ptr().cast(), 4, &mut text) };
        assert!(v6.is_err());
    }

    #[test]
    fn text_refuses_to_overflow() {
        let mut text = Text::new();
        assert!(text.write_str(&"x".repeat(65)).is_err());
        assert_eq!(text.as_bytes(), b"");
    }
}
