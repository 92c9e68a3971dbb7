//! One module per probe family.

mod net;
mod process;
mod syscalls;
