//! The worker loop: take work, gather a batch, send it, judge the answer, settle it or put it
//! on the retry schedule.
//!
//! Each worker is a named OS thread with its own keep-alive connection (one connection pool
//! per worker). The loop is a small state machine over one batch:
//! `Take` (a due retry first, then the next queued event; only while the gate is open: a
//! `Retry-After` pause, an open circuit or another worker's probe leaves work where it is) →
//! `Gather` (batching only: more events up to the limits or the linger time) → `Encode` →
//! `Gate` (the shared pause, the circuit, and for a retry the retry budget) → `Send` →
//! `Judge` → settled, or **scheduled**: a transient failure puts the batch on the queue's
//! retry schedule, due after its backoff, and the worker takes the next work. A worker never
//! sleeps holding an event: a closed gate or a spent retry budget also reschedules the batch.
//! A `413` to a batch (or a batch whose body passes `max_bytes`) goes back to `Encode` in two
//! halves. Every wait is on the shutdown channel with a deadline, so shutdown wakes it at
//! once; no `thread::sleep` anywhere. During shutdown, waiting retries are taken at once and
//! sent without further retries. A panic in a round (user code: custom encoders) is caught
//! and counted, its batch settles `Failed`, and the worker keeps serving. The rules (limits,
//! encodings, gzip, backoff, breaker) are pure functions in `policy/`; the answer → outcome
//! rule is `judge.rs`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender, TryRecvError};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::judge::{judge, Next};
use super::nice;
use super::shared::Shared;
use super::slot::{settle_at_deadline, Slot};
use crate::policy::encode::{self, Codec, Signer};
use crate::policy::gate::{Admit, Circuit};
use crate::state::lifecycle::LifecycleEvent;
use crate::state::outcome::{Envelope, Outcome};
use crate::state::schedule::Retrying;
use crate::state::stats::Stage;
use crate::util::{mark_own_thread, panic_text, uuid_v4};

/// Starts worker `index`. `done` is dropped when the thread ends (even by panic), which is how
/// the shutdown path learns that every worker has finished.
pub(crate) fn spawn(shared: &Arc<Shared>, index: usize, done: Sender<()>) -> std::io::Result<JoinHandle<()>> {
    let shared = shared.clone();
    thread::Builder::new().name(format!("posthaste-worker-{index}")).spawn(move || {
        // The logging front ends drop records from this thread (ureq's and rustls' included).
        mark_own_thread();
        let _done = done;
        let nice = shared.options.worker_nice;
        if nice > 0 {
            // Best effort: raising one's own nice value is always allowed on Linux; delivery
            // works the same if a sandbox refuses it.
            let _ = nice::lower_current_thread(nice);
        }
        let codec = Codec::new(&shared.options.encode);
        let signer = Signer::new(&shared.options.encode.signing);
        let rng = SmallRng::from_os_rng();
        Worker {
            shared,
            index,
            rng,
            codec,
            signer,
            body: Vec::new(),
            zipped: Vec::new(),
            carried: 0,
            sampled: Vec::new(),
        }
        .run();
    })
}

struct Worker {
    shared: Arc<Shared>,
    index: usize,
    /// Jitter source for backoff, and idempotency keys.
    rng: SmallRng,
    codec: Codec,
    /// Standard Webhooks signing, if the endpoint has secrets.
    signer: Option<Signer>,
    /// Request bodies, reused from one request to the next.
    body: Vec<u8>,
    zipped: Vec<u8>,
    /// Events at the back of the slot kept for the next batch (they did not fit this one).
    carried: usize,
    /// Acceptance times of the sampled events of the request being made (for `Metrics`).
    sampled: Vec<Instant>,
}

/// How the work on one chunk of the batch ended.
enum Sent {
    Settled,
    Split,
    /// Shutdown took the slot at the deadline.
    Gone,
}

/// What the attempts so far decided for a batch (kept on the schedule between attempts).
struct Tries {
    attempts: u32,
    began: Option<Instant>,
    key: Option<String>,
    last_failure: String,
}

impl Tries {
    fn fresh() -> Tries {
        Tries { attempts: 0, began: None, key: None, last_failure: String::new() }
    }
}

