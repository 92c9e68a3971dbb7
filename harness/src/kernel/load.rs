//! Loading the eBPF object and attaching its programs: the object's
//! globals are set from the kernel's BTF and the caller's credentials,
//! the syscall capture table is filled, and the programs [`probes`] names
//! for this kernel are loaded and attached in one loop.

use std::os::fd::{AsFd, AsRawFd};
use std::sync::{Arc, Mutex};

use aya::maps::{Array, HashMap as BpfHashMap, IterableMap, MapData};
use aya::programs::{RawTracePoint, TracePoint};
use aya::{Ebpf, EbpfLoader};
use probity_common::{SyscallSpec, MAX_SYSCALLS};

use super::probes::{self, Attach, Needs};
use super::session::SessionIds;
use super::{btf, consumer, doctor, privilege, ring, Kernel, LoadOptions, Maps};
use crate::error::Error;

/// The compiled eBPF object, built from `harness-ebpf/` by
/// `cargo xtask build-ebpf` and checked in CI to match its sources.
static OBJECT: &[u8] = include_bytes_aligned!("../../ebpf/probity.bpf.o");

/// The same without the classic tracepoint programs, for a kernel that
/// needs none of them: aya parses and relocates every program it is
/// given, and in a user's debug test binary it does so unoptimised.
static RAW_OBJECT: &[u8] = include_bytes_aligned!("../../ebpf/probity-raw.bpf.o");

/// Includes a file 8-byte aligned, as the ELF parser wants.
macro_rules! include_bytes_aligned {
    ($path:expr) => {{
        #[repr(C, align(8))]
        struct Aligned<B: ?Sized>(B);
        static ALIGNED: &Aligned<[u8]> = &Aligned(*include_bytes!($path));
        &ALIGNED.0
    }};
}
use include_bytes_aligned;

/// Loads and attaches the programs, and starts the consumer thread.
pub(super) fn load(opts: LoadOptions) -> Result<Kernel, Error> {
    doctor::require_ebpf()?;
    // This kernel charges BPF memory to the memory cgroup; older ones
    // want RLIMIT_MEMLOCK raised. Try, and carry on if it is refused
    // (no CAP_SYS_RESOURCE): loading reports a real shortage itself.
    let _ = nix::sys::resource::setrlimit(
        nix::sys::resource::Resource::RLIMIT_MEMLOCK,
        nix::sys::resource::RLIM_INFINITY,
        nix::sys::resource::RLIM_INFINITY,
    );
    // Raw tracepoints when the kernel's BTF gives the struct offsets
    // they need; classic ones otherwise, which look their ids up in
    // tracefs (and each take an RCU grace period to detach).
    let reader = std::thread::spawn(btf::offsets);
    let mut loader = loader_without_btf();
    let offsets = reader.join().unwrap_or(None);
    let sock = offsets.and_then(|o| o.sock);
    let net = offsets.and_then(|o| o.net);
    if offsets.is_none() || sock.is_none() {
        doctor::ensure_tracefs()?;
    }
    // A caller that is not root must not see into processes with more
    // privilege than its own: the exec probe checks credentials at
    // offsets from BTF, and without them nothing is loaded.
    let owner = privilege::Owner::current();
    if (!owner.is_root() || opts.serve_others) && offsets.and_then(|o| o.cred).is_none() {
        return Err(Error::NoCredentialOffsets);
    }
    let globals = Globals::new(opts, offsets);
    loader.override_global("WAKE_THRESHOLD", &globals.wake_threshold, true);
    for (name, value) in &globals.values {
        loader.override_global(name, value, true);
    }
    let programs = probes::resolve(|needs| match needs {
        Needs::Task => offsets.is_some(),
        Needs::Sock => sock.is_some(),
        Needs::Net => net.is_some(),
    });
    let classic = programs.iter().any(|(_, how)| matches!(how, Attach::Classic(..)));
    let mut ebpf = loader
        .map_max_entries("EVENTS", opts.ring_bytes)
        .map_max_entries("TASKS", opts.max_tasks)
        .map_max_entries("INFLIGHT", opts.max_tasks)
        .load(if classic { OBJECT } else { RAW_OBJECT })
        .map_err(|e| Error::Load(Box::new(e)))?;
    // Taken out of `ebpf`, the map lives as long as this handle: it must
    // outlast the loading of the programs that use it.
    let _specs = fill_specs(&mut ebpf, net.is_some())?;

    let names: Vec<&'static str> = programs.iter().map(|&(name, _)| name).collect();
    load_in_parallel(&mut ebpf, &names)?;
    let tails = attach(&mut ebpf, &programs)?;

    let tasks: BpfHashMap<_, u32, u32> = take(&mut ebpf, "TASKS")?;
    let tasks_fd = tasks.map().fd().as_fd().as_raw_fd();
    // Left in `ebpf` (its values are the probes' own type); only its
    // entries of tasks a closed session leaves running are deleted.
    let inflight_fd = match ebpf.map("INFLIGHT") {
        Some(aya::maps::Map::HashMap(data)) => data.fd().as_fd().as_raw_fd(),
        _ => return Err(Error::MissingItem("INFLIGHT")),
    };
    let maps = Maps {
        socks: take(&mut ebpf, "SOCKS")?,
        listen_ports: take(&mut ebpf, "LISTEN_PORTS")?,
        tasks,
        sessions: take(&mut ebpf, "SESSIONS")?,
        stats: take(&mut ebpf, "STATS")?,
        losses: take(&mut ebpf, "LOSSES")?,
        ids: SessionIds::default(),
    };
    // Read with probity's own reader (see `ring.rs`), on a descriptor
    // of its own, without aya's (which would map the ring too).
    let ring = match ebpf.take_map("EVENTS") {
        Some(aya::maps::Map::RingBuf(data)) => {
            let size = data.info().map_err(|e| Error::Map("EVENTS", Box::new(e)))?.max_entries();
            data.fd().as_fd().try_clone_to_owned().and_then(|fd| ring::Ring::new(fd, size)).map_err(Error::RingMap)?
        }
        _ => return Err(Error::MissingItem("EVENTS")),
    };
    let router = Arc::new(consumer::Router::default());
    let handle = consumer::Handle::start(ring, Arc::clone(&router))?;
    Ok(Kernel {
        _tails: tails,
        maps: Mutex::new(maps),
        tasks_fd,
        inflight_fd,
        router,
        consumer: Mutex::new(Some(handle)),
        _ebpf: ebpf,
    })
}

