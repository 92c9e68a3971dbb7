//! Processes: creating them (`fork`, `clone`, `vfork`, `posix_spawn`,
//! `posix_spawnp`, `system`, `popen`), replacing the image (`execve`,
//! `execv`, `execvp`, `execvpe`, `fexecve`, `execl`, `execle`, `execlp`)
//! and ending (`exit`, `_exit`, `_Exit`).
//!
//! The `exec*` and exit hooks record before the call, which does not
//! return when it succeeds; a failed `exec*` gets its result recorded too.
//! `envp` is recorded as a pointer: the string area of a record is
//! better spent on `argv`.
//!
//! `vfork` is the runtime's ([`crate::runtime::vfork`]): an assembly shim
//! (a wrapper's frame would be overwritten by the child), after which the
//! child records under its own pid on its parent's thread state. It is
//! not recorded as a call: the child's `getpid`, announced with its
//! parent's pid, is what places it in the tree. `execl`, `execle` and
//! `execlp` take a variadic list, laid out as `argv` by assembly shims
//! ([`crate::runtime::arglist`]) and recorded by [`exec_list`].
//!
//! # Not hooked
//! - `_Fork`, glibc's `fork` without `pthread_atfork` handlers: probity
//!   refreshes its cached pid and tid in such a handler, so a record made
//!   in the child would carry the parent's.

use std::ffi::{c_char, c_int, c_void};

use libc::{pid_t, posix_spawn_file_actions_t, posix_spawnattr_t, FILE};

use crate::hook;
use crate::runtime::arglist::{EXECL, EXECLE, EXECLP};
use crate::runtime::Real;

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

/// Records `execl`, `execlp` or `execle` (`which`, see
/// [`crate::runtime::arglist`]) with the list as `argv`, then runs it as
/// `execv`, `execvp` or `execve`, which do what glibc's list forms do
/// (glibc builds the same array and calls them).
///
/// # Safety
/// `argv` is the caller's NULL-terminated list, followed by `envp` for
/// `execle`.
pub(crate) unsafe extern "C" fn exec_list(path: *const c_char, argv: *const *const c_char, which: c_int) -> c_int {
    type Exec = unsafe extern "C" fn(*const c_char, *const *const c_char) -> c_int;
    type ExecEnv = unsafe extern "C" fn(*const c_char, *const *const c_char, *const *const c_char) -> c_int;
    static EXECV: Real<Exec> = Real::new(c"execv");
    static EXECVP: Real<Exec> = Real::new(c"execvp");
    static EXECVE: Real<ExecEnv> = Real::new(c"execve");
    let name = match which {
        EXECLP => "execlp",
        EXECLE => "execle",
        EXECL => "execl",
        _ => "execl",
    };
    // SAFETY: the list ends with NULL (the caller's promise), and `envp`
    // follows it for `execle`.
    let envp = (which == EXECLE).then(|| unsafe {
        let mut p = argv;
        while !(*p).is_null() {
            p = p.add(1);
        }
        (*p.add(1)).cast::<*const c_char>()
    });
    let pending = crate::runtime::Call::begin().map(|call| {
        call.before(name, |rec| {
            // SAFETY: the caller's path and list.
            unsafe { rec.str(path).str_list(argv) };
            if let Some(envp) = envp {
                rec.ptr(envp);
            }
        })
    });
    // SAFETY: libc's functions with their own types and the caller's
    // arguments.
    let ret = unsafe {
        match (which, envp) {
            (_, Some(envp)) => EXECVE.get()(path, argv, envp),
            (EXECLP, None) => EXECVP.get()(path, argv),
            _ => EXECV.get()(path, argv),
        }
    };
    if let Some(p) = pending {
        p.result(name, crate::runtime::AsRet::as_ret(&ret));
    }
    ret
}
