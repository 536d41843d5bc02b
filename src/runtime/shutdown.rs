//! The one shutdown path, used by `Guard::shutdown`, the guard's `Drop` and the exit hook.
//!
//! Under one deadline: close intake → wake every wait → let workers deliver what is queued (no
//! retries, timeouts clamped to the time left) → at the deadline settle what is still queued
//! as `Cancelled` and what is on the wire as `Abandoned` → join the workers that finished,
//! detach any stuck in a system call → return a [`Report`].

use std::time::Instant;

use crossbeam_channel::RecvTimeoutError;

use super::shared::Threads;
use super::slot::settle_at_deadline;
use super::Shared;
use crate::state::lifecycle::LifecycleEvent;
use crate::state::report::Report;

/// The one shutdown path. Idempotent: later calls return the first call's report.
pub(crate) fn shutdown(shared: &Shared, deadline: Instant) -> Report {
    shutdown_locked(shared, shared.threads.lock(), deadline)
}

/// Like [`shutdown`], for callers that may already be inside it on this thread (the exit
/// hook, run by `exit` from a callback): gives up at `deadline` if it can't start.
pub(crate) fn try_shutdown(shared: &Shared, deadline: Instant) -> Option<Report> {
    let life = shared.threads.try_lock_until(deadline)?;
    Some(shutdown_locked(shared, life, deadline))
}

fn shutdown_locked(
    shared: &Shared,
    mut life: parking_lot::MutexGuard<'_, Threads>,
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
        settle_at_deadline(&shared.ledger, batch, wire);
    }
    shared.queue.cancel_scheduled(&shared.ledger);
    shared.backlog.sweep(&shared.ledger);
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
        endpoints: Vec::new(),
        pollers: Vec::new(),
    };
    life.report = Some(report.clone());
    drop(life);
    shared.ledger.emit(|| LifecycleEvent::ShutDown(report.clone()));
    report
}