/// What the worker takes next.
enum Work {
    Fresh(Envelope),
    Retry(Retrying),
}

impl Worker {
    fn slot(&self) -> &Slot {
        &self.shared.slots[self.index]
    }

    fn run(&mut self) {
        loop {
            // Supervision: a panic in a round (user callbacks are caught separately) settles
            // the batch as failed, is counted, and the worker keeps serving.
            match catch_unwind(AssertUnwindSafe(|| self.round())) {
                Ok(true) => {}
                Ok(false) => return,
                Err(panic) => {
                    self.shared.ledger.counters.panicked();
                    let reason = format!("posthaste worker panicked: {}", panic_text(&*panic));
                    // The event carried over for the next batch was not part of this one.
                    let unsettled = self.slot().len().saturating_sub(self.carried);
                    if let Some(batch) = self.slot().take_front(unsettled) {
                        self.shared.ledger.settle_all(
                            &batch,
                            &Outcome::Failed { reason, attempts: 0 },
                            Stage::InFlight,
                        );
                    }
                }
            }
        }
    }

    /// Takes, gathers and delivers one batch, or sends one due retry. False means stop.
    fn round(&mut self) -> bool {
        // Events carried over from the last gather (already in the slot) start the next batch.
        let held = self.slot().len();
        self.carried = held;
        // State: Take, only while the gate is open (a carried event goes on: if the gate is
        // closed the delivery reschedules it, so the wait holds nothing).
        if held == 0 && !self.wait_while_closed() {
            return false;
        }
        // Due retries go first, even ahead of a carried event.
        let shutting_down = self.shared.deadline().is_some();
        if let Some(retrying) = self.shared.queue.take_due(Instant::now(), shutting_down) {
            self.retry(retrying);
            return true;
        }
        if held == 0 {
            match self.next_work() {
                None => return false,
                Some(Work::Retry(retrying)) => {
                    self.retry(retrying);
                    return true;
                }
                Some(Work::Fresh(first)) => {
                    if let Err(batch) = self.slot().register(vec![first]) {
                        // The deadline passed between taking and registering: never sent.
                        self.shared.ledger.settle_all(&batch, &Outcome::Cancelled, Stage::InFlight);
                        return true;
                    }
                }
            }
        }
        // State: Gather.
        let n = self.gather();
        self.carried = self.slot().len().saturating_sub(n);
        self.deliver(n);
        true
    }

    /// Sends a batch taken from the retry schedule (ahead of anything carried in the slot).
    fn retry(&mut self, retrying: Retrying) {
        let Retrying { batch, attempts, began, key, last_failure } = retrying;
        let batch = self.without_cancelled(batch);
        let k = batch.len();
        if k == 0 {
            return;
        }
        if let Err(batch) = self.slot().push_front(batch) {
            // The deadline passed between taking and registering.
            self.shared.ledger.settle_all(&batch, &Outcome::Cancelled, Stage::InFlight);
            return;
        }
        let tries = Tries { attempts, began, key, last_failure };
        match self.deliver_chunk(k, tries) {
            Sent::Split => {
                let (first, second) = encode::halves(k);
                self.deliver_chunks(vec![second, first]);
            }
            Sent::Settled | Sent::Gone => {}
        }
    }

    /// Waits, taking nothing, while the gate is closed (a `Retry-After` pause or an open
    /// circuit), so events wait in the queue. False if it stays closed past the deadline.
    fn wait_while_closed(&self) -> bool {
        let gate = &self.shared.gate;
        while gate.blocked_until(Instant::now()).is_some() {
            let changed = gate.subscribe();
            let Some(until) = gate.blocked_until(Instant::now()) else { break };
            if self.shared.deadline().is_some_and(|deadline| until >= deadline) {
                return false;
            }
            self.wait_for_change(&changed, until);
        }
        true
    }

