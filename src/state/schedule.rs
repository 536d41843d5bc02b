//! The retry schedule: batches waiting for their next attempt, ordered by due time.
//!
//! A worker whose request failed for a transient reason puts the batch here and takes other
//! work; whichever worker is free when a batch comes due takes it. Nothing waits on a worker.
//! The queue owns the schedule, so scheduled events stay inside its event and byte bounds
//! (see `Queue::schedule`). Events here were taken by a worker and attempted: `Stats` counts
//! them `in_flight` (and shows how many in `scheduled`).
//!
//! Closing is race-free with workers: `close` (at the shutdown deadline) and `push` both take
//! the lock, so an entry pushed after the last sweep is handed back to its worker to settle.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::state::outcome::Envelope;

/// A batch waiting for its next attempt, with what its attempts so far decided.
pub(crate) struct Retrying {
    pub(crate) batch: Vec<Envelope>,
    /// Requests made so far for this batch.
    pub(crate) attempts: u32,
    /// When the first attempt started (the retry policy's `max_elapsed` counts from it);
    /// `None` if the batch was put here before its first attempt (the gate was closed).
    pub(crate) began: Option<Instant>,
    /// The idempotency key, kept across retries.
    pub(crate) key: Option<String>,
    /// Why the last attempt failed.
    pub(crate) last_failure: String,
}

impl Retrying {
    /// The batch's share of the queue's byte budget.
    pub(crate) fn bytes(&self) -> usize {
        self.batch.iter().map(|e| e.size).sum()
    }
}

struct Entry {
    due: Instant,
    /// Arrival order, so that entries due at the same instant leave first in, first out.
    seq: u64,
    retrying: Retrying,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Entry) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    // BinaryHeap is a max-heap: the earliest due (then the lowest seq) is the greatest.
    fn cmp(&self, other: &Entry) -> CmpOrdering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

#[derive(Default)]
struct Heap {
    entries: BinaryHeap<Entry>,
    seq: u64,
    closed: bool,
}

pub(crate) struct Schedule {
    heap: Mutex<Heap>,
    epoch: Instant,
    /// Events waiting (a gauge for `Stats` and the queue's count bound).
    events: AtomicUsize,
    /// Nanoseconds after `epoch` when the earliest entry is due; `u64::MAX` when empty. Lets
    /// workers decide how long to wait without the lock.
    next_due: AtomicU64,
}

impl Default for Schedule {
    fn default() -> Schedule {
        Schedule {
            heap: Mutex::new(Heap::default()),
            epoch: Instant::now(),
            events: AtomicUsize::new(0),
            next_due: AtomicU64::new(u64::MAX),
        }
    }
}

impl Schedule {
    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX - 1)
    }

    fn publish(&self, heap: &Heap) {
        let next = heap.entries.peek().map_or(u64::MAX, |e| self.nanos(e.due));
        self.next_due.store(next, Ordering::Release);
    }

    /// Schedules `retrying` for `due`; gives it back if the schedule was closed.
    pub(crate) fn push(&self, due: Instant, retrying: Retrying) -> Result<(), Retrying> {
        let mut heap = self.heap.lock();
        if heap.closed {
            return Err(retrying);
        }
        self.events.fetch_add(retrying.batch.len(), Ordering::AcqRel);
        heap.seq += 1;
        let seq = heap.seq;
        heap.entries.push(Entry { due, seq, retrying });
        self.publish(&heap);
        Ok(())
    }

    /// The earliest entry if it is due at `now` (or any entry, with `any`: during shutdown
    /// waiting retries go at once).
    pub(crate) fn pop_due(&self, now: Instant, any: bool) -> Option<Retrying> {
        if self.next_due.load(Ordering::Acquire) == u64::MAX {
            return None;
        }
        let mut heap = self.heap.lock();
        if !any && heap.entries.peek().is_none_or(|e| e.due > now) {
            return None;
        }
        let entry = heap.entries.pop()?;
        self.events.fetch_sub(entry.retrying.batch.len(), Ordering::AcqRel);
        self.publish(&heap);
        Some(entry.retrying)
    }

    /// When the earliest entry is due, if any.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        match self.next_due.load(Ordering::Acquire) {
            u64::MAX => None,
            n => Some(self.epoch + Duration::from_nanos(n)),
        }
    }

    /// Events waiting.
    pub(crate) fn events(&self) -> usize {
        self.events.load(Ordering::Acquire)
    }

    /// Closes the schedule for good and takes everything in it (the shutdown deadline).
    pub(crate) fn close(&self) -> Vec<Retrying> {
        let mut heap = self.heap.lock();
        heap.closed = true;
        let all: Vec<Retrying> = std::mem::take(&mut heap.entries).into_iter().map(|e| e.retrying).collect();
        self.events.store(0, Ordering::Release);
        self.publish(&heap);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    fn retrying(tag: i64, n: usize) -> Retrying {
        let batch = (0..n)
            .map(|_| {
                let event = Event::from(serde_json::json!(tag));
                Envelope::new(event, 10, None)
            })
            .collect();
        Retrying { batch, attempts: 1, began: None, key: None, last_failure: String::new() }
    }

    fn tag(r: &Retrying) -> i64 {
        r.batch[0].event.as_value().unwrap().as_i64().unwrap()
    }

    #[test]
    fn entries_leave_in_due_order_and_only_when_due() {
        let s = Schedule::default();
        let t0 = s.epoch;
        let ms = Duration::from_millis;
        assert!(s.push(t0 + ms(30), retrying(3, 1)).is_ok());
        assert!(s.push(t0 + ms(10), retrying(1, 2)).is_ok());
        assert!(s.push(t0 + ms(10), retrying(2, 1)).is_ok());
        assert_eq!((s.events(), s.next_due()), (4, Some(t0 + ms(10))));
        assert_eq!(s.retrying_bytes_for_test(), 40);
        assert!(s.pop_due(t0 + ms(9), false).is_none(), "not due yet");
        assert_eq!(tag(&s.pop_due(t0 + ms(10), false).unwrap()), 1);
        assert_eq!(tag(&s.pop_due(t0 + ms(10), false).unwrap()), 2, "same due: first in, first out");
        assert!(s.pop_due(t0 + ms(20), false).is_none());
        assert_eq!(tag(&s.pop_due(t0 + ms(20), true).unwrap()), 3, "any: during shutdown");
        assert_eq!((s.events(), s.next_due()), (0, None));
    }

    #[test]
    fn closing_takes_everything_and_refuses_more() {
        let s = Schedule::default();
        assert!(s.push(s.epoch, retrying(1, 2)).is_ok());
        let all = s.close();
        assert_eq!((all.len(), s.events(), s.next_due()), (1, 0, None));
        let back = s.push(s.epoch, retrying(2, 1)).unwrap_err();
        assert_eq!(tag(&back), 2);
        assert!(s.pop_due(s.epoch, true).is_none());
    }

    impl Schedule {
        fn retrying_bytes_for_test(&self) -> usize {
            self.heap.lock().entries.iter().map(|e| e.retrying.bytes()).sum()
        }
    }
}
