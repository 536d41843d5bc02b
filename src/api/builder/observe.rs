//! Observability options of [`Builder`]: lifecycle events, the periodic report and the window
//! the metrics cover.

use std::sync::Arc;
use std::time::Duration;

use super::Builder;
use crate::state::lifecycle::LifecycleEvent;

impl Builder {
    /// Calls `f` with every [`LifecycleEvent`]: started, circuit opened and closed, events
    /// spilled and replayed, the periodic report ([`Builder::report_interval`]), shut down.
    /// It runs on posthaste's threads (a worker, the reporter, the shutdown path), never on
    /// `send`'s path except for a spill forced by a producer racing with shutdown. Keep it
    /// quick; a panic in it is caught and counted in [`Stats::panics`](crate::Stats::panics).
    /// Defaults to none.
    ///
    /// ```
    /// use posthaste::LifecycleEvent;
    /// let guard = posthaste::builder("http://127.0.0.1:9/")
    ///     .on_lifecycle(|event| match event {
    ///         LifecycleEvent::CircuitOpened { endpoint } => eprintln!("{endpoint} is down"),
    ///         LifecycleEvent::Report(metrics) => eprintln!("{metrics}"),
    ///         _ => {}
    ///     })
    ///     .report_interval(std::time::Duration::from_secs(30))
    ///     .start()?;
    /// # drop(guard);
    /// # Ok::<(), posthaste::Error>(())
    /// ```
    pub fn on_lifecycle<F>(mut self, f: F) -> Builder
    where
        F: Fn(&LifecycleEvent) + Send + Sync + 'static,
    {
        self.config.runtime.on_lifecycle = Some(Arc::new(f));
        self
    }

    /// Sends a [`LifecycleEvent::Report`] carrying the [`Metrics`](crate::Metrics) of the
    /// default endpoint to `on_lifecycle` this often (1 ms – 1 hour), from a reporter thread of
    /// its own ([`Client::endpoint_metrics`](crate::Client::endpoint_metrics) gives a named
    /// endpoint's). Named endpoints send their other lifecycle events to the same callback.
    /// Defaults to off.
    pub fn report_interval(mut self, d: Duration) -> Builder {
        self.config.runtime.report_interval = Some(d);
        self
    }

    /// The sliding window [`Metrics`](crate::Metrics) average over (1 s – 1 hour). Defaults to
    /// 60 s.
    pub fn metrics_window(mut self, d: Duration) -> Builder {
        self.config.runtime.metrics_window = d;
        self
    }
}