    /// Batching only: takes more queued events behind the ones in the slot until a limit or
    /// the linger time, putting them in the slot. Returns how many events at the front of the
    /// slot make up the batch; an event that did not fit stays behind them, for the next one.
    fn gather(&self) -> usize {
        let held = self.slot().len();
        let Some(limits) = self.shared.options.encode.batch else { return held };
        let shared = &*self.shared;
        let slot = &shared.slots[self.index];
        let codec = &self.codec;
        let mut count = held;
        let mut bytes: usize = slot.with_batch(|b| b.iter().map(|e| codec.estimate(batch_size(e))).sum());
        let linger_until = Instant::now().checked_add(limits.linger_value());
        let mut taken = Vec::new();
        while !encode::is_full(&limits, count, bytes) {
            let env = match shared.queue.try_recv() {
                Ok(env) => env,
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => {
                    let now = Instant::now();
                    // Shutting down: send what is queued without lingering.
                    let Some(left) =
                        linger_until.filter(|_| shared.deadline().is_none()).map(|t| t - now.min(t))
                    else {
                        break;
                    };
                    if left.is_zero() {
                        break;
                    }
                    // Nothing taken waits outside the slot, where shutdown could not see it.
                    self.hand_over(&mut taken);
                    // Nap, then take what came. Waiting on the queue instead would wake this
                    // worker for every event and make every producer pay for waking it; one
                    // long sleep would leave a queue that fills meanwhile waiting for it.
                    let _ = shared.shutdown_rx.recv_timeout(encode::nap(left, limits.linger_value()));
                    continue;
                }
            };
            if env.is_cancelled() {
                let _ = self.took(env);
                continue;
            }
            let size = codec.estimate(batch_size(&env));
            let joins = encode::joins(&limits, count, bytes, size);
            taken.push(env);
            if !joins {
                break; // It starts the next batch.
            }
            count += 1;
            bytes += size;
        }
        self.hand_over(&mut taken);
        count
    }

    /// Accounts for events taken from the queue and puts them in the slot.
    fn hand_over(&self, taken: &mut Vec<Envelope>) {
        if taken.is_empty() {
            return;
        }
        self.shared.queue.release(taken.iter().map(|e| e.size).sum());
        self.shared.ledger.counters.started(taken.len() as u64);
        if let Err(back) = self.slot().extend(std::mem::take(taken)) {
            // The deadline passed while gathering: never sent.
            self.shared.ledger.settle_all(&back, &Outcome::Cancelled, Stage::InFlight);
        }
    }

