//! Judging a trace by a policy: each event attributed to its unit, judged
//! by that unit's rules, and gathered into a [`Verdict`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use super::endpoint::Endpoint;
use super::model::{Network, Policy, Rules};
use super::normal::Normal;
use super::roots::{Root, Where};
use super::unit::Unit;
use super::verdict::{Finding, Host, ProgramRun, Rule, Undecided, UnitReport, Verdict, Write, BOM_SCHEMA};
use crate::event::{EventKind, Protocol};
use crate::trace::observed::{Gated, Observed};
use crate::trace::query::under;
use crate::trace::Trace;

/// A unit and the programs of a process and its ancestors at one moment.
type Place = (Unit, Vec<OsString>);

/// Follows the programs each process runs through the trace, in time
/// order, and gives the place of each event asked for. An exec belongs to
/// the unit that ran it: its place is the image before it. With `only`,
/// every event belongs to that unit (a traced test's own trace). Also
/// gives every unit an exec started, so that a unit that did nothing the
/// policy judges is still listed.
fn attribute(trace: &Trace, wanted: &HashSet<usize>, only: Option<&Unit>) -> (HashMap<usize, Place>, Vec<Unit>) {
    let procs = trace.processes();
    let mut order: Vec<usize> = (0..trace.events.len()).collect();
    order.sort_by_key(|&i| (trace.events[i].ts_ns, i));
    let mut image: HashMap<u32, (OsString, Vec<OsString>)> = HashMap::new();
    let mut at = HashMap::new();
    let mut started = Vec::new();
    for i in order {
        let e = &trace.events[i];
        if wanted.contains(&i) {
            let mut programs = Vec::new();
            let mut unit = None;
            let mut p = Some(e.pid);
            // The parent links come from the trace; a cycle must not hang.
            for _ in 0..=procs.len() {
                let Some(q) = p else { break };
                if let Some((prog, argv)) = image.get(&q) {
                    programs.push(prog.clone());
                    if unit.is_none() {
                        unit = Unit::of_image(prog, argv);
                    }
                }
                p = procs.get(&q).and_then(|x| x.parent);
            }
            let unit = only.cloned().or(unit).unwrap_or(Unit::Command);
            at.insert(i, (unit, programs));
        }
        if let EventKind::Exec(x) = &e.kind {
            if only.is_none() {
                started.extend(Unit::of_image(&x.filename, &x.argv));
            }
            image.insert(e.pid, (x.filename.clone(), x.argv.clone()));
        }
    }
    (at, started)
}

/// One unit's report as it is gathered.
#[derive(Default)]
struct Gather {
    hosts: BTreeMap<(IpAddr, u16), Host>,
    programs: BTreeMap<String, ProgramRun>,
    writes: BTreeMap<String, Write>,
    undecided: Vec<Undecided>,
    violations: Vec<Finding>,
}

/// The text of an OS string, lossily.
fn text(s: &OsStr) -> String {
    s.to_string_lossy().into_owned()
}

/// The roots `$TMP` and `$TARGET`: where writes are expected when a
/// policy names none.
fn default_roots() -> Vec<Root> {
    ["$TMP", "$TARGET"].iter().filter_map(|r| r.parse().ok()).collect()
}

impl Rules {
    /// Whether these rules gate anything at all.
    fn gate_anything(&self) -> bool {
        self.network != Network::Any
            || self.exec_allow.is_some()
            || !self.exec_deny.is_empty()
            || self.write_allow.is_some()
    }
}

