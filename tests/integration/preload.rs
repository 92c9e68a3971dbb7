//! The preload layer: programs behave exactly as untraced, libc calls land
//! in the same timeline as syscalls, and coverage gaps are marked.

use std::process::{Command, Stdio};

use probity::{Arg, EventKind, ExitStatus, Trace, Tracer, TracerKind};
use probity_fixtures as fx;

use crate::support::{dump, fixture, require_tracing};

/// A run's stdout and how it ended.
type Run<S> = (Vec<u8>, S);

/// Runs `argv` untraced and traced (eBPF and preload), with stdout to a
/// file each time; returns both outputs and statuses, and the trace.
fn both(argv: &[&str]) -> (Run<Option<i32>>, Run<ExitStatus>, Trace) {
    require_tracing();
    let dir = tempfile::tempdir().unwrap();
    let cmd = |out: &std::path::Path| {
        let mut c = Command::new(probity::resolve_program(argv[0]).unwrap());
        std::os::unix::process::CommandExt::arg0(&mut c, argv[0]);
        c.args(&argv[1..]).stdout(std::fs::File::create(out).unwrap()).stdin(Stdio::null());
        c
    };
    let plain_out = dir.path().join("plain");
    let status = cmd(&plain_out).status().unwrap();
    let traced_out = dir.path().join("traced");
    let trace = Tracer::new().run(cmd(&traced_out)).unwrap();
    (
        (std::fs::read(plain_out).unwrap(), status.code()),
        (std::fs::read(traced_out).unwrap(), trace.outcome.status),
        trace,
    )
}

fn transparent(argv: &[&str]) -> Trace {
    let ((plain, code), (traced, status), trace) = both(argv);
    assert_eq!(String::from_utf8_lossy(&traced), String::from_utf8_lossy(&plain), "{argv:?}: stdout differs");
    assert_eq!(Some(status.shell_code()), code, "{argv:?}: exit status differs");
    assert_eq!(trace.outcome.losses.lost_events(), 0, "{argv:?}: {:?}", trace.outcome.losses);
    assert_eq!(trace.outcome.tracers, [TracerKind::Ebpf, TracerKind::Preload]);
    trace
}

#[test]
fn coreutils_and_shell_pipelines_behave_as_untraced() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), "b\na\nc\n").unwrap();
    let d = dir.path().to_str().unwrap();
    transparent(&["ls", "-la", "/usr/include/linux/netfilter"]);
    transparent(&["sort", &format!("{d}/f")]);
    transparent(&["sh", "-c", &format!("cat {d}/f | sort | uniq -c | wc -l; ls /nonexistent 2>/dev/null; exit 3")]);
    transparent(&["tar", "cf", "-", "/usr/include/linux/netfilter"]);
    transparent(&["date", "-d", "@0", "-u"]);
}

#[test]
fn python_with_threads_subprocess_fork_and_signals_behaves_as_untraced() {
    let script = r#"
import threading, subprocess, os, signal
got = []
signal.signal(signal.SIGUSR1, lambda s, f: got.append(s))
os.kill(os.getpid(), signal.SIGUSR1)
ts = [threading.Thread(target=lambda i=i: got.append(sum(range(i * 1000)))) for i in range(4)]
[t.start() for t in ts]
[t.join() for t in ts]
out = subprocess.run(['sh', '-c', 'echo sub; ls / | wc -l'], capture_output=True, text=True).stdout
pid = os.fork()
if pid == 0:
    os._exit(7)
_, st = os.waitpid(pid, 0)
print(len(got), out.split(), os.WEXITSTATUS(st))
"#;
    let t = transparent(&["/usr/bin/python3", "-c", script]);
    // The libc layer saw the subprocess being spawned.
    assert!(t.events.iter().any(|e| e.as_libc().is_some()), "{}", dump(&t));
}

#[test]
fn libc_calls_and_their_syscalls_share_one_timeline() {
    let t = transparent(&["ls", "/nonexistent-probity"]);
    // ls asks for TZ and friends with getenv: no syscall under it.
    let (i, _) = t
        .events
        .iter()
        .enumerate()
        .find(|(_, e)| {
            e.as_libc().is_some_and(|c| {
                c.function == "getenv" && c.args == [Arg::Path { path: "TZ".into(), truncated: false }]
            })
        })
        .unwrap_or_else(|| panic!("no getenv(\"TZ\"):\n{}", dump(&t)));
    let call = t.events[i].as_libc().unwrap();
    assert_eq!(call.ret, Some(Arg::Ptr(0)), "TZ is unset in the test environment");
    assert!(call.errno.is_none());
    assert!(!t.events.iter().any(|e| e.parent() == Some(i)));
    // Both layers' events are in start order.
    assert!(t.events.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns));
}

