//! Shared endpoint state seen by every worker: the `Retry-After` pause, the circuit breaker and
//! the retry budget.
//!
//! The pause is one lock-free atomic instant. The breaker and the budget change on every request
//! result, so they sit behind one small lock taken once per request (requests cost tens of
//! microseconds at least; the lock is uncontended nanoseconds). Their rules are pure functions
//! of an injected `now` (and, for probe intervals, an injected jitter value), unit-tested below
//! without threads or sockets. Workers wait on the
//! gate's `changed` channel, which is disconnected (and replaced) at every breaker transition,
//! so a successful probe wakes every waiting worker at once.
//!
//! Owns no events and never sleeps: callers wait.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::error::Error;

/// The circuit breaker policy: it tells a dead (or badly failing) endpoint from a flaky one.
///
/// The breaker counts requests and failures over a sliding `window` (10 s, in ten buckets). It
/// **opens** when at least `min_requests` (20) requests — over the whole window or its most
/// recent part — show a failure rate above `failure_rate` (50 %) beyond chance (the rate's
/// 99.9 % lower confidence bound, by the Wilson score, reaches it), or when every one of at
/// least `failures` (5) requests in the window failed (a dead endpoint with little traffic).
/// An endpoint that fails 30 % of requests at random does not open it: its events are retried
/// on their own schedule. An outage after a healthy stretch opens it within a second or two.
///
/// While open, no request starts; queued events and waiting retries stay where they are (the
/// overflow policy applies to the queue). One **probe** request goes out after `cooldown`
/// (1 s), with jitter: a random time between half and one and a half times the interval, so
/// that processes that failed together do not come back together. Each failed probe doubles
/// the interval, up to `max_cooldown` (8 s): a process sends one request every 4–12 s (8 s on
/// average) to a dead endpoint. The first successful probe closes the circuit and everything
/// flows again.
///
/// **Why ±50 % around the interval.** After an outage, each process's first delivery is its
/// next probe. With waits drawn from ½–1× the interval (the usual "equal jitter"), the probes
/// that follow a recovery bunch near its start; drawn from ½–1½×, with the same mean, they
/// spread evenly over the interval. In a simulation of 64 processes against a 10–60 s outage,
/// the most first deliveries in any 250 ms fell from 8–12 to 6–8, and no process waits more
/// than 12 s after the recovery.
///
/// A failed request is one that is retried: a connection error, a timeout, or a 408, 425,
/// 429, 500, 502, 503 or 504 answer. Any other answer (2xx, and permanent refusals such as
/// 400) proves the endpoint is up. [`Stats::circuit`](crate::Stats::circuit) shows the state.
///
/// ```
/// use std::time::Duration;
/// let breaker = posthaste::CircuitBreaker::new().failure_rate(0.8).max_cooldown(Duration::from_secs(30));
/// let guard = posthaste::builder("http://127.0.0.1:9/").circuit_breaker(breaker).start()?;
/// # drop(guard);
/// # Ok::<(), posthaste::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct CircuitBreaker {
    enabled: bool,
    failures: u32,
    failure_rate: f64,
    min_requests: u32,
    window: Duration,
    cooldown: Duration,
    max_cooldown: Duration,
}

impl Default for CircuitBreaker {
    fn default() -> CircuitBreaker {
        CircuitBreaker {
            enabled: true,
            failures: 5,
            failure_rate: 0.5,
            min_requests: 20,
            window: Duration::from_secs(10),
            cooldown: Duration::from_secs(1),
            max_cooldown: Duration::from_secs(8),
        }
    }
}

impl CircuitBreaker {
    /// The default breaker: opens at a failure rate shown above 50 % over at least 20
    /// requests within 10 s, or when 5 or more requests within 10 s all failed; probes after
    /// about 1 s, then 2, 4, 8, 8 s… (each ±50 %, at random) while probes fail.
    pub fn new() -> CircuitBreaker {
        CircuitBreaker::default()
    }

    /// A breaker that never opens: every event keeps retrying on its own budget.
    pub fn disabled() -> CircuitBreaker {
        CircuitBreaker { enabled: false, ..CircuitBreaker::default() }
    }

    /// Opens the circuit when at least this many requests in the window all failed, whatever
    /// `min_requests` says (1–1,000,000). Defaults to 5.
    pub fn failures(mut self, n: u32) -> CircuitBreaker {
        self.failures = n;
        self
    }

    /// The failure rate that opens the circuit once it is shown beyond chance over at least
    /// `min_requests` requests (greater than 0.0, at most 1.0). Defaults to 0.5.
    pub fn failure_rate(mut self, rate: f64) -> CircuitBreaker {
        self.failure_rate = rate;
        self
    }

    /// How many requests the window must hold before the failure rate counts (1–1,000,000).
    /// Defaults to 20.
    pub fn min_requests(mut self, n: u32) -> CircuitBreaker {
        self.min_requests = n;
        self
    }

