//! Pure retry logic: the [`Retry`] policy, exponential backoff with full jitter, the status
//! classification table and `Retry-After` parsing.
//!
//! No clocks, threads or randomness of its own: callers pass `elapsed`, `now` and a jitter value
//! in `[0, 1)`, so every rule here is unit-tested deterministically.

use std::time::{Duration, SystemTime};

use crate::error::Error;

/// The retry policy: which attempts are made, and how long to wait between them.
///
/// Transient failures (connection errors, timeouts, 408, 425, 429, 500, 502, 503, 504) are
/// retried with exponential backoff and full jitter: before retry *n* the worker waits a random
/// time in `[0, min(max_delay, initial_delay × multiplierⁿ⁻¹))`. A `Retry-After` answer is a
/// floor on that wait (clamped to [`Retry::retry_after_cap`]) and pauses every worker sending
/// to the endpoint. Retrying stops after `max_attempts` requests or when the next wait would end
/// past `max_elapsed` since the first attempt; the event is then `Failed`.
///
/// ```
/// use std::time::Duration;
/// let policy = posthaste::Retry::new()
///     .initial_delay(Duration::from_millis(100))
///     .max_attempts(5)
///     .max_elapsed(Duration::from_secs(10));
/// let guard = posthaste::builder("http://127.0.0.1:9/").retry(policy).start()?;
/// # drop(guard);
/// # Ok::<(), posthaste::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Retry {
    initial_delay: Duration,
    multiplier: f64,
    max_delay: Duration,
    max_attempts: u32,
    max_elapsed: Duration,
    retry_after_cap: Duration,
    jitter: bool,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry {
            initial_delay: Duration::from_millis(500),
            multiplier: 2.0,
            max_delay: Duration::from_secs(30),
            max_attempts: 10,
            max_elapsed: Duration::from_secs(120),
            retry_after_cap: Duration::from_secs(60),
            jitter: true,
        }
    }
}

impl Retry {
    /// The default policy (see each setter for its default).
    pub fn new() -> Retry {
        Retry::default()
    }

    /// One attempt, never retried.
    pub fn none() -> Retry {
        Retry { max_attempts: 1, ..Retry::default() }
    }

    /// The backoff cap before the first retry. Defaults to 500 ms.
    pub fn initial_delay(mut self, d: Duration) -> Retry {
        self.initial_delay = d;
        self
    }

    /// How much the backoff cap grows per retry (≥ 1.0). Defaults to 2.0.
    pub fn multiplier(mut self, m: f64) -> Retry {
        self.multiplier = m;
        self
    }

    /// The largest backoff wait. Defaults to 30 s.
    pub fn max_delay(mut self, d: Duration) -> Retry {
        self.max_delay = d;
        self
    }

    /// Requests per event (or batch) at most, the first included (≥ 1). Defaults to 10.
    pub fn max_attempts(mut self, n: u32) -> Retry {
        self.max_attempts = n;
        self
    }

    /// Time from the first attempt after which no retry is started. Defaults to 120 s.
    pub fn max_elapsed(mut self, d: Duration) -> Retry {
        self.max_elapsed = d;
        self
    }

    /// The longest `Retry-After` honoured; longer ones are clamped to it. Defaults to 60 s.
    pub fn retry_after_cap(mut self, d: Duration) -> Retry {
        self.retry_after_cap = d;
        self
    }

    /// Whether backoff waits are randomized (full jitter). Turn it off only where one client
    /// talks to an endpoint, or in tests that need exact waits: without jitter, clients that
    /// failed together retry together. Defaults to `true`.
    pub fn jitter(mut self, on: bool) -> Retry {
        self.jitter = on;
        self
    }

    /// A jitter value for [`Retry::backoff`] from `draw` (a uniform value in `[0, 1)`), or the
    /// full cap when jitter is off.
    pub(crate) fn jitter_unit(&self, draw: impl FnOnce() -> f64) -> f64 {
        if self.jitter {
            draw()
        } else {
            1.0
        }
    }

    pub(crate) fn retry_after_cap_value(&self) -> Duration {
        self.retry_after_cap
    }

    pub(crate) fn max_elapsed_value(&self) -> Duration {
        self.max_elapsed
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        let bad = |option, reason: String| Err(Error::InvalidOption { option, reason });
        if self.max_attempts == 0 {
            return bad("retry.max_attempts", "must be at least 1 (use Retry::none() for no retries)".into());
        }
        if !(self.multiplier.is_finite() && self.multiplier >= 1.0 && self.multiplier <= 100.0) {
            return bad("retry.multiplier", format!("{} is not within 1.0..=100.0", self.multiplier));
        }
        if self.initial_delay > self.max_delay {
            return bad(
                "retry.initial_delay",
                format!("{:?} is larger than max_delay {:?}", self.initial_delay, self.max_delay),
            );
        }
        let day = Duration::from_secs(86_400);
        for (option, d) in [
            ("retry.max_delay", self.max_delay),
            ("retry.max_elapsed", self.max_elapsed),
            ("retry.retry_after_cap", self.retry_after_cap),
        ] {
            if d > day {
                return bad(option, format!("{d:?} is longer than a day"));
            }
        }
        Ok(())
    }

    /// The backoff wait before retry number `retry` (1 = the first retry), for a jitter value
    /// `unit` in `[0, 1)`: full jitter over the exponential cap.
    pub(crate) fn backoff(&self, retry: u32, unit: f64) -> Duration {
        let exp = self.multiplier.powi(retry.saturating_sub(1).min(1_000) as i32);
        let cap = self.initial_delay.as_secs_f64() * exp;
        let cap = cap.min(self.max_delay.as_secs_f64());
        Duration::from_secs_f64(cap * unit.clamp(0.0, 1.0))
    }

