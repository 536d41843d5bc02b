//! Shared endpoint state seen by every worker: the `Retry-After` pause, the circuit breaker and
//! the retry budget.
//!
//! The pause is one lock-free atomic instant. The breaker and the budget change on every request
//! result, so they sit behind one small lock taken once per request (requests cost tens of
//! microseconds at least; the lock is uncontended nanoseconds). Their rules are pure functions
//! of an injected `now`, unit-tested below without threads or sockets. Workers wait on the
//! gate's `changed` channel, which is disconnected (and replaced) at every breaker transition,
//! so a successful probe wakes every waiting worker at once.
//!
//! Owns no events and never sleeps: callers wait.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use crate::error::Error;

/// The circuit breaker policy: after `failures` consecutive failed requests the endpoint gate
/// opens for `cooldown`; then one request (the probe) is let through. If it succeeds the
/// circuit closes, if it fails the circuit opens for another `cooldown`.
///
/// A failed request is one that is retried: a connection error, a timeout, or a 408, 425,
/// 429, 500, 502, 503 or 504 answer. Any other answer (2xx, and permanent refusals such as
/// 400) proves the endpoint is up and resets the count. While the circuit is open, workers
/// make no requests and leave events in the queue, where the overflow policy applies;
/// [`Stats::circuit`](crate::Stats::circuit) shows the state.
///
/// ```
/// use std::time::Duration;
/// let breaker = posthaste::CircuitBreaker::new().failures(10).cooldown(Duration::from_secs(5));
/// let guard = posthaste::builder("http://127.0.0.1:9/").circuit_breaker(breaker).start()?;
/// # drop(guard);
/// # Ok::<(), posthaste::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CircuitBreaker {
    enabled: bool,
    failures: u32,
    cooldown: Duration,
}

impl Default for CircuitBreaker {
    fn default() -> CircuitBreaker {
        CircuitBreaker { enabled: true, failures: 5, cooldown: Duration::from_secs(30) }
    }
}

impl CircuitBreaker {
    /// The default breaker: opens after 5 consecutive failures, for 30 s.
    pub fn new() -> CircuitBreaker {
        CircuitBreaker::default()
    }

    /// A breaker that never opens: every event keeps retrying on its own budget.
    pub fn disabled() -> CircuitBreaker {
        CircuitBreaker { enabled: false, ..CircuitBreaker::default() }
    }

    /// Consecutive failed requests (across all workers) that open the circuit (1–1,000,000).
    /// Defaults to 5.
    pub fn failures(mut self, n: u32) -> CircuitBreaker {
        self.failures = n;
        self
    }

    /// How long the circuit stays open before one probe is let through (1 ms – 1 day).
    /// Defaults to 30 s.
    pub fn cooldown(mut self, d: Duration) -> CircuitBreaker {
        self.cooldown = d;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if !(1..=1_000_000).contains(&self.failures) {
            return Err(Error::InvalidOption {
                option: "circuit_breaker.failures",
                reason: format!(
                    "{} is not within 1..=1000000 (use CircuitBreaker::disabled())",
                    self.failures
                ),
            });
        }
        if self.cooldown < Duration::from_millis(1) || self.cooldown > Duration::from_secs(86_400) {
            return Err(Error::InvalidOption {
                option: "circuit_breaker.cooldown",
                reason: format!("{:?} is not within 1ms..=1day", self.cooldown),
            });
        }
        Ok(())
    }
}

/// The retry budget: retries are limited to a fraction of first attempts plus a small floor,
/// over a sliding 10-second window, so that a fleet of clients can't stampede a recovering
/// endpoint with retries.
///
/// In any 10-second window, retries ≤ `ratio` × first attempts + 10 × `min_per_second`.
/// A retry over budget is not dropped at once: it waits (up to the retry policy's
/// `max_elapsed`) until the budget allows it, which slows retries down to what the budget
/// permits; if the budget can't allow it in time the event fails (and is spilled, with a spill
/// directory). [`Stats::retries_throttled`](crate::Stats::retries_throttled) counts the retries
/// held back.
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
        RetryBudget { enabled: true, ratio: 0.1, min_per_second: 10 }
    }
}

impl RetryBudget {
    /// The default budget: 10 % of first attempts plus 10 retries per second.
    pub fn new() -> RetryBudget {
        RetryBudget::default()
    }

    /// No budget: every retry the [`Retry`](crate::Retry) policy allows is made.
    pub fn unlimited() -> RetryBudget {
        RetryBudget { enabled: false, ..RetryBudget::default() }
    }

    /// Retries allowed per first attempt (0.0–100.0). Defaults to 0.1 (10 %).
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
    /// Mirrors of the breaker state for lock-free snapshots: the `Circuit` as a byte, and
    /// (while open) nanoseconds after `epoch` when the cool-down ends.
    circuit: AtomicU8,
    open_until: AtomicU64,
    opened: AtomicU64,
    throttled: AtomicU64,
    /// Disconnected and replaced at every breaker transition: wakes workers waiting on it.
    changed: Mutex<(Sender<()>, Receiver<()>)>,
}

