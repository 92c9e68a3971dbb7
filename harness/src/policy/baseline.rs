//! A baseline: what each unit used in a run that was accepted (its hosts,
//! programs and write roots), normalised as snapshots are, so that a later
//! run fails only on what is new.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::normal::Normal;
use super::roots::Where;
use super::verdict::Verdict;

/// The schema of [`Baseline`]'s JSON.
pub const BASELINE_SCHEMA: &str = "probity-baseline/1";

/// What one unit used.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Used {
    /// Hosts, as `name:port` (or `address:port`), ephemeral ports as
    /// `<ephemeral>`.
    pub hosts: BTreeSet<String>,
    /// Programs exec'd, their paths normalised.
    pub programs: BTreeSet<String>,
    /// Folders of files changed outside the allowed roots, normalised.
    pub write_roots: BTreeSet<String>,
}

/// What each unit of an accepted run used (`probity baseline record`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Baseline {
    /// [`BASELINE_SCHEMA`].
    pub schema: String,
    /// Each unit, by id.
    pub units: BTreeMap<String, Used>,
}

/// Something a run used that its baseline does not have.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct New {
    /// The unit's id.
    pub unit: String,
    /// `host`, `program` or `write root`.
    pub kind: &'static str,
    /// What, normalised.
    pub what: String,
}

impl fmt::Display for New {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+ {} {} {}", self.unit, self.kind, self.what)
    }
}

impl Baseline {
    /// What `verdict`'s units used, normalised: the workspace, target,
    /// temporary and home directories as placeholders, cargo's hashes
    /// numbered out, ephemeral ports as `<ephemeral>`.
    #[must_use]
    pub fn of(verdict: &Verdict, at: &Where) -> Baseline {
        let mut normal = Normal::new(at);
        let mut units = BTreeMap::new();
        for u in &verdict.units {
            let mut used = Used::default();
            // A name the program claimed for itself does not name a host
            // here: it would let a new destination pass as a known one.
            used.hosts
                .extend(u.hosts.iter().map(|h| Normal::host(if h.claimed { &[] } else { &h.names }, h.ip, h.port)));
            used.programs.extend(u.programs.iter().map(|p| normal.path(&p.path)));
            used.write_roots.extend(u.writes.iter().map(|w| normal.path(&w.root)));
            if used != Used::default() {
                units.insert(u.id.clone(), used);
            }
        }
        Baseline { schema: BASELINE_SCHEMA.to_owned(), units }
    }

    /// What `run` used that this baseline does not have, by unit.
    #[must_use]
    pub fn new_in(&self, run: &Baseline) -> Vec<New> {
        let empty = Used::default();
        let mut out = Vec::new();
        for (id, used) in &run.units {
            let known = self.units.get(id).unwrap_or(&empty);
            let lists = [
                ("host", &used.hosts, &known.hosts),
                ("program", &used.programs, &known.programs),
                ("write root", &used.write_roots, &known.write_roots),
            ];
            for (kind, now, before) in lists {
                out.extend(now.difference(before).map(|w| New { unit: id.clone(), kind, what: w.clone() }));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn used(hosts: &[&str]) -> Used {
        Used { hosts: hosts.iter().map(|h| (*h).to_owned()).collect(), ..Used::default() }
    }

    /// A destination the program named itself (its own lookup) is keyed
    /// by its address: claiming a known name does not make it known.
    #[test]
    fn a_claimed_name_does_not_match_a_known_host() {
        let verdict = |names: &str, claimed: bool| -> Verdict {
            serde_json::from_value(serde_json::json!({
                "schema": "probity-bom/1", "mode": "enforce", "policy": null, "undecided": [],
                "units": [{
                    "id": "command", "unit": {"kind": "command"}, "programs": [], "writes": [],
                    "undecided": [], "violations": [],
                    "hosts": [{"names": [names], "claimed": claimed, "ip": "203.0.113.66", "port": 443,
                               "protocol": "tcp", "bytes_sent": 0, "bytes_received": 0, "count": 1,
                               "allowed": false}]
                }]
            }))
            .unwrap()
        };
        let at = Where { workspace: "/w".into(), target: "/w/target".into(), tmp: "/tmp".into(), home: None };
        let known = Baseline::of(&verdict("crates.io", false), &at);
        assert_eq!(known.units["command"].hosts.iter().collect::<Vec<_>>(), ["crates.io:443"]);
        let claimed = Baseline::of(&verdict("crates.io", true), &at);
        assert_eq!(claimed.units["command"].hosts.iter().collect::<Vec<_>>(), ["203.0.113.66:443"]);
        assert_eq!(known.new_in(&claimed).len(), 1, "a claimed name passed as a known host");
    }

    #[test]
    fn only_what_is_new_is_reported() {
        let before = Baseline {
            schema: BASELINE_SCHEMA.into(),
            units: [("test:t::a".to_owned(), used(&["localhost:<ephemeral>"]))].into(),
        };
        assert!(before.new_in(&before).is_empty());
        let mut after = before.clone();
        after.units.get_mut("test:t::a").unwrap().hosts.insert("example.com:443".into());
        after.units.insert("bin:t".into(), used(&["localhost:80"]));
        let new: Vec<String> = before.new_in(&after).iter().map(ToString::to_string).collect();
        assert_eq!(new, ["+ bin:t host localhost:80", "+ test:t::a host example.com:443"]);
    }
}