    /// The sliding window the breaker counts over (10 ms – 1 hour). Defaults to 10 s.
    pub fn window(mut self, d: Duration) -> CircuitBreaker {
        self.window = d;
        self
    }

    /// The interval before the first probe once the circuit opened (1 ms – 1 day); each failed
    /// probe doubles it up to [`max_cooldown`](CircuitBreaker::max_cooldown). Each wait is a
    /// random time between half and one and a half times the interval. Defaults to 1 s.
    pub fn cooldown(mut self, d: Duration) -> CircuitBreaker {
        self.cooldown = d;
        self
    }

    /// The longest interval between probes (1 ms – 1 day; a `cooldown` longer than it raises
    /// it to `cooldown`); with the jitter, a wait is at most 1.5 times it. Defaults to 8 s.
    pub fn max_cooldown(mut self, d: Duration) -> CircuitBreaker {
        self.max_cooldown = d;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        let bad = |option, reason: String| Err(Error::InvalidOption { option, reason });
        if !(1..=1_000_000).contains(&self.failures) {
            return bad(
                "circuit_breaker.failures",
                format!("{} is not within 1..=1000000 (use CircuitBreaker::disabled())", self.failures),
            );
        }
        if !(1..=1_000_000).contains(&self.min_requests) {
            return bad(
                "circuit_breaker.min_requests",
                format!("{} is not within 1..=1000000", self.min_requests),
            );
        }
        if !(self.failure_rate > 0.0 && self.failure_rate <= 1.0) {
            return bad(
                "circuit_breaker.failure_rate",
                format!("{} is not within (0.0, 1.0]", self.failure_rate),
            );
        }
        if self.window < Duration::from_millis(10) || self.window > Duration::from_secs(3600) {
            return bad("circuit_breaker.window", format!("{:?} is not within 10ms..=1h", self.window));
        }
        if self.cooldown < Duration::from_millis(1) || self.cooldown > Duration::from_secs(86_400) {
            return bad("circuit_breaker.cooldown", format!("{:?} is not within 1ms..=1day", self.cooldown));
        }
        if self.max_cooldown < Duration::from_millis(1) || self.max_cooldown > Duration::from_secs(86_400) {
            return bad(
                "circuit_breaker.max_cooldown",
                format!("{:?} is not within 1ms..=1day", self.max_cooldown),
            );
        }
        Ok(())
    }

    /// The longest interval between probes: `max_cooldown`, or `cooldown` if that is longer.
    fn longest_interval(&self) -> Duration {
        self.max_cooldown.max(self.cooldown)
    }

    /// The longest wait between probes, jitter included.
    fn longest_wait(&self) -> Duration {
        self.longest_interval().mul_f64(1.5)
    }

    /// The wait before probe number `probe` (0 = the first after opening), for a jitter value
    /// `unit` in `[0, 1)`: between half and one and a half times `cooldown × 2^probe`, capped.
    fn probe_wait(&self, probe: u32, unit: f64) -> Duration {
        let interval = self.cooldown.saturating_mul(1u32 << probe.min(20)).min(self.longest_interval());
        interval.mul_f64(0.5 + unit.clamp(0.0, 1.0))
    }
}

/// The retry budget: retries are limited to a fraction of first attempts plus a small floor,
/// over a sliding 10-second window, so that a fleet of clients can't stampede a recovering
/// endpoint with retries.
///
/// In any 10-second window, retries ≤ `ratio` × first attempts + 10 × `min_per_second`.
/// A retry over budget is not dropped at once: it waits on the retry schedule (holding no
/// worker) until the budget allows it or the retry policy's `max_elapsed` runs out; then the
/// event fails (and is spilled, with a spill directory).
/// [`Stats::retries_throttled`](crate::Stats::retries_throttled) counts the retries held back.
///
/// **Why 50 % + 10/s.** Finagle's default budget is 20 % of requests plus 10 retries a second;
/// gRPC's retry throttling (a token bucket, each failure costing a token and each success
/// earning 0.1) stops retrying once about one request in ten fails. Both assume a caller that
/// can give up on a request or try another replica. posthaste's events must not be lost, and
/// a dead or badly failing endpoint is the circuit breaker's job (it opens at a 50 % failure
/// rate). The budget covers what lies between: an endpoint that randomly fails 30 % of
/// requests needs about 0.3 / 0.7 ≈ 43 % retries per first attempt, which 50 % allows, so
/// every event still arrives; a fleet of clients can add at most half again to the load of a
/// struggling endpoint before the breakers step in.
///
/// ```
/// let budget = posthaste::RetryBudget::new().ratio(0.2).min_per_second(5);
/// let guard = posthaste::builder("http://127.0.0.1:9/").retry_budget(budget).start()?;
/// # drop(guard);
/// # Ok::<(), posthaste::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RetryBudget {
    enabled: bool,
    ratio: f64,
    min_per_second: u32,
}

impl Default for RetryBudget {
    fn default() -> RetryBudget {
        RetryBudget { enabled: true, ratio: 0.5, min_per_second: 10 }
    }
}

