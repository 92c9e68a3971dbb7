//! Who is at the other end of a socket, as the kernel says, and what a
//! process is (its parent, its ids, its capabilities) as `/proc` says.
//! The daemon decides nothing from what a client claims about itself.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

/// The kernel's credentials of a socket's peer, taken when it connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Peer {
    pub pid: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Peer {
    pub(super) fn of(sock: &impl AsFd) -> std::io::Result<Peer> {
        let c = nix::sys::socket::getsockopt(sock, nix::sys::socket::sockopt::PeerCredentials)?;
        Ok(Peer { pid: c.pid() as u32, uid: c.uid(), gid: c.gid() })
    }
}

/// A pidfd of the socket's peer (`SO_PEERPIDFD`, Linux 6.5+): it stays
/// bound to that process even if its pid is reused.
pub(super) fn peer_pidfd(sock: &impl AsFd) -> Option<OwnedFd> {
    const SO_PEERPIDFD: libc::c_int = 77;
    let mut fd: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `fd` and `len` are live and sized for the option's value.
    let r = unsafe {
        libc::getsockopt(
            sock.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            SO_PEERPIDFD,
            (&mut fd as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    // SAFETY: on success `fd` is a new pidfd that nothing else owns.
    (r == 0 && fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A pidfd of process `pid`, taken now.
pub(super) fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: plain integer arguments; a valid fd is owned below.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    // SAFETY: a new pidfd that nothing else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// Whether the process behind `pidfd` has not exited.
pub(super) fn alive(pidfd: &OwnedFd) -> bool {
    // SAFETY: signal 0 only checks; the fd is a live pidfd.
    let r = unsafe {
        libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), 0, std::ptr::null::<libc::siginfo_t>(), 0)
    };
    r == 0
}

/// What `/proc/<pid>/status` says of a task.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Status {
    pub tgid: u32,
    pub ppid: u32,
    /// Real, effective, saved and filesystem user ids.
    pub uids: [u32; 4],
    pub gids: [u32; 4],
    pub groups: Vec<u32>,
    pub cap_permitted: u64,
    pub cap_effective: u64,
}

impl Status {
    pub(crate) fn read(pid: u32) -> Option<Status> {
        Status::parse(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
    }

    pub(super) fn parse(text: &str) -> Option<Status> {
        let mut s = Status::default();
        let mut seen = 0;
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else { continue };
            let value = value.trim();
            let ids = |v: &str| -> Option<[u32; 4]> {
                let v: Vec<u32> = v.split_whitespace().map(str::parse).collect::<Result<_, _>>().ok()?;
                v.try_into().ok()
            };
            match key {
                "Tgid" => (s.tgid, seen) = (value.parse().ok()?, seen | 1),
                "PPid" => (s.ppid, seen) = (value.parse().ok()?, seen | 2),
                "Uid" => (s.uids, seen) = (ids(value)?, seen | 4),
                "Gid" => (s.gids, seen) = (ids(value)?, seen | 8),
                "Groups" => {
                    s.groups = value.split_whitespace().map(str::parse).collect::<Result<_, _>>().ok()?;
                }
                "CapPrm" => (s.cap_permitted, seen) = (u64::from_str_radix(value, 16).ok()?, seen | 16),
                "CapEff" => (s.cap_effective, seen) = (u64::from_str_radix(value, 16).ok()?, seen | 32),
                _ => {}
            }
        }
        (seen == 63).then_some(s)
    }

    /// Why this task may not be traced for `owner`, if it may not: it runs
    /// as another user or group, or holds a capability the owner lacks
    /// (the same rule as the exec probe's).
    pub(crate) fn more_privileged_than(&self, owner: crate::kernel::privilege::Owner) -> Option<String> {
        if owner.is_root() {
            return None;
        }
        if self.uids.iter().any(|&u| u != owner.uid) {
            return Some(format!("it runs as user ids {:?}, not {}", self.uids, owner.uid));
        }
        if self.gids.iter().any(|&g| g != owner.gid) {
            return Some(format!("it runs as group ids {:?}, not {}", self.gids, owner.gid));
        }
        if self.cap_permitted != 0 || self.cap_effective != 0 {
            return Some("it holds capabilities".into());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::privilege::Owner;

    const SAMPLE: &str = "Name:\tcat\nTgid:\t42\nPid:\t43\nPPid:\t7\nUid:\t1000\t1000\t1000\t1000\n\
                          Gid:\t100\t100\t100\t100\nGroups:\t100 998 \nCapInh:\t0000000000000000\n\
                          CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n";

    #[test]
    fn status_is_read_field_by_field() {
        let s = Status::parse(SAMPLE).unwrap();
        assert_eq!((s.tgid, s.ppid, s.uids, s.gids, s.groups.clone()), (42, 7, [1000; 4], [100; 4], vec![100, 998]));
        assert_eq!(s.more_privileged_than(Owner { uid: 1000, gid: 100 }), None);
        assert!(s.more_privileged_than(Owner { uid: 1001, gid: 100 }).unwrap().contains("user ids"));
        assert!(s.more_privileged_than(Owner { uid: 1000, gid: 5 }).unwrap().contains("group ids"));
        assert_eq!(s.more_privileged_than(Owner { uid: 0, gid: 0 }), None);
        let caps = SAMPLE.replace("CapEff:\t0000000000000000", "CapEff:\t0000000000000400");
        let s = Status::parse(&caps).unwrap();
        assert_eq!(s.more_privileged_than(Owner { uid: 1000, gid: 100 }).as_deref(), Some("it holds capabilities"));
    }

    #[test]
    fn a_status_missing_a_field_is_refused() {
        assert_eq!(Status::parse(&SAMPLE.replace("PPid:\t7\n", "")), None);
        assert_eq!(Status::parse(&SAMPLE.replace("Uid:\t1000\t1000\t1000\t1000", "Uid:\t1000")), None);
        assert_eq!(Status::parse(""), None);
    }

    #[test]
    fn a_socket_pair_knows_its_own_peer() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let p = Peer::of(&a).unwrap();
        assert_eq!(p.pid, std::process::id());
        assert_eq!(p.uid, nix::unistd::geteuid().as_raw());
    }
}
