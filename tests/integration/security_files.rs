//! Files probity makes beside untrusted code: the preload library and the
//! preload ring. Each test plays the other local user (`nobody`, through
//! `setpriv`) or the traced program for real: planted libraries whose
//! constructor leaves a marker, links to root-only files, a full
//! `/dev/shm`, a `kill -9` of probity.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use probity::{EventKind, Trace, Tracer, TracerKind};

use crate::support::{dump, require_tracing};

/// Runs `script` with `sh -c` as `nobody`.
fn as_nobody(script: &str) -> Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", script])
        .output()
        .expect("setpriv runs")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A world-writable directory (for markers and nobody's plants), sticky
/// like `/tmp`.
fn shared_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    d
}

/// A library whose constructor creates `marker` in whatever process
/// loads it, built with gcc as `dir/<name>`.
fn constructor_library(dir: &Path, marker: &Path, name: &str) -> PathBuf {
    let src = dir.join(format!("{name}.c"));
    std::fs::write(
        &src,
        format!(
            "#include <fcntl.h>\n#include <unistd.h>\n__attribute__((constructor)) static void planted(void) {{ int fd = open(\"{}\", O_CREAT | O_WRONLY, 0666); if (fd >= 0) close(fd); }}\n",
            marker.display()
        ),
    )
    .unwrap();
    let so = dir.join(name);
    let o = Command::new("gcc").args(["-shared", "-fPIC", "-o"]).arg(&so).arg(&src).output().expect("gcc runs");
    assert!(o.status.success(), "gcc failed: {}", text(&o));
    std::fs::set_permissions(&so, std::fs::Permissions::from_mode(0o755)).unwrap();
    so
}

/// A planted library: its constructor creates `marker`. Padded with zeros
/// (the loader ignores them) to `len` bytes, to pass a size check.
fn evil_library(dir: &Path, marker: &Path, len: u64) -> PathBuf {
    // Such a library really runs its constructor when preloaded, or these
    // tests would prove nothing.
    let probe_marker = dir.join("probe-marker");
    let probe = constructor_library(dir, &probe_marker, "probe.so");
    let ran = Command::new("/bin/true").env("LD_PRELOAD", &probe).status().unwrap();
    assert!(ran.success() && probe_marker.exists(), "a preloaded constructor did not run");
    let so = constructor_library(dir, marker, "evil.so");
    let f = std::fs::OpenOptions::new().write(true).open(&so).unwrap();
    assert!(f.metadata().unwrap().len() < len, "the planted library is larger than probity's");
    f.set_len(len).unwrap();
    so
}

/// The library probity uses, checked, as the tests' process sees it.
fn library() -> PathBuf {
    probity::preload_library().expect("the preload library is usable")
}

/// Traces `sh -c true` with both tracers and checks the library was loaded
/// (a libc event is in the trace) and the planted marker was not made.
fn traced_without_marker(marker: &Path) -> Trace {
    require_tracing();
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", "exec /bin/true"]);
    let t = Tracer::new().with_tracers(&[TracerKind::Ebpf, TracerKind::Preload]).run(cmd).expect("the trace runs");
    assert!(!marker.exists(), "a planted library ran in the traced process");
    assert!(
        t.events.iter().any(|e| matches!(e.kind, EventKind::Libc(_))),
        "probity's library did not load:\n{}",
        dump(&t)
    );
    assert!(t.outcome.uncovered.is_empty(), "{:?}", t.outcome.uncovered);
    t
}

/// Removes a path when dropped (as root, whoever planted it).
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p).or_else(|_| std::fs::remove_dir_all(p));
        }
    }
}

/// A root-only file (in a 0700 directory of root's) a link may point at.
fn root_only_file(dir: &Path) -> PathBuf {
    let private = dir.join("root-only");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let secret = private.join("secret");
    std::fs::write(&secret, "root's own\n").unwrap();
    secret
}

