//! The preload library, embedded at build time (see `harness/build.rs`) and
//! written out to a file the dynamic loader can open.
//!
//! The library runs inside every traced process, which can be root's: a
//! copy another user could write would run their code as root. So the copy
//! lives in a directory only the caller (or root) can write, is written
//! through a fresh temporary file (`O_EXCL|O_NOFOLLOW`, random name) and
//! renamed into place, and is checked before every use: the directory and
//! its parents (owner, mode, no links), the file (opened without following
//! links, a regular file of the caller's, not writable by others, holding
//! exactly the embedded bytes). Its name carries the first digits of their
//! SHA-256. A copy that fails a check is replaced,
//! never used.
//!
//! Where: for root, `/run/probity/lib` (mode 0755, root's), because `/run`
//! is root's alone, holds run-time state (a tmpfs cleared at boot on most
//! systems) and is not mounted `noexec`; the file is 0644, so a traced
//! process that changed to another user can still load it. For anyone
//! else, `$XDG_RUNTIME_DIR/probity` or `$TMPDIR/probity-<uid>`, mode 0700.
//! A directory that is not usable (missing, `noexec`, someone else's) is
//! passed over for the next; when none is, the error names each and why.
//!
//! Why a file and not a sealed `memfd`: `LD_PRELOAD` is read again by every
//! `execve` in the tree, so it must name something every process can open
//! then. A `/proc/<pid>/fd/<n>` path of a memfd only resolves while that
//! descriptor stays open in that process: programs that close inherited
//! descriptors (Python's `subprocess`, daemons, `closefrom`) and processes
//! that changed user (who may not open another user's `/proc/<pid>/fd`)
//! would silently lose the library.

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::error::Error;

static LIBRARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libprobity_preload.so"));

/// The library's file name: by content, so concurrent test binaries of one
/// build share it and different builds never overwrite each other's.
fn file_name() -> String {
    format!("libprobity_preload-{}.so", env!("PROBITY_PRELOAD_HASH"))
}

/// The path of the library, checked (and written, or replaced, when it is
/// missing or not exactly the embedded library) on every call. Name it in
/// `LD_PRELOAD` only right after this returns.
pub fn path() -> Result<PathBuf, Error> {
    // The directory chosen first is kept, so every session of a process
    // names the same path (and the own-syscall filter recognises it).
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let euid = nix::unistd::geteuid().as_raw();
    if let Some(dir) = DIR.get() {
        return in_dir(dir, euid);
    }
    let mut refused = Vec::new();
    for dir in candidates(euid) {
        match in_dir(&dir, euid) {
            Ok(path) => {
                let _ = DIR.set(dir);
                return Ok(path);
            }
            Err(e) => refused.push(format!("{}: {}", dir.display(), error_chain(&e))),
        }
    }
    Err(Error::Preload {
        what: format!(
            "failed to find a safe directory for the preload library (tried {}); set XDG_RUNTIME_DIR or TMPDIR to a directory of yours",
            refused.join("; ")
        ),
        source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
    })
}

fn error_chain(e: &Error) -> String {
    match e {
        Error::Preload { what, source } => format!("{what} ({source})"),
        other => crate::error::Chain(other).to_string(),
    }
}

/// The directories the library may live in, best first.
fn candidates(euid: u32) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if euid == 0 {
        v.push(PathBuf::from("/run/probity/lib"));
    } else if let Some(run) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        v.push(PathBuf::from(run).join("probity"));
    }
    v.push(std::env::temp_dir().join(format!("probity-{euid}")));
    v
}

/// The mode of the library's directory and file: readable by everyone
/// when root runs probity (the tree may change user), private otherwise.
fn modes(euid: u32) -> (u32, u32) {
    if euid == 0 {
        (0o755, 0o644)
    } else {
        (0o700, 0o600)
    }
}

fn fail(what: impl Into<String>, source: std::io::Error) -> Error {
    Error::Preload { what: what.into(), source }
}

