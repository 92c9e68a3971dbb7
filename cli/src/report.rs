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
    let file = v.policy.as_deref().map(|p| format!("file={},line=1,", escape_property(p))).unwrap_or_default();
    let mut out = String::new();
    let mut shown: std::collections::BTreeMap<Rule, usize> = std::collections::BTreeMap::new();
    for (unit, f) in v.findings() {
        let n = shown.entry(f.rule).or_default();
        *n += 1;
        if *n > MAX_ANNOTATIONS {
            continue;
        }
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
/// that stays the same from run to run (rule, unit and subject).
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
                "partialFingerprints": { "probity/v1": format!("{}|{}|{}", f.rule.id(), u.id, f.subject) },
                "properties": { "unit": u.id },
            });
            if let Some(p) = &v.policy {
                r["locations"] = json!([{
                    "physicalLocation": {
                        "artifactLocation": { "uri": p },
                        "region": { "startLine": 1 }
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

    #[test]
    fn escapes_workflow_commands() {
        assert_eq!(escape_data("a%b\nc\r"), "a%25b%0Ac%0D");
        assert_eq!(escape_property("x:y,z%\n"), "x%3Ay%2Cz%25%0A");
    }
}
