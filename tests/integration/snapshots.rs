//! Snapshots of real programs: byte-identical from run to run, and the
//! same here as in CI (the programs run with a clean environment, so what
//! they read from it does not depend on the machine).

use std::path::Path;
use std::process::{Command, Stdio};

use probity::{Trace, Tracer};

use crate::support::{fixture, require_tracing};

/// Runs `cmd` traced with a clean environment and no terminal, checking
/// that nothing was lost.
fn run(mut cmd: Command) -> Trace {
    require_tracing();
    cmd.env_clear().env("PATH", "/usr/bin:/bin").stdin(Stdio::null()).stdout(Stdio::null());
    let t = Tracer::new().run(cmd).expect("traced");
    assert_eq!(t.outcome.losses.lost_events(), 0, "{:?}", t.outcome.losses);
    t
}

/// A Python script whose two threads each create a file in `dir`.
const THREADS_PY: &str = r#"import sys, threading
def work(n):
    with open(f"{sys.argv[1]}/out{n}.txt", "w") as f:
        f.write(f"thread {n}\n")
ts = [threading.Thread(target=work, args=(i,)) for i in range(2)]
for t in ts: t.start()
for t in ts: t.join()
print("done")
"#;

fn ls(dir: &Path) -> Command {
    let mut c = Command::new("/usr/bin/ls");
    c.arg(dir);
    c
}

fn python(dir: &Path) -> Command {
    let script = dir.join("threads.py");
    std::fs::write(&script, THREADS_PY).unwrap();
    let mut c = Command::new("/usr/bin/python3");
    c.arg(&script).arg(dir);
    c
}

fn known_io(dir: &Path) -> Command {
    let mut c = Command::new(fixture(probity_fixtures::KNOWN_IO));
    c.arg(dir.join("out.txt")).arg("3");
    c
}

/// The first line where `a` and `b` differ, with a few lines around it.
fn first_difference(a: &str, b: &str) -> String {
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let at = la.iter().zip(&lb).position(|(x, y)| x != y).unwrap_or(la.len().min(lb.len()));
    let lo = at.saturating_sub(3);
    format!(
        "first difference at line {}:\n--- first run\n{}\n--- this run\n{}",
        at + 1,
        la[lo..(at + 4).min(la.len())].join("\n"),
        lb[lo..(at + 4).min(lb.len())].join("\n")
    )
}

/// The same program, traced 20 times, gives the same snapshot, text and
/// serde, every time.
fn check_stable(name: &str, make: fn(&Path) -> Command) -> String {
    let mut first: Option<(String, String)> = None;
    for run_no in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let t = run(make(dir.path()));
        let snap = t.snapshot();
        let text = snap.text();
        let json = serde_json::to_string_pretty(&snap).unwrap();
        match &first {
            None => first = Some((text, json)),
            Some((t0, j0)) => {
                assert!(*t0 == text, "{name}: run {run_no} differs from run 0; {}", first_difference(t0, &text));
                assert!(*j0 == json, "{name}: run {run_no}: the serde view differs; {}", first_difference(j0, &json));
            }
        }
    }
    let (text, _) = first.unwrap();
    // Twenty empty snapshots would be equal too.
    assert!(text.lines().count() > 10 && text.contains("+++ exec"), "{name}: a snapshot with nothing in it:\n{text}");
    text
}

/// The second program the spawner runs: `git --version` where git is
/// installed on the `PATH` that [`run`] gives, else `uname -s` (the same
/// output everywhere).
fn second_program() -> [&'static str; 2] {
    let git = ["/usr/bin", "/bin"].iter().any(|d| Path::new(d).join("git").is_file());
    if git {
        ["git", "--version"]
    } else {
        eprintln!("git is not installed: the spawner runs `uname -s` instead");
        ["uname", "-s"]
    }
}

