//! [`Guard`]: starts the workers, and owns the one shutdown path used by
//! [`Guard::shutdown`] and `Drop`.
//!
//! Shutdown, under one deadline: close intake → wake every wait → let workers deliver what is
//! queued (no retries, timeouts clamped to the time left) → at the deadline settle what is
//! still queued as `Cancelled` and what is on the wire as `Abandoned` → join the workers that
//! finished, detach any stuck in a system call → return a [`Report`].

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;

use crate::client::Client;
use crate::config::Config;
use crate::error::Error;
use crate::lifecycle;
use crate::shared::{Lifecycle, Shared};
use crate::stats::Stats;
use crate::transport::Transport;
use crate::worker;

/// Keeps posthaste running; shuts it down when dropped. Hold it in `main()`.
///
/// Dropping the guard (or calling [`Guard::shutdown`]) delivers what is queued until the
/// shutdown deadline, then cancels the rest, and returns within the deadline: it never hangs
/// on a dead endpoint, never panics and never prints.
///
/// Bind it to a named variable: `let _ = posthaste::builder(..).start()?;` drops the guard —
/// and shuts posthaste down — at once. Write `let _guard = …` instead.
///
/// ```
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let guard = posthaste::builder("http://127.0.0.1:9/ingest").start()?;
///     let client = guard.client();
///     client.send(serde_json::json!({"event": "boot"}))?;
///     let report = guard.shutdown();
///     assert_eq!(report.stats.submitted, 1);
///     Ok(())
/// }
/// ```
#[must_use = "dropping the guard shuts posthaste down at once; bind it: `let _guard = …`"]
pub struct Guard {
    shared: Arc<Shared>,
}

/// The final account of a shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// The final counters: `queued` and `in_flight` are 0 unless a worker settled an event
    /// after the deadline sweep (it then still counts it, in [`Client::stats`]).
    pub stats: Stats,
    /// How long shutdown took.
    pub elapsed: Duration,
    /// True if the deadline passed before the workers finished.
    pub deadline_reached: bool,
    /// Workers still stuck (for example in a blocking read) when shutdown returned; they were
    /// detached and end on their own, their events already settled as `Abandoned`.
    pub detached_workers: usize,
    /// Non-fatal problems found by `start()`: root certificates from the OS store that failed
    /// to load, TLS verification disabled through [`Builder::dangerous`](crate::Builder::dangerous).
    pub warnings: Vec<String>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        write!(
            f,
            "posthaste: {} submitted, {} delivered, {} rejected, {} failed, {} dropped, {} cancelled, {} abandoned, \
             {} spilled ({} requests, {} retries, {} bytes) in {:.3}s shutdown{}",
            s.submitted,
            s.delivered,
            s.rejected,
            s.failed,
            s.dropped,
            s.cancelled,
            s.abandoned,
            s.spilled,
            s.requests,
            s.retries,
            s.bytes_sent,
            self.elapsed.as_secs_f64(),
            if self.deadline_reached { " (deadline reached)" } else { "" },
        )?;
        for w in &self.warnings {
            write!(f, "\nwarning: {w}")?;
        }
        Ok(())
    }
}

