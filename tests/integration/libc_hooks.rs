//! Each hook family: a fixture calls the hooked functions with known
//! arguments; the trace must hold exactly those calls, with their results,
//! and the syscalls each one made linked under it.

use std::process::{Command, Stdio};

use probity::{Arg, EventKind, ExitStatus, Trace, Tracer, TracerKind};
use probity_fixtures as fx;

use crate::support::{dump, fixture, require_tracing};

fn run(name: &str, args: &[&str]) -> Trace {
    require_tracing();
    let mut cmd = Command::new(fixture(name));
    cmd.args(args).stdout(Stdio::null());
    let t = Tracer::new().run(cmd).unwrap();
    assert_eq!(t.outcome.status, ExitStatus::Code(0), "{}", dump(&t));
    assert_eq!(t.outcome.losses.lost_events(), 0, "{:?}", t.outcome.losses);
    t
}

/// An argument as the tests spell it: pointers other than NULL as `PTR`.
fn show(a: &Arg) -> String {
    match a {
        Arg::Ptr(p) if *p != 0 => "PTR".into(),
        other => other.to_string(),
    }
}

/// The libc calls of process `pid` (all of them, in order) as
/// `name(args) = ret`, each followed by the names of the syscalls under it.
fn calls_of(t: &Trace, pid: u32) -> Vec<(String, Vec<String>)> {
    t.events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.pid == pid)
        .filter_map(|(i, e)| {
            let c = e.as_libc()?;
            let args: Vec<String> = c.args.iter().map(show).collect();
            let ret = c.ret.as_ref().map_or("?".to_owned(), show);
            let errno = c.errno.as_ref().map(|e| format!(" {e}")).unwrap_or_default();
            let line = format!("{}({}) = {ret}{errno}", c.function, args.join(", "));
            let under: Vec<String> = t
                .events
                .iter()
                .filter(|s| s.parent() == Some(i))
                .filter_map(|s| match &s.kind {
                    EventKind::Syscall(s) => Some(s.name.to_string()),
                    EventKind::Libc(c) => Some(format!("libc {}", c.function)),
                    _ => None,
                })
                .collect();
            Some((line, under))
        })
        .collect()
}

/// Calls after the program's own start: those of the dynamic loader and
/// libc's init (none are hooked today) are not the fixture's.
fn lines(calls: &[(String, Vec<String>)]) -> Vec<&str> {
    calls.iter().map(|(l, _)| l.as_str()).collect()
}

