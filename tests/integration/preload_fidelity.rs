//! The preload library must not change what the traced program does:
//! under both tracers, every task makes the syscalls it makes under the
//! eBPF tracer alone, with the same arguments, once the library's own
//! (announced, and cut by the harness) are out.
//!
//! Compared per task, in order: the syscall's name, and the arguments
//! that do not change from run to run (paths, flags, descriptors, argv),
//! and the errno. Addresses, sizes and pids are left out (ASLR), and so
//! are `futex` and `rt_sigreturn`, whose number depends on timing (who
//! waits for a lock, when a signal lands), not on behaviour. So are the
//! dynamic loader's own anonymous allocations while it loads the program:
//! the loader keeps its bookkeeping for every object it loads, the
//! library included, in pages it maps as it needs them, so their number
//! and sizes shift with one more object (see the preload library's known
//! limitations).

use std::process::{Command, Stdio};

use probity::{Arg, EventKind, Trace, TracerKind};

/// One task's syscalls as compared: name, stable arguments, errno.
type Calls = Vec<String>;

fn trace(program: &str, args: &[&str], env: &[(&str, &str)], tracers: &[TracerKind]) -> Trace {
    crate::support::require_tracing();
    let mut cmd = Command::new(program);
    cmd.args(args).envs(env.iter().copied()).stdout(Stdio::null());
    let t = probity::Tracer::new().with_tracers(tracers).run(cmd).unwrap();
    assert_eq!(t.outcome.losses.lost_events(), 0, "{program}: events were lost");
    assert_eq!(t.outcome.status, probity::ExitStatus::Code(0), "{program} {args:?} failed");
    t
}

/// The text of an argument that is the same in every run, or `_`.
fn stable(a: &Arg) -> String {
    match a {
        Arg::Path { path, .. } => format!("{path:?}"),
        Arg::Flags { text, .. } => text.clone(),
        Arg::Fd(fd) => fd.to_string(),
        Arg::Strings { items, .. } => format!("{items:?}"),
        _ => "_".into(),
    }
}

/// The raw value of an integer-like argument.
fn value(a: Option<&Arg>) -> Option<u64> {
    match a? {
        Arg::Int(v) => Some(*v as u64),
        Arg::Hex(v) | Arg::Ptr(v) | Arg::Flags { value: v, .. } => Some(*v),
        Arg::Fd(fd) => Some(i64::from(*fd) as u64),
        _ => None,
    }
}

/// Each task's compared syscalls, in order; the tasks sorted (their ids
/// differ between runs).
fn per_task(t: &Trace) -> Vec<Calls> {
    let mut events: Vec<_> = t.events.iter().collect();
    events.sort_by_key(|e| e.ts_ns);
    let mut tasks: std::collections::BTreeMap<u32, (bool, Calls)> = Default::default();
    for e in events {
        let EventKind::Syscall(s) = &e.kind else { continue };
        // `loading`: since the task's last exec, the loader has not
        // finished: its last syscall, before the constructors run, unmaps
        // `ld.so.cache` (every program here finds libc through it).
        let (loading, calls) = tasks.entry(e.tid).or_default();
        match &*s.name {
            "futex" | "rt_sigreturn" => continue,
            "execve" | "execveat" if s.errno.is_none() => *loading = true,
            "munmap" => *loading = false,
            // An anonymous mapping at an address of the kernel's choice,
            // by the loader's allocator (fd -1).
            "mmap" if *loading && value(s.args.first()) == Some(0) && value(s.args.get(4)) == Some(u64::MAX) => {
                continue
            }
            _ => {}
        }
        let args: Vec<String> = s.args.iter().map(stable).collect();
        let errno = s.errno.as_deref().map(|e| format!(" {e}")).unwrap_or_default();
        calls.push(format!("{}({}){errno}", s.name, args.join(", ")));
    }
    let mut v: Vec<Calls> = tasks.into_values().map(|(_, c)| c).collect();
    v.sort();
    v
}

