//! The start-up noise a snapshot leaves out: the dynamic loader's work,
//! libc's, Rust's and Python's start-up, run-time file lookups, and what
//! the scheduler decides (see [`Snapshot::with_noise`](crate::Snapshot::with_noise)).

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use crate::event::{Arg, Event, EventKind, NetOp, SignalAction, Syscall};
use crate::trace::index::{Index, Resolved};

/// Signals whose arrival is up to the scheduler (a child's end, urgent
/// data, a resize, a continue): with the default action their delivery
/// changes nothing, and with a handler where it lands among the
/// program's calls differs from run to run.
const ASYNC_SIGNALS: &[&str] = &["SIGCHLD", "SIGURG", "SIGWINCH", "SIGCONT"];

/// Where a task is in the start-up of the program it exec'd.
#[derive(Clone)]
pub(super) enum Phase {
    /// The dynamic loader: from the exec until the thread pointer is set.
    Loader,
    /// libc's and libraries' initialisation, until the first call that is
    /// not part of it; `rust` once Rust's runtime showed up.
    Init { rust: bool },
    /// Python's start-up, until it first touches its script.
    Python(OsString),
}

/// Which events are loader and runtime noise (see [`Snapshot::with_noise`]).
pub(crate) fn noise(idx: &Index<'_>) -> Vec<bool> {
    let events = &idx.trace.events;
    let mut noise = vec![false; events.len()];
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by_key(|&i| (events[i].ts_ns, i));
    let mut phases: HashMap<u32, Phase> = HashMap::new();
    // Each process's events, for Python images (made at the first).
    let mut by_pid: Option<HashMap<u32, Vec<usize>>> = None;
    // Tasks running the handler of an asynchronous signal: its return
    // (`rt_sigreturn`) goes with it.
    let mut in_handler: HashSet<u32> = HashSet::new();
    for &i in &order {
        let e = &events[i];
        let python = idx.image_at(e.pid, e.ts_ns).is_some_and(|(f, _)| is_python(f));
        let targets: Vec<&OsStr> =
            idx.access(i).map(|a| a.targets().filter_map(Resolved::as_os).collect()).unwrap_or_default();
        // Runtime files have UTF-8 names; any other name is the program's own.
        let runtime = targets.iter().filter_map(|p| p.to_str()).any(|p| runtime_file(p, python));
        match &e.kind {
            EventKind::Exec(x) => {
                let script = if is_python(&x.filename) { python_script(&x.argv) } else { None };
                let script = script.filter(|s| {
                    let by_pid = by_pid.get_or_insert_with(|| {
                        let mut m: HashMap<u32, Vec<usize>> = HashMap::new();
                        for (k, e) in events.iter().enumerate() {
                            m.entry(e.pid).or_default().push(k);
                        }
                        m
                    });
                    touches(idx, by_pid.get(&e.pid).map_or(&[][..], Vec::as_slice), e.ts_ns, s)
                });
                phases.insert(e.tid, Phase::Loader);
                if let Some(s) = script {
                    // The loader's part is left out the same way.
                    phases.insert(e.tid, Phase::Python(s));
                }
            }
            // State changes and retransmits depend on timing.
            EventKind::Net(n) => noise[i] = matches!(n.op, NetOp::State | NetOp::Retransmit),
            EventKind::Signal(sig) => {
                let asynchronous = ASYNC_SIGNALS.contains(&sig.name.as_ref());
                noise[i] = sig.action == SignalAction::Ignore || asynchronous;
                if asynchronous && sig.action == SignalAction::Handler {
                    in_handler.insert(e.tid);
                }
            }
            EventKind::Libc(c) => {
                noise[i] = runtime;
                // The preload library sets itself up again in a forked
                // child, as in a new image.
                if matches!(c.function.as_str(), "fork" | "vfork") && matches!(c.ret, Some(Arg::Int(0))) {
                    phases.insert(e.tid, Phase::Init { rust: false });
                }
                if let Some(Phase::Python(script)) = phases.get(&e.tid) {
                    if targets.iter().any(|p| is_script(p, script)) {
                        phases.remove(&e.tid);
                    } else {
                        noise[i] = true;
                    }
                }
            }
            EventKind::Syscall(s) => {
                if s.name == "rt_sigreturn" && in_handler.remove(&e.tid) {
                    noise[i] = true;
                    continue;
                }
                let anywhere = runtime || always_noise(s) || retry(s);
                let mut phase = phases.get(&e.tid).cloned();
                if let Some(Phase::Loader) = phase {
                    if loader_call(s) {
                        noise[i] = true;
                        if sets_thread_pointer(s) {
                            phases.insert(e.tid, Phase::Init { rust: false });
                        }
                        continue;
                    }
                    phase = Some(Phase::Init { rust: false });
                }
                noise[i] = match phase {
                    None => anywhere,
                    Some(Phase::Python(script)) => {
                        if targets.iter().any(|p| is_script(p, &script)) {
                            phases.remove(&e.tid);
                            anywhere
                        } else {
                            true
                        }
                    }
                    Some(Phase::Init { rust }) => {
                        let rust_now = rust || rust_runtime_start(s);
                        let start = anywhere
                            || startup_call(s)
                            || targets.iter().filter_map(|p| p.to_str()).any(startup_file)
                            || (rust_now && (rust_runtime_call(s) || targets.iter().any(|p| *p == "/proc/self/maps")));
                        if start {
                            phases.insert(e.tid, Phase::Init { rust: rust_now });
                        } else {
                            phases.remove(&e.tid);
                        }
                        start
                    }
                    Some(Phase::Loader) => anywhere,
                };
            }
            _ => {}
        }
    }
    thread_endings(events, &order, &mut noise);
    descriptor_checks(events, &order, &mut noise);
    spawn_resets(events, &order, &mut noise);
    noise
}

