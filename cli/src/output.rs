//! Opening the files `-o` and `--json` name. probity often runs as root
//! beside other users' code, and a trace holds what the command read and
//! wrote, so a trace file is opened as a careful root process must open a
//! name in a directory others can write to (such as `/tmp`, where
//! `fs.protected_symlinks` may be off):
//!
//! - a new file is created 0600 with `O_EXCL`, never through a link;
//! - an existing regular file is truncated only when the caller owns it and
//!   it has no other name (no hard link to someone's file);
//! - a symbolic link, as the file or as a directory on the way, is followed
//!   only when the caller or root owns it (another user's link could point
//!   anywhere, and is refused);
//! - a file of procfs, sysfs or their kind (a kernel setting) is refused;
//! - anything else is refused, except `/dev/null`, probity's own standard
//!   streams (`/dev/stdout`, `/dev/stderr`, the terminal), and pipes and
//!   sockets the caller owns (`--json >(jq .)`).
//!
//! [`Background`] then writes each file on a thread of its own.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path};

use anyhow::{bail, Context};
use nix::errno::Errno;
use nix::fcntl::{fcntl, openat, readlinkat, AtFlags, FcntlArg, OFlag, AT_FDCWD};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode, SFlag};
use nix::unistd::{ftruncate, geteuid};

/// `/dev/null`'s device number (major 1, minor 3).
const DEV_NULL: u64 = libc::makedev(1, 3);

/// What a trace file is, to tell whether `-o` and `--json` name the same.
#[derive(PartialEq, Eq)]
pub enum Identity {
    /// An existing file: device and inode.
    File(u64, u64),
    /// A file still to be created: its directory's device and inode, and
    /// its name.
    New(u64, u64, std::ffi::OsString),
}

/// What `path` is now, following links as the open will (`None` when
/// its directory cannot be found: the open says why).
pub fn identity(path: &Path) -> Option<Identity> {
    use std::os::unix::fs::MetadataExt;
    if let Ok(m) = std::fs::metadata(path) {
        return Some(Identity::File(m.dev(), m.ino()));
    }
    let name = path.file_name()?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let m = std::fs::metadata(dir).ok()?;
    Some(Identity::New(m.dev(), m.ino(), name.to_owned()))
}

/// Whether `path` is `/dev/null`, which any number of outputs may share.
pub fn is_dev_null(path: &Path) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == DEV_NULL)
}

/// Most symbolic links followed while opening one file, as the kernel's
/// `MAXSYMLINKS`.
const MAX_LINKS: u32 = 40;

/// Opens `path` for a trace, safely (see the module's doc); `what` names
/// the option for messages.
pub fn create(path: &Path, what: &str) -> anyhow::Result<File> {
    let shown = path.display();
    if path.file_name().is_none() {
        let dir = shown.to_string();
        bail!(
            "{what} {dir} names a directory, not a file; give a file name such as {}/trace.txt",
            dir.trim_end_matches('/')
        );
    }
    let fd = open(path).map_err(advise).with_context(|| format!("cannot write the trace to {what} {shown}"))?;
    // probity's own stdout or stderr (`-o /dev/stdout`, even when it is a
    // file): its descriptor is shared, so that the trace goes where the
    // caller's redirection points, at its offset (`>>` appends).
    if let Some(stream) = fstat(&fd).ok().as_ref().and_then(std_stream) {
        return Ok(File::from(stream));
    }
    // Writes block as usual once the file is vetted.
    fcntl(&fd, FcntlArg::F_SETFL(OFlag::empty())).with_context(|| format!("failed to set up {what} {shown}"))?;
    Ok(File::from(fd))
}

/// Adds what to do to a system error that ended an open.
fn advise(e: anyhow::Error) -> anyhow::Error {
    let advice = match e.root_cause().downcast_ref::<Errno>() {
        Some(Errno::ENOENT) => "a directory on the way does not exist: create it first",
        Some(Errno::EISDIR) => "it is a directory: give a file name inside it",
        Some(Errno::ENXIO) => "it is a named pipe with no reader: start the reader first",
        Some(Errno::EACCES | Errno::EPERM | Errno::EROFS) => "choose a place you may write to",
        _ => return e,
    };
    e.context(advice)
}

