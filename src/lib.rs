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
//! deadline) or `Abandoned` (on the wire at the deadline). [`Stats`] counts them and keeps
//! `submitted = delivered + rejected + failed + dropped + cancelled + abandoned + queued + in_flight`
//! in every snapshot. [`Client::send_tracked`] gives a [`Receipt`] to wait on one event, and
//! [`Builder::on_outcome`] sees them all.
//!
//! Retried: connection errors, timeouts, and statuses 408, 425, 429, 500, 502, 503, 504, with
//! exponential backoff and full jitter ([`Retry`]). A `Retry-After` answer pauses every worker.
//! Redirects are never followed (a redirected POST would lose its body); they are `Rejected`.
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
//! # Shutdown
//!
//! Dropping the guard, or [`Guard::shutdown`], closes intake, wakes every backoff wait, keeps
//! delivering what is queued without retries until the deadline (`shutdown_timeout`), then
//! settles the rest as `Cancelled`/`Abandoned` and returns a [`Report`]. It never waits past
//! the deadline, even on an endpoint that accepts connections and never answers.
//!
//! # Defaults
//!
//! | option | default |
//! |---|---|
//! | [`Builder::method`] | `POST` |
//! | [`Builder::content_type`] | `application/json` |
//! | [`Builder::workers`] | 2 |
//! | [`Builder::queue_capacity`] | 10,000 events |
//! | [`Builder::queue_bytes`] | 16 MiB |
//! | [`Builder::overflow`] | [`Overflow::DropNewest`] |
//! | [`Builder::retry`] | 10 attempts, 500 ms ×2 up to 30 s, 120 s in all, `Retry-After` ≤ 60 s |
//! | [`Builder::connect_timeout`] | 5 s |
//! | [`Builder::request_timeout`] | 15 s per phase |
//! | [`Builder::shutdown_timeout`] | 3 s |
//! | [`Builder::batch`] | off: one event per request ([`Batch::new`]: 500 events, 1 MiB, 50 ms) |
//! | [`Builder::encoding`] | [`Encoding::Json`] |
//! | [`Builder::template`] | none |
//! | [`Builder::gzip`] | off ([`Gzip::new`]: level 1, from 1 KiB) |
//! | [`Builder::idempotency`] | off ([`Idempotency::new`]: `Idempotency-Key`, `X-Attempt`) |
//! | [`Builder::worker_nice`] | 0 |

#![deny(missing_docs)]
#![warn(unreachable_pub)]
#![deny(unsafe_code)]

mod batch;
mod builder;
mod builder_batch;
mod client;
mod config;
mod error;
mod event;
mod gate;
mod guard;
mod outcome;
mod priority;
mod queue;
mod retry;
mod shared;
mod stats;
mod transport;
mod worker;

pub use batch::{Batch, CustomEncoding, Encoding, Events, Gzip, Idempotency, Template};
pub use builder::{builder, Builder};
pub use client::Client;
pub use error::{Error, SendError};
pub use event::Event;
pub use guard::{Guard, Report};
pub use outcome::{Outcome, Receipt};
pub use queue::Overflow;
pub use retry::Retry;
pub use stats::Stats;

#[doc(hidden)]
pub use batch::bench_support as __bench;

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
        assert_send_sync::<crate::Batch>();
        assert_send_sync::<crate::Encoding>();
        assert_send_sync::<crate::Template>();
        assert_send_sync::<crate::Gzip>();
        assert_send_sync::<crate::Idempotency>();
    }
}