struct State {
    breaker: Breaker,
    budget: Budget,
}

impl Gate {
    pub(crate) fn new(breaker: &CircuitBreaker, budget: &RetryBudget) -> Gate {
        Gate {
            epoch: Instant::now(),
            paused_until: AtomicU64::new(0),
            breaker_policy: breaker.clone(),
            budget_policy: budget.clone(),
            state: Mutex::new(State { breaker: Breaker::default(), budget: Budget::default() }),
            circuit: AtomicU8::new(Circuit::Closed as u8),
            open_until: AtomicU64::new(0),
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
    /// end of the pause or of the open circuit's cool-down. Changes nothing.
    pub(crate) fn blocked_until(&self, now: Instant) -> Option<Instant> {
        let paused = self.paused_until(now);
        let open = match self.circuit.load(Ordering::Acquire) {
            c if c == Circuit::Open as u8 => {
                let until = self.open_until.load(Ordering::Acquire);
                (until > self.nanos(now)).then(|| self.instant(until))
            }
            _ => None,
        };
        paused.max(open)
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
                let next = st.budget.next_chance(secs, &self.budget_policy);
                return Admit::NoBudget(next.map(|s| self.epoch + Duration::from_secs(s)));
            }
        }
        self.publish(&st.breaker, before);
        Admit::Go
    }

    /// Reports a request's result: `ok` unless it was a transient failure (see
    /// [`CircuitBreaker`]).
    pub(crate) fn record(&self, now: Instant, ok: bool) {
        if !self.breaker_policy.enabled {
            return;
        }
        let mut st = self.state.lock();
        let before = st.breaker.circuit();
        if st.breaker.record(now, ok, &self.breaker_policy) {
            self.opened.fetch_add(1, Ordering::Relaxed);
        }
        self.publish(&st.breaker, before);
    }

    /// Mirrors the breaker into the atomics and wakes waiters if it changed. Called under the
    /// state lock, so mirrors are written in transition order.
    fn publish(&self, breaker: &Breaker, before: Circuit) {
        let now = breaker.circuit();
        if let BreakerState::Open { until } = breaker.state {
            self.open_until.store(self.nanos(until), Ordering::Release);
        }
        self.circuit.store(now as u8, Ordering::Release);
        if now != before {
            self.notify();
        }
    }

