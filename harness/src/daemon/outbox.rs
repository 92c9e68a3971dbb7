//! A daemon session's queue of frames to its client, and the thread that
//! writes it.
//!
//! The consumer thread, which serves every session, only appends to the
//! queue; a thread per session does the writing, so a client that does
//! not read blocks its own writer and nobody else. Past the queue's
//! limit, records are dropped and counted (the client learns how many);
//! replies are never dropped, and keep their place after the records
//! written before them, which is what makes a flush exact.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::protocol::{encode_frame, KIND_RECORD};

/// How long the writer sleeps when nothing woke it: records routed in a
/// pass wake it (`kick`), this only bounds a missed wake-up.
const IDLE_WAIT: Duration = Duration::from_millis(5);

/// Capacity a spare buffer keeps between bursts.
const KEEP_CAPACITY: usize = 1 << 20;

pub(crate) struct Outbox {
    state: Mutex<State>,
    ready: Condvar,
    /// Notified when the writer has sent what it took.
    room: Condvar,
    /// Most bytes of records queued at once.
    limit: usize,
}

#[derive(Default)]
struct State {
    buf: Vec<u8>,
    /// Records dropped because `buf` was at its limit.
    dropped: u64,
    /// No more frames: the session ended or the client went away.
    closed: bool,
}

impl Outbox {
    pub(crate) fn new(limit: usize) -> Arc<Outbox> {
        Arc::new(Outbox { state: Mutex::default(), ready: Condvar::new(), room: Condvar::new(), limit })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues one record, or counts it dropped when the queue is full.
    /// Called by the consumer thread: it never waits for the client.
    pub(crate) fn push_record(&self, bytes: &[u8]) {
        let mut st = self.state();
        if st.closed {
            return;
        }
        if st.buf.len() + bytes.len() + 5 > self.limit {
            st.dropped += 1;
            return;
        }
        encode_frame(&mut st.buf, KIND_RECORD, bytes);
    }

    /// Wakes the writer: records were queued.
    pub(crate) fn kick(&self) {
        self.ready.notify_one();
    }

    /// Queues a whole control frame (a reply), whatever the limit.
    pub(crate) fn push_control(&self, frame: &[u8]) {
        let mut st = self.state();
        if !st.closed {
            st.buf.extend_from_slice(frame);
        }
        drop(st);
        self.ready.notify_one();
    }

    /// Waits while more than the limit is queued: the session's handler
    /// calls it before each request, so a client that sends requests and
    /// reads nothing holds only its own handler, never daemon memory.
    pub(crate) fn wait_for_room(&self) {
        let mut st = self.state();
        while st.buf.len() > self.limit && !st.closed {
            st = self.room.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Ends the queue at once: what it holds is dropped, `frame` is the
    /// last thing sent.
    pub(crate) fn discard_and_end(&self, frame: &[u8]) {
        let mut st = self.state();
        st.buf.clear();
        st.buf.extend_from_slice(frame);
        st.closed = true;
        drop(st);
        self.ready.notify_one();
    }

    /// Records dropped so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.state().dropped
    }

    /// Ends the queue once what is in it was written.
    pub(crate) fn close(&self) {
        self.state().closed = true;
        self.ready.notify_one();
        self.room.notify_all();
    }

    /// Writes the queue to `out` until it is closed and empty, or `out`
    /// fails (the client went away: the rest is discarded).
    pub(crate) fn run_writer(self: Arc<Self>, mut out: UnixStream) {
        let mut spare = Vec::new();
        loop {
            {
                let mut st = self.state();
                while st.buf.is_empty() && !st.closed {
                    st = self.ready.wait_timeout(st, IDLE_WAIT).unwrap_or_else(|e| e.into_inner()).0;
                }
                if st.buf.is_empty() && st.closed {
                    return;
                }
                std::mem::swap(&mut spare, &mut st.buf);
            }
            if out.write_all(&spare).is_err() {
                let mut st = self.state();
                st.closed = true;
                st.buf = Vec::new();
                drop(st);
                self.room.notify_all();
                return;
            }
            self.room.notify_all();
            spare.clear();
            if spare.capacity() > KEEP_CAPACITY {
                spare = Vec::new();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::protocol::{read_frame, MAX_FRAME};

    #[test]
    fn a_full_queue_drops_and_counts_records_but_not_replies() {
        let q = Outbox::new(64);
        q.push_record(&[1; 40]);
        q.push_record(&[2; 40]);
        assert_eq!(q.dropped(), 1);
        q.push_control(b"reply");
        let (a, b) = UnixStream::pair().unwrap();
        q.close();
        Arc::clone(&q).run_writer(a);
        let mut b = std::io::BufReader::new(b);
        let f = read_frame(&mut b, MAX_FRAME).unwrap();
        assert_eq!((f.kind, f.payload), (KIND_RECORD, vec![1; 40]));
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut b, &mut rest).unwrap();
        assert_eq!(rest, b"reply");
    }

    #[test]
    fn a_client_that_went_away_ends_the_writer() {
        let q = Outbox::new(1 << 20);
        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        q.push_record(&[0; 100]);
        let t = std::thread::spawn({
            let q = Arc::clone(&q);
            move || q.run_writer(a)
        });
        t.join().unwrap();
        // Nothing is queued for a client that is gone.
        q.push_record(&[0; 100]);
        assert_eq!(q.state().buf.len(), 0);
    }
}
