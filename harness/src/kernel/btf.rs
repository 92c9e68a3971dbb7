//! The few kernel struct offsets the raw tracepoint probes need, read from
//! the kernel's own BTF (`/sys/kernel/btf/vmlinux`) at load time.
//!
//! Raw tracepoints hand probes kernel pointers (`task_struct`, `sock`)
//! instead of formatted records; they are cheaper per event, need no
//! tracefs, and, unlike classic tracepoints, detach without waiting for an
//! RCU grace period each (about 70 ms apiece). The eBPF object has no
//! CO-RE relocations, so the offsets of the fields they read come from
//! here: `task_struct.pid` and `linux_binprm.filename` for the process
//! probes, the addresses, ports, family, state and protocol of a `sock`
//! for the TCP probes. Without BTF, the harness uses classic tracepoints.
//!
//! The exec probe reads `current->real_cred`: its ids and capability sets
//! tell whether a task that has just exec'd runs with more privilege than
//! a non-root session owner (see [`CredOffsets`]).
//!
//! The accept probe follows `current->files->fdt->fd[n]->private_data->sk`
//! to find the socket an `accept` returned; without those offsets, an
//! accepted socket is claimed at its first transfer instead.
//!
//! Only the BTF type section is walked: the format is the kernel's
//! (`include/uapi/linux/btf.h`), with a fixed-size record per type kind.
//! A field may sit in anonymous structs and unions (`sock_common`'s
//! address and port pairs do); those are followed by type id.

/// Offsets, in bytes, of the fields the raw probes read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Offsets {
    pub task_pid: u32,
    pub task_tgid: u32,
    pub binprm_filename: u32,
    /// The descriptor-table path to a socket, when every step was found.
    pub net: Option<NetOffsets>,
    /// The `struct sock` fields of the TCP probes, when all were found.
    pub sock: Option<SockOffsets>,
    /// The credentials of a task, when every field was found and the ids
    /// are laid out as the exec probe reads them.
    pub cred: Option<CredOffsets>,
}

/// Offsets along `task->real_cred`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CredOffsets {
    /// `task_struct.real_cred` (a pointer).
    pub task_real_cred: u32,
    /// `cred.uid`, the first of `uid, gid, suid, sgid, euid, egid, fsuid,
    /// fsgid` (a `u32` each, one after the other: the exec probe reads the
    /// eight in one go).
    pub uid: u32,
    /// `cred.cap_permitted` (a `u64`).
    pub cap_permitted: u32,
    /// `cred.cap_effective` (a `u64`).
    pub cap_effective: u32,
}

/// Offsets along `task->files->fdt->fd[n]->private_data->sk`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NetOffsets {
    pub task_files: u32,
    pub files_fdt: u32,
    pub fdt_max_fds: u32,
    pub fdt_fd: u32,
    pub file_private_data: u32,
    pub socket_sk: u32,
}

/// Offsets from a `struct sock *` (which is also the `struct inet_sock *`
/// of an IPv4 or IPv6 socket): what the TCP tracepoints' classic records
/// hold, read by the raw probes themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SockOffsets {
    /// `sk_family` (`u16`).
    pub family: u32,
    /// `sk_state` (`u8`).
    pub state: u32,
    /// `sk_protocol` (`u16`).
    pub protocol: u32,
    /// `inet_sport` (`__be16`).
    pub sport: u32,
    /// `inet_dport` (`__be16`).
    pub dport: u32,
    /// `inet_saddr` (`__be32`).
    pub saddr: u32,
    /// `inet_daddr` (`__be32`).
    pub daddr: u32,
    /// `sk_v6_rcv_saddr` (`struct in6_addr`).
    pub saddr_v6: u32,
    /// `sk_v6_daddr` (`struct in6_addr`).
    pub daddr_v6: u32,
}

