//! One entry of `network.allow`, in harden-runner's spelling: `host:port`,
//! `*.example.com:443`, a bare host name (port 443), IP addresses and CIDR
//! blocks (any port, unless one is given: `10.0.0.0/8:443`,
//! `[::1]:8080`), port ranges (`8000-8999`) and `*` for any port.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

use crate::net::canonical;

/// What an endpoint's host part matches.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Host {
    /// One name, lowercase, without its trailing dot.
    Name(String),
    /// Every name under a domain (`*.example.com`): kept as `.example.com`.
    Under(String),
    /// Addresses in a block (one address is a /32 or /128).
    Net(IpNet),
}

/// An allowed endpoint: a host (a name, names under a domain, or
/// addresses) and a range of ports.
///
/// ```
/// let e: probity::policy::Endpoint = "*.crates.io:443".parse()?;
/// assert_eq!(e.to_string(), "*.crates.io:443");
/// # Ok::<(), String>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    host: Host,
    /// The lowest and highest port allowed.
    ports: (u16, u16),
    text: String,
}

impl Endpoint {
    /// Whether a connection to `ip` port `port` is allowed, `names` being
    /// the names `ip` was resolved from by a source the traced program
    /// could not steer.
    pub(crate) fn allows<'a>(&self, ip: IpAddr, port: u16, mut names: impl Iterator<Item = &'a str>) -> bool {
        if port < self.ports.0 || port > self.ports.1 {
            return false;
        }
        match &self.host {
            Host::Net(n) => n.contains(&canonical(ip)),
            Host::Name(want) => names.any(|n| n == want),
            Host::Under(suffix) => names.any(|n| n.ends_with(suffix.as_str())),
        }
    }

    /// Whether the host is a name (which allows asking the nameservers).
    pub(crate) fn is_name(&self) -> bool {
        !matches!(self.host, Host::Net(_))
    }

    /// The endpoint for an `--allow-connect` entry: an address, block or
    /// name, at any port.
    pub(crate) fn any_port(host: &str) -> Result<Endpoint, String> {
        let host = parse_host(host)?;
        Ok(Endpoint { text: format!("{}:*", show_host(&host)), host, ports: (0, u16::MAX) })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

const ALLOWED: &str = "allowed: `host:port`, `*.example.com:443`, a host name (port 443), an IP address or CIDR block \
     (any port, or `10.0.0.0/8:443`, `[::1]:80`), with a port range `8000-8999` or `*` for any port";

impl FromStr for Endpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Endpoint, String> {
        let bad = |why: &str| format!("`{s}` is not an endpoint ({why}); {ALLOWED}");
        // A bare IPv6 address or block has colons of its own.
        if let Some(n) = crate::trace::query::parse_net(s) {
            return Ok(Endpoint { host: Host::Net(n), ports: (0, u16::MAX), text: s.to_owned() });
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, after) = rest.split_once(']').ok_or_else(|| bad("a `[` without its `]`"))?;
            match after.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None if after.is_empty() => (h, None),
                None => return Err(bad("only `:port` may follow `]`")),
            }
        } else {
            match s.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (s, None),
            }
        };
        let host = parse_host(host).map_err(|why| bad(&why))?;
        let ports = match port {
            Some(p) => parse_ports(p).map_err(|why| bad(&why))?,
            // harden-runner's default for names; addresses keep any port,
            // as `--allow-connect` always did.
            None if matches!(host, Host::Net(_)) => (0, u16::MAX),
            None => (443, 443),
        };
        Ok(Endpoint { host, ports, text: s.to_owned() })
    }
}

/// A host part: an address, a block, a name or `*.` and a domain.
fn parse_host(h: &str) -> Result<Host, String> {
    if let Some(n) = crate::trace::query::parse_net(h) {
        return Ok(Host::Net(n));
    }
    let (under, name) = match h.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, h),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.bytes().any(|b| b.is_ascii_alphabetic())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !name.split('.').any(str::is_empty);
    if !valid {
        return Err(if name.contains('*') {
            "a wildcard is allowed only as a whole first label, `*.example.com`".to_owned()
        } else {
            "not an IP address, a CIDR block or a host name".to_owned()
        });
    }
    Ok(if under { Host::Under(format!(".{name}")) } else { Host::Name(name) })
}

