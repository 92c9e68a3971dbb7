//! The probity daemon: a privileged service that keeps the eBPF programs
//! loaded and serves sessions to users who may not load them, and the
//! client side that uses it.
//!
//! - [`protocol`]: the frames and messages on its Unix socket;
//! - `server.rs`: the daemon ([`Daemon`]), who may connect and what each
//!   session may touch, with `peer.rs` (the kernel's word on who is at
//!   the other end of a socket) and `outbox.rs` (a session's bounded
//!   queue of records to its client);
//! - `client.rs`: a session served by the daemon, as the tracer uses it;
//! - `route.rs`: which way a process traces (see [`ENV`]): in-process when it
//!   has the privileges, through the daemon when it has not.

mod client;
mod outbox;
pub(crate) mod peer;
pub mod protocol;
mod route;
mod server;

pub(crate) use client::{RemoteSession, REFUSED_ERRNO};
pub(crate) use outbox::Outbox;
pub use route::{describe_route, DEFAULT_SOCKET, ENV};
pub(crate) use route::{route, Route};
pub use server::{Daemon, DaemonConfig, Limits};
