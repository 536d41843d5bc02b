//! The state one running instance shares between its guard, clients and workers, and the
//! per-worker slot that makes "who settles an in-flight batch" a single decision.

use std::mem;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use crate::config::Config;
use crate::gate::Gate;
use crate::guard::Report;
use crate::lifecycle::Backlog;
use crate::outcome::{Envelope, Ledger, Outcome};
use crate::queue::Queue;
use crate::spill::Spill;
use crate::stats::{From, Stats};
use crate::transport::Transport;

pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) queue: Queue,
    pub(crate) ledger: Ledger,
    pub(crate) gate: Gate,
    pub(crate) transport: Transport,
    /// Events replayed from spill files, taken before the queue.
    pub(crate) backlog: Backlog,
    /// One per worker.
    pub(crate) slots: Vec<Slot>,
    /// Never sent on; disconnected when shutdown begins, which wakes every wait on it.
    pub(crate) shutdown_rx: Receiver<()>,
    shutdown_tx: Mutex<Option<Sender<()>>>,
    /// Set once, when shutdown begins: the instant by which everything must be settled.
    deadline: OnceLock<Instant>,
    /// Set when the deadline has passed: workers stop taking events.
    cancel: AtomicBool,
    pub(crate) lifecycle: Mutex<Lifecycle>,
}

/// What the shutdown path needs once: thread handles, the "all workers done" channel, and the
/// report of the first shutdown (returned again by later calls).
#[derive(Default)]
pub(crate) struct Lifecycle {
    pub(crate) handles: Vec<JoinHandle<()>>,
    pub(crate) done_rx: Option<Receiver<()>>,
    pub(crate) report: Option<Report>,
}

impl Shared {
    pub(crate) fn new(config: Config, transport: Transport, spill: Option<Arc<Spill>>) -> Shared {
        let (shutdown_tx, shutdown_rx) = crossbeam_channel::bounded(0);
        let queue =
            Queue::new(config.queue_capacity, config.queue_bytes, config.overflow, shutdown_rx.clone());
        let ledger = Ledger::new(config.on_outcome.clone(), spill);
        let gate = Gate::new(&config.life.breaker, &config.life.budget);
        let slots = (0..config.workers).map(|_| Slot::default()).collect();
        Shared {
            config,
            queue,
            ledger,
            gate,
            transport,
            backlog: Backlog::default(),
            slots,
            shutdown_rx,
            shutdown_tx: Mutex::new(Some(shutdown_tx)),
            deadline: OnceLock::new(),
            cancel: AtomicBool::new(false),
            lifecycle: Mutex::new(Lifecycle::default()),
        }
    }

    /// Begins shutdown: records the deadline, closes intake, wakes every waiter. Idempotent;
    /// returns the deadline in force (the first one set).
    pub(crate) fn begin_shutdown(&self, deadline: Instant) -> Instant {
        let deadline = *self.deadline.get_or_init(|| deadline);
        self.queue.close();
        self.shutdown_tx.lock().take();
        deadline
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline.get().copied()
    }

    /// During shutdown, the time left before the deadline (zero once passed).
    pub(crate) fn time_left(&self, now: Instant) -> Option<Duration> {
        self.deadline().map(|d| d.saturating_duration_since(now))
    }

    /// A snapshot of every counter, with the gate's state.
    pub(crate) fn stats(&self) -> Stats {
        let mut stats = self.ledger.counters.snapshot(self.queue.queued_bytes());
        (stats.circuit, stats.circuit_opened, stats.retries_throttled) = self.gate.snapshot(Instant::now());
        stats
    }

    pub(crate) fn set_cancelled(&self) {
        self.cancel.store(true, Ordering::Release);
    }

    /// True once shutdown's deadline has passed (by the clock or by the shutdown path).
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Acquire) || self.time_left(Instant::now()) == Some(Duration::ZERO)
    }
}

/// A worker's in-flight events. The worker registers what it takes before sending and takes
/// events back to settle them; the shutdown path closes the slot at the deadline and settles
/// whatever is in it. Whoever takes an event settles it, so it is settled once.
///
/// With batching the slot holds everything the worker holds, in order: the request being sent
/// (the first `wire` events once it is on the wire), the halves of a split batch still to send,
/// and the event that did not fit and starts the next batch. Nothing a worker has taken is ever
/// outside a slot while it waits.
#[derive(Default)]
pub(crate) struct Slot {
    state: Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    closed: bool,
    /// How many events at the front are (or were) in a request that started.
    wire: usize,
    batch: Vec<Envelope>,
}

impl Slot {
    /// Registers `batch`; gives it back if the slot was closed by shutdown.
    pub(crate) fn register(&self, batch: Vec<Envelope>) -> Result<(), Vec<Envelope>> {
        let mut s = self.state.lock();
        if s.closed {
            return Err(batch);
        }
        s.wire = 0;
        s.batch = batch;
        Ok(())
    }

