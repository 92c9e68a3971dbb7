//! Folding: equivalent syscalls (`open`, `openat`, `openat2`, `creat`...)
//! shown under one name and form, with their resolved paths, so that a
//! snapshot does not change when libc picks another variant.

use std::os::unix::ffi::OsStrExt;

use super::normalize::Normalizer;
use crate::event::{Arg, Syscall};
use crate::trace::index::{Access, FdTarget, Resolved};

impl Normalizer {
    pub(super) fn folded(&mut self, s: &Syscall, access: Option<&Access>) -> (String, Vec<String>) {
        let name = s.name.as_ref();
        let Some(fold) = fold_name(name, s) else {
            return (name.to_owned(), self.args(name, &s.args, access));
        };
        let id = |i: usize| access.and_then(|a| a.fd_ids.iter().find(|(k, _)| *k == i).map(|(_, id)| *id));
        let quoted = |n: &mut Normalizer, r: &Resolved| match r.as_os() {
            Some(p) => n.filters.apply_to(&format!("\"{}\"", crate::decode::escape_bytes(p.as_bytes()))),
            None => "?".to_owned(),
        };
        let paths: Vec<String> =
            access.map(|a| a.paths.iter().map(|(_, r)| quoted(self, r)).collect()).unwrap_or_default();
        let path_at: Vec<usize> = access.map(|a| a.paths.iter().map(|(i, _)| *i).collect()).unwrap_or_default();
        // The argument list with each (dirfd, path) pair as the resolved path.
        let mut generic = Vec::new();
        for (i, a) in s.args.iter().enumerate() {
            if path_at.contains(&(i + 1)) && matches!(a, Arg::Fd(_)) {
                continue;
            }
            match path_at.iter().position(|&p| p == i) {
                Some(k) => generic.push(paths[k].clone()),
                None => generic.push(self.arg(name, i, a, id(i))),
            }
        }
        let target = || -> Option<Resolved> {
            let a = access?;
            a.paths.first().map(|(_, r)| r.clone()).or_else(|| match a.fd.as_deref() {
                Some(FdTarget::File(r)) => Some(r.clone()),
                _ => None,
            })
        };
        let args = match fold {
            "stat" => match target() {
                Some(r) => vec![quoted(self, &r)],
                None => generic.into_iter().take(1).collect(),
            },
            "open" => {
                let flags: Vec<String> = s
                    .args
                    .iter()
                    .enumerate()
                    .filter(|(_, a)| matches!(a, Arg::Flags { .. }))
                    .map(|(i, a)| self.arg(name, i, a, None))
                    .collect();
                paths.iter().take(1).cloned().chain(flags).collect()
            }
            "access" => {
                let mode = s
                    .args
                    .iter()
                    .enumerate()
                    .find(|(_, a)| matches!(a, Arg::Flags { .. }))
                    .map(|(i, a)| self.arg(name, i, a, None));
                paths.iter().take(1).cloned().chain(mode).collect()
            }
            "unlink" | "rmdir" | "rename" | "link" | "mkdir" | "mknod" | "readlink" => {
                let mut v = paths.clone();
                if matches!(fold, "mkdir" | "mknod") {
                    v.extend(
                        s.args
                            .iter()
                            .enumerate()
                            .filter(|(_, a)| matches!(a, Arg::Flags { text, .. } if text.starts_with('0')))
                            .map(|(i, a)| self.arg(name, i, a, None)),
                    );
                }
                v
            }
            "symlink" => {
                let target = s.args.first().map(|a| self.arg(name, 0, a, None));
                target.into_iter().chain(paths.iter().cloned()).collect()
            }
            "clone" | "wait" => Vec::new(),
            "execve" => paths
                .iter()
                .take(1)
                .cloned()
                .chain(
                    s.args
                        .iter()
                        .enumerate()
                        .filter(|(_, a)| matches!(a, Arg::Strings { .. }))
                        .map(|(i, a)| self.arg(name, i, a, None)),
                )
                .collect(),
            _ => generic,
        };
        (fold.to_owned(), args)
    }
}

/// The folded name of a syscall, when it has one.
fn fold_name(name: &str, s: &Syscall) -> Option<&'static str> {
    Some(match name {
        "open" | "openat" | "openat2" | "creat" => "open",
        "stat" | "lstat" | "fstat" | "newfstatat" | "fstatat" | "fstatat64" | "statx" | "stat64" | "lstat64"
        | "fstat64" => "stat",
        "access" | "faccessat" | "faccessat2" => "access",
        "unlinkat" if s.args.iter().any(|a| matches!(a, Arg::Flags { text, .. } if text.contains("AT_REMOVEDIR"))) => {
            "rmdir"
        }
        "unlink" | "unlinkat" => "unlink",
        "rmdir" => "rmdir",
        "rename" | "renameat" | "renameat2" => "rename",
        "mkdir" | "mkdirat" => "mkdir",
        "mknod" | "mknodat" => "mknod",
        "link" | "linkat" => "link",
        "symlink" | "symlinkat" => "symlink",
        "readlink" | "readlinkat" => "readlink",
        "chmod" | "fchmodat" | "fchmodat2" => "chmod",
        "chown" | "lchown" | "fchownat" => "chown",
        "utime" | "utimes" | "futimesat" | "utimensat" => "utimes",
        "clone" | "clone3" | "fork" | "vfork" => "clone",
        "execve" | "execveat" => "execve",
        "wait4" | "waitid" => "wait",
        "dup2" | "dup3" => "dup2",
        "pipe" | "pipe2" => "pipe",
        "getdents" | "getdents64" => "getdents",
        "poll" | "ppoll" | "select" | "pselect6" => "poll",
        "epoll_wait" | "epoll_pwait" | "epoll_pwait2" => "epoll_wait",
        "accept" | "accept4" => "accept",
        "eventfd" | "eventfd2" => "eventfd",
        "signalfd" | "signalfd4" => "signalfd",
        "inotify_init" | "inotify_init1" => "inotify_init",
        "epoll_create" | "epoll_create1" => "epoll_create",
        _ => return None,
    })
}
