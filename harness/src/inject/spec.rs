//! What to inject: strace's `--inject` rules as a typed [`Inject`], built
//! with `with_*` builders or parsed from strace's string form by the same
//! code.
//!
//! The string form is
//! `SET[:error=ERRNO|:retval=N][:signal=SIG][:delay_enter=D][:delay_exit=D][:when=EXPR]`
//! as strace reads it, with probity's filters `:path=GLOB`, `:fd=N` and
//! `:host=NAME|CIDR` on top. A bad rule is refused whole, naming the part
//! that is wrong, before anything runs.

use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use nix::errno::Errno;
use nix::sys::signal::Signal;
use syscalls::Sysno;

/// The largest invocation number strace accepts in `when=`.
const WHEN_MAX: u32 = 65535;

/// Why an injection rule is refused; each names the part that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The syscall set was empty (`:error=EIO`, or `,` alone).
    #[error("empty syscall set in {spec:?}")]
    EmptySet {
        /// The whole rule.
        spec: String,
    },
    /// A name or number in the set is not a syscall of this architecture,
    /// nor a libc function probity injects faults into.
    #[error("unknown syscall {name:?} (libc functions: {libc})", libc = LIBC_FUNCTIONS.join(", "))]
    UnknownSyscall {
        /// The name as written.
        name: String,
    },
    /// A key that is neither strace's nor probity's.
    #[error("unknown key {key:?} (expected error, retval, signal, delay_enter, delay_exit, when, path, fd or host)")]
    UnknownKey {
        /// The key as written.
        key: String,
    },
    /// An `error=` that is neither an errno name nor a number in 1..4095.
    #[error("unknown errno {value:?} (expected a name such as ENOSPC or a number in 1..4095)")]
    UnknownErrno {
        /// The value as written.
        value: String,
    },
    /// A `signal=` that is neither a signal name nor a number in 1..SIGRTMAX.
    #[error("unknown signal {value:?}")]
    UnknownSignal {
        /// The value as written.
        value: String,
    },
    /// A value that does not parse for its key.
    #[error("invalid {key}={value:?}: {expected}")]
    InvalidValue {
        /// The key.
        key: &'static str,
        /// The value as written.
        value: String,
        /// What the key takes.
        expected: &'static str,
    },
    /// Both `error=` and `retval=`, or one of them twice.
    #[error("error= and retval= exclude each other, and each may appear once")]
    ErrorAndRetval,
    /// A set that names both syscalls and libc functions.
    #[error("{spec:?} names syscalls and libc functions: a rule is on one or the other")]
    MixedSet {
        /// The whole rule.
        spec: String,
    },
    /// A key a rule on libc functions does not take.
    #[error("{key}= is not for libc functions ({function} takes {takes})")]
    NotForLibc {
        /// The key as written.
        key: String,
        /// The rule's function.
        function: &'static str,
        /// What it takes.
        takes: &'static str,
    },
    /// No `error=`, `retval=`, `signal=`, `delay_enter=` or `delay_exit=`.
    #[error("missing :error, :retval, :signal, :delay_enter or :delay_exit in {spec:?}")]
    NothingToInject {
        /// The whole rule.
        spec: String,
    },
}

/// What an injected call returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Answer {
    /// The call runs (a rule that only signals or delays).
    Run,
    /// The call fails with this errno and does not run.
    Error(Errno),
    /// The call returns this value and does not run.
    Retval(i64),
}

/// Which invocations of a syscall, counted from 1 per syscall and per
/// task, a rule applies to: strace's `when=first[..last][+[step]]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct When {
    first: u32,
    last: u32,
    step: u32,
}

impl When {
    /// Every invocation (the default).
    pub const ALWAYS: When = When { first: 1, last: u32::MAX, step: 1 };

    /// Invocation `n` only (`when=n`); 0 is taken as 1.
    pub fn only(n: u32) -> When {
        When { first: n.max(1), last: n.max(1), step: 1 }
    }

    /// Invocations `first` to `last` (or on, without a last), inclusive,
    /// every `step`-th; a `first` or `step` of 0 is taken as 1.
    pub fn range(first: u32, last: Option<u32>, step: u32) -> When {
        When { first: first.max(1), last: last.unwrap_or(u32::MAX), step: step.max(1) }
    }

