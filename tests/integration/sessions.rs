//! Several sessions in one process each see only their own tree.

use std::collections::BTreeSet;
use std::process::Command;

use probity::{EventKind, ExitStatus, Tracer};

use crate::support::{dump, require_tracing};

#[test]
fn parallel_sessions_see_only_their_own_tree() {
    require_tracing();
    let handles: Vec<_> = (0..6)
        .map(|i| {
            std::thread::spawn(move || {
                let mut cmd = Command::new("sh");
                // Each tree forks, execs and exits with its own code.
                cmd.args(["-c", &format!("echo session-{i} | cat >/dev/null; ls /proc/self >/dev/null; exit {i}")]);
                (i, Tracer::new().run(cmd).expect("trace"))
            })
        })
        .collect();
    let traces: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mut all_pids: Vec<BTreeSet<u32>> = Vec::new();
    for (i, t) in &traces {
        assert_eq!(t.outcome.status, ExitStatus::Code(*i));
        assert_eq!(t.outcome.losses.lost_events(), 0);
        // Every process in the trace descends from this session's root.
        let procs = t.processes();
        for p in procs.values() {
            let mut cur = p.pid;
            while cur != t.outcome.root_pid {
                cur = procs[&cur]
                    .parent
                    .unwrap_or_else(|| panic!("pid {} is not in session {i}'s tree:\n{}", p.pid, dump(t)));
            }
        }
        // It ran its own command and nobody else's.
        let argvs: Vec<String> = t
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Exec(x) => Some(x.argv.join(std::ffi::OsStr::new(" ")).to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        assert!(argvs.iter().any(|a| a.contains(&format!("session-{i} "))), "{argvs:?}");
        assert!(!argvs.iter().any(|a| (0..6).any(|j| j != *i && a.contains(&format!("session-{j} ")))), "{argvs:?}");
        // Three execs: sh, cat, ls (echo is a builtin).
        assert_eq!(argvs.len(), 3, "{argvs:?}");
        all_pids.push(procs.keys().copied().collect());
    }
    for (a, pa) in all_pids.iter().enumerate() {
        for pb in all_pids.iter().skip(a + 1) {
            assert!(pa.is_disjoint(pb), "two sessions share pids");
        }
    }
}

#[test]
fn a_finished_session_leaves_nothing_behind() {
    require_tracing();
    // Run sessions back to back: ids and counters are reused cleanly.
    for i in 0..3 {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &format!("exit {i}")]);
        let t = Tracer::new().run(cmd).unwrap();
        assert_eq!(t.outcome.status, ExitStatus::Code(i));
        let first = t.syscalls().next().map(|(_, s)| s.name.to_string());
        assert_eq!(first.as_deref(), Some("execve"), "{:?}\n{}", t.outcome, crate::support::dump(&t));
        assert_eq!(t.outcome.losses, probity::Losses::default());
    }
}

#[test]
fn a_session_closed_while_its_tree_runs_gives_the_next_one_nothing() {
    require_tracing();
    let tracer = Tracer::new();
    // Keeps the programs loaded across the sessions below.
    let mut sleeper = Command::new("sleep");
    sleeper.arg("30");
    let keeper = Killed(tracer.spawn(sleeper).unwrap().pid());
    // A loop of syscalls: the kernel side caches, per CPU, that its thread
    // is traced, until it is switched out, and must stop trusting that
    // once the session is gone. (How soon the loop is switched out after
    // the close, which ends the cache anyway, depends on the machine.)
    let mut busy = Command::new(crate::support::fixture(probity_fixtures::GETPPID_LOOP));
    busy.arg("1000000000");
    let busy = tracer.spawn(busy).unwrap();
    let busy_pid = busy.pid();
    let _busy = Killed(busy_pid);
    std::thread::sleep(std::time::Duration::from_millis(50));
    // Ends the session (its id is free again) with the loop still running.
    drop(busy);
    for _ in 0..3 {
        let t = tracer.run(Command::new("true")).unwrap();
        assert_eq!(t.outcome.status, ExitStatus::Code(0));
        // Neither records the loop made after the close nor those still in
        // the ring when the id was reused.
        assert!(t.events.iter().all(|e| e.pid != busy_pid), "the closed session's loop leaked in:\n{}", dump(&t));
    }
    drop(keeper);
}

/// Kills (and reaps) a process when dropped, even when the test fails.
struct Killed(u32);

impl Drop for Killed {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0 as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
    }
}
