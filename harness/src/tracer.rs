//! Running a command under the tracers: [`Tracer`] and [`Tracee`].

mod attach;
mod tree_cgroup;

use std::ffi::OsString;

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use probity_common::{MaxTasks, RingBytes, StringLimit};

use crate::error::Error;
use crate::event::{Event, EventKind, ExitStatus};
use crate::kernel::{KernelSession, LoadOptions};
use crate::launch::Environment;
use crate::merge::{self, Collected, KernelEnd, PreloadEnd};
use crate::preload::PreloadSession;
use crate::testing::join::{Joiner, LateJoin};
use crate::trace::{Outcome, Trace, TracerKind};

/// How long the tree gets to end after SIGTERM before SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// Finds a program as `execvp` (and strace) do: a name with a `/` is used
/// as it is; a bare name is the first executable file of that name in
/// `PATH`. Resolving before the fork means the trace shows one `execve` of
/// the real path rather than a failed `execve` per `PATH` entry.
///
/// ```
/// let sh = probity::resolve_program("sh")?;
/// assert!(sh.is_absolute());
/// assert!(matches!(probity::resolve_program("no-such-probity-cmd"), Err(probity::Error::NotFound { .. })));
/// # Ok::<(), probity::Error>(())
/// ```
pub fn resolve_program(program: impl AsRef<std::ffi::OsStr>) -> Result<std::path::PathBuf, Error> {
    resolve_in(program.as_ref(), std::env::var_os("PATH"))
}

/// [`resolve_program`] with the `PATH` the command will have.
pub(crate) fn resolve_in(
    program: &std::ffi::OsStr,
    path: Option<std::ffi::OsString>,
) -> Result<std::path::PathBuf, Error> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    let name = program.to_string_lossy().into_owned();
    if program.as_bytes().contains(&b'/') {
        return Ok(program.into());
    }
    let path = path.unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(program);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
        }
    }
    Err(Error::NotFound { program: name })
}

/// What a failed spawn of `program` means, as a shell would say it: the
/// program does not exist (127), or the `#!` interpreter or dynamic loader
/// it names does not (127, naming both), or it exists but cannot be
/// executed (126: a directory, no execute permission, a symbolic-link
/// loop, a path through a file, an unknown format, too long arguments).
/// Anything else (no memory, too many processes) is a failure to start.
fn exec_error(program: &std::ffi::OsStr, source: std::io::Error) -> Error {
    let name = program.to_string_lossy().into_owned();
    match source.raw_os_error() {
        // exec says ENOENT both when the file is missing and when the
        // interpreter it names is: tell them apart as bash does.
        Some(libc::ENOENT) => match std::fs::metadata(program) {
            Ok(_) => Error::InterpreterNotFound { interpreter: interpreter_of(program), program: name },
            Err(_) => Error::NotFound { program: name },
        },
        Some(
            libc::EACCES
            | libc::EPERM
            | libc::ELOOP
            | libc::ENOTDIR
            | libc::ENOEXEC
            | libc::EISDIR
            | libc::ETXTBSY
            | libc::E2BIG
            | libc::ENAMETOOLONG
            | libc::ELIBBAD,
        ) => Error::NotExecutable { program: name, source },
        _ => Error::Spawn { program: name, source },
    }
}

/// The interpreter a script's `#!` line names, or a description of an ELF
/// program's dynamic loader.
fn interpreter_of(program: &std::ffi::OsStr) -> String {
    use std::io::Read;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(program).and_then(|mut f| f.read(&mut head)).unwrap_or(0);
    match head[..n].strip_prefix(b"#!") {
        Some(line) => {
            let line = line.split(|&b| b == b'\n').next().unwrap_or_default();
            let word = line.split(|b| b.is_ascii_whitespace()).find(|w| !w.is_empty()).unwrap_or_default();
            String::from_utf8_lossy(word).into_owned()
        }
        None => "its dynamic loader (the ELF interpreter)".into(),
    }
}

/// Settings for tracing commands.
///
/// ```no_run
/// use std::process::Command;
///
/// let trace = probity::Tracer::new().run(Command::new("true"))?;
/// assert!(trace.syscalls().any(|(_, s)| s.name == "execve"));
/// # Ok::<(), probity::Error>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct Tracer {
    summary: bool,
    string_limit: StringLimit,
    load: LoadOptions,
    timeout: Option<Duration>,
    tracers: Vec<TracerKind>,
    preload_ring_bytes: usize,
    preload_block: bool,
    inject: Vec<crate::inject::Inject>,
}

