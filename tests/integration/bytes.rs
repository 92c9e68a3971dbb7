//! Names and arguments that are not UTF-8 stay bytes: in the model, in the
//! text trace (escaped as strace escapes them), in the JSON (which loads
//! back byte for byte) and in the queries, so two names that differ in
//! such a byte never look alike.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use probity::{EventKind, Trace, Tracer};

use crate::support::{dump, require_tracing};

/// A directory with two files whose names differ only in a byte that is
/// not UTF-8: `a\xffb` and `a\xfeb`.
struct OddNames {
    dir: tempfile::TempDir,
    ff: PathBuf,
    fe: PathBuf,
}

impl OddNames {
    fn new() -> OddNames {
        let dir = tempfile::tempdir().unwrap();
        let ff = dir.path().join(OsStr::from_bytes(b"a\xffb"));
        let fe = dir.path().join(OsStr::from_bytes(b"a\xfeb"));
        std::fs::write(&ff, "ff\n").unwrap();
        std::fs::write(&fe, "fe\n").unwrap();
        OddNames { dir, ff, fe }
    }

    /// `cat` of both files.
    fn cat(&self) -> Command {
        let mut c = Command::new("/bin/cat");
        c.arg(&self.ff).arg(&self.fe);
        c
    }
}

/// The `openat(...)` calls on `dir` in a strace-like text, without what
/// follows the call (result, duration, padding).
fn opens_under(text: &str, dir: &Path) -> Vec<String> {
    let dir = dir.to_str().expect("the temporary directory has a UTF-8 name");
    text.lines()
        .filter_map(|l| l.find("openat(").map(|at| &l[at..]))
        .filter(|l| l.contains(dir))
        .map(|l| l.split(" = ").next().unwrap_or(l).trim_end().to_owned())
        .collect()
}

/// What strace 6 prints for `cat` of both files: the oracle.
fn strace_opens(names: &OddNames) -> Vec<String> {
    let out = names.dir.path().join("strace.txt");
    let status = Command::new("strace")
        .args(["-e", "trace=openat", "-o"])
        .arg(&out)
        .arg("/bin/cat")
        .arg(&names.ff)
        .arg(&names.fe)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("strace is the oracle here: install it (`cargo xtask setup`)");
    assert!(status.success(), "strace cat failed: {status}");
    let text = std::fs::read(&out).unwrap();
    // strace writes the escapes as ASCII: the file is text.
    opens_under(
        std::str::from_utf8(&text).expect("strace escapes every byte that is not printable ASCII"),
        names.dir.path(),
    )
}

