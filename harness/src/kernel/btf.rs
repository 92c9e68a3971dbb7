//! The few kernel struct offsets the raw process probes and the accept
//! probes need, read from the kernel's own BTF (`/sys/kernel/btf/vmlinux`)
//! at load time.
//!
//! Raw tracepoints hand probes `task_struct` pointers instead of formatted
//! records; they are cheaper per event and, unlike classic tracepoints,
//! detach without waiting for an RCU grace period each (about 70 ms apiece).
//! The eBPF object has no CO-RE relocations, so the offsets of
//! `task_struct.pid`, `task_struct.tgid` and `linux_binprm.filename` come
//! from here. Without BTF, the harness uses the classic tracepoints.
//!
//! The accept probes follow `current->files->fdt->fd[n]->private_data->sk`
//! to find the socket an `accept` returned; without those offsets, an
//! accepted socket is claimed at its first transfer instead.
//!
//! Only the BTF type section is walked: the format is the kernel's
//! (`include/uapi/linux/btf.h`), with a fixed-size record per type kind.

/// Offsets, in bytes, of the fields the raw process probes read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Offsets {
    pub task_pid: u32,
    pub task_tgid: u32,
    pub binprm_filename: u32,
    /// The descriptor-table path to a socket, when every step was found.
    pub net: Option<NetOffsets>,
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

/// The (struct, member) pairs read, in the order of [`Found`].
const WANTED: [(&[u8], &[u8]); 9] = [
    (b"task_struct", b"pid"),
    (b"task_struct", b"tgid"),
    (b"linux_binprm", b"filename"),
    (b"task_struct", b"files"),
    (b"files_struct", b"fdt"),
    (b"fdtable", b"max_fds"),
    (b"fdtable", b"fd"),
    (b"file", b"private_data"),
    (b"socket", b"sk"),
];

type Found = [Option<u32>; WANTED.len()];

const BTF_MAGIC: u16 = 0xeb9f;

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
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_PRIVATE, file.as_raw_fd(), 0) };
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

fn parse(data: &[u8]) -> Option<Offsets> {
    let u16_at = |o: usize| data.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| data.get(o..o + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    if u16_at(0)? != BTF_MAGIC {
        return None;
    }
    let hdr_len = u32_at(4)? as usize;
    let (type_off, type_len) = (u32_at(8)? as usize, u32_at(12)? as usize);
    let str_off = u32_at(16)? as usize;
    let types = hdr_len + type_off;
    let strings = hdr_len + str_off;
    let name = |off: u32| -> &[u8] {
        let start = strings + off as usize;
        let rest = data.get(start..).unwrap_or_default();
        &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())]
    };
    let mut found: Found = [None; WANTED.len()];
    let mut at = types;
    while at + 12 <= types + type_len {
        let name_off = u32_at(at)?;
        let info = u32_at(at + 4)?;
        let vlen = (info & 0xffff) as usize;
        let kind = (info >> 24) & 0x1f;
        let kind_flag = info >> 31 == 1;
        let members = at + 12;
        // Bytes after the common 12-byte header, by kind.
        let extra = match kind {
            1 | 14 | 17 => 4,         // INT, VAR, DECL_TAG
            3 => 12,                  // ARRAY
            4 | 5 => 12 * vlen,       // STRUCT, UNION: members
            6 | 13 => 8 * vlen,       // ENUM, FUNC_PROTO
            15 | 19 => 12 * vlen,     // DATASEC, ENUM64
            2 | 7..=12 | 16 | 18 => 0, // PTR, FWD, TYPEDEF, qualifiers, FUNC, FLOAT, TYPE_TAG
            _ => return None,         // a kind this reader does not know
        };
        if kind == 4 {
            let struct_name = name(name_off);
            if WANTED.iter().any(|(s, _)| *s == struct_name) {
                for m in 0..vlen {
                    let o = members + 12 * m;
                    let mname = name(u32_at(o)?);
                    let raw = u32_at(o + 8)?;
                    // With kind_flag, the top 8 bits are a bitfield size.
                    let bits = if kind_flag { raw & 0x00ff_ffff } else { raw };
                    if let Some(k) = WANTED.iter().position(|w| *w == (struct_name, mname)) {
                        // The first struct of a name wins (BTF may hold
                        // several types of one name, in modules' split BTF).
                        found[k].get_or_insert(bits / 8);
                    }
                }
            }
        }
        at = members + extra;
        if found.iter().all(Option::is_some) {
            // The structs wanted come early in the kernel's BTF: stop there.
            break;
        }
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
    Some(Offsets { task_pid: found[0]?, task_tgid: found[1]?, binprm_filename: found[2]?, net })
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
    }

    #[test]
    fn garbage_is_not_btf() {
        assert_eq!(parse(b"not btf at all"), None);
        assert_eq!(parse(&[0x9f, 0xeb, 1, 0]), None);
    }
}