/// An `EbpfLoader` that has not parsed the kernel's BTF.
///
/// The object has no CO-RE relocations (aya-ebpf emits none: kernel
/// structs are read at offsets taken from BTF by [`btf::offsets`]), so
/// aya needs no kernel BTF. But `EbpfLoader::new` always parses
/// `/sys/kernel/btf/vmlinux` (megabytes of types), and that parse, in
/// aya compiled without optimisation (any crate's debug test binary,
/// whose profile probity cannot set), is most of the load's CPU time.
/// So the loader is made on a thread of its own whose root directory,
/// unshared from the process's (`CLONE_FS`, this thread's alone), is one
/// where that path cannot exist: `/proc/self/fd`, which no one can
/// create files in. Where that is refused (no `CAP_SYS_CHROOT`), aya
/// parses as it would, and the result is dropped.
fn loader_without_btf() -> EbpfLoader<'static> {
    let made = std::thread::spawn(|| {
        // SAFETY: `unshare` takes no pointers; `CLONE_FS` gives this
        // thread a root and working directory of its own, which nothing
        // but the `EbpfLoader::new` below uses before the thread ends.
        if unsafe { libc::unshare(libc::CLONE_FS) } != 0 {
            return None;
        }
        std::os::unix::fs::chroot("/proc/self/fd").ok()?;
        Some(EbpfLoader::new())
    })
    .join()
    .ok()
    .flatten();
    let mut loader = made.unwrap_or_else(EbpfLoader::new);
    loader.btf(None);
    loader
}