impl RetryBudget {
    /// The default budget: 50 % of first attempts plus 10 retries per second.
    pub fn new() -> RetryBudget {
        RetryBudget::default()
    }

    /// No budget: every retry the [`Retry`](crate::Retry) policy allows is made.
    pub fn unlimited() -> RetryBudget {
        RetryBudget { enabled: false, ..RetryBudget::default() }
    }

    /// Retries allowed per first attempt (0.0–100.0). Defaults to 0.5 (50 %).
    pub fn ratio(mut self, ratio: f64) -> RetryBudget {
        self.ratio = ratio;
        self
    }

    /// Retries allowed per second whatever the traffic, so that a quiet client still retries
    /// (0–1,000,000). Defaults to 10.
    pub fn min_per_second(mut self, n: u32) -> RetryBudget {
        self.min_per_second = n;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if !(self.ratio.is_finite() && (0.0..=100.0).contains(&self.ratio)) {
            return Err(Error::InvalidOption {
                option: "retry_budget.ratio",
                reason: format!("{} is not within 0.0..=100.0", self.ratio),
            });
        }
        if self.min_per_second > 1_000_000 {
            return Err(Error::InvalidOption {
                option: "retry_budget.min_per_second",
                reason: format!("{} is not within 0..=1000000", self.min_per_second),
            });
        }
        Ok(())
    }
}

/// The circuit breaker's state, as seen in [`Stats::circuit`](crate::Stats::circuit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Circuit {
    /// Requests flow. The default.
    #[default]
    Closed,
    /// Too many consecutive failures: no requests until the cool-down ends.
    Open,
    /// The cool-down ended: one probe request decides whether the circuit closes.
    HalfOpen,
}

/// What the gate says to a worker about to make a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Go ahead (possibly as the half-open probe; report the result with `record`).
    Go,
    /// Not before this instant (a pause or an open circuit).
    Wait(Instant),
    /// Another worker's probe is out: wait for its result (a gate change), at most until this
    /// instant.
    Probing(Instant),
    /// A retry the budget doesn't allow now: the next chance to re-check, or `None` if the
    /// budget can never allow it (a zero budget).
    NoBudget(Option<Instant>),
}

pub(crate) struct Gate {
    epoch: Instant,
    /// Nanoseconds after `epoch` until which no request may start; 0 = not paused.
    paused_until: AtomicU64,
    breaker_policy: CircuitBreaker,
    budget_policy: RetryBudget,
    state: Mutex<State>,
    /// Mirrors of the breaker state for lock-free reads: the `Circuit` as a byte, and
    /// nanoseconds after `epoch` until which no new work should start (the open circuit's next
    /// probe, or the lease of a probe that is out); 0 = not blocked.
    circuit: AtomicU8,
    blocked_until: AtomicU64,
    opened: AtomicU64,
    throttled: AtomicU64,
    /// Disconnected and replaced at every breaker transition: wakes workers waiting on it.
    changed: Mutex<(Sender<()>, Receiver<()>)>,
}

struct State {
    breaker: Breaker,
    budget: Budget,
    /// Jitter for probe intervals.
    rng: SmallRng,
}

impl Gate {
    pub(crate) fn new(breaker: &CircuitBreaker, budget: &RetryBudget) -> Gate {
        Gate::with_rng(breaker, budget, SmallRng::from_os_rng())
    }

