//! The preload ring's clock.
//!
//! When the kernel keeps time with the time-stamp counter (its clock
//! source is `tsc`), the library stamps records with `rdtsc`, which costs
//! a third of a `clock_gettime` call; this module converts those stamps to
//! `CLOCK_MONOTONIC` nanoseconds, the kernel tracer's clock, from pairs of
//! readings (counter, monotonic) the harness takes while the ring is in
//! use. Between two pairs the conversion is linear, as the kernel's own is
//! between its updates. Otherwise records carry `CLOCK_MONOTONIC` already.
//! `PROBITY_PRELOAD_CLOCK=monotonic` forces the latter.

use probity_common::shm::{CLOCK_MONOTONIC_NS, CLOCK_TSC};

/// The clock a new ring should use.
pub(super) fn choose() -> u32 {
    if std::env::var_os("PROBITY_PRELOAD_CLOCK").is_some_and(|v| v == "monotonic") {
        return CLOCK_MONOTONIC_NS;
    }
    if tsc_is_the_kernel_clock() {
        CLOCK_TSC
    } else {
        CLOCK_MONOTONIC_NS
    }
}

/// The counter is usable when the kernel itself keeps time with it: it
/// then runs at a constant rate and agrees across CPUs.
fn tsc_is_the_kernel_clock() -> bool {
    cfg!(target_arch = "x86_64")
        && std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .is_ok_and(|s| s.trim() == "tsc")
}

/// One reading of both clocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Pair {
    pub tsc: u64,
    pub ns: u64,
}

/// Reads both clocks; of three tries, keeps the one where the counter
/// readings around `clock_gettime` were closest, and takes their midpoint.
pub(super) fn pair() -> Pair {
    let mut best: Option<(u64, Pair)> = None;
    for _ in 0..3 {
        let a = tsc();
        let ns = crate::monotonic_ns();
        let b = tsc();
        let width = b.wrapping_sub(a);
        if best.is_none_or(|(w, _)| width < w) {
            best = Some((width, Pair { tsc: a + width / 2, ns }));
        }
    }
    best.map(|(_, p)| p).unwrap_or(Pair { tsc: 0, ns: 0 })
}

fn tsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `rdtsc` has no preconditions on x86_64.
    return unsafe { core::arch::x86_64::_rdtsc() };
    #[cfg(not(target_arch = "x86_64"))]
    return 0;
}

/// Converts a ring's stamps to `CLOCK_MONOTONIC` nanoseconds.
#[derive(Debug)]
pub(super) enum Convert {
    /// Stamps are nanoseconds already.
    Identity,
    /// Counter stamps, with the pairs read while the ring was used
    /// (ordered by both fields).
    Tsc(Vec<Pair>),
}

impl Convert {
    pub(super) fn new(clock: u32, mut pairs: Vec<Pair>) -> Convert {
        if clock != CLOCK_TSC {
            return Convert::Identity;
        }
        pairs.sort_by_key(|p| p.tsc);
        pairs.dedup_by_key(|p| p.tsc);
        Convert::Tsc(pairs)
    }

    /// Nanoseconds in `stamps` clock units of elapsed time, at the average
    /// rate over the pairs.
    pub(super) fn duration_ns(&self, stamps: u64) -> u64 {
        match self {
            Convert::Tsc(pairs) if pairs.len() >= 2 => {
                let (a, b) = (pairs[0], pairs[pairs.len() - 1]);
                let ns = i128::from(stamps) * (i128::from(b.ns) - i128::from(a.ns))
                    / (i128::from(b.tsc) - i128::from(a.tsc)).max(1);
                ns.clamp(0, i128::from(u64::MAX)) as u64
            }
            _ => stamps,
        }
    }

    pub(super) fn ns(&self, stamp: u64) -> u64 {
        let Convert::Tsc(pairs) = self else { return stamp };
        match pairs.len() {
            0 => stamp,
            1 => pairs[0].ns.saturating_add_signed((stamp as i64).wrapping_sub(pairs[0].tsc as i64)),
            n => {
                // The segment around `stamp`, or the nearest one outside.
                let i = pairs.partition_point(|p| p.tsc <= stamp).clamp(1, n - 1);
                let (a, b) = (pairs[i - 1], pairs[i]);
                let dt = i128::from(b.tsc) - i128::from(a.tsc);
                let dn = i128::from(b.ns) - i128::from(a.ns);
                let off = i128::from(stamp) - i128::from(a.tsc);
                let ns = i128::from(a.ns) + off * dn / dt.max(1);
                ns.clamp(0, i128::from(u64::MAX)) as u64
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_between_and_beyond_pairs_convert_linearly() {
        let c = Convert::new(
            CLOCK_TSC,
            vec![Pair { tsc: 3000, ns: 2000 }, Pair { tsc: 1000, ns: 1000 }, Pair { tsc: 5000, ns: 4000 }],
        );
        assert_eq!(c.ns(1000), 1000);
        assert_eq!(c.ns(2000), 1500);
        assert_eq!(c.ns(4000), 3000);
        assert_eq!(c.ns(0), 500);
        assert_eq!(c.ns(6000), 5000);
        assert_eq!(Convert::new(CLOCK_MONOTONIC_NS, vec![]).ns(1234), 1234);
    }

    #[test]
    fn converted_counter_readings_agree_with_the_monotonic_clock() {
        if choose() != CLOCK_TSC {
            eprintln!(
                "skipped: the kernel's clock source is not the time-stamp counter, so probity does not use it here"
            );
            return;
        }
        let first = pair();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let probe = pair();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let last = pair();
        let c = Convert::new(CLOCK_TSC, vec![first, last]);
        let err = c.ns(probe.tsc) as i64 - probe.ns as i64;
        assert!(err.abs() < 2_000, "converted {} ns off", err);
    }
}
