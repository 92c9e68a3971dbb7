//! The eBPF tracer: loads `harness-ebpf`'s object, attaches it, and routes
//! its records to sessions.
//!
//! One [`Kernel`] is loaded per process, on first use, and shared by every
//! session; it detaches and frees everything when the last session ends.
//! A session owns an id; the kernel side tags each record with the session
//! of the task that made it, and the [`consumer`] thread drains the ring
//! buffer and hands each session its own records, decoded by [`assemble`].
//! A caller that is not root sees nothing of processes with more privilege
//! than its own ([`privilege`]).

pub(crate) mod assemble;
mod btf;
mod consumer;
pub mod doctor;
pub mod privilege;
pub(crate) mod raw_bpf;
mod ring;
pub(crate) mod session;
mod udp;

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::{Arc, Mutex, Weak};

use aya::maps::{Array, HashMap as BpfHashMap, IterableMap, MapData, PerCpuArray, PerCpuValues};
use aya::programs::{RawTracePoint, TracePoint};
use aya::{Ebpf, EbpfLoader};
use probity_common::{
    Losses, SessionConfig, SockOwner, SyscallSpec, SyscallStats, MAX_SESSIONS, MAX_SUMMARY_SESSIONS, MAX_SYSCALLS,
};

pub(crate) use session::KernelSession;

use crate::error::Error;

/// The compiled eBPF object, built from `harness-ebpf/` by
/// `cargo xtask build-ebpf` and checked in CI to match its sources.
static OBJECT: &[u8] = include_bytes_aligned!("../../ebpf/probity.bpf.o");

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

/// Settings fixed when the tracer is loaded (the first session of a
/// process decides them).
#[derive(Clone, Copy, Debug)]
pub(crate) struct LoadOptions {
    /// Bytes of the ring buffer (a power of two, at least a page).
    pub ring_bytes: u32,
    /// Most tasks traced at once, across sessions.
    pub max_tasks: u32,
    /// Keep the programs loaded after the last session ends, for the life
    /// of the process.
    pub keep: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self { ring_bytes: 64 << 20, max_tasks: 32768, keep: false }
    }
}

/// The loaded and attached programs, and the maps userspace uses.
pub(crate) struct Kernel {
    maps: Mutex<Maps>,
    tasks_fd: RawFd,
    /// Whose tracer it is: processes with more privilege leave the trace.
    owner: privilege::Owner,
    router: Arc<consumer::Router>,
    consumer: Mutex<Option<consumer::Handle>>,
    /// Tail-call targets of the attached programs.
    _tails: aya::maps::ProgramArray<MapData>,
    /// Keeps the programs attached.
    _ebpf: Ebpf,
}

struct Maps {
    tasks: BpfHashMap<MapData, u32, u32>,
    socks: BpfHashMap<MapData, u64, SockOwner>,
    listen_ports: BpfHashMap<MapData, u32, u32>,
    sessions: Array<MapData, SessionConfig>,
    stats: PerCpuArray<MapData, SyscallStats>,
    losses: PerCpuArray<MapData, Losses>,
    used: [bool; MAX_SESSIONS as usize],
    /// The `STATS` slot of each session counting in the kernel.
    summary: [Option<u32>; MAX_SESSIONS as usize],
    /// The last `SessionConfig::generation` given to each id.
    generations: [u32; MAX_SESSIONS as usize],
}

static SHARED: Mutex<Weak<Kernel>> = Mutex::new(Weak::new());
/// Set by a session that asked to keep the programs loaded: a test binary
/// pays the load once, not once per test.
static KEPT: Mutex<Option<Arc<Kernel>>> = Mutex::new(None);

impl Kernel {
    /// The process's tracer, loading it if no session holds it.
    pub(crate) fn acquire(opts: LoadOptions) -> Result<Arc<Kernel>, Error> {
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        let k = match shared.upgrade() {
            Some(k) => k,
            None => {
                let k = Arc::new(Kernel::load(opts)?);
                *shared = Arc::downgrade(&k);
                k
            }
        };
        if opts.keep {
            KEPT.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(|| k.clone());
        }
        Ok(k)
    }

