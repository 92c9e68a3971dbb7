//! Attaching to running processes: each thread of the named processes,
//! and of every descendant they have, joins the kernel tracer's session,
//! and `/proc` says what each process ran and had open.
//!
//! The order closes the races that matter: a task is added before its
//! children are looked for, so a child forked after the addition is added
//! by the kernel's fork probe, and one forked before is in the next scan
//! of `/proc`; the scans repeat until one finds nothing new. A child whose
//! parent exited between its fork and the scan has been handed to another
//! parent and is missed.

use std::collections::{BTreeSet, HashSet};
use std::os::unix::fs::MetadataExt;

use crate::daemon::peer::Status;
use crate::error::Error;
use crate::kernel::privilege::Owner;
use crate::trace::{Attach, AttachedProcess, CallUnderWay, OpenDescriptor, SocketKind, TracerKind, Uncovered};

/// Most scans of `/proc` before giving up on a tree that keeps forking
/// faster than it can be read.
const MAX_ROUNDS: usize = 64;

/// What attaching found: the processes now in the session, and the
/// descendants left out of it, each with why.
pub(crate) struct Adopted {
    pub attach: Attach,
    pub left_out: Vec<Uncovered>,
}

/// Adds `pids` (processes, not threads), their threads and descendants
/// with `add`, and describes them. `add` answers whether it put the task
/// in the session (`false`: the kernel's fork probe had, as the child or
/// thread of a task added before) and fails with `EEXIST` for a task
/// another session traces. A process `owner` could not `ptrace`, one
/// another session traces, or probity itself is refused when named, and
/// left out (listed, untraced) when only a descendant.
///
/// Reading `/proc` again stops once a pass puts nothing new in the
/// session: what the fork probe added is followed already, so a tree
/// that never stops forking (a shell loop, a build) still settles.
pub(crate) fn adopt(
    pids: &[u32],
    owner: Owner,
    add: &dyn Fn(u32) -> std::io::Result<bool>,
    forget: &dyn Fn(u32),
) -> Result<Adopted, Error> {
    let at_ns = crate::monotonic_ns();
    let me = std::process::id();
    let mut order: Vec<(u32, u32)> = Vec::new();
    let mut known: HashSet<u32> = HashSet::new();
    let mut left_out: Vec<Uncovered> = Vec::new();
    for &pid in pids {
        let status = Status::read(pid).ok_or_else(|| Error::AttachProcess { pid, reason: "no such process".into() })?;
        if status.tgid != pid {
            return Err(Error::AttachProcess {
                pid,
                reason: format!("it is a thread of process {}: name the process", status.tgid),
            });
        }
        if pid == me {
            return Err(Error::AttachProcess { pid, reason: "it is this probity process".into() });
        }
        may_trace(pid, &status, owner).map_err(|reason| Error::AttachProcess { pid, reason })?;
        if known.insert(pid) {
            order.push((pid, status.ppid));
        }
    }
    // probity itself is never traced, even as a descendant of a process
    // named (the shell it was started from), nor are its children.
    known.insert(me);
    let mut parents: HashSet<u32> = order.iter().map(|&(pid, _)| pid).collect();
    let mut added: HashSet<u32> = HashSet::new();
    let mut refused: HashSet<u32> = HashSet::new();
    // Adds the threads of `pid` not tried yet; whether any went in anew.
    let add_threads = |pid: u32,
                       added: &mut HashSet<u32>,
                       refused: &mut HashSet<u32>,
                       left_out: &mut Vec<Uncovered>|
     -> Result<bool, Error> {
        let mut new = false;
        for tid in threads(pid) {
            if !added.insert(tid) {
                continue;
            }
            match add(tid) {
                Ok(put) => new |= put,
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    if pids.contains(&pid) {
                        return Err(Error::AttachProcess {
                            pid,
                            reason: "another probity session traces it (a test, or another `probity run`)".into(),
                        });
                    }
                    refused.insert(pid);
                    left_out.push(uncovered(pid, "another probity session traces it"));
                    return Ok(new);
                }
                Err(e) => {
                    return Err(Error::AttachProcess {
                        pid,
                        reason: format!("the eBPF task map refused thread {tid}: {e}"),
                    })
                }
            }
        }
        Ok(new)
    };
    for round in 0.. {
        let mut changed = false;
        for &(pid, _) in &order {
            if !refused.contains(&pid) {
                changed |= add_threads(pid, &mut added, &mut refused, &mut left_out)?;
            }
        }
        parents.retain(|pid| !refused.contains(pid));
        for (pid, ppid) in children_of(&parents) {
            let Some(status) = Status::read(pid) else { continue };
            if !known.insert(pid) {
                continue;
            }
            match may_trace(pid, &status, owner) {
                Ok(()) => {
                    order.push((pid, ppid));
                    parents.insert(pid);
                    changed |= add_threads(pid, &mut added, &mut refused, &mut left_out)?;
                }
                Err(why) => left_out.push(uncovered(pid, &why)),
            }
        }
        if !changed {
            break;
        }
        if round == MAX_ROUNDS {
            return Err(Error::AttachProcess {
                pid: pids.first().copied().unwrap_or_default(),
                reason: format!("its tree kept changing over {MAX_ROUNDS} reads of /proc; try again"),
            });
        }
    }
    // Checked again now that they are in: one that exec'd into more
    // privilege between its check and its addition was not seen by the
    // exec probe, which watches only tasks in the session.
    if !owner.is_root() {
        for &(pid, _) in &order {
            if refused.contains(&pid) {
                continue;
            }
            let now = Status::read(pid).map_or(Err("it ended".to_owned()), |s| may_trace(pid, &s, owner));
            if let Err(why) = now {
                threads(pid).into_iter().for_each(&forget);
                forget(pid);
                if pids.contains(&pid) && Status::read(pid).is_some() {
                    return Err(Error::AttachProcess { pid, reason: why });
                }
                refused.insert(pid);
                left_out.push(uncovered(pid, &why));
            }
        }
    }
    let processes =
        order.into_iter().filter(|(pid, _)| !refused.contains(pid)).map(|(pid, ppid)| describe(pid, ppid)).collect();
    Ok(Adopted { attach: Attach { at_ns, processes, detached: false }, left_out })
}