impl Default for Tracer {
    fn default() -> Self {
        Self::new()
    }
}

impl Tracer {
    /// Every event of the tree, buffers cut at 32 bytes like `strace -s 32`.
    pub fn new() -> Self {
        Tracer {
            summary: false,
            string_limit: StringLimit::DEFAULT,
            load: LoadOptions::default(),
            timeout: None,
            tracers: vec![TracerKind::Ebpf, TracerKind::Preload],
            preload_ring_bytes: crate::preload::DEFAULT_RING_BYTES,
            preload_block: true,
            inject: Vec::new(),
        }
    }

    /// Count syscalls in the kernel instead of recording each one, and
    /// libc calls as they are drained: the trace has process events only,
    /// and [`Outcome::syscalls`] and [`Outcome::libc_calls`] the counts.
    pub fn with_summary(mut self, on: bool) -> Self {
        self.summary = on;
        self
    }

    /// Bytes of read and write buffers to keep (32 by default, like
    /// `strace -s 32`).
    pub fn with_string_limit(mut self, limit: StringLimit) -> Self {
        self.string_limit = limit;
        self
    }

    /// Most tasks traced at once by this process (fixed by the first
    /// session).
    pub fn with_max_tasks(mut self, n: MaxTasks) -> Self {
        self.load.max_tasks = n.get();
        self
    }

    /// Kernel ring buffer size (fixed by the first session of the
    /// process).
    pub fn with_ring_bytes(mut self, n: RingBytes) -> Self {
        self.load.ring_bytes = n.get();
        self
    }

    /// Keeps the eBPF programs loaded once the last session ends, until
    /// this process exits, so later sessions start at once. Tests use it:
    /// loading costs about 150 ms, a session on loaded programs a few.
    pub fn with_kept_loaded(mut self, keep: bool) -> Self {
        self.load.keep = keep;
        self
    }

    /// Stops the tree (SIGTERM, then SIGKILL) when it runs longer.
    pub fn with_timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    /// The tracers to run: [`TracerKind::Ebpf`] needs root (or CAP_BPF and
    /// CAP_PERFMON); [`TracerKind::Preload`] alone works unprivileged but
    /// sees only libc calls of dynamically linked programs. Default: both.
    pub fn with_tracers(mut self, tracers: &[TracerKind]) -> Self {
        self.tracers = tracers.to_vec();
        self.tracers.sort();
        self.tracers.dedup();
        self
    }

    /// Bytes of the preload ring's data area (rounded up to a power of
    /// two; 16 MiB by default). A libc call takes 128 bytes or so.
    pub fn with_preload_ring_bytes(mut self, n: usize) -> Self {
        self.preload_ring_bytes = n;
        self
    }

    /// Whether a traced process that finds the preload ring full waits for
    /// room while probity drains it (the default), or counts the call as
    /// lost at once. It never waits for long: a process stops waiting, and
    /// loses records, when the draining thread stops making progress.
    pub fn with_preload_blocking(mut self, block: bool) -> Self {
        self.preload_block = block;
        self
    }

