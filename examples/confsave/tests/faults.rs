//! What confsave does when the disk fails it: probity makes the calls
//! fail (fault injection, as `strace --inject` does) and checks, in the
//! same trace, what confsave did about it.
//! Run as root: `sudo -E cargo test -p confsave`.

use std::path::Path;

use confsave::Config;
use probity::{traced_test, Cmd, ExitStatus};

fn old_config() -> Config {
    Config { name: "old".into(), retries: 1, endpoints: vec![] }
}

/// Runs `confsave stamp DIR` over a saved old config, with `rule`, and
/// checks that the old config survived and no temporary file is left.
fn stamp_failing(dir: &Path, rule: &str) -> probity::Run {
    confsave::save(dir, &old_config()).unwrap();
    let run = Cmd::new(env!("CARGO_BIN_EXE_confsave")).arg("stamp").arg(dir).inject(rule.parse().unwrap()).run();
    assert_eq!(run.status, ExitStatus::Code(1), "{}", run.stderr);
    assert_eq!(confsave::load(dir).unwrap(), old_config(), "the old config survives");
    let left: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, [confsave::FILE_NAME], "no temporary file is left");
    run
}

/// A full disk: the write of the temporary file fails with ENOSPC. After
/// the failure, the temporary file is unlinked and nothing is renamed.
#[traced_test]
fn a_full_disk_keeps_the_old_config() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join(".confsave.json.tmp");
    let run = stamp_failing(dir.path(), &format!("write:error=ENOSPC:path={}", tmp.display()));
    assert!(run.stderr.contains("No space left on device"), "{}", run.stderr);
    run.trace.syscalls().injected().assert_exactly(1);
    let (failed, call) = run.trace.syscalls().injected().next().unwrap();
    assert_eq!((call.name.as_ref(), call.errno.as_deref()), ("write", Some("ENOSPC")));
    run.trace.syscalls().named_any(["unlink", "unlinkat"]).path(&tmp).after(failed).assert_exactly(1);
    run.trace.syscalls().named_any(["rename", "renameat", "renameat2"]).assert_none();
}

/// The temporary file cannot be renamed over the config (EXDEV, as if it
/// were on another file system): the old config stays, the temporary
/// file goes.
#[traced_test]
fn a_failed_rename_keeps_the_old_config() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join(".confsave.json.tmp");
    let run = stamp_failing(dir.path(), "rename,renameat,renameat2:error=EXDEV");
    assert!(run.stderr.contains("Invalid cross-device link"), "{}", run.stderr);
    let (failed, call) = run.trace.syscalls().injected().next().expect("the rename was injected");
    assert_eq!(call.errno.as_deref(), Some("EXDEV"));
    assert_eq!(call.path(), Some(tmp.as_path()));
    run.trace.syscalls().named_any(["unlink", "unlinkat"]).path(&tmp).after(failed).assert_exactly(1);
}