/// A descendant left out of the session, with why.
fn uncovered(pid: u32, why: &str) -> Uncovered {
    let program = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| crate::event::shown(p.as_os_str()).into_owned())
        .unwrap_or_default();
    Uncovered {
        pid,
        program,
        tracer: TracerKind::Ebpf,
        reason: format!("running when probity attached, and left out: {why}"),
    }
}

/// Why `owner` may not trace process `pid`, if it may not: what `ptrace`
/// would refuse it. Root may trace anything.
fn may_trace(pid: u32, status: &Status, owner: Owner) -> Result<(), String> {
    if owner.is_root() {
        return Ok(());
    }
    if let Some(why) = status.more_privileged_than(owner) {
        return Err(format!("{why}: more privilege than probity's caller (uid {})", owner.uid));
    }
    // A process that is not dumpable (it said so, or it changed
    // credentials) has its /proc entries owned by root.
    let dumpable = std::fs::metadata(format!("/proc/{pid}")).is_ok_and(|m| m.uid() == owner.uid);
    if !dumpable {
        return Err("it is not dumpable (PR_SET_DUMPABLE), so ptrace would refuse it too".into());
    }
    match crate::kernel::privilege::ptrace_scope() {
        0 => Ok(()),
        1 if descends_from(pid, std::process::id()) => Ok(()),
        1 => Err("the kernel's ptrace_scope (1) lets a user trace only its own descendants".into()),
        n => Err(format!("the kernel's ptrace_scope ({n}) lets only root trace running processes")),
    }
}

/// Whether `pid` is `ancestor` or one of its descendants.
fn descends_from(pid: u32, ancestor: u32) -> bool {
    let mut p = pid;
    for _ in 0..4096 {
        if p == ancestor {
            return true;
        }
        match Status::read(p) {
            Some(s) if s.ppid != 0 && s.ppid != p => p = s.ppid,
            _ => return false,
        }
    }
    false
}

/// The thread ids of process `pid`, sorted.
fn threads(pid: u32) -> BTreeSet<u32> {
    numeric_entries(&format!("/proc/{pid}/task"))
}

/// The processes whose parent is in `parents`, with that parent.
fn children_of(parents: &HashSet<u32>) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    for pid in numeric_entries("/proc") {
        if parents.contains(&pid) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // `pid (comm) state ppid ...`; the name may hold spaces and ')'.
        let Some(ppid) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if parents.contains(&ppid) {
            out.push((pid, ppid));
        }
    }
    out
}

fn numeric_entries(dir: &str) -> BTreeSet<u32> {
    let Ok(rd) = std::fs::read_dir(dir) else { return BTreeSet::new() };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect()
}

