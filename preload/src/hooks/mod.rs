//! The built-in hooks, one module per family. Each records the call with
//! its decoded arguments, result and errno; the harness links it to the
//! syscalls it made.

mod env;
mod files;
mod net;
pub(crate) mod process;
pub(crate) mod syscall;
