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
use crate::outcome::{Envelope, Ledger};
use crate::queue::Queue;
use crate::spill::Spill;
use crate::stats::Stats;
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

/// A worker's in-flight batch. The worker registers a batch before sending and takes it back
/// to settle it; the shutdown path closes the slot at the deadline and settles whatever is in
/// it. Whoever takes the batch settles it, so it is settled once.
#[derive(Default)]
pub(crate) struct Slot {
    state: Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    closed: bool,
    /// At least one request for this batch has started.
    on_wire: bool,
    batch: Vec<Envelope>,
}

impl Slot {
    /// Registers `batch`; gives it back if the slot was closed by shutdown.
    pub(crate) fn register(&self, batch: Vec<Envelope>) -> Result<(), Vec<Envelope>> {
        let mut s = self.state.lock();
        if s.closed {
            return Err(batch);
        }
        s.on_wire = false;
        s.batch = batch;
        Ok(())
    }

    /// Runs `f` on the registered batch (under the slot's lock).
    pub(crate) fn with_batch<R>(&self, f: impl FnOnce(&[Envelope]) -> R) -> R {
        f(&self.state.lock().batch)
    }

    /// Marks the batch as sent (about to be). False if shutdown has taken it.
    pub(crate) fn mark_on_wire(&self) -> bool {
        let mut s = self.state.lock();
        if s.closed || s.batch.is_empty() {
            return false;
        }
        s.on_wire = true;
        true
    }

    /// Takes the batch back, with whether it was ever on the wire. `None` if shutdown took it.
    pub(crate) fn take(&self) -> Option<(Vec<Envelope>, bool)> {
        let mut s = self.state.lock();
        if s.batch.is_empty() {
            return None;
        }
        Some((mem::take(&mut s.batch), s.on_wire))
    }

    /// Closes the slot for good and takes what is in it (shutdown, at the deadline).
    pub(crate) fn close(&self) -> (Vec<Envelope>, bool) {
        let mut s = self.state.lock();
        s.closed = true;
        (mem::take(&mut s.batch), s.on_wire)
    }
}
