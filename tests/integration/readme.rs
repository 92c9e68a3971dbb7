//! The README's library example, as it reads there, run as a test: its
//! snapshot holds from run to run because its directory comes from
//! `tempfile`, which the snapshot shows as `<tmp>/.tmp<1>`.

use crate::support::require_tracing;

#[test]
fn the_library_example() -> Result<(), Box<dyn std::error::Error>> {
    require_tracing();
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir()?;
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo hi > \"$1/out.tmp\" && mv \"$1/out.tmp\" \"$1/out\"", "sh"])
        .arg(dir.path())
        .stdout(Stdio::null());
    let trace = probity::Tracer::new().run(cmd)?;
    trace.assert_renamed(dir.path().join("out.tmp"), dir.path().join("out"));
    trace.assert_writes_only_under([dir.path()]);
    trace.assert_no_network();
    // The temporary directory shows as `<tmp>/.tmp<1>`, the same every run.
    insta::assert_snapshot!(trace.syscalls().path_prefix(dir.path()).snapshot());
    eprintln!("{trace}"); // the whole trace, as `probity run` prints it
    Ok(())
}

/// The README shows this file's example line for line (its hidden `# `
/// lines aside).
#[test]
fn the_readme_shows_this_example() {
    let readme = include_str!("../../README.md");
    let example = readme
        .split("```rust,no_run\n")
        .filter_map(|b| b.split_once("```").map(|(code, _)| code))
        .find(|code| code.contains("probity::Tracer::new().run(cmd)?") && code.contains("tempfile"))
        .expect("the README has the library example");
    let shown: Vec<&str> = example.lines().filter(|l| !l.starts_with("# ")).map(str::trim).collect();
    let here: Vec<&str> = include_str!("readme.rs").lines().map(str::trim).collect();
    assert!(
        here.windows(shown.len()).any(|w| w == shown.as_slice()),
        "the README's example and tests/integration/readme.rs differ:\n{example}"
    );
}