/// What `/proc` shows of process `pid`.
fn describe(pid: u32, ppid: u32) -> AttachedProcess {
    // Before anything is read: events from here on are judged by it.
    let described_ns = crate::monotonic_ns();
    let link = |what: &str| std::fs::read_link(format!("/proc/{pid}/{what}")).ok();
    let shown = |p: std::path::PathBuf| crate::event::shown(p.as_os_str()).into_owned();
    let argv = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
        })
        .unwrap_or_default();
    let unix = unix_socket_inodes(pid);
    let mut descriptors: Vec<OpenDescriptor> = numeric_entries(&format!("/proc/{pid}/fd"))
        .into_iter()
        .filter_map(|fd| {
            let target = shown(std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?);
            let socket =
                target.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')).map(|ino| match ino.parse::<u64>() {
                    Ok(i) if unix.contains(&i) => SocketKind::Unix,
                    _ => SocketKind::Network,
                });
            // `flags:` in octal, as open(2) takes them.
            let cloexec = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok().is_some_and(|info| {
                info.lines()
                    .find_map(|l| l.strip_prefix("flags:"))
                    .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
                    .is_some_and(|f| f & libc::O_CLOEXEC as u32 != 0)
            });
            Some(OpenDescriptor { fd: i32::try_from(fd).ok()?, target, socket, cloexec })
        })
        .collect();
    descriptors.sort_by_key(|d| d.fd);
    AttachedProcess {
        pid,
        ppid,
        program: link("exe").map(shown).unwrap_or_default(),
        argv,
        cwd: link("cwd").map(shown),
        descriptors,
        in_flight: threads(pid).into_iter().filter_map(|tid| in_syscall(pid, tid)).collect(),
        described_ns,
    }
}

/// The syscall thread `tid` is inside; `None` when it is not in one,
/// `unknown` when `/proc` does not say.
fn in_syscall(pid: u32, tid: u32) -> Option<CallUnderWay> {
    let unknown = || CallUnderWay { syscall: "unknown".into(), first_arg: None };
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall")) else {
        // Gone since it was listed: nothing of it is left to matter.
        return std::fs::metadata(format!("/proc/{pid}/task/{tid}")).is_ok().then(unknown);
    };
    // `running`, `-1 ...` (stopped outside a syscall), or `NR ARG1 ...`
    // with the arguments in hexadecimal.
    let mut words = text.split_whitespace();
    match words.next().map(str::parse::<i64>) {
        Some(Ok(nr)) if nr >= 0 => Some(CallUnderWay {
            syscall: crate::decode::syscall_name(nr as u32).into_owned(),
            first_arg: words.next().and_then(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok()),
        }),
        Some(Ok(_)) => None,
        // On a CPU as /proc was read: in user space, or inside a call
        // it does not name.
        _ => Some(unknown()),
    }
}

/// The inodes of the Unix-domain sockets in `pid`'s network namespace.
fn unix_socket_inodes(pid: u32) -> HashSet<u64> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/unix")) else { return HashSet::new() };
    // `Num RefCount Protocol Flags Type St Inode Path`
    text.lines().skip(1).filter_map(|l| l.split_whitespace().nth(6)?.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_described_with_its_descriptors() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let me = std::process::id();
        let p = describe(me, 1);
        assert_eq!(p.pid, me);
        assert!(!p.program.is_empty() && !p.argv.is_empty(), "{p:?}");
        assert_eq!(p.cwd.as_deref(), Some(&*std::env::current_dir().unwrap().to_string_lossy()));
        let kind = |fd: i32| p.descriptors.iter().find(|d| d.fd == fd).and_then(|d| d.socket);
        use std::os::fd::AsRawFd;
        assert_eq!(kind(a.as_raw_fd()), Some(SocketKind::Unix), "{p:?}");
        assert_eq!(kind(tcp.as_raw_fd()), Some(SocketKind::Network), "{p:?}");
        // Rust opens every descriptor close-on-exec; fd 2 is inherited.
        let cloexec = |fd: i32| p.descriptors.iter().find(|d| d.fd == fd).map(|d| d.cloexec);
        assert_eq!(cloexec(tcp.as_raw_fd()), Some(true), "{p:?}");
        assert!(p.described_ns > 0);
    }

    #[test]
    fn children_are_found_by_their_parent() {
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let me = std::process::id();
        let found = children_of(&HashSet::from([me]));
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.contains(&(child.id(), me)), "{found:?}");
    }

    #[test]
    fn a_thread_id_or_a_missing_process_is_refused() {
        let add = |_tid: u32| Ok(true);
        let root = Owner { uid: 0, gid: 0 };
        let e = adopt(&[u32::MAX - 1], root, &add, &|_| {}).err().unwrap();
        assert!(e.to_string().contains("no such process"), "{e}");
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            tx.send(unsafe { libc::gettid() } as u32).unwrap();
            let _ = done_rx.recv();
        });
        let tid = rx.recv().unwrap();
        let e = adopt(&[tid], root, &add, &|_| {}).err().unwrap();
        done_tx.send(()).unwrap();
        t.join().unwrap();
        assert!(e.to_string().contains(&format!("thread of process {}", std::process::id())), "{e}");
    }
}
