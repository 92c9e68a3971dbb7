//! The preload ring's file: created under a name nobody can guess, with
//! its memory reserved up front, and reclaimed once its session is gone.
//!
//! The traced processes open the ring by the path in `PROBITY_PRELOAD_RING`
//! at every `execve`, so it must stay a named file for the whole session
//! (an unlinked file or a `memfd` would not survive programs that close
//! inherited descriptors). It lives in `/dev/shm`, a sticky directory every
//! user can write, so:
//! - its name ends in 64 random bits and it is created with
//!   `O_EXCL|O_NOFOLLOW`; a name someone else took is retried with new
//!   bits, so a planted file or link neither stops probity nor is followed;
//! - its pages are reserved with `posix_fallocate`: a full `/dev/shm` is a
//!   clear error at start, not a `SIGBUS` in probity and the traced
//!   program at the first record that lands on a missing page;
//! - its name carries the pid namespace, pid and start time of the probity
//!   process that made it, so the next start removes the rings of probity
//!   processes that died without cleaning up (`kill -9`, a crash): only
//!   regular files of the caller's, never through a link.

use std::fs::File;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::Error;

/// What every ring file name starts with (the snapshot normaliser knows it).
const PREFIX: &str = "probity-ring-";

/// Whether `path` names a ring file as [`create`] names them.
pub(crate) fn is_ring_path(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix(PREFIX))
        .is_some_and(|rest| Owner::parse(rest).is_some())
}

/// A ring file, created and reserved, not yet mapped.
pub(super) struct RingFile {
    pub path: PathBuf,
    pub file: File,
}

/// Creates a ring file of `len` bytes with all its memory reserved, after
/// removing the rings that dead probity processes of this user left.
pub(super) fn create(len: usize) -> Result<RingFile, Error> {
    let dir = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
    let me = Owner::current();
    reclaim(&dir, me.as_ref());
    let stem = match &me {
        Some(o) => format!("{PREFIX}{}", o.stem()),
        None => format!("{PREFIX}0-{}-0", std::process::id()),
    };
    let mut taken = 0;
    let (path, file) = loop {
        let path = dir.join(format!("{stem}-{}", random_hex()));
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            // Only this user's processes may write records into it.
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path);
        match opened {
            Ok(f) => break (path, f),
            // Someone else's file, or a 2^-64 coincidence: new bits.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && taken < 16 => taken += 1,
            Err(e) => {
                return Err(Error::Preload {
                    what: format!("failed to create the preload ring {}", path.display()),
                    source: e,
                });
            }
        }
    };
    if let Err(e) = reserve(&file, len) {
        let _ = std::fs::remove_file(&path);
        return Err(no_room(&dir, len, e));
    }
    Ok(RingFile { path, file })
}

/// Reserves `len` bytes of the file's memory.
fn reserve(file: &File, len: usize) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let len = libc::off_t::try_from(len).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    loop {
        // SAFETY: a plain syscall on an open descriptor of ours.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
        match rc {
            0 => return Ok(()),
            libc::EINTR => continue,
            e => return Err(std::io::Error::from_raw_os_error(e)),
        }
    }
}

/// The error for a ring whose memory could not be reserved: what it needs,
/// what is free, and how to need less.
fn no_room(dir: &Path, len: usize, source: std::io::Error) -> Error {
    let free = nix::sys::statvfs::statvfs(dir)
        .map(|s| format!("{} free", mib(s.blocks_available().saturating_mul(s.fragment_size()))))
        .unwrap_or_else(|_| "free space unknown".into());
    Error::Preload {
        what: format!(
            "failed to reserve {} for the preload ring in {} ({free}); make the ring smaller \
             (`probity run --preload-ring-mib`, `Tracer::with_preload_ring_bytes`), give {} more room (docker: `--shm-size`), \
             or trace without the preload tracer",
            mib(len as u64),
            dir.display(),
            dir.display()
        ),
        source,
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

/// 16 hex digits from the kernel's random source.
pub(crate) fn random_hex() -> String {
    let mut bytes = [0u8; 8];
    if !random_bytes(&mut bytes) {
        // No getrandom (a kernel before 3.17): the clock and pid are
        // still hard to guess from outside, and O_EXCL keeps us safe.
        let t =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64;
        return format!("{:016x}", t ^ (u64::from(std::process::id()) << 40));
    }
    format!("{:016x}", u64::from_ne_bytes(bytes))
}

/// Fills `bytes` from the kernel's random source; false when it has none.
pub(crate) fn random_bytes(bytes: &mut [u8]) -> bool {
    let mut filled = 0;
    while filled < bytes.len() {
        // SAFETY: writes at most the rest of `bytes`, which we own.
        let n = unsafe { libc::getrandom(bytes[filled..].as_mut_ptr().cast(), bytes.len() - filled, 0) };
        if n > 0 {
            filled += n as usize;
        } else if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return false;
        }
    }
    true
}

/// A probity process, as a ring's name records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    /// The inode of its pid namespace: pids are only compared within one.
    pidns: u64,
    pid: u32,
    /// Its start time, in clock ticks after boot: a pid reused since by
    /// another process does not look alive.
    start: u64,
}

