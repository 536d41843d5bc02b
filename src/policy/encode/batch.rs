//! [`Batch`]: the batching limits, and the pure gathering rules a worker applies with them.

use std::time::Duration;

use crate::error::Error;

/// Several events per request: the opt-in batching policy, set with
/// [`Builder::batch`](crate::Builder::batch).
///
/// A worker takes one event (waiting for it), then takes what is queued behind it; if the
/// batch is not full yet, it keeps taking what comes until the `linger` time (counted from the
/// first event) is over. The batch is full when it holds `max_events` or the
/// next event would take its estimated encoded size past `max_bytes` (that event starts the
/// next batch). Then it goes out in one request, laid out by the [`Encoding`](crate::Encoding). Under load
/// batches fill at once and go without lingering. While lingering a worker naps (a tenth of
/// the linger time, 1–10 ms) and takes what came after each nap, rather than waking for every
/// event, so producers never pay for waking it. During shutdown workers do not linger: they
/// send what is queued at once.
///
/// `max_bytes` is a hard limit on each request body (before gzip): a batch whose encoding
/// turns out larger than its estimate is split in halves before sending, and a single event
/// that encodes larger than `max_bytes` is never sent: it is
/// [`Rejected`](crate::Outcome::Rejected) with status 413, 0 attempts, and a reason naming its
/// size. A `413` answer to a batch splits it in halves and sends each half (down to single
/// events); a `413` to a single event rejects it.
///
/// ```
/// use std::time::Duration;
/// let guard = posthaste::builder("http://127.0.0.1:9/ingest")
///     .batch(posthaste::Batch::new().max_events(1_000).linger(Duration::from_millis(20)))
///     .encoding(posthaste::Encoding::Ndjson)
///     .start()?;
/// # drop(guard);
/// # Ok::<(), posthaste::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batch {
    max_events: usize,
    max_bytes: usize,
    linger: Duration,
}

impl Default for Batch {
    fn default() -> Batch {
        Batch { max_events: 500, max_bytes: 1024 * 1024, linger: Duration::from_millis(50) }
    }
}

impl Batch {
    /// The default batching policy: 500 events, 1 MiB, 50 ms linger.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// The most events in one request (1–1,000,000). Defaults to 500.
    pub fn max_events(mut self, n: usize) -> Batch {
        self.max_events = n;
        self
    }

    /// The largest request body in bytes, before compression (64 B–1 GiB). Defaults to 1 MiB.
    pub fn max_bytes(mut self, bytes: usize) -> Batch {
        self.max_bytes = bytes;
        self
    }

    /// How long a batch may wait for more events after its first one (≤ 60 s; zero sends
    /// whatever is queued at that moment without waiting). It bounds the delay batching adds.
    /// Defaults to 50 ms.
    pub fn linger(mut self, d: Duration) -> Batch {
        self.linger = d;
        self
    }

    pub(crate) fn max_bytes_value(&self) -> usize {
        self.max_bytes
    }

    pub(crate) fn linger_value(&self) -> Duration {
        self.linger
    }

    pub(super) fn validate(&self) -> Result<(), Error> {
        let bad = |option, reason: String| Err(Error::InvalidOption { option, reason });
        if !(1..=1_000_000).contains(&self.max_events) {
            return bad("batch.max_events", format!("{} is not within 1..=1000000", self.max_events));
        }
        if !(64..=1 << 30).contains(&self.max_bytes) {
            return bad("batch.max_bytes", format!("{} is not within 64..=1073741824", self.max_bytes));
        }
        if self.linger > Duration::from_secs(60) {
            return bad("batch.linger", format!("{:?} is longer than 60s", self.linger));
        }
        Ok(())
    }
}

/// Whether an event whose estimated share is `size` joins a batch that holds `count` events and
/// `bytes` estimated bytes; if not, it starts the next batch.
pub(crate) fn joins(limits: &Batch, count: usize, bytes: usize, size: usize) -> bool {
    count < limits.max_events && bytes.saturating_add(size) <= limits.max_bytes
}

/// True when a batch can take no more events, so gathering stops without waiting.
pub(crate) fn is_full(limits: &Batch, count: usize, bytes: usize) -> bool {
    count >= limits.max_events || bytes >= limits.max_bytes
}

/// How long a lingering worker sleeps before looking at the queue again, with `left` of the
/// `linger` time to go: a tenth of the linger time, between 1 ms and 10 ms. Short enough that a
/// queue filling up meanwhile is not left waiting for long; long enough that a worker wakes a
/// few hundred times a second at most, not once per event.
pub(crate) fn nap(left: Duration, linger: Duration) -> Duration {
    (linger / 10).clamp(Duration::from_millis(1), Duration::from_millis(10)).min(left)
}

/// How a chunk of `n > 1` events is split (after a `413`, or an encoding over `max_bytes`).
pub(crate) fn halves(n: usize) -> (usize, usize) {
    (n / 2, n - n / 2)
}
