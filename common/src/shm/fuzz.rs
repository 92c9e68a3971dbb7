//! The reader fed arbitrary bytes: a ring in a heap buffer (no second
//! mapping, which the reader's soundness does not depend on), header and
//! records written by a hostile program before and between its reads.
//! Runs under Miri too (`cargo +nightly miri test -p probity-common fuzz`).

extern crate std;
use core::sync::atomic::Ordering;
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::vec::Vec;

use proptest::prelude::*;

use super::*;

const DATA: usize = 4096;

/// A ring over heap memory, freed on drop.
struct HeapRing {
    base: *mut u8,
    layout: Layout,
}

impl HeapRing {
    fn new() -> HeapRing {
        let layout = Layout::from_size_align(mapping_bytes(DATA), UNIT).unwrap();
        // SAFETY: a non-zero size.
        let base = unsafe { alloc_zeroed(layout) };
        assert!(!base.is_null());
        let header = RingHeader::new(DATA as u64, CLOCK_MONOTONIC_NS, false);
        // SAFETY: the buffer holds a header, 64-aligned.
        unsafe { base.cast::<RingHeader>().write(header) };
        HeapRing { base, layout }
    }

    fn ring(&self) -> Ring {
        // SAFETY: the buffer is as long as a mapping and outlives the test.
        unsafe { Ring::from_raw(self.base, self.layout.size()) }.unwrap()
    }

    /// What the program writes: `bytes` at `at`, wrapped to the buffer.
    fn scribble(&self, at: usize, bytes: &[u8]) {
        for (i, &b) in bytes.iter().enumerate() {
            // SAFETY: an offset inside the buffer.
            unsafe { self.base.add((at + i) % self.layout.size()).write_volatile(b) };
        }
    }

    /// A published-looking frame at data unit `unit`, as a forger would.
    fn frame(&self, unit: usize, len: u32, units: u32) {
        let pos = (unit * UNIT) as u64;
        let mut f = [0u8; 16];
        f[..8].copy_from_slice(&(pos + 1).to_ne_bytes());
        f[8..12].copy_from_slice(&len.to_ne_bytes());
        f[12..].copy_from_slice(&units.to_ne_bytes());
        self.scribble(HEADER_BYTES + unit * UNIT, &f);
    }
}

impl Drop for HeapRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.base, self.layout) };
    }
}

/// Passes of the harness's drain: each takes `head` once and reads up
/// to it; one write of the program's lands between every two steps.
/// Returns the payload bytes read.
fn drain(r: &mut Reader, ring: &HeapRing, mut writes: impl Iterator<Item = (usize, Vec<u8>)>) -> usize {
    let mut read = 0;
    for _ in 0..3 {
        let head = r.head();
        assert!(head >= r.tail() && head - r.tail() <= DATA as u64, "head {head} tail {}", r.tail());
        let mut steps = 0;
        while r.tail() < head {
            steps += 1;
            assert!(steps <= DATA / UNIT + 1, "a pass did not end");
            let before = r.tail();
            let popped = r.pop_span(head, |span| {
                assert!(span.len() <= DATA / 2 + MAX_RECORD);
                let mut copy = std::vec![0; span.len()];
                assert_eq!(span.copy_to(&mut copy), span.len());
                for rec in Records::new(&copy) {
                    assert!(rec.len() <= MAX_RECORD - size_of::<Frame>());
                    read += rec.len();
                }
            });
            match popped {
                Ok(_) => assert!(r.tail() > before),
                Err(_) => {
                    if r.skip_pending() == 0 {
                        break;
                    }
                }
            }
            r.beat();
            if let Some((at, bytes)) = writes.next() {
                ring.scribble(at, &bytes);
            }
        }
    }
    read
}

fn writes() -> impl Strategy<Value = Vec<(usize, Vec<u8>)>> {
    prop::collection::vec((0..mapping_bytes(DATA), prop::collection::vec(any::<u8>(), 1..24)), 0..16)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_header_and_data_are_read_inside_the_ring_in_bounded_time(
        header in prop::collection::vec(any::<u8>(), 256),
        data in prop::collection::vec(any::<u8>(), 0..DATA),
        frames in prop::collection::vec((0..DATA / UNIT, any::<u32>(), 0u32..12), 0..24),
        head in prop_oneof![Just(u64::MAX), Just(0), 0..2 * DATA as u64, any::<u64>()],
        later in writes(),
    ) {
        let ring = HeapRing::new();
        let wrapped = ring.ring();
        let mut r = Reader::new(wrapped);
        ring.scribble(HEADER_BYTES, &data);
        for &(unit, len, units) in &frames {
            ring.frame(unit, len, units);
        }
        ring.scribble(0, &header);
        wrapped.header().head.store(head, Ordering::Relaxed);
        drain(&mut r, &ring, later.into_iter());
        prop_assert_eq!(r.ring().data_bytes(), DATA as u64);
    }

    #[test]
    fn well_formed_records_come_out_whole_whatever_else_is_written(
        sizes in prop::collection::vec(0usize..MAX_RECORD - 16, 1..20),
        later in writes(),
    ) {
        let ring = HeapRing::new();
        let mut r = Reader::new(ring.ring());
        let mut hint = 0;
        let mut want = 0;
        for (i, &n) in sizes.iter().enumerate() {
            if ring.ring().push(&std::vec![i as u8; n], &mut hint) {
                want += n;
            }
        }
        let quiet = later.is_empty();
        let read = drain(&mut r, &ring, later.into_iter());
        // Nothing written beside the records: all of them, nothing else.
        if quiet {
            prop_assert_eq!(read, want);
            prop_assert_eq!(r.corrupt(), 0);
        }
    }

    #[test]
    fn records_of_any_bytes_stay_inside_them(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let mut total = 0;
        for rec in Records::new(&bytes) {
            total += rec.len();
        }
        prop_assert!(total <= bytes.len());
    }

    #[test]
    fn any_header_is_a_ring_only_with_a_size_that_fits(header in prop::collection::vec(any::<u8>(), 64), len in 0usize..3 * DATA + HEADER_BYTES) {
        let ring = HeapRing::new();
        ring.scribble(0, &header);
        ring.scribble(0, &RING_MAGIC.to_ne_bytes());
        ring.scribble(8, &RING_VERSION.to_ne_bytes());
        // SAFETY: at most as long as the buffer.
        let r = unsafe { Ring::from_raw(ring.base, len.min(mapping_bytes(DATA))) };
        if let Some(r) = r {
            prop_assert!(mapping_bytes(r.data_bytes() as usize) <= len);
        }
    }
}
