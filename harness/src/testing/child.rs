//! Rust functions run in a re-executed copy of the test binary.
//!
//! [`super::traced`] starts `/proc/self/exe` (the very binary that is
//! running, even if it was rebuilt since) with [`CHILD_ENV`] set. A
//! constructor in this module runs before `main` there, so neither libtest
//! nor the test's own set-up runs again. It maps a shared memory file the
//! parent filled with the serialized input, reads it, asks the parent to
//! add it to the trace session and waits until it has (see
//! [`super::join`]: the child holds no descriptor of probity's maps), calls the function, and
//! writes the serialized result (or the panic message) back into the
//! mapping: plain memory writes, so nothing after the function shows in
//! the trace but the flush of output it left buffered (a `print!` without
//! a newline) and the process's exit.
//!
//! The function is found by its address relative to this module's
//! constructor, which is the same in every run of one binary. It must be a
//! function item or a closure that captures nothing: such a value has no
//! data, so the child can conjure it from its type alone.

use std::ffi::c_void;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::FileExt;
use std::panic::{catch_unwind, AssertUnwindSafe};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::join::{futex_wait, futex_wake, CHILD_WAIT, IDLE, JOINED, REFUSED, REQUESTED};

/// Set in a re-executed child to a [`ChildSpec`].
pub(crate) const CHILD_ENV: &str = "PROBITY_CHILD";

/// What a re-executed child is told through [`CHILD_ENV`]: the function
/// to run and the shared memory it reads its input from, written
/// `<entry offset>:<shared memory fd>`.
///
/// The child parses it from its environment, which anything that starts
/// it can set: a malformed value is an error, never a panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChildSpec {
    /// The function, as an offset from this module's anchor (see
    /// [`offset_of`]).
    pub offset: isize,
    /// The child's descriptor of the shared memory (see [`Shm`]).
    pub shm_fd: RawFd,
}

/// Why a [`CHILD_ENV`] value is not a [`ChildSpec`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ChildSpecError {
    /// No `:` separates the offset from the descriptor.
    #[error("malformed PROBITY_CHILD")]
    Separator,
    /// The offset is not a number that fits an address.
    #[error("malformed PROBITY_CHILD offset")]
    Offset,
    /// The descriptor is not a number from 0 to `i32::MAX`.
    #[error("malformed PROBITY_CHILD fd")]
    Fd,
}

impl std::fmt::Display for ChildSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.offset, self.shm_fd)
    }
}

impl std::str::FromStr for ChildSpec {
    type Err = ChildSpecError;

    fn from_str(s: &str) -> Result<ChildSpec, ChildSpecError> {
        let (offset, fd) = s.split_once(':').ok_or(ChildSpecError::Separator)?;
        let offset = offset.parse().map_err(|_| ChildSpecError::Offset)?;
        let shm_fd = fd.parse().ok().filter(|fd: &RawFd| *fd >= 0).ok_or(ChildSpecError::Fd)?;
        Ok(ChildSpec { offset, shm_fd })
    }
}

/// Bytes of the shared mapping: the header, the input, then the output.
/// The file is sparse; only what is written takes memory.
pub(crate) const SHM_LEN: usize = 256 << 20;
const DATA_AT: usize = 4096;
const MAGIC: u64 = u64::from_le_bytes(*b"probity1");

/// What the child got to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum State {
    /// The function was not called (the child failed before it).
    NotStarted = 0,
    /// The function was called and has not returned.
    Running = 1,
    /// The function returned; the output is its serialized result.
    Returned = 2,
    /// The function panicked; the output is the panic message.
    Panicked = 3,
    /// The child could not run the function; the output says why.
    Failed = 4,
}

/// The start of the shared mapping.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Header {
    magic: u64,
    input_len: u64,
    output_len: u64,
    state: u32,
    /// The word the child asks to join through (see [`super::join`]).
    join: u32,
}

