//! Spill replay at start: the spill files of runs that have ended go into the backlog, ahead of
//! everything queued, and each file is removed once every event read from it has an outcome.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use super::Shared;
use crate::state::lifecycle::LifecycleEvent;
use crate::state::outcome::{Envelope, ReceiptSlot};

/// Loads the spill files of ended runs into the backlog (before the workers start).
pub(crate) fn replay(shared: &Shared) {
    let Some(spill) = shared.ledger.spill() else { return };
    if !shared.options.spill_replay {
        return;
    }
    let orphans = spill.take_orphans();
    let n = orphans.events.len();
    shared.ledger.counters.replayed(n as u64, orphans.skipped);
    if n > 0 || orphans.skipped > 0 {
        shared.ledger.emit(|| LifecycleEvent::Replayed { events: n as u64, skipped: orphans.skipped });
    }
    if n == 0 {
        orphans.files.remove();
        return;
    }
    let files = Arc::new(orphans.files);
    let left = Arc::new(AtomicUsize::new(n));
    let lost = Arc::new(AtomicBool::new(false));
    let hook = Arc::new(move |event_lost: bool| {
        if event_lost {
            lost.store(true, Ordering::Relaxed);
        }
        // The last event to settle decides: remove the files, or (if any event is neither
        // done nor spilled again) keep them for a later replay. Duplicates rather than loss.
        if left.fetch_sub(1, Ordering::AcqRel) == 1 {
            if lost.load(Ordering::Relaxed) {
                files.release();
            } else {
                files.remove();
            }
        }
    });
    let mut items = VecDeque::with_capacity(n);
    for event in orphans.events {
        shared.ledger.counters.submitted();
        let size = event.approx_bytes();
        items.push_back(Envelope::new(event, size, Some(ReceiptSlot::with_hook(hook.clone()))));
    }
    shared.backlog.fill(items);
}
