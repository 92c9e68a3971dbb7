//! The ring's tests: rings in memory files, written and read as the
//! preload library and the harness do.

extern crate std;
use core::sync::atomic::Ordering;
use std::vec::Vec;

use super::*;

/// A ring in a memfd, mapped as the harness and the library map it.
fn ring(data_bytes: usize, block: bool) -> Ring {
    // SAFETY: plain syscalls on a fresh memfd; the mapping is leaked
    // for the test's life.
    unsafe {
        let fd = libc::memfd_create(c"ring".as_ptr(), 0);
        assert!(fd >= 0);
        assert_eq!(libc::ftruncate(fd, file_bytes(data_bytes) as libc::off_t), 0);
        let p = libc::mmap(
            core::ptr::null_mut(),
            HEADER_BYTES,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        );
        p.cast::<RingHeader>().write(RingHeader::new(data_bytes as u64, CLOCK_MONOTONIC_NS, block));
        libc::munmap(p, HEADER_BYTES);
        let (r, _) = map::map(fd, file_bytes(data_bytes)).unwrap();
        libc::close(fd);
        r
    }
}

fn drain(r: &mut Reader) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while r.pop_with(|b| out.push(b.to_vec())).is_ok() {}
    out
}

#[test]
fn records_come_out_in_order_across_the_wrap_and_overflow_is_counted() {
    let r = ring(4096, false);
    let mut reader = Reader::new(r);
    let mut hint = 0;
    // 100-byte payloads take 2 units: 32 fit in 4 KiB.
    for round in 0..3u8 {
        for i in 0..34u8 {
            r.push(&[round ^ i; 100], &mut hint);
        }
        let got = drain(&mut reader);
        assert_eq!(got.len(), 32);
        for (i, rec) in got.iter().enumerate() {
            assert_eq!(rec, &[round ^ i as u8; 100]);
        }
    }
    assert_eq!(r.header().lost.load(Ordering::Relaxed), 6);
    // A record of odd size straddling the end comes out whole.
    r.push(&[7; 300], &mut hint);
    assert_eq!(drain(&mut reader), [[7u8; 300].to_vec()]);
    assert_eq!(reader.corrupt(), 0);
}

#[test]
fn many_threads_lose_nothing_when_producers_wait_for_a_live_consumer() {
    let r = ring(4096, true);
    let stop = std::sync::Arc::new(core::sync::atomic::AtomicBool::new(false));
    let consumer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut counts = [0u32; 4];
            let mut r = Reader::new(r);
            loop {
                r.beat();
                match r.pop_with(|b| {
                    assert!(b[1..].iter().all(|&x| x == b[0]), "a torn record");
                    counts[b[0] as usize] += 1;
                }) {
                    Ok(()) => {}
                    Err(PopError::Empty) if stop.load(Ordering::Acquire) => break counts,
                    Err(_) => std::thread::yield_now(),
                }
            }
        })
    };
    let producers: Vec<_> = (0..4u8)
        .map(|t| {
            std::thread::spawn(move || {
                let mut hint = 0;
                for i in 0..20_000usize {
                    r.push(&std::vec![t; 20 + i % 200], &mut hint);
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    stop.store(true, Ordering::Release);
    assert_eq!(consumer.join().unwrap(), [20_000; 4]);
    assert_eq!(r.header().lost.load(Ordering::Relaxed), 0);
}

#[test]
fn a_stalled_consumer_costs_one_wait_then_records_are_lost_at_once() {
    let r = ring(4096, true);
    let mut hint = 0;
    for _ in 0..32 {
        assert!(r.push(&[1; 100], &mut hint));
    }
    assert!(!r.push(&[1; 100], &mut hint));
    assert_eq!(r.header().stalled.load(Ordering::Relaxed), 1);
    assert!(!r.push(&[1; 100], &mut hint));
    assert_eq!(r.header().waited.load(Ordering::Relaxed), 1);
    assert_eq!(r.header().lost.load(Ordering::Relaxed), 2);
    // The consumer coming back clears it.
    let mut reader = Reader::new(r);
    reader.beat();
    assert_eq!(drain(&mut reader).len(), 32);
    assert!(r.push(&[1; 100], &mut hint));
}

#[test]
fn spans_hand_over_published_records_in_order_across_the_wrap() {
    let r = ring(4096, false);
    let mut reader = Reader::new(r);
    let mut hint = 0;
    let mut got: Vec<Vec<u8>> = Vec::new();
    for round in 0..5u8 {
        for i in 0..20u8 {
            r.push(&std::vec![round ^ i; 1 + usize::from(i) * 7], &mut hint);
        }
        loop {
            let head = reader.head();
            let Ok(n) = reader.pop_span(head, |span| {
                let mut copy = std::vec![0; span.len()];
                span.copy_to(&mut copy);
                got.extend(Records::new(&copy).map(<[u8]>::to_vec));
            }) else {
                break;
            };
            assert!(n > 0);
        }
    }
    assert_eq!(got.len(), 100);
    for (k, rec) in got.iter().enumerate() {
        let (round, i) = ((k / 20) as u8, (k % 20) as u8);
        assert_eq!(rec, &std::vec![round ^ i; 1 + usize::from(i) * 7]);
    }
    let head = reader.head();
    assert_eq!(reader.pop_span(head, |_| {}), Err(PopError::Empty));
    assert_eq!(reader.corrupt(), 0);
    assert_eq!(r.header().lost.load(Ordering::Relaxed), 0);
}

#[test]
fn a_record_never_published_is_skipped_and_later_ones_kept() {
    let r = ring(4096, false);
    let h = r.header();
    // A writer claims two units and dies.
    h.head.fetch_add(128, Ordering::AcqRel);
    let mut hint = 0;
    r.push(&[9; 10], &mut hint);
    let mut reader = Reader::new(r);
    assert_eq!(reader.pop_with(|_| {}), Err(PopError::Pending));
    assert_eq!(reader.skip_pending(), 2);
    assert_eq!(drain(&mut reader), [[9u8; 10].to_vec()]);
    assert_eq!(reader.abandoned(), 1);
}

#[test]
fn foreign_memory_is_not_a_ring() {
    #[repr(C, align(64))]
    struct Page([u8; 4096]);
    let mut mem = Page([0; 4096]);
    // SAFETY: 4096 readable bytes.
    assert!(unsafe { Ring::from_raw(mem.0.as_mut_ptr(), 4096) }.is_none());
}
