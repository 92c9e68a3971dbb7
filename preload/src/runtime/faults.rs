//! Fault injection at libc level: the rules the harness passed in
//! `FAULTS_ENV`, and the check a `#[hook(inject)]` makes before calling
//! the real function.
//!
//! Calls are counted per rule in each process (a forked child starts from
//! zero, as does each exec'd image); a call a rule's pattern does not
//! match is not counted by that rule. The first rule whose `when` range
//! takes the call answers it: the real function does not run.
//!
//! Nothing here allocates: the rules are read in place from the
//! environment at load time into fixed storage.

use std::ffi::{c_char, c_int};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use probity_common::shm::{FAULTS_ENV, FAULT_PATTERN_LEN, MAX_FAULTS};

/// One rule as the library holds it.
struct Rule {
    function: [u8; 32],
    function_len: usize,
    /// The errno to set (a function returning a pointer) or the result
    /// (`getaddrinfo`'s `EAI_*` code).
    code: c_int,
    first: u64,
    last: u64,
    step: u64,
    /// NUL-terminated; empty: every call.
    pattern: [u8; FAULT_PATTERN_LEN + 1],
    calls: AtomicU64,
}

struct Rules {
    rules: [Option<Rule>; MAX_FAULTS],
}

static RULES: OnceLock<Rules> = OnceLock::new();

/// Reads the rules from the environment; called once when the library
/// loads, before the program's `main`.
pub(crate) fn init() {
    let Some(text) = super::ring::env_value(FAULTS_ENV) else { return };
    let mut rules: [Option<Rule>; MAX_FAULTS] = Default::default();
    let mut n = 0;
    for line in text.to_bytes().split(|b| *b == b'\n') {
        if n == MAX_FAULTS {
            break;
        }
        if let Some(r) = parse(line) {
            rules[n] = Some(r);
            n += 1;
        }
    }
    if n > 0 {
        let _ = RULES.set(Rules { rules });
    }
}

/// A forked child counts from zero.
pub(crate) fn after_fork_in_child() {
    if let Some(r) = RULES.get() {
        r.rules.iter().flatten().for_each(|r| r.calls.store(0, Ordering::Relaxed));
    }
}

fn parse(line: &[u8]) -> Option<Rule> {
    let mut fields = line.split(|b| *b == b'\t');
    let function = fields.next()?;
    let number = |f: Option<&[u8]>| -> Option<i64> { std::str::from_utf8(f?).ok()?.parse().ok() };
    let code = c_int::try_from(number(fields.next())?).ok()?;
    let first = u64::try_from(number(fields.next())?).ok()?;
    let last = u64::try_from(number(fields.next())?).ok()?;
    let step = u64::try_from(number(fields.next())?).ok()?.max(1);
    let pattern = fields.next().unwrap_or_default();
    if function.is_empty() || function.len() > 32 || pattern.len() > FAULT_PATTERN_LEN || pattern.contains(&0) {
        return None;
    }
    let mut r = Rule {
        function: [0; 32],
        function_len: function.len(),
        code,
        first,
        last,
        step,
        pattern: [0; FAULT_PATTERN_LEN + 1],
        calls: AtomicU64::new(0),
    };
    r.function[..function.len()].copy_from_slice(function);
    r.pattern[..pattern.len()].copy_from_slice(pattern);
    Some(r)
}

impl Rule {
    fn takes(&self, n: u64) -> bool {
        n >= self.first && n <= self.last && (n - self.first).is_multiple_of(self.step)
    }

    /// Whether the call's subject (a path, a host name) matches: as
    /// `fnmatch` reads a glob, paths with `*` not crossing a `/`, names
    /// in any case.
    fn matches(&self, function: &str, subject: *const c_char) -> bool {
        if self.pattern[0] == 0 {
            return true;
        }
        if subject.is_null() {
            return false;
        }
        let flags = if function == "getaddrinfo" { libc::FNM_CASEFOLD } else { libc::FNM_PATHNAME };
        // SAFETY: both strings are NUL-terminated; the subject is the
        // caller's argument, valid for the call.
        unsafe { libc::fnmatch(self.pattern.as_ptr().cast(), subject, flags) == 0 }
    }
}

/// The code a rule answers this call of `function` with, if one takes it;
/// counts the call for every rule of the function whose pattern matches.
pub fn injected_fault(function: &str, subject: *const c_char) -> Option<c_int> {
    let rules = RULES.get()?;
    let mut chosen = None;
    for r in rules.rules.iter().flatten() {
        if &r.function[..r.function_len] != function.as_bytes() || !r.matches(function, subject) {
            continue;
        }
        let n = r.calls.fetch_add(1, Ordering::Relaxed) + 1;
        if chosen.is_none() && r.takes(n) {
            chosen = Some(r.code);
        }
    }
    chosen
}

/// What an injected call returns, from its rule's code.
pub trait Injectable {
    /// The result for `code`.
    fn injected(code: c_int) -> Self;
}

/// A pointer result: NULL, with `errno` set to the code.
impl<T> Injectable for *mut T {
    fn injected(code: c_int) -> Self {
        // SAFETY: the calling thread's errno.
        unsafe { *super::errno_ptr() = code };
        std::ptr::null_mut()
    }
}

/// An integer result (`getaddrinfo`'s `EAI_*`): the code itself.
impl Injectable for c_int {
    fn injected(code: c_int) -> Self {
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_read_and_bad_lines_refused() {
        let r = parse(b"fopen\t13\t2\t4\t1\t/etc/*").unwrap();
        assert_eq!((&r.function[..r.function_len], r.code, r.first, r.last), (&b"fopen"[..], 13, 2, 4));
        assert!(!r.takes(1) && r.takes(2) && r.takes(4) && !r.takes(5));
        assert!(parse(b"fopen\tx\t1\t1\t1\t").is_none());
        assert!(parse(b"\t13\t1\t1\t1\t").is_none());
        assert!(parse(b"fopen\t13\t1").is_none());
        let long = [b'a'; FAULT_PATTERN_LEN + 1];
        let mut line = b"fopen\t13\t1\t1\t1\t".to_vec();
        line.extend_from_slice(&long);
        assert!(parse(&line).is_none());
    }

    #[test]
    fn patterns_match_as_globs() {
        let r = parse(b"fopen\t13\t1\t1\t1\t/etc/*").unwrap();
        assert!(r.matches("fopen", c"/etc/hostname".as_ptr()));
        assert!(!r.matches("fopen", c"/etc/ssl/x".as_ptr()));
        assert!(!r.matches("fopen", std::ptr::null()));
        let h = parse(b"getaddrinfo\t-3\t1\t1\t1\t*.example.com").unwrap();
        assert!(h.matches("getaddrinfo", c"API.Example.com".as_ptr()));
    }
}