    /// Adds a fault-injection rule: the calls it chooses fail, return a
    /// value, bring a signal or wait, and each call probity answered is in
    /// the trace, marked [`injected`](crate::Syscall::injected). Works
    /// without root, with either tracer.
    ///
    /// ```no_run
    /// let rule: probity::inject::Inject = "openat:error=ENOSPC:path=/tmp/*".parse()?;
    /// let tracer = probity::Tracer::new().with_inject(rule);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_inject(mut self, rule: crate::inject::Inject) -> Self {
        self.inject.push(rule);
        self
    }

    /// Starts `cmd` traced. Its first `execve` is already in the trace.
    ///
    /// The command starts as it would untraced: with the signal
    /// dispositions and mask this process started with (an ignored
    /// `SIGHUP` stays ignored), and, when `cmd` changes no environment
    /// variable, with this process's environment in its order, probity's
    /// own variables (`LD_PRELOAD`, the ring's name) set in place or
    /// appended. `Command` sorts the environment once a variable is
    /// changed through it; [`Cmd`](crate::Cmd) keeps the order either way.
    pub fn spawn(&self, cmd: Command) -> Result<Tracee, Error> {
        self.spawn_inner(cmd, None, None)
    }

    /// Starts `cmd` (which must carry no environment changes of its own)
    /// with exactly `env`, in its order, plus probity's own variables.
    pub(crate) fn spawn_with_env(&self, cmd: Command, env: Environment) -> Result<Tracee, Error> {
        self.spawn_inner(cmd, None, Some(env))
    }

    /// Starts `cmd`, a child that is not traced from its `execve` but asks,
    /// when the part worth tracing begins, to be added to the session:
    /// a test binary re-executed to run one function, whose start-up is
    /// not the test's business. This process adds it (see [`Joiner`]);
    /// its events from before that are left out.
    pub(crate) fn spawn_late(&self, cmd: Command, late: LateJoin, env: Environment) -> Result<Tracee, Error> {
        self.spawn_inner(cmd, Some(late), Some(env))
    }

    fn spawn_inner(&self, mut cmd: Command, late: Option<LateJoin>, env: Option<Environment>) -> Result<Tracee, Error> {
        if self.tracers.is_empty() {
            return Err(Error::NoTracer);
        }
        // The environment the child gets, in order, when `Command` would
        // not replace it with a sorted copy (see `launch`).
        let mut env = env.or_else(|| cmd.get_envs().next().is_none().then(Environment::inherited));
        let kernel = if self.tracers.contains(&TracerKind::Ebpf) {
            Some(KernelSession::open(crate::kernel::session::SessionOptions {
                summary: self.summary,
                string_limit: self.string_limit,
                load: self.load,
            })?)
        } else {
            None
        };
        let preload = if self.tracers.contains(&TracerKind::Preload) {
            let p = PreloadSession::new(self.preload_ring_bytes, self.preload_block, self.summary)?;
            p.record_parents(kernel.is_none(), &cmd);
            Some(p)
        } else {
            None
        };
        // probity's own variables.
        let mut own: Vec<(OsString, OsString)> = Vec::new();
        if let Some(p) = &preload {
            let existing = match &env {
                Some(e) => e.get("LD_PRELOAD").map(ToOwned::to_owned),
                None => cmd
                    .get_envs()
                    .find(|(k, _)| *k == "LD_PRELOAD")
                    .map(|(_, v)| v.map(OsString::from))
                    .unwrap_or_else(|| std::env::var_os("LD_PRELOAD")),
            };
            own.extend(p.variables(existing.as_deref())?);
        }
        // Fault rules on libc functions travel to the preload library; a
        // variable of that name inherited from elsewhere (an outer run)
        // must not bring faults nobody asked of this one.
        let faults = probity_common::shm::FAULTS_ENV;
        match crate::inject::libc_wire(&self.inject).map_err(Error::Inject)? {
            Some(_) if preload.is_none() => {
                let function = self.inject.iter().find_map(|r| r.libc.first()).copied().unwrap_or_default();
                return Err(Error::Inject(crate::inject::FilterError::LibcWithoutPreload {
                    function: function.to_owned(),
                }));
            }
            Some(wire) => own.push((faults.into(), wire.into())),
            None if preload.is_some() => match &mut env {
                Some(e) => e.remove(faults),
                None if std::env::var_os(faults).is_some() || cmd.get_envs().any(|(k, _)| k == faults) => {
                    cmd.env_remove(faults);
                }
                None => {}
            },
            None => {}
        }
        match &mut env {
            Some(e) => own.into_iter().for_each(|(k, v)| e.set(k, v)),
            None => own.into_iter().for_each(|(k, v)| {
                cmd.env(k, v);
            }),
        }
        // The child's hooks run in this order; none of their calls is in
        // the trace, which starts with the kernel tracer's registration.
        // First, what it inherits, as untraced.
        crate::launch::prepare(&mut cmd, env);
        // The root must not outlive probity (killed, or crashed) and run on
        // untraced: the kernel sends it SIGKILL when the thread that forked
        // it ends. Limits: the thread, not the process (a `Tracee` spawned
        // on a thread that ends first loses its root); the setting is
        // cleared when the root execs a setuid or setgid program or one
        // with file capabilities; and the root's children do not inherit it.
        // The whole tree, where the kernel allows it: see `tree_cgroup`.
        let group = tree_cgroup::prepare();
        let parent = std::process::id();
        // SAFETY: write, prctl and getppid are async-signal-safe raw
        // syscalls; the closure allocates nothing. The group's descriptor
        // stays open in this process for its whole life.
        unsafe {
            cmd.pre_exec(move || {
                if let Some(fd) = group {
                    // Best effort: without it only the root dies with probity.
                    let _ = libc::write(fd, b"0".as_ptr().cast(), 1);
                }
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // probity died between the fork and the prctl: no signal
                // will come, so end here.
                if libc::getppid() != parent as libc::pid_t {
                    libc::_exit(125);
                }
                Ok(())
            })
        };
        // Before the registration, so that the filter's own set-up is not
        // traced; the supervisor leaves the calls before `exec` alone.
        if self.summary && !self.inject.is_empty() {
            return Err(Error::Inject(crate::inject::FilterError::WithSummary));
        }
        let joined = late.as_ref().map(|l| std::sync::Arc::clone(&l.record));
        let mut inject =
            crate::inject::prepare(&self.inject, &mut cmd, self.string_limit, joined).map_err(Error::Inject)?;
        if let (Some(session), None) = (&kernel, &late) {
            let register = session.registrar();
            // SAFETY: the closure makes one raw syscall and touches no
            // locks or allocator, so it is safe between fork and exec.
            unsafe { cmd.pre_exec(register) };
        }
        if let Some(late) = &late {
            // Its shared memory only: no descriptor of probity's maps.
            let fd = late.shm_fd;
            // SAFETY: fcntl is async-signal-safe; the fd is the child's own
            // copy, so the parent's stays close-on-exec.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                })
            };
        }
        let cwd = Outcome::command_cwd(&cmd);
        // Read before the command runs, so that it cannot change them.
        let resolution = crate::trace::Resolution::read();
        let started = Instant::now();
        let spawned = cmd.spawn();
        if let Some(s) = &mut inject {
            s.spawned();
        }
        let mut child = spawned.map_err(|source| {
            match kernel.as_ref().and_then(KernelSession::daemon_socket) {
                // The daemon said no to the child's registration.
                Some(socket) if source.raw_os_error() == Some(crate::daemon::REFUSED_ERRNO) => Error::DaemonRefused {
                    socket: socket.to_path_buf(),
                    message: "it did not add the command's process to the session (its log says why)".into(),
                },
                _ => exec_error(cmd.get_program(), source),
            }
        })?;
        let joiner =
            match late.map(|l| Joiner::start(l, child.id(), kernel.as_ref().map(KernelSession::late_registrar))) {
                None => None,
                Some(Ok(j)) => Some(j),
                Some(Err(source)) => {
                    // Nothing would add it to the session: it must not run on.
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(Error::Spawn { program: cmd.get_program().to_string_lossy().into_owned(), source });
                }
            };
        Ok(Tracee {
            inject,
            joiner,
            root: child.id(),
            kernel,
            preload,
            tracers: self.tracers.clone(),
            child: Some(child),
            status: None,
            started,
            timeout: self.timeout,
            cwd,
            resolution,
            attach: None,
        })
    }

    /// Runs `cmd` traced to the end and returns its whole trace.
    pub fn run(&self, cmd: Command) -> Result<Trace, Error> {
        self.spawn(cmd)?.wait()
    }

    /// Traces running processes from now on, like `strace -p`: each of
    /// `pids`, with its threads, the descendants it has now and every
    /// process they start. Waiting ends when they have all ended, or,
    /// when asked to stop (or at the time limit), by detaching: they run
    /// on, untraced, and the trace's status is [`ExitStatus::Running`].
    ///
    /// The trace begins mid-flight: [`Outcome::attach`] names the
    /// processes and what they had open; a network socket they opened
    /// before is a blind spot for the network checks, which fail closed
    /// over it. Only the eBPF tracer can attach (the preload library is
    /// loaded when a program starts), in this process: the probity daemon
    /// traces only commands its clients start. A caller that is not root
    /// may attach only where `ptrace` would let it.
    pub fn attach(&self, pids: &[u32]) -> Result<Tracee, Error> {
        let first = pids.first().copied().ok_or(Error::AttachProcess { pid: 0, reason: "no process named".into() })?;
        if !self.tracers.contains(&TracerKind::Ebpf) {
            return Err(Error::AttachProcess {
                pid: first,
                reason: "only the eBPF tracer can attach: the preload library is loaded when a program starts".into(),
            });
        }
        if !self.inject.is_empty() {
            return Err(Error::AttachProcess {
                pid: first,
                reason: "fault injection needs its filter installed before the program starts".into(),
            });
        }
        let kernel = KernelSession::open(crate::kernel::session::SessionOptions {
            summary: self.summary,
            string_limit: self.string_limit,
            load: self.load,
        })?;
        let resolution = crate::trace::Resolution::read();
        let Some(add) = kernel.attacher() else {
            return Err(Error::AttachProcess {
                pid: first,
                reason: format!(
                    "the probity daemon at {} traces only the commands its clients start; attaching needs the eBPF \
                     tracer loaded in this process (run as root)",
                    kernel.daemon_socket().map_or_else(String::new, |s| s.display().to_string())
                ),
            });
        };
        let adopted =
            attach::adopt(pids, crate::kernel::privilege::Owner::current(), &*add, &|tid| kernel.forget(tid))?;
        let (attach, left_out) = (adopted.attach, adopted.left_out);
        let cwd = attach.process(first).and_then(|p| p.cwd.clone());
        Ok(Tracee {
            inject: None,
            joiner: None,
            root: first,
            kernel: Some(kernel),
            preload: None,
            tracers: vec![TracerKind::Ebpf],
            child: None,
            status: None,
            started: Instant::now(),
            timeout: self.timeout,
            cwd,
            resolution,
            attach: Some((attach, left_out)),
        })
    }
}

