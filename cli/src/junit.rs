//! `probity junit-merge`: adds what each test used (hosts, programs,
//! writes outside the allowed roots, violations), from a run's bom.json,
//! to the `<testcase>`s of the junit.xml nextest wrote, as `<properties>`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use probity::policy::{Unit, UnitReport, Verdict};
use quick_xml::events::{BytesEnd, BytesStart, Event};
use quick_xml::{Reader, Writer};

#[derive(Args)]
pub struct JunitMergeArgs {
    /// The junit.xml nextest wrote (`[profile.NAME.junit]` in
    /// .config/nextest.toml).
    #[arg(long, value_name = "FILE")]
    junit: PathBuf,
    /// The bom.json of the same run (`probity run --report-dir`).
    #[arg(long, value_name = "FILE")]
    bom: PathBuf,
    /// Where to write the merged file [default: over --junit].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn main(args: &JunitMergeArgs) -> anyhow::Result<()> {
    let xml =
        std::fs::read_to_string(&args.junit).with_context(|| format!("failed to read {}", args.junit.display()))?;
    let bom = std::fs::read(&args.bom).with_context(|| format!("failed to read {}", args.bom.display()))?;
    let verdict: Verdict =
        serde_json::from_slice(&bom).with_context(|| format!("failed to read {} as bom.json", args.bom.display()))?;
    let merged =
        merge(&xml, &verdict).with_context(|| format!("failed to read {} as JUnit XML", args.junit.display()))?;
    let out = args.out.as_ref().unwrap_or(&args.junit);
    std::fs::write(out, merged).with_context(|| format!("failed to write {}", out.display()))
}

/// The properties of one test's unit.
fn properties(u: &UnitReport) -> Vec<(&'static str, String)> {
    let mut p = Vec::new();
    for h in &u.hosts {
        let name = if h.names.is_empty() { String::new() } else { format!(" ({})", h.names.join(", ")) };
        p.push(("probity.host", format!("{}:{}{name}", h.ip, h.port)));
    }
    p.extend(u.programs.iter().map(|x| ("probity.program", x.path.clone())));
    p.extend(u.writes.iter().map(|w| ("probity.write", w.path.clone())));
    p.extend(u.violations.iter().map(|f| ("probity.violation", format!("{}: {}", f.rule.id(), f.message))));
    p
}

/// `xml` with each `<testcase>` of a test in `verdict` given its
/// properties. A test's suite is its binary: nextest names it
/// `crate::binary` (or `crate` for the library's unit tests).
pub fn merge(xml: &str, verdict: &Verdict) -> Result<Vec<u8>, quick_xml::Error> {
    let mut tests: BTreeMap<(&str, &str), &UnitReport> = BTreeMap::new();
    for u in &verdict.units {
        if let Unit::Test { binary, name } = &u.unit {
            tests.insert((binary, name), u);
        }
    }
    let mut reader = Reader::from_str(xml);
    let mut writer = Writer::new(Vec::new());
    let mut suite = String::new();
    let attr = |e: &BytesStart<'_>, key: &str| -> Option<String> {
        e.try_get_attribute(key).ok().flatten().and_then(|a| a.unescape_value().ok().map(Cow::into_owned))
    };
    loop {
        let event = reader.read_event()?;
        match &event {
            Event::Start(e) if e.name().as_ref() == b"testsuite" => suite = attr(e, "name").unwrap_or_default(),
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"testcase" => {
                let binary = suite.rsplit("::").next().unwrap_or_default().replace('-', "_");
                let name = attr(e, "name").unwrap_or_default();
                let unit = tests.iter().find(|((b, n), _)| b.replace('-', "_") == binary && *n == name).map(|(_, u)| u);
                if let Some(u) = unit.map(|u| properties(u)).filter(|p| !p.is_empty()) {
                    writer.write_event(Event::Start(e.clone()))?;
                    writer.write_event(Event::Start(BytesStart::new("properties")))?;
                    for (key, value) in u {
                        let p = BytesStart::new("property").with_attributes([("name", key), ("value", value.as_str())]);
                        writer.write_event(Event::Empty(p))?;
                    }
                    writer.write_event(Event::End(BytesEnd::new("properties")))?;
                    if matches!(event, Event::Empty(_)) {
                        writer.write_event(Event::End(BytesEnd::new("testcase")))?;
                    }
                    continue;
                }
            }
            Event::Eof => break,
            _ => {}
        }
        writer.write_event(event)?;
    }
    Ok(writer.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_golden() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="nextest-run" tests="3" failures="0" errors="0">
    <testsuite name="gatefx::gate" tests="3" disabled="0" errors="0" failures="0">
        <testcase name="connects_to_local_server" classname="gatefx::gate" timestamp="2026-12-03T18:00:00.000+00:00" time="0.010"/>
        <testcase name="execs_git" classname="gatefx::gate" timestamp="2026-12-03T18:00:00.000+00:00" time="0.020">
            <system-out>git version 2.47</system-out>
        </testcase>
        <testcase name="quiet" classname="gatefx::gate" timestamp="2026-12-03T18:00:00.000+00:00" time="0.001"/>
    </testsuite>
</testsuites>
"#;
        let verdict: Verdict = serde_json::from_value(serde_json::json!({
            "schema": "probity-bom/1", "mode": "audit", "policy": null, "undecided": [],
            "units": [
                { "id": "test:gate::connects_to_local_server",
                  "unit": { "kind": "test", "binary": "gate", "name": "connects_to_local_server" },
                  "hosts": [{ "names": ["localhost"], "ip": "127.0.0.1", "port": 40000, "protocol": "tcp",
                              "bytes_sent": 5, "bytes_received": 0, "count": 1, "allowed": true }],
                  "programs": [], "writes": [], "undecided": [], "violations": [] },
                { "id": "test:gate::execs_git",
                  "unit": { "kind": "test", "binary": "gate", "name": "execs_git" },
                  "hosts": [], "writes": [], "undecided": [],
                  "programs": [{ "path": "/usr/bin/git", "argv": ["git", "--version"], "count": 1, "allowed": false }],
                  "violations": [{ "rule": "probity/unexpected-exec", "subject": "/usr/bin/git", "key": "/usr/bin/git",
                                   "message": "process 9 exec'd /usr/bin/git, which exec.deny forbids (`git` & \"co\")",
                                   "pid": 9, "at_ns": 5 }] }
            ]
        }))
        .unwrap();
        let merged = String::from_utf8(merge(xml, &verdict).unwrap()).unwrap();
        insta::assert_snapshot!(merged);
        // What it wrote is XML, and says what it was given.
        let mut r = Reader::from_str(&merged);
        let mut values = Vec::new();
        loop {
            match r.read_event().unwrap() {
                Event::Empty(e) if e.name().as_ref() == b"property" => {
                    values.push(e.try_get_attribute("value").unwrap().unwrap().unescape_value().unwrap().into_owned());
                }
                Event::Eof => break,
                _ => {}
            }
        }
        assert_eq!(values.len(), 3);
        assert!(values[2].ends_with("(`git` & \"co\")"));
    }
}
