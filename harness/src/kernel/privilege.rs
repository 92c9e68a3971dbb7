//! Keeping a non-root caller from seeing into processes with more
//! privilege than it has.
//!
//! probity may be given `CAP_BPF` and `CAP_PERFMON` without being root.
//! Then it must show no more than `ptrace` would: nothing of a process
//! running as another user or group, or holding capabilities. For a caller
//! that is not root, a process of its tree can only gain privilege by an
//! exec (a setuid or setgid program, or file capabilities): the exec
//! probe compares the task's credentials, just committed by the exec, with
//! the caller's, and a task with more privilege leaves the session there,
//! in the kernel, before its new image runs (see `elevated` in
//! `harness-ebpf/src/probes/process.rs`). Its exec record says so, and the
//! trace lists the process as uncovered by the eBPF tracer.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;

use crate::trace::{TracerKind, Uncovered};

/// Whose trace it is: the real ids of the process that loads the tracer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Owner {
    pub uid: u32,
    pub gid: u32,
}

impl Owner {
    /// This process's real user and group.
    pub(crate) fn current() -> Owner {
        Owner { uid: nix::unistd::getuid().as_raw(), gid: nix::unistd::getgid().as_raw() }
    }

    /// Whether processes with more privilege must be kept out of the
    /// trace: the caller is not root by its real user id. An effective
    /// uid of 0 over another real one (a setuid-root probity) does not
    /// count as root.
    pub(crate) fn is_root(self) -> bool {
        self.uid == 0
    }
}

/// Yama's `ptrace_scope`: 0 lets a user trace its own processes, 1 only
/// its descendants, 2 only root, 3 nobody. 0 where Yama is not built in.
pub(crate) fn ptrace_scope() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

/// Whether this process, if it traces with eBPF, leaves processes with
/// more privilege than its own user out of the trace: it is not root.
#[must_use]
pub fn excludes_privileged() -> bool {
    !Owner::current().is_root()
}

/// The entry for a process that exec'd `program` into more privilege than
/// `owner`, and left the trace there.
pub(crate) fn uncovered(pid: u32, program: &std::ffi::OsStr, owner: Owner) -> Uncovered {
    Uncovered {
        pid,
        program: crate::event::shown(program).into_owned(),
        tracer: TracerKind::Ebpf,
        reason: format!(
            "{}: more privilege than probity's caller (uid {}, gid {}), so it and its children are left out of the trace from this exec",
            why(program),
            owner.uid,
            owner.gid
        ),
    }
}

/// What made `program` privileged, as far as its file still shows. The
/// kernel decided from the process's credentials; this is only the wording.
fn why(program: &std::ffi::OsStr) -> String {
    let Ok(meta) = std::fs::metadata(program) else {
        return "runs as another user or group, or with capabilities".into();
    };
    let mode = meta.mode();
    if mode & libc::S_ISUID != 0 {
        return format!("setuid (runs as uid {})", meta.uid());
    }
    if mode & libc::S_ISGID != 0 && mode & libc::S_IXGRP != 0 {
        return format!("setgid (runs as gid {})", meta.gid());
    }
    if has_file_capabilities(program) {
        return "file capabilities (security.capability)".into();
    }
    "runs as another user or group, or with capabilities".into()
}

/// Whether `path` carries a `security.capability` attribute.
fn has_file_capabilities(path: &std::ffi::OsStr) -> bool {
    let Ok(c) = CString::new(path.as_bytes()) else { return false };
    // SAFETY: both strings are NUL-terminated and live; a null buffer of
    // size 0 asks only for the value's size.
    let n = unsafe { libc::getxattr(c.as_ptr(), c"security.capability".as_ptr(), std::ptr::null_mut(), 0) };
    n > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_names_the_setuid_owner_and_the_caller() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("prog");
        std::fs::write(&p, b"").unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o4755)).unwrap();
        let u = uncovered(7, p.as_os_str(), Owner { uid: 65534, gid: 65534 });
        assert_eq!(u.tracer, TracerKind::Ebpf);
        let owner = std::fs::metadata(&p).unwrap().uid();
        assert!(
            u.reason.starts_with(&format!(
                "setuid (runs as uid {owner}): more privilege than probity's caller (uid 65534, gid 65534)"
            )),
            "{}",
            u.reason
        );
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o2755)).unwrap();
        assert!(uncovered(7, p.as_os_str(), Owner { uid: 1, gid: 1 }).reason.starts_with("setgid"));
        assert!(uncovered(7, "/no/such/file".as_ref(), Owner { uid: 1, gid: 1 })
            .reason
            .starts_with("runs as another user"));
    }
}
