//! [`Client`]: the producer's handle. `send` is the hot path: charge the size, push.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::api::broadcast::{Broadcast, BroadcastReceipt};
use crate::error::SendError;
use crate::event::Event;
use crate::policy::poll::PollStats;
use crate::runtime::{send_now, AfterShutdown, Instance, Shared};
use crate::state::ledger::Ledger;
use crate::state::metrics::Metrics;
use crate::state::outcome::{Envelope, Outcome, Receipt, ReceiptSlot};
use crate::state::queue::{Priority, PushError};
use crate::state::stats::{Stage, Stats};
use crate::transport::probe::Diagnosis;

/// Stands in for "no deadline" where an `Instant` must be computed: a year.
const FOREVER: Duration = Duration::from_secs(365 * 86_400);

/// Sends events. Cheap to clone, `Send + Sync`: hand one to every producer thread.
///
/// Get one from [`Guard::client`](crate::Guard::client). A `Client` outliving its guard is
/// harmless: `send` then returns [`SendError::Closed`] with the event.
#[derive(Clone)]
pub struct Client {
    /// The default endpoint, reached without a look-up.
    shared: Arc<Shared>,
    instance: Arc<Instance>,
}

impl Client {
    pub(crate) fn new(instance: Arc<Instance>) -> Client {
        Client { shared: instance.default_endpoint().clone(), instance }
    }

    /// Queues an event for delivery and returns at once.
    ///
    /// A `serde_json::Value` is moved in as it is and serialized later on a worker thread.
    /// Under the default [`Overflow::DropNewest`](crate::Overflow) this never blocks, takes
    /// no lock and allocates nothing.
    ///
    /// # Errors
    /// [`SendError::Full`] if the overflow policy dropped it (counted in `dropped`),
    /// [`SendError::Closed`] after shutdown began (not counted; unless
    /// [`AfterShutdown::SendSync`] is configured, which sends
    /// it on this thread instead). Both hand the event back.
    ///
    /// ```
    /// # let guard = posthaste::builder("http://127.0.0.1:9/").start().unwrap();
    /// let client = guard.client();
    /// client.send(serde_json::json!({"event": "tick", "i": 1}))?;
    /// # Ok::<(), posthaste::SendError>(())
    /// ```
    ///
    /// With a [`Route`](crate::Route) set on the builder, the route picks the endpoint.
    pub fn send(&self, event: impl Into<Event>) -> Result<(), SendError> {
        self.routed(event.into(), None)
    }

    /// Queues an event if that can be done without waiting, whatever the overflow policy, and
    /// returns at once. For code that must never wait: logging front ends, signal-like paths,
    /// callbacks.
    ///
    /// Under [`Overflow::Block`](crate::Overflow) and `BlockFor` a full queue drops the event
    /// (counted in `dropped`, as under `DropNewest`); `DropNewest` and `DropOldest` behave as
    /// with [`send`](Client::send). After shutdown began it returns [`SendError::Closed`] even
    /// with [`AfterShutdown::SendSync`] configured (which would send on this thread).
    ///
    /// # Errors
    /// [`SendError::Full`] (dropped, counted) or [`SendError::Closed`] (not counted), with the
    /// event.
    ///
    /// ```
    /// # let guard = posthaste::builder("http://127.0.0.1:9/")
    /// #     .overflow(posthaste::Overflow::Block).start().unwrap();
    /// let client = guard.client();
    /// if let Err(e) = client.try_send(serde_json::json!({"event": "tick"})) {
    ///     assert!(e.is_full()); // dropped and counted; this thread did not wait
    /// }
    /// ```
    pub fn try_send(&self, event: impl Into<Event>) -> Result<(), SendError> {
        self.try_send_with(event, Priority::Normal)
    }

    /// Like [`try_send`](Client::try_send), on the lane `priority` names (see
    /// [`send_with`](Client::send_with)): never waits. The logging front ends send `ERROR`
    /// records this way on the high-priority lane.
    ///
    /// # Errors
    /// As [`try_send`](Client::try_send).
    pub fn try_send_with(&self, event: impl Into<Event>, priority: Priority) -> Result<(), SendError> {
        let event = event.into();
        let shared = self.target(&event);
        let size = shared.queue.charge(&event);
        let env = Envelope::sampled(event, size, None);
        let result = match priority {
            Priority::High => shared.queue.try_push_high(env, &shared.ledger),
            _ => shared.queue.try_push(env, &shared.ledger),
        };
        match result {
            Ok(()) => Ok(()),
            Err(PushError::Full(env)) => Err(SendError::Full(env.event)),
            Err(PushError::Closed(env)) => Err(SendError::Closed(env.event)),
        }
    }

