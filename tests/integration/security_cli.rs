//! Attacks on the files `probity run -o` and `--json` write, tried for
//! real: another user (`nobody`, through `setpriv`) plants links, files and
//! pipes in a sticky directory, and root probity must neither write
//! through them nor leak a trace to them.

use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::require_tracing;

const SECRET: &str = "root-only secret\n";

fn probity() -> Command {
    Command::new(env!("CARGO_BIN_EXE_probity"))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `args` as `nobody`.
fn as_nobody(args: &[&str]) {
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(args)
        .output()
        .expect("setpriv runs");
    assert!(o.status.success(), "as nobody {args:?}: {}", stderr(&o));
}

/// A sticky, world-writable directory like `/tmp` (protected_symlinks is
/// off here), and a root-only file outside it.
struct Sticky {
    dir: tempfile::TempDir,
    _secret_dir: tempfile::TempDir,
    secret: PathBuf,
}

impl Sticky {
    fn new() -> Sticky {
        require_tracing();
        let dir = tempfile::Builder::new().prefix("probity-sticky").tempdir_in("/tmp").unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        let secret_dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(secret_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let secret = secret_dir.path().join("shadow");
        std::fs::write(&secret, SECRET).unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        Sticky { dir, _secret_dir: secret_dir, secret }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn assert_secret_untouched(&self) {
        assert_eq!(std::fs::read_to_string(&self.secret).unwrap(), SECRET, "the root-only file was overwritten");
        let m = std::fs::metadata(&self.secret).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o600);
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `probity run OPTION PATH -- touch MARKER`, which must be refused with
/// 125, saying one of `why`, before the command runs.
fn assert_refused(option: &str, path: &Path, why: &[&str]) {
    let ran = tempfile::tempdir().unwrap();
    let marker = ran.path().join("ran");
    let o = probity().args(["run", option, s(path), "--", "touch", s(&marker)]).output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(125), "{option} {}: {err}", path.display());
    assert!(
        err.contains("cannot write the trace to") && why.iter().any(|w| err.contains(w)),
        "{option} {}: {err}",
        path.display()
    );
    assert!(!marker.exists(), "the command ran although its trace could not be written");
}

#[test]
fn another_users_symlink_in_a_sticky_dir_is_not_followed() {
    let t = Sticky::new();
    let link = t.path("trace.txt");
    as_nobody(&["ln", "-s", s(&t.secret), s(&link)]);
    for option in ["-o", "--json"] {
        assert_refused(option, &link, &["symbolic link owned by uid 65534"]);
        t.assert_secret_untouched();
    }
    // A link to a file still to be created makes nothing either.
    let dangling = t.path("dangling");
    let target = t._secret_dir.path().join("planted");
    as_nobody(&["ln", "-s", s(&target), s(&dangling)]);
    assert_refused("-o", &dangling, &["symbolic link owned by uid 65534"]);
    assert!(!target.exists(), "a file was created through another user's link");
}

#[test]
fn another_users_symlink_as_a_directory_on_the_way_is_not_followed() {
    let t = Sticky::new();
    // `-o /tmp/d/shadow`, where nobody made /tmp/d a link to the secret's
    // directory.
    let dir_link = t.path("d");
    as_nobody(&["ln", "-s", s(t._secret_dir.path()), s(&dir_link)]);
    assert_refused("-o", &dir_link.join("shadow"), &["symbolic link owned by uid 65534"]);
    t.assert_secret_untouched();
    // A chain: the caller's own link to another user's link.
    let theirs = t.path("theirs");
    as_nobody(&["ln", "-s", s(&t.secret), s(&theirs)]);
    let mine = t.path("mine");
    std::os::unix::fs::symlink(&theirs, &mine).unwrap();
    assert_refused("--json", &mine, &["symbolic link owned by uid 65534"]);
    t.assert_secret_untouched();
}

#[test]
fn another_users_file_and_a_hard_link_to_a_root_file_are_not_truncated() {
    let t = Sticky::new();
    let theirs = t.path("theirs.txt");
    as_nobody(&["sh", "-c", &format!("echo nobody\\'s data > {}", s(&theirs))]);
    assert_refused("-o", &theirs, &["belongs to uid 65534"]);
    assert_eq!(std::fs::read_to_string(&theirs).unwrap(), "nobody's data\n");
    // fs.protected_hardlinks stops nobody from linking root's file here;
    // where it is off, such a link is refused all the same.
    let hard = t.path("hard.txt");
    std::fs::hard_link(&t.secret, &hard).unwrap();
    assert_refused("--json", &hard, &["2 hard links"]);
    t.assert_secret_untouched();
}

#[test]
fn another_users_named_pipe_gets_no_trace() {
    let t = Sticky::new();
    let fifo = t.path("fifo");
    let leaked = t.path("leaked");
    as_nobody(&["mkfifo", s(&fifo)]);
    // nobody waits at the pipe for a trace full of root's read buffers.
    let mut reader = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c"])
        .arg(format!("cat {} > {}", s(&fifo), s(&leaked)))
        .spawn()
        .unwrap();
    // The reader may or may not have opened the pipe yet: refused either way.
    std::thread::sleep(Duration::from_millis(200));
    assert_refused("-o", &fifo, &["named pipe", "No such device or address"]);
    // Unblock a reader still waiting to open, then read what it got.
    let deadline = Instant::now() + Duration::from_secs(5);
    while reader.try_wait().unwrap().is_none() {
        let _ = std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(&fifo);
        assert!(Instant::now() < deadline, "the pipe's reader never ended");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(std::fs::read(&leaked).unwrap(), b"", "the trace went to another user's pipe");
}

#[test]
fn trace_files_are_created_0600_whatever_the_umask() {
    let t = Sticky::new();
    let text = t.path("trace.txt");
    let json = t.path("trace.jsonl");
    let mut cmd = probity();
    cmd.args(["run", "-o", s(&text), "--json", s(&json), "--", "cat", s(&t.secret)]);
    // SAFETY: umask is async-signal-safe and touches no memory.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    let o = cmd.output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for f in [&text, &json] {
        let m = std::fs::symlink_metadata(f).unwrap();
        assert!(m.file_type().is_file());
        assert_eq!(m.mode() & 0o7777, 0o600, "{} is {:o}", f.display(), m.mode() & 0o7777);
        // The buffers it holds are why.
        assert!(std::fs::read_to_string(f).unwrap().contains("root-only secret"), "{}", f.display());
    }
    // The caller's own file is truncated and rewritten, not refused.
    std::fs::write(&text, "old content that is much longer than nothing\n".repeat(1000)).unwrap();
    let o = probity().args(["run", "-o", s(&text), "--", "true"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let again = std::fs::read_to_string(&text).unwrap();
    assert!(!again.contains("old content") && again.contains("execve("), "{again}");
}

#[test]
fn the_callers_own_links_and_standard_streams_are_written() {
    let t = Sticky::new();
    // A link of the caller's (root's) own, to a file still to be created.
    let target = t.path("real.jsonl");
    let link = t.path("link.jsonl");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let o = probity().args(["run", "-o", "/dev/null", "--json", s(&link), "--", "true"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(std::fs::metadata(&target).unwrap().mode() & 0o7777, 0o600);
    assert!(std::fs::read_to_string(&target).unwrap().contains(r#""kind":"summary""#));
    // /dev/stdout (root's link to /proc/self/fd/1, a pipe here).
    let o = probity().args(["run", "-o", "/dev/stdout", "--", "true"]).stderr(Stdio::piped()).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("execve(\"/usr/bin/true\""), "{}", stderr(&o));
    // /dev/stdout when it is a file of another user's (a redirection made
    // before privileges were taken): written where the redirection points.
    let theirs = t.path("redirected");
    as_nobody(&["sh", "-c", &format!("echo before > {}", s(&theirs))]);
    let out = std::fs::OpenOptions::new().append(true).open(&theirs).unwrap();
    let o = probity().args(["run", "-o", "/dev/stdout", "--", "true"]).stdout(out).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let written = std::fs::read_to_string(&theirs).unwrap();
    assert!(written.starts_with("before\n") && written.contains("execve("), "{written}");
    // Another device is not a trace file, nor is a kernel setting.
    assert_refused("-o", Path::new("/dev/full"), &["character device"]);
    let printk = std::fs::read_to_string("/proc/sys/kernel/printk").unwrap();
    assert_refused("--json", Path::new("/proc/sys/kernel/printk"), &["procfs", "kernel settings"]);
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/printk").unwrap(), printk);
}
