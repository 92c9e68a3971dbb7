//! `probity daemon`: the privileged tracing service. It loads the eBPF
//! programs once and serves sessions on a Unix socket to the users of its
//! group, so their tests trace without root (see `docs/daemon.md`).
//!
//! Foreground by default, logging to stderr; `--daemon` detaches
//! (`background.rs`). SIGTERM and SIGINT stop it gracefully, SIGHUP
//! reopens the log and reloads the limits (`logger.rs`, `limits.rs`);
//! `--install` and `--print-systemd` set it up under systemd
//! (`systemd.rs`).

mod background;
mod limits;
mod logger;
mod systemd;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Args;
use probity::daemon::{Daemon, DaemonConfig};

#[derive(Args, Debug)]
pub struct DaemonArgs {
    /// The socket to listen on.
    #[arg(long, value_name = "PATH", default_value = probity::daemon::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// The group whose members may connect (the socket is made 0660
    /// root:GROUP); `--group root` serves root only.
    #[arg(long, default_value = "probity")]
    group: String,
    /// Sessions one user may have open at once.
    #[arg(long, value_name = "N")]
    sessions_per_user: Option<u32>,
    /// MiB of records queued for one slow client before its records are
    /// dropped (and counted in its trace).
    #[arg(long, value_name = "MIB")]
    queue_mib: Option<usize>,
    /// A TOML file of limits (`sessions_per_user`, `queue_mib`), read at
    /// start and again on SIGHUP; flags override it.
    #[arg(long, value_name = "FILE")]
    limits: Option<PathBuf>,
    /// Seconds to wait, when stopping, for open sessions to end.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    grace: u64,
    /// Log to this file instead of stderr (reopened on SIGHUP).
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Least level logged: error, warn, info, debug.
    #[arg(long, default_value = "info", value_parser = parse_level)]
    log_level: log::LevelFilter,
    /// Detach from the terminal and run in the background.
    #[arg(long)]
    daemon: bool,
    /// With --daemon: write the daemon's pid here.
    #[arg(long, value_name = "FILE", requires = "daemon")]
    pidfile: Option<PathBuf>,
    /// Write systemd units (socket and service) for this binary, create
    /// the group, and say how to add users to it.
    #[arg(long, conflicts_with = "print_systemd")]
    install: bool,
    /// Print the systemd units instead of writing them.
    #[arg(long)]
    print_systemd: bool,
}

static STOP: AtomicBool = AtomicBool::new(false);
static RELOAD: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

extern "C" fn on_reload(_: libc::c_int) {
    RELOAD.store(true, Ordering::Relaxed);
}

pub fn main(args: DaemonArgs) -> ExitCode {
    if args.print_systemd {
        print!("{}", systemd::units(&args.socket, &args.group));
        return ExitCode::SUCCESS;
    }
    if args.install {
        return match systemd::install(&args.socket, &args.group) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        };
    }
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &anyhow::Error) -> ExitCode {
    log::error!("{e:#}");
    if !logger::installed() {
        eprintln!("probity daemon: {e:#}");
    }
    ExitCode::from(1)
}

fn run(args: DaemonArgs) -> anyhow::Result<()> {
    let gid = group_id(&args.group)?;
    let mut limits = limits::read(args.limits.as_deref())?;
    limits::apply_flags(&mut limits, args.sessions_per_user, args.queue_mib);
    let config = DaemonConfig { socket: args.socket.clone(), group: (gid != 0).then_some(gid), limits };
    // Detach before anything starts a thread: a fork keeps only its caller.
    let ready = if args.daemon { Some(background::detach(args.pidfile.as_deref())?) } else { None };
    logger::install(args.log.clone(), args.log_level)?;
    let daemon = match Daemon::activated_listener() {
        Some(fd) => Daemon::from_listener(fd, &config),
        None => Daemon::bind(&config),
    };
    let daemon = match daemon {
        Ok(d) => d,
        Err(e) => {
            let e = anyhow::Error::new(e);
            if let Some(r) = ready {
                r.failed(&format!("{e:#}"));
            }
            if let Some(p) = &args.pidfile {
                let _ = std::fs::remove_file(p);
            }
            return Err(e);
        }
    };
    for (sig, handler) in
        [(libc::SIGTERM, on_stop as extern "C" fn(libc::c_int)), (libc::SIGINT, on_stop), (libc::SIGHUP, on_reload)]
    {
        // SAFETY: the handlers only store to atomics.
        unsafe { libc::signal(sig, handler as libc::sighandler_t) };
    }
    log::info!(
        "listening on {} (group {}, {} sessions per user, {} MiB queue per session)",
        args.socket.display(),
        args.group,
        config.limits.sessions_per_user,
        config.limits.queue_bytes >> 20
    );
    if let Some(r) = ready {
        r.ready();
    }
    let grace = Duration::from_secs(args.grace);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !STOP.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                if RELOAD.swap(false, Ordering::Relaxed) {
                    logger::reopen();
                    match limits::read(args.limits.as_deref()) {
                        Ok(mut l) => {
                            limits::apply_flags(&mut l, args.sessions_per_user, args.queue_mib);
                            daemon.set_limits(l);
                            log::info!(
                                "reloaded: {} sessions per user, {} MiB queue",
                                l.sessions_per_user,
                                l.queue_bytes >> 20
                            );
                        }
                        Err(e) => log::error!("reload failed, limits unchanged: {e:#}"),
                    }
                }
            }
        });
        daemon.serve(&STOP, grace)
    })?;
    log::info!("stopped");
    if let Some(p) = &args.pidfile {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

fn parse_level(s: &str) -> Result<log::LevelFilter, String> {
    s.parse().map_err(|_| format!("{s:?} is not a level: use error, warn, info or debug"))
}

/// The id of group `name`.
fn group_id(name: &str) -> anyhow::Result<u32> {
    match nix::unistd::Group::from_name(name)? {
        Some(g) => Ok(g.gid.as_raw()),
        None => anyhow::bail!(
            "no group {name:?}: create it with `sudo probity daemon --install` (or `sudo groupadd --system {name}`), \
             or name another with --group"
        ),
    }
}
