//! The CI gate on a real build and test run: `probity run --policy` over
//! `cargo test` and `cargo nextest run` on a tiny workspace
//! (tests/gate_workspace) whose build script writes outside target/, one
//! test connects to a local server and one execs git. Each violation must
//! be attributed to its unit; audit mode, overrides and the baseline are
//! tried on the same runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::require_tracing;

/// A fresh copy of the fixture workspace, outside the temporary directory
/// (so that `$TMP` in a policy does not cover it), with its target folder
/// made (cargo otherwise makes it through a temporary name beside it).
fn workspace() -> (tempfile::TempDir, PathBuf) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/gate_workspace");
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let ws = dir.path().join("ws");
    for f in ["Cargo.toml", "Cargo.lock", "build.rs", "src/lib.rs", "tests/gate.rs"] {
        let to = ws.join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(src.join(f), to).unwrap();
    }
    std::fs::create_dir_all(ws.join("target")).unwrap();
    (dir, ws)
}

/// What a build needs beyond the rules under test: cargo's caches, the
/// compiler's temporary files and the jobserver's descriptors.
const BUILD_ROOTS: &str = r#""$TARGET", "$TMP", "$HOME/.cargo", "/dev/fd""#;

fn probity(ws: &Path, args: &[&str]) -> Output {
    require_tracing();
    // `$TMP` of its own, beside the workspace: the workspace itself may be
    // under /tmp (a checkout there), and its stray writes must not count
    // as temporary files.
    let tmp = ws.parent().unwrap().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    Command::new(env!("CARGO_BIN_EXE_probity"))
        .current_dir(ws)
        .env("TMPDIR", &tmp)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("GITHUB_ACTIONS")
        .args(args)
        .output()
        .unwrap()
}

fn bom(ws: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(ws.join("rep/bom.json")).unwrap()).unwrap()
}

fn unit<'a>(bom: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    bom["units"].as_array().unwrap().iter().find(|u| u["id"] == id).unwrap_or_else(|| panic!("no unit {id} in {bom:#}"))
}

fn rules(u: &serde_json::Value) -> Vec<&str> {
    u["violations"].as_array().unwrap().iter().map(|v| v["rule"].as_str().unwrap()).collect()
}

#[test]
fn cargo_test_violations_go_to_the_test_binary_and_the_build_script() {
    let (_dir, ws) = workspace();
    std::fs::write(
        ws.join("probity.toml"),
        format!("mode = \"enforce\"\n[network]\nallow = []\n[exec]\ndeny = [\"git\"]\n[files]\nwrite_allow = [{BUILD_ROOTS}]\n"),
    )
    .unwrap();
    let out = probity(
        &ws,
        &[
            "run",
            "-o",
            "/dev/null",
            "--report-dir",
            "rep",
            "--sarif",
            "s.sarif",
            "--perfetto",
            "p.json",
            "--",
            "cargo",
            "test",
            "--offline",
            "--locked",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(121), "{stderr}");
    let bom = bom(&ws);
    assert_eq!(bom["schema"], "probity-bom/1");
    assert!(bom["undecided"].as_array().unwrap().is_empty(), "{bom:#}");
    let tests = unit(&bom, "bin:gate");
    assert_eq!(rules(tests), ["probity/unexpected-connect", "probity/unexpected-exec"], "{tests:#}");
    assert_eq!(tests["hosts"][0]["ip"], "127.0.0.1");
    assert_eq!(tests["hosts"][0]["protocol"], "tcp");
    assert!(tests["programs"][0]["path"].as_str().unwrap().ends_with("/git"));
    let script = unit(&bom, "build-script:gatefx");
    assert_eq!(rules(script), ["probity/write-outside-allowed", "probity/write-outside-allowed"], "{script:#}");
    let stamp = ws.join("generated/stamp.txt");
    assert!(script["writes"].as_array().unwrap().iter().any(|w| w["path"] == stamp.to_str().unwrap()));
    // Nothing else broke the policy: compiling, linking and cargo itself.
    for u in bom["units"].as_array().unwrap() {
        if u["id"] != "bin:gate" && u["id"] != "build-script:gatefx" {
            assert!(rules(u).is_empty(), "{u:#}");
        }
    }
    let sarif: serde_json::Value = serde_json::from_slice(&std::fs::read(ws.join("s.sarif")).unwrap()).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 4, "{sarif:#}");
    assert!(results.iter().all(|r| r["partialFingerprints"]["probity/v1"].is_string()));
    // The same run for ui.perfetto.dev: the build script's run is a slice.
    let perfetto: serde_json::Value = serde_json::from_slice(&std::fs::read(ws.join("p.json")).unwrap()).unwrap();
    let events = perfetto["traceEvents"].as_array().unwrap();
    assert!(events
        .iter()
        .any(|e| e["ph"] == "X" && e["name"].as_str().is_some_and(|n| n.ends_with("/build-script-build"))));
    assert!(events.iter().any(|e| e["ph"] == "X" && e["cat"] == "syscall"));
}

