//! probity with capabilities but not root must not be a confused deputy:
//! run as `nobody` with `cap_bpf,cap_perfmon+ep`, it traces programs that
//! gain privilege (setuid, setgid, file capabilities) and read a secret
//! only root may read, and neither the secret's bytes nor its path may
//! reach the text trace, the JSON trace or probity's messages. Each
//! privileged process is listed as not covered by the eBPF tracer, so
//! "did not happen" checks over it fail. The same run by real root shows
//! everything.
//!
//! Exit status of such a run: the command's own (the setuid program's
//! status reaches its parent as usual); a network gate over it fails
//! (121), since the gate cannot see into the excluded process.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use probity::{Trace, TracerKind};

use crate::support::require_tracing;

/// What nobody runs as: `setpriv` drops to uid and gid 65534 with no
/// supplementary groups; the file capabilities of the probity copy give
/// it CAP_BPF and CAP_PERFMON at its exec, as `setcap` on an installed
/// probity would.
const NOBODY: [&str; 4] = ["--reuid=65534", "--regid=65534", "--clear-groups", "--"];

/// A directory with a capability-carrying probity, a root-only secret,
/// and a checksum list naming it (world-readable, as a program's own
/// configuration would be): `sha256sum --status -c LIST` exits 0 only when
/// it could read the secret, and prints nothing.
struct Lab {
    dir: tempfile::TempDir,
    probity: PathBuf,
    /// Where nobody may write the traces.
    out: PathBuf,
    secret: String,
    secret_path: PathBuf,
    sums: PathBuf,
}

impl Lab {
    fn new() -> Lab {
        require_tracing();
        assert!(nix::unistd::getuid().is_root(), "these tests set file capabilities and setuid bits: run them as root");
        // In the build's temporary directory (`/tmp`, not mounted nosuid
        // here): the setuid bits and file capabilities take effect.
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let probity = dir.path().join("probity");
        std::fs::copy(env!("CARGO_BIN_EXE_probity"), &probity).unwrap();
        std::fs::set_permissions(&probity, std::fs::Permissions::from_mode(0o755)).unwrap();
        sh(Command::new("setcap").arg("cap_bpf,cap_perfmon+ep").arg(&probity));
        crate::support::wait_until_runs(&probity);
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        nix::unistd::chown(&out, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let secret = format!("PROBITY-SECRET-{nanos}-{}", std::process::id());
        let secret_path = dir.path().join(format!("probity-secret-{nanos}.key"));
        std::fs::write(&secret_path, format!("{secret}\n")).unwrap();
        std::fs::set_permissions(&secret_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let hash = Command::new("sha256sum").arg(&secret_path).output().unwrap();
        assert!(hash.status.success());
        let sums = dir.path().join("sums.txt");
        std::fs::write(&sums, &hash.stdout).unwrap();
        std::fs::set_permissions(&sums, std::fs::Permissions::from_mode(0o644)).unwrap();
        Lab { dir, probity, out, secret, secret_path, sums }
    }

    /// A root-owned copy of `program` in the lab, made privileged by `how`.
    fn copy(&self, program: &str, name: &str, how: impl FnOnce(&Path)) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::copy(program, &p).unwrap();
        how(&p);
        crate::support::wait_until_runs(&p);
        p
    }

    /// `probity run` as nobody with a full text trace (4095-byte buffers)
    /// and a JSON one; returns the output, the text and the JSON.
    fn run_as_nobody(&self, extra: &[&str], cmd: &[&str]) -> (Output, String, String) {
        let text = self.out.join("trace.txt");
        let json = self.out.join("trace.jsonl");
        let _ = std::fs::remove_file(&text);
        let _ = std::fs::remove_file(&json);
        let o = Command::new("setpriv")
            .args(NOBODY)
            .arg(&self.probity)
            .args(["run", "-s", "4095", "-o"])
            .arg(&text)
            .arg("--json")
            .arg(&json)
            .args(extra)
            .arg("--")
            .args(cmd)
            .current_dir(&self.out)
            .output()
            .unwrap();
        let text = std::fs::read_to_string(&text).unwrap_or_default();
        let json = std::fs::read_to_string(&json).unwrap_or_default();
        (o, text, json)
    }

    /// Fails if the secret's bytes or its file name appear anywhere in
    /// what probity gave the caller.
    fn assert_nothing_leaked(&self, o: &Output, text: &str, json: &str) {
        let name = self.secret_path.file_name().unwrap().to_string_lossy().into_owned();
        let stderr = String::from_utf8_lossy(&o.stderr);
        for (what, s) in [("text trace", text), ("JSON trace", json), ("probity's stderr", &*stderr)] {
            assert!(!s.contains(&self.secret), "the secret's bytes are in the {what}:\n{s}");
            assert!(!s.contains(&name), "the secret's file name is in the {what}:\n{s}");
        }
        // Not even a piece of it, in case a buffer was cut short.
        assert!(!json.contains("PROBITY-SECRET") && !text.contains("PROBITY-SECRET"), "{text}");
    }

    /// Runs `cmd` as nobody, where a privileged `program` reads the
    /// secret: checks that it did (the attack is real, the command exits
    /// 0), that nothing of it reached the caller, and that the process
    /// left the trace at that exec for reason `why`. Returns the run's
    /// text trace, the trace and that process's pid.
    fn run_excluded(&self, tracers: &[&str], cmd: &[&str], program: &Path, why: &str) -> (String, Trace, u32) {
        let (o, text, json) = self.run_as_nobody(tracers, cmd);
        assert_eq!(
            o.status.code(),
            Some(0),
            "the privileged program must have read the secret: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        self.assert_nothing_leaked(&o, &text, &json);
        let trace = Trace::from_jsonl(json.as_bytes()).unwrap();
        let pid = assert_left_at_exec(&trace, program, why);
        (text, trace, pid)
    }
}

fn sh(cmd: &mut Command) {
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&o.stderr));
}