    /// Whether invocation `n` (from 1) is one the rule applies to.
    pub fn matches(&self, n: u64) -> bool {
        n >= u64::from(self.first)
            && n <= u64::from(self.last)
            && (n - u64::from(self.first)).is_multiple_of(u64::from(self.step))
    }

    fn parse(s: &str) -> Result<When, SpecError> {
        let bad = || SpecError::InvalidValue {
            key: "when",
            value: s.to_owned(),
            expected: "first[..last][+[step]], numbers in 1..65535, last not below first",
        };
        let number = |t: &str, max: u32| t.parse::<u32>().ok().filter(|n| (1..=max).contains(n)).ok_or_else(bad);
        let (range, plus) = match s.split_once('+') {
            Some((r, step)) => (r, Some(step)),
            None => (s, None),
        };
        let (first, last) = match range.split_once("..") {
            Some((f, l)) => (number(f, WHEN_MAX)?, Some(number(l, WHEN_MAX - 1)?)),
            None => (number(range, WHEN_MAX)?, None),
        };
        if last.is_some_and(|l| l < first) {
            return Err(bad());
        }
        Ok(match (last, plus) {
            (None, None) => When::only(first),
            (last, None | Some("")) => When::range(first, last, 1),
            (last, Some(step)) => When::range(first, last, number(step, WHEN_MAX)?),
        })
    }
}

/// Which peers a `connect` or send rule applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// An address block (a single address is a /32 or /128).
    Net(IpNet),
    /// A host name, resolved when the rule is used, with the addresses it
    /// resolved to then.
    Name {
        /// The name as written.
        name: String,
        /// Its addresses.
        addrs: Vec<IpAddr>,
    },
}

impl Host {
    /// Whether `ip` is this host.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match self {
            Host::Net(net) => net.contains(&ip),
            Host::Name { addrs, .. } => addrs.contains(&ip),
        }
    }

    fn parse(s: &str) -> Result<Host, SpecError> {
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(Host::Net(net));
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Host::Net(IpNet::from(ip)));
        }
        use std::net::ToSocketAddrs;
        let addrs: Vec<IpAddr> = (s, 0).to_socket_addrs().map(|a| a.map(|a| a.ip()).collect()).unwrap_or_default();
        if addrs.is_empty() {
            return Err(SpecError::InvalidValue {
                key: "host",
                value: s.to_owned(),
                expected: "an address, a CIDR block, or a name that resolves",
            });
        }
        Ok(Host::Name { name: s.to_owned(), addrs })
    }
}

/// One injection rule: which calls, what they return, and which of their
/// invocations.
///
/// ```
/// use probity::inject::{Inject, When};
/// use nix::errno::Errno;
///
/// let typed = Inject::syscalls(["openat"])?.with_error(Errno::ENOSPC).with_when(When::range(2, None, 1));
/// let parsed: Inject = "openat:error=ENOSPC:when=2+".parse()?;
/// assert_eq!(typed, parsed);
/// # Ok::<(), probity::inject::SpecError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[must_use]
pub struct Inject {
    pub(crate) syscalls: Vec<Sysno>,
    pub(crate) answer: Answer,
    pub(crate) signal: Option<Signal>,
    pub(crate) delay_enter: Option<Duration>,
    pub(crate) delay_exit: Option<Duration>,
    pub(crate) when: When,
    pub(crate) path: Option<glob::Pattern>,
    pub(crate) fd: Option<i32>,
    pub(crate) host: Option<Host>,
    /// For a rule on libc functions (then `syscalls` is empty): the
    /// functions, and the glob their path or host name must match.
    pub(crate) libc: Vec<&'static str>,
    pub(crate) libc_pattern: Option<String>,
}

impl Inject {
    /// A rule on these syscalls (names or numbers) that does nothing yet:
    /// give it an error, a return value, a signal or a delay.
    pub fn syscalls<S: AsRef<str>>(set: impl IntoIterator<Item = S>) -> Result<Inject, SpecError> {
        let mut syscalls = Vec::new();
        for name in set {
            let name = name.as_ref().trim();
            if name.is_empty() {
                continue;
            }
            let sysno = match name.parse::<usize>() {
                Ok(nr) => Sysno::new(nr),
                Err(_) => name.parse::<Sysno>().ok(),
            };
            let sysno = sysno.ok_or_else(|| SpecError::UnknownSyscall { name: name.to_owned() })?;
            if !syscalls.contains(&sysno) {
                syscalls.push(sysno);
            }
        }
        if syscalls.is_empty() {
            return Err(SpecError::EmptySet { spec: String::new() });
        }
        Ok(Inject { syscalls, ..Inject::empty() })
    }

