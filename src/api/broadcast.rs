//! [`Broadcast`]: which endpoints one event is copied to, and whether the copies stop at the
//! first permanent failure; [`BroadcastReceipt`]: one outcome per endpoint.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::state::outcome::{Outcome, Receipt};

/// How [`Client::broadcast_with`](crate::Client::broadcast_with) copies an event: to every
/// endpoint or to a named subset, with or without `fail_fast`.
///
/// Every copy is an event of its endpoint like any other: queued, retried, counted in that
/// endpoint's [`Stats`](crate::Stats) and settled with one [`Outcome`].
///
/// ```
/// use posthaste::Broadcast;
/// let guard = posthaste::builder("http://127.0.0.1:9/a")
///     .endpoint("b", posthaste::endpoint("http://127.0.0.1:9/b"))
///     .endpoint("c", posthaste::endpoint("http://127.0.0.1:9/c"))
///     .start()?;
/// let receipt = guard
///     .client()
///     .broadcast_with(&Broadcast::to(["b", "c"]).fail_fast(true), serde_json::json!({"deploy": 42}))
///     .unwrap();
/// assert_eq!(receipt.endpoints().collect::<Vec<_>>(), ["b", "c"]);
/// # drop(guard);
/// # Ok::<(), posthaste::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Broadcast {
    to: Option<Vec<String>>,
    fail_fast: bool,
}

impl Broadcast {
    /// A copy to every endpoint, the builder's own first. The default.
    pub fn all() -> Broadcast {
        Broadcast::default()
    }

    /// A copy to each named endpoint (the builder's own is
    /// [`DEFAULT_ENDPOINT`](crate::DEFAULT_ENDPOINT)), in this order; a name given twice gets
    /// one copy. An unknown name makes the broadcast fail with
    /// [`SendError::UnknownEndpoint`](crate::SendError::UnknownEndpoint) before any copy is
    /// queued.
    pub fn to<I, S>(endpoints: I) -> Broadcast
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut names: Vec<String> = Vec::new();
        for name in endpoints {
            let name = name.into();
            if !names.contains(&name) {
                names.push(name);
            }
        }
        Broadcast { to: Some(names), fail_fast: false }
    }

    /// Once one copy fails permanently (`Rejected`, `Failed` or `Dropped`), the copies not
    /// yet sent — queued, or waiting for a retry — are settled [`Outcome::Cancelled`] instead
    /// of being sent. Copies already on the wire cannot be recalled: they are reported as they
    /// end. Defaults to off: every copy is delivered or fails on its own.
    pub fn fail_fast(mut self, on: bool) -> Broadcast {
        self.fail_fast = on;
        self
    }

    /// The endpoint names this broadcast reaches, out of `all`.
    pub(crate) fn targets<'a>(&'a self, all: &'a [String]) -> Result<Vec<&'a str>, ()> {
        match &self.to {
            None => Ok(all.iter().map(String::as_str).collect()),
            Some(names) => {
                names.iter().map(|n| if all.contains(n) { Ok(n.as_str()) } else { Err(()) }).collect()
            }
        }
    }

    /// A receipt for one copy (sharing the broadcast's `fail_fast` flag when it has one).
    pub(crate) fn flag(&self) -> Option<Arc<AtomicBool>> {
        self.fail_fast.then(|| Arc::new(AtomicBool::new(false)))
    }
}

/// The outcomes of a broadcast's copies, one per endpoint, in the order they were sent.
///
/// ```no_run
/// # let guard = posthaste::builder("http://127.0.0.1:9/").start().unwrap();
/// let receipt = guard.client().broadcast(serde_json::json!({"deploy": 42})).unwrap();
/// for (endpoint, outcome) in receipt.wait(std::time::Duration::from_secs(5)) {
///     println!("{endpoint}: {outcome:?}");
/// }
/// ```
#[derive(Clone, Debug)]
pub struct BroadcastReceipt {
    copies: Vec<(String, Receipt)>,
}

impl BroadcastReceipt {
    pub(crate) fn new(copies: Vec<(String, Receipt)>) -> BroadcastReceipt {
        BroadcastReceipt { copies }
    }

    /// The endpoints a copy went to.
    pub fn endpoints(&self) -> impl Iterator<Item = &str> {
        self.copies.iter().map(|(name, _)| name.as_str())
    }

    /// The receipt of the copy sent to `endpoint`, to wait for that copy alone.
    pub fn get(&self, endpoint: &str) -> Option<&Receipt> {
        self.copies.iter().find(|(name, _)| name == endpoint).map(|(_, r)| r)
    }

    /// Each endpoint's outcome so far, without waiting (`None`: still pending).
    pub fn try_outcomes(&self) -> Vec<(String, Option<Outcome>)> {
        self.copies.iter().map(|(name, r)| (name.clone(), r.try_outcome())).collect()
    }

    /// Waits up to `timeout` for every copy; `None` for copies still pending then.
    pub fn wait(&self, timeout: Duration) -> Vec<(String, Option<Outcome>)> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.wait_deadline(deadline),
            None => self.copies.iter().map(|(n, r)| (n.clone(), r.wait(timeout))).collect(),
        }
    }

    /// Waits until `deadline` for every copy; `None` for copies still pending then.
    pub fn wait_deadline(&self, deadline: Instant) -> Vec<(String, Option<Outcome>)> {
        self.copies.iter().map(|(name, r)| (name.clone(), r.wait_deadline(deadline))).collect()
    }

    /// True once every copy has settled `Delivered`.
    pub fn all_delivered(&self) -> bool {
        self.copies.iter().all(|(_, r)| r.try_outcome().is_some_and(|o| o.is_delivered()))
    }
}
