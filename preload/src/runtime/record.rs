//! Recording one call: [`Call`] brackets it, [`Rec`] is what a hook body
//! writes the arguments and result with.
//!
//! A record is built on the stack (only the parts a call uses), then
//! copied into the ring in one claim: the ring is held for the copy only.

use std::ffi::{c_char, c_int};
use std::mem::MaybeUninit;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;

use probity_common::shm::{
    ArgKind, ArgSlot, LibcCallFixed, RecordBuf, Ring, ARG_NULL, ARG_TRUNCATED, CALL_BEFORE, CALL_INJECTED, CALL_RESULT,
    MAX_ARGS, NAME_LEN, STRINGS_LEN,
};
use probity_common::{EventHeader, EventKind};

use super::ring::ring;
use super::thread::{state, ThreadState};
use super::{errno_ptr, ids, stamp};

/// Most strings kept for one argument list (argv, addresses).
const MAX_LIST: usize = 32;

/// One hooked call being recorded.
pub struct Call {
    ring: Ring,
    start: u64,
    /// The calling thread's state (which makes `Call` neither `Send` nor `Sync`).
    thread: *const ThreadState,
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
        let t = state();
        // A vfork child borrows its parent's thread state: it records
        // under its own pid once it has learned it (see `vfork`), and
        // nothing is recorded before that.
        if t.in_vfork.get() && t.vfork_child.get() == 0 {
            return None;
        }
        if t.recording.get() {
            ring.header().skipped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(Call { ring, start: stamp(), thread: t })
    }

    /// Records the call after it returned; `body` fills in arguments and result.
    #[inline]
    pub fn after(self, name: &str, body: impl FnOnce(&mut Rec)) {
        let end = stamp();
        self.write(name, 0, end, body);
    }

    /// Records a call a fault-injection rule answered: it did not run.
    #[inline]
    pub fn after_injected(self, name: &str, body: impl FnOnce(&mut Rec)) {
        let end = stamp();
        self.write(name, CALL_INJECTED, end, body);
    }

    /// Records the call before it runs (it may never return).
    #[inline]
    pub fn before(self, name: &str, body: impl FnOnce(&mut Rec)) -> Pending {
        let start = self.start;
        self.write(name, CALL_BEFORE, start, body);
        Pending { call: Some(self) }
    }

    #[inline]
    fn write(&self, name: &str, flags: u16, end: u64, body: impl FnOnce(&mut Rec)) {
        // SAFETY: taken on this thread by `begin`, for this call.
        let t = unsafe { &*self.thread };
        let errno = errno_ptr();
        // SAFETY: the thread's errno, read and restored around our work.
        let saved = unsafe { *errno };
        t.recording.set(true);
        let (pid, tid) = match t.vfork_child.get() {
            0 => ids::current(t),
            child => (child, child),
        };
        let name = &name.as_bytes()[..name.len().min(NAME_LEN)];
        let mut parts = Parts {
            buf: RecordBuf::new(),
            fixed: LibcCallFixed {
                header: EventHeader::new(EventKind::LibcCall, 0, self.start, pid, tid),
                end,
                flags,
                nargs: 0,
                name_len: name.len() as u8,
                errno: saved,
                ret: ArgSlot::default(),
            },
            args: [MaybeUninit::uninit(); MAX_ARGS],
            strings_at: size_of::<LibcCallFixed>() + name.len(),
            used: 0,
        };
        // SAFETY: the name fits after the fixed part in the payload area.
        unsafe {
            std::ptr::copy_nonoverlapping(
                name.as_ptr(),
                parts.buf.payload().add(size_of::<LibcCallFixed>()),
                name.len(),
            );
        }
        // A panic in a body records nothing and is counted as skipped.
        let built = catch_unwind(AssertUnwindSafe(|| body(&mut Rec { p: &mut parts }))).is_ok();
        if built {
            let len = parts.finish();
            let mut hint = t.tail_hint.get();
            self.ring.push_record(&parts.buf, len, &mut hint);
            t.tail_hint.set(hint);
        } else {
            self.ring.header().skipped.fetch_add(1, Ordering::Relaxed);
        }
        t.recording.set(false);
        // SAFETY: as above.
        unsafe { *errno = saved };
    }
}

impl Pending {
    /// Records the result of a call that returned after all.
    #[inline]
    pub fn result(mut self, name: &str, ret: ArgSlot) {
        if let Some(call) = self.call.take() {
            let end = stamp();
            call.write(name, CALL_RESULT, end, |rec| rec.p.fixed.ret = ret);
        }
    }
}

/// A record being built in place: the name and strings go into `buf` as
/// they come; the fixed part and the argument slots follow them at the end.
struct Parts {
    buf: RecordBuf,
    fixed: LibcCallFixed,
    args: [MaybeUninit<ArgSlot>; MAX_ARGS],
    /// Where the string area starts in the payload.
    strings_at: usize,
    /// String bytes written.
    used: usize,
}

impl Parts {
    /// Writes the fixed part and the slots; returns the payload's length.
    #[inline]
    fn finish(&mut self) -> usize {
        let nargs = usize::from(self.fixed.nargs);
        let args_at = self.strings_at + self.used;
        let p = self.buf.payload();
        // SAFETY: the fixed part, the name, at most `STRINGS_LEN` string
        // bytes and `MAX_ARGS` slots fit in the payload area; the first
        // `nargs` slots were written by `push_arg`.
        unsafe {
            p.cast::<LibcCallFixed>().write_unaligned(self.fixed);
            for i in 0..nargs {
                p.add(args_at).cast::<ArgSlot>().add(i).write_unaligned(self.args[i].assume_init());
            }
        }
        args_at + nargs * size_of::<ArgSlot>()
    }
}

