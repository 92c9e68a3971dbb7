//! The README's `#[traced_test]` example, as it reads there, run as a
//! test: what a user pastes first must pass.

use std::path::PathBuf;

use probity::{traced, traced_test, Cmd};

/// A command: its trace, exit status and output come back.
#[traced_test]
fn sort_runs_alone_and_offline() {
    let run = Cmd::new("sort").stdin("b\na\n").run();
    run.assert_success();
    assert_eq!(run.stdout, "a\nb\n");
    run.trace.assert_execs_exactly(["/usr/bin/sort"]);
    run.trace.assert_no_network();
}

/// Your own Rust code, run in a fresh copy of the test binary: the input
/// goes in serialized, the result comes back, and the trace holds the
/// call alone.
#[traced_test(timeout = "10s")]
fn saving_goes_through_a_rename() {
    // A directory of the test's own, removed when it ends (`tempfile`).
    let dir = tempfile::tempdir().unwrap();
    let run = traced(dir.path().to_path_buf(), |dir: PathBuf| -> Result<(), String> {
        std::fs::write(dir.join("config.tmp"), "answer = 42\n").map_err(|e| e.to_string())?;
        std::fs::rename(dir.join("config.tmp"), dir.join("config")).map_err(|e| e.to_string())
    });
    run.value.unwrap();
    run.trace.assert_renamed(dir.path().join("config.tmp"), dir.path().join("config"));
    run.trace.assert_writes_only_under([dir.path()]);
}

/// The README shows this file's example word for word.
#[test]
fn the_readme_shows_this_example() {
    let readme = include_str!("../../README.md");
    let example = readme
        .split("```rust,no_run\n")
        .filter_map(|b| b.split_once("```").map(|(code, _)| code))
        .find(|code| code.contains("fn sort_runs_alone_and_offline"))
        .expect("the README has the #[traced_test] example");
    let this = include_str!("readme.rs");
    assert!(this.contains(example), "the README's example and tests/traced/readme.rs differ:\n{example}");
}
