//! Tests that run a child under the tracers and check what it did:
//! [`macro@crate::traced_test`], [`Cmd`] for commands, [`traced`] for Rust
//! functions, and [`main`] for `harness = false` test targets.
//!
//! ```no_run
//! use probity::{traced_test, Cmd};
//!
//! #[traced_test]
//! fn cat_reads_the_file() {
//!     let run = Cmd::new("cat").arg("/etc/hostname").run();
//!     run.assert_success();
//!     run.trace.assert_opened("/etc/hostname");
//!     run.trace.assert_no_network();
//! }
//! ```
//!
//! Each run has a session of its own, so tests in one binary run in
//! parallel and each trace holds its own child's tree only. The eBPF
//! programs are loaded by the first run and stay loaded until the test
//! binary exits.
//!
//! # Known limitations
//! - The settings of `#[traced_test]` (time limit, tracers) apply to runs
//!   made on the test's own thread, and to runs from threads the test
//!   starts while it is the only traced test running in the process (one
//!   test a process, as under `cargo nextest`, or `--test-threads=1`).
//!   With several running, a run from another thread cannot be told apart:
//!   it uses the defaults, and probity says so on standard error.
//! - A function run by [`traced`] must capture nothing: pass what it needs
//!   as its input. Input and result travel as JSON, at most 128 MiB each.

mod capture;
mod child;
pub mod harness;
pub(crate) mod join;
mod keep;
mod plain_tests;
mod policy;
#[doc(hidden)]
pub mod support;

use std::cell::RefCell;
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use harness::main;

use crate::error::Error;
use crate::event::ExitStatus;
use crate::launch::Environment;
use crate::trace::{Trace, TracerKind};
use crate::tracer::Tracer;
use join::LateJoin;

/// The time limit of a traced test when it sets none: 60 seconds, or
/// `PROBITY_TEST_TIMEOUT` (seconds) when set.
pub fn default_timeout() -> Duration {
    std::env::var("PROBITY_TEST_TIMEOUT")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .map_or(Duration::from_secs(60), Duration::from_secs_f64)
}

/// The kernel ring buffer of a test binary: 16 MiB, or `PROBITY_RING_MIB`.
/// Smaller than the CLI's 64 MiB because every test process allocates it
/// (a 64 MiB ring costs about 40 ms to set up and tear down); a test that
/// outruns it loses events, which its trace counts and shows.
fn test_ring_bytes() -> crate::RingBytes {
    // Every size from 1 to 1024 MiB, rounded up to a power of two, is a
    // valid ring.
    crate::RingBytes::from_mib(env_mib("PROBITY_RING_MIB", 16, 1024)).unwrap_or(crate::RingBytes::DEFAULT)
}

/// The preload ring of a test run: 4 MiB (about 32,000 libc calls in
/// flight), or `PROBITY_PRELOAD_RING_MIB`. Smaller than the CLI's 16 MiB
/// because every run reserves its memory in `/dev/shm` and frees it at the
/// end (16 MiB cost about 9 ms a run, 4 MiB about 2); a process that finds
/// it full waits while probity drains it, so a busy test loses nothing.
fn test_preload_ring_bytes() -> usize {
    (env_mib("PROBITY_PRELOAD_RING_MIB", 4, 2048) as usize) << 20
}

/// Mebibytes from the variable `name` (1 to `max`, rounded up to a power
/// of two), or `default` when it is unset or out of range.
fn env_mib(name: &str, default: u32, max: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|m| (1..=max).contains(m))
        .unwrap_or(default)
        .next_power_of_two()
}

/// Why a test that traces with `tracers` cannot run here, if it cannot:
/// it needs eBPF and this process lacks the privileges for it. Such a
/// test never passes: it is ignored (and fails when asked to run) or,
/// where [`tracing_required`], fails.
pub(crate) fn cannot_trace(tracers: &[TracerKind]) -> Option<String> {
    static UNAVAILABLE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if !tracers.contains(&TracerKind::Ebpf) {
        return None;
    }
    UNAVAILABLE.get_or_init(harness::ebpf_unavailable).clone()
}

