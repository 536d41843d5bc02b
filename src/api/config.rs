//! [`Config`]: every option the builder sets, every default in one place ([`Config::new`]), and
//! the validation of every value that does not need the network.
//!
//! A `Config` is two per-layer option structs: what the transport is built from, and what the
//! runtime is built from. The builder writes fields; `validate` is the one gate every runtime
//! value passes before anything starts; the transport checks its own values (URL, method,
//! headers, proxy, certificates) when `start()` builds it, before any thread runs. The option
//! types with constructors of their own ([`Retry::new`], [`CircuitBreaker::new`],
//! [`RetryBudget::new`], `Batch::new`, `Gzip::new`, `Idempotency::new`) keep their defaults
//! there; the crate docs' table lists them all, and a test below keeps it true.

use std::time::Duration;

use crate::error::Error;
use crate::policy::encode::{EncodeOptions, Encoding, WebhookSecrets};
use crate::policy::gate::{CircuitBreaker, RetryBudget};
use crate::policy::retry::Retry;
use crate::runtime::{AfterShutdown, RuntimeOptions};
use crate::state::queue::Overflow;
use crate::transport::proxy::ProxyChoice;
use crate::transport::tls::TlsOptions;
use crate::transport::TransportOptions;

/// The `Content-Type` sent by default; NDJSON's own replaces it unless it was changed.
pub(crate) const DEFAULT_CONTENT_TYPE: &str = "application/json";

#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) transport: TransportOptions,
    pub(crate) runtime: RuntimeOptions,
}

impl Config {
    /// Every default, in one place. The crate docs' defaults table mirrors this (checked by
    /// `defaults_table_matches` below).
    pub(crate) fn new(url: String) -> Config {
        Config {
            transport: TransportOptions {
                url,
                method: "POST".to_string(),
                headers: Vec::new(),
                content_type: DEFAULT_CONTENT_TYPE.to_string(),
                connect_timeout: Duration::from_secs(5),
                request_timeout: Duration::from_secs(15),
                keep_success_body: 0,
                proxy: ProxyChoice::Env,
                tls: TlsOptions {
                    custom_roots: Vec::new(),
                    only_custom_roots: false,
                    client_cert: None,
                    accept_invalid_certs: false,
                },
            },
            runtime: RuntimeOptions {
                workers: 2,
                queue_capacity: 10_000,
                priority_capacity: 1_000,
                queue_bytes: 16 * 1024 * 1024,
                overflow: Overflow::DropNewest,
                retry: Retry::new(),
                shutdown_timeout: Duration::from_secs(3),
                on_outcome: None,
                on_lifecycle: None,
                report_interval: None,
                metrics_window: Duration::from_secs(60),
                encode: EncodeOptions {
                    batch: None,
                    encoding: Encoding::Json,
                    template: None,
                    gzip: None,
                    idempotency: None,
                    signing: WebhookSecrets::default(),
                },
                worker_nice: 0,
                breaker: CircuitBreaker::new(),
                budget: RetryBudget::new(),
                exit_hook: false,
                exit_timeout: Duration::from_secs(1),
                panic_hook: false,
                panic_timeout: Duration::from_secs(2),
                after_shutdown: AfterShutdown::Refuse,
                spill_dir: None,
                spill_max_bytes: 64 * 1024 * 1024,
                spill_replay: true,
            },
        }
    }

    /// The values `start()` uses: NDJSON's content type unless the user changed the default.
    pub(crate) fn finish(mut self) -> Config {
        if matches!(self.runtime.encode.encoding, Encoding::OtlpLogs) {
            // Read `partialSuccess` from the collector's answers.
            self.transport.keep_success_body = 4096;
        }
        if matches!(self.runtime.encode.encoding, Encoding::Ndjson)
            && self.transport.content_type == DEFAULT_CONTENT_TYPE
        {
            self.transport.content_type = "application/x-ndjson".into();
        }
        self
    }

