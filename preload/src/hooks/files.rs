//! Files: opening and closing (`open`, `openat`, `creat`, `fopen`,
//! `freopen`, `close`, `fclose`), names (`unlink`, `rename`, `mkdir`,
//! `rmdir`, `link`, `symlink` and their `*at` forms), attributes (`chmod`,
//! `fchmodat`, `truncate`) and the path-based stat family (`stat`, `lstat`,
//! `fstatat`, `access`, `faccessat`).
//!
//! The `64` variants are separate symbols in glibc 2.36, so each is hooked
//! under its own name. Since glibc 2.33 `stat`, `lstat` and `fstatat` are
//! real exported functions; programs linked against an older glibc call
//! `__xstat`, `__lxstat` and `__fxstatat` instead, which 2.36 still exports,
//! so those are hooked too. Out-parameters (`struct stat`) are not
//! recorded, and neither are fd-only calls (`fstat`, `fchmod`,
//! `ftruncate`), whose syscalls say as much.

use std::ffi::{c_char, c_int, c_uint};

use libc::{mode_t, off64_t, off_t, FILE};

use crate::{hook, Rec};

/// The arguments of the `open` family: the mode only when the call can
/// create a file, since otherwise the caller may not have passed one and
/// the register holds garbage.
///
/// # Safety
/// `path` is what the caller passed: NULL or a C string.
unsafe fn open_args(rec: &mut Rec<'_>, path: *const c_char, flags: c_int, mode: mode_t) {
    // SAFETY: the caller's promise.
    unsafe { rec.str(path) }.open_flags(flags);
    if flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE {
        rec.mode(mode);
    }
}

/// `open(2)`; variadic in C, declared with the `mode` the ABI passes.
#[hook]
unsafe extern "C" fn open(path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    open_args(rec, path, flags, mode);
    rec.ret_fd(ret);
}

/// `open64(2)`.
#[hook]
unsafe extern "C" fn open64(path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    open_args(rec, path, flags, mode);
    rec.ret_fd(ret);
}

/// `openat(2)`; variadic in C, declared like [`open`].
#[hook]
unsafe extern "C" fn openat(dirfd: c_int, path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    rec.fd(dirfd);
    open_args(rec, path, flags, mode);
    rec.ret_fd(ret);
}

/// `openat64(2)`.
#[hook]
unsafe extern "C" fn openat64(dirfd: c_int, path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    rec.fd(dirfd);
    open_args(rec, path, flags, mode);
    rec.ret_fd(ret);
}

/// `creat(2)`.
#[hook]
unsafe extern "C" fn creat(path: *const c_char, mode: mode_t) -> c_int {
    rec.str(path).mode(mode).ret_fd(ret);
}

/// `creat64(2)`.
#[hook]
unsafe extern "C" fn creat64(path: *const c_char, mode: mode_t) -> c_int {
    rec.str(path).mode(mode).ret_fd(ret);
}

/// `fopen(3)`: the path and the mode string; the `FILE *` or NULL.
#[hook(inject)]
unsafe extern "C" fn fopen(path: *const c_char, mode: *const c_char) -> *mut FILE {
    rec.str(path).str(mode).ret_ptr(ret);
}

/// `fopen64(3)`.
#[hook(inject)]
unsafe extern "C" fn fopen64(path: *const c_char, mode: *const c_char) -> *mut FILE {
    rec.str(path).str(mode).ret_ptr(ret);
}

/// `freopen(3)`; `path` may be NULL (change the mode of `stream`).
#[hook]
unsafe extern "C" fn freopen(path: *const c_char, mode: *const c_char, stream: *mut FILE) -> *mut FILE {
    rec.str(path).str(mode).ptr(stream).ret_ptr(ret);
}

/// `freopen64(3)`.
#[hook]
unsafe extern "C" fn freopen64(path: *const c_char, mode: *const c_char, stream: *mut FILE) -> *mut FILE {
    rec.str(path).str(mode).ptr(stream).ret_ptr(ret);
}

