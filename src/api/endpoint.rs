//! [`Endpoint`]: a named destination's own options (URL, method, headers, auth, batching,
//! encoding, signing, workers, queue, retry, breaker), and how it takes the shared ones from
//! the builder at `start()`.

use std::fmt;

use crate::api::config::Config;
use crate::error::Error;
use crate::policy::encode::{Batch, Encoding, Gzip, Idempotency, Template};
use crate::policy::gate::{CircuitBreaker, RetryBudget};
use crate::policy::retry::Retry;
use crate::state::queue::Overflow;
use crate::util::{base64, redact_url};

/// Starts configuring a named endpoint, added with [`Builder::endpoint`](crate::Builder::endpoint).
///
/// ```
/// let guard = posthaste::builder("http://127.0.0.1:9/logs")
///     .endpoint("audit", posthaste::endpoint("http://127.0.0.1:9/audit").workers(1))
///     .start()?;
/// guard.client().send_to("audit", serde_json::json!({"user": 7, "did": "login"})).unwrap();
/// # drop(guard);
/// # Ok::<(), posthaste::Error>(())
/// ```
pub fn endpoint(url: impl Into<String>) -> Endpoint {
    Endpoint { config: Config::new(url.into()) }
}

/// A named endpoint: its own URL, method, headers and auth, batching and encoding, signing,
/// workers, queue, retry policy, circuit breaker and retry budget, and its own [`Stats`](crate::Stats).
///
/// What is not set here is shared with the builder's own endpoint: the network configuration
/// (proxy, roots, client certificate, connect and request timeouts), `on_outcome`,
/// `after_shutdown`, the exit hook, worker niceness and the one shutdown deadline. Each option
/// defaults as on the [`Builder`](crate::Builder) — not to the builder's value — so an endpoint
/// is configured on its own. Spilling and the panic hook belong to the builder's endpoint only.
#[must_use = "an Endpoint does nothing until it is added with `Builder::endpoint`"]
#[derive(Clone)]
pub struct Endpoint {
    pub(crate) config: Config,
}

impl Endpoint {
    /// Adds a request header, like [`Builder::header`](crate::Builder::header). Defaults to no
    /// extra headers.
    pub fn header(mut self, name: impl AsRef<str>, value: impl Into<String>) -> Endpoint {
        self.config.transport.set_header(name.as_ref(), value.into());
        self
    }

    /// Sends `Authorization: Bearer <token>`. Defaults to no authorization.
    pub fn bearer_auth(self, token: impl AsRef<str>) -> Endpoint {
        let value = format!("Bearer {}", token.as_ref());
        self.header("Authorization", value)
    }

    /// Sends `Authorization: Basic …` for `user` and `password`. Defaults to no authorization.
    pub fn basic_auth(self, user: impl AsRef<str>, password: impl AsRef<str>) -> Endpoint {
        let raw = format!("{}:{}", user.as_ref(), password.as_ref());
        let value = format!("Basic {}", base64(raw.as_bytes()));
        self.header("Authorization", value)
    }

    /// The HTTP method. Defaults to `"POST"`.
    pub fn method(mut self, method: impl Into<String>) -> Endpoint {
        self.config.transport.method = method.into();
        self
    }

    /// The request `Content-Type`. Defaults to `"application/json"`.
    pub fn content_type(mut self, content_type: impl Into<String>) -> Endpoint {
        self.config.transport.content_type = content_type.into();
        self
    }

    /// This endpoint's worker threads (1–256). Defaults to 2.
    pub fn workers(mut self, n: usize) -> Endpoint {
        self.config.runtime.workers = n;
        self
    }

    /// The most events this endpoint's queue holds. Defaults to 10,000.
    pub fn queue_capacity(mut self, n: usize) -> Endpoint {
        self.config.runtime.queue_capacity = n;
        self
    }

    /// The most bytes this endpoint's queued events may take. Defaults to 16 MiB. How events
    /// are charged: see [`Builder::queue_bytes`](crate::Builder::queue_bytes).
    pub fn queue_bytes(mut self, bytes: usize) -> Endpoint {
        self.config.runtime.queue_bytes = bytes;
        self
    }

    /// What sending to this endpoint does when its queue is full. Defaults to
    /// [`Overflow::DropNewest`].
    pub fn overflow(mut self, policy: Overflow) -> Endpoint {
        self.config.runtime.overflow = policy;
        self
    }

    /// This endpoint's retry policy. Defaults to [`Retry::new`].
    pub fn retry(mut self, policy: Retry) -> Endpoint {
        self.config.runtime.retry = policy;
        self
    }

    /// This endpoint's circuit breaker. Defaults to [`CircuitBreaker::new`].
    pub fn circuit_breaker(mut self, breaker: CircuitBreaker) -> Endpoint {
        self.config.runtime.breaker = breaker;
        self
    }

