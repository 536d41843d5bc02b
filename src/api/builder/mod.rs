//! [`Builder`]: one setter per option, each documented with its default; `start` validates
//! everything and starts the runtime.
//!
//! This file holds the endpoint, queue and shutdown options; the other groups each have a
//! file: `network.rs` (proxies, trust, client certificates, timeouts, the dangerous door),
//! `throughput.rs` (batching, encoding, gzip, idempotency, worker niceness), `resilience.rs`
//! (retry policy, circuit breaker, retry budget) and `durability.rs` (exit and panic hooks,
//! sending after shutdown, spilling). Setters only record; `start` checks.

mod durability;
mod network;
mod observe;
mod resilience;
mod throughput;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use network::Dangerous;

use crate::api::config::Config;
use crate::api::endpoint::{check_name, Endpoint};
use crate::api::guard::Guard;
use crate::error::Error;
use crate::event::Event;
use crate::policy::poll::Poll;
use crate::policy::route::{Route, DEFAULT_ENDPOINT};
use crate::runtime::{self, Plan};
use crate::state::outcome::Outcome;
use crate::state::queue::Overflow;
use crate::util::{base64, redact_url};

/// Starts configuring posthaste for one endpoint. See [`Builder`].
///
/// ```
/// let guard = posthaste::builder("http://127.0.0.1:9/ingest").workers(4).start()?;
/// # drop(guard);
/// # Ok::<(), posthaste::Error>(())
/// ```
pub fn builder(url: impl Into<String>) -> Builder {
    Builder { config: Config::new(url.into()), endpoints: Vec::new(), route: None, polls: Vec::new() }
}

/// Configures and starts posthaste. Made by [`builder`].
///
/// Setters never fail; [`Builder::start`] checks every value and reports the first problem as
/// an [`Error`] naming the option.
#[must_use = "a Builder does nothing until `.start()` is called"]
pub struct Builder {
    pub(crate) config: Config,
    /// Named endpoints, in the order they were added.
    endpoints: Vec<(String, Endpoint)>,
    route: Option<Route>,
    polls: Vec<(String, Poll)>,
}

impl Builder {
    /// Adds a request header sent with every request, replacing an earlier one of the same name
    /// (case-insensitively). Names and values are checked in `start()`: CR, LF and other
    /// control characters are refused. Values never appear in `Debug` output or errors.
    /// Defaults to no extra headers.
    pub fn header(mut self, name: impl AsRef<str>, value: impl Into<String>) -> Builder {
        self.config.transport.set_header(name.as_ref(), value.into());
        self
    }

    /// Sends `Authorization: Bearer <token>`. Defaults to no authorization.
    pub fn bearer_auth(self, token: impl AsRef<str>) -> Builder {
        let value = format!("Bearer {}", token.as_ref());
        self.header("Authorization", value)
    }

    /// Sends `Authorization: Basic …` for `user` and `password`. Defaults to no authorization.
    pub fn basic_auth(self, user: impl AsRef<str>, password: impl AsRef<str>) -> Builder {
        let raw = format!("{}:{}", user.as_ref(), password.as_ref());
        let value = format!("Basic {}", base64(raw.as_bytes()));
        self.header("Authorization", value)
    }

    /// The HTTP method, e.g. `"PUT"`. Defaults to `"POST"`.
    pub fn method(mut self, method: impl Into<String>) -> Builder {
        self.config.transport.method = method.into();
        self
    }

    /// The request `Content-Type`. Defaults to `"application/json"`.
    pub fn content_type(mut self, content_type: impl Into<String>) -> Builder {
        self.config.transport.content_type = content_type.into();
        self
    }

    /// The number of worker threads (1–256), each with its own keep-alive connection.
    /// Defaults to 2.
    pub fn workers(mut self, n: usize) -> Builder {
        self.config.runtime.workers = n;
        self
    }

    /// The most events the queue holds (1–16,777,216). Defaults to 10,000.
    pub fn queue_capacity(mut self, n: usize) -> Builder {
        self.config.runtime.queue_capacity = n;
        self
    }

    /// The most events the high-priority lane holds (1–16,777,216), besides `queue_capacity`;
    /// see [`Priority`](crate::Priority). Defaults to 1,000.
    pub fn priority_capacity(mut self, n: usize) -> Builder {
        self.config.runtime.priority_capacity = n;
        self
    }