    /// A rule on libc functions (`getaddrinfo`, `fopen`), answered by the
    /// preload library before the real function runs: give it an error
    /// (`EAI_*` for `getaddrinfo`, an errno for `fopen`).
    pub fn libc<S: AsRef<str>>(set: impl IntoIterator<Item = S>) -> Result<Inject, SpecError> {
        let mut libc = Vec::new();
        for name in set {
            let name = name.as_ref().trim();
            if name.is_empty() {
                continue;
            }
            let f = LIBC_FUNCTIONS
                .iter()
                .find(|f| **f == name)
                .ok_or_else(|| SpecError::UnknownSyscall { name: name.to_owned() })?;
            if !libc.contains(f) {
                libc.push(*f);
            }
        }
        if libc.is_empty() {
            return Err(SpecError::EmptySet { spec: String::new() });
        }
        if libc.len() > 1 {
            // One answer cannot be both an EAI code and an errno.
            return Err(SpecError::NotForLibc {
                key: "set".into(),
                function: libc[0],
                takes: "a set of one function: getaddrinfo answers with EAI codes, fopen with an errno",
            });
        }
        Ok(Inject { libc, ..Inject::empty() })
    }

    fn empty() -> Inject {
        Inject {
            syscalls: Vec::new(),
            answer: Answer::Run,
            signal: None,
            delay_enter: None,
            delay_exit: None,
            when: When::ALWAYS,
            path: None,
            fd: None,
            host: None,
            libc: Vec::new(),
            libc_pattern: None,
        }
    }

    /// Whether the rule is on libc functions rather than syscalls.
    pub(crate) fn is_libc(&self) -> bool {
        !self.libc.is_empty()
    }

    /// strace's `--fault=SET`: `SET` failing with `ENOSYS` unless an
    /// `error=` says otherwise.
    pub fn fault(spec: &str) -> Result<Inject, SpecError> {
        let mut rule = Inject::parse_with(spec, true)?;
        if rule.answer == Answer::Run {
            rule.answer = Answer::Error(Errno::ENOSYS);
        }
        Ok(rule)
    }

    /// The call fails with `errno` instead of running.
    pub fn with_error(mut self, errno: Errno) -> Self {
        self.answer = Answer::Error(errno);
        self
    }

    /// The call returns `value` instead of running.
    pub fn with_retval(mut self, value: i64) -> Self {
        self.answer = Answer::Retval(value);
        self
    }

    /// `sig` is sent to the calling thread when it enters the call.
    pub fn with_signal(mut self, sig: Signal) -> Self {
        self.signal = Some(sig);
        self
    }

    /// The calling thread waits this long before the call.
    pub fn with_delay_enter(mut self, d: Duration) -> Self {
        self.delay_enter = Some(d);
        self
    }

    /// The calling thread waits this long after the call.
    pub fn with_delay_exit(mut self, d: Duration) -> Self {
        self.delay_exit = Some(d);
        self
    }

    /// The invocations the rule applies to.
    pub fn with_when(mut self, when: When) -> Self {
        self.when = when;
        self
    }

    /// Only calls whose path argument, made absolute against the caller's
    /// directory (or the descriptor it is relative to), matches `pattern`;
    /// for a call with no path argument (`write`, `fsync`), the path of
    /// the descriptor in its first argument. Calls that do not match are
    /// not counted either.
    ///
    /// On a rule on `fopen`, the path as the program passed it.
    pub fn with_path(mut self, pattern: glob::Pattern) -> Self {
        if self.is_libc() {
            self.libc_pattern = Some(pattern.as_str().to_owned());
        }
        self.path = Some(pattern);
        self
    }

