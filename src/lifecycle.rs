//! Lifecycle beyond the guard: the exit hook, the panic hook, sending after shutdown, spill
//! replay at start, and the builder options for them (plus the circuit breaker and the retry
//! budget, whose rules live in `gate.rs`).
//!
//! Both hooks are process-wide and installed once; they find the running instances through
//! registries of `Weak<Shared>`, so a guard that was leaked (or lives in a static) is still
//! found, and one that was dropped is simply skipped. Neither hook takes a lock that posthaste
//! holds while running user code or while a worker sends: the exit hook only try-locks the
//! shutdown state until its deadline, and the panic hook sends through a transport of its own
//! on a helper thread and waits for it with a timeout.

use std::any::Any;
use std::backtrace::{Backtrace, BacktraceStatus};
use std::cell::Cell;
use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe, PanicHookInfo};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex, Once, PoisonError, Weak};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde_json::json;

use crate::batch;
use crate::builder::Builder;
use crate::config::Config;
use crate::error::Error;
use crate::event::Event;
use crate::gate::{Admit, CircuitBreaker, RetryBudget};
use crate::guard;
use crate::outcome::{Envelope, Outcome, ReceiptSlot};
use crate::retry::{classify_status, Verdict};
use crate::shared::Shared;
use crate::spill::Spill;
use crate::stats::From;
use crate::transport::Transport;

/// What [`Client::send`](crate::Client::send) does once shutdown has begun.
///
/// ```
/// use std::time::Duration;
/// use posthaste::AfterShutdown;
/// let guard = posthaste::builder("http://127.0.0.1:9/")
///     .after_shutdown(AfterShutdown::SendSync(Duration::from_millis(500)))
///     .start()?;
/// # drop(guard);
/// # Ok::<(), posthaste::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AfterShutdown {
    /// `send` returns [`SendError::Closed`](crate::SendError::Closed) with the event, which is
    /// not counted. The default.
    #[default]
    Refuse,
    /// `send` delivers the event itself, on the caller's thread: one attempt, each phase of
    /// the request bounded by the given timeout (1 ms – 60 s), no retry. The event is counted
    /// and settled like any other (`Delivered`, `Rejected`, `Failed`, or `Spilled` if a spill
    /// file is configured and the attempt failed for a transient reason); `send` returns
    /// `Ok`. It is not attempted while the endpoint gate is closed (a `Retry-After` pause or
    /// an open circuit). Like the seed systems' `fallback_to_sync`.
    SendSync(Duration),
}

/// The options this module owns, held in `Config::life`. Defaults in `LifeOptions::default`.
#[derive(Clone, Debug)]
pub(crate) struct LifeOptions {
    pub(crate) exit_hook: bool,
    pub(crate) exit_timeout: Duration,
    pub(crate) panic_hook: bool,
    pub(crate) panic_timeout: Duration,
    pub(crate) after_shutdown: AfterShutdown,
    pub(crate) spill_dir: Option<PathBuf>,
    pub(crate) spill_max_bytes: u64,
    pub(crate) spill_replay: bool,
    pub(crate) breaker: CircuitBreaker,
    pub(crate) budget: RetryBudget,
}

impl Default for LifeOptions {
    fn default() -> LifeOptions {
        LifeOptions {
            exit_hook: false,
            exit_timeout: Duration::from_secs(1),
            panic_hook: false,
            panic_timeout: Duration::from_secs(2),
            after_shutdown: AfterShutdown::Refuse,
            spill_dir: None,
            spill_max_bytes: 64 * 1024 * 1024,
            spill_replay: true,
            breaker: CircuitBreaker::new(),
            budget: RetryBudget::new(),
        }
    }
}

