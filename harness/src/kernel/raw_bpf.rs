//! The one BPF call made between `fork` and `exec`: a child adding itself
//! to the task map, so that its very first `execve` is traced.
//!
//! Only async-signal-safe code may run in a forked child of a threaded
//! program, so this is a bare `bpf(2)` syscall on a stack buffer: no
//! allocation, no locks.

use std::os::fd::RawFd;

/// `union bpf_attr` as `BPF_MAP_UPDATE_ELEM` reads it.
#[repr(C, align(8))]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;

/// `BPF_NOEXIST`: fail with `EEXIST` rather than replace.
const BPF_NOEXIST: u64 = 1;

/// Inserts `key -> value` into a `u32 -> u32` hash map.
pub(crate) fn update_u32(map_fd: RawFd, key: u32, value: u32) -> std::io::Result<()> {
    update(map_fd, key, value, 0)
}

/// Inserts `key -> value` unless the map has `key` (then `EEXIST`).
pub(crate) fn insert_new_u32(map_fd: RawFd, key: u32, value: u32) -> std::io::Result<()> {
    update(map_fd, key, value, BPF_NOEXIST)
}

fn update(map_fd: RawFd, key: u32, value: u32, flags: u64) -> std::io::Result<()> {
    let attr = MapElemAttr {
        map_fd: map_fd as u32,
        _pad: 0,
        key: std::ptr::from_ref(&key) as u64,
        value: std::ptr::from_ref(&value) as u64,
        flags,
    };
    // SAFETY: `attr` and the key and value it points at live across the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_UPDATE_ELEM,
            std::ptr::from_ref(&attr),
            std::mem::size_of::<MapElemAttr>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}
