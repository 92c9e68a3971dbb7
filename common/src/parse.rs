//! Reading records back from the BPF ring buffer ([`Record::parse`]), for
//! the harness: the bytes come from the kernel side, but are checked
//! against their lengths all the same.

use core::mem::size_of;

use crate::{
    pad8, Capture, EventHeader, EventKind, ExecArgsHeader, ExecEvent, ExitEvent, ForkEvent, NetEvent, SignalEvent,
    SyscallEvent, EXEC_ARGS_LEN, EXEC_FILENAME_LEN, MAX_CAPTURE, MAX_CAPTURES,
};

/// Why a record could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Shorter than its header or body says.
    Truncated,
    /// The header names no known kind.
    UnknownKind(u32),
}

/// One syscall capture as read back: its header and its bytes.
#[derive(Clone, Copy, Debug)]
pub struct CaptureRef<'a> {
    pub capture: Capture,
    pub data: &'a [u8],
}

/// A record read back from the ring buffer.
#[derive(Clone, Copy)]
pub enum Record<'a> {
    Syscall(SyscallEvent, Captures<'a>),
    ExecArgs(&'a ExecArgsHeader, &'a [u8]),
    Exec(ExecEventRef<'a>),
    Fork(ForkEvent),
    Exit(ExitEvent),
    Signal(SignalEvent),
    Net(NetEvent),
}

/// A read-back [`ExecEvent`].
#[derive(Clone, Copy, Debug)]
pub struct ExecEventRef<'a> {
    pub header: EventHeader,
    pub old_tid: u32,
    /// `EXEC_*` flags.
    pub flags: u32,
    pub filename: &'a [u8],
}

/// The captures that follow a [`SyscallEvent`].
#[derive(Clone, Copy, Debug)]
pub struct Captures<'a> {
    rest: &'a [u8],
    left: u32,
}

impl<'a> Iterator for Captures<'a> {
    type Item = Result<CaptureRef<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let Some(capture) = read::<Capture>(self.rest) else {
            self.left = 0;
            return Some(Err(ParseError::Truncated));
        };
        let start = size_of::<Capture>();
        let end = start + capture.len as usize;
        if end > self.rest.len() || capture.len as usize > MAX_CAPTURE {
            self.left = 0;
            return Some(Err(ParseError::Truncated));
        }
        let data = &self.rest[start..end];
        self.rest = &self.rest[(start + pad8(capture.len as usize)).min(self.rest.len())..];
        Some(Ok(CaptureRef { capture, data }))
    }
}