impl LifeOptions {
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let within = |option: &'static str, d: Duration, min: Duration, max: Duration| {
            if d < min || d > max {
                return Err(Error::InvalidOption {
                    option,
                    reason: format!("{d:?} is not within {min:?}..={max:?}"),
                });
            }
            Ok(())
        };
        let ms = Duration::from_millis(1);
        let minute = Duration::from_secs(60);
        within("exit_timeout", self.exit_timeout, Duration::ZERO, 10 * minute)?;
        within("panic_timeout", self.panic_timeout, ms, minute)?;
        if let AfterShutdown::SendSync(d) = self.after_shutdown {
            within("after_shutdown", d, ms, minute)?;
        }
        if self.spill_max_bytes == 0 {
            return Err(Error::InvalidOption {
                option: "spill_max_bytes",
                reason: "must be at least 1".into(),
            });
        }
        self.breaker.validate()?;
        self.budget.validate()
    }
}

/// Options for the hooks, spilling, sending after shutdown, the circuit breaker and the retry
/// budget.
impl Builder {
    /// Runs the shutdown path when the process exits without the guard having been dropped:
    /// through [`std::process::exit`] (which skips destructors), or returning from `main`
    /// while the guard is leaked or kept in a `static`. It then gets its own deadline,
    /// [`Builder::exit_timeout`]. Registered with the C library's `atexit`; runs once, on the
    /// exiting thread, and does nothing for a guard already shut down. It does not run on
    /// signals that kill the process (`SIGKILL`, or `SIGTERM`/`SIGINT` without a handler) nor
    /// on `abort`. Defaults to `false`.
    ///
    /// ```no_run
    /// let guard = posthaste::builder("https://collector.example/ingest").exit_hook(true).start()?;
    /// guard.client().send(serde_json::json!({"event": "bye"}))?;
    /// std::process::exit(0); // still delivered (within exit_timeout)
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn exit_hook(mut self, on: bool) -> Builder {
        self.config.life.exit_hook = on;
        self
    }

    /// The shutdown deadline used by the exit hook (0 – 10 minutes). Defaults to 1 s.
    pub fn exit_timeout(mut self, d: Duration) -> Builder {
        self.config.life.exit_timeout = d;
        self
    }

    /// On panic (any thread), sends one crash event straight to the endpoint, bypassing the
    /// queue, then calls the panic hook that was installed before (so the usual message still
    /// prints). The event is
    /// `{"event":"panic","message":…,"location":{"file":…,"line":…,"column":…},"thread":…,
    /// "backtrace":…,"pid":…,"timestamp_ms":…}`; `backtrace` is `null` unless backtraces are
    /// enabled (`RUST_BACKTRACE` / `RUST_LIB_BACKTRACE`). It is sent with the configured
    /// headers through a connection of its own, waiting at most [`Builder::panic_timeout`];
    /// if that fails and a spill directory is set, it is spilled. One crash event at a time:
    /// a panic on another thread while one is being sent is passed straight to the previous
    /// hook. Install your own panic hook *before* `start()` for it to be chained. Queued events
    /// are not flushed by the hook: unwinding drops the guard as usual (with `panic = "abort"`
    /// they are lost, as on `SIGKILL`). Defaults to `false`.
    pub fn panic_hook(mut self, on: bool) -> Builder {
        self.config.life.panic_hook = on;
        self
    }

    /// The longest the panic hook waits for the crash event to be sent (1 ms – 60 s).
    /// Defaults to 2 s.
    pub fn panic_timeout(mut self, d: Duration) -> Builder {
        self.config.life.panic_timeout = d;
        self
    }

    /// What `send` does once shutdown has begun. Defaults to [`AfterShutdown::Refuse`].
    pub fn after_shutdown(mut self, mode: AfterShutdown) -> Builder {
        self.config.life.after_shutdown = mode;
        self
    }

