//! [`Builder`]: one setter per option, each documented with its default; `start` validates
//! everything and starts the workers.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::error::{redact_url, Error};
use crate::event::Event;
use crate::guard::Guard;
use crate::outcome::Outcome;
use crate::queue::Overflow;
use crate::retry::Retry;

/// Starts configuring posthaste for one endpoint. See [`Builder`].
///
/// ```
/// let guard = posthaste::builder("http://127.0.0.1:9/ingest").workers(4).start()?;
/// # drop(guard);
/// # Ok::<(), posthaste::Error>(())
/// ```
pub fn builder(url: impl Into<String>) -> Builder {
    Builder { config: Config::new(url.into()) }
}

/// Configures and starts posthaste. Made by [`builder`].
///
/// Setters never fail; [`Builder::start`] checks every value and reports the first problem as
/// an [`Error`] naming the option.
#[must_use = "a Builder does nothing until `.start()` is called"]
pub struct Builder {
    pub(crate) config: Config,
}

impl Builder {
    /// Adds a request header sent with every request, replacing an earlier one of the same name
    /// (case-insensitively). Names and values are checked in `start()`: CR, LF and other
    /// control characters are refused. Values never appear in `Debug` output or errors.
    /// Defaults to no extra headers.
    pub fn header(mut self, name: impl AsRef<str>, value: impl Into<String>) -> Builder {
        self.config.set_header(name.as_ref(), value.into());
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
        self.config.method = method.into();
        self
    }

    /// The request `Content-Type`. Defaults to `"application/json"`.
    pub fn content_type(mut self, content_type: impl Into<String>) -> Builder {
        self.config.content_type = content_type.into();
        self
    }

    /// The number of worker threads (1–256), each with its own keep-alive connection.
    /// Defaults to 2.
    pub fn workers(mut self, n: usize) -> Builder {
        self.config.workers = n;
        self
    }

    /// The most events the queue holds (1–16,777,216). Defaults to 10,000.
    pub fn queue_capacity(mut self, n: usize) -> Builder {
        self.config.queue_capacity = n;
        self
    }

    /// The most bytes the queued events may take (≥ 1). Pre-encoded events count their exact
    /// length; `serde_json::Value` events an estimate of their compact JSON length (string
    /// and key lengths plus punctuation, 8 bytes per number), made without serializing.
    /// Defaults to 16 MiB.
    pub fn queue_bytes(mut self, bytes: usize) -> Builder {
        self.config.queue_bytes = bytes;
        self
    }

    /// What `send` does when the queue is full. Defaults to [`Overflow::DropNewest`].
    pub fn overflow(mut self, policy: Overflow) -> Builder {
        self.config.overflow = policy;
        self
    }

    /// The retry policy. Defaults to [`Retry::new()`]: 10 attempts, 500 ms initial backoff
    /// doubling up to 30 s, 120 s in all.
    pub fn retry(mut self, policy: Retry) -> Builder {
        self.config.retry = policy;
        self
    }

    /// The time allowed to establish a connection (TCP, proxy and TLS handshakes).
    /// Defaults to 5 s.
    pub fn connect_timeout(mut self, d: Duration) -> Builder {
        self.config.connect_timeout = d;
        self
    }

    /// The time a request may go without progress after connecting: every read and write
    /// must complete within it, and each phase as a whole (sending the request, waiting for
    /// the response headers, reading the response body) within it plus 1 s. During shutdown
    /// each is clamped to the time left. Defaults to 15 s.
    pub fn request_timeout(mut self, d: Duration) -> Builder {
        self.config.request_timeout = d;
        self
    }

    /// The one deadline for shutdown (from `Guard::shutdown` or dropping the guard): queued
    /// events are still delivered (without retries) until it passes; then what is still
    /// queued is `Cancelled` and what is on the wire `Abandoned`. Zero cancels at once.
    /// At most 10 minutes. Defaults to 3 s.
    pub fn shutdown_timeout(mut self, d: Duration) -> Builder {
        self.config.shutdown_timeout = d;
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
        self.config.on_outcome = Some(Arc::new(f));
        self
    }

    /// Checks every option and starts the workers.
    ///
    /// # Errors
    /// An [`Error`] naming the first invalid option, or [`Error::Spawn`] if the operating
    /// system refuses a thread.
    pub fn start(mut self) -> Result<Guard, Error> {
        self.config.content_type = self.config.batch.content_type(&self.config.content_type);
        self.config.validate()?;
        Guard::start(self.config)
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        let names: Vec<&str> = c.headers.iter().map(|h| h.name.as_str()).collect();
        f.debug_struct("Builder")
            .field("url", &redact_url(&c.url))
            .field("method", &c.method)
            .field("headers", &names)
            .field("workers", &c.workers)
            .field("queue_capacity", &c.queue_capacity)
            .field("queue_bytes", &c.queue_bytes)
            .field("overflow", &c.overflow)
            .field("retry", &c.retry)
            .field("connect_timeout", &c.connect_timeout)
            .field("request_timeout", &c.request_timeout)
            .field("shutdown_timeout", &c.shutdown_timeout)
            .field("life", &c.life)
            .field("net", &c.net)
            .field("batch", &c.batch)
            .finish_non_exhaustive()
    }
}

/// Standard base64 with padding (RFC 4648), for basic auth.
pub(crate) fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (raw, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(raw.as_bytes()), enc);
        }
    }

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
}