impl Owner {
    pub(crate) fn current() -> Option<Owner> {
        let pid = std::process::id();
        Some(Owner { pidns: pidns()?, pid, start: start_time(pid)? })
    }

    /// `<pidns>-<pid>-<start>`, what a name carries before its random part.
    pub(crate) fn stem(&self) -> String {
        format!("{}-{}-{}", self.pidns, self.pid, self.start)
    }

    /// Parses `<pidns>-<pid>-<start>-<random>` after the prefix.
    pub(crate) fn parse(rest: &str) -> Option<Owner> {
        let mut parts = rest.split('-');
        let owner = Owner {
            pidns: parts.next()?.parse().ok()?,
            pid: parts.next()?.parse().ok()?,
            start: parts.next()?.parse().ok()?,
        };
        let random = parts.next()?;
        (random.len() == 16 && parts.next().is_none()).then_some(owner)
    }

    /// Whether this process is in the same pid namespace as `me`: only
    /// there can its pid be checked.
    pub(crate) fn comparable_with(&self, me: &Owner) -> bool {
        self.pidns == me.pidns
    }

    pub(crate) fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.start)
    }
}

/// The inode of this process's pid namespace.
fn pidns() -> Option<u64> {
    std::fs::metadata("/proc/self/ns/pid").ok().map(|m| m.ino())
}

/// A process's start time (field 22 of `/proc/<pid>/stat`).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Removes the rings in `dir` left by dead probity processes of this user,
/// in this pid namespace. Best effort: a ring that cannot be removed stays.
fn reclaim(dir: &Path, me: Option<&Owner>) {
    let Some(me) = me else { return };
    for (path, meta) in left_by_the_dead(dir, PREFIX, me) {
        // Not through a link: the unlink does not follow one either.
        if meta.file_type().is_file() {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// The entries of `dir` named `<prefix><owner>-<random>` whose owner is a
/// dead probity process of this pid namespace, and which belong to this
/// user, with their metadata (not following links). In a sticky directory
/// nobody else can swap such an entry, or rename theirs over it, between
/// this look and what the caller does with it.
pub(crate) fn left_by_the_dead(dir: &Path, prefix: &str, me: &Owner) -> Vec<(PathBuf, std::fs::Metadata)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let euid = nix::unistd::geteuid().as_raw();
    entries
        .flatten()
        .filter(|entry| {
            let name = entry.file_name();
            name.to_str()
                .and_then(|n| n.strip_prefix(prefix))
                .and_then(Owner::parse)
                .is_some_and(|owner| owner.comparable_with(me) && owner != *me && !owner.alive())
        })
        .filter_map(|entry| {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).ok()?;
            (meta.uid() == euid).then_some((path, meta))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_the_current_process_is_alive() {
        let me = Owner::current().expect("/proc is mounted");
        let name = format!("{}-{}-{}-{}", me.pidns, me.pid, me.start, random_hex());
        assert_eq!(Owner::parse(&name), Some(me.clone()));
        assert!(me.alive());
        assert!(!Owner { start: me.start + 1, ..me.clone() }.alive());
        for bad in ["", "1-2-3", "1-2-3-xyz", "1-2-3-0123456789abcdef-4", "a-2-3-0123456789abcdef"] {
            assert_eq!(Owner::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn random_names_differ() {
        assert_ne!(random_hex(), random_hex());
        assert_eq!(random_hex().len(), 16);
    }
}
