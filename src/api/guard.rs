//! [`Guard`]: the handle `main()` holds. Dropping it (or `shutdown`) runs the runtime's one
//! shutdown path under one deadline.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::api::client::Client;
use crate::runtime::Instance;
use crate::state::metrics::Metrics;
use crate::state::report::Report;
use crate::state::stats::Stats;

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
    instance: Arc<Instance>,
}

impl Guard {
    pub(crate) fn new(instance: Arc<Instance>) -> Guard {
        Guard { instance }
    }

    /// A new [`Client`] for sending events.
    pub fn client(&self) -> Client {
        Client::new(self.instance.clone())
    }

    /// A snapshot of the counters, summed over every endpoint. See [`Client::stats`].
    pub fn stats(&self) -> Stats {
        self.instance.stats()
    }

    /// The pipeline's [`Metrics`]; see [`Client::metrics`].
    pub fn metrics(&self) -> Metrics {
        self.instance.metrics()
    }

    /// Waits until every event sent so far has settled, with retries on, or until `timeout`.
    /// True if everything settled in time. See [`Client::flush`].
    pub fn flush(&self, timeout: Duration) -> bool {
        self.client().flush(timeout)
    }

    /// Shuts every endpoint down within the configured `shutdown_timeout` and returns the
    /// final [`Report`].
    pub fn shutdown(self) -> Report {
        let timeout = self.instance.default_endpoint().options.shutdown_timeout;
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
        self.instance.shutdown(deadline)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let deadline = Instant::now() + self.instance.default_endpoint().options.shutdown_timeout;
        self.instance.shutdown(deadline);
    }
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("endpoint", &self.instance.default_endpoint().transport.endpoint())
            .field("endpoints", &self.instance.names)
            .finish_non_exhaustive()
    }
}
