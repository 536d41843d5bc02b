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

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};
use parking_lot::{Condvar, Mutex};

use crate::event::Event;
use crate::state::ledger::Ledger;
use crate::state::outcome::{Envelope, Outcome};
use crate::state::schedule::{Retrying, Schedule};
use crate::state::stats::Stage;

/// What `send` does when the queue is full (by count or by bytes).
///
/// Whatever the policy, every event it drops is counted in [`Stats::dropped`](crate::Stats)
/// and settles as [`Outcome::Dropped`]. An event charged more than the whole byte budget can
/// never fit and is dropped at once under every policy (a pre-encoded event is charged its
/// length; a `serde_json::Value` the mean size of recent ones, see
/// [`Builder::queue_bytes`](crate::Builder::queue_bytes)).
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

/// Which lane an event takes, set with [`Client::send_with`](crate::Client::send_with).
///
/// High-priority events have a lane of their own with its own capacity
/// ([`Builder::priority_capacity`](crate::Builder::priority_capacity)); workers take them
/// before normal ones. They share the byte budget: a high-priority event that does not fit
/// evicts the oldest normal events first (each counted `Dropped`), so under overflow normal
/// events are dropped before high ones. When the high lane itself is full, the overflow policy
/// applies to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Priority {
    /// The ordinary lane, used by [`Client::send`](crate::Client::send). The default.
    #[default]
    Normal,
    /// Taken first, with its own capacity; for crash reports, errors and alerts.
    High,
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

/// What a `serde_json::Value` event is charged before any has been measured, in bytes.
pub(crate) const FIRST_VALUE_CHARGE: usize = 256;

pub(crate) struct Queue {
    tx: Sender<Envelope>,
    rx: Receiver<Envelope>,
    /// The high-priority lane (see [`Priority`]).
    hi_tx: Sender<Envelope>,
    hi_rx: Receiver<Envelope>,
    hi_capacity: usize,
    policy: Overflow,
    capacity: usize,
    max_bytes: usize,
    schedule: Schedule,
    bytes: PaddedUsize,
    /// What `send` charges a `serde_json::Value` event: the mean compact JSON length of the
    /// Value events the workers measured lately (see [`Queue::charge`]).
    value_charge: PaddedUsize,
    closed: AtomicBool,
    finalized: AtomicBool,
    /// Producers waiting for room in the normal lane (only under `Block`/`BlockFor`).
    waiters: AtomicUsize,
    /// Producers waiting for room in the high-priority lane.
    high_waiters: AtomicUsize,
    /// How many times `release` woke waiting producers (tests).
    #[cfg(test)]
    wakeups: AtomicUsize,
    space_lock: Mutex<()>,
    space: Condvar,
}

impl Queue {
    pub(crate) fn new(capacity: usize, hi_capacity: usize, max_bytes: usize, policy: Overflow) -> Queue {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        let (hi_tx, hi_rx) = crossbeam_channel::bounded(hi_capacity);
        Queue {
            tx,
            rx,
            hi_tx,
            hi_rx,
            hi_capacity,
            policy,
            capacity,
            max_bytes,
            schedule: Schedule::default(),
            bytes: PaddedUsize(AtomicUsize::new(0)),
            value_charge: PaddedUsize(AtomicUsize::new(FIRST_VALUE_CHARGE)),
            closed: AtomicBool::new(false),
            finalized: AtomicBool::new(false),
            waiters: AtomicUsize::new(0),
            high_waiters: AtomicUsize::new(0),
            #[cfg(test)]
            wakeups: AtomicUsize::new(0),
            space_lock: Mutex::new(()),
            space: Condvar::new(),
        }
    }

    /// An event's share of the byte budget: the exact length of pre-encoded bytes; for a
    /// `serde_json::Value`, the mean length of the Value events measured lately, so that `send`
    /// never walks the value (on a value cold in cache that walk cost more than the rest of
    /// `send` together). One relaxed load.
    pub(crate) fn charge(&self, event: &Event) -> usize {
        match event.as_json_bytes() {
            Some(bytes) => bytes.len(),
            None => self.value_charge.0.load(Ordering::Relaxed),
        }
    }

