//! The daemon's wire protocol: length-prefixed frames over a Unix stream
//! socket, each either a control message (JSON) or one kernel record as
//! the ring holds it. `docs/daemon.md` ("The wire protocol") is its description for
//! people; this file is the one definition for code.
//!
//! A frame is a little-endian `u32` length (of what follows), one kind
//! byte, and the payload. The daemon reads at most [`MAX_REQUEST`] bytes
//! of a client's frame and the client at most [`MAX_FRAME`] of the
//! daemon's: anything longer is an error, not an allocation.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

/// The protocol's version. A client says it first; a daemon that speaks
/// another answers with an error naming both.
pub const VERSION: u32 = 1;

/// Longest frame a client may send (requests are small).
pub const MAX_REQUEST: usize = 64 << 10;
/// Longest frame the daemon sends (a record is at most a few pages).
pub const MAX_FRAME: usize = 1 << 20;

/// Kind byte: a JSON [`Request`] or [`Response`].
pub(crate) const KIND_CONTROL: u8 = 1;
/// Kind byte: one kernel record, byte for byte as the ring held it.
pub(crate) const KIND_RECORD: u8 = 2;

/// What a client asks. The first message on a connection is
/// [`Request::Hello`] (a session's connection) or [`Request::Register`]
/// (a child adding itself, alone on its connection).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Opens the conversation.
    Hello { version: u32 },
    /// Opens a session owned by the caller.
    Open { summary: bool, string_limit: u32 },
    /// Sent by a child of the session's client, from between its fork
    /// and its exec: adds the sender (known by its socket's credentials,
    /// never by a number it sends) to the session.
    Register { version: u32, session: u32, token: String },
    /// Adds thread `tid` of a child of the client to the session: a child
    /// that joins late (a traced function).
    Join { tid: u32 },
    /// Takes thread `tid` out of the session, if it is in it.
    Forget { tid: u32 },
    /// The session's live thread ids.
    Tasks,
    /// What the session lost so far.
    Losses,
    /// The sockets the session's tree still owns.
    Sockets,
    /// The session's syscall counters (summary sessions).
    Stats,
    /// Answered once every record written before it reached the client.
    Flush,
    /// Ends the session.
    Close,
}

/// What the daemon answers, in the order of the requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case", deny_unknown_fields)]
pub enum Response {
    Hello {
        version: u32,
        daemon: String,
    },
    /// The session is open; `token` lets the client's children register.
    Opened {
        session: u32,
        token: String,
    },
    Registered,
    Done,
    Tasks {
        tids: Vec<u32>,
    },
    Losses(WireLosses),
    Sockets {
        sockets: Vec<WireSocket>,
    },
    Stats {
        stats: Vec<WireStat>,
    },
    Flushed,
    /// The request was refused or failed; the connection stays usable
    /// unless the daemon also closes it.
    Error {
        message: String,
    },
    /// The daemon ends the session (it is stopping): what was sent is
    /// all there will be, and the trace is not complete.
    Ended {
        reason: String,
    },
}

/// A session's losses: the kernel side's, and the records the daemon
/// dropped because the client did not read them fast enough.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireLosses {
    pub ring_full: u64,
    pub inflight_full: u64,
    pub task_map_full: u64,
    pub capture_faults: u64,
    pub sock_map_full: u64,
    pub queue_full: u64,
    /// Records the daemon's reader could not route to any session while
    /// this one was open.
    pub unroutable: u64,
}

/// One socket a session's tree owns, with its counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireSocket {
    pub sk: u64,
    pub pid: u32,
    pub tid: u32,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub retransmits: u32,
}

/// One syscall's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireStat {
    pub nr: u32,
    pub calls: u64,
    pub errors: u64,
    pub total_ns: u64,
}

/// A frame as read: its kind and payload.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    pub kind: u8,
    pub payload: Vec<u8>,
}

/// Why a frame or message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The peer closed the connection.
    #[error("the connection was closed")]
    Closed,
    /// The connection failed.
    #[error("the connection failed")]
    Io(#[source] io::Error),
    /// A frame announced more bytes than allowed.
    #[error("a frame of {len} bytes is over the limit of {max}")]
    TooLong { len: usize, max: usize },
    /// A frame too short to hold its kind byte, or of an unknown kind.
    #[error("a frame of unknown kind {0}")]
    Kind(u8),
    /// A control message that is not one of the protocol's.
    #[error("a malformed message")]
    Message(#[source] serde_json::Error),
}

/// Appends a frame to `out`.
pub(crate) fn encode_frame(out: &mut Vec<u8>, kind: u8, payload: &[u8]) {
    let len = u32::try_from(payload.len() + 1).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.push(kind);
    out.extend_from_slice(payload);
}

/// A control message as a whole frame.
pub(crate) fn control_frame<T: Serialize>(msg: &T) -> Vec<u8> {
    // Serialising these plain types cannot fail.
    let json = serde_json::to_vec(msg).unwrap_or_default();
    let mut out = Vec::with_capacity(json.len() + 5);
    encode_frame(&mut out, KIND_CONTROL, &json);
    out
}

/// Writes one control message.
pub(crate) fn write_control<T: Serialize>(w: &mut impl Write, msg: &T) -> io::Result<()> {
    w.write_all(&control_frame(msg))
}

/// Reads one frame of at most `max` bytes.
pub(crate) fn read_frame(r: &mut impl Read, max: usize) -> Result<Frame, ProtocolError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(ProtocolError::Closed),
        Err(e) => return Err(ProtocolError::Io(e)),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > max {
        return Err(ProtocolError::TooLong { len, max });
    }
    if len == 0 {
        return Err(ProtocolError::Kind(0));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => ProtocolError::Closed,
        _ => ProtocolError::Io(e),
    })?;
    let kind = body[0];
    if kind != KIND_CONTROL && kind != KIND_RECORD {
        return Err(ProtocolError::Kind(kind));
    }
    body.remove(0);
    Ok(Frame { kind, payload: body })
}

