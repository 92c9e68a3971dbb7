//! The seccomp filter that hands a traced tree's calls to the supervisor:
//! compiled by libseccomp in the parent, installed by the child between
//! `fork` and `exec`, where only async-signal-safe calls are allowed.
//!
//! libseccomp's own `seccomp_load` allocates, so it cannot run in the
//! child: the parent exports the compiled BPF program, and the child
//! installs it with the raw `seccomp(2)` call, asking for a listener
//! descriptor (`SECCOMP_FILTER_FLAG_NEW_LISTENER`), which it sends back
//! over a socket pair made before the fork. A filter is inherited across
//! `fork`, `clone` and `exec`, so static programs, threads and children
//! are all covered.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use libseccomp::{ScmpAction, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use std::os::fd::FromRawFd;
use syscalls::Sysno;

use super::spec::Inject;

/// The flags of the one `sendmsg` that hands the listener over. The
/// filter lets this call on the hand-over socket through, so that a rule
/// on `sendmsg` does not wait on a supervisor that has no listener yet.
const HANDOVER_FLAGS: u64 = (libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) as u64;

/// Why the filter could not be prepared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    /// libseccomp refused a rule or could not compile the filter.
    #[error("failed to compile the injection filter")]
    Compile(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The socket pair or pipe for the hand-over could not be made.
    #[error("failed to prepare the listener hand-over")]
    Io(#[source] std::io::Error),
    /// Injection was asked with summary counts, which only the kernel
    /// keeps: the calls probity answers never reach it, so they would be
    /// missing from the counts.
    #[error("fault injection cannot be combined with summary counts (--summary): the injected calls would be missing from them")]
    WithSummary,
    /// A rule on a libc function, which only the preload library can
    /// answer, without the preload tracer.
    #[error("a fault-injection rule on {function} needs the preload tracer, which this run leaves out")]
    LibcWithoutPreload {
        /// The rule's function.
        function: String,
    },
    /// A rule on a libc function the preload library cannot answer as
    /// built (a typed builder gave it a syscall rule's part).
    #[error("a fault-injection rule on {function} cannot be answered: {why}")]
    LibcRule {
        /// The rule's function.
        function: String,
        /// Why.
        why: &'static str,
    },
}

/// libseccomp's error, kept as a cause so that its type stays out of
/// probity's API.
fn compile(e: libseccomp::error::SeccompError) -> FilterError {
    FilterError::Compile(Box::new(e))
}

/// A compiled filter and the parent's end of the hand-over socket.
pub(crate) struct Filter {
    /// The BPF program, as `struct sock_filter` instructions.
    program: Vec<libc::sock_filter>,
    /// The child's end: it sends the listener and its pid on it.
    pub(crate) child_end: OwnedFd,
    /// The parent's end: the supervisor receives them on it.
    pub(crate) parent_end: OwnedFd,
}

impl Filter {
    /// Compiles a filter that sends every call of `rules`' syscalls, and
    /// every `execve` (which ends probity's own start-up calls in the
    /// root), to the supervisor.
    pub(crate) fn compile(rules: &[Inject]) -> Result<Filter, FilterError> {
        let mut ends = [0 as RawFd; 2];
        // SAFETY: `ends` has room for the two descriptors.
        if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, ends.as_mut_ptr()) }
            != 0
        {
            return Err(FilterError::Io(std::io::Error::last_os_error()));
        }
        // SAFETY: both descriptors were just created and are ours alone.
        let (parent_end, child_end) = unsafe { (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) };
        let mut ctx = ScmpFilterContext::new(ScmpAction::Allow).map_err(compile)?;
        // A call made through another architecture's entry (`int 0x80`)
        // runs as it would untraced rather than killing the program.
        ctx.set_act_badarch(ScmpAction::Allow).map_err(compile)?;
        // probity sets `no_new_privs` itself, in the child.
        ctx.set_ctl_nnp(false).map_err(compile)?;
        let mut set: Vec<Sysno> = rules.iter().flat_map(|r| r.syscalls.iter().copied()).collect();
        set.extend([Sysno::execve, Sysno::execveat]);
        set.sort_unstable();
        set.dedup();
        let handover = child_end.as_raw_fd() as u64;
        for sysno in set {
            let call = ScmpSyscall::from(sysno.id());
            if sysno == Sysno::sendmsg {
                // Every `sendmsg` but the hand-over (that socket, those flags).
                let other_fd = [ScmpArgCompare::new(0, ScmpCompareOp::NotEqual, handover)];
                let other_flags = [
                    ScmpArgCompare::new(0, ScmpCompareOp::Equal, handover),
                    ScmpArgCompare::new(2, ScmpCompareOp::NotEqual, HANDOVER_FLAGS),
                ];
                ctx.add_rule_conditional(ScmpAction::Notify, call, &other_fd).map_err(compile)?;
                ctx.add_rule_conditional(ScmpAction::Notify, call, &other_flags).map_err(compile)?;
            } else {
                ctx.add_rule(ScmpAction::Notify, call).map_err(compile)?;
            }
        }
        // libseccomp 2.5 exports to a descriptor only; the program is a
        // few hundred bytes, well within a pipe's buffer.
        let (mut reader, writer) = std::io::pipe().map_err(FilterError::Io)?;
        ctx.export_bpf(&writer).map_err(compile)?;
        drop(writer);
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).map_err(FilterError::Io)?;
        let size = size_of::<libc::sock_filter>();
        let program = bytes
            .chunks_exact(size)
            .map(|c| libc::sock_filter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        Ok(Filter { program, child_end, parent_end })
    }

    /// What the child runs before `exec`: allocation-free, only raw
    /// async-signal-safe syscalls.
    pub(crate) fn installer(&self) -> Installer {
        Installer {
            program: self.program.clone(),
            socket: self.child_end.as_raw_fd(),
            cmsg: Box::new([0u8; CMSG_SPACE]),
            pid: Box::new(0),
        }
    }
}

