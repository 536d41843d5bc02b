//! The worker loop: take an event, send it, classify the answer, back off and retry.
//!
//! Each worker is a named OS thread with its own keep-alive connection (the agent's pool keeps
//! one idle connection per worker). The loop is a small state machine over one batch:
//! `Gate` (wait out a shared `Retry-After` pause) → `Send` → `Backoff` → … → settled. Every
//! wait is on the shutdown channel with a deadline, so shutdown wakes it at once; no
//! `thread::sleep` anywhere.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{select, RecvTimeoutError, Sender, TryRecvError};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::batch;
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

impl Worker {
    fn slot(&self) -> &Slot {
        &self.shared.slots[self.index]
    }

    fn run(&mut self) {
        while let Some(first) = self.next_event() {
            let batch = vec![first];
            // Supervision: a panic while delivering (user callbacks are caught separately)
            // settles the batch as failed and the worker keeps serving.
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| self.deliver(batch))) {
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

    fn deliver(&mut self, batch: Vec<Envelope>) {
        if let Err(batch) = self.slot().register(batch) {
            // The deadline passed between taking and registering: never sent.
            self.shared.ledger.settle_all(&batch, &Outcome::Cancelled, From::Flight);
            return;
        }
        let body = self.slot().with_batch(batch::encode);
        let began = Instant::now();
        let mut attempts = 0u32;
        let outcome = loop {
            // State: Gate.
            if !self.wait_for_gate() {
                return self.give_up_at_deadline();
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
            let (reason, retry_after) = match self.attempt(&body, attempts, time_left) {
                Next::Settle(outcome) => break outcome,
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
        if let Some((batch, _)) = self.slot().take() {
            self.shared.ledger.settle_all(&batch, &outcome, From::Flight);
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
