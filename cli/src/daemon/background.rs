//! `--daemon`: detach from the terminal. The parent waits until the
//! child is listening (or says why it could not), so that its exit
//! status tells a service manager or a script the truth.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use anyhow::Context;

/// The child's side of the start-up pipe.
pub struct Ready(File);

impl Ready {
    /// Tells the waiting parent the daemon listens.
    pub fn ready(mut self) {
        let _ = self.0.write_all(b"ok");
    }

    /// Tells the waiting parent why the daemon did not start.
    pub fn failed(mut self, why: &str) {
        let _ = self.0.write_all(why.as_bytes());
    }
}

/// Forks; the parent exits once the child reported, with 0 if it
/// listens. The child starts a new session, writes `pidfile`, and has its
/// standard streams on `/dev/null`.
pub fn detach(pidfile: Option<&Path>) -> anyhow::Result<Ready> {
    let (r, w) = nix::unistd::pipe().context("cannot make a pipe")?;
    // SAFETY: no other thread runs yet (the caller forks first thing).
    match unsafe { nix::unistd::fork() }.context("cannot fork")? {
        nix::unistd::ForkResult::Parent { .. } => {
            drop(w);
            let mut got = String::new();
            let _ = File::from(r).read_to_string(&mut got);
            if got == "ok" {
                std::process::exit(0);
            }
            eprintln!("probity daemon: {}", if got.is_empty() { "the daemon exited at start" } else { &got });
            std::process::exit(1);
        }
        nix::unistd::ForkResult::Child => {
            drop(r);
            nix::unistd::setsid().context("cannot start a session")?;
            if let Some(p) = pidfile {
                std::fs::write(p, format!("{}\n", std::process::id()))
                    .with_context(|| format!("cannot write the pid file {}", p.display()))?;
            }
            let null = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null")?;
            for fd in 0..3 {
                // SAFETY: dup2 onto the standard descriptors, which we own.
                if unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), fd) } < 0 {
                    anyhow::bail!("cannot redirect to /dev/null: {}", std::io::Error::last_os_error());
                }
            }
            Ok(Ready(File::from(w)))
        }
    }
}