#[test]
fn nextest_units_audit_mode_overrides_and_baseline() {
    let (_dir, ws) = workspace();
    std::fs::write(
        ws.join("probity.toml"),
        format!(
            "mode = \"audit\"\n[network]\nallow = []\n[exec]\ndeny = [\"git\"]\n[files]\nwrite_allow = [{BUILD_ROOTS}, \"generated\"]\n\
             [[override]]\ntest = \"connects_*\"\nnetwork.allow = [\"127.0.0.1:*\"]\n"
        ),
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "-o", "/dev/null", "--report-dir", "rep"];
        args.extend(extra);
        args.extend(["--", "cargo", "nextest", "run", "--offline", "--locked", "--no-fail-fast"]);
        probity(&ws, &args)
    };
    // Audit mode reports and keeps the command's status.
    let out = run(&["--sarif", "s.sarif"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("audit mode"), "{stderr}");
    let bom = bom(&ws);
    assert_eq!(bom["mode"], "audit");
    // The override lets this test reach its server, and only this test.
    let connects = unit(&bom, "test:gate::connects_to_local_server");
    assert!(rules(connects).is_empty(), "{connects:#}");
    assert_eq!(connects["hosts"][0]["allowed"], true);
    // The five bytes it wrote, as the kernel counted them at close.
    assert_eq!(connects["hosts"][0]["bytes_sent"], 5, "{connects:#}");
    // A test that did nothing the policy judges is listed, empty: it ran
    // and was seen.
    let quiet = unit(&bom, "test:gate::quiet");
    for list in ["hosts", "programs", "writes", "violations"] {
        assert_eq!(quiet[list], serde_json::json!([]), "{quiet:#}");
    }
    let git = unit(&bom, "test:gate::execs_git");
    assert_eq!(rules(git), ["probity/unexpected-exec"], "{git:#}");
    // The build script's write is allowed here ("generated"): no unit but
    // the git test broke the policy.
    for u in bom["units"].as_array().unwrap() {
        if u["id"] != "test:gate::execs_git" {
            assert!(rules(u).is_empty(), "{u:#}");
        }
    }

    // Record a baseline, then nothing is new.
    let record = probity(
        &ws,
        &[
            "baseline",
            "record",
            "--out",
            "base.json",
            "-o",
            "/dev/null",
            "--",
            "cargo",
            "nextest",
            "run",
            "--offline",
            "--locked",
        ],
    );
    assert_eq!(record.status.code(), Some(0), "{}", String::from_utf8_lossy(&record.stderr));
    let out = run(&["--baseline", "base.json", "--fail-on-new"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("nothing new since the baseline"), "{stderr}");

    // A baseline without the test's host: the host is new, and named.
    let mut base: serde_json::Value = serde_json::from_slice(&std::fs::read(ws.join("base.json")).unwrap()).unwrap();
    let hosts = &mut base["units"]["test:gate::connects_to_local_server"]["hosts"];
    let host = hosts[0].as_str().unwrap().to_owned();
    *hosts = serde_json::json!([]);
    std::fs::write(ws.join("base.json"), serde_json::to_vec(&base).unwrap()).unwrap();
    let out = run(&["--baseline", "base.json", "--fail-on-new"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(121), "{stderr}");
    assert!(stderr.contains(&format!("+ test:gate::connects_to_local_server host {host}")), "{stderr}");
}

#[test]
fn a_bad_policy_is_a_usage_error_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.toml"), "mode = \"enforce\"\n[network]\nallow = [\"*.exa*mple.com\"]\n")
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_probity"))
        .current_dir(dir.path())
        .args(["run", "--policy", "bad.toml", "--", "true"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "bad.toml:3:10: `*.exa*mple.com` is not an endpoint (a wildcard is allowed only as a whole first label"
        ),
        "{stderr}"
    );
}

/// `--deny-network` keeps its own gate and message, and with a report
/// asked for it is also a policy: its violation is in bom.json.
#[test]
fn deny_network_is_a_policy_too() {
    let dir = tempfile::tempdir().unwrap();
    let connect = "import socket; s = socket.socket(); s.settimeout(1); s.connect_ex(('127.0.0.1', 9))";
    let out = probity(
        dir.path(),
        &["run", "-o", "/dev/null", "--deny-network", "--report-dir", "rep", "--", "python3", "-c", connect],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(121), "{stderr}");
    assert!(stderr.contains("network gate failed"), "{stderr}");
    let bom = bom(dir.path());
    let command = unit(&bom, "command");
    assert!(rules(command).contains(&"probity/unexpected-connect"), "{command:#}");
    assert!(command["hosts"].as_array().unwrap().iter().any(|h| h["ip"] == "127.0.0.1" && h["port"] == 9));
}

/// In GitHub Actions the violations become annotations on stdout and the
/// job summary gets a table per unit.
#[test]
fn github_actions_get_annotations_and_a_summary() {
    require_tracing();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("probity.toml"), "# what CI may run\n[exec]\ndeny = [\"true\"]\n").unwrap();
    let summary = dir.path().join("summary.md");
    std::fs::write(&summary, "earlier steps\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_probity"))
        .current_dir(dir.path())
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .args(["run", "-o", "/dev/null", "--", "sh", "-c", "/bin/true"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(121), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("::error file=probity.toml,line=3,title=probity/unexpected-exec in the command::")
                && l.contains("exec'd /bin/true, which exec.deny forbids (`true`)")),
        "{stdout}"
    );
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(summary.starts_with("earlier steps\n## probity: the policy failed"), "{summary}");
    assert!(summary.contains("| ✗ | exec | /bin/true | 1× |"), "{summary}");
}
