//! A traced program attacks the fault-injection supervisor through the
//! arguments it reads: pointers to nothing, strings with no end. probity
//! must keep answering (no crash, no hang) and decide only what the rule
//! says.

use probity::{Cmd, ExitStatus};

use crate::support::require_tracing;

#[test]
fn bad_pointers_and_endless_paths_do_not_stop_the_supervisor() {
    require_tracing();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("target"), "x").unwrap();
    // openat with a pointer to nothing, then with a path of 64 KiB with no
    // NUL for 4096 bytes and more, then the real file: only the last
    // matches the rule's path, and only it is failed.
    let script = "import ctypes, os\n\
                  libc = ctypes.CDLL(None, use_errno=True)\n\
                  libc.syscall.restype = ctypes.c_long\n\
                  def openat(p):\n\
                  \x20   r = libc.syscall(257, -100, p, 0)\n\
                  \x20   return r if r >= 0 else -ctypes.get_errno()\n\
                  print(openat(ctypes.c_void_p(1)))\n\
                  long = ctypes.create_string_buffer(b'a' * 65536, 65536)\n\
                  print(openat(long))\n\
                  print(openat(b'target'))\n";
    let run = Cmd::new("python3")
        .args(["-c", script])
        .current_dir(dir.path())
        .inject(format!("openat:error=EACCES:path={}/target", dir.path().display()).parse().unwrap())
        .try_run()
        .unwrap();
    assert_eq!(run.status, ExitStatus::Code(0), "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    // EFAULT from the kernel, ENAMETOOLONG from the kernel, EACCES from
    // the rule.
    assert_eq!(
        lines,
        [&*format!("-{}", libc::EFAULT), &*format!("-{}", libc::ENAMETOOLONG), &*format!("-{}", libc::EACCES)]
    );
    let injected: Vec<_> = run.trace.syscalls().injected().collect();
    assert_eq!(injected.len(), 1);
    assert_eq!(injected[0].1.path(), Some(std::path::Path::new("target")));
}
