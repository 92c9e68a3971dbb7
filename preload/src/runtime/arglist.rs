//! `execl`, `execle` and `execlp`: their arguments are a variadic list,
//! which a Rust function cannot take, so these shims in assembly lay the
//! list out as the `argv` array it already is and hand it to the
//! recording code ([`crate::hooks::process::exec_list`]).
//!
//! On x86_64 the first six integer arguments come in registers and the
//! rest on the stack, just above the return address. Each shim moves the
//! return address off the stack and pushes the five argument registers
//! after `path` in its place: they then sit right below the arguments
//! passed on the stack, and the whole list, up to its NULL (and `envp`
//! after it, for `execle`), is one array. The return address is pushed
//! below it and put back when the call returns (only a failed exec does).
//! Only caller-saved registers are touched.

use std::ffi::{c_char, c_int};

/// Which function a list came to: what is recorded and what runs.
pub(crate) const EXECL: c_int = 0;
pub(crate) const EXECLP: c_int = 1;
pub(crate) const EXECLE: c_int = 2;

/// Lays out the list and calls `exec_list(path, argv, which)`.
macro_rules! list_shim {
    ($name:ident, $which:expr, $doc:literal) => {
        #[doc = $doc]
        #[cfg(target_arch = "x86_64")]
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(path: *const c_char, arg0: *const c_char) -> c_int {
            core::arch::naked_asm!(
                "pop r11",
                "push r9",
                "push r8",
                "push rcx",
                "push rdx",
                "push rsi",
                // The stack is 16-byte aligned again at the call.
                "push r11",
                "lea rsi, [rsp + 8]",
                "mov edx, {which}",
                "call {record}",
                "pop r11",
                "add rsp, 40",
                "push r11",
                "ret",
                which = const $which,
                record = sym crate::hooks::process::exec_list,
            )
        }
    };
}

list_shim!(execl, EXECL, "`execl(3)`: recorded as `execl` with its list as `argv`, then run as `execv`.");
list_shim!(execlp, EXECLP, "`execlp(3)`: recorded as `execlp`, then run as `execvp`.");
list_shim!(execle, EXECLE, "`execle(3)`: recorded as `execle` with `envp` (after the NULL), then run as `execve`.");
