//! `posthaste::tracing::Layer`: `tracing` events with their span context as JSON events
//! (feature `tracing`).
//!
//! Adapts `tracing` events and spans to the shape in `shape.rs`; uses posthaste as a user
//! would, through [`Client::try_send`], which never blocks. Every decision not to ship is made
//! in `on_event`: `enabled` and `register_callsite` are left alone, because they switch an
//! event off for every layer of the user's stack, not just this one.

use std::error::Error as StdError;
use std::fmt;

use ::tracing::field::{Field, Visit};
use ::tracing::span::{Attributes, Id, Record};
use ::tracing::Subscriber;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::api::{Client, Priority};
use crate::event::Event;
use crate::frontends::shape::{self, Doc, Levels, Statics};
use crate::util::is_own_thread;

/// Fields `tracing-log` gives the `log` records it bridges (their metadata says target `log`,
/// no file, no line): the shape takes `target`, `file` and `line` from them and leaves
/// `module_path` out.
const BRIDGED: [&str; 4] = ["log.target", "log.module_path", "log.file", "log.line"];

/// A [`tracing_subscriber::Layer`] that ships every event as one JSON event through a
/// [`Client`], with the fields of its spans.
///
/// An event becomes `{"timestamp", "level", "target", "message", <fields>, "spans": [{"name",
/// <fields>}, …], "file", "line", <static fields>}` with the spans root first (see the crate
/// docs' *Logging* table), written on the calling thread.
///
/// It **never blocks** the logging thread, whatever the [`Overflow`](crate::Overflow) policy:
/// it tries once ([`Client::try_send`]) and a full queue counts a drop. It **never loops**:
/// events on posthaste's own threads (workers, hooks, the probe), and events whose target
/// starts with `ureq`, `rustls` or `posthaste`, are not shipped. Levels and these rules are
/// applied inside the layer, so the other layers of your stack still see every event. After
/// shutdown it is a silent no-op. A global subscriber is never dropped: the
/// [`Guard`](crate::Guard) ends delivery.
///
/// It gives no level hint to the subscriber: to make disabled levels free for the whole
/// stack, add a global filter (`tracing_subscriber::filter::LevelFilter::INFO` as a layer, or
/// an `EnvFilter`).
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt;
/// # let guard = posthaste::builder("http://127.0.0.1:9/").start().unwrap();
/// let layer = posthaste::tracing::Layer::new(guard.client())
///     .max_level(tracing::level_filters::LevelFilter::INFO)
///     .with_field("service", "billing")
///     .with_field("version", env!("CARGO_PKG_VERSION"));
/// let subscriber = tracing_subscriber::registry().with(layer);
/// tracing::subscriber::with_default(subscriber, || {
///     let span = tracing::info_span!("job", id = 7);
///     let _entered = span.enter();
///     tracing::info!(user_id = 42, "checkout");
/// });
/// ```
#[derive(Debug)]
pub struct Layer {
    client: Client,
    levels: Levels<LevelFilter>,
    statics: Statics,
}

impl Layer {
    /// A layer shipping through `client`, at `INFO` and above, with no static fields.
    pub fn new(client: Client) -> Layer {
        Layer { client, levels: Levels::new(LevelFilter::INFO), statics: Statics::default() }
    }

    /// The most verbose level shipped for targets without a [`level_for`](Layer::level_for).
    /// Defaults to `LevelFilter::INFO`.
    pub fn max_level(mut self, level: LevelFilter) -> Layer {
        self.levels.set_default(level);
        self
    }

    /// The level for targets starting with `prefix` (plain prefix match: `"my_app::db"` covers
    /// `my_app::db::pool`). The longest matching prefix wins. Defaults to none: every target
    /// gets [`max_level`](Layer::max_level).
    pub fn level_for(mut self, prefix: impl Into<String>, level: LevelFilter) -> Layer {
        self.levels.set(prefix.into(), level);
        self
    }

    /// A field every event carries (`service`, `version`, `environment`, `host`, …). An
    /// event's own field of the same name wins. Defaults to none.
    pub fn with_field(mut self, name: &str, value: impl Into<serde_json::Value>) -> Layer {
        self.statics.set(name, &value.into());
        self
    }
}

/// A span's fields as JSON (`{"name":"…",…` without the closing brace), kept in the span's
/// extensions.
struct SpanJson(Vec<u8>);

