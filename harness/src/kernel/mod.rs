//! The eBPF tracer: loads `harness-ebpf`'s object, attaches it, and routes
//! its records to sessions.
//!
//! One [`Kernel`] is loaded per process, on first use (`load.rs`, driven
//! by the table of programs in `probes.rs`), and shared by every session;
//! it detaches and frees everything when the last session ends. A session
//! owns an id (`session.rs`); the kernel side tags each record with the session
//! of the task that made it, and the [`consumer`] thread drains the ring
//! buffer and hands each session its own records, decoded by [`assemble`].
//! A caller that is not root sees nothing of processes with more privilege
//! than its own ([`privilege`]).

pub(crate) mod assemble;
mod btf;
mod consumer;
pub mod doctor;
mod load;
pub mod privilege;
mod probes;
pub(crate) mod raw_bpf;
mod ring;
pub(crate) mod session;

use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, Weak};

use aya::maps::{Array, HashMap as BpfHashMap, MapData, PerCpuArray, PerCpuValues};
use aya::Ebpf;
use probity_common::{Losses, SessionConfig, SockOwner, SyscallStats, MAX_SYSCALLS};

pub(crate) use consumer::Sink;
pub(crate) use session::KernelSession;

use crate::error::Error;

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
    /// Serve sessions of other users (the daemon): the credential
    /// offsets the exec probe needs are required even when loaded by root.
    pub serve_others: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            ring_bytes: probity_common::RingBytes::DEFAULT.get(),
            max_tasks: probity_common::MaxTasks::DEFAULT.get(),
            keep: false,
            serve_others: false,
        }
    }
}

