//! A signal sent to or delivered to a task ([`SignalEvent`]).

use super::EventHeader;

/// A signal delivered to a task (it is about to be handled, ignored or
/// take its default action).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalEvent {
    pub header: EventHeader,
    pub sig: i32,
    pub errno: i32,
    /// `si_code`.
    pub code: i32,
    /// `SIGNAL_*` flags.
    pub flags: u32,
    /// The handler address: 0 for `SIG_DFL`, 1 for `SIG_IGN`. For a
    /// generated signal, the `result` of `signal_generate` (0: delivered).
    pub sa_handler: u64,
    pub sa_flags: u64,
}

/// `SignalEvent::flags`: the signal was sent to the task (from
/// `signal_generate`, in the sender's context), not yet delivered. The
/// header's `tid` is the target's and its `pid` is unknown (equal to `tid`).
/// The kernel turns a fatal signal into a SIGKILL of the whole group at
/// once, so this is how a process's real killing signal is known.
pub const SIGNAL_GENERATED: u32 = 1;

const _: () = assert!(size_of::<SignalEvent>() == 56);