/// `close(2)`.
#[hook]
unsafe extern "C" fn close(fd: c_int) -> c_int {
    rec.fd(fd).ret_int(ret);
}

/// `fclose(3)`: the stream, as `fopen` returned it (it is freed by then,
/// so its descriptor cannot be read).
#[hook]
unsafe extern "C" fn fclose(stream: *mut FILE) -> c_int {
    rec.ptr(stream).ret_int(ret);
}

/// `unlink(2)`.
#[hook]
unsafe extern "C" fn unlink(path: *const c_char) -> c_int {
    rec.str(path).ret_int(ret);
}

/// `unlinkat(2)`.
#[hook]
unsafe extern "C" fn unlinkat(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    rec.fd(dirfd).str(path).at_flags(flags).ret_int(ret);
}

/// `rename(2)`.
#[hook]
unsafe extern "C" fn rename(old: *const c_char, new: *const c_char) -> c_int {
    rec.str(old).str(new).ret_int(ret);
}

/// `renameat(2)`.
#[hook]
unsafe extern "C" fn renameat(olddirfd: c_int, old: *const c_char, newdirfd: c_int, new: *const c_char) -> c_int {
    rec.fd(olddirfd).str(old).fd(newdirfd).str(new).ret_int(ret);
}

/// `renameat2(2)`; `flags` are `RENAME_*`, shown in hex.
#[hook]
unsafe extern "C" fn renameat2(
    olddirfd: c_int,
    old: *const c_char,
    newdirfd: c_int,
    new: *const c_char,
    flags: c_uint,
) -> c_int {
    rec.fd(olddirfd).str(old).fd(newdirfd).str(new).hex(flags).ret_int(ret);
}

/// `mkdir(2)`.
#[hook]
unsafe extern "C" fn mkdir(path: *const c_char, mode: mode_t) -> c_int {
    rec.str(path).mode(mode).ret_int(ret);
}

/// `mkdirat(2)`.
#[hook]
unsafe extern "C" fn mkdirat(dirfd: c_int, path: *const c_char, mode: mode_t) -> c_int {
    rec.fd(dirfd).str(path).mode(mode).ret_int(ret);
}

/// `rmdir(2)`.
#[hook]
unsafe extern "C" fn rmdir(path: *const c_char) -> c_int {
    rec.str(path).ret_int(ret);
}

/// `link(2)`.
#[hook]
unsafe extern "C" fn link(old: *const c_char, new: *const c_char) -> c_int {
    rec.str(old).str(new).ret_int(ret);
}

/// `linkat(2)`.
#[hook]
unsafe extern "C" fn linkat(
    olddirfd: c_int,
    old: *const c_char,
    newdirfd: c_int,
    new: *const c_char,
    flags: c_int,
) -> c_int {
    rec.fd(olddirfd).str(old).fd(newdirfd).str(new).at_flags(flags).ret_int(ret);
}

/// `symlink(2)`: the target, then the link's path.
#[hook]
unsafe extern "C" fn symlink(target: *const c_char, linkpath: *const c_char) -> c_int {
    rec.str(target).str(linkpath).ret_int(ret);
}

/// `symlinkat(2)`.
#[hook]
unsafe extern "C" fn symlinkat(target: *const c_char, newdirfd: c_int, linkpath: *const c_char) -> c_int {
    rec.str(target).fd(newdirfd).str(linkpath).ret_int(ret);
}

/// `chmod(2)`.
#[hook]
unsafe extern "C" fn chmod(path: *const c_char, mode: mode_t) -> c_int {
    rec.str(path).mode(mode).ret_int(ret);
}

/// `fchmodat(2)`.
#[hook]
unsafe extern "C" fn fchmodat(dirfd: c_int, path: *const c_char, mode: mode_t, flags: c_int) -> c_int {
    rec.fd(dirfd).str(path).mode(mode).at_flags(flags).ret_int(ret);
}

/// `truncate(2)`.
#[hook]
unsafe extern "C" fn truncate(path: *const c_char, length: off_t) -> c_int {
    rec.str(path).int(length).ret_int(ret);
}

