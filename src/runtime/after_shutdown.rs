//! [`AfterShutdown`]: what `send` does once shutdown has begun, and the synchronous send.

use std::time::{Duration, Instant};

use super::judge::{judge, Next};
use super::Shared;
use crate::policy::encode;
use crate::policy::gate::Admit;
use crate::state::outcome::{Envelope, Outcome};
use crate::state::stats::Stage;

/// What [`Client::send`](crate::Client::send) does once shutdown has begun.
///
/// ```
/// use std::time::Duration;
/// use posthaste::AfterShutdown;
/// let guard = posthaste::builder("http://127.0.0.1:9/")
///     .after_shutdown(AfterShutdown::SendSync(Duration::from_millis(500)))
///     .start()?;
/// # drop(guard);
/// # Ok::<(), posthaste::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AfterShutdown {
    /// `send` returns [`SendError::Closed`](crate::SendError::Closed) with the event, which is
    /// not counted. The default.
    #[default]
    Refuse,
    /// `send` delivers the event itself, on the caller's thread: one attempt, each phase of
    /// the request bounded by the given timeout (1 ms – 60 s), no retry. The event is counted
    /// and settled like any other (`Delivered`, `Rejected`, `Failed`, or `Spilled` if a spill
    /// file is configured and the attempt failed for a transient reason); `send` returns
    /// `Ok`. It is not attempted while the endpoint gate is closed (a `Retry-After` pause or
    /// an open circuit). Like `fallback_to_sync` in the async logging backends.
    SendSync(Duration),
}

/// Delivers `env` on the caller's thread: one attempt bounded by `timeout`, counted and
/// settled like any event (see [`AfterShutdown::SendSync`]).
pub(crate) fn send_now(shared: &Shared, env: Envelope, timeout: Duration) {
    let counters = &shared.ledger.counters;
    counters.submitted();
    counters.started(1);
    let batch = [env];
    let endpoint = shared.transport.endpoint();
    let (outcome, transient) = match shared.gate.admit(Instant::now(), false) {
        Admit::Go => {
            let (body, headers) =
                encode::encode_once(&shared.options.encode, &batch, (&super::fresh_id(), super::unix_now()));
            counters.request(false, body.len());
            let result = shared.transport.send(&body, &headers, Some(timeout));
            let cap = shared.options.retry.retry_after_cap_value();
            let (outcome, transient) = match judge(result, endpoint, 1, 1, cap) {
                Next::Settle(outcome) => (outcome, false),
                Next::Partial { status, attempts, .. } => (Outcome::Delivered { status, attempts }, false),
                Next::Retry { reason, .. } => {
                    let reason = format!("{reason}; sent after shutdown: not retried");
                    (Outcome::Failed { reason, attempts: 1 }, true)
                }
                // A request of one event is never split.
                Next::Split => unreachable_split(),
            };
            shared.gate.record(Instant::now(), !transient);
            (outcome, transient)
        }
        Admit::Wait(_) | Admit::Probing(_) | Admit::NoBudget(_) => {
            let reason =
                format!("{endpoint}: not sent after shutdown: paused by Retry-After or open circuit");
            (Outcome::Failed { reason, attempts: 0 }, true)
        }
    };
    if transient {
        shared.ledger.settle_all_or_spill(&batch, &outcome, Stage::InFlight);
    } else {
        shared.ledger.settle_all(&batch, &outcome, Stage::InFlight);
    }
}

/// `judge` splits only requests of several events.
fn unreachable_split() -> (Outcome, bool) {
    let reason = "internal error: a single event was split".to_string();
    (Outcome::Failed { reason, attempts: 1 }, false)
}