/// The (struct, member path) pairs read, in the order of [`Found`]. A path
/// goes through named members with dots; anonymous members are searched
/// on the way.
const WANTED: [(&[u8], &[u8]); 29] = [
    (b"task_struct", b"pid"),
    (b"task_struct", b"tgid"),
    (b"linux_binprm", b"filename"),
    (b"task_struct", b"files"),
    (b"files_struct", b"fdt"),
    (b"fdtable", b"max_fds"),
    (b"fdtable", b"fd"),
    (b"file", b"private_data"),
    (b"socket", b"sk"),
    (b"sock", b"__sk_common.skc_family"),
    (b"sock", b"__sk_common.skc_state"),
    (b"sock", b"sk_protocol"),
    (b"inet_sock", b"inet_sport"),
    (b"sock", b"__sk_common.skc_dport"),
    (b"inet_sock", b"inet_saddr"),
    (b"sock", b"__sk_common.skc_daddr"),
    (b"sock", b"__sk_common.skc_v6_rcv_saddr"),
    (b"sock", b"__sk_common.skc_v6_daddr"),
    (b"task_struct", b"real_cred"),
    (b"cred", b"uid"),
    (b"cred", b"gid"),
    (b"cred", b"suid"),
    (b"cred", b"sgid"),
    (b"cred", b"euid"),
    (b"cred", b"egid"),
    (b"cred", b"fsuid"),
    (b"cred", b"fsgid"),
    (b"cred", b"cap_permitted"),
    (b"cred", b"cap_effective"),
];

type Found = [Option<u32>; WANTED.len()];

const BTF_MAGIC: u16 = 0xeb9f;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;

/// Reads the offsets from this kernel's BTF, if it has any.
pub(crate) fn offsets() -> Option<Offsets> {
    let file = std::fs::File::open("/sys/kernel/btf/vmlinux").ok()?;
    // Kernels since 6.16 let the file be mapped: then only the pages
    // walked are touched (the structs wanted come early), instead of copying
    // all of it (megabytes) out of the kernel.
    match Mapped::new(&file) {
        Some(m) => parse(m.bytes()),
        None => parse(&std::fs::read("/sys/kernel/btf/vmlinux").ok()?),
    }
}

