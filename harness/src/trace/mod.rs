//! The [`Trace`]: every event of a traced process tree, with what was lost
//! and which tracers were active, and what a test does with it: query it
//! ([`Events`], [`Syscalls`]), check it ([`Violation`]), snapshot it
//! ([`Snapshot`]) and load a saved one back ([`Trace::load`]).
//!
//! The files follow the flow: `model.rs` and `outcome.rs` hold what a
//! trace is, `index.rs` derives the process tree and the file behind every
//! path and descriptor from the raw events, `query.rs` filters on that,
//! `assert/` and `snapshot/` build on queries, and `load.rs` reads
//! `probity run --json` files.

mod assert;
mod attach;
mod classes;
pub(crate) mod index;
mod load;
mod model;
mod outcome;
mod perfetto;
pub(crate) mod query;
mod resolvers;
mod snapshot;
#[cfg(test)]
pub(crate) mod test_support;

pub(crate) use assert::observed;
pub use assert::{Violation, ViolationKind};
pub use attach::{Attach, AttachedProcess, CallUnderWay, OpenDescriptor, SocketKind};
pub use classes::Class;
pub use load::LoadError;
pub use model::{Process, Trace};
pub(crate) use outcome::is_zero;
pub use outcome::{LibcStart, LibcStartKind, LibcStarts, Losses, Outcome, SyscallCount};
pub use query::{Events, Syscalls};
pub use resolvers::Resolution;
pub(crate) use snapshot::Filters;
pub use snapshot::Snapshot;

pub use crate::coverage::{TracerKind, Uncovered};
