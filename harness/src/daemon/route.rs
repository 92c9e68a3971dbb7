//! Which way this process traces with eBPF: loading the programs itself,
//! or through the probity daemon.
//!
//! `PROBITY_DAEMON` decides when set: `off` (never the daemon) or a
//! socket path (always that daemon, even with privileges). Unset, a
//! process with the privileges loads the programs itself, and one without
//! them uses the daemon at [`DEFAULT_SOCKET`] if it answers.

use std::path::{Path, PathBuf};

use crate::error::Error;

/// The environment variable that picks the way.
pub const ENV: &str = "PROBITY_DAEMON";

/// Where the daemon listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/probity/probity.sock";

/// The way chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// Load the programs in this process.
    Local,
    /// Ask the daemon listening on this socket.
    Daemon(PathBuf),
}

/// Chooses the way, or says why there is none.
pub(crate) fn route() -> Result<Route, Error> {
    let missing = crate::kernel::doctor::missing_capabilities();
    match choose(std::env::var_os(ENV).as_deref(), missing.is_empty(), answers) {
        Some(r) => Ok(r),
        None if std::env::var_os(ENV).is_some_and(|v| v == "off") => {
            Err(Error::Privileges { missing: missing.join(", ") })
        }
        None => Err(Error::NoWayToTrace { missing: missing.join(", "), socket: DEFAULT_SOCKET.into() }),
    }
}

/// The choice, from the variable's value, whether this process may load
/// the programs, and a probe of a socket.
fn choose(var: Option<&std::ffi::OsStr>, privileged: bool, answers: impl Fn(&Path) -> bool) -> Option<Route> {
    match var.filter(|v| !v.is_empty()) {
        Some(v) if v == "off" => privileged.then_some(Route::Local),
        Some(path) => Some(Route::Daemon(PathBuf::from(path))),
        None if privileged => Some(Route::Local),
        None => answers(Path::new(DEFAULT_SOCKET)).then(|| Route::Daemon(DEFAULT_SOCKET.into())),
    }
}

/// Whether something accepts connections on `socket`.
fn answers(socket: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(socket).is_ok()
}

/// One line for `probity doctor`: which way tracing would go, and why.
pub fn describe_route() -> (bool, String) {
    match route() {
        Ok(Route::Local) => (true, "in this process (it has the privileges to load the eBPF programs)".into()),
        Ok(Route::Daemon(p)) => {
            let why =
                if std::env::var_os(ENV).is_some() { format!("{ENV} names it") } else { "no privileges here".into() };
            let ok = answers(&p);
            let state = if ok { "it answers" } else { "but it does not answer" };
            (ok, format!("through the probity daemon at {} ({why}; {state})", p.display()))
        }
        Err(e) => (false, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn the_variable_decides_then_the_privileges_then_the_socket() {
        let yes = |_: &Path| true;
        let no = |_: &Path| false;
        assert_eq!(choose(None, true, no), Some(Route::Local));
        assert_eq!(choose(None, false, yes), Some(Route::Daemon(DEFAULT_SOCKET.into())));
        assert_eq!(choose(None, false, no), None);
        assert_eq!(choose(Some(OsStr::new("")), false, no), None);
        assert_eq!(choose(Some(OsStr::new("off")), true, yes), Some(Route::Local));
        assert_eq!(choose(Some(OsStr::new("off")), false, yes), None);
        assert_eq!(choose(Some(OsStr::new("/tmp/s")), true, no), Some(Route::Daemon("/tmp/s".into())));
    }
}