/// Walks `path` a component at a time, so that every symbolic link on the
/// way, the last included, is checked before it is followed (by splicing
/// its target into the walk): the kernel would follow anyone's.
fn open(path: &Path) -> anyhow::Result<OwnedFd> {
    let dir_flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let root = |absolute: bool| openat(AT_FDCWD, if absolute { "/" } else { "." }, dir_flags, Mode::empty());
    let mut dir = root(path.is_absolute())?;
    let mut todo: VecDeque<OsString> = names(path);
    let mut links = 0;
    while let Some(name) = todo.pop_front() {
        let last = todo.is_empty();
        let opened = if last {
            create_in(&dir, &name)
        } else {
            openat(&dir, name.as_os_str(), dir_flags | OFlag::O_NOFOLLOW, Mode::empty())
        };
        let err = match opened {
            Ok(fd) if last => {
                vet(&fd)?;
                return Ok(fd);
            }
            Ok(fd) => {
                dir = fd;
                continue;
            }
            Err(e) => e,
        };
        let shown = Path::new(&name).display();
        let st = match fstatat(&dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(_) if !last => return Err(err).with_context(|| format!("failed to open the directory {shown}")),
            Err(_) => return Err(err.into()),
        };
        if file_type(&st) != SFlag::S_IFLNK {
            if last {
                return Err(err.into());
            }
            bail!("{shown} is a {}, not a directory", type_name(&st));
        }
        trusted_link(&name, &st)?;
        links += 1;
        if links > MAX_LINKS {
            bail!("more than {MAX_LINKS} symbolic links on the way (a loop?)");
        }
        // /proc's links (/dev/stdout is /proc/self/fd/1) name open files,
        // not paths: only the kernel can follow them, and /proc owns them.
        if in_procfs(&dir) {
            let flags =
                if last { OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK } else { dir_flags };
            let fd = openat(&dir, name.as_os_str(), flags, Mode::empty())?;
            if last {
                vet(&fd)?;
                return Ok(fd);
            }
            dir = fd;
            continue;
        }
        let target = readlinkat(&dir, name.as_os_str())?;
        let target = Path::new(&target);
        if target.is_absolute() {
            dir = root(true)?;
        }
        for part in names(target).into_iter().rev() {
            todo.push_front(part);
        }
        if todo.is_empty() || target.file_name().is_none() {
            bail!("{shown} is a symbolic link to a directory, not to a file");
        }
    }
    bail!("no file name given")
}

