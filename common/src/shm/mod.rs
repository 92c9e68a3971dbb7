//! The shared-memory channel from the preload library to the harness.
//!
//! The harness creates a file (in `/dev/shm`): one page holding a
//! [`RingHeader`], then [`RingHeader::data_bytes`] of records. It names the
//! file in the `PROBITY_PRELOAD_RING` environment variable. Every process
//! that loads the preload library maps it shared, so forks keep writing to
//! the same ring and exec'd images map it again. Both sides map the data
//! area twice, back to back ([`map`]), so a record that runs past the end
//! of the area continues at its start without a copy.
//!
//! Many producers (threads and processes), one consumer, no locks and no
//! syscalls. A record takes whole 64-byte units: a producer claims its
//! units with a compare-and-swap on `head`, writes them, and publishes the
//! record by storing its position (plus one) in the record's first word.
//! The consumer reads records in order, zeroes the first word of every
//! unit it frees (so no stale word can pass for a published record later),
//! and moves `tail`.
//!
//! When the ring is full a producer waits for room, spinning, as long as
//! the consumer shows signs of life (its heartbeat moves) and the harness
//! asked for it (`block`); otherwise, or when the consumer stalls, the
//! record is counted in `lost`. A slow or dead harness therefore cannot
//! block the program for long, and never forever. Everything here is
//! async-signal-safe.
//!
//! The files split that along its parts: `ring.rs` is the ring itself (its
//! header, the producers' side and the sizes), `reader.rs` the consumer's
//! side, `layout.rs` the libc call and attach records the preload library
//! writes into it, and [`map`] how both sides map the ring file.

mod layout;
#[cfg(feature = "mmap")]
pub mod map;
mod reader;
mod ring;
#[cfg(all(test, feature = "mmap"))]
mod tests;
// Runs without `mmap` too, so that Miri can run it.
#[cfg(test)]
mod fuzz;

pub use layout::*;
pub use reader::*;
pub use ring::*;

/// `RingHeader::magic`.
pub const RING_MAGIC: u64 = u64::from_le_bytes(*b"PRBTYRNG");
/// `RingHeader::version`: bumped when the layout changes.
pub const RING_VERSION: u32 = 3;
/// Bytes before the data area: the header, padded to a page so the data
/// area can be mapped on its own.
pub const HEADER_BYTES: usize = 4096;
/// The unit records are made of; records start on a unit.
pub const UNIT: usize = 64;
/// Most bytes of one record, its frame included.
pub const MAX_RECORD: usize = 512;
/// Default bytes of the data area (16 MiB).
pub const RING_DATA_BYTES: usize = 16 << 20;
/// The environment variable naming the ring file.
pub const RING_ENV: &str = "PROBITY_PRELOAD_RING";

/// The environment variable with the libc-level fault-injection rules,
/// one a line: `FUNCTION<TAB>CODE<TAB>FIRST<TAB>LAST<TAB>STEP<TAB>PATTERN`
/// (decimal numbers; an empty pattern matches every call). The library
/// reads at most [`MAX_FAULTS`] rules and ignores a line it cannot read.
pub const FAULTS_ENV: &str = "PROBITY_PRELOAD_FAULTS";

/// Most libc-level fault rules a process takes.
pub const MAX_FAULTS: usize = 8;

/// Longest pattern of a libc-level fault rule, in bytes.
pub const FAULT_PATTERN_LEN: usize = 255;
/// Most bytes of a function name kept in a record.
pub const NAME_LEN: usize = 63;
/// Arguments a record holds.
pub const MAX_ARGS: usize = 6;

/// `RingHeader::clock`: record times are `CLOCK_MONOTONIC` nanoseconds.
pub const CLOCK_MONOTONIC_NS: u32 = 0;
/// `RingHeader::clock`: record times are time-stamp counter ticks
/// (`rdtsc`); the harness converts them to `CLOCK_MONOTONIC` nanoseconds
/// from pairs of readings it takes while it drains. Chosen by the harness
/// only when the kernel's own clock source is that counter.
pub const CLOCK_TSC: u32 = 1;
