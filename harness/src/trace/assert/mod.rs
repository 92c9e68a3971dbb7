//! Expectations about a trace that explain themselves when they fail.
//!
//! Each check comes twice: `check_*` returns `Result<(), Violation>`, and
//! `assert_*` panics with the violation's message at the caller's line.
//! A failure names the expectation, lists the events that break it (or,
//! when something is missing, the events closest to it) with their process,
//! time and arguments, and shows the trace around the first one.
//!
//! An expectation that something did not happen is never met by default:
//! it fails, saying why, when events were lost, when a process it is about
//! was not covered by a tracer that sees that kind of event, or when an
//! event's path could not be resolved to tell whether it matches.

mod absence;
mod blind_spots;
mod calls;
mod changes;
mod counts;
mod destination;
mod dns;
mod execs;
mod files;
mod network;
pub(crate) mod observed;
mod order;
mod queries;
mod render;
mod sockets;
mod violation;

pub use violation::{Violation, ViolationKind};
