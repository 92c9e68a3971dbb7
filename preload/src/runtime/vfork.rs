//! `vfork` without corrupting the caller.
//!
//! The child of `vfork` runs on its parent's stack and thread-local state
//! until it execs or exits. A wrapper written in Rust (or C) would have its
//! frame, return address included, overwritten by the child, so this one
//! is assembly, as glibc's is: it keeps the return address in a register
//! across the syscall. Before the syscall it marks the thread as "in a
//! vfork child"; since the child shares that thread-local state, its calls
//! (`execve`, `_exit`) are not recorded under the parent's ids. The parent
//! clears the mark when it resumes. The kernel tracer still sees the child.

use super::thread::state;

extern "C" fn enter() {
    state().in_vfork.set(true);
}

extern "C" fn leave() {
    state().in_vfork.set(false);
}

extern "C" fn fail(ret: i64) -> libc::pid_t {
    // SAFETY: this thread's errno.
    unsafe { *super::errno_ptr() = (-ret) as libc::c_int };
    -1
}

/// `vfork(2)`, passed through (see the module docs).
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vfork() -> libc::pid_t {
    core::arch::naked_asm!(
        // Keep the stack 16-byte aligned for the calls.
        "sub rsp, 8",
        "call {enter}",
        "add rsp, 8",
        // The return address leaves the stack the child will reuse.
        "pop rdi",
        "mov eax, {nr}",
        "syscall",
        "push rdi",
        "test rax, rax",
        // The child returns 0 at once, still marked.
        "jz 2f",
        "push rax",
        "call {leave}",
        "pop rax",
        "cmp rax, -4095",
        "jae 3f",
        "2:",
        "ret",
        "3:",
        "mov rdi, rax",
        "sub rsp, 8",
        "call {fail}",
        "add rsp, 8",
        "ret",
        enter = sym enter,
        leave = sym leave,
        fail = sym fail,
        nr = const libc::SYS_vfork,
    )
}