/// The checked library in `dir`, made (with the directory) when needed.
fn in_dir(dir: &Path, euid: u32) -> Result<PathBuf, Error> {
    let dir = safe_dir(dir, euid)?;
    let path = dir.join(file_name());
    match check(&path, euid) {
        Ok(()) => return Ok(path),
        // Never used: written, or replaced atomically, below.
        Err(Mismatch::Missing | Mismatch::Wrong(_)) => {}
        Err(Mismatch::Io(e)) => return Err(fail(format!("failed to check the preload library {}", path.display()), e)),
    }
    write(&dir, &path, euid)?;
    match check(&path, euid) {
        Ok(()) => Ok(path),
        Err(Mismatch::Missing) => Err(fail(
            format!("the preload library {} vanished once written", path.display()),
            std::io::ErrorKind::NotFound.into(),
        )),
        Err(Mismatch::Wrong(why)) => Err(fail(
            format!("the preload library {} is not the one probity wrote: {why}", path.display()),
            std::io::ErrorKind::InvalidData.into(),
        )),
        Err(Mismatch::Io(e)) => Err(fail(format!("failed to check the preload library {}", path.display()), e)),
    }
}

/// Why a library file cannot be used.
enum Mismatch {
    Missing,
    /// Not exactly the embedded library, or not safely ours.
    Wrong(String),
    Io(std::io::Error),
}

/// Checks that `path` is the embedded library, safely ours.
fn check(path: &Path, euid: u32) -> Result<(), Mismatch> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        // Not through a link; and a FIFO planted there does not block us.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let mut file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Mismatch::Missing),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(Mismatch::Wrong("a symbolic link".into())),
        Err(e) => return Err(Mismatch::Io(e)),
    };
    let meta = file.metadata().map_err(Mismatch::Io)?;
    let (_, want_mode) = modes(euid);
    if !meta.file_type().is_file() {
        return Err(Mismatch::Wrong("not a regular file".into()));
    }
    if meta.uid() != euid {
        return Err(Mismatch::Wrong(format!("owned by uid {}", meta.uid())));
    }
    if meta.mode() & 0o7777 != want_mode {
        return Err(Mismatch::Wrong(format!("mode {:o}", meta.mode() & 0o7777)));
    }
    if meta.len() != LIBRARY.len() as u64 {
        return Err(Mismatch::Wrong(format!("{} bytes", meta.len())));
    }
    // Byte for byte: what the SHA-256 of the content stands for, and a
    // twentieth of its cost (a hash of the library took 2 ms in a release
    // build, 50 ms in a debug one, on every session).
    let mut content = Vec::with_capacity(LIBRARY.len());
    if let Err(e) = (&mut file).take(LIBRARY.len() as u64 + 1).read_to_end(&mut content) {
        return Err(Mismatch::Io(e));
    }
    if content != LIBRARY {
        return Err(Mismatch::Wrong("different content".into()));
    }
    Ok(())
}

/// Writes the library to a new temporary file in `dir` and renames it over
/// `path`: a reader sees the old file or the whole new one.
fn write(dir: &Path, path: &Path, euid: u32) -> Result<(), Error> {
    let (_, mode) = modes(euid);
    for _ in 0..16 {
        let tmp = dir.join(format!(".{}.{}.tmp", file_name(), super::ring_file::random_hex()));
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp);
        let mut f = match created {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(fail(format!("failed to create {}", tmp.display()), e)),
        };
        let written = f
            // The umask may have taken bits the loader of another user needs.
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .and_then(|()| f.write_all(LIBRARY))
            .and_then(|()| std::fs::rename(&tmp, path));
        return written.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            fail(format!("failed to write the preload library to {}", path.display()), e)
        });
    }
    Err(fail(
        format!("failed to create a temporary file in {}", dir.display()),
        std::io::ErrorKind::AlreadyExists.into(),
    ))
}