/// Writes a call's arguments and result. Each method records the next
/// argument, in order.
pub struct Rec<'a> {
    p: &'a mut Parts,
}

impl<'a> Rec<'a> {
    fn push_arg(&mut self, slot: ArgSlot) -> &mut Self {
        let f = &mut self.p.fixed;
        let i = usize::from(f.nargs);
        if i < MAX_ARGS {
            self.p.args[i] = MaybeUninit::new(slot);
            f.nargs += 1;
        }
        self
    }

    fn value(kind: ArgKind, value: u64) -> ArgSlot {
        ArgSlot { kind: kind as u8, value, ..ArgSlot::default() }
    }

    /// Room left in the string area.
    fn room(&self) -> usize {
        STRINGS_LEN - self.p.used
    }

    /// Appends bytes to the string area (as many as fit); returns how many.
    fn append(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.room());
        // SAFETY: `n` bytes fit after `used` in the string area.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.p.buf.payload().add(self.p.strings_at + self.p.used), n);
        }
        self.p.used += n;
        n
    }

    /// Copies bytes into the string area; returns the slot describing them.
    fn bytes(&mut self, kind: ArgKind, value: u64, bytes: &[u8], truncated: bool) -> ArgSlot {
        let off = self.p.used;
        let n = self.append(bytes);
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
        let room = self.room();
        let off = self.p.used;
        let dst = self.p.buf.payload().wrapping_add(self.p.strings_at + off);
        // Copied as it is measured, in one pass: most strings here are
        // short, and two library calls (strnlen, memcpy) cost more.
        let mut n = 0;
        // SAFETY: a C string from the caller, read up to its NUL or `room`
        // bytes; `room` bytes fit at `dst`.
        let truncated = unsafe {
            loop {
                if n == room {
                    break *s.add(n) != 0;
                }
                let b = *s.add(n).cast::<u8>();
                if b == 0 {
                    break false;
                }
                *dst.add(n) = b;
                n += 1;
            }
        };
        self.p.used += n;
        ArgSlot {
            kind: kind as u8,
            flags: if truncated { ARG_TRUNCATED } else { 0 },
            off: off as u16,
            len: n as u16,
            _pad: 0,
            value: s as u64,
        }
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
        let start = self.p.used;
        let mut truncated = false;
        for i in 0..=MAX_LIST {
            // SAFETY: a NULL-terminated array from the caller.
            let s = unsafe { *list.add(i) };
            if s.is_null() {
                break;
            }
            if i == MAX_LIST || self.room() == 0 {
                truncated = true;
                break;
            }
            let room = self.room() - 1;
            // SAFETY: as `cstr_slot`.
            let len = unsafe { strnlen(s, room + 1) };
            let n = len.min(room);
            // SAFETY: `n` bytes are readable.
            let bytes = unsafe { std::slice::from_raw_parts(s.cast::<u8>(), n) };
            self.append(bytes);
            self.append(&[0]);
            truncated |= len > room;
        }
        self.push_list(start, truncated, list as u64)
    }
    /// A list of strings made by the hook (resolved addresses, say),
    /// written with `fill`, which gets a writer for each string.
    pub fn list(&mut self, fill: impl FnOnce(&mut ListWriter<'_, 'a>)) -> &mut Self {
        let start = self.p.used;
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
            len: (self.p.used - start) as u16,
            _pad: 0,
            value,
        };
        self.push_arg(slot)
    }

    /// The result as a signed integer (with errno when it is -1).
    pub fn ret_int(&mut self, v: impl Into<i64>) -> &mut Self {
        self.p.fixed.ret = Self::value(ArgKind::Int, v.into() as u64);
        self
    }
    /// The result as a file descriptor.
    pub fn ret_fd(&mut self, fd: c_int) -> &mut Self {
        self.p.fixed.ret = Self::value(ArgKind::Fd, fd as i64 as u64);
        self
    }
    /// The result as a pointer (NULL is failure).
    pub fn ret_ptr<T>(&mut self, p: *const T) -> &mut Self {
        self.p.fixed.ret = Self::value(ArgKind::Ptr, p as u64);
        self
    }
    /// The result as a C string (or NULL).
    ///
    /// # Safety
    /// As [`Rec::str`].
    pub unsafe fn ret_str(&mut self, s: *const c_char) -> &mut Self {
        // SAFETY: the caller's promise.
        let slot = unsafe { self.cstr_slot(ArgKind::Str, s) };
        self.p.fixed.ret = slot;
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
        if self.count >= MAX_LIST || s.len() + 1 > self.rec.room() {
            self.truncated = true;
            return;
        }
        self.rec.append(s);
        self.rec.append(&[0]);
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

/// `strnlen(3)`: glibc's is vectorised and async-signal-safe (it only
/// reads memory).
///
/// # Safety
/// `s` must be readable up to its NUL or `max` bytes.
unsafe fn strnlen(s: *const c_char, max: usize) -> usize {
    // SAFETY: the caller's promise.
    unsafe { libc::strnlen(s, max) }
}