    /// The most bytes the queued events may take (≥ 1). Defaults to 16 MiB.
    ///
    /// Pre-encoded events ([`Client::send_serialize`](crate::Client::send_serialize),
    /// [`Event::from_json_bytes`](crate::Event::from_json_bytes), the logging front ends)
    /// count their exact length, so for them the bound is exact. A `serde_json::Value` event is
    /// charged, at `send`, the mean compact JSON length of the Value events this endpoint's
    /// workers measured lately (256 bytes before the first), so that `send` never walks the
    /// value: for a stream of events of similar size the bound holds to within that spread,
    /// while a rare Value far larger than the recent ones is under-charged as long as it waits
    /// in the queue (the event count, `queue_capacity`, always holds). Where the byte bound
    /// must be exact whatever the events, send them pre-encoded.
    pub fn queue_bytes(mut self, bytes: usize) -> Builder {
        self.config.runtime.queue_bytes = bytes;
        self
    }

    /// What `send` does when the queue is full. Defaults to [`Overflow::DropNewest`].
    pub fn overflow(mut self, policy: Overflow) -> Builder {
        self.config.runtime.overflow = policy;
        self
    }

    /// The one deadline for shutdown (from `Guard::shutdown` or dropping the guard): queued
    /// events are still delivered (without retries) until it passes; then what is still
    /// queued is `Cancelled` and what is on the wire `Abandoned`. Zero cancels at once.
    /// At most 10 minutes. Defaults to 3 s.
    pub fn shutdown_timeout(mut self, d: Duration) -> Builder {
        self.config.runtime.shutdown_timeout = d;
        self
    }

    /// Calls `f` once for every event with its final outcome, on whichever thread settles it
    /// (a worker, a producer for overflow drops, or the shutdown path). Keep it quick; a panic
    /// in it is caught, counted in [`Stats::panics`](crate::Stats::panics) and otherwise
    /// ignored. Defaults to none.
    pub fn on_outcome<F>(mut self, f: F) -> Builder
    where
        F: Fn(&Event, &Outcome) + Send + Sync + 'static,
    {
        self.config.runtime.on_outcome = Some(Arc::new(f));
        self
    }

    /// Adds a named endpoint with its own queue, workers, gate and stats; events reach it
    /// through [`Client::send_to`](crate::Client::send_to), a [`Route`] or a
    /// a [`Broadcast`](crate::Broadcast). The builder's own URL stays the default endpoint,
    /// called [`DEFAULT_ENDPOINT`] (`"default"`). Names must be unique and non-empty (checked
    /// in `start()`). A slow or dead endpoint never slows another: each has its own workers.
    /// Defaults to no named endpoints.
    ///
    /// ```
    /// let guard = posthaste::builder("http://127.0.0.1:9/events")
    ///     .endpoint("billing", posthaste::endpoint("http://127.0.0.1:9/billing").bearer_auth("t"))
    ///     .start()?;
    /// let client = guard.client();
    /// client.send_to("billing", serde_json::json!({"invoice": 1})).unwrap();
    /// assert!(client.send_to("nope", serde_json::json!({})).is_err()); // handed back
    /// # drop(guard);
    /// # Ok::<(), posthaste::Error>(())
    /// ```
    pub fn endpoint(mut self, name: impl Into<String>, endpoint: Endpoint) -> Builder {
        self.endpoints.push((name.into(), endpoint));
        self
    }

    /// Makes [`Client::send`](crate::Client::send) and `send_tracked` pick the endpoint for
    /// each event by the value of one of its fields (see [`Route`]). Defaults to no route:
    /// `send` goes to the builder's own endpoint.
    pub fn route(mut self, route: Route) -> Builder {
        self.route = Some(route);
        self
    }

    /// Adds a poller: a thread that calls an HTTP API at an interval and hands the items of
    /// each answer to a callback or forwards them to an endpoint (see [`Poll`]). It uses this
    /// builder's network configuration and stops with the guard, within the shutdown
    /// deadline. Names must be unique and non-empty; every option is checked by `start()`
    /// ([`Error::Poll`]). Defaults to no pollers.
    pub fn poll(mut self, name: impl Into<String>, poll: Poll) -> Builder {
        self.polls.push((name.into(), poll));
        self
    }

