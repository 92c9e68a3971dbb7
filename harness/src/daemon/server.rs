//! The daemon: the eBPF programs loaded once, and sessions served to the
//! users allowed on its socket.
//!
//! What a client may do is decided from the kernel's credentials of its
//! socket (`SO_PEERCRED`) and from `/proc`, never from what it says:
//! - a session belongs to the user who opened it, and its records go to
//!   that connection alone;
//! - a process joins a session only if it is a child of the session's
//!   client, runs as the client's user and group with no capability, and
//!   (for a child registering itself) knows the session's secret token;
//! - a process that later execs into more privilege leaves the session
//!   in the kernel, as in-process sessions do (the exec probe compares
//!   with the session's owner).
//!
//! A client that goes away ends its session: its tree is detached (no
//! longer traced) and runs on. When the daemon stops, it waits a grace
//! period for sessions to end, then tells the rest that their trace is
//! incomplete.

use std::collections::HashMap;
use std::io::BufReader;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use probity_common::StringLimit;

use super::outbox::Outbox;
use super::peer::{self, Peer, Status};
use super::protocol::{self, ProtocolError, Request, Response, WireLosses, WireSocket, WireStat, VERSION};
use crate::error::Error;
use crate::kernel::privilege::Owner;
use crate::kernel::{Kernel, LoadOptions};

/// How long a new connection may take to say what it is.
const FIRST_MESSAGE_WITHIN: Duration = Duration::from_secs(10);

/// How often the accept loop looks at its stop flag.
const ACCEPT_POLL: Duration = Duration::from_millis(200);

/// What each user may hold at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Sessions open at once, per user.
    pub sessions_per_user: u32,
    /// Bytes of records queued for one slow client before its records
    /// are dropped (and counted).
    pub queue_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { sessions_per_user: 32, queue_bytes: 64 << 20 }
    }
}

/// How to run the daemon.
#[derive(Clone, Debug)]
pub struct DaemonConfig {
    /// The socket to listen on.
    pub socket: PathBuf,
    /// The group allowed to connect (the socket is `0660 root:group`);
    /// `None`: root only.
    pub group: Option<u32>,
    pub limits: Limits,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig { socket: super::DEFAULT_SOCKET.into(), group: None, limits: Limits::default() }
    }
}

/// A running daemon: the loaded programs and the listening socket.
pub struct Daemon {
    listener: UnixListener,
    /// The socket file this daemon made (removed when it stops), if any.
    made: Option<PathBuf>,
    shared: Arc<Shared>,
}

struct Shared {
    kernel: Arc<Kernel>,
    group: Option<u32>,
    limits: Mutex<Limits>,
    sessions: Mutex<HashMap<u32, Entry>>,
    /// Open connections per user (sessions, and registrations under way).
    connections: Mutex<HashMap<u32, usize>>,
}

/// One open connection of a user, counted while it lives.
struct Counted<'a> {
    shared: &'a Shared,
    uid: u32,
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        let mut c = self.shared.connections.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = c.get_mut(&self.uid) {
            *n = n.saturating_sub(1);
        }
    }
}

impl Shared {
    /// Counts a connection of `uid`, unless the user already holds as
    /// many as its sessions allow (twice, for registrations, plus some).
    fn count(&self, uid: u32) -> Option<Counted<'_>> {
        let most = self.limits.lock().unwrap_or_else(|e| e.into_inner()).sessions_per_user as usize * 2 + 16;
        let mut c = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        let n = c.entry(uid).or_default();
        if *n >= most {
            return None;
        }
        *n += 1;
        Some(Counted { shared: self, uid })
    }
}

/// What the daemon keeps of an open session.
struct Entry {
    owner: Owner,
    /// The client's process (its children may join).
    client: u32,
    token: String,
    outbox: Arc<Outbox>,
    /// The connection, to end it when the daemon stops.
    stream: UnixStream,
    /// The router's unroutable count when it opened.
    unroutable_at_open: u64,
}

