//! Expectations about files: opened, created, written, deleted, renamed,
//! and changes only under some directories.

use std::ffi::OsStr;
use std::path::Path;

use super::absence::absence;
use super::calls::call;
use super::changes::{op_paths, Op};
use super::violation::{found, list, ok_or_panic, Violation, ViolationKind};
use crate::trace::index::{Index, Resolved};
use crate::trace::query::{base_name, trim_dot_slash, under};
use crate::trace::Trace;

/// Devices a write to changes nothing on disk.
pub(super) const HARMLESS_DEVICES: &[&str] =
    &["/dev/null", "/dev/zero", "/dev/full", "/dev/tty", "/dev/stdout", "/dev/stderr"];

impl Trace {
    /// The user's path as the trace's resolved paths are: absolute
    /// (against the starting directory) when it can be, normalized.
    fn user_path(&self, p: &Path) -> Resolved {
        use std::os::unix::ffi::OsStrExt;
        let s = p.as_os_str();
        if s.as_bytes().starts_with(b"/") {
            Resolved::Abs(crate::trace::index::normalize(s))
        } else {
            match &self.outcome.cwd {
                Some(cwd) if cwd.starts_with('/') => {
                    Resolved::Abs(crate::trace::index::normalize(crate::trace::index::joined(OsStr::new(cwd), s)))
                }
                _ => Resolved::Rel(trim_dot_slash(s).to_owned()),
            }
        }
    }

    /// Checks that syscalls changed `path` as `op` says; `what` words it.
    fn check_op(&self, op: Op, path: &Path, what: &str) -> Result<(), Violation> {
        let idx = Index::new(self);
        let want = self.user_path(path);
        let shown = want.shown().unwrap_or_default().into_owned();
        let expectation = format!("{what} {shown}");
        if (0..self.events.len()).any(|i| op_paths(&idx, i, op).contains(&&want)) {
            return Ok(());
        }
        let problem = format!("no call that succeeded {what} it");
        Err(near_misses(&idx, Violation::new(ViolationKind::Missing, expectation, problem, self), &[&want]))
    }

    /// Checks that the process tree opened `path` (an `open`, `openat`,
    /// `openat2` or `creat` of it that succeeded). A relative path is
    /// taken from the directory the command started in.
    ///
    /// ```no_run
    /// use std::process::Command;
    ///
    /// let mut cmd = Command::new("cat");
    /// cmd.arg("/etc/hostname");
    /// let trace = probity::Tracer::new().run(cmd)?;
    /// assert!(trace.check_opened("/etc/hostname").is_ok());
    /// # Ok::<(), probity::Error>(())
    /// ```
    pub fn check_opened(&self, path: impl AsRef<Path>) -> Result<(), Violation> {
        self.check_op(Op::Open, path.as_ref(), "opened")
    }

    /// Panics unless [`check_opened`](Trace::check_opened) passes.
    ///
    /// ```no_run
    /// # let mut cmd = std::process::Command::new("cat");
    /// # cmd.arg("/etc/hostname");
    /// let trace = probity::Tracer::new().run(cmd)?;
    /// trace.assert_opened("/etc/hostname");
    /// # Ok::<(), probity::Error>(())
    /// ```
    #[track_caller]
    pub fn assert_opened(&self, path: impl AsRef<Path>) {
        ok_or_panic(self.check_opened(path));
    }