fn probity_run(args: &[&OsStr]) -> Output {
    require_tracing();
    Command::new(env!("CARGO_BIN_EXE_probity")).arg("run").args(args).output().expect("probity runs")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Checks what a trace of `cat` of both files says of the two names.
fn check_model(t: &Trace, names: &OddNames) {
    let opened: Vec<&Path> = t.syscalls().named("openat").filter_map(|(_, s)| s.path()).collect();
    assert!(opened.contains(&names.ff.as_path()), "no openat of {:?}:\n{}", names.ff, dump(t));
    assert!(opened.contains(&names.fe.as_path()), "no openat of {:?}:\n{}", names.fe, dump(t));
    t.check_opened(&names.ff).unwrap_or_else(|v| panic!("{v}"));
    t.check_opened(Path::new(OsStr::from_bytes(&[names.dir.path().as_os_str().as_bytes(), b"/a\xffb"].concat())))
        .unwrap_or_else(|v| panic!("{v}"));
    t.check_opened(&names.fe).unwrap_or_else(|v| panic!("{v}"));
    // A third name, differing in the same byte, was never opened: neither
    // name stands for it.
    let fd = names.dir.path().join(OsStr::from_bytes(b"a\xfdb"));
    assert!(t.check_opened(&fd).is_err(), "a\\375b was never opened:\n{}", dump(t));
    // Each query finds its own name's open, and only that one.
    let ff = t.syscalls().named("openat").path(&names.ff).count();
    let fe = t.syscalls().named("openat").path(&names.fe).count();
    let fd_count = t.syscalls().named("openat").path(&fd).count();
    assert_eq!((ff, fe, fd_count), (1, 1, 0), "{}", dump(t));
    assert_eq!(t.syscalls().named("openat").path_prefix(names.dir.path()).count(), 2, "{}", dump(t));
    // The exec's argv holds the names as they were passed.
    let argv: Vec<&OsString> = t
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Exec(x) if x.filename == "/bin/cat" => Some(x.argv.iter().collect()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no exec of cat:\n{}", dump(t)));
    assert_eq!(argv[1..], [names.ff.as_os_str(), names.fe.as_os_str()], "{}", dump(t));
}

#[test]
fn odd_bytes_in_names_show_as_strace_shows_them_and_stay_apart() {
    require_tracing();
    let names = OddNames::new();
    let expected = strace_opens(&names);
    let d = names.dir.path().to_str().unwrap();
    assert_eq!(
        expected,
        [
            format!(r#"openat(AT_FDCWD, "{d}/a\377b", O_RDONLY)"#),
            format!(r#"openat(AT_FDCWD, "{d}/a\376b", O_RDONLY)"#)
        ],
        "strace prints these names otherwise than this test expects"
    );

    let t = Tracer::new().run(names.cat()).unwrap_or_else(|e| panic!("failed to trace cat: {e}"));
    assert_eq!(t.outcome.losses.lost_events(), 0, "events lost: {:?}", t.outcome.losses);
    assert_eq!(opens_under(&dump(&t), names.dir.path()), expected, "{}", dump(&t));
    check_model(&t, &names);
}

#[test]
fn odd_bytes_round_trip_through_the_cli_json() {
    let names = OddNames::new();
    let expected = strace_opens(&names);
    let json = names.dir.path().join("t.jsonl");
    let txt = names.dir.path().join("t.txt");
    let o = probity_run(&[
        "--json".as_ref(),
        json.as_os_str(),
        "-o".as_ref(),
        txt.as_os_str(),
        "--".as_ref(),
        "/bin/cat".as_ref(),
        names.ff.as_os_str(),
        names.fe.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(o.stdout, b"ff\nfe\n", "{}", text(&o));

    // The text trace escapes the bytes exactly as strace does.
    let written = std::fs::read_to_string(&txt).expect("the text trace is ASCII-escaped UTF-8");
    assert_eq!(opens_under(&written, names.dir.path()), expected, "{written}");

    // The JSON gives each odd name as {"bytes": ...} with those escapes.
    let raw = std::fs::read_to_string(&json).expect("the JSON trace is UTF-8");
    let d = names.dir.path().to_str().unwrap();
    let lines: Vec<serde_json::Value> = raw.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let opens: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|v| v["name"] == "openat")
        .map(|v| &v["args"][1]["path"]["path"])
        .filter(|p| p["bytes"].as_str().is_some_and(|b| b.starts_with(d)))
        .collect();
    assert_eq!(
        opens,
        [&serde_json::json!({"bytes": format!(r"{d}/a\377b")}), &serde_json::json!({"bytes": format!(r"{d}/a\376b")})],
        "{raw}"
    );
    // Names that are UTF-8 stay plain strings.
    assert!(raw.contains(r#""filename":"/bin/cat""#), "{raw}");

    // It loads back to byte-identical paths, and the queries tell the two apart.
    let t = Trace::load(&json).unwrap_or_else(|e| panic!("the CLI's JSON loads: {e}"));
    check_model(&t, &names);
    let paths: Vec<&Path> = t.syscalls().named("openat").filter_map(|(_, s)| s.path()).collect();
    assert!(paths.contains(&names.ff.as_path()) && paths.contains(&names.fe.as_path()), "{}", dump(&t));
    // Written again, it is the same JSON.
    let mut again = Vec::new();
    t.write_jsonl(&mut again).unwrap();
    let again = String::from_utf8(again).unwrap();
    let events =
        |s: &str| s.lines().filter(|l| !l.contains(r#""kind":"summary""#)).map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(events(&again), events(&raw));
}

#[test]
fn odd_bytes_in_the_command_line_are_passed_through() {
    let o = probity_run(&["--".as_ref(), "/bin/echo".as_ref(), OsStr::from_bytes(b"\xff")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(o.stdout, b"\xff\n", "{}", text(&o));
    let err = String::from_utf8(o.stderr.clone()).expect("the text trace escapes the byte");
    assert!(err.contains(r#"execve("/bin/echo", ["/bin/echo", "\377"], "#), "{}", text(&o));
    assert!(err.contains(r#"+++ exec "/bin/echo" ["/bin/echo", "\377"] +++"#), "{}", text(&o));
}

#[test]
fn an_odd_program_name_is_run_and_shown_escaped() {
    // The program's own name is not UTF-8 either.
    let names = OddNames::new();
    let prog = names.dir.path().join(OsStr::from_bytes(b"run\xff"));
    std::os::unix::fs::symlink("/bin/true", &prog).unwrap();
    let o = probity_run(&["--".as_ref(), prog.as_os_str()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let err = String::from_utf8(o.stderr.clone()).expect("the text trace escapes the byte");
    let d = names.dir.path().to_str().unwrap();
    assert!(err.contains(&format!(r#"execve("{d}/run\377", ["{d}/run\377"], "#)), "{}", text(&o));
    assert!(err.contains(&format!(r#"+++ exec "{d}/run\377" ["{d}/run\377"] +++"#)), "{}", text(&o));
}