    /// On a rule on `getaddrinfo`: only lookups of a name matching `glob`
    /// (in any case), as `:host=` in the string form.
    pub fn with_name(mut self, glob: &str) -> Result<Self, SpecError> {
        if self.libc != ["getaddrinfo"] {
            return Err(SpecError::NotForLibc {
                key: "name".into(),
                function: self.libc.first().copied().unwrap_or("a syscall rule"),
                takes: "a host-name glob only on getaddrinfo (with_host for connect and sends)",
            });
        }
        self.libc_pattern = Some(libc_glob("host", glob)?);
        Ok(self)
    }

    /// Only calls whose first argument is descriptor `fd`.
    pub fn with_fd(mut self, fd: i32) -> Self {
        self.fd = Some(fd);
        self
    }

    /// Only calls whose socket address (`connect`, `sendto`, `sendmsg`)
    /// is `host`.
    pub fn with_host(mut self, host: Host) -> Self {
        self.host = Some(host);
        self
    }

    /// The syscalls the rule applies to.
    pub fn syscall_set(&self) -> &[Sysno] {
        &self.syscalls
    }

    /// What an injected call returns.
    pub fn answer(&self) -> Answer {
        self.answer
    }

    fn parse_with(spec: &str, fault: bool) -> Result<Inject, SpecError> {
        let mut parts = spec.split(':');
        let set = parts.next().unwrap_or_default();
        let names: Vec<&str> = set.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
        let libc_names = names.iter().filter(|n| LIBC_FUNCTIONS.contains(n)).count();
        if libc_names > 0 && libc_names < names.len() {
            return Err(SpecError::MixedSet { spec: spec.to_owned() });
        }
        if libc_names > 0 {
            return Inject::parse_libc(spec, Inject::libc(names)?, parts, fault);
        }
        let mut rule = Inject::syscalls(set.split(',')).map_err(|e| match e {
            SpecError::EmptySet { .. } => SpecError::EmptySet { spec: spec.to_owned() },
            e => e,
        })?;
        let mut result_given = false;
        for part in parts {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            match key {
                "error" | "retval" if result_given => return Err(SpecError::ErrorAndRetval),
                "error" => {
                    result_given = true;
                    rule.answer = Answer::Error(parse_errno(value)?);
                }
                "retval" if !fault => {
                    result_given = true;
                    let v = value.parse::<i64>().map_err(|_| SpecError::InvalidValue {
                        key: "retval",
                        value: value.to_owned(),
                        expected: "an integer",
                    })?;
                    rule.answer = Answer::Retval(v);
                }
                "signal" if !fault => rule.signal = Some(parse_signal(value)?),
                "delay_enter" if !fault => rule.delay_enter = Some(parse_delay("delay_enter", value)?),
                "delay_exit" if !fault => rule.delay_exit = Some(parse_delay("delay_exit", value)?),
                // strace: the last `when=` wins.
                "when" => rule.when = When::parse(value)?,
                "path" => {
                    let p = glob::Pattern::new(value).map_err(|_| SpecError::InvalidValue {
                        key: "path",
                        value: value.to_owned(),
                        expected: "a glob pattern",
                    })?;
                    rule.path = Some(p);
                }
                "fd" => {
                    let fd = value.parse::<i32>().ok().filter(|fd| *fd >= 0).ok_or_else(|| {
                        SpecError::InvalidValue { key: "fd", value: value.to_owned(), expected: "a descriptor number" }
                    })?;
                    rule.fd = Some(fd);
                }
                "host" => rule.host = Some(Host::parse(value)?),
                _ => return Err(SpecError::UnknownKey { key: key.to_owned() }),
            }
        }
        if !fault
            && rule.answer == Answer::Run
            && rule.signal.is_none()
            && rule.delay_enter.is_none()
            && rule.delay_exit.is_none()
        {
            return Err(SpecError::NothingToInject { spec: spec.to_owned() });
        }
        Ok(rule)
    }
}

