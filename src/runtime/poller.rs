//! Pollers: one thread each, started with the instance and stopped by its shutdown path.
//!
//! A poller waits for its next tick on the instance's poller stop channel (so shutdown wakes
//! it at once), makes one poll — a conditional request, then the next pages if it paginates —
//! hands the items to its callback or forwards them into a delivery endpoint's queue (where
//! they are counted like any event), and asks `policy::poll` when to poll next. Its request
//! goes through its own [`Transport`], built from the builder's network options.

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use super::Shared;
use crate::event::Event;
use crate::policy::poll::{default_extract, Poll, PollStats, Sink, Timing, MAX_RETRY_AFTER};
use crate::policy::retry::parse_retry_after;
use crate::state::outcome::Envelope;
use crate::transport::Transport;

/// A poller's live counters, shared with `Client::poll_stats`.
#[derive(Default)]
pub(crate) struct PollCounters {
    polls: AtomicU64,
    not_modified: AtomicU64,
    items: AtomicU64,
    failures: AtomicU64,
    skipped_ticks: AtomicU64,
    pages: AtomicU64,
    forward_refused: AtomicU64,
    panics: AtomicU64,
}

impl PollCounters {
    pub(crate) fn snapshot(&self) -> PollStats {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        PollStats {
            polls: l(&self.polls),
            not_modified: l(&self.not_modified),
            items: l(&self.items),
            failures: l(&self.failures),
            skipped_ticks: l(&self.skipped_ticks),
            pages: l(&self.pages),
            forward_refused: l(&self.forward_refused),
            panics: l(&self.panics),
        }
    }
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// One poller ready to start: its options, rules, transport and forward target.
pub(crate) struct PollPlan {
    pub(crate) name: String,
    pub(crate) poll: Poll,
    pub(crate) timing: Timing,
    pub(crate) transport: Transport,
    pub(crate) forward: Option<Arc<Shared>>,
}

/// Starts a poller thread. It ends when `stop` disconnects; `done` is dropped when it ends.
pub(crate) fn spawn(
    plan: PollPlan,
    counters: Arc<PollCounters>,
    stop: Receiver<()>,
    done: Sender<()>,
) -> std::io::Result<JoinHandle<()>> {
    let name = format!("posthaste-poll-{}", plan.name);
    thread::Builder::new().name(name).spawn(move || {
        // The logging front ends drop records from this thread (the HTTP stack logs here).
        crate::util::mark_own_thread();
        let _done = done;
        let rng = SmallRng::from_os_rng();
        Poller { plan, counters, stop, rng, etag: None, last_modified: None }.run();
    })
}

struct Poller {
    plan: PollPlan,
    counters: Arc<PollCounters>,
    stop: Receiver<()>,
    rng: SmallRng,
    etag: Option<String>,
    last_modified: Option<String>,
}

/// Why a poll failed, and how long the server asked to wait.
struct Failed {
    retry_after: Option<Duration>,
}

impl Poller {
    fn run(&mut self) {
        let timing = self.plan.timing;
        let t0 = Instant::now();
        let mut tick = 0;
        // The first poll runs at once; later ones on the jittered grid.
        let mut next_at = t0;
        let mut failures = 0u32;
        loop {
            match self.stop.recv_deadline(next_at) {
                Err(RecvTimeoutError::Timeout) => {}
                // Disconnected: shutdown began.
                _ => return,
            }
            let result = self.poll_once();
            let end = Instant::now();
            let ok = result.is_ok();
            if let Some(health) = timing.transition(failures, ok) {
                if let Some(f) = &self.plan.poll.on_health {
                    if catch_unwind(AssertUnwindSafe(|| f(&health))).is_err() {
                        bump(&self.counters.panics, 1);
                    }
                }
            }
            match result {
                Ok(()) => {
                    failures = 0;
                    let (next, skipped) = timing.next_tick(t0, tick, end);
                    bump(&self.counters.skipped_ticks, skipped);
                    tick = next;
                    next_at = timing.at(t0, tick, self.rng.random());
                }
                Err(Failed { retry_after }) => {
                    failures = failures.saturating_add(1);
                    bump(&self.counters.failures, 1);
                    next_at = end + timing.backoff(failures, retry_after);
                    // Ticks passed while backing off are not "skipped": the grid resumes after.
                    tick = timing.next_tick(t0, tick, next_at).0.saturating_sub(1).max(tick);
                }
            }
        }
    }

    /// One poll: the first page (conditional), then the next ones.
    fn poll_once(&mut self) -> Result<(), Failed> {
        bump(&self.counters.polls, 1);
        let poll = &self.plan.poll;
        let mut conditional = Vec::new();
        if let Some(etag) = &self.etag {
            conditional.push(("If-None-Match", etag.clone()));
        }
        if let Some(lm) = &self.last_modified {
            conditional.push(("If-Modified-Since", lm.clone()));
        }
        let mut url: Option<String> = None;
        let mut seen = HashSet::new();
        let mut validators = None;
        for page in 0..poll.max_pages {
            let extra = if page == 0 { &conditional[..] } else { &[] };
            let fetched =
                self.plan.transport.fetch(url.as_deref(), extra).map_err(|_| Failed { retry_after: None })?;
            bump(&self.counters.pages, 1);
            if page == 0 && fetched.status == 304 {
                bump(&self.counters.not_modified, 1);
                return Ok(());
            }
            if !(200..300).contains(&fetched.status) {
                let retry_after = fetched
                    .retry_after
                    .as_deref()
                    .and_then(|v| parse_retry_after(v, SystemTime::now(), MAX_RETRY_AFTER));
                return Err(Failed { retry_after });
            }
            if page == 0 {
                validators = Some((fetched.etag, fetched.last_modified));
            }
            let value: Value =
                serde_json::from_slice(&fetched.body).map_err(|_| Failed { retry_after: None })?;
            let items = match &poll.extract {
                None => default_extract(&value),
                Some(f) => catch_unwind(AssertUnwindSafe(|| f(&value))).map_err(|_| {
                    bump(&self.counters.panics, 1);
                    Failed { retry_after: None }
                })?,
            };
            self.hand_out(items);
            let Some(next) = &poll.next_page else { break };
            let next = match catch_unwind(AssertUnwindSafe(|| next(&value))) {
                Ok(next) => next,
                Err(_) => {
                    bump(&self.counters.panics, 1);
                    None
                }
            };
            match next {
                // A repeated URL would loop: stop.
                Some(u) if seen.insert(u.clone()) => url = Some(u),
                _ => break,
            }
        }
        // Only a poll that went through updates the validators: a failed one is polled whole
        // again.
        if let Some((etag, last_modified)) = validators {
            self.etag = etag;
            self.last_modified = last_modified;
        }
        Ok(())
    }

    fn hand_out(&self, items: Vec<Value>) {
        bump(&self.counters.items, items.len() as u64);
        match (&self.plan.poll.sink, &self.plan.forward) {
            (Some(Sink::Forward(_)), Some(shared)) => {
                for item in items {
                    let event = Event::from(item);
                    let size = event.approx_bytes();
                    let env = Envelope::new(event, size, None);
                    if shared.queue.push(env, &shared.ledger).is_err() {
                        bump(&self.counters.forward_refused, 1);
                    }
                }
            }
            (Some(Sink::Callback(f)), _) => {
                for item in items {
                    if catch_unwind(AssertUnwindSafe(|| f(item))).is_err() {
                        bump(&self.counters.panics, 1);
                    }
                }
            }
            _ => {}
        }
    }
}
