//! Recording one call: [`Call`] brackets it, [`Rec`] is what a hook body
//! writes the arguments and result with.

use std::cell::Cell;
use std::ffi::{c_char, c_int};
use std::panic::{catch_unwind, AssertUnwindSafe};

use probity_common::shm::{
    ArgKind, ArgSlot, LibcCall, LibcCallFixed, Ring, ARG_NULL, ARG_TRUNCATED, CALL_BEFORE, CALL_RESULT,
    MAX_ARGS, NAME_LEN, SLOT_SIZE, STRINGS_LEN,
};
use probity_common::{EventHeader, EventKind};

use super::ring::ring;
use super::{errno_ptr, ids, now_ns};

thread_local! {
    /// Set while this thread runs probity's own recording code: a hooked
    /// call made then (from a signal handler, say) is not recorded.
    static RECORDING: Cell<bool> = const { Cell::new(false) };
}

/// Most strings kept for one argument list (argv, addresses).
const MAX_LIST: usize = 32;

/// One hooked call being recorded.
pub struct Call {
    ring: Ring,
    start_ns: u64,
}

/// A call recorded before it ran; its result follows if it returns.
pub struct Pending {
    call: Option<Call>,
}

impl Call {
    /// Starts recording a call, or `None` to call straight through: the
    /// process is not traced, or this thread is inside probity's recording.
    #[inline]
    pub fn begin() -> Option<Call> {
        let ring = ring()?;
        // A vfork child borrows its parent's thread state: not recorded.
        if super::vfork::in_child() {
            return None;
        }
        if RECORDING.with(Cell::get) {
            ring.header().skipped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return None;
        }
        Some(Call { ring, start_ns: now_ns() })
    }

    /// Records the call after it returned; `body` fills in arguments and result.
    #[inline]
    pub fn after(self, name: &str, body: impl FnOnce(&mut Rec)) {
        let end = now_ns();
        self.write(name, 0, end, body);
    }

    /// Records the call before it runs (it may never return).
    #[inline]
    pub fn before(self, name: &str, body: impl FnOnce(&mut Rec)) -> Pending {
        let start = self.start_ns;
        self.write(name, CALL_BEFORE, start, body);
        Pending { call: Some(self) }
    }

    fn write(&self, name: &str, flags: u32, end_ns: u64, body: impl FnOnce(&mut Rec)) {
        let errno = errno_ptr();
        // SAFETY: the thread's errno, read and restored around our work.
        let saved = unsafe { *errno };
        RECORDING.with(|r| r.set(true));
        let (pid, tid) = ids::current();
        let mut panicked = false;
        self.ring.push(|data| {
            // A panic must not leave the claimed slot unpublished: catch it
            // here and publish an empty record, which the harness skips.
            let used = catch_unwind(AssertUnwindSafe(|| {
                let mut rec = Rec::new(data, name);
                let fixed = rec.fixed();
                fixed.header = EventHeader::new(EventKind::LibcCall, 0, self.start_ns, pid, tid);
                fixed.flags = flags;
                fixed.errno = saved;
                fixed.duration_ns = end_ns.saturating_sub(self.start_ns);
                body(&mut rec);
                size_of::<LibcCallFixed>() + rec.used
            }));
            used.unwrap_or_else(|_| {
                panicked = true;
                0
            })
        });
        if panicked {
            self.ring.header().skipped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        RECORDING.with(|r| r.set(false));
        // SAFETY: as above.
        unsafe { *errno = saved };
    }
}

impl Pending {
    /// Records the result of a call that returned after all.
    #[inline]
    pub fn result(mut self, name: &str, ret: ArgSlot) {
        if let Some(call) = self.call.take() {
            let end = now_ns();
            call.write(name, CALL_RESULT, end, |rec| rec.fixed().ret = ret);
        }
    }
}

/// Writes a call's arguments and result into its ring slot. Each method
/// records the next argument, in order.
pub struct Rec<'a> {
    data: &'a mut [u8; SLOT_SIZE - 16],
    used: usize,
}

impl<'a> Rec<'a> {
    fn new(data: &'a mut [u8; SLOT_SIZE - 16], name: &str) -> Self {
        data[..size_of::<LibcCallFixed>()].fill(0);
        let mut rec = Rec { data, used: 0 };
        let n = name.len().min(NAME_LEN - 1);
        rec.fixed().name[..n].copy_from_slice(&name.as_bytes()[..n]);
        rec
    }

    fn fixed(&mut self) -> &mut LibcCallFixed {
        const { assert!(align_of::<LibcCallFixed>() <= 8) };
        // SAFETY: the slot data is 8-aligned (`Slot` is `align(8)` with a
        // 16-byte prefix) and large enough (`LibcCall` fits exactly).
        unsafe { &mut *self.data.as_mut_ptr().cast::<LibcCallFixed>() }
    }

