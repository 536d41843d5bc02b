//! `posthaste::log::Logger`: the `log` facade's records as JSON events (feature `log`).
//!
//! Adapts a `log::Record` to the shape in `shape.rs`; uses posthaste as a user would, through
//! [`Client::try_send`], which never blocks.

use std::time::Duration;

use ::log::kv::{self, VisitSource};
use ::log::{LevelFilter, Log, Metadata, Record};

use crate::api::{Client, Priority};
use crate::error::Error;
use crate::event::Event;
use crate::frontends::shape::{self, Doc, Levels, Statics};
use crate::util::is_own_thread;

/// A [`log::Log`](::log::Log) that ships every record as one JSON event through a [`Client`].
///
/// The record becomes `{"timestamp", "level", "target", "message", <key-values>, "file",
/// "line", <static fields>}` (see the crate docs' *Logging* table), written on the calling
/// thread. Key-values (`log::info!(user_id = 42; "checkout")`) keep their JSON types.
///
/// It **never blocks** the logging thread, whatever the [`Overflow`](crate::Overflow) policy:
/// it tries once ([`Client::try_send`]) and a full queue counts a drop. It **never loops**:
/// records logged on posthaste's own threads (workers, hooks, the probe), and records whose
/// target starts with `ureq`, `rustls` or `posthaste`, are not shipped. After shutdown it is a
/// silent no-op.
///
/// ```
/// # let guard = posthaste::builder("http://127.0.0.1:9/").start()?;
/// posthaste::log::Logger::new(guard.client())
///     .max_level(log::LevelFilter::Info)
///     .level_for("my_app::db", log::LevelFilter::Debug)
///     .with_field("service", "billing")
///     .install()?;
/// log::info!(user_id = 42; "checkout");
/// # Ok::<(), posthaste::Error>(())
/// ```
#[derive(Debug)]
pub struct Logger {
    client: Client,
    levels: Levels<LevelFilter>,
    statics: Statics,
    flush_timeout: Duration,
}

impl Logger {
    /// A logger shipping through `client`, at `Info` and above, with no static fields.
    pub fn new(client: Client) -> Logger {
        Logger {
            client,
            levels: Levels::new(LevelFilter::Info),
            statics: Statics::default(),
            flush_timeout: Duration::from_secs(5),
        }
    }

    /// The most verbose level shipped for targets without a [`level_for`](Logger::level_for).
    /// Defaults to `LevelFilter::Info`.
    pub fn max_level(mut self, level: LevelFilter) -> Logger {
        self.levels.set_default(level);
        self
    }

    /// The level for targets starting with `prefix` (plain prefix match, as `env_logger` does:
    /// `"my_app::db"` covers `my_app::db::pool`). The longest matching prefix wins. Defaults
    /// to none: every target gets [`max_level`](Logger::max_level).
    pub fn level_for(mut self, prefix: impl Into<String>, level: LevelFilter) -> Logger {
        self.levels.set(prefix.into(), level);
        self
    }

    /// A field every event carries (`service`, `version`, `environment`, `host`, …). A
    /// record's own key-value of the same name wins. Defaults to none.
    pub fn with_field(mut self, name: &str, value: impl Into<serde_json::Value>) -> Logger {
        self.statics.set(name, &value.into());
        self
    }

    /// How long [`Log::flush`](::log::Log::flush) waits for every event sent so far to settle
    /// (see [`Client::flush`]). On posthaste's own threads it returns at once. Defaults to
    /// 5 s.
    pub fn flush_timeout(mut self, timeout: Duration) -> Logger {
        self.flush_timeout = timeout;
        self
    }

    /// Installs this logger as the process's `log` logger and sets `log`'s maximum level to
    /// the most verbose level configured here.
    ///
    /// The logger is never dropped (`log` keeps it for the life of the process): the
    /// [`Guard`](crate::Guard) ends delivery, after which the logger does nothing.
    ///
    /// # Errors
    /// [`Error::LoggerAlreadySet`] if a logger is already installed (this one or another).
    pub fn install(self) -> Result<(), Error> {
        let level = self.levels.most_verbose();
        ::log::set_boxed_logger(Box::new(self)).map_err(|_| Error::LoggerAlreadySet)?;
        ::log::set_max_level(level);
        Ok(())
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.levels.of(metadata.target())
    }

    fn log(&self, record: &Record<'_>) {
        let target = record.target();
        if record.level() > self.levels.of(target) || shape::never_ship(target) || self.client.is_closed() {
            return;
        }
        let mut doc = Doc::begin(record.level().as_str(), target, &self.statics);
        doc.message_key();
        shape::write_fmt(doc.out(), *record.args());
        let _ = record.key_values().visit(&mut Fields(&mut doc));
        let bytes = doc.finish(record.file(), record.line());
        // Dropped (and counted) if the queue is full; nothing to do after shutdown. Errors take
        // the high-priority lane.
        let lane = if record.level() == log::Level::Error { Priority::High } else { Priority::Normal };
        let _ = self.client.try_send_with(Event::from_json_unchecked(bytes), lane);
    }

    fn flush(&self) {
        // A worker waiting for the queue to empty would wait for itself.
        if !is_own_thread() {
            self.client.flush(self.flush_timeout);
        }
    }
}

/// Writes key-values as fields with their JSON types.
struct Fields<'d, 'a>(&'d mut Doc<'a>);

impl<'kvs> VisitSource<'kvs> for Fields<'_, '_> {
    fn visit_pair(&mut self, key: kv::Key<'kvs>, value: kv::Value<'kvs>) -> Result<(), kv::Error> {
        self.0.key(key.as_str());
        let out = self.0.out();
        if let Some(error) = value.to_borrowed_error() {
            shape::write_error(out, error);
        } else if let Some(b) = value.to_bool() {
            shape::write_bool(out, b);
        } else if let Some(n) = value.to_u64() {
            shape::write_u64(out, n);
        } else if let Some(n) = value.to_i64() {
            shape::write_i64(out, n);
        } else if let Some(n) = value.to_u128() {
            shape::write_u128(out, n);
        } else if let Some(n) = value.to_i128() {
            shape::write_i128(out, n);
        } else if let Some(n) = value.to_f64() {
            shape::write_f64(out, n);
        } else if let Some(s) = value.to_borrowed_str() {
            shape::write_str(out, s);
        } else {
            shape::write_fmt(out, format_args!("{value}"));
        }
        Ok(())
    }
}