    /// Like [`send`](Client::send), on the lane `priority` names: [`Priority::High`] events
    /// have their own capacity, are taken by workers first, and under overflow push normal
    /// events out before they are dropped themselves. `send` is `send_with(event,
    /// Priority::Normal)`.
    ///
    /// ```
    /// use posthaste::Priority;
    /// # let guard = posthaste::builder("http://127.0.0.1:9/").start().unwrap();
    /// let client = guard.client();
    /// client.send_with(serde_json::json!({"alert": "disk full"}), Priority::High)?;
    /// # Ok::<(), posthaste::SendError>(())
    /// ```
    pub fn send_with(&self, event: impl Into<Event>, priority: Priority) -> Result<(), SendError> {
        match priority {
            Priority::High => self.push_high(event.into()),
            _ => self.routed(event.into(), None),
        }
    }

    /// Like [`send`](Client::send), and returns a [`Receipt`] to wait for the event's outcome.
    pub fn send_tracked(&self, event: impl Into<Event>) -> Result<Receipt, SendError> {
        let (receipt, slot) = Receipt::new();
        self.routed(event.into(), Some(slot)).map(|()| receipt)
    }

    /// Queues an event for the endpoint called `endpoint` (see
    /// [`Builder::endpoint`](crate::Builder::endpoint); the builder's own is
    /// [`DEFAULT_ENDPOINT`](crate::DEFAULT_ENDPOINT)), like [`send`](Client::send). No route is
    /// consulted.
    ///
    /// # Errors
    /// As [`send`](Client::send), and [`SendError::UnknownEndpoint`] (not counted anywhere)
    /// for a name no endpoint has; all hand the event back.
    pub fn send_to(&self, endpoint: &str, event: impl Into<Event>) -> Result<(), SendError> {
        let shared = self.named(endpoint, event.into())?;
        Self::push_to(shared.0, shared.1, None)
    }

    /// Like [`send_to`](Client::send_to), and returns a [`Receipt`] for the event's outcome.
    pub fn send_to_tracked(&self, endpoint: &str, event: impl Into<Event>) -> Result<Receipt, SendError> {
        let (shared, event) = self.named(endpoint, event.into())?;
        let (receipt, slot) = Receipt::new();
        Self::push_to(shared, event, Some(slot)).map(|()| receipt)
    }

    /// Sends one copy of `event` to every endpoint (the builder's own first) and returns a
    /// receipt with one [`Outcome`] per endpoint. Same as
    /// `broadcast_with(&Broadcast::all(), event)`.
    ///
    /// ```
    /// let guard = posthaste::builder("http://127.0.0.1:9/a")
    ///     .endpoint("b", posthaste::endpoint("http://127.0.0.1:9/b"))
    ///     .start()?;
    /// let receipt = guard.client().broadcast(serde_json::json!({"deploy": 42})).unwrap();
    /// assert_eq!(receipt.endpoints().collect::<Vec<_>>(), ["default", "b"]);
    /// # drop(guard);
    /// # Ok::<(), posthaste::Error>(())
    /// ```
    ///
    /// # Errors
    /// See [`broadcast_with`](Client::broadcast_with).
    pub fn broadcast(&self, event: impl Into<Event>) -> Result<BroadcastReceipt, SendError> {
        self.broadcast_with(&Broadcast::all(), event)
    }

    /// Sends one copy of `event` to each endpoint `how` names, with or without `fail_fast`
    /// (see [`Broadcast`]), and returns a receipt with one [`Outcome`] per endpoint. Each copy
    /// is queued, counted and settled like any event of its endpoint: a full queue drops that
    /// copy (`Dropped` in the receipt) and the others go on.
    ///
    /// # Errors
    /// [`SendError::UnknownEndpoint`] if `how` names an endpoint that does not exist, and
    /// [`SendError::Closed`] once shutdown has begun (unless
    /// [`AfterShutdown::SendSync`] is configured); nothing is queued then and the event is
    /// handed back.
    pub fn broadcast_with(
        &self,
        how: &Broadcast,
        event: impl Into<Event>,
    ) -> Result<BroadcastReceipt, SendError> {
        let event = event.into();
        let instance = &self.instance;
        let Ok(targets) = how.targets(&instance.names) else {
            return Err(SendError::UnknownEndpoint(event));
        };
        let targets: Vec<usize> = targets.iter().filter_map(|name| instance.index_of(name)).collect();
        let sync = !matches!(self.shared.options.after_shutdown, AfterShutdown::Refuse);
        if !sync && targets.iter().any(|&i| instance.endpoints[i].queue.is_closed()) {
            return Err(SendError::Closed(event));
        }
        let flag = how.flag();
        let mut copies = Vec::with_capacity(targets.len());
        let mut event = Some(event);
        for (n, &i) in targets.iter().enumerate() {
            let copy = if n + 1 == targets.len() { event.take() } else { event.clone() };
            let Some(copy) = copy else { break };
            let (receipt, slot) = match &flag {
                Some(flag) => Receipt::fail_fast(flag.clone()),
                None => Receipt::new(),
            };
            let shared = &instance.endpoints[i];
            match Self::push_to(shared, copy, Some(slot.clone())) {
                Ok(()) | Err(SendError::Full(_)) => {}
                // Shutdown began between the check above and this copy: it is counted and
                // settled like an event still queued at the deadline.
                Err(e) => cancel_copy(&shared.ledger, e, slot),
            }
            copies.push((instance.names[i].clone(), receipt));
        }
        Ok(BroadcastReceipt::new(copies))
    }

