//! probity's procedural macros.
//!
//! [`macro@traced_test`] makes a test whose runs are traced; it is
//! re-exported as `probity::traced_test`.
//!
//! [`macro@hook`] turns a Rust function with a libc function's C signature
//! into an `LD_PRELOAD` hook that records each call. It is re-exported as
//! `probity_preload::hook`; see there for the recording API.
//!
//! # Known limitations
//! - Variadic C functions (`open`, `fcntl`) are declared with their fixed
//!   arguments only (`open(path, flags, mode)`), which is what the x86_64
//!   and aarch64 calling conventions pass anyway.

mod hook;
mod traced_test;

use proc_macro::TokenStream;

/// Makes an `LD_PRELOAD` hook out of a function with a libc function's C
/// signature.
///
/// ```ignore
/// use std::ffi::c_char;
/// use probity_preload::hook;
///
/// /// `getenv(3)`.
/// #[hook]
/// unsafe extern "C" fn getenv(name: *const c_char) -> *mut c_char {
///     rec.str(name).ret_str(ret);
/// }
/// ```
///
/// The expansion exports `getenv` with exactly that signature. It resolves
/// the next definition (libc's) with `dlsym(RTLD_NEXT)` once, calls it, and
/// then runs the body to record the call: in the body, `rec` is the
/// recorder (`probity_preload::Rec`) and `ret` the value the real function
/// returned. When recording is off, or the call comes from inside
/// probity's own recording code, it calls straight through. `errno` is
/// saved and restored around recording, and a panic in the body is caught:
/// the call is then counted as skipped, never unwound into C.
///
/// `#[hook(before)]` records before calling, for functions that may not
/// return (`execve`, `exit`); `ret` is not available in the body then, and
/// if the function does return its result is recorded after it.
#[proc_macro_attribute]
pub fn hook(attr: TokenStream, item: TokenStream) -> TokenStream {
    match hook::Hook::parse(attr.into(), item.into()) {
        Ok(h) => h.expand().into(),
        Err(e) => e.into_compile_error().into(),
    }
}

/// Makes a test whose traced runs (`probity::Cmd`, `probity::traced`)
/// share its settings. Use it instead of `#[test]`; re-exported as
/// `probity::traced_test`.
///
/// ```ignore
/// use probity::{traced_test, Cmd};
///
/// #[traced_test(timeout = "10s")]
/// fn lists_the_root() {
///     let run = Cmd::new("ls").arg("/").run();
///     run.assert_success();
///     run.trace.assert_no_network();
/// }
/// ```
///
/// Settings: `timeout = "30s"` (the time limit for the test's traced
/// runs, on its own thread and on threads it spawns while it is the only
/// traced test running in the process; default 60 s or
/// `PROBITY_TEST_TIMEOUT` seconds), and `preload_only` (trace libc calls
/// alone, which needs no privileges). Other attributes (`#[ignore]`,
/// docs) are kept; `#[should_panic]` is judged by probity, so that a test
/// that cannot trace here fails rather than pass on probity's own panic.
/// The test may return `Result<(), E>`. The test is also registered for
/// `probity::testing::main`, the harness for `harness = false` targets.
#[proc_macro_attribute]
pub fn traced_test(attr: TokenStream, item: TokenStream) -> TokenStream {
    match traced_test::TracedTest::parse(attr.into(), item.into()) {
        Ok(t) => t.expand().into(),
        Err(e) => e.into_compile_error().into(),
    }
}
