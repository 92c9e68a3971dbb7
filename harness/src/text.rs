//! A trace as text, the way `probity run` prints it: strace-like lines for
//! events, the closing lines that say how a run ended, and the `strace -c`
//! style tables of `--summary`.
//!
//! ```no_run
//! use std::process::Command;
//!
//! let trace = probity::Tracer::new().run(Command::new("true"))?;
//! for i in 0..trace.events.len() {
//!     println!("{}", probity::text::nested_line(&trace.events, i));
//! }
//! print!("{}", probity::text::outcome_lines(&trace.outcome));
//! # Ok::<(), probity::Error>(())
//! ```

pub use crate::decode::format_syscall as syscall_line;
pub use crate::render::{
    event_line, libc_summary_table, line_at_depth, nested_line, outcome_lines, summary_table, write_line,
};
