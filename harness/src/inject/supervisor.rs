//! The supervisor: a thread of the tracing process that answers the
//! calls the filter (see [`super::filter`]) holds, and records each call it
//! answered.
//!
//! Calls are counted per rule, per syscall and per task (strace's
//! "tracee" is a thread too); a call a rule's filters (`path`, `fd`,
//! `host`) do not match is not counted by that rule. A task is known by a
//! pidfd as well as its id: a thread that gets the id of one that ended
//! (the kernel reuses ids, after 32,768 on a default machine) is a new
//! task whose calls count from one, as under strace. The supervisor is
//! the only witness of a call it answers: the kernel runs seccomp before
//! the `sys_enter` tracepoint, so the eBPF tracer never sees such a call's
//! entry (and drops its lone exit). A call the supervisor lets run (a rule
//! that only signals or delays, or an invocation `when=` leaves out) is
//! traced as any other.
//!
//! Everything read from the traced program's memory is hostile: a read
//! that fails leaves the argument unreadable, and after the reads the
//! notification is checked to be still pending
//! (`SECCOMP_IOCTL_NOTIF_ID_VALID`), so that a task that died, and whose
//! pid was reused, cannot have its memory confused with another's.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use libseccomp::{notify_id_valid, ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags};
use probity_common::{CaptureKind, StringLimit};
use syscalls::Sysno;

use super::filter::Filter;
use super::spec::{Answer, Inject};
use crate::decode::{capture_spec, decode_syscall, CaptureData};
use crate::event::{Arg, Event, EventKind};
use crate::testing::join::JoinRecord;
use crate::trace::index::{is_lookup_path, AT_EMPTY_PATH};

/// How often the supervisor looks at its stop flag while no call waits.
const POLL_MS: i32 = 20;
/// Most bytes of a path read from the program's memory (`PATH_MAX`).
const PATH_MAX: usize = 4096;

/// The calls answered and not yet taken.
type Answered = Arc<std::sync::Mutex<Vec<Event>>>;

/// A running supervisor; [`Supervisor::take_answered`] hands over the calls
/// it answered so far, [`Supervisor::finish`] stops it and returns the rest.
pub(crate) struct Supervisor {
    thread: Option<JoinHandle<()>>,
    answered: Answered,
    stop: Arc<AtomicBool>,
    /// The child's end of the hand-over socket, closed once the child
    /// is spawned, so that a child that died first is seen to.
    child_end: Option<OwnedFd>,
}

impl Supervisor {
    /// Starts the thread; it receives the listener on `socket` once the
    /// child has installed the filter.
    pub(crate) fn start(
        rules: Vec<Inject>,
        filter: Filter,
        limit: StringLimit,
        joined: Option<Arc<JoinRecord>>,
    ) -> std::io::Result<Supervisor> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let answered = Answered::default();
        let out = Arc::clone(&answered);
        let Filter { parent_end, child_end, .. } = filter;
        let thread = std::thread::Builder::new()
            .name("probity-inject".into())
            .spawn(move || run(rules, parent_end, limit, joined, &flag, out))?;
        Ok(Supervisor { thread: Some(thread), answered, stop, child_end: Some(child_end) })
    }

    /// The child is spawned (or failed to be): its end of the socket is
    /// its own now.
    pub(crate) fn spawned(&mut self) {
        self.child_end = None;
    }

    /// Moves the calls answered so far into `events`, each before the
    /// first event that started after it: a batch in the kernel tracer's
    /// completion order gets them where they happened.
    pub(crate) fn take_answered(&self, events: &mut Vec<Event>) {
        let answered = std::mem::take(&mut *self.answered.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        interleave(events, answered);
    }

    /// Stops the thread (the tree has ended) and returns the answered
    /// calls not taken yet.
    pub(crate) fn finish(mut self) -> Vec<Event> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut *self.answered.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

/// Puts each of `answered` (in time order) into `events` before the first
/// event that started after it.
fn interleave(events: &mut Vec<Event>, answered: Vec<Event>) {
    if answered.is_empty() {
        return;
    }
    let mut merged = Vec::with_capacity(events.len() + answered.len());
    let mut answered = answered.into_iter().peekable();
    for e in events.drain(..) {
        while let Some(a) = answered.next_if(|a| a.ts_ns < e.ts_ns) {
            merged.push(a);
        }
        merged.push(e);
    }
    merged.extend(answered);
    *events = merged;
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Waits until `fd` is readable; `false` when it hung up, or `stop` was
/// set while nothing was readable.
fn wait_readable(fd: RawFd, stop: &AtomicBool) -> bool {
    loop {
        let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, POLL_MS) };
        if n > 0 {
            return pfd.revents & libc::POLLIN != 0;
        }
        if n < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return false;
        }
        if stop.load(Ordering::Relaxed) {
            return false;
        }
    }
}

