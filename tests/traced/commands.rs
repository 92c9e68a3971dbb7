//! Commands traced with [`probity::Cmd`]: arguments, environment, working
//! directory, standard input, output and exit status come back with the
//! trace.

use probity::{traced_test, Cmd, ExitStatus, TracerKind};

#[traced_test]
fn a_command_returns_its_output_status_and_trace() {
    let run = Cmd::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]).run();
    assert_eq!(run.stdout, "out\n");
    assert_eq!(run.stderr, "err\n");
    assert_eq!(run.status, ExitStatus::Code(3));
    assert_eq!(run.trace.outcome.status, ExitStatus::Code(3));
    assert_eq!(run.trace.outcome.tracers, [TracerKind::Ebpf, TracerKind::Preload]);
    assert_eq!(run.trace.outcome.losses.lost_events(), 0);
    run.trace.assert_execs_exactly(["/usr/bin/sh"]);
    let writes: Vec<String> = run.trace.syscalls().named("write").map(|(e, _)| probity::text::event_line(e)).collect();
    assert_eq!(writes.len(), 2, "{}", crate::dump(&run.trace));
    assert!(writes[0].contains("\"out\\n\", 4) = 4") && writes[1].contains("\"err\\n\", 4) = 4"), "{writes:#?}");
}

#[traced_test]
fn arguments_environment_directory_and_stdin_reach_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let run = Cmd::new("sh")
        .args(["-c", "pwd; echo \"$PROBITY_TEST_VALUE\"; cat > copied.txt"])
        .env("PROBITY_TEST_VALUE", "from the test")
        .current_dir(dir.path())
        .stdin("typed on stdin\n")
        .run();
    run.assert_success();
    let real = dir.path().canonicalize().unwrap();
    assert_eq!(run.stdout, format!("{}\nfrom the test\n", real.display()));
    assert_eq!(std::fs::read_to_string(dir.path().join("copied.txt")).unwrap(), "typed on stdin\n");
    run.trace.assert_created(real.join("copied.txt"));
    run.trace.assert_wrote(real.join("copied.txt"));
}

#[traced_test]
fn a_pipeline_exec_tree_is_pinned() {
    let run = Cmd::new("sh").args(["-c", "echo b a | tr ' ' '\\n' | sort"]).run();
    run.assert_success();
    assert_eq!(run.stdout, "a\nb\n");
    run.trace.assert_execs_exactly(["/usr/bin/sh", "/usr/bin/tr", "/usr/bin/sort"]);
    run.trace.assert_no_network();
    crate::assert_own_tree(&run.trace);
}

#[traced_test]
fn a_fixture_with_threads_fork_and_exec_is_traced_whole() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.txt");
    let run = Cmd::new(probity_fixtures::path(probity_fixtures::KNOWN_IO)).arg(&out).arg("7").run();
    assert_eq!(run.status, ExitStatus::Code(7));
    run.trace.assert_execs_exactly([probity_fixtures::path(probity_fixtures::KNOWN_IO).to_str().unwrap(), "/bin/true"]);
    run.trace.assert_wrote(&out);
    run.trace.syscalls().named("getppid").assert_exactly(2);
    crate::assert_own_tree(&run.trace);
}

#[traced_test]
fn a_missing_command_fails_with_its_name() {
    let err = Cmd::new("no-such-probity-command").try_run().unwrap_err();
    assert_eq!(err.to_string(), "command not found: no-such-probity-command");
}

#[traced_test]
#[should_panic(expected = "probity: expected the child to exit with 0, but it exited with 1")]
fn assert_success_names_the_status() {
    Cmd::new("false").run().assert_success();
}

#[traced_test]
fn a_test_may_return_a_result() -> Result<(), String> {
    let run = Cmd::new("true").run();
    if run.status == ExitStatus::Code(0) {
        Ok(())
    } else {
        Err(format!("true {}", run.status))
    }
}

#[traced_test(preload_only)]
fn preload_only_traces_libc_calls_alone() {
    let run = Cmd::new("sh").args(["-c", "cat /etc/hostname >/dev/null"]).run();
    run.assert_success();
    assert_eq!(run.trace.outcome.tracers, [TracerKind::Preload]);
    assert!(run.trace.events().kind("libc").count() > 0, "{}", crate::dump(&run.trace));
    assert_eq!(run.trace.syscalls().count(), 0, "no kernel tracer, no syscalls");
    // The library covered every process: "no network" decides on its
    // account, which a gate never passes on.
    run.trace.assert_no_network();
    assert!(run.trace.check_network_gate(None::<&[&str]>).is_err());
}