/// `dir`, made when missing, once it and every directory above it are
/// safe: see [`trusted_ancestor`] and [`own_dir`]. Returns it with its
/// parents' links resolved, as `LD_PRELOAD` will name it.
fn safe_dir(dir: &Path, euid: u32) -> Result<PathBuf, Error> {
    let (parent, name) = match (dir.parent(), dir.file_name()) {
        (Some(p), Some(n)) => (p, n),
        _ => {
            return Err(fail(
                format!("{} is not a directory path", dir.display()),
                std::io::ErrorKind::InvalidInput.into(),
            ))
        }
    };
    // Make the parents first (root's /run/probity), each one checked.
    let parent = if parent.exists() || euid != 0 { parent.to_path_buf() } else { safe_dir(parent, euid)? };
    let parent =
        std::fs::canonicalize(&parent).map_err(|e| fail(format!("failed to resolve {}", parent.display()), e))?;
    let mut at = PathBuf::from("/");
    for part in parent.components().skip(1) {
        at.push(part);
        trusted_ancestor(&at, euid)?;
    }
    let dir = parent.join(name);
    own_dir(&dir, euid)?;
    no_exec_mount(&dir)?;
    Ok(dir)
}

/// A directory above the library's: root's or the caller's, and writable
/// by nobody else unless sticky (where nobody else can rename or remove
/// the caller's entries, as in `/tmp`).
fn trusted_ancestor(dir: &Path, euid: u32) -> Result<(), Error> {
    let meta = std::fs::symlink_metadata(dir).map_err(|e| fail(format!("failed to inspect {}", dir.display()), e))?;
    let bad = |why: String| fail(format!("{} {why}", dir.display()), std::io::ErrorKind::PermissionDenied.into());
    if !meta.file_type().is_dir() {
        return Err(bad("is not a directory (a link?)".into()));
    }
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(bad(format!("belongs to uid {}", meta.uid())));
    }
    if meta.mode() & 0o022 != 0 && meta.mode() & libc::S_ISVTX == 0 {
        return Err(bad(format!("is writable by others (mode {:o}) and not sticky", meta.mode() & 0o7777)));
    }
    Ok(())
}

/// The library's own directory: made with the caller's mode when missing;
/// otherwise a real directory (not a link) of the caller's that nobody
/// else can write.
fn own_dir(dir: &Path, euid: u32) -> Result<(), Error> {
    let (mode, _) = modes(euid);
    match std::fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(fail(format!("failed to create {}", dir.display()), e)),
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|e| fail(format!("failed to inspect {}", dir.display()), e))?;
    let bad = |why: String| fail(format!("{} {why}", dir.display()), std::io::ErrorKind::PermissionDenied.into());
    if !meta.file_type().is_dir() {
        return Err(bad("is not a directory (a link?)".into()));
    }
    if meta.uid() != euid {
        return Err(bad(format!("belongs to uid {}, not {euid}", meta.uid())));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(bad(format!("is writable by others (mode {:o})", meta.mode() & 0o7777)));
    }
    if meta.mode() & 0o777 != mode {
        // Ours and closed to writers: only the read bits differ (a umask).
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
            .map_err(|e| fail(format!("failed to set the mode of {}", dir.display()), e))?;
    }
    Ok(())
}

/// Refuses a directory on a `noexec` mount: the loader could not map the
/// library from it.
fn no_exec_mount(dir: &Path) -> Result<(), Error> {
    let stat = nix::sys::statvfs::statvfs(dir)
        .map_err(|e| fail(format!("failed to inspect the mount of {}", dir.display()), e.into()))?;
    if stat.flags().contains(nix::sys::statvfs::FsFlags::ST_NOEXEC) {
        return Err(fail(
            format!("{} is on a noexec mount", dir.display()),
            std::io::ErrorKind::PermissionDenied.into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_is_the_sha256_of_the_embedded_library() {
        use sha2::Digest;
        let hash: String = sha2::Sha256::digest(LIBRARY).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hash, env!("PROBITY_PRELOAD_SHA256"));
        assert!(file_name().contains(&hash[..16]), "{}", file_name());
    }

    #[test]
    fn a_modified_copy_is_replaced() {
        let euid = nix::unistd::geteuid().as_raw();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("lib");
        let path = in_dir(&dir, euid).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(check(&path, euid), Err(Mismatch::Wrong(_))));
        assert_eq!(in_dir(&dir, euid).unwrap(), path);
        assert!(std::fs::read(&path).unwrap() == LIBRARY, "{} was not replaced", path.display());
    }
}