impl Daemon {
    /// Loads the programs and listens on `config.socket`, made `0660`
    /// and owned by `config.group`.
    pub fn bind(config: &DaemonConfig) -> Result<Daemon, Error> {
        let kernel = load()?;
        let socket_error = |source| Error::DaemonSocket { socket: config.socket.clone(), source };
        if let Some(dir) = config.socket.parent() {
            if !dir.exists() {
                std::fs::create_dir_all(dir).map_err(socket_error)?;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).map_err(socket_error)?;
            }
        }
        if std::fs::symlink_metadata(&config.socket).is_ok() {
            if UnixStream::connect(&config.socket).is_ok() {
                return Err(socket_error(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    "another daemon answers on it",
                )));
            }
            // A socket left by a daemon that died.
            std::fs::remove_file(&config.socket).map_err(socket_error)?;
        }
        // Made unreachable to all but its owner, then opened to the group:
        // no moment where another user could connect.
        // SAFETY: umask only swaps the process's file mode mask.
        let old = unsafe { libc::umask(0o177) };
        let bound = UnixListener::bind(&config.socket);
        // SAFETY: as above, restoring the previous mask.
        unsafe { libc::umask(old) };
        let listener = bound.map_err(socket_error)?;
        if let Some(gid) = config.group {
            nix::unistd::chown(&config.socket, None, Some(nix::unistd::Gid::from_raw(gid)))
                .map_err(|e| socket_error(e.into()))?;
            std::fs::set_permissions(&config.socket, std::fs::Permissions::from_mode(0o660)).map_err(socket_error)?;
        }
        Ok(Daemon { listener, made: Some(config.socket.clone()), shared: Shared::new(kernel, config) })
    }

    /// Serves on a socket handed over already listening (systemd's socket
    /// activation: `LISTEN_FDS`), whose file and mode are the unit's.
    pub fn from_listener(fd: OwnedFd, config: &DaemonConfig) -> Result<Daemon, Error> {
        let kernel = load()?;
        Ok(Daemon { listener: UnixListener::from(fd), made: None, shared: Shared::new(kernel, config) })
    }

    /// The listening socket systemd handed over, if it did.
    pub fn activated_listener() -> Option<OwnedFd> {
        let pid: u32 = std::env::var("LISTEN_PID").ok()?.parse().ok()?;
        let fds: u32 = std::env::var("LISTEN_FDS").ok()?.parse().ok()?;
        if pid != std::process::id() || fds < 1 {
            return None;
        }
        // SAFETY: systemd passes its sockets from fd 3 on, owned by us.
        Some(unsafe { OwnedFd::from_raw_fd(3) })
    }

    /// Replaces the limits (for sessions opened from now on).
    pub fn set_limits(&self, limits: Limits) {
        *self.shared.limits.lock().unwrap_or_else(|e| e.into_inner()) = limits;
    }

    /// Sessions open now.
    pub fn sessions(&self) -> usize {
        self.shared.sessions.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Serves until `stop` is set, then waits up to `grace` for open
    /// sessions to end, and ends the rest (their clients are told the
    /// trace is incomplete).
    pub fn serve(&self, stop: &AtomicBool, grace: Duration) -> Result<(), Error> {
        self.listener.set_nonblocking(true).map_err(Error::DaemonIo)?;
        while !stop.load(Ordering::Acquire) {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    let shared = Arc::clone(&self.shared);
                    let _ = std::thread::Builder::new().name("probity-client".into()).spawn(move || {
                        let _ = stream.set_nonblocking(false);
                        serve_connection(&shared, stream);
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::Interrupted => {
                    let bfd = self.listener.as_raw_fd();
                    // SAFETY: the listener outlives this borrow.
                    let bfd = unsafe { std::os::fd::BorrowedFd::borrow_raw(bfd) };
                    let mut fds = [nix::poll::PollFd::new(bfd, nix::poll::PollFlags::POLLIN)];
                    let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ACCEPT_POLL.as_millis() as u16));
                }
                Err(e) => log::warn!("accept failed: {e}"),
            }
        }
        let until = Instant::now() + grace;
        while self.sessions() > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        let left: Vec<(u32, Arc<Outbox>, UnixStream)> = {
            let sessions = self.shared.sessions.lock().unwrap_or_else(|e| e.into_inner());
            sessions
                .iter()
                .filter_map(|(id, e)| Some((*id, Arc::clone(&e.outbox), e.stream.try_clone().ok()?)))
                .collect()
        };
        if !left.is_empty() {
            self.shared.kernel.flush();
        }
        for (id, outbox, stream) in left {
            log::info!("session {id}: ended by the daemon stopping");
            outbox.push_control(&protocol::control_frame(&Response::Ended {
                reason: "the probity daemon is stopping".into(),
            }));
            outbox.close();
            // The client's reader sees the end; its handler thread's read
            // returns and closes the session.
            let _ = stream.shutdown(std::net::Shutdown::Read);
        }
        let until = Instant::now() + Duration::from_secs(2);
        while self.sessions() > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(p) = &self.made {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn load() -> Result<Arc<Kernel>, Error> {
    Kernel::acquire(LoadOptions { keep: true, serve_others: true, ..LoadOptions::default() })
}

impl Shared {
    fn new(kernel: Arc<Kernel>, config: &DaemonConfig) -> Arc<Shared> {
        Arc::new(Shared {
            kernel,
            group: config.group,
            limits: Mutex::new(config.limits),
            sessions: Mutex::default(),
            connections: Mutex::default(),
        })
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Entry>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether `peer` may use the daemon at all: root, or a member of its
/// group (the socket's mode says the same; this holds if it was changed).
fn admitted(shared: &Shared, peer: &Peer, status: &Status) -> bool {
    peer.uid == 0
        || shared.group.is_some_and(|g| peer.gid == g || status.gids.contains(&g) || status.groups.contains(&g))
}

fn serve_connection(shared: &Arc<Shared>, stream: UnixStream) {
    let Ok(peer) = Peer::of(&stream) else { return };
    let Some(status) = Status::read(peer.pid) else { return };
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let reply = |w: &mut UnixStream, r: &Response| {
        let _ = protocol::write_control(w, r);
    };
    if !admitted(shared, &peer, &status) {
        log::warn!("refused pid {} (uid {}): not in the daemon's group", peer.pid, peer.uid);
        reply(&mut writer, &Response::Error { message: "not allowed: join the daemon's group".into() });
        return;
    }
    let Some(_counted) = shared.count(peer.uid) else {
        log::warn!("refused pid {} (uid {}): too many connections", peer.pid, peer.uid);
        let message = format!("user {} has too many connections open to the daemon", peer.uid);
        reply(&mut writer, &Response::Error { message });
        return;
    };
    let _ = stream.set_read_timeout(Some(FIRST_MESSAGE_WITHIN));
    let mut r = BufReader::new(stream);
    let first = match protocol::read_request(&mut r) {
        Ok(req) => req,
        Err(e) => {
            reply(&mut writer, &Response::Error { message: format!("bad first message: {}", crate::error::Chain(&e)) });
            return;
        }
    };
    match first {
        Request::Register { version, session, token } => {
            let answer = if version != VERSION {
                Response::Error { message: format!("protocol version {version}, the daemon speaks {VERSION}") }
            } else {
                match register(shared, &writer, &peer, &status, session, &token) {
                    Ok(()) => {
                        log::debug!("session {session}: added pid {}", peer.pid);
                        Response::Registered
                    }
                    Err(why) => {
                        log::warn!("session {session}: refused to add pid {}: {why}", peer.pid);
                        Response::Error { message: why }
                    }
                }
            };
            reply(&mut writer, &answer);
        }
        Request::Hello { version } if version == VERSION => {
            reply(&mut writer, &Response::Hello { version: VERSION, daemon: env!("CARGO_PKG_VERSION").into() });
            serve_session(shared, &mut r, writer, &peer, &status);
        }
        Request::Hello { version } => {
            let message =
                format!("protocol version {version}, the daemon speaks {VERSION}: use matching probity versions");
            reply(&mut writer, &Response::Error { message });
        }
        _ => reply(&mut writer, &Response::Error { message: "say hello first".into() }),
    }
}

/// Adds the peer, a child of session `id`'s client between its fork and
/// its exec, to the session.
fn register(
    shared: &Shared,
    sock: &UnixStream,
    peer: &Peer,
    status: &Status,
    id: u32,
    token: &str,
) -> Result<(), String> {
    // Bound to the peer process itself, before anything is checked.
    let pidfd = peer::peer_pidfd(sock).or_else(|| peer::pidfd_open(peer.pid));
    {
        let sessions = shared.sessions();
        let Some(e) = sessions.get(&id) else { return Err("no such session".into()) };
        if !constant_time_eq(e.token.as_bytes(), token.as_bytes()) {
            return Err("wrong token".into());
        }
        if status.tgid != peer.pid {
            return Err("not a process".into());
        }
    }
    add_checked(shared, id, peer.pid, peer.pid, pidfd.as_ref())
}

/// Adds thread `tid` of process `pid` to session `id`: checked before the
/// add, and again after it. A process that exec'd into more privilege
/// after the first check but before it was in the task map escaped the
/// exec probe; then the session ends, its queued records discarded, since
/// some may be that process's. A process that cannot be shown alive after
/// the add (no pidfd) is not added: its pid could be reused.
fn add_checked(shared: &Shared, id: u32, pid: u32, tid: u32, pidfd: Option<&OwnedFd>) -> Result<(), String> {
    let check = |shared: &Shared| -> Result<(), String> {
        let sessions = shared.sessions();
        let e = sessions.get(&id).ok_or("no such session")?;
        check_member(e, &Status::read(pid).ok_or("its process is gone")?)?;
        if tid != pid {
            check_member(e, &Status::read(tid).ok_or("no such thread")?)?;
        }
        Ok(())
    };
    check(shared)?;
    shared.kernel.add_task(id, tid).map_err(|err| format!("the task map refused it: {err}"))?;
    if pidfd.is_none_or(|fd| !peer::alive(fd)) {
        shared.kernel.forget_task(id, tid);
        return Err("it exited, or its liveness could not be checked".into());
    }
    if let Err(why) = check(shared) {
        shared.kernel.forget_task(id, tid);
        abort_session(shared, id, &format!("a process it was adding changed as it was added ({why})"));
        return Err(why);
    }
    Ok(())
}

/// Ends session `id` from the daemon's side, dropping the records queued
/// for its client: what a late check found may be in them.
fn abort_session(shared: &Shared, id: u32, reason: &str) {
    let Some(e) = shared.sessions().remove(&id) else { return };
    shared.kernel.close(id);
    log::warn!("session {id}: ended: {reason}");
    e.outbox.discard_and_end(&protocol::control_frame(&Response::Ended { reason: reason.to_owned() }));
    let _ = e.stream.shutdown(std::net::Shutdown::Read);
}

/// Whether a process described by `status` may join session `e`: a child
/// of its client, running with no more privilege than its owner.
fn check_member(e: &Entry, status: &Status) -> Result<(), String> {
    if status.ppid != e.client {
        return Err(format!("its parent is {}, not the session's client {}", status.ppid, e.client));
    }
    if let Some(why) = status.more_privileged_than(e.owner) {
        return Err(why);
    }
    // Root's sessions: a child of root's client still runs as its owner.
    if status.uids[0] != e.owner.uid {
        return Err(format!("it runs as uid {}, not the owner's {}", status.uids[0], e.owner.uid));
    }
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A 128-bit secret, hex.
fn token() -> Option<String> {
    let mut bytes = [0u8; 16];
    crate::preload::ring_file::random_bytes(&mut bytes).then(|| bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The session's conversation: open, then requests until close or the
/// end of the connection, which ends the session either way.
fn serve_session(
    shared: &Arc<Shared>,
    r: &mut BufReader<UnixStream>,
    writer: UnixStream,
    peer: &Peer,
    status: &Status,
) {
    let mut w = writer;
    let reply = |w: &mut UnixStream, resp: &Response| {
        let _ = protocol::write_control(w, resp);
    };
    // The owner is the client's real user and group; a client running
    // set-user-ID is served as its real user.
    let owner = Owner { uid: status.uids[0], gid: status.gids[0] };
    let (summary, string_limit) = match protocol::read_request(r) {
        Ok(Request::Open { summary, string_limit }) => (summary, string_limit),
        Ok(_) => return reply(&mut w, &Response::Error { message: "open a session first".into() }),
        Err(e) => return reply(&mut w, &Response::Error { message: crate::error::Chain(&e).to_string() }),
    };
    // Open: from here the client may be quiet as long as its command runs.
    let _ = r.get_ref().set_read_timeout(None);
    let Ok(string_limit) = StringLimit::new(string_limit) else {
        return reply(&mut w, &Response::Error { message: format!("string limit {string_limit} is out of range") });
    };
    let limits = *shared.limits.lock().unwrap_or_else(|e| e.into_inner());
    let Some(token) = token() else {
        return reply(&mut w, &Response::Error { message: "no randomness for a session token".into() });
    };
    let outbox = Outbox::new(limits.queue_bytes);
    let id = {
        let mut sessions = shared.sessions();
        let mine = sessions.values().filter(|e| e.owner.uid == owner.uid).count();
        if mine >= limits.sessions_per_user as usize {
            drop(sessions);
            let message = format!("user {} already has {mine} sessions open, the daemon's limit per user", owner.uid);
            log::warn!("{message}");
            return reply(&mut w, &Response::Error { message });
        }
        let config = crate::kernel::session::config_for(summary, string_limit.get(), owner);
        let id = match shared.kernel.open(config) {
            Ok(id) => id,
            Err(e) => {
                drop(sessions);
                return reply(&mut w, &Response::Error { message: crate::error::Chain(&e).to_string() });
            }
        };
        let Ok(stream) = w.try_clone() else {
            shared.kernel.close(id);
            return;
        };
        let unroutable_at_open = shared.kernel.unroutable();
        sessions.insert(
            id,
            Entry {
                owner,
                client: peer.pid,
                token: token.clone(),
                outbox: Arc::clone(&outbox),
                stream,
                unroutable_at_open,
            },
        );
        shared.kernel.forward(id, Arc::clone(&outbox));
        id
    };
    log::info!("session {id}: opened for pid {} (uid {})", peer.pid, owner.uid);
    // From here every reply goes through the outbox, after the records.
    let writer = match w.try_clone() {
        Ok(s) => s,
        Err(_) => {
            end_session(shared, id);
            return;
        }
    };
    let writing = std::thread::Builder::new().name(format!("probity-session-{id}")).spawn({
        let outbox = Arc::clone(&outbox);
        move || outbox.run_writer(writer)
    });
    outbox.push_control(&protocol::control_frame(&Response::Opened { session: id, token }));
    loop {
        // A client that sends requests and reads nothing waits here: its
        // replies never grow the queue past its limit.
        outbox.wait_for_room();
        let req = match protocol::read_request(r) {
            Ok(req) => req,
            Err(ProtocolError::Message(e)) => {
                outbox.push_control(&protocol::control_frame(&Response::Error {
                    message: format!("malformed request: {e}"),
                }));
                continue;
            }
            // The stream cannot be followed past a bad frame.
            Err(_) => break,
        };
        let answer = answer(shared, id, peer, &req);
        outbox.push_control(&protocol::control_frame(&answer));
        if req == Request::Close {
            break;
        }
    }
    end_session(shared, id);
    outbox.close();
    if let Ok(t) = writing {
        let _ = t.join();
    }
    let _ = w.shutdown(std::net::Shutdown::Both);
    log::info!("session {id}: closed");
}

/// The answer to one request of session `id`'s client.
fn answer(shared: &Shared, id: u32, peer: &Peer, req: &Request) -> Response {
    let k = &shared.kernel;
    match req {
        Request::Join { tid } => match join(shared, id, *tid) {
            Ok(()) => Response::Done,
            Err(message) => {
                log::warn!("session {id}: refused to add thread {tid} for pid {}: {message}", peer.pid);
                Response::Error { message }
            }
        },
        Request::Forget { tid } => {
            k.forget_task(id, *tid);
            Response::Done
        }
        Request::Tasks => Response::Tasks { tids: k.tasks_of(id) },
        Request::Losses => {
            let l = k.losses(id);
            let (queue_full, unroutable) = {
                let sessions = shared.sessions();
                sessions.get(&id).map_or((0, 0), |e| (e.outbox.dropped(), k.unroutable() - e.unroutable_at_open))
            };
            Response::Losses(WireLosses {
                ring_full: l.ring_full,
                inflight_full: l.inflight_full,
                task_map_full: l.task_map_full,
                capture_faults: l.capture_faults,
                sock_map_full: l.sock_map_full,
                queue_full,
                unroutable,
            })
        }
        Request::Sockets => Response::Sockets {
            sockets: k
                .sockets_of(id)
                .into_iter()
                .map(|(sk, o)| WireSocket {
                    sk,
                    pid: o.pid,
                    tid: o.tid,
                    bytes_sent: o.bytes_sent,
                    bytes_received: o.bytes_received,
                    retransmits: o.retransmits,
                })
                .collect(),
        },
        Request::Stats => Response::Stats {
            stats: k
                .stats(id)
                .into_iter()
                .map(|(nr, s)| WireStat { nr, calls: s.calls, errors: s.errors, total_ns: s.total_ns })
                .collect(),
        },
        Request::Flush => {
            // Everything routed before this returns is in the outbox,
            // ahead of the reply.
            k.flush();
            Response::Flushed
        }
        Request::Close => Response::Done,
        Request::Hello { .. } | Request::Open { .. } | Request::Register { .. } => {
            Response::Error { message: "not in an open session".into() }
        }
    }
}

/// Adds thread `tid` of a late-joining child to session `id`.
fn join(shared: &Shared, id: u32, tid: u32) -> Result<(), String> {
    let pid = Status::read(tid).ok_or("no such thread")?.tgid;
    let pidfd = peer::pidfd_open(pid);
    add_checked(shared, id, pid, tid, pidfd.as_ref())
}

/// Forgets session `id`: its tree is no longer traced, and its records
/// stop.
fn end_session(shared: &Shared, id: u32) {
    if shared.sessions().remove(&id).is_some() {
        shared.kernel.close(id);
    }
}
