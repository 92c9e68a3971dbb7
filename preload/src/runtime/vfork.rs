//! `vfork` without corrupting the caller, and with the child's calls
//! recorded under its own pid.
//!
//! The child of `vfork` runs on its parent's stack and thread-local state
//! until it execs or exits. A wrapper written in Rust (or C) would have its
//! frame, return address included, overwritten by the child, so this one
//! is assembly, as glibc's is: it keeps the return address in a register
//! across the syscall. Before the syscall it marks the thread as "in a
//! vfork child", so nothing is recorded in the window where the child
//! runs with its parent's cached ids. The child then learns its pid (one
//! `getpid`, announced as the library's, with `ATTACH_VFORK_CHILD`) and
//! keeps it in the shared thread state: its calls (`dup2`, `execve`,
//! `_exit`) are recorded under it. Its records go to the shared ring as
//! any process's do; its writes to the thread state (the pid, the ring
//! hint, the recording flag, errno saved and restored) are all the parent
//! would find, and the parent clears the mark and the pid when it
//! resumes, after the child has exec'd or exited.

use probity_common::shm::ATTACH_VFORK_CHILD;

use super::thread::state;

extern "C" fn enter() {
    let t = state();
    t.in_vfork.set(true);
    t.vfork_child.set(0);
}

extern "C" fn leave() {
    let t = state();
    t.vfork_child.set(0);
    t.in_vfork.set(false);
}

/// Runs in the child, on its parent's stack below the parent's frame.
extern "C" fn child() {
    if super::ring::ring().is_none() {
        return;
    }
    let t = state();
    let start = super::now_ns();
    // SAFETY: no arguments; glibc asks the kernel (it caches no pid).
    let pid = unsafe { libc::getpid() } as u32;
    t.vfork_child.set(pid);
    super::ring::announce(t, start, pid, pid, ATTACH_VFORK_CHILD);
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
        "jz 4f",
        "push rax",
        "call {leave}",
        "pop rax",
        "cmp rax, -4095",
        "jae 3f",
        "ret",
        // The child learns its pid, then returns 0.
        "4:",
        "sub rsp, 8",
        "call {child}",
        "add rsp, 8",
        "xor eax, eax",
        "ret",
        "3:",
        "mov rdi, rax",
        "sub rsp, 8",
        "call {fail}",
        "add rsp, 8",
        "ret",
        enter = sym enter,
        leave = sym leave,
        child = sym child,
        fail = sym fail,
        nr = const libc::SYS_vfork,
    )
}