/// Whether a test that cannot trace here fails instead of being ignored:
/// `PROBITY_REQUIRE_EBPF=1`, or `CI` set (as CI services set `CI=true`)
/// unless `PROBITY_REQUIRE_EBPF=0`.
pub(crate) fn tracing_required() -> bool {
    let var = |name| std::env::var(name).ok();
    required_by(var("PROBITY_REQUIRE_EBPF").as_deref(), var("CI").as_deref())
}

/// [`tracing_required`] from the values of `PROBITY_REQUIRE_EBPF` and `CI`.
/// An empty value, `0`, `false` or `no` is off; any other value is on.
fn required_by(require: Option<&str>, ci: Option<&str>) -> bool {
    let on = |v: &str| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "false" | "no");
    match require {
        Some(v) if !v.trim().is_empty() => on(v),
        _ => ci.is_some_and(on),
    }
}

/// Why a test that cannot trace here fails rather than being ignored.
#[derive(Clone, Copy, Debug)]
pub(crate) enum FailsBecause {
    /// `PROBITY_REQUIRE_EBPF=1` or `CI` is set.
    Required,
    /// It is ignored here, and the harness was asked to run ignored tests.
    Asked,
    /// libtest has no way to skip a test once it runs.
    Libtest,
}

/// The failure of a test that cannot trace here, with why it fails
/// rather than being ignored.
pub(crate) fn cannot_trace_failure(reason: &str, because: FailsBecause) -> String {
    let why = match because {
        FailsBecause::Required => {
            "it fails rather than being ignored because PROBITY_REQUIRE_EBPF=1 or CI is set \
             (PROBITY_REQUIRE_EBPF=0 ignores it instead)"
        }
        FailsBecause::Asked => "it is ignored here and was asked to run: it fails rather than pass without running",
        FailsBecause::Libtest => {
            "libtest cannot skip a test that has started; in a `harness = false` target, \
             `probity::testing::main()` lists it as ignored instead"
        }
    };
    format!(
        "probity: this test needs eBPF, which this process cannot use: {reason}\n({why}; a test that only \
         needs libc calls can use #[traced_test(preload_only)], which runs unprivileged)"
    )
}

/// What a test asked for, for its runs.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    test: Option<&'static str>,
    /// The test's libtest name (`module::test`), which the policy's
    /// per-test rules are keyed by.
    full_name: Option<String>,
    deadline: Instant,
    limit: Duration,
    tracers: Vec<TracerKind>,
    /// The test's scope: whose failure writes this run's trace.
    scope: Option<u64>,
}

thread_local! {
    static CURRENT: RefCell<Option<Settings>> = const { RefCell::new(None) };
}

/// The settings of the tests running in this process, by scope id: a run
/// started on a thread a test spawned finds its test's settings here when
/// it is the only one (one test a process, as under `cargo nextest`, or
/// `--test-threads=1`). Threads do not say which thread started them, so
/// with several tests running it cannot be told whose run it is.
static ACTIVE: Mutex<Vec<(u64, Settings)>> = Mutex::new(Vec::new());

/// Said once a process: a run fell back to the defaults.
static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A test's settings in force: on its thread, and for runs on the
/// threads it spawns while it is the only test running. Dropping it
/// restores what was there before.
pub(crate) struct Scope {
    id: u64,
    old: Option<Settings>,
}

impl Scope {
    pub(crate) fn enter(mut settings: Settings) -> Scope {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        settings.scope = Some(id);
        active().push((id, settings.clone()));
        Scope { id, old: CURRENT.with(|c| c.borrow_mut().replace(settings)) }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        active().retain(|(id, _)| *id != self.id);
        let old = self.old.take();
        CURRENT.with(|c| *c.borrow_mut() = old);
    }
}

fn active() -> std::sync::MutexGuard<'static, Vec<(u64, Settings)>> {
    ACTIVE.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn settings() -> Settings {
    if let Some(s) = CURRENT.with(|c| c.borrow().clone()) {
        return s;
    }
    let running: Vec<Settings> = active().iter().map(|(_, s)| s.clone()).collect();
    if let [only] = running.as_slice() {
        return only.clone();
    }
    let limit = default_timeout();
    if running.len() > 1 && !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        eprintln!(
            "probity: a traced run started on a thread other than its test's while {} traced tests run in this \
             process, so which test it belongs to cannot be told: it uses the default time limit ({limit:.1?}) \
             and tracers, not its test's. Start it on the test's thread, or run one test a process \
             (cargo nextest, or --test-threads=1).",
            running.len()
        );
    }
    Settings {
        test: None,
        full_name: None,
        deadline: Instant::now() + limit,
        limit,
        tracers: vec![TracerKind::Ebpf, TracerKind::Preload],
        scope: None,
    }
}