/// `truncate64(2)`.
#[hook]
unsafe extern "C" fn truncate64(path: *const c_char, length: off64_t) -> c_int {
    rec.str(path).int(length).ret_int(ret);
}

/// `stat(2)`.
#[hook]
unsafe extern "C" fn stat(path: *const c_char, buf: *mut libc::stat) -> c_int {
    rec.str(path).ret_int(ret);
}

/// `stat64(2)`.
#[hook]
unsafe extern "C" fn stat64(path: *const c_char, buf: *mut libc::stat64) -> c_int {
    rec.str(path).ret_int(ret);
}

/// `lstat(2)`.
#[hook]
unsafe extern "C" fn lstat(path: *const c_char, buf: *mut libc::stat) -> c_int {
    rec.str(path).ret_int(ret);
}

/// `lstat64(2)`.
#[hook]
unsafe extern "C" fn lstat64(path: *const c_char, buf: *mut libc::stat64) -> c_int {
    rec.str(path).ret_int(ret);
}

/// `fstatat(2)`.
#[hook]
unsafe extern "C" fn fstatat(dirfd: c_int, path: *const c_char, buf: *mut libc::stat, flags: c_int) -> c_int {
    rec.fd(dirfd).str(path).at_flags(flags).ret_int(ret);
}

/// `fstatat64(2)`.
#[hook]
unsafe extern "C" fn fstatat64(dirfd: c_int, path: *const c_char, buf: *mut libc::stat64, flags: c_int) -> c_int {
    rec.fd(dirfd).str(path).at_flags(flags).ret_int(ret);
}

/// `stat` as programs linked against glibc before 2.33 call it; `ver`
/// (the `struct stat` layout) is not recorded.
#[hook]
unsafe extern "C" fn __xstat(ver: c_int, path: *const c_char, buf: *mut libc::stat) -> c_int {
    rec.str(path).ret_int(ret);
}

/// `stat64` before glibc 2.33.
#[hook]
unsafe extern "C" fn __xstat64(ver: c_int, path: *const c_char, buf: *mut libc::stat64) -> c_int {
    rec.str(path).ret_int(ret);
}

/// `lstat` before glibc 2.33.
#[hook]
unsafe extern "C" fn __lxstat(ver: c_int, path: *const c_char, buf: *mut libc::stat) -> c_int {
    rec.str(path).ret_int(ret);
}

/// `lstat64` before glibc 2.33.
#[hook]
unsafe extern "C" fn __lxstat64(ver: c_int, path: *const c_char, buf: *mut libc::stat64) -> c_int {
    rec.str(path).ret_int(ret);
}

/// `fstatat` before glibc 2.33.
#[hook]
unsafe extern "C" fn __fxstatat(
    ver: c_int,
    dirfd: c_int,
    path: *const c_char,
    buf: *mut libc::stat,
    flags: c_int,
) -> c_int {
    rec.fd(dirfd).str(path).at_flags(flags).ret_int(ret);
}

/// `fstatat64` before glibc 2.33.
#[hook]
unsafe extern "C" fn __fxstatat64(
    ver: c_int,
    dirfd: c_int,
    path: *const c_char,
    buf: *mut libc::stat64,
    flags: c_int,
) -> c_int {
    rec.fd(dirfd).str(path).at_flags(flags).ret_int(ret);
}

/// `access(2)`; `mode` is `F_OK` or `R_OK|W_OK|X_OK` bits, as a number.
#[hook]
unsafe extern "C" fn access(path: *const c_char, mode: c_int) -> c_int {
    rec.str(path).int(mode).ret_int(ret);
}

/// `faccessat(3)`; its flags are shown in hex, not as `AT_*` flags,
/// because `AT_EACCESS` has the value of `AT_REMOVEDIR`.
#[hook]
unsafe extern "C" fn faccessat(dirfd: c_int, path: *const c_char, mode: c_int, flags: c_int) -> c_int {
    rec.fd(dirfd).str(path).int(mode).hex(flags as u32).ret_int(ret);
}