/// Where [`Header::join`] lies in the mapping.
const JOIN_AT: usize = 28;

impl Header {
    fn to_bytes(self) -> [u8; 32] {
        let mut b = [0; 32];
        b[0..8].copy_from_slice(&self.magic.to_le_bytes());
        b[8..16].copy_from_slice(&self.input_len.to_le_bytes());
        b[16..24].copy_from_slice(&self.output_len.to_le_bytes());
        b[24..28].copy_from_slice(&self.state.to_le_bytes());
        b[JOIN_AT..JOIN_AT + 4].copy_from_slice(&self.join.to_le_bytes());
        b
    }

    fn from_bytes(b: &[u8; 32]) -> Header {
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        Header {
            magic: u64_at(0),
            input_len: u64_at(8),
            output_len: u64_at(16),
            state: u32::from_le_bytes(b[24..28].try_into().expect("4 bytes")),
            join: u32::from_le_bytes(b[JOIN_AT..JOIN_AT + 4].try_into().expect("4 bytes")),
        }
    }
}

/// A function the child can run: deserializes the input, calls, and
/// serializes the result.
type Entry = fn(&[u8]) -> (State, Vec<u8>);

fn entry<F, I, O>(input: &[u8]) -> (State, Vec<u8>)
where
    F: Fn(I) -> O + Copy + 'static,
    I: DeserializeOwned,
    O: Serialize,
{
    let input: I = match serde_json::from_slice(input) {
        Ok(i) => i,
        Err(e) => return (State::Failed, format!("failed to read the input: {e}").into_bytes()),
    };
    // SAFETY: `F` has no data (`Child::new` checks its size is zero), so
    // every value of it is the same value; reading one from a dangling,
    // aligned pointer reads nothing.
    let f: F = unsafe { std::ptr::NonNull::<F>::dangling().as_ptr().read() };
    if let Err(e) = join_session() {
        return (State::Failed, e.into_bytes());
    }
    match catch_unwind(AssertUnwindSafe(|| f(input))) {
        Ok(out) => match serde_json::to_vec(&out) {
            Ok(v) => (State::Returned, v),
            Err(e) => (State::Failed, format!("failed to serialize the result: {e}").into_bytes()),
        },
        Err(payload) => (State::Panicked, panic_message(&*payload).into_bytes()),
    }
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic with a non-string payload)".into()
    }
}

/// The function `f`, as an offset the re-executed binary can call.
pub(crate) fn offset_of<F, I, O>() -> isize
where
    F: Fn(I) -> O + Copy + 'static,
    I: DeserializeOwned,
    O: Serialize,
{
    const {
        assert!(
            std::mem::size_of::<F>() == 0,
            "probity::traced runs a function item or a closure that captures nothing; pass what it needs as its input"
        )
    };
    let e: Entry = entry::<F, I, O>;
    e as usize as isize - anchor()
}

fn anchor() -> isize {
    let a: extern "C" fn() = child_init;
    a as usize as isize
}

/// The parent's side of the shared memory.
pub(crate) struct Shm {
    file: File,
}