    /// Folds the mean compact JSON length of some Value events a worker just measured into
    /// what `send` charges the next ones (a moving average: each measurement counts for a
    /// quarter, so the charge follows a change of event shape within a few batches).
    pub(crate) fn learn_value_size(&self, mean: usize) {
        let old = self.value_charge.0.load(Ordering::Relaxed);
        let new = (old.saturating_mul(3).saturating_add(mean) / 4).max(1);
        if new != old {
            self.value_charge.0.store(new, Ordering::Relaxed);
        }
    }

    /// The receiving end of the normal lane, for workers to wait on.
    pub(crate) fn receiver(&self) -> &Receiver<Envelope> {
        &self.rx
    }

    /// The receiving end of the high-priority lane, for workers to wait on.
    pub(crate) fn high_receiver(&self) -> &Receiver<Envelope> {
        &self.hi_rx
    }

    /// The next queued event, high-priority lane first. The caller accounts for taking it
    /// (`release`, `started`).
    pub(crate) fn try_recv(&self) -> Result<Envelope, TryRecvError> {
        match self.hi_rx.try_recv() {
            Ok(env) => Ok(env),
            Err(_) => self.rx.try_recv(),
        }
    }

    /// Enqueues on the high-priority lane: see [`Priority`]. Counts `submitted` for every
    /// event it does not refuse as `Closed`.
    pub(crate) fn push_high(&self, env: Envelope, ledger: &Ledger) -> Result<(), PushError> {
        self.push_high_with(env, ledger, true)
    }

    /// Like `push_high`, never waiting: under `Block`/`BlockFor` a full high lane drops the
    /// event (counted), for callers that must not wait (the logging front ends).
    pub(crate) fn try_push_high(&self, env: Envelope, ledger: &Ledger) -> Result<(), PushError> {
        self.push_high_with(env, ledger, false)
    }