/// A finished traced run: what the child returned, its trace, its exit
/// status and its output.
#[derive(Debug)]
#[must_use]
pub struct Run<T = ()> {
    /// What the traced function returned (`()` for a command).
    pub value: T,
    /// Everything the child's process tree did.
    pub trace: Trace,
    /// How the child ended.
    pub status: ExitStatus,
    /// The child's standard output (lossily decoded).
    pub stdout: String,
    /// The child's standard error (lossily decoded).
    pub stderr: String,
}

impl<T> Run<T> {
    /// Panics, showing the output and the end of the trace, unless the
    /// child exited with 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        if self.status != ExitStatus::Code(0) {
            panic!("probity: expected the child to exit with 0, but it {}\n{}", self.status, self.report(20));
        }
        self
    }

    /// The child's output and the last `n` events, for failure messages.
    fn report(&self, n: usize) -> String {
        report(&self.trace, &self.stdout, &self.stderr, n)
    }
}

fn report(trace: &Trace, stdout: &str, stderr: &str, n: usize) -> String {
    let mut s = String::new();
    for (name, text) in [("stdout", stdout), ("stderr", stderr)] {
        if !text.is_empty() {
            s.push_str(&format!("--- child {name} ---\n{}\n", tail_lines(text, 40)));
        }
    }
    s.push_str("--- processes ---\n");
    for (pid, p) in trace.processes() {
        let status = p.exit.map_or_else(|| "not seen to end".to_string(), |st| st.to_string());
        let argv = p.execs.last().map(|(_, argv)| format!(" {argv:?}")).unwrap_or_default();
        let program = p.program().map_or("(no exec seen)".into(), |f| crate::event::shown(f.as_os_str()));
        s.push_str(&format!("[{pid}] {program}{argv}: {status}\n"));
    }
    let events = &trace.events;
    let from = events.len().saturating_sub(n);
    s.push_str(&format!("--- trace: {} events", events.len()));
    if from > 0 {
        s.push_str(&format!(", the last {n}"));
    }
    s.push_str(" ---\n");
    for e in &events[from..] {
        s.push_str(&crate::render::event_line(e));
        s.push('\n');
    }
    s.push_str(&crate::render::outcome_lines(&trace.outcome));
    s
}

fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(n);
    let mut out = String::new();
    if from > 0 {
        out.push_str(&format!("[{from} earlier lines]\n"));
    }
    out.push_str(&lines[from..].join("\n"));
    out
}

/// A command to run traced, like [`std::process::Command`].
///
/// ```no_run
/// let run = probity::Cmd::new("sh").args(["-c", "echo hi; ls /nonexistent"]).run();
/// assert_eq!(run.stdout, "hi\n");
/// assert_ne!(run.status, probity::ExitStatus::Code(0));
/// ```
#[derive(Debug)]
#[must_use]
pub struct Cmd {
    cmd: std::process::Command,
    /// `env_clear` was called (`Command` does not report it).
    env_cleared: bool,
    /// Environment changes in the order they were made (`Command` keeps
    /// them sorted), applied to the inherited environment in place.
    env: Vec<(OsString, Option<OsString>)>,
    stdin: Option<Vec<u8>>,
    tracer: Option<Tracer>,
    /// Fault-injection rules, added to the tracer.
    inject: Vec<crate::inject::Inject>,
}

