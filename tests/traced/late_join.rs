//! A traced function's child joins its trace session late, and code that
//! runs in it before `main` cannot steer that. The constructor below
//! stands for a dependency's: it runs in every process of this binary,
//! before probity's own. It notes in the environment which of its
//! descriptors are BPF maps (any would let it add other processes to the
//! trace session, or take its own out of it), and, for the functions
//! given the inputs below, scribbles on the word through which the child
//! asks probity to add it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use probity::{traced, traced_test};

/// The input for which the constructor keeps telling the child that it
/// was added, while probity may not have added it.
const FORGE_JOINED: &str = "forge-joined";
/// The input for which the constructor asks to join itself, early, and
/// then stats [`EARLY_MARKER`].
const ASK_EARLY: &str = "ask-early";
/// The input for which the constructor starts a thread that waits, then
/// stats [`THREAD_MARKER`] while the function runs.
const THREAD_BEFORE_MAIN: &str = "thread-before-main";
const THREAD_MARKER: &str = "/nonexistent/probity-late-join-thread";
/// The input for which the constructor ends the child before it can ask.
const NEVER_ASK: &str = "never-ask";
const EARLY_MARKER: &str = "/nonexistent/probity-late-join-early";
const FUNCTION_MARKER: &str = "/nonexistent/probity-late-join-function";

/// The values of the join word, as probity's child and parent use them.
const REQUESTED: u32 = 1;
const JOINED: u32 = 2;
/// Where the join word and the input lie in the child's shared memory.
const JOIN_AT: usize = 28;
const INPUT_AT: usize = 4096;

/// Where the constructor leaves what it found: the names of the BPF map
/// descriptors it saw, comma-separated (empty when there were none).
const SEEN_ENV: &str = "PROBITY_TEST_BPF_FDS_BEFORE_MAIN";

/// The descriptors of this process that are BPF maps, as `fd -> target`.
fn bpf_map_fds() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return vec!["(/proc/self/fd unreadable)".into()] };
    dir.filter_map(Result::ok)
        .filter_map(|e| {
            let target = std::fs::read_link(e.path()).ok()?;
            let target = target.to_string_lossy().into_owned();
            target.contains("bpf-map").then(|| format!("{} -> {target}", e.file_name().to_string_lossy()))
        })
        .collect()
}

/// Runs before `main` in re-executed children only (probity's child
/// marker is in the environment), ahead of probity's constructor: the
/// numbered section sorts before the plain `.init_array`.
extern "C" fn scan_before_main() {
    if std::env::var_os("PROBITY_CHILD").is_none() {
        return;
    }
    let seen = bpf_map_fds().join(",");
    // Before `main` this is the only thread: nothing reads the environment
    // concurrently.
    std::env::set_var(SEEN_ENV, seen);
    scribble();
}

/// The join word of this child's shared memory, and its input, found the
/// way any code in the child can: from the environment.
fn shared_memory() -> Option<(&'static AtomicU32, String)> {
    let spec = std::env::var("PROBITY_CHILD").ok()?;
    let fd: i32 = spec.split_once(':')?.1.parse().ok()?;
    // SAFETY: a new shared mapping of the descriptor probity passed; it is
    // never unmapped, so the word lives for the whole process.
    let base = unsafe {
        libc::mmap(std::ptr::null_mut(), 1 << 20, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0)
    };
    if base == libc::MAP_FAILED {
        return None;
    }
    let base = base.cast::<u8>();
    // SAFETY: the header and the input lie in the first MiB of the mapping
    // for the short inputs of these tests (the length is bounded below).
    unsafe {
        let len = (base.add(8).cast::<u64>().read_unaligned() as usize).min(4096);
        let input = std::slice::from_raw_parts(base.add(INPUT_AT), len);
        let input = serde_json::from_slice::<String>(input).unwrap_or_default();
        Some((AtomicU32::from_ptr(base.add(JOIN_AT).cast()), input))
    }
}

