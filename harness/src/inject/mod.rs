//! Fault injection: make chosen calls of a traced tree fail (or return a
//! value, or wait, or bring a signal), without root, and record each
//! injected call in the trace.
//!
//! `spec` is the rule ([`Inject`], strace's `--inject` syntax);
//! `filter` the seccomp filter the child installs before `exec`;
//! `supervisor` the thread that answers the calls the filter holds.
//!
//! # Known limitations
//! - Counting is per rule, per syscall and per task (a thread), as strace
//!   counts per tracee; a call a rule's filters do not match is not
//!   counted by that rule.
//! - The supervisor answers one call at a time: a delay holds up the
//!   injected calls of other tasks too. A delay after a call that runs
//!   (`delay_exit` on a rule without `error=` or `retval=`) is taken
//!   before it.
//! - Calls made through another architecture's entry (`int 0x80`) are
//!   not filtered.
//! - With the preload tracer, the dynamic loader's opening of the preload
//!   library and the library's own calls are counted too: `when=` counts
//!   can differ from strace's by those (the integration tests compare
//!   with strace under the eBPF tracer alone).
//! - Only the calls the supervisor answers (`error=`, `retval=`) are its
//!   records; a call it lets run (a rule that only signals or delays) is
//!   in the trace when the eBPF tracer saw it.
//! - A process of the tree that outlives the run finds the calls the
//!   filter holds failing with `ENOSYS` once probity stops answering.
//! - Rules on libc functions (`getaddrinfo`, `fopen`) are answered by the
//!   preload library, before the real function runs, and need the preload
//!   tracer: they count per rule in each process (a forked child, and each
//!   exec'd image, count from zero), not per thread. A static program, or
//!   one that resolves names without libc, does not see them.
//! - The filter lets through the one `sendmsg` that hands the listener
//!   over (the hand-over socket's descriptor number, with
//!   `MSG_NOSIGNAL|MSG_DONTWAIT`); a program that makes that exact call
//!   later escapes a rule on `sendmsg`.

mod filter;
mod spec;
mod supervisor;

pub(crate) use filter::Filter;
pub use filter::FilterError;
pub(crate) use spec::libc_wire;
pub use spec::{Answer, Host, Inject, SpecError, When};
pub(crate) use supervisor::Supervisor;

/// Makes `cmd` run under `rules`: the child installs the filter before
/// `exec`, and a supervisor thread, started now, answers the calls (none
/// of the root's before its first `execve`, which are probity's own).
/// `None` without rules.
///
/// For a late-joining child, `joined` says when it was added to the
/// session: its calls before that (its start-up) are neither counted nor
/// injected.
pub(crate) fn prepare(
    rules: &[Inject],
    cmd: &mut std::process::Command,
    limit: probity_common::StringLimit,
    joined: Option<std::sync::Arc<crate::testing::join::JoinRecord>>,
) -> Result<Option<Supervisor>, FilterError> {
    use std::os::unix::process::CommandExt;
    // Rules on libc functions are the preload library's (`libc_wire`).
    let rules: Vec<Inject> = rules.iter().filter(|r| !r.is_libc()).cloned().collect();
    let rules = rules.as_slice();
    if rules.is_empty() {
        return Ok(None);
    }
    let filter = Filter::compile(rules)?;
    let mut installer = filter.installer();
    // SAFETY: `install` makes only raw async-signal-safe syscalls (getpid,
    // prctl, seccomp, sendmsg) on memory built before the fork.
    unsafe { cmd.pre_exec(move || installer.install()) };
    let supervisor = Supervisor::start(rules.to_vec(), filter, limit, joined).map_err(FilterError::Io)?;
    Ok(Some(supervisor))
}
