//! A session served by the daemon, as the tracer uses it.
//!
//! One connection carries the session: requests go out, and the daemon's
//! replies come back in order with the session's kernel records, which a
//! reader thread decodes into the session's [`Sink`] exactly as the
//! consumer thread does for a session loaded in this process. The
//! command's root adds itself, between its fork and its exec, on a
//! connection of its own (see [`RemoteSession::registrar`]).

use std::io::{BufReader, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use probity_common::{SockOwner, SyscallStats};

use super::protocol::{self, Request, Response, WireLosses, KIND_CONTROL, KIND_RECORD, MAX_FRAME, VERSION};
use crate::error::Error;
use crate::kernel::Sink;

/// How long a reply may take before the daemon counts as gone.
const REPLY_WITHIN: Duration = Duration::from_secs(30);

/// The errno a refused registration makes the child's spawn fail with:
/// the tracer turns it back into the daemon's refusal.
pub(crate) const REFUSED_ERRNO: i32 = libc::EREMOTEIO;

pub(crate) struct RemoteSession {
    conn: Arc<Conn>,
    sink: Arc<Sink>,
    session: u32,
    token: String,
    reader: Option<std::thread::JoinHandle<()>>,
}

/// The session's connection: requests, and replies in order.
struct Conn {
    socket: PathBuf,
    /// The writing half, and the replies not yet taken, under one lock:
    /// one request at a time.
    rpc: Mutex<(UnixStream, Receiver<Response>)>,
    /// Why the session stopped before its end, once it did.
    broken: Mutex<Option<String>>,
    /// The last losses the daemon reported (kept for after it is gone).
    losses: Mutex<WireLosses>,
}

impl Conn {
    fn request(&self, req: &Request) -> Result<Response, String> {
        if let Some(why) = self.broken.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Err(why);
        }
        let mut rpc = self.rpc.lock().unwrap_or_else(|e| e.into_inner());
        let (stream, replies) = &mut *rpc;
        if let Err(e) = stream.write_all(&protocol::control_frame(req)) {
            return Err(self.break_with(format!("the connection to the daemon failed: {e}")));
        }
        match replies.recv_timeout(REPLY_WITHIN) {
            Ok(Response::Error { message }) => Err(message),
            Ok(r) => Ok(r),
            Err(RecvTimeoutError::Timeout) => {
                Err(self.break_with(format!("the daemon did not answer within {}s", REPLY_WITHIN.as_secs())))
            }
            Err(RecvTimeoutError::Disconnected) => Err(self
                .broken
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .unwrap_or_else(|| "the daemon closed the connection".into())),
        }
    }

    fn break_with(&self, why: String) -> String {
        self.broken.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(why).clone()
    }
}

impl RemoteSession {
    /// Connects to the daemon at `socket` and opens a session.
    pub(crate) fn open(socket: &Path, summary: bool, string_limit: u32) -> Result<RemoteSession, Error> {
        let connect = |source| Error::DaemonConnect { socket: socket.to_path_buf(), source };
        let stream = UnixStream::connect(socket).map_err(connect)?;
        let reading = stream.try_clone().map_err(connect)?;
        let sink = Sink::detached();
        let (tx, rx) = std::sync::mpsc::channel();
        let conn = Arc::new(Conn {
            socket: socket.to_path_buf(),
            rpc: Mutex::new((stream, rx)),
            broken: Mutex::new(None),
            losses: Mutex::default(),
        });
        let reader = std::thread::Builder::new()
            .name("probity-daemon".into())
            .spawn({
                let conn = Arc::clone(&conn);
                let sink = Arc::clone(&sink);
                move || read_loop(reading, &conn, &sink, &tx)
            })
            .map_err(Error::Thread)?;
        let refused = |message: String| Error::DaemonRefused { socket: socket.to_path_buf(), message };
        match conn.request(&Request::Hello { version: VERSION }).map_err(refused)? {
            Response::Hello { version: VERSION, .. } => {}
            other => return Err(refused(format!("unexpected answer to hello: {other:?}"))),
        }
        let (session, token) = match conn.request(&Request::Open { summary, string_limit }).map_err(refused)? {
            Response::Opened { session, token } => (session, token),
            other => return Err(refused(format!("unexpected answer to open: {other:?}"))),
        };
        Ok(RemoteSession { conn, sink, session, token, reader: Some(reader) })
    }

    pub(crate) fn sink(&self) -> Arc<Sink> {
        Arc::clone(&self.sink)
    }

    pub(crate) fn socket(&self) -> &Path {
        &self.conn.socket
    }

    /// Why the session's events stopped before its end, if they did.
    pub(crate) fn broken(&self) -> Option<Error> {
        let why = self.conn.broken.lock().unwrap_or_else(|e| e.into_inner()).clone()?;
        Some(Error::DaemonLost { socket: self.conn.socket.clone(), reason: why })
    }

