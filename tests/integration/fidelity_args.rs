//! Fidelity against strace, argument by argument: for the calls whose
//! arguments strace names (ioctl requests, socket options, statx masks,
//! signals, netlink addresses, prctl options, link targets, ...), each
//! argument probity shows is the text strace 6 prints in that position,
//! and so is the result.
//!
//! What differs between two runs is normalised on both sides: the traced
//! process's pid becomes `<pid>`. Where probity shows a pointer it claims
//! nothing about the memory behind it, so strace may show that memory
//! there (`[1]`, `{stx_mask=...}`); everywhere else the texts must be equal.
//! `rt_sigreturn` is compared by its result only: strace reads the signal
//! mask from the signal frame, which probity does not capture.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use probity::{EventKind, Trace, TracerKind};

/// The calls compared; the others (loading, stdio) are the plain
/// fidelity suite's business.
const COMPARED: &[&str] = &[
    "ioctl",
    "fadvise64",
    "arch_prctl",
    "socket",
    "setsockopt",
    "getsockopt",
    "statx",
    "fcntl",
    "epoll_create1",
    "rt_sigaction",
    "kill",
    "bind",
    "getsockname",
    "prctl",
    "readlink",
    "readlinkat",
    "getcwd",
    "setitimer",
    "rt_sigreturn",
];

/// One call as text: its name, arguments and result.
#[derive(Debug)]
pub(super) struct Call {
    pub(super) name: String,
    pub(super) args: Vec<String>,
    /// `0`, `-1 ENOTTY (Inappropriate ioctl for device)`; strace's
    /// decoding of a value (`0x8802 (flags O_RDWR)`) is cut off.
    pub(super) ret: String,
}

/// Runs `strace -ff` with strings up to 4096 bytes (paths are never cut by
/// probity below its path limit) and returns the main process's calls.
fn strace(program: &str, args: &[&str]) -> Vec<Call> {
    let (tasks, status) = strace_tasks(program, args, &[]);
    assert!(status.success(), "{program} under strace failed: {status}");
    // One process: one task.
    assert_eq!(tasks.len(), 1, "{program} should be one task: {:?}", tasks.keys());
    let (pid, lines) = tasks.into_iter().next().unwrap();
    let pid = pid.to_string();
    lines
        .iter()
        .filter(|l| !l.starts_with("---") && !l.starts_with("+++"))
        .filter_map(|l| parse_strace_line(l, &pid))
        .filter(|c| COMPARED.contains(&c.name.as_str()))
        .collect()
}

/// Runs `strace -ff`: each task's lines, keyed by thread id, and how
/// strace ended (it dies by the signal that killed the traced program).
pub(super) fn strace_tasks(
    program: &str,
    args: &[&str],
    extra: &[&str],
) -> (BTreeMap<u32, Vec<String>>, std::process::ExitStatus) {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("t");
    let status = Command::new("strace")
        .args(["-ff", "-qq", "-s", "4096"])
        .args(extra)
        .arg("-o")
        .arg(&prefix)
        .arg(program)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .expect("strace is the oracle here: install it (`cargo xtask setup`)");
    let mut tasks = BTreeMap::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let tid: u32 = path.extension().unwrap().to_str().unwrap().parse().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        tasks.insert(tid, text.lines().map(str::to_owned).collect());
    }
    (tasks, status)
}

