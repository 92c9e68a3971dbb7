//! DNS messages in UDP datagrams: the question asked and, in an answer,
//! the addresses given.
//!
//! Captured buffers are often cut (`with_string_limit`, 32 bytes by
//! default), so the question is read by hand, as far as the bytes go, and
//! only a whole answer is parsed (with `simple-dns`) for its records.

use std::net::IpAddr;

use crate::event::Dns;

/// The DNS message in a datagram of `len` bytes whose first bytes are
/// `data`, if it looks like one (a header and the start of a question).
/// Crate-internal, so the example is not run; the tests below run such
/// queries.
///
/// ```ignore
/// // A query for `a.io`, type A.
/// let q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x02io\x00\x00\x01\x00\x01";
/// let dns = probity::decode::dns(q, q.len() as u64).unwrap();
/// assert_eq!((dns.name.as_str(), dns.qtype.as_str(), dns.response), ("a.io", "A", false));
/// ```
#[must_use]
pub fn dns(data: &[u8], len: u64) -> Option<Dns> {
    if data.len() < 12 {
        return None;
    }
    let flags = u16::from_be_bytes([data[2], data[3]]);
    let qdcount = u16::from_be_bytes([data[4], data[5]]);
    if qdcount == 0 {
        return None;
    }
    let mut truncated = (data.len() as u64) < len;
    let mut labels: Vec<String> = Vec::new();
    let mut at = 12;
    let mut complete = false;
    while at < data.len() {
        let n = data[at] as usize;
        if n == 0 {
            at += 1;
            complete = true;
            break;
        }
        if n > 63 {
            // A compression pointer or garbage: not in a first question.
            return None;
        }
        let end = (at + 1 + n).min(data.len());
        labels.push(String::from_utf8_lossy(&data[at + 1..end]).into_owned());
        at = end;
    }
    if labels.is_empty() && !complete {
        return None;
    }
    let qtype = match data.get(at..at + 2) {
        Some(b) if complete => {
            let n = u16::from_be_bytes([b[0], b[1]]);
            match simple_dns::TYPE::from(n) {
                simple_dns::TYPE::Unknown(_) => format!("TYPE{n}"),
                t => format!("{t:?}"),
            }
        }
        _ => {
            truncated = true;
            "?".to_owned()
        }
    };
    let response = flags & 0x8000 != 0;
    let mut addrs = Vec::new();
    if response && !truncated {
        if let Ok(packet) = simple_dns::Packet::parse(data) {
            for rr in &packet.answers {
                match &rr.rdata {
                    simple_dns::rdata::RData::A(a) => addrs.push(IpAddr::from(std::net::Ipv4Addr::from(a.address))),
                    simple_dns::rdata::RData::AAAA(a) => {
                        addrs.push(IpAddr::from(std::net::Ipv6Addr::from(a.address)));
                    }
                    _ => {}
                }
            }
        }
    }
    Some(Dns { name: labels.join("."), qtype, response, addrs, truncated })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16, flags: u16) -> Vec<u8> {
        let mut v = vec![0xab, 0xcd];
        v.extend_from_slice(&flags.to_be_bytes());
        v.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        for l in name.split('.') {
            v.push(l.len() as u8);
            v.extend_from_slice(l.as_bytes());
        }
        v.push(0);
        v.extend_from_slice(&qtype.to_be_bytes());
        v.extend_from_slice(&[0, 1]);
        v
    }

    #[test]
    fn questions_whole_and_cut() {
        let q = query("probity.example", 28, 0x0100);
        let d = dns(&q, q.len() as u64).unwrap();
        assert_eq!((d.name.as_str(), d.qtype.as_str(), d.truncated), ("probity.example", "AAAA", false));
        let d = dns(&q[..20], q.len() as u64).unwrap();
        assert_eq!((d.name.as_str(), d.qtype.as_str(), d.truncated), ("probity", "?", true));
        let q = query("x.y", 65, 0x0100);
        assert_eq!(dns(&q, q.len() as u64).unwrap().qtype, "HTTPS");
        let q = query("x.y", 4242, 0x0100);
        assert_eq!(dns(&q, q.len() as u64).unwrap().qtype, "TYPE4242");
        assert!(dns(b"short", 5).is_none());
        assert!(dns(&[0; 12], 12).is_none(), "no question");
    }

    /// Whatever bytes a traced program sends or receives, decoding them
    /// neither panics nor reads out of bounds: random datagrams, and
    /// valid answers with bytes flipped, cut and with counts raised (a
    /// small xorshift generator, so that failures replay).
    #[test]
    fn any_bytes_decode_without_panicking() {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut answer = query("a.test", 1, 0x8180);
        answer[7] = 1;
        answer.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 1, 2, 3]);
        for round in 0..20_000 {
            let mut data = if round % 2 == 0 {
                let len = (next() % 600) as usize;
                (0..len).map(|_| next() as u8).collect::<Vec<u8>>()
            } else {
                let mut d = answer.clone();
                for _ in 0..1 + next() % 4 {
                    let at = (next() as usize) % d.len();
                    d[at] = next() as u8;
                }
                // Raise a count, or cut the message.
                match next() % 3 {
                    0 => d[6 + (next() as usize) % 6] = 0xff,
                    1 => d.truncate((next() as usize) % d.len()),
                    _ => {}
                }
                d
            };
            if round % 7 == 0 {
                // A response bit, with a question.
                if data.len() >= 12 {
                    data[2] |= 0x80;
                    data[5] = 1;
                }
            }
            let full = data.len() as u64 + next() % 2;
            if let Some(d) = dns(&data, full) {
                assert!(d.name.len() <= data.len() * 4, "round {round}");
            }
        }
    }

    #[test]
    fn answers_give_addresses() {
        let mut r = query("a.test", 1, 0x8180);
        r[7] = 1; // ANCOUNT
                  // Name pointer to offset 12, A, IN, TTL 60, 4 bytes.
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 1, 2, 3]);
        let d = dns(&r, r.len() as u64).unwrap();
        assert!(d.response);
        assert_eq!(d.addrs, vec!["10.1.2.3".parse::<IpAddr>().unwrap()]);
    }
}
