//! Preload ring records to [`Event`]s.
//!
//! Records describe themselves (each argument says what it is), so hooks a
//! crate writes for its own functions decode like the built-in ones.

use std::borrow::Cow;
use std::collections::HashMap;

use probity_common::shm::{
    ArgKind, ArgSlot, Attach, LibcCallFixed, ARG_NULL, ARG_TRUNCATED, CALL_BEFORE, CALL_RESULT, STRINGS_LEN,
};
use probity_common::EventKind as RecordKind;

use crate::event::{Arg, Event, EventKind, LibcCall};

/// Per-session decoding state.
#[derive(Default)]
pub(super) struct Decoder {
    /// Calls recorded before they ran, by thread, until their result or
    /// the thread's next record shows whether they returned.
    pending: HashMap<u32, Event>,
}

impl Decoder {
    /// Decodes one record into `out`; returns what an attach record says.
    pub(super) fn push(&mut self, bytes: &[u8], out: &mut Vec<Event>) -> Option<super::Attached> {
        let header = read::<probity_common::EventHeader>(bytes)?;
        match RecordKind::from_u32(header.kind)? {
            RecordKind::PreloadAttach => {
                let a = read::<Attach>(bytes)?;
                self.flush(a.header.tid, out);
                Some(super::Attached { pid: a.header.pid, tid: a.header.tid, start_ns: a.init_start_ns, end_ns: a.header.ts_ns })
            }
            RecordKind::LibcCall => {
                let fixed = read::<LibcCallFixed>(bytes)?;
                let strings = &bytes[size_of::<LibcCallFixed>().min(bytes.len())..];
                let h = fixed.header;
                if fixed.flags & CALL_RESULT != 0 {
                    if let Some(mut ev) = self.pending.remove(&h.tid) {
                        if let EventKind::Libc(call) = &mut ev.kind {
                            call.ret = Some(arg(&fixed.ret, strings));
                            call.errno = errno(&fixed.ret, fixed.errno);
                            call.duration_ns = fixed.duration_ns;
                        }
                        out.push(ev);
                    }
                    return None;
                }
                self.flush(h.tid, out);
                let nargs = (fixed.nargs as usize).min(fixed.args.len());
                let before = fixed.flags & CALL_BEFORE != 0;
                let ev = Event {
                    ts_ns: h.ts_ns,
                    pid: h.pid,
                    tid: h.tid,
                    kind: EventKind::Libc(LibcCall {
                        function: name(&fixed.name),
                        args: fixed.args[..nargs].iter().map(|a| arg(a, strings)).collect(),
                        ret: (!before).then(|| arg(&fixed.ret, strings)),
                        errno: if before { None } else { errno(&fixed.ret, fixed.errno) },
                        duration_ns: fixed.duration_ns,
                        parent: None,
                    }),
                };
                if before {
                    self.pending.insert(h.tid, ev);
                } else {
                    out.push(ev);
                }
                None
            }
            _ => None,
        }
    }

    /// A thread's earlier call that was recorded before it ran did not return.
    fn flush(&mut self, tid: u32, out: &mut Vec<Event>) {
        if let Some(ev) = self.pending.remove(&tid) {
            out.push(ev);
        }
    }

    /// Emits calls still waiting for a result: they never returned.
    pub(super) fn finish(&mut self, out: &mut Vec<Event>) {
        out.extend(self.pending.drain().map(|(_, e)| e));
    }
}

fn read<T: Copy>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < size_of::<T>() {
        return None;
    }
    // SAFETY: length checked; the record types are plain data valid for any bits.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

fn name(raw: &[u8]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

/// The errno of a call whose result says it failed: `-1` or `NULL`.
fn errno(ret: &ArgSlot, errno: i32) -> Option<Cow<'static, str>> {
    let failed = match ArgKind::from_u8(ret.kind) {
        Some(ArgKind::Int | ArgKind::Fd) => ret.value as i64 == -1,
        Some(ArgKind::Ptr) => ret.value == 0,
        _ => false,
    };
    (failed && errno != 0).then(|| crate::decode::errno_name(errno))
}

fn arg(a: &ArgSlot, strings: &[u8]) -> Arg {
    let bytes = || {
        let start = usize::from(a.off).min(STRINGS_LEN).min(strings.len());
        let end = (start + usize::from(a.len)).min(strings.len());
        &strings[start..end]
    };
    let truncated = a.flags & ARG_TRUNCATED != 0;
    if a.flags & ARG_NULL != 0 {
        return Arg::Ptr(0);
    }
    match ArgKind::from_u8(a.kind) {
        Some(ArgKind::Int) => Arg::Int(a.value as i64),
        Some(ArgKind::Uint) => Arg::Int(a.value as i64),
        Some(ArgKind::Hex) => Arg::Hex(a.value),
        Some(ArgKind::Fd) => Arg::Fd(a.value as i64 as i32),
        Some(ArgKind::Ptr) => Arg::Ptr(a.value),
        Some(ArgKind::Str) => Arg::Path { path: String::from_utf8_lossy(bytes()).into_owned(), truncated },
        Some(ArgKind::OpenFlags) => Arg::Flags { value: a.value, text: crate::decode::flags::open(a.value) },
        Some(ArgKind::AtFlags) => Arg::Flags { value: a.value, text: crate::decode::flags::at(a.value) },
        Some(ArgKind::Mode) => Arg::Flags { value: a.value, text: crate::decode::flags::mode(a.value) },
        Some(ArgKind::Sockaddr) => crate::decode::sockaddr::decode(bytes()).map_or(Arg::Ptr(a.value), Arg::Sockaddr),
        Some(ArgKind::StrList) => Arg::Strings {
            items: bytes()
                .split(|&b| b == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect(),
            truncated,
        },
        Some(ArgKind::None) | None => Arg::Hex(a.value),
    }
}