/// Splits `name(a, b, c) = ret` into its parts, at the top level of
/// quotes, brackets and braces.
pub(super) fn parse_strace_line(line: &str, pid: &str) -> Option<Call> {
    let open = line.find('(')?;
    let name = line[..open].to_owned();
    let (mut depth, mut quoted, mut escaped) = (0i32, false, false);
    let mut args = Vec::new();
    let mut current = String::new();
    let mut end = None;
    for (i, ch) in line[open + 1..].char_indices() {
        if quoted {
            current.push(ch);
            match ch {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
            continue;
        }
        match ch {
            '"' => quoted = true,
            '(' | '[' | '{' => depth += 1,
            ')' if depth == 0 => {
                end = Some(open + 1 + i);
                break;
            }
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                args.push(normalise(current.trim(), pid));
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(ch);
    }
    let end = end?;
    if !current.trim().is_empty() {
        args.push(normalise(current.trim(), pid));
    }
    let ret = line[end + 1..].trim_start().strip_prefix("= ")?.trim();
    let ret = match ret.strip_prefix("-1 ") {
        Some(_) => ret.to_owned(),
        // A value, without strace's decoding of it.
        None => ret.split(' ').next().unwrap_or_default().to_owned(),
    };
    Some(Call { name, args, ret: normalise(&ret, pid) })
}

/// The pid as a word replaced by `<pid>`.
pub(super) fn normalise(text: &str, pid: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(pid) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + pid.len()..].chars().next();
        let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        out.push_str(&rest[..at]);
        out.push_str(if word(before) || word(after) { pid } else { "<pid>" });
        rest = &rest[at + pid.len()..];
    }
    out.push_str(rest);
    out
}

/// Traces the program with the eBPF tracer alone and returns its calls,
/// as probity prints them.
fn probity(program: &str, args: &[&str]) -> Vec<Call> {
    crate::support::require_tracing();
    let mut cmd = Command::new(probity::resolve_program(program).unwrap());
    cmd.args(args).stdout(Stdio::null());
    let t: Trace = probity::Tracer::new().with_tracers(&[TracerKind::Ebpf]).run(cmd).unwrap();
    assert_eq!(t.outcome.losses.lost_events(), 0, "events lost: {:?}", t.outcome.losses);
    assert_eq!(t.outcome.status, probity::ExitStatus::Code(0), "{program} under probity failed");
    let mut events: Vec<_> = t.events.iter().collect();
    events.sort_by_key(|e| e.ts_ns);
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Syscall(s) if COMPARED.contains(&&*s.name) => Some((e.pid, s)),
            _ => None,
        })
        .map(|(pid, s)| {
            let pid = pid.to_string();
            let line = probity::text::syscall_line(s);
            let ret = line.rsplit_once(" = ").map_or("?", |(_, r)| r);
            Call {
                name: s.name.to_string(),
                args: s.args.iter().map(|a| normalise(&a.to_string(), &pid)).collect(),
                ret: normalise(ret, &pid),
            }
        })
        .collect()
}

/// Whether probity's text for an argument is a bare address.
fn is_pointer(text: &str) -> bool {
    text.strip_prefix("0x").is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Where probity's calls differ from strace's, one line per difference.
pub(super) fn differences(ours: &[Call], theirs: &[Call]) -> Vec<String> {
    let names = |calls: &[Call]| calls.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    if names(ours) != names(theirs) {
        return vec![format!("calls differ\n  probity: {:?}\n  strace:  {:?}", names(ours), names(theirs))];
    }
    let mut out = Vec::new();
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        // strace prints some results in hex (`fcntl(F_GETFL)`).
        let number = |r: &str| match r.strip_prefix("0x") {
            Some(hex) => i64::from_str_radix(hex, 16).ok(),
            None => r.parse::<i64>().ok(),
        };
        if a.ret != b.ret && (number(&a.ret).is_none() || number(&a.ret) != number(&b.ret)) {
            out.push(format!("call {i} {}: result {:?}, strace {:?}", a.name, a.ret, b.ret));
        }
        if a.name == "rt_sigreturn" {
            continue;
        }
        if a.args.len() != b.args.len() {
            out.push(format!("call {i} {}: arguments {:?}, strace {:?}", a.name, a.args, b.args));
            continue;
        }
        for (j, (x, y)) in a.args.iter().zip(&b.args).enumerate() {
            let pointed = is_pointer(x) && (is_pointer(y) || y.starts_with(['[', '{']));
            if x != y && !pointed {
                out.push(format!("call {i} {}: argument {j} is {x:?}, strace says {y:?}", a.name));
            }
        }
    }
    out
}