/// I/O that found nothing ready (`EAGAIN`) or was interrupted (`EINTR`):
/// how often that happens is up to the scheduler, and the program tries
/// again.
pub(super) fn retry(s: &Syscall) -> bool {
    const IO: &[&str] =
        &["read", "write", "readv", "writev", "recvfrom", "sendto", "recvmsg", "sendmsg", "accept", "accept4"];
    IO.contains(&s.name.as_ref()) && matches!(s.errno.as_deref(), Some("EAGAIN" | "EWOULDBLOCK" | "EINTR"))
}

/// A debug build's check that a descriptor is open before it closes it
/// (Rust's `OwnedFd` does `fcntl(fd, F_GETFD)` with debug assertions on):
/// the `fcntl` whose task's next syscall closes that descriptor.
pub(super) fn descriptor_checks(events: &[Event], order: &[usize], noise: &mut [bool]) {
    let mut last_check: HashMap<u32, (usize, i32)> = HashMap::new();
    for &i in order {
        let e = &events[i];
        let Some(s) = e.as_syscall() else { continue };
        let fd = match s.args.first() {
            Some(Arg::Fd(fd)) => *fd,
            _ => -1,
        };
        let check = s.name == "fcntl"
            && matches!(s.args.get(1), Some(Arg::Flags { text, .. }) if text == "F_GETFD")
            && s.errno.is_none();
        if let Some((at, checked)) = last_check.remove(&e.tid) {
            if s.name == "close" && checked == fd {
                noise[at] = true;
            }
        }
        if check {
            last_check.insert(e.tid, (i, fd));
        }
    }
}

/// What glibc's `posix_spawn` does in the child before the exec: it
/// resets every signal's handler and the signal mask, one
/// `rt_sigaction` per signal that depends on the parent's handlers. The
/// file actions (`dup2`, `close`, `open`) stay.
pub(super) fn spawn_resets(events: &[Event], order: &[usize], noise: &mut [bool]) {
    let mut spawned: HashSet<u32> = HashSet::new();
    for &i in order {
        let e = &events[i];
        match &e.kind {
            EventKind::Syscall(s) if matches!(s.name.as_ref(), "clone" | "clone3") => {
                let in_spawn = s
                    .parent
                    .and_then(|p| events.get(p))
                    .is_some_and(|p| matches!(&p.kind, EventKind::Libc(c) if c.function.starts_with("posix_spawn")));
                if let (true, Some(child)) = (in_spawn, s.ret.and_then(|r| u32::try_from(r).ok())) {
                    if child > 0 {
                        spawned.insert(child);
                    }
                }
            }
            EventKind::Syscall(s) if spawned.contains(&e.tid) => {
                if matches!(s.name.as_ref(), "rt_sigaction" | "rt_sigprocmask") {
                    noise[i] = true;
                }
            }
            EventKind::Exec(_) => {
                spawned.remove(&e.tid);
            }
            _ => {}
        }
    }
}