    /// A gate whose probe jitter comes from `rng` (tests seed it).
    pub(crate) fn with_rng(breaker: &CircuitBreaker, budget: &RetryBudget, rng: SmallRng) -> Gate {
        Gate {
            epoch: Instant::now(),
            paused_until: AtomicU64::new(0),
            breaker_policy: breaker.clone(),
            budget_policy: budget.clone(),
            state: Mutex::new(State { breaker: Breaker::default(), budget: Budget::default(), rng }),
            circuit: AtomicU8::new(Circuit::Closed as u8),
            blocked_until: AtomicU64::new(0),
            opened: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            changed: Mutex::new(crossbeam_channel::bounded(0)),
        }
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    fn instant(&self, nanos: u64) -> Instant {
        self.epoch + Duration::from_nanos(nanos)
    }

    /// Pauses every worker until `now + d` (or later, if already paused longer).
    pub(crate) fn pause(&self, now: Instant, d: Duration) {
        let until = self.nanos(now + d);
        self.paused_until.fetch_max(until, Ordering::AcqRel);
    }

    /// The instant requests may resume, if that is after `now`.
    pub(crate) fn paused_until(&self, now: Instant) -> Option<Instant> {
        let until = self.paused_until.load(Ordering::Acquire);
        (until > self.nanos(now)).then(|| self.instant(until))
    }

    /// When a worker with nothing in hand should take its next event: `None` now, else the
    /// end of the pause, of the open circuit's wait for its next probe, or of the lease of a
    /// probe that is out (its result wakes waiters earlier, through [`Gate::subscribe`]).
    /// Changes nothing.
    pub(crate) fn blocked_until(&self, now: Instant) -> Option<Instant> {
        let paused = self.paused_until(now);
        let until = self.blocked_until.load(Ordering::Acquire);
        let blocked = (until > self.nanos(now)).then(|| self.instant(until));
        paused.max(blocked)
    }

    /// A receiver that is disconnected at the next breaker transition. Take it *before*
    /// asking `admit`, so that a transition in between is not missed.
    pub(crate) fn subscribe(&self) -> Receiver<()> {
        self.changed.lock().1.clone()
    }

    fn notify(&self) {
        let mut changed = self.changed.lock();
        // Replacing the pair drops the old sender: every clone of the old receiver wakes.
        *changed = crossbeam_channel::bounded(0);
    }

    /// Asks to start a request at `now`; `retry` says whether it is a retry (which spends
    /// budget) or a first attempt (which earns some).
    pub(crate) fn admit(&self, now: Instant, retry: bool) -> Admit {
        if let Some(until) = self.paused_until(now) {
            return Admit::Wait(until);
        }
        let mut st = self.state.lock();
        let before = st.breaker.circuit();
        let probe = match st.breaker.admit(now, &self.breaker_policy) {
            BreakerAdmit::Go => false,
            BreakerAdmit::Probe => true,
            BreakerAdmit::Wait(until) => return Admit::Wait(until),
            BreakerAdmit::Probing(until) => return Admit::Probing(until),
        };
        if self.budget_policy.enabled {
            let secs = now.saturating_duration_since(self.epoch).as_secs();
            if !retry {
                st.budget.deposit(secs);
            } else if !st.budget.withdraw(secs, &self.budget_policy) {
                if probe {
                    st.breaker.release_probe();
                }
                self.publish(&st.breaker, before);
                let next = st.budget.next_chance(secs, &self.budget_policy);
                return Admit::NoBudget(next.map(|s| self.epoch + Duration::from_secs(s)));
            }
        }
        self.publish(&st.breaker, before);
        Admit::Go
    }

    /// Reports a request's result: `ok` unless it was a transient failure (see
    /// [`CircuitBreaker`]).
    /// Returns the circuit's `(before, after)` when this result changed it.
    pub(crate) fn record(&self, now: Instant, ok: bool) -> Option<(Circuit, Circuit)> {
        if !self.breaker_policy.enabled {
            return None;
        }
        let mut st = self.state.lock();
        let before = st.breaker.circuit();
        let unit = st.rng.random::<f64>();
        if st.breaker.record(now, ok, &self.breaker_policy, unit) {
            self.opened.fetch_add(1, Ordering::Relaxed);
        }
        self.publish(&st.breaker, before);
        let after = st.breaker.circuit();
        (after != before).then_some((before, after))
    }

    /// Mirrors the breaker into the atomics and wakes waiters if it changed. Called under the
    /// state lock, so mirrors are written in transition order.
    fn publish(&self, breaker: &Breaker, before: Circuit) {
        let now = breaker.circuit();
        let blocked = match breaker.state {
            BreakerState::Open { until } => self.nanos(until).max(1),
            BreakerState::HalfOpen { probe: Some(at) } => self.nanos(at + self.probe_lease()).max(1),
            _ => 0,
        };
        self.blocked_until.store(blocked, Ordering::Release);
        self.circuit.store(now as u8, Ordering::Release);
        if now != before {
            self.notify();
        }
    }

    fn probe_lease(&self) -> Duration {
        self.breaker_policy.longest_wait()
    }

    /// Counts a retry the budget held back (or refused).
    pub(crate) fn note_throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }

    /// `(state, times opened, retries throttled)` for a `Stats` snapshot.
    pub(crate) fn snapshot(&self, now: Instant) -> (Circuit, u64, u64) {
        let circuit = match self.circuit.load(Ordering::Acquire) {
            c if c == Circuit::Open as u8 => {
                // The wait may have ended without a request since: the next one probes.
                if self.blocked_until.load(Ordering::Acquire) > self.nanos(now) {
                    Circuit::Open
                } else {
                    Circuit::HalfOpen
                }
            }
            c if c == Circuit::HalfOpen as u8 => Circuit::HalfOpen,
            _ => Circuit::Closed,
        };
        (circuit, self.opened.load(Ordering::Relaxed), self.throttled.load(Ordering::Relaxed))
    }
}

/// The breaker's rules, pure: the clock and the jitter are arguments.
#[derive(Default)]
struct Breaker {
    state: BreakerState,
    window: Window,
    /// Probes failed since the circuit opened (sets the next probe interval).
    failed_probes: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum BreakerState {
    #[default]
    Closed,
    /// No request until `until`, when one probe may go.
    Open { until: Instant },
    /// `probe`: when the current probe was let through, if one is out.
    HalfOpen { probe: Option<Instant> },
}

#[derive(Debug, PartialEq, Eq)]
enum BreakerAdmit {
    Go,
    Probe,
    Wait(Instant),
    Probing(Instant),
}

impl Breaker {
    fn circuit(&self) -> Circuit {
        match self.state {
            BreakerState::Closed => Circuit::Closed,
            BreakerState::Open { .. } => Circuit::Open,
            BreakerState::HalfOpen { .. } => Circuit::HalfOpen,
        }
    }