/// Runs `program` (with `env` added) under the eBPF tracer alone and
/// under both, and fails with the first differences when a task's
/// syscalls differ.
fn check(program: &str, args: &[&str], env: &[(&str, &str)]) {
    let alone = trace(program, args, env, &[TracerKind::Ebpf]);
    let both = trace(program, args, env, &[TracerKind::Ebpf, TracerKind::Preload]);
    // The library really was there: it recorded calls, entered every
    // image, and had syscalls of its own to cut.
    assert!(both.events.iter().any(|e| matches!(e.kind, EventKind::Libc(_))), "{program}: no libc calls recorded");
    assert!(both.outcome.uncovered.is_empty(), "{program}: images the library missed: {:?}", both.outcome.uncovered);
    assert!(both.outcome.own_syscalls > 0, "{program}: the library's loading was not seen");
    let (ours, theirs) = (per_task(&both), per_task(&alone));
    if ours != theirs {
        panic!("{program} {args:?}: the preload library changed the program's syscalls\n{}", diff(&ours, &theirs));
    }
}

/// Where the two runs part, task by task, with a little context.
fn diff(both: &[Calls], alone: &[Calls]) -> String {
    let mut out = format!("{} tasks under both tracers, {} under the eBPF tracer alone\n", both.len(), alone.len());
    for (i, (a, b)) in both.iter().zip(alone).enumerate().filter(|(_, (a, b))| a != b) {
        let at = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
        let from = at.saturating_sub(3);
        out += &format!(
            "task {i}: first difference at call {at}\n  both tracers: ... {}\n  eBPF alone:   ... {}\n",
            a[from..(at + 4).min(a.len())].join(" "),
            b[from..(at + 4).min(b.len())].join(" ")
        );
    }
    out
}

#[test]
fn a_shell_pipeline_runs_as_under_the_kernel_tracer_alone() {
    check("/bin/sh", &["-c", "ls / | wc -l"], &[]);
}

#[test]
fn python_threads_run_as_under_the_kernel_tracer_alone() {
    // Debian's interpreter itself, not a version manager's shim script.
    // Each thread does its work before the next is created, and none
    // ends: the process leaves with `os._exit` while they wait. What is
    // left to timing otherwise: whether a thread exits before the
    // process does, and which stack a new thread reuses. One malloc arena
    // for all threads: glibc aligns each new arena by unmapping one or
    // two pieces of a larger mapping, depending on where it landed (ASLR).
    let script = "import os, threading\n\
                  go = threading.Event()\n\
                  def work(done):\n    with open('/dev/null', 'rb') as f: f.read()\n    done.set()\n    go.wait()\n\
                  for _ in range(2):\n    done = threading.Event()\n    threading.Thread(target=work, args=(done,), daemon=True).start()\n    done.wait()\n\
                  os._exit(0)\n";
    check("/usr/bin/python3", &["-c", script], &[("MALLOC_ARENA_MAX", "1")]);
}

#[test]
fn a_threaded_c_program_runs_as_under_the_kernel_tracer_alone() {
    // Hooked calls before the first malloc, in new threads, and in a
    // forked child before it execs.
    let program = probity_fixtures::path(probity_fixtures::THREADS_LIBC);
    check(program.to_str().unwrap(), &[], &[]);
}

#[test]
fn the_library_needs_nothing_but_libc_and_the_loader() {
    let library = probity::preload_library().unwrap();
    let out = Command::new("readelf")
        .arg("-dW")
        .arg(&library)
        .output()
        .expect("readelf (binutils) reads the library's dynamic section here: install binutils");
    assert!(out.status.success(), "readelf -d {} failed: {}", library.display(), String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let needed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next())
        .collect();
    assert!(!needed.is_empty(), "no NEEDED entries in readelf's output:\n{text}");
    assert!(
        needed.iter().all(|n| *n == "libc.so.6" || n.starts_with("ld-linux")),
        "the preload library makes every traced process load more than libc: {needed:?}"
    );
}
