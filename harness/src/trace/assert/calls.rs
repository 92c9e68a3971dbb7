//! A call as the checks read it: a syscall, or a libc call where no
//! syscall tracer covered the process.

use crate::event::{Arg, EventKind};
use crate::trace::index::Index;

/// A syscall, or a libc call in a process no syscall tracer covered (where
/// the syscalls would say the same, they are what counts).
pub(super) struct Call<'a> {
    pub(super) name: &'a str,
    pub(super) args: &'a [Arg],
    /// It returned, without an error.
    pub(super) ok: bool,
    /// What a syscall returned.
    pub(super) ret: Option<i64>,
}

pub(super) fn call<'a>(idx: &Index<'a>, i: usize) -> Option<Call<'a>> {
    let e = &idx.trace.events[i];
    match &e.kind {
        EventKind::Syscall(s) => {
            Some(Call { name: &s.name, args: &s.args, ok: s.ret.is_some() && !s.failed(), ret: s.ret })
        }
        EventKind::Libc(c) => {
            let syscalls_seen = idx.procs.get(&e.pid).is_some_and(|p| p.tracers.iter().any(|t| t.observes("syscall")));
            if syscalls_seen {
                return None;
            }
            // A call through the `syscall()` wrapper is the syscall it
            // names, with the arguments after the number.
            let (name, args) = match (c.function.as_str(), c.args.split_first()) {
                ("syscall", Some((Arg::Int(nr), rest))) => (wrapped(*nr)?, rest),
                // `open64`, `fopen64`, `stat64`... are their plain forms.
                (f, _) => (f.strip_suffix("64").unwrap_or(f), &c.args[..]),
            };
            Some(Call { name, args, ok: c.ret.is_some() && c.errno.is_none(), ret: None })
        }
        _ => None,
    }
}

/// The name of a syscall the `syscall()` wrapper records that the checks
/// read as the call itself (the others, execs and forks, make the tree).
fn wrapped(nr: i64) -> Option<&'static str> {
    Some(match nr {
        libc::SYS_connect => "connect",
        libc::SYS_sendto => "sendto",
        libc::SYS_sendmsg => "sendmsg",
        libc::SYS_sendmmsg => "sendmmsg",
        libc::SYS_recvmsg => "recvmsg",
        libc::SYS_recvmmsg => "recvmmsg",
        libc::SYS_pidfd_getfd => "pidfd_getfd",
        _ => return None,
    })
}