#[test]
fn a_static_program_is_traced_by_ebpf_and_marked_without_libc_layer() {
    require_tracing();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let mut cmd = Command::new(fixture(fx::STATIC_KNOWN_IO));
    cmd.args([out.to_str().unwrap(), "0"]);
    let t = Tracer::new().run(cmd).unwrap();
    let root = t.outcome.root_pid;
    assert_eq!(t.outcome.status, ExitStatus::Code(0));
    // eBPF saw everything; the preload saw nothing of the static image...
    assert!(t.syscalls().any(|(e, s)| e.pid == root && s.name == "openat" && s.path() == Some(out.as_path())));
    assert!(!t.events.iter().any(|e| e.pid == root && e.as_libc().is_some()), "{}", dump(&t));
    // ...and the trace says so, and why; /bin/true, which it runs, is covered.
    let u: Vec<_> = t.outcome.uncovered.iter().map(|u| (u.pid, u.tracer, u.reason.as_str())).collect();
    assert_eq!(u, [(root, TracerKind::Preload, "statically linked (no dynamic loader)")], "{}", dump(&t));
}

#[test]
fn preload_alone_works_unprivileged_and_says_so() {
    require_tracing();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let json = dir.path().join("t.jsonl");
    // setuid from root to nobody drops every capability.
    let (_bin_dir, bin) = crate::support::probity_for_nobody();
    let o = Command::new(&bin)
        .args(["run", "--tracers", "preload", "--json", json.to_str().unwrap(), "--", "ls", "/nonexistent-probity"])
        .current_dir("/")
        .env("TMPDIR", "/tmp")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "ls's own status: {err}");
    assert!(err.contains("preload tracer only"), "{err}");
    assert!(err.contains("libc getenv(\"TZ\") = NULL"), "{err}");
    assert!(!err.contains("openat("), "no syscalls without eBPF: {err}");
    let text = std::fs::read_to_string(&json).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["tracers"], serde_json::json!(["preload"]));
    assert!(text.lines().any(|l| l.contains(r#""kind":"libc""#) && l.contains(r#""function":"getenv""#)));
}

#[test]
fn json_links_syscalls_to_their_libc_call() {
    let t = transparent(&["/usr/bin/python3", "-c", "import subprocess; subprocess.run(['true'])"]);
    let line = serde_json::to_string(&t.events).unwrap();
    let back: Vec<probity::Event> = serde_json::from_str(&line).unwrap();
    assert_eq!(back, t.events);
    // Every link points at a libc call of the same thread that encloses it.
    for e in &t.events {
        if let Some(p) = e.parent() {
            let parent = &t.events[p];
            assert!(matches!(parent.kind, EventKind::Libc(_)));
            assert_eq!(parent.tid, e.tid);
            assert!(parent.ts_ns <= e.ts_ns && e.end_ns() <= parent.end_ns());
        }
    }
}

use std::os::unix::process::CommandExt;

/// Both ways of stamping preload records (the time-stamp counter,
/// converted, and `CLOCK_MONOTONIC` read directly) put a libc call around
/// the syscall it made.
#[test]
fn libc_calls_enclose_their_syscalls_with_either_preload_clock() {
    require_tracing();
    // Any other value than "monotonic" leaves the choice to probity (the
    // counter, on this machine's kind).
    for clock in ["default", "monotonic"] {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("t.jsonl");
        let work = dir.path().join("w");
        std::fs::create_dir(&work).unwrap();
        let st = Command::new(env!("CARGO_BIN_EXE_probity"))
            .env("PROBITY_PRELOAD_CLOCK", clock)
            .args(["run", "-o", "/dev/null", "--json"])
            .arg(&json)
            .arg("--")
            .arg(fixture(fx::LIBC_FILES))
            .arg(&work)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "{clock}: {st}");
        let t = Trace::load(&json).unwrap();
        let b = work.join("b");
        let (i, _) = t
            .events
            .iter()
            .enumerate()
            .find(|(_, e)| {
                e.as_libc().is_some_and(|c| {
                    c.function == "open"
                        && c.args.first() == Some(&Arg::Path { path: b.to_str().unwrap().into(), truncated: false })
                })
            })
            .unwrap_or_else(|| panic!("{clock}: no open(b):\n{}", dump(&t)));
        let inner: Vec<&str> = t.syscalls().filter(|(_, s)| s.parent == Some(i)).map(|(_, s)| &*s.name).collect();
        assert_eq!(inner, ["openat"], "{clock}:\n{}", dump(&t));
    }
}

#[test]
fn the_librarys_own_syscalls_are_cut_and_the_programs_kept() {
    // sh forks and execs cat: two images, each loading the library.
    let t = transparent(&["sh", "-c", "cat /etc/hostname; true"]);
    let paths: Vec<(u32, &str)> = t.syscalls().filter_map(|(e, s)| Some((e.pid, s.path()?.to_str()?))).collect();
    assert!(
        !paths.iter().any(|(_, p)| p.contains("libprobity_preload")),
        "the library's loading is in the trace:\n{}",
        dump(&t)
    );
    // What the program's own loader and code did stays.
    assert!(paths.iter().any(|(_, p)| *p == "/etc/hostname"), "{}", dump(&t));
    let libc_opens = paths.iter().filter(|(_, p)| p.ends_with("/libc.so.6")).count();
    assert!(libc_opens >= 2, "each image's own libc load stays:\n{}", dump(&t));
    // The loader opens, reads, maps and closes the library in each image.
    assert!(t.outcome.own_syscalls >= 2 * 4, "{} own syscalls", t.outcome.own_syscalls);
}