    fn push_high_with(&self, mut env: Envelope, ledger: &Ledger, may_wait: bool) -> Result<(), PushError> {
        if self.is_closed() {
            return Err(PushError::Closed(env));
        }
        if env.size > self.max_bytes {
            return Err(self.drop_new(env, ledger));
        }
        let deadline = match self.policy {
            Overflow::BlockFor(d) => Instant::now().checked_add(d),
            _ => None,
        };
        let result = loop {
            // Make room by bytes by dropping normal events, oldest first (bounded: at most as
            // many as the normal lane holds); only when the high lane itself has room, so that
            // no normal event is dropped for a high one that is dropped anyway.
            let mut reserved = self.hi_has_room() && self.try_reserve_bytes(env.size);
            while !reserved && self.hi_has_room() && self.evict_one(&self.rx, ledger) {
                reserved = self.try_reserve_bytes(env.size);
            }
            if reserved {
                match self.enqueue(&self.hi_tx, env, ledger) {
                    Ok(()) => break Ok(()),
                    Err(back) => env = back,
                }
            }
            // The high lane (or the budget, with no normal event left) is full.
            match self.policy {
                Overflow::DropNewest => break Err(self.drop_new(env, ledger)),
                Overflow::DropOldest => {
                    if !self.evict_one(&self.hi_rx, ledger) {
                        break Err(self.drop_new(env, ledger));
                    }
                }
                Overflow::Block | Overflow::BlockFor(_) if !may_wait => break Err(self.drop_new(env, ledger)),
                Overflow::Block | Overflow::BlockFor(_) => {
                    if self.is_closed() {
                        break Err(PushError::Closed(env));
                    }
                    if !self.wait_for_room(env.size, deadline, true) {
                        break Err(if self.is_closed() {
                            PushError::Closed(env)
                        } else {
                            self.drop_new(env, ledger)
                        });
                    }
                }
            }
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
                if !self.evict_one(&self.rx, ledger) {
                    break;
                }
                continue;
            }
            match self.enqueue(&self.tx, env, ledger) {
                Ok(()) => return Ok(()),
                Err(back) => {
                    env = back;
                    self.evict_one(&self.rx, ledger);
                }
            }
        }
        Err(self.drop_new(env, ledger))
    }

    /// Sends `env`, whose bytes are reserved, into `lane`, counting it `submitted` first (so
    /// it is counted before it can be seen in the channel; see stats.rs on ordering). If the
    /// lane is full, the count and the reservation are undone and the envelope comes back.
    fn enqueue(&self, lane: &Sender<Envelope>, env: Envelope, ledger: &Ledger) -> Result<(), Envelope> {
        ledger.counters.submitted();
        match lane.try_send(env) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(back)) | Err(TrySendError::Disconnected(back)) => {
                // No effect of this event can have been counted yet.
                ledger.counters.unsubmitted();
                self.release(back.size);
                Err(back)
            }
        }
    }

    /// Drops the oldest event of a lane (counted); false if the lane is empty.
    fn evict_one(&self, lane: &Receiver<Envelope>, ledger: &Ledger) -> bool {
        match lane.try_recv() {
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
        mut env: Envelope,
        deadline: Option<Instant>,
        ledger: &Ledger,
    ) -> Result<(), PushError> {
        loop {
            if self.try_reserve(env.size) {
                match self.enqueue(&self.tx, env, ledger) {
                    Ok(()) => return Ok(()),
                    Err(back) => env = back,
                }
            }
            if self.is_closed() {
                return Err(PushError::Closed(env));
            }
            if !self.wait_for_room(env.size, deadline, false) {
                return Err(if self.is_closed() {
                    PushError::Closed(env)
                } else {
                    self.drop_new(env, ledger)
                });
            }
        }
    }

    /// The queue length at or under which a producer waiting for room is woken: a quarter of
    /// the capacity below full. Waking a waiting producer for every event taken would make it
    /// and the workers trade the CPU once per event; waking it when a quarter has drained lets
    /// it refill that quarter in one go.
    fn low_water(&self) -> usize {
        self.capacity - self.capacity / 4
    }

    /// Waits until an event of `size` bytes may fit (its lane has room: for the normal lane,
    /// it has drained to its low-water mark; and the bytes fit), intake closes, or `deadline`.
    /// True if it is worth trying again.
    fn wait_for_room(&self, size: usize, deadline: Option<Instant>, high: bool) -> bool {
        // SeqCst pairs with `release`: either the releaser sees us waiting and notifies under
        // the lock, or we see the room it made on our next check.
        let waiters = if high { &self.high_waiters } else { &self.waiters };
        waiters.fetch_add(1, Ordering::SeqCst);
        let mut guard = self.space_lock.lock();
        let room = loop {
            let bytes = self.bytes.0.load(Ordering::SeqCst);
            let lane_room = if high { self.hi_has_room() } else { self.normal_below_low_water() };
            if lane_room && bytes.saturating_add(size) <= self.max_bytes {
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
        waiters.fetch_sub(1, Ordering::SeqCst);
        room
    }

    /// The normal lane (with the retries waiting, which count toward it) has drained to its
    /// low-water mark.
    fn normal_below_low_water(&self) -> bool {
        self.tx.len() + self.schedule.events() <= self.low_water().min(self.capacity - 1)
    }

    fn hi_has_room(&self) -> bool {
        self.hi_tx.len() < self.hi_capacity
    }

    /// Reserves `size` bytes of the budget (the event count is the lane's business).
    fn try_reserve_bytes(&self, size: usize) -> bool {
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

    fn try_reserve(&self, size: usize) -> bool {
        // Waiting retries count toward the event capacity.
        let scheduled = self.schedule.events();
        if scheduled > 0 && self.tx.len() + scheduled >= self.capacity {
            return false;
        }
        self.try_reserve_bytes(size)
    }

    /// Returns `size` bytes to the budget (an event left the queue). Wakes waiting producers
    /// once the queue has drained to its low-water mark.
    pub(crate) fn release(&self, size: usize) {
        self.bytes.0.fetch_sub(size, Ordering::SeqCst);
        // Only a waiter that can go on is woken: a producer of normal events once the lane has
        // drained to its low-water mark, one of high-priority events once its lane has room.
        // (Waking every waiter whenever the high lane had room, which is nearly always, woke
        // a producer blocked on the normal lane for every event taken.)
        let normal = self.waiters.load(Ordering::SeqCst) > 0 && self.normal_below_low_water();
        let high = self.high_waiters.load(Ordering::SeqCst) > 0 && self.hi_has_room();
        if normal || high {
            #[cfg(test)]
            self.wakeups.fetch_add(1, Ordering::SeqCst);
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
        while let Ok(env) = self.try_recv() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    fn env(i: u64) -> Envelope {
        Envelope::new(Event::from(serde_json::json!(i)), 10, None)
    }

    #[test]
    fn values_are_charged_the_learned_mean_and_bytes_exactly() {
        let q = Queue::new(10, 10, 1 << 20, Overflow::DropNewest);
        let bytes = Event::from_json_bytes(br#"{"a":1}"#.to_vec()).unwrap();
        let value = Event::from(serde_json::json!({"a": "x".repeat(1000)}));
        assert_eq!(q.charge(&bytes), 7);
        assert_eq!(q.charge(&value), FIRST_VALUE_CHARGE, "nothing measured yet");
        // Each measurement moves the charge a quarter of the way.
        q.learn_value_size(1256);
        assert_eq!(q.charge(&value), 256 + 250);
        for _ in 0..40 {
            q.learn_value_size(1000);
        }
        assert!((990..=1000).contains(&q.charge(&value)), "{}", q.charge(&value));
        assert_eq!(q.charge(&bytes), 7, "pre-encoded events stay exact");
        q.learn_value_size(0);
        assert!(q.charge(&value) >= 1);
    }

    /// What a worker does with an event it takes.
    fn take(q: &Queue) -> Envelope {
        let env = q.receiver().try_recv().expect("queued");
        q.release(env.size);
        env
    }

    #[test]
    fn low_water_is_a_quarter_below_full() {
        for (capacity, low) in [(1, 1), (2, 2), (4, 3), (8, 6), (10_000, 7_500)] {
            assert_eq!(Queue::new(capacity, 4, 1 << 20, Overflow::Block).low_water(), low, "{capacity}");
        }
    }

    #[test]
    fn a_blocked_producer_refills_once_the_queue_has_drained_to_low_water() {
        let q = std::sync::Arc::new(Queue::new(8, 4, 1 << 20, Overflow::Block));
        let ledger = std::sync::Arc::new(Ledger::new(None, None));
        for i in 0..8 {
            assert!(q.push(env(i), &ledger).is_ok());
        }
        let producer = {
            let (q, ledger) = (q.clone(), ledger.clone());
            std::thread::spawn(move || q.push(env(8), &ledger).is_ok())
        };
        // Once it waits, one taken (7 left) must not wake it: the high lane having room is no
        // reason to wake a producer of normal events.
        let began = Instant::now();
        while q.waiters.load(Ordering::SeqCst) == 0 {
            assert!(began.elapsed() < Duration::from_secs(10), "the producer never waited");
            std::thread::yield_now();
        }
        take(&q);
        assert_eq!(q.wakeups.load(Ordering::SeqCst), 0, "woken above the low-water mark");
        // Two taken: 6 left, the low-water mark. The producer must get in now.
        take(&q);
        assert_eq!(q.wakeups.load(Ordering::SeqCst), 1);
        assert!(producer.join().unwrap(), "pushed once drained");
        let s = ledger.counters.snapshot(q.queued_bytes());
        assert_eq!((s.submitted, s.dropped), (9, 0));
        assert_eq!(q.receiver().len(), 7);
    }

    #[test]
    fn block_for_gives_up_at_its_deadline_and_counts_a_drop() {
        let q = Queue::new(1, 4, 1 << 20, Overflow::BlockFor(Duration::from_millis(1)));
        let ledger = Ledger::new(None, None);
        assert!(q.push(env(0), &ledger).is_ok());
        assert!(matches!(q.push(env(1), &ledger), Err(PushError::Full(_))));
        let s = ledger.counters.snapshot(q.queued_bytes());
        assert_eq!((s.submitted, s.dropped, s.queued), (2, 1, 1));
    }

    #[test]
    fn closing_wakes_a_blocked_producer() {
        let q = std::sync::Arc::new(Queue::new(1, 4, 1 << 20, Overflow::Block));
        let ledger = std::sync::Arc::new(Ledger::new(None, None));
        assert!(q.push(env(0), &ledger).is_ok());
        let producer = {
            let (q, ledger) = (q.clone(), ledger.clone());
            std::thread::spawn(move || matches!(q.push(env(1), &ledger), Err(PushError::Closed(_))))
        };
        q.close();
        assert!(producer.join().unwrap());
    }
}
