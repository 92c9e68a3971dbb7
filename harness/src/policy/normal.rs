//! What stays the same from run to run and machine to machine: hosts as
//! `name:port` with ephemeral ports hidden, paths with the workspace,
//! target, temporary and home directories as placeholders (as snapshots
//! show them). Baselines and SARIF fingerprints compare these.

use std::net::IpAddr;

use super::roots::Where;
use crate::trace::Filters;

/// Ports the kernel picks for a socket bound to port 0 (Linux's default
/// `ip_local_port_range` starts at 32768): they differ from run to run.
const EPHEMERAL: u16 = 32768;

/// Normalises the hosts and paths of one run.
pub(crate) struct Normal {
    filters: Filters,
}

impl Normal {
    /// A normaliser for a run in `at`.
    pub(crate) fn new(at: &Where) -> Normal {
        let show = |p: &std::path::Path| p.to_string_lossy().into_owned();
        let extra = vec![(show(&at.target), "<target>".to_owned()), (show(&at.workspace), "<workspace>".to_owned())];
        Normal { filters: Filters::new(&extra) }
    }

    /// A path with its directories as placeholders and cargo's hashes
    /// numbered out.
    pub(crate) fn path(&mut self, p: &str) -> String {
        self.filters.apply_to(p)
    }

    /// A host: its first trusted name, else its address, and its port.
    pub(crate) fn host(names: &[String], ip: IpAddr, port: u16) -> String {
        let host = names.first().cloned().unwrap_or_else(|| match ip {
            IpAddr::V6(a) => format!("[{a}]"),
            a => a.to_string(),
        });
        let port = if port >= EPHEMERAL { "<ephemeral>".to_owned() } else { port.to_string() };
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_paths() {
        assert_eq!(Normal::host(&[], "::1".parse().unwrap(), 80), "[::1]:80");
        assert_eq!(Normal::host(&["a.b".into()], "1.2.3.4".parse().unwrap(), 40000), "a.b:<ephemeral>");
        let at = Where { workspace: "/w/ws".into(), target: "/w/ws/target".into(), tmp: "/tmp".into(), home: None };
        let mut n = Normal::new(&at);
        assert_eq!(n.path("/w/ws/generated/x"), "<workspace>/generated/x");
        assert_eq!(
            n.path("/w/ws/target/debug/deps/t-0123456789abcdef"),
            n.path("/w/ws/target/debug/deps/t-fedcba9876543210")
        );
    }
}