    /// The next work: a due retry, a replayed event or the next queued one. Blocks while
    /// running (waking when the earliest retry comes due); during shutdown only drains what
    /// is queued or scheduled. `None` means stop.
    fn next_work(&self) -> Option<Work> {
        let (rx, hi) = (self.shared.queue.receiver(), self.shared.queue.high_receiver());
        loop {
            if self.shared.is_cancelled() {
                return None;
            }
            let shutting_down = self.shared.deadline().is_some();
            if let Some(retrying) = self.shared.queue.take_due(Instant::now(), shutting_down) {
                return Some(Work::Retry(retrying));
            }
            // Events replayed from spill files go before the queue.
            if let Some(env) = self.shared.backlog.pop() {
                self.shared.ledger.counters.started(1);
                return Some(Work::Fresh(env));
            }
            match self.shared.queue.try_recv() {
                Ok(env) => match self.took(env) {
                    Some(env) => return Some(Work::Fresh(env)),
                    None => continue,
                },
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) if shutting_down => return None,
                Err(TryRecvError::Empty) => {}
            }
            let due_in = self.shared.queue.next_due().map(|at| at.saturating_duration_since(Instant::now()));
            let msg = match due_in {
                Some(d) => select! {
                    recv(hi) -> msg => Some(msg),
                    recv(rx) -> msg => Some(msg),
                    // Shutdown began: loop around to drain.
                    recv(self.shared.shutdown_rx) -> _ => None,
                    default(d) => None,
                },
                None => select! {
                    recv(hi) -> msg => Some(msg),
                    recv(rx) -> msg => Some(msg),
                    recv(self.shared.shutdown_rx) -> _ => None,
                },
            };
            match msg {
                Some(Ok(env)) => {
                    if let Some(env) = self.took(env) {
                        return Some(Work::Fresh(env));
                    }
                }
                Some(Err(_)) => return None,
                None => {}
            }
        }
    }

    /// Accounts for an event taken from the queue; `None` if it was a cancelled broadcast
    /// copy, which is settled here.
    fn took(&self, env: Envelope) -> Option<Envelope> {
        self.shared.queue.release(env.size);
        self.shared.ledger.counters.started(1);
        if env.is_cancelled() {
            self.shared.ledger.settle_all_unspilled(&[env], &Outcome::Cancelled, Stage::InFlight);
            return None;
        }
        Some(env)
    }

    /// Settles the cancelled broadcast copies of a batch taken from the retry schedule and
    /// returns the rest.
    fn without_cancelled(&self, batch: Vec<Envelope>) -> Vec<Envelope> {
        if !batch.iter().any(Envelope::is_cancelled) {
            return batch;
        }
        let (gone, kept): (Vec<Envelope>, Vec<Envelope>) =
            batch.into_iter().partition(Envelope::is_cancelled);
        self.shared.ledger.settle_all_unspilled(&gone, &Outcome::Cancelled, Stage::InFlight);
        kept
    }

    /// Delivers the first `n` events of the slot, in one request or, after a `413`, in halves.
    fn deliver(&mut self, n: usize) {
        self.deliver_chunks(vec![n]);
    }

    /// Delivers chunks of the slot's front, the last of `chunks` first.
    fn deliver_chunks(&mut self, mut chunks: Vec<usize>) {
        while let Some(k) = chunks.pop() {
            match self.deliver_chunk(k, Tries::fresh()) {
                Sent::Settled => {}
                Sent::Split => {
                    let (first, second) = encode::halves(k);
                    chunks.push(second);
                    chunks.push(first);
                }
                Sent::Gone => return,
            }
        }
    }

    /// Makes one attempt at the first `k` events of the slot, and settles them or puts them
    /// on the retry schedule.
    fn deliver_chunk(&mut self, k: usize, mut tries: Tries) -> Sent {
        // State: Encode.
        let slot = &self.shared.slots[self.index];
        let (codec, body) = (&mut self.codec, &mut self.body);
        let (sampled, first) = (&mut self.sampled, tries.attempts == 0);
        let queue = &self.shared.queue;
        let held = slot.with_batch(|b| {
            let held = k > 0 && b.len() >= k;
            if held {
                codec.encode(&b[..k], body);
                if first {
                    // What `send` charges the next `serde_json::Value` events follows these.
                    if let Some(mean) = value_size_sample(&b[..k]) {
                        queue.learn_value_size(mean);
                    }
                }
                // Wait times (accepted → first attempt) of the sampled events.
                sampled.clear();
                if first {
                    sampled.extend(b[..k].iter().filter_map(|e| e.accepted));
                }
            }
            held
        });
        if !held {
            return Sent::Gone;
        }
        if let Some(limits) = &self.shared.options.encode.batch {
            let max = limits.max_bytes_value();
            if self.body.len() > max {
                if k > 1 {
                    return Sent::Split;
                }
                let reason = format!(
                    "the event encodes to {} bytes, more than the batch max_bytes ({max}): not sent",
                    self.body.len()
                );
                return self.settle(k, Outcome::Rejected { status: 413, attempts: 0, reason }, false);
            }
        }
        let shared = Arc::clone(&self.shared);
        let retry_policy = &shared.options.retry;
        // State: Gate. A closed gate or a spent budget puts the batch back on the schedule.
        let now = Instant::now();
        let give_up_at = tries.began.and_then(|t| t.checked_add(retry_policy.max_elapsed_value()));
        match shared.gate.admit(now, tries.attempts > 0) {
            Admit::Go => {}
            Admit::Wait(until) => return self.reschedule(k, tries, until),
            // Another worker's probe decides; `wait_while_closed` holds the workers (empty-handed)
            // until it does.
            Admit::Probing(_) => return self.reschedule(k, tries, now),
            Admit::NoBudget(next) => {
                shared.gate.note_throttled();
                return match next {
                    Some(at) if shared.deadline().is_none() && give_up_at.is_none_or(|limit| at <= limit) => {
                        self.reschedule(k, tries, at)
                    }
                    _ => {
                        let reason = format!("{}; not retried: retry budget exhausted", tries.last_failure);
                        self.settle(k, Outcome::Failed { reason, attempts: tries.attempts }, true)
                    }
                };
            }
        }
        let time_left = shared.time_left(Instant::now());
        if time_left == Some(Duration::ZERO) {
            self.give_up_at_deadline();
            return Sent::Gone;
        }
        if !self.slot().mark_on_wire(k) {
            return Sent::Gone; // Shutdown took the batch at the deadline.
        }
        // State: Send.
        let zipped = self.codec.compress(&self.body, &mut self.zipped);
        let idempotency = shared.options.encode.idempotency.as_ref();
        // One id per batch, kept across retries: the idempotency key and the `webhook-id`.
        if (idempotency.is_some() || self.signer.is_some()) && tries.key.is_none() {
            tries.key = Some(uuid_v4(self.rng.random()));
        }
        tries.attempts += 1;
        let began = *tries.began.get_or_insert_with(Instant::now);
        let mut headers: Vec<(&str, String)> = Vec::new();
        if zipped {
            headers.push(("Content-Encoding", "gzip".into()));
        }
        if let (Some(i), Some(key)) = (idempotency, &tries.key) {
            headers.push((i.key_header_name(), key.clone()));
            if let Some(name) = i.attempt_header_name() {
                headers.push((name, tries.attempts.to_string()));
            }
        }
        if let (Some(signer), Some(id)) = (&self.signer, &tries.key) {
            // Signed over the uncompressed body, with a fresh timestamp per attempt.
            headers.extend(signer.headers(id, super::unix_now(), &self.body));
        }
        let body = if zipped { &self.zipped } else { &self.body };
        shared.ledger.counters.request(tries.attempts > 1, body.len());
        shared.recorder.begin_request();
        let sent_at = Instant::now();
        let next = self.attempt(body, &headers, tries.attempts, time_left, k);
        let now = Instant::now();
        let waits: Vec<Duration> =
            self.sampled.drain(..).map(|at| sent_at.saturating_duration_since(at)).collect();
        let service = matches!(next, Next::Settle(_) | Next::Partial { .. })
            .then(|| now.saturating_duration_since(began));
        shared.recorder.end_request(sent_at, now, &waits, service, || shared.totals());
        // Any answer but a transient failure counts as the endpoint working.
        match shared.gate.record(now, !matches!(next, Next::Retry { .. })) {
            Some((Circuit::Closed, Circuit::Open)) => shared
                .ledger
                .emit(|| LifecycleEvent::CircuitOpened { endpoint: shared.transport.endpoint().into() }),
            Some((before, Circuit::Closed)) if before != Circuit::Closed => shared
                .ledger
                .emit(|| LifecycleEvent::CircuitClosed { endpoint: shared.transport.endpoint().into() }),
            _ => {}
        }
        // State: Judge.
        let (reason, retry_after) = match next {
            Next::Settle(outcome) => return self.settle(k, outcome, false),
            Next::Partial { status, attempts, rejected, message } => {
                shared.ledger.counters.rejected_records(rejected);
                shared.ledger.emit(|| LifecycleEvent::RecordsRejected {
                    endpoint: shared.transport.endpoint().into(),
                    records: rejected,
                    message,
                });
                return self.settle(k, Outcome::Delivered { status, attempts }, false);
            }
            Next::Split => return Sent::Split,
            Next::Retry { reason, retry_after } => (reason, retry_after),
        };
        if let Some(pause) = retry_after {
            shared.gate.pause(Instant::now(), pause);
        }
        let attempts = tries.attempts;
        if shared.deadline().is_some() {
            let reason = format!("{reason}; not retried: shutting down");
            return self.settle(k, Outcome::Failed { reason, attempts }, true);
        }
        let unit = retry_policy.jitter_unit(|| self.rng.random());
        match retry_policy.next_wait(attempts, began.elapsed(), retry_after, unit) {
            Some(wait) => {
                tries.last_failure = reason;
                self.reschedule(k, tries, Instant::now() + wait)
            }
            None => {
                let reason = format!("{reason}; gave up after {attempts} attempts");
                self.settle(k, Outcome::Failed { reason, attempts }, true)
            }
        }
    }

    /// Moves the first `k` events of the slot to the retry schedule, due at `due`.
    fn reschedule(&self, k: usize, tries: Tries, due: Instant) -> Sent {
        let Some(batch) = self.slot().take_front(k) else { return Sent::Gone };
        let Tries { attempts, began, key, last_failure } = tries;
        let retrying = Retrying { batch, attempts, began, key, last_failure };
        if let Err(back) = self.shared.queue.schedule(due, retrying) {
            // The deadline's sweep has run: nothing will send it now.
            self.shared.ledger.settle_all(&back.batch, &Outcome::Cancelled, Stage::InFlight);
        }
        Sent::Settled
    }

    /// Settles the first `k` events of the slot, unless shutdown took them. A transient
    /// failure is spilled instead when a spill file is configured.
    fn settle(&self, k: usize, outcome: Outcome, transient: bool) -> Sent {
        match self.slot().take_front(k) {
            Some(batch) => {
                if transient {
                    self.shared.ledger.settle_all_or_spill(&batch, &outcome, Stage::InFlight);
                } else {
                    self.shared.ledger.settle_all(&batch, &outcome, Stage::InFlight);
                }
                Sent::Settled
            }
            None => Sent::Gone,
        }
    }

    /// One request, judged.
    fn attempt(
        &self,
        body: &[u8],
        headers: &[(&str, String)],
        attempts: u32,
        time_left: Option<Duration>,
        events: usize,
    ) -> Next {
        let transport = &self.shared.transport;
        let result = transport.send_as(self.index, body, headers, time_left);
        let cap = self.shared.options.retry.retry_after_cap_value();
        judge(result, transport.endpoint(), attempts, events, cap)
    }

    /// Waits until `until`, a gate change, or (while running) the start of shutdown; never
    /// past the shutdown deadline.
    fn wait_for_change(&self, changed: &Receiver<()>, until: Instant) {
        let d = until.saturating_duration_since(Instant::now());
        if let Some(left) = self.shared.time_left(Instant::now()) {
            // The shutdown channel is disconnected by now: wait on the gate alone.
            let _ = changed.recv_timeout(d.min(left));
            return;
        }
        select! {
            recv(self.shared.shutdown_rx) -> _ => {}
            recv(changed) -> _ => {}
            default(d) => {}
        }
    }

    /// The deadline passed while this batch waited: settle what the slot holds unless
    /// shutdown already did.
    fn give_up_at_deadline(&self) {
        if let Some((batch, wire)) = self.slot().take() {
            settle_at_deadline(&self.shared.ledger, batch, wire);
        }
    }
}

