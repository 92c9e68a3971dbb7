//! What probity read about name resolution before the command ran: the
//! nameservers of `/etc/resolv.conf` and the names of `/etc/hosts`.
//!
//! A host-name allow-list rests on these, never on what the traced
//! program reports: they were read by probity before the program could
//! change the files, so a name allows the addresses `/etc/hosts` gave it
//! then, and the DNS answers the kernel saw arrive from one of these
//! nameservers.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The files read, and the most names kept from `/etc/hosts` (a name
/// left out allows nothing, which fails closed).
const RESOLV_CONF: &str = "/etc/resolv.conf";
const HOSTS: &str = "/etc/hosts";
const MAX_HOSTS: usize = 10_000;
/// Most bytes read of each file.
const MAX_FILE: u64 = 4 << 20;

/// Name resolution as probity found it before the command started.
///
/// ```
/// let r = probity::Resolution::parse("nameserver 10.0.0.53\n", "127.0.0.1 localhost db.test\n");
/// assert_eq!(r.nameservers, ["10.0.0.53".parse::<std::net::IpAddr>().unwrap()]);
/// assert_eq!(r.host_addrs("DB.test"), ["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Resolution {
    /// The `nameserver` lines of `/etc/resolv.conf`: DNS answers from
    /// these addresses (port 53) are trusted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<IpAddr>,
    /// The names of `/etc/hosts` (lowercase) and their addresses.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hosts: BTreeMap<String, Vec<IpAddr>>,
}

impl Resolution {
    /// Reads `/etc/resolv.conf` and `/etc/hosts`; a file that cannot be
    /// read gives nothing (and so allows nothing).
    pub(crate) fn read() -> Resolution {
        let read = |p: &str| {
            use std::io::Read as _;
            let mut s = String::new();
            let _ = std::fs::File::open(p).and_then(|f| f.take(MAX_FILE).read_to_string(&mut s));
            s
        };
        Resolution::parse(&read(RESOLV_CONF), &read(HOSTS))
    }

    /// Parses the text of a `resolv.conf` and of a `hosts` file.
    #[must_use]
    pub fn parse(resolv_conf: &str, hosts: &str) -> Resolution {
        let mut r = Resolution::default();
        for line in resolv_conf.lines() {
            let mut words = line.split_whitespace();
            if words.next() == Some("nameserver") {
                // An IPv6 address may carry a zone (`fe80::1%eth0`).
                if let Some(ip) = words.next().and_then(|w| w.split('%').next()?.parse::<IpAddr>().ok()) {
                    let ip = crate::net::canonical(ip);
                    if !r.nameservers.contains(&ip) {
                        r.nameservers.push(ip);
                    }
                }
            }
        }
        for line in hosts.lines() {
            let line = line.split('#').next().unwrap_or_default();
            let mut words = line.split_whitespace();
            let Some(ip) = words.next().and_then(|w| w.split('%').next()?.parse::<IpAddr>().ok()) else { continue };
            let ip = crate::net::canonical(ip);
            for name in words {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if !r.hosts.contains_key(&name) && r.hosts.len() >= MAX_HOSTS {
                    continue;
                }
                let addrs = r.hosts.entry(name).or_default();
                if !addrs.contains(&ip) {
                    addrs.push(ip);
                }
            }
        }
        r
    }

    /// The addresses `/etc/hosts` gave `name` (compared without case), and
    /// for `localhost` and names under `.localhost` the loopback addresses
    /// (RFC 6761: resolvers answer them so whatever the files say).
    #[must_use]
    pub fn host_addrs(&self, name: &str) -> Vec<IpAddr> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let mut addrs = self.hosts.get(&name).cloned().unwrap_or_default();
        if name == "localhost" || name.ends_with(".localhost") {
            for ip in [IpAddr::from([127, 0, 0, 1]), IpAddr::from(std::net::Ipv6Addr::LOCALHOST)] {
                if !addrs.contains(&ip) {
                    addrs.push(ip);
                }
            }
        }
        addrs
    }

    /// Whether `ip` is one of the nameservers.
    #[must_use]
    pub fn is_nameserver(&self, ip: IpAddr) -> bool {
        self.nameservers.contains(&crate::net::canonical(ip))
    }

    /// Nothing was read.
    pub(crate) fn is_empty(&self) -> bool {
        self.nameservers.is_empty() && self.hosts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_as_glibc_reads_them() {
        let r = Resolution::parse(
            "# comment\nnameserver 127.0.0.53\nnameserver fe80::1%eth0\nnameserver bogus\nsearch x\nnameserver 127.0.0.53\n",
            "127.0.0.1\tlocalhost\n::ffff:10.0.0.1 A.test b.test. # c.test\n10.0.0.2 a.test\nnot-an-ip x.test\n",
        );
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(r.nameservers, [ip("127.0.0.53"), ip("fe80::1")]);
        assert_eq!(r.host_addrs("a.test"), [ip("10.0.0.1"), ip("10.0.0.2")]);
        assert_eq!(r.host_addrs("b.test"), [ip("10.0.0.1")]);
        assert!(r.host_addrs("c.test").is_empty() && r.host_addrs("x.test").is_empty());
        assert_eq!(r.host_addrs("LOCALHOST."), [ip("127.0.0.1"), ip("::1")]);
        assert_eq!(Resolution::default().host_addrs("db.localhost"), [ip("127.0.0.1"), ip("::1")]);
        assert!(r.is_nameserver(ip("::ffff:127.0.0.53")));
        assert!(!r.is_nameserver(ip("127.0.0.1")));
    }
}
