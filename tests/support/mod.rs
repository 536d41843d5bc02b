//! Shared test support: the scripted loopback sink and small helpers.

#![allow(dead_code)] // Each test binary uses a different part of it.

pub mod proxy;
pub mod sink;
pub mod tls;

#[allow(unused_imports)]
pub use sink::{Progress, Reply, Request, Sink};

use std::time::Duration;

/// Generous bound for waits that normally end in milliseconds; only a failing test reaches it.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Checks the accounting invariant on a snapshot.
#[track_caller]
pub fn assert_invariant(s: &posthaste::Stats) {
    assert_eq!(
        s.submitted,
        s.delivered + s.rejected + s.failed + s.dropped + s.cancelled + s.abandoned + s.queued + s.in_flight,
        "invariant broken: {s:?}"
    );
}

/// A retry policy with tiny waits, for tests that exercise retries quickly.
pub fn fast_retry() -> posthaste::Retry {
    posthaste::Retry::new()
        .initial_delay(Duration::from_millis(1))
        .max_delay(Duration::from_millis(5))
        .max_attempts(5)
}

/// A port on 127.0.0.1 with nothing listening (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
