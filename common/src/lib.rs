//! The binary layout of every record probity's tracers write.
//!
//! The eBPF programs in `harness-ebpf/` write these structs into a BPF ring
//! buffer, and the harness reads them back with [`Record::parse`]. Every
//! struct is `#[repr(C)]`, `Copy`, made of explicit-width integers and
//! fixed-size arrays (no `bool`, no implicit padding), and its size is pinned
//! by a `const` assertion, so both sides agree byte for byte.
//!
//! A record is an [`EventHeader`] followed by the body its [`EventKind`]
//! names. Syscall records may carry up to [`MAX_CAPTURES`] captured payloads
//! (a path, a buffer, a socket address) after the fixed body.
//!
//! The files follow the families: `records/` holds one file per record
//! family, `session.rs` a session's settings and loss counters, `spec.rs`
//! the syscall spec table, `knobs.rs` the settings a user picks and
//! their bounds, and `shm/` the preload library's ring. Behind
//! the `user` feature, `parse.rs` reads records back and `user.rs` lets
//! aya carry the map types.
//!
//! # Example
//! ```
//! use probity_common::{EventHeader, EventKind, ExitEvent, Record};
//!
//! let ev = ExitEvent {
//!     header: EventHeader::new(EventKind::Exit, 1, 10, 42, 42),
//!     group_dead: 1,
//!     _pad: 0,
//! };
//! let bytes = probity_common::as_bytes(&ev);
//! match Record::parse(bytes) {
//!     Ok(Record::Exit(e)) => assert_eq!(e.header.tid, 42),
//!     _ => unreachable!(),
//! }
//! ```
//!
//! # Known limitations
//! - The layout is little-endian and tied to one build of the eBPF object;
//!   it is not a stable on-disk format (saved traces are JSON).
#![no_std]

mod knobs;
mod records;
mod session;
mod spec;

pub use knobs::*;
pub use records::*;
pub use session::*;
pub use spec::*;

#[cfg(feature = "user")]
mod parse;
#[cfg(feature = "user")]
mod user;

#[cfg(feature = "user")]
pub use parse::*;

// The preload ring needs 64-bit atomics, which the eBPF target lacks (and
// the eBPF programs do not use it).
#[cfg(not(target_arch = "bpf"))]
pub mod shm;
