//! Rust functions run by [`probity::traced`] in a re-executed copy of this
//! binary: input in, result out, and the trace of the call alone.

use std::path::PathBuf;

use probity::{traced, traced_test, EventKind, ExitStatus};

/// Saves `text` to `dir/name` atomically: a temporary file, then a rename.
fn save_atomically((dir, name, text): (PathBuf, String, String)) -> std::io::Result<u64> {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, &text)?;
    std::fs::rename(&tmp, dir.join(&name))?;
    Ok(text.len() as u64)
}

#[traced_test]
fn a_function_gets_its_input_and_returns_its_result() {
    let dir = tempfile::tempdir().unwrap();
    let input = (dir.path().to_path_buf(), "config.toml".to_string(), "answer = 42\n".to_string());
    let run = traced(input, |i| save_atomically(i).map_err(|e| e.to_string()));
    assert_eq!(run.value, Ok(12));
    assert_eq!(run.status, ExitStatus::Code(0));
    // The child used the test's own temporary directory.
    assert_eq!(std::fs::read_to_string(dir.path().join("config.toml")).unwrap(), "answer = 42\n");
    let tmp = dir.path().join(".config.toml.tmp");
    run.trace.assert_created(&tmp);
    run.trace.assert_renamed(&tmp, dir.path().join("config.toml"));
    run.trace.assert_no_network();
    run.trace.assert_execs_exactly(Vec::<&str>::new());
}

#[traced_test]
fn only_the_call_is_traced_not_the_child_start_up() {
    let run = traced(PathBuf::from("/etc/hostname"), |p: PathBuf| std::fs::metadata(&p).is_ok());
    assert!(run.value);
    let names: Vec<&str> = run.trace.syscalls().map(|(_, s)| &*s.name).collect();
    // statx for the metadata, then the process exit; nothing of the
    // dynamic loader, libtest or the shared memory set-up.
    assert_eq!(names, ["statx", "exit_group"], "{}", crate::dump(&run.trace));
    assert!(run.trace.syscalls().path("/etc/hostname").count() == 1);
}

#[traced_test]
fn threads_and_child_processes_of_the_function_are_in_the_trace() {
    let run = traced((), |()| {
        let handles: Vec<_> = (0..3)
            .map(|i| std::thread::spawn(move || std::fs::metadata(format!("/nonexistent/probity-{i}")).is_ok()))
            .collect();
        let found = handles.into_iter().map(|h| h.join().unwrap()).filter(|ok| *ok).count();
        let status = std::process::Command::new("true").status().unwrap();
        (found, status.success())
    });
    assert_eq!(run.value, (0, true));
    for i in 0..3 {
        run.trace.syscalls().path(format!("/nonexistent/probity-{i}")).assert_exactly(1);
    }
    run.trace.assert_execs_exactly(["/usr/bin/true"]);
    let threads = run
        .trace
        .events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::Fork(_)) && e.pid == run.trace.outcome.root_pid)
        .count();
    assert!(threads >= 4, "three threads and one process: {}", crate::dump(&run.trace));
    crate::assert_own_tree(&run.trace);
}

#[traced_test(preload_only)]
fn a_function_under_the_preload_tracer_alone() {
    let dir = tempfile::tempdir().unwrap();
    let run = traced(dir.path().to_path_buf(), |d: PathBuf| std::fs::write(d.join("x"), "1").is_ok());
    assert!(run.value);
    let libc: Vec<String> = run.trace.events().kind("libc").map(probity::text::event_line).collect();
    assert!(libc.iter().any(|l| l.contains("open64") && l.contains("/x\"")), "{libc:#?}");
    assert!(!libc.iter().any(|l| l.contains("PROBITY")), "start-up calls are cut off: {libc:#?}");
}

#[traced_test]
fn a_snapshot_of_the_call_is_stable() {
    let dir = tempfile::tempdir().unwrap();
    let run = traced(dir.path().to_path_buf(), |d: PathBuf| {
        save_atomically((d, "settings.json".into(), "{}".into())).is_ok()
    });
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

/// As in any Rust program, a write to a closed pipe is an error, not a
/// fatal SIGPIPE, in the re-executed child.
#[traced_test]
fn a_closed_pipe_is_an_error_in_the_child() {
    let run = traced((), |()| {
        use std::io::Write;
        let mut child = std::process::Command::new("true").stdin(std::process::Stdio::piped()).spawn().unwrap();
        let mut pipe = child.stdin.take().unwrap();
        let _ = child.wait();
        pipe.write_all(&vec![0u8; 1 << 20]).map_err(|e| format!("{:?}", e.kind()))
    });
    assert_eq!(run.value, Err("BrokenPipe".to_string()));
}

/// A traced function is already traced: probity runs inside it are refused
/// with what to do instead.
#[traced_test]
fn a_nested_traced_run_is_refused() {
    let run = traced((), |()| probity::Cmd::new("true").try_run().err().map(|e| e.to_string()));
    let msg = run.value.expect("the nested run must fail");
    assert!(msg.contains("already traced") && msg.contains("std::process::Command"), "{msg}");
}