#[test]
fn file_hooks_record_calls_and_their_syscalls() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let t = run(fx::LIBC_FILES, &[d]);
    let calls = calls_of(&t, t.outcome.root_pid);
    let want = [
        format!(r#"fopen("{d}/a", "w") = PTR"#),
        "fclose(PTR) = 0".into(),
        format!(r#"open("{d}/b", O_WRONLY|O_CREAT|O_TRUNC, 0600) = 3"#),
        "close(3) = 0".into(),
        format!(r#"rename("{d}/a", "{d}/c") = 0"#),
        format!(r#"mkdir("{d}/d", 0755) = 0"#),
        format!(r#"rmdir("{d}/d") = 0"#),
        format!(r#"unlink("{d}/b") = 0"#),
        format!(r#"stat("{d}/c") = 0"#),
        format!(r#"access("{d}/c", 4) = 0"#),
    ];
    assert_eq!(lines(&calls), want, "{}", dump(&t));
    // Each call's syscalls sit under it: fclose flushes, then closes.
    let under = |i: usize| calls[i].1.iter().map(String::as_str).collect::<Vec<_>>();
    // fopen allocates the program's first memory: glibc's malloc sets
    // itself up there, as it does untraced (the library allocates none).
    assert_eq!(under(0), ["getrandom", "brk", "brk", "openat"], "fopen");
    assert_eq!(under(1), ["write", "close"], "fclose");
    assert_eq!(under(2), ["openat"], "open");
    assert_eq!(under(4), ["rename"], "rename");
    assert_eq!(under(5), ["mkdir"], "mkdir");
    assert_eq!(under(8), ["newfstatat"], "stat");
    assert_eq!(under(9), ["access"], "access");
    // The write under fclose is the buffered fputs.
    let fclose = t.events.iter().position(|e| e.as_libc().is_some_and(|c| c.function == "fclose")).unwrap();
    let write = t
        .events
        .iter()
        .find(|e| e.parent() == Some(fclose) && e.as_syscall().is_some_and(|s| s.name == "write"))
        .unwrap();
    assert_eq!(write.as_syscall().unwrap().args[1], Arg::Bytes { data: b"probity\n".to_vec(), len: 8 });
}

#[test]
fn env_hooks_record_names_and_values() {
    let t = run(fx::LIBC_ENV, &[]);
    let calls = calls_of(&t, t.outcome.root_pid);
    let got: Vec<&str> = lines(&calls)
        .into_iter()
        .filter(|l| l.contains("PROBITY_FIXTURE") || l.starts_with("dlopen") || l.starts_with("clearenv"))
        .collect();
    assert_eq!(
        got,
        [
            r#"setenv("PROBITY_FIXTURE", "1", 1) = 0"#,
            r#"getenv("PROBITY_FIXTURE") = "1""#,
            r#"unsetenv("PROBITY_FIXTURE") = 0"#,
            r#"getenv("PROBITY_FIXTURE") = NULL"#,
            r#"putenv("PROBITY_FIXTURE=2") = 0"#,
            r#"secure_getenv("PROBITY_FIXTURE") = "2""#,
            r#"dlopen("libm.so.6", 0x2) = PTR"#,
            "clearenv() = 0",
        ],
        "{}",
        dump(&t)
    );
    // dlopen opened the library: its openat is under the call.
    let dl = calls.iter().find(|(l, _)| l.starts_with("dlopen")).unwrap();
    assert!(dl.1.contains(&"openat".to_owned()), "{:?}", dl.1);
}

#[test]
fn network_hooks_record_addresses_and_resolved_names() {
    let t = run(fx::LIBC_NET, &[]);
    let calls = calls_of(&t, t.outcome.root_pid);
    let l = lines(&calls);
    assert_eq!(l[0], r#"getaddrinfo("localhost", "80", ["127.0.0.1:80"]) = 0"#, "{}", dump(&t));
    assert!(l[1].starts_with(r#"gethostbyname("localhost", ["127.0.0.1"]) = PTR"#), "{l:?}");
    assert_eq!(l[2], "socket(2, 0x1, 0) = 3");
    assert_eq!(l[3], "bind(3, {sa_family=AF_INET, sin_port=htons(0), sin_addr=inet_addr(\"127.0.0.1\")}) = 0");
    assert_eq!(l[4], "listen(3, 1) = 0");
    // The port the kernel chose, from getnameinfo's result.
    let port: u16 = l[5]
        .split("htons(")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{}", l[5]));
    assert_eq!(
        l[5],
        format!(
            r#"getnameinfo({{sa_family=AF_INET, sin_port=htons({port}), sin_addr=inet_addr("127.0.0.1")}}, "127.0.0.1", "{port}", 0x3) = 0"#
        )
    );
    assert_eq!(l[6], "socket(2, 0x1, 0) = 4");
    assert_eq!(
        l[7],
        format!("connect(4, {{sa_family=AF_INET, sin_port=htons({port}), sin_addr=inet_addr(\"127.0.0.1\")}}) = 0")
    );
    assert!(l[8].starts_with("accept(3, {sa_family=AF_INET, sin_port=htons("), "{}", l[8]);
    assert!(l[8].ends_with(") = 5"), "{}", l[8]);
    assert_eq!(&l[9..12], ["close(5) = 0", "close(4) = 0", "close(3) = 0"]);
    // The resolver read /etc/hosts under getaddrinfo; connect's syscall is under connect.
    assert!(calls[0].1.contains(&"openat".to_owned()), "{:?}", calls[0].1);
    assert_eq!(calls[7].1, ["connect"]);
}

#[test]
fn process_hooks_record_spawns_and_execs() {
    let t = run(fx::LIBC_PROCESS, &[]);
    let root = t.outcome.root_pid;
    let calls = calls_of(&t, root);
    let l = lines(&calls);
    let want_prefixes = [
        "fork() = ",
        // The child's pid, then the file and argv.
        "posix_spawnp(",
        r#"system("exit 4") = 1024"#,
        r#"popen("echo hi", "r") = PTR"#,
        r#"execvp("true", ["true"]) = ?"#,
    ];
    let mine: Vec<&str> = l
        .iter()
        .copied()
        .filter(|c| {
            ["fork", "posix_spawnp", "system", "popen", "execvp"].iter().any(|f| c.starts_with(&format!("{f}(")))
        })
        .collect();
    assert_eq!(mine.len(), want_prefixes.len(), "{l:?}\n{}", dump(&t));
    for (got, want) in mine.iter().zip(want_prefixes) {
        assert!(got.starts_with(want), "{got} does not start with {want}");
    }
    assert!(mine[1].ends_with(r#", "true", ["true"]) = 0"#), "{}", mine[1]);
    // fork's child pid is the process the kernel saw forked.
    let child: u32 = mine[0].trim_start_matches("fork() = ").parse().unwrap();
    assert_eq!(t.processes()[&child].parent, Some(root));
    // The forked child records its own side, then exit(3).
    let child_calls = calls_of(&t, child);
    assert_eq!(lines(&child_calls), ["fork() = 0", "exit(3) = ?"], "{}", dump(&t));
    // The exec'd image of the root is `true`, and the preload entered it.
    assert!(t.outcome.uncovered.is_empty(), "{:?}", t.outcome.uncovered);
}

#[test]
fn a_flood_into_a_small_ring_that_must_not_wait_counts_exactly_what_was_lost() {
    require_tracing();
    let (threads, each) = (8u64, 20_000u64);
    let mut cmd = Command::new(fixture(fx::LIBC_FLOOD));
    cmd.args([threads.to_string(), each.to_string()]);
    let t = Tracer::new().with_preload_ring_bytes(4096).with_preload_blocking(false).run(cmd).unwrap();
    assert_eq!(t.outcome.status, ExitStatus::Code(0));
    let recorded = flood_calls(&t);
    let l = &t.outcome.losses;
    assert!(l.preload_ring_full > 0, "the ring was meant to overflow: {l:?}");
    // Every call is recorded or counted. So is each thread's announcement
    // of the ids it learned (one record before its first call), which the
    // full ring may have dropped too: at most one per thread.
    let accounted = recorded + l.preload_ring_full + l.preload_skipped;
    assert!((threads * each..=threads * each + threads).contains(&accounted), "{accounted} accounted for: {l:?}");
    // The trace says it is incomplete.
    assert!(l.lost_events() >= l.preload_ring_full);
}

#[test]
fn a_flood_into_a_small_ring_waits_for_room_and_loses_nothing() {
    require_tracing();
    let (threads, each) = (8u64, 20_000u64);
    let mut cmd = Command::new(fixture(fx::LIBC_FLOOD));
    cmd.args([threads.to_string(), each.to_string()]);
    // 32 records' room for 160,000 calls from 8 threads.
    let t = Tracer::new().with_preload_ring_bytes(4096).run(cmd).unwrap();
    assert_eq!(t.outcome.status, ExitStatus::Code(0));
    let l = &t.outcome.losses;
    assert_eq!((l.preload_ring_full, l.preload_skipped), (0, 0), "{l:?}");
    assert_eq!(flood_calls(&t), threads * each);
    assert_eq!(t.outcome.libc_calls.iter().find(|c| c.name == "getenv").map(|c| c.calls), Some(threads * each));
    // The library's sleeps for room (shared futex waits on the ring) are
    // probity's: taken out and counted. The program's own futex calls
    // (its barrier's, private) stay.
    let futex_ops: Vec<String> = t
        .syscalls()
        .filter(|(_, s)| s.name == "futex")
        .filter_map(|(_, s)| match s.args.get(1) {
            Some(Arg::Flags { text, .. }) => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert!(t.outcome.preload_waits > 0);
    assert!(!futex_ops.iter().any(|op| op == "FUTEX_WAIT"), "{futex_ops:?}");
}

#[test]
fn a_summary_counts_libc_calls_without_keeping_them() {
    require_tracing();
    let (threads, each) = (4u64, 50_000u64);
    let mut cmd = Command::new(fixture(fx::LIBC_FLOOD));
    cmd.args([threads.to_string(), each.to_string()]);
    let t = Tracer::new().with_tracers(&[TracerKind::Preload]).with_summary(true).run(cmd).unwrap();
    assert_eq!(t.outcome.status, ExitStatus::Code(0));
    assert_eq!(flood_calls(&t), 0, "calls are counted, not kept");
    let getenv = t.outcome.libc_calls.iter().find(|c| c.name == "getenv").expect("getenv counted");
    assert_eq!((getenv.calls, getenv.errors), (threads * each, 0));
    assert!(getenv.total_ns > 0);
    assert_eq!(t.outcome.losses.lost_events(), 0);
}

/// The fixture's own `getenv("PROBITY_FLOOD")` calls in the trace.
fn flood_calls(t: &Trace) -> u64 {
    t.events
        .iter()
        .filter(|e| {
            e.as_libc().is_some_and(|c| {
                c.function == "getenv" && c.args == [Arg::Path { path: "PROBITY_FLOOD".into(), truncated: false }]
            })
        })
        .count() as u64
}
