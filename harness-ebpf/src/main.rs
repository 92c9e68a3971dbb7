//! probity's kernel side: eBPF programs that record what one process tree
//! does, written with aya-ebpf.
//!
//! Events are born here. Each probe family has its file under `probes/`;
//! every program looks its task up in the `TASKS` map first, so only the
//! process trees that a harness session registered produce records. Records
//! use the layouts of `probity-common` and travel to userspace through the
//! `EVENTS` ring buffer (see `harness/src/kernel/`).
//!
//! Only tracepoints are used: this is the stable kernel interface, and the
//! kernels probity targets may lack kprobes and fentry.
#![no_std]
#![no_main]

mod maps;
mod probes;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any reachable panic, so this is never called.
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