    /// Checks that the process tree created `path`: an open with `O_CREAT`
    /// (or `creat`), a `mkdir`, `mknod`, `link` or `symlink` made it, or a
    /// `rename` gave it that name. With `O_CREAT` the kernel does not say
    /// whether the file existed before.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.check_created("/tmp/out.txt")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_created(&self, path: impl AsRef<Path>) -> Result<(), Violation> {
        self.check_op(Op::Create, path.as_ref(), "created")
    }

    /// Panics unless [`check_created`](Trace::check_created) passes.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.assert_created("/tmp/out.txt");
    /// # Ok::<(), probity::Error>(())
    /// ```
    #[track_caller]
    pub fn assert_created(&self, path: impl AsRef<Path>) {
        ok_or_panic(self.check_created(path));
    }

    /// Checks that the process tree wrote to `path`: a `write`, `pwrite64`,
    /// `writev`, `pwritev*` or `sendfile` that succeeded on a descriptor
    /// opened on it. (Writes through shared memory maps are not syscalls.)
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.check_wrote("/tmp/out.txt")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_wrote(&self, path: impl AsRef<Path>) -> Result<(), Violation> {
        self.check_op(Op::Write, path.as_ref(), "wrote to")
    }

    /// Panics unless [`check_wrote`](Trace::check_wrote) passes.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.assert_wrote("/tmp/out.txt");
    /// # Ok::<(), probity::Error>(())
    /// ```
    #[track_caller]
    pub fn assert_wrote(&self, path: impl AsRef<Path>) {
        ok_or_panic(self.check_wrote(path));
    }

    /// Checks that the process tree deleted `path` (`unlink`, `unlinkat`
    /// or `rmdir` that succeeded).
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.check_deleted("/tmp/old.txt")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_deleted(&self, path: impl AsRef<Path>) -> Result<(), Violation> {
        self.check_op(Op::Delete, path.as_ref(), "deleted")
    }

    /// Panics unless [`check_deleted`](Trace::check_deleted) passes.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.assert_deleted("/tmp/old.txt");
    /// # Ok::<(), probity::Error>(())
    /// ```
    #[track_caller]
    pub fn assert_deleted(&self, path: impl AsRef<Path>) {
        ok_or_panic(self.check_deleted(path));
    }

    /// Checks that the process tree renamed `from` to `to` (`rename`,
    /// `renameat` or `renameat2` that succeeded).
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.check_renamed("/tmp/out.tmp", "/tmp/out.txt")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_renamed(&self, from: impl AsRef<Path>, to: impl AsRef<Path>) -> Result<(), Violation> {
        let idx = Index::new(self);
        let (from, to) = (self.user_path(from.as_ref()), self.user_path(to.as_ref()));
        let expectation = format!("renamed {} to {}", from.shown().unwrap_or_default(), to.shown().unwrap_or_default());
        if (0..self.events.len()).any(|i| op_paths(&idx, i, Op::Rename) == [&from, &to]) {
            return Ok(());
        }
        let v = Violation::new(ViolationKind::Missing, expectation, "no rename that succeeded did that", self);
        Err(near_misses(&idx, v, &[&from, &to]))
    }

    /// Panics unless [`check_renamed`](Trace::check_renamed) passes.
    ///
    /// ```no_run
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.assert_renamed("/tmp/out.tmp", "/tmp/out.txt");
    /// # Ok::<(), probity::Error>(())
    /// ```
    #[track_caller]
    pub fn assert_renamed(&self, from: impl AsRef<Path>, to: impl AsRef<Path>) {
        ok_or_panic(self.check_renamed(from, to));
    }

    /// Checks that every change the process tree made to the file system
    /// is under one of `dirs`: opens for writing, creating or truncating,
    /// and `mkdir`, `mknod`, `unlink`, `rmdir`, `rename` (both names),
    /// `link`, `symlink`, `chmod`, `chown`, `truncate`, `utimes` and
    /// `setxattr`/`removexattr` in all their forms, when they succeeded.
    /// Writes to `/dev/null`, `/dev/zero`, `/dev/full`, `/dev/tty`,
    /// `/dev/stdout` and `/dev/stderr` change nothing and are allowed.
    /// Fails, saying why, when events were lost or a path could not be
    /// resolved.
    ///
    /// ```no_run
    /// let dir = std::env::temp_dir();
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.check_writes_only_under([&dir])?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_writes_only_under<I, P>(&self, dirs: I) -> Result<(), Violation>
    where
        I: IntoIterator<Item = P>,
        P: AsRef<Path>,
    {
        let idx = Index::new(self);
        let dirs: Vec<Resolved> = dirs.into_iter().map(|d| self.user_path(d.as_ref())).collect();
        let shown: Vec<String> = dirs.iter().filter_map(|d| d.shown().map(|s| s.into_owned())).collect();
        let expectation = format!("changes to the file system only under {}", list(&shown));
        let mut bad = Vec::new();
        let mut undecided = Vec::new();
        for i in 0..self.events.len() {
            for r in op_paths(&idx, i, Op::Modify) {
                let inside = match r {
                    Resolved::Abs(p) => {
                        HARMLESS_DEVICES.iter().any(|d| p.as_os_str() == *d)
                            || dirs.iter().any(|d| matches!(d, Resolved::Abs(d) if under(p, d)))
                    }
                    Resolved::Rel(p) => dirs.iter().any(|d| matches!(d, Resolved::Rel(d) if under(p, d))),
                    Resolved::Unknown(_) => false,
                };
                if inside {
                    continue;
                }
                match r {
                    Resolved::Abs(_) => bad.push(i),
                    Resolved::Rel(_) => {
                        undecided.push((i, "its path is relative to a starting directory the trace does not record"))
                    }
                    Resolved::Unknown(why) => undecided.push((i, *why)),
                }
                break;
            }
        }
        if !bad.is_empty() {
            return Err(found(&idx, &expectation, &bad, |_| None));
        }
        absence(&idx, &expectation, Some("syscall"), None, &undecided)
    }

    /// Panics unless [`check_writes_only_under`](Trace::check_writes_only_under) passes.
    ///
    /// ```no_run
    /// let dir = std::env::temp_dir();
    /// # let trace = probity::Tracer::new().run(std::process::Command::new("true"))?;
    /// trace.assert_writes_only_under([&dir]);
    /// # Ok::<(), probity::Error>(())
    /// ```
    #[track_caller]
    pub fn assert_writes_only_under<I, P>(&self, dirs: I)
    where
        I: IntoIterator<Item = P>,
        P: AsRef<Path>,
    {
        ok_or_panic(self.check_writes_only_under(dirs));
    }
}