impl Cmd {
    /// The program, found in `PATH` when it has no `/`.
    pub fn new(program: impl AsRef<OsStr>) -> Cmd {
        Cmd {
            cmd: std::process::Command::new(program),
            env_cleared: false,
            env: Vec::new(),
            stdin: None,
            tracer: None,
            inject: Vec::new(),
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.cmd.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Cmd {
        self.env.push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Removes an environment variable.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Cmd {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// Starts from an empty environment.
    pub fn env_clear(mut self) -> Cmd {
        self.env.clear();
        self.env_cleared = true;
        self
    }

    /// The working directory.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Cmd {
        self.cmd.current_dir(dir);
        self
    }

    /// Bytes for the child's standard input (default: none, as `/dev/null`).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(bytes.into());
        self
    }

    /// Tracer settings (buffer sizes, tracers); the test's time limit
    /// still applies.
    pub fn tracer(mut self, tracer: Tracer) -> Cmd {
        self.tracer = Some(tracer);
        self
    }

    /// Injects faults as `rule` says (see [`Tracer::with_inject`]); the
    /// calls it answered are in the trace, marked injected.
    ///
    /// ```no_run
    /// let rule = "openat:error=EACCES:path=/etc/hostname".parse().unwrap();
    /// let run = probity::Cmd::new("cat").arg("/etc/hostname").inject(rule).run();
    /// assert!(run.stderr.contains("Permission denied"));
    /// assert_eq!(run.trace.syscalls().injected().count(), 1);
    /// ```
    pub fn inject(mut self, rule: crate::inject::Inject) -> Cmd {
        self.inject.push(rule);
        self
    }

    /// Runs the command traced, panicking with a clear message when it
    /// cannot be traced or runs past the test's time limit.
    #[track_caller]
    pub fn run(self) -> Run {
        let what = format!("`{}`", self.cmd.get_program().to_string_lossy());
        let settings = settings();
        let limit = settings.limit;
        match self.try_run() {
            Ok(run) if run.trace.outcome.interrupted => panic!(
                "probity: {what} ran past the test's time limit of {limit:.1?} and was stopped \
                 (SIGTERM, then SIGKILL after 2 s)\n{}",
                run.report(20)
            ),
            Ok(run) => {
                policy::enforce(&run.trace, settings.full_name.as_deref(), || run.report(20));
                run
            }
            Err(e) => fail_to_trace(&what, &e),
        }
    }

    /// Runs the command traced. A time-out is not an error here: the run
    /// comes back with `trace.outcome.interrupted` set.
    pub fn try_run(self) -> Result<Run, Error> {
        refuse_nested()?;
        let Cmd { cmd, env_cleared, env: changes, stdin, tracer, inject } = self;
        let settings = settings();
        // The child's environment in order: the inherited one (unless
        // cleared) with the changes made in place, new ones at the end.
        let mut env = if env_cleared { Environment::empty() } else { Environment::inherited() };
        for (k, v) in changes {
            match v {
                Some(v) => env.set(k, v),
                None => env.remove(k),
            }
        }
        // A bare name is looked up in the PATH the command will have, as
        // `execvp` in the child would.
        let child_path = env.get("PATH").map(ToOwned::to_owned);
        let program = crate::tracer::resolve_in(cmd.get_program(), child_path)?;
        let mut resolved = std::process::Command::new(program);
        resolved.arg0(cmd.get_program());
        copy_command(&cmd, &mut resolved);
        resolved.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        let tracer = inject.into_iter().fold(tracer_for(tracer, &settings), Tracer::with_inject);
        let (trace, stdout, stderr) = run_captured(&tracer, resolved, Start::Env(env), stdin, settings.scope)?;
        Ok(Run { value: (), status: trace.outcome.status, trace, stdout, stderr })
    }
}

/// Spawns `cmd` traced (late-joining when `late` is given) with its output
/// read as it comes and `stdin` fed to it, and waits for the tree. Output
/// pipes held open by a process outside the tree (an orphan the preload
/// tracer cannot see, say) do not hold the test: their readers get a
/// second after the tree ends.
fn run_captured(
    tracer: &Tracer,
    mut cmd: std::process::Command,
    start: Start,
    stdin: Option<Vec<u8>>,
    scope: Option<u64>,
) -> Result<(Trace, String, String), Error> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut tracee = match start {
        Start::Late(late, env) => tracer.spawn_late(cmd, late, env)?,
        Start::Env(env) => tracer.spawn_with_env(cmd, env)?,
    };
    if let (Some(bytes), Some(mut pipe)) = (stdin, tracee.take_stdin()) {
        // Not joined: a child that stops reading is its own business.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    let (out, err) = tracee.take_output();
    let (out, err) = (Reader::spawn(out), Reader::spawn(err));
    let trace = tracee.wait()?;
    keep::keep(scope, &trace);
    let grace = Instant::now() + Duration::from_secs(1);
    Ok((trace, out.finish(grace), err.finish(grace)))
}

/// How a command joins its session, with the environment it starts with.
enum Start {
    /// Traced from its first exec.
    Env(Environment),
    /// Joins itself when its traced part begins.
    Late(LateJoin, Environment),
}

use std::os::unix::process::CommandExt;

/// Copies arguments and directory from `from` to `to` (the environment
/// goes to the tracer in order, not through `Command`, which sorts it).
fn copy_command(from: &std::process::Command, to: &mut std::process::Command) {
    to.args(from.get_args());
    if let Some(d) = from.get_current_dir() {
        to.current_dir(d);
    }
}

impl From<std::process::Command> for Cmd {
    /// Program, arguments, environment changes and directory (not stdio).
    fn from(cmd: std::process::Command) -> Cmd {
        let mut c = std::process::Command::new(cmd.get_program());
        copy_command(&cmd, &mut c);
        let env = cmd.get_envs().map(|(k, v)| (k.to_owned(), v.map(ToOwned::to_owned))).collect();
        Cmd { cmd: c, env_cleared: false, env, stdin: None, tracer: None, inject: Vec::new() }
    }
}

fn tracer_for(tracer: Option<Tracer>, settings: &Settings) -> Tracer {
    let tracer = tracer
        .unwrap_or_else(|| {
            Tracer::new()
                .with_tracers(&settings.tracers)
                .with_ring_bytes(test_ring_bytes())
                .with_preload_ring_bytes(test_preload_ring_bytes())
        })
        .with_kept_loaded(true);
    let left = settings.deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    tracer.with_timeout(left)
}

#[track_caller]
fn fail_to_trace(what: &str, e: &Error) -> ! {
    let mut msg = format!("probity: failed to trace {what}: {}", crate::error::Chain(e));
    if matches!(e, Error::Privileges { .. } | Error::NoWayToTrace { .. }) {
        msg.push_str(
            "\n(a test that only needs libc calls can use #[traced_test(preload_only)], which runs unprivileged)",
        );
    }
    panic!("{msg}");
}

/// A pipe read to its end on a thread of its own, so the child never
/// blocks on a full pipe.
struct Reader(Option<(Shared, std::sync::mpsc::Receiver<()>)>);

/// The bytes read so far, shared with the reading thread.
type Shared = Arc<Mutex<Vec<u8>>>;

impl Reader {
    fn spawn<R: Read + Send + 'static>(pipe: Option<R>) -> Reader {
        Reader(pipe.map(|mut p| {
            let buf = Arc::new(Mutex::new(Vec::new()));
            let (done, wait) = std::sync::mpsc::channel();
            let shared = Arc::clone(&buf);
            std::thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                loop {
                    match p.read(&mut chunk) {
                        Ok(0) => break,
                        Ok(n) => shared.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(&chunk[..n]),
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
                let _ = done.send(());
            });
            (buf, wait)
        }))
    }

    /// What was read, waiting for the end of the pipe until `deadline`.
    fn finish(self, deadline: Instant) -> String {
        let Some((buf, done)) = self.0 else { return String::new() };
        let ended = done.recv_timeout(deadline.saturating_duration_since(Instant::now())).is_ok();
        let mut text = String::from_utf8_lossy(&buf.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
        if !ended {
            text.push_str("\n[probity: the pipe is still open: a process outside the traced tree holds it]\n");
        }
        text
    }
}

/// Set in a re-executed child: probity runs from inside it would trace
/// themselves into the outer trace.
static IN_TRACED_CHILD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn refuse_nested() -> Result<(), Error> {
    if IN_TRACED_CHILD.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(Error::Nested);
    }
    Ok(())
}

/// Runs `f(input)` in a child process, a fresh copy of this test binary,
/// traced; returns what it returned with the trace of the call alone (the
/// child's start-up is left out).
///
/// `f` is a function or a closure that captures nothing; everything it
/// needs comes in `input`, serialized (so a temporary directory the test
/// made is the one the child uses). A panic in the child fails the test
/// with the child's message and output.
///
/// ```no_run
/// use std::path::PathBuf;
///
/// let dir = std::env::temp_dir();
/// let run = probity::traced(dir, |dir: PathBuf| std::fs::write(dir.join("out.txt"), "hi").is_ok());
/// assert!(run.value);
/// run.trace.assert_wrote(std::env::temp_dir().join("out.txt"));
/// ```
#[track_caller]
pub fn traced<F, I, O>(input: I, f: F) -> Run<O>
where
    F: Fn(I) -> O + Copy + 'static,
    I: Serialize + DeserializeOwned,
    O: Serialize + DeserializeOwned,
{
    traced_inner(None, input, f)
}

/// [`traced`] with tracer settings of its own, as [`Cmd::tracer`] gives a
/// command: buffer sizes, tracers, or fault-injection rules
/// ([`Tracer::with_inject`]), which apply to the function's calls only,
/// not to the child's start-up before it.
///
/// ```no_run
/// use std::path::PathBuf;
///
/// let rule = "write:error=ENOSPC".parse().unwrap();
/// let tracer = probity::Tracer::new().with_inject(rule);
/// let run = probity::traced_with(tracer, std::env::temp_dir(), |dir: PathBuf| {
///     std::fs::write(dir.join("out.txt"), "hi").map_err(|e| e.to_string())
/// });
/// assert!(run.value.is_err());
/// assert_eq!(run.trace.syscalls().injected().count(), 1);
/// ```
#[track_caller]
pub fn traced_with<F, I, O>(tracer: Tracer, input: I, f: F) -> Run<O>
where
    F: Fn(I) -> O + Copy + 'static,
    I: Serialize + DeserializeOwned,
    O: Serialize + DeserializeOwned,
{
    traced_inner(Some(tracer), input, f)
}

#[track_caller]
fn traced_inner<F, I, O>(tracer: Option<Tracer>, input: I, f: F) -> Run<O>
where
    F: Fn(I) -> O + Copy + 'static,
    I: Serialize + DeserializeOwned,
    O: Serialize + DeserializeOwned,
{
    let _ = f;
    let offset = child::offset_of::<F, I, O>();
    match run_function(tracer, offset, &input) {
        Ok(run) => {
            policy::enforce(&run.trace, settings().full_name.as_deref(), || run.report(20));
            run
        }
        Err(Failure::Trace(e)) => fail_to_trace("the child function", &e),
        Err(Failure::Child(msg)) => panic!("{msg}"),
    }
}

enum Failure {
    Trace(Error),
    Child(String),
}

fn run_function<I: Serialize, O: DeserializeOwned>(
    tracer: Option<Tracer>,
    offset: isize,
    input: &I,
) -> Result<Run<O>, Failure> {
    refuse_nested().map_err(Failure::Trace)?;
    let io = |e: std::io::Error| Failure::Trace(Error::Spawn { program: "the child function".into(), source: e });
    let bytes = serde_json::to_vec(input)
        .map_err(|e| Failure::Child(format!("probity: failed to serialize the input: {e}")))?;
    let shm = child::Shm::with_input(&bytes).map_err(|e| Failure::Child(format!("probity: {e}")))?;
    let settings = settings();
    let tracer = tracer_for(tracer, &settings);
    let mut cmd = std::process::Command::new("/proc/self/exe");
    if let Some(test) = settings.test {
        cmd.arg0(test);
    }
    cmd.stdin(Stdio::null());
    let mut env = Environment::inherited();
    env.set(child::CHILD_ENV, child::ChildSpec { offset, shm_fd: shm.fd() }.to_string());
    let record = std::sync::Arc::new(join::JoinRecord::default());
    let late =
        LateJoin { shm_fd: shm.fd(), word: shm.join_word().map_err(io)?, record: std::sync::Arc::clone(&record) };
    let (trace, stdout, stderr) =
        run_captured(&tracer, cmd, Start::Late(late, env), None, settings.scope).map_err(Failure::Trace)?;
    let status = trace.outcome.status;
    let (state, out) = shm.result();
    let fail = |what: String| {
        Failure::Child(format!("probity: the traced child {what}\n{}", report(&trace, &stdout, &stderr, 20)))
    };
    if trace.outcome.interrupted {
        return Err(fail(format!(
            "ran past the test's time limit of {:.1?} and was stopped (SIGTERM, then SIGKILL after 2 s)",
            settings.limit
        )));
    }
    // Only this process knows whether it added the child: the shared
    // memory says what the child claims.
    let joined = record.at.get().is_some();
    let unjoined = || match record.error.get() {
        Some(e) => format!("was not traced: {e}"),
        None => {
            "ran its function without asking probity to add it to its trace session: nothing it did is traced".into()
        }
    };
    match (state, status) {
        (child::State::Returned, ExitStatus::Code(0)) if !joined => Err(fail(unjoined())),
        (child::State::Returned, ExitStatus::Code(0)) => match serde_json::from_slice(&out) {
            Ok(value) => Ok(Run { value, trace, status, stdout, stderr }),
            Err(e) => Err(fail(format!("returned a value that could not be read back: {e}"))),
        },
        (child::State::Panicked, _) => Err(fail(format!("panicked: {}", String::from_utf8_lossy(&out)))),
        // probity's own reason, when it could not add the child, first.
        (child::State::Failed, _) if record.error.get().is_some() => {
            Err(fail(format!("{}; it said: {}", unjoined(), String::from_utf8_lossy(&out))))
        }
        (child::State::Failed, _) => Err(fail(format!("failed: {}", String::from_utf8_lossy(&out)))),
        (child::State::Returned, _) => Err(fail(format!("returned from its function, but then its process {status}"))),
        (_, ExitStatus::Signal(_)) => Err(fail(format!("was {status} before its function returned"))),
        (child::State::NotStarted, _) => Err(fail(format!("{status} before its function started"))),
        (_, _) => Err(fail(format!("{status} before its function returned"))),
    }
}

#[cfg(test)]
mod tests {
    use super::required_by;
    use super::support::{run_test, TestMeta};
    use super::*;

