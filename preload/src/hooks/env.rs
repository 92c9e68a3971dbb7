//! Environment and loading: `getenv`, `secure_getenv`, `setenv`,
//! `unsetenv`, `putenv`, `clearenv`, `dlopen`.

use std::ffi::{c_char, c_int, c_void};

use crate::hook;

/// `getenv(3)`: the value, or NULL when unset.
#[hook]
unsafe extern "C" fn getenv(name: *const c_char) -> *mut c_char {
    rec.str(name).ret_str(ret);
}

/// `secure_getenv(3)`.
#[hook]
unsafe extern "C" fn secure_getenv(name: *const c_char) -> *mut c_char {
    rec.str(name).ret_str(ret);
}

/// `setenv(3)`.
#[hook]
unsafe extern "C" fn setenv(name: *const c_char, value: *const c_char, overwrite: c_int) -> c_int {
    rec.str(name).str(value).int(overwrite).ret_int(ret);
}

/// `unsetenv(3)`.
#[hook]
unsafe extern "C" fn unsetenv(name: *const c_char) -> c_int {
    rec.str(name).ret_int(ret);
}

/// `putenv(3)`: the `NAME=value` string, which becomes part of the
/// environment.
#[hook]
unsafe extern "C" fn putenv(string: *mut c_char) -> c_int {
    rec.str(string).ret_int(ret);
}

/// `clearenv(3)`. It also clears the variables that preload probity into
/// the images the process `exec`s, which the harness then marks as not
/// covered.
#[hook]
unsafe extern "C" fn clearenv() -> c_int {
    rec.ret_int(ret);
}

/// `dlopen(3)`.
#[hook]
unsafe extern "C" fn dlopen(filename: *const c_char, flags: c_int) -> *mut c_void {
    rec.str(filename).hex(flags as u32).ret_ptr(ret);
}