fn scribble() {
    let Some((word, input)) = shared_memory() else { return };
    if input == FORGE_JOINED {
        // Overwrites the child's request with an answer and wakes it, as
        // fast as it can, from its own thread, for as long as the test may
        // take.
        std::thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(5) {
                word.store(JOINED, Ordering::Release);
                // SAFETY: FUTEX_WAKE on a valid, aligned word of the mapping.
                unsafe {
                    libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX, 0usize, 0usize, 0u32)
                };
            }
        });
    } else if input == THREAD_BEFORE_MAIN {
        std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            let _ = std::fs::metadata(THREAD_MARKER);
        });
    } else if input == NEVER_ASK {
        // SAFETY: ends the process; nothing runs after.
        unsafe { libc::_exit(0) };
    } else if input == ASK_EARLY {
        word.store(REQUESTED, Ordering::Release);
        let start = Instant::now();
        while word.load(Ordering::Acquire) != JOINED && start.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = std::fs::metadata(EARLY_MARKER);
    }
}

#[used]
#[unsafe(link_section = ".init_array.00100")]
static SCAN_BEFORE_MAIN: extern "C" fn() = scan_before_main;

#[traced_test]
fn a_traced_child_holds_no_bpf_map_before_main() {
    crate::require_tracing();
    let run = traced((), |()| {
        let before = std::env::var(SEEN_ENV).map_err(|_| "the constructor did not run in the child".to_string());
        (before, bpf_map_fds())
    });
    let (before, during) = run.value;
    let before = before.unwrap();
    assert!(before.is_empty(), "a constructor of the traced child saw BPF map descriptors before main: {before}");
    assert!(during.is_empty(), "the traced function holds BPF map descriptors: {during:?}");
    // The child was traced all the same: its scan of its descriptors is
    // in the trace.
    run.trace.syscalls().path("/proc/self/fd").assert_at_least(1);
}

/// The message of a failed `traced` run, or its trace.
fn run_catching(input: &str) -> Result<probity::Trace, String> {
    let input = input.to_string();
    std::panic::catch_unwind(move || {
        traced(input, |input: String| {
            let _ = std::fs::metadata(FUNCTION_MARKER);
            if input == THREAD_BEFORE_MAIN {
                // Long enough for the constructor's thread to act.
                std::thread::sleep(Duration::from_millis(900));
            }
        })
        .trace
    })
    .map_err(|p| p.downcast_ref::<String>().cloned().unwrap_or_else(|| "(no message)".into()))
}

#[traced_test]
fn a_forged_answer_never_runs_the_function_untraced() {
    crate::require_tracing();
    match run_catching(FORGE_JOINED) {
        // probity saw the request before the forgery hid it: the function
        // was traced.
        Ok(trace) => {
            eprintln!("probity added the child before the forgery hid its request");
            trace.syscalls().path(FUNCTION_MARKER).assert_exactly(1);
        }
        // The child went on without being added: the run fails, saying so.
        Err(msg) => assert!(
            msg.contains("ran its function without asking probity to add it to its trace session"),
            "the run failed for another reason: {msg}"
        ),
    }
}

#[traced_test]
fn an_early_request_is_answered_once_and_traces_more() {
    crate::require_tracing();
    let trace = run_catching(ASK_EARLY).unwrap();
    // Added when the constructor asked: what it did next is in the trace,
    // not cut off as start-up, and the function's own request was answered.
    trace.syscalls().path(EARLY_MARKER).assert_exactly(1);
    trace.syscalls().path(FUNCTION_MARKER).assert_exactly(1);
    crate::assert_own_tree(&trace);
}

#[traced_test]
fn a_child_that_never_asks_fails_the_run_without_a_hang() {
    crate::require_tracing();
    let start = Instant::now();
    let msg = run_catching(NEVER_ASK).expect_err("a function that never ran passed");
    assert!(msg.contains("exited with 0 before its function started"), "unclear failure: {msg}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "probity waited {:?} for a child that had gone",
        start.elapsed()
    );
}

#[traced_test]
fn a_thread_started_before_main_is_traced_with_its_process() {
    crate::require_tracing();
    let trace = run_catching(THREAD_BEFORE_MAIN).unwrap();
    trace.syscalls().path(FUNCTION_MARKER).assert_exactly(1);
    // The thread was started before the child asked to join, and acted
    // while its function ran: it must not escape the trace.
    trace.syscalls().path(THREAD_MARKER).assert_exactly(1);
}