    fn admit(&mut self, now: Instant, policy: &CircuitBreaker) -> BreakerAdmit {
        // A probe that never reported (its worker was stopped at the shutdown deadline, or is
        // stuck in a long request) stops blocking the others after the longest probe interval.
        let lease = policy.longest_wait();
        match self.state {
            BreakerState::Closed => BreakerAdmit::Go,
            BreakerState::Open { until } if now < until => BreakerAdmit::Wait(until),
            BreakerState::HalfOpen { probe: Some(at) } if now < at + lease => {
                BreakerAdmit::Probing(at + lease)
            }
            BreakerState::Open { .. } | BreakerState::HalfOpen { .. } => {
                self.state = BreakerState::HalfOpen { probe: Some(now) };
                BreakerAdmit::Probe
            }
        }
    }

    /// The probe was let through but will not be sent.
    fn release_probe(&mut self) {
        if let BreakerState::HalfOpen { .. } = self.state {
            self.state = BreakerState::HalfOpen { probe: None };
        }
    }

    /// Applies a result, with `unit` in `[0, 1)` for the next probe's jitter. True if the
    /// circuit opened (from closed, or again after a failed probe).
    fn record(&mut self, now: Instant, ok: bool, policy: &CircuitBreaker, unit: f64) -> bool {
        match (self.state, ok) {
            // Any success proves the endpoint is up: close (this also covers a request let
            // through before the circuit opened that succeeds while it is open).
            (BreakerState::Closed, true) => {
                self.window.add(now, policy.window, true);
                false
            }
            (_, true) => {
                self.state = BreakerState::Closed;
                self.window = Window::default();
                self.failed_probes = 0;
                false
            }
            (BreakerState::Closed, false) => {
                self.window.add(now, policy.window, false);
                if !self.window.trips(now, policy) {
                    return false;
                }
                self.failed_probes = 0;
                self.state = BreakerState::Open { until: now + policy.probe_wait(0, unit) };
                true
            }
            (BreakerState::HalfOpen { .. }, false) => {
                self.failed_probes = self.failed_probes.saturating_add(1);
                self.state = BreakerState::Open { until: now + policy.probe_wait(self.failed_probes, unit) };
                true
            }
            // A late failure from a request started before the circuit opened.
            (BreakerState::Open { .. }, false) => false,
        }
    }
}

/// A lower bound on the true failure rate given `failures` of `requests`: the Wilson score
/// interval's lower end at three standard errors (about 99.9 % one-sided). A flaky endpoint
/// failing 30 % of requests at random stays far below 0.5 whatever the sample; an endpoint
/// failing every request passes 0.5 from 20 requests on.
fn failure_rate_lower_bound(failures: u64, requests: u64) -> f64 {
    if requests == 0 {
        return 0.0;
    }
    const Z2: f64 = 9.0;
    let n = requests as f64;
    let p = failures as f64 / n;
    let centre = p + Z2 / (2.0 * n);
    let spread = (Z2 * (p * (1.0 - p) / n + Z2 / (4.0 * n * n))).sqrt();
    (centre - spread) / (1.0 + Z2 / n)
}

/// Requests and failures over the breaker's sliding window, in ten buckets.
#[derive(Clone, Copy, Default)]
struct Window {
    /// `(bucket number since the first request, requests, failures)`.
    buckets: [(u64, u32, u32); 10],
    epoch: Option<Instant>,
}

impl Window {
    fn slot(&mut self, now: Instant, window: Duration) -> u64 {
        let epoch = *self.epoch.get_or_insert(now);
        let width = (window / 10).max(Duration::from_millis(1));
        (now.saturating_duration_since(epoch).as_nanos() / width.as_nanos()) as u64
    }

    fn add(&mut self, now: Instant, window: Duration, ok: bool) {
        let n = self.slot(now, window);
        let b = &mut self.buckets[(n % 10) as usize];
        if b.0 != n {
            *b = (n, 0, 0);
        }
        b.1 = b.1.saturating_add(1);
        if !ok {
            b.2 = b.2.saturating_add(1);
        }
    }

