//! Shared endpoint state seen by every worker: the `Retry-After` pause.
//!
//! Lock-free: one atomic "paused until" instant. Workers read it before every request; any
//! worker that receives a `Retry-After` pushes it later (never earlier).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub(crate) struct Gate {
    epoch: Instant,
    /// Nanoseconds after `epoch` until which no request may start; 0 = not paused.
    paused_until: AtomicU64,
}

impl Gate {
    pub(crate) fn new() -> Gate {
        Gate { epoch: Instant::now(), paused_until: AtomicU64::new(0) }
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Pauses every worker until `now + d` (or later, if already paused longer).
    pub(crate) fn pause(&self, now: Instant, d: Duration) {
        let until = self.nanos(now + d);
        self.paused_until.fetch_max(until, Ordering::AcqRel);
    }

    /// The instant requests may resume, if that is after `now`.
    pub(crate) fn paused_until(&self, now: Instant) -> Option<Instant> {
        let until = self.paused_until.load(Ordering::Acquire);
        (until > self.nanos(now)).then(|| self.epoch + Duration::from_nanos(until))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_only_extends() {
        let g = Gate::new();
        let now = Instant::now();
        assert_eq!(g.paused_until(now), None);
        g.pause(now, Duration::from_secs(5));
        let until = g.paused_until(now).unwrap();
        g.pause(now, Duration::from_secs(1));
        assert_eq!(g.paused_until(now), Some(until));
        assert_eq!(g.paused_until(now + Duration::from_secs(6)), None);
    }
}
