//! The worker loop: take an event, gather a batch, send it, classify the answer, back off and
//! retry.
//!
//! Each worker is a named OS thread with its own keep-alive connection (the agent's pool keeps
//! one idle connection per worker). The loop is a small state machine over one batch:
//! `Take` → `Gather` (batching only: more events up to the limits or the linger time) →
//! `Encode` → `Gate` (wait out a shared `Retry-After` pause) → `Send` → `Backoff` → … → settled.
//! A `413` to a batch (or a batch whose body passes `max_bytes`) goes back to `Encode` in two
//! halves. Every wait is on the shutdown channel with a deadline, so shutdown wakes it at once;
//! no `thread::sleep` anywhere. The rules (limits, encodings, gzip) are pure functions in
//! batch.rs.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{select, RecvTimeoutError, Sender, TryRecvError};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::batch::{self, Codec};
use crate::outcome::{Envelope, Outcome};
use crate::priority;
use crate::retry::{classify_status, parse_retry_after, Verdict};
use crate::shared::{Shared, Slot};
use crate::stats::From;

/// Starts worker `index`. `done` is dropped when the thread ends (even by panic), which is how
/// the shutdown path learns that every worker has finished.
pub(crate) fn spawn(shared: &Arc<Shared>, index: usize, done: Sender<()>) -> std::io::Result<JoinHandle<()>> {
    let shared = shared.clone();
    thread::Builder::new().name(format!("posthaste-worker-{index}")).spawn(move || {
        let _done = done;
        let nice = shared.config.batch.worker_nice;
        if nice > 0 {
            // Best effort: raising one's own nice value is always allowed on Linux; delivery
            // works the same if a sandbox refuses it.
            let _ = priority::lower_current_thread(nice);
        }
        let codec = Codec::new(&shared.config.batch);
        let rng = SmallRng::from_os_rng();
        Worker { shared, index, rng, codec, body: Vec::new(), zipped: Vec::new() }.run();
    })
}

struct Worker {
    shared: Arc<Shared>,
    index: usize,
    /// Jitter source for backoff, and idempotency keys.
    rng: SmallRng,
    codec: Codec,
    /// Request bodies, reused from one request to the next.
    body: Vec<u8>,
    zipped: Vec<u8>,
}

/// What one attempt asks for next.
enum Next {
    Settle(Outcome),
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// The endpoint answered 413 to a batch: send it in halves.
    Split,
}

/// How the work on one chunk of the batch ended.
enum Sent {
    Settled,
    Split,
    /// Shutdown took the slot at the deadline.
    Gone,
}

impl Worker {
    fn slot(&self) -> &Slot {
        &self.shared.slots[self.index]
    }