#[test]
fn a_library_planted_at_the_old_predictable_name_never_runs() {
    require_tracing();
    let shared = shared_dir();
    let marker = shared.path().join("pwned");
    let lib = library();
    let name = lib.file_name().unwrap().to_string_lossy().into_owned();
    let evil = evil_library(shared.path(), &marker, std::fs::metadata(&lib).unwrap().len());
    let secret = root_only_file(shared.path());
    // Where the library used to go, and the temporary name it was written
    // through (named by the writer's pid: this process's).
    let tmp = std::env::temp_dir();
    let old = tmp.join(&name);
    let old_tmp = tmp.join(format!("{}.{}.tmp", name.trim_end_matches(".so"), std::process::id()));
    let _cleanup = Cleanup(vec![old.clone(), old_tmp.clone()]);
    let _ = std::fs::remove_file(&old);
    let _ = std::fs::remove_file(&old_tmp);
    let o = as_nobody(&format!(
        "cp {} {} && chmod 755 {} && ln -s {} {}",
        evil.display(),
        old.display(),
        old.display(),
        secret.display(),
        old_tmp.display()
    ));
    assert!(o.status.success(), "planting failed: {}", text(&o));
    assert_eq!(std::fs::metadata(&old).unwrap().uid(), 65534);
    traced_without_marker(&marker);
    assert_ne!(library(), old);
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        "root's own\n",
        "a root-only file was written through a link"
    );
}

#[test]
fn another_user_cannot_write_where_the_library_lives() {
    require_tracing();
    let shared = shared_dir();
    let marker = shared.path().join("pwned");
    let lib = library();
    let dir = lib.parent().unwrap();
    let meta = std::fs::symlink_metadata(dir).unwrap();
    assert!(meta.is_dir() && meta.uid() == 0 && meta.mode() & 0o7777 == 0o755, "{}: {meta:?}", dir.display());
    let file = std::fs::symlink_metadata(&lib).unwrap();
    assert!(file.is_file() && file.uid() == 0 && file.mode() & 0o7777 == 0o644, "{}: {file:?}", lib.display());
    let evil = evil_library(shared.path(), &marker, file.len());
    // Each attempt must fail: overwrite, replace, add a link beside it.
    for attempt in [
        format!("cp {} {}", evil.display(), lib.display()),
        format!("cp {} {}/planted.so", evil.display(), dir.display()),
        format!("ln -sf {} {}.tmp", evil.display(), lib.display()),
        format!("mv {} {}", evil.display(), lib.display()),
    ] {
        let o = as_nobody(&attempt);
        assert!(!o.status.success(), "nobody managed `{attempt}`: {}", text(&o));
    }
    traced_without_marker(&marker);
}

#[test]
fn a_library_modified_after_extraction_is_replaced_before_use() {
    let shared = shared_dir();
    let marker = shared.path().join("pwned");
    let genuine = library();
    let evil = evil_library(shared.path(), &marker, std::fs::metadata(&genuine).unwrap().len());
    // In a private /run, so tests running beside this one never see the
    // library modified. Same owner (root), same size; then a link in its
    // place; then a copy others may write.
    let lib = Path::new("/run/probity/lib").join(genuine.file_name().unwrap());
    let probity = env!("CARGO_BIN_EXE_probity");
    let first = format!("mount -t tmpfs -o mode=0755 tmpfs /run && {probity} run --tracers preload -- /bin/true 2>/dev/null && cmp {} {}", genuine.display(), lib.display());
    for change in [
        format!("cp {} {l} && chmod 644 {l}", evil.display(), l = lib.display()),
        format!("rm {l} && ln -s {} {l}", evil.display(), l = lib.display()),
        format!("chmod 666 {}", lib.display()),
    ] {
        let (status, o) = probity_in_mount_ns(
            &format!("{first} && {change}"),
            &[],
            "--tracers preload -- /bin/sh -c 'exec /bin/true'",
            &format!("cmp {} {l} && stat -c 'mode=%a type=%F' {l}", genuine.display(), l = lib.display()),
        );
        assert_eq!(status, Some(0), "after `{change}`: {}", text(&o));
        assert!(!marker.exists(), "after `{change}`, the planted library ran");
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("mode=644 type=regular file"),
            "after `{change}`: {}",
            text(&o)
        );
    }
}

/// Runs `probity run ARGS` in a private mount namespace after `setup`
/// (shell commands), then prints `status=<probity's exit status>` and
/// runs `after`.
fn probity_in_mount_ns(setup: &str, env: &[(&str, &Path)], args: &str, after: &str) -> (Option<i32>, Output) {
    require_tracing();
    let script =
        format!("set -e; {setup}; set +e; {} run {args}; echo status=$?; {after}", env!("CARGO_BIN_EXE_probity"));
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", &script]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().expect("unshare runs");
    let out = String::from_utf8_lossy(&o.stdout);
    let status = out.lines().find_map(|l| l.strip_prefix("status=")).and_then(|s| s.parse().ok());
    (status, o)
}

