//! Panic messages held back until a test has failed, as libtest does.
//!
//! libtest captures a test's output and shows it only when the test
//! fails, so an expected panic (`#[should_panic]`) prints nothing in a
//! passing run. probity's own harness cannot capture output on stable
//! Rust; it installs a panic hook instead that keeps the message of a
//! panic on a test's thread in that thread's buffer, and the harness
//! shows the buffer only with the test's failure. Panics on other threads
//! (threads a test starts, say) go to the hook that was there before.

use std::cell::RefCell;
use std::fmt::Write;
use std::panic::PanicHookInfo;
use std::sync::Once;

thread_local! {
    /// The name of the test running on this thread, if one is, and its
    /// panic messages.
    static BUFFER: RefCell<Option<(String, String)>> = const { RefCell::new(None) };
}

/// Installs the hook, once per process.
fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let kept = BUFFER
                .try_with(|b| match b.try_borrow_mut().as_deref_mut() {
                    Ok(Some((test, buffer))) => {
                        buffer.push_str(&render(test, info));
                        true
                    }
                    _ => false,
                })
                .unwrap_or(false);
            if !kept {
                previous(info);
            }
        }));
    });
}

/// What the default hook would print for `info`, on a thread named after
/// the test as libtest names it.
fn render(test: &str, info: &PanicHookInfo<'_>) -> String {
    let mut text = String::new();
    let _ = write!(text, "thread '{test}' panicked at ");
    if let Some(at) = info.location() {
        let _ = write!(text, "{at}");
    }
    let _ = writeln!(text, ":\n{}", super::child::panic_message(info.payload()));
    let backtrace = std::backtrace::Backtrace::capture();
    if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
        let _ = writeln!(text, "stack backtrace:\n{backtrace}");
    } else {
        text.push_str("note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n");
    }
    text
}

/// Runs `f`, the test `test`, with the panic messages of this thread kept
/// back; returns what it returned and the messages.
pub(super) fn capturing<R>(test: &str, f: impl FnOnce() -> R) -> (R, String) {
    install();
    struct Stop;
    impl Drop for Stop {
        fn drop(&mut self) {
            BUFFER.with(|b| *b.borrow_mut() = None);
        }
    }
    BUFFER.with(|b| *b.borrow_mut() = Some((test.to_string(), String::new())));
    let _stop = Stop;
    let value = f();
    let text = BUFFER.with(|b| b.borrow_mut().take()).map(|(_, text)| text).unwrap_or_default();
    (value, text)
}

#[cfg(test)]
mod tests {
    use super::capturing;

    #[test]
    fn a_panic_on_the_test_thread_is_kept_back() {
        let (outcome, text) = capturing("a::t", || std::panic::catch_unwind(|| panic!("kept back {}", 42)));
        assert!(outcome.is_err());
        assert!(text.starts_with("thread 'a::t' panicked at harness/src/testing/capture.rs:"), "{text}");
        assert!(text.contains(":\nkept back 42\n"), "{text}");
        // Nothing is kept once the test is over.
        let (_, after) = capturing("a::t", || ());
        assert_eq!(after, "");
    }
}