/// The Rust fixture, dynamic and static: threads, files and a child, all
/// seen; the preload tracer says it cannot enter the static one.
#[traced_test]
fn a_rust_fixture_dynamic_and_static() {
    for name in [probity_fixtures::RUST_WORKERS, probity_fixtures::STATIC_RUST_WORKERS] {
        let dir = tempfile::tempdir().unwrap();
        let program = probity_fixtures::path(name);
        let run = Cmd::new(&program).arg(dir.path()).run();
        run.assert_success();
        assert_eq!(run.stdout, "workers done\n");
        run.trace.assert_execs_exactly([program.to_str().unwrap(), "/bin/true"]);
        for n in 0..2 {
            let file = dir.path().join(format!("worker-{n}"));
            run.trace.assert_created(&file);
            run.trace.assert_wrote(&file);
        }
        let threads = run
            .trace
            .events
            .iter()
            .filter(|e| e.pid == run.trace.outcome.root_pid && matches!(e.kind, probity::EventKind::Fork(_)))
            .count();
        assert!(threads >= 3, "two threads and a child process from {name}:\n{}", crate::dump(&run.trace));
        let uncovered: Vec<String> = run.trace.outcome.uncovered.iter().map(|u| format!("{u:?}")).collect();
        if name.starts_with("static_") {
            assert!(uncovered.iter().any(|u| u.contains("static")), "{uncovered:?}");
        } else {
            assert!(uncovered.is_empty(), "{uncovered:?}");
        }
        crate::assert_own_tree(&run.trace);
    }
}

/// Nothing of the test's environment reaches the command; the preload
/// tracer's own two variables do (it works through them).
#[traced_test]
fn env_clear_is_honoured() {
    let run = Cmd::new("/usr/bin/env").env_clear().env("ONLY", "1").run();
    run.assert_success();
    let mut vars: Vec<&str> = run.stdout.lines().map(|l| l.split('=').next().unwrap_or_default()).collect();
    vars.sort_unstable();
    assert_eq!(vars, ["LD_PRELOAD", "ONLY", "PROBITY_PRELOAD_RING"], "{}", run.stdout);
}

/// A bare name is found in the PATH the command gets, as `execvp` would:
/// a stub put first in PATH is what runs.
#[traced_test]
fn a_stub_first_in_the_commands_path_is_the_one_run() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let stub = dir.path().join("uname");
    std::fs::write(&stub, "#!/bin/sh\necho FAKE\n").unwrap();
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = Cmd::new("uname").env("PATH", format!("{}:/usr/bin:/bin", dir.path().display())).run();
    run.assert_success();
    assert_eq!(run.stdout, "FAKE\n");
    run.trace.assert_execs_at_least([stub.to_str().unwrap()]);
}

/// An orphan the preload tracer cannot see keeps stdout open: the run
/// still ends with the tree, and says why the output may be cut.
#[traced_test(preload_only, timeout = "20s")]
fn an_orphan_holding_stdout_does_not_hold_the_test() {
    let run = Cmd::new("sh").args(["-c", "sleep 5 & echo hi"]).run();
    run.assert_success();
    assert!(run.stdout.starts_with("hi\n"), "{}", run.stdout);
    assert!(run.stdout.contains("the pipe is still open"), "{}", run.stdout);
}

#[traced_test]
fn the_environment_keeps_the_order_its_changes_were_made_in() {
    // `std::process::Command` sorts the environment once it is changed;
    // `Cmd` keeps the order, changing variables in place.
    let run = Cmd::new("/usr/bin/env")
        .env_clear()
        .env("ZED", "1")
        .env("ALPHA", "2")
        .env("ZED", "3")
        .env("GONE", "4")
        .env_remove("GONE")
        .tracer(probity::Tracer::new().with_tracers(&[TracerKind::Ebpf]))
        .run();
    run.assert_success();
    assert_eq!(run.stdout, "ZED=3\nALPHA=2\n");
}