fn check(program: &str, args: &[&str]) -> Vec<Call> {
    let ours = probity(program, args);
    let theirs = strace(program, args);
    let diffs = differences(&ours, &theirs);
    assert!(diffs.is_empty(), "{program} {args:?}: argument text differs from strace's:\n{}", diffs.join("\n"));
    ours
}

#[test]
fn decode_zoo_arguments_match_strace() {
    let dir = tempfile::tempdir().unwrap();
    let zoo = crate::support::fixture(probity_fixtures::DECODE_ZOO);
    let calls = check(&zoo, &[dir.path().to_str().unwrap()]);
    // The comparison covered what it is for: each of these was seen,
    // decoded, in both traces.
    let text: Vec<String> = calls.iter().map(|c| format!("{}({})", c.name, c.args.join(", "))).collect();
    let link = Path::new(dir.path()).join("link");
    for wanted in [
        "ioctl(3, TCGETS, 0x".to_owned(),
        "ioctl(3, FIOCLEX)".to_owned(),
        "ioctl(3, _IOC(_IOC_READ, 0x78, 0x3, 0x4), 0x".to_owned(),
        "fadvise64(3, 10, 100, POSIX_FADV_DONTNEED)".to_owned(),
        "setsockopt(4, SOL_TCP, TCP_NODELAY, 0x".to_owned(),
        "statx(3, \"\", AT_STATX_SYNC_AS_STAT|AT_EMPTY_PATH, STATX_TYPE|STATX_MODE, 0x".to_owned(),
        "fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK|O_LARGEFILE)".to_owned(),
        "epoll_create1(EPOLL_CLOEXEC)".to_owned(),
        "rt_sigaction(SIGRTMIN, NULL, NULL, 8)".to_owned(),
        "kill(<pid>, SIGRT_4)".to_owned(),
        "socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, NETLINK_ROUTE)".to_owned(),
        "getsockname(7, {sa_family=AF_NETLINK, nl_pid=<pid>, nl_groups=00000000}, 0x".to_owned(),
        "prctl(PR_SET_DUMPABLE, SUID_DUMP_USER)".to_owned(),
        format!(
            "readlink(\"{}\", \"/a/very/long/target/path/that/is/more/than/thirty/two/bytes/long\", 256)",
            link.display()
        ),
    ] {
        assert!(text.iter().any(|t| t.starts_with(&wanted)), "no call like {wanted}:\n{}", text.join("\n"));
    }
    #[cfg(target_arch = "x86_64")]
    assert!(text.iter().any(|t| t.starts_with("arch_prctl(ARCH_GET_FS, 0x")), "{}", text.join("\n"));
    let sigreturns: Vec<&Call> = calls.iter().filter(|c| c.name == "rt_sigreturn").collect();
    assert_eq!(sigreturns.last().map(|c| c.ret.as_str()), Some("-1 EINTR (Interrupted system call)"));
}

/// `ip addr` asks the kernel for addresses over netlink: its socket,
/// options and addresses read as strace prints them.
#[test]
fn ip_addr_netlink_arguments_match_strace() {
    let calls = check("ip", &["addr"]);
    let text: Vec<String> = calls.iter().map(|c| format!("{}({})", c.name, c.args.join(", "))).collect();
    for wanted in [
        "socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, NETLINK_ROUTE)",
        "bind(3, {sa_family=AF_NETLINK, nl_pid=0, nl_groups=00000000}, 12)",
        "getsockname(3, {sa_family=AF_NETLINK, nl_pid=<pid>, nl_groups=00000000}, 0x",
        "setsockopt(3, SOL_NETLINK, NETLINK_EXT_ACK, 0x",
    ] {
        assert!(text.iter().any(|t| t.starts_with(wanted)), "no call like {wanted}:\n{}", text.join("\n"));
    }
}
