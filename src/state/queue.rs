//! The bounded queue, the retry schedule it owns, and the backlog of events replayed from spill
//! files.
//!
//! Owns the event channel, the byte budget, the overflow policy and the retry schedule.
//! Scheduled retries stay inside the queue's bounds: their bytes stay charged to the byte
//! budget, and while any wait, producers see the queue's event capacity reduced by their
//! number (one relaxed load on `send` when none wait). Both bounds hold at once: a
//! crossbeam bounded channel caps the event count, an atomic counter caps the bytes. The
//! default path (`DropNewest`) takes no lock and allocates nothing.
//!
//! Closing is race-free without a lock on the hot path: a producer checks `closed` before
//! pushing and, after pushing, checks `finalized` behind a `SeqCst` fence. Shutdown sets
//! `finalized` behind the same fence before its last sweep, so an event pushed by a producer that
//! raced with shutdown is either seen by that sweep or swept by the producer itself
//! (`Cancelled`): never stranded.

use std::collections::VecDeque;
use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Select, Sender, TrySendError};
use parking_lot::{Condvar, Mutex};

use crate::state::ledger::Ledger;
use crate::state::outcome::{Envelope, Outcome};
use crate::state::schedule::{Retrying, Schedule};
use crate::state::stats::Stage;

/// What `send` does when the queue is full (by count or by bytes).
///
/// Whatever the policy, every event it drops is counted in [`Stats::dropped`](crate::Stats)
/// and settles as [`Outcome::Dropped`]. An event larger than the
/// whole byte budget can never fit and is dropped at once under every policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Overflow {
    /// Refuse the new event: `send` returns [`SendError::Full`](crate::SendError::Full) with it.
    /// Never blocks. The default.
    #[default]
    DropNewest,
    /// Evict the oldest queued events until the new one fits; `send` succeeds.
    DropOldest,
    /// Wait for room. `send` returns `Closed` if shutdown begins while it waits.
    Block,
    /// Wait for room up to the given time, then behave as `DropNewest`. Must be non-zero.
    BlockFor(Duration),
}

/// Why a push did not enqueue; the envelope comes back.
pub(crate) enum PushError {
    /// Dropped by the overflow policy (already settled as `Dropped`).
    Full(Envelope),
    /// Intake closed; not counted.
    Closed(Envelope),
}

#[repr(align(128))]
struct PaddedUsize(AtomicUsize);

pub(crate) struct Queue {
    tx: Sender<Envelope>,
    rx: Receiver<Envelope>,
    /// Closed when shutdown begins; never sent on. Lets blocked producers wake.
    shutdown_rx: Receiver<()>,
    policy: Overflow,
    capacity: usize,
    max_bytes: usize,
    schedule: Schedule,
    bytes: PaddedUsize,
    closed: AtomicBool,
    finalized: AtomicBool,
    /// Producers waiting for byte budget (only under `Block`/`BlockFor`).
    waiters: AtomicUsize,
    space_lock: Mutex<()>,
    space: Condvar,
}

impl Queue {
    pub(crate) fn new(
        capacity: usize,
        max_bytes: usize,
        policy: Overflow,
        shutdown_rx: Receiver<()>,
    ) -> Queue {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        Queue {
            tx,
            rx,
            shutdown_rx,
            policy,
            capacity,
            max_bytes,
            schedule: Schedule::default(),
            bytes: PaddedUsize(AtomicUsize::new(0)),
            closed: AtomicBool::new(false),
            finalized: AtomicBool::new(false),
            waiters: AtomicUsize::new(0),
            space_lock: Mutex::new(()),
            space: Condvar::new(),
        }
    }