/// A traced command that is running.
pub struct Tracee {
    /// For a late-joining child: what adds it to the session. First, so
    /// that it stops before the session closes.
    joiner: Option<Joiner>,
    /// Answers the calls of fault-injection rules.
    inject: Option<crate::inject::Supervisor>,
    kernel: Option<KernelSession>,
    preload: Option<PreloadSession>,
    tracers: Vec<TracerKind>,
    /// The command probity started; `None` for running processes it
    /// attached to.
    child: Option<Child>,
    root: u32,
    status: Option<ExitStatus>,
    started: Instant,
    timeout: Option<Duration>,
    /// The directory the command started in.
    cwd: Option<String>,
    /// Name resolution as read before the command started.
    resolution: crate::trace::Resolution,
    /// For running processes probity attached to: which, and what they
    /// had open; and their descendants it left out, with why.
    attach: Option<(crate::trace::Attach, Vec<crate::trace::Uncovered>)>,
}

/// How long a finished tree's TCP connections get to close in the kernel
/// before the ones still open are reported as open at the end.
const SOCKET_SETTLE: Duration = Duration::from_millis(200);

/// How long the preload ring must stay quiet, once the root process has
/// ended, before a preload-only trace is taken as complete.
const PRELOAD_QUIET: Duration = Duration::from_millis(30);

