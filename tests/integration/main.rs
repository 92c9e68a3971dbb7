//! probity's integration tests: real programs (fixtures, coreutils, sh,
//! python3, tar) traced for real by the eBPF tracer, and the `probity` CLI.
//!
//! They need root (or CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN), as CI has.
//! Without it they fail with the reason; they never pass by checking nothing.

mod attach;
mod bytes;
mod cli;
mod daemon;
mod fidelity;
mod fidelity_args;
mod fidelity_exec;
mod fidelity_signals;
mod gate;
mod inheritance;
mod inject;
mod libc_hooks;
mod messages;
mod network;
mod network_descriptors;
mod preload;
mod preload_fidelity;
mod preload_only;
mod process_events;
mod readme;
mod security_cli;
mod security_files;
mod security_gates;
mod security_inject;
mod security_privilege;
mod security_ring;
mod sessions;
mod snapshots;
mod support;
mod trace_asserts;
mod trace_queries;
mod writers;
