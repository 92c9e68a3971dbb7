//! The strace-like text form: arguments and whole lines.

use std::fmt::{self, Write as _};
use std::os::unix::ffi::OsStrExt;

use super::{errno_desc, sockaddr};
use crate::event::strace::escape_bytes;
use crate::event::{Arg, Syscall};

/// Prints an argument as strace does: `AT_FDCWD`, `"/etc/hostname"`,
/// `"hello\n"...` for a buffer kept in part, `NULL`, `0x7ffd5e8a1f10`,
/// `O_RDONLY|O_CLOEXEC`, `{sa_family=AF_INET, ...}`.
impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Int(v) => write!(f, "{v}"),
            Arg::Hex(v) | Arg::Unreadable(v) => write!(f, "{v:#x}"),
            Arg::Ptr(0) => f.write_str("NULL"),
            Arg::Ptr(p) => write!(f, "{p:#x}"),
            Arg::Fd(libc::AT_FDCWD) => f.write_str("AT_FDCWD"),
            Arg::Fd(fd) => write!(f, "{fd}"),
            Arg::Flags { text, .. } => f.write_str(text),
            Arg::Path { path, truncated } => quoted(f, path.as_bytes(), *truncated),
            Arg::Bytes { data, len } => quoted(f, data, (data.len() as u64) < *len),
            Arg::Sockaddr(addr) => sockaddr::fmt(addr, f),
            // What strace shows of it, as far as probity has it.
            Arg::Msg { name, data, truncated } => {
                f.write_str("{")?;
                if let Some(addr) = name {
                    f.write_str("msg_name=")?;
                    sockaddr::fmt(addr, f)?;
                    f.write_str(", ")?;
                }
                f.write_str("msg_iov=[{iov_base=")?;
                quoted(f, data, *truncated)?;
                f.write_str("}]}")
            }
            Arg::Strings { items, truncated } => {
                f.write_str("[")?;
                for (i, s) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    quoted(f, s.as_bytes(), false)?;
                }
                if *truncated {
                    f.write_str(", ...")?;
                }
                f.write_str("]")
            }
        }
    }
}

fn quoted(f: &mut fmt::Formatter<'_>, data: &[u8], cut: bool) -> fmt::Result {
    write!(f, "\"{}\"{}", escape_bytes(data), if cut { "..." } else { "" })
}

/// A syscall as one strace line: `openat(AT_FDCWD, "/etc/hostname",
/// O_RDONLY|O_CLOEXEC) = 3`, `= -1 ENOENT (No such file or directory)` when
/// it failed, `= ?` when it never returned, addresses in hex for the
/// syscalls that return them, and ` (injected)` after the result of a call
/// probity answered.
pub fn format_syscall(s: &Syscall) -> String {
    let mut out = format!("{}(", s.name);
    for (i, arg) in s.args.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{arg}");
    }
    out.push_str(") = ");
    write_result(&mut out, s);
    out
}

/// What follows `) = ` in [`format_syscall`]'s line: the result, with the
/// errno and its description when the syscall failed.
pub(crate) fn write_result(out: &mut String, s: &Syscall) {
    let _ = match (s.ret, &s.errno) {
        (None, _) => {
            out.push('?');
            Ok(())
        }
        (Some(ret), Some(name)) => {
            let desc = ret.checked_neg().and_then(|e| i32::try_from(e).ok()).map(errno_desc);
            write!(out, "-1 {name} ({})", desc.as_deref().unwrap_or("unknown error"))
        }
        (Some(ret), None) if returns_address(&s.name) => write!(out, "{:#x}", ret as u64),
        (Some(ret), None) => {
            out.push_str(itoa::Buffer::new().format(ret));
            Ok(())
        }
    };
    if s.injected {
        // strace says `(INJECTED)` in the same place.
        out.push_str(" (injected)");
    }
}

/// The syscalls whose result is an address, which strace prints in hex.
fn returns_address(name: &str) -> bool {
    matches!(name, "mmap" | "mremap" | "brk" | "shmat")
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    #[test]
    fn args_display_like_strace() {
        assert_eq!(Arg::Fd(libc::AT_FDCWD).to_string(), "AT_FDCWD");
        assert_eq!(Arg::Fd(3).to_string(), "3");
        assert_eq!(Arg::Ptr(0).to_string(), "NULL");
        assert_eq!(Arg::Ptr(0x7ffd_1000).to_string(), "0x7ffd1000");
        assert_eq!(Arg::Unreadable(0x10).to_string(), "0x10");
        assert_eq!(Arg::Int(-1).to_string(), "-1");
        let path = Arg::Path { path: "/etc/host\"name".into(), truncated: true };
        assert_eq!(path.to_string(), r#""/etc/host\"name"..."#);
        // Bytes that are not printable ASCII are octal escapes, as strace
        // shows them, whether or not they are UTF-8.
        let odd = |b: &[u8]| std::ffi::OsStr::from_bytes(b).to_owned();
        let path = Arg::Path { path: odd(b"/tmp/a\xffb\xc3\xa9"), truncated: false };
        assert_eq!(path.to_string(), r#""/tmp/a\377b\303\251""#);
        let argv = Arg::Strings { items: vec![odd(b"cat"), odd(b"\xfe1")], truncated: false };
        assert_eq!(argv.to_string(), r#"["cat", "\3761"]"#);
        let buf = Arg::Bytes { data: b"hello\n".to_vec(), len: 100 };
        assert_eq!(buf.to_string(), r#""hello\n"..."#);
        let buf = Arg::Bytes { data: b"hi".to_vec(), len: 2 };
        assert_eq!(buf.to_string(), r#""hi""#);
    }

    fn syscall(name: &'static str, args: Vec<Arg>, ret: Option<i64>, errno: Option<&'static str>) -> Syscall {
        Syscall {
            name: Cow::Borrowed(name),
            nr: 0,
            args,
            ret,
            errno: errno.map(Cow::Borrowed),
            duration_ns: 0,
            parent: None,
            injected: false,
        }
    }

    #[test]
    fn lines() {
        let args = vec![Arg::Int(0)];
        assert_eq!(format_syscall(&syscall("exit_group", args, None, None)), "exit_group(0) = ?");
        let args = vec![Arg::Ptr(0)];
        assert_eq!(format_syscall(&syscall("brk", args, Some(0x5555_5600_0000), None)), "brk(NULL) = 0x555556000000");
        assert_eq!(format_syscall(&syscall("getpid", vec![], Some(42), None)), "getpid() = 42");
        let odd = syscall("close", vec![Arg::Fd(3)], Some(i64::MIN), Some("EWHAT"));
        assert_eq!(format_syscall(&odd), "close(3) = -1 EWHAT (unknown error)");
    }
}