    /// Serializes `value` to JSON on the calling thread and queues the bytes. Use it for your
    /// own `Serialize` types; the byte budget then counts the exact length.
    ///
    /// ```
    /// #[derive(serde::Serialize)]
    /// struct Tick { i: u64 }
    /// # let guard = posthaste::builder("http://127.0.0.1:9/").start().unwrap();
    /// guard.client().send_serialize(&Tick { i: 1 })?;
    /// # Ok::<(), posthaste::SendError>(())
    /// ```
    pub fn send_serialize<T: serde::Serialize + ?Sized>(&self, value: &T) -> Result<(), SendError> {
        let event = Event::from_serialize(value).map_err(SendError::Serialize)?;
        self.routed(event, None)
    }

    /// A snapshot of the counters, summed over every endpoint (the accounting invariant holds
    /// for the sum as for each endpoint). The `circuit` shown is the most open one.
    pub fn stats(&self) -> Stats {
        self.instance.stats()
    }

    /// A snapshot of one endpoint's counters; `None` if no endpoint has that name.
    ///
    /// ```
    /// # let guard = posthaste::builder("http://127.0.0.1:9/").start().unwrap();
    /// let stats = guard.client().endpoint_stats(posthaste::DEFAULT_ENDPOINT).unwrap();
    /// assert_eq!(stats.submitted, 0);
    /// ```
    pub fn endpoint_stats(&self, endpoint: &str) -> Option<Stats> {
        self.instance.index_of(endpoint).map(|i| self.instance.endpoints[i].stats())
    }

    /// A snapshot of one poller's counters ([`Builder::poll`](crate::Builder::poll)); `None`
    /// if no poller has that name.
    pub fn poll_stats(&self, poller: &str) -> Option<PollStats> {
        self.instance.poll_stats(poller)
    }

    /// Every endpoint's name and counters, the builder's own endpoint first.
    pub fn stats_by_endpoint(&self) -> Vec<(String, Stats)> {
        self.instance.endpoint_stats()
    }

    /// How busy the pipeline is and how long events wait, over the metrics window (see
    /// [`Metrics`]): queued events, busy workers, load now and on average, wait and service
    /// times (mean and 99th percentile), arrival and departure rates. Costs a lock and a
    /// pass over 60 small buckets; `send` pays nothing for it but a sampled timestamp.
    ///
    /// ```
    /// # let guard = posthaste::builder("http://127.0.0.1:9/").start().unwrap();
    /// let m = guard.client().metrics();
    /// println!("{m}"); // queued 0, busy 0/2 (load 0.00, 0.00 over 60s), …
    /// ```
    ///
    /// With several endpoints, this is all of them combined: counts, workers and rates
    /// summed, load weighted by workers, the largest of their wait and service times.
    /// [`endpoint_metrics`](Client::endpoint_metrics) gives one endpoint's.
    pub fn metrics(&self) -> Metrics {
        self.instance.metrics()
    }

    /// The [`Metrics`] of the endpoint called `endpoint`, if there is one.
    pub fn endpoint_metrics(&self, endpoint: &str) -> Option<Metrics> {
        self.instance.index_of(endpoint).map(|i| self.instance.endpoints[i].metrics())
    }

