//! One module per probe family.

mod process;
mod syscalls;
