//! [`Encoding`] and the [`Codec`]: how a batch of events becomes one request body.

use std::fmt;
use std::sync::Arc;

use super::gzip::{gzip, Gzip};
use super::template::{CompiledTemplate, Template};
use super::{otlp, EncodeOptions, Item, Signer};
use crate::event::Event;

/// How the events of one request are laid out in its body. Set with
/// [`Builder::encoding`](crate::Builder::encoding).
///
/// | encoding | without batching | with [`Batch`](crate::Batch) | `Content-Type` |
/// |---|---|---|---|
/// | `Json` (default) | `{"a":1}` | `[{"a":1},{"a":2}]` (an array, even of one) | `application/json` |
/// | `JsonArray` | `[{"a":1}]` | `[{"a":1},{"a":2}]` | `application/json` |
/// | `Ndjson` | `{"a":1}\n` | `{"a":1}\n{"a":2}\n` | `application/x-ndjson` |
/// | `OtlpLogs` | an OTLP/HTTP `ExportLogsServiceRequest` (JSON) of one record | of all the records | `application/json` |
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
    /// OpenTelemetry logs: each request is one OTLP/HTTP `ExportLogsServiceRequest` in OTLP's
    /// JSON encoding, for an OpenTelemetry Collector or any OTLP endpoint (POST to its
    /// `/v1/logs` URL). Log events (`timestamp`, `level`, `target`, `message`, fields, spans)
    /// and plain events map as README's "OpenTelemetry" section tables: severities, typed
    /// attributes, resource attributes from `service`, `version`, `environment`, `host`. A
    /// 2xx answer whose `partialSuccess` names rejected records is delivered and counted in
    /// [`Stats::rejected_records`](crate::Stats::rejected_records). Not with a [`Template`].
    OtlpLogs,
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
    items: &'a dyn Items,
    next: usize,
    end: usize,
}

/// The batch behind [`Events`], type-erased so the public iterator names no internal type.
trait Items: Sync {
    fn get(&self, i: usize) -> &Event;
}

struct Slice<'a, T>(&'a [T]);

impl<T: Item> Items for Slice<'_, T> {
    fn get(&self, i: usize) -> &Event {
        self.0[i].event()
    }
}

impl<'a> Iterator for Events<'a> {
    type Item = &'a Event;

    fn next(&mut self) -> Option<&'a Event> {
        if self.next == self.end {
            return None;
        }
        self.next += 1;
        Some(self.items.get(self.next - 1))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end - self.next;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Events<'_> {}

impl fmt::Debug for Events<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Events({} left)", self.len())
    }
}

/// A worker's encoder: the options compiled once, plus scratch space reused across requests.
pub(crate) struct Codec {
    encoding: Encoding,
    /// Batching is on: `Json` then always writes an array.
    batched: bool,
    template: Option<CompiledTemplate>,
    gzip: Option<Gzip>,
    scratch: Vec<u8>,
    /// Unix nanoseconds now, for OTLP's observed time (tests inject their own).
    clock: fn() -> u64,
}

/// The system clock as Unix nanoseconds.
fn system_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Codec {
    pub(crate) fn new(options: &EncodeOptions) -> Codec {
        Codec {
            encoding: options.encoding.clone(),
            batched: options.batch.is_some(),
            template: options.template.as_ref().map(Template::compile),
            gzip: options.gzip.clone(),
            scratch: Vec::new(),
            clock: system_nanos,
        }
    }

    /// An event's estimated share of a batch body: its size plus separators and template.
    pub(crate) fn estimate(&self, size: usize) -> usize {
        if matches!(self.encoding, Encoding::OtlpLogs) {
            // Every field becomes {"key":…,"value":{"…Value":…}}: about three times the event.
            return size.saturating_mul(3) + 128;
        }
        let wrapped = match &self.template {
            None => size,
            // Double encoding escapes every quote: allow a quarter more.
            Some(t) if t.as_string => t.prefix.len() + 3 + size + size / 4,
            Some(t) => t.prefix.len() + 1 + size,
        };
        wrapped + 1
    }

    /// Writes the body for `batch` into `out` (cleared first).
    pub(crate) fn encode<T: Item>(&mut self, batch: &[T], out: &mut Vec<u8>) {
        out.clear();
        match &self.encoding {
            Encoding::Json if batch.len() == 1 && !self.batched => self.write_event(batch[0].event(), out),
            Encoding::Json | Encoding::JsonArray => {
                out.reserve(batch.iter().map(|e| e.size() + 1).sum::<usize>() + 2);
                out.push(b'[');
                for (i, item) in batch.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    self.write_event(item.event(), out);
                }
                out.push(b']');
            }
            Encoding::Ndjson => {
                out.reserve(batch.iter().map(|e| e.size() + 1).sum::<usize>());
                for item in batch {
                    self.write_event(item.event(), out);
                    out.push(b'\n');
                }
            }
            Encoding::OtlpLogs => otlp::encode(batch.iter().map(Item::event), (self.clock)(), out),
            Encoding::Custom(custom) => {
                let items = Slice(batch);
                (custom.0)(Events { items: &items, next: 0, end: batch.len() }, out)
            }
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

/// Encodes `batch` as one request body the way a worker would (encoding, template, gzip), for
/// requests made outside the worker loop (the panic hook, sending after shutdown). Returns the
/// body and the headers it needs.
///
/// `stamp` is the message id and the Unix time for the Standard Webhooks headers, added when
/// the options hold secrets (signed over the uncompressed body).
pub(crate) fn encode_once(
    options: &EncodeOptions,
    batch: &[impl Item],
    stamp: (&str, u64),
) -> (Vec<u8>, Vec<(&'static str, String)>) {
    let mut codec = Codec::new(options);
    let mut body = Vec::new();
    codec.encode(batch, &mut body);
    let mut headers = Vec::new();
    if let Some(signer) = Signer::new(&options.signing) {
        headers.extend(signer.headers(stamp.0, stamp.1, &body));
    }
    let mut zipped = Vec::new();
    if codec.compress(&body, &mut zipped) {
        headers.push(("Content-Encoding", "gzip".to_string()));
        (zipped, headers)
    } else {
        (body, headers)
    }
}

/// Encoding entry points for the crate's own benchmarks (`benches/send.rs`). Not part of the
/// public API: hidden from the docs, may change in any release.
#[doc(hidden)]
pub mod bench_support {
    use super::Codec;
    use crate::event::Event;
    use crate::policy::encode::{Batch, EncodeOptions, Encoding, Gzip, Item, Template};

    /// An event with its size, as the queue hands it over.
    struct Sized(Event, usize);

    impl Item for Sized {
        fn event(&self) -> &Event {
            &self.0
        }
        fn size(&self) -> usize {
            self.1
        }
    }

    /// A batch of events with an encoder, as a worker holds them.
    pub struct EncodeBench {
        codec: Codec,
        batch: Vec<Sized>,
        body: Vec<u8>,
        zipped: Vec<u8>,
    }

    impl EncodeBench {
        /// Events laid out by `encoding` (and `template`), gzip on or off, batching on.
        pub fn new(
            events: Vec<Event>,
            encoding: Encoding,
            template: Option<Template>,
            gzip: Option<Gzip>,
        ) -> EncodeBench {
            let options =
                EncodeOptions { batch: Some(Batch::new()), encoding, template, gzip, ..Default::default() };
            let batch = events
                .into_iter()
                .map(|event| {
                    let size = event.approx_bytes();
                    Sized(event, size)
                })
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
