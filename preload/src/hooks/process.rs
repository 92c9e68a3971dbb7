//! Processes: creating them (`fork`, `clone`, `posix_spawn`,
//! `posix_spawnp`, `system`, `popen`), replacing the image (`execve`,
//! `execv`, `execvp`, `execvpe`, `fexecve`) and ending (`exit`, `_exit`,
//! `_Exit`).
//!
//! The `exec*` and exit hooks record before the call, which does not
//! return when it succeeds; a failed `exec*` gets its result recorded too.
//! `envp` is recorded as a pointer: the string area of a record is
//! better spent on `argv`.
//!
//! # Not hooked
//! - `vfork`. Its child runs on the parent's stack until it calls `exec`
//!   or `_exit`, so a wrapper cannot call the real `vfork` and return: the
//!   child's return and its next calls overwrite the wrapper's frame,
//!   including the return address the parent later returns through
//!   (glibc's own `vfork` keeps it in a register for that reason; a C
//!   wrapper makes `sh -c 'ls; true'` crash). Hooking it takes an
//!   assembly shim per architecture, which is the runtime's business, as
//!   is the child's state: the child runs on its parent's thread-local
//!   state, so the calls it makes before `exec` (`execve`, `_exit`) are
//!   recorded under the parent's pid and tid. Turning `vfork` into `fork`
//!   would record correctly but change what the program does (the child
//!   would no longer share memory with its parent, nor hold it up), which
//!   probity must not do. The kernel tracer sees the `vfork` syscall, and
//!   the child's new image says hello when it starts.
//! - `execl`, `execle`, `execlp`. Their arguments are a variadic list of
//!   any length, which a Rust function cannot take or pass on; glibc
//!   builds an `argv` and calls its internal `execve`, so the call is not
//!   recorded (the new image still says hello).
//! - `_Fork`, glibc's `fork` without `pthread_atfork` handlers: probity
//!   refreshes its cached pid and tid in such a handler, so a record made
//!   in the child would carry the parent's.

use std::ffi::{c_char, c_int, c_void};

use libc::{pid_t, posix_spawn_file_actions_t, posix_spawnattr_t, FILE};

use crate::hook;

/// `fork(2)`: recorded in both processes, each under its own ids, with the
/// result it got (the child's pid in the parent, 0 in the child). Both
/// records start when the parent entered `fork`.
#[hook]
unsafe extern "C" fn fork() -> pid_t {
    rec.ret_int(ret);
}

/// `clone(2)`, glibc's wrapper: the flags in hex, the child's stack, and
/// the child's thread id (or -1).
///
/// Variadic in C (`ptid`, `tls`, `ctid` follow `arg` when the flags ask
/// for them); declared with all seven, which the x86_64 and aarch64
/// calling conventions pass the same way, so they reach the real `clone`
/// unchanged. Recording after the call is safe: the child starts in `f`
/// on its own stack and ends with the `exit` syscall inside the real
/// `clone`, so it never returns through this hook; only the parent
/// records. (What the child itself calls is recorded under the parent's
/// ids: it skips the `pthread_atfork` handlers, and with `CLONE_VM` it
/// also shares the parent's thread-local state.)
#[hook]
unsafe extern "C" fn clone(
    f: Option<unsafe extern "C" fn(*mut c_void) -> c_int>,
    stack: *mut c_void,
    flags: c_int,
    arg: *mut c_void,
    ptid: *mut pid_t,
    tls: *mut c_void,
    ctid: *mut pid_t,
) -> c_int {
    rec.hex(flags as u32).ptr(stack).ret_int(ret);
}

/// `posix_spawn(3)`: the child's pid (0 when the call failed or `pid` is
/// NULL), the path and `argv`; the result is an error number, not errno.
#[hook]
unsafe extern "C" fn posix_spawn(
    pid: *mut pid_t,
    path: *const c_char,
    file_actions: *const posix_spawn_file_actions_t,
    attrp: *const posix_spawnattr_t,
    argv: *const *mut c_char,
    envp: *const *mut c_char,
) -> c_int {
    // SAFETY: the caller's `pid`, after the call.
    let child = unsafe { spawned(ret, pid) };
    rec.int(child).str(path).str_list(argv.cast()).ret_int(ret);
}

/// `posix_spawnp(3)`: like `posix_spawn`, with a file looked up in `PATH`.
#[hook]
unsafe extern "C" fn posix_spawnp(
    pid: *mut pid_t,
    file: *const c_char,
    file_actions: *const posix_spawn_file_actions_t,
    attrp: *const posix_spawnattr_t,
    argv: *const *mut c_char,
    envp: *const *mut c_char,
) -> c_int {
    // SAFETY: the caller's `pid`, after the call.
    let child = unsafe { spawned(ret, pid) };
    rec.int(child).str(file).str_list(argv.cast()).ret_int(ret);
}

/// The pid `posix_spawn` stored, or 0 when it failed or `pid` is NULL.
///
/// # Safety
/// `pid` is what the caller passed to a call that returned `ret`.
unsafe fn spawned(ret: c_int, pid: *const pid_t) -> pid_t {
    if ret == 0 && !pid.is_null() {
        // SAFETY: written by the successful call.
        unsafe { *pid }
    } else {
        0
    }
}

/// `system(3)`: the command; the result is a wait status (or -1).
#[hook]
unsafe extern "C" fn system(command: *const c_char) -> c_int {
    rec.str(command).ret_int(ret);
}

/// `popen(3)`: the command and the mode string; the `FILE *` or NULL.
#[hook]
unsafe extern "C" fn popen(command: *const c_char, mode: *const c_char) -> *mut FILE {
    rec.str(command).str(mode).ret_ptr(ret);
}

/// `execve(2)`.
#[hook(before)]
unsafe extern "C" fn execve(path: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int {
    rec.str(path).str_list(argv).ptr(envp);
}

/// `execv(3)`.
#[hook(before)]
unsafe extern "C" fn execv(path: *const c_char, argv: *const *const c_char) -> c_int {
    rec.str(path).str_list(argv);
}

/// `execvp(3)`: the file as given, before the `PATH` search.
#[hook(before)]
unsafe extern "C" fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int {
    rec.str(file).str_list(argv);
}

/// `execvpe(3)`.
#[hook(before)]
unsafe extern "C" fn execvpe(file: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int {
    rec.str(file).str_list(argv).ptr(envp);
}

/// `fexecve(3)`.
#[hook(before)]
unsafe extern "C" fn fexecve(fd: c_int, argv: *const *const c_char, envp: *const *const c_char) -> c_int {
    rec.fd(fd).str_list(argv).ptr(envp);
}

/// `exit(3)`: recorded before the `atexit` handlers run.
#[hook(before)]
unsafe extern "C" fn exit(status: c_int) -> ! {
    rec.int(status);
}

/// `_exit(2)`.
#[hook(before)]
unsafe extern "C" fn _exit(status: c_int) -> ! {
    rec.int(status);
}

/// `_Exit(2)`, the C99 name of `_exit`, a symbol of its own.
#[hook(before)]
unsafe extern "C" fn _Exit(status: c_int) -> ! {
    rec.int(status);
}