    /// This endpoint's retry budget. Defaults to [`RetryBudget::new`].
    pub fn retry_budget(mut self, budget: RetryBudget) -> Endpoint {
        self.config.runtime.budget = budget;
        self
    }

    /// Several events per request. Defaults to no batching.
    pub fn batch(mut self, batch: Batch) -> Endpoint {
        self.config.runtime.encode.batch = Some(batch);
        self
    }

    /// How events are laid out in a body. Defaults to [`Encoding::Json`].
    pub fn encoding(mut self, encoding: Encoding) -> Endpoint {
        self.config.runtime.encode.encoding = encoding;
        self
    }

    /// Wraps each event in a fixed JSON object. Defaults to no template.
    pub fn template(mut self, template: Template) -> Endpoint {
        self.config.runtime.encode.template = Some(template);
        self
    }

    /// Compresses request bodies with gzip. Defaults to no compression.
    pub fn gzip(mut self, gzip: Gzip) -> Endpoint {
        self.config.runtime.encode.gzip = Some(gzip);
        self
    }

    /// Idempotency headers. Defaults to none.
    pub fn idempotency(mut self, idempotency: Idempotency) -> Endpoint {
        self.config.runtime.encode.idempotency = Some(idempotency);
        self
    }

    /// Signs every request per the Standard Webhooks specification with `secret`, in its
    /// `whsec_`-prefixed base64 form (the prefix is optional): `webhook-id` (one per event or
    /// batch, kept across retries — the idempotency key when that is on too),
    /// `webhook-timestamp` (seconds, fresh for each attempt) and `webhook-signature`
    /// (`v1,` and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` over the uncompressed
    /// body: with gzip on, receivers verify after decompressing). Call it again to add a
    /// secret during key rotation: each gives its own `v1,` entry. A secret that is not base64
    /// is refused by `start()`; secrets never appear in `Debug` output, errors or reports.
    /// Defaults to unsigned.
    ///
    /// ```
    /// let guard = posthaste::builder("http://127.0.0.1:9/")
    ///     .endpoint("hooks", posthaste::endpoint("http://127.0.0.1:9/hooks").webhook_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
    ///     .start()?;
    /// # drop(guard);
    /// # Ok::<(), posthaste::Error>(())
    /// ```
    pub fn webhook_secret(mut self, secret: impl Into<String>) -> Endpoint {
        self.config.runtime.encode.signing.push(secret.into());
        self
    }

    /// The endpoint's configuration for `start()`: its own options, the builder's shared ones.
    pub(crate) fn merge(&self, main: &Config) -> Config {
        let mut c = self.config.clone();
        let (t, r) = (&main.transport, &main.runtime);
        c.transport.connect_timeout = t.connect_timeout;
        c.transport.request_timeout = t.request_timeout;
        c.transport.proxy = t.proxy.clone();
        c.transport.tls = t.tls.clone();
        c.runtime.shutdown_timeout = r.shutdown_timeout;
        c.runtime.on_outcome = r.on_outcome.clone();
        // Lifecycle events name their endpoint; the periodic report is the default endpoint's.
        c.runtime.on_lifecycle = r.on_lifecycle.clone();
        c.runtime.metrics_window = r.metrics_window;
        c.runtime.report_interval = None;
        c.runtime.after_shutdown = r.after_shutdown;
        c.runtime.worker_nice = r.worker_nice;
        c.runtime.exit_hook = r.exit_hook;
        c.runtime.exit_timeout = r.exit_timeout;
        c.runtime.panic_hook = false;
        c.runtime.spill_dir = None;
        c.finish()
    }
}

/// Checks a name given to `Builder::endpoint`.
pub(crate) fn check_name(name: &str, taken: &[String]) -> Result<(), Error> {
    let reason = if name.is_empty() {
        "an endpoint name must not be empty".to_string()
    } else if taken.iter().any(|t| t == name) {
        format!("{name:?} is already taken (\"default\" is the builder's own endpoint)")
    } else {
        return Ok(());
    };
    Err(Error::InvalidOption { option: "endpoint", reason })
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (t, r) = (&self.config.transport, &self.config.runtime);
        let names: Vec<&str> = t.headers.iter().map(|h| h.name.as_str()).collect();
        f.debug_struct("Endpoint")
            .field("url", &redact_url(&t.url))
            .field("method", &t.method)
            .field("headers", &names)
            .field("workers", &r.workers)
            .field("queue_capacity", &r.queue_capacity)
            .field("overflow", &r.overflow)
            .field("retry", &r.retry)
            .field("encode", &r.encode)
            .finish_non_exhaustive()
    }
}