impl Tracee {
    /// The root process's pid.
    pub fn pid(&self) -> u32 {
        self.root
    }

    /// The child's standard input, when it was piped.
    pub(crate) fn take_stdin(&mut self) -> Option<std::process::ChildStdin> {
        self.child.as_mut().and_then(|c| c.stdin.take())
    }

    /// The child's standard output and error, when they were piped.
    pub(crate) fn take_output(&mut self) -> (Option<std::process::ChildStdout>, Option<std::process::ChildStderr>) {
        match self.child.as_mut() {
            Some(c) => (c.stdout.take(), c.stderr.take()),
            None => (None, None),
        }
    }

    /// Sends `sig` to every live task of the tree.
    pub fn signal_tree(&self, sig: Signal) {
        if let Some(k) = &self.kernel {
            for tid in k.tasks() {
                let _ = kill(Pid::from_raw(tid as i32), sig);
            }
        }
        if self.status.is_none() {
            let _ = kill(Pid::from_raw(self.root as i32), sig);
        }
    }

    /// Waits for the whole tree to end and returns its trace.
    pub fn wait(self) -> Result<Trace, Error> {
        let mut events = Vec::new();
        // Merged events come back as they are, not pushed one by one into
        // a second vector of the same size.
        let (outcome, merged) = self.wait_inner(None, |e| events.push(e), true)?;
        if events.is_empty() {
            events = merged;
        } else {
            events.extend(merged);
        }
        Ok(Trace { events, outcome })
    }

