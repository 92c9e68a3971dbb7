//! An event as one JSON object, written by hand for the events a trace
//! is mostly made of (syscalls with plain arguments), and by serde for
//! the rest: the bytes are those of `serde_json::to_writer`, which the
//! tests check, at a fraction of the cost (`probity run --json` writes
//! millions of them).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use super::{strace, Arg, Event, EventKind, Syscall};

impl Event {
    /// Appends the event to `out` as one JSON object (no newline), in the
    /// schema of `docs/json-schema.md`: the same bytes as
    /// `serde_json::to_writer(out, self)`, written faster.
    ///
    /// ```
    /// let e = probity::Event {
    ///     ts_ns: 5,
    ///     pid: 7,
    ///     tid: 7,
    ///     kind: probity::EventKind::Syscall(probity::Syscall {
    ///         name: "close".into(),
    ///         nr: 3,
    ///         args: vec![probity::Arg::Fd(3)],
    ///         ret: Some(0),
    ///         errno: None,
    ///         duration_ns: 2000,
    ///         parent: None,
    ///         injected: false,
    ///     }),
    /// };
    /// let mut out = Vec::new();
    /// e.write_json(&mut out);
    /// assert_eq!(out, serde_json::to_vec(&e).unwrap());
    /// ```
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match &self.kind {
            // An injected call is rare: serde writes its extra field.
            EventKind::Syscall(s) if !s.injected => {
                out.extend_from_slice(b"{\"ts_ns\":");
                int(out, self.ts_ns);
                out.extend_from_slice(b",\"pid\":");
                int(out, self.pid);
                out.extend_from_slice(b",\"tid\":");
                int(out, self.tid);
                out.extend_from_slice(b",\"kind\":\"syscall\",");
                syscall(out, s);
                out.push(b'}');
            }
            // Rare: serde's form is the reference, and cheap enough.
            _ => serde(out, self),
        }
    }
}

/// A syscall's fields, after the event's own.
fn syscall(out: &mut Vec<u8>, s: &Syscall) {
    out.extend_from_slice(b"\"name\":");
    string(out, &s.name);
    out.extend_from_slice(b",\"nr\":");
    int(out, s.nr);
    out.extend_from_slice(b",\"args\":[");
    for (i, a) in s.args.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        arg(out, a);
    }
    out.extend_from_slice(b"],\"ret\":");
    match s.ret {
        Some(r) => int(out, r),
        None => out.extend_from_slice(b"null"),
    }
    if let Some(errno) = &s.errno {
        out.extend_from_slice(b",\"errno\":");
        string(out, errno);
    }
    out.extend_from_slice(b",\"duration_ns\":");
    int(out, s.duration_ns);
    if let Some(p) = s.parent {
        out.extend_from_slice(b",\"parent\":");
        int(out, p);
    }
}

/// One argument, as `{"variant":value}`.
fn arg(out: &mut Vec<u8>, a: &Arg) {
    match a {
        Arg::Int(v) => tagged(out, b"{\"int\":", *v),
        Arg::Hex(v) => tagged(out, b"{\"hex\":", *v),
        Arg::Fd(v) => tagged(out, b"{\"fd\":", *v),
        Arg::Ptr(v) => tagged(out, b"{\"ptr\":", *v),
        Arg::Unreadable(v) => tagged(out, b"{\"unreadable\":", *v),
        Arg::Flags { value, text } => {
            out.extend_from_slice(b"{\"flags\":{\"value\":");
            int(out, *value);
            out.extend_from_slice(b",\"text\":");
            string(out, text);
            out.extend_from_slice(b"}}");
        }
        Arg::Path { path, truncated } => {
            out.extend_from_slice(b"{\"path\":{\"path\":");
            os_text(out, path);
            if *truncated {
                out.extend_from_slice(b",\"truncated\":true");
            }
            out.extend_from_slice(b"}}");
        }
        Arg::Bytes { data, len } => {
            out.extend_from_slice(b"{\"bytes\":{\"data\":");
            string(out, &strace::escape_bytes(data));
            out.extend_from_slice(b",\"len\":");
            int(out, *len);
            out.extend_from_slice(b"}}");
        }
        // Socket addresses, argv lists and messages: serde's form.
        _ => serde(out, a),
    }
}

fn tagged(out: &mut Vec<u8>, open: &[u8], v: impl itoa::Integer) {
    out.extend_from_slice(open);
    int(out, v);
    out.push(b'}');
}

