//! Faults switched at run time on a loopback [`Sink`], and a log of what it answered.
//!
//! A [`Faults`] handle (cheap to clone, shared between threads) decides each request's answer:
//! `503` to everything while an outage is on, `503` to a seeded random fraction of requests
//! while a failure rate is set, `200` otherwise. Every decision is logged with the request's
//! arrival time and path, so that a caller can ask how many requests came per time bucket, or
//! when the first `2xx` after some instant was answered. Used by the tests and, via `#[path]`
//! next to `sink.rs`, by the benches.
//!
//! The random fraction is reproducible: whether request `index` fails is a pure function of
//! the seed and the index ([`unit`], a splitmix64 draw), so a given seed gives the same pattern
//! over request indices in every run, and nothing about it is shaped (runs of failures occur
//! as often as chance makes them).

#![allow(dead_code)] // Each test binary and bench uses a different part of it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::sink::{Reply, Request, Sink};

/// A uniform draw in `[0, 1)` for request `index` under `seed`: the `index`-th output of a
/// splitmix64 generator seeded with `seed`.
pub fn unit(seed: u64, index: u64) -> f64 {
    let mut z = seed.wrapping_add(index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// One request as the fault switch answered it.
#[derive(Clone, Debug)]
pub struct Hit {
    /// The sink's 0-based arrival order.
    pub index: u64,
    /// When the request had been read.
    pub at: Instant,
    pub path: String,
    pub status: u16,
    /// Events in the body.
    pub events: u64,
}

impl Hit {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

#[derive(Default)]
struct State {
    outage: bool,
    rate: f64,
    seed: u64,
    hits: Vec<Hit>,
}

/// The fault switch. Clones share one state.
#[derive(Clone, Default)]
pub struct Faults(Arc<Mutex<State>>);

impl Faults {
    /// Healthy: answers 200 to everything until told otherwise.
    pub fn new() -> Faults {
        Faults::default()
    }

    /// A counting sink (no bodies kept) answering by this switch.
    pub fn sink(&self) -> Sink {
        let faults = self.clone();
        Sink::counting(move |req| faults.reply(req))
    }

    /// While on, every request is answered 503.
    pub fn set_outage(&self, on: bool) {
        self.0.lock().unwrap().outage = on;
    }

    /// Answers 503 to request `index` when `unit(seed, index) < rate`; 0 turns it off.
    pub fn set_failure_rate(&self, rate: f64, seed: u64) {
        assert!((0.0..=1.0).contains(&rate), "rate {rate} not within 0..=1");
        let mut st = self.0.lock().unwrap();
        st.rate = rate;
        st.seed = seed;
    }

    /// Decides the answer to `req` and logs it.
    pub fn reply(&self, req: &Request) -> Reply {
        Reply::Status(self.status(req))
    }

    /// The status for `req` (200 or 503), logged.
    pub fn status(&self, req: &Request) -> u16 {
        let events = req.events();
        let mut st = self.0.lock().unwrap();
        let fail = st.outage || (st.rate > 0.0 && unit(st.seed, req.index) < st.rate);
        let status = if fail { 503 } else { 200 };
        st.hits.push(Hit { index: req.index, at: req.at, path: req.path.clone(), status, events });
        status
    }

    /// Every request answered so far (in the order the answers were decided).
    pub fn hits(&self) -> Vec<Hit> {
        self.0.lock().unwrap().hits.clone()
    }

    /// Requests that arrived in each of `buckets` consecutive buckets of `width` from `since`.
    pub fn per_bucket(&self, since: Instant, width: Duration, buckets: usize) -> Vec<u64> {
        let mut counts = vec![0; buckets];
        for h in self.0.lock().unwrap().hits.iter() {
            let Some(after) = h.at.checked_duration_since(since) else { continue };
            let i = (after.as_nanos() / width.as_nanos().max(1)) as usize;
            if i < buckets {
                counts[i] += 1;
            }
        }
        counts
    }

    /// Requests that arrived in `[from, to)`.
    pub fn requests_between(&self, from: Instant, to: Instant) -> u64 {
        self.0.lock().unwrap().hits.iter().filter(|h| h.at >= from && h.at < to).count() as u64
    }

    /// When the first request answered 2xx that arrived at or after `t` arrived.
    pub fn first_ok_after(&self, t: Instant) -> Option<Instant> {
        self.0.lock().unwrap().hits.iter().filter(|h| h.ok() && h.at >= t).map(|h| h.at).min()
    }

    /// Per path: the first request answered 2xx that arrived at or after `t`.
    pub fn first_ok_after_by_path(&self, t: Instant) -> HashMap<String, Instant> {
        let mut first: HashMap<String, Instant> = HashMap::new();
        for h in self.0.lock().unwrap().hits.iter().filter(|h| h.ok() && h.at >= t) {
            first.entry(h.path.clone()).and_modify(|at| *at = (*at).min(h.at)).or_insert(h.at);
        }
        first
    }

    /// One instant per event answered 2xx (a request of `n` events gives `n`), sorted: the
    /// `k`-th is when `k + 1` events had been delivered.
    pub fn delivered_times(&self) -> Vec<Instant> {
        let mut times: Vec<Instant> = self
            .0
            .lock()
            .unwrap()
            .hits
            .iter()
            .filter(|h| h.ok())
            .flat_map(|h| std::iter::repeat_n(h.at, h.events as usize))
            .collect();
        times.sort();
        times
    }
}