impl Shm {
    /// A sparse shared memory file holding `input`.
    pub(crate) fn with_input(input: &[u8]) -> std::io::Result<Shm> {
        if DATA_AT + input.len() > SHM_LEN / 2 {
            return Err(std::io::Error::other(format!(
                "the input is {} bytes; a traced function takes at most {}",
                input.len(),
                SHM_LEN / 2 - DATA_AT
            )));
        }
        let fd = nix::sys::memfd::memfd_create(c"probity-child", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(std::io::Error::from)?;
        let file = File::from(fd);
        file.set_len(SHM_LEN as u64)?;
        let header = Header { magic: MAGIC, input_len: input.len() as u64, join: IDLE, ..Header::default() };
        file.write_all_at(&header.to_bytes(), 0)?;
        file.write_all_at(input, DATA_AT as u64)?;
        Ok(Shm { file })
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// The parent's mapping of the word the child asks to join through.
    pub(crate) fn join_word(&self) -> std::io::Result<super::join::JoinWord> {
        super::join::JoinWord::map(&self.file, JOIN_AT)
    }

    /// What the child got to, and its output.
    pub(crate) fn result(&self) -> (State, Vec<u8>) {
        let Some(h) = read_header(&self.file) else {
            return (State::Failed, b"the shared memory with the child could not be read".to_vec());
        };
        let state = match h.state {
            1 => State::Running,
            2 => State::Returned,
            3 => State::Panicked,
            4 => State::Failed,
            _ => State::NotStarted,
        };
        let len = (h.output_len as usize).min(SHM_LEN);
        let mut out = vec![0; len];
        if self.file.read_exact_at(&mut out, output_at(h.input_len as usize) as u64).is_err() {
            return (State::Failed, b"the child's result could not be read".to_vec());
        }
        (state, out)
    }
}

fn read_header(file: &File) -> Option<Header> {
    let mut b = [0; 32];
    file.read_exact_at(&mut b, 0).ok()?;
    let h = Header::from_bytes(&b);
    (h.magic == MAGIC).then_some(h)
}

fn output_at(input_len: usize) -> usize {
    (DATA_AT + input_len).next_multiple_of(4096)
}

/// The child's mapping, set up before the function runs.
static MAPPING: std::sync::atomic::AtomicPtr<u8> = std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

/// Asks the parent to add this process to the trace session, waits until
/// it has, and notes in the mapping that the function runs. Nothing but
/// the end of the futex wait comes between the parent's map update and
/// the function.
fn join_session() -> Result<(), String> {
    let base = MAPPING.load(std::sync::atomic::Ordering::Acquire);
    if base.is_null() {
        return Err("the shared memory with probity is not mapped".into());
    }
    // SAFETY: JOIN_AT is 4-aligned inside the page-aligned mapping, which
    // lives until exit; the parent touches the word only atomically.
    let word = unsafe { std::sync::atomic::AtomicU32::from_ptr(base.add(JOIN_AT).cast()) };
    word.store(REQUESTED, std::sync::atomic::Ordering::Release);
    futex_wake(word);
    let deadline = std::time::Instant::now() + CHILD_WAIT;
    loop {
        match word.load(std::sync::atomic::Ordering::Acquire) {
            JOINED => break,
            REFUSED => return Err("probity could not add this process to its trace session".into()),
            seen => {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return Err(format!(
                        "probity did not add this process to its trace session within {CHILD_WAIT:?}; \
                         nothing of the function would have been traced, so it was not run"
                    ));
                }
                futex_wait(word, seen, left);
            }
        }
    }
    // SAFETY: the state word is inside the mapping, which lives until exit.
    unsafe { base.add(24).cast::<u32>().write_unaligned(State::Running as u32) };
    Ok(())
}

/// Runs before `main` in every process of a binary linked with probity;
/// does nothing unless this is a re-executed child.
extern "C" fn child_init() {
    let Some(spec) = std::env::var_os(CHILD_ENV) else { return };
    // Processes the function starts are not children of this kind. Before
    // `main`, this is the only thread.
    std::env::remove_var(CHILD_ENV);
    super::IN_TRACED_CHILD.store(true, std::sync::atomic::Ordering::Relaxed);
    // What std's runtime does before `main`, which has not run here: a
    // write to a closed pipe returns EPIPE instead of killing the process.
    // SAFETY: setting a signal disposition; no handler runs.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let code = match run_child(&spec.to_string_lossy()) {
        Ok(State::Returned) => 0,
        Ok(_) => 101,
        Err(e) => {
            eprintln!("probity: the traced child could not run its function: {e}");
            125
        }
    };
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: ends this process without running `main`.
    unsafe { libc::_exit(code) }
}