fn read<T: Copy>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < size_of::<T>() {
        return None;
    }
    // SAFETY: length checked above; `read_unaligned` copes with any
    // alignment, and every record type is valid for any bit pattern.
    Some(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

fn cast<T>(bytes: &[u8]) -> Option<&T> {
    if bytes.len() < size_of::<T>() || !(bytes.as_ptr() as usize).is_multiple_of(core::mem::align_of::<T>()) {
        return None;
    }
    // SAFETY: length and alignment checked above; the type is plain data.
    Some(unsafe { &*bytes.as_ptr().cast::<T>() })
}

impl<'a> Record<'a> {
    /// Reads one record. Ring buffer records are 8-byte aligned.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ParseError> {
        let header = read::<EventHeader>(bytes).ok_or(ParseError::Truncated)?;
        let kind = EventKind::from_u32(header.kind).ok_or(ParseError::UnknownKind(header.kind))?;
        Ok(match kind {
            EventKind::Syscall => {
                let ev = read::<SyscallEvent>(bytes).ok_or(ParseError::Truncated)?;
                let rest = &bytes[size_of::<SyscallEvent>()..];
                Record::Syscall(ev, Captures { rest, left: ev.ncaptures.min(MAX_CAPTURES as u32) })
            }
            EventKind::ExecArgs => {
                let h = cast::<ExecArgsHeader>(bytes).ok_or(ParseError::Truncated)?;
                let data = &bytes[size_of::<ExecArgsHeader>()..];
                let len = (h.len as usize).min(EXEC_ARGS_LEN);
                if data.len() < len {
                    return Err(ParseError::Truncated);
                }
                Record::ExecArgs(h, &data[..len])
            }
            EventKind::Exec => {
                const FIXED: usize = size_of::<ExecEvent>() - EXEC_FILENAME_LEN;
                if bytes.len() < FIXED {
                    return Err(ParseError::Truncated);
                }
                let old_tid = u32::from_ne_bytes([bytes[24], bytes[25], bytes[26], bytes[27]]);
                let len = u32::from_ne_bytes([bytes[28], bytes[29], bytes[30], bytes[31]]) as usize;
                let flags = u32::from_ne_bytes([bytes[32], bytes[33], bytes[34], bytes[35]]);
                let len = len.min(EXEC_FILENAME_LEN).min(bytes.len() - FIXED);
                Record::Exec(ExecEventRef { header, old_tid, flags, filename: &bytes[FIXED..FIXED + len] })
            }
            EventKind::Fork => Record::Fork(read(bytes).ok_or(ParseError::Truncated)?),
            EventKind::Exit => Record::Exit(read(bytes).ok_or(ParseError::Truncated)?),
            EventKind::Signal => Record::Signal(read(bytes).ok_or(ParseError::Truncated)?),
            EventKind::Net => Record::Net(read(bytes).ok_or(ParseError::Truncated)?),
            // Preload records travel through the shared-memory ring (`shm`).
            EventKind::LibcCall | EventKind::PreloadAttach => return Err(ParseError::UnknownKind(header.kind)),
        })
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use crate::*;

    #[repr(C, align(8))]
    struct Aligned([u8; 256]);

    fn aligned(bytes: &[u8]) -> Aligned {
        let mut a = Aligned([0; 256]);
        a.0[..bytes.len()].copy_from_slice(bytes);
        a
    }

    #[test]
    fn syscall_with_captures_round_trips() {
        let ev = SyscallEvent {
            header: EventHeader::new(EventKind::Syscall, 3, 1000, 7, 8),
            nr: 257,
            flags: 0,
            args: [0xffff_ff9c, 0x1000, 0o2000000, 0, 0, 0],
            ret: 3,
            duration_ns: 12,
            ncaptures: 2,
            _pad: 0,
        };
        let mut bytes = Vec::from(as_bytes(&ev));
        for (arg, s) in [(1u8, &b"/etc/hostname"[..]), (2, &b"xy"[..])] {
            let c = Capture { arg, kind: CaptureKind::CStr as u8, flags: 0, _pad: 0, len: s.len() as u32 };
            bytes.extend_from_slice(as_bytes(&c));
            bytes.extend_from_slice(s);
            bytes.resize(pad8(bytes.len()), 0);
        }
        let buf = aligned(&bytes);
        let Ok(Record::Syscall(back, caps)) = Record::parse(&buf.0[..bytes.len()]) else {
            panic!("not a syscall record");
        };
        assert_eq!(back, ev);
        let caps: Vec<_> = caps.map(|c| c.unwrap()).collect();
        assert_eq!(caps.len(), 2);
        assert_eq!(caps[0].data, b"/etc/hostname");
        assert_eq!(caps[1].capture.arg, 2);
        assert_eq!(caps[1].data, b"xy");
    }

    #[test]
    fn fork_exit_signal_round_trip() {
        let fork = ForkEvent { header: EventHeader::new(EventKind::Fork, 1, 5, 10, 11), child_tid: 12, flags: 0 };
        let buf = aligned(as_bytes(&fork));
        assert!(matches!(Record::parse(&buf.0[..32]), Ok(Record::Fork(f)) if f == fork));
        let sig = SignalEvent {
            header: EventHeader::new(EventKind::Signal, 1, 5, 10, 11),
            sig: 9,
            errno: 0,
            code: 0,
            flags: 0,
            sa_handler: 0,
            sa_flags: 0,
        };
        let buf = aligned(as_bytes(&sig));
        assert!(matches!(Record::parse(&buf.0[..56]), Ok(Record::Signal(s)) if s == sig));
    }

    #[test]
    fn net_round_trips() {
        let mut daddr = [0u8; 16];
        daddr[..4].copy_from_slice(&[127, 0, 0, 1]);
        let net = NetEvent {
            header: EventHeader::new(EventKind::Net, 2, 9, 100, 101),
            op: NetOp::Close as u32,
            family: 2,
            protocol: 6,
            sport: 40000,
            dport: 8080,
            old_state: 9,
            new_state: 7,
            _pad: 0,
            sk: 0xffff_8880_1234_5678,
            saddr: daddr,
            daddr,
            bytes_sent: 1 << 30,
            bytes_received: 12,
            retransmits: 3,
            flags: NET_OPEN_AT_END,
        };
        let buf = aligned(as_bytes(&net));
        assert!(matches!(Record::parse(&buf.0[..104]), Ok(Record::Net(n)) if n == net));
        assert_eq!(NetOp::from_u32(net.op), Some(NetOp::Close));
        assert_eq!(NetOp::from_u32(0), None);
        assert_eq!(Record::parse(&buf.0[..100]).err(), Some(ParseError::Truncated));
    }

    #[test]
    fn short_or_unknown_records_are_errors() {
        let buf = aligned(&[0; 8]);
        assert_eq!(Record::parse(&buf.0[..8]).err(), Some(ParseError::Truncated));
        let h = EventHeader { kind: 99, session: 0, ts_ns: 0, pid: 0, tid: 0 };
        let buf = aligned(as_bytes(&h));
        assert_eq!(Record::parse(&buf.0[..24]).err(), Some(ParseError::UnknownKind(99)));
        // A capture that claims more bytes than the record has.
        let ev = SyscallEvent {
            header: EventHeader::new(EventKind::Syscall, 1, 0, 1, 1),
            nr: 0,
            flags: 0,
            args: [0; 6],
            ret: 0,
            duration_ns: 0,
            ncaptures: 1,
            _pad: 0,
        };
        let mut bytes = Vec::from(as_bytes(&ev));
        let c = Capture { arg: 0, kind: 1, flags: 0, _pad: 0, len: 100 };
        bytes.extend_from_slice(as_bytes(&c));
        let buf = aligned(&bytes);
        let Ok(Record::Syscall(_, mut caps)) = Record::parse(&buf.0[..bytes.len()]) else { panic!() };
        assert!(matches!(caps.next(), Some(Err(ParseError::Truncated))));
        assert!(caps.next().is_none());
    }
}
