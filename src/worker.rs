//! The worker loop: take an event, send it, classify the answer, back off and retry.
//!
//! Each worker is a named OS thread with its own keep-alive connection (the agent's pool keeps
//! one idle connection per worker). The loop is a small state machine over one batch:
//! `Gate` (wait out a shared `Retry-After` pause, an open circuit, or the retry budget) →
//! `Send` → `Backoff` → … → settled. While the gate is closed a worker takes nothing, so events
//! wait in the queue. Every wait is on the shutdown channel with a deadline, so shutdown wakes
//! it at once; no `thread::sleep` anywhere. A panic in a round (user code: callbacks, custom
//! encoders) is caught and counted, its batch settles `Failed`, and the worker keeps serving.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{select, Receiver, RecvTimeoutError, Sender, TryRecvError};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::batch;
use crate::gate::Admit;
use crate::outcome::{Envelope, Outcome};
use crate::retry::{classify_status, parse_retry_after, Verdict};
use crate::shared::{Shared, Slot};
use crate::stats::From;

/// Starts worker `index`. `done` is dropped when the thread ends (even by panic), which is how
/// the shutdown path learns that every worker has finished.
pub(crate) fn spawn(shared: &Arc<Shared>, index: usize, done: Sender<()>) -> std::io::Result<JoinHandle<()>> {
    let shared = shared.clone();
    thread::Builder::new().name(format!("posthaste-worker-{index}")).spawn(move || {
        let _done = done;
        Worker { shared, index, rng: SmallRng::from_os_rng() }.run();
    })
}

struct Worker {
    shared: Arc<Shared>,
    index: usize,
    /// Jitter source for backoff.
    rng: SmallRng,
}

/// What one attempt asks for next.
enum Next {
    Settle(Outcome),
    Retry { reason: String, retry_after: Option<Duration> },
}

