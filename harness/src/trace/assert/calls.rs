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
            (!syscalls_seen).then(|| Call {
                // `open64`, `fopen64`, `stat64`... are their plain forms.
                name: c.function.strip_suffix("64").unwrap_or(&c.function),
                args: &c.args,
                ok: c.ret.is_some() && c.errno.is_none(),
                ret: None,
            })
        }
        _ => None,
    }
}
