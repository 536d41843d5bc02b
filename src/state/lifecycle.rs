//! [`LifecycleEvent`]: what an instance tells `Builder::on_lifecycle` about itself, and the
//! one place the callback is called (panics caught and counted).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::state::metrics::Metrics;
use crate::state::report::Report;
use crate::state::stats::Counters;

/// Something that happened to a running instance, given to
/// [`Builder::on_lifecycle`](crate::Builder::on_lifecycle).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum LifecycleEvent {
    /// `start()` finished: the workers run.
    Started {
        /// The endpoint as `host:port` (and the proxy it goes through).
        endpoint: String,
        /// Worker threads.
        workers: usize,
    },
    /// The circuit breaker opened: the endpoint looks dead or is failing most requests.
    CircuitOpened {
        /// The endpoint as `host:port`.
        endpoint: String,
    },
    /// The circuit breaker closed again: a probe got through.
    CircuitClosed {
        /// The endpoint as `host:port`.
        endpoint: String,
    },
    /// Events were written to the spill file instead of being lost.
    Spilled {
        /// How many, in this write.
        events: u64,
    },
    /// `start()` read spilled events of an earlier run back in.
    Replayed {
        /// Events queued again.
        events: u64,
        /// Torn or corrupt lines skipped.
        skipped: u64,
    },
    /// The periodic report ([`Builder::report_interval`](crate::Builder::report_interval)).
    Report(Metrics),
    /// Shutdown finished, with its report.
    ShutDown(Report),
}

/// The user's lifecycle callback.
pub(crate) type OnLifecycle = Arc<dyn Fn(&LifecycleEvent) + Send + Sync>;

/// Calls the callback, if any, with the event `make` builds (built only when there is one).
/// A panic in it is caught and counted in `Stats::panics`.
pub(crate) fn emit(
    callback: &Option<OnLifecycle>,
    counters: &Counters,
    make: impl FnOnce() -> LifecycleEvent,
) {
    if let Some(cb) = callback {
        let event = make();
        if catch_unwind(AssertUnwindSafe(|| cb(&event))).is_err() {
            counters.panicked();
        }
    }
}
