//! A cgroup v2 group for the trees this process traces, so that whatever a
//! probity process leaves running when it dies (`kill -9`, a crash) is
//! killed at the next start of probity.
//!
//! The root of a tree dies with probity through its death signal; its
//! descendants do not inherit that, so each root moves itself (before its
//! `execve`) into `probity-tree-<pidns>-<pid>-<start>-<random>`, made once
//! per probity process under probity's own cgroup, and its descendants
//! follow. Every spawn then kills (`cgroup.kill`) and removes the groups
//! of probity processes of this user that are gone. Where there is no
//! cgroup v2 hierarchy, no `cgroup.kill` (Linux before 5.14), or no right
//! to make a group (a read-only `/sys/fs/cgroup`, an unprivileged caller
//! without a delegated subtree), trees run as before and only their root
//! dies with probity.

use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::preload::ring_file::{left_by_the_dead, random_hex, Owner};

/// What every group's name starts with.
const PREFIX: &str = "probity-tree-";

/// How long a killed group gets to empty before it is left for a later
/// start to remove.
const EMPTY_WITHIN: Duration = Duration::from_millis(200);

/// Reclaims the groups of dead probity processes, and returns the
/// `cgroup.procs` of this process's group, open for writing (a child writes
/// `0` there to move itself), when there is one.
pub(super) fn prepare() -> Option<RawFd> {
    static GROUP: OnceLock<Option<(PathBuf, OwnedFd)>> = OnceLock::new();
    let parent = own_cgroup()?;
    let me = Owner::current()?;
    reclaim(&parent, &me);
    GROUP.get_or_init(|| create(&parent, &me)).as_ref().map(|(_, fd)| fd.as_raw_fd())
}

/// Makes this process's group.
fn create(parent: &Path, me: &Owner) -> Option<(PathBuf, OwnedFd)> {
    let dir = parent.join(format!("{PREFIX}{}-{}", me.stem(), random_hex()));
    std::fs::create_dir(&dir).ok()?;
    // The root group has no `cgroup.kill`: look in ours.
    if !dir.join("cgroup.kill").exists() {
        let _ = std::fs::remove_dir(&dir);
        return None;
    }
    let procs = OpenOptions::new().write(true).custom_flags(libc::O_NOFOLLOW).open(dir.join("cgroup.procs"));
    match procs {
        Ok(f) => Some((dir, f.into())),
        Err(_) => {
            let _ = std::fs::remove_dir(&dir);
            None
        }
    }
}

/// This process's cgroup v2 directory.
fn own_cgroup() -> Option<PathBuf> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = cgroups.lines().find_map(|l| l.strip_prefix("0::"))?;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    // `<id> <parent> <dev> <root> <mount point> ... - cgroup2 ...`, with
    // the hierarchy's root mounted (not a subtree of it).
    let mount = mounts.lines().find_map(|l| {
        let (fields, fs) = l.split_once(" - ")?;
        let f: Vec<&str> = fields.split(' ').collect();
        (fs.starts_with("cgroup2 ") && f.get(3) == Some(&"/")).then(|| f.get(4).map(|m| PathBuf::from(*m)))?
    })?;
    Some(mount.join(rel.trim_start_matches('/')))
}

/// Kills and removes the groups under `parent` of this user's probity
/// processes that are gone.
fn reclaim(parent: &Path, me: &Owner) {
    for (dir, meta) in left_by_the_dead(parent, PREFIX, me) {
        if !meta.is_dir() {
            continue;
        }
        let _ = std::fs::write(dir.join("cgroup.kill"), "1");
        let until = Instant::now() + EMPTY_WITHIN;
        // Removable once its last task is gone.
        while std::fs::remove_dir(&dir).is_err() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
