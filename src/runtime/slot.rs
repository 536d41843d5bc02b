//! [`Slot`]: a worker's in-flight events, the one place that decides who settles them.

use std::mem;

use parking_lot::Mutex;

use crate::state::ledger::Ledger;
use crate::state::outcome::{Envelope, Outcome};
use crate::state::stats::Stage;

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

    /// Puts `batch` in front of what the slot holds (a retry taken while an event carried
    /// over from the last batch waits behind it); gives it back if the slot was closed.
    pub(crate) fn push_front(&self, mut batch: Vec<Envelope>) -> Result<(), Vec<Envelope>> {
        let mut s = self.state.lock();
        if s.closed {
            return Err(batch);
        }
        s.wire = 0;
        batch.append(&mut s.batch);
        s.batch = batch;
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
    ledger.settle_all(&batch, &Outcome::Abandoned, Stage::InFlight);
    ledger.settle_all(&unsent, &Outcome::Cancelled, Stage::InFlight);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::state::outcome::Envelope;

    fn envs(n: usize) -> Vec<Envelope> {
        (0..n)
            .map(|i| {
                let event = Event::from(serde_json::json!(i));
                let size = event.approx_bytes();
                Envelope::new(event, size, None)
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