    /// Waits for the whole tree to end, handing each event to `on_event`.
    /// With the eBPF tracer alone, events come as they arrive (in
    /// completion order); with the preload tracer, they come at the end,
    /// merged into one timeline (start order, syscalls linked to the libc
    /// calls they were made in). Network events carry the host name the
    /// program resolved for their peer, when an earlier event showed it
    /// (a `getaddrinfo`, or a DNS answer). When `stop` becomes true, the tree is
    /// stopped (SIGTERM, then SIGKILL) and the trace completed.
    pub fn wait_with(self, stop: Option<&AtomicBool>, on_event: impl FnMut(Event)) -> Result<Outcome, Error> {
        Ok(self.wait_inner(stop, on_event, false)?.0)
    }

    /// [`Tracee::wait_with`]; with `keep_merged`, events that were held to
    /// be merged are returned instead of handed to `on_event`.
    fn wait_inner(
        mut self,
        stop: Option<&AtomicBool>,
        mut deliver: impl FnMut(Event),
        keep_merged: bool,
    ) -> Result<(Outcome, Vec<Event>), Error> {
        // Network events get the host names resolved before them.
        let mut hosts = crate::net::HostLinker::default();
        // Attached, the root's end is known from its exit event alone.
        let root = self.root;
        let root_end: std::cell::Cell<Option<ExitStatus>> = std::cell::Cell::new(None);
        let mut on_event = |mut e: Event| {
            if let (EventKind::Exit(x), true) = (&e.kind, e.pid == root) {
                if x.process_exited && x.status.is_some() {
                    root_end.set(x.status);
                }
            }
            hosts.apply(&mut e);
            deliver(e);
        };
        let attached = self.child.is_none();
        let mut detached = false;
        let mut stopping: Option<Instant> = None;
        let mut killed = false;
        let mut held: Vec<Event> = Vec::new();
        // A late-joining child's start-up is cut off at the end, by time.
        // The supervisor's answered calls join the kernel tracer's stream
        // batch by batch (see `Supervisor::take_answered`).
        let hold = self.preload.is_some() || self.joiner.is_some();
        let mut quiet_since: Option<Instant> = None;
        let mut last_activity = 0;
        if let Some(k) = &self.kernel {
            k.wake_when_exited(self.root);
        }
        // Handed over batch by batch when events are not held.
        let mut batch: Vec<Event> = Vec::new();
        loop {
            if let Some(k) = &self.kernel {
                let wait = Duration::from_millis(if hold { 2 } else { 10 });
                if hold {
                    // Held events are needed only at the end: they stay in
                    // the consumer's buffer until then (see below).
                    k.wait_woken(wait);
                } else {
                    k.take_into(&mut batch, wait);
                    if let Some(s) = &self.inject {
                        s.take_answered(&mut batch);
                    }
                    batch.drain(..).for_each(&mut on_event);
                }
            } else {
                std::thread::sleep(Duration::from_millis(5));
            }
            if let Some(p) = &self.preload {
                let now = p.activity();
                if now != last_activity {
                    last_activity = now;
                    quiet_since = None;
                }
            }
            if let (None, Some(child)) = (self.status, self.child.as_mut()) {
                // A late-joining child is added to the session only while
                // it is not reaped, so that its pid is still its own.
                let mut gate = self.joiner.as_ref().map(Joiner::hold);
                match child.try_wait() {
                    Ok(Some(st)) => {
                        if let Some(g) = &mut gate {
                            // A thread added as it ended, after the kernel
                            // tracer saw it end: nothing else takes it out.
                            for tid in g.stop() {
                                if let Some(k) = &self.kernel {
                                    k.forget(tid);
                                }
                            }
                        }
                        let st = match (st.code(), st.signal()) {
                            (Some(c), _) => ExitStatus::Code(c),
                            (None, Some(s)) => ExitStatus::Signal(s),
                            (None, None) => ExitStatus::Code(-1),
                        };
                        self.status = Some(st);
                        if let Some(k) = &self.kernel {
                            k.set_root_status(self.root, st);
                        }
                    }
                    Ok(None) => {}
                    Err(source) => return Err(Error::Wait { pid: self.root, source }),
                }
            }
            let asked = stop.is_some_and(|s| s.load(Ordering::Relaxed));
            let timed_out = self.timeout.is_some_and(|t| self.started.elapsed() > t);
            if attached {
                // Processes probity did not start are left running: it
                // detaches, by closing the session.
                if asked || timed_out {
                    // Out of the session first: a busy tree would
                    // otherwise keep the drain below from ever ending.
                    if let Some(k) = &self.kernel {
                        k.detach();
                    }
                    detached = true;
                    break;
                }
                if self.kernel.as_ref().is_none_or(|k| !k.alive()) {
                    break;
                }
                continue;
            }
            if (asked || timed_out) && stopping.is_none() {
                stopping = Some(Instant::now());
                self.signal_tree(Signal::SIGTERM);
            }
            if let Some(t) = stopping {
                if !killed && t.elapsed() > KILL_GRACE {
                    killed = true;
                    self.signal_tree(Signal::SIGKILL);
                }
            }
            if self.status.is_some() {
                match &self.kernel {
                    // The kernel side knows when the last task of the tree ended.
                    Some(k) => {
                        if !k.alive() {
                            break;
                        }
                    }
                    // Alone, the preload tracer cannot see orphans: wait for
                    // the ring to go quiet.
                    None => {
                        if quiet_since.get_or_insert_with(Instant::now).elapsed() > PRELOAD_QUIET {
                            break;
                        }
                    }
                }
            }
        }
        // The tracers hand over the rest of what they collected.
        let mut kernel = None;
        if let Some(k) = &self.kernel {
            // Everything the tree did is in the ring now, but for the close
            // of connections whose last packets are still on their way.
            k.settle_sockets(SOCKET_SETTLE);
            k.flush();
            loop {
                let buffer = if hold { &mut held } else { &mut batch };
                if k.take_into(buffer, Duration::ZERO) == 0 {
                    break;
                }
                if let (Some(s), false) = (&self.inject, hold) {
                    s.take_answered(&mut batch);
                }
                batch.drain(..).for_each(&mut on_event);
            }
            let (mut rest, undecodable) = k.finish();
            if hold {
                held.extend(rest);
            } else {
                if let Some(s) = self.inject.take() {
                    s.take_answered(&mut rest);
                    rest.extend(s.finish());
                }
                rest.into_iter().for_each(&mut on_event);
            }
            if let Some(e) = k.broken() {
                // The daemon ended the session or went away: what came is
                // not the whole trace, and must not pass for one.
                return Err(e);
            }
            let (losses, queue_full) = k.losses();
            kernel = Some(KernelEnd {
                stats: k.stats(),
                losses,
                undecodable,
                queue_full,
                daemon: k.daemon_socket().map(|p| p.display().to_string()),
                privileged: k.privileged(),
            });
        }
        // The calls the supervisor answered join the timeline.
        if let Some(s) = self.inject.take() {
            held.extend(s.finish());
        }
        let privileged = kernel.as_ref().is_some_and(|k| !k.privileged.is_empty());
        let kernel_ran = self.kernel.is_some();
        let preload = self.preload.as_mut().map(|p| {
            p.finish(&mut held, self.root, kernel_ran, privileged);
            let (ring_full, skipped) = p.losses();
            PreloadEnd {
                counts: p.counts().to_vec(),
                waits: p.waits(),
                ring_full,
                skipped,
                invalid: p.invalid(),
                attached: &p.attached,
                root_exec: p.root_exec(),
            }
        });
        let status = match (self.status, root_end.get()) {
            (Some(s), _) | (None, Some(s)) => s,
            (None, None) if detached => ExitStatus::Running,
            (None, None) => ExitStatus::Code(-1),
        };
        let (attach, left_out) = match self.attach.take() {
            Some((mut a, left_out)) => {
                a.detached = detached;
                (Some(a), left_out)
            }
            None => (None, Vec::new()),
        };
        let run = Collected {
            root: self.root,
            status,
            tracers: self.tracers.clone(),
            interrupted: stopping.is_some() || detached,
            cwd: self.cwd.take(),
            resolution: std::mem::take(&mut self.resolution),
            held: hold.then_some(held),
            joined_at: self
                .joiner
                .as_ref()
                .map(|j| (j.joined_at().unwrap_or(u64::MAX), j.added_at().unwrap_or(u64::MAX))),
            kernel,
            preload,
            attach,
            left_out,
        };
        Ok(merge::finish(run, hosts, deliver, keep_merged))
    }
}