    const META: TestMeta = TestMeta {
        module: "probity::testing::tests",
        name: "a_test",
        file: file!(),
        line: line!(),
        timeout_ms: Some(700),
        preload_only: false,
        ignore: None,
        should_panic: None,
    };
    static SHORT: TestMeta = META;
    static OTHER: TestMeta = TestMeta { name: "another_test", timeout_ms: Some(90_000), preload_only: true, ..META };

    fn limit_on_a_new_thread() -> Duration {
        std::thread::spawn(|| settings().limit).join().unwrap()
    }

    // One test: the scopes of the process are shared, so the cases run in
    // order, never beside each other.
    #[test]
    fn a_test_s_settings_reach_the_threads_it_spawns_while_it_runs_alone() {
        assert_eq!(limit_on_a_new_thread(), default_timeout(), "no test runs");
        run_test(&SHORT, || {
            assert_eq!(settings().limit, Duration::from_millis(700));
            assert_eq!(limit_on_a_new_thread(), Duration::from_millis(700));
            // A run of its spawned thread is stopped at the test's limit.
            let run = std::thread::spawn(|| Cmd::new("sleep").arg("20").try_run()).join().unwrap();
            let run = run.unwrap_or_else(|e| panic!("probity: failed to trace sleep: {}", crate::error::Chain(&e)));
            assert!(run.trace.outcome.interrupted, "sleep 20 was not stopped at the test's 0.7 s limit");
        });
        assert_eq!(limit_on_a_new_thread(), default_timeout(), "the test ended");

        // Two tests at once: a spawned thread's run is neither's.
        let (entered, leave) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
        std::thread::scope(|s| {
            s.spawn(|| {
                run_test(&OTHER, || {
                    assert_eq!(settings().tracers, [TracerKind::Preload]);
                    entered.wait();
                    leave.wait();
                });
            });
            run_test(&SHORT, || {
                entered.wait();
                assert_eq!(settings().limit, Duration::from_millis(700), "its own thread still knows");
                let other = std::thread::spawn(settings).join().unwrap();
                assert_eq!((other.limit, other.test), (default_timeout(), None));
                leave.wait();
            });
        });
        assert!(active().is_empty());
    }

    #[test]
    fn ci_requires_ebpf_unless_told_otherwise() {
        assert!(!required_by(None, None));
        assert!(required_by(None, Some("true")));
        assert!(required_by(None, Some("1")));
        assert!(!required_by(None, Some("false")));
        assert!(!required_by(None, Some("")));
        assert!(required_by(Some("1"), None));
        assert!(!required_by(Some("0"), Some("true")));
        assert!(required_by(Some("1"), Some("false")));
        assert!(required_by(Some(""), Some("true")), "an empty setting leaves it to CI");
    }
}