    fn run(&mut self) {
        loop {
            // State: Take. A batch starts with the event carried over from the last gather (in
            // the slot already) or with the next one queued.
            if self.slot().len() == 0 {
                let Some(first) = self.next_event() else { break };
                if let Err(batch) = self.slot().register(vec![first]) {
                    // The deadline passed between taking and registering: never sent.
                    self.shared.ledger.settle_all(&batch, &Outcome::Cancelled, From::Flight);
                    continue;
                }
            }
            // State: Gather.
            let n = self.gather();
            let carried = self.slot().len().saturating_sub(n);
            // Supervision: a panic while delivering (user callbacks are caught separately)
            // settles the batch as failed and the worker keeps serving.
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| self.deliver(n))) {
                let reason = format!("posthaste worker panicked: {}", panic_message(&*panic));
                let unsettled = self.slot().len().saturating_sub(carried);
                if let Some(batch) = self.slot().take_front(unsettled) {
                    self.shared.ledger.settle_all(
                        &batch,
                        &Outcome::Failed { reason, attempts: 0 },
                        From::Flight,
                    );
                }
            }
        }
    }

    /// Batching only: takes more queued events behind the ones in the slot until a limit or
    /// the linger time, putting them in the slot. Returns how many events at the front of the
    /// slot make up the batch; an event that did not fit stays behind them, for the next one.
    fn gather(&self) -> usize {
        let held = self.slot().len();
        let Some(limits) = self.shared.config.batch.batch else { return held };
        let shared = &*self.shared;
        let slot = &shared.slots[self.index];
        let codec = &self.codec;
        let rx = shared.queue.receiver();
        let mut count = held;
        let mut bytes: usize = slot.with_batch(|b| b.iter().map(|e| codec.estimate(e.size)).sum());
        let linger_until = Instant::now().checked_add(limits.linger_value());
        let mut taken = Vec::new();
        while !batch::is_full(&limits, count, bytes) {
            let env = match rx.try_recv() {
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
                    let _ = shared.shutdown_rx.recv_timeout(batch::nap(left, limits.linger_value()));
                    continue;
                }
            };
            let size = codec.estimate(env.size);
            let joins = batch::joins(&limits, count, bytes, size);
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
            self.shared.ledger.settle_all(&back, &Outcome::Cancelled, From::Flight);
        }
    }

    /// The next event to send: blocks while running; during shutdown only drains what is
    /// queued. `None` means stop.
    fn next_event(&self) -> Option<Envelope> {
        let rx = self.shared.queue.receiver();
        loop {
            if self.shared.is_cancelled() {
                return None;
            }
            match rx.try_recv() {
                Ok(env) => return Some(self.took(env)),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) if self.shared.deadline().is_some() => return None,
                Err(TryRecvError::Empty) => {}
            }
            select! {
                recv(rx) -> msg => return msg.ok().map(|env| self.took(env)),
                // Shutdown began: loop around to drain.
                recv(self.shared.shutdown_rx) -> _ => {}
            }
        }
    }

    fn took(&self, env: Envelope) -> Envelope {
        self.shared.queue.release(env.size);
        self.shared.ledger.counters.started(1);
        env
    }

    /// Delivers the first `n` events of the slot, in one request or, after a `413`, in halves.
    fn deliver(&mut self, n: usize) {
        // Chunks still to send; the last is sent next.
        let mut chunks = vec![n];
        while let Some(k) = chunks.pop() {
            match self.deliver_chunk(k) {
                Sent::Settled => {}
                Sent::Split => {
                    let (first, second) = batch::halves(k);
                    chunks.push(second);
                    chunks.push(first);
                }
                Sent::Gone => return,
            }
        }
    }

    /// Sends the first `k` events of the slot as one request, with retries, and settles them.
    fn deliver_chunk(&mut self, k: usize) -> Sent {
        // State: Encode.
        let slot = &self.shared.slots[self.index];
        let (codec, body) = (&mut self.codec, &mut self.body);
        let held = slot.with_batch(|b| {
            let held = k > 0 && b.len() >= k;
            if held {
                codec.encode(&b[..k], body);
            }
            held
        });
        if !held {
            return Sent::Gone;
        }
        if let Some(limits) = &self.shared.config.batch.batch {
            let max = limits.max_bytes_value();
            if self.body.len() > max {
                if k > 1 {
                    return Sent::Split;
                }
                let reason = format!(
                    "the event encodes to {} bytes, more than the batch max_bytes ({max}): not sent",
                    self.body.len()
                );
                return self.settle(k, Outcome::Rejected { status: 413, attempts: 0, reason });
            }
        }
        let zipped = self.codec.compress(&self.body, &mut self.zipped);
        let shared = Arc::clone(&self.shared);
        let idempotency = shared.config.batch.idempotency.as_ref();
        let key = idempotency.map(|_| batch::uuid_v4(self.rng.random()));
        let began = Instant::now();
        let mut attempts = 0u32;
        let outcome = loop {
            // State: Gate.
            if !self.wait_for_gate() {
                self.give_up_at_deadline();
                return Sent::Gone;
            }
            let time_left = self.shared.time_left(Instant::now());
            if time_left == Some(Duration::ZERO) {
                self.give_up_at_deadline();
                return Sent::Gone;
            }
            if !self.slot().mark_on_wire(k) {
                return Sent::Gone; // Shutdown took the batch at the deadline.
            }
            // State: Send.
            attempts += 1;
            let mut headers: Vec<(&str, String)> = Vec::new();
            if zipped {
                headers.push(("Content-Encoding", "gzip".into()));
            }
            if let (Some(i), Some(key)) = (idempotency, &key) {
                headers.push((i.key_header_name(), key.clone()));
                if let Some(name) = i.attempt_header_name() {
                    headers.push((name, attempts.to_string()));
                }
            }
            let body = if zipped { &self.zipped } else { &self.body };
            self.shared.ledger.counters.request(attempts > 1, body.len());
            let (reason, retry_after) = match self.attempt(body, &headers, attempts, time_left, k) {
                Next::Settle(outcome) => break outcome,
                Next::Split => return Sent::Split,
                Next::Retry { reason, retry_after } => (reason, retry_after),
            };
            // State: Backoff.
            if let Some(pause) = retry_after {
                self.shared.gate.pause(Instant::now(), pause);
            }
            if self.shared.deadline().is_some() {
                break Outcome::Failed { reason: format!("{reason}; not retried: shutting down"), attempts };
            }
            let policy = &self.shared.config.retry;
            let unit = policy.jitter_unit(|| self.rng.random());
            match policy.next_wait(attempts, began.elapsed(), retry_after, unit) {
                Some(wait) => self.sleep(wait),
                None => {
                    break Outcome::Failed {
                        reason: format!("{reason}; gave up after {attempts} attempts"),
                        attempts,
                    }
                }
            }
        };
        self.settle(k, outcome)
    }

    /// Settles the first `k` events of the slot, unless shutdown took them.
    fn settle(&self, k: usize, outcome: Outcome) -> Sent {
        match self.slot().take_front(k) {
            Some(batch) => {
                self.shared.ledger.settle_all(&batch, &outcome, From::Flight);
                Sent::Settled
            }
            None => Sent::Gone,
        }
    }

    /// One request, classified.
    fn attempt(
        &self,
        body: &[u8],
        headers: &[(&str, String)],
        attempts: u32,
        time_left: Option<Duration>,
        events: usize,
    ) -> Next {
        let transport = &self.shared.transport;
        match transport.send_as(self.index, body, headers, time_left) {
            Ok(answer) => {
                let status = answer.status;
                match classify_status(status) {
                    Verdict::Delivered => Next::Settle(Outcome::Delivered { status, attempts }),
                    Verdict::TooLarge if events > 1 => Next::Split,
                    Verdict::Reject | Verdict::TooLarge => {
                        Next::Settle(Outcome::Rejected { status, attempts, reason: answer.excerpt })
                    }
                    Verdict::Fail => Next::Settle(Outcome::Failed {
                        reason: format!(
                            "{} answered {status}: proxy authentication required",
                            transport.endpoint()
                        ),
                        attempts,
                    }),
                    Verdict::Retry => {
                        let cap = self.shared.config.retry.retry_after_cap_value();
                        let retry_after = answer
                            .retry_after
                            .as_deref()
                            .and_then(|v| parse_retry_after(v, SystemTime::now(), cap));
                        Next::Retry {
                            reason: format!("{} answered {status}", transport.endpoint()),
                            retry_after,
                        }
                    }
                }
            }
            Err(fault) if fault.transient => Next::Retry { reason: fault.reason, retry_after: None },
            Err(fault) => Next::Settle(Outcome::Failed { reason: fault.reason, attempts }),
        }
    }

    /// Waits out a shared pause. False if the pause outlasts the shutdown deadline.
    fn wait_for_gate(&self) -> bool {
        loop {
            let now = Instant::now();
            let Some(until) = self.shared.gate.paused_until(now) else {
                return true;
            };
            if let Some(deadline) = self.shared.deadline() {
                if until >= deadline {
                    return false;
                }
                self.sleep(until - now);
                continue;
            }
            // Woken early by shutdown: loop to re-check against the deadline.
            self.sleep(until - now);
        }
    }

    /// Sleeps for `d`, or until shutdown begins (a wait on the shutdown channel).
    fn sleep(&self, d: Duration) {
        if self.shared.deadline().is_some() {
            // Already shutting down: the channel is disconnected, so wait on the clock, but
            // never past the deadline.
            let d = self.shared.time_left(Instant::now()).map_or(d, |left| d.min(left));
            let _ = crossbeam_channel::never::<()>().recv_timeout(d);
            return;
        }
        match self.shared.shutdown_rx.recv_timeout(d) {
            Ok(()) | Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {}
        }
    }

    /// The deadline passed while this batch waited: settle what the slot holds unless
    /// shutdown already did.
    fn give_up_at_deadline(&self) {
        if let Some((batch, wire)) = self.slot().take() {
            crate::shared::settle_at_deadline(&self.shared.ledger, batch, wire);
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}