impl Guard {
    pub(crate) fn start(config: Config) -> Result<Guard, Error> {
        let transport = Transport::new(&config)?;
        let prepared = lifecycle::prepare(&config)?;
        let workers = config.workers;
        let shared = Arc::new(Shared::new(config, transport, prepared.spill.clone()));
        // Spilled events of earlier runs go ahead of everything (workers take them first).
        lifecycle::replay(&shared);
        let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(0);
        let mut handles = Vec::with_capacity(workers);
        for index in 0..workers {
            match worker::spawn(&shared, index, done_tx.clone()) {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    // Stop the ones already running before reporting.
                    drop(done_tx);
                    let mut life = shared.lifecycle.lock();
                    life.handles = handles;
                    life.done_rx = Some(done_rx);
                    drop(life);
                    shutdown(&shared, Instant::now());
                    return Err(Error::Spawn(e));
                }
            }
        }
        drop(done_tx);
        {
            let mut life = shared.lifecycle.lock();
            life.handles = handles;
            life.done_rx = Some(done_rx);
        }
        if let Err(e) = lifecycle::install(&shared, prepared) {
            shutdown(&shared, Instant::now());
            return Err(e);
        }
        Ok(Guard { shared })
    }

    /// A new [`Client`] for sending events.
    pub fn client(&self) -> Client {
        Client::new(self.shared.clone())
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Waits until every event sent so far has settled, with retries on, or until `timeout`.
    /// True if everything settled in time. See [`Client::flush`].
    pub fn flush(&self, timeout: Duration) -> bool {
        self.client().flush(timeout)
    }

    /// Shuts down within the configured `shutdown_timeout` and returns the final [`Report`].
    pub fn shutdown(self) -> Report {
        let timeout = self.shared.config.shutdown_timeout;
        self.shutdown_timeout(timeout)
    }

    /// Shuts down within `timeout` (instead of the configured one).
    pub fn shutdown_timeout(self, timeout: Duration) -> Report {
        // A timeout too large to add means "as long as it takes", bounded by a day.
        let deadline = Instant::now()
            .checked_add(timeout)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
        self.shutdown_deadline(deadline)
    }

    /// Shuts down by `deadline` and returns the final [`Report`].
    pub fn shutdown_deadline(self, deadline: Instant) -> Report {
        shutdown(&self.shared, deadline)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let deadline = Instant::now() + self.shared.config.shutdown_timeout;
        shutdown(&self.shared, deadline);
    }
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard").field("endpoint", &self.shared.transport.endpoint()).finish_non_exhaustive()
    }
}

/// The one shutdown path. Idempotent: later calls return the first call's report.
pub(crate) fn shutdown(shared: &Shared, deadline: Instant) -> Report {
    shutdown_locked(shared, shared.lifecycle.lock(), deadline)
}

/// Like [`shutdown`], for callers that may already be inside it on this thread (the exit
/// hook, run by `exit` from a callback): gives up at `deadline` if it can't start.
pub(crate) fn try_shutdown(shared: &Shared, deadline: Instant) -> Option<Report> {
    let life = shared.lifecycle.try_lock_until(deadline)?;
    Some(shutdown_locked(shared, life, deadline))
}

fn shutdown_locked(
    shared: &Shared,
    mut life: parking_lot::MutexGuard<'_, Lifecycle>,
    deadline: Instant,
) -> Report {
    if let Some(report) = &life.report {
        return report.clone();
    }
    let began = Instant::now();
    // 1–2. Close intake and wake every wait.
    let deadline = shared.begin_shutdown(deadline);
    // 3. Workers drain the queue; each drops its `done` sender when it ends.
    let mut deadline_reached = false;
    if let Some(done_rx) = life.done_rx.take() {
        loop {
            match done_rx.recv_deadline(deadline) {
                Ok(()) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    deadline_reached = true;
                    break;
                }
            }
        }
    }
    // 4. Settle what is left: on the wire → Abandoned, never sent → Cancelled.
    shared.set_cancelled();
    for slot in &shared.slots {
        let (batch, wire) = slot.close();
        crate::shared::settle_at_deadline(&shared.ledger, batch, wire);
    }
    shared.backlog.sweep(shared);
    shared.queue.finalize(&shared.ledger);
    // Everything spilled is on disk (each append was synced): hand the file over to the next
    // run now, even if a detached worker keeps this instance alive.
    if let Some(spill) = shared.ledger.spill() {
        spill.close();
    }
    // 5. Join the finished workers; detach the stuck ones. A worker's `done` sender is the
    // last thing it drops, so when all have signalled, all are returning: join them all.
    let mut detached_workers = 0;
    for handle in life.handles.drain(..) {
        if !deadline_reached || handle.is_finished() {
            let _ = handle.join();
        } else {
            detached_workers += 1;
        }
    }
    // 6. Report.
    let report = Report {
        stats: shared.stats(),
        elapsed: began.elapsed(),
        deadline_reached,
        detached_workers,
        warnings: shared.transport.warnings().to_vec(),
    };
    life.report = Some(report.clone());
    report
}
