//! What eBPF tracing needs from the machine, checked before loading and
//! reported by `probity doctor`.

use std::path::Path;

use crate::error::Error;

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

const TRACEFS: &str = "/sys/kernel/tracing";

/// The effective capability mask of this process.
fn effective_caps() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("CapEff:")).and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

fn has(caps: u64, cap: u32) -> bool {
    caps & (1 << cap) != 0
}

/// The capabilities eBPF tracing needs that this process lacks.
pub fn missing_capabilities() -> Vec<&'static str> {
    let caps = effective_caps();
    if has(caps, CAP_SYS_ADMIN) {
        // Before CAP_BPF existed, CAP_SYS_ADMIN covered both.
        return Vec::new();
    }
    let mut missing = Vec::new();
    if !has(caps, CAP_BPF) {
        missing.push("CAP_BPF");
    }
    if !has(caps, CAP_PERFMON) {
        missing.push("CAP_PERFMON");
    }
    missing
}

/// Fails with what to do when this process cannot load eBPF tracing.
pub(crate) fn require_ebpf() -> Result<(), Error> {
    let missing = missing_capabilities();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::Privileges { missing: missing.join(", ") })
    }
}

/// Whether tracefs is mounted (classic tracepoints look their ids up there).
pub fn tracefs_mounted() -> bool {
    Path::new(TRACEFS).join("events").is_dir() || Path::new("/sys/kernel/debug/tracing/events").is_dir()
}

/// Mounts tracefs if it is not mounted yet.
pub(crate) fn ensure_tracefs() -> Result<(), Error> {
    if tracefs_mounted() {
        return Ok(());
    }
    nix::mount::mount(Some("nodev"), TRACEFS, Some("tracefs"), nix::mount::MsFlags::empty(), None::<&str>)
        .map_err(|e| Error::Tracefs(std::io::Error::from(e)))
}

/// One line of the `probity doctor` report.
#[derive(Debug, Clone)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// Whether it is fine.
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// What to do when it is not fine.
    pub fix: Option<String>,
}