/// Receives the listener and the root's pid from the child.
fn receive_listener(socket: &OwnedFd, stop: &AtomicBool) -> Option<(OwnedFd, u32)> {
    if !wait_readable(socket.as_raw_fd(), stop) {
        return None;
    }
    let mut pid = 0u32;
    let mut iov = libc::iovec { iov_base: (&mut pid as *mut u32).cast(), iov_len: size_of::<u32>() };
    let mut control = [0u64; 4];
    // SAFETY: a zeroed msghdr is valid; its pointers are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&control);
    // SAFETY: `msg` points at live buffers of the sizes it gives.
    let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n != size_of::<u32>() as isize {
        return None;
    }
    // SAFETY: the kernel filled the control buffer `msg` names.
    let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    // SAFETY: a non-null header from CMSG_FIRSTHDR lies inside `control`.
    if cmsg.is_null() || unsafe { ((*cmsg).cmsg_level, (*cmsg).cmsg_type) } != (libc::SOL_SOCKET, libc::SCM_RIGHTS) {
        return None;
    }
    // SAFETY: an SCM_RIGHTS message carries descriptors after its header.
    let fd = unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>()) };
    // SAFETY: the kernel just installed `fd` in this process for us.
    Some((unsafe { OwnedFd::from_raw_fd(fd) }, pid))
}

/// The supervisor's state between notifications.
struct State {
    rules: Vec<Inject>,
    limit: usize,
    /// Invocations so far, by task, then rule and syscall.
    counts: HashMap<u32, HashMap<(usize, u32), u64>>,
    /// The tasks seen, each with a pidfd that says when it ended (`None`
    /// where the kernel gives none for a thread, or past [`MAX_PIDFDS`]).
    tasks: HashMap<u32, Option<OwnedFd>>,
    /// The root's pid until its first `execve`: its calls before that are
    /// probity's own start-up, neither counted nor injected.
    starting: Option<u32>,
    /// For a late-joining child: whether it joined yet. Its calls before
    /// are its start-up, neither counted nor injected.
    joined: Option<Arc<JoinRecord>>,
    /// Thread group of each task seen.
    tgids: HashMap<u32, u32>,
    /// The calls answered, until taken.
    events: Answered,
}

fn run(
    rules: Vec<Inject>,
    socket: OwnedFd,
    limit: StringLimit,
    joined: Option<Arc<JoinRecord>>,
    stop: &AtomicBool,
    answered: Answered,
) {
    let Some((listener, root)) = receive_listener(&socket, stop) else { return };
    drop(socket);
    let mut state = State {
        rules,
        limit: limit.get() as usize,
        counts: HashMap::new(),
        tasks: HashMap::new(),
        // A late-joining child exec'd before: its start-up ends when it joins.
        starting: joined.is_none().then_some(root),
        joined,
        tgids: HashMap::new(),
        events: answered,
    };
    let fd = listener.as_raw_fd();
    // Each answered call is a ping-pong between the task and this thread:
    // the kernel wakes the task on this CPU when asked (Linux 6.6), which
    // saves most of a wake-up. Older kernels refuse it: nothing changes.
    const SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: u64 = 1;
    // SAFETY: an ioctl with an integer argument on our listener.
    unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP) };
    while wait_readable(fd, stop) {
        // ENOENT: the task died or its call was interrupted before we got it.
        if let Ok(req) = ScmpNotifReq::receive(fd) {
            state.answer(fd, &req);
        }
    }
}