fn setuid_root(p: &Path) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o4755)).unwrap();
}

/// The processes the eBPF tracer did not cover, with their reasons.
fn ebpf_uncovered(trace: &Trace) -> Vec<(u32, String, String)> {
    trace
        .outcome
        .uncovered
        .iter()
        .filter(|u| u.tracer == TracerKind::Ebpf)
        .map(|u| (u.pid, u.program.clone(), u.reason.clone()))
        .collect()
}

/// Checks that the one process that exec'd `program` left the trace at
/// that exec: its exec is the last event of that pid, and it is listed as
/// uncovered with a reason starting with `why`.
fn assert_left_at_exec(trace: &Trace, program: &Path, why: &str) -> u32 {
    let program = program.to_string_lossy();
    let uncovered = ebpf_uncovered(trace);
    let [(pid, prog, reason)] = uncovered.as_slice() else {
        panic!("expected one process uncovered by ebpf, got {uncovered:?}")
    };
    assert_eq!(prog, &*program);
    assert!(reason.starts_with(why), "{reason}");
    assert!(reason.contains("more privilege than probity's caller (uid 65534, gid 65534)"), "{reason}");
    let events: Vec<&probity::Event> = trace.events.iter().filter(|e| e.pid == *pid).collect();
    let at = events
        .iter()
        .position(|e| matches!(&e.kind, probity::EventKind::Exec(x) if x.filename == *program))
        .unwrap_or_else(|| panic!("no exec of {program} by {pid}"));
    let after: Vec<String> = events[at + 1..].iter().map(|e| probity::text::event_line(e)).collect();
    assert!(after.is_empty(), "events of {pid} after its privileged exec:\n{}", after.join("\n"));
    *pid
}

/// How many exec events match `f`.
fn exec_count(trace: &Trace, f: impl Fn(&probity::Event) -> bool) -> usize {
    trace.events.iter().filter(|e| matches!(e.kind, probity::EventKind::Exec(_)) && f(e)).count()
}