/// The loaded and attached programs, and the maps userspace uses.
pub(crate) struct Kernel {
    maps: Mutex<Maps>,
    tasks_fd: RawFd,
    /// `INFLIGHT`, the syscalls of traced tasks that were switched out,
    /// which lives in `_ebpf`.
    inflight_fd: RawFd,
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
    /// Which session ids are taken, and what goes with each.
    ids: session::SessionIds,
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
                let k = Arc::new(load::load(opts)?);
                *shared = Arc::downgrade(&k);
                k
            }
        };
        if opts.keep {
            KEPT.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(|| k.clone());
        }
        Ok(k)
    }

    /// Adds thread `tid` to session `id`.
    pub(crate) fn add_task(&self, id: u32, tid: u32) -> std::io::Result<()> {
        raw_bpf::update_u32(self.tasks_fd, tid, id)
    }

    /// Routes session `id`'s records to `outbox`, undecoded (the daemon).
    pub(crate) fn forward(&self, id: u32, outbox: Arc<crate::daemon::Outbox>) {
        self.router.add_forward(id, outbox);
    }

    /// Returns once every record committed before the call was routed.
    pub(crate) fn flush(&self) {
        self.router.flush();
    }

    /// Records no session could be given so far.
    pub(crate) fn unroutable(&self) -> u64 {
        self.router.unroutable()
    }

    fn maps(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.maps.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims a session id and configures it.
    pub(crate) fn open(&self, mut config: SessionConfig) -> Result<u32, Error> {
        let mut maps = self.maps();
        let claim = maps.ids.claim(config.flags & probity_common::SESSION_SUMMARY != 0)?;
        if let Some(slot) = claim.stats_slot {
            config.stats_slot = slot;
        }
        config.generation = claim.generation;
        maps.sessions.set(claim.id, config, 0).map_err(|e| Error::Map("SESSIONS", Box::new(e)))?;
        Ok(claim.id)
    }

    /// Whether any task of the session is still alive, per the kernel side.
    pub(crate) fn has_tasks(&self, id: u32) -> bool {
        let maps = self.maps();
        maps.tasks.iter().filter_map(Result::ok).any(|(_, s)| s == id)
    }

    /// Removes `pid` from the task map when it is in session `id`.
    pub(crate) fn forget_task(&self, id: u32, pid: u32) {
        let mut maps = self.maps();
        if maps.tasks.get(&pid, 0).is_ok_and(|s| s == id) {
            let _ = maps.tasks.remove(&pid);
        }
    }

    /// The tasks of a session still alive.
    pub(crate) fn tasks_of(&self, id: u32) -> Vec<u32> {
        let maps = self.maps();
        maps.tasks.iter().filter_map(Result::ok).filter(|&(_, s)| s == id).map(|(t, _)| t).collect()
    }

    pub(crate) fn losses(&self, id: u32) -> Losses {
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
    pub(crate) fn sockets_of(&self, id: u32) -> Vec<(u64, SockOwner)> {
        let maps = self.maps();
        maps.socks.iter().filter_map(Result::ok).filter(|(_, o)| o.session == id).collect()
    }

    pub(crate) fn stats(&self, id: u32) -> Vec<(u32, SyscallStats)> {
        let maps = self.maps();
        let mut out = Vec::new();
        let Some(slot) = maps.ids.stats_slot(id) else {
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

    /// Takes every task of session `id` out of the task map: a session
    /// whose tree still runs stops being traced.
    pub(crate) fn detach(&self, id: u32) {
        let mut maps = self.maps();
        self.take_out_tasks(&mut maps, id);
        // Their connections stay open, and would go on sending events.
        Self::forget_sockets(&mut maps, id);
    }

    /// Forgets the sockets, and listening ports, session `id` owns.
    fn forget_sockets(maps: &mut Maps, id: u32) {
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
    }

    /// Removes session `id`'s tasks, scanning again while a scan finds
    /// some: a task forking as it is removed can have its child added
    /// after the scan that removed it, and that child must not be left
    /// to whoever gets the id next. A session whose tree has ended (the
    /// usual close) pays one scan.
    fn take_out_tasks(&self, maps: &mut Maps, id: u32) {
        for _ in 0..64 {
            let stale: Vec<u32> =
                maps.tasks.iter().filter_map(Result::ok).filter(|&(_, s)| s == id).map(|(t, _)| t).collect();
            if stale.is_empty() {
                return;
            }
            for t in stale {
                let _ = maps.tasks.remove(&t);
                // A task left running (a detached one) keeps its entry,
                // which its exit, untraced now, never deletes: enough of
                // them would fill the map for every later session.
                let _ = raw_bpf::delete_u32(self.inflight_fd, t);
            }
        }
    }

    /// Forgets a session: its tasks stop being traced and its counters
    /// are zeroed for the next user of the id.
    pub(crate) fn close(&self, id: u32) {
        self.router.remove(id);
        let mut maps = self.maps();
        let _ = maps.sessions.set(id, SessionConfig::default(), 0);
        self.take_out_tasks(&mut maps, id);
        // Sockets outlive processes (a connection closing after its owner
        // exited): the next session with this id must not get their events.
        Self::forget_sockets(&mut maps, id);
        let ncpus = aya::util::nr_cpus().unwrap_or(1);
        if let Ok(zero) = PerCpuValues::try_from(vec![Losses::default(); ncpus]) {
            let _ = maps.losses.set(id, zero, 0);
        }
        if let Some(slot) = maps.ids.stats_slot(id) {
            for nr in 0..MAX_SYSCALLS {
                if let Ok(zero) = PerCpuValues::try_from(vec![SyscallStats::default(); ncpus]) {
                    let _ = maps.stats.set(slot * MAX_SYSCALLS + nr, zero, 0);
                }
            }
        }
        maps.ids.release(id);
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        if let Some(h) = self.consumer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            h.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `InFlight`'s size in the probes: session, nr, six arguments, time.
    const INFLIGHT_VALUE: usize = 4 + 4 + 6 * 8 + 8;

    /// A session closed while its task still runs (a detach, a daemon
    /// client that went away) takes that task's `INFLIGHT` entry along.
    #[test]
    fn closing_a_session_deletes_the_syscall_entries_of_tasks_left_running() {
        assert!(
            doctor::missing_capabilities().is_empty(),
            "this test loads the eBPF programs: run it as root (or with CAP_BPF and CAP_PERFMON), as CI does"
        );
        let kernel = Kernel::acquire(LoadOptions::default()).unwrap();
        let id = kernel.open(session::config_for(false, 32, privilege::Owner::current())).unwrap();
        let mut child = std::process::Command::new("python3")
            .args(["-c", "import time\nwhile True: time.sleep(0.02)"])
            .spawn()
            .unwrap();
        let tid = child.id();
        kernel.add_task(id, tid).unwrap();
        // Its next sleep is traced, and switched out: an entry.
        let start = std::time::Instant::now();
        while !raw_bpf::has_u32(kernel.inflight_fd, tid, INFLIGHT_VALUE) {
            assert!(start.elapsed() < std::time::Duration::from_secs(20), "no INFLIGHT entry for {tid}");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        kernel.close(id);
        let gone = !raw_bpf::has_u32(kernel.inflight_fd, tid, INFLIGHT_VALUE);
        let _ = child.kill();
        let _ = child.wait();
        assert!(gone, "the entry of task {tid} outlived its session");
    }
}
