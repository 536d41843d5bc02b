//! [`Outcome`], [`Receipt`], and the ledger that settles every event exactly once.
//!
//! `Ledger::settle` is the single place where an event's fate is recorded: counters, receipt and
//! the user's `on_outcome` callback. Callers guarantee each envelope reaches it once (envelopes
//! are moved, never cloned).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::event::Event;
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
        }
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
}

impl ReceiptSlot {
    fn complete(&self, outcome: &Outcome) {
        let mut slot = self.outcome.lock();
        if slot.is_none() {
            *slot = Some(outcome.clone());
            self.ready.notify_all();
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

/// Records outcomes: counters, receipts, callback.
pub(crate) struct Ledger {
    pub(crate) counters: Counters,
    on_outcome: Option<OnOutcome>,
    /// Threads in `wait_idle`; settling only takes the lock to wake them when there are any.
    idle_waiters: AtomicUsize,
    idle_lock: Mutex<()>,
    idle: Condvar,
}

impl Ledger {
    pub(crate) fn new(on_outcome: Option<OnOutcome>) -> Ledger {
        Ledger {
            counters: Counters::default(),
            on_outcome,
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

    fn wake_idle(&self) {
        if self.idle_waiters.load(Ordering::SeqCst) > 0 {
            let _guard = self.idle_lock.lock();
            self.idle.notify_all();
        }
    }

    /// Settles one event. `from` says whether a worker had taken it. The caller drops (or hands
    /// back) the envelope afterwards and never settles it again.
    pub(crate) fn settle(&self, env: &Envelope, outcome: &Outcome, from: From) {
        self.counters.settled(outcome.kind(), from, 1);
        self.notify(env, outcome);
        self.wake_idle();
    }

    /// Settles a batch with one outcome (counted with one atomic add).
    pub(crate) fn settle_all(&self, batch: &[Envelope], outcome: &Outcome, from: From) {
        if batch.is_empty() {
            return;
        }
        self.counters.settled(outcome.kind(), from, batch.len() as u64);
        for env in batch {
            self.notify(env, outcome);
        }
        self.wake_idle();
    }

    fn notify(&self, env: &Envelope, outcome: &Outcome) {
        if let Some(slot) = &env.receipt {
            slot.complete(outcome);
        }
        if let Some(cb) = &self.on_outcome {
            // A panicking callback must not take a worker (or a producer) down with it; the
            // event is already counted, so the panic is contained and ignored.
            let _ = catch_unwind(AssertUnwindSafe(|| cb(&env.event, outcome)));
        }
    }
}
