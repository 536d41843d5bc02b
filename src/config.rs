//! [`Config`]: every option, its default (in one place: `Config::default`) and its validation.
//!
//! The builder writes fields; `validate` is the one gate every value passes before anything
//! starts. Nothing here touches the network or threads.

use std::time::Duration;

use crate::batch::BatchOptions;
use crate::error::{redact_url, Error};
use crate::lifecycle::LifeOptions;
use crate::net::NetOptions;
use crate::outcome::OnOutcome;
use crate::queue::Overflow;
use crate::retry::Retry;
use crate::transport;

/// One configured request header. Values are never printed.
#[derive(Clone)]
pub(crate) struct Header {
    pub(crate) name: String,
    pub(crate) value: String,
}

#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) url: String,
    pub(crate) method: String,
    pub(crate) headers: Vec<Header>,
    pub(crate) content_type: String,
    pub(crate) workers: usize,
    pub(crate) queue_capacity: usize,
    pub(crate) queue_bytes: usize,
    pub(crate) overflow: Overflow,
    pub(crate) retry: Retry,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) on_outcome: Option<OnOutcome>,
    /// Hooks, spilling, sending after shutdown, circuit breaker, retry budget.
    pub(crate) life: LifeOptions,
    /// Proxy and TLS options (`net.rs`).
    pub(crate) net: NetOptions,
    /// Batching, encoding, gzip, idempotency, worker priority (batch.rs).
    pub(crate) batch: BatchOptions,
}

impl Config {
    /// Every default, in one place. The crate docs' defaults table mirrors this.
    pub(crate) fn new(url: String) -> Config {
        Config {
            url,
            method: "POST".to_string(),
            headers: Vec::new(),
            content_type: "application/json".to_string(),
            workers: 2,
            queue_capacity: 10_000,
            queue_bytes: 16 * 1024 * 1024,
            overflow: Overflow::DropNewest,
            retry: Retry::default(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
            shutdown_timeout: Duration::from_secs(3),
            on_outcome: None,
            life: LifeOptions::default(),
            net: NetOptions::default(),
            batch: BatchOptions::default(),
        }
    }

    pub(crate) fn set_header(&mut self, name: &str, value: String) {
        self.headers.retain(|h| !h.name.eq_ignore_ascii_case(name));
        self.headers.push(Header { name: name.to_string(), value });
    }

    /// Checks every value; the first problem found is returned.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        transport::check_url(&self.url)
            .map_err(|reason| Error::InvalidUrl { url: redact_url(&self.url), reason })?;
        transport::check_method(&self.method)
            .map_err(|reason| Error::InvalidOption { option: "method", reason })?;
        for h in &self.headers {
            transport::check_header(&h.name, &h.value)
                .map_err(|reason| Error::InvalidHeader { name: h.name.clone(), reason })?;
        }
        transport::check_header("Content-Type", &self.content_type)
            .map_err(|reason| Error::InvalidOption { option: "content_type", reason })?;
        range("workers", self.workers, 1, 256)?;
        range("queue_capacity", self.queue_capacity, 1, 1 << 24)?;
        range("queue_bytes", self.queue_bytes, 1, 1 << 40)?;
        if self.overflow == Overflow::BlockFor(Duration::ZERO) {
            return Err(Error::InvalidOption {
                option: "overflow",
                reason: "BlockFor(0) never waits: use Overflow::DropNewest".into(),
            });
        }
        if let Overflow::BlockFor(d) = self.overflow {
            duration("overflow", d, Duration::from_nanos(1), HOUR)?;
        }
        self.retry.validate()?;
        duration("connect_timeout", self.connect_timeout, Duration::from_millis(1), HOUR)?;
        duration("request_timeout", self.request_timeout, Duration::from_millis(1), HOUR)?;
        duration("shutdown_timeout", self.shutdown_timeout, Duration::ZERO, 10 * MINUTE)?;
        self.life.validate()?;
        self.batch.validate()?;
        Ok(())
    }
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

fn range(option: &'static str, v: usize, min: usize, max: usize) -> Result<(), Error> {
    if v < min || v > max {
        return Err(Error::InvalidOption { option, reason: format!("{v} is not within {min}..={max}") });
    }
    Ok(())
}

fn duration(option: &'static str, v: Duration, min: Duration, max: Duration) -> Result<(), Error> {
    if v < min || v > max {
        return Err(Error::InvalidOption {
            option,
            reason: format!("{v:?} is not within {min:?}..={max:?}"),
        });
    }
    Ok(())
}
