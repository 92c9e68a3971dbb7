//! probity's `LD_PRELOAD` library: libc calls of a traced process, recorded
//! into the harness's shared-memory ring with their arguments, result,
//! errno and timing, on the same clock as the kernel tracer.
//!
//! The harness preloads `libprobity_preload.so` and names its ring in
//! `PROBITY_PRELOAD_RING`; without that variable every hook calls straight
//! through. Built-in hooks live in [`hooks`], one module per family; each is
//! written with [`hook`], which a crate can use to hook its own functions:
//!
//! ```ignore
//! use std::ffi::{c_char, c_int};
//! use probity_preload::hook;
//!
//! /// `mylib_connect(3)`, from the crate's own C library.
//! #[hook]
//! unsafe extern "C" fn mylib_connect(host: *const c_char, port: c_int) -> c_int {
//!     rec.str(host).int(port).ret_int(ret);
//! }
//! ```
//!
//! # What it changes in the traced program
//! Nothing the program does itself: it needs only libc (the unwinder is
//! linked in, see `build.rs`), allocates nothing (glibc's `malloc` starts
//! when the program first calls it, as untraced), and the harness cuts
//! every syscall made for it from the trace: the loader's, mapping it (by
//! its path and extent); its set-up and each thread's learning of its ids
//! (`getpid`, `gettid`), by the windows it announces; its waits for room
//! in the ring, by the ring's address.
//!
//! # Known limitations
//! - `send`, `write` and `writev` on a socket are not recorded: their
//!   destination is the socket's `connect` (or `accept`), which is.
//! - Statically linked and setuid programs do not load preload libraries;
//!   the harness marks such processes as not covered by this layer.
//! - A program that clears its environment before exec'ing loses the
//!   preload for the new image (marked likewise).
//! - Calls made inside probity's own recording code (a signal handler that
//!   interrupts it) are counted as skipped, not recorded.
//! - A program that makes syscalls with the syscall instruction itself
//!   (not through libc's `syscall()`), or through io_uring, is not seen
//!   doing so. Through `syscall()`, only `execve`, `execveat`, `connect`,
//!   `sendto`, `sendmsg`, `sendmmsg`, `recvmsg`, `recvmmsg`,
//!   `pidfd_getfd`, `fork`, a
//!   `clone` sharing no memory and `io_uring_setup` are recorded; a raw
//!   `vfork`, a `clone` with `CLONE_VM` or `CLONE_VFORK`, and `clone3`
//!   are passed on unrecorded, as their children share the caller's stack.
//! - The dynamic loader keeps its bookkeeping for this library, as for any
//!   object it loads, in anonymous pages it maps as it needs them: while a
//!   program is being loaded, the loader's anonymous `mmap`s may differ in
//!   size, and now and then by one in number, from an untraced run.

// `#[hook]` expansions name `::probity_preload`, this crate too.
extern crate self as probity_preload;

pub mod hooks;
mod runtime;

pub use probity_macros::hook;
pub use runtime::{ListWriter, Rec};

#[doc(hidden)]
pub mod __private {
    //! What `#[hook]` expansions call. Not a public API.
    pub use crate::runtime::{injected_fault, AsRet, Call, Injectable, Pending, Real, Rec};
}

/// Runs when the library is loaded into a process (and again in each
/// exec'd image): maps the ring if the harness set one up.
extern "C" fn init() {
    runtime::init();
}

#[used]
#[unsafe(link_section = ".init_array")]
static INIT: extern "C" fn() = init;