/// A read-only mapping of a whole file.
struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Mapped {
    fn new(file: &std::fs::File) -> Option<Mapped> {
        use std::os::fd::AsRawFd;
        let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
        if len == 0 {
            return None;
        }
        // SAFETY: a fresh private read-only mapping of a file we hold open.
        let ptr =
            unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_PRIVATE, file.as_raw_fd(), 0) };
        (ptr != libc::MAP_FAILED).then_some(Mapped { ptr, len })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `len` readable bytes, mapped until `self` is dropped.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` mapped.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

/// A walk of the type section, indexing types by id as it goes.
struct Types<'a> {
    data: &'a [u8],
    strings: usize,
    end: usize,
    /// Where the next type not yet indexed starts.
    next: usize,
    /// Where each type indexed so far starts; id 0 (`void`) has no record.
    starts: Vec<usize>,
}

/// A type's common header.
struct Header {
    name_off: u32,
    kind: u32,
    vlen: usize,
    kind_flag: bool,
    /// The size, or the type referred to (pointers, typedefs, qualifiers).
    size_or_type: u32,
    at: usize,
}

impl<'a> Types<'a> {
    fn u16_at(&self, o: usize) -> Option<u16> {
        self.data.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32_at(&self, o: usize) -> Option<u32> {
        self.data.get(o..o + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn name(&self, off: u32) -> &'a [u8] {
        let start = self.strings + off as usize;
        let rest = self.data.get(start..).unwrap_or_default();
        &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())]
    }

    fn header(&self, at: usize) -> Option<Header> {
        let info = self.u32_at(at + 4)?;
        Some(Header {
            name_off: self.u32_at(at)?,
            kind: (info >> 24) & 0x1f,
            vlen: (info & 0xffff) as usize,
            kind_flag: info >> 31 == 1,
            size_or_type: self.u32_at(at + 8)?,
            at,
        })
    }

    /// Indexes the next type; `None` at the end or on a kind this reader
    /// does not know.
    fn advance(&mut self) -> Option<Header> {
        if self.next + 12 > self.end {
            return None;
        }
        let h = self.header(self.next)?;
        // Bytes after the common 12-byte header, by kind.
        let extra = match h.kind {
            1 | 14 | 17 => 4,          // INT, VAR, DECL_TAG
            3 => 12,                   // ARRAY
            4 | 5 => 12 * h.vlen,      // STRUCT, UNION: members
            6 | 13 => 8 * h.vlen,      // ENUM, FUNC_PROTO
            15 | 19 => 12 * h.vlen,    // DATASEC, ENUM64
            2 | 7..=12 | 16 | 18 => 0, // PTR, FWD, TYPEDEF, qualifiers, FUNC, FLOAT, TYPE_TAG
            _ => return None,
        };
        self.starts.push(self.next);
        self.next += 12 + extra;
        Some(h)
    }

    /// The header of type `id`, walking on until it is indexed.
    fn get(&mut self, id: u32) -> Option<Header> {
        let id = id as usize;
        while self.starts.len() <= id {
            self.advance()?;
        }
        self.header(*self.starts.get(id).filter(|_| id > 0)?)
    }

    /// Type `id` without typedefs and qualifiers.
    fn resolve(&mut self, mut id: u32) -> Option<Header> {
        for _ in 0..16 {
            let h = self.get(id)?;
            match h.kind {
                8..=11 | 18 => id = h.size_or_type, // TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG
                _ => return Some(h),
            }
        }
        None
    }

    /// The byte offset and type of member `name` of the struct or union
    /// `h`, looking into its anonymous members too. Bitfields are refused.
    fn member(&mut self, h: &Header, name: &[u8], depth: u32) -> Option<(u32, u32)> {
        if !(h.kind == KIND_STRUCT || h.kind == KIND_UNION) || depth > 8 {
            return None;
        }
        let bits_of = |raw: u32| if h.kind_flag { (raw & 0x00ff_ffff, raw >> 24) } else { (raw, 0) };
        let mut anonymous = Vec::new();
        for m in 0..h.vlen {
            let o = h.at + 12 + 12 * m;
            let (mname, mtype, raw) = (self.u32_at(o)?, self.u32_at(o + 4)?, self.u32_at(o + 8)?);
            let (bits, bitfield) = bits_of(raw);
            if mname == 0 {
                anonymous.push((mtype, bits));
            } else if self.name(mname) == name {
                return (bitfield == 0 && bits % 8 == 0).then_some((bits / 8, mtype));
            }
        }
        for (mtype, bits) in anonymous {
            let inner = self.resolve(mtype)?;
            if let Some((off, t)) = self.member(&inner, name, depth + 1) {
                return Some((bits / 8 + off, t));
            }
        }
        None
    }

    /// The byte offset of `path` (members joined by dots) in struct `id`.
    fn path(&mut self, id: u32, path: &[u8]) -> Option<u32> {
        let mut h = self.resolve(id)?;
        let mut total = 0;
        let mut parts = path.split(|&b| b == b'.').peekable();
        while let Some(part) = parts.next() {
            let (off, t) = self.member(&h, part, 0)?;
            total += off;
            if parts.peek().is_some() {
                h = self.resolve(t)?;
            }
        }
        Some(total)
    }
}

fn parse(data: &[u8]) -> Option<Offsets> {
    let mut types = Types { data, strings: 0, end: 0, next: 0, starts: vec![0] };
    if types.u16_at(0)? != BTF_MAGIC {
        return None;
    }
    let hdr_len = types.u32_at(4)? as usize;
    let (type_off, type_len) = (types.u32_at(8)? as usize, types.u32_at(12)? as usize);
    types.strings = hdr_len + types.u32_at(16)? as usize;
    types.next = hdr_len + type_off;
    types.end = types.next + type_len;

    // The ids of the structs wanted: the first struct of a name wins (BTF
    // may hold several types of one name, in modules' split BTF). They
    // come early in the kernel's BTF: the walk stops there, and goes on
    // only as far as the anonymous types inside them need.
    let mut structs: Vec<(&[u8], Option<u32>)> = Vec::new();
    for (s, _) in WANTED {
        if !structs.iter().any(|(n, _)| *n == s) {
            structs.push((s, None));
        }
    }
    while structs.iter().any(|(_, id)| id.is_none()) {
        let Some(h) = types.advance() else { break };
        if h.kind == KIND_STRUCT {
            let id = (types.starts.len() - 1) as u32;
            let name = types.name(h.name_off);
            if let Some(slot) = structs.iter_mut().find(|(n, id)| *n == name && id.is_none()) {
                slot.1 = Some(id);
            }
        }
    }
    let mut found: Found = [None; WANTED.len()];
    for (k, (s, path)) in WANTED.iter().enumerate() {
        let Some(id) = structs.iter().find(|(n, _)| n == s).and_then(|(_, id)| *id) else { continue };
        found[k] = types.path(id, path);
    }
    let net = (|| {
        Some(NetOffsets {
            task_files: found[3]?,
            files_fdt: found[4]?,
            fdt_max_fds: found[5]?,
            fdt_fd: found[6]?,
            file_private_data: found[7]?,
            socket_sk: found[8]?,
        })
    })();
    let sock = (|| {
        Some(SockOffsets {
            family: found[9]?,
            state: found[10]?,
            protocol: found[11]?,
            sport: found[12]?,
            dport: found[13]?,
            saddr: found[14]?,
            daddr: found[15]?,
            saddr_v6: found[16]?,
            daddr_v6: found[17]?,
        })
    })();
    let cred = (|| {
        let uid = found[19]?;
        // The eight ids must follow each other, as the probe reads them.
        for (k, f) in found[19..27].iter().enumerate() {
            if (*f)? != uid + 4 * k as u32 {
                return None;
            }
        }
        Some(CredOffsets { task_real_cred: found[18]?, uid, cap_permitted: found[27]?, cap_effective: found[28]? })
    })();
    Some(Offsets { task_pid: found[0]?, task_tgid: found[1]?, binprm_filename: found[2]?, net, sock, cred })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_kernels_offsets_are_found_and_plausible() {
        if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
            // Nothing to read on this kernel: the classic probes are used.
            return;
        }
        let o = offsets().expect("this kernel has BTF, so the offsets must be found");
        assert!(o.task_pid > 0 && o.task_tgid == o.task_pid + 4, "{o:?}");
        assert!(o.binprm_filename > 0, "{o:?}");
        let net = o.net.expect("this kernel's BTF has the descriptor table types");
        assert!(net.task_files > 0 && net.fdt_fd > net.fdt_max_fds && net.socket_sk > 0, "{net:?}");
        let sock = o.sock.expect("this kernel's BTF has the socket types");
        // `struct sock_common` starts `struct sock`: the address pair
        // (destination first), then the port pair, then the family.
        assert_eq!((sock.daddr, sock.dport), (0, 12), "{sock:?}");
        assert_eq!(sock.family, 16, "{sock:?}");
        assert_eq!(sock.state, 18, "{sock:?}");
        assert_eq!(sock.daddr_v6 + 16, sock.saddr_v6, "{sock:?}");
        // `struct inet_sock` extends `struct sock`.
        assert!(sock.saddr > sock.protocol && sock.sport > sock.saddr, "{sock:?}");
        let cred = o.cred.expect("this kernel's BTF has struct cred, its ids in order");
        // `struct cred` starts with its usage count; the ids come before
        // the capability sets, which are 8 bytes each.
        assert!(cred.task_real_cred > 0 && cred.uid > 0, "{cred:?}");
        assert!(cred.cap_permitted > cred.uid + 28 && cred.cap_effective == cred.cap_permitted + 8, "{cred:?}");
    }

    #[test]
    fn garbage_is_not_btf() {
        assert_eq!(parse(b"not btf at all"), None);
        assert_eq!(parse(&[0x9f, 0xeb, 1, 0]), None);
    }
}
