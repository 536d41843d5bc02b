//! Ship events, logs and webhooks over HTTP from ordinary synchronous programs.
//!
//! posthaste runs a fixed pool of OS worker threads that take events from a bounded queue and
//! deliver them with blocking HTTP requests, retrying what is worth retrying. There is no async
//! runtime. Your program holds one [`Guard`] in `main()` and calls [`Client::send`] from
//! anywhere, including hot loops: `send` moves the event into the queue and returns.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let guard = posthaste::builder("https://collector.example/ingest")
//!         .bearer_auth("token")
//!         .workers(2)
//!         .queue_capacity(10_000)
//!         .overflow(posthaste::Overflow::DropNewest)
//!         .shutdown_timeout(Duration::from_secs(3))
//!         .start()?;
//!     let client = guard.client();
//!     for i in 0..1_000 {
//!         // Never blocks under the default policy; a full queue hands the event back.
//!         let _ = client.send(serde_json::json!({"event": "step", "i": i}));
//!     }
//!     let receipt = client.send_tracked(serde_json::json!({"event": "done"}))?;
//!     println!("{:?}", receipt.wait(Duration::from_secs(5)));
//!     let report = guard.shutdown(); // delivers what is queued, within 3 s
//!     println!("{report}");
//!     Ok(())
//! }
//! ```
//!
//! # What happens to an event
//!
//! Every event accepted by `send` ends in exactly one [`Outcome`]: `Delivered` (2xx),
//! `Rejected` (a status that is not worth retrying), `Failed` (TLS, proxy authentication,
//! retries exhausted), `Dropped` (overflow policy), `Cancelled` (never sent before the shutdown
//! deadline), `Abandoned` (on the wire at the deadline) or `Spilled` (written to disk for a later
//! run, see [`Builder::spill_dir`]). [`Stats`] counts them and keeps
//! `submitted = delivered + rejected + failed + dropped + cancelled + abandoned + spilled + queued + in_flight`
//! in every snapshot. [`Client::send_tracked`] gives a [`Receipt`] to wait on one event, and
//! [`Builder::on_outcome`] sees them all.
//!
//! Retried: connection errors, timeouts, and statuses 408, 425, 429, 500, 502, 503, 504, with
//! exponential backoff and full jitter ([`Retry`]). A failed request never holds a worker: its
//! events wait on a retry schedule (inside the queue's bounds, counted `in_flight` and
//! `scheduled` in [`Stats`]) while the worker takes other work, and whichever worker is free
//! when they come due sends them again. A `Retry-After` answer pauses every worker. Redirects
//! are never followed (a redirected POST would lose its body); they are `Rejected`. A
//! [`CircuitBreaker`] stops requests to an endpoint that is dead or failing most requests (a
//! failure rate shown above 50 % over at least 20 requests, or 5 or more requests that all
//! failed, within 10 s) and probes it once after about a second, backing off to 10 s with
//! jitter; a flaky endpoint failing a third of requests at random does not open it. A
//! [`RetryBudget`] keeps retries within 50 % of first attempts plus 10 a second.
//!
//! # Throughput
//!
//! By default every request carries one event. [`Builder::batch`] sends many per request
//! (a JSON array, NDJSON lines, or your own [`Encoding`]), optionally gzip-compressed
//! ([`Builder::gzip`]); this is what takes posthaste from tens of thousands to over a million
//! events per second. [`Builder::template`] wraps each event for endpoints that want an
//! envelope, [`Builder::idempotency`] lets the receiver drop duplicates from retries, and
//! [`Builder::worker_nice`] keeps the workers out of your compute threads' way.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! let guard = posthaste::builder("https://collector.example/ingest")
//!     .batch(posthaste::Batch::new().max_events(1_000).linger(Duration::from_millis(100)))
//!     .encoding(posthaste::Encoding::Ndjson)
//!     .gzip(posthaste::Gzip::new())
//!     .idempotency(posthaste::Idempotency::new())
//!     .worker_nice(10)
//!     .start()?;
//! # drop(guard);
//! # Ok::<(), posthaste::Error>(())
//! ```
//!
//! # Logging
//!
//! Two cargo features, off by default, turn log records into events: `log` gives
//! `posthaste::log::Logger` (a `log::Log`), `tracing` gives `posthaste::tracing::Layer` (a
//! `tracing_subscriber::Layer`). Each record becomes one JSON object, written on the calling
//! thread and handed over with [`Client::try_send`]:
//!
//! | key | value | when |
//! |---|---|---|
//! | `timestamp` | string, RFC 3339 UTC with microseconds (`2026-12-02T01:37:16.123456Z`), taken on the calling thread | always |
//! | `level` | `"TRACE"`, `"DEBUG"`, `"INFO"`, `"WARN"` or `"ERROR"` | always |
//! | `target` | string: the record's target (by default its module path) | always |
//! | `message` | string: the formatted message (`""` if none) | always |
//! | *each field* | its JSON type: integers and floats as numbers (`NaN`, `inf` as strings), booleans as booleans, strings as strings; `Debug`/`Display`-only values as strings; an error (`&dyn Error`, `log`'s `:err`) as `{"message": …, "sources": [… its source() chain …]}` | the record's fields (`tracing`) or key-values (`log`) |
//! | `spans` | array, root first, of `{"name": …, <the span's fields>}` | `tracing`, inside a span |
//! | `file`, `line` | string, number | when the record knows them |
//! | *each static field* | as given to `with_field` | always, unless the record has a field of that name |
//!
//! **Name collisions**: the shape's keys win. A field named `timestamp`, `level`, `target`,
//! `spans`, `file` or `line` is written as `field.<name>` (`"field.level"`); a field named
//! `message` is the message; in a span, `name` is the span's and a field `name` is written as
//! `field.name`. A record's own field hides a static field of the same name. A field given
//! twice in one call is written twice (JSON parsers keep the last).
//!
//! The front ends **never block** the logging thread, whatever the [`Overflow`] policy: they
//! try once, and a full queue drops the record (counted in `dropped`). They **never loop**:
//! records emitted on posthaste's own threads (workers, the hooks, [`Client::probe`]) and
//! records whose target starts with `ureq`, `rustls` or `posthaste` are not shipped, so the
//! HTTP stack's own logging never comes back as traffic; this also means the log
//! records of your [`on_outcome`](Builder::on_outcome) and
//! [`on_lifecycle`](Builder::on_lifecycle) callbacks are not shipped. `tracing` events
//! bridged from `log` by `tracing-log` keep their own target, file and line. After shutdown
//! they are silent no-ops; `log` keeps its logger and `tracing` its global subscriber for the
//! life of the process, so the [`Guard`] is what ends delivery. With [`Builder::exit_hook`],
//! records logged just before `process::exit` are delivered. The [`Builder::panic_hook`]'s
//! crash event has the same shape (`level` `"ERROR"`, `target` `"panic"`).
//!
//! Logs are many small events: turn on batching, NDJSON (or a JSON array) and gzip.
//!
//! ```no_run
//! # #[cfg(feature = "tracing")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let guard = posthaste::builder("https://logs.example/ingest")
//!     .batch(posthaste::Batch::new())
//!     .encoding(posthaste::Encoding::Ndjson)
//!     .gzip(posthaste::Gzip::new())
//!     .exit_hook(true)
//!     .start()?;
//! let layer = posthaste::tracing::Layer::new(guard.client())
//!     .with_field("service", "billing")
//!     .with_field("version", "1.4.2");
//! tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))?;
//! tracing::info!(user_id = 42, "checkout");
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "tracing"))]
//! # fn main() {}
//! ```
//!
//! # Several endpoints
//!
//! The builder's URL is the default endpoint. [`Builder::endpoint`] adds named ones, each with
//! its own URL, headers, batching, signing, workers, queue, retry policy, breaker and
//! [`Stats`]; they share the network configuration, the hooks and the one shutdown deadline.
//! [`Client::send_to`] picks one by name, a [`Route`] lets [`Client::send`] pick one from the
//! event, [`Client::broadcast`] sends a copy to each (one [`Outcome`] per endpoint in a
//! [`BroadcastReceipt`]; [`Broadcast::fail_fast`] cancels the copies not yet sent once one
//! fails), and a black-holed or failing endpoint never slows another.
//!
//! ```no_run
//! let guard = posthaste::builder("https://hooks.example/other")
//!     .endpoint("created", posthaste::endpoint("https://hooks.example/orders/created"))
//!     .endpoint("audit", posthaste::endpoint("https://audit.example/in").workers(1))
//!     .route(posthaste::Route::by_field("type").to("order_created", "created"))
//!     .start()?;
//! let client = guard.client();
//! client.send(serde_json::json!({"type": "order_created", "id": 1})).unwrap(); // → "created"
//! client.send_to("audit", serde_json::json!({"user": 7})).unwrap();
//! println!("{:?}", client.endpoint_stats("audit"));
//! # Ok::<(), posthaste::Error>(())
//! ```
//!
//! # Signed webhooks
//!
//! [`Builder::webhook_secret`] (or [`Endpoint::webhook_secret`]) signs every request per the
//! [Standard Webhooks](https://www.standardwebhooks.com) specification: `webhook-id` (one per
//! event or batch, kept across retries), `webhook-timestamp` (fresh for each attempt) and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` over the
//! uncompressed body; several secrets (key rotation) give several entries. The interop suite
//! checks every delivery, retries included, with the `standardwebhooks` reference verifier.
//!
//! # Pollers
//!
//! [`Builder::poll`] adds a thread that calls an HTTP API at an interval ([`Poll`]): jittered
//! ticks, never two polls at once (a slow one skips ticks), conditional requests (`ETag`,
//! `Last-Modified`; a `304` yields nothing), an extractor that splits an answer into items, a
//! callback or [`Poll::forward_to`] an endpoint (a relay with full accounting), health
//! transitions ([`Health`]) for health checks, backoff while failing, and pagination. It uses
//! the same network configuration and stops within the same shutdown deadline.
//!
//! ```no_run
//! use std::time::Duration;
//! let guard = posthaste::builder("https://hooks.example/default")
//!     .endpoint("partner", posthaste::endpoint("https://partner.example/hooks").webhook_secret("whsec_c2VjcmV0"))
//!     .poll("orders", posthaste::poll("https://shop.example/api/orders?status=new")
//!         .interval(Duration::from_secs(30))
//!         .extract(|v| v["orders"].as_array().cloned().unwrap_or_default())
//!         .forward_to("partner"))
//!     .poll("health", posthaste::poll("https://api.example/health")
//!         .interval(Duration::from_secs(10))
//!         .failure_threshold(3)
//!         .on_health(|h| eprintln!("api health: {h:?}")))
//!     .start()?;
//! # Ok::<(), posthaste::Error>(())
//! ```
//!
//! # Shutdown
//!
//! Dropping the guard, or [`Guard::shutdown`], closes intake, wakes every backoff wait, keeps
//! delivering what is queued without retries until the deadline (`shutdown_timeout`), then
//! settles the rest as `Cancelled`/`Abandoned` and returns a [`Report`]. It never waits past
//! the deadline, even on an endpoint that accepts connections and never answers.
//!
//! # Corporate networks
//!
//! ```no_run
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let guard = posthaste::builder("https://logs.corp.example/ingest")
//!         .bearer_auth(std::env::var("LOG_TOKEN")?)
//!         .proxy("http://svc-logs:s3cr%40t@proxy.corp.example:3128")
//!         .add_root_certs_pem_file("/etc/pki/corp-root-ca.pem")
//!         .start()?;
//!     print!("{}", guard.client().probe()); // route, DNS, TCP, tunnel, TLS (which root), HTTP
//!     Ok(())
//! }
//! ```
//!
//! **Proxies.** [`Builder::proxy`] takes `http://`, `https://`, `socks5://` and `socks5h://`
//! URLs with optional percent-encoded `user:password@`, or a [`Proxy`]; [`Builder::no_proxy`]
//! connects directly. Otherwise `start()` reads the environment once: for `https://` endpoints
//! `https_proxy`/`HTTPS_PROXY`, for `http://` ones `http_proxy`/`HTTP_PROXY` (the uppercase one
//! is ignored under CGI, when `REQUEST_METHOD` is set), then `all_proxy`/`ALL_PROXY`; lowercase
//! wins over uppercase, empty means unset. `no_proxy`/`NO_PROXY` then exempts endpoints: a
//! comma list (entries trimmed), `*`, domains that also match their subdomains (`example.com`,
//! `.example.com`), IP addresses, CIDR networks (`10.0.0.0/8`), each optionally with `:port`.
//! Loopback is not exempted implicitly. Precedence: `no_proxy()` › `proxy(…)` › environment.
//!
//! `https://` endpoints go through a `CONNECT` tunnel. `http://` endpoints behind an HTTP(S)
//! proxy are sent to the proxy in absolute form (`POST http://host/path`), as browsers do, so a
//! stock squid (which allows `CONNECT` to port 443 only) forwards them. SOCKS5 tunnels both.
//!
//! **Trust.** Roots are the bundled Mozilla set, the OS store (honouring `SSL_CERT_FILE` and
//! `SSL_CERT_DIR`), and yours ([`Builder::add_root_certs_pem_file`],
//! [`Builder::add_root_certs_pem`]); [`Builder::only_custom_roots`] keeps only yours. Client
//! certificates: [`Builder::client_cert_pem_files`] (PKCS#8, PKCS#1 or SEC1 keys). Verification
//! is always on, except through the explicitly named [`Builder::dangerous`] door. Problems
//! loading the OS store are [`Report::warnings`], not errors.
//!
//! **Failures name the hop.** TLS verification failures (unknown issuer, wrong name, expired,
//! refused client certificate), proxy `407`/`401`/`403` and SOCKS5 authentication failures are
//! `Failed` at once, not retried, with reasons such as `proxy 127.0.0.1:3128 refused CONNECT to
//! collector:443: 407 Proxy Authentication Required: …`. Refused connections and DNS failures
//! are retried. [`Client::probe`] diagnoses the whole path in one call.
//!
//! # Operating it
//!
//! [`Client::metrics`] gives [`Metrics`] over a sliding window (queued events, busy workers,
//! load, wait and service times, arrival and departure rates); [`Builder::on_lifecycle`] receives
//! [`LifecycleEvent`]s (started, circuit opened and closed, spilled, replayed, a periodic report,
//! shut down); [`Client::send_with`] with [`Priority::High`] uses a lane that is taken first and
//! keeps its events when normal ones overflow. The `metrics` cargo feature publishes the
//! counters and gauges through the `metrics` crate facade.
//!
//! # Configuration from the environment
//!
//! [`from_env`] reads a documented table of `POSTHASTE_*` variables (endpoint, workers, queue,
//! overflow, batching, gzip, token, headers, proxy, CA file, client certificate, timeouts, spill
//! directory, exit hook) into a [`Builder`]; builder calls after it override the environment.
//!
//! # Defaults
//!
//! | option | default |
//! |---|---|
//! | [`Builder::method`] | `POST` |
//! | [`Builder::content_type`] | `application/json` |
//! | [`Builder::workers`] | 2 |
//! | [`Builder::queue_capacity`] | 10,000 events |
//! | [`Builder::priority_capacity`] | 1,000 events (the high-priority lane) |
//! | [`Builder::queue_bytes`] | 16 MiB |
//! | [`Builder::overflow`] | [`Overflow::DropNewest`] |
//! | [`Builder::retry`] | 10 attempts, 500 ms ×2 up to 30 s, 120 s in all, `Retry-After` ≤ 60 s |
//! | [`Builder::connect_timeout`] | 5 s |
//! | [`Builder::request_timeout`] | 15 s per read or write (each phase: + 1 s) |
//! | [`Builder::shutdown_timeout`] | 3 s |
//! | [`Builder::circuit_breaker`] | opens at a failure rate shown above 50 % over ≥ 20 requests in 10 s, or when ≥ 5 requests all failed; probes after ~1 s, doubling to 8 s, each ±50 % at random |
//! | [`Builder::retry_budget`] | retries ≤ 50 % of first attempts + 10/s |
//! | [`Builder::exit_hook`] / [`Builder::exit_timeout`] | off / 1 s |
//! | [`Builder::panic_hook`] / [`Builder::panic_timeout`] | off / 2 s |
//! | [`Builder::after_shutdown`] | [`AfterShutdown::Refuse`] |
//! | [`Builder::spill_dir`] / [`Builder::spill_max_bytes`] / [`Builder::spill_replay`] | none / 64 MiB / on |
//! | [`Builder::proxy`] | from the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`) |
//! | [`Builder::add_root_certs_pem_file`] | bundled Mozilla roots + OS store, nothing added |
//! | [`Builder::client_cert_pem_files`] | no client certificate |
//! | [`Dangerous::accept_invalid_certs`] | off: certificates are always verified |
//! | [`Builder::batch`] | off: one event per request ([`Batch::new`]: 500 events, 1 MiB, 50 ms) |
//! | [`Builder::encoding`] | [`Encoding::Json`] |
//! | [`Builder::template`] | none |
//! | [`Builder::gzip`] | off ([`Gzip::new`]: level 1, from 1 KiB) |
//! | [`Builder::idempotency`] | off ([`Idempotency::new`]: `Idempotency-Key`, `X-Attempt`) |
//! | [`Builder::worker_nice`] | 0 |
//! | [`Builder::on_lifecycle`] / [`Builder::report_interval`] | none / off |
//! | [`Builder::metrics_window`] | 60 s |
//! | `log::Logger` / `tracing::Layer`: `max_level`, `level_for`, `with_field` | `INFO`, none, none |
//! | `log::Logger::flush_timeout` | 5 s |
//! | [`Builder::endpoint`] / [`Builder::route`] | none: one endpoint, the builder's URL |
//! | [`Builder::webhook_secret`] | none: requests are not signed |
//! | [`Builder::poll`] | none ([`Poll`]: `GET` every 60 s, jitter a tenth of it, backoff doubling to 8× while failing) |