    /// Checks every value the runtime takes, and the transport's timeouts; the first problem
    /// found is returned.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let (t, r) = (&self.transport, &self.runtime);
        range("workers", r.workers, 1, 256)?;
        range("queue_capacity", r.queue_capacity, 1, 1 << 24)?;
        range("priority_capacity", r.priority_capacity, 1, 1 << 24)?;
        range("queue_bytes", r.queue_bytes, 1, 1 << 40)?;
        if r.overflow == Overflow::BlockFor(Duration::ZERO) {
            return Err(Error::InvalidOption {
                option: "overflow",
                reason: "BlockFor(0) never waits: use Overflow::DropNewest".into(),
            });
        }
        if let Overflow::BlockFor(d) = r.overflow {
            duration("overflow", d, Duration::from_nanos(1), HOUR)?;
        }
        r.retry.validate()?;
        duration("connect_timeout", t.connect_timeout, MS, HOUR)?;
        duration("request_timeout", t.request_timeout, MS, HOUR)?;
        duration("shutdown_timeout", r.shutdown_timeout, Duration::ZERO, 10 * MINUTE)?;
        if let Some(d) = r.report_interval {
            duration("report_interval", d, MS, HOUR)?;
        }
        duration("metrics_window", r.metrics_window, Duration::from_secs(1), HOUR)?;
        duration("exit_timeout", r.exit_timeout, Duration::ZERO, 10 * MINUTE)?;
        duration("panic_timeout", r.panic_timeout, MS, MINUTE)?;
        if let AfterShutdown::SendSync(d) = r.after_shutdown {
            duration("after_shutdown", d, MS, MINUTE)?;
        }
        if r.spill_max_bytes == 0 {
            return Err(Error::InvalidOption {
                option: "spill_max_bytes",
                reason: "must be at least 1".into(),
            });
        }
        r.breaker.validate()?;
        r.budget.validate()?;
        r.encode.validate()?;
        if !(0..=19).contains(&r.worker_nice) {
            return Err(Error::InvalidOption {
                option: "worker_nice",
                reason: format!("{} is not within 0..=19", r.worker_nice),
            });
        }
        Ok(())
    }
}

const MS: Duration = Duration::from_millis(1);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The row of the crate docs' defaults table that documents `option`.
    fn row(option: &str) -> &'static str {
        let docs = include_str!("../lib.rs");
        let key = format!("[`{option}`]");
        docs.lines()
            .find(|l| l.starts_with("//! |") && l.contains(&key))
            .unwrap_or_else(|| panic!("no row for {option} in the defaults table"))
    }

    fn secs(d: Duration) -> String {
        format!("{} s", d.as_secs())
    }

    fn mib(n: u64) -> String {
        format!("{} MiB", n / (1024 * 1024))
    }

    #[test]
    fn defaults_table_matches() {
        let c = Config::new("http://h/".into());
        let (t, r) = (&c.transport, &c.runtime);
        for (option, value) in [
            ("Builder::method", format!("`{}`", t.method)),
            ("Builder::content_type", format!("`{}`", t.content_type)),
            ("Builder::workers", format!("| {} |", r.workers)),
            ("Builder::priority_capacity", "1,000 events".to_string()),
            ("Builder::queue_capacity", "10,000 events".to_string()),
            ("Builder::queue_bytes", mib(r.queue_bytes as u64)),
            ("Builder::connect_timeout", secs(t.connect_timeout)),
            ("Builder::request_timeout", secs(t.request_timeout)),
            ("Builder::shutdown_timeout", secs(r.shutdown_timeout)),
            ("Builder::exit_timeout", secs(r.exit_timeout)),
            ("Builder::panic_timeout", secs(r.panic_timeout)),
            ("Builder::spill_max_bytes", mib(r.spill_max_bytes)),
            ("Builder::worker_nice", format!("| {} |", r.worker_nice)),
        ] {
            assert!(row(option).contains(&value), "{option}: {value:?} not in {:?}", row(option));
        }
        assert_eq!(r.queue_capacity, 10_000);
        assert!(row("Builder::overflow").contains(&format!("{:?}", r.overflow)));
        assert!(row("Builder::after_shutdown").contains(&format!("{:?}", r.after_shutdown)));
        assert!(row("Builder::exit_hook").contains("off") && !r.exit_hook && !r.panic_hook);
        assert!(r.spill_replay && r.spill_dir.is_none() && r.encode.batch.is_none());
    }

    #[test]
    fn ndjson_gets_its_content_type_unless_changed() {
        let mut c = Config::new("http://h/".into());
        c.runtime.encode.encoding = Encoding::Ndjson;
        assert_eq!(c.clone().finish().transport.content_type, "application/x-ndjson");
        c.transport.content_type = "application/vnd.x".into();
        assert_eq!(c.finish().transport.content_type, "application/vnd.x");
        assert_eq!(Config::new("http://h/".into()).finish().transport.content_type, DEFAULT_CONTENT_TYPE);
    }
}
