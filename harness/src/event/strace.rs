//! How strace spells what events hold: bytes as C string escapes, and
//! signal names. Events serialize with them, and the decoder and the
//! text form print with them.

use std::borrow::Cow;
use std::fmt::Write as _;

use nix::sys::signal::Signal;

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

/// The name of a signal as strace prints it, such as `SIGCHLD`: the
/// kernel's first real-time signal (32) is `SIGRTMIN` and the others
/// `SIGRT_<n>`, counted from it (glibc's `SIGRTMIN()`, 34, is `SIGRT_2`);
/// other numbers are `SIG<n>`.
pub fn signal_name(sig: i32) -> Cow<'static, str> {
    // The kernel's first real-time signal; libc's `SIGRTMIN()` is glibc's,
    // which keeps two for itself.
    const KERNEL_SIGRTMIN: i32 = 32;
    match Signal::try_from(sig) {
        Ok(signal) => Cow::Borrowed(signal.as_str()),
        Err(_) if sig == KERNEL_SIGRTMIN => Cow::Borrowed("SIGRTMIN"),
        Err(_) if (KERNEL_SIGRTMIN..=libc::SIGRTMAX()).contains(&sig) => {
            Cow::Owned(format!("SIGRT_{}", sig - KERNEL_SIGRTMIN))
        }
        Err(_) => Cow::Owned(format!("SIG{sig}")),
    }
}

#[cfg(test)]
mod tests {
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
    fn signal_names_as_strace_prints_them() {
        assert_eq!(signal_name(libc::SIGCHLD), "SIGCHLD");
        assert_eq!(signal_name(libc::SIGKILL), "SIGKILL");
        // As strace 6 prints them: glibc's SIGRTMIN + 2 is SIGRT_4.
        assert_eq!(signal_name(32), "SIGRTMIN");
        assert_eq!(signal_name(33), "SIGRT_1");
        assert_eq!(signal_name(34), "SIGRT_2");
        assert_eq!(signal_name(libc::SIGRTMIN() + 2), "SIGRT_4");
        assert_eq!(signal_name(64), "SIGRT_32");
        assert_eq!(signal_name(65), "SIG65");
        assert_eq!(signal_name(0), "SIG0");
        assert_eq!(signal_name(-5), "SIG-5");
    }
}