/// How threads end is left to chance when the process ends while they
/// do: glibc's last steps in a thread (blocking signals, `exit`) race with
/// another thread's `exit_group`, which kills whatever is still running.
/// So those steps, and the `SIGKILL` of a group exit, are noise; the
/// `+++ thread exited +++` line stays.
pub(super) fn thread_endings(events: &[Event], order: &[usize], noise: &mut [bool]) {
    let mut group_exit: HashMap<u32, (u64, u32)> = HashMap::new();
    let mut by_task: HashMap<u32, Vec<usize>> = HashMap::new();
    for &i in order {
        let e = &events[i];
        if e.as_syscall().is_some_and(|s| s.name == "exit_group") {
            group_exit.entry(e.pid).or_insert((e.ts_ns, e.tid));
        }
        by_task.entry(e.tid).or_default().push(i);
    }
    for (&tid, task) in &by_task {
        for &i in task.iter().rev() {
            let e = &events[i];
            let killed_by_group_exit = matches!(&e.kind, EventKind::Signal(sig) if sig.name == "SIGKILL")
                && group_exit.get(&e.pid).is_some_and(|&(ts, by)| by != tid && e.ts_ns >= ts);
            let ending = match &e.kind {
                EventKind::Exit(_) => true,
                EventKind::Syscall(s) if tid != e.pid => {
                    s.name == "exit"
                        || (s.name == "rt_sigprocmask"
                            && matches!(s.args.first(), Some(Arg::Flags { text, .. }) if text == "SIG_BLOCK"))
                }
                _ => false,
            };
            if killed_by_group_exit || (ending && !matches!(e.kind, EventKind::Exit(_))) {
                noise[i] = true;
            } else if !ending && !noise[i] {
                break;
            }
        }
    }
}

/// What the dynamic loader does while it maps the program's libraries.
const LOADER_CALLS: &[&str] = &[
    "openat",
    "open",
    "newfstatat",
    "fstat",
    "stat",
    "lstat",
    "statx",
    "access",
    "faccessat",
    "faccessat2",
    "read",
    "pread64",
    "mmap",
    "mprotect",
    "munmap",
    "close",
    "brk",
    "arch_prctl",
    "readlink",
    "getcwd",
    "statfs",
    "lseek",
    "set_tid_address",
    "set_thread_area",
    "uname",
];

/// Whether `s` is one of [`LOADER_CALLS`].
pub(super) fn loader_call(s: &Syscall) -> bool {
    LOADER_CALLS.contains(&s.name.as_ref())
}

/// The loader's last step: setting up the main thread's thread pointer.
pub(super) fn sets_thread_pointer(s: &Syscall) -> bool {
    match s.name.as_ref() {
        "set_tid_address" | "set_thread_area" => true,
        // ARCH_SET_FS.
        "arch_prctl" => matches!(s.args.first(), Some(Arg::Hex(0x1002) | Arg::Int(0x1002))),
        _ => false,
    }
}

/// Rust's runtime starts `main` by checking that descriptors 0 to 2 are
/// open: `poll` of three descriptors with no timeout.
pub(super) fn rust_runtime_start(s: &Syscall) -> bool {
    s.name == "poll" && matches!(s.args.get(1..3), Some([Arg::Int(3), Arg::Int(0)]))
}