    /// The receiving end, for workers.
    pub(crate) fn receiver(&self) -> &Receiver<Envelope> {
        &self.rx
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn queued_bytes(&self) -> u64 {
        self.bytes.0.load(Ordering::Relaxed) as u64
    }

    /// Enqueues under the overflow policy. Counts `submitted` for every event it does not
    /// refuse as `Closed`.
    pub(crate) fn push(&self, env: Envelope, ledger: &Ledger) -> Result<(), PushError> {
        self.push_with(env, ledger, true)
    }

    /// Like [`push`](Queue::push), but never waits: under `Block` and `BlockFor` a full queue
    /// drops the event as `DropNewest` would. `DropOldest` evicts as usual (it never waits).
    pub(crate) fn try_push(&self, env: Envelope, ledger: &Ledger) -> Result<(), PushError> {
        self.push_with(env, ledger, false)
    }

    fn push_with(&self, env: Envelope, ledger: &Ledger, may_wait: bool) -> Result<(), PushError> {
        if self.is_closed() {
            return Err(PushError::Closed(env));
        }
        if env.size > self.max_bytes {
            return Err(self.drop_new(env, ledger));
        }
        let result = match self.policy {
            Overflow::DropNewest => self.push_or_drop(env, ledger),
            Overflow::DropOldest => self.push_evicting(env, ledger),
            Overflow::Block | Overflow::BlockFor(_) if !may_wait => self.push_or_drop(env, ledger),
            Overflow::Block => self.push_blocking(env, None, ledger),
            Overflow::BlockFor(d) => self.push_blocking(env, Instant::now().checked_add(d), ledger),
        };
        if result.is_ok() {
            // Pairs with the fence in `finalize`: see the module docs.
            fence(Ordering::SeqCst);
            if self.finalized.load(Ordering::Relaxed) {
                self.cancel_remaining(ledger);
            }
        }
        result
    }

    fn drop_new(&self, env: Envelope, ledger: &Ledger) -> PushError {
        ledger.counters.submitted();
        ledger.settle(&env, &Outcome::Dropped, Stage::Queued);
        PushError::Full(env)
    }

    fn push_or_drop(&self, env: Envelope, ledger: &Ledger) -> Result<(), PushError> {
        if !self.try_reserve(env.size) {
            return Err(self.drop_new(env, ledger));
        }
        ledger.counters.submitted();
        match self.tx.try_send(env) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(env)) | Err(TrySendError::Disconnected(env)) => {
                self.release(env.size);
                ledger.settle(&env, &Outcome::Dropped, Stage::Queued);
                Err(PushError::Full(env))
            }
        }
    }

    fn push_evicting(&self, mut env: Envelope, ledger: &Ledger) -> Result<(), PushError> {
        // Each round evicts one event; bounded so a pathological race can't spin forever.
        for _ in 0..64 {
            if !self.try_reserve(env.size) {
                if !self.evict_one(ledger) {
                    break;
                }
                continue;
            }
            ledger.counters.submitted();
            match self.tx.try_send(env) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(back)) | Err(TrySendError::Disconnected(back)) => {
                    // Undo the count: this event is not in the queue, and no effect of it can
                    // have been counted yet (see stats.rs on ordering).
                    ledger.counters.unsubmitted();
                    self.release(back.size);
                    env = back;
                    self.evict_one(ledger);
                }
            }
        }
        Err(self.drop_new(env, ledger))
    }

    fn evict_one(&self, ledger: &Ledger) -> bool {
        match self.rx.try_recv() {
            Ok(old) => {
                self.release(old.size);
                ledger.settle(&old, &Outcome::Dropped, Stage::Queued);
                true
            }
            Err(_) => false,
        }
    }

    fn push_blocking(
        &self,
        env: Envelope,
        deadline: Option<Instant>,
        ledger: &Ledger,
    ) -> Result<(), PushError> {
        if !self.try_reserve(env.size) && !self.wait_for_bytes(env.size, deadline) {
            return Err(if self.is_closed() { PushError::Closed(env) } else { self.drop_new(env, ledger) });
        }
        let mut sel = Select::new();
        let send_index = sel.send(&self.tx);
        let shut_index = sel.recv(&self.shutdown_rx);
        let oper = match deadline {
            None => sel.select(),
            Some(at) => match sel.select_deadline(at) {
                Ok(oper) => oper,
                Err(_) => {
                    self.release(env.size);
                    return Err(self.drop_new(env, ledger));
                }
            },
        };
        if oper.index() == send_index {
            ledger.counters.submitted();
            match oper.send(&self.tx, env) {
                Ok(()) => Ok(()),
                // Unreachable while the queue owns a receiver, but handled, not assumed.
                Err(e) => {
                    let env = e.into_inner();
                    self.release(env.size);
                    ledger.settle(&env, &Outcome::Dropped, Stage::Queued);
                    Err(PushError::Full(env))
                }
            }
        } else {
            debug_assert_eq!(oper.index(), shut_index);
            let _ = oper.recv(&self.shutdown_rx);
            self.release(env.size);
            Err(PushError::Closed(env))
        }
    }

    /// Waits until `size` bytes fit, shutdown begins, or `deadline`. True if reserved.
    fn wait_for_bytes(&self, size: usize, deadline: Option<Instant>) -> bool {
        // SeqCst pairs with `release`: either the releaser sees us waiting and notifies under
        // the lock, or we see the freed bytes on our next check.
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let mut guard = self.space_lock.lock();
        let reserved = loop {
            if self.try_reserve(size) {
                break true;
            }
            if self.is_closed() {
                break false;
            }
            match deadline {
                Some(at) if Instant::now() >= at => break false,
                Some(at) => {
                    self.space.wait_until(&mut guard, at);
                }
                None => self.space.wait(&mut guard),
            }
        };
        drop(guard);
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        reserved
    }

    fn try_reserve(&self, size: usize) -> bool {
        // Waiting retries count toward the event capacity.
        let scheduled = self.schedule.events();
        if scheduled > 0 && self.tx.len() + scheduled >= self.capacity {
            return false;
        }
        let mut used = self.bytes.0.load(Ordering::Relaxed);
        loop {
            let Some(next) = used.checked_add(size).filter(|n| *n <= self.max_bytes) else {
                return false;
            };
            match self.bytes.0.compare_exchange_weak(used, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(now) => used = now,
            }
        }
    }

    /// Returns `size` bytes to the budget (an event left the queue).
    pub(crate) fn release(&self, size: usize) {
        self.bytes.0.fetch_sub(size, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let _guard = self.space_lock.lock();
            self.space.notify_all();
        }
    }

    /// Puts a batch on the retry schedule for `due`, its bytes charged to the budget again
    /// (they may pass it for a moment: producers then wait or drop until they fit). Gives the
    /// batch back if the schedule was closed by the shutdown deadline.
    pub(crate) fn schedule(&self, due: Instant, retrying: Retrying) -> Result<(), Retrying> {
        let bytes = retrying.bytes();
        self.bytes.0.fetch_add(bytes, Ordering::SeqCst);
        self.schedule.push(due, retrying).inspect_err(|_| self.release(bytes))
    }

    /// The earliest scheduled retry that is due at `now` (with `any`, the earliest whatever
    /// its due time), its bytes released.
    pub(crate) fn take_due(&self, now: Instant, any: bool) -> Option<Retrying> {
        let retrying = self.schedule.pop_due(now, any)?;
        self.release(retrying.bytes());
        Some(retrying)
    }

    /// When the earliest scheduled retry is due, if any.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.schedule.next_due()
    }

    /// Events waiting on the retry schedule.
    pub(crate) fn scheduled(&self) -> u64 {
        self.schedule.events() as u64
    }

    /// At the shutdown deadline: closes the schedule and cancels what waits on it (spilled,
    /// with a spill file). These events had been taken and attempted: settled from flight.
    pub(crate) fn cancel_scheduled(&self, ledger: &Ledger) {
        let all = self.schedule.close();
        let batch: Vec<Envelope> = all
            .into_iter()
            .flat_map(|r| {
                self.release(r.bytes());
                r.batch
            })
            .collect();
        ledger.settle_all(&batch, &Outcome::Cancelled, Stage::InFlight);
    }

    /// Closes intake: `send` returns `Closed` from now on, and blocked producers wake.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let _guard = self.space_lock.lock();
        self.space.notify_all();
    }

    /// The last sweep: everything still queued is `Cancelled`, now and for any producer that
    /// raced with shutdown.
    pub(crate) fn finalize(&self, ledger: &Ledger) {
        self.finalized.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        self.cancel_remaining(ledger);
    }

    pub(crate) fn cancel_remaining(&self, ledger: &Ledger) {
        // Settled as one batch, so that a spill file takes them in one write and one sync.
        let mut rest = Vec::new();
        while let Ok(env) = self.rx.try_recv() {
            self.release(env.size);
            rest.push(env);
        }
        ledger.settle_all(&rest, &Outcome::Cancelled, Stage::Queued);
    }
}

/// Events replayed from spill files, taken by workers before the queue. Filled once before the
/// workers start; never grows after.
#[derive(Default)]
pub(crate) struct Backlog {
    items: Mutex<VecDeque<Envelope>>,
    /// Lets workers skip the lock once the backlog is empty.
    left: AtomicUsize,
}

impl Backlog {
    pub(crate) fn fill(&self, items: VecDeque<Envelope>) {
        self.left.store(items.len(), Ordering::Release);
        *self.items.lock() = items;
    }

    /// The next replayed event, if any.
    pub(crate) fn pop(&self) -> Option<Envelope> {
        if self.left.load(Ordering::Acquire) == 0 {
            return None;
        }
        let env = self.items.lock().pop_front();
        if env.is_some() {
            self.left.fetch_sub(1, Ordering::AcqRel);
        }
        env
    }

    /// At the shutdown deadline: what was never taken is cancelled (spilled again).
    pub(crate) fn sweep(&self, ledger: &Ledger) {
        let rest: Vec<Envelope> = self.items.lock().drain(..).collect();
        self.left.store(0, Ordering::Release);
        ledger.settle_all(&rest, &Outcome::Cancelled, Stage::Queued);
    }
}
