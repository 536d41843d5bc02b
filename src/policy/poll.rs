//! [`Poll`]: a poller's options, and its pure rules with the clock and the jitter injected:
//! when the next poll runs (a fixed grid of ticks, jittered; a slow poll skips ticks and
//! counts them), how long it backs off while failing (doubling, capped, `Retry-After`
//! honoured), health transitions, the default extractor and the pagination stop rules. The
//! poller thread (`runtime/poller.rs`) reads the clock and calls in here.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::Error;

/// Splits a response into items.
pub(crate) type Extract = Arc<dyn Fn(&Value) -> Vec<Value> + Send + Sync>;
/// Receives each item on the poller's thread.
pub(crate) type OnItem = Arc<dyn Fn(Value) + Send + Sync>;
/// Receives each health transition.
pub(crate) type OnHealth = Arc<dyn Fn(&Health) + Send + Sync>;
/// Gives the next page's URL from a page.
pub(crate) type NextPage = Arc<dyn Fn(&Value) -> Option<String> + Send + Sync>;

/// A poller's health, reported to [`Poll::on_health`] on each transition.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Health {
    /// Consecutive failures reached the threshold ([`Poll::failure_threshold`]).
    Failing {
        /// Consecutive failed polls so far.
        failures: u32,
    },
    /// A poll succeeded after the poller was failing.
    Recovered {
        /// How many polls had failed in a row.
        after_failures: u32,
    },
}

/// Where a poller's items go.
#[derive(Clone)]
pub(crate) enum Sink {
    Callback(OnItem),
    /// A delivery endpoint, by name (resolved at `start()`).
    Forward(String),
}

/// Calls an HTTP API at an interval and hands each item of the answer to a callback or to a
/// delivery endpoint. Made by [`poll`], added with [`Builder::poll`](crate::Builder::poll).
///
/// One thread per poller, started by `start()` and stopped by the shutdown path within its
/// deadline; it uses the builder's network configuration (proxy, roots, client certificate).
/// The first poll runs when `start()` returns; later ones on a fixed grid of ticks
/// (`interval`, each delayed by a random part of `jitter`), never two at once: a poll that outlasts a tick skips it (counted in
/// [`PollStats::skipped_ticks`]). Answers carrying `ETag` or `Last-Modified` make the next poll
/// conditional (`If-None-Match`, `If-Modified-Since`); a `304` yields no items. While polls
/// fail (connection errors, timeouts, non-2xx answers, bodies that are not JSON) the poller
/// backs off: the n-th consecutive failure waits `interval × 2ⁿ⁻¹`, capped by `max_backoff`,
/// or longer if the server's `Retry-After` says so (honoured up to an hour).
///
/// ```
/// use std::time::Duration;
/// let guard = posthaste::builder("http://127.0.0.1:9/events")
///     .poll(
///         "payments",
///         posthaste::poll("http://127.0.0.1:9/payments?status=pending")
///             .interval(Duration::from_secs(30))
///             .bearer_auth("token")
///             .extract(|v| v["data"].as_array().cloned().unwrap_or_default())
///             .on_item(|payment| println!("{payment}")),
///     )
///     .start()?;
/// # drop(guard);
/// # Ok::<(), posthaste::Error>(())
/// ```
#[derive(Clone)]
#[must_use = "a Poll does nothing until it is added with `Builder::poll`"]
pub struct Poll {
    pub(crate) url: String,
    pub(crate) method: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) interval: Duration,
    pub(crate) jitter: Option<Duration>,
    pub(crate) request_timeout: Option<Duration>,
    pub(crate) max_backoff: Option<Duration>,
    pub(crate) failure_threshold: u32,
    pub(crate) extract: Option<Extract>,
    pub(crate) sink: Option<Sink>,
    pub(crate) on_health: Option<OnHealth>,
    pub(crate) next_page: Option<NextPage>,
    pub(crate) max_pages: usize,
}