    /// Keeps undeliverable events on disk, in JSON-lines files in `dir` (created if needed;
    /// checked by `start()`). An event is spilled instead of ending `Cancelled` or `Abandoned`
    /// at the shutdown deadline, or `Failed` after its retries ran out on transient errors
    /// (connection errors, timeouts, 408/425/429/5xx); it then settles
    /// [`Outcome::Spilled`]. Each write is synced to disk before the event settles, so
    /// everything spilled is on disk when shutdown returns. The next `start()` with the same
    /// directory re-queues spilled events ahead of new ones ([`Builder::spill_replay`]).
    /// Several processes may share a directory (on a local file system: files are locked
    /// with `flock`). Defaults to no spilling.
    ///
    /// ```no_run
    /// let guard = posthaste::builder("https://collector.example/ingest")
    ///     .spill_dir("/var/lib/myapp/posthaste")
    ///     .start()?;
    /// # drop(guard);
    /// # Ok::<(), posthaste::Error>(())
    /// ```
    pub fn spill_dir(mut self, dir: impl Into<PathBuf>) -> Builder {
        self.config.life.spill_dir = Some(dir.into());
        self
    }

    /// The most bytes this instance writes to its spill file; events that don't fit keep
    /// their outcome and are counted in [`Stats::spill_failed`](crate::Stats::spill_failed).
    /// Replay also reads about this much at one start (the rest waits for the next).
    /// Defaults to 64 MiB.
    pub fn spill_max_bytes(mut self, bytes: u64) -> Builder {
        self.config.life.spill_max_bytes = bytes;
        self
    }

    /// Whether `start()` replays the spill files of runs that have ended: their events are
    /// counted `submitted` and `replayed`, taken by workers before anything queued, and each
    /// file is removed once all its events have an outcome (delivered, refused, or spilled
    /// again). Torn or corrupt lines are skipped and counted in
    /// [`Stats::replay_skipped`](crate::Stats::replay_skipped). Defaults to `true` (with a
    /// spill directory).
    pub fn spill_replay(mut self, on: bool) -> Builder {
        self.config.life.spill_replay = on;
        self
    }

    /// The circuit breaker. Defaults to [`CircuitBreaker::new()`]: opens after 5 consecutive
    /// failed requests, for 30 s.
    pub fn circuit_breaker(mut self, breaker: CircuitBreaker) -> Builder {
        self.config.life.breaker = breaker;
        self
    }

    /// The retry budget. Defaults to [`RetryBudget::new()`]: retries ≤ 10 % of first attempts
    /// plus 10 per second.
    pub fn retry_budget(mut self, budget: RetryBudget) -> Builder {
        self.config.life.budget = budget;
        self
    }
}

/// What `start()` prepares before the workers run.
pub(crate) struct Prepared {
    pub(crate) spill: Option<Arc<Spill>>,
    panic_transport: Option<Arc<Transport>>,
}

/// Opens the spill file and builds the panic hook's own transport, as configured.
pub(crate) fn prepare(config: &Config) -> Result<Prepared, Error> {
    let life = &config.life;
    let spill = match &life.spill_dir {
        Some(dir) => Some(Arc::new(Spill::open(dir, life.spill_max_bytes)?)),
        None => None,
    };
    let panic_transport = if life.panic_hook { Some(Arc::new(Transport::new(config)?)) } else { None };
    Ok(Prepared { spill, panic_transport })
}