impl Inject {
    /// The keys of a rule on a libc function: `error=` (an `EAI_*` name
    /// or an errno), `retval=` (getaddrinfo), `when=`, and `path=`
    /// (fopen) or `host=` (getaddrinfo) as a glob on the argument.
    fn parse_libc<'a>(
        spec: &str,
        mut rule: Inject,
        parts: impl Iterator<Item = &'a str>,
        fault: bool,
    ) -> Result<Inject, SpecError> {
        let function = rule.libc[0];
        let resolver = function == "getaddrinfo";
        let takes = if resolver {
            "error=EAI_*, retval=N, when= and host=NAME-GLOB"
        } else {
            "error=ERRNO, when= and path=GLOB"
        };
        let not_for = |key: &str| SpecError::NotForLibc { key: key.to_owned(), function, takes };
        let mut result_given = false;
        for part in parts {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            match key {
                "error" | "retval" if result_given => return Err(SpecError::ErrorAndRetval),
                "error" if resolver => {
                    result_given = true;
                    rule.answer = Answer::Retval(i64::from(parse_eai(value)?));
                }
                "error" => {
                    result_given = true;
                    rule.answer = Answer::Error(parse_errno(value)?);
                }
                "retval" if resolver && !fault => {
                    result_given = true;
                    let v = value.parse::<i32>().ok().filter(|v| *v != 0).ok_or_else(|| SpecError::InvalidValue {
                        key: "retval",
                        value: value.to_owned(),
                        expected: "a nonzero getaddrinfo result",
                    })?;
                    rule.answer = Answer::Retval(i64::from(v));
                }
                "when" => rule.when = When::parse(value)?,
                "path" if !resolver => rule.libc_pattern = Some(libc_glob("path", value)?),
                "host" if resolver => rule.libc_pattern = Some(libc_glob("host", value)?),
                "retval" | "signal" | "delay_enter" | "delay_exit" | "path" | "fd" | "host" => {
                    return Err(not_for(key))
                }
                _ => return Err(SpecError::UnknownKey { key: key.to_owned() }),
            }
        }
        if rule.answer == Answer::Run {
            if !fault {
                return Err(SpecError::NothingToInject { spec: spec.to_owned() });
            }
            rule.answer =
                if resolver { Answer::Retval(i64::from(libc::EAI_FAIL)) } else { Answer::Error(Errno::ENOSYS) };
        }
        Ok(rule)
    }
}

/// The libc functions a rule can name.
pub(crate) const LIBC_FUNCTIONS: &[&str] = &["getaddrinfo", "fopen"];

/// getaddrinfo's error names, as `<netdb.h>` has them.
const EAI: &[(&str, i32)] = &[
    ("EAI_BADFLAGS", libc::EAI_BADFLAGS),
    ("EAI_NONAME", libc::EAI_NONAME),
    ("EAI_AGAIN", libc::EAI_AGAIN),
    ("EAI_FAIL", libc::EAI_FAIL),
    ("EAI_NODATA", -5),
    ("EAI_FAMILY", libc::EAI_FAMILY),
    ("EAI_SOCKTYPE", libc::EAI_SOCKTYPE),
    ("EAI_SERVICE", libc::EAI_SERVICE),
    ("EAI_ADDRFAMILY", -9),
    ("EAI_MEMORY", libc::EAI_MEMORY),
    ("EAI_SYSTEM", libc::EAI_SYSTEM),
    ("EAI_OVERFLOW", libc::EAI_OVERFLOW),
];

fn parse_eai(value: &str) -> Result<i32, SpecError> {
    EAI.iter().find(|(n, _)| *n == value).map(|(_, c)| *c).ok_or_else(|| SpecError::InvalidValue {
        key: "error",
        value: value.to_owned(),
        expected: "an EAI_* name, such as EAI_AGAIN or EAI_NONAME",
    })
}

/// A glob the preload library matches with `fnmatch`: no tab, newline or
/// NUL (the rules travel one a line), and short enough for its storage.
fn libc_glob(key: &'static str, value: &str) -> Result<String, SpecError> {
    let ok = !value.is_empty()
        && value.len() <= probity_common::shm::FAULT_PATTERN_LEN
        && !value.contains(['\t', '\n', '\0'])
        && glob::Pattern::new(value).is_ok();
    if !ok {
        return Err(SpecError::InvalidValue {
            key,
            value: value.to_owned(),
            expected: "a glob pattern of at most 255 bytes, without tab or newline",
        });
    }
    Ok(value.to_owned())
}

