//! [`Outcome`], [`Receipt`], and the ledger that settles every event exactly once.
//!
//! `Ledger::settle` is the single place where an event's fate is recorded: counters, receipt and
//! the user's `on_outcome` callback. Callers guarantee each envelope reaches it once (envelopes
//! are moved, never cloned). With a spill file configured, the ledger is also where an event
//! that would end `Cancelled`, `Abandoned` or `Failed` for a transient reason is written to disk
//! instead and settled `Spilled`: durably written before anyone is told.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::event::Event;
use crate::spill::Spill;
use crate::stats::{Counters, From, Kind};

/// The final fate of one event. Every accepted event gets exactly one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The endpoint answered 2xx.
    Delivered {
        /// The HTTP status.
        status: u16,
        /// Requests made for it (1 = first try).
        attempts: u32,
    },
    /// The endpoint refused it permanently (a status that is not retried).
    Rejected {
        /// The HTTP status.
        status: u16,
        /// Requests made for it.
        attempts: u32,
        /// The start of the response body, or why posthaste refused it.
        reason: String,
    },
    /// It failed permanently without a usable answer: TLS verification, proxy authentication,
    /// or retries exhausted on transient errors.
    Failed {
        /// What went wrong, naming the hop (endpoint, proxy, TLS).
        reason: String,
        /// Requests made for it.
        attempts: u32,
    },
    /// The overflow policy dropped it.
    Dropped,
    /// It was never sent: still queued (or waiting to be sent) at the shutdown deadline.
    Cancelled,
    /// It was on the wire at the shutdown deadline: it may or may not have arrived.
    Abandoned,
    /// It would have ended `Cancelled`, `Abandoned` or `Failed` (retries exhausted on a
    /// transient error) and was written to the spill file instead, to be replayed by a later
    /// start (see [`Builder::spill_dir`](crate::Builder::spill_dir)).
    Spilled,
}

impl Outcome {
    /// True for [`Outcome::Delivered`].
    pub fn is_delivered(&self) -> bool {
        matches!(self, Outcome::Delivered { .. })
    }

    pub(crate) fn kind(&self) -> Kind {
        match self {
            Outcome::Delivered { .. } => Kind::Delivered,
            Outcome::Rejected { .. } => Kind::Rejected,
            Outcome::Failed { .. } => Kind::Failed,
            Outcome::Dropped => Kind::Dropped,
            Outcome::Cancelled => Kind::Cancelled,
            Outcome::Abandoned => Kind::Abandoned,
            Outcome::Spilled => Kind::Spilled,
        }
    }

    /// Outcomes that a spill file turns into `Spilled` wherever they arise: the shutdown
    /// deadline's.
    fn spills_at_deadline(&self) -> bool {
        matches!(self, Outcome::Cancelled | Outcome::Abandoned)
    }
}

/// Lets a caller wait for one event's [`Outcome`]. From [`Client::send_tracked`](crate::Client::send_tracked).
///
/// ```no_run
/// # let guard = posthaste::builder("http://127.0.0.1:8080/ingest").start().unwrap();
/// let receipt = guard.client().send_tracked(serde_json::json!({"job": 7}))?;
/// match receipt.wait(std::time::Duration::from_secs(5)) {
///     Some(outcome) if outcome.is_delivered() => println!("arrived"),
///     Some(outcome) => eprintln!("not delivered: {outcome:?}"),
///     None => eprintln!("still pending after 5 s"),
/// }
/// # Ok::<(), posthaste::SendError>(())
/// ```
#[derive(Clone)]
pub struct Receipt {
    slot: Arc<ReceiptSlot>,
}

#[derive(Default)]
pub(crate) struct ReceiptSlot {
    outcome: Mutex<Option<Outcome>>,
    ready: Condvar,
    /// Called once, after the outcome is recorded, with whether the event is lost for this
    /// run (settled `Cancelled`/`Abandoned`, or not spilled when it should have been). Replay
    /// uses it to know when its source files can go.
    settled_hook: Option<SettledHook>,
}

/// See [`ReceiptSlot`]; the argument is "lost".
pub(crate) type SettledHook = Arc<dyn Fn(bool) + Send + Sync>;

