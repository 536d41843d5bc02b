//! [`Outcome`], [`Receipt`], and the [`Envelope`] an event travels in from `send` to its
//! outcome. The ledger (`ledger.rs`) records outcomes; this file only holds the types.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::event::Event;
use crate::policy::encode::Item;
use crate::state::stats::Kind;

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
    /// It was never sent: still queued (or waiting to be sent) at the shutdown deadline, or a
    /// copy of a `fail_fast` [`Broadcast`](crate::Broadcast) not yet sent when another copy
    /// failed.
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
    pub(crate) fn spills_at_deadline(&self) -> bool {
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
    /// A `fail_fast` broadcast's flag, shared by its copies: set when one fails permanently;
    /// copies not yet sent are then cancelled.
    fail_fast: Option<Arc<AtomicBool>>,
}

/// See [`ReceiptSlot`]; the argument is "lost".
pub(crate) type SettledHook = Arc<dyn Fn(bool) + Send + Sync>;

impl ReceiptSlot {
    /// A slot nobody waits on, that calls `hook` when the event settles.
    pub(crate) fn with_hook(hook: SettledHook) -> Arc<ReceiptSlot> {
        Arc::new(ReceiptSlot { settled_hook: Some(hook), ..ReceiptSlot::default() })
    }

    pub(crate) fn complete(&self, outcome: &Outcome, unspilled: bool) {
        let mut slot = self.outcome.lock();
        if slot.is_some() {
            return;
        }
        // The broadcast's flag is set before anyone can see this outcome: whoever waits for
        // the failure may rely on the copies not yet sent being cancelled.
        if let Some(flag) = &self.fail_fast {
            if matches!(outcome, Outcome::Failed { .. } | Outcome::Rejected { .. } | Outcome::Dropped) {
                flag.store(true, Ordering::Release);
            }
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

    /// A receipt for one copy of a `fail_fast` broadcast sharing `flag`.
    pub(crate) fn fail_fast(flag: Arc<AtomicBool>) -> (Receipt, Arc<ReceiptSlot>) {
        let slot = Arc::new(ReceiptSlot { fail_fast: Some(flag), ..ReceiptSlot::default() });
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
    /// When `send` accepted it, for one event in `metrics::WAIT_SAMPLE` (wait-time figures).
    pub(crate) accepted: Option<Instant>,
}

impl Envelope {
    pub(crate) fn new(event: Event, size: usize, receipt: Option<Arc<ReceiptSlot>>) -> Envelope {
        Envelope { event, size, receipt, accepted: None }
    }

    /// Like `new`, with an acceptance time for one event in `WAIT_SAMPLE` per thread.
    pub(crate) fn sampled(event: Event, size: usize, receipt: Option<Arc<ReceiptSlot>>) -> Envelope {
        thread_local! {
            static SEEN: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
        }
        let take = SEEN.with(|seen| {
            let n = seen.get().wrapping_add(1);
            seen.set(n);
            n % crate::state::metrics::WAIT_SAMPLE == 1
        });
        Envelope { event, size, receipt, accepted: take.then(Instant::now) }
    }
}

impl Envelope {
    /// True for a copy of a `fail_fast` broadcast whose other copy failed: not to be sent.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.receipt
            .as_ref()
            .and_then(|r| r.fail_fast.as_ref())
            .is_some_and(|flag| flag.load(Ordering::Acquire))
    }
}

impl Item for Envelope {
    fn event(&self) -> &Event {
        &self.event
    }

    fn size(&self) -> usize {
        self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_permanent_failure_raises_the_broadcast_flag_before_it_is_seen() {
        let flag = Arc::new(AtomicBool::new(false));
        let (receipt, slot) = Receipt::fail_fast(flag.clone());
        let (_, other) = Receipt::fail_fast(flag.clone());
        let env = Envelope::new(Event::from(serde_json::json!(1)), 1, Some(other));
        slot.complete(&Outcome::Delivered { status: 200, attempts: 1 }, false);
        assert!(!flag.load(Ordering::Acquire) && !env.is_cancelled());
        let (receipt2, slot2) = Receipt::fail_fast(flag.clone());
        slot2.complete(&Outcome::Rejected { status: 400, attempts: 1, reason: String::new() }, false);
        // Whoever sees the failure sees the flag.
        assert!(receipt2.try_outcome().is_some() && env.is_cancelled());
        assert!(receipt.try_outcome().unwrap().is_delivered());
    }
}
