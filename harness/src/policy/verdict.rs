//! What a policy found in a run, per unit: the bill of materials
//! (`bom.json`, schema in `docs/ci-gating.md`) and the violations.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::model::Mode;
use super::unit::Unit;

/// The schema of [`Verdict`]'s JSON, `bom.json`: bumped when a field
/// changes meaning or goes away (adding one does not).
pub const BOM_SCHEMA: &str = "probity-bom/1";

/// Which rule a finding breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Rule {
    /// A connect or send to an endpoint the policy does not allow, or any
    /// network access where it allows none.
    #[serde(rename = "probity/unexpected-connect")]
    UnexpectedConnect,
    /// An exec of a program the policy does not allow.
    #[serde(rename = "probity/unexpected-exec")]
    UnexpectedExec,
    /// A change to a file outside the allowed roots.
    #[serde(rename = "probity/write-outside-allowed")]
    WriteOutsideAllowed,
    /// Something the policy gates happened, or may have, where the trace
    /// cannot tell: the gate fails closed.
    #[serde(rename = "probity/undecided")]
    Undecided,
}

impl Rule {
    /// The rule's id, as SARIF and annotations name it.
    #[must_use]
    pub fn id(self) -> &'static str {
        match self {
            Rule::UnexpectedConnect => "probity/unexpected-connect",
            Rule::UnexpectedExec => "probity/unexpected-exec",
            Rule::WriteOutsideAllowed => "probity/write-outside-allowed",
            Rule::Undecided => "probity/undecided",
        }
    }
}

/// One violation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Finding {
    /// The rule it breaks.
    pub rule: Rule,
    /// What: `203.0.113.7:443 (example.com)`, `/usr/bin/curl`, a path.
    pub subject: String,
    /// The subject as it stays from run to run and machine to machine
    /// (`example.com:443`, `<workspace>/generated/x`): what SARIF
    /// fingerprints and baselines compare.
    #[serde(default)]
    pub key: String,
    /// Why, in a sentence.
    pub message: String,
    /// The process, and the time from the trace's start in nanoseconds.
    pub pid: u32,
    /// When, in nanoseconds from the trace's start.
    pub at_ns: u64,
    /// The line of the policy file's list that the event breaks, where
    /// one does (not for `--deny-network`, nor for what is undecided).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_line: Option<usize>,
}

/// A host a unit contacted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Host {
    /// The names it was resolved from: by sources the program could not
    /// steer, else the program's own lookup (then `claimed`).
    pub names: Vec<String>,
    /// The names come only from the program's own account.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub claimed: bool,
    /// The address.
    pub ip: IpAddr,
    /// The port.
    pub port: u16,
    /// `tcp` or `udp`, when a network event named it.
    pub protocol: Option<String>,
    /// Bytes sent, as the kernel counted them.
    pub bytes_sent: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Connects and sends to it.
    pub count: u64,
    /// The policy allows it.
    pub allowed: bool,
}

/// A program a unit exec'd.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProgramRun {
    /// The path the kernel exec'd.
    pub path: String,
    /// The argv of its first exec.
    pub argv: Vec<String>,
    /// How many times.
    pub count: u64,
    /// The policy allows it.
    pub allowed: bool,
}

/// A file a unit changed outside the allowed roots (`$TMP` and
/// `$TARGET` when the policy names none).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Write {
    /// The path.
    pub path: String,
    /// Its folder: what a baseline compares.
    pub root: String,
    /// How many changes.
    pub count: u64,
    /// The policy allows it (it does not gate writes).
    pub allowed: bool,
}

/// Something the trace cannot decide.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Undecided {
    /// `network` or `write`.
    pub kind: String,
    /// The process.
    pub pid: u32,
    /// Why it cannot be decided.
    pub why: String,
}

/// One unit's bill of materials and violations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UnitReport {
    /// The unit's stable key ([`Unit::id`]).
    pub id: String,
    /// What it is.
    pub unit: Unit,
    /// Hosts it contacted.
    pub hosts: Vec<Host>,
    /// Programs it exec'd.
    pub programs: Vec<ProgramRun>,
    /// Files it changed outside the allowed roots.
    pub writes: Vec<Write>,
    /// What could not be decided, and why.
    pub undecided: Vec<Undecided>,
    /// The violations.
    pub violations: Vec<Finding>,
}

/// What a policy found in one run: `bom.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Verdict {
    /// [`BOM_SCHEMA`].
    pub schema: String,
    /// Whether violations fail the run.
    pub mode: Mode,
    /// The policy file, if one was read.
    pub policy: Option<String>,
    /// Why nothing could be shown absent in this run (events were lost),
    /// whatever the unit.
    pub undecided: Vec<String>,
    /// Each unit, the command first, then by id.
    pub units: Vec<UnitReport>,
}

impl Verdict {
    /// Whether any unit broke the policy, or something it gates could not
    /// be decided.
    #[must_use]
    pub fn violated(&self) -> bool {
        !self.undecided.is_empty() || self.units.iter().any(|u| !u.violations.is_empty())
    }

    /// Whether the run fails: a violation in enforce mode.
    #[must_use]
    pub fn fails(&self) -> bool {
        self.mode == Mode::Enforce && self.violated()
    }

    /// Each violation with its unit.
    pub fn findings(&self) -> impl Iterator<Item = (&UnitReport, &Finding)> {
        self.units.iter().flat_map(|u| u.violations.iter().map(move |f| (u, f)))
    }

    /// The verdict as `bom.json` holds it.
    ///
    /// # Errors
    ///
    /// When the writer fails.
    pub fn write_json(&self, w: impl std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(w, self).map_err(std::io::Error::from)
    }
}