#![deny(missing_docs)]
#![warn(unreachable_pub)]
#![deny(unsafe_code)]

// Layers, top to bottom; imports point down only (see ARCHITECTURE.md and tests/layers.rs).
mod api;
mod error;
mod event;
#[cfg(any(feature = "log", feature = "tracing"))]
mod frontends;
mod policy;
mod runtime;
mod state;
mod transport;
mod util;

pub use api::{
    builder, endpoint, from_env, Broadcast, BroadcastReceipt, Builder, Client, Dangerous, Endpoint, Guard,
};
pub use error::{Error, SendError};
pub use event::Event;
pub use policy::encode::{Batch, CustomEncoding, Encoding, Events, Gzip, Idempotency, Template};
pub use policy::gate::{Circuit, CircuitBreaker, RetryBudget};
pub use policy::poll::{poll, Health, Poll, PollStats};
pub use policy::retry::Retry;
pub use policy::route::{Route, DEFAULT_ENDPOINT};
pub use runtime::AfterShutdown;
pub use state::lifecycle::LifecycleEvent;
pub use state::metrics::Metrics;
pub use state::outcome::{Outcome, Receipt};
pub use state::queue::{Overflow, Priority};
pub use state::report::Report;
pub use state::stats::Stats;
pub use transport::probe::{Diagnosis, Step, StepKind};
pub use transport::proxy::{IntoProxy, Proxy};

