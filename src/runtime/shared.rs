//! [`Shared`]: what one running instance shares between its guard, clients, workers and hooks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use super::slot::Slot;
use super::RuntimeOptions;
use crate::policy::gate::Gate;
use crate::state::ledger::Ledger;
use crate::state::metrics::{Metrics, Recorder};
use crate::state::queue::{Backlog, Queue};
use crate::state::report::Report;
use crate::state::spill::Spill;
use crate::state::stats::Stats;
use crate::transport::Transport;

pub(crate) struct Shared {
    pub(crate) options: RuntimeOptions,
    pub(crate) queue: Queue,
    pub(crate) ledger: Ledger,
    pub(crate) gate: Gate,
    pub(crate) recorder: Recorder,
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
    pub(crate) threads: Mutex<Threads>,
}

/// What the shutdown path needs once: thread handles, the "all workers done" channel, and the
/// report of the first shutdown (returned again by later calls).
#[derive(Default)]
pub(crate) struct Threads {
    pub(crate) handles: Vec<JoinHandle<()>>,
    pub(crate) done_rx: Option<Receiver<()>>,
    pub(crate) report: Option<Report>,
}

impl Shared {
    pub(crate) fn new(options: RuntimeOptions, transport: Transport, spill: Option<Arc<Spill>>) -> Shared {
        let (shutdown_tx, shutdown_rx) = crossbeam_channel::bounded(0);
        let queue = Queue::new(
            options.queue_capacity,
            options.priority_capacity,
            options.queue_bytes,
            options.overflow,
        );
        let ledger =
            Ledger::new(options.on_outcome.clone(), spill).with_lifecycle(options.on_lifecycle.clone());
        let gate = Gate::new(&options.breaker, &options.budget);
        let slots = (0..options.workers).map(|_| Slot::default()).collect();
        let recorder = Recorder::new(Instant::now(), options.metrics_window);
        Shared {
            options,
            queue,
            ledger,
            gate,
            recorder,
            transport,
            backlog: Backlog::default(),
            slots,
            shutdown_rx,
            shutdown_tx: Mutex::new(Some(shutdown_tx)),
            deadline: OnceLock::new(),
            cancel: AtomicBool::new(false),
            threads: Mutex::new(Threads::default()),
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
        stats.scheduled = self.queue.scheduled().min(stats.in_flight);
        (stats.circuit, stats.circuit_opened, stats.retries_throttled) = self.gate.snapshot(Instant::now());
        stats
    }

    /// The ledger's `(accepted, settled)` totals, for rates.
    pub(crate) fn totals(&self) -> (u64, u64) {
        let s = self.ledger.counters.snapshot(0);
        (s.submitted, s.settled())
    }

    /// The pipeline's [`Metrics`] now.
    pub(crate) fn metrics(&self) -> Metrics {
        let s = self.ledger.counters.snapshot(0);
        let waiting = s.queued + self.queue.scheduled().min(s.in_flight);
        self.recorder.metrics(Instant::now(), (s.submitted, s.settled()), waiting, self.options.workers)
    }

    pub(crate) fn set_cancelled(&self) {
        self.cancel.store(true, Ordering::Release);
    }

    /// True once shutdown's deadline has passed (by the clock or by the shutdown path).
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Acquire) || self.time_left(Instant::now()) == Some(Duration::ZERO)
    }
}
