//! Pure: what a worker puts in one request body.
//!
//! Owns the throughput options ([`Batch`], [`Encoding`], [`Template`], [`Gzip`],
//! [`Idempotency`]), the gathering rule, the encoders and gzip. No I/O, no threads and no clock:
//! the worker owns those and calls in here. Every rule is unit-tested below.

use std::fmt;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::Value;

use crate::error::Error;
use crate::event::Event;
use crate::outcome::Envelope;

/// Several events per request: the opt-in batching policy, set with
/// [`Builder::batch`](crate::Builder::batch).
///
/// A worker takes one event (waiting for it), then takes what is queued behind it; if the
/// batch is not full yet, it keeps taking what comes until the `linger` time (counted from the
/// first event) is over. The batch is full when it holds `max_events` or the
/// next event would take its estimated encoded size past `max_bytes` (that event starts the
/// next batch). Then it goes out in one request, laid out by the [`Encoding`]. Under load
/// batches fill at once and go without lingering. While lingering a worker naps (a tenth of
/// the linger time, 1–10 ms) and takes what came after each nap, rather than waking for every
/// event, so producers never pay for waking it. During shutdown workers do not linger: they
/// send what is queued at once.
///
/// `max_bytes` is a hard limit on each request body (before gzip): a batch whose encoding
/// turns out larger than its estimate is split in halves before sending, and a single event
/// that encodes larger than `max_bytes` is never sent: it is
/// [`Rejected`](crate::Outcome::Rejected) with status 413, 0 attempts, and a reason naming its
/// size. A `413` answer to a batch splits it in halves and sends each half (down to single
/// events); a `413` to a single event rejects it.
///
/// ```
/// use std::time::Duration;
/// let guard = posthaste::builder("http://127.0.0.1:9/ingest")
///     .batch(posthaste::Batch::new().max_events(1_000).linger(Duration::from_millis(20)))
///     .encoding(posthaste::Encoding::Ndjson)
///     .start()?;
/// # drop(guard);
/// # Ok::<(), posthaste::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batch {
    max_events: usize,
    max_bytes: usize,
    linger: Duration,
}

impl Default for Batch {
    fn default() -> Batch {
        Batch { max_events: 500, max_bytes: 1024 * 1024, linger: Duration::from_millis(50) }
    }
}

impl Batch {
    /// The default batching policy: 500 events, 1 MiB, 50 ms linger.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// The most events in one request (1–1,000,000). Defaults to 500.
    pub fn max_events(mut self, n: usize) -> Batch {
        self.max_events = n;
        self
    }

    /// The largest request body in bytes, before compression (64 B–1 GiB). Defaults to 1 MiB.
    pub fn max_bytes(mut self, bytes: usize) -> Batch {
        self.max_bytes = bytes;
        self
    }

    /// How long a batch may wait for more events after its first one (≤ 60 s; zero sends
    /// whatever is queued at that moment without waiting). It bounds the delay batching adds.
    /// Defaults to 50 ms.
    pub fn linger(mut self, d: Duration) -> Batch {
        self.linger = d;
        self
    }

    pub(crate) fn max_bytes_value(&self) -> usize {
        self.max_bytes
    }

    pub(crate) fn linger_value(&self) -> Duration {
        self.linger
    }

    fn validate(&self) -> Result<(), Error> {
        let bad = |option, reason: String| Err(Error::InvalidOption { option, reason });
        if !(1..=1_000_000).contains(&self.max_events) {
            return bad("batch.max_events", format!("{} is not within 1..=1000000", self.max_events));
        }
        if !(64..=1 << 30).contains(&self.max_bytes) {
            return bad("batch.max_bytes", format!("{} is not within 64..=1073741824", self.max_bytes));
        }
        if self.linger > Duration::from_secs(60) {
            return bad("batch.linger", format!("{:?} is longer than 60s", self.linger));
        }
        Ok(())
    }
}