impl ReceiptSlot {
    /// A slot nobody waits on, that calls `hook` when the event settles.
    pub(crate) fn with_hook(hook: SettledHook) -> Arc<ReceiptSlot> {
        Arc::new(ReceiptSlot { settled_hook: Some(hook), ..ReceiptSlot::default() })
    }

    fn complete(&self, outcome: &Outcome, unspilled: bool) {
        let mut slot = self.outcome.lock();
        if slot.is_some() {
            return;
        }
        *slot = Some(outcome.clone());
        self.ready.notify_all();
        drop(slot);
        if let Some(hook) = &self.settled_hook {
            hook(unspilled || outcome.spills_at_deadline());
        }
    }
}

impl Receipt {
    pub(crate) fn new() -> (Receipt, Arc<ReceiptSlot>) {
        let slot = Arc::new(ReceiptSlot::default());
        (Receipt { slot: slot.clone() }, slot)
    }

    /// The outcome if the event has settled, without waiting.
    pub fn try_outcome(&self) -> Option<Outcome> {
        self.slot.outcome.lock().clone()
    }

    /// Waits up to `timeout` for the outcome; `None` if it is still pending then.
    pub fn wait(&self, timeout: Duration) -> Option<Outcome> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.wait_deadline(deadline),
            None => self.wait_forever(),
        }
    }

    /// Waits until `deadline` for the outcome; `None` if it is still pending then.
    pub fn wait_deadline(&self, deadline: Instant) -> Option<Outcome> {
        let mut slot = self.slot.outcome.lock();
        while slot.is_none() {
            if self.slot.ready.wait_until(&mut slot, deadline).timed_out() {
                break;
            }
        }
        slot.clone()
    }

    fn wait_forever(&self) -> Option<Outcome> {
        let mut slot = self.slot.outcome.lock();
        while slot.is_none() {
            self.slot.ready.wait(&mut slot);
        }
        slot.clone()
    }
}

impl std::fmt::Debug for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receipt").field("outcome", &self.try_outcome()).finish()
    }
}

/// The user's callback, called once per event with its outcome.
pub(crate) type OnOutcome = Arc<dyn Fn(&Event, &Outcome) + Send + Sync>;

/// One queued event with its bookkeeping.
pub(crate) struct Envelope {
    pub(crate) event: Event,
    /// Its share of the queue's byte budget.
    pub(crate) size: usize,
    pub(crate) receipt: Option<Arc<ReceiptSlot>>,
}

/// Records outcomes: counters, receipts, callback; spills what must not be lost.
pub(crate) struct Ledger {
    pub(crate) counters: Counters,
    on_outcome: Option<OnOutcome>,
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

    /// Settles one event. `from` says whether a worker had taken it. The caller drops (or hands
    /// back) the envelope afterwards and never settles it again.
    pub(crate) fn settle(&self, env: &Envelope, outcome: &Outcome, from: From) {
        self.settle_all(std::slice::from_ref(env), outcome, from);
    }

    /// Settles a batch with one outcome (counted with one atomic add). With a spill file,
    /// `Cancelled` and `Abandoned` are spilled instead.
    pub(crate) fn settle_all(&self, batch: &[Envelope], outcome: &Outcome, from: From) {
        if outcome.spills_at_deadline() {
            self.settle_all_or_spill(batch, outcome, from);
        } else {
            self.record(batch, outcome, from, false);
        }
    }

    /// Settles a batch `Spilled` if a spill file is configured and takes it, else with
    /// `outcome`. For events that failed for a transient reason (or were never sent).
    pub(crate) fn settle_all_or_spill(&self, batch: &[Envelope], outcome: &Outcome, from: From) {
        let Some(spill) = &self.spill else {
            return self.record(batch, outcome, from, false);
        };
        if batch.is_empty() {
            return;
        }
        // Written and synced before anyone is told.
        let n = spill.append(batch.iter().map(|env| &env.event), None);
        let (spilled, rest) = batch.split_at(n);
        self.record(spilled, &Outcome::Spilled, from, false);
        if !rest.is_empty() {
            self.counters.spill_failed(rest.len() as u64);
            self.record(rest, outcome, from, true);
        }
    }

    fn record(&self, batch: &[Envelope], outcome: &Outcome, from: From, unspilled: bool) {
        if batch.is_empty() {
            return;
        }
        self.counters.settled(outcome.kind(), from, batch.len() as u64);
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
