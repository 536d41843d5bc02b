//! Atomic counters and the [`Stats`] snapshot.
//!
//! Owns every counter. Counters only grow; `queued` and `in_flight` are derived at snapshot time
//! so that the accounting invariant holds in every snapshot, even while producers and workers
//! run (see [`Counters::snapshot`]).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::policy::gate::Circuit;

/// A snapshot of posthaste's counters.
///
/// Every snapshot satisfies
/// `submitted = delivered + rejected + failed + dropped + cancelled + abandoned + spilled + queued + in_flight`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Events accepted by `send` (including those then dropped by the overflow policy).
    pub submitted: u64,
    /// Events the endpoint answered with 2xx.
    pub delivered: u64,
    /// Events the endpoint refused permanently (4xx other than the retried ones, 501, …).
    pub rejected: u64,
    /// Events that failed permanently (TLS, proxy auth, retries exhausted, …).
    pub failed: u64,
    /// Events dropped by the overflow policy.
    pub dropped: u64,
    /// Events still queued, or taken but never sent, at the shutdown deadline (and copies of a
    /// `fail_fast` broadcast cancelled after another copy failed).
    pub cancelled: u64,
    /// Events on the wire at the shutdown deadline: they may or may not have arrived.
    pub abandoned: u64,
    /// Events written to the spill file instead of ending `Cancelled`, `Abandoned` or `Failed`
    /// (see [`Builder::spill_dir`](crate::Builder::spill_dir)).
    pub spilled: u64,
    /// Events waiting in the queue.
    pub queued: u64,
    /// Events taken by a worker and not yet settled: being sent, or (see `scheduled`) waiting
    /// on the retry schedule for their next attempt.
    pub in_flight: u64,
    /// Of `in_flight`, the events waiting on the retry schedule (no worker holds them).
    pub scheduled: u64,
    /// Requests that were retries of an earlier attempt.
    pub retries: u64,
    /// HTTP requests started (first attempts and retries).
    pub requests: u64,
    /// Request body bytes handed to the transport.
    pub bytes_sent: u64,
    /// The queue's byte budget in use (for `Value` events, what `send` charged them: see
    /// [`Builder::queue_bytes`](crate::Builder::queue_bytes)).
    pub queued_bytes: u64,
    /// Events read back from spill files at start (counted in `submitted` too).
    pub replayed: u64,
    /// Torn or corrupt spill-file lines skipped at replay.
    pub replay_skipped: u64,
    /// Events that should have been spilled but were not (spill file full or not writable);
    /// they kept their outcome (`Cancelled`, `Abandoned` or `Failed`).
    pub spill_failed: u64,
    /// The circuit breaker's state when the snapshot was taken.
    pub circuit: Circuit,
    /// How many times the circuit breaker opened.
    pub circuit_opened: u64,
    /// Retries held back (delayed, or refused in the end) because the retry budget was spent.
    pub retries_throttled: u64,
    /// Panics caught in user callbacks or in a worker; the worker kept serving.
    pub panics: u64,
    /// Records the endpoint said, in a 2xx answer, that it refused (OTLP `partialSuccess`);
    /// their events count as delivered, since the answer does not say which they were.
    pub rejected_records: u64,
}

impl Stats {
    /// Events that have reached a final outcome.
    pub fn settled(&self) -> u64 {
        self.delivered
            + self.rejected
            + self.failed
            + self.dropped
            + self.cancelled
            + self.abandoned
            + self.spilled
    }

    /// Adds `other`'s counters to these (the total over several endpoints). The circuit is the
    /// most open of the two (`Open` over `HalfOpen` over `Closed`).
    pub(crate) fn add(&mut self, other: &Stats) {
        let Stats {
            submitted,
            delivered,
            rejected,
            failed,
            dropped,
            cancelled,
            abandoned,
            spilled,
            queued,
            in_flight,
            scheduled,
            retries,
            requests,
            bytes_sent,
            queued_bytes,
            replayed,
            replay_skipped,
            spill_failed,
            circuit,
            circuit_opened,
            retries_throttled,
            panics,
            rejected_records,
        } = *other;
        self.submitted += submitted;
        self.delivered += delivered;
        self.rejected += rejected;
        self.failed += failed;
        self.dropped += dropped;
        self.cancelled += cancelled;
        self.abandoned += abandoned;
        self.spilled += spilled;
        self.queued += queued;
        self.in_flight += in_flight;
        self.scheduled += scheduled;
        self.retries += retries;
        self.requests += requests;
        self.bytes_sent += bytes_sent;
        self.queued_bytes += queued_bytes;
        self.replayed += replayed;
        self.replay_skipped += replay_skipped;
        self.spill_failed += spill_failed;
        self.circuit_opened += circuit_opened;
        self.retries_throttled += retries_throttled;
        self.panics += panics;
        self.rejected_records += rejected_records;
        let rank = |c: Circuit| match c {
            Circuit::Closed => 0,
            Circuit::HalfOpen => 1,
            Circuit::Open => 2,
        };
        if rank(circuit) > rank(self.circuit) {
            self.circuit = circuit;
        }
    }
}

/// The terminal outcomes, as counter indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Delivered = 0,
    Rejected = 1,
    Failed = 2,
    Dropped = 3,
    Cancelled = 4,
    Abandoned = 5,
    Spilled = 6,
}
const KINDS: usize = 7;