    fn strings(&mut self) -> &mut [u8] {
        const { assert!(size_of::<LibcCall>() == SLOT_SIZE - 16) };
        &mut self.data[size_of::<LibcCallFixed>()..]
    }

    fn push_arg(&mut self, slot: ArgSlot) -> &mut Self {
        let f = self.fixed();
        let i = f.nargs as usize;
        if i < MAX_ARGS {
            f.args[i] = slot;
            f.nargs += 1;
        }
        self
    }

    fn value(kind: ArgKind, value: u64) -> ArgSlot {
        ArgSlot { kind: kind as u8, value, ..ArgSlot::default() }
    }

    /// Copies bytes into the string area; returns the slot describing them.
    fn bytes(&mut self, kind: ArgKind, value: u64, bytes: &[u8], truncated: bool) -> ArgSlot {
        let off = self.used;
        let room = STRINGS_LEN.saturating_sub(off);
        let n = bytes.len().min(room);
        self.strings()[off..off + n].copy_from_slice(&bytes[..n]);
        self.used += n;
        ArgSlot {
            kind: kind as u8,
            flags: if truncated || n < bytes.len() { ARG_TRUNCATED } else { 0 },
            off: off as u16,
            len: n as u16,
            _pad: 0,
            value,
        }
    }

    /// A C string argument, or NULL.
    ///
    /// # Safety
    /// As [`Rec::str`].
    unsafe fn cstr_slot(&mut self, kind: ArgKind, s: *const c_char) -> ArgSlot {
        if s.is_null() {
            return ArgSlot { kind: kind as u8, flags: ARG_NULL, ..ArgSlot::default() };
        }
        let room = STRINGS_LEN.saturating_sub(self.used);
        // SAFETY: a C string from the caller; read at most `room + 1` bytes.
        let len = unsafe { strnlen(s, room + 1) };
        // SAFETY: `len` bytes are readable, as strnlen just checked.
        let bytes = unsafe { std::slice::from_raw_parts(s.cast::<u8>(), len) };
        self.bytes(kind, s as u64, bytes, len > room)
    }

    /// A signed integer.
    pub fn int(&mut self, v: impl Into<i64>) -> &mut Self {
        self.push_arg(Self::value(ArgKind::Int, v.into() as u64))
    }
    /// An unsigned integer.
    pub fn uint(&mut self, v: impl Into<u64>) -> &mut Self {
        self.push_arg(Self::value(ArgKind::Uint, v.into()))
    }
    /// A value best shown in hex.
    pub fn hex(&mut self, v: impl Into<u64>) -> &mut Self {
        self.push_arg(Self::value(ArgKind::Hex, v.into()))
    }
    /// A file descriptor (`AT_FDCWD` shows as such).
    pub fn fd(&mut self, fd: c_int) -> &mut Self {
        self.push_arg(Self::value(ArgKind::Fd, fd as i64 as u64))
    }
    /// A pointer whose target is not recorded.
    pub fn ptr<T>(&mut self, p: *const T) -> &mut Self {
        self.push_arg(Self::value(ArgKind::Ptr, p as u64))
    }
    /// A C string (a path, a name, a mode).
    ///
    /// # Safety
    /// `s` must be NULL or a readable NUL-terminated string.
    pub unsafe fn str(&mut self, s: *const c_char) -> &mut Self {
        // SAFETY: the caller's promise.
        let slot = unsafe { self.cstr_slot(ArgKind::Str, s) };
        self.push_arg(slot)
    }
    /// `open(2)` flags.
    pub fn open_flags(&mut self, flags: c_int) -> &mut Self {
        self.push_arg(Self::value(ArgKind::OpenFlags, flags as u32 as u64))
    }
    /// `AT_*` flags.
    pub fn at_flags(&mut self, flags: c_int) -> &mut Self {
        self.push_arg(Self::value(ArgKind::AtFlags, flags as u32 as u64))
    }
    /// A file mode.
    pub fn mode(&mut self, mode: impl Into<u64>) -> &mut Self {
        self.push_arg(Self::value(ArgKind::Mode, mode.into()))
    }
    /// A socket address of `len` bytes.
    ///
    /// # Safety
    /// `addr` must be NULL or readable for `len` bytes.
    pub unsafe fn sockaddr(&mut self, addr: *const libc::sockaddr, len: libc::socklen_t) -> &mut Self {
        if addr.is_null() {
            return self.push_arg(ArgSlot { kind: ArgKind::Sockaddr as u8, flags: ARG_NULL, ..ArgSlot::default() });
        }
        let n = (len as usize).min(size_of::<libc::sockaddr_storage>());
        // SAFETY: the caller passed `len` readable bytes at `addr`.
        let bytes = unsafe { std::slice::from_raw_parts(addr.cast::<u8>(), n) };
        let slot = self.bytes(ArgKind::Sockaddr, addr as u64, bytes, false);
        self.push_arg(slot)
    }
    /// A NULL-terminated array of C strings (argv, envp).
    ///
    /// # Safety
    /// `list` must be NULL or a readable NULL-terminated array of readable
    /// NUL-terminated strings.
    pub unsafe fn str_list(&mut self, list: *const *const c_char) -> &mut Self {
        if list.is_null() {
            return self.push_arg(ArgSlot { kind: ArgKind::StrList as u8, flags: ARG_NULL, ..ArgSlot::default() });
        }
        let start = self.used;
        let mut truncated = false;
        for i in 0..=MAX_LIST {
            // SAFETY: a NULL-terminated array from the caller.
            let s = unsafe { *list.add(i) };
            if s.is_null() {
                break;
            }
            if i == MAX_LIST || self.used >= STRINGS_LEN {
                truncated = true;
                break;
            }
            let room = STRINGS_LEN - self.used - 1;
            // SAFETY: as `cstr_slot`.
            let len = unsafe { strnlen(s, room + 1) };
            let n = len.min(room);
            // SAFETY: `n` bytes are readable.
            let bytes = unsafe { std::slice::from_raw_parts(s.cast::<u8>(), n) };
            let off = self.used;
            self.strings()[off..off + n].copy_from_slice(bytes);
            self.strings()[off + n] = 0;
            self.used += n + 1;
            truncated |= len > room;
        }
        self.push_list(start, truncated, list as u64)
    }
    /// A list of strings made by the hook (resolved addresses, say),
    /// written with `fill`, which gets a writer for each string.
    pub fn list(&mut self, fill: impl FnOnce(&mut ListWriter<'_, 'a>)) -> &mut Self {
        let start = self.used;
        let mut w = ListWriter { rec: self, truncated: false, count: 0 };
        fill(&mut w);
        let truncated = w.truncated;
        self.push_list(start, truncated, 0)
    }