/// Starts configuring a poller of `url`. See [`Poll`].
pub fn poll(url: impl Into<String>) -> Poll {
    Poll {
        url: url.into(),
        method: "GET".into(),
        headers: Vec::new(),
        query: Vec::new(),
        interval: Duration::from_secs(60),
        jitter: None,
        request_timeout: None,
        max_backoff: None,
        failure_threshold: 1,
        extract: None,
        sink: None,
        on_health: None,
        next_page: None,
        max_pages: 10,
    }
}

impl Poll {
    /// Time between two ticks (1 ms – 1 day). Defaults to 60 s.
    pub fn interval(mut self, d: Duration) -> Poll {
        self.interval = d;
        self
    }

    /// Each poll runs up to this much after its tick, at random (must be shorter than the
    /// interval), so that a fleet doesn't poll in lockstep. Defaults to a tenth of the interval.
    pub fn jitter(mut self, d: Duration) -> Poll {
        self.jitter = Some(d);
        self
    }

    /// Bounds each phase of a poll's request (connect, send, wait for the answer, read it);
    /// must be shorter than the interval (checked by `start()`). Defaults to the builder's
    /// `request_timeout`, capped at half the interval.
    pub fn request_timeout(mut self, d: Duration) -> Poll {
        self.request_timeout = Some(d);
        self
    }

    /// The longest wait between polls while failing (at least the interval). Defaults to
    /// 8 × the interval.
    pub fn max_backoff(mut self, d: Duration) -> Poll {
        self.max_backoff = Some(d);
        self
    }

    /// The HTTP method. Defaults to `"GET"`.
    pub fn method(mut self, method: impl Into<String>) -> Poll {
        self.method = method.into();
        self
    }