    /// Appends `more` to what is registered; gives it back if the slot was closed.
    pub(crate) fn extend(&self, more: Vec<Envelope>) -> Result<(), Vec<Envelope>> {
        let mut s = self.state.lock();
        if s.closed {
            return Err(more);
        }
        if s.batch.is_empty() {
            s.batch = more;
        } else {
            s.batch.extend(more);
        }
        Ok(())
    }

    /// How many events the slot holds.
    pub(crate) fn len(&self) -> usize {
        self.state.lock().batch.len()
    }

    /// Runs `f` on the registered events (under the slot's lock).
    pub(crate) fn with_batch<R>(&self, f: impl FnOnce(&[Envelope]) -> R) -> R {
        f(&self.state.lock().batch)
    }

    /// Marks the first `n` events as sent (about to be). False if shutdown has taken them.
    pub(crate) fn mark_on_wire(&self, n: usize) -> bool {
        let mut s = self.state.lock();
        if s.closed || s.batch.len() < n || n == 0 {
            return false;
        }
        s.wire = s.wire.max(n);
        true
    }

    /// Takes the first `n` events back to settle them. `None` if shutdown took them.
    pub(crate) fn take_front(&self, n: usize) -> Option<Vec<Envelope>> {
        let mut s = self.state.lock();
        if s.batch.len() < n || n == 0 {
            return None;
        }
        s.wire = s.wire.saturating_sub(n);
        if n == s.batch.len() {
            return Some(mem::take(&mut s.batch));
        }
        let rest = s.batch.split_off(n);
        Some(mem::replace(&mut s.batch, rest))
    }

    /// Takes everything back, with how many events at the front were on the wire. `None` if
    /// the slot is empty (shutdown took it).
    pub(crate) fn take(&self) -> Option<(Vec<Envelope>, usize)> {
        let mut s = self.state.lock();
        if s.batch.is_empty() {
            return None;
        }
        let wire = mem::take(&mut s.wire);
        Some((mem::take(&mut s.batch), wire))
    }

    /// Closes the slot for good and takes what is in it, with how many events at the front
    /// were on the wire (shutdown, at the deadline).
    pub(crate) fn close(&self) -> (Vec<Envelope>, usize) {
        let mut s = self.state.lock();
        s.closed = true;
        let wire = mem::take(&mut s.wire);
        (mem::take(&mut s.batch), wire)
    }
}

/// Settles what a slot held at the deadline: the first `wire` events were on the wire
/// (`Abandoned`: they may have arrived), the rest were never sent (`Cancelled`).
pub(crate) fn settle_at_deadline(ledger: &Ledger, mut batch: Vec<Envelope>, wire: usize) {
    let unsent = batch.split_off(wire.min(batch.len()));
    ledger.settle_all(&batch, &Outcome::Abandoned, From::Flight);
    ledger.settle_all(&unsent, &Outcome::Cancelled, From::Flight);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    fn envs(n: usize) -> Vec<Envelope> {
        (0..n)
            .map(|i| {
                let event = Event::from(serde_json::json!(i));
                Envelope { size: event.approx_bytes(), event, receipt: None }
            })
            .collect()
    }

    fn values(batch: &[Envelope]) -> Vec<serde_json::Value> {
        batch.iter().map(|e| e.event.as_value().unwrap().clone()).collect()
    }

    #[test]
    fn chunks_are_taken_from_the_front_and_the_rest_stays() {
        let slot = Slot::default();
        assert!(slot.register(envs(3)).is_ok());
        assert!(slot.extend(envs(1)).is_ok());
        assert_eq!(slot.len(), 4);
        assert!(slot.mark_on_wire(2));
        let front = slot.take_front(2).unwrap();
        assert_eq!(values(&front), [0, 1]);
        assert_eq!(slot.len(), 2);
        assert!(slot.take_front(3).is_none(), "more than held");
        // What remains was never on the wire.
        let (rest, wire) = slot.close();
        assert_eq!((values(&rest), wire), (vec![serde_json::json!(2), serde_json::json!(0)], 0));
    }

    #[test]
    fn close_reports_how_many_were_on_the_wire_and_refuses_more() {
        let slot = Slot::default();
        assert!(slot.register(envs(5)).is_ok());
        assert!(slot.mark_on_wire(3));
        assert!(!slot.mark_on_wire(6), "more than held");
        let (batch, wire) = slot.close();
        assert_eq!((batch.len(), wire), (5, 3));
        assert!(slot.register(envs(1)).is_err());
        assert!(slot.extend(envs(1)).is_err());
        assert!(!slot.mark_on_wire(1));
        assert!(slot.take().is_none());
    }

    #[test]
    fn settling_at_the_deadline_splits_abandoned_from_cancelled() {
        let ledger = Ledger::new(None, None);
        for _ in 0..5 {
            ledger.counters.submitted();
        }
        ledger.counters.started(5);
        settle_at_deadline(&ledger, envs(5), 2);
        let s = ledger.counters.snapshot(0);
        assert_eq!((s.abandoned, s.cancelled, s.in_flight), (2, 3, 0));
    }
}