/// What Rust's runtime does before `main`: ignore SIGPIPE, and set up
/// the stack overflow handler.
pub(super) fn rust_runtime_call(s: &Syscall) -> bool {
    match s.name.as_ref() {
        "poll" | "sigaltstack" | "sched_getaffinity" => true,
        "rt_sigaction" => {
            matches!(s.args.first(), Some(Arg::Flags { text, .. }) if matches!(text.as_str(), "SIGPIPE" | "SIGSEGV" | "SIGBUS"))
        }
        _ => false,
    }
}

pub(super) fn is_python(program: &OsStr) -> bool {
    crate::trace::query::base_name(program).as_bytes().starts_with(b"python")
}

/// The script Python runs, from its argv: the first argument that is not
/// an option; none for `-c` and `-m`.
pub(super) fn python_script(argv: &[OsString]) -> Option<OsString> {
    let mut args = argv.iter().skip(1);
    while let Some(a) = args.next() {
        match a.as_bytes() {
            b"-c" | b"-m" | b"-" => return None,
            b"-W" | b"-X" => {
                args.next();
            }
            o if o.starts_with(b"-") => {}
            _ => return Some(a.clone()),
        }
    }
    None
}

pub(super) fn is_script(path: &OsStr, script: &OsStr) -> bool {
    if script.as_bytes().starts_with(b"/") {
        path == crate::trace::index::normalize(script)
    } else {
        let script = crate::trace::query::trim_dot_slash(script).as_bytes();
        let path = path.as_bytes();
        path == script || path.strip_suffix(script).is_some_and(|head| head.ends_with(b"/"))
    }
}

/// Whether a process whose events are `own` touches the file `script`
/// after `ts`.
pub(super) fn touches(idx: &Index<'_>, own: &[usize], ts: u64, script: &OsStr) -> bool {
    own.iter().any(|&i| {
        idx.trace.events[i].ts_ns > ts
            && idx.access(i).is_some_and(|a| a.targets().filter_map(Resolved::as_os).any(|p| is_script(p, script)))
    })
}

/// Syscalls that are runtime noise wherever they are: locks (contention
/// differs from run to run), memory management, and the thread set-up
/// glibc does in every thread.
const ALWAYS_NOISE: &[&str] = &[
    "futex",
    "futex_wait",
    "futex_wake",
    "futex_waitv",
    "futex_requeue",
    "rseq",
    "set_robust_list",
    "brk",
    "munmap",
    "mprotect",
    "madvise",
    "mremap",
    "membarrier",
];

/// Syscalls that are runtime noise wherever they are: those of
/// [`ALWAYS_NOISE`], and anonymous mappings.
pub(super) fn always_noise(s: &Syscall) -> bool {
    match s.name.as_ref() {
        name if ALWAYS_NOISE.contains(&name) => true,
        "mmap" => {
            let anon = s.args.iter().any(|a| matches!(a, Arg::Flags { text, .. } if text.contains("MAP_ANONYMOUS")));
            let no_fd = s.args.get(4).is_some_and(|a| matches!(a, Arg::Fd(-1)));
            anon || no_fd
        }
        _ => false,
    }
}

/// Syscalls of the loader's and libc's start-up.
const STARTUP_CALLS: &[&str] = &[
    "mmap",
    "arch_prctl",
    "set_tid_address",
    "prlimit64",
    "getrandom",
    "set_thread_area",
    "personality",
    "getpid",
    "gettid",
    "getppid",
];

/// Whether `s` is one of [`STARTUP_CALLS`].
pub(super) fn startup_call(s: &Syscall) -> bool {
    STARTUP_CALLS.contains(&s.name.as_ref())
}

/// Files libc and libraries look at while they start.
const STARTUP_FILES: &[&str] =
    &["/proc/filesystems", "/sys/fs/selinux", "/selinux", "/etc/selinux/config", "/proc/self/exe"];

/// Directories under which every file is one of [`STARTUP_FILES`].
const STARTUP_FILE_PREFIXES: &[&str] = &["/sys/devices/system/cpu"];