    /// Adds a request header (replacing one of the same name). Values are never shown.
    /// Defaults to none.
    pub fn header(mut self, name: impl AsRef<str>, value: impl Into<String>) -> Poll {
        let name = name.as_ref();
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// Sends `Authorization: Bearer <token>`. Defaults to no authorization.
    pub fn bearer_auth(self, token: impl AsRef<str>) -> Poll {
        let value = format!("Bearer {}", token.as_ref());
        self.header("Authorization", value)
    }

    /// Sends `Authorization: Basic …`. Defaults to no authorization.
    pub fn basic_auth(self, user: impl AsRef<str>, password: impl AsRef<str>) -> Poll {
        let raw = format!("{}:{}", user.as_ref(), password.as_ref());
        self.header("Authorization", format!("Basic {}", crate::util::base64(raw.as_bytes())))
    }

    /// Adds a query parameter (percent-encoded) to the URL. Defaults to none.
    pub fn query(mut self, name: impl Into<String>, value: impl Into<String>) -> Poll {
        self.query.push((name.into(), value.into()));
        self
    }

    /// Splits a JSON answer into items. Defaults to: an array gives its elements, anything
    /// else is one item.
    pub fn extract<F>(mut self, f: F) -> Poll
    where
        F: Fn(&Value) -> Vec<Value> + Send + Sync + 'static,
    {
        self.extract = Some(Arc::new(f));
        self
    }

    /// Calls `f` with each item, on the poller's thread. A panic in it is caught and counted
    /// ([`PollStats::panics`]). Replaces [`forward_to`](Poll::forward_to). Defaults to none:
    /// items are counted and dropped.
    pub fn on_item<F>(mut self, f: F) -> Poll
    where
        F: Fn(Value) + Send + Sync + 'static,
    {
        self.sink = Some(Sink::Callback(Arc::new(f)));
        self
    }

    /// Sends each item as an event to the endpoint called `endpoint` (a relay), where it is
    /// queued, counted and settled like any event; the name is checked by `start()`. Items
    /// the endpoint's queue refuses are counted in [`PollStats::forward_refused`]. Replaces
    /// [`on_item`](Poll::on_item).
    pub fn forward_to(mut self, endpoint: impl Into<String>) -> Poll {
        self.sink = Some(Sink::Forward(endpoint.into()));
        self
    }

    /// Calls `f` on each health transition: [`Health::Failing`] when consecutive failures
    /// reach the threshold, [`Health::Recovered`] at the next success. Defaults to none.
    pub fn on_health<F>(mut self, f: F) -> Poll
    where
        F: Fn(&Health) + Send + Sync + 'static,
    {
        self.on_health = Some(Arc::new(f));
        self
    }

    /// Consecutive failures that make the poller [`Health::Failing`] (≥ 1). Defaults to 1.
    pub fn failure_threshold(mut self, n: u32) -> Poll {
        self.failure_threshold = n;
        self
    }

    /// Follows pages: after each page, `next` gives the next page's absolute URL (or `None`
    /// to stop). A poll stops at `max_pages` or when a URL repeats. Only the first page is
    /// conditional. Defaults to one page per poll.
    pub fn paginate<F>(mut self, next: F) -> Poll
    where
        F: Fn(&Value) -> Option<String> + Send + Sync + 'static,
    {
        self.next_page = Some(Arc::new(next));
        self
    }

    /// The most pages one poll fetches (1–10,000). Defaults to 10.
    pub fn max_pages(mut self, n: usize) -> Poll {
        self.max_pages = n;
        self
    }

    /// The URL with the query parameters appended, percent-encoded.
    pub(crate) fn url_with_query(&self) -> String {
        let mut url = self.url.clone();
        for (i, (name, value)) in self.query.iter().enumerate() {
            let sep = if i == 0 && !url.contains('?') { '?' } else { '&' };
            url.push(sep);
            url.push_str(&encode_component(name));
            url.push('=');
            url.push_str(&encode_component(value));
        }
        url
    }

    /// The rules, with every default filled in; `request_timeout` is the builder's.
    pub(crate) fn timing(&self, request_timeout: Duration) -> Result<Timing, Error> {
        let bad = |reason: String| Err(Error::InvalidOption { option: "poll", reason });
        let interval = self.interval;
        if interval < Duration::from_millis(1) || interval > Duration::from_secs(86_400) {
            return bad(format!("interval {interval:?} is not within 1ms..=1day"));
        }
        let jitter = self.jitter.unwrap_or(interval / 10);
        if jitter >= interval {
            return bad(format!("jitter {jitter:?} must be shorter than the interval {interval:?}"));
        }
        let timeout = self.request_timeout.unwrap_or_else(|| request_timeout.min(interval / 2));
        if timeout >= interval || timeout.is_zero() {
            return bad(format!(
                "request_timeout {timeout:?} must be non-zero and shorter than the interval {interval:?}"
            ));
        }
        let cap = self.max_backoff.unwrap_or(interval.saturating_mul(8));
        if cap < interval {
            return bad(format!("max_backoff {cap:?} is shorter than the interval {interval:?}"));
        }
        if self.failure_threshold == 0 {
            return bad("failure_threshold must be at least 1".into());
        }
        if !(1..=10_000).contains(&self.max_pages) {
            return bad(format!("max_pages {} is not within 1..=10000", self.max_pages));
        }
        Ok(Timing { interval, jitter, timeout, cap, threshold: self.failure_threshold })
    }
}

impl fmt::Debug for Poll {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Poll")
            .field("url", &crate::util::redact_url(&self.url))
            .field("method", &self.method)
            .field("headers", &names)
            .field("interval", &self.interval)
            .field("jitter", &self.jitter)
            .field(
                "forward_to",
                &match &self.sink {
                    Some(Sink::Forward(name)) => Some(name.as_str()),
                    _ => None,
                },
            )
            .finish_non_exhaustive()
    }
}

