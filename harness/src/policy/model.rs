//! A policy as probity holds it: a mode, the rules for every unit, and the
//! overrides that widen them for some tests or programs.

use std::ffi::OsStr;

use globset::GlobMatcher;
use serde::{Deserialize, Serialize};

use super::endpoint::Endpoint;
use super::programs::Program;
use super::roots::Root;
use super::unit::Unit;

/// Whether a violation fails the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Report violations; the run keeps the command's status.
    Audit,
    /// Report violations and fail the run (`probity run` exits 121).
    #[default]
    Enforce,
}

/// What the network may reach.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum Network {
    /// Not gated.
    #[default]
    Any,
    /// No network access at all (`--deny-network`): no internet socket,
    /// no address in any call.
    Nothing,
    /// Sends and connects only to these.
    Only(Vec<Endpoint>),
    /// Sends and connects only where both lists allow: a policy file's
    /// `network.allow` (with its overrides) and `--allow-connect`.
    Both(Vec<Endpoint>, Vec<Endpoint>),
}

impl Network {
    /// These rules with `ceiling` (the command line's) also applied: what
    /// passes must pass both.
    fn within(&self, ceiling: &Network) -> Network {
        match (self, ceiling) {
            (n, Network::Any) => n.clone(),
            (Network::Any, c) => c.clone(),
            (Network::Nothing, _) | (_, Network::Nothing) => Network::Nothing,
            (Network::Only(a) | Network::Both(a, _), Network::Only(b) | Network::Both(_, b)) => {
                Network::Both(a.clone(), b.clone())
            }
        }
    }
}

/// The rules one event is judged by.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Rules {
    pub network: Network,
    /// Programs that may be exec'd; `None`: any.
    pub exec_allow: Option<Vec<Program>>,
    /// Programs that may never be exec'd.
    pub exec_deny: Vec<Program>,
    /// Where files may be changed; `None`: not gated.
    pub write_allow: Option<Vec<Root>>,
    /// Where in the policy file each list is, for reports to point at.
    pub lines: Lines,
}

/// The line (from 1) of each list in the policy file, where it has one:
/// the base rules', or an override's when the base has none.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Lines {
    pub network: Option<usize>,
    pub exec_allow: Option<usize>,
    pub exec_deny: Option<usize>,
    pub write_allow: Option<usize>,
}

impl Rules {
    /// These rules widened by an override's: its lists are added.
    fn widened(&self, by: &Rules) -> Rules {
        let mut r = self.clone();
        r.network = match (&self.network, &by.network) {
            (n, Network::Any) => n.clone(),
            (Network::Only(a), Network::Only(b)) => Network::Only(a.iter().chain(b).cloned().collect()),
            (_, b) => b.clone(),
        };
        if let Some(more) = &by.exec_allow {
            r.exec_allow = Some(self.exec_allow.iter().flatten().chain(more).cloned().collect());
        }
        r.exec_deny.extend(by.exec_deny.iter().cloned());
        if let Some(more) = &by.write_allow {
            r.write_allow = Some(self.write_allow.iter().flatten().chain(more).cloned().collect());
        }
        r.lines = Lines {
            network: self.lines.network.or(by.lines.network),
            exec_allow: self.lines.exec_allow.or(by.lines.exec_allow),
            exec_deny: self.lines.exec_deny.or(by.lines.exec_deny),
            write_allow: self.lines.write_allow.or(by.lines.write_allow),
        };
        r
    }
}

/// Which events an override is for.
#[derive(Clone, Debug)]
pub(crate) enum Selector {
    /// Tests whose name matches.
    Test(GlobMatcher),
    /// Events of a process running a matching program, or under one.
    Program(Program),
}

/// Rules added for some tests or programs.
#[derive(Clone, Debug)]
pub(crate) struct Override {
    pub selector: Selector,
    pub rules: Rules,
}

/// A gate for CI: which hosts, programs and write roots each unit of a
/// run (a test, a test binary, a build step) may use, and whether a
/// violation fails the run. Read from `probity.toml` (see
/// `docs/ci-gating.md`), or made from `--deny-network` and
/// `--allow-connect`.
///
/// ```
/// let policy = probity::policy::Policy::parse(
///     "mode = \"audit\"\n[network]\nallow = [\"localhost:8080\"]\n",
///     "probity.toml".as_ref(),
/// )?;
/// assert_eq!(policy.mode(), probity::policy::Mode::Audit);
/// # Ok::<(), probity::policy::PolicyError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Policy {
    pub(crate) mode: Mode,
    pub(crate) base: Rules,
    pub(crate) overrides: Vec<Override>,
    /// The file it was read from, if any.
    pub(crate) origin: Option<std::path::PathBuf>,
    /// The command line's network rule, which no override widens.
    pub(crate) ceiling: Network,
}

impl Policy {
    /// Whether a violation fails the run.
    #[must_use]
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The same policy with another mode (`--audit`).
    #[must_use]
    pub fn with_mode(mut self, mode: Mode) -> Policy {
        self.mode = mode;
        self
    }

    /// The file the policy was read from.
    #[must_use]
    pub fn origin(&self) -> Option<&std::path::Path> {
        self.origin.as_deref()
    }

    /// A policy that gates nothing, in audit mode: for the bill of
    /// materials and the baseline alone.
    ///
    /// ```
    /// assert_eq!(probity::policy::Policy::nothing().mode(), probity::policy::Mode::Audit);
    /// ```
    #[must_use]
    pub fn nothing() -> Policy {
        Policy { mode: Mode::Audit, base: Rules::default(), overrides: Vec::new(), origin: None, ceiling: Network::Any }
    }

    /// The policy `--deny-network` (no network at all) or `--allow-connect
    /// LIST` (addresses, blocks and names, any port) stand for; `None`
    /// when neither is given. An entry that is not an address, block or
    /// name is an error, naming it.
    pub fn from_network_flags(deny_network: bool, allow_connect: &[String]) -> Result<Option<Policy>, String> {
        let network = if deny_network {
            Network::Nothing
        } else if allow_connect.is_empty() {
            return Ok(None);
        } else {
            Network::Only(allow_connect.iter().map(|a| Endpoint::any_port(a)).collect::<Result<_, _>>()?)
        };
        let base = Rules { network, ..Rules::default() };
        Ok(Some(Policy { mode: Mode::Enforce, base, overrides: Vec::new(), origin: None, ceiling: Network::Any }))
    }

    /// This policy with `other`'s network rule added to every unit's (the
    /// flags given beside a policy file): both must pass, and no override
    /// of the file widens what the flags allow.
    #[must_use]
    pub fn and_network_of(mut self, other: &Policy) -> Policy {
        self.ceiling = self.ceiling.within(&other.base.network);
        self
    }

    /// The rules for an event of `unit`, in a process whose program or an
    /// ancestor's is one of `programs`.
    pub(crate) fn rules_for<'a>(&self, unit: &Unit, programs: impl Iterator<Item = &'a OsStr> + Clone) -> Rules {
        let mut r = self.base.clone();
        for o in &self.overrides {
            let applies = match &o.selector {
                Selector::Test(g) => unit.test_name().is_some_and(|n| g.is_match(n)),
                Selector::Program(p) => programs.clone().any(|x| p.matches(x)),
            };
            if applies {
                r = r.widened(&o.rules);
            }
        }
        r.network = r.network.within(&self.ceiling);
        r
    }
}