/// Whether `path` is one of [`STARTUP_FILES`] or under one of
/// [`STARTUP_FILE_PREFIXES`].
pub(super) fn startup_file(path: &str) -> bool {
    STARTUP_FILES.contains(&path) || STARTUP_FILE_PREFIXES.iter().any(|p| path.starts_with(p))
}

/// Where the loader's configuration and cache, libc's locales and the
/// time zones are.
const RUNTIME_PREFIXES: &[&str] =
    &["/etc/ld.so", "/usr/lib/locale", "/usr/share/locale", "/usr/share/i18n", "/usr/share/zoneinfo"];

/// Directories, anywhere in a path, of the loader's per-CPU libraries and
/// of iconv's converters.
const RUNTIME_DIRS: &[&str] = &["glibc-hwcaps", "gconv"];

/// Files only the loader, libc's locale and time zone code, or (in Python)
/// the interpreter itself look up.
pub(super) fn runtime_file(path: &str, python: bool) -> bool {
    let base = path.rsplit('/').next().unwrap_or(path);
    let components = || path.split('/');
    let lib = RUNTIME_PREFIXES.iter().any(|p| path.starts_with(p))
        || base.starts_with("probity-ring-")
        || is_shared_library(base)
        || components().any(|c| RUNTIME_DIRS.contains(&c))
        || path == "/etc/localtime";
    if lib {
        return true;
    }
    if !python {
        return false;
    }
    let mut prev = "";
    for c in components() {
        if c == "__pycache__"
            || ((prev == "lib" || prev == "lib64") && (c.starts_with("python3") || c.starts_with("python2")))
        {
            return true;
        }
        prev = c;
    }
    base.ends_with(".pyc") || base == "pyvenv.cfg" || base.ends_with("._pth") || base == "pybuilddir.txt"
}

/// `libc.so.6`, `libfoo.so`, `ld-linux-x86-64.so.2`, `_ssl.cpython-311-x86_64-linux-gnu.so`.
pub(super) fn is_shared_library(base: &str) -> bool {
    match base.find(".so") {
        Some(i) => {
            let rest = &base[i + 3..];
            rest.is_empty()
                || (rest.starts_with('.')
                    && rest[1..].split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_runtime_files() {
        for p in [
            "/etc/ld.so.cache",
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3",
            "/usr/lib/locale/C.utf8/LC_CTYPE",
            "/usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache",
            "/work/target/debug/libprobity_preload.so",
        ] {
            assert!(runtime_file(p, false), "{p}");
        }
        for p in ["/tmp/x.so.txt", "/etc/hostname", "/usr/lib/python3.11/os.py", "/tmp/libsomething"] {
            assert!(!runtime_file(p, false), "{p}");
        }
        assert!(runtime_file("/usr/lib/python3.11/os.py", true));
        assert!(runtime_file("/tmp/x/__pycache__/m.cpython-311.pyc", true));
        assert!(!runtime_file("/tmp/x/script.py", true));
    }

    #[test]
    fn a_debug_builds_descriptor_check_is_noise() {
        use crate::trace::test_support::{flags, sys, trace};
        let check = |ts, fd| sys(ts, 10, 10, "fcntl", vec![Arg::Fd(fd), flags(1, "F_GETFD")], 1);
        let events = vec![
            check(1, 3),
            sys(2, 10, 10, "close", vec![Arg::Fd(3)], 0),
            // Asked for its own sake: the next call is not its close.
            check(3, 4),
            sys(4, 10, 10, "close", vec![Arg::Fd(5)], 0),
        ];
        assert_eq!(
            trace(events, None).snapshot().text(),
            "[1] close(3) = 0\n[1] fcntl(4, F_GETFD) = 1\n[1] close(5) = 0\n"
        );
    }

    #[test]
    fn finds_the_python_script() {
        let argv = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(python_script(&argv(&["python3", "-u", "t.py", "x"])), Some("t.py".into()));
        assert_eq!(python_script(&argv(&["python3", "-W", "error", "t.py"])), Some("t.py".into()));
        assert_eq!(python_script(&argv(&["python3", "-c", "print(1)"])), None);
        assert_eq!(python_script(&argv(&["python3"])), None);
    }
}
