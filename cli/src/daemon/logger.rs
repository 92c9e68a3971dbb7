//! The daemon's log: one line per message, `LEVEL message`, to stderr
//! (journald adds the time) or to a file reopened on SIGHUP, for log
//! rotation.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

struct Logger {
    path: Option<PathBuf>,
    file: Mutex<Option<File>>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

fn open(path: &PathBuf) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Installs the logger; with `path`, the file is opened now (an error if
/// it cannot be).
pub fn install(path: Option<PathBuf>, level: log::LevelFilter) -> anyhow::Result<()> {
    let file = match &path {
        Some(p) => Some(open(p).map_err(|e| anyhow::anyhow!("cannot open the log {}: {e}", p.display()))?),
        None => None,
    };
    let logger = LOGGER.get_or_init(|| Logger { path, file: Mutex::new(file) });
    let _ = log::set_logger(logger);
    log::set_max_level(level);
    Ok(())
}

/// Whether messages go somewhere.
pub fn installed() -> bool {
    LOGGER.get().is_some()
}

/// Reopens the log file (after it was rotated).
pub fn reopen() {
    if let Some(l) = LOGGER.get() {
        if let Some(p) = &l.path {
            if let Ok(f) = open(p) {
                *l.file.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
            }
        }
    }
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &log::Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let line = format!("{} {}\n", r.level(), r.args());
        match &mut *self.file.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(f) => {
                let _ = f.write_all(line.as_bytes());
            }
            None => {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
        }
    }

    fn flush(&self) {}
}
