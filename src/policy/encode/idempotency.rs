//! [`Idempotency`]: the key and attempt headers that let a receiver drop duplicates.

use crate::error::Error;

/// Idempotency headers, set with [`Builder::idempotency`](crate::Builder::idempotency): every
/// request carries a key that is unique to it and **identical across its retries**, and the
/// attempt number (1 for the first try), so a receiver can drop duplicates (a retry after a
/// lost answer, for example).
///
/// Keys are random 128-bit values written as UUIDs (version 4). The halves of a batch split
/// after a `413` are new requests with new keys.
///
/// ```
/// let guard = posthaste::builder("http://127.0.0.1:9/ingest")
///     .idempotency(posthaste::Idempotency::new().key_header("X-Request-Id"))
///     .start()?;
/// # drop(guard);
/// # Ok::<(), posthaste::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idempotency {
    key_header: String,
    attempt_header: Option<String>,
}

impl Default for Idempotency {
    fn default() -> Idempotency {
        Idempotency { key_header: "Idempotency-Key".into(), attempt_header: Some("X-Attempt".into()) }
    }
}

impl Idempotency {
    /// `Idempotency-Key` and `X-Attempt`.
    pub fn new() -> Idempotency {
        Idempotency::default()
    }

    /// The header carrying the key. Defaults to `Idempotency-Key`.
    pub fn key_header(mut self, name: impl Into<String>) -> Idempotency {
        self.key_header = name.into();
        self
    }

    /// The header carrying the attempt number (1, 2, …). Defaults to `X-Attempt`.
    pub fn attempt_header(mut self, name: impl Into<String>) -> Idempotency {
        self.attempt_header = Some(name.into());
        self
    }

    /// Sends no attempt-number header. Defaults to sending `X-Attempt`.
    pub fn without_attempt_header(mut self) -> Idempotency {
        self.attempt_header = None;
        self
    }

    pub(crate) fn key_header_name(&self) -> &str {
        &self.key_header
    }

    pub(crate) fn attempt_header_name(&self) -> Option<&str> {
        self.attempt_header.as_deref()
    }

    pub(super) fn validate(&self) -> Result<(), Error> {
        let names = std::iter::once(&self.key_header).chain(self.attempt_header.as_ref());
        for name in names {
            crate::util::check_header(name, "1").map_err(|reason| Error::InvalidOption {
                option: "idempotency",
                reason: format!("header {:?}: {reason}", name.escape_debug().to_string()),
            })?;
        }
        Ok(())
    }
}
