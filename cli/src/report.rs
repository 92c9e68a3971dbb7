//! The reports CI systems show, from a policy's verdict: GitHub Actions
//! annotations and job summary, and SARIF 2.1.0.

use std::fmt::Write as _;

use probity::policy::{Rule, Verdict};
use serde_json::{json, Value};

/// Annotations of one kind shown at most; the rest are in the summary.
const MAX_ANNOTATIONS: usize = 10;
/// GitHub refuses a step summary over 1 MiB; stop well before.
const MAX_SUMMARY: usize = 1000 * 1024;

/// Escapes a workflow command's message.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Escapes a workflow command's property value.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// GitHub Actions workflow commands: an `::error` (enforce) or
/// `::warning` (audit) per violation, at most ten per rule, then one
/// pointing to the job summary for the rest.
pub fn annotations(v: &Verdict) -> String {
    let level = if v.fails() { "error" } else { "warning" };
    let mut out = String::new();
    let mut shown: std::collections::BTreeMap<Rule, usize> = std::collections::BTreeMap::new();
    for (unit, f) in v.findings() {
        let n = shown.entry(f.rule).or_default();
        *n += 1;
        if *n > MAX_ANNOTATIONS {
            continue;
        }
        let file = v
            .policy
            .as_deref()
            .map(|p| format!("file={},line={},", escape_property(p), f.policy_line.unwrap_or(1)))
            .unwrap_or_default();
        let title = escape_property(&format!("{} in {}", f.rule.id(), unit.unit));
        let _ = writeln!(out, "::{level} {file}title={title}::{}", escape_data(&f.message));
    }
    for (rule, n) in shown {
        if n > MAX_ANNOTATIONS {
            let more = n - MAX_ANNOTATIONS;
            let title = escape_property(rule.id());
            let _ = writeln!(out, "::{level} title={title}::{more} more, listed in the job summary");
        }
    }
    for why in &v.undecided {
        let _ = writeln!(out, "::{level} title=probity/undecided::{}", escape_data(why));
    }
    out
}

/// Escapes a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// The job summary: a table per unit that used the network, exec'd or
/// wrote outside the allowed roots, the violations first; cut short, saying
/// so, before GitHub's 1 MiB limit.
pub fn summary(v: &Verdict) -> String {
    let mut out = String::new();
    let verdict = match (v.violated(), v.fails()) {
        (false, _) => "passed",
        (true, true) => "failed",
        (true, false) => "found violations (audit mode: not failing)",
    };
    let _ = writeln!(out, "## probity: the policy {verdict}\n");
    for why in &v.undecided {
        let _ = writeln!(out, "- undecided: {}", cell(why));
    }
    for u in &v.units {
        if u.hosts.is_empty() && u.programs.is_empty() && u.writes.is_empty() && u.violations.is_empty() {
            continue;
        }
        let mut table =
            format!("\n### {}\n\n| | kind | what | detail |\n|---|---|---|---|\n", cell(&u.unit.to_string()));
        for f in &u.violations {
            let _ = writeln!(table, "| ✗ | {} | {} | {} |", f.rule.id(), cell(&f.subject), cell(&f.message));
        }
        for h in &u.hosts {
            let what = if h.names.is_empty() {
                format!("{}:{}", h.ip, h.port)
            } else {
                format!("{} ({}:{})", h.names.join(", "), h.ip, h.port)
            };
            let proto = h.protocol.as_deref().unwrap_or("?");
            let _ = writeln!(
                table,
                "| {} | host | {} | {proto}, {} sent, {} received, {}× |",
                mark(h.allowed),
                cell(&what),
                h.bytes_sent,
                h.bytes_received,
                h.count
            );
        }
        for p in &u.programs {
            let _ = writeln!(table, "| {} | exec | {} | {}× |", mark(p.allowed), cell(&p.path), p.count);
        }
        for w in &u.writes {
            let _ = writeln!(table, "| {} | write | {} | {}× |", mark(w.allowed), cell(&w.path), w.count);
        }
        if out.len() + table.len() > MAX_SUMMARY {
            out.push_str("\n(cut short: the rest is in bom.json)\n");
            break;
        }
        out.push_str(&table);
    }
    out
}

fn mark(allowed: bool) -> &'static str {
    if allowed {
        "✓"
    } else {
        "✗"
    }
}