impl State {
    fn answer(&mut self, fd: RawFd, req: &ScmpNotifReq) {
        let start = crate::monotonic_ns();
        let nr = i32::from(req.data.syscall) as u32;
        let tid = req.pid;
        let sysno = Sysno::new(nr as usize);
        let is_exec = matches!(sysno, Some(Sysno::execve | Sysno::execveat));
        if is_exec {
            // A thread that execs becomes its group's leader.
            self.tgids.remove(&tid);
        }
        let unjoined = self.joined.as_ref().is_some_and(|j| j.at.get().is_none());
        if unjoined {
            respond(fd, ScmpNotifResp::new_continue(req.id, ScmpNotifRespFlags::CONTINUE));
            return;
        }
        if self.starting == Some(tid) {
            if !is_exec {
                respond(fd, ScmpNotifResp::new_continue(req.id, ScmpNotifRespFlags::CONTINUE));
                return;
            }
            self.starting = None;
        }
        self.know(tid);
        let args = req.data.args;
        let mut memory = Memory::new(tid, self.limit);
        let chosen = sysno.and_then(|sysno| self.choose(sysno, nr, tid, &args, &mut memory));
        if chosen.is_some() {
            // Everything the record will show is read now, before the
            // check below: after it, the task may be gone and its id reused.
            memory.fill(nr, &args);
        }
        // The memory read belongs to this call only if it still waits.
        if notify_id_valid(fd, req.id).is_err() {
            return;
        }
        let Some(rule) = chosen.map(|i| self.rules[i].clone()) else {
            respond(fd, ScmpNotifResp::new_continue(req.id, ScmpNotifRespFlags::CONTINUE));
            return;
        };
        if let Some(d) = rule.delay_enter {
            std::thread::sleep(d);
        }
        // The call has no exit to wait for when it does not run: the
        // delay comes before the answer. A call that runs cannot be held
        // after it, so its exit delay comes before it too.
        if let Some(d) = rule.delay_exit {
            std::thread::sleep(d);
        }
        let ret = match rule.answer {
            Answer::Run => None,
            Answer::Error(e) => Some(-(e as i64)),
            Answer::Retval(v) => Some(v),
        };
        let resp = match rule.answer {
            Answer::Run => ScmpNotifResp::new_continue(req.id, ScmpNotifRespFlags::CONTINUE),
            Answer::Error(e) => ScmpNotifResp::new_error(req.id, -(e as i32), ScmpNotifRespFlags::empty()),
            Answer::Retval(v) => ScmpNotifResp::new_val(req.id, v, ScmpNotifRespFlags::empty()),
        };
        let tgid = self.tgid(tid);
        if let Some(ret) = ret {
            let mut call = memory.decode(nr, &args, ret);
            call.duration_ns = crate::monotonic_ns().saturating_sub(start);
            call.injected = true;
            let e = Event { ts_ns: start, pid: tgid, tid, kind: EventKind::Syscall(call) };
            self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(e);
        }
        respond(fd, resp);
        // After the answer, as strace delivers it when the call returns:
        // sent while the call waits, a caught signal would interrupt the
        // wait and the restarted call would be counted again.
        if let Some(sig) = rule.signal {
            // SAFETY: tgkill with plain integers.
            unsafe { libc::syscall(libc::SYS_tgkill, tgid as libc::pid_t, tid as libc::pid_t, sig as libc::c_int) };
        }
    }