/// Room for one `SCM_RIGHTS` message carrying one descriptor.
const CMSG_SPACE: usize = 24;

/// The child's half of [`Filter`]: owns everything the installing code
/// points at, so that nothing is allocated after the fork.
pub(crate) struct Installer {
    program: Vec<libc::sock_filter>,
    socket: RawFd,
    cmsg: Box<[u8; CMSG_SPACE]>,
    pid: Box<u32>,
}

impl Installer {
    /// Sets `no_new_privs` (which lets an unprivileged process install a
    /// filter), installs the filter and sends the listener and this
    /// process's pid to the supervisor. Runs in the forked child.
    pub(crate) fn install(&mut self) -> std::io::Result<()> {
        let last = std::io::Error::last_os_error;
        // SAFETY: getpid has no preconditions.
        *self.pid = unsafe { libc::getpid() } as u32;
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(last());
        }
        let prog = libc::sock_fprog { len: self.program.len() as u16, filter: self.program.as_mut_ptr() };
        // SAFETY: `prog` points at the program, which lives in `self`.
        let listener = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
                &prog as *const libc::sock_fprog,
            )
        };
        if listener < 0 {
            return Err(last());
        }
        let mut iov = libc::iovec { iov_base: (&mut *self.pid as *mut u32).cast(), iov_len: size_of::<u32>() };
        // SAFETY: a zeroed msghdr is valid; its pointers are set below.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = self.cmsg.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE is a pure computation.
        msg.msg_controllen = unsafe { libc::CMSG_SPACE(size_of::<RawFd>() as u32) } as usize;
        // SAFETY: the control buffer is CMSG_SPACE bytes, enough for one
        // header and one descriptor, and `msg` points at it.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<RawFd>() as u32) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), listener as RawFd);
        }
        // SAFETY: `msg` and everything it points at are valid for the call.
        if unsafe { libc::sendmsg(self.socket, &msg, HANDOVER_FLAGS as libc::c_int) } < 0 {
            return Err(last());
        }
        // The listener is close-on-exec: the program never holds it.
        Ok(())
    }
}

// SAFETY: the program and buffers are owned and only used by the child,
// in one thread.
unsafe impl Send for Installer {}
// SAFETY: as above.
unsafe impl Sync for Installer {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_control_buffer_holds_one_descriptor() {
        // SAFETY: a pure computation.
        assert!(unsafe { libc::CMSG_SPACE(size_of::<RawFd>() as u32) } as usize <= CMSG_SPACE);
    }

    #[test]
    fn a_filter_compiles_for_the_rules_syscalls() {
        let rules = ["openat,sendmsg:error=EIO".parse().unwrap()];
        let filter = Filter::compile(&rules).unwrap();
        assert!(filter.program.len() > 4);
    }
}
