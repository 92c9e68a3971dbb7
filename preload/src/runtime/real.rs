//! The real function behind a hook, found once with `dlsym(RTLD_NEXT)`.

use std::ffi::{c_void, CStr};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicPtr, Ordering};

/// The next definition of a symbol (libc's), resolved on first use.
/// Thread-safe: racing threads resolve the same address.
pub struct Real<F> {
    name: &'static CStr,
    ptr: AtomicPtr<c_void>,
    _f: PhantomData<F>,
}

// SAFETY: only an atomic pointer and a static name are shared.
unsafe impl<F> Sync for Real<F> {}

impl<F: Copy> Real<F> {
    pub const fn new(name: &'static CStr) -> Self {
        Real { name, ptr: AtomicPtr::new(std::ptr::null_mut()), _f: PhantomData }
    }

    /// The function pointer.
    ///
    /// # Safety
    /// `F` must be the function's true type: an `unsafe extern "C" fn`.
    pub unsafe fn get(&self) -> F {
        const { assert!(size_of::<F>() == size_of::<*mut c_void>()) };
        let mut p = self.ptr.load(Ordering::Acquire);
        if p.is_null() {
            // SAFETY: a NUL-terminated name; RTLD_NEXT is valid in a shared object.
            p = unsafe { libc::dlsym(libc::RTLD_NEXT, self.name.as_ptr()) };
            if p.is_null() {
                missing(self.name);
            }
            self.ptr.store(p, Ordering::Release);
        }
        // SAFETY: the caller vouches that `F` is this symbol's fn pointer type.
        unsafe { std::mem::transmute_copy::<*mut c_void, F>(&p) }
    }
}

/// A hooked symbol with no definition after ours cannot be called at all.
#[cold]
fn missing(name: &CStr) -> ! {
    let msg = b"probity preload: no definition of a hooked symbol after the preload library: ";
    // SAFETY: plain writes of valid buffers to stderr, then abort.
    unsafe {
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::write(2, name.as_ptr().cast(), name.to_bytes().len());
        libc::write(2, b"\n".as_ptr().cast(), 1);
        libc::abort()
    }
}