/// Checks everything eBPF tracing needs, and tries loading the tracer.
pub fn diagnose() -> Vec<Check> {
    let mut checks = Vec::new();
    let uname = nix::sys::utsname::uname().ok();
    checks.push(Check {
        name: "kernel",
        ok: true,
        detail: uname
            .map(|u| {
                format!(
                    "{} {} {}",
                    u.sysname().to_string_lossy(),
                    u.release().to_string_lossy(),
                    u.machine().to_string_lossy()
                )
            })
            .unwrap_or_else(|| "unknown".into()),
        fix: None,
    });
    // With the struct offsets from BTF, every probe is a raw tracepoint;
    // without them, the process and TCP probes are classic ones, which
    // need tracefs.
    let offsets = super::btf::offsets();
    let raw = offsets.is_some_and(|o| o.sock.is_some());
    checks.push(Check {
        name: "BTF",
        ok: true,
        detail: match offsets {
            Some(o) if o.sock.is_some() => "task_struct and sock offsets found: raw tracepoints only (no tracefs needed)".into(),
            Some(_) => "task_struct offsets found, sock ones not: classic tracepoints for TCP events (slower to detach; need tracefs)".into(),
            None => "no usable /sys/kernel/btf/vmlinux: classic tracepoints for process and TCP events (slower to detach; need tracefs)".into(),
        },
        fix: None,
    });
    let missing = missing_capabilities();
    let caps = effective_caps();
    let names: Vec<&str> = [(CAP_SYS_ADMIN, "CAP_SYS_ADMIN"), (CAP_BPF, "CAP_BPF"), (CAP_PERFMON, "CAP_PERFMON")]
        .into_iter()
        .filter(|&(c, _)| has(caps, c))
        .map(|(_, n)| n)
        .collect();
    let (route_ok, route) = crate::daemon::describe_route();
    let served = route_ok && !route.starts_with("in this process");
    checks.push(Check {
        name: "capabilities",
        ok: missing.is_empty() || served,
        detail: if names.is_empty() {
            "none of CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN".into()
        } else {
            format!("have {}", names.join(", "))
        },
        fix: (!missing.is_empty()).then(|| {
            format!(
                "missing {}: run probity as root (`sudo -E probity ...`), or use the probity daemon \
                 (`sudo probity daemon --install`, then join its group)",
                missing.join(", ")
            )
        }),
    });
    // Capabilities without root: tracing works, but must show no more
    // than ptrace would (see `privilege`).
    let owner = super::privilege::Owner::current();
    if !owner.is_root() && missing.is_empty() {
        let cred = offsets.is_some_and(|o| o.cred.is_some());
        checks.push(Check {
            name: "privilege",
            ok: cred,
            detail: if cred {
                format!(
                    "not root (uid {}), tracing with capabilities: processes that exec into more privilege (setuid, setgid, file capabilities) are left out of the trace",
                    owner.uid
                )
            } else {
                format!("not root (uid {}), and the kernel's BTF has no struct cred: eBPF tracing is refused", owner.uid)
            },
            fix: Some(
                "to trace everything, run probity as root (`sudo -E probity ...`); do not give probity file capabilities \
                 (remove them: `sudo setcap -r $(which probity)`)"
                    .into(),
            ),
        });
    }
    let mounted = tracefs_mounted();
    checks.push(Check {
        name: "tracefs",
        ok: raw || mounted || has(caps, CAP_SYS_ADMIN),
        detail: match (raw, mounted) {
            (true, _) => "not needed (raw tracepoints attach by name)".into(),
            (false, true) => "mounted (the classic tracepoints need it)".into(),
            (false, false) => {
                "not mounted (probity mounts it when it has CAP_SYS_ADMIN; the classic tracepoints need it)".into()
            }
        },
        fix: (!raw && !mounted && !has(caps, CAP_SYS_ADMIN))
            .then(|| "mount it: `sudo mount -t tracefs nodev /sys/kernel/tracing`".to_owned()),
    });
    let memlock =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_MEMLOCK)
            .map(|(soft, _)| {
                if soft == nix::sys::resource::RLIM_INFINITY {
                    "unlimited".to_owned()
                } else {
                    format!("{soft} bytes")
                }
            })
            .unwrap_or_else(|_| "unknown".into());
    checks.push(Check {
        name: "memlock",
        ok: true,
        detail: format!("RLIMIT_MEMLOCK {memlock} (kernels since 5.11 charge BPF memory to the cgroup instead)"),
        fix: None,
    });
    checks.push(Check {
        name: "tracing via",
        ok: route_ok,
        detail: route,
        fix: (!route_ok)
            .then(|| format!("set {}=off to load in this process, or start `probity daemon`", crate::daemon::ENV)),
    });
    let load = if served {
        Check { name: "ebpf tracer", ok: true, detail: "loaded by the probity daemon".into(), fix: None }
    } else if missing.is_empty() {
        match super::Kernel::acquire(super::LoadOptions::default()) {
            Ok(_) => Check {
                name: "ebpf tracer",
                ok: true,
                detail: if raw {
                    "loaded and attached: ring buffer, raw tracepoints (sys_enter/sys_exit, sched, signal, sock, tcp)"
                        .into()
                } else {
                    "loaded and attached: ring buffer, raw and classic tracepoints (see BTF above)".into()
                },
                fix: None,
            },
            Err(e) => Check {
                name: "ebpf tracer",
                ok: false,
                detail: format!("failed to load: {}", crate::error::Chain(&e)),
                fix: Some(e.hint()),
            },
        }
    } else {
        Check { name: "ebpf tracer", ok: false, detail: "cannot load without the capabilities above".into(), fix: None }
    };
    checks.push(load);
    checks.push(attach_check(owner, served, missing.is_empty()));
    checks
}

/// What `probity run -p` may attach to from here. Never a failure:
/// tracing commands probity starts does not need it.
fn attach_check(owner: super::privilege::Owner, served: bool, capable: bool) -> Check {
    let scope = super::privilege::ptrace_scope();
    let detail = if served {
        "not from here: attaching (`probity run -p`) needs the eBPF tracer in this process, and the probity daemon \
         traces only commands its clients start"
            .to_owned()
    } else if !capable {
        "not without the capabilities above".to_owned()
    } else if owner.is_root() {
        "`probity run -p PID` can attach to any process".to_owned()
    } else {
        let scope_says = match scope {
            0 => "any of them".to_owned(),
            1 => "only its descendants (Yama ptrace_scope 1)".to_owned(),
            n => format!("none (Yama ptrace_scope {n} leaves attaching to root)"),
        };
        format!(
            "to processes of uid {} and gid {} without capabilities, dumpable, as ptrace would: {scope_says}",
            owner.uid, owner.gid
        )
    };
    Check {
        name: "attach",
        ok: true,
        detail,
        fix: (served || (!owner.is_root() && capable))
            .then(|| "to attach to any process, run probity as root".to_owned()),
    }
}