/// Loads the spill files of ended runs into the backlog (before the workers start).
pub(crate) fn replay(shared: &Shared) {
    let Some(spill) = shared.ledger.spill() else { return };
    if !shared.config.life.spill_replay {
        return;
    }
    let orphans = spill.take_orphans();
    let n = orphans.events.len();
    shared.ledger.counters.replayed(n as u64, orphans.skipped);
    if n == 0 {
        orphans.files.remove();
        return;
    }
    let files = Arc::new(orphans.files);
    let left = Arc::new(AtomicUsize::new(n));
    let lost = Arc::new(AtomicBool::new(false));
    let hook = Arc::new(move |event_lost: bool| {
        if event_lost {
            lost.store(true, Ordering::Relaxed);
        }
        // The last event to settle decides: remove the files, or (if any event is neither
        // done nor spilled again) keep them for a later replay. Duplicates rather than loss.
        if left.fetch_sub(1, Ordering::AcqRel) == 1 {
            if lost.load(Ordering::Relaxed) {
                files.release();
            } else {
                files.remove();
            }
        }
    });
    let mut items = VecDeque::with_capacity(n);
    for event in orphans.events {
        shared.ledger.counters.submitted();
        let size = event.approx_bytes();
        items.push_back(Envelope { event, size, receipt: Some(ReceiptSlot::with_hook(hook.clone())) });
    }
    shared.backlog.fill(items);
}

/// Events replayed from spill files, taken by workers before the queue.
#[derive(Default)]
pub(crate) struct Backlog {
    items: Mutex<VecDeque<Envelope>>,
    /// Lets workers skip the lock once the backlog is empty (it never grows after start).
    left: AtomicUsize,
}

impl Backlog {
    fn fill(&self, items: VecDeque<Envelope>) {
        self.left.store(items.len(), Ordering::Release);
        *self.items.lock() = items;
    }

    /// The next replayed event, if any.
    pub(crate) fn pop(&self) -> Option<Envelope> {
        if self.left.load(Ordering::Acquire) == 0 {
            return None;
        }
        let env = self.items.lock().pop_front();
        if env.is_some() {
            self.left.fetch_sub(1, Ordering::AcqRel);
        }
        env
    }

    /// At the shutdown deadline: what was never taken is cancelled (spilled again).
    pub(crate) fn sweep(&self, shared: &Shared) {
        let rest: Vec<Envelope> = self.items.lock().drain(..).collect();
        self.left.store(0, Ordering::Release);
        shared.ledger.settle_all(&rest, &Outcome::Cancelled, From::Queue);
    }
}

/// Registers the instance with the process-wide hooks it asked for.
pub(crate) fn install(shared: &Arc<Shared>, prepared: Prepared) -> Result<(), Error> {
    if shared.config.life.exit_hook {
        register_exit(shared)?;
    }
    if let Some(transport) = prepared.panic_transport {
        register_panic(shared, transport);
    }
    Ok(())
}

fn lock<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The registries hold plain data that a panic can't leave half-updated.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------------
// Exit hook.

static EXIT_REGISTRY: StdMutex<Vec<Weak<Shared>>> = StdMutex::new(Vec::new());
static EXIT_REGISTER: Once = Once::new();
static EXIT_REGISTERED: AtomicBool = AtomicBool::new(false);
static EXIT_RAN: AtomicBool = AtomicBool::new(false);

fn register_exit(shared: &Arc<Shared>) -> Result<(), Error> {
    EXIT_REGISTER.call_once(|| EXIT_REGISTERED.store(atexit(at_exit), Ordering::Release));
    if !EXIT_REGISTERED.load(Ordering::Acquire) {
        return Err(Error::InvalidOption {
            option: "exit_hook",
            reason: "the C library refused to register an atexit handler".into(),
        });
    }
    let mut registry = lock(&EXIT_REGISTRY);
    registry.retain(|w| w.strong_count() > 0);
    registry.push(Arc::downgrade(shared));
    Ok(())
}

#[allow(unsafe_code)] // atexit(3) with a plain `extern "C" fn` that never unwinds.
fn atexit(f: extern "C" fn()) -> bool {
    // SAFETY: `f` is a valid function for the life of the process and catches every panic.
    unsafe { libc::atexit(f) == 0 }
}

extern "C" fn at_exit() {
    // Unwinding out of an `extern "C"` function aborts; nothing may escape.
    let _ = panic::catch_unwind(run_exit_hooks);
}

