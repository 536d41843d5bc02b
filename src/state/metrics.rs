//! [`Metrics`]: how busy the pipeline is and how long events wait, over a sliding window; and
//! the recorder workers feed once per request (no work on the producer's path but a sampled
//! timestamp).
//!
//! The recorder keeps one bucket per sixtieth of the window: time workers spent in requests,
//! and two log-scale histograms (wait: accepted → first attempt, sampled one event in
//! [`WAIT_SAMPLE`]; service: first attempt → outcome, one sample per request batch). Rates come
//! from snapshots of the ledger's totals taken at most once per bucket. All functions take
//! `now`, so the rules are tested with an injected clock.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// One event in this many gets an acceptance timestamp for the wait-time figures.
pub(crate) const WAIT_SAMPLE: u32 = 64;

/// Buckets per window.
const BUCKETS: usize = 60;
/// Histogram buckets: 4 per power of two of microseconds, from 1 µs to about 2^32 µs.
const HIST: usize = 4 * 33;

/// A snapshot of how the pipeline is doing, from [`Client::metrics`](crate::Client::metrics).
///
/// Rates and averages cover the last `window` ([`Builder::metrics_window`](crate::Builder::metrics_window),
/// 60 s by default), or the time since `start()` if that is shorter. Durations are `ZERO`
/// when nothing was measured in the window.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Metrics {
    /// Events waiting to be taken (queued, and retries waiting on the schedule).
    pub queued: u64,
    /// Worker threads.
    pub workers: usize,
    /// Workers in a request right now.
    pub busy_workers: usize,
    /// `busy_workers ÷ workers` now.
    pub load: f64,
    /// The share of the window the workers spent in requests (0.0–1.0).
    pub average_load: f64,
    /// Mean time from `send` to the first attempt (sampled: one event in 64).
    pub wait_mean: Duration,
    /// 99th percentile of the same (within 19 %: log-scale buckets).
    pub wait_p99: Duration,
    /// Mean time from a request's first attempt to its outcome (retries included).
    pub service_mean: Duration,
    /// 99th percentile of the same (within 19 %).
    pub service_p99: Duration,
    /// Events accepted per second over the window.
    pub arrival_rate: f64,
    /// Events settled (any outcome) per second over the window.
    pub departure_rate: f64,
    /// The window the rates and averages cover.
    pub window: Duration,
}

impl fmt::Display for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "queued {}, busy {}/{} (load {:.2}, {:.2} over {:?}), wait {:?} mean / {:?} p99, service {:?} mean / \
             {:?} p99, {:.1} in/s, {:.1} out/s",
            self.queued,
            self.busy_workers,
            self.workers,
            self.load,
            self.average_load,
            self.window,
            self.wait_mean,
            self.wait_p99,
            self.service_mean,
            self.service_p99,
            self.arrival_rate,
            self.departure_rate,
        )
    }
}

#[derive(Clone)]
struct Bucket {
    /// Bucket number since the epoch; stale buckets are ignored.
    n: u64,
    busy: Duration,
    wait: [u32; HIST],
    service: [u32; HIST],
}

impl Bucket {
    fn new(n: u64) -> Bucket {
        Bucket { n, busy: Duration::ZERO, wait: [0; HIST], service: [0; HIST] }
    }
}

struct Ring {
    buckets: Vec<Bucket>,
    /// `(when, accepted, settled)` totals, oldest first.
    snapshots: VecDeque<(Instant, u64, u64)>,
}

pub(crate) struct Recorder {
    epoch: Instant,
    window: Duration,
    width: Duration,
    busy: AtomicUsize,
    ring: Mutex<Ring>,
}

fn slot(d: Duration) -> usize {
    let us = d.as_micros().max(1) as f64;
    ((us.log2() * 4.0) as usize).min(HIST - 1)
}

/// The upper edge of histogram slot `i`.
fn edge(i: usize) -> Duration {
    Duration::from_secs_f64(2f64.powf((i + 1) as f64 / 4.0) / 1e6)
}

impl Recorder {
    pub(crate) fn new(epoch: Instant, window: Duration) -> Recorder {
        let width = (window / BUCKETS as u32).max(Duration::from_millis(1));
        Recorder {
            epoch,
            window,
            width,
            busy: AtomicUsize::new(0),
            ring: Mutex::new(Ring {
                buckets: vec![Bucket::new(u64::MAX); BUCKETS],
                snapshots: VecDeque::from([(epoch, 0, 0)]),
            }),
        }
    }

    fn number(&self, now: Instant) -> u64 {
        (now.saturating_duration_since(self.epoch).as_nanos() / self.width.as_nanos()) as u64
    }

