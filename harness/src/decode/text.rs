//! The strace-like text form: C string escapes, arguments and whole lines.

use std::fmt::{self, Write as _};
use std::os::unix::ffi::OsStrExt;

use super::{errno_desc, sockaddr};
use crate::event::{Arg, Syscall};

/// Escapes bytes as strace prints strings: printable ASCII as is, `\"`,
/// `\\`, `\t`, `\n`, `\v`, `\f`, `\r`, and octal escapes for the other
/// bytes (`\0`, `\33`, `\377`). [`unescape_bytes`] reverses it exactly.
pub fn escape_bytes(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len());
    for (i, &b) in data.iter().enumerate() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            0x0b => out.push_str("\\v"),
            0x0c => out.push_str("\\f"),
            b'\r' => out.push_str("\\r"),
            b' '..=b'~' => out.push(char::from(b)),
            // An octal escape takes up to three digits, so a short one
            // followed by an octal digit would swallow it: pad that case.
            _ if matches!(data.get(i + 1), Some(b'0'..=b'7')) => {
                let _ = write!(out, "\\{b:03o}");
            }
            _ => {
                let _ = write!(out, "\\{b:o}");
            }
        }
    }
    out
}

/// Reverses [`escape_bytes`]. It also takes the other C escapes (`\a`,
/// `\b`, `\xNN`, `\'`, `\?`), and keeps unescaped non-ASCII text as UTF-8.
pub fn unescape_bytes(s: &str) -> Result<Vec<u8>, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        i += 1;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let Some(&e) = bytes.get(i) else {
            return Err(format!("a lone backslash ends {s:?}"));
        };
        i += 1;
        let byte = match e {
            b'"' | b'\\' | b'\'' | b'?' => e,
            b'a' => 0x07,
            b'b' => 0x08,
            b't' => b'\t',
            b'n' => b'\n',
            b'v' => 0x0b,
            b'f' => 0x0c,
            b'r' => b'\r',
            b'0'..=b'7' => {
                let start = i - 1;
                while i < start + 3 && matches!(bytes.get(i), Some(b'0'..=b'7')) {
                    i += 1;
                }
                let digits = &s[start..i];
                u8::from_str_radix(digits, 8).map_err(|_| format!("octal escape \\{digits} is over \\377"))?
            }
            b'x' => {
                let start = i;
                while i < start + 2 && bytes.get(i).is_some_and(u8::is_ascii_hexdigit) {
                    i += 1;
                }
                u8::from_str_radix(&s[start..i], 16).map_err(|_| "\\x has no hex digits".to_owned())?
            }
            _ => {
                let c = s[i - 1..].chars().next().unwrap_or_default();
                return Err(format!("unknown escape \\{c}"));
            }
        };
        out.push(byte);
    }
    Ok(out)
}

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
/// it failed, `= ?` when it never returned, and addresses in hex for the
/// syscalls that return them.
pub fn format_syscall(s: &Syscall) -> String {
    let mut out = format!("{}(", s.name);
    for (i, arg) in s.args.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{arg}");
    }
    out.push_str(") = ");
    let _ = match (s.ret, &s.errno) {
        (None, _) => write!(out, "?"),
        (Some(ret), Some(name)) => {
            let desc = ret.checked_neg().and_then(|e| i32::try_from(e).ok()).map(errno_desc);
            write!(out, "-1 {name} ({})", desc.as_deref().unwrap_or("unknown error"))
        }
        (Some(ret), None) if returns_address(&s.name) => write!(out, "{:#x}", ret as u64),
        (Some(ret), None) => write!(out, "{ret}"),
    };
    out
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
    fn escapes_like_strace() {
        assert_eq!(escape_bytes(b"hello\n"), r"hello\n");
        assert_eq!(escape_bytes(b"a\"b\\c\td\re"), r#"a\"b\\c\td\re"#);
        assert_eq!(escape_bytes(b"\0\x1b[0m\xff"), r"\0\33[0m\377");
        // A short octal escape must not run into a following digit.
        assert_eq!(escape_bytes(b"\x001"), r"\0001");
        assert_eq!(escape_bytes(b"\x019"), r"\19");
    }

    #[test]
    fn escape_round_trips_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(unescape_bytes(&escape_bytes(&all)).unwrap(), all);
        for b in 0..=255u8 {
            for next in [b'0', b'7', b'8', b'a', b'\\'] {
                let pair = [b, next];
                assert_eq!(unescape_bytes(&escape_bytes(&pair)).unwrap(), pair);
            }
        }
    }

    #[test]
    fn unescape_takes_other_c_escapes_and_rejects_bad_ones() {
        assert_eq!(unescape_bytes(r"\x41\x4a\a\?é").unwrap(), b"AJ\x07?\xc3\xa9");
        assert!(unescape_bytes("\\").is_err());
        assert!(unescape_bytes(r"\q").is_err());
        assert!(unescape_bytes(r"\400").is_err());
        assert!(unescape_bytes(r"\xg").is_err());
        assert!(unescape_bytes("\\é").is_err());
    }

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