/// The Rust spawner at `program`: a pipeline and a second program, their
/// output read through pipes.
fn spawner_at(program: &Path) -> Command {
    let mut c = Command::new(program);
    c.args(second_program());
    c
}

fn spawner(_dir: &Path) -> Command {
    spawner_at(&probity_fixtures::path(probity_fixtures::RUST_SPAWNER))
}

/// A shell script with a pipeline, a subshell and a command substitution.
fn shell(dir: &Path) -> Command {
    std::fs::write(dir.join("a.txt"), "one\ntwo\n").unwrap();
    let mut c = Command::new("/bin/sh");
    c.arg("-c")
        .arg("cd \"$1\" && n=$(cat a.txt | wc -l) && (echo \"$n\" > n.txt) && sort -r a.txt | head -n 1")
        .arg("sh")
        .arg(dir);
    c
}

/// A Python script that runs a pipeline with `subprocess` and reads its
/// output and errors together (`communicate`, with a selector).
const SUBPROCESS_PY: &str = r#"import subprocess, sys
r = subprocess.run(["sh", "-c", "echo hi | cat; echo err >&2"], capture_output=True, check=True)
assert r.stdout == b"hi\n" and r.stderr == b"err\n", r
with open(sys.argv[1] + "/out.txt", "wb") as f:
    f.write(r.stdout)
"#;

fn python_subprocess(dir: &Path) -> Command {
    let script = dir.join("spawn.py");
    std::fs::write(&script, SUBPROCESS_PY).unwrap();
    let mut c = Command::new("/usr/bin/python3");
    c.arg(&script).arg(dir);
    c
}

#[test]
fn python_subprocess_snapshot_is_stable_over_20_runs() {
    let text = check_stable("python3 subprocess", python_subprocess);
    assert!(text.contains("= ready"), "the event loop is settled:\n{text}");
}

#[test]
fn rust_spawner_snapshot_is_stable_over_20_runs() {
    let text = check_stable("rust_spawner", spawner);
    let [second, _] = second_program();
    for program in ["\"sh\", \"-c\", \"echo hi | cat\"", "[\"cat\"]", &format!("[\"{second}\"")] {
        assert!(text.contains(program), "no exec of {program} in:\n{text}");
    }
}

#[test]
fn shell_pipeline_snapshot_is_stable_over_20_runs() {
    let text = check_stable("sh", shell);
    insta::assert_snapshot!("shell_pipeline", text);
}

/// The target directory of this test, where cargo puts the programs it
/// builds per profile (`<target>/debug/`, `<target>/release/`).
fn target_dir() -> std::path::PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR").filter(|d| Path::new(d).is_absolute()) {
        return d.into();
    }
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().skip(1).find(|d| d.join("CACHEDIR.TAG").is_file()).expect("a cargo target directory").to_owned()
}

/// Installs the spawner built as `profile` at `<target>/<profile>/`,
/// where cargo would put a binary of the user's (renamed into place, so
/// that a copy still running elsewhere is not overwritten).
fn install_spawner(profile: &str) -> std::path::PathBuf {
    let dir = target_dir().join(profile);
    std::fs::create_dir_all(&dir).unwrap();
    let to = dir.join("probity-snapshot-spawner");
    let staged = dir.join(format!(".probity-snapshot-spawner.{}", std::process::id()));
    std::fs::copy(probity_fixtures::profile_path(probity_fixtures::RUST_SPAWNER, profile), &staged).unwrap();
    std::fs::rename(&staged, &to).unwrap();
    to
}