/// What the gate said, after waiting.
enum GateWait {
    Go,
    /// The gate stays closed past the shutdown deadline.
    Deadline,
    /// The retry budget won't allow this retry before the retry policy's time is up.
    NoBudget,
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
                    let reason = format!("posthaste worker panicked: {}", panic_message(&*panic));
                    if let Some((batch, _)) = self.slot().take() {
                        self.shared.ledger.settle_all(
                            &batch,
                            &Outcome::Failed { reason, attempts: 0 },
                            From::Flight,
                        );
                    }
                }
            }
        }
    }

    /// Takes and delivers one batch. False means stop.
    fn round(&mut self) -> bool {
        if !self.wait_while_closed() {
            return false;
        }
        let Some(first) = self.next_event() else { return false };
        self.deliver(vec![first]);
        true
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

    /// The next event to send: blocks while running; during shutdown only drains what is
    /// queued. `None` means stop.
    fn next_event(&self) -> Option<Envelope> {
        let rx = self.shared.queue.receiver();
        loop {
            if self.shared.is_cancelled() {
                return None;
            }
            // Events replayed from spill files go first.
            if let Some(env) = self.shared.backlog.pop() {
                self.shared.ledger.counters.started(1);
                return Some(env);
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

    fn deliver(&mut self, batch: Vec<Envelope>) {
        if let Err(batch) = self.slot().register(batch) {
            // The deadline passed between taking and registering: never sent.
            self.shared.ledger.settle_all(&batch, &Outcome::Cancelled, From::Flight);
            return;
        }
        let body = self.slot().with_batch(batch::encode);
        let began = Instant::now();
        let give_up_at = began.checked_add(self.shared.config.retry.max_elapsed_value());
        let mut attempts = 0u32;
        let mut last_failure = String::new();
        // The outcome, and whether it is a transient failure (spilled if a spill file is set).
        let (outcome, transient) = loop {
            // State: Gate.
            match self.wait_for_gate(attempts > 0, give_up_at) {
                GateWait::Go => {}
                GateWait::Deadline => return self.give_up_at_deadline(),
                GateWait::NoBudget => {
                    let reason = format!("{last_failure}; not retried: retry budget exhausted");
                    break (Outcome::Failed { reason, attempts }, true);
                }
            }
            let time_left = self.shared.time_left(Instant::now());
            if time_left == Some(Duration::ZERO) {
                return self.give_up_at_deadline();
            }
            if !self.slot().mark_on_wire() {
                return; // Shutdown took the batch at the deadline.
            }
            // State: Send.
            attempts += 1;
            self.shared.ledger.counters.request(attempts > 1, body.len());
            let next = self.attempt(&body, attempts, time_left);
            self.shared.gate.record(Instant::now(), matches!(next, Next::Settle(_)));
            let (reason, retry_after) = match next {
                Next::Settle(outcome) => break (outcome, false),
                Next::Retry { reason, retry_after } => (reason, retry_after),
            };
            // State: Backoff.
            if let Some(pause) = retry_after {
                self.shared.gate.pause(Instant::now(), pause);
            }
            if self.shared.deadline().is_some() {
                break (
                    Outcome::Failed { reason: format!("{reason}; not retried: shutting down"), attempts },
                    true,
                );
            }
            let policy = &self.shared.config.retry;
            let unit = policy.jitter_unit(|| self.rng.random());
            match policy.next_wait(attempts, began.elapsed(), retry_after, unit) {
                Some(wait) => self.sleep(wait),
                None => {
                    let reason = format!("{reason}; gave up after {attempts} attempts");
                    break (Outcome::Failed { reason, attempts }, true);
                }
            }
            last_failure = reason;
        };
        if let Some((batch, _)) = self.slot().take() {
            if transient {
                self.shared.ledger.settle_all_or_spill(&batch, &outcome, From::Flight);
            } else {
                self.shared.ledger.settle_all(&batch, &outcome, From::Flight);
            }
        }
    }

    /// One request, classified.
    fn attempt(&self, body: &[u8], attempts: u32, time_left: Option<Duration>) -> Next {
        let transport = &self.shared.transport;
        match transport.send(body, &[], time_left) {
            Ok(answer) => {
                let status = answer.status;
                match classify_status(status) {
                    Verdict::Delivered => Next::Settle(Outcome::Delivered { status, attempts }),
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

    /// Waits until the gate lets a request through: a shared pause, an open circuit, another
    /// worker's probe, and (for a retry) the retry budget.
    fn wait_for_gate(&self, retry: bool, give_up_at: Option<Instant>) -> GateWait {
        let gate = &self.shared.gate;
        let mut throttled = false;
        loop {
            // Subscribed before asking, so a transition in between still wakes us.
            let changed = gate.subscribe();
            let (until, probing) = match gate.admit(Instant::now(), retry) {
                Admit::Go => return GateWait::Go,
                Admit::Wait(until) => (until, false),
                Admit::Probing(until) => (until, true),
                Admit::NoBudget(next) => {
                    if !throttled {
                        throttled = true;
                        gate.note_throttled();
                    }
                    // Shutting down, or the budget can't allow it in time: give up now.
                    match next {
                        Some(at)
                            if self.shared.deadline().is_none()
                                && give_up_at.is_none_or(|limit| at <= limit) =>
                        {
                            (at, false)
                        }
                        _ => return GateWait::NoBudget,
                    }
                }
            };
            // Past the deadline: give up now, unless a probe's answer may still open the gate.
            if self.shared.deadline().is_some_and(|deadline| until >= deadline) && !probing {
                return GateWait::Deadline;
            }
            if self.shared.time_left(Instant::now()) == Some(Duration::ZERO) {
                return GateWait::Deadline;
            }
            // Woken early by shutdown or a gate change: loop to re-check.
            self.wait_for_change(&changed, until);
        }
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

    /// The deadline passed while this batch waited: settle it unless shutdown already did.
    fn give_up_at_deadline(&self) {
        if let Some((batch, on_wire)) = self.slot().take() {
            let outcome = if on_wire { Outcome::Abandoned } else { Outcome::Cancelled };
            self.shared.ledger.settle_all(&batch, &outcome, From::Flight);
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