    /// Whether the window's counts open the circuit: all of at least `failures` requests
    /// failed, or over the whole window or its most recent part (the last bucket, the last
    /// two, …) at least `min_requests` requests show a failure rate above `failure_rate`
    /// beyond chance. The most recent parts let an outage after a healthy stretch open the
    /// circuit within a bucket or two, instead of waiting for the healthy history to age out.
    fn trips(&mut self, now: Instant, policy: &CircuitBreaker) -> bool {
        let n = self.slot(now, policy.window);
        let (mut requests, mut failures) = (0u64, 0u64);
        let mut tripped = false;
        // Newest bucket first: each step adds one older bucket to the part looked at.
        for age in 0..10u64 {
            let Some(slot) = n.checked_sub(age) else { break };
            let b = self.buckets[(slot % 10) as usize];
            if b.0 == slot {
                requests += u64::from(b.1);
                failures += u64::from(b.2);
            }
            tripped |= requests >= u64::from(policy.min_requests)
                && failure_rate_lower_bound(failures, requests) >= policy.failure_rate;
        }
        let dead = requests >= u64::from(policy.failures) && failures == requests;
        dead || tripped
    }
}

/// Seconds of history the retry budget looks at.
const WINDOW_SECS: u64 = 10;

/// The retry budget's counts over the last `WINDOW_SECS` seconds, one bucket per second.
#[derive(Default)]
struct Budget {
    buckets: [Bucket; WINDOW_SECS as usize],
}

#[derive(Clone, Copy, Default)]
struct Bucket {
    /// The second (since the gate's epoch) this bucket counts; stale buckets are ignored.
    sec: u64,
    firsts: u64,
    retries: u64,
}

impl Budget {
    fn bucket(&mut self, sec: u64) -> &mut Bucket {
        let b = &mut self.buckets[(sec % WINDOW_SECS) as usize];
        if b.sec != sec {
            *b = Bucket { sec, firsts: 0, retries: 0 };
        }
        b
    }

    fn live(&self, sec: u64) -> impl Iterator<Item = &Bucket> {
        self.buckets.iter().filter(move |b| b.sec + WINDOW_SECS > sec && b.sec <= sec)
    }

    fn deposit(&mut self, sec: u64) {
        self.bucket(sec).firsts += 1;
    }

    /// Takes one retry from the budget if it allows one.
    fn withdraw(&mut self, sec: u64, policy: &RetryBudget) -> bool {
        let (firsts, retries) = self.live(sec).fold((0, 0), |(f, r), b| (f + b.firsts, r + b.retries));
        let allowed = policy.ratio * firsts as f64 + f64::from(policy.min_per_second) * WINDOW_SECS as f64;
        if (retries + 1) as f64 > allowed {
            return false;
        }
        self.bucket(sec).retries += 1;
        true
    }