/// An event's size for the batch limits: exact for pre-encoded bytes; for a `serde_json::Value`
/// an estimate from walking it (`send` charged it the mean of recent ones, which can be far
/// from this one's size). The walk happens here, on the worker, just before the value is
/// serialized.
fn batch_size(env: &Envelope) -> usize {
    if env.event.as_value().is_some() {
        env.event.approx_bytes()
    } else {
        env.size
    }
}

/// The mean compact JSON length (estimated as the queue once did at `send`) of up to eight
/// `serde_json::Value` events spread over `batch`, just encoded and so still in cache; `None`
/// if none of them is a Value.
fn value_size_sample(batch: &[Envelope]) -> Option<usize> {
    let step = batch.len().div_ceil(8).max(1);
    let (n, total) = batch
        .iter()
        .step_by(step)
        .filter(|e| e.event.as_value().is_some())
        .fold((0usize, 0usize), |(n, total), e| (n + 1, total.saturating_add(e.event.approx_bytes())));
    (n > 0).then(|| total / n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    #[test]
    fn value_sizes_are_sampled_from_values_only() {
        let value = |n: usize| Envelope::new(Event::from(serde_json::json!("x".repeat(n))), 1, None);
        let bytes = || Envelope::new(Event::from_json_bytes(b"1".to_vec()).unwrap(), 1, None);
        assert_eq!(value_size_sample(&[]), None);
        assert_eq!(value_size_sample(&[bytes(), bytes()]), None);
        // "x…" encodes to n + 2 bytes.
        assert_eq!(value_size_sample(&[value(98), bytes(), value(198)]), Some(150));
        let many: Vec<Envelope> = (0..500).map(|_| value(48)).collect();
        assert_eq!(value_size_sample(&many), Some(50));
        // The batch limits see a value's own size, not what `send` charged it.
        assert_eq!(batch_size(&value(98)), 100);
        assert_eq!(batch_size(&bytes()), 1);
    }
}
