//! The `syscall(3)` wrapper, for the numbers that start a process, replace
//! its image or reach the network: `execve` and `execveat` (recorded
//! before, like the `exec*` functions), `connect`, `sendto`, `sendmsg`,
//! `sendmmsg`, `recvmsg` and `recvmmsg` (for the descriptors a message
//! carries), `pidfd_getfd`, `fork`, `clone` without `CLONE_VM` or `CLONE_VFORK`, and
//! `io_uring_setup` (whose submissions no hook sees, so the harness knows
//! it cannot decide). Each is recorded as a call
//! to `syscall` whose first argument is the number, followed by that
//! syscall's arguments as the libc function of the same name records them.
//! The dispatch ([`crate::runtime::raw_syscall`]) passes every other
//! number straight to libc.
//!
//! A child made by a raw `fork` or `clone` runs no `pthread_atfork`
//! handlers, so this hook marks the cached ids stale in the child itself.

use std::ffi::{c_char, c_long};

use libc::{sockaddr, socklen_t};

use crate::runtime::raw_syscall::REAL;
use crate::runtime::{after_fork_in_child, AsRet, Call, Real, Rec};

type Syscall = unsafe extern "C" fn(c_long, c_long, c_long, c_long, c_long, c_long, c_long) -> c_long;

/// Records a call to `syscall` the dispatch handed over. Declared with
/// the number and six arguments, which the x86_64 calling convention
/// passes as the variadic C function receives them (the sixth on the
/// stack, where the caller put it: the dispatch jumps here).
///
/// # Safety
/// The arguments are the caller's, for the syscall `nr`.
pub(crate) unsafe extern "C" fn record(
    nr: c_long,
    a1: c_long,
    a2: c_long,
    a3: c_long,
    a4: c_long,
    a5: c_long,
    a6: c_long,
) -> c_long {
    static LIBC: Real<Syscall> = Real::new(c"syscall");
    // SAFETY: libc's `syscall`, with its type.
    let real = unsafe { LIBC.get() };
    if REAL.load(std::sync::atomic::Ordering::Relaxed).is_null() {
        crate::runtime::raw_syscall::resolve();
    }
    let call = match nr {
        libc::SYS_execve
        | libc::SYS_execveat
        | libc::SYS_connect
        | libc::SYS_sendto
        | libc::SYS_sendmsg
        | libc::SYS_sendmmsg
        | libc::SYS_recvmsg
        | libc::SYS_recvmmsg
        | libc::SYS_pidfd_getfd
        | libc::SYS_fork
        | libc::SYS_io_uring_setup => Call::begin(),
        libc::SYS_clone if a1 & c_long::from(libc::CLONE_VM | libc::CLONE_VFORK) == 0 => Call::begin(),
        _ => None,
    };
    // SAFETY: the caller's call, passed on unchanged.
    let run = || unsafe { real(nr, a1, a2, a3, a4, a5, a6) };
    let Some(call) = call else { return run() };
    let ptr = |v: c_long| v as usize as *const c_char;
    match nr {
        libc::SYS_execve | libc::SYS_execveat => {
            let args = |rec: &mut Rec| {
                rec.int(nr);
                // SAFETY: the kernel reads these as a path, a NULL-terminated
                // list and a pointer; a caller passing anything else gets
                // EFAULT from it, and the recording code, like any hook,
                // reads what it was given.
                unsafe {
                    if nr == libc::SYS_execve {
                        rec.str(ptr(a1)).str_list(ptr(a2).cast()).ptr(ptr(a3));
                    } else {
                        rec.fd(a1 as i32).str(ptr(a2)).str_list(ptr(a3).cast()).ptr(ptr(a4)).at_flags(a5 as i32);
                    }
                }
            };
            let pending = call.before("syscall", args);
            let ret = run();
            pending.result("syscall", (ret as libc::c_int).as_ret());
            ret
        }
        _ => {
            let ret = run();
            if ret == 0 && (nr == libc::SYS_fork || nr == libc::SYS_clone) {
                after_fork_in_child();
            }
            call.after("syscall", |rec| {
                rec.int(nr);
                // SAFETY: as above: the caller's socket address and length,
                // or message headers.
                unsafe {
                    match nr {
                        libc::SYS_connect => {
                            rec.fd(a1 as i32).sockaddr(ptr(a2).cast::<sockaddr>(), a3 as socklen_t);
                        }
                        libc::SYS_sendto => {
                            rec.fd(a1 as i32).ptr(ptr(a2)).uint(a3 as u64).hex(a4 as u32);
                            rec.sockaddr(ptr(a5).cast::<sockaddr>(), a6 as socklen_t);
                        }
                        libc::SYS_sendmsg => super::net::sent_msg(rec, a1 as i32, ptr(a2).cast(), a3 as i32, ret),
                        libc::SYS_sendmmsg => {
                            super::net::sent_mmsg(rec, a1 as i32, ptr(a2).cast(), a3 as u32, a4 as i32, ret);
                        }
                        libc::SYS_recvmsg => super::net::received_msg(rec, a1 as i32, ptr(a2).cast(), a3 as i32, ret),
                        libc::SYS_recvmmsg => {
                            super::net::received_mmsg(rec, a1 as i32, ptr(a2).cast(), a3 as u32, a4 as i32, ret);
                        }
                        libc::SYS_pidfd_getfd => {
                            rec.fd(a1 as i32).int(a2).hex(a3 as u32);
                        }
                        libc::SYS_clone => {
                            rec.hex(a1 as u64);
                        }
                        libc::SYS_io_uring_setup => {
                            rec.uint(a1 as u64).ptr(ptr(a2));
                        }
                        _ => {}
                    }
                }
                rec.ret_int(ret);
            });
            ret
        }
    }
}