/// The code the preload library answers a libc rule's call with, or why
/// the rule cannot be answered there. The string form cannot make such a
/// rule; the typed builders can, and the library would skip its line
/// without a word, so it is refused here.
fn libc_code(r: &Inject) -> Result<i64, &'static str> {
    let resolver = r.libc.first() == Some(&"getaddrinfo");
    if r.signal.is_some() || r.delay_enter.is_some() || r.delay_exit.is_some() || r.fd.is_some() || r.host.is_some() {
        return Err("a libc rule takes no signal, delay, descriptor or address (those are for syscall rules)");
    }
    if resolver && r.path.is_some() {
        return Err("getaddrinfo takes a host-name glob (with_name), not a path");
    }
    if let Some(p) = &r.libc_pattern {
        libc_glob("path", p).map_err(|_| "its glob must be at most 255 bytes, without tab or newline")?;
    }
    match (r.answer, resolver) {
        (Answer::Run, _) => Err("it has no error= or retval= to answer with"),
        (Answer::Error(_), true) => Err("getaddrinfo answers with an EAI_* code (retval=), not an errno"),
        (Answer::Retval(v), true) if v == 0 || i32::try_from(v).is_err() => {
            Err("getaddrinfo's answer must be a nonzero EAI_* code")
        }
        (Answer::Retval(_), false) => Err("fopen answers with an errno (error=), not a value"),
        (Answer::Error(e), false) => Ok(e as i64),
        (Answer::Retval(v), true) => Ok(v),
    }
}