/// Calls that touched each of `wants` (or, when none did, a file of the
/// same name), listed to help see why an expected change is missing: for
/// a rename, what happened to the old name and to the new one (written in
/// place, say).
pub(super) fn near_misses(idx: &Index<'_>, v: Violation, wants: &[&Resolved]) -> Violation {
    let n = idx.trace.events.len();
    // Calls only: a libc call where a syscall says the same is left out.
    let targets = |i: usize| {
        call(idx, i).and_then(|_| idx.access(i)).map(|a| a.targets().cloned().collect::<Vec<_>>()).unwrap_or_default()
    };
    let shown = |r: &Resolved| r.shown().unwrap_or_default().into_owned();
    let mut listed: Vec<usize> = Vec::new();
    let (mut touched, mut named, mut nothing) = (Vec::new(), Vec::new(), Vec::new());
    for &want in wants {
        let same: Vec<usize> = (0..n).filter(|&i| targets(i).contains(want)).collect();
        let name = want.as_os().map(base_name).unwrap_or_default().to_owned();
        let similar: Vec<usize> = if same.is_empty() && !name.is_empty() {
            (0..n).filter(|&i| targets(i).iter().filter_map(Resolved::as_os).any(|p| base_name(p) == name)).collect()
        } else {
            Vec::new()
        };
        match (same.is_empty(), similar.is_empty()) {
            (false, _) => touched.push(shown(want)),
            (true, false) => {
                nothing.push(format!("nothing touched {}", shown(want)));
                named.push(crate::event::shown(&name).into_owned());
            }
            (true, true) => nothing.push(format!("nothing touched {} nor a file of that name", shown(want))),
        }
        listed.extend(same.iter().chain(&similar));
    }
    listed.sort_unstable();
    listed.dedup();
    if let [_] = wants {
        // One path, which the expectation names.
        return match (listed.is_empty(), touched.is_empty()) {
            (true, _) => v.note("nothing touched that path"),
            (false, false) => v.with_events(idx, &listed, |_| None).titled("the calls that touched it"),
            (false, true) => v
                .with_events(idx, &listed, |_| None)
                .titled("nothing touched that path; the calls on files of the same name"),
        };
    }
    let title = match (touched.is_empty(), named.is_empty()) {
        (false, true) => format!("the calls that touched {}", touched.join(" or ")),
        (true, false) => format!("the calls on files named {}", named.join(" or ")),
        _ => {
            format!("the calls that touched {}, and those on files named {}", touched.join(" or "), named.join(" or "))
        }
    };
    let mut v = if listed.is_empty() { v } else { v.with_events(idx, &listed, |_| None).titled(title) };
    for note in nothing {
        v = v.note(note);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Arg;
    use crate::trace::test_support::{flags, path, sys, trace};

    #[test]
    fn file_changes_need_success() {
        let t = trace(
            vec![
                sys(
                    1,
                    10,
                    10,
                    "openat",
                    vec![
                        Arg::Fd(libc::AT_FDCWD),
                        path("/d/a"),
                        flags(libc::O_WRONLY | libc::O_CREAT, "O_WRONLY|O_CREAT"),
                    ],
                    -13,
                ),
                sys(2, 10, 10, "mkdir", vec![path("/d/sub"), flags(0o755, "0755")], 0),
                sys(
                    3,
                    10,
                    10,
                    "renameat2",
                    vec![
                        Arg::Fd(libc::AT_FDCWD),
                        path("/d/sub"),
                        Arg::Fd(libc::AT_FDCWD),
                        path("/e/sub"),
                        flags(0, "0"),
                    ],
                    0,
                ),
            ],
            Some("/"),
        );
        assert_eq!(t.check_created("/d/a").unwrap_err().kind(), ViolationKind::Missing);
        t.assert_created("/d/sub");
        t.assert_created("/e/sub");
        t.assert_renamed("/d/sub", "/e/sub");
        t.assert_writes_only_under(["/d", "/e"]);
        let v = t.check_writes_only_under(["/d"]).unwrap_err();
        assert_eq!(v.events().count(), 1, "{v}");
    }

    /// A program that writes its file in place instead of writing a
    /// temporary file and renaming it.
    fn written_in_place() -> Trace {
        let fd = |n| Arg::Fd(n);
        trace(
            vec![
                sys(
                    1,
                    10,
                    10,
                    "openat",
                    vec![
                        Arg::Fd(libc::AT_FDCWD),
                        path("/d/db"),
                        flags(libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC, "O_WRONLY|O_CREAT|O_TRUNC"),
                        flags(0o644, "0644"),
                    ],
                    3,
                ),
                sys(2, 10, 10, "write", vec![fd(3), Arg::Bytes { data: b"v2".to_vec(), len: 2 }, Arg::Int(2)], 2),
                sys(3, 10, 10, "fsync", vec![fd(3)], 0),
                sys(4, 10, 10, "close", vec![fd(3)], 0),
                sys(5, 10, 10, "unlink", vec![path("/d/old.tmp")], -2),
            ],
            Some("/"),
        )
    }

    #[test]
    fn a_missing_rename_lists_what_happened_to_both_names() {
        let t = written_in_place();
        let v = t.check_renamed("/d/db.tmp", "/d/db").unwrap_err();
        assert_eq!(v.kind(), ViolationKind::Missing);
        assert_eq!(
            v.stable_text(),
            "expected renamed /d/db.tmp to /d/db
but no rename that succeeded did that
the calls that touched /d/db:
  [1] openat(AT_FDCWD, \"/d/db\", O_WRONLY|O_CREAT|O_TRUNC, 0644) = 3
  [1] write(3</d/db>, \"v2\", 2) = 2
  [1] fsync(3</d/db>) = 0
  [1] close(3</d/db>) = 0
the trace of process 1 around the first one:
  > [1] openat(AT_FDCWD, \"/d/db\", O_WRONLY|O_CREAT|O_TRUNC, 0644) = 3
    [1] write(3</d/db>, \"v2\", 2) = 2
    [1] fsync(3</d/db>) = 0
    [1] close(3</d/db>) = 0
note: nothing touched /d/db.tmp nor a file of that name
"
        );
        let raw = v.to_string();
        assert!(raw.contains("[10] fsync(3</d/db>) = 0 <0.000000>"), "{raw}");

        // A file of the same name elsewhere is the closest there is.
        let v = t.check_renamed("/d/old.tmp", "/e/old").unwrap_err().stable_text();
        assert!(v.contains("the calls that touched /d/old.tmp:\n  [1] unlink(\"/d/old.tmp\")"), "{v}");
        assert!(v.contains("note: nothing touched /e/old nor a file of that name"), "{v}");
        let v = t.check_renamed("/e/db.tmp", "/e/db").unwrap_err().stable_text();
        assert!(v.contains("but no rename that succeeded did that\nthe calls on files named db:\n"), "{v}");
        assert!(
            v.contains("note: nothing touched /e/db.tmp nor a file of that name\nnote: nothing touched /e/db\n"),
            "{v}"
        );
    }
}