/// Shuts down every live instance that asked for the exit hook, all under one clock: intake
/// closes everywhere first, so the instances drain in parallel.
fn run_exit_hooks() {
    if EXIT_RAN.swap(true, Ordering::AcqRel) {
        return;
    }
    let targets: Vec<Arc<Shared>> = lock(&EXIT_REGISTRY).drain(..).filter_map(|w| w.upgrade()).collect();
    let now = Instant::now();
    let deadlines: Vec<Instant> =
        targets.iter().map(|shared| shared.begin_shutdown(now + shared.config.life.exit_timeout)).collect();
    for (shared, deadline) in targets.iter().zip(deadlines) {
        // Try-lock up to the deadline: `exit` may be called from an `on_outcome` callback
        // running inside a shutdown on this very thread.
        let _ = guard::try_shutdown(shared, deadline);
    }
}

// ---------------------------------------------------------------------------------------------
// Panic hook.

struct PanicTarget {
    shared: Weak<Shared>,
    /// Not the workers' transport: a panic inside theirs can't wedge this one.
    transport: Arc<Transport>,
}

static PANIC_REGISTRY: StdMutex<Vec<PanicTarget>> = StdMutex::new(Vec::new());
static PANIC_INSTALL: Once = Once::new();
/// A crash event is being sent (by any thread).
static PANIC_SENDING: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// This thread is inside our hook: a panic now must not send again.
    static IN_PANIC_HOOK: Cell<bool> = const { Cell::new(false) };
}

fn register_panic(shared: &Arc<Shared>, transport: Arc<Transport>) {
    {
        let mut registry = lock(&PANIC_REGISTRY);
        registry.retain(|t| t.shared.strong_count() > 0);
        registry.push(PanicTarget { shared: Arc::downgrade(shared), transport });
    }
    PANIC_INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            on_panic(info);
            previous(info);
        }));
    });
}

fn on_panic(info: &PanicHookInfo<'_>) {
    let nested = IN_PANIC_HOOK.try_with(|flag| flag.replace(true)).unwrap_or(true);
    if nested {
        return;
    }
    if !PANIC_SENDING.swap(true, Ordering::AcqRel) {
        // Panicking in a panic hook aborts the process: contain anything unexpected.
        let _ = panic::catch_unwind(AssertUnwindSafe(|| send_crash_events(info)));
        PANIC_SENDING.store(false, Ordering::Release);
    }
    let _ = IN_PANIC_HOOK.try_with(|flag| flag.set(false));
}

fn send_crash_events(info: &PanicHookInfo<'_>) {
    // Never block on the registry: it is only held briefly, but a panic may strike while
    // this very thread holds it.
    let targets: Vec<(Arc<Shared>, Arc<Transport>)> = {
        let registry = match PANIC_REGISTRY.try_lock() {
            Ok(r) => r,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return,
        };
        registry.iter().filter_map(|t| Some((t.shared.upgrade()?, t.transport.clone()))).collect()
    };
    if targets.is_empty() {
        return;
    }
    let event = crash_event(info);
    for (shared, transport) in targets {
        send_crash(&shared, transport, &event);
    }
}

/// The crash event for `info` (documented on [`Builder::panic_hook`]).
fn crash_event(info: &PanicHookInfo<'_>) -> Event {
    let message = payload_text(info.payload());
    let location = info.location().map(|l| json!({"file": l.file(), "line": l.line(), "column": l.column()}));
    let thread = thread::current();
    let backtrace = Backtrace::capture();
    let backtrace = (backtrace.status() == BacktraceStatus::Captured).then(|| backtrace.to_string());
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    Event::from(json!({
        "event": "panic",
        "message": message,
        "location": location,
        "thread": thread.name().unwrap_or("<unnamed>"),
        "backtrace": backtrace,
        "pid": std::process::id(),
        "timestamp_ms": millis,
    }))
}

pub(crate) fn payload_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_string()
    }
}