/// Makes root's usual place (`/run/probity/lib`) unusable, so probity falls
/// back to `$TMPDIR/probity-0`: `/run` writable by everyone.
const HOSTILE_RUN: &str = "mount -t tmpfs -o mode=0777 tmpfs /run";

#[test]
fn a_fallback_directory_planted_by_another_user_is_refused() {
    let shared = shared_dir();
    let marker = shared.path().join("pwned");
    let len = std::fs::metadata(library()).unwrap().len();
    let name = library().file_name().unwrap().to_string_lossy().into_owned();
    let evil = evil_library(shared.path(), &marker, len);
    let secret_dir = root_only_file(shared.path()).parent().unwrap().to_path_buf();
    let fallback = shared.path().join("probity-0");
    let run = "--tracers preload -- /bin/sh -c true";

    // Nobody's own directory, with a planted library under the right name.
    let o = as_nobody(&format!(
        "mkdir -m 777 {f} && cp {} {f}/{name} && chmod 755 {f}/{name}",
        evil.display(),
        f = fallback.display()
    ));
    assert!(o.status.success(), "{}", text(&o));
    let (status, o) = probity_in_mount_ns(HOSTILE_RUN, &[("TMPDIR", shared.path())], run, "");
    assert_eq!(status, Some(125), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("safe directory for the preload library") && err.contains("belongs to uid 65534"), "{err}");
    assert!(!marker.exists(), "the planted library ran");

    // A link to a directory of root's.
    std::fs::remove_dir_all(&fallback).unwrap();
    let o = as_nobody(&format!("ln -s {} {}", secret_dir.display(), fallback.display()));
    assert!(o.status.success(), "{}", text(&o));
    let (status, o) = probity_in_mount_ns(HOSTILE_RUN, &[("TMPDIR", shared.path())], run, "");
    assert_eq!(status, Some(125), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not a directory (a link?)"), "{}", text(&o));
    let inside: Vec<_> = std::fs::read_dir(&secret_dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(inside, vec![std::ffi::OsString::from("secret")], "probity wrote through the link");

    // Nothing planted: root makes the directory its own, 0755.
    std::fs::remove_file(&fallback).unwrap();
    let (status, o) = probity_in_mount_ns(HOSTILE_RUN, &[("TMPDIR", shared.path())], run, "");
    assert_eq!(status, Some(0), "{}", text(&o));
    let meta = std::fs::symlink_metadata(&fallback).unwrap();
    assert!(meta.is_dir() && meta.uid() == 0 && meta.mode() & 0o7777 == 0o755, "{meta:?}");
    assert!(std::fs::read(fallback.join(&name)).unwrap() == std::fs::read(library()).unwrap());
}

#[test]
fn a_full_dev_shm_is_a_clear_error_at_start_not_a_signal() {
    let shared = shared_dir();
    let marker = shared.path().join("ran");
    let (status, o) = probity_in_mount_ns(
        "mount -t tmpfs -o size=1m tmpfs /dev/shm",
        &[],
        &format!("-- /bin/sh -c 'touch {}'", marker.display()),
        "ls -A /dev/shm",
    );
    // The shell saw an exit status, not a signal (that would be 128+).
    assert_eq!(status, Some(125), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("failed to reserve 16.0 MiB for the preload ring in /dev/shm (1.0 MiB free)")
            && err.contains("with_preload_ring_bytes")
            && err.contains("No space left on device"),
        "{err}"
    );
    assert!(!marker.exists(), "the command ran without its tracer");
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.lines().skip_while(|l| !l.starts_with("status=")).nth(1), None, "a ring was left behind: {out}");
}

/// The inode of this process's pid namespace, as ring names carry it.
fn pidns() -> u64 {
    std::fs::metadata("/proc/self/ns/pid").unwrap().ino()
}

/// The rings in /dev/shm made by process `pid`.
fn rings_of(pid: u32) -> Vec<PathBuf> {
    let prefix = format!("probity-ring-{}-{pid}-", pidns());
    std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

/// Whether `pid` is still running (a zombie waiting for a reaper is not).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')))
        .unwrap_or(false)
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The first child of `pid`.
fn child_of(pid: u32) -> Option<u32> {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

#[test]
fn a_killed_probity_takes_its_tree_along_and_its_ring_is_reclaimed() {
    require_tracing();
    // The root (a sleep, once the shell execs) and a background sleep.
    let mut probity = Command::new(env!("CARGO_BIN_EXE_probity"))
        .args(["run", "--", "/bin/sh", "-c", "sleep 1000 & exec sleep 1000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = probity.id();
    let root = wait_for("the traced root", || child_of(pid));
    let background = wait_for("the background sleep", || child_of(root));
    let ring = wait_for("the ring", || rings_of(pid).pop());
    let in_group = std::fs::read_to_string(format!("/proc/{background}/cgroup")).unwrap();
    probity.kill().unwrap();
    probity.wait().unwrap();
    wait_for("the root to die with probity", || (!running(root)).then_some(()));
    // The next start of any probity process of this user removes the ring
    // (one running beside this test may have done so already) and kills
    // what is left of the tree, where the kernel lets it group the tree.
    let t = Tracer::new().with_tracers(&[TracerKind::Preload]).run(Command::new("true")).unwrap();
    assert_eq!(t.outcome.status, probity::ExitStatus::Code(0));
    assert!(!ring.exists(), "{} outlived its session", ring.display());
    let grouped = in_group.lines().any(|l| l.starts_with("0::") && l.contains("/probity-tree-"));
    assert!(grouped, "this machine has cgroup v2 with cgroup.kill, yet the tree was not grouped: {in_group}");
    wait_for("the background sleep to be killed", || (!running(background)).then_some(()));
}

#[test]
fn files_planted_at_ring_names_neither_stop_probity_nor_get_followed() {
    require_tracing();
    let shared = shared_dir();
    let secret = root_only_file(shared.path());
    let me = std::process::id();
    let start = std::fs::read_to_string("/proc/self/stat").unwrap();
    let start: u64 = start[start.rfind(')').unwrap() + 1..].split_whitespace().nth(19).unwrap().parse().unwrap();
    let dead = {
        let mut c = Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    };
    let ns = pidns();
    // Old-style predictable names for this process, names with this
    // process's prefix, and names of a dead probity process: files and
    // links to a root-only file, all nobody's.
    let mut planted = Vec::new();
    for n in 0..32 {
        planted.push(format!("/dev/shm/probity-ring-{me}-{n}"));
        planted.push(format!("/dev/shm/probity-ring-{ns}-{me}-{start}-{n:016x}"));
    }
    let dead_file = format!("/dev/shm/probity-ring-{ns}-{dead}-1-00000000000000aa");
    let dead_link = format!("/dev/shm/probity-ring-{ns}-{dead}-1-00000000000000bb");
    let _cleanup = Cleanup(planted.iter().chain([&dead_file, &dead_link]).map(PathBuf::from).collect());
    let script = planted.iter().map(|p| format!("ln -s {} {p}", secret.display())).collect::<Vec<_>>().join(" && ");
    let o = as_nobody(&format!("{script} && : > {dead_file} && ln -s {} {dead_link}", secret.display()));
    assert!(o.status.success(), "{}", text(&o));
    // The dead owner's files belong to a user no other test runs probity
    // as: a probity of nobody's (other tests run one) may rightly reclaim
    // nobody's own rings of dead processes.
    let o = Command::new("chown").args(["-h", "65533:65533", &dead_file, &dead_link]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    for _ in 0..3 {
        let t = Tracer::new().with_tracers(&[TracerKind::Preload]).run(Command::new("true")).unwrap();
        assert_eq!(t.outcome.status, probity::ExitStatus::Code(0));
    }
    traced_without_marker(&shared.path().join("no-marker"));
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        "root's own\n",
        "a root-only file was written through a link"
    );
    for (p, uid) in planted.iter().map(|p| (p, 65534)).chain([(&dead_file, 65533), (&dead_link, 65533)]) {
        let meta = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("another user's {p} was removed: {e}"));
        assert_eq!(meta.uid(), uid);
    }
}