    /// Counts a retry the budget held back (or refused).
    pub(crate) fn note_throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }

    /// `(state, times opened, retries throttled)` for a `Stats` snapshot.
    pub(crate) fn snapshot(&self, now: Instant) -> (Circuit, u64, u64) {
        let circuit = match self.circuit.load(Ordering::Acquire) {
            c if c == Circuit::Open as u8 => {
                // The cool-down may have ended without a request since: the next one probes.
                if self.open_until.load(Ordering::Acquire) > self.nanos(now) {
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

/// The breaker's rules, pure.
#[derive(Default)]
struct Breaker {
    state: BreakerState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BreakerState {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// `probe`: when the current probe was let through, if one is out.
    HalfOpen {
        probe: Option<Instant>,
    },
}

impl Default for BreakerState {
    fn default() -> BreakerState {
        BreakerState::Closed { failures: 0 }
    }
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
            BreakerState::Closed { .. } => Circuit::Closed,
            BreakerState::Open { .. } => Circuit::Open,
            BreakerState::HalfOpen { .. } => Circuit::HalfOpen,
        }
    }

    fn admit(&mut self, now: Instant, policy: &CircuitBreaker) -> BreakerAdmit {
        // A probe that never reported (its worker was stopped at the shutdown deadline) stops
        // blocking the others after one cool-down.
        let lease = policy.cooldown;
        match self.state {
            BreakerState::Closed { .. } => BreakerAdmit::Go,
            BreakerState::Open { until } if now < until => BreakerAdmit::Wait(until),
            BreakerState::Open { .. } | BreakerState::HalfOpen { probe: None } => {
                self.state = BreakerState::HalfOpen { probe: Some(now) };
                BreakerAdmit::Probe
            }
            BreakerState::HalfOpen { probe: Some(at) } if now < at + lease => {
                BreakerAdmit::Probing(at + lease)
            }
            BreakerState::HalfOpen { probe: Some(_) } => {
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

    /// Applies a result. True if the circuit opened.
    fn record(&mut self, now: Instant, ok: bool, policy: &CircuitBreaker) -> bool {
        let open = BreakerState::Open { until: now + policy.cooldown };
        match (self.state, ok) {
            // Any success proves the endpoint is up: close (this also covers a request let
            // through before the circuit opened that succeeds while it is open).
            (_, true) => {
                self.state = BreakerState::Closed { failures: 0 };
                false
            }
            (BreakerState::Closed { failures }, false) => {
                let failures = failures.saturating_add(1);
                if failures >= policy.failures {
                    self.state = open;
                    true
                } else {
                    self.state = BreakerState::Closed { failures };
                    false
                }
            }
            (BreakerState::HalfOpen { .. }, false) => {
                self.state = open;
                true
            }
            // A late failure from a request started before the circuit opened.
            (BreakerState::Open { .. }, false) => false,
        }
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

    #[test]
    fn breaker_opens_after_k_failures_then_probes_once() {
        let policy = CircuitBreaker::new().failures(3).cooldown(10 * S);
        let mut b = Breaker::default();
        let t0 = Instant::now();
        assert!(!b.record(t0, false, &policy));
        assert!(!b.record(t0, false, &policy));
        // A success in between resets the count.
        assert!(!b.record(t0, true, &policy));
        assert!(!b.record(t0, false, &policy));
        assert!(!b.record(t0, false, &policy));
        assert_eq!(b.admit(t0, &policy), BreakerAdmit::Go);
        assert!(b.record(t0, false, &policy), "third consecutive failure opens");
        assert_eq!(b.circuit(), Circuit::Open);
        assert_eq!(b.admit(t0 + 5 * S, &policy), BreakerAdmit::Wait(t0 + 10 * S));
        // Cool-down over: exactly one probe; the others wait for its result.
        assert_eq!(b.admit(t0 + 10 * S, &policy), BreakerAdmit::Probe);
        assert_eq!(b.circuit(), Circuit::HalfOpen);
        assert_eq!(b.admit(t0 + 11 * S, &policy), BreakerAdmit::Probing(t0 + 20 * S));
        // The probe fails: open again for a full cool-down.
        assert!(b.record(t0 + 12 * S, false, &policy));
        assert_eq!(b.admit(t0 + 13 * S, &policy), BreakerAdmit::Wait(t0 + 22 * S));
        assert_eq!(b.admit(t0 + 22 * S, &policy), BreakerAdmit::Probe);
        // The probe succeeds: closed.
        assert!(!b.record(t0 + 23 * S, true, &policy));
        assert_eq!(b.circuit(), Circuit::Closed);
        assert_eq!(b.admit(t0 + 23 * S, &policy), BreakerAdmit::Go);
    }

    #[test]
    fn lost_probe_is_replaced_after_a_cooldown() {
        let policy = CircuitBreaker::new().failures(1).cooldown(10 * S);
        let mut b = Breaker::default();
        let t0 = Instant::now();
        b.record(t0, false, &policy);
        assert_eq!(b.admit(t0 + 10 * S, &policy), BreakerAdmit::Probe);
        assert_eq!(b.admit(t0 + 19 * S, &policy), BreakerAdmit::Probing(t0 + 20 * S));
        assert_eq!(b.admit(t0 + 20 * S, &policy), BreakerAdmit::Probe);
        b.release_probe();
        assert_eq!(b.admit(t0 + 20 * S, &policy), BreakerAdmit::Probe);
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
        let g = Gate::new(
            &CircuitBreaker::new().failures(2).cooldown(10 * S),
            &RetryBudget::new().ratio(0.0).min_per_second(0),
        );
        let t0 = Instant::now();
        assert_eq!(g.admit(t0, false), Admit::Go);
        assert_eq!(g.admit(t0, true), Admit::NoBudget(None));
        g.record(t0, false);
        g.record(t0, false);
        let (circuit, opened, _) = g.snapshot(t0);
        assert_eq!((circuit, opened), (Circuit::Open, 1));
        assert!(matches!(g.admit(t0, false), Admit::Wait(_)));
        assert!(g.blocked_until(t0).is_some());
        // After the cool-down the snapshot shows half-open even before a probe.
        assert_eq!(g.snapshot(t0 + 11 * S).0, Circuit::HalfOpen);
        let changed = g.subscribe();
        assert_eq!(g.admit(t0 + 11 * S, false), Admit::Go);
        g.record(t0 + 11 * S, true);
        assert_eq!(changed.try_recv(), Err(crossbeam_channel::TryRecvError::Disconnected), "waiters woken");
        assert_eq!(g.snapshot(t0 + 11 * S).0, Circuit::Closed);
        // A pause wins over everything.
        g.pause(t0, 60 * S);
        assert!(matches!(g.admit(t0 + 12 * S, false), Admit::Wait(_)));
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
        assert!(RetryBudget::new().validate().is_ok());
        assert!(RetryBudget::new().ratio(-1.0).validate().is_err());
        assert!(RetryBudget::new().ratio(f64::NAN).validate().is_err());
        assert!(RetryBudget::new().min_per_second(2_000_000).validate().is_err());
    }
}