    /// A function for `pre_exec` that adds the calling process to the
    /// session: it connects to the daemon, sends a registration made
    /// before the fork, and waits for the one answer that says yes. It
    /// makes raw syscalls only, and allocates nothing.
    pub(crate) fn registrar(&self) -> impl Fn() -> std::io::Result<()> + Send + Sync + 'static {
        let request = protocol::control_frame(&Request::Register {
            version: VERSION,
            session: self.session,
            token: self.token.clone(),
        });
        let yes = protocol::control_frame(&Response::Registered);
        let addr = sockaddr(&self.conn.socket);
        move || {
            let Some((addr, len)) = addr else { return Err(std::io::Error::from_raw_os_error(REFUSED_ERRNO)) };
            register_from_child(&addr, len, &request, &yes)
        }
    }

    /// A function that adds a late-joining child's threads to the session
    /// (the daemon checks each is this process's child's, and its user's).
    pub(crate) fn late_registrar(&self) -> crate::testing::join::Register {
        let conn = Arc::clone(&self.conn);
        Box::new(move |tid| match conn.request(&Request::Join { tid }) {
            Ok(_) => Ok(()),
            Err(why) => Err(std::io::Error::other(why)),
        })
    }

    pub(crate) fn forget(&self, tid: u32) {
        let _ = self.conn.request(&Request::Forget { tid });
    }

    /// The session's live threads; none once the daemon is gone.
    pub(crate) fn tasks(&self) -> Vec<u32> {
        match self.conn.request(&Request::Tasks) {
            Ok(Response::Tasks { tids }) => tids,
            _ => Vec::new(),
        }
    }

    /// Returns once every record the daemon routed before the call is in
    /// the sink: the reply comes after them on the connection.
    pub(crate) fn flush(&self) {
        let _ = self.conn.request(&Request::Flush);
    }

    pub(crate) fn losses(&self) -> WireLosses {
        if let Ok(Response::Losses(l)) = self.conn.request(&Request::Losses) {
            *self.conn.losses.lock().unwrap_or_else(|e| e.into_inner()) = l;
        }
        *self.conn.losses.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn sockets(&self) -> Vec<(u64, SockOwner)> {
        let Ok(Response::Sockets { sockets }) = self.conn.request(&Request::Sockets) else { return Vec::new() };
        sockets
            .into_iter()
            .map(|s| {
                let owner = SockOwner {
                    session: 0,
                    pid: s.pid,
                    tid: s.tid,
                    bytes_sent: s.bytes_sent,
                    bytes_received: s.bytes_received,
                    retransmits: s.retransmits,
                };
                (s.sk, owner)
            })
            .collect()
    }

    pub(crate) fn stats(&self) -> Vec<(u32, SyscallStats)> {
        let Ok(Response::Stats { stats }) = self.conn.request(&Request::Stats) else { return Vec::new() };
        stats
            .into_iter()
            .map(|s| (s.nr, SyscallStats { calls: s.calls, errors: s.errors, total_ns: s.total_ns }))
            .collect()
    }
}

impl Drop for RemoteSession {
    fn drop(&mut self) {
        let _ = self.conn.request(&Request::Close);
        if let Ok(rpc) = self.conn.rpc.lock() {
            let _ = rpc.0.shutdown(std::net::Shutdown::Both);
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// Reads the daemon's frames: records into the sink, replies to the
/// requester, until the connection ends.
fn read_loop(stream: UnixStream, conn: &Conn, sink: &Sink, replies: &Sender<Response>) {
    let mut r = BufReader::with_capacity(256 << 10, stream);
    let why = loop {
        let frame = match protocol::read_frame(&mut r, MAX_FRAME) {
            Ok(f) => f,
            Err(protocol::ProtocolError::Closed) => break "the daemon closed the connection".to_string(),
            Err(e) => break format!("the daemon's data could not be read: {}", crate::error::Chain(&e)),
        };
        match frame.kind {
            KIND_RECORD => {
                sink.push(&frame.payload);
                if r.buffer().is_empty() {
                    // Caught up: wake whoever waits for events.
                    sink.notify();
                }
            }
            KIND_CONTROL => match serde_json::from_slice::<Response>(&frame.payload) {
                Ok(Response::Ended { reason }) => break format!("the daemon ended the session: {reason}"),
                Ok(reply) => {
                    sink.notify();
                    if replies.send(reply).is_err() {
                        return;
                    }
                }
                Err(e) => break format!("the daemon sent a malformed message: {e}"),
            },
            _ => break format!("the daemon sent a frame of unknown kind {}", frame.kind),
        }
    };
    conn.break_with(why);
    sink.notify();
    sink.wake();
}

/// `socket` as a `sockaddr_un`, built before any fork.
fn sockaddr(socket: &Path) -> Option<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: all-zero bytes are a valid `sockaddr_un`.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = socket.as_os_str().as_bytes();
    if bytes.len() >= addr.sun_path.len() {
        return None;
    }
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
    Some((addr, len as libc::socklen_t))
}

/// The registration itself, in the child between fork and exec: raw
/// syscalls on memory made before the fork.
fn register_from_child(
    addr: &libc::sockaddr_un,
    len: libc::socklen_t,
    request: &[u8],
    yes: &[u8],
) -> std::io::Result<()> {
    let refused = || std::io::Error::from_raw_os_error(REFUSED_ERRNO);
    // SAFETY: socket, setsockopt, connect, write, read and close are
    // async-signal-safe syscalls; every pointer is to live memory of the
    // given length.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(refused());
        }
        let within = libc::timeval { tv_sec: REPLY_WITHIN.as_secs() as libc::time_t, tv_usec: 0 };
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&within as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
        let ok = (|| {
            if libc::connect(fd, (addr as *const libc::sockaddr_un).cast(), len) != 0 {
                return false;
            }
            let mut sent = 0;
            while sent < request.len() {
                let n = libc::write(fd, request[sent..].as_ptr().cast(), request.len() - sent);
                if n <= 0 {
                    return false;
                }
                sent += n as usize;
            }
            // The answer is compared byte for byte with the one that says
            // yes; anything else (an error, a closed connection) is no.
            let mut got = [0u8; 64];
            let want = yes.len().min(got.len());
            let mut have = 0;
            while have < want {
                let n = libc::read(fd, got[have..want].as_mut_ptr().cast(), want - have);
                if n <= 0 {
                    return false;
                }
                have += n as usize;
            }
            got[..want] == yes[..want]
        })();
        libc::close(fd);
        if ok {
            Ok(())
        } else {
            Err(refused())
        }
    }
}