    /// The first rule that applies to this invocation, counting it for
    /// each rule whose filters it passes.
    fn choose(&mut self, sysno: Sysno, nr: u32, tid: u32, args: &[u64; 6], memory: &mut Memory) -> Option<usize> {
        let mut chosen = None;
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.syscalls.contains(&sysno) {
                continue;
            }
            if rule.fd.is_some_and(|fd| args[0] as i32 != fd) {
                continue;
            }
            if let Some(pattern) = &rule.path {
                let paths = memory.paths(nr, args);
                // As queries match paths: normalised lexically, and `*`
                // never crossing a `/`.
                let options = glob::MatchOptions {
                    case_sensitive: true,
                    require_literal_separator: true,
                    require_literal_leading_dot: false,
                };
                if !paths.iter().any(|p| {
                    pattern.matches_with(&crate::trace::index::normalize(p.as_os_str()).to_string_lossy(), options)
                }) {
                    continue;
                }
            }
            if let Some(host) = &rule.host {
                if !memory.peer(nr, args).is_some_and(|ip| host.contains(ip)) {
                    continue;
                }
            }
            let n = self.counts.entry(tid).or_default().entry((i, nr)).or_insert(0);
            *n += 1;
            if chosen.is_none() && rule.when.matches(*n) {
                chosen = Some(i);
            }
        }
        chosen
    }

    /// Makes `tid` a known task: when the task that had this id before
    /// has ended, its counts and thread group are forgotten. Called while
    /// the task waits in a notification, so the pidfd is its own (the
    /// notification is checked to be still pending after).
    fn know(&mut self, tid: u32) {
        if let Some(fd) = self.tasks.get(&tid) {
            if !fd.as_ref().is_some_and(ended) {
                return;
            }
            self.forget(tid);
        }
        if self.tasks.len() >= MAX_PIDFDS {
            let gone: Vec<u32> =
                self.tasks.iter().filter(|(_, fd)| fd.as_ref().is_some_and(ended)).map(|(t, _)| *t).collect();
            gone.into_iter().for_each(|t| self.forget(t));
        }
        let fd = (self.tasks.len() < MAX_PIDFDS).then(|| thread_pidfd(tid)).flatten();
        self.tasks.insert(tid, fd);
    }

    fn forget(&mut self, tid: u32) {
        self.tasks.remove(&tid);
        self.counts.remove(&tid);
        self.tgids.remove(&tid);
    }

    fn tgid(&mut self, tid: u32) -> u32 {
        *self.tgids.entry(tid).or_insert_with(|| {
            std::fs::read_to_string(format!("/proc/{tid}/status"))
                .ok()
                .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Tgid:").and_then(|v| v.trim().parse().ok())))
                .unwrap_or(tid)
        })
    }
}

/// Most tasks the supervisor holds a pidfd for at once: live threads of
/// the traced tree that made a rule's calls. Past it, a task is counted
/// without one, and a reused id would carry its counts on.
const MAX_PIDFDS: usize = 256;

