//! Which processes the preload library could not enter, and why.
//!
//! The library announces itself in every image it starts in. An exec the
//! kernel tracer saw with no announcement after it ran without the libc
//! layer: the program is statically linked, setuid (the loader ignores
//! `LD_PRELOAD` then), or its environment lost the variable.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

use foldhash::HashMap;

use crate::coverage::{TracerKind, Uncovered};
use crate::event::{Event, EventKind};

/// Every exec that no attach in `attached` followed, from the events
/// shown to it one by one.
pub(crate) struct Coverage {
    /// Per process, when the library last announced itself there.
    last_attach: HashMap<u32, u64>,
    /// With the exec's time: they are seen in any order, and listed in
    /// start order.
    uncovered: Vec<(u64, Uncovered)>,
    /// Why, by program: a build runs the same static tool thousands of times.
    reasons: HashMap<std::ffi::OsString, &'static str>,
}

impl Coverage {
    pub(crate) fn new(attached: &[super::Attached]) -> Self {
        let mut last_attach: HashMap<u32, u64> = HashMap::default();
        for a in attached {
            let last = last_attach.entry(a.pid).or_default();
            *last = (*last).max(a.end_ns);
        }
        Coverage { last_attach, uncovered: Vec::new(), reasons: HashMap::default() }
    }

    pub(crate) fn see(&mut self, e: &Event) {
        let EventKind::Exec(x) = &e.kind else { return };
        let covered = self.last_attach.get(&e.pid).is_some_and(|&end| end >= e.ts_ns);
        if !covered {
            let u = Uncovered {
                pid: e.pid,
                program: crate::event::shown(&x.filename).into_owned(),
                tracer: TracerKind::Preload,
                reason: self.reasons.entry(x.filename.clone()).or_insert_with(|| reason(&x.filename)).to_string(),
            };
            self.uncovered.push((e.ts_ns, u));
        }
    }

    pub(crate) fn finish(mut self) -> Vec<Uncovered> {
        self.uncovered.sort_by_key(|(ts, _)| *ts);
        self.uncovered.into_iter().map(|(_, u)| u).collect()
    }
}

/// Why the dynamic loader would not have preloaded into `program`.
fn reason(program: &std::ffi::OsStr) -> &'static str {
    if std::fs::metadata(program).is_err() {
        return "LD_PRELOAD not in its environment, or not loaded";
    }
    never_preloaded(program).unwrap_or("LD_PRELOAD not in its environment")
}

/// Why the dynamic loader never preloads into `program`, whatever its
/// environment: it is setuid or setgid, or statically linked. `None` when
/// neither can be told from the file as it is now.
pub(crate) fn never_preloaded(program: &std::ffi::OsStr) -> Option<&'static str> {
    // The name comes from the trace (a libc record is the program's own
    // account): only a regular file is read, opened without blocking (a
    // FIFO put at that path between the two calls), and checked again.
    let meta = std::fs::metadata(program).ok().filter(std::fs::Metadata::is_file)?;
    if meta.permissions().mode() & (libc::S_ISUID | libc::S_ISGID) != 0 {
        return Some("setuid or setgid (the loader ignores LD_PRELOAD)");
    }
    // The ELF header and the program headers after it, not the whole file.
    let mut head = Vec::new();
    let read = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(program).and_then(|f| {
        if f.metadata()?.is_file() {
            std::io::Read::read_to_end(&mut std::io::Read::take(f, 64 << 10), &mut head)
        } else {
            Err(std::io::ErrorKind::InvalidInput.into())
        }
    });
    match read.ok().and_then(|_| has_interpreter(&head)) {
        Some(false) => Some("statically linked (no dynamic loader)"),
        _ => None,
    }
}

/// Whether an ELF file names a program interpreter (`PT_INTERP`): without
/// one there is no dynamic loader to preload anything. `None` when the
/// file is not a 64-bit little-endian ELF (a script, say), or `elf` (its
/// start) does not hold its program headers.
fn has_interpreter(elf: &[u8]) -> Option<bool> {
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" || elf[4] != 2 || elf[5] != 1 {
        return None;
    }
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u64_at = |o: usize| elf.get(o..o + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
    let phoff = u64_at(0x20)? as usize;
    let phentsize = u16_at(0x36)? as usize;
    let phnum = u16_at(0x38)? as usize;
    if phoff.checked_add(phnum.checked_mul(phentsize)?)? > elf.len() {
        return None;
    }
    const PT_INTERP: u32 = 3;
    Some((0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        elf.get(o..o + 4).is_some_and(|t| u32::from_le_bytes([t[0], t[1], t[2], t[3]]) == PT_INTERP)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_are_read_for_coverage() {
        let dir = tempfile::tempdir().unwrap();
        // A FIFO with no writer would block an ordinary open forever.
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        assert_eq!(never_preloaded(fifo.as_os_str()), None);
        assert_eq!(never_preloaded(std::ffi::OsStr::new("/dev/zero")), None);
        assert_eq!(never_preloaded(dir.path().as_os_str()), None);
        // A regular file that is not ELF (a script) says nothing either.
        let script = dir.path().join("s.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        assert_eq!(never_preloaded(script.as_os_str()), None);
        // A dynamically linked program is preloaded.
        assert_eq!(never_preloaded(std::ffi::OsStr::new("/bin/true")), None);
    }

    fn exec(ts_ns: u64, pid: u32) -> Event {
        crate::trace::test_support::exec(ts_ns, pid, "/bin/true")
    }

    #[test]
    fn an_exec_is_covered_by_a_later_attach_in_its_process() {
        let at = |pid, end_ns| super::super::Attached {
            pid,
            tid: pid,
            ppid: 1,
            start_ns: end_ns - 1,
            end_ns,
            wake_addr: 0,
            flags: 0,
        };
        let attached = [at(7, 20), at(7, 50), at(8, 30)];
        let mut coverage = Coverage::new(&attached);
        // Covered: 7's second image, 8's; not: 7 after its last attach, 9.
        for (ts, pid) in [(40, 7), (25, 8), (60, 7), (5, 9)] {
            coverage.see(&exec(ts, pid));
        }
        let missed: Vec<u32> = coverage.finish().iter().map(|u| u.pid).collect();
        assert_eq!(missed, [9, 7]);
    }

    #[test]
    fn dynamic_and_static_programs_are_told_apart() {
        assert_eq!(has_interpreter(&std::fs::read("/bin/sh").unwrap()), Some(true));
        assert_eq!(has_interpreter(b"#!/bin/sh\n"), None);
        let static_bin = probity_fixtures::path(probity_fixtures::STATIC_KNOWN_IO);
        assert_eq!(has_interpreter(&std::fs::read(static_bin).unwrap()), Some(false));
        // Program headers past what was read: not told.
        let mut far = std::fs::read("/bin/sh").unwrap()[..64].to_vec();
        far[0x20..0x28].copy_from_slice(&(1u64 << 20).to_le_bytes());
        assert_eq!(has_interpreter(&far), None);
    }
}
