//! The paths a call changed, and how: opened, created, written, deleted,
//! renamed.

use super::calls::call;
use crate::event::Arg;
use crate::trace::index::{FdTarget, Index, Resolved};

/// A kind of change to a file.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Open,
    Create,
    Write,
    Delete,
    /// A rename: the first path is the old name, the second the new one.
    Rename,
    /// Any change to the file system: the check of `writes_only_under`.
    Modify,
}

pub(super) const O_ACCMODE: u64 = libc::O_ACCMODE as u64;

pub(super) fn open_flags(args: &[Arg]) -> Option<u64> {
    args.iter().find_map(|a| match a {
        Arg::Flags { value, text } if text.starts_with("O_") => Some(*value),
        _ => None,
    })
}

/// The mode string of `fopen` and `freopen` as open flags.
pub(super) fn fopen_flags(args: &[Arg]) -> u64 {
    let mut mode = args.iter().filter_map(|a| match a {
        Arg::Path { path, .. } => Some(path.to_string_lossy()),
        _ => None,
    });
    match mode.nth(1).as_deref().unwrap_or("r") {
        m if m.starts_with('w') => (libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC) as u64,
        m if m.starts_with('a') => (libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND) as u64,
        m if m.contains('+') => libc::O_RDWR as u64,
        _ => 0,
    }
}

/// The paths syscall `i` changed in the way `op` says (for [`Op::Rename`],
/// the old and new names in order). Only calls that succeeded count.
pub(super) fn op_paths<'a>(idx: &'a Index<'_>, i: usize, op: Op) -> Vec<&'a Resolved> {
    let Some(s) = call(idx, i) else { return Vec::new() };
    let Some(a) = idx.access(i) else { return Vec::new() };
    if !s.ok {
        return Vec::new();
    }
    let paths: Vec<&Resolved> = a.paths.iter().map(|(_, r)| r).collect();
    let fd_file = match a.fd.as_deref() {
        Some(FdTarget::File(r)) => Some(r),
        _ => None,
    };
    let name = s.name;
    let is_fopen = matches!(name, "fopen" | "freopen");
    let is_open = is_fopen || matches!(name, "open" | "openat" | "openat2" | "creat");
    let flags = if is_fopen { fopen_flags(s.args) } else { open_flags(s.args).unwrap_or(0) };
    let creates = name == "creat" || (is_open && flags & libc::O_CREAT as u64 != 0);
    let writes = name == "creat" || flags & O_ACCMODE != 0 || flags & (libc::O_CREAT | libc::O_TRUNC) as u64 != 0;
    match op {
        Op::Open if is_open => paths.into_iter().take(1).collect(),
        Op::Create if creates => paths.into_iter().take(1).collect(),
        Op::Create => match name {
            "mkdir" | "mkdirat" | "mknod" | "mknodat" | "mkfifo" => paths.into_iter().take(1).collect(),
            "symlink" | "symlinkat" | "link" | "linkat" | "rename" | "renameat" | "renameat2" => {
                paths.into_iter().last().into_iter().collect()
            }
            _ => Vec::new(),
        },
        Op::Write => match name {
            "write" | "pwrite64" | "writev" | "pwritev" | "pwritev2" | "sendfile" => fd_file.into_iter().collect(),
            _ => Vec::new(),
        },
        Op::Delete => match name {
            "unlink" | "unlinkat" | "rmdir" | "remove" => paths,
            _ => Vec::new(),
        },
        Op::Rename => match name {
            "rename" | "renameat" | "renameat2" => paths,
            _ => Vec::new(),
        },
        Op::Modify if is_open => {
            if writes {
                paths.into_iter().take(1).collect()
            } else {
                Vec::new()
            }
        }
        Op::Modify => match name {
            "mkdir" | "mkdirat" | "mknod" | "mknodat" | "unlink" | "unlinkat" | "rmdir" | "rename" | "renameat"
            | "renameat2" | "link" | "linkat" | "symlink" | "symlinkat" | "chmod" | "fchmodat" | "fchmodat2"
            | "chown" | "lchown" | "fchownat" | "truncate" | "utime" | "utimes" | "utimensat" | "futimesat"
            | "setxattr" | "lsetxattr" | "removexattr" | "lremovexattr" | "remove" | "mkfifo" => {
                if paths.is_empty() {
                    fd_file.into_iter().collect()
                } else {
                    paths
                }
            }
            "fchmod" | "fchown" | "ftruncate" | "fallocate" | "fsetxattr" | "fremovexattr" => {
                fd_file.into_iter().collect()
            }
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}
