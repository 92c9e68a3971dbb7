//! Preload ring records to [`Event`]s.
//!
//! Records describe themselves (each argument says what it is), so hooks a
//! crate writes for its own functions decode like the built-in ones.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use foldhash::HashMap;

use probity_common::shm::{
    libc_call_parts, ArgKind, ArgSlot, Attach, LibcCallFixed, ARG_NULL, ARG_TRUNCATED, CALL_BEFORE, CALL_INJECTED,
    CALL_RESULT,
};
use probity_common::EventKind as RecordKind;

use crate::event::{Arg, Event, EventKind, LibcCall};

/// Per-session decoding state.
#[derive(Default)]
pub(super) struct Decoder {
    /// Calls recorded before they ran, by thread, until their result or
    /// the thread's next record shows whether they returned.
    pending: HashMap<u32, Event>,
    /// Records that are not records the library writes: too short for
    /// their kind, of no kind it writes, or with parts that do not fit.
    pub(super) invalid: u64,
}

impl Decoder {
    /// Decodes one record into `out`, its times converted with `clock`;
    /// returns what an attach record says.
    /// Anything else the ring holds (it is the traced program's memory) is
    /// counted in `invalid` and dropped.
    pub(super) fn push(
        &mut self,
        bytes: &[u8],
        clock: &super::clock::Convert,
        out: &mut Vec<Event>,
    ) -> Option<super::Attached> {
        let decoded = self.decode(bytes, clock, out);
        if decoded.is_err() {
            self.invalid += 1;
        }
        decoded.ok().flatten()
    }

