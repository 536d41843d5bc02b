//! [`Report`]: the final account a shutdown returns.

use std::fmt;
use std::time::Duration;

use crate::policy::poll::PollStats;
use crate::state::stats::Stats;

/// The final account of a shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// The final counters: `queued` and `in_flight` are 0 unless a worker settled an event
    /// after the deadline sweep (it then still counts it, in [`Client::stats`](crate::Client::stats)).
    pub stats: Stats,
    /// How long shutdown took.
    pub elapsed: Duration,
    /// True if the deadline passed before the workers finished.
    pub deadline_reached: bool,
    /// Workers (and pollers) still stuck (for example in a blocking read) when shutdown
    /// returned; they were detached and end on their own, their events already settled as
    /// `Abandoned`.
    pub detached_workers: usize,
    /// Non-fatal problems found by `start()`: root certificates from the OS store that failed
    /// to load, TLS verification disabled through [`Builder::dangerous`](crate::Builder::dangerous).
    pub warnings: Vec<String>,
    /// Each endpoint's final counters, the builder's own endpoint first (named
    /// [`DEFAULT_ENDPOINT`](crate::DEFAULT_ENDPOINT)), then the named ones in the order they
    /// were added; `stats` is their sum.
    pub endpoints: Vec<(String, Stats)>,
    /// Each poller's final counters ([`Builder::poll`](crate::Builder::poll)), in the order
    /// they were added.
    pub pollers: Vec<(String, PollStats)>,
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
