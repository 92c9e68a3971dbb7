//! The merge stage: what the tracers collected becomes one [`Trace`]
//! timeline and its [`Outcome`].
//!
//! [`order`] sorts both tracers' events into start order and links each
//! call to the libc call it was made in; [`finish`] is the end of a run
//! (the cuts, coverage, probity's own syscalls, the links and the host
//! names) and builds the outcome; host names come from
//! [`crate::net::HostLinker`].
//!
//! [`Trace`]: crate::Trace
//! [`Outcome`]: crate::Outcome

mod finish;
mod order;

pub(crate) use finish::{finish, Collected, KernelEnd, PreloadEnd};
pub use order::depth;
pub(crate) use order::{sort, Linker};