    /// Waits until every event sent so far has settled (nothing queued or in flight), with
    /// retries on, or until `timeout`. True if everything settled in time.
    ///
    /// Shutdown delivers what is queued *without* retries; call `flush` first when the program
    /// would rather wait for retries than cancel. Events sent meanwhile are waited for too.
    ///
    /// ```no_run
    /// # let guard = posthaste::builder("http://127.0.0.1:8080/").start().unwrap();
    /// # let client = guard.client();
    /// if !client.flush(std::time::Duration::from_secs(30)) {
    ///     eprintln!("still {} events pending", client.stats().queued);
    /// }
    /// ```
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout).unwrap_or_else(|| Instant::now() + FOREVER);
        let mut idle = true;
        for shared in &self.instance.endpoints {
            let queue = &shared.queue;
            idle &= shared.ledger.wait_idle(deadline, || queue.queued_bytes());
        }
        idle
    }

    /// Runs one `HEAD` request through the configured path (proxy, tunnel, TLS) on this
    /// thread and returns a step-by-step [`Diagnosis`]: which route was
    /// chosen and why, DNS, TCP, the proxy's answer to `CONNECT`, the endpoint's certificate
    /// and the root that verified it, and the HTTP status. Use it to debug a corporate setup
    /// in one call. Independent of the queue: it works during and after shutdown too.
    ///
    /// ```no_run
    /// let guard = posthaste::builder("https://collector.corp/ingest")
    ///     .proxy("http://proxy.corp:3128")
    ///     .add_root_certs_pem_file("corp-ca.pem")
    ///     .start()?;
    /// let diagnosis = guard.client().probe();
    /// print!("{diagnosis}");
    /// if let Some(step) = diagnosis.failure() {
    ///     eprintln!("failed at {:?}: {}", step.kind, step.detail);
    /// }
    /// # Ok::<(), posthaste::Error>(())
    /// ```
    pub fn probe(&self) -> Diagnosis {
        // The HTTP stack's records from this call are posthaste's: the logging front ends skip them.
        let _own = crate::util::OwnScope::enter();
        crate::transport::probe::run(&self.shared.transport)
    }

    /// True once shutdown has begun (`send` then returns `Closed`).
    pub fn is_closed(&self) -> bool {
        self.shared.queue.is_closed()
    }

    /// The default endpoint, or the one the route picks for `event`.
    fn target(&self, event: &Event) -> &Arc<Shared> {
        match &self.instance.routing {
            None => &self.shared,
            Some(routing) => &self.instance.endpoints[routing.pick(event)],
        }
    }

    /// Queues on the default endpoint, or the one the route picks.
    fn routed(&self, event: Event, receipt: Option<Arc<ReceiptSlot>>) -> Result<(), SendError> {
        Self::push_to(self.target(&event), event, receipt)
    }

    /// The endpoint called `name`, or the event back.
    fn named(&self, name: &str, event: Event) -> Result<(&Arc<Shared>, Event), SendError> {
        match self.instance.index_of(name) {
            Some(i) => Ok((&self.instance.endpoints[i], event)),
            None => Err(SendError::UnknownEndpoint(event)),
        }
    }

    fn push_to(shared: &Shared, event: Event, receipt: Option<Arc<ReceiptSlot>>) -> Result<(), SendError> {
        let size = shared.queue.charge(&event);
        let result = shared.queue.push(Envelope::sampled(event, size, receipt), &shared.ledger);
        Self::pushed(shared, result)
    }

    /// On the high-priority lane of the default endpoint, or of the one the route picks.
    fn push_high(&self, event: Event) -> Result<(), SendError> {
        let shared = self.target(&event);
        let size = shared.queue.charge(&event);
        let result = shared.queue.push_high(Envelope::sampled(event, size, None), &shared.ledger);
        Self::pushed(shared, result)
    }

    /// What `send` returns for a push's result (sending after shutdown if configured).
    fn pushed(shared: &Shared, result: Result<(), PushError>) -> Result<(), SendError> {
        match result {
            Ok(()) => Ok(()),
            Err(PushError::Full(env)) => Err(SendError::Full(env.event)),
            Err(PushError::Closed(env)) => match shared.options.after_shutdown {
                AfterShutdown::SendSync(timeout) => {
                    send_now(shared, env, timeout);
                    Ok(())
                }
                _ => Err(SendError::Closed(env.event)),
            },
        }
    }
}

/// Accounts for a broadcast copy that intake refused after the broadcast began.
fn cancel_copy(ledger: &Ledger, error: SendError, slot: Arc<ReceiptSlot>) {
    if let Some(event) = error.into_event() {
        ledger.counters.submitted();
        let size = event.approx_bytes();
        let env = Envelope::new(event, size, Some(slot));
        ledger.settle_all_unspilled(std::slice::from_ref(&env), &Outcome::Cancelled, Stage::Queued);
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.shared.transport.endpoint())
            .field("endpoints", &self.instance.names)
            .finish_non_exhaustive()
    }
}