#[test]
fn a_setuid_program_traced_by_nobody_with_capabilities_shows_nothing_of_the_secret() {
    let lab = Lab::new();
    let sum = lab.copy("/usr/bin/sha256sum", "suid-sum", setuid_root);
    let script = format!("{} --status -c {}; echo status=$?", sum.display(), lab.sums.display());
    let (o, text, json) = lab.run_as_nobody(&[], &["sh", "-c", &script]);
    // The setuid program did read the secret (its checksum matched): the
    // attack is real. probity exits with the command's status.
    assert_eq!(String::from_utf8_lossy(&o.stdout), "status=0\n");
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    lab.assert_nothing_leaked(&o, &text, &json);
    let trace = Trace::from_jsonl(json.as_bytes()).unwrap();
    let pid = assert_left_at_exec(&trace, &sum, "setuid (runs as uid 0)");
    // The shell around it is traced as usual.
    assert!(exec_count(&trace, |e| e.pid != pid) >= 1, "{text}");
    assert!(text.contains("write(1, \"status=0\\n\", 9) = 9"), "{text}");
    assert!(
        text.contains(&format!("probity: process {pid} ({}) is not traced: setuid (runs as uid 0)", sum.display())),
        "{text}"
    );
    assert!(text.contains("probity: not running as root (uid 65534)"), "{text}");
    // "It never read the secret" cannot be shown: the check fails.
    let v = trace.check_never_execs(["/usr/bin/cat"]).expect_err("an absence check over an excluded process must fail");
    assert!(v.to_string().contains(&format!("process {pid}")), "{v}");
}

#[test]
fn children_of_a_setuid_program_are_never_traced() {
    let lab = Lab::new();
    // xargs, setuid root, forks and execs an ordinary sha256sum, which
    // inherits root's effective uid and reads the secret.
    let xargs = lab.copy("/usr/bin/xargs", "suid-xargs", setuid_root);
    let list = lab.dir.path().join("args.txt");
    std::fs::write(&list, format!("{}\n", lab.sums.display())).unwrap();
    let cmd = [xargs.to_str().unwrap(), "-a", list.to_str().unwrap(), "/usr/bin/sha256sum", "--status", "-c"];
    let (text, trace, _) = lab.run_excluded(&[], &cmd, &xargs, "setuid (runs as uid 0)");
    assert!(!text.contains("/usr/bin/sha256sum\" ["), "the child's exec is in the trace:\n{text}");
    assert_eq!(exec_count(&trace, |_| true), 1, "{text}");
}

#[test]
fn libc_records_of_a_process_that_became_root_are_dropped() {
    let lab = Lab::new();
    // setuid-root setpriv makes every id 0 and runs `env`, which puts
    // back the LD_PRELOAD the loader stripped (the shell before it passes
    // its own on the command line), then execs an ordinary sha256sum: no
    // exec changes credentials any more, so the loader honours LD_PRELOAD,
    // and probity's library runs inside a root process, in the pid that
    // left the trace, writing its libc calls (the secret's path among
    // them) to the caller's ring.
    let setpriv = lab.copy("/usr/bin/setpriv", "suid-setpriv", setuid_root);
    let script = format!(
        "exec {} --reuid=0 --regid=0 --clear-groups -- /usr/bin/env LD_PRELOAD=\"$LD_PRELOAD\" /usr/bin/sha256sum --status -c {}",
        setpriv.display(),
        lab.sums.display()
    );
    lab.run_excluded(&[], &["sh", "-c", script.as_str()], &setpriv, "setuid (runs as uid 0)");

    // The same from a child of that root process: a pid the kernel never
    // reported at all.
    let script = format!(
        "exec {} --reuid=0 --regid=0 --clear-groups -- /usr/bin/env LD_PRELOAD=\"$LD_PRELOAD\" /bin/sh -c '/usr/bin/sha256sum --status -c {}; exit $?'",
        setpriv.display(),
        lab.sums.display()
    );
    lab.run_excluded(&[], &["sh", "-c", script.as_str()], &setpriv, "setuid (runs as uid 0)");
}

