//! [`Client`]: the producer's handle. `send` is the hot path: estimate the size, push.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::SendError;
use crate::event::Event;
use crate::runtime::{send_now, AfterShutdown, Shared};
use crate::state::metrics::Metrics;
use crate::state::outcome::{Envelope, Receipt, ReceiptSlot};
use crate::state::queue::{Priority, PushError};
use crate::state::stats::Stats;
use crate::transport::probe::Diagnosis;

/// Stands in for "no deadline" where an `Instant` must be computed: a year.
const FOREVER: Duration = Duration::from_secs(365 * 86_400);

/// Sends events. Cheap to clone, `Send + Sync`: hand one to every producer thread.
///
/// Get one from [`Guard::client`](crate::Guard::client). A `Client` outliving its guard is
/// harmless: `send` then returns [`SendError::Closed`] with the event.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

impl Client {
    pub(crate) fn new(shared: Arc<Shared>) -> Client {
        Client { shared }
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
    pub fn send(&self, event: impl Into<Event>) -> Result<(), SendError> {
        self.push(event.into(), None)
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
        let event = event.into();
        let size = event.approx_bytes();
        match self.shared.queue.try_push(Envelope::sampled(event, size, None), &self.shared.ledger) {
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
            _ => self.push(event.into(), None),
        }
    }

    /// Like [`send`](Client::send), and returns a [`Receipt`] to wait for the event's outcome.
    pub fn send_tracked(&self, event: impl Into<Event>) -> Result<Receipt, SendError> {
        let (receipt, slot) = Receipt::new();
        self.push(event.into(), Some(slot)).map(|()| receipt)
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
        self.push(event, None)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
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
    pub fn metrics(&self) -> Metrics {
        self.shared.metrics()
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
        let queue = &self.shared.queue;
        self.shared.ledger.wait_idle(deadline, || queue.queued_bytes())
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

    fn push(&self, event: Event, receipt: Option<Arc<ReceiptSlot>>) -> Result<(), SendError> {
        let size = event.approx_bytes();
        let result = self.shared.queue.push(Envelope::sampled(event, size, receipt), &self.shared.ledger);
        self.pushed(result)
    }

    fn push_high(&self, event: Event) -> Result<(), SendError> {
        let size = event.approx_bytes();
        let result = self.shared.queue.push_high(Envelope::sampled(event, size, None), &self.shared.ledger);
        self.pushed(result)
    }

    /// What `send` returns for a push's result (sending after shutdown if configured).
    fn pushed(&self, result: Result<(), PushError>) -> Result<(), SendError> {
        match result {
            Ok(()) => Ok(()),
            Err(PushError::Full(env)) => Err(SendError::Full(env.event)),
            Err(PushError::Closed(env)) => match self.shared.options.after_shutdown {
                AfterShutdown::SendSync(timeout) => {
                    send_now(&self.shared, env, timeout);
                    Ok(())
                }
                _ => Err(SendError::Closed(env.event)),
            },
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("endpoint", &self.shared.transport.endpoint()).finish_non_exhaustive()
    }
}