/// Reads one client frame and decodes it into a request: what the daemon
/// runs on every byte a client sends.
pub(crate) fn read_request(r: &mut impl Read) -> Result<Request, ProtocolError> {
    let f = read_frame(r, MAX_REQUEST)?;
    if f.kind != KIND_CONTROL {
        return Err(ProtocolError::Kind(f.kind));
    }
    serde_json::from_slice(&f.payload).map_err(ProtocolError::Message)
}

/// Decodes a client's frame into a request, as the daemon does
/// (the same reader, over the bytes).
pub fn decode_request(mut frame: &[u8]) -> Result<Request, ProtocolError> {
    read_request(&mut frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame_of(req: &Request) -> Vec<u8> {
        control_frame(req)
    }

    #[test]
    fn requests_round_trip() {
        let all = [
            Request::Hello { version: VERSION },
            Request::Open { summary: true, string_limit: 64 },
            Request::Register { version: VERSION, session: 3, token: "ab".into() },
            Request::Join { tid: 9 },
            Request::Forget { tid: 9 },
            Request::Tasks,
            Request::Losses,
            Request::Sockets,
            Request::Stats,
            Request::Flush,
            Request::Close,
        ];
        for r in all {
            assert_eq!(decode_request(&frame_of(&r)).unwrap(), r);
        }
    }

    #[test]
    fn the_wire_form_is_the_documented_one() {
        assert_eq!(serde_json::to_string(&Request::Tasks).unwrap(), r#"{"op":"tasks"}"#);
        assert_eq!(serde_json::to_string(&Request::Join { tid: 4 }).unwrap(), r#"{"op":"join","tid":4}"#);
        assert_eq!(serde_json::to_string(&Response::Registered).unwrap(), r#"{"reply":"registered"}"#);
        let f = frame_of(&Request::Tasks);
        assert_eq!(&f[..5], &[15, 0, 0, 0, KIND_CONTROL]);
    }

    #[test]
    fn bad_frames_are_errors() {
        assert!(matches!(decode_request(&[]), Err(ProtocolError::Closed)));
        assert!(matches!(decode_request(&[1, 0]), Err(ProtocolError::Closed)));
        let huge = (MAX_REQUEST as u32 + 1).to_le_bytes();
        assert!(matches!(decode_request(&huge), Err(ProtocolError::TooLong { .. })));
        assert!(matches!(decode_request(&[0, 0, 0, 0]), Err(ProtocolError::Kind(0))));
        assert!(matches!(decode_request(&[1, 0, 0, 0, 9]), Err(ProtocolError::Kind(9))));
        let mut f = Vec::new();
        encode_frame(&mut f, KIND_CONTROL, br#"{"op":"join","tid":"x"}"#);
        assert!(matches!(decode_request(&f), Err(ProtocolError::Message(_))));
        let mut f = Vec::new();
        encode_frame(&mut f, KIND_RECORD, b"xx");
        assert!(matches!(decode_request(&f), Err(ProtocolError::Kind(KIND_RECORD))));
    }

    proptest! {
        // The decoder never panics and never allocates past the limit,
        // whatever the bytes: random ones, and valid frames cut or
        // flipped anywhere.
        #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]
        #[test]
        fn the_decoder_survives_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_request(&bytes);
        }

        #[test]
        fn the_decoder_survives_damaged_frames(cut in 0usize..64, at in 0usize..64, flip in any::<u8>(), pick in 0usize..4) {
            let req = [
                Request::Open { summary: false, string_limit: 32 },
                Request::Register { version: VERSION, session: 1, token: "00ff".into() },
                Request::Join { tid: 1 },
                Request::Flush,
            ][pick].clone();
            let mut f = frame_of(&req);
            if !f.is_empty() {
                let i = at % f.len();
                f[i] ^= flip;
            }
            f.truncate(cut.min(f.len()));
            let _ = decode_request(&f);
        }
    }
}