/// Sends one crash event within the panic timeout; spills it if the endpoint is unreachable.
fn send_crash(shared: &Arc<Shared>, transport: Arc<Transport>, event: &Event) {
    let timeout = shared.config.life.panic_timeout;
    let deadline = Instant::now() + timeout;
    // An open circuit or a Retry-After pause: don't wait on a dead endpoint, spill at once.
    let reached = if shared.gate.blocked_until(Instant::now()).is_some() {
        Reached::No
    } else {
        let crash = [Envelope { event: event.clone(), size: 0, receipt: None }];
        let (body, headers) = batch::encode_once(&shared.config.batch, &crash);
        let (tx, rx) = crossbeam_channel::bounded(1);
        let send = move || {
            let reached = match transport.send(&body, &headers, Some(timeout)) {
                Ok(answer) if classify_status(answer.status) == Verdict::Retry => Reached::No,
                Ok(_) => Reached::Yes,
                Err(fault) if fault.transient => Reached::No,
                Err(_) => Reached::Yes, // TLS, proxy auth: spilling won't help
            };
            let _ = tx.send(reached);
        };
        // On a helper thread, so that the wait is bounded even if a phase timeout isn't.
        match thread::Builder::new().name("posthaste-panic".into()).spawn(send) {
            Ok(_) => rx.recv_deadline(deadline).unwrap_or(Reached::No),
            Err(_) => Reached::No,
        }
    };
    if reached == Reached::No {
        if let Some(spill) = shared.ledger.spill() {
            let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(10));
            spill.append([event], Some(left));
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reached {
    Yes,
    No,
}

// ---------------------------------------------------------------------------------------------
// Sending after shutdown.

/// Delivers `env` on the caller's thread: one attempt bounded by `timeout`, counted and
/// settled like any event (see [`AfterShutdown::SendSync`]).
pub(crate) fn send_now(shared: &Shared, env: Envelope, timeout: Duration) {
    let counters = &shared.ledger.counters;
    counters.submitted();
    counters.started(1);
    let batch = [env];
    let endpoint = shared.transport.endpoint();
    let (outcome, transient) = match shared.gate.admit(Instant::now(), false) {
        Admit::Go => {
            let (body, headers) = batch::encode_once(&shared.config.batch, &batch);
            counters.request(false, body.len());
            let (outcome, transient) = match shared.transport.send(&body, &headers, Some(timeout)) {
                Ok(answer) => match classify_status(answer.status) {
                    Verdict::Delivered => (Outcome::Delivered { status: answer.status, attempts: 1 }, false),
                    Verdict::Reject | Verdict::TooLarge => {
                        let reason = answer.excerpt;
                        (Outcome::Rejected { status: answer.status, attempts: 1, reason }, false)
                    }
                    Verdict::Fail => {
                        let reason =
                            format!("{endpoint} answered {}: proxy authentication required", answer.status);
                        (Outcome::Failed { reason, attempts: 1 }, false)
                    }
                    Verdict::Retry => {
                        let reason = format!(
                            "{endpoint} answered {}; sent after shutdown: not retried",
                            answer.status
                        );
                        (Outcome::Failed { reason, attempts: 1 }, true)
                    }
                },
                Err(fault) => {
                    let reason = format!("{}; sent after shutdown: not retried", fault.reason);
                    (Outcome::Failed { reason, attempts: 1 }, fault.transient)
                }
            };
            shared.gate.record(Instant::now(), !transient);
            (outcome, transient)
        }
        Admit::Wait(_) | Admit::Probing(_) | Admit::NoBudget(_) => {
            let reason =
                format!("{endpoint}: not sent after shutdown: paused by Retry-After or open circuit");
            (Outcome::Failed { reason, attempts: 0 }, true)
        }
    };
    if transient {
        shared.ledger.settle_all_or_spill(&batch, &outcome, From::Flight);
    } else {
        shared.ledger.settle_all(&batch, &outcome, From::Flight);
    }
}