impl<S> tracing_subscriber::Layer<S> for Layer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut json = Vec::with_capacity(64);
        shape::span_start(&mut json, attrs.metadata().name());
        attrs.record(&mut SpanFields(&mut json));
        span.extensions_mut().insert(SpanJson(json));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(SpanJson(json)) = extensions.get_mut::<SpanJson>() {
            values.record(&mut SpanFields(json));
        }
    }

    fn on_event(&self, event: &::tracing::Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let level = LevelFilter::from_level(*meta.level());
        // A `log` record bridged by `tracing-log`: its target, file and line are fields.
        let is_bridged = meta.target() == "log" && meta.fields().field("log.target").is_some();
        // Cheap checks first: a disabled level; then ureq's records on a worker, which arrive
        // here at TRACE; then shutdown.
        if (!is_bridged && level > self.levels.of(meta.target()))
            || is_own_thread()
            || self.client.is_closed()
        {
            return;
        }
        let bridged = is_bridged.then(|| {
            let mut origin = Origin::default();
            event.record(&mut origin);
            origin
        });
        let (target, file, line) = match &bridged {
            Some(origin) => (origin.target.as_str(), origin.file.as_deref(), origin.line),
            None => (meta.target(), meta.file(), meta.line()),
        };
        if (is_bridged && level > self.levels.of(target)) || shape::never_ship(target) {
            return;
        }
        let mut doc = Doc::begin(meta.level().as_str(), target, &self.statics);
        event.record(&mut EventFields(&mut doc));
        if let Some(scope) = ctx.event_scope(event) {
            let out = doc.out();
            out.extend_from_slice(b",\"spans\":[");
            for (i, span) in scope.from_root().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                match span.extensions().get::<SpanJson>() {
                    Some(SpanJson(json)) => out.extend_from_slice(json),
                    None => shape::span_start(out, span.name()),
                }
                out.push(b'}');
            }
            out.push(b']');
        }
        let bytes = doc.finish(file, line);
        // Dropped (and counted) if the queue is full; nothing to do after shutdown. Errors take
        // the high-priority lane.
        let lane = if *meta.level() == tracing::Level::ERROR { Priority::High } else { Priority::Normal };
        let _ = self.client.try_send_with(Event::from_json_unchecked(bytes), lane);
    }
}

/// Where a bridged `log` record came from.
#[derive(Default)]
struct Origin {
    target: String,
    file: Option<String>,
    line: Option<u32>,
}

impl Visit for Origin {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "log.target" => self.target = value.to_string(),
            "log.file" => self.file = Some(value.to_string()),
            _ => {}
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "log.line" {
            self.line = u32::try_from(value).ok();
        }
    }
    fn record_debug(&mut self, _: &Field, _: &dyn fmt::Debug) {}
}

/// Writes an event's fields with their JSON types.
struct EventFields<'d, 'a>(&'d mut Doc<'a>);

impl EventFields<'_, '_> {
    fn key(&mut self, field: &Field) -> Option<&mut Vec<u8>> {
        let name = field.name();
        if name.starts_with("log.") && BRIDGED.contains(&name) {
            return None;
        }
        self.0.key(name);
        Some(self.0.out())
    }
}

impl Visit for EventFields<'_, '_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if let Some(out) = self.key(field) {
            shape::write_f64(out, value);
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        if let Some(out) = self.key(field) {
            shape::write_i64(out, value);
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        if let Some(out) = self.key(field) {
            shape::write_u64(out, value);
        }
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        if let Some(out) = self.key(field) {
            shape::write_i128(out, value);
        }
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        if let Some(out) = self.key(field) {
            shape::write_u128(out, value);
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        if let Some(out) = self.key(field) {
            shape::write_bool(out, value);
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if let Some(out) = self.key(field) {
            shape::write_str(out, value);
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn StdError + 'static)) {
        if let Some(out) = self.key(field) {
            shape::write_error(out, value);
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if let Some(out) = self.key(field) {
            shape::write_fmt(out, format_args!("{value:?}"));
        }
    }
}

/// Appends a span's fields with their JSON types.
struct SpanFields<'b>(&'b mut Vec<u8>);

impl SpanFields<'_> {
    fn key(&mut self, field: &Field) -> &mut Vec<u8> {
        shape::span_key(self.0, field.name());
        self.0
    }
}

impl Visit for SpanFields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        shape::write_f64(self.key(field), value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        shape::write_i64(self.key(field), value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        shape::write_u64(self.key(field), value);
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        shape::write_i128(self.key(field), value);
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        shape::write_u128(self.key(field), value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        shape::write_bool(self.key(field), value);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        shape::write_str(self.key(field), value);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn StdError + 'static)) {
        shape::write_error(self.key(field), value);
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        shape::write_fmt(self.key(field), format_args!("{value:?}"));
    }
}