    fn decode(
        &mut self,
        bytes: &[u8],
        clock: &super::clock::Convert,
        out: &mut Vec<Event>,
    ) -> Result<Option<super::Attached>, Invalid> {
        let header = read::<probity_common::EventHeader>(bytes).ok_or(Invalid)?;
        match RecordKind::from_u32(header.kind).ok_or(Invalid)? {
            RecordKind::PreloadAttach => {
                let a = read::<Attach>(bytes).ok_or(Invalid)?;
                self.flush(a.header.tid, out);
                Ok(Some(super::Attached {
                    pid: a.header.pid,
                    tid: a.header.tid,
                    ppid: a.ppid,
                    start_ns: a.init_start_ns,
                    end_ns: a.header.ts_ns,
                    wake_addr: a.wake_addr,
                    flags: a.flags,
                }))
            }
            RecordKind::LibcCall => {
                let fixed = read::<LibcCallFixed>(bytes).ok_or(Invalid)?;
                let parts = libc_call_parts(bytes.len(), usize::from(fixed.nargs), usize::from(fixed.name_len))
                    .ok_or(Invalid)?;
                let args: Vec<ArgSlot> =
                    bytes[parts.args..].chunks_exact(size_of::<ArgSlot>()).filter_map(read::<ArgSlot>).collect();
                let function = String::from_utf8_lossy(&bytes[parts.name..parts.strings]).into_owned();
                let strings = &bytes[parts.strings..parts.args];
                let h = fixed.header;
                let start_ns = clock.ns(h.ts_ns);
                let duration_ns = clock.ns(fixed.end).saturating_sub(start_ns);
                if fixed.flags & CALL_RESULT != 0 {
                    if let Some(mut ev) = self.pending.remove(&h.tid) {
                        if let EventKind::Libc(call) = &mut ev.kind {
                            call.ret = Some(arg(&fixed.ret, strings));
                            call.errno = errno(&fixed.ret, fixed.errno);
                            call.duration_ns = duration_ns;
                        }
                        out.push(ev);
                    }
                    return Ok(None);
                }
                self.flush(h.tid, out);
                let before = fixed.flags & CALL_BEFORE != 0;
                let ev = Event {
                    ts_ns: start_ns,
                    pid: h.pid,
                    tid: h.tid,
                    kind: EventKind::Libc(Box::new(LibcCall {
                        function,
                        args: args.iter().map(|a| arg(a, strings)).collect(),
                        ret: (!before).then(|| arg(&fixed.ret, strings)),
                        errno: if before { None } else { errno(&fixed.ret, fixed.errno) },
                        duration_ns,
                        parent: None,
                        injected: fixed.flags & CALL_INJECTED != 0,
                    })),
                };
                if before {
                    self.pending.insert(h.tid, ev);
                } else {
                    out.push(ev);
                }
                Ok(None)
            }
            // Kinds only the kernel tracer writes.
            _ => Err(Invalid),
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

/// A record the library does not write.
struct Invalid;

fn read<T: Copy>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < size_of::<T>() {
        return None;
    }
    // SAFETY: length checked; the record types are plain data valid for any bits.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
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
        let start = usize::from(a.off).min(strings.len());
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
        Some(ArgKind::Str) => Arg::Path { path: OsStr::from_bytes(bytes()).to_owned(), truncated },
        Some(ArgKind::OpenFlags) => Arg::Flags { value: a.value, text: crate::decode::flags::open(a.value) },
        Some(ArgKind::AtFlags) => Arg::Flags { value: a.value, text: crate::decode::flags::at(a.value) },
        Some(ArgKind::Mode) => Arg::Flags { value: a.value, text: crate::decode::flags::mode(a.value) },
        Some(ArgKind::Sockaddr) => crate::decode::sockaddr::decode(bytes()).map_or(Arg::Ptr(a.value), Arg::Sockaddr),
        Some(ArgKind::StrList) => Arg::Strings {
            items: bytes()
                .split(|&b| b == 0)
                .filter(|s| !s.is_empty())
                .map(|s| OsStr::from_bytes(s).to_owned())
                .collect(),
            truncated,
        },
        Some(ArgKind::None) | None => Arg::Hex(a.value),
    }
}

/// Per-function counts of libc calls, for a summary run: records are
/// counted as they are drained and not kept.
#[derive(Default)]
pub(super) struct Counter {
    /// Rows by function name.
    index: HashMap<Vec<u8>, usize>,
    rows: Vec<Row>,
    /// The last row used, by name (calls come in runs of the same function).
    last: Option<(Vec<u8>, usize)>,
    /// libc call records whose parts do not fit in them.
    pub(super) invalid: u64,
}

struct Row {
    name: String,
    calls: u64,
    errors: u64,
    /// Time in the ring's clock units.
    stamps: u64,
}

impl Counter {
    /// Counts one record; `false` when it is not a libc call (the caller
    /// keeps it for decoding).
    pub(super) fn push(&mut self, bytes: &[u8]) -> bool {
        let Some(fixed) = read::<LibcCallFixed>(bytes) else { return false };
        if RecordKind::from_u32(fixed.header.kind) != Some(RecordKind::LibcCall) {
            return false;
        }
        let Some(parts) = libc_call_parts(bytes.len(), usize::from(fixed.nargs), usize::from(fixed.name_len)) else {
            self.invalid += 1;
            return true;
        };
        let name = &bytes[parts.name..parts.strings];
        let row = match &self.last {
            Some((n, i)) if n == name => *i,
            _ => {
                let i = match self.index.get(name) {
                    Some(&i) => i,
                    None => {
                        self.rows.push(Row {
                            name: String::from_utf8_lossy(name).into_owned(),
                            calls: 0,
                            errors: 0,
                            stamps: 0,
                        });
                        self.index.insert(name.to_vec(), self.rows.len() - 1);
                        self.rows.len() - 1
                    }
                };
                self.last = Some((name.to_vec(), i));
                i
            }
        };
        let row = &mut self.rows[row];
        // A call recorded before it ran counts once; its result (if it
        // returned) brings the time and the outcome.
        if fixed.flags & CALL_RESULT == 0 {
            row.calls += 1;
        }
        if fixed.flags & CALL_BEFORE == 0 {
            row.stamps += fixed.end.saturating_sub(fixed.header.ts_ns);
            row.errors += u64::from(errno(&fixed.ret, fixed.errno).is_some());
        }
        true
    }