/// A pidfd for thread `tid` (`PIDFD_THREAD`, Linux 6.9); `None` where the
/// kernel gives none.
fn thread_pidfd(tid: u32) -> Option<OwnedFd> {
    const PIDFD_THREAD: libc::c_uint = libc::O_EXCL as libc::c_uint;
    // SAFETY: pidfd_open takes plain integers; a valid fd is owned below.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, tid as libc::pid_t, PIDFD_THREAD) };
    // SAFETY: a new descriptor that nothing else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Whether the task of a pidfd has ended: it polls readable then.
fn ended(fd: &OwnedFd) -> bool {
    let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, no waiting.
    unsafe { libc::poll(&mut pfd, 1, 0) > 0 && pfd.revents & (libc::POLLIN | libc::POLLHUP) != 0 }
}

fn respond(fd: RawFd, resp: ScmpNotifResp) {
    // ENOENT: the task died, or a signal interrupted its call, meanwhile.
    let _ = resp.respond(fd);
}

/// What was read of one call's arguments from the caller's memory, by
/// argument.
struct Memory {
    tid: u32,
    limit: usize,
    read: Vec<(u8, CaptureKind, Option<Vec<u8>>, bool)>,
    done: bool,
}

impl Memory {
    fn new(tid: u32, limit: usize) -> Memory {
        Memory { tid, limit, read: Vec::new(), done: false }
    }

    /// Reads what the kernel tracer would capture at entry: strings,
    /// buffers given with their length, socket addresses.
    fn fill(&mut self, nr: u32, args: &[u64; 6]) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let spec = capture_spec(nr);
        for c in spec.captures.iter().filter(|c| c.kind != 0) {
            let ptr = args.get(usize::from(c.arg)).copied().unwrap_or(0);
            let len = args.get(usize::from(c.len_arg)).copied().unwrap_or(0) as usize;
            let (kind, data, truncated) = match CaptureKind::from_u8(c.kind) {
                Some(CaptureKind::CStr) => {
                    let (data, truncated) = match read_cstr(self.tid, ptr) {
                        Some((d, t)) => (Some(d), t),
                        None => (None, false),
                    };
                    (CaptureKind::CStr, data, truncated)
                }
                Some(CaptureKind::BufLenArg) => {
                    (CaptureKind::BufLenArg, read_mem(self.tid, ptr, len.min(self.limit)), len > self.limit)
                }
                Some(CaptureKind::SockaddrLenArg) => {
                    (CaptureKind::SockaddrLenArg, read_mem(self.tid, ptr, len.min(128)), false)
                }
                // What is read after the call, or through a structure:
                // nothing, as the call does not run.
                _ => continue,
            };
            self.read.push((c.arg, kind, data, truncated));
        }
    }

    /// The path arguments, made absolute against the directory each is
    /// relative to; for a call with none (`write`, `fsync`), the path of
    /// the descriptor in its first argument.
    fn paths(&mut self, nr: u32, args: &[u64; 6]) -> Vec<PathBuf> {
        self.fill(nr, args);
        if !self.read.iter().any(|(_, kind, _, _)| *kind == CaptureKind::CStr) {
            let fd = args[0];
            return match i32::try_from(fd) {
                Ok(fd) if fd >= 0 => std::fs::read_link(format!("/proc/{}/fd/{fd}", self.tid)).into_iter().collect(),
                _ => Vec::new(),
            };
        }
        // Resolved as the trace's queries resolve them: the looked-up
        // paths, each relative to the directory descriptor just before it
        // when there is one (the decoder knows which arguments are
        // descriptors), and an empty path with `AT_EMPTY_PATH` naming the
        // descriptor itself.
        let call = self.decode(nr, args, 0);
        let empty_path_ok = call.args.iter().any(
            |x| matches!(x, Arg::Flags { value, text } if value & AT_EMPTY_PATH != 0 && text.contains("AT_EMPTY_PATH")),
        );
        let link = |name: String| std::fs::read_link(name).unwrap_or_default();
        call.args
            .iter()
            .enumerate()
            .filter(|(i, _)| is_lookup_path(&call.name, *i))
            .filter_map(|(i, arg)| match arg {
                Arg::Path { path, truncated: false } => Some((i, Path::new(path))),
                _ => None,
            })
            .map(|(i, path)| {
                if path.is_absolute() {
                    return path.to_path_buf();
                }
                let dirfd = match i.checked_sub(1).map(|j| &call.args[j]) {
                    Some(Arg::Fd(d)) if *d != libc::AT_FDCWD => Some(*d),
                    _ => None,
                };
                let base = match dirfd {
                    Some(fd) => link(format!("/proc/{}/fd/{fd}", self.tid)),
                    None => link(format!("/proc/{}/cwd", self.tid)),
                };
                if path.as_os_str().is_empty() && empty_path_ok {
                    base
                } else {
                    base.join(path)
                }
            })
            .collect()
    }

    /// The address a `connect` or send names.
    fn peer(&mut self, nr: u32, args: &[u64; 6]) -> Option<std::net::IpAddr> {
        self.fill(nr, args);
        let bytes = self
            .read
            .iter()
            .find(|(_, kind, _, _)| *kind == CaptureKind::SockaddrLenArg)
            .and_then(|(_, _, data, _)| data.clone())
            .or_else(|| {
                (Sysno::new(nr as usize) == Some(Sysno::sendmsg)).then(|| msg_name(self.tid, args[1])).flatten()
            })?;
        let family = u16::from_ne_bytes([*bytes.first()?, *bytes.get(1)?]);
        match i32::from(family) {
            libc::AF_INET if bytes.len() >= 8 => {
                Some(std::net::Ipv4Addr::new(bytes[4], bytes[5], bytes[6], bytes[7]).into())
            }
            libc::AF_INET6 if bytes.len() >= 24 => {
                let octets: [u8; 16] = bytes[8..24].try_into().ok()?;
                Some(std::net::Ipv6Addr::from(octets).to_canonical())
            }
            _ => None,
        }
    }

    /// The call as the kernel tracer would have decoded it, had it run
    /// and returned `ret`.
    fn decode(&mut self, nr: u32, args: &[u64; 6], ret: i64) -> crate::event::Syscall {
        self.fill(nr, args);
        let captures: Vec<CaptureData<'_>> = self
            .read
            .iter()
            .map(|(arg, kind, data, truncated)| CaptureData {
                arg: *arg,
                kind: *kind,
                truncated: *truncated,
                fault: data.is_none(),
                data: data.as_deref().unwrap_or_default(),
            })
            .collect();
        decode_syscall(nr, args, ret, false, 0, &captures)
    }
}