    /// The second at which to ask again: when the oldest retry still counted leaves the
    /// window, or in a second if new first attempts are what it takes. `None` if the budget
    /// allows no retry ever.
    fn next_chance(&self, sec: u64, policy: &RetryBudget) -> Option<u64> {
        if policy.ratio == 0.0 && policy.min_per_second == 0 {
            return None;
        }
        let oldest = self.live(sec).filter(|b| b.retries > 0).map(|b| b.sec).min();
        Some(oldest.map_or(sec + 1, |s| s + WINDOW_SECS).max(sec + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn pause_only_extends() {
        let g = Gate::new(&CircuitBreaker::new(), &RetryBudget::new());
        let now = Instant::now();
        assert_eq!(g.paused_until(now), None);
        g.pause(now, Duration::from_secs(5));
        let until = g.paused_until(now).unwrap();
        g.pause(now, Duration::from_secs(1));
        assert_eq!(g.paused_until(now), Some(until));
        assert_eq!(g.paused_until(now + Duration::from_secs(6)), None);
    }

    const MS: Duration = Duration::from_millis(1);

    /// A seeded stream of uniform values in [0, 1) (splitmix64), for fault patterns.
    fn draws(seed: u64) -> impl FnMut() -> f64 {
        let mut x = seed;
        move || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) as f64 / (u64::MAX as f64 + 1.0)
        }
    }

    #[test]
    fn a_flaky_endpoint_never_opens_the_breaker() {
        let policy = CircuitBreaker::new();
        for seed in 0..20 {
            let mut b = Breaker::default();
            let mut draw = draws(seed);
            let t0 = Instant::now();
            // 30 % random failures, at 1,000 and at 5 requests a second.
            for (every, n) in [(MS, 20_000u32), (200 * MS, 500)] {
                for i in 0..n {
                    let now = t0 + every * i;
                    assert!(
                        !b.record(now, draw() >= 0.3, &policy, 0.5),
                        "seed {seed}: opened at request {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_sustained_failure_rate_opens_it() {
        let policy = CircuitBreaker::new();
        let mut b = Breaker::default();
        let t0 = Instant::now();
        // Half of 20 failing is not beyond chance for a rate of 0.5…
        for i in 0..20 {
            assert!(!b.record(t0 + MS * i, i % 2 == 0, &policy, 0.5), "request {i}");
        }
        // …nor is a healthy stretch after it…
        for i in 0..100 {
            assert!(!b.record(t0 + 5 * S + MS * i, true, &policy, 0.5));
        }
        // …an outage after it is, within a bucket: the most recent part shows it.
        let outage = t0 + 7 * S;
        for i in 0..19 {
            assert!(!b.record(outage + MS * i, false, &policy, 0.5), "19 requests: below min_requests");
        }
        assert!(b.record(outage + 19 * MS, false, &policy, 0.5), "20 of the last 20 failed");
        assert_eq!(b.circuit(), Circuit::Open);
        assert!(failure_rate_lower_bound(20, 20) > 0.5 && failure_rate_lower_bound(10, 20) < 0.5);
        assert!(failure_rate_lower_bound(30, 100) < 0.2 && failure_rate_lower_bound(0, 0) == 0.0);
        // Failures older than the window don't count.
        let mut b = Breaker::default();
        for i in 0..15 {
            b.record(t0 + MS * i, false, &policy, 0.5);
            b.record(t0 + MS * i, true, &policy, 0.5);
        }
        let later = t0 + 11 * S;
        for i in 0..4 {
            assert!(!b.record(later + MS * i, false, &policy, 0.5));
        }
    }

    #[test]
    fn a_dead_endpoint_with_little_traffic_opens_it() {
        let policy = CircuitBreaker::new();
        let t0 = Instant::now();
        let mut b = Breaker::default();
        for i in 0..4 {
            assert!(!b.record(t0 + S * i, false, &policy, 0.5));
        }
        assert!(b.record(t0 + 4 * S, false, &policy, 0.5), "5 of 5 failed within 10 s");
        // One success in the window keeps it closed.
        let mut b = Breaker::default();
        b.record(t0, true, &policy, 0.5);
        for i in 1..10 {
            assert!(!b.record(t0 + S * i / 2, false, &policy, 0.5));
        }
    }

    #[test]
    fn probes_are_jittered_and_back_off_to_the_cap() {
        let policy = CircuitBreaker::new();
        assert_eq!(policy.probe_wait(0, 0.0), 500 * MS);
        assert_eq!(policy.probe_wait(0, 0.5), S);
        assert_eq!(policy.probe_wait(0, 1.0), 1500 * MS);
        assert_eq!(policy.probe_wait(1, 1.0), 3 * S);
        assert_eq!(policy.probe_wait(2, 0.5), 4 * S);
        assert_eq!(policy.probe_wait(3, 0.5), 8 * S);
        assert_eq!(policy.probe_wait(4, 1.0), 12 * S, "capped at 8 s, +50 %");
        assert_eq!(policy.probe_wait(u32::MAX, 0.0), 4 * S);
        // The state machine: open, one probe at a time, failed probes wait longer.
        let mut b = Breaker::default();
        let t0 = Instant::now();
        for _ in 0..5 {
            b.record(t0, false, &policy, 0.5);
        }
        assert_eq!(b.admit(t0 + 500 * MS, &policy), BreakerAdmit::Wait(t0 + S));
        assert_eq!(b.admit(t0 + S, &policy), BreakerAdmit::Probe);
        assert_eq!(b.admit(t0 + S, &policy), BreakerAdmit::Probing(t0 + 13 * S), "one probe at a time");
        assert!(b.record(t0 + S + MS, false, &policy, 0.5), "a failed probe reopens");
        assert_eq!(b.admit(t0 + 2 * S, &policy), BreakerAdmit::Wait(t0 + 3 * S + MS));
        assert_eq!(b.admit(t0 + 3 * S + MS, &policy), BreakerAdmit::Probe);
        assert!(b.record(t0 + 3 * S + MS, false, &policy, 0.0));
        assert_eq!(b.admit(t0 + 4 * S, &policy), BreakerAdmit::Wait(t0 + 5 * S + MS), "4 s × 0.5");
        // The first successful probe closes it, with a fresh window.
        assert_eq!(b.admit(t0 + 6 * S, &policy), BreakerAdmit::Probe);
        assert!(!b.record(t0 + 6 * S, true, &policy, 0.5));
        assert_eq!(b.circuit(), Circuit::Closed);
        assert!(!b.record(t0 + 6 * S, false, &policy, 0.5), "old failures are forgotten");
        assert_eq!(b.admit(t0 + 6 * S, &policy), BreakerAdmit::Go);
    }

    #[test]
    fn lost_probe_is_replaced_after_the_longest_interval() {
        let policy = CircuitBreaker::new().failures(1);
        let mut b = Breaker::default();
        let t0 = Instant::now();
        b.record(t0, false, &policy, 0.5);
        assert_eq!(b.admit(t0 + S, &policy), BreakerAdmit::Probe);
        assert_eq!(b.admit(t0 + 10 * S, &policy), BreakerAdmit::Probing(t0 + 13 * S), "lease: 8 s × 1.5");
        assert_eq!(b.admit(t0 + 13 * S, &policy), BreakerAdmit::Probe);
        b.release_probe();
        assert_eq!(b.admit(t0 + 13 * S, &policy), BreakerAdmit::Probe);
    }

    #[test]
    fn budget_allows_ratio_of_firsts_plus_floor() {
        let policy = RetryBudget::new().ratio(0.1).min_per_second(1);
        let mut b = Budget::default();
        // Floor: 10 retries per 10-second window with no traffic at all.
        for _ in 0..10 {
            assert!(b.withdraw(0, &policy));
        }
        assert!(!b.withdraw(0, &policy));
        // 100 first attempts earn 10 more.
        for _ in 0..100 {
            b.deposit(1);
        }
        for _ in 0..10 {
            assert!(b.withdraw(1, &policy));
        }
        assert!(!b.withdraw(1, &policy));
        // The oldest retries leave the window at second 10.
        assert_eq!(b.next_chance(1, &policy), Some(10));
        assert!(!b.withdraw(9, &policy));
        assert!(b.withdraw(10, &policy), "second-0 retries expired");
        // Everything expires eventually.
        for _ in 0..10 {
            assert!(b.withdraw(30, &policy));
        }
    }

    #[test]
    fn zero_budget_never_retries() {
        let policy = RetryBudget::new().ratio(0.0).min_per_second(0);
        let mut b = Budget::default();
        b.deposit(0);
        assert!(!b.withdraw(0, &policy));
        assert_eq!(b.next_chance(0, &policy), None);
        // Ratio only: a second later at the earliest.
        let ratio_only = RetryBudget::new().ratio(0.5).min_per_second(0);
        assert!(!b.withdraw(0, &ratio_only));
        assert_eq!(b.next_chance(0, &ratio_only), Some(1));
    }

    #[test]
    fn gate_admission_combines_pause_breaker_and_budget() {
        let g = Gate::with_rng(
            &CircuitBreaker::new().failures(2),
            &RetryBudget::new().ratio(0.0).min_per_second(0),
            SmallRng::seed_from_u64(7),
        );
        let t0 = g.epoch;
        assert_eq!(g.admit(t0, false), Admit::Go);
        assert_eq!(g.admit(t0, true), Admit::NoBudget(None));
        g.record(t0, false);
        g.record(t0, false);
        let (circuit, opened, _) = g.snapshot(t0);
        assert_eq!((circuit, opened), (Circuit::Open, 1));
        assert!(matches!(g.admit(t0, false), Admit::Wait(_)));
        let next_probe = g.blocked_until(t0).expect("blocked while open");
        assert!(next_probe >= t0 + 500 * MS && next_probe <= t0 + 1500 * MS, "{:?}", next_probe - t0);
        // After the wait the snapshot shows half-open even before a probe.
        assert_eq!(g.snapshot(t0 + 2 * S).0, Circuit::HalfOpen);
        assert_eq!(g.blocked_until(t0 + 2 * S), None, "a worker may take work to probe with");
        let changed = g.subscribe();
        assert_eq!(g.admit(t0 + 2 * S, false), Admit::Go);
        assert_eq!(g.blocked_until(t0 + 2 * S), Some(t0 + 14 * S), "the others wait for the probe");
        g.record(t0 + 2 * S, true);
        assert_eq!(changed.try_recv(), Err(crossbeam_channel::TryRecvError::Disconnected), "waiters woken");
        assert_eq!(g.snapshot(t0 + 2 * S).0, Circuit::Closed);
        assert_eq!(g.blocked_until(t0 + 2 * S), None);
        // A pause wins over everything.
        g.pause(t0, 60 * S);
        assert!(matches!(g.admit(t0 + 3 * S, false), Admit::Wait(_)));
    }

    #[test]
    fn disabled_breaker_never_opens() {
        let g = Gate::new(&CircuitBreaker::disabled(), &RetryBudget::unlimited());
        let t0 = Instant::now();
        for _ in 0..100 {
            g.record(t0, false);
            assert_eq!(g.admit(t0, true), Admit::Go);
        }
        assert_eq!(g.snapshot(t0).0, Circuit::Closed);
    }

    #[test]
    fn validation() {
        assert!(CircuitBreaker::new().validate().is_ok());
        assert!(CircuitBreaker::new().failures(0).validate().is_err());
        assert!(CircuitBreaker::new().cooldown(Duration::ZERO).validate().is_err());
        assert!(CircuitBreaker::new().failure_rate(0.0).validate().is_err());
        assert!(CircuitBreaker::new().failure_rate(1.5).validate().is_err());
        assert!(CircuitBreaker::new().min_requests(0).validate().is_err());
        assert!(CircuitBreaker::new().window(Duration::ZERO).validate().is_err());
        assert!(CircuitBreaker::new().max_cooldown(Duration::ZERO).validate().is_err());
        let long = CircuitBreaker::new().cooldown(60 * S);
        assert!(long.validate().is_ok());
        assert_eq!(long.probe_wait(0, 0.5), 60 * S, "a long cooldown raises the cap");
        assert!(RetryBudget::new().validate().is_ok());
        assert!(RetryBudget::new().ratio(-1.0).validate().is_err());
        assert!(RetryBudget::new().ratio(f64::NAN).validate().is_err());
        assert!(RetryBudget::new().min_per_second(2_000_000).validate().is_err());
    }
}