/// One poller's counters. Get them from [`Client::poll_stats`](crate::Client::poll_stats) or
/// [`Report::pollers`](crate::Report::pollers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PollStats {
    /// Polls made (a poll of several pages counts once).
    pub polls: u64,
    /// Polls answered `304 Not Modified`: no items.
    pub not_modified: u64,
    /// Items extracted and handed to the callback or the endpoint.
    pub items: u64,
    /// Polls that failed (connection, timeout, non-2xx, not JSON).
    pub failures: u64,
    /// Ticks skipped because a poll was still running.
    pub skipped_ticks: u64,
    /// Pages fetched (first pages included).
    pub pages: u64,
    /// Items the forward endpoint's queue refused (full, or shut down).
    pub forward_refused: u64,
    /// Panics caught in `on_item`, `extract`, `paginate` or `on_health`.
    pub panics: u64,
}

/// The longest `Retry-After` a poller honours.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// A poller's rules with every default filled in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timing {
    pub(crate) interval: Duration,
    pub(crate) jitter: Duration,
    pub(crate) timeout: Duration,
    pub(crate) cap: Duration,
    pub(crate) threshold: u32,
}

impl Timing {
    /// Tick `k` of a grid starting at `t0`, delayed by `unit` (in [0, 1)) of the jitter.
    pub(crate) fn at(&self, t0: Instant, k: u64, unit: f64) -> Instant {
        let k = u32::try_from(k).unwrap_or(u32::MAX);
        t0 + self.interval.saturating_mul(k) + self.jitter.mul_f64(unit.clamp(0.0, 1.0))
    }

    /// After the poll of tick `k` ended at `end`: the next tick to run and how many ticks were
    /// skipped (those that came while the poll ran).
    pub(crate) fn next_tick(&self, t0: Instant, k: u64, end: Instant) -> (u64, u64) {
        let elapsed = end.saturating_duration_since(t0);
        // The first tick at or after `end`, and never before k + 1.
        let n = elapsed.as_nanos().div_ceil(self.interval.as_nanos().max(1));
        let next = u64::try_from(n).unwrap_or(u64::MAX).max(k + 1);
        (next, next - k - 1)
    }

    /// The wait after the `failures`-th consecutive failure: `interval × 2ⁿ⁻¹` capped at
    /// `max_backoff`, or the server's `Retry-After` if that is longer (up to
    /// [`MAX_RETRY_AFTER`]).
    pub(crate) fn backoff(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        let doubling = self.interval.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
        doubling.min(self.cap).max(retry_after.unwrap_or_default().min(MAX_RETRY_AFTER))
    }