#[used]
#[unsafe(link_section = ".init_array")]
static CHILD_INIT: extern "C" fn() = child_init;

fn run_child(spec: &str) -> Result<State, String> {
    let ChildSpec { offset, shm_fd: fd } = spec.parse().map_err(|e: ChildSpecError| e.to_string())?;
    // SAFETY: the parent passed this fd for exactly this mapping.
    let base = unsafe {
        libc::mmap(std::ptr::null_mut(), SHM_LEN, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0)
    };
    if base == libc::MAP_FAILED {
        return Err(format!("failed to map the shared memory: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` is ours and no longer needed.
    drop(unsafe { File::from_raw_fd(fd) });
    let base = base.cast::<u8>();
    // SAFETY: the header is at the start of the SHM_LEN-byte mapping.
    let header = Header::from_bytes(unsafe { &*base.cast::<[u8; 32]>() });
    if header.magic != MAGIC || DATA_AT + header.input_len as usize > SHM_LEN / 2 {
        return Err("the shared memory holds no input".into());
    }
    // SAFETY: checked to be inside the mapping above.
    let input = unsafe { std::slice::from_raw_parts(base.add(DATA_AT), header.input_len as usize) }.to_vec();
    MAPPING.store(base, std::sync::atomic::Ordering::Release);
    // SAFETY: `anchor() + offset` is `entry::<F, I, O>` of this very
    // binary: the parent computed the offset from the same anchor.
    let f: Entry = unsafe { std::mem::transmute::<*const c_void, Entry>((anchor() + offset) as *const c_void) };
    let (state, out) = f(&input);
    let at = output_at(input.len());
    let (state, out) = if at + out.len() > SHM_LEN {
        (State::Failed, format!("the result is {} bytes; at most {} fit", out.len(), SHM_LEN - at).into_bytes())
    } else {
        (state, out)
    };
    // SAFETY: `at + out.len()` is inside the mapping (checked above).
    unsafe {
        std::ptr::copy_nonoverlapping(out.as_ptr(), base.add(at), out.len());
        base.add(16).cast::<u64>().write_unaligned(out.len() as u64);
        base.add(24).cast::<u32>().write_unaligned(state as u32);
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_child_spec_reads_back_as_written() {
        let spec = ChildSpec { offset: -0x1f40, shm_fd: 7 };
        assert_eq!(spec.to_string(), "-8000:7");
        assert_eq!("-8000:7".parse(), Ok(spec));
        let far = ChildSpec { offset: isize::MIN, shm_fd: RawFd::MAX };
        assert_eq!(far.to_string().parse(), Ok(far));
    }

    #[test]
    fn a_malformed_child_spec_is_an_error_naming_the_part() {
        use ChildSpecError::*;
        for (bad, why) in [
            ("", Separator),
            ("12", Separator),
            (":", Offset),
            ("x:3", Offset),
            ("1 :3", Offset),
            ("99999999999999999999999:3", Offset),
            ("12:", Fd),
            ("12:-1", Fd),
            ("12:3:4", Fd),
            ("12:4294967296", Fd),
            ("12:\u{fffd}", Fd),
        ] {
            assert_eq!(bad.parse::<ChildSpec>(), Err(why), "{bad:?}");
        }
        assert_eq!(Fd.to_string(), "malformed PROBITY_CHILD fd");
    }

    proptest! {
        #[test]
        fn any_child_spec_round_trips(offset in any::<isize>(), shm_fd in 0..=RawFd::MAX) {
            let spec = ChildSpec { offset, shm_fd };
            prop_assert_eq!(spec.to_string().parse(), Ok(spec));
        }

        #[test]
        fn any_string_parses_or_is_an_error(s in "\\PC*|[-+0-9:]{0,24}") {
            // No panic, and what parses reads back the same.
            if let Ok(spec) = s.parse::<ChildSpec>() {
                prop_assert_eq!(spec.to_string().parse(), Ok(spec));
            }
        }
    }
}