    /// The counts, times converted with `clock`, most time first.
    pub(super) fn finish(self, clock: &super::clock::Convert) -> Vec<crate::SyscallCount> {
        let mut out: Vec<_> = self
            .rows
            .into_iter()
            .map(|r| crate::SyscallCount {
                name: r.name,
                calls: r.calls,
                errors: r.errors,
                total_ns: clock.duration_ns(r.stamps),
            })
            .collect();
        crate::SyscallCount::sort_by_time(&mut out);
        out
    }
}

/// Per-function counts of decoded libc calls.
pub(super) fn count(events: &[Event]) -> Vec<crate::SyscallCount> {
    let mut by_name: HashMap<&str, crate::SyscallCount> = HashMap::default();
    for call in events.iter().filter_map(Event::as_libc) {
        let c = by_name.entry(call.function.as_str()).or_insert_with(|| crate::SyscallCount {
            name: call.function.clone(),
            calls: 0,
            errors: 0,
            total_ns: 0,
        });
        c.calls += 1;
        c.errors += u64::from(call.errno.is_some());
        c.total_ns += call.duration_ns;
    }
    let mut out: Vec<_> = by_name.into_values().collect();
    crate::SyscallCount::sort_by_time(&mut out);
    out
}

/// The decoder fed what a program can write into the ring: any bytes, and
/// records whose header says they are libc calls or attaches (so that the
/// parts behind it are reached) with anything after.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    fn record(kind: RecordKind, rest: &[u8]) -> Vec<u8> {
        let mut bytes = probity_common::as_bytes(&probity_common::EventHeader::new(kind, 0, 5, 7, 7)).to_vec();
        bytes.extend_from_slice(rest);
        bytes
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn any_record_decodes_or_is_counted_never_panics(
            raw in prop::collection::vec(any::<u8>(), 0..600),
            kind in prop_oneof![Just(None), Just(Some(RecordKind::LibcCall)), Just(Some(RecordKind::PreloadAttach))],
            tsc in any::<bool>(),
        ) {
            let bytes = match kind {
                Some(k) => record(k, &raw),
                None => raw,
            };
            let clock = if tsc {
                super::super::clock::Convert::new(probity_common::shm::CLOCK_TSC, vec![super::super::clock::Pair { tsc: 10, ns: 5 }, super::super::clock::Pair { tsc: 20, ns: 9 }])
            } else {
                super::super::clock::Convert::new(probity_common::shm::CLOCK_MONOTONIC_NS, vec![])
            };
            let mut decoder = Decoder::default();
            let mut out = Vec::new();
            // Twice: a result record finds the first one pending.
            for _ in 0..2 {
                let attached = decoder.push(&bytes, &clock, &mut out);
                prop_assert!(attached.is_none() || bytes.len() >= size_of::<Attach>());
            }
            decoder.finish(&mut out);
            prop_assert!(out.len() <= 2);
            prop_assert!(decoder.invalid == 0 || decoder.invalid == 2);
            for e in &out {
                let call = e.as_libc().expect("only libc calls");
                prop_assert!(call.args.len() <= usize::from(u8::MAX));
            }
            let mut counter = Counter::default();
            counter.push(&bytes);
            let _ = counter.finish(&clock);
        }

        #[test]
        fn framed_spans_of_any_bytes_decode_without_panicking(raw in prop::collection::vec(any::<u8>(), 0..2048)) {
            let clock = super::super::clock::Convert::new(probity_common::shm::CLOCK_MONOTONIC_NS, vec![]);
            let mut decoder = Decoder::default();
            let mut out = Vec::new();
            for rec in probity_common::shm::Records::new(&raw) {
                decoder.push(rec, &clock, &mut out);
            }
            decoder.finish(&mut out);
        }
    }
}