/// The object's globals, fixed at load time.
struct Globals {
    /// Bytes in the ring past which a record wakes the consumer.
    wake_threshold: u64,
    /// The others, all `u32`, by name.
    values: Vec<(&'static str, u32)>,
}

impl Globals {
    fn new(opts: LoadOptions, offsets: Option<btf::Offsets>) -> Globals {
        let cred = offsets.and_then(|o| o.cred);
        let cred_off = |f: fn(&btf::CredOffsets) -> u32| cred.as_ref().map_or(0, f);
        let sock = offsets.and_then(|o| o.sock);
        let sock_off = |f: fn(&btf::SockOffsets) -> u32| sock.as_ref().map_or(0, f);
        let net = offsets.and_then(|o| o.net);
        let net_off = |f: fn(&btf::NetOffsets) -> u32| net.as_ref().map_or(0, f);
        let (pid_off, filename_off) = offsets.map_or((0, 0), |o| (o.task_pid, o.binprm_filename));
        // Syscall records ask for the ring's fill level every 32nd time
        // only when the ring has room for many such gaps past the wake-up
        // level (32 records of up to 16 KiB, per CPU); smaller rings ask
        // every time.
        let wake_sample_mask: u32 = if opts.ring_bytes >= 16 << 20 { 31 } else { 0 };
        Globals {
            wake_threshold: u64::from(opts.ring_bytes / 4),
            values: vec![
                ("WAKE_SAMPLE_MASK", wake_sample_mask),
                ("TASK_PID_OFF", pid_off),
                ("BINPRM_FILENAME_OFF", filename_off),
                ("TASK_REAL_CRED_OFF", cred_off(|c| c.task_real_cred)),
                ("CRED_UID_OFF", cred_off(|c| c.uid)),
                ("CRED_CAP_PERMITTED_OFF", cred_off(|c| c.cap_permitted)),
                ("CRED_CAP_EFFECTIVE_OFF", cred_off(|c| c.cap_effective)),
                ("TASK_FILES_OFF", net_off(|n| n.task_files)),
                ("FILES_FDT_OFF", net_off(|n| n.files_fdt)),
                ("FDT_MAX_FDS_OFF", net_off(|n| n.fdt_max_fds)),
                ("FDT_FD_OFF", net_off(|n| n.fdt_fd)),
                ("FILE_PRIVATE_DATA_OFF", net_off(|n| n.file_private_data)),
                ("SOCKET_SK_OFF", net_off(|n| n.socket_sk)),
                ("SK_FAMILY_OFF", sock_off(|s| s.family)),
                ("SK_STATE_OFF", sock_off(|s| s.state)),
                ("SK_PROTOCOL_OFF", sock_off(|s| s.protocol)),
                ("INET_SPORT_OFF", sock_off(|s| s.sport)),
                ("INET_DPORT_OFF", sock_off(|s| s.dport)),
                ("INET_SADDR_OFF", sock_off(|s| s.saddr)),
                ("INET_DADDR_OFF", sock_off(|s| s.daddr)),
                ("SK_V6_SADDR_OFF", sock_off(|s| s.saddr_v6)),
                ("SK_V6_DADDR_OFF", sock_off(|s| s.daddr_v6)),
            ],
        }
    }
}

/// Tells the kernel side what to capture of each syscall, through the
/// map it returns.
fn fill_specs(ebpf: &mut Ebpf, accept_probe: bool) -> Result<Array<MapData, SyscallSpec>, Error> {
    let mut specs: Array<_, SyscallSpec> = take(ebpf, "SPECS")?;
    // The accept probe finds the accepted socket through the descriptor
    // table, at offsets from BTF; without them, an accepted socket is
    // claimed at its first transfer.
    let accepts: &[u32] =
        if accept_probe { &[syscalls::Sysno::accept as u32, syscalls::Sysno::accept4 as u32] } else { &[] };
    for nr in 0..MAX_SYSCALLS {
        let mut spec = crate::decode::capture_spec(nr);
        if accepts.contains(&nr) {
            spec.flags |= probity_common::SPEC_ACCEPT;
        }
        if spec != SyscallSpec::default() {
            specs.set(nr, spec, 0).map_err(|e| Error::Map("SPECS", Box::new(e)))?;
        }
    }
    Ok(specs)
}

/// Attaches the loaded `programs` in order, and returns the tail-call
/// array: the kernel empties a program array when its last user handle
/// closes, so the kernel struct keeps it.
fn attach(ebpf: &mut Ebpf, programs: &[(&'static str, Attach)]) -> Result<aya::maps::ProgramArray<MapData>, Error> {
    let mut tails: aya::maps::ProgramArray<MapData> = take(ebpf, "TAILS")?;
    for &(name, how) in programs {
        match how {
            Attach::Raw(tracepoint) => {
                let prog: &mut RawTracePoint = program(ebpf, name)?;
                prog.attach(tracepoint).map_err(|e| Error::Attach(name, Box::new(e)))?;
            }
            Attach::RawIfPresent(tracepoint) => {
                let prog: &mut RawTracePoint = program(ebpf, name)?;
                // Absent on this kernel: see the table.
                let _ = prog.attach(tracepoint);
            }
            Attach::Classic(category, tracepoint) => {
                let prog: &mut TracePoint = program(ebpf, name)?;
                prog.attach(category, tracepoint).map_err(|e| Error::Attach(name, Box::new(e)))?;
            }
            Attach::Tail(slot) => {
                let prog: &mut RawTracePoint = program(ebpf, name)?;
                let fd = prog
                    .fd()
                    .map_err(|e| Error::Attach(name, Box::new(e)))?
                    .try_clone()
                    .map_err(|e| Error::Attach(name, Box::new(e)))?;
                tails.set(slot, &fd, 0).map_err(|e| Error::Map("TAILS", Box::new(e)))?;
            }
        }
    }
    Ok(tails)
}

fn take<T>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, Error>
where
    T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = ebpf.take_map(name).ok_or(Error::MissingItem(name))?;
    T::try_from(map).map_err(|e| Error::Map(name, Box::new(e)))
}

/// Loads (has the kernel verify) the programs `names`, on a thread each:
/// verification is most of the load time, and it runs on every core.
fn load_in_parallel(ebpf: &mut Ebpf, names: &[&'static str]) -> Result<(), Error> {
    let mut progs = Vec::new();
    for (name, prog) in ebpf.programs_mut() {
        if let Some(&n) = names.iter().find(|n| **n == name) {
            progs.push((n, prog));
        }
    }
    if let Some(&missing) = names.iter().find(|n| !progs.iter().any(|(p, _)| p == *n)) {
        return Err(Error::MissingItem(missing));
    }
    std::thread::scope(|s| {
        let loads: Vec<_> = progs
            .into_iter()
            .map(|(name, prog)| {
                s.spawn(move || {
                    let r = match prog {
                        aya::programs::Program::RawTracePoint(p) => p.load(),
                        aya::programs::Program::TracePoint(p) => p.load(),
                        _ => return Err(Error::MissingItem(name)),
                    };
                    r.map_err(|e| Error::Attach(name, Box::new(e)))
                })
            })
            .collect();
        loads.into_iter().try_for_each(|h| h.join().unwrap_or(Err(Error::MissingItem("a program loader thread"))))
    })
}

fn program<'a, T>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut T, Error>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    let prog = ebpf.program_mut(name).ok_or(Error::MissingItem(name))?;
    prog.try_into().map_err(|e| Error::Attach(name, Box::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names of the programs in `object`, as aya parses it (which
    /// creates its maps: this needs CAP_BPF).
    fn programs_in(object: &[u8]) -> Vec<String> {
        let mut loader = loader_without_btf();
        let ebpf = loader.map_max_entries("EVENTS", 1 << 16).load(object).expect("aya loads the object");
        let mut names: Vec<String> = ebpf.programs().map(|(name, _)| name.to_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn the_raw_object_holds_what_a_kernel_with_btf_loads_and_no_classic_program() {
        let raw = programs_in(RAW_OBJECT);
        for (name, how) in probes::resolve(|_| true) {
            assert!(!matches!(how, Attach::Classic(..)), "{name}");
            assert!(raw.iter().any(|r| r == name), "{name} is missing from the raw object: {raw:?}");
        }
        let whole = programs_in(OBJECT);
        let classic: Vec<&str> = probes::resolve(|_| false)
            .into_iter()
            .filter(|(_, how)| matches!(how, Attach::Classic(..)))
            .map(|(name, _)| name)
            .collect();
        assert!(!classic.is_empty());
        for name in &classic {
            assert!(whole.iter().any(|w| w == name), "{name} is missing from the whole object: {whole:?}");
            assert!(!raw.iter().any(|r| r == name), "{name} is in the raw object");
        }
        // Nothing else differs: the raw object is the whole one minus
        // the classic programs.
        let rest: Vec<&String> = whole.iter().filter(|w| !classic.contains(&w.as_str())).collect();
        assert_eq!(rest, raw.iter().collect::<Vec<_>>());
    }
}