#[doc(hidden)]
pub use policy::encode::bench_support as __bench;

/// The `log` front end (cargo feature `log`): [`Logger`](crate::log::Logger). See
/// [Logging](crate#logging).
#[cfg(feature = "log")]
pub mod log {
    pub use crate::frontends::log::Logger;
}

/// The `tracing` front end (cargo feature `tracing`): [`Layer`](crate::tracing::Layer). See
/// [Logging](crate#logging).
#[cfg(feature = "tracing")]
pub mod tracing {
    pub use crate::frontends::tracing::Layer;
}

#[cfg(test)]
mod tests {
    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn public_types_are_send_and_sync() {
        assert_send_sync::<crate::Client>();
        assert_send_sync::<crate::Guard>();
        assert_send_sync::<crate::Receipt>();
        assert_send_sync::<crate::Event>();
        assert_send_sync::<crate::SendError>();
        assert_send_sync::<crate::Error>();
        assert_send_sync::<crate::Proxy>();
        assert_send_sync::<crate::Diagnosis>();
        assert_send_sync::<crate::Batch>();
        assert_send_sync::<crate::Encoding>();
        assert_send_sync::<crate::Template>();
        assert_send_sync::<crate::Gzip>();
        assert_send_sync::<crate::Idempotency>();
        #[cfg(feature = "log")]
        assert_send_sync::<crate::log::Logger>();
        #[cfg(feature = "tracing")]
        assert_send_sync::<crate::tracing::Layer>();
        assert_send_sync::<crate::Endpoint>();
        assert_send_sync::<crate::Route>();
        assert_send_sync::<crate::Broadcast>();
        assert_send_sync::<crate::BroadcastReceipt>();
        assert_send_sync::<crate::Poll>();
        assert_send_sync::<crate::PollStats>();
    }
}