fn show_host(h: &Host) -> String {
    match h {
        Host::Name(n) => n.clone(),
        Host::Under(s) => format!("*{s}"),
        Host::Net(n) if n.prefix_len() == n.max_prefix_len() => match n.addr() {
            IpAddr::V6(a) => format!("[{a}]"),
            a => a.to_string(),
        },
        Host::Net(n @ IpNet::V6(_)) => format!("[{n}]"),
        Host::Net(n) => n.to_string(),
    }
}

/// A port, a range `lo-hi`, or `*`.
fn parse_ports(p: &str) -> Result<(u16, u16), String> {
    if p == "*" {
        return Ok((0, u16::MAX));
    }
    let one = |s: &str| s.parse::<u16>().map_err(|_| format!("`{s}` is not a port from 0 to 65535"));
    match p.split_once('-') {
        Some((lo, hi)) => {
            let (lo, hi) = (one(lo)?, one(hi)?);
            if lo > hi {
                return Err(format!("the range {lo}-{hi} is empty"));
            }
            Ok((lo, hi))
        }
        None => one(p).map(|n| (n, n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(s: &str) -> Endpoint {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn names_default_to_port_443() {
        let x = e("example.com");
        assert!(x.allows(ip("1.2.3.4"), 443, ["example.com"].into_iter()));
        assert!(!x.allows(ip("1.2.3.4"), 80, ["example.com"].into_iter()));
        assert!(!x.allows(ip("1.2.3.4"), 443, ["other.com"].into_iter()));
    }

    #[test]
    fn wildcards_match_subdomains_only() {
        let x = e("*.Example.com:80");
        assert!(x.allows(ip("1.2.3.4"), 80, ["a.example.com"].into_iter()));
        assert!(x.allows(ip("1.2.3.4"), 80, ["a.b.example.com"].into_iter()));
        assert!(!x.allows(ip("1.2.3.4"), 80, ["example.com"].into_iter()));
        assert!(!x.allows(ip("1.2.3.4"), 80, ["badexample.com"].into_iter()));
    }

    #[test]
    fn addresses_blocks_and_ranges() {
        assert!(e("127.0.0.1").allows(ip("127.0.0.1"), 9, std::iter::empty()));
        assert!(e("::1").allows(ip("::1"), 9, std::iter::empty()));
        assert!(e("10.0.0.0/8:443").allows(ip("10.1.2.3"), 443, std::iter::empty()));
        assert!(!e("10.0.0.0/8:443").allows(ip("10.1.2.3"), 80, std::iter::empty()));
        assert!(e("[::1]:8000-8999").allows(ip("::1"), 8080, std::iter::empty()));
        assert!(!e("[::1]:8000-8999").allows(ip("::1"), 9000, std::iter::empty()));
        // IPv4-mapped IPv6 addresses count as IPv4.
        assert!(e("127.0.0.1:*").allows(ip("::ffff:127.0.0.1"), 1, std::iter::empty()));
    }

    #[test]
    fn rejects_what_it_cannot_read_and_says_what_is_allowed() {
        for bad in ["", "exa*mple.com", "host:99999", "host:9-1", "[::1", "[::1]x", "a..b", "host:"] {
            let err = bad.parse::<Endpoint>().unwrap_err();
            assert!(err.contains("allowed: `host:port`"), "{bad}: {err}");
        }
    }

    #[test]
    fn any_port_spells_the_flag_as_an_endpoint() {
        assert_eq!(Endpoint::any_port("::1").unwrap().to_string(), "[::1]:*");
        assert_eq!(Endpoint::any_port("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8:*");
        assert_eq!(Endpoint::any_port("LocalHost").unwrap().to_string(), "localhost:*");
    }
}