/// How the events of one request are laid out in its body. Set with
/// [`Builder::encoding`](crate::Builder::encoding).
///
/// | encoding | without batching | with [`Batch`] | `Content-Type` |
/// |---|---|---|---|
/// | `Json` (default) | `{"a":1}` | `[{"a":1},{"a":2}]` (an array, even of one) | `application/json` |
/// | `JsonArray` | `[{"a":1}]` | `[{"a":1},{"a":2}]` | `application/json` |
/// | `Ndjson` | `{"a":1}\n` | `{"a":1}\n{"a":2}\n` | `application/x-ndjson` |
/// | `Custom` | your bytes | your bytes | [`Builder::content_type`](crate::Builder::content_type) |
///
/// `Ndjson` sets `Content-Type: application/x-ndjson` unless
/// [`Builder::content_type`](crate::Builder::content_type) was changed from its default. A
/// [`Template`] applies to each event before the built-in encodings lay them out.
///
/// A custom encoder writes the whole body from the batch's events. It runs on a worker thread;
/// a panic in it fails that batch (`Outcome::Failed`) and the worker keeps serving:
///
/// ```
/// use std::io::Write;
/// // {"count":2,"events":[…]}
/// let encoding = posthaste::Encoding::custom(|events, body| {
///     write!(body, r#"{{"count":{},"events":["#, events.len()).unwrap();
///     for (i, event) in events.enumerate() {
///         if i > 0 {
///             body.push(b',');
///         }
///         event.write_json(body);
///     }
///     body.extend_from_slice(b"]}");
/// });
/// let guard = posthaste::builder("http://127.0.0.1:9/ingest")
///     .batch(posthaste::Batch::new())
///     .encoding(encoding)
///     .start()?;
/// # drop(guard);
/// # Ok::<(), posthaste::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum Encoding {
    /// Without batching, each event as its own JSON document; with batching, a JSON array
    /// (also when a batch holds one event, so the receiver always sees one shape). The default.
    #[default]
    Json,
    /// Always a JSON array, also of one event without batching.
    JsonArray,
    /// Newline-delimited JSON: each event on its own line, each line ending in `\n`.
    Ndjson,
    /// Your encoder writes the body; see [`Encoding::custom`].
    Custom(CustomEncoding),
}

impl Encoding {
    /// An encoding that calls `f` with the request's events and the (empty) body to write.
    pub fn custom<F>(f: F) -> Encoding
    where
        F: Fn(Events<'_>, &mut Vec<u8>) + Send + Sync + 'static,
    {
        Encoding::Custom(CustomEncoding(Arc::new(f)))
    }
}

/// A custom encoder, made by [`Encoding::custom`].
#[derive(Clone)]
pub struct CustomEncoding(Arc<EncodeFn>);

type EncodeFn = dyn Fn(Events<'_>, &mut Vec<u8>) + Send + Sync;

impl fmt::Debug for CustomEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CustomEncoding(..)")
    }
}

/// The events of one request, in queue order, as given to a custom encoder.
#[derive(Clone)]
pub struct Events<'a> {
    inner: std::slice::Iter<'a, Envelope>,
}

impl<'a> Iterator for Events<'a> {
    type Item = &'a Event;

    fn next(&mut self) -> Option<&'a Event> {
        self.inner.next().map(|env| &env.event)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ExactSizeIterator for Events<'_> {}

impl fmt::Debug for Events<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Events({} left)", self.len())
    }
}

/// Puts each event inside a fixed JSON object, for endpoints that want an envelope such as
/// `{"bucket": "team-a", "log": "<the event as a JSON string>"}`. Set with
/// [`Builder::template`](crate::Builder::template); the [`Encoding`] then lays out the wrapped
/// events (one per request, an array, or NDJSON lines).
///
/// ```
/// use serde_json::json;
/// // Each event is sent as {"bucket":"team-a","log":"{\"level\":\"info\",…}"}.
/// let template = posthaste::Template::string_field(json!({"bucket": "team-a"}), "log");
/// let guard = posthaste::builder("http://127.0.0.1:9/ingest").template(template).start()?;
/// guard.client().send(json!({"level": "info", "msg": "ready"}))?;
/// # drop(guard);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// The object must be a JSON object without the field; `start()` checks it. Its values are
/// never printed by `Debug`.
#[derive(Clone)]
pub struct Template {
    object: Value,
    field: String,
    as_string: bool,
}