/// The verdict as a SARIF 2.1.0 log: one rule per kind of violation, one
/// result per violation, located at the policy file, with a fingerprint
/// that stays the same from run to run and machine to machine (rule, unit
/// and the normalised subject).
pub fn sarif(v: &Verdict) -> Value {
    let rules = [
        (Rule::UnexpectedConnect, "A connect or send to an endpoint the policy does not allow."),
        (Rule::UnexpectedExec, "An exec of a program the policy does not allow."),
        (Rule::WriteOutsideAllowed, "A change to a file outside the roots the policy allows."),
        (Rule::Undecided, "Something the policy gates may have happened, and the trace cannot tell."),
    ];
    let rule_index = |r: Rule| rules.iter().position(|(x, _)| *x == r).unwrap_or(0);
    let level = if v.mode == probity::policy::Mode::Enforce { "error" } else { "warning" };
    let results: Vec<Value> = v
        .findings()
        .map(|(u, f)| {
            let mut r = json!({
                "ruleId": f.rule.id(),
                "ruleIndex": rule_index(f.rule),
                "level": level,
                "message": { "text": format!("{}: {}", u.unit, f.message) },
                "partialFingerprints": { "probity/v1": format!("{}|{}|{}", f.rule.id(), u.id, f.key) },
                "properties": { "unit": u.id },
            });
            if let Some(p) = &v.policy {
                r["locations"] = json!([{
                    "physicalLocation": {
                        "artifactLocation": { "uri": p },
                        "region": { "startLine": f.policy_line.unwrap_or(1) }
                    }
                }]);
            }
            r
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "probity",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules.iter().map(|(r, d)| json!({
                    "id": r.id(),
                    "shortDescription": { "text": d },
                })).collect::<Vec<_>>(),
            }},
            "results": results,
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A verdict as bom.json holds it: a test that reached a host it may
    /// not, a test binary that exec'd twelve denied programs (more than
    /// the annotations show), a build script that wrote outside the
    /// allowed roots, with characters the formats must escape.
    fn verdict(mode: &str) -> Verdict {
        let finding = |rule: &str, subject: &str, message: &str| {
            let key = subject.split(' ').next().unwrap_or_default();
            // The policy line of the list each rule's findings break.
            let line = match rule {
                "probity/unexpected-connect" => 3,
                "probity/unexpected-exec" => 5,
                _ => 7,
            };
            json!({ "rule": rule, "subject": subject, "key": key, "message": message, "pid": 7, "at_ns": 1000,
                    "policy_line": line })
        };
        let execs: Vec<Value> = (0..12)
            .map(|i| {
                finding(
                    "probity/unexpected-exec",
                    &format!("/usr/bin/tool{i}"),
                    &format!("process 7 exec'd /usr/bin/tool{i}, which exec.deny forbids (`tool*`)"),
                )
            })
            .collect();
        serde_json::from_value(json!({
            "schema": "probity-bom/1",
            "mode": mode,
            "policy": "probity.toml",
            "undecided": [],
            "units": [
                { "id": "command", "unit": { "kind": "command" }, "hosts": [], "programs": [], "writes": [], "undecided": [], "violations": [] },
                {
                    "id": "test:net::tests::fetch",
                    "unit": { "kind": "test", "binary": "net", "name": "tests::fetch" },
                    "hosts": [{ "names": ["example.com"], "ip": "203.0.113.7", "port": 443, "protocol": "tcp",
                                "bytes_sent": 512, "bytes_received": 2048, "count": 1, "allowed": false }],
                    "programs": [], "writes": [], "undecided": [],
                    "violations": [finding("probity/unexpected-connect", "203.0.113.7:443 (example.com)",
                        "process 7 connected or sent to 203.0.113.7:443 (example.com), which network.allow does not allow (allowed: *.crates.io:443)")]
                },
                {
                    "id": "bin:tools", "unit": { "kind": "test_binary", "binary": "tools" },
                    "hosts": [], "programs": [{ "path": "/usr/bin/tool0", "argv": ["tool0", "--x"], "count": 12, "allowed": false }],
                    "writes": [], "undecided": [], "violations": execs
                },
                {
                    "id": "build-script:gen", "unit": { "kind": "build_script", "package": "gen" },
                    "hosts": [], "programs": [],
                    "writes": [{ "path": "/w/out|put\n%.txt", "root": "/w", "count": 1, "allowed": false }],
                    "undecided": [],
                    "violations": [finding("probity/write-outside-allowed", "/w/out|put\n%.txt",
                        "process 7 changed /w/out|put\n%.txt, outside files.write_allow (allowed: $TARGET)")]
                }
            ]
        }))
        .unwrap()
    }

    #[test]
    fn annotations_golden() {
        insta::assert_snapshot!(annotations(&verdict("enforce")));
    }

    #[test]
    fn annotations_warn_in_audit_mode() {
        let a = annotations(&verdict("audit"));
        assert!(a.lines().all(|l| l.starts_with("::warning ")), "{a}");
    }

    #[test]
    fn summary_golden() {
        insta::assert_snapshot!(summary(&verdict("enforce")));
    }

    #[test]
    fn summary_stays_under_the_limit() {
        let mut v = verdict("enforce");
        let unit = v.units[2].clone();
        v.units = std::iter::repeat_n(unit, 3000).collect();
        let s = summary(&v);
        assert!(s.len() <= MAX_SUMMARY, "{}", s.len());
        assert!(s.ends_with("(cut short: the rest is in bom.json)\n"));
    }

    #[test]
    fn sarif_golden() {
        insta::assert_json_snapshot!(sarif(&verdict("enforce")));
    }

    /// serde-sarif's object model is generated from the SARIF 2.1.0
    /// schema: the log must read back into it, and say the same.
    #[test]
    fn sarif_reads_back_as_sarif_2_1_0() {
        let log = sarif(&verdict("enforce"));
        let typed: serde_sarif::sarif::Sarif = serde_json::from_value(log.clone()).unwrap();
        assert_eq!(serde_json::to_value(&typed).unwrap()["runs"][0]["results"], log["runs"][0]["results"]);
        assert_eq!(typed.runs[0].results.as_ref().map(Vec::len), Some(14));
    }

    /// The SARIF 2.1.0 JSON schema, from the serde-sarif package that
    /// ships it: the version `Cargo.lock` names, in cargo's registry.
    fn sarif_schema() -> Value {
        let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock")).unwrap();
        let lock: toml::Value = toml::from_str(&lock).unwrap();
        let version = lock["package"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"].as_str() == Some("serde-sarif"))
            .and_then(|p| p["version"].as_str())
            .expect("serde-sarif in Cargo.lock")
            .to_owned();
        let home = std::env::var_os("CARGO_HOME")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo"));
        let registries = std::fs::read_dir(home.join("registry/src")).unwrap();
        let path = registries
            .filter_map(|r| Some(r.ok()?.path().join(format!("serde-sarif-{version}/src/schema.json"))))
            .find(|p| p.is_file())
            .expect("serde-sarif's sources in cargo's registry");
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
    }

    #[test]
    fn sarif_is_valid_against_the_sarif_2_1_0_schema() {
        let schema = sarif_schema();
        assert_eq!(schema["title"], "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema");
        // The schema's own pattern for `language` (`...[a-zA-Z]{2}]?$`, a
        // stray `]`, in `run` and `toolComponent`) is refused by the check
        // of the schema itself; probity sets no language, so those two
        // patterns are left out.
        let mut schema = schema;
        let mut cut = 0;
        for def in schema["definitions"].as_object_mut().unwrap().values_mut() {
            let Some(language) = def.pointer_mut("/properties/language").and_then(Value::as_object_mut) else {
                continue;
            };
            if language.get("pattern").and_then(Value::as_str).is_some_and(|p| p.ends_with("]?$")) {
                language.remove("pattern");
                cut += 1;
            }
        }
        assert_eq!(cut, 2);
        let validator = jsonschema::validator_for(&schema).unwrap();
        for mode in ["enforce", "audit"] {
            let log = sarif(&verdict(mode));
            let errors: Vec<String> =
                validator.iter_errors(&log).map(|e| format!("{} at {}", e, e.instance_path())).collect();
            assert!(errors.is_empty(), "{mode}: {errors:#?}");
        }
        // The validator does reject what the schema forbids.
        let mut bad = sarif(&verdict("enforce"));
        bad["runs"][0]["results"][0]["level"] = "fatal".into();
        assert!(!validator.is_valid(&bad));
    }

    #[test]
    fn fingerprints_are_stable_and_distinct() {
        let a = sarif(&verdict("enforce"));
        let b = sarif(&verdict("audit"));
        let prints = |l: &Value| -> Vec<String> {
            l["runs"][0]["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["partialFingerprints"]["probity/v1"].to_string())
                .collect()
        };
        assert_eq!(prints(&a), prints(&b));
        let mut unique = prints(&a);
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 14);
    }

    #[test]
    fn escapes_workflow_commands() {
        assert_eq!(escape_data("a%b\nc\r"), "a%25b%0Ac%0D");
        assert_eq!(escape_property("x:y,z%\n"), "x%3Ay%2Cz%25%0A");
    }
}
