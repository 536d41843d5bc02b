//! Throughput options of [`Builder`]: batching, encoding, template, gzip, idempotency and
//! worker niceness. The option types and their rules live in `policy/encode/`.

use super::Builder;
use crate::policy::encode::{Batch, Encoding, Gzip, Idempotency, Template};

impl Builder {
    /// Sends several events per request under the given [`Batch`] limits. Without it every
    /// request carries one event. Defaults to no batching; `Batch::new()` is 500 events,
    /// 1 MiB, 50 ms linger.
    pub fn batch(mut self, batch: Batch) -> Builder {
        self.config.runtime.encode.batch = Some(batch);
        self
    }

    /// How events are laid out in a request body (JSON, JSON array, NDJSON or your own).
    /// Defaults to [`Encoding::Json`].
    pub fn encoding(mut self, encoding: Encoding) -> Builder {
        self.config.runtime.encode.encoding = encoding;
        self
    }

    /// Wraps each event in a fixed JSON object (for example as a double-encoded string field).
    /// Defaults to no template.
    pub fn template(mut self, template: Template) -> Builder {
        self.config.runtime.encode.template = Some(template);
        self
    }

    /// Compresses request bodies with gzip (from a size threshold on). Defaults to no
    /// compression.
    pub fn gzip(mut self, gzip: Gzip) -> Builder {
        self.config.runtime.encode.gzip = Some(gzip);
        self
    }

    /// Sends an idempotency key (stable across retries) and the attempt number with every
    /// request. Defaults to no idempotency headers.
    pub fn idempotency(mut self, idempotency: Idempotency) -> Builder {
        self.config.runtime.encode.idempotency = Some(idempotency);
        self
    }

    /// Raises the worker threads' nice value by `n` (0–19), so that delivering events yields
    /// the CPU to your own threads when the machine is busy. Linux only (per-thread
    /// `setpriority`); elsewhere it has no effect. An unprivileged process can't undo it for
    /// those threads later. Defaults to 0 (same priority as the thread calling `start()`).
    pub fn worker_nice(mut self, n: i32) -> Builder {
        self.config.runtime.worker_nice = n;
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
    /// let guard = posthaste::builder("http://127.0.0.1:9/hooks")
    ///     .webhook_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    ///     .start()?;
    /// # drop(guard);
    /// # Ok::<(), posthaste::Error>(())
    /// ```
    pub fn webhook_secret(mut self, secret: impl Into<String>) -> Builder {
        self.config.runtime.encode.signing.push(secret.into());
        self
    }
}
