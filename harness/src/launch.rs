//! What the traced command inherits, kept as it would be untraced: the
//! signal dispositions and mask this process was started with, and the
//! environment in its original order with probity's own variables added
//! at the end.
//!
//! Two things get in the way. Rust's runtime ignores `SIGPIPE` before
//! `main` (and `std::process::Command` resets it to the default in the
//! child), and probity installs handlers for the signals that stop a run;
//! so the dispositions are read by a constructor that runs before the
//! runtime starts, and restored in the child just before `exec` (an
//! ignored signal stays ignored across `exec`, a handled one becomes the
//! default). And `Command` sorts the whole environment as soon as any
//! variable is changed; so probity's variables are not set through it:
//! the child's `environ` is pointed at an array built in the parent, in
//! order, which `exec` then passes on.

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// Signals 1 to 64 that were ignored (`SIG_IGN`) when this process
/// started, bit `n - 1` for signal `n`.
static STARTUP_IGNORED: AtomicU64 = AtomicU64::new(0);
/// Signals 1 to 64 blocked in the main thread when this process started.
static STARTUP_BLOCKED: AtomicU64 = AtomicU64::new(0);

/// Runs before Rust's runtime (which then ignores `SIGPIPE`) and before
/// `main`, from the ELF initialisers of whichever binary links this
/// module, as the dynamic loader or libc's start-up code calls them.
#[used]
#[link_section = ".init_array"]
static CAPTURE_AT_STARTUP: extern "C" fn() = capture_at_startup;

extern "C" fn capture_at_startup() {
    let mut ignored = 0u64;
    for sig in 1..=64 {
        if disposition(sig) == Some(libc::SIG_IGN) {
            ignored |= 1 << (sig - 1);
        }
    }
    STARTUP_IGNORED.store(ignored, Ordering::Relaxed);
    STARTUP_BLOCKED.store(current_mask().unwrap_or(0), Ordering::Relaxed);
}

/// The kernel's `struct sigaction` on x86_64 and aarch64 (handler, flags,
/// restorer, mask). The raw syscalls are used because glibc's wrappers
/// refuse the two real-time signals it keeps for itself (32 and 33),
/// which a parent may still have ignored.
#[repr(C)]
#[derive(Default)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// `sig`'s disposition: `SIG_IGN`, `SIG_DFL` or a handler's address.
fn disposition(sig: libc::c_int) -> Option<libc::sighandler_t> {
    let mut old = KernelSigaction::default();
    // SAFETY: a query (no new action) into a buffer of the kernel's layout,
    // whose mask size is passed as the last argument.
    let rc =
        unsafe { libc::syscall(libc::SYS_rt_sigaction, sig, std::ptr::null::<KernelSigaction>(), &mut old, 8usize) };
    (rc == 0).then_some(old.handler)
}

/// Sets `sig` to `SIG_IGN` or `SIG_DFL`; async-signal-safe.
fn set_disposition(sig: libc::c_int, handler: libc::sighandler_t) -> std::io::Result<()> {
    let act = KernelSigaction { handler, ..KernelSigaction::default() };
    // SAFETY: a plain disposition needs no restorer; the layout is the
    // kernel's, with an 8-byte mask.
    let rc =
        unsafe { libc::syscall(libc::SYS_rt_sigaction, sig, &act, std::ptr::null_mut::<KernelSigaction>(), 8usize) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The calling thread's blocked signals, as bits (`rt_sigprocmask`
/// directly, for the same reason as [`disposition`]).
fn current_mask() -> Option<u64> {
    let mut old = 0u64;
    // SAFETY: a query only; `old` has the kernel's 8-byte sigset size.
    let rc =
        unsafe { libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_BLOCK, std::ptr::null::<u64>(), &mut old, 8usize) };
    (rc == 0).then_some(old)
}

/// The signals whose disposition the child must have changed before
/// `exec` for it to match this process's at start-up, and the mask to
/// set if the spawning thread's differs. Read in the parent, so the
/// child only makes the few calls that matter.
struct Signals {
    /// `(signal, SIG_IGN or SIG_DFL)`.
    actions: Vec<(libc::c_int, libc::sighandler_t)>,
    mask: Option<u64>,
}

impl Signals {
    fn plan() -> Signals {
        let startup = STARTUP_IGNORED.load(Ordering::Relaxed);
        let mut actions = Vec::new();
        for sig in 1..=64 {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            let Some(now) = disposition(sig) else { continue };
            let was_ignored = startup & (1 << (sig - 1)) != 0;
            // After `exec`, an ignored signal stays ignored and any other
            // becomes the default; `Command` itself sets SIGPIPE to the
            // default before running the child's hooks.
            let will_be_ignored = now == libc::SIG_IGN && sig != libc::SIGPIPE;
            if was_ignored != will_be_ignored {
                actions.push((sig, if was_ignored { libc::SIG_IGN } else { libc::SIG_DFL }));
            }
        }
        let wanted = STARTUP_BLOCKED.load(Ordering::Relaxed);
        let mask = (current_mask() != Some(wanted)).then_some(wanted);
        Signals { actions, mask }
    }

    /// In the child, between `fork` and `exec`: only async-signal-safe
    /// calls.
    fn apply(&self) -> std::io::Result<()> {
        for &(sig, handler) in &self.actions {
            set_disposition(sig, handler)?;
        }
        if let Some(set) = &self.mask {
            // SAFETY: `set` is an 8-byte kernel sigset.
            let rc = unsafe {
                libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_SETMASK, set, std::ptr::null_mut::<u64>(), 8usize)
            };
            if rc != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

/// An environment in order, to hand to `exec` as is.
pub(crate) struct Environment {
    vars: Vec<(OsString, OsString)>,
}

impl Environment {
    /// This process's environment, in its order.
    pub(crate) fn inherited() -> Environment {
        Environment { vars: std::env::vars_os().collect() }
    }

    /// No variables at all.
    pub(crate) fn empty() -> Environment {
        Environment { vars: Vec::new() }
    }

    /// Sets `key`: in place when it is there already, else at the end.
    pub(crate) fn set(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) {
        let (key, value) = (key.as_ref(), value.as_ref());
        match self.vars.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value.to_owned(),
            None => self.vars.push((key.to_owned(), value.to_owned())),
        }
    }

    /// Removes `key`.
    pub(crate) fn remove(&mut self, key: impl AsRef<OsStr>) {
        let key = key.as_ref();
        self.vars.retain(|(k, _)| k != key);
    }

    /// The value of `key`.
    pub(crate) fn get(&self, key: impl AsRef<OsStr>) -> Option<&OsStr> {
        let key = key.as_ref();
        self.vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_os_str())
    }

    /// `KEY=VALUE` strings for `environ`. A variable whose name or value
    /// holds a NUL byte cannot be passed and is left out, as `Command`
    /// would refuse it.
    fn to_c(&self) -> Vec<CString> {
        self.vars
            .iter()
            .filter_map(|(k, v)| {
                let mut kv = Vec::with_capacity(k.len() + v.len() + 1);
                kv.extend_from_slice(k.as_bytes());
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                CString::new(kv).ok()
            })
            .collect()
    }
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.vars.iter().map(|(k, _)| k)).finish()
    }
}