#[test]
fn a_network_gate_over_an_excluded_process_fails_closed() {
    let lab = Lab::new();
    let sum = lab.copy("/usr/bin/sha256sum", "suid-sum", setuid_root);
    let (o, text, json) =
        lab.run_as_nobody(&["--deny-network"], &[sum.to_str().unwrap(), "--status", "-c", lab.sums.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(121), "{}\n{text}", String::from_utf8_lossy(&o.stderr));
    lab.assert_nothing_leaked(&o, &text, &json);
}

#[test]
fn a_setgid_program_is_excluded() {
    let lab = Lab::new();
    sh(Command::new("groupadd").args(["-f", "probity-secret"]));
    let group = nix::unistd::Group::from_name("probity-secret").unwrap().expect("the group was just added");
    nix::unistd::chown(&lab.secret_path, None, Some(group.gid)).unwrap();
    std::fs::set_permissions(&lab.secret_path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let sum = lab.copy("/usr/bin/sha256sum", "sgid-sum", |p| {
        nix::unistd::chown(p, None, Some(group.gid)).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o2755)).unwrap();
    });
    let cmd = [sum.to_str().unwrap(), "--status", "-c", lab.sums.to_str().unwrap()];
    lab.run_excluded(&[], &cmd, &sum, &format!("setgid (runs as gid {})", group.gid));
}

#[test]
fn a_program_with_file_capabilities_is_excluded() {
    let lab = Lab::new();
    // CAP_DAC_READ_SEARCH reads any file: the 0600 root secret too.
    let sum =
        lab.copy("/usr/bin/sha256sum", "cap-sum", |p| sh(Command::new("setcap").arg("cap_dac_read_search+ep").arg(p)));
    // With both tracers (events merged at the end), and with the eBPF
    // tracer alone (events handed over as they are decoded).
    for tracers in [&[][..], &["--tracers", "ebpf"][..]] {
        let cmd = [sum.to_str().unwrap(), "--status", "-c", lab.sums.to_str().unwrap()];
        lab.run_excluded(tracers, &cmd, &sum, "file capabilities (security.capability)");
    }
}

