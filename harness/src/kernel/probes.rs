//! The table of probity's eBPF programs: for each, the tracepoint it
//! attaches to, or the tail-call slot it is reached through, and the
//! kernel struct offsets from BTF it needs. The loader ([`super::load`])
//! resolves the table for the offsets this kernel gives, loads what it
//! names, and attaches it in the table's order.

/// Kernel struct offsets from BTF that a program needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Needs {
    /// The task and exec offsets (any offsets at all were found).
    Task,
    /// The socket offsets.
    Sock,
    /// The descriptor-table offsets, to find an accepted socket.
    Net,
}

/// One entry of [`PROBES`].
#[derive(Clone, Copy, Debug)]
pub(super) enum Probe {
    /// A raw tracepoint, always: the program is named after it, and reads
    /// nothing but the tracepoint's arguments.
    Raw(&'static str),
    /// A raw tracepoint that older kernels lack: attached when the kernel
    /// has it, and the trace loses only what the program adds.
    RawIfPresent(&'static str),
    /// The raw tracepoint program `raw` when the offsets it `needs` are
    /// known; otherwise the classic tracepoint program of the tracepoint's
    /// own name, whose record carries what the raw one reads at those
    /// offsets (it looks its id up in tracefs, and takes an RCU grace
    /// period to detach).
    Either { category: &'static str, tracepoint: &'static str, raw: &'static str, needs: Needs },
    /// A program `sys_exit` reaches by a tail call through `slot` of the
    /// `TAILS` program array, loaded when the offsets it `needs` (if any)
    /// are known.
    Tail { program: &'static str, slot: u32, needs: Option<Needs> },
}

impl Probe {
    /// [`Probe::Either`], as one line of the table.
    const fn either(category: &'static str, tracepoint: &'static str, raw: &'static str, needs: Needs) -> Probe {
        Probe::Either { category, tracepoint, raw, needs }
    }
}

/// Every program, in the order it is attached.
pub(super) const PROBES: &[Probe] = &[
    // Processes: harness-ebpf/src/probes/process.rs.
    Probe::either("sched", "sched_process_fork", "raw_sched_process_fork", Needs::Task),
    Probe::either("sched", "sched_process_exec", "raw_sched_process_exec", Needs::Task),
    Probe::either("sched", "sched_process_exit", "raw_sched_process_exit", Needs::Task),
    Probe::either("signal", "signal_deliver", "raw_signal_deliver", Needs::Task),
    Probe::either("signal", "signal_generate", "raw_signal_generate", Needs::Task),
    // Reached from sys_exit by tail calls, and in place before it is
    // attached: the exec argv program (probes/syscalls.rs) and the accept
    // probe (probes/net.rs), which finds the accepted socket through the
    // descriptor table at offsets from BTF.
    Probe::Tail { program: "exec_args_tail", slot: 0, needs: None },
    Probe::Tail { program: "accept_tail", slot: 1, needs: Some(Needs::Net) },
    // An exec's argv as passed, read at the exec's point of no return
    // (probes/syscalls.rs). Linux 6.10 added the tracepoint: without it,
    // the argv an exec records is the one its new image got.
    Probe::RawIfPresent("sched_prepare_exec"),
    // Syscalls: harness-ebpf/src/probes/syscalls.rs. `sched_switch` moves
    // a syscall's entry out of its CPU's slot when its task is switched
    // out: attached first, so that no entry can be left behind.
    Probe::Raw("sched_switch"),
    Probe::Raw("sys_enter"),
    Probe::Raw("sys_exit"),
    // Network: harness-ebpf/src/probes/net.rs. The byte counters read
    // only their arguments; the other TCP probes read the socket at
    // offsets from BTF, or without them are classic tracepoints whose
    // records carry the addresses and ports.
    Probe::Raw("sock_send_length"),
    Probe::Raw("sock_recv_length"),
    Probe::either("sock", "inet_sock_set_state", "raw_inet_sock_set_state", Needs::Sock),
    Probe::either("tcp", "tcp_destroy_sock", "raw_tcp_destroy_sock", Needs::Sock),
    Probe::either("tcp", "tcp_retransmit_skb", "raw_tcp_retransmit_skb", Needs::Sock),
    Probe::either("tcp", "tcp_send_reset", "raw_tcp_send_reset", Needs::Sock),
    Probe::either("tcp", "tcp_receive_reset", "raw_tcp_receive_reset", Needs::Sock),
];

/// How one program is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Attach {
    /// To the raw tracepoint of this name.
    Raw(&'static str),
    /// To the raw tracepoint of this name if the kernel has it.
    RawIfPresent(&'static str),
    /// To the classic tracepoint of this category and name.
    Classic(&'static str, &'static str),
    /// Into this slot of the `TAILS` program array.
    Tail(u32),
}

/// The programs to load, each with how it attaches, in attach order, for
/// a kernel that gives the offsets `have` says it does.
pub(super) fn resolve(have: impl Fn(Needs) -> bool) -> Vec<(&'static str, Attach)> {
    PROBES
        .iter()
        .filter_map(|probe| match *probe {
            Probe::Raw(name) => Some((name, Attach::Raw(name))),
            Probe::RawIfPresent(name) => Some((name, Attach::RawIfPresent(name))),
            Probe::Either { tracepoint, raw, needs, .. } if have(needs) => Some((raw, Attach::Raw(tracepoint))),
            Probe::Either { category, tracepoint, .. } => Some((tracepoint, Attach::Classic(category, tracepoint))),
            Probe::Tail { program, slot, needs } => needs.is_none_or(&have).then_some((program, Attach::Tail(slot))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_programs_with_offsets_and_classic_ones_without() {
        let all = resolve(|_| true);
        assert_eq!(all.len(), PROBES.len());
        assert_eq!(all[0], ("raw_sched_process_fork", Attach::Raw("sched_process_fork")));
        assert!(all.contains(&("accept_tail", Attach::Tail(1))));
        let none = resolve(|_| false);
        assert_eq!(none.len(), PROBES.len() - 1, "no accept probe");
        assert_eq!(none[0], ("sched_process_fork", Attach::Classic("sched", "sched_process_fork")));
        assert!(none.contains(&("tcp_receive_reset", Attach::Classic("tcp", "tcp_receive_reset"))));
        assert!(none.contains(&("sys_exit", Attach::Raw("sys_exit"))));
        assert!(none.contains(&("sched_prepare_exec", Attach::RawIfPresent("sched_prepare_exec"))));
        // Only the socket offsets missing: process probes stay raw.
        let no_sock = resolve(|n| n != Needs::Sock);
        assert!(no_sock.contains(&("raw_signal_deliver", Attach::Raw("signal_deliver"))));
        assert!(no_sock.contains(&("inet_sock_set_state", Attach::Classic("sock", "inet_sock_set_state"))));
    }

    #[test]
    fn sched_switch_is_attached_before_the_syscall_probes() {
        let order: Vec<&str> = resolve(|_| true).into_iter().map(|(name, _)| name).collect();
        let at = |n: &str| order.iter().position(|&o| o == n).unwrap_or(usize::MAX);
        assert!(at("sched_switch") < at("sys_enter") && at("sys_enter") < at("sys_exit"), "{order:?}");
        assert!(at("exec_args_tail") < at("sys_exit"), "tail targets are in place before sys_exit: {order:?}");
    }
}