impl Template {
    /// Each event goes under `field` of `object` as a JSON **string** holding its JSON (double
    /// encoding).
    pub fn string_field(object: Value, field: impl Into<String>) -> Template {
        Template { object, field: field.into(), as_string: true }
    }

    /// Each event goes under `field` of `object` as a nested JSON value.
    pub fn value_field(object: Value, field: impl Into<String>) -> Template {
        Template { object, field: field.into(), as_string: false }
    }

    fn validate(&self) -> Result<(), Error> {
        let bad = |reason: String| Err(Error::InvalidOption { option: "template", reason });
        match &self.object {
            Value::Object(map) if map.contains_key(&self.field) => {
                bad(format!("the object already has the field {:?}", self.field))
            }
            Value::Object(_) => Ok(()),
            other => bad(format!("expected a JSON object, got {}", kind_of(other))),
        }
    }

    /// The bytes before and after each event.
    fn compile(&self) -> CompiledTemplate {
        let mut prefix = serde_json::to_vec(&self.object).unwrap_or_else(|_| b"{}".to_vec());
        prefix.pop(); // The closing brace; the event's field comes last.
        if prefix.len() > 1 {
            prefix.push(b',');
        }
        // Writing a `&str` into a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut prefix, self.field.as_str());
        prefix.push(b':');
        CompiledTemplate { prefix, as_string: self.as_string }
    }
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = match &self.object {
            Value::Object(map) => map.keys().map(String::as_str).collect(),
            _ => Vec::new(),
        };
        f.debug_struct("Template")
            .field("keys", &keys)
            .field("field", &self.field)
            .field("as_string", &self.as_string)
            .finish()
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

struct CompiledTemplate {
    prefix: Vec<u8>,
    as_string: bool,
}

/// gzip request compression, set with [`Builder::gzip`](crate::Builder::gzip). Bodies of at
/// least `min_bytes` are compressed and sent with `Content-Encoding: gzip`; smaller ones are
/// sent plain (compressing them costs more than it saves).
///
/// ```
/// let guard = posthaste::builder("http://127.0.0.1:9/ingest")
///     .batch(posthaste::Batch::new())
///     .gzip(posthaste::Gzip::new().min_bytes(4096))
///     .start()?;
/// # drop(guard);
/// # Ok::<(), posthaste::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gzip {
    min_bytes: usize,
    level: u32,
}

impl Default for Gzip {
    fn default() -> Gzip {
        Gzip { min_bytes: 1024, level: 1 }
    }
}

impl Gzip {
    /// gzip at level 1 for bodies of 1 KiB and more.
    pub fn new() -> Gzip {
        Gzip::default()
    }

    /// Bodies smaller than this are sent uncompressed. Defaults to 1024.
    pub fn min_bytes(mut self, bytes: usize) -> Gzip {
        self.min_bytes = bytes;
        self
    }

    /// The compression level, 1 (fastest) to 9 (smallest). Level 1 already shrinks typical
    /// JSON events several times over at a fraction of the CPU of level 6. Defaults to 1.
    pub fn level(mut self, level: u32) -> Gzip {
        self.level = level;
        self
    }

    fn validate(&self) -> Result<(), Error> {
        if !(1..=9).contains(&self.level) {
            return Err(Error::InvalidOption {
                option: "gzip.level",
                reason: format!("{} is not within 1..=9", self.level),
            });
        }
        Ok(())
    }
}

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

    fn validate(&self) -> Result<(), Error> {
        let names = std::iter::once(&self.key_header).chain(self.attempt_header.as_ref());
        for name in names {
            crate::transport::check_header(name, "1").map_err(|reason| Error::InvalidOption {
                option: "idempotency",
                reason: format!("header {:?}: {reason}", name.escape_debug().to_string()),
            })?;
        }
        Ok(())
    }
}

