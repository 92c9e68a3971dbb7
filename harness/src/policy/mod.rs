//! CI gating: a policy (`probity.toml`) says which hosts, programs and
//! write roots each unit of a run may use (a test, a test binary, a build
//! step), and [`Policy::check`] judges a trace by it, unit by unit, into a
//! [`Verdict`]: the bill of materials and the violations. Like the other
//! gates it fails closed: what the trace cannot decide is a violation
//! wherever the policy gates it.

mod baseline;
mod check;
mod endpoint;
mod error;
mod file;
mod model;
mod normal;
mod programs;
mod roots;
mod unit;
mod verdict;

pub use baseline::{Baseline, New, Used, BASELINE_SCHEMA};
pub use endpoint::Endpoint;
pub use error::PolicyError;
pub use file::FILE_NAME;
pub use model::{Mode, Policy};
pub use programs::Program;
pub use roots::{Root, Where};
pub use unit::Unit;
pub use verdict::{Finding, Host, ProgramRun, Rule, Undecided, UnitReport, Verdict, Write, BOM_SCHEMA};