    /// Records the strings written since `start` as one list argument.
    fn push_list(&mut self, start: usize, truncated: bool, value: u64) -> &mut Self {
        let slot = ArgSlot {
            kind: ArgKind::StrList as u8,
            flags: if truncated { ARG_TRUNCATED } else { 0 },
            off: start as u16,
            len: (self.used - start) as u16,
            _pad: 0,
            value,
        };
        self.push_arg(slot)
    }

    /// The result as a signed integer (with errno when it is -1).
    pub fn ret_int(&mut self, v: impl Into<i64>) -> &mut Self {
        self.fixed().ret = Self::value(ArgKind::Int, v.into() as u64);
        self
    }
    /// The result as a file descriptor.
    pub fn ret_fd(&mut self, fd: c_int) -> &mut Self {
        self.fixed().ret = Self::value(ArgKind::Fd, fd as i64 as u64);
        self
    }
    /// The result as a pointer (NULL is failure).
    pub fn ret_ptr<T>(&mut self, p: *const T) -> &mut Self {
        self.fixed().ret = Self::value(ArgKind::Ptr, p as u64);
        self
    }
    /// The result as a C string (or NULL).
    ///
    /// # Safety
    /// As [`Rec::str`].
    pub unsafe fn ret_str(&mut self, s: *const c_char) -> &mut Self {
        // SAFETY: the caller's promise.
        let slot = unsafe { self.cstr_slot(ArgKind::Str, s) };
        self.fixed().ret = slot;
        self
    }
}

/// Writes the strings of one list argument.
pub struct ListWriter<'r, 'a> {
    rec: &'r mut Rec<'a>,
    truncated: bool,
    count: usize,
}

impl ListWriter<'_, '_> {
    /// Adds one string.
    pub fn push(&mut self, s: &[u8]) {
        if self.count >= MAX_LIST || self.rec.used + s.len() + 1 > STRINGS_LEN {
            self.truncated = true;
            return;
        }
        let off = self.rec.used;
        self.rec.strings()[off..off + s.len()].copy_from_slice(s);
        self.rec.strings()[off + s.len()] = 0;
        self.rec.used += s.len() + 1;
        self.count += 1;
    }
}

/// How a `#[hook(before)]` function's result is recorded when it returns.
pub trait AsRet {
    fn as_ret(&self) -> ArgSlot;
}

impl AsRet for c_int {
    fn as_ret(&self) -> ArgSlot {
        Rec::value(ArgKind::Int, i64::from(*self) as u64)
    }
}

impl<T> AsRet for *mut T {
    fn as_ret(&self) -> ArgSlot {
        Rec::value(ArgKind::Ptr, *self as u64)
    }
}

/// `strnlen` without calling libc (which may be hooked or not
/// async-signal-safe in odd builds).
///
/// # Safety
/// `s` must be readable up to its NUL or `max` bytes.
unsafe fn strnlen(s: *const c_char, max: usize) -> usize {
    let mut n = 0;
    // SAFETY: the caller's promise.
    while n < max && unsafe { *s.add(n) } != 0 {
        n += 1;
    }
    n
}
