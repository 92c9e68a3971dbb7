//! What confsave promises about the system, proven by tracing it.
//! Run as root: `sudo -E cargo test -p confsave`.

use std::path::PathBuf;

use confsave::Config;
use probity::{traced, traced_test, Cmd};

fn config() -> Config {
    Config { name: "demo".into(), retries: 3, endpoints: vec!["https://example.com/report".into()] }
}

/// The config reaches its final name only by a rename of a synced
/// temporary file: the final path is never opened for writing.
#[traced_test]
fn save_is_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let run =
        traced(dir.path().to_path_buf(), |dir: PathBuf| confsave::save(&dir, &config()).map_err(|e| e.to_string()));
    run.value.unwrap();
    let tmp = dir.path().join(".confsave.json.tmp");
    let fin = confsave::path_in(dir.path());
    run.trace.assert_created(&tmp);
    run.trace.assert_wrote(&tmp);
    run.trace.assert_renamed(&tmp, &fin);
    // fsync before the rename, and the final file never written in place.
    let fsync = run.trace.syscalls().named("fsync");
    fsync.assert_exactly(1);
    run.trace.syscalls().named("fsync").assert_before(run.trace.syscalls().named("rename"));
    run.trace.syscalls().named_any(["open", "openat", "creat"]).path(&fin).assert_none();
    // The whole file in one write, not a syscall per JSON token.
    run.trace.syscalls().named("write").assert_exactly(1);
    assert_eq!(confsave::load(dir.path()).unwrap(), config());
}

/// `summary` is pure: no syscalls touch files or the network.
#[traced_test]
fn summary_touches_nothing() {
    let run = traced(config(), |c: Config| confsave::summary(&c));
    assert_eq!(run.value, "demo (3 retries, 1 endpoints)");
    run.trace.assert_no_network();
    run.trace.syscalls().named_any(["open", "openat", "creat", "unlink", "rename"]).assert_none();
}

/// The CLI runs `uname` and nothing else, and writes only in its directory.
#[traced_test]
fn the_cli_exec_tree_is_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let run = Cmd::new(env!("CARGO_BIN_EXE_confsave")).arg("stamp").arg(dir.path()).run();
    run.assert_success();
    assert!(run.stdout.starts_with("kernel "), "{}", run.stdout);
    run.trace.assert_execs_exactly([env!("CARGO_BIN_EXE_confsave"), "/usr/bin/uname"]);
    run.trace.assert_writes_only_under([dir.path()]);
    run.trace.assert_no_network();
}

/// The syscall pattern of a save, kept as a reviewed snapshot: a change in
/// how confsave writes shows up as a diff here.
#[traced_test]
fn save_syscall_pattern() {
    let dir = tempfile::tempdir().unwrap();
    let run = traced(dir.path().to_path_buf(), |dir: PathBuf| confsave::save(&dir, &config()).is_ok());
    assert!(run.value);
    let text = run
        .trace
        .syscalls()
        .path_prefix(dir.path())
        .snapshot()
        .with_replacement(dir.path().to_str().unwrap(), "$DIR")
        .text();
    insta::assert_snapshot!(text);
}

/// A bad directory gives an error, and the trace shows the failed create.
#[traced_test]
fn save_into_a_missing_directory_fails_cleanly() {
    let run = traced(PathBuf::from("/nonexistent/confsave"), |dir: PathBuf| {
        confsave::save(&dir, &config()).map_err(|e| e.kind().to_string())
    });
    assert_eq!(run.value, Err("entity not found".to_string()));
    run.trace.syscalls().path("/nonexistent/confsave/.confsave.json.tmp").errno("ENOENT").assert_exactly(1);
    run.trace.syscalls().named("rename").assert_none();
}

/// A whole-trace snapshot of the CLI, which runs `uname` and reads its
/// output through pipes, is byte-identical over 20 runs.
#[traced_test]
fn cli_whole_trace_snapshot_is_stable_over_20_runs() {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap().trim().to_owned();
    let mut first: Option<String> = None;
    for n in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let run = Cmd::new(env!("CARGO_BIN_EXE_confsave"))
            .arg("stamp")
            .arg(dir.path())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .run();
        run.assert_success();
        let text = run.trace.snapshot().with_replacement(&release, "<release>").text();
        assert!(text.contains("+++ exec \"/usr/bin/uname\""), "{text}");
        match &first {
            None => first = Some(text),
            Some(f) => {
                let at = f.lines().zip(text.lines()).position(|(a, b)| a != b);
                let line = |s: &str| at.and_then(|i| s.lines().nth(i)).unwrap_or("(end)").to_owned();
                assert!(*f == text, "run {n} differs from run 0 at line {at:?}:\n  {}\n  {}", line(f), line(&text));
            }
        }
    }
}
