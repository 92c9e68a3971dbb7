//! Networking: what probity makes of a traced program's connections,
//! datagrams and name lookups.
//!
//! The flow: the kernel's TCP records are numbered into connections
//! ([`tcp`]) and UDP datagrams are derived from the syscalls that carry
//! them ([`udp`], which follows each process's descriptors with
//! [`crate::fds`]), both while records are decoded; datagrams to or from
//! port 53 are read as DNS ([`dns`](mod@dns)); once the events are
//! merged, network events get the host names the program resolved
//! before them ([`hosts`]). Queries and assertions compare addresses
//! through [`canonical`].

pub(crate) mod dns;
pub(crate) mod hosts;
pub(crate) mod tcp;
pub(crate) mod udp;

pub use dns::dns;
pub(crate) use hosts::{canonical, HostLinker};
pub(crate) use tcp::Connections;
pub(crate) use udp::Datagrams;