/// A request key: 128 random bits as a version-4 UUID (`xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`).
pub(crate) fn uuid_v4(random: u128) -> String {
    let mut b = random.to_be_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut out = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The throughput options as the builder collects them (one field of `Config`).
#[derive(Clone, Debug, Default)]
pub(crate) struct BatchOptions {
    pub(crate) batch: Option<Batch>,
    pub(crate) encoding: Encoding,
    pub(crate) template: Option<Template>,
    pub(crate) gzip: Option<Gzip>,
    pub(crate) idempotency: Option<Idempotency>,
    /// Added to each worker thread's nice value (0 = unchanged).
    pub(crate) worker_nice: i32,
}

/// The `Content-Type` the builder uses by default.
pub(crate) const DEFAULT_CONTENT_TYPE: &str = "application/json";

impl BatchOptions {
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if let Some(b) = &self.batch {
            b.validate()?;
        }
        if let Some(t) = &self.template {
            t.validate()?;
            if matches!(self.encoding, Encoding::Custom(_)) {
                return Err(Error::InvalidOption {
                    option: "template",
                    reason: "a template is not applied by Encoding::Custom: wrap events in the encoder"
                        .into(),
                });
            }
        }
        if let Some(g) = &self.gzip {
            g.validate()?;
        }
        if let Some(i) = &self.idempotency {
            i.validate()?;
        }
        if !(0..=19).contains(&self.worker_nice) {
            return Err(Error::InvalidOption {
                option: "worker_nice",
                reason: format!("{} is not within 0..=19", self.worker_nice),
            });
        }
        Ok(())
    }

    /// The content type to send: NDJSON's own unless the user changed the default.
    pub(crate) fn content_type(&self, configured: &str) -> String {
        match self.encoding {
            Encoding::Ndjson if configured == DEFAULT_CONTENT_TYPE => "application/x-ndjson".into(),
            _ => configured.into(),
        }
    }
}

/// Whether an event whose estimated share is `size` joins a batch that holds `count` events and
/// `bytes` estimated bytes; if not, it starts the next batch.
pub(crate) fn joins(limits: &Batch, count: usize, bytes: usize, size: usize) -> bool {
    count < limits.max_events && bytes.saturating_add(size) <= limits.max_bytes
}

/// True when a batch can take no more events, so gathering stops without waiting.
pub(crate) fn is_full(limits: &Batch, count: usize, bytes: usize) -> bool {
    count >= limits.max_events || bytes >= limits.max_bytes
}

/// How long a lingering worker sleeps before looking at the queue again, with `left` of the
/// `linger` time to go: a tenth of the linger time, between 1 ms and 10 ms. Short enough that a
/// queue filling up meanwhile is not left waiting for long; long enough that a worker wakes a
/// few hundred times a second at most, not once per event.
pub(crate) fn nap(left: Duration, linger: Duration) -> Duration {
    (linger / 10).clamp(Duration::from_millis(1), Duration::from_millis(10)).min(left)
}

/// How a chunk of `n > 1` events is split (after a `413`, or an encoding over `max_bytes`).
pub(crate) fn halves(n: usize) -> (usize, usize) {
    (n / 2, n - n / 2)
}

/// A worker's encoder: the options compiled once, plus scratch space reused across requests.
pub(crate) struct Codec {
    encoding: Encoding,
    /// Batching is on: `Json` then always writes an array.
    batched: bool,
    template: Option<CompiledTemplate>,
    gzip: Option<Gzip>,
    scratch: Vec<u8>,
}

impl Codec {
    pub(crate) fn new(options: &BatchOptions) -> Codec {
        Codec {
            encoding: options.encoding.clone(),
            batched: options.batch.is_some(),
            template: options.template.as_ref().map(Template::compile),
            gzip: options.gzip.clone(),
            scratch: Vec::new(),
        }
    }

    /// An event's estimated share of a batch body: its size plus separators and template.
    pub(crate) fn estimate(&self, size: usize) -> usize {
        let wrapped = match &self.template {
            None => size,
            // Double encoding escapes every quote: allow a quarter more.
            Some(t) if t.as_string => t.prefix.len() + 3 + size + size / 4,
            Some(t) => t.prefix.len() + 1 + size,
        };
        wrapped + 1
    }