/// Where an event was when it was settled: still queued (or refused at intake), or already
/// taken by a worker (in flight).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    Queued = 0,
    InFlight = 1,
}

#[repr(align(128))]
#[derive(Default)]
struct Padded(AtomicU64);

const STRIPES: usize = 8;

/// The live counters.
#[derive(Default)]
pub(crate) struct Counters {
    /// `submitted` is bumped by every producer on every send; it is striped over cache lines so
    /// that producers on different cores don't fight over one line.
    submitted: [Padded; STRIPES],
    started: AtomicU64,
    settled: [[AtomicU64; KINDS]; 2],
    retries: AtomicU64,
    requests: AtomicU64,
    bytes_sent: AtomicU64,
    replayed: AtomicU64,
    replay_skipped: AtomicU64,
    spill_failed: AtomicU64,
    panics: AtomicU64,
    rejected_records: AtomicU64,
}

thread_local! {
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}
static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

fn stripe() -> usize {
    STRIPE.with(|s| {
        let mut i = s.get();
        if i == usize::MAX {
            i = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % STRIPES;
            s.set(i);
        }
        i
    })
}

// Ordering: increments are Release and snapshot loads Acquire. Every event is counted
// `submitted` before `started` before its settlement, each step happening-before the next, so a
// snapshot that reads settlements first, then `started`, then `submitted` never sees an effect
// without its cause: `queued` and `in_flight` below never go negative.
impl Counters {
    pub(crate) fn submitted(&self) {
        self.submitted[stripe()].0.fetch_add(1, Ordering::Release);
    }

    /// Takes back a `submitted` made by this thread for an event that never entered the queue.
    pub(crate) fn unsubmitted(&self) {
        self.submitted[stripe()].0.fetch_sub(1, Ordering::Release);
    }

    pub(crate) fn started(&self, n: u64) {
        self.started.fetch_add(n, Ordering::Release);
    }

    pub(crate) fn settled(&self, kind: Kind, stage: Stage, n: u64) {
        self.settled[stage as usize][kind as usize].fetch_add(n, Ordering::Release);
    }

    pub(crate) fn request(&self, retry: bool, body_bytes: usize) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if retry {
            self.retries.fetch_add(1, Ordering::Relaxed);
        }
        self.bytes_sent.fetch_add(body_bytes as u64, Ordering::Relaxed);
    }

    /// Events read back from a spill file (also counted `submitted`, one by one).
    pub(crate) fn replayed(&self, n: u64, skipped: u64) {
        self.replayed.fetch_add(n, Ordering::Relaxed);
        self.replay_skipped.fetch_add(skipped, Ordering::Relaxed);
    }

    pub(crate) fn spill_failed(&self, n: u64) {
        self.spill_failed.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn rejected_records(&self, n: u64) {
        self.rejected_records.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn panicked(&self) {
        self.panics.fetch_add(1, Ordering::Relaxed);
    }

    /// A consistent snapshot; `queued_bytes` comes from the queue. The circuit fields are
    /// filled in by the runtime from the endpoint gate.
    pub(crate) fn snapshot(&self, queued_bytes: u64) -> Stats {
        let mut by = [[0u64; KINDS]; 2];
        for (from, row) in self.settled.iter().enumerate() {
            for (kind, c) in row.iter().enumerate() {
                by[from][kind] = c.load(Ordering::Acquire);
            }
        }
        let started = self.started.load(Ordering::Acquire);
        let submitted: u64 = self.submitted.iter().map(|p| p.0.load(Ordering::Acquire)).sum();
        let total = |k: Kind| by[0][k as usize] + by[1][k as usize];
        let from_flight: u64 = by[1].iter().sum();
        let from_queue: u64 = by[0].iter().sum();
        Stats {
            submitted,
            delivered: total(Kind::Delivered),
            rejected: total(Kind::Rejected),
            failed: total(Kind::Failed),
            dropped: total(Kind::Dropped),
            cancelled: total(Kind::Cancelled),
            abandoned: total(Kind::Abandoned),
            spilled: total(Kind::Spilled),
            queued: submitted - started - from_queue,
            in_flight: started - from_flight,
            scheduled: 0,
            retries: self.retries.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            queued_bytes,
            replayed: self.replayed.load(Ordering::Relaxed),
            replay_skipped: self.replay_skipped.load(Ordering::Relaxed),
            spill_failed: self.spill_failed.load(Ordering::Relaxed),
            circuit: Circuit::Closed,
            circuit_opened: 0,
            retries_throttled: 0,
            panics: self.panics.load(Ordering::Relaxed),
            rejected_records: self.rejected_records.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_derives_queued_and_in_flight() {
        let c = Counters::default();
        for _ in 0..10 {
            c.submitted();
        }
        c.settled(Kind::Dropped, Stage::Queued, 2);
        c.started(5);
        c.settled(Kind::Delivered, Stage::InFlight, 3);
        c.settled(Kind::Cancelled, Stage::InFlight, 1);
        c.settled(Kind::Spilled, Stage::Queued, 1);
        let s = c.snapshot(0);
        assert_eq!((s.submitted, s.queued, s.in_flight), (10, 2, 1));
        assert_eq!((s.delivered, s.dropped, s.cancelled, s.spilled), (3, 2, 1, 1));
        assert_eq!(s.submitted, s.settled() + s.queued + s.in_flight);
    }
}