    fn bucket<'a>(&self, ring: &'a mut Ring, now: Instant) -> &'a mut Bucket {
        let n = self.number(now);
        let b = &mut ring.buckets[(n % BUCKETS as u64) as usize];
        if b.n != n {
            *b = Bucket::new(n);
        }
        b
    }

    /// A worker starts a request.
    pub(crate) fn begin_request(&self) {
        self.busy.fetch_add(1, Ordering::Relaxed);
    }

    /// A worker's request that began at `began` ended at `now`; `waits` are the sampled events'
    /// times from acceptance to this first attempt; `service` is first attempt → outcome when
    /// the batch settled. `totals` gives the ledger's `(accepted, settled)` now (asked at most
    /// once per bucket).
    pub(crate) fn end_request(
        &self,
        began: Instant,
        now: Instant,
        waits: &[Duration],
        service: Option<Duration>,
        totals: impl FnOnce() -> (u64, u64),
    ) {
        self.busy.fetch_sub(1, Ordering::Relaxed);
        let mut ring = self.ring.lock();
        if self.snapshot_due(&ring, now) {
            self.snapshot(&mut ring, now, totals());
        }
        let b = self.bucket(&mut ring, now);
        b.busy += now.saturating_duration_since(began);
        for w in waits {
            b.wait[slot(*w)] += 1;
        }
        if let Some(s) = service {
            b.service[slot(s)] += 1;
        }
    }

    fn snapshot_due(&self, ring: &Ring, now: Instant) -> bool {
        let newest = ring.snapshots.back().map(|s| s.0).unwrap_or(self.epoch);
        now.saturating_duration_since(newest) >= self.width
    }

    /// Keeps a snapshot of the totals at most once per bucket, and drops those no longer
    /// needed (the newest one older than the window stays, as the base of the rates).
    fn snapshot(&self, ring: &mut Ring, now: Instant, (accepted, settled): (u64, u64)) {
        let newest = ring.snapshots.back().map(|s| s.0).unwrap_or(self.epoch);
        if now.saturating_duration_since(newest) >= self.width {
            ring.snapshots.push_back((now, accepted, settled));
        }
        let horizon = now.checked_sub(self.window);
        while ring.snapshots.len() > 1 && horizon.is_some_and(|h| ring.snapshots[1].0 <= h) {
            ring.snapshots.pop_front();
        }
    }

    /// The figures at `now`, given the ledger's `(accepted, settled)` totals, the events
    /// waiting and the number of workers.
    pub(crate) fn metrics(&self, now: Instant, totals: (u64, u64), queued: u64, workers: usize) -> Metrics {
        let mut ring = self.ring.lock();
        self.snapshot(&mut ring, now, totals);
        let n = self.number(now);
        let live = |b: &&Bucket| b.n != u64::MAX && b.n <= n && b.n + BUCKETS as u64 > n;
        let mut busy = Duration::ZERO;
        let (mut wait, mut service) = ([0u64; HIST], [0u64; HIST]);
        for b in ring.buckets.iter().filter(live) {
            busy += b.busy;
            for i in 0..HIST {
                wait[i] += u64::from(b.wait[i]);
                service[i] += u64::from(b.service[i]);
            }
        }
        let span = now.saturating_duration_since(self.epoch).min(self.window).max(Duration::from_millis(1));
        let (base_at, base_accepted, base_settled) =
            ring.snapshots.front().copied().unwrap_or((self.epoch, 0, 0));
        let rate_span = now.saturating_duration_since(base_at).as_secs_f64().max(1e-3);
        let busy_now = self.busy.load(Ordering::Relaxed).min(workers);
        let (wait_mean, wait_p99) = summary(&wait);
        let (service_mean, service_p99) = summary(&service);
        Metrics {
            queued,
            workers,
            busy_workers: busy_now,
            load: busy_now as f64 / workers.max(1) as f64,
            average_load: (busy.as_secs_f64() / (span.as_secs_f64() * workers.max(1) as f64)).min(1.0),
            wait_mean,
            wait_p99,
            service_mean,
            service_p99,
            arrival_rate: totals.0.saturating_sub(base_accepted) as f64 / rate_span,
            departure_rate: totals.1.saturating_sub(base_settled) as f64 / rate_span,
            window: self.window,
        }
    }
}