    /// Writes the body for `batch` into `out` (cleared first).
    pub(crate) fn encode(&mut self, batch: &[Envelope], out: &mut Vec<u8>) {
        out.clear();
        match &self.encoding {
            Encoding::Json if batch.len() == 1 && !self.batched => self.write_event(&batch[0].event, out),
            Encoding::Json | Encoding::JsonArray => {
                out.reserve(batch.iter().map(|e| e.size + 1).sum::<usize>() + 2);
                out.push(b'[');
                for (i, env) in batch.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    self.write_event(&env.event, out);
                }
                out.push(b']');
            }
            Encoding::Ndjson => {
                out.reserve(batch.iter().map(|e| e.size + 1).sum::<usize>());
                for env in batch {
                    self.write_event(&env.event, out);
                    out.push(b'\n');
                }
            }
            Encoding::Custom(custom) => (custom.0)(Events { inner: batch.iter() }, out),
        }
    }

    fn write_event(&mut self, event: &Event, out: &mut Vec<u8>) {
        let Some(t) = &self.template else {
            event.write_json(out);
            return;
        };
        out.extend_from_slice(&t.prefix);
        if t.as_string {
            self.scratch.clear();
            event.write_json(&mut self.scratch);
            // serde_json writes UTF-8 and `Event::from_json_bytes` checked its input.
            let text = String::from_utf8_lossy(&self.scratch);
            // Writing a `&str` into a `Vec` cannot fail.
            let _ = serde_json::to_writer(&mut *out, text.as_ref());
        } else {
            event.write_json(out);
        }
        out.push(b'}');
    }

    /// Compresses `body` into `out` when gzip is on and the body is large enough. True if it
    /// did (the request then carries `Content-Encoding: gzip`).
    pub(crate) fn compress(&self, body: &[u8], out: &mut Vec<u8>) -> bool {
        match &self.gzip {
            Some(g) if body.len() >= g.min_bytes => {
                gzip(body, g.level, out);
                true
            }
            _ => false,
        }
    }
}