#[test]
fn an_ordinary_program_run_by_nobody_is_traced_in_full() {
    let lab = Lab::new();
    let readable = lab.out.join("mine.txt");
    std::fs::write(&readable, "nobody's own words\n").unwrap();
    nix::unistd::chown(&readable, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
    let (o, text, json) = lab.run_as_nobody(&[], &["cat", readable.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.stdout, b"nobody's own words\n");
    let trace = Trace::from_jsonl(json.as_bytes()).unwrap();
    assert!(ebpf_uncovered(&trace).is_empty(), "{:?}", trace.outcome.uncovered);
    assert!(text.contains("read(3, \"nobody's own words\\n\", "), "{text}");
    trace.assert_never_execs(["/usr/bin/sha256sum"]);
}

#[test]
fn real_root_still_sees_everything() {
    let lab = Lab::new();
    let sum = lab.copy("/usr/bin/sha256sum", "suid-sum", setuid_root);
    let json = lab.out.join("root.jsonl");
    let o = Command::new(&lab.probity)
        .args(["run", "-s", "4095", "--json"])
        .arg(&json)
        .args(["--", sum.to_str().unwrap(), "--status", "-c", lab.sums.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains(&lab.secret), "root's trace shows the buffers it read:\n{stderr}");
    assert!(!stderr.contains("not running as root"), "{stderr}");
    let trace = Trace::load(&json).unwrap();
    assert!(ebpf_uncovered(&trace).is_empty(), "{:?}", trace.outcome.uncovered);
    assert!(trace.syscalls().any(|(_, s)| s.name == "openat" && format!("{:?}", s.args).contains("probity-secret")));
}

#[test]
fn a_setuid_root_probity_run_by_nobody_counts_as_nobody() {
    let lab = Lab::new();
    // Effective uid 0 over a real uid of 65534: the command inherits
    // root's effective uid, so it runs with more privilege than nobody.
    let bin = lab.copy(lab.probity.to_str().unwrap(), "probity-suid", setuid_root);
    let json = lab.out.join("suid.jsonl");
    let o = Command::new("setpriv")
        .args(NOBODY)
        .arg(&bin)
        .args(["run", "-s", "4095", "--json"])
        .arg(&json)
        .args(["--", "sha256sum", "--status", "-c", lab.sums.to_str().unwrap()])
        .current_dir(&lab.out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let json = std::fs::read_to_string(&json).unwrap();
    lab.assert_nothing_leaked(&o, "", &json);
    let trace = Trace::from_jsonl(json.as_bytes()).unwrap();
    let uncovered = ebpf_uncovered(&trace);
    assert_eq!(uncovered.len(), 1, "{uncovered:?}");
    assert_eq!(uncovered[0].0, trace.outcome.root_pid);
}

#[test]
fn doctor_recommends_root_not_file_capabilities() {
    let lab = Lab::new();
    // With capabilities but not root: it works, and says what is left out.
    let o = Command::new("setpriv").args(NOBODY).arg(&lab.probity).arg("doctor").output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("ok   privilege     not root (uid 65534)"), "{out}");
    assert!(out.contains("are left out of the trace"), "{out}");
    assert!(out.contains("note: to trace everything, run probity as root"), "{out}");
    assert!(
        out.contains("ok   attach        to processes of uid 65534 and gid 65534 without capabilities, dumpable, as ptrace would"),
        "{out}"
    );
    assert!(!out.contains("setcap cap_"), "{out}");
    // Without them: the fix is root, never capabilities on probity.
    let (_dir, plain) = crate::support::probity_for_nobody();
    let o = Command::new("setpriv").args(NOBODY).arg(&plain).arg("doctor").output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("fix: missing CAP_BPF, CAP_PERFMON: run probity as root"), "{out}");
    assert!(out.contains("or use the probity daemon (`sudo probity daemon --install`, then join its group)"), "{out}");
    assert!(out.contains("FAIL tracing via"), "{out}");
    assert!(!out.contains("setcap"), "{out}");
}

#[test]
fn nobody_with_capabilities_attaches_to_its_own_processes_only() {
    use std::io::{BufRead, Write};
    let lab = Lab::new();
    // A root process: ptrace would refuse nobody, and so does probity.
    let mut root_sleep = Command::new("sleep").arg("30").spawn().unwrap();
    let o = Command::new("setpriv")
        .args(NOBODY)
        .arg(&lab.probity)
        .args(["run", "-p", &root_sleep.id().to_string()])
        .current_dir(&lab.out)
        .output()
        .unwrap();
    let _ = root_sleep.kill();
    let _ = root_sleep.wait();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert!(
        err.contains(&format!(
            "cannot attach to process {}: it runs as user ids [0, 0, 0, 0], not 65534",
            root_sleep.id()
        )),
        "{err}"
    );
    // nobody's own process: attached, traced until it ends.
    let mut own = Command::new("setpriv")
        .args(NOBODY)
        .args(["sh", "-c", "read x; cat /dev/null"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Until sh runs (setpriv execs it), the process is root's.
    let start = std::time::Instant::now();
    while !std::fs::read_link(format!("/proc/{}/exe", own.id())).is_ok_and(|p| p.ends_with("dash") || p.ends_with("sh"))
    {
        assert!(start.elapsed() < std::time::Duration::from_secs(20), "sh never started");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let json = lab.out.join("attach.jsonl");
    let mut probity = Command::new("setpriv")
        .args(NOBODY)
        .arg(&lab.probity)
        .args(["run", "-o", "/dev/null", "--json"])
        .arg(&json)
        .args(["-p", &own.id().to_string()])
        .current_dir(&lab.out)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(probity.stderr.take().unwrap());
    let mut said = String::new();
    while !said.contains("Ctrl-C detaches") {
        if stderr.read_line(&mut said).unwrap() == 0 {
            let _ = own.kill();
            panic!("{said}");
        }
    }
    writeln!(own.stdin.take().unwrap(), "go").unwrap();
    assert!(own.wait().unwrap().success());
    let status = probity.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{said}");
    let trace = Trace::load(&json).unwrap();
    assert!(trace
        .events
        .iter()
        .any(|e| matches!(&e.kind, probity::EventKind::Exec(x) if x.filename.to_string_lossy().ends_with("/cat"))));
}