impl Metrics {
    /// Several endpoints' metrics as one: counts, workers and rates summed, load weighted by
    /// workers, and for wait and service times the largest mean and 99th percentile (an upper
    /// bound: the endpoints' samples are not merged).
    pub(crate) fn combine(all: impl Iterator<Item = Metrics>) -> Metrics {
        let mut total: Option<Metrics> = None;
        for m in all {
            let Some(t) = &mut total else {
                total = Some(m);
                continue;
            };
            let busy_time = t.average_load * t.workers as f64 + m.average_load * m.workers as f64;
            t.queued += m.queued;
            t.workers += m.workers;
            t.busy_workers += m.busy_workers;
            t.load = t.busy_workers as f64 / t.workers.max(1) as f64;
            t.average_load = busy_time / t.workers.max(1) as f64;
            t.wait_mean = t.wait_mean.max(m.wait_mean);
            t.wait_p99 = t.wait_p99.max(m.wait_p99);
            t.service_mean = t.service_mean.max(m.service_mean);
            t.service_p99 = t.service_p99.max(m.service_p99);
            t.arrival_rate += m.arrival_rate;
            t.departure_rate += m.departure_rate;
        }
        total.unwrap_or(Metrics {
            queued: 0,
            workers: 0,
            busy_workers: 0,
            load: 0.0,
            average_load: 0.0,
            wait_mean: Duration::ZERO,
            wait_p99: Duration::ZERO,
            service_mean: Duration::ZERO,
            service_p99: Duration::ZERO,
            arrival_rate: 0.0,
            departure_rate: 0.0,
            window: Duration::ZERO,
        })
    }
}

/// Mean (from bucket midpoints) and 99th percentile (a bucket's upper edge) of a histogram.
fn summary(h: &[u64; HIST]) -> (Duration, Duration) {
    let count: u64 = h.iter().sum();
    if count == 0 {
        return (Duration::ZERO, Duration::ZERO);
    }
    let mut total = 0.0;
    for (i, c) in h.iter().enumerate() {
        let low = if i == 0 { 0.0 } else { edge(i - 1).as_secs_f64() };
        total += *c as f64 * (low + edge(i).as_secs_f64()) / 2.0;
    }
    let rank = (count * 99).div_ceil(100);
    let mut seen = 0;
    let p99 = h
        .iter()
        .enumerate()
        .find_map(|(i, c)| {
            seen += c;
            (seen >= rank).then(|| edge(i))
        })
        .unwrap_or(Duration::ZERO);
    (Duration::from_secs_f64(total / count as f64), p99)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const S: Duration = Duration::from_secs(1);

    #[test]
    fn load_rates_and_latencies_over_the_window() {
        let t0 = Instant::now();
        let r = Recorder::new(t0, 60 * S);
        // Ten seconds: two workers each in a request half of the time; 100 accepted and 90
        // settled a second; waits of 2 ms, services of 10 ms with 1 % at 500 ms.
        for sec in 0..10u32 {
            for i in 0..100u32 {
                let now = t0 + sec * S + i * 10 * MS;
                let total = u64::from(sec * 100 + i + 1);
                r.begin_request();
                let service = if i == 0 { 500 * MS } else { 10 * MS };
                r.end_request(now - 5 * MS, now, &[2 * MS], Some(service), || (total, total * 9 / 10));
            }
        }
        let now = t0 + 10 * S;
        let m = r.metrics(now, (1000, 900), 7, 2);
        assert_eq!((m.queued, m.workers, m.busy_workers), (7, 2, 0));
        // 1,000 requests of 5 ms over 10 s and 2 workers: a quarter.
        assert!((m.average_load - 0.25).abs() < 0.01, "{}", m.average_load);
        assert!((m.arrival_rate - 100.0).abs() < 2.0, "{}", m.arrival_rate);
        assert!((m.departure_rate - 90.0).abs() < 2.0, "{}", m.departure_rate);
        let within = |d: Duration, want: Duration| d >= want.mul_f64(0.8) && d <= want.mul_f64(1.2);
        assert!(within(m.wait_mean, 2 * MS) && within(m.wait_p99, 2 * MS), "{m}");
        assert!(within(m.service_p99, 10 * MS), "p99 of 99 % at 10 ms: {m}");
        // Beyond the window, the old buckets are forgotten and the rates follow.
        let later = t0 + 200 * S;
        let m = r.metrics(later, (1000, 1000), 0, 2);
        assert_eq!((m.average_load, m.wait_mean, m.service_p99), (0.0, Duration::ZERO, Duration::ZERO));
        assert!(m.arrival_rate < 1.0, "{}", m.arrival_rate);
    }

    #[test]
    fn busy_workers_and_load_now() {
        let t0 = Instant::now();
        let r = Recorder::new(t0, 60 * S);
        r.begin_request();
        let m = r.metrics(t0 + S, (1, 0), 0, 4);
        assert_eq!((m.busy_workers, m.load), (1, 0.25));
    }

    #[test]
    fn histogram_edges() {
        assert_eq!(slot(Duration::ZERO), 0);
        assert!(edge(slot(3 * MS)) >= 3 * MS && edge(slot(3 * MS)) <= 3 * MS * 12 / 10);
        assert_eq!(slot(Duration::from_secs(1_000_000)), HIST - 1);
        assert_eq!(summary(&[0; HIST]), (Duration::ZERO, Duration::ZERO));
    }
}