/// gzip-compresses `input` into `out` (cleared first).
/// Encodes `batch` as one request body the way a worker would (encoding, template, gzip), for
/// requests made outside the worker loop (the panic hook, sending after shutdown). Returns the
/// body and the headers it needs.
pub(crate) fn encode_once(
    options: &BatchOptions,
    batch: &[Envelope],
) -> (Vec<u8>, Vec<(&'static str, String)>) {
    let mut codec = Codec::new(options);
    let mut body = Vec::new();
    codec.encode(batch, &mut body);
    let mut zipped = Vec::new();
    if codec.compress(&body, &mut zipped) {
        (zipped, vec![("Content-Encoding", "gzip".to_string())])
    } else {
        (body, Vec::new())
    }
}

pub(crate) fn gzip(input: &[u8], level: u32, out: &mut Vec<u8>) {
    out.clear();
    let mut encoder = GzEncoder::new(std::mem::take(out), Compression::new(level));
    // Writing into a `Vec` cannot fail.
    let _ = encoder.write_all(input);
    *out = encoder.finish().unwrap_or_default();
}

/// Encoding entry points for the crate's own benchmarks (`benches/send.rs`). Not part of the
/// public API: hidden from the docs, may change in any release.
#[doc(hidden)]
pub mod bench_support {
    use super::{BatchOptions, Codec};
    use crate::event::Event;
    use crate::outcome::Envelope;

    /// A batch of events with an encoder, as a worker holds them.
    pub struct EncodeBench {
        codec: Codec,
        batch: Vec<Envelope>,
        body: Vec<u8>,
        zipped: Vec<u8>,
    }

    impl EncodeBench {
        /// Events laid out by `encoding` (and `template`), gzip on or off, batching on.
        pub fn new(
            events: Vec<Event>,
            encoding: super::Encoding,
            template: Option<super::Template>,
            gzip: Option<super::Gzip>,
        ) -> EncodeBench {
            let options = BatchOptions {
                batch: Some(super::Batch::new()),
                encoding,
                template,
                gzip,
                ..Default::default()
            };
            let batch = events
                .into_iter()
                .map(|event| Envelope { size: event.approx_bytes(), event, receipt: None })
                .collect();
            EncodeBench { codec: Codec::new(&options), batch, body: Vec::new(), zipped: Vec::new() }
        }

        /// Encodes (and compresses, if on) the batch; returns the bytes to send.
        pub fn run(&mut self) -> usize {
            self.codec.encode(&self.batch, &mut self.body);
            if self.codec.compress(&self.body, &mut self.zipped) {
                self.zipped.len()
            } else {
                self.body.len()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Read;

    fn env(v: Value) -> Envelope {
        let event = Event::from(v);
        Envelope { size: event.approx_bytes(), event, receipt: None }
    }

    fn encode(options: &BatchOptions, batch: &[Envelope]) -> Vec<u8> {
        let mut out = Vec::new();
        Codec::new(options).encode(batch, &mut out);
        out
    }

    fn with(encoding: Encoding) -> BatchOptions {
        BatchOptions { encoding, ..BatchOptions::default() }
    }

    #[test]
    fn json_is_one_document_or_an_array() {
        let json = with(Encoding::Json);
        assert_eq!(encode(&json, &[env(json!({"a": 1}))]), br#"{"a":1}"#);
        assert_eq!(encode(&json, &[env(json!(1)), env(json!({"b": "x"}))]), br#"[1,{"b":"x"}]"#);
        let array = with(Encoding::JsonArray);
        assert_eq!(encode(&array, &[env(json!({"a": 1}))]), br#"[{"a":1}]"#);
        let batched = BatchOptions { batch: Some(Batch::new()), ..BatchOptions::default() };
        assert_eq!(encode(&batched, &[env(json!({"a": 1}))]), br#"[{"a":1}]"#, "one shape when batching");
    }

    #[test]
    fn ndjson_ends_every_line() {
        let nd = with(Encoding::Ndjson);
        assert_eq!(encode(&nd, &[env(json!({"a": 1})), env(json!("x\ny"))]), b"{\"a\":1}\n\"x\\ny\"\n");
        assert_eq!(nd.content_type(DEFAULT_CONTENT_TYPE), "application/x-ndjson");
        assert_eq!(nd.content_type("application/vnd.x"), "application/vnd.x");
        assert_eq!(with(Encoding::Json).content_type(DEFAULT_CONTENT_TYPE), DEFAULT_CONTENT_TYPE);
    }

    #[test]
    fn custom_encoder_sees_every_event_in_order() {
        let custom = with(Encoding::custom(|events, out| {
            out.extend_from_slice(format!("{}:", events.len()).as_bytes());
            for e in events {
                e.write_json(out);
            }
        }));
        assert_eq!(encode(&custom, &[env(json!(1)), env(json!(2))]), b"2:12");
    }

    #[test]
    fn string_template_double_encodes() {
        let t = Template::string_field(json!({"bucket": "team-a"}), "log");
        let options = BatchOptions { template: Some(t), ..BatchOptions::default() };
        let body = encode(&options, &[env(json!({"msg": "say \"hi\""}))]);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["bucket"], "team-a");
        let inner: Value = serde_json::from_str(v["log"].as_str().unwrap()).unwrap();
        assert_eq!(inner, json!({"msg": "say \"hi\""}));
        // Pre-encoded events are wrapped the same way.
        let raw = Event::from_json_bytes(br#"{"n":1}"#.to_vec()).unwrap();
        let batch = [Envelope { size: 7, event: raw, receipt: None }];
        assert_eq!(encode(&options, &batch), br#"{"bucket":"team-a","log":"{\"n\":1}"}"#);
    }

    #[test]
    fn value_template_nests_and_frames() {
        let t = Template::value_field(json!({}), "payload");
        let options = BatchOptions { template: Some(t), encoding: Encoding::Ndjson, ..Default::default() };
        assert_eq!(
            encode(&options, &[env(json!(1)), env(json!([2]))]),
            b"{\"payload\":1}\n{\"payload\":[2]}\n"
        );
    }

    #[test]
    fn template_validation() {
        assert!(Template::string_field(json!({"a": 1}), "log").validate().is_ok());
        let dup = Template::string_field(json!({"log": 1}), "log").validate().unwrap_err();
        assert!(dup.to_string().contains("already has the field"), "{dup}");
        let not_object = Template::value_field(json!([1]), "x").validate().unwrap_err();
        assert!(not_object.to_string().contains("an array"), "{not_object}");
        let with_custom = BatchOptions {
            template: Some(Template::string_field(json!({}), "x")),
            encoding: Encoding::custom(|_, _| {}),
            ..Default::default()
        };
        assert!(with_custom.validate().is_err());
    }

    #[test]
    fn template_debug_hides_values() {
        let t = Template::string_field(json!({"token": "s3cret"}), "log");
        let s = format!("{t:?}");
        assert!(s.contains("token") && !s.contains("s3cret"), "{s}");
    }

    #[test]
    fn gathering_rule() {
        let limits = Batch::new().max_events(3).max_bytes(100);
        assert!(joins(&limits, 1, 10, 20));
        assert!(!joins(&limits, 3, 10, 1), "event limit");
        assert!(joins(&limits, 1, 50, 50), "exactly at the byte limit");
        assert!(!joins(&limits, 1, 50, 51), "over the byte limit");
        assert!(!joins(&limits, 1, 0, usize::MAX), "no overflow");
        assert!(is_full(&limits, 3, 0) && is_full(&limits, 1, 100) && !is_full(&limits, 2, 99));
        assert_eq!(halves(7), (3, 4));
        let ms = Duration::from_millis;
        assert_eq!(nap(ms(50), ms(50)), ms(5));
        assert_eq!(nap(ms(2), ms(50)), ms(2), "never past the linger time");
        assert_eq!(nap(ms(30_000), ms(30_000)), ms(10));
        assert_eq!(nap(ms(3), ms(3)), ms(1));
        assert_eq!(halves(2), (1, 1));
    }

    #[test]
    fn estimate_covers_separators_and_template() {
        let plain = Codec::new(&BatchOptions::default());
        assert_eq!(plain.estimate(10), 11);
        let t = Template::string_field(json!({"bucket": "a"}), "log");
        let wrapped = Codec::new(&BatchOptions { template: Some(t), ..Default::default() });
        // {"bucket":"a","log":"…"} around an event of 40 bytes with some quotes to escape.
        let event = env(json!({"k": "v", "kk": "vv", "kkk": "vvvvvvvvvvv"}));
        let mut out = Vec::new();
        let mut codec = wrapped;
        codec.encode(std::slice::from_ref(&event), &mut out);
        assert!(codec.estimate(event.size) >= out.len(), "{} < {}", codec.estimate(event.size), out.len());
    }

    #[test]
    fn gzip_round_trips_above_the_threshold() {
        let codec =
            Codec::new(&BatchOptions { gzip: Some(Gzip::new().min_bytes(100)), ..Default::default() });
        let body = br#"{"event":"tick","i":1}"#.repeat(20);
        let mut out = Vec::new();
        assert!(codec.compress(&body, &mut out));
        assert!(out.len() < body.len() / 4, "{} bytes", out.len());
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&out[..]).read_to_end(&mut plain).unwrap();
        assert_eq!(plain, body);
        assert!(!codec.compress(&body[..99], &mut out), "below the threshold");
        assert!(!Codec::new(&BatchOptions::default()).compress(&body, &mut out), "off by default");
    }

    #[test]
    fn option_validation_names_the_option() {
        let check = |o: BatchOptions, option: &str| {
            let e = o.validate().unwrap_err().to_string();
            assert!(e.contains(option), "{e}");
        };
        let batch = |b: Batch| BatchOptions { batch: Some(b), ..Default::default() };
        assert!(batch(Batch::new()).validate().is_ok());
        check(batch(Batch::new().max_events(0)), "batch.max_events");
        check(batch(Batch::new().max_bytes(10)), "batch.max_bytes");
        check(batch(Batch::new().linger(Duration::from_secs(61))), "batch.linger");
        check(BatchOptions { gzip: Some(Gzip::new().level(0)), ..Default::default() }, "gzip.level");
        let bad_header = Idempotency::new().key_header("Bad Name");
        check(BatchOptions { idempotency: Some(bad_header), ..Default::default() }, "idempotency");
        check(BatchOptions { worker_nice: 20, ..Default::default() }, "worker_nice");
    }

    #[test]
    fn default_content_type_matches_the_config_default() {
        assert_eq!(crate::config::Config::new("http://h/".into()).content_type, DEFAULT_CONTENT_TYPE);
    }

    #[test]
    fn keys_are_uuid_v4() {
        let k = uuid_v4(u128::MAX);
        assert_eq!(k, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(uuid_v4(0), "00000000-0000-4000-8000-000000000000");
        assert_ne!(uuid_v4(1), uuid_v4(2));
    }
}
