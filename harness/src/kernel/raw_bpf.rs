//! The one BPF call made between `fork` and `exec`: a child adding itself
//! to the task map, so that its very first `execve` is traced; and the
//! deletions from maps aya does not hold for probity (`INFLIGHT`).
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

const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;

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
    call(BPF_MAP_UPDATE_ELEM, &attr)
}

/// Deletes `key` from a hash map keyed by `u32` (`ENOENT` when absent).
pub(crate) fn delete_u32(map_fd: RawFd, key: u32) -> std::io::Result<()> {
    let attr = MapElemAttr { map_fd: map_fd as u32, _pad: 0, key: std::ptr::from_ref(&key) as u64, value: 0, flags: 0 };
    call(BPF_MAP_DELETE_ELEM, &attr)
}

/// The value of `key` in a `u32 -> u32` hash map.
pub(crate) fn lookup_u32(map_fd: RawFd, key: u32) -> Option<u32> {
    let mut value = 0u32;
    let attr = MapElemAttr {
        map_fd: map_fd as u32,
        _pad: 0,
        key: std::ptr::from_ref(&key) as u64,
        value: std::ptr::from_mut(&mut value) as u64,
        flags: 0,
    };
    call(BPF_MAP_LOOKUP_ELEM, &attr).ok().map(|()| value)
}

/// Whether a hash map keyed by `u32` has `key`; its value, of
/// `value_len` bytes, is read into a buffer and dropped.
#[cfg(test)]
pub(crate) fn has_u32(map_fd: RawFd, key: u32, value_len: usize) -> bool {
    let mut value = vec![0u8; value_len];
    let attr = MapElemAttr {
        map_fd: map_fd as u32,
        _pad: 0,
        key: std::ptr::from_ref(&key) as u64,
        value: value.as_mut_ptr() as u64,
        flags: 0,
    };
    call(BPF_MAP_LOOKUP_ELEM, &attr).is_ok()
}

fn call(cmd: libc::c_long, attr: &MapElemAttr) -> std::io::Result<()> {
    // SAFETY: `attr` and the key and value it points at live across the call.
    let r = unsafe {
        libc::syscall(libc::SYS_bpf, cmd, std::ptr::from_ref(attr), std::mem::size_of::<MapElemAttr>() as libc::c_uint)
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}