    /// Whether to retry after `attempts` requests that started `elapsed` ago, and how long to
    /// wait first. `retry_after` is the server's floor (already clamped).
    pub(crate) fn next_wait(
        &self,
        attempts: u32,
        elapsed: Duration,
        retry_after: Option<Duration>,
        unit: f64,
    ) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        let wait = self.backoff(attempts, unit).max(retry_after.unwrap_or_default());
        if elapsed.saturating_add(wait) > self.max_elapsed {
            return None;
        }
        Some(wait)
    }
}

/// What to do with an HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// 2xx.
    Delivered,
    /// Transient: try again after a backoff.
    Retry,
    /// The endpoint refused it; retrying won't help.
    Reject,
    /// 407 from a proxy: permanent failure of the hop, not of the event.
    Fail,
    /// 413: the body is too large (split a batch, else reject).
    TooLarge,
}

/// The classification table.
pub(crate) fn classify_status(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        408 | 425 | 429 | 500 | 502 | 503 | 504 => Verdict::Retry,
        407 => Verdict::Fail,
        413 => Verdict::TooLarge,
        _ => Verdict::Reject,
    }
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP-date (relative to `now`), clamped to
/// `cap`. Garbage gives `None` (the normal backoff applies).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime, cap: Duration) -> Option<Duration> {
    let value = value.trim();
    let delay = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits to fit is still "a very long time".
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(delay.min(cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn classification_table() {
        for s in [200, 201, 204, 299] {
            assert_eq!(classify_status(s), Verdict::Delivered, "{s}");
        }
        for s in [408, 425, 429, 500, 502, 503, 504] {
            assert_eq!(classify_status(s), Verdict::Retry, "{s}");
        }
        for s in [100, 301, 302, 304, 400, 401, 403, 404, 409, 422, 501, 505, 599] {
            assert_eq!(classify_status(s), Verdict::Reject, "{s}");
        }
        assert_eq!(classify_status(407), Verdict::Fail);
        assert_eq!(classify_status(413), Verdict::TooLarge);
    }

    #[test]
    fn backoff_is_full_jitter_over_exponential_cap() {
        let p = Retry::new().initial_delay(100 * MS).max_delay(1000 * MS);
        assert_eq!(p.backoff(1, 0.0), Duration::ZERO);
        assert_eq!(p.backoff(1, 0.5), 50 * MS);
        assert_eq!(p.backoff(2, 0.5), 100 * MS);
        assert_eq!(p.backoff(3, 0.5), 200 * MS);
        // Capped by max_delay.
        assert_eq!(p.backoff(10, 0.5), 500 * MS);
        assert_eq!(p.backoff(u32::MAX, 0.999_999), Duration::from_secs_f64(0.999_999));
        // Jitter outside [0, 1] is clamped rather than trusted.
        assert_eq!(p.backoff(1, 7.0), 100 * MS);
        // Without jitter the wait is the cap itself.
        let exact = p.clone().jitter(false);
        assert_eq!(exact.backoff(2, exact.jitter_unit(|| 0.25)), 200 * MS);
        assert_eq!(p.backoff(2, p.jitter_unit(|| 0.25)), 50 * MS);
    }

    #[test]
    fn attempt_and_time_budgets() {
        let p = Retry::new().initial_delay(100 * MS).max_attempts(3).max_elapsed(Duration::from_secs(1));
        assert_eq!(p.next_wait(1, Duration::ZERO, None, 0.5), Some(50 * MS));
        assert_eq!(p.next_wait(2, Duration::ZERO, None, 0.5), Some(100 * MS));
        assert_eq!(p.next_wait(3, Duration::ZERO, None, 0.5), None, "attempt budget");
        assert_eq!(p.next_wait(1, 980 * MS, None, 0.5), None, "time budget");
        assert_eq!(Retry::none().next_wait(1, Duration::ZERO, None, 0.5), None);
    }

    #[test]
    fn retry_after_is_a_floor() {
        let p = Retry::new().initial_delay(100 * MS);
        assert_eq!(p.next_wait(1, Duration::ZERO, Some(2000 * MS), 0.5), Some(2000 * MS));
        assert_eq!(p.next_wait(1, Duration::ZERO, Some(MS), 0.5), Some(50 * MS));
    }

    #[test]
    fn retry_after_parsing() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 2015-10-21 07:28:00
        let cap = Duration::from_secs(60);
        assert_eq!(parse_retry_after("7", now, cap), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now, cap), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("86400", now, cap), Some(cap));
        assert_eq!(parse_retry_after("99999999999999999999999", now, cap), Some(cap));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now, cap),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now, cap), Some(Duration::ZERO));
        for garbage in ["", "soon", "-5", "1.5", "Wed, 99 Foo 2015"] {
            assert_eq!(parse_retry_after(garbage, now, cap), None, "{garbage:?}");
        }
    }

    #[test]
    fn validation() {
        assert!(Retry::new().validate().is_ok());
        assert!(Retry::none().validate().is_ok());
        assert!(Retry::new().max_attempts(0).validate().is_err());
        assert!(Retry::new().multiplier(0.5).validate().is_err());
        assert!(Retry::new().multiplier(f64::NAN).validate().is_err());
        assert!(Retry::new().initial_delay(Duration::from_secs(60)).validate().is_err());
        assert!(Retry::new().max_elapsed(Duration::from_secs(100_000)).validate().is_err());
    }
}