/// The libc-level rules of `rules` as the preload library reads them
/// (`FAULTS_ENV`); `None` without any. A rule on `fopen` is on `fopen64`
/// too (each counted apart).
pub(crate) fn libc_wire(rules: &[Inject]) -> Result<Option<String>, super::FilterError> {
    let mut out = String::new();
    for r in rules.iter().filter(|r| r.is_libc()) {
        let code = libc_code(r).map_err(|why| super::FilterError::LibcRule {
            function: r.libc.first().copied().unwrap_or_default().to_owned(),
            why,
        })?;
        for f in &r.libc {
            let names: &[&str] = if *f == "fopen" { &["fopen", "fopen64"] } else { &[*f] };
            for name in names {
                out.push_str(&format!(
                    "{name}\t{code}\t{}\t{}\t{}\t{}\n",
                    r.when.first,
                    r.when.last,
                    r.when.step,
                    r.libc_pattern.as_deref().unwrap_or("")
                ));
            }
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

impl FromStr for Inject {
    type Err = SpecError;

    /// strace's `--inject=` form, with probity's filters.
    fn from_str(spec: &str) -> Result<Inject, SpecError> {
        Inject::parse_with(spec, false)
    }
}

/// An errno name (`ENOSPC`) or number in 1..4095, as strace takes it.
fn parse_errno(value: &str) -> Result<Errno, SpecError> {
    let unknown = || SpecError::UnknownErrno { value: value.to_owned() };
    if let Ok(n) = value.parse::<i32>() {
        // An errno nix does not know would read as 0: a success.
        return (1..4096)
            .contains(&n)
            .then(|| Errno::from_raw(n))
            .filter(|e| *e != Errno::UnknownErrno)
            .ok_or_else(unknown);
    }
    // nix names every errno it knows; the kernel's range is small enough
    // to search.
    (1..4096).map(Errno::from_raw).find(|e| *e != Errno::UnknownErrno && format!("{e:?}") == value).ok_or_else(unknown)
}

/// A signal name, with or without `SIG`, or a number in 1..SIGRTMAX.
fn parse_signal(value: &str) -> Result<Signal, SpecError> {
    let unknown = || SpecError::UnknownSignal { value: value.to_owned() };
    if let Ok(n) = value.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| unknown());
    }
    let name = if value.starts_with("SIG") { value.to_owned() } else { format!("SIG{value}") };
    name.parse::<Signal>().map_err(|_| unknown())
}

/// strace's time format: a decimal number, microseconds unless it ends in
/// `s`, `ms`, `us` or `ns`.
fn parse_delay(key: &'static str, value: &str) -> Result<Duration, SpecError> {
    let bad =
        || SpecError::InvalidValue { key, value: value.to_owned(), expected: "a time such as 500us, 10ms or 1.5s" };
    let (number, scale) = if let Some(n) = value.strip_suffix("ns") {
        (n, 1e-9)
    } else if let Some(n) = value.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = value.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1.0)
    } else {
        (value, 1e-6)
    };
    let n = number.parse::<f64>().ok().filter(|n| n.is_finite() && *n >= 0.0).ok_or_else(bad)?;
    Duration::try_from_secs_f64(n * scale).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_string_form_and_the_builders_agree() {
        let parsed: Inject = "openat,write:error=ENOSPC:when=2..5+2".parse().unwrap();
        let built = Inject::syscalls(["openat", "write"]).unwrap().with_error(Errno::ENOSPC).with_when(When::range(
            2,
            Some(5),
            2,
        ));
        assert_eq!(parsed, built);
        let parsed: Inject =
            "connect:retval=0:signal=USR1:delay_enter=10ms:delay_exit=2:host=127.0.0.0/8".parse().unwrap();
        assert_eq!(parsed.answer, Answer::Retval(0));
        assert_eq!(parsed.signal, Some(Signal::SIGUSR1));
        assert_eq!(parsed.delay_enter, Some(Duration::from_millis(10)));
        assert_eq!(parsed.delay_exit, Some(Duration::from_micros(2)));
        assert!(parsed.host.as_ref().unwrap().contains("127.0.0.9".parse().unwrap()));
        assert!(!parsed.host.unwrap().contains("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn when_forms_select_the_invocations_strace_selects() {
        let pick = |w: &str| {
            let w = When::parse(w).unwrap();
            (1..=10).filter(|n| w.matches(*n)).collect::<Vec<_>>()
        };
        assert_eq!(pick("3"), [3]);
        assert_eq!(pick("3..5"), [3, 4, 5]);
        assert_eq!(pick("8+"), [8, 9, 10]);
        assert_eq!(pick("2+3"), [2, 5, 8]);
        assert_eq!(pick("2..6+2"), [2, 4, 6]);
        assert_eq!(pick("2..6+"), [2, 3, 4, 5, 6]);
    }

    #[test]
    fn syscalls_are_names_or_numbers_of_this_architecture() {
        let rule: Inject = "2,close:error=EIO".parse().unwrap();
        assert_eq!(rule.syscalls, [Sysno::new(2).unwrap(), Sysno::close]);
        assert_eq!(rule.answer, Answer::Error(Errno::EIO));
    }

    #[test]
    fn fault_defaults_to_enosys() {
        assert_eq!(Inject::fault("chdir").unwrap().answer, Answer::Error(Errno::ENOSYS));
        assert_eq!(Inject::fault("chdir:error=EPERM:when=3").unwrap().answer, Answer::Error(Errno::EPERM));
        assert_eq!(Inject::fault("chdir:retval=3"), Err(SpecError::UnknownKey { key: "retval".into() }));
    }

    #[test]
    fn bad_rules_name_the_bad_part() {
        let err = |s: &str| s.parse::<Inject>().unwrap_err();
        assert_eq!(err("nosuchcall:error=EIO"), SpecError::UnknownSyscall { name: "nosuchcall".into() });
        assert_eq!(err("openat:error=ENOSUCH"), SpecError::UnknownErrno { value: "ENOSUCH".into() });
        assert_eq!(err("openat:error=0"), SpecError::UnknownErrno { value: "0".into() });
        // In range, but no errno: it would read as 0, a success.
        assert_eq!(err("openat:error=4000"), SpecError::UnknownErrno { value: "4000".into() });
        assert_eq!(err("openat:eror=EIO"), SpecError::UnknownKey { key: "eror".into() });
        assert_eq!(err(":error=EIO"), SpecError::EmptySet { spec: ":error=EIO".into() });
        assert!(matches!(err("openat:error=EIO:when=0"), SpecError::InvalidValue { key: "when", .. }));
        assert!(matches!(err("openat:error=EIO:when=5..3"), SpecError::InvalidValue { key: "when", .. }));
        assert!(matches!(err("openat:error=EIO:when=1+0"), SpecError::InvalidValue { key: "when", .. }));
        assert_eq!(err("openat:error=EIO:retval=1"), SpecError::ErrorAndRetval);
        assert_eq!(err("openat:when=2"), SpecError::NothingToInject { spec: "openat:when=2".into() });
        assert_eq!(err("openat:signal=SIGNOPE"), SpecError::UnknownSignal { value: "SIGNOPE".into() });
        assert!(matches!(err("openat:delay_enter=soon"), SpecError::InvalidValue { key: "delay_enter", .. }));
        assert!(matches!(err("openat:error=EIO:fd=-1"), SpecError::InvalidValue { key: "fd", .. }));
        assert!(matches!(err("openat:error=EIO:path=[a"), SpecError::InvalidValue { key: "path", .. }));
    }

    #[test]
    fn libc_rules_take_their_own_answers_and_filters() {
        let r: Inject = "getaddrinfo:error=EAI_NONAME:when=2+:host=*.example.com".parse().unwrap();
        assert!(r.is_libc() && r.syscalls.is_empty());
        assert_eq!(r.answer, Answer::Retval(i64::from(libc::EAI_NONAME)));
        let f: Inject = "fopen:error=EACCES:path=/etc/*".parse().unwrap();
        assert_eq!(f.answer, Answer::Error(Errno::EACCES));
        assert_eq!(
            libc_wire(&[r, f, "openat:error=EIO".parse().unwrap()]).unwrap().unwrap(),
            "getaddrinfo\t-2\t2\t4294967295\t1\t*.example.com\n\
             fopen\t13\t1\t4294967295\t1\t/etc/*\nfopen64\t13\t1\t4294967295\t1\t/etc/*\n"
        );
        assert_eq!(Inject::fault("getaddrinfo").unwrap().answer, Answer::Retval(i64::from(libc::EAI_FAIL)));
        let typed = Inject::libc(["getaddrinfo"])
            .unwrap()
            .with_retval(i64::from(libc::EAI_NONAME))
            .with_when(When::range(2, None, 1))
            .with_name("*.example.com")
            .unwrap();
        let parsed: Inject = "getaddrinfo:error=EAI_NONAME:when=2+:host=*.example.com".parse().unwrap();
        assert_eq!(typed, parsed);
        // What the builders can make and the library could not answer is
        // refused before anything runs, not skipped.
        let refused = |r: Inject| match libc_wire(&[r]) {
            Err(super::super::FilterError::LibcRule { why, .. }) => why,
            other => panic!("{other:?}"),
        };
        let gai = || Inject::libc(["getaddrinfo"]).unwrap();
        assert!(refused(gai()).contains("no error="));
        assert!(refused(gai().with_error(Errno::EIO)).contains("EAI_"));
        assert!(refused(gai().with_retval(1 << 40)).contains("nonzero EAI_"));
        assert!(refused(gai().with_retval(-3).with_path(glob::Pattern::new("/x").unwrap())).contains("not a path"));
        assert!(refused(gai().with_retval(-3).with_fd(3)).contains("no signal"));
        let fopen = || Inject::libc(["fopen"]).unwrap();
        assert!(refused(fopen().with_retval(1)).contains("errno"));
        assert!(refused(fopen().with_error(Errno::EIO).with_path(glob::Pattern::new("a\tb").unwrap())).contains("tab"));
        assert!(matches!(fopen().with_name("x"), Err(SpecError::NotForLibc { .. })));
        assert!(matches!(Inject::syscalls(["connect"]).unwrap().with_name("x"), Err(SpecError::NotForLibc { .. })));
        let err = |s: &str| s.parse::<Inject>().unwrap_err();
        assert_eq!(err("fopen,openat:error=EIO"), SpecError::MixedSet { spec: "fopen,openat:error=EIO".into() });
        assert!(matches!(err("getaddrinfo:error=ENOSPC"), SpecError::InvalidValue { key: "error", .. }));
        assert!(matches!(err("fopen:retval=1"), SpecError::NotForLibc { function: "fopen", .. }));
        assert!(matches!(err("fopen:error=EIO:host=x"), SpecError::NotForLibc { .. }));
        assert!(matches!(err("getaddrinfo:error=EAI_FAIL:signal=USR1"), SpecError::NotForLibc { .. }));
        assert!(matches!(err("fopen:error=EIO:path=a\tb"), SpecError::InvalidValue { key: "path", .. }));
        assert!(matches!(err("fopen:when=2"), SpecError::NothingToInject { .. }));
        assert!(matches!(err("fopen,getaddrinfo:error=EIO"), SpecError::NotForLibc { .. }));
    }
}
