//! The `syscall(3)` wrapper: the calls made through it that start a
//! process, replace its image, reach the network, receive descriptors or
//! set up io_uring are recorded
//! ([`crate::hooks::syscall`]); every other number goes straight to libc.
//!
//! The dispatch is assembly and jumps (it never calls), so a call it
//! passes on runs with the caller's own stack and return address, as if
//! unhooked. That matters for `SYS_vfork`, and for `SYS_clone` with
//! `CLONE_VM` or `CLONE_VFORK`: a child sharing the caller's memory
//! would overwrite the frame of a wrapper written in Rust. Those, and
//! `SYS_clone3` (its flags are in a structure), are passed on unrecorded.

use std::ffi::{c_long, c_void};
use std::sync::atomic::{AtomicPtr, Ordering};

/// libc's `syscall`, once resolved (at load, see [`resolve`]).
pub(crate) static REAL: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());

/// Resolves libc's `syscall` while the library loads, so the dispatch can
/// jump to it from the first call. `dlsym` allocates only on failure.
pub(crate) fn resolve() {
    // SAFETY: a NUL-terminated name; RTLD_NEXT is valid in a shared object.
    let p = unsafe { libc::dlsym(libc::RTLD_NEXT, c"syscall".as_ptr()) };
    REAL.store(p, Ordering::Release);
}

/// `syscall(3)`: see the module docs. The numbers the recording side
/// handles jump to it with the arguments as they came.
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn syscall(number: c_long) -> c_long {
    core::arch::naked_asm!(
        "cmp rdi, {execve}",
        "je 2f",
        "cmp rdi, {execveat}",
        "je 2f",
        "cmp rdi, {connect}",
        "je 2f",
        "cmp rdi, {sendto}",
        "je 2f",
        "cmp rdi, {sendmsg}",
        "je 2f",
        "cmp rdi, {sendmmsg}",
        "je 2f",
        "cmp rdi, {recvmsg}",
        "je 2f",
        "cmp rdi, {recvmmsg}",
        "je 2f",
        "cmp rdi, {pidfd_getfd}",
        "je 2f",
        "cmp rdi, {fork}",
        "je 2f",
        "cmp rdi, {io_uring_setup}",
        "je 2f",
        "cmp rdi, {clone}",
        "jne 1f",
        "test rsi, {shared}",
        "jz 2f",
        "1:",
        "mov rax, qword ptr [rip + {real}]",
        "test rax, rax",
        // Not resolved yet: the recording side resolves it and passes on.
        "jz 2f",
        "jmp rax",
        "2:",
        "jmp {record}",
        execve = const libc::SYS_execve,
        execveat = const libc::SYS_execveat,
        connect = const libc::SYS_connect,
        sendto = const libc::SYS_sendto,
        sendmsg = const libc::SYS_sendmsg,
        sendmmsg = const libc::SYS_sendmmsg,
        recvmsg = const libc::SYS_recvmsg,
        recvmmsg = const libc::SYS_recvmmsg,
        pidfd_getfd = const libc::SYS_pidfd_getfd,
        fork = const libc::SYS_fork,
        io_uring_setup = const libc::SYS_io_uring_setup,
        clone = const libc::SYS_clone,
        shared = const libc::CLONE_VM | libc::CLONE_VFORK,
        real = sym REAL,
        record = sym crate::hooks::syscall::record,
    )
}