fn int(out: &mut Vec<u8>, v: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// A program's string as `os_text` writes it: plain when UTF-8, else its
/// C escapes under `bytes`.
fn os_text(out: &mut Vec<u8>, s: &OsStr) {
    match s.to_str() {
        Some(t) => string(out, t),
        None => {
            out.extend_from_slice(b"{\"bytes\":");
            string(out, &strace::escape_bytes(s.as_bytes()));
            out.push(b'}');
        }
    }
}

/// A JSON string: as is when nothing in it needs an escape (serde_json
/// escapes only `"`, `\` and control characters), else serde_json's.
fn string(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde(out, s);
    }
}

fn serde<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    // Writing to a `Vec` cannot fail, and events serialize without error
    // (no maps with non-string keys, no failing `serialize`).
    let _ = serde_json::to_writer(out, v);
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;

    use proptest::prelude::*;

    use super::*;
    use crate::event::SockAddr;

    fn event(args: Vec<Arg>, ret: Option<i64>, errno: Option<&'static str>, parent: Option<usize>) -> Event {
        Event {
            ts_ns: 123_456_789_012,
            pid: 42,
            tid: 43,
            kind: EventKind::Syscall(Syscall {
                name: "openat".into(),
                nr: 257,
                args,
                ret,
                errno: errno.map(Into::into),
                duration_ns: 1500,
                parent,
                injected: false,
            }),
        }
    }

    fn same_as_serde(e: &Event) {
        let mut fast = Vec::new();
        e.write_json(&mut fast);
        let slow = serde_json::to_vec(e).unwrap();
        assert_eq!(String::from_utf8_lossy(&fast), String::from_utf8_lossy(&slow));
    }

    #[test]
    fn every_argument_kind_is_written_as_serde_writes_it() {
        let odd = |b: &[u8]| OsString::from_vec(b.to_vec());
        let args = vec![
            Arg::Int(-5),
            Arg::Int(i64::MIN),
            Arg::Hex(u64::MAX),
            Arg::Fd(libc::AT_FDCWD),
            Arg::Ptr(0),
            Arg::Unreadable(0x7ffd),
            Arg::Flags { value: 0o2_000_000, text: "O_RDONLY|O_CLOEXEC".into() },
            Arg::Path { path: "/etc/hostname".into(), truncated: false },
            Arg::Path { path: "/tmp/\"é\"\n\t\u{1}\u{7f}".into(), truncated: true },
            Arg::Path { path: odd(b"/tmp/a\xffb\\"), truncated: false },
            Arg::Bytes { data: b"hello\n\0\x1b\xff\"".to_vec(), len: 100 },
            Arg::Sockaddr(SockAddr::Inet { addr: "127.0.0.1:80".parse().unwrap() }),
            Arg::Strings { items: vec!["ls".into(), odd(b"\xfe")], truncated: true },
            Arg::Msg { name: None, data: b"x".to_vec(), truncated: true },
        ];
        same_as_serde(&event(args, Some(3), None, Some(7)));
        same_as_serde(&event(vec![], Some(-2), Some("ENOENT"), None));
        same_as_serde(&event(vec![], None, None, None));
    }

    #[test]
    fn an_injected_call_carries_its_mark() {
        let mut e = event(vec![Arg::Fd(3)], Some(-28), Some("ENOSPC"), None);
        if let EventKind::Syscall(s) = &mut e.kind {
            s.injected = true;
        }
        same_as_serde(&e);
        let mut out = Vec::new();
        e.write_json(&mut out);
        assert!(String::from_utf8(out).unwrap().ends_with(",\"injected\":true}"));
    }

    #[test]
    fn other_kinds_are_serdes() {
        let e = Event {
            ts_ns: 1,
            pid: 2,
            tid: 3,
            kind: EventKind::Fork(crate::event::Fork { child_tid: 4, untracked: true }),
        };
        same_as_serde(&e);
    }

    proptest! {
        #[test]
        fn any_strings_are_written_as_serde_writes_them(
            path in proptest::collection::vec(any::<u8>(), 0..40),
            text in any::<String>(),
            data in proptest::collection::vec(any::<u8>(), 0..40),
            ret in any::<i64>(),
        ) {
            let args = vec![
                Arg::Path { path: OsString::from_vec(path), truncated: false },
                Arg::Flags { value: 1, text },
                Arg::Bytes { data, len: 40 },
            ];
            let e = event(args, Some(ret), None, None);
            let mut fast = Vec::new();
            e.write_json(&mut fast);
            prop_assert_eq!(fast, serde_json::to_vec(&e).unwrap());
        }
    }
}