/// `len` bytes at `addr` in task `tid`; `None` when they cannot all be
/// read.
fn read_mem(tid: u32, addr: u64, len: usize) -> Option<Vec<u8>> {
    if len == 0 {
        return Some(Vec::new());
    }
    let mut buf = vec![0u8; len];
    let local = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: len };
    let remote = libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: len };
    // SAFETY: `local` is our own buffer of `len` bytes; the remote side is
    // checked by the kernel.
    let n = unsafe { libc::process_vm_readv(tid as libc::pid_t, &local, 1, &remote, 1, 0) };
    (n == len as isize).then_some(buf)
}

/// A NUL-terminated string at `addr`, at most [`PATH_MAX`] bytes, read a
/// page at a time so that an unmapped page after the string does not
/// fail the read; with whether it was cut.
fn read_cstr(tid: u32, addr: u64) -> Option<(Vec<u8>, bool)> {
    const PAGE: u64 = 4096;
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < PATH_MAX {
        let chunk = (PAGE - at % PAGE).min((PATH_MAX - out.len()) as u64) as usize;
        let bytes = read_mem(tid, at, chunk)?;
        if let Some(end) = bytes.iter().position(|&b| b == 0) {
            out.extend_from_slice(&bytes[..end]);
            return Some((out, false));
        }
        out.extend_from_slice(&bytes);
        at += chunk as u64;
    }
    Some((out, true))
}

/// The `msg_name` of the `struct msghdr` at `addr`.
fn msg_name(tid: u32, addr: u64) -> Option<Vec<u8>> {
    let hdr = read_mem(tid, addr, 12)?;
    let name = u64::from_ne_bytes(hdr[0..8].try_into().ok()?);
    let len = u32::from_ne_bytes(hdr[8..12].try_into().ok()?) as usize;
    if name == 0 {
        return None;
    }
    read_mem(tid, name, len.min(128))
}

/// For the tests: the syscalls' numbers as the filter sees them.
#[cfg(test)]
mod tests {
    use super::*;

    /// Answered calls go where they started, in a batch that is in
    /// completion order (a call that started early may come late).
    #[test]
    fn answered_calls_join_a_batch_where_they_started() {
        let e = |ts: u64, name: &'static str| crate::trace::test_support::sys(ts, 1, 1, name, vec![], 0);
        let mut batch = vec![e(10, "a"), e(30, "b"), e(5, "late"), e(50, "c")];
        interleave(&mut batch, vec![e(20, "x"), e(40, "y"), e(60, "z")]);
        let names: Vec<String> = batch
            .iter()
            .map(|ev| match &ev.kind {
                EventKind::Syscall(s) => s.name.to_string(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(names, ["a", "x", "b", "late", "y", "c", "z"]);
    }

    #[test]
    fn strings_are_read_up_to_their_nul_from_a_task() {
        let s = b"/tmp/probity-inject\0";
        let tid = std::process::id();
        let (data, cut) = read_cstr(tid, s.as_ptr() as u64).unwrap();
        assert_eq!(data, b"/tmp/probity-inject");
        assert!(!cut);
        assert_eq!(read_mem(tid, 8, 8), None);
    }
}