#[test]
fn debug_and_release_builds_give_one_snapshot() {
    let debug = install_spawner("debug");
    let release = install_spawner("release");
    let second = second_program();
    for args in [&second[..], &["uname", "-s"]] {
        let trace = |program: &Path| {
            let mut c = Command::new(program);
            c.args(args);
            run(c)
        };
        let (d, r) = (trace(&debug), trace(&release));
        // The debug build checks each descriptor it closes; that is noise.
        let checks = |t: &Trace| t.snapshot().with_noise(true).text().matches("F_GETFD").count();
        assert!(checks(&d) > checks(&r), "the debug build should check descriptors with fcntl(F_GETFD)");
        let (d, r) = (d.snapshot().text(), r.snapshot().text());
        assert!(d.contains("+++ exec \"<target>/<profile>/probity-snapshot-spawner\""), "{d}");
        assert!(d == r, "{args:?}: debug and release builds differ; {}", first_difference(&d, &r));
        if args[0] == "uname" {
            insta::assert_snapshot!("rust_spawner", d);
        }
    }
}

#[test]
fn ls_snapshot_is_stable_over_20_runs() {
    let text = check_stable("ls", |dir| {
        std::fs::write(dir.join("b.txt"), "b").unwrap();
        std::fs::write(dir.join("a.txt"), "a").unwrap();
        ls(dir)
    });
    insta::assert_snapshot!("ls", text);
}

#[test]
fn python_threads_snapshot_is_stable_over_20_runs() {
    let text = check_stable("python3", python);
    insta::assert_snapshot!("python_threads", text);
}

#[test]
fn fixture_creating_temp_files_is_stable_over_20_runs() {
    let text = check_stable("known_io", known_io);
    insta::assert_snapshot!("known_io", text);
}

#[test]
fn yaml_view_with_folding() {
    let dir = tempfile::tempdir().unwrap();
    let t = run(known_io(dir.path()));
    insta::assert_yaml_snapshot!("known_io_folded", t.snapshot().with_folding(true));
}

#[test]
fn file_operations_under_one_directory() {
    let dir = tempfile::tempdir().unwrap();
    let t = run(python(dir.path()));
    let snap = t.syscalls().path_prefix(dir.path()).snapshot().with_replacement(dir.path().to_str().unwrap(), "<dir>");
    let text = snap.text();
    assert!(!text.contains("<tmp>"), "the user's replacement comes first:\n{text}");
    insta::assert_snapshot!("python_files_under_dir", text);
    // Folded, the same operations read the same whatever call made them.
    insta::assert_snapshot!(
        "python_files_under_dir_folded",
        t.syscalls().path_prefix(dir.path()).snapshot().with_folding(true).text()
    );
}

#[test]
fn noise_is_kept_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let t = run(ls(dir.path()));
    let quiet = t.snapshot().text();
    let full = t.snapshot().with_noise(true).text();
    assert!(full.lines().count() > quiet.lines().count() * 2, "{full}");
    for expected in ["/etc/ld.so.cache", "libc.so.6", "brk(", "mmap(", "arch_prctl("] {
        assert!(full.contains(expected), "{expected} missing from:\n{full}");
        assert!(!quiet.contains(expected), "{expected} should be left out:\n{quiet}");
    }
    // What is run-dependent is renamed even with noise kept.
    assert!(!full.contains(&format!("[{}]", t.outcome.root_pid)), "{full}");
    assert!(!full.contains("0x7f"), "addresses are hidden:\n{full}");
}

#[test]
fn pids_fds_and_directories_are_renamed() {
    let dir = tempfile::tempdir().unwrap();
    let t = run(known_io(dir.path()));
    let text = t.snapshot().text();
    assert!(text.starts_with("[1] execve(\"<target>/<profile>/build/probity-fixtures-<hash>/out/known_io\""), "{text}");
    assert!(text.contains("\"<tmp>/.tmp<1>/out.txt\""), "{text}");
    for e in &t.events {
        assert!(!text.contains(&e.pid.to_string()), "raw pid {} in:\n{text}", e.pid);
    }
    // Process 1's threads are tasks 2 and 3, its child process 4.
    assert!(text.contains("[1:2] getppid() = 5"), "{text}");
    assert!(text.contains("[4] +++ exec \"/bin/true\" [\"true\"] +++"), "{text}");
}