/// The components of `path` still to walk (`..` kept: it is resolved in
/// the directory reached, as the kernel does).
fn names(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            Component::ParentDir => Some("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// Whether `dir` is in procfs.
fn in_procfs(dir: &OwnedFd) -> bool {
    nix::sys::statfs::fstatfs(dir).is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
}

/// Opens `name` in `dir` for writing: a new file 0600, or an existing one
/// that is not a link (which fails with `ELOOP`), for [`vet`] to judge.
fn create_in(dir: &OwnedFd, name: &OsStr) -> nix::Result<OwnedFd> {
    let base = OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW;
    match openat(dir, name, base | OFlag::O_CREAT | OFlag::O_EXCL, Mode::S_IRUSR | Mode::S_IWUSR) {
        Err(Errno::EEXIST) => {}
        other => return other,
    }
    openat(dir, name, base, Mode::empty())
}

/// Refuses what a trace must not be written to, and empties a regular
/// file that may be.
fn vet(fd: &OwnedFd) -> anyhow::Result<()> {
    let st = fstat(fd)?;
    let me = geteuid().as_raw();
    // probity's own stdout or stderr, even a file: the caller's (see
    // `create`).
    if std_stream(&st).is_some() {
        return Ok(());
    }
    match file_type(&st) {
        SFlag::S_IFREG => {
            if st.st_uid != me {
                bail!(
                    "it exists and belongs to uid {}, not to you (uid {me}); probity overwrites only your own \
                     files: remove it or choose another name",
                    st.st_uid
                );
            }
            // /proc/sys, /sys and their kind take writes as commands.
            if let Some(fs) = pseudo_fs(fd) {
                bail!("it is a file of {fs}, whose files are kernel settings, not storage; give a regular file");
            }
            if st.st_nlink > 1 {
                bail!(
                    "it has {} hard links, and probity truncates only a file with one name (another name could \
                     be someone's file); remove it or choose another name",
                    st.st_nlink
                );
            }
            ftruncate(fd, 0)?;
            Ok(())
        }
        SFlag::S_IFCHR if st.st_rdev == DEV_NULL => Ok(()),
        SFlag::S_IFIFO | SFlag::S_IFSOCK if st.st_uid == me => Ok(()),
        _ => bail!(
            "it is a {} that is neither /dev/null, nor one of probity's standard streams, nor a pipe of yours; \
             give a regular file",
            type_name(&st)
        ),
    }
}

/// Accepts a symbolic link only if the caller or root owns it: another
/// user's link (say, planted in `/tmp`) could point at any file.
fn trusted_link(name: &OsStr, st: &FileStat) -> anyhow::Result<()> {
    let me = geteuid().as_raw();
    if st.st_uid == me || st.st_uid == 0 {
        return Ok(());
    }
    bail!(
        "{} is a symbolic link owned by uid {}, neither you (uid {me}) nor root, and probity does not follow \
         another user's link (it could point at a file you did not mean to overwrite); remove it, or give the \
         path it points to",
        Path::new(name).display(),
        st.st_uid
    )
}

/// A copy of probity's standard output or error descriptor, if `st` is
/// its file.
fn std_stream(st: &FileStat) -> Option<OwnedFd> {
    let same = |fd: BorrowedFd<'_>| fstat(fd).is_ok_and(|s| s.st_dev == st.st_dev && s.st_ino == st.st_ino);
    let (out, err) = (std::io::stdout(), std::io::stderr());
    let found = [out.as_fd(), err.as_fd()].into_iter().find(|&fd| same(fd)).and_then(|fd| fd.try_clone_to_owned().ok());
    found
}

/// The name of the kernel file system `fd` is on, if it is one whose
/// files are not storage.
fn pseudo_fs(fd: &OwnedFd) -> Option<&'static str> {
    use nix::sys::statfs::{
        fstatfs, BPF_FS_MAGIC, CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC, DEBUGFS_MAGIC, PROC_SUPER_MAGIC,
        SECURITYFS_MAGIC, SYSFS_MAGIC, TRACEFS_MAGIC,
    };
    let kind = fstatfs(fd).ok()?.filesystem_type();
    [
        (PROC_SUPER_MAGIC, "procfs"),
        (SYSFS_MAGIC, "sysfs"),
        (CGROUP_SUPER_MAGIC, "cgroupfs"),
        (CGROUP2_SUPER_MAGIC, "cgroupfs"),
        (DEBUGFS_MAGIC, "debugfs"),
        (TRACEFS_MAGIC, "tracefs"),
        (SECURITYFS_MAGIC, "securityfs"),
        (BPF_FS_MAGIC, "bpffs"),
    ]
    .into_iter()
    .find(|(magic, _)| *magic == kind)
    .map(|(_, name)| name)
}

fn file_type(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

fn type_name(st: &FileStat) -> &'static str {
    match file_type(st) {
        SFlag::S_IFREG => "regular file",
        SFlag::S_IFDIR => "directory",
        SFlag::S_IFLNK => "symbolic link",
        SFlag::S_IFIFO => "named pipe",
        SFlag::S_IFSOCK => "socket",
        SFlag::S_IFCHR => "character device",
        SFlag::S_IFBLK => "block device",
        _ => "special file",
    }
}

/// A trace file written on a thread of its own: the events are
/// formatted on the thread that receives them, in chunks of `CHUNK`
/// bytes, and the write syscalls (copying hundreds of megabytes into the
/// page cache for a long trace) happen on the writer thread, on the
/// other core.
///
/// The first error the file gives is returned by a later `write` or by
/// `flush`, which waits until every chunk so far is written; chunks after
/// an error are dropped.
pub struct Background {
    /// The chunk being filled.
    chunk: Vec<u8>,
    /// Full chunks to the writer thread; `None` once it is gone.
    full: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    /// Written chunks back from it, for reuse.
    written: std::sync::mpsc::Receiver<Vec<u8>>,
    /// Chunks sent and not yet back.
    pending: usize,
    /// The first error of the file.
    error: std::sync::Arc<std::sync::Mutex<Option<std::io::Error>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Bytes gathered before a write: a trace is millions of short lines.
const CHUNK: usize = 1 << 16;
/// Chunks in flight: enough for the writer to keep busy.
const CHUNKS: usize = 4;

impl Background {
    /// Starts a writer thread for `file`; `what` names it (`-o`).
    pub fn new(mut file: File, what: &str) -> anyhow::Result<Background> {
        use std::io::Write as _;
        let (full, todo) = std::sync::mpsc::sync_channel::<Vec<u8>>(CHUNKS);
        let (done, written) = std::sync::mpsc::sync_channel::<Vec<u8>>(CHUNKS + 1);
        let error = std::sync::Arc::new(std::sync::Mutex::new(None));
        let first_error = std::sync::Arc::clone(&error);
        let thread = std::thread::Builder::new()
            .name(format!("probity {what}"))
            .spawn(move || {
                let mut failed = false;
                for mut chunk in todo {
                    if !failed {
                        if let Err(e) = file.write_all(&chunk) {
                            failed = true;
                            *first_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                        }
                    }
                    chunk.clear();
                    if done.send(chunk).is_err() {
                        break;
                    }
                }
            })
            .with_context(|| format!("failed to start the thread that writes {what}"))?;
        Ok(Background {
            chunk: Vec::with_capacity(CHUNK),
            full: Some(full),
            written,
            pending: 0,
            error,
            thread: Some(thread),
        })
    }

    /// The file's first error, if it failed.
    fn failure(&self) -> std::io::Result<()> {
        match self.error.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Hands the chunk being filled to the writer thread, and takes an
    /// empty one back (waiting when `CHUNKS` are in flight).
    fn send(&mut self) -> std::io::Result<()> {
        self.failure()?;
        if self.chunk.is_empty() {
            return Ok(());
        }
        let next = if self.pending >= CHUNKS {
            self.pending -= 1;
            self.written.recv().ok()
        } else {
            self.written.try_recv().ok().inspect(|_| self.pending -= 1)
        };
        let next = next.unwrap_or_else(|| Vec::with_capacity(CHUNK));
        let chunk = std::mem::replace(&mut self.chunk, next);
        let gone = || std::io::Error::other("the writer thread ended");
        self.full.as_ref().ok_or_else(gone)?.send(chunk).map_err(|_| gone())?;
        self.pending += 1;
        Ok(())
    }
}

impl std::io::Write for Background {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.chunk.len() + data.len() > CHUNK {
            self.send()?;
        }
        self.chunk.extend_from_slice(data);
        Ok(data.len())
    }

    /// Writes what is gathered, and waits until the file has it all.
    fn flush(&mut self) -> std::io::Result<()> {
        self.send()?;
        while self.pending > 0 {
            if self.written.recv().is_err() {
                break;
            }
            self.pending -= 1;
        }
        self.failure()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // As `BufWriter` does, what is gathered is written; an error here
        // has no one to go to.
        let _ = self.send();
        // Ends the thread once it has written what it was given.
        self.full = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[test]
    fn a_background_file_gets_every_byte_in_order_by_flush() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        let mut w = Background::new(File::create(&path).unwrap(), "-o").unwrap();
        let mut want = Vec::new();
        // Lines of every length up to over a chunk, so chunks fill unevenly.
        for i in 0..3000usize {
            let line = format!("{i} {}\n", "x".repeat(i * 37 % (CHUNK + 100)));
            w.write_all(line.as_bytes()).unwrap();
            want.extend_from_slice(line.as_bytes());
        }
        w.flush().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), want);
        // It can go on after a flush, and a drop writes the rest.
        w.write_all(b"end\n").unwrap();
        drop(w);
        want.extend_from_slice(b"end\n");
        assert_eq!(std::fs::read(&path).unwrap(), want);
    }

    #[test]
    fn a_failing_file_gives_its_own_error() {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let mut w = Background::new(full, "-o").unwrap();
        let chunk = vec![b'x'; CHUNK];
        // Writes go on being accepted until the thread's error comes back.
        let mut result = Ok(());
        for _ in 0..4 * CHUNKS {
            result = w.write_all(&chunk);
            if result.is_err() {
                break;
            }
        }
        let err = result.and_then(|()| w.flush()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
    }
}