    fn load(opts: LoadOptions) -> Result<Kernel, Error> {
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
        // tracefs (and each take an RCU grace period to detach). Reading
        // the offsets overlaps with aya's own parse of the same BTF.
        let reader = std::thread::spawn(btf::offsets);
        let mut loader = EbpfLoader::new();
        // The object has no CO-RE relocations (aya-ebpf emits none: kernel
        // structs are read at offsets taken from BTF here), so aya's pass
        // matching them against the kernel's BTF is skipped: about 5 ms.
        loader.btf(None);
        let offsets = reader.join().unwrap_or(None);
        let sock = offsets.and_then(|o| o.sock);
        if offsets.is_none() || sock.is_none() {
            doctor::ensure_tracefs()?;
        }
        // A caller that is not root must not see into processes with more
        // privilege than its own: the exec probe checks credentials at
        // offsets from BTF, and without them nothing is loaded.
        let owner = privilege::Owner::current();
        let cred = offsets.and_then(|o| o.cred);
        if !owner.is_root() && cred.is_none() {
            return Err(Error::NoCredentialOffsets);
        }
        let cred_off = |f: fn(&btf::CredOffsets) -> u32| cred.as_ref().map_or(0, f);
        let privilege_check = u32::from(!owner.is_root());
        let threshold = u64::from(opts.ring_bytes / 4);
        // Syscall records ask for the ring's fill level every 32nd time
        // only when the ring has room for many such gaps past the wake-up
        // level (32 records of up to 16 KiB, per CPU); smaller rings ask
        // every time.
        let wake_sample_mask: u32 = if opts.ring_bytes >= 16 << 20 { 31 } else { 0 };
        let (pid_off, filename_off) = offsets.map_or((0, 0), |o| (o.task_pid, o.binprm_filename));
        let sock_off = |f: fn(&btf::SockOffsets) -> u32| sock.as_ref().map_or(0, f);
        let net = offsets.and_then(|o| o.net);
        let net_off = |f: fn(&btf::NetOffsets) -> u32| net.as_ref().map_or(0, f);
        let (files, fdt, max_fds, fd, private_data, sk) = (
            net_off(|n| n.task_files),
            net_off(|n| n.files_fdt),
            net_off(|n| n.fdt_max_fds),
            net_off(|n| n.fdt_fd),
            net_off(|n| n.file_private_data),
            net_off(|n| n.socket_sk),
        );
        let mut ebpf = loader
            .map_max_entries("EVENTS", opts.ring_bytes)
            .map_max_entries("TASKS", opts.max_tasks)
            .map_max_entries("INFLIGHT", opts.max_tasks)
            .override_global("WAKE_THRESHOLD", &threshold, true)
            .override_global("WAKE_SAMPLE_MASK", &wake_sample_mask, true)
            .override_global("TASK_PID_OFF", &pid_off, true)
            .override_global("BINPRM_FILENAME_OFF", &filename_off, true)
            .override_global("PRIVILEGE_CHECK", &privilege_check, true)
            .override_global("CALLER_UID", &owner.uid, true)
            .override_global("CALLER_GID", &owner.gid, true)
            .override_global("TASK_REAL_CRED_OFF", &cred_off(|c| c.task_real_cred), true)
            .override_global("CRED_UID_OFF", &cred_off(|c| c.uid), true)
            .override_global("CRED_CAP_PERMITTED_OFF", &cred_off(|c| c.cap_permitted), true)
            .override_global("CRED_CAP_EFFECTIVE_OFF", &cred_off(|c| c.cap_effective), true)
            .override_global("TASK_FILES_OFF", &files, true)
            .override_global("FILES_FDT_OFF", &fdt, true)
            .override_global("FDT_MAX_FDS_OFF", &max_fds, true)
            .override_global("FDT_FD_OFF", &fd, true)
            .override_global("FILE_PRIVATE_DATA_OFF", &private_data, true)
            .override_global("SOCKET_SK_OFF", &sk, true)
            .override_global("SK_FAMILY_OFF", &sock_off(|s| s.family), true)
            .override_global("SK_STATE_OFF", &sock_off(|s| s.state), true)
            .override_global("SK_PROTOCOL_OFF", &sock_off(|s| s.protocol), true)
            .override_global("INET_SPORT_OFF", &sock_off(|s| s.sport), true)
            .override_global("INET_DPORT_OFF", &sock_off(|s| s.dport), true)
            .override_global("INET_SADDR_OFF", &sock_off(|s| s.saddr), true)
            .override_global("INET_DADDR_OFF", &sock_off(|s| s.daddr), true)
            .override_global("SK_V6_SADDR_OFF", &sock_off(|s| s.saddr_v6), true)
            .override_global("SK_V6_DADDR_OFF", &sock_off(|s| s.daddr_v6), true)
            .load(OBJECT)
            .map_err(|e| Error::Load(Box::new(e)))?;

        let mut specs: Array<_, SyscallSpec> = take(&mut ebpf, "SPECS")?;
        // The accept probe finds the accepted socket through the
        // descriptor table, at offsets from BTF; without them, an accepted
        // socket is claimed at its first transfer.
        let accepts: &[u32] =
            if net.is_some() { &[syscalls::Sysno::accept as u32, syscalls::Sysno::accept4 as u32] } else { &[] };
        for nr in 0..MAX_SYSCALLS {
            let mut spec = crate::decode::capture_spec(nr);
            if accepts.contains(&nr) {
                spec.flags |= probity_common::SPEC_ACCEPT;
            }
            if spec != SyscallSpec::default() {
                specs.set(nr, spec, 0).map_err(|e| Error::Map("SPECS", Box::new(e)))?;
            }
        }

        const PROCESS_PROBES: [(&str, &str); 5] = [
            ("sched", "sched_process_fork"),
            ("sched", "sched_process_exec"),
            ("sched", "sched_process_exit"),
            ("signal", "signal_deliver"),
            ("signal", "signal_generate"),
        ];
        let process_names: Vec<&'static str> = PROCESS_PROBES
            .iter()
            .map(|(_, tp)| if offsets.is_some() { raw_name(tp) } else { static_name(tp) })
            .collect();
        let mut names = process_names.clone();
        names.extend(["exec_args_tail", "sched_switch", "sys_enter", "sys_exit"]);
        names.extend(NET_BYTES_PROBES);
        if sock.is_some() {
            names.extend(NET_PROBES.iter().map(|(_, tp)| raw_name(tp)));
        } else {
            names.extend(NET_PROBES.iter().map(|(_, tp)| static_name(tp)));
        }
        if net.is_some() {
            names.push("accept_tail");
        }
        load_in_parallel(&mut ebpf, &names)?;
        if offsets.is_some() {
            for (_, tp) in PROCESS_PROBES {
                let name = raw_name(tp);
                let prog: &mut RawTracePoint = program(&mut ebpf, name)?;
                prog.attach(tp).map_err(|e| Error::Attach(name, Box::new(e)))?;
            }
        } else {
            for (category, tp) in PROCESS_PROBES {
                let name = static_name(tp);
                let prog: &mut TracePoint = program(&mut ebpf, name)?;
                prog.attach(category, tp).map_err(|e| Error::Attach(name, Box::new(e)))?;
            }
        }
        // The exec argv program and the accept probe are reached from
        // sys_exit by tail calls. The kernel empties a program array when
        // its last user handle closes, so the kernel struct keeps it.
        let mut tails: aya::maps::ProgramArray<MapData> = take(&mut ebpf, "TAILS")?;
        let tail_progs: &[(u32, &'static str)] =
            if net.is_some() { &[(0, "exec_args_tail"), (1, "accept_tail")] } else { &[(0, "exec_args_tail")] };
        for &(slot, name) in tail_progs {
            let prog: &mut RawTracePoint = program(&mut ebpf, name)?;
            let fd = prog
                .fd()
                .map_err(|e| Error::Attach(name, Box::new(e)))?
                .try_clone()
                .map_err(|e| Error::Attach(name, Box::new(e)))?;
            tails.set(slot, &fd, 0).map_err(|e| Error::Map("TAILS", Box::new(e)))?;
        }
        // `sched_switch` moves a syscall's entry out of its CPU's slot
        // when its task is switched out: attached first, so that no entry
        // can be left behind.
        for name in ["sched_switch", "sys_enter", "sys_exit"] {
            let prog: &mut RawTracePoint = program(&mut ebpf, name)?;
            prog.attach(name).map_err(|e| Error::Attach(name, Box::new(e)))?;
        }
        // Network: see harness-ebpf/src/probes/net.rs.
        for name in NET_BYTES_PROBES {
            let prog: &mut RawTracePoint = program(&mut ebpf, name)?;
            prog.attach(name).map_err(|e| Error::Attach(name, Box::new(e)))?;
        }
        for (category, tp) in NET_PROBES {
            if sock.is_some() {
                let name = raw_name(tp);
                let prog: &mut RawTracePoint = program(&mut ebpf, name)?;
                prog.attach(tp).map_err(|e| Error::Attach(name, Box::new(e)))?;
            } else {
                let name = static_name(tp);
                let prog: &mut TracePoint = program(&mut ebpf, name)?;
                prog.attach(category, tp).map_err(|e| Error::Attach(name, Box::new(e)))?;
            }
        }

        let tasks: BpfHashMap<_, u32, u32> = take(&mut ebpf, "TASKS")?;
        let tasks_fd = tasks.map().fd().as_fd().as_raw_fd();
        let maps = Maps {
            socks: take(&mut ebpf, "SOCKS")?,
            listen_ports: take(&mut ebpf, "LISTEN_PORTS")?,
            tasks,
            sessions: take(&mut ebpf, "SESSIONS")?,
            stats: take(&mut ebpf, "STATS")?,
            losses: take(&mut ebpf, "LOSSES")?,
            used: [false; MAX_SESSIONS as usize],
            summary: [None; MAX_SESSIONS as usize],
            generations: [0; MAX_SESSIONS as usize],
        };
        // Read with probity's own reader (see `ring.rs`), on a descriptor
        // of its own, without aya's (which would map the ring too).
        let ring = match ebpf.take_map("EVENTS") {
            Some(aya::maps::Map::RingBuf(data)) => {
                let size = data.info().map_err(|e| Error::Map("EVENTS", Box::new(e)))?.max_entries();
                data.fd()
                    .as_fd()
                    .try_clone_to_owned()
                    .and_then(|fd| ring::Ring::new(fd, size))
                    .map_err(Error::RingMap)?
            }
            _ => return Err(Error::MissingItem("EVENTS")),
        };
        let router = Arc::new(consumer::Router::default());
        let handle = consumer::Handle::start(ring, Arc::clone(&router))?;
        Ok(Kernel {
            _tails: tails,
            maps: Mutex::new(maps),
            tasks_fd,
            owner,
            router,
            consumer: Mutex::new(Some(handle)),
            _ebpf: ebpf,
        })
    }

    fn maps(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.maps.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims a session id and configures it.
    fn open(&self, mut config: SessionConfig) -> Result<u32, Error> {
        let mut maps = self.maps();
        // Id 0 is never used, so a zeroed map slot means "no session".
        let id = (1..MAX_SESSIONS).find(|&i| !maps.used[i as usize]).ok_or(Error::TooManySessions(MAX_SESSIONS - 1))?;
        if config.flags & probity_common::SESSION_SUMMARY != 0 {
            let slot = (0..MAX_SUMMARY_SESSIONS)
                .find(|s| !maps.summary.contains(&Some(*s)))
                .ok_or(Error::TooManySessions(MAX_SUMMARY_SESSIONS))?;
            maps.summary[id as usize] = Some(slot);
            config.stats_slot = slot;
        }
        maps.used[id as usize] = true;
        // Never 0, the generation of a closed id's zeroed config.
        let generation = maps.generations[id as usize].wrapping_add(1).max(1);
        maps.generations[id as usize] = generation;
        config.generation = generation;
        maps.sessions.set(id, config, 0).map_err(|e| Error::Map("SESSIONS", Box::new(e)))?;
        Ok(id)
    }

    /// Whether any task of the session is still alive, per the kernel side.
    fn has_tasks(&self, id: u32) -> bool {
        let maps = self.maps();
        maps.tasks.iter().filter_map(Result::ok).any(|(_, s)| s == id)
    }

    /// Removes `pid` from the task map when it is in session `id`.
    fn forget_task(&self, id: u32, pid: u32) {
        let mut maps = self.maps();
        if maps.tasks.get(&pid, 0).is_ok_and(|s| s == id) {
            let _ = maps.tasks.remove(&pid);
        }
    }

    /// The tasks of a session still alive.
    fn tasks_of(&self, id: u32) -> Vec<u32> {
        let maps = self.maps();
        maps.tasks.iter().filter_map(Result::ok).filter(|&(_, s)| s == id).map(|(t, _)| t).collect()
    }

    fn losses(&self, id: u32) -> Losses {
        let maps = self.maps();
        let mut sum = Losses::default();
        if let Ok(per_cpu) = maps.losses.get(&id, 0) {
            for l in per_cpu.iter() {
                sum.ring_full += l.ring_full;
                sum.inflight_full += l.inflight_full;
                sum.task_map_full += l.task_map_full;
                sum.capture_faults += l.capture_faults;
                sum.sock_map_full += l.sock_map_full;
            }
        }
        sum
    }

    /// The sockets the session still owns, with their counters.
    fn sockets_of(&self, id: u32) -> Vec<(u64, SockOwner)> {
        let maps = self.maps();
        maps.socks.iter().filter_map(Result::ok).filter(|(_, o)| o.session == id).collect()
    }

    fn stats(&self, id: u32) -> Vec<(u32, SyscallStats)> {
        let maps = self.maps();
        let mut out = Vec::new();
        let Some(slot) = maps.summary[id as usize] else {
            // Only summary sessions count in the kernel; reading the 512
            // slots would cost as many syscalls for nothing.
            return out;
        };
        for nr in 0..MAX_SYSCALLS {
            let Ok(per_cpu) = maps.stats.get(&(slot * MAX_SYSCALLS + nr), 0) else { continue };
            let mut s = SyscallStats::default();
            for v in per_cpu.iter() {
                s.calls += v.calls;
                s.errors += v.errors;
                s.total_ns += v.total_ns;
            }
            if s.calls > 0 {
                out.push((nr, s));
            }
        }
        out
    }

    /// Forgets a session: its tasks stop being traced and its counters
    /// are zeroed for the next user of the id.
    fn close(&self, id: u32) {
        self.router.remove(id);
        let mut maps = self.maps();
        let _ = maps.sessions.set(id, SessionConfig::default(), 0);
        let stale: Vec<u32> =
            maps.tasks.iter().filter_map(Result::ok).filter(|&(_, s)| s == id).map(|(t, _)| t).collect();
        for t in stale {
            let _ = maps.tasks.remove(&t);
        }
        // Sockets outlive processes (a connection closing after its owner
        // exited): the next session with this id must not get their events.
        let stale: Vec<u64> =
            maps.socks.iter().filter_map(Result::ok).filter(|(_, o)| o.session == id).map(|(sk, _)| sk).collect();
        for sk in stale {
            let _ = maps.socks.remove(&sk);
        }
        let stale: Vec<u32> =
            maps.listen_ports.iter().filter_map(Result::ok).filter(|&(_, s)| s == id).map(|(p, _)| p).collect();
        for port in stale {
            let _ = maps.listen_ports.remove(&port);
        }
        let ncpus = aya::util::nr_cpus().unwrap_or(1);
        if let Ok(zero) = PerCpuValues::try_from(vec![Losses::default(); ncpus]) {
            let _ = maps.losses.set(id, zero, 0);
        }
        if let Some(slot) = maps.summary[id as usize] {
            for nr in 0..MAX_SYSCALLS {
                if let Ok(zero) = PerCpuValues::try_from(vec![SyscallStats::default(); ncpus]) {
                    let _ = maps.stats.set(slot * MAX_SYSCALLS + nr, zero, 0);
                }
            }
        }
        maps.used[id as usize] = false;
        maps.summary[id as usize] = None;
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        if let Some(h) = self.consumer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            h.stop();
        }
    }
}

/// The program names, as `'static` for error messages.
fn raw_name(tp: &str) -> &'static str {
    match tp {
        "sched_process_fork" => "raw_sched_process_fork",
        "sched_process_exec" => "raw_sched_process_exec",
        "sched_process_exit" => "raw_sched_process_exit",
        "signal_deliver" => "raw_signal_deliver",
        "signal_generate" => "raw_signal_generate",
        "inet_sock_set_state" => "raw_inet_sock_set_state",
        "tcp_destroy_sock" => "raw_tcp_destroy_sock",
        "tcp_retransmit_skb" => "raw_tcp_retransmit_skb",
        "tcp_send_reset" => "raw_tcp_send_reset",
        _ => "raw_tcp_receive_reset",
    }
}

fn static_name(tp: &str) -> &'static str {
    match tp {
        "sched_process_fork" => "sched_process_fork",
        "sched_process_exec" => "sched_process_exec",
        "sched_process_exit" => "sched_process_exit",
        "signal_deliver" => "signal_deliver",
        "signal_generate" => "signal_generate",
        "inet_sock_set_state" => "inet_sock_set_state",
        "tcp_retransmit_skb" => "tcp_retransmit_skb",
        "tcp_send_reset" => "tcp_send_reset",
        "tcp_destroy_sock" => "tcp_destroy_sock",
        _ => "tcp_receive_reset",
    }
}

fn take<T>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, Error>
where
    T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = ebpf.take_map(name).ok_or(Error::MissingItem(name))?;
    T::try_from(map).map_err(|e| Error::Map(name, Box::new(e)))
}

/// The byte counters, raw tracepoints whose arguments are all they read
/// (see harness-ebpf/src/probes/net.rs).
const NET_BYTES_PROBES: [&str; 2] = ["sock_send_length", "sock_recv_length"];

/// The other TCP probes: raw tracepoints reading the socket at offsets
/// from BTF, or without them classic ones, whose records carry the
/// addresses and ports.
const NET_PROBES: [(&str, &str); 5] = [
    ("sock", "inet_sock_set_state"),
    ("tcp", "tcp_destroy_sock"),
    ("tcp", "tcp_retransmit_skb"),
    ("tcp", "tcp_send_reset"),
    ("tcp", "tcp_receive_reset"),
];

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
