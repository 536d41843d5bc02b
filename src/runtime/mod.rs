//! The threads: starting an instance, the worker loop, the one shutdown path, spill replay,
//! the exit and panic hooks, sending after shutdown, and worker niceness.
//!
//! The runtime is built from [`RuntimeOptions`] and [`TransportOptions`]; it never sees the
//! builder. It owns every thread posthaste starts and every wait; the rules it applies
//! (classification, backoff, breaker, encoding) come from `policy/`, the state it updates
//! (queue, ledger, stats, spill) from `state/`, and requests go through `transport/`.

mod after_shutdown;
mod hooks;
mod instance;
mod judge;
mod nice;
mod poller;
#[cfg(feature = "metrics")]
mod publish;
mod replay;
mod shared;
mod shutdown;
mod slot;
mod start;
mod worker;

use std::path::PathBuf;
use std::time::Duration;

pub(crate) use after_shutdown::send_now;
pub use after_shutdown::AfterShutdown;
pub(crate) use instance::Instance;
pub(crate) use shared::Shared;
pub(crate) use shutdown::shutdown;
pub(crate) use start::{start_instance, Plan};

use crate::policy::encode::EncodeOptions;
use crate::policy::gate::{CircuitBreaker, RetryBudget};
use crate::policy::retry::Retry;
use crate::state::lifecycle::OnLifecycle;
use crate::state::outcome::OnOutcome;
use crate::state::queue::Overflow;
#[cfg(doc)]
use crate::transport::TransportOptions;

/// Seconds since the Unix epoch, for `webhook-timestamp` (0 if the clock is before 1970).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A fresh message id for a request sent outside the workers (after shutdown, on panic).
pub(crate) fn fresh_id() -> String {
    use rand::{Rng, SeedableRng};
    crate::util::uuid_v4(rand::rngs::SmallRng::from_os_rng().random())
}

/// What the runtime is built from. The api layer fills it; every default is in
/// `api/config.rs`.
#[derive(Clone)]
pub(crate) struct RuntimeOptions {
    pub(crate) workers: usize,
    pub(crate) queue_capacity: usize,
    pub(crate) priority_capacity: usize,
    pub(crate) queue_bytes: usize,
    pub(crate) overflow: Overflow,
    pub(crate) retry: Retry,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) on_outcome: Option<OnOutcome>,
    pub(crate) on_lifecycle: Option<OnLifecycle>,
    /// How often `on_lifecycle` gets a `Report` (none: never).
    pub(crate) report_interval: Option<Duration>,
    /// The window `Metrics` cover.
    pub(crate) metrics_window: Duration,
    pub(crate) encode: EncodeOptions,
    /// Added to each worker thread's nice value (0 = unchanged).
    pub(crate) worker_nice: i32,
    pub(crate) breaker: CircuitBreaker,
    pub(crate) budget: RetryBudget,
    pub(crate) exit_hook: bool,
    pub(crate) exit_timeout: Duration,
    pub(crate) panic_hook: bool,
    pub(crate) panic_timeout: Duration,
    pub(crate) after_shutdown: AfterShutdown,
    pub(crate) spill_dir: Option<PathBuf>,
    pub(crate) spill_max_bytes: u64,
    pub(crate) spill_replay: bool,
}