    /// Checks every option and starts the workers of every endpoint.
    ///
    /// # Errors
    /// An [`Error`] naming the first invalid option ([`Error::Endpoint`] for an option of a
    /// named endpoint), or [`Error::Spawn`] if the operating system refuses a thread.
    pub fn start(self) -> Result<Guard, Error> {
        let config = self.config.finish();
        config.validate()?;
        let mut names = vec![DEFAULT_ENDPOINT.to_string()];
        let mut plans = Vec::with_capacity(self.endpoints.len() + 1);
        for (name, endpoint) in &self.endpoints {
            check_name(name, &names)?;
            let merged = endpoint.merge(&config);
            merged.validate().map_err(|e| Error::Endpoint { name: name.clone(), error: Box::new(e) })?;
            names.push(name.clone());
            plans.push(Plan { name: name.clone(), runtime: merged.runtime, transport: merged.transport });
        }
        plans.insert(
            0,
            Plan { name: DEFAULT_ENDPOINT.to_string(), runtime: config.runtime, transport: config.transport },
        );
        let mut poll_names: Vec<String> = Vec::new();
        for (name, _) in &self.polls {
            if name.is_empty() || poll_names.contains(name) {
                return Err(Error::InvalidOption {
                    option: "poll",
                    reason: format!("poller name {name:?} is empty or already taken"),
                });
            }
            poll_names.push(name.clone());
        }
        let instance = runtime::start_instance(plans, self.route.as_ref(), self.polls)?;
        Ok(Guard::new(instance))
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (t, r) = (&self.config.transport, &self.config.runtime);
        let names: Vec<&str> = t.headers.iter().map(|h| h.name.as_str()).collect();
        f.debug_struct("Builder")
            .field("url", &redact_url(&t.url))
            .field("method", &t.method)
            .field("headers", &names)
            .field("workers", &r.workers)
            .field("queue_capacity", &r.queue_capacity)
            .field("queue_bytes", &r.queue_bytes)
            .field("overflow", &r.overflow)
            .field("retry", &r.retry)
            .field("connect_timeout", &t.connect_timeout)
            .field("request_timeout", &t.request_timeout)
            .field("shutdown_timeout", &r.shutdown_timeout)
            .field("proxy", &t.proxy)
            .field("tls", &t.tls)
            .field("encode", &r.encode)
            .field("breaker", &r.breaker)
            .field("budget", &r.budget)
            .field("exit_hook", &r.exit_hook)
            .field("panic_hook", &r.panic_hook)
            .field("after_shutdown", &r.after_shutdown)
            .field("spill_dir", &r.spill_dir)
            .field("endpoints", &self.endpoints)
            .field("route", &self.route)
            .field("polls", &self.polls)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_secrets() {
        let b = builder("http://user:pw@127.0.0.1/").bearer_auth("tok123").basic_auth("u", "hunter2");
        let s = format!("{b:?}");
        assert!(!s.contains("tok123") && !s.contains("hunter2") && !s.contains(":pw@"), "{s}");
        let b = builder("https://h/")
            .proxy("http://u:proxypw@p:1")
            .client_cert_pem("cert", "-----BEGIN PRIVATE KEY-----secretkey")
            .add_root_certs_pem("roots");
        let s = format!("{b:?}");
        assert!(s.contains("u:***@p:1") && !s.contains("proxypw") && !s.contains("secretkey"), "{s}");
        let b = builder("https://h/").proxy("http://u:proxypw@p:x");
        assert!(!format!("{b:?}").contains("proxypw"));
    }

    #[test]
    fn debug_hides_secrets_of_malformed_urls() {
        for url in
            ["htps//u:S3CRET@host", "htp:/user:S3CRET@", "u:S3CRET@h:1", "http://u:S3/CRET@h", "S3CRET@h"]
        {
            let s = format!("{:?}", builder(url));
            assert!(!s.contains("S3") && !s.contains("CRET"), "{s}");
            let s = format!("{:?}", builder("http://h/").proxy(url));
            assert!(!s.contains("S3") && !s.contains("CRET"), "{s}");
        }
        let s = format!("{:?}", builder("htps//u:S3CRET@host"));
        assert!(s.contains("\"htps//u:***@host\""), "{s}");
    }
}