impl Policy {
    /// Judges `trace`, with `$TMP`, `$TARGET` and relative roots read
    /// against `at`.
    ///
    /// Every connect, send, exec and change to the file system is
    /// attributed to its unit and judged by that unit's rules. What the
    /// trace cannot decide (events were lost, a process was not covered,
    /// a channel probity does not see, a path it could not resolve) is a
    /// violation where the policy gates it: the gate fails closed.
    ///
    /// ```no_run
    /// use probity::policy::{Policy, Where};
    /// let policy = Policy::load("probity.toml".as_ref())?;
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// let verdict = policy.check(&trace, &Where::new("."));
    /// assert!(!verdict.fails());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn check(&self, trace: &Trace, at: &Where) -> Verdict {
        self.judge(trace, at, None)
    }

    /// Judges `trace` as wholly `unit`'s: the trace of one test's runs.
    #[must_use]
    pub(crate) fn check_as(&self, trace: &Trace, at: &Where, unit: &Unit) -> Verdict {
        self.judge(trace, at, Some(unit))
    }

    fn judge(&self, trace: &Trace, at: &Where, only: Option<&Unit>) -> Verdict {
        let o = Observed::new(trace);
        let mut first_of: HashMap<u32, usize> = HashMap::new();
        for (i, e) in trace.events.iter().enumerate() {
            first_of.entry(e.pid).or_insert(i);
        }
        let mut wanted: HashSet<usize> = o.dests.iter().map(|d| d.0).collect();
        wanted.extend(&o.network);
        wanted.extend(o.execs.iter().map(|x| x.0));
        wanted.extend(o.writes.iter().map(|w| w.0));
        wanted.extend(o.undecided.iter().map(|u| u.0));
        wanted.extend(o.uncovered.iter().filter_map(|(p, _)| first_of.get(p)));
        let (places, started) = attribute(trace, &wanted, only);
        let start = trace.start_ns();
        let mut units: BTreeMap<Unit, Gather> = BTreeMap::new();
        units.entry(Unit::Command).or_default();
        for u in started {
            units.entry(u).or_default();
        }
        let mut cache: HashMap<Place, Rules> = HashMap::new();
        let mut judge = |i: usize| -> (Unit, Rules, u32, u64) {
            let e = &trace.events[i];
            let place = places.get(&i).cloned().unwrap_or_else(|| (only.cloned().unwrap_or(Unit::Command), Vec::new()));
            let rules = cache
                .entry(place.clone())
                .or_insert_with(|| self.rules_for(&place.0, place.1.iter().map(OsString::as_os_str)))
                .clone();
            (place.0, rules, e.pid, e.ts_ns.saturating_sub(start))
        };
        let resolution = &trace.outcome.resolution;
        let mut normal = Normal::new(at);

        let dest_events: HashSet<usize> = o.dests.iter().map(|d| d.0).collect();
        // What was already reported, for what would repeat: network use
        // without an address, and undecided events.
        let mut seen: HashSet<(Unit, u32, String)> = HashSet::new();
        let mut counted: HashSet<(u32, SocketAddr)> = HashSet::new();
        for &(i, ip, port) in &o.dests {
            let (unit, rules, pid, at_ns) = judge(i);
            let trusted: Vec<&str> = o.trusted_names.get(&ip).into_iter().flatten().map(String::as_str).collect();
            let passes = |list: &[Endpoint]| {
                list.iter().any(|e| e.allows(ip, port, trusted.iter().copied()))
                    || (port == 53 && resolution.is_nameserver(ip) && list.iter().any(Endpoint::is_name))
            };
            let allowed = match &rules.network {
                Network::Any => true,
                Network::Nothing => false,
                Network::Only(list) => passes(list),
                Network::Both(file, flags) => passes(file) && passes(flags),
            };
            let claimed = o.claimed_names.get(&(pid, ip));
            let names: Vec<String> = if trusted.is_empty() {
                claimed.into_iter().cloned().collect()
            } else {
                trusted.iter().map(|s| (*s).to_owned()).collect()
            };
            let peer = SocketAddr::new(ip, port);
            let traffic = o.traffic.get(&(pid, peer)).copied().unwrap_or_default();
            let g = units.entry(unit).or_default();
            let h = g.hosts.entry((ip, port)).or_insert_with(|| Host {
                names: names.clone(),
                claimed: trusted.is_empty() && claimed.is_some(),
                ip,
                port,
                protocol: None,
                bytes_sent: 0,
                bytes_received: 0,
                count: 0,
                allowed: true,
            });
            h.count += 1;
            // A process's bytes to a peer are counted once, however many
            // calls named it.
            if counted.insert((pid, peer)) {
                h.bytes_sent += traffic.sent;
                h.bytes_received += traffic.received;
            }
            if h.protocol.is_none() {
                h.protocol = traffic.protocol.map(|p| if p == Protocol::Tcp { "tcp" } else { "udp" }.to_owned());
            }
            // One finding per unit and host; the count says how often.
            let first = h.allowed;
            h.allowed &= allowed;
            if !allowed && first {
                let shown = if names.is_empty() { peer.to_string() } else { format!("{peer} ({})", names.join(", ")) };
                let listed = |list: &[Endpoint]| list.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
                let why = match &rules.network {
                    Network::Only(list) => format!("which network.allow does not allow (allowed: {})", listed(list)),
                    Network::Both(file, flags) => format!(
                        "which network.allow and --allow-connect do not both allow (network.allow: {}; --allow-connect: {})",
                        listed(file),
                        listed(flags)
                    ),
                    _ => "and the policy allows no network access".to_owned(),
                };
                let message = format!("process {pid} connected or sent to {shown}, {why}");
                // Keyed by a name only a trusted source gave: the
                // program's own claim must not match an earlier finding.
                let key = Normal::host(if trusted.is_empty() { &[] } else { &names }, ip, port);
                let policy_line = match &rules.network {
                    Network::Only(_) | Network::Both(..) => rules.lines.network,
                    _ => None,
                };
                g.violations.push(Finding {
                    rule: Rule::UnexpectedConnect,
                    subject: shown,
                    key,
                    message,
                    pid,
                    at_ns,
                    policy_line,
                });
            }
        }
        // Where no network is allowed, any network access is a violation,
        // with or without an address.
        for &i in &o.network {
            if dest_events.contains(&i) {
                continue;
            }
            let (unit, rules, pid, at_ns) = judge(i);
            if rules.network == Network::Nothing {
                let e = &trace.events[i];
                // One finding per process and kind of access: a socket's
                // every read would bury the rest.
                let what = match &e.kind {
                    EventKind::Syscall(s) => s.name.to_string(),
                    EventKind::Net(n) => format!("{:?} {}", n.protocol, n.op.name()).to_lowercase(),
                    _ => "an event".to_owned(),
                };
                if !seen.insert((unit.clone(), pid, what.clone())) {
                    continue;
                }
                let message =
                    format!("process {pid} used the network ({what}), and the policy allows no network access");
                units.entry(unit).or_default().violations.push(Finding {
                    rule: Rule::UnexpectedConnect,
                    key: what.clone(),
                    subject: what,
                    message,
                    pid,
                    at_ns,
                    policy_line: None,
                });
            }
        }
        for (i, program, argv) in &o.execs {
            let (unit, rules, pid, at_ns) = judge(*i);
            let denied = rules.exec_deny.iter().find(|p| p.matches(program));
            let listed = rules.exec_allow.as_ref().is_none_or(|a| a.iter().any(|p| p.matches(program)));
            let allowed = denied.is_none() && listed;
            let path = text(program);
            let g = units.entry(unit).or_default();
            let r = g.programs.entry(path.clone()).or_insert_with(|| ProgramRun {
                path: path.clone(),
                argv: argv.iter().map(|a| text(a)).collect(),
                count: 0,
                allowed: true,
            });
            r.count += 1;
            let first = r.allowed;
            r.allowed &= allowed;
            if !allowed && first {
                let why = match denied {
                    Some(d) => format!("which exec.deny forbids (`{d}`)"),
                    None => {
                        let list: Vec<String> = rules.exec_allow.iter().flatten().map(ToString::to_string).collect();
                        format!("which exec.allow does not allow (allowed: {})", list.join(", "))
                    }
                };
                let message = format!("process {pid} exec'd {path}, {why}");
                let key = normal.path(&path);
                let policy_line = if denied.is_some() { rules.lines.exec_deny } else { rules.lines.exec_allow };
                g.violations.push(Finding {
                    rule: Rule::UnexpectedExec,
                    subject: path,
                    key,
                    message,
                    pid,
                    at_ns,
                    policy_line,
                });
            }
        }
        for (i, path) in &o.writes {
            let (unit, rules, pid, at_ns) = judge(*i);
            let roots = rules.write_allow.clone().unwrap_or_else(default_roots);
            let dirs: Vec<PathBuf> = roots.iter().filter_map(|r| r.resolve(at)).collect();
            if dirs.iter().any(|d| under(path, d)) {
                continue;
            }
            let gated = rules.write_allow.is_some();
            let shown = text(path);
            let root = Path::new(path).parent().map_or_else(|| "/".to_owned(), |p| text(p.as_os_str()));
            let g = units.entry(unit).or_default();
            let w = g.writes.entry(shown.clone()).or_insert_with(|| Write {
                path: shown.clone(),
                root,
                count: 0,
                allowed: !gated,
            });
            w.count += 1;
            if gated && w.count == 1 {
                let list: Vec<String> = roots.iter().map(ToString::to_string).collect();
                let message =
                    format!("process {pid} changed {shown}, outside files.write_allow (allowed: {})", list.join(", "));
                let key = normal.path(&shown);
                g.violations.push(Finding {
                    rule: Rule::WriteOutsideAllowed,
                    subject: shown,
                    key,
                    message,
                    pid,
                    at_ns,
                    policy_line: rules.lines.write_allow,
                });
            }
        }
        for (i, kind, why) in &o.undecided {
            let (unit, rules, pid, at_ns) = judge(*i);
            let (gated, kind) = match kind {
                Gated::Network => (rules.network != Network::Any, "network"),
                Gated::Write => (rules.write_allow.is_some(), "write"),
            };
            // One entry per process and reason: every write to a relative
            // path would otherwise repeat it.
            if !seen.insert((unit.clone(), pid, format!("{kind}: {why}"))) {
                continue;
            }
            let g = units.entry(unit).or_default();
            g.undecided.push(Undecided { kind: kind.to_owned(), pid, why: why.clone() });
            if gated {
                let subject = match &trace.events[*i].kind {
                    EventKind::Syscall(s) => s.name.to_string(),
                    EventKind::Libc(c) => c.function.clone(),
                    _ => kind.to_owned(),
                };
                let message = format!("process {pid} may break the {kind} rules, and the trace cannot tell: {why}");
                let key = format!("{kind} {subject}");
                g.violations.push(Finding {
                    rule: Rule::Undecided,
                    subject,
                    key,
                    message,
                    pid,
                    at_ns,
                    policy_line: None,
                });
            }
        }
        for (pid, why) in &o.uncovered {
            let Some(&i) = first_of.get(pid) else { continue };
            let (unit, rules, pid, at_ns) = judge(i);
            let g = units.entry(unit).or_default();
            g.undecided.push(Undecided { kind: "process".to_owned(), pid, why: why.clone() });
            if rules.gate_anything() {
                let message = format!("process {pid} was {why}, so what it did is not in the trace");
                g.violations.push(Finding {
                    rule: Rule::Undecided,
                    subject: format!("process {pid}"),
                    key: "process".to_owned(),
                    message,
                    pid,
                    at_ns,
                    policy_line: None,
                });
            }
        }
        let gates = self.base.gate_anything()
            || self.ceiling != Network::Any
            || self.overrides.iter().any(|o| o.rules.gate_anything());
        Verdict {
            schema: BOM_SCHEMA.to_owned(),
            mode: self.mode,
            policy: self.origin.as_deref().map(|p| text(p.as_os_str())),
            undecided: if gates { o.whole } else { Vec::new() },
            units: units
                .into_iter()
                .map(|(unit, g)| UnitReport {
                    id: unit.id(),
                    unit,
                    hosts: g.hosts.into_values().collect(),
                    programs: g.programs.into_values().collect(),
                    writes: g.writes.into_values().collect(),
                    undecided: g.undecided,
                    violations: g.violations,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::test_support::{exec, path, sys, trace};

    fn fork(ts: u64, parent: u32, child: u32) -> crate::event::Event {
        crate::event::Event {
            ts_ns: ts,
            pid: parent,
            tid: parent,
            kind: EventKind::Fork(crate::event::Fork { child_tid: child, untracked: false }),
        }
    }

    fn at() -> Where {
        Where { workspace: "/w".into(), target: "/w/target".into(), tmp: "/tmp".into(), home: None }
    }

    fn policy(text: &str) -> Policy {
        Policy::parse(text, Path::new("/w/probity.toml")).unwrap()
    }

    /// A test binary (pid 11, under `cargo test`) execs git (pid 12) and
    /// writes outside the roots; a build script (pid 13) writes too.
    fn run() -> Trace {
        let mut t = trace(
            vec![
                exec(1, 10, "/usr/bin/cargo"),
                fork(2, 10, 11),
                exec(2, 11, "/w/target/debug/deps/net-0123456789abcdef"),
                fork(3, 11, 12),
                exec(3, 12, "/usr/bin/git"),
                sys(
                    4,
                    11,
                    11,
                    "openat",
                    vec![path("/w/src/x"), crate::trace::test_support::flags(0o101, "O_WRONLY|O_CREAT")],
                    3,
                ),
                fork(5, 10, 13),
                exec(5, 13, "/w/target/debug/build/gen-0123456789abcdef/build-script-build"),
                sys(6, 13, 13, "mkdir", vec![path("/w/generated")], 0),
            ],
            Some("/w"),
        );
        for (i, e) in t.events.iter_mut().enumerate() {
            if let EventKind::Exec(x) = &mut e.kind {
                x.argv = vec![x.filename.clone()];
            }
            let _ = i;
        }
        t
    }

    fn ids(v: &Verdict) -> Vec<(String, &'static str)> {
        v.findings().map(|(u, f)| (u.id.clone(), f.rule.id())).collect()
    }

    #[test]
    fn each_violation_goes_to_its_unit() {
        let v = policy("[exec]\ndeny = [\"git\"]\n[files]\nwrite_allow = [\"$TARGET\"]\n").check(&run(), &at());
        let mut got = ids(&v);
        got.retain(|(_, r)| *r != "probity/undecided");
        assert_eq!(
            got,
            [
                ("bin:net".to_owned(), "probity/unexpected-exec"),
                ("bin:net".to_owned(), "probity/write-outside-allowed"),
                ("build-script:gen".to_owned(), "probity/write-outside-allowed"),
            ],
            "{v:#?}"
        );
        assert!(v.fails());
        // Each points at the list it breaks: exec.deny on line 2,
        // files.write_allow on line 4.
        let lines: Vec<Option<usize>> =
            v.findings().filter(|(_, f)| f.rule != Rule::Undecided).map(|(_, f)| f.policy_line).collect();
        assert_eq!(lines, [Some(2), Some(4), Some(4)]);
    }

    #[test]
    fn overrides_widen_the_rules_of_what_they_select() {
        let text = "mode = \"audit\"\n[exec]\ndeny = [\"git\"]\n[files]\nwrite_allow = [\"$TARGET\"]\n\
                    [[override]]\nprogram = \"build-script-*\"\nfiles.write_allow = [\"generated\"]\n";
        let v = policy(text).check(&run(), &at());
        assert!(ids(&v).iter().all(|(u, _)| u == "bin:net"), "{v:#?}");
        assert!(v.violated() && !v.fails());
    }

    #[test]
    fn a_test_trace_is_judged_by_its_test_rules() {
        let text = "[exec]\nallow = [\"cargo\", \"net-*\", \"build-script-*\"]\n[[override]]\ntest = \"tests::*\"\nexec.allow = [\"git\"]\n";
        let p = policy(text);
        let unit = Unit::Test { binary: "net".into(), name: "tests::clone".into() };
        assert!(ids(&p.check_as(&run(), &at(), &unit)).iter().all(|(_, r)| *r == "probity/undecided"));
        let other = Unit::Test { binary: "net".into(), name: "other".into() };
        let v = p.check_as(&run(), &at(), &other);
        assert!(ids(&v).contains(&("test:net::other".to_owned(), "probity/unexpected-exec")), "{v:#?}");
    }

    /// The network flags given beside a policy file only narrow it: an
    /// override of the file does not widen what `--allow-connect` or
    /// `--deny-network` allow.
    #[test]
    fn network_flags_are_a_ceiling_no_override_lifts() {
        let inet = |a: &str| crate::event::Arg::Sockaddr(crate::event::SockAddr::Inet { addr: a.parse().unwrap() });
        let t = trace(
            vec![
                exec(1, 10, "/w/target/debug/deps/net-0123456789abcdef"),
                sys(
                    2,
                    10,
                    10,
                    "socket",
                    vec![
                        crate::trace::test_support::flags(libc::AF_INET, "AF_INET"),
                        crate::trace::test_support::flags(1, "SOCK_STREAM"),
                        crate::event::Arg::Int(0),
                    ],
                    3,
                ),
                sys(
                    3,
                    10,
                    10,
                    "connect",
                    vec![crate::event::Arg::Fd(3), inet("10.1.2.3:443"), crate::event::Arg::Int(16)],
                    0,
                ),
            ],
            Some("/w"),
        );
        let text =
            "[network]\nallow = [\"10.9.9.9\"]\n[[override]]\ntest = \"tests::*\"\nnetwork.allow = [\"10.1.2.3\"]\n";
        let unit = Unit::Test { binary: "net".into(), name: "tests::fetch".into() };
        let connects = |p: &Policy| {
            let v = p.check_as(&t, &at(), &unit);
            v.findings()
                .filter(|(_, f)| f.rule.id() == "probity/unexpected-connect")
                .map(|(_, f)| f.message.clone())
                .collect::<Vec<_>>()
        };
        // The file alone: the override allows it.
        assert_eq!(connects(&policy(text)), Vec::<String>::new());
        // With --allow-connect naming another host: both must allow.
        let flags = Policy::from_network_flags(false, &["10.9.9.9".to_owned()]).unwrap().unwrap();
        let got = connects(&policy(text).and_network_of(&flags));
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].contains("network.allow and --allow-connect do not both allow"), "{got:?}");
        // With --allow-connect naming it too, it passes.
        let flags = Policy::from_network_flags(false, &["10.1.2.3".to_owned()]).unwrap().unwrap();
        assert_eq!(connects(&policy(text).and_network_of(&flags)), Vec::<String>::new());
        // --deny-network: nothing passes, override or not.
        let deny = Policy::from_network_flags(true, &[]).unwrap().unwrap();
        let got = connects(&policy(text).and_network_of(&deny));
        assert!(got.iter().any(|m| m.contains("allows no network access")), "{got:?}");
        // Beside a file that gates no network, the flag still gates: what
        // the trace cannot see (lost events) fails it.
        let mut lossy = t.clone();
        lossy.outcome.losses.ring_full = 3;
        let v = policy("mode = \"enforce\"\n").and_network_of(&deny).check_as(&lossy, &at(), &unit);
        assert!(!v.undecided.is_empty() && v.fails(), "{v:#?}");
        let v = policy("mode = \"enforce\"\n").check_as(&lossy, &at(), &unit);
        assert!(v.undecided.is_empty() && !v.fails(), "{v:#?}");
    }
}