/// Makes `cmd` start its program with this process's start-up signal
/// dispositions and mask, and, when `env` is given, exactly that
/// environment in that order (then `cmd` itself must carry no
/// environment changes, which would make `Command` replace it with a
/// sorted copy). Register it before any other hook of the child's, so the
/// calls it makes come before tracing starts.
pub(crate) fn prepare(cmd: &mut Command, env: Option<Environment>) {
    debug_assert!(env.is_none() || cmd.get_envs().next().is_none(), "Command would replace the environment");
    let signals = Signals::plan();
    let strings = env.map(|e| e.to_c());
    let envp: Option<Vec<*const libc::c_char>> =
        strings.as_ref().map(|s| s.iter().map(|c| c.as_ptr()).chain(std::iter::once(std::ptr::null())).collect());
    let hook = Hook { signals, _strings: strings, envp };
    // SAFETY: `apply` makes only async-signal-safe calls (sigaction,
    // pthread_sigmask) and stores a pointer; it allocates nothing.
    unsafe { cmd.pre_exec(move || hook.run()) };
}

/// The child's hook: owns the strings `envp` points into.
struct Hook {
    signals: Signals,
    _strings: Option<Vec<CString>>,
    envp: Option<Vec<*const libc::c_char>>,
}

// SAFETY: the pointers point into `_strings`, owned by the same value and
// never changed; they are only read, in the forked child.
unsafe impl Send for Hook {}
// SAFETY: as above.
unsafe impl Sync for Hook {}

extern "C" {
    static mut environ: *const *const libc::c_char;
}

impl Hook {
    fn run(&self) -> std::io::Result<()> {
        self.signals.apply()?;
        if let Some(envp) = &self.envp {
            // SAFETY: in the forked child, which has one thread; `exec`
            // reads `environ` and the array outlives it (the child's copy
            // of this process's memory).
            unsafe { environ = envp.as_ptr() };
        }
        Ok(())
    }
}

/// For the tests of other modules: an environment as `KEY=VALUE` lines.
#[cfg(test)]
pub(crate) fn lines(env: &Environment) -> Vec<String> {
    env.to_c().into_iter().map(|c| String::from_utf8_lossy(&c.into_bytes()).into_owned()).collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::OsStringExt;

    use super::*;

    #[test]
    fn set_keeps_the_place_of_a_variable_and_appends_a_new_one() {
        let mut env = Environment { vars: vec![("B".into(), "1".into()), ("A".into(), "2".into())] };
        env.set("B", "3");
        env.set("C", "4");
        env.remove("A");
        assert_eq!(lines(&env), ["B=3", "C=4"]);
    }

    #[test]
    fn bytes_that_are_not_utf8_pass_through() {
        let mut env = Environment::empty();
        env.set(OsStr::from_bytes(b"K"), OsStr::from_bytes(b"\xff"));
        assert_eq!(env.to_c()[0].as_bytes(), b"K=\xff");
        assert_eq!(OsString::from_vec(b"\xff".to_vec()), env.get("K").unwrap());
    }
}
