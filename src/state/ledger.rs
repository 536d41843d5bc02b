//! The ledger: the one place an event's fate is recorded.
//!
//! `Ledger::settle` records counters, completes the receipt and calls the user's `on_outcome`
//! callback. Callers guarantee each envelope reaches it once (envelopes are moved, never
//! cloned). With a spill file configured, the ledger is also where an event that would end
//! `Cancelled`, `Abandoned` or `Failed` for a transient reason is written to disk instead and
//! settled `Spilled`: durably written before anyone is told.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::state::lifecycle::{self, LifecycleEvent, OnLifecycle};
use crate::state::outcome::{Envelope, OnOutcome, Outcome};
use crate::state::spill::Spill;
use crate::state::stats::{Counters, Stage};

/// Records outcomes: counters, receipts, callback; spills what must not be lost.
pub(crate) struct Ledger {
    pub(crate) counters: Counters,
    on_outcome: Option<OnOutcome>,
    on_lifecycle: Option<OnLifecycle>,
    /// Threads in `wait_idle`; settling only takes the lock to wake them when there are any.
    idle_waiters: AtomicUsize,
    idle_lock: Mutex<()>,
    idle: Condvar,
    spill: Option<Arc<Spill>>,
}

impl Ledger {
    pub(crate) fn new(on_outcome: Option<OnOutcome>, spill: Option<Arc<Spill>>) -> Ledger {
        Ledger {
            counters: Counters::default(),
            on_outcome,
            on_lifecycle: None,
            spill,
            idle_waiters: AtomicUsize::new(0),
            idle_lock: Mutex::new(()),
            idle: Condvar::new(),
        }
    }

    /// Waits until nothing is queued or in flight, or `deadline`; true if idle. `queued_bytes`
    /// reads the queue's byte gauge for the snapshot.
    pub(crate) fn wait_idle(&self, deadline: Instant, queued_bytes: impl Fn() -> u64) -> bool {
        // SeqCst pairs with `wake_idle`: a settle either sees this waiter or happens before
        // the snapshot below.
        self.idle_waiters.fetch_add(1, Ordering::SeqCst);
        let mut guard = self.idle_lock.lock();
        let idle = loop {
            let s = self.counters.snapshot(queued_bytes());
            if s.queued == 0 && s.in_flight == 0 {
                break true;
            }
            if self.idle.wait_until(&mut guard, deadline).timed_out() {
                let s = self.counters.snapshot(queued_bytes());
                break s.queued == 0 && s.in_flight == 0;
            }
        };
        drop(guard);
        self.idle_waiters.fetch_sub(1, Ordering::SeqCst);
        idle
    }

    /// Calls `Builder::on_lifecycle`'s callback with the event `make` builds, if one is set.
    pub(crate) fn with_lifecycle(mut self, callback: Option<OnLifecycle>) -> Ledger {
        self.on_lifecycle = callback;
        self
    }

    /// Tells the lifecycle callback (if any) about `make()`; panics in it are counted.
    pub(crate) fn emit(&self, make: impl FnOnce() -> LifecycleEvent) {
        lifecycle::emit(&self.on_lifecycle, &self.counters, make);
    }

    /// The spill file, if one is configured.
    pub(crate) fn spill(&self) -> Option<&Arc<Spill>> {
        self.spill.as_ref()
    }

    fn wake_idle(&self) {
        if self.idle_waiters.load(Ordering::SeqCst) > 0 {
            let _guard = self.idle_lock.lock();
            self.idle.notify_all();
        }
    }

    /// Settles one event. `stage` says whether a worker had taken it. The caller drops (or hands
    /// back) the envelope afterwards and never settles it again.
    pub(crate) fn settle(&self, env: &Envelope, outcome: &Outcome, stage: Stage) {
        self.settle_all(std::slice::from_ref(env), outcome, stage);
    }

    /// Settles a batch with one outcome (counted with one atomic add). With a spill file,
    /// `Cancelled` and `Abandoned` are spilled instead.
    pub(crate) fn settle_all(&self, batch: &[Envelope], outcome: &Outcome, stage: Stage) {
        if outcome.spills_at_deadline() {
            self.settle_all_or_spill(batch, outcome, stage);
        } else {
            self.record(batch, outcome, stage, false);
        }
    }

    /// Settles a batch with `outcome`, never spilling (copies of a `fail_fast` broadcast
    /// cancelled on purpose).
    pub(crate) fn settle_all_unspilled(&self, batch: &[Envelope], outcome: &Outcome, stage: Stage) {
        self.record(batch, outcome, stage, false);
    }

    /// Settles a batch `Spilled` if a spill file is configured and takes it, else with
    /// `outcome`. For events that failed for a transient reason (or were never sent).
    pub(crate) fn settle_all_or_spill(&self, batch: &[Envelope], outcome: &Outcome, stage: Stage) {
        let Some(spill) = &self.spill else {
            return self.record(batch, outcome, stage, false);
        };
        if batch.is_empty() {
            return;
        }
        // Written and synced before anyone is told.
        let n = spill.append(batch.iter().map(|env| &env.event), None);
        let (spilled, rest) = batch.split_at(n);
        self.record(spilled, &Outcome::Spilled, stage, false);
        if n > 0 {
            self.emit(|| LifecycleEvent::Spilled { events: n as u64 });
        }
        if !rest.is_empty() {
            self.counters.spill_failed(rest.len() as u64);
            self.record(rest, outcome, stage, true);
        }
    }

    fn record(&self, batch: &[Envelope], outcome: &Outcome, stage: Stage, unspilled: bool) {
        if batch.is_empty() {
            return;
        }
        self.counters.settled(outcome.kind(), stage, batch.len() as u64);
        for env in batch {
            self.notify(env, outcome, unspilled);
        }
        self.wake_idle();
    }

    fn notify(&self, env: &Envelope, outcome: &Outcome, unspilled: bool) {
        if let Some(slot) = &env.receipt {
            slot.complete(outcome, unspilled);
        }
        if let Some(cb) = &self.on_outcome {
            // A panicking callback must not take a worker (or a producer) down with it; the
            // event is already counted, so the panic is contained, counted and ignored.
            if catch_unwind(AssertUnwindSafe(|| cb(&env.event, outcome))).is_err() {
                self.counters.panicked();
            }
        }
    }
}