    /// The transition a poll's result makes, given the consecutive failures before it.
    pub(crate) fn transition(&self, failures_before: u32, ok: bool) -> Option<Health> {
        match ok {
            true if failures_before >= self.threshold => {
                Some(Health::Recovered { after_failures: failures_before })
            }
            true => None,
            false if failures_before + 1 == self.threshold => {
                Some(Health::Failing { failures: failures_before + 1 })
            }
            false => None,
        }
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode_component(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The default extractor: an array gives its elements, anything else is one item.
pub(crate) fn default_extract(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const S: Duration = Duration::from_secs(1);

    fn timing() -> Timing {
        poll("http://h/").interval(10 * S).jitter(2 * S).timing(15 * S).unwrap()
    }

    #[test]
    fn defaults_fill_in_and_bad_values_are_refused() {
        let t = poll("http://h/").timing(15 * S).unwrap();
        assert_eq!(
            (t.interval, t.jitter, t.timeout, t.cap, t.threshold),
            (60 * S, 6 * S, 15 * S, 480 * S, 1)
        );
        // The default request timeout is capped at half the interval.
        assert_eq!(poll("http://h/").interval(4 * S).timing(15 * S).unwrap().timeout, 2 * S);
        for (p, what) in [
            (poll("h").interval(S).request_timeout(S), "request_timeout"),
            (poll("h").interval(S).request_timeout(2 * S), "request_timeout"),
            (poll("h").interval(S).jitter(S), "jitter"),
            (poll("h").interval(Duration::ZERO), "interval"),
            (poll("h").interval(10 * S).max_backoff(S), "max_backoff"),
            (poll("h").failure_threshold(0), "failure_threshold"),
            (poll("h").max_pages(0), "max_pages"),
        ] {
            let e = p.timing(15 * S).unwrap_err();
            assert!(e.to_string().contains(what), "{e}");
        }
    }

    #[test]
    fn ticks_are_a_jittered_grid() {
        let t = timing();
        let t0 = Instant::now();
        assert_eq!(t.at(t0, 0, 0.0), t0);
        assert_eq!(t.at(t0, 3, 0.5), t0 + 31 * S);
        assert_eq!(t.at(t0, 1, 1.7), t0 + 12 * S, "the unit is clamped");
    }

    #[test]
    fn a_slow_poll_skips_the_ticks_it_outlasted() {
        let t = timing();
        let t0 = Instant::now();
        assert_eq!(t.next_tick(t0, 0, t0 + 3 * S), (1, 0), "a quick poll: the next tick");
        assert_eq!(t.next_tick(t0, 0, t0 + 10 * S), (1, 0), "ended on the tick: it still runs");
        assert_eq!(t.next_tick(t0, 0, t0 + 25 * S), (3, 2), "ticks 1 and 2 came while it ran");
        assert_eq!(t.next_tick(t0, 4, t0 + 41 * S), (5, 0));
        assert_eq!(t.next_tick(t0, 4, t0 + 75 * S), (8, 3));
        assert_eq!(t.next_tick(t0, 2, t0 + S), (3, 0), "never goes back");
    }

    #[test]
    fn failing_backs_off_doubling_to_the_cap_and_honours_retry_after() {
        let t = poll("h").interval(10 * S).max_backoff(60 * S).timing(15 * S).unwrap();
        let waits: Vec<Duration> = (1..=6).map(|n| t.backoff(n, None)).collect();
        assert_eq!(waits, [10 * S, 20 * S, 40 * S, 60 * S, 60 * S, 60 * S]);
        assert_eq!(t.backoff(1, Some(30 * S)), 30 * S, "Retry-After longer than the backoff");
        assert_eq!(t.backoff(3, Some(5 * S)), 40 * S, "shorter: the backoff wins");
        assert_eq!(t.backoff(1, Some(600 * S)), 600 * S, "Retry-After beyond max_backoff is honoured");
        assert_eq!(t.backoff(1, Some(9999 * S)), 3600 * S, "up to an hour");
        assert_eq!(t.backoff(u32::MAX, None), 60 * S);
    }

    #[test]
    fn health_transitions_once_each_way() {
        let t = poll("h").failure_threshold(3).timing(15 * S).unwrap();
        let mut failures = 0;
        let mut seen = Vec::new();
        for ok in [false, false, false, false, true, true, false, true] {
            if let Some(h) = t.transition(failures, ok) {
                seen.push(h);
            }
            failures = if ok { 0 } else { failures + 1 };
        }
        assert_eq!(seen, [Health::Failing { failures: 3 }, Health::Recovered { after_failures: 4 }]);
    }

    #[test]
    fn query_parameters_are_appended_and_encoded() {
        let p = poll("http://h/p").query("status", "pending").query("q", "a b&c=é");
        assert_eq!(p.url_with_query(), "http://h/p?status=pending&q=a%20b%26c%3D%C3%A9");
        assert_eq!(poll("http://h/p?x=1").query("y", "2").url_with_query(), "http://h/p?x=1&y=2");
    }

    #[test]
    fn the_default_extractor_splits_arrays() {
        assert_eq!(default_extract(&json!([1, {"a": 2}])), [json!(1), json!({"a": 2})]);
        assert_eq!(default_extract(&json!({"a": 1})), [json!({"a": 1})]);
        assert_eq!(default_extract(&json!([])), Vec::<Value>::new());
    }
}
