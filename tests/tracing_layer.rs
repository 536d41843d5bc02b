//! The `tracing` front end against a loopback sink that captures bodies: the event shape and
//! its types, span fields, static fields, per-target levels, error chains, other layers left
//! alone, never blocking under `Overflow::Block`, and silence after shutdown.
//!
//! Each test installs its subscriber for its own thread only (`with_default`); the global case
//! (a subscriber at TRACE bridging `log`) is `tests/logging_loop.rs`.

#![cfg(feature = "tracing")]

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use posthaste::tracing::Layer;
use posthaste::Overflow;
use serde_json::{json, Value};
use support::{Reply, Sink, Wrapped, PATIENCE};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;

/// Runs `body` with `layer` as this thread's subscriber, then waits until the guard's events
/// settled and returns the bodies the sink received, in arrival order.
fn shipped(sink: &Sink, guard: &posthaste::Guard, layer: Layer, body: impl FnOnce()) -> Vec<Value> {
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), body);
    assert!(guard.flush(PATIENCE), "{:?}", guard.stats());
    let mut events: Vec<Value> = sink.requests().iter().map(|r| r.json()).collect();
    events.sort_by_key(|v| v["timestamp"].as_str().unwrap_or_default().to_string());
    events
}

#[test]
fn event_shape_keeps_json_types_and_span_context() {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url()).start().unwrap();
    let before = SystemTime::now();
    let mut line = 0;
    let events = shipped(&sink, &guard, Layer::new(guard.client()), || {
        let job = tracing::info_span!("job", id = 7_u64, kind = "batch", progress = tracing::field::Empty);
        let _job = job.enter();
        job.record("progress", 0.25);
        let step = tracing::info_span!("step", n = 2, name = "inner");
        let _step = step.enter();
        line = line!() + 1;
        tracing::info!(user_id = 42, ratio = 0.5, ok = true, who = "ann", big = u64::MAX, neg = -3_i64, list = ?vec![1, 2], shown = %"disp", "checkout {}", 7);
    });
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e["level"], "INFO");
    assert_eq!(e["target"], "tracing_layer");
    assert_eq!(e["message"], "checkout 7");
    assert_eq!(e["user_id"], json!(42));
    assert_eq!(e["ratio"], json!(0.5));
    assert_eq!(e["ok"], json!(true));
    assert_eq!(e["who"], json!("ann"));
    assert_eq!(e["big"], json!(u64::MAX));
    assert_eq!(e["neg"], json!(-3));
    assert_eq!(e["list"], json!("[1, 2]"), "Debug-only values are strings");
    assert_eq!(e["shown"], json!("disp"));
    assert_eq!(
        e["spans"],
        json!([
            {"name": "job", "id": 7, "kind": "batch", "progress": 0.25},
            {"name": "step", "n": 2, "field.name": "inner"},
        ]),
        "root first, with fields recorded later"
    );
    assert!(e["file"].as_str().unwrap().ends_with("tracing_layer.rs"), "{e}");
    assert_eq!(e["line"], json!(line));
    // RFC 3339 UTC with microseconds, taken when the event was made.
    let ts = e["timestamp"].as_str().unwrap();
    assert_eq!(ts.len(), 27, "{ts}");
    assert!(ts.ends_with('Z') && &ts[10..11] == "T" && &ts[19..20] == ".", "{ts}");
    let secs = before.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let (y, _, _) = civil(secs / 86_400);
    assert_eq!(ts[..4].parse::<i64>().unwrap(), y, "{ts}");
    let keys: Vec<&String> = e.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 15, "no other key: {keys:?}");
}

/// The year of a day count since 1970 (for the timestamp check; the exact conversion is
/// unit-tested in the library).
fn civil(days: u64) -> (i64, u32, u32) {
    let mut y = 1970;
    let mut d = days as i64;
    loop {
        let len = if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 { 366 } else { 365 };
        if d < len {
            return (y, 0, 0);
        }
        d -= len;
        y += 1;
    }
}

#[test]
fn static_fields_name_collisions_and_events_outside_spans() {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url()).start().unwrap();
    let layer = Layer::new(guard.client())
        .with_field("service", "billing")
        .with_field("version", "1.2.3")
        .with_field("replicas", 3);
    let events = shipped(&sink, &guard, layer, || {
        tracing::warn!(service = "override", level = "mine", file = 1, "no span");
    });
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e["level"], "WARN");
    assert_eq!(e["service"], "override", "the event's own field wins over a static one");
    assert_eq!(e["version"], "1.2.3");
    assert_eq!(e["replicas"], 3);
    assert_eq!(e["field.level"], "mine", "reserved names are prefixed");
    assert_eq!(e["field.file"], 1);
    assert!(e["file"].as_str().unwrap().ends_with(".rs"));
    assert!(e.get("spans").is_none(), "no span, no `spans`: {e}");
}

#[test]
fn levels_by_target_prefix_most_specific_wins() {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url()).start().unwrap();
    let layer = Layer::new(guard.client())
        .level_for("noisy", LevelFilter::DEBUG)
        .level_for("noisy::quiet", LevelFilter::ERROR);
    let events = shipped(&sink, &guard, layer, || {
        tracing::debug!(target: "app", "app debug: dropped");
        tracing::info!(target: "app", "app info");
        tracing::trace!(target: "noisy::a", "noisy trace: dropped");
        tracing::debug!(target: "noisy::a", "noisy debug");
        tracing::warn!(target: "noisy::quiet::x", "quiet warn: dropped");
        tracing::error!(target: "noisy::quiet::x", "quiet error");
    });
    let mut messages: Vec<&str> = events.iter().map(|e| e["message"].as_str().unwrap()).collect();
    messages.sort_unstable();
    assert_eq!(messages, ["app info", "noisy debug", "quiet error"]);
}

#[test]
fn an_error_field_gives_its_message_and_source_chain() {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url()).start().unwrap();
    let error = Wrapped(std::io::Error::other("disk full"));
    let events = shipped(&sink, &guard, Layer::new(guard.client()), || {
        tracing::error!(error = &error as &dyn std::error::Error, "saving failed");
    });
    assert_eq!(events[0]["error"], json!({"message": "could not save the report", "sources": ["disk full"]}));
    assert_eq!(events[0]["message"], "saving failed");
}

/// Counts the events it sees, to show other layers are untouched by posthaste's filtering.
struct Counting(Arc<AtomicU64>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Counting {
    fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn filtering_happens_inside_the_layer_other_layers_see_everything() {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url()).start().unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let subscriber =
        tracing_subscriber::registry().with(Layer::new(guard.client())).with(Counting(seen.clone()));
    tracing::subscriber::with_default(subscriber, || {
        tracing::debug!("below posthaste's level");
        tracing::info!(target: "ureq::transport", "the HTTP stack");
        tracing::info!(target: "rustls::client", "the TLS stack");
        tracing::info!(target: "posthaste::worker", "posthaste itself");
        tracing::info!("shipped");
    });
    assert!(guard.flush(PATIENCE));
    assert_eq!(seen.load(Ordering::SeqCst), 5, "every event reached the other layer");
    let shipped: Vec<Value> = sink.requests().iter().map(|r| r.json()).collect();
    assert_eq!(shipped.len(), 1, "{shipped:?}");
    assert_eq!(shipped[0]["message"], "shipped");
    assert_eq!(guard.stats().submitted, 1);
}

#[test]
fn a_full_queue_under_block_drops_and_counts_never_blocks() {
    // Both workers hold a request the sink never answers; the queue then fills.
    let sink = Sink::with(|_| Reply::BlackHole);
    let guard = posthaste::builder(sink.url()).overflow(Overflow::Block).start().unwrap();
    let layer = Layer::new(guard.client());
    let capacity = 10_000; // the default queue capacity
    let extra = 100;
    let began = Instant::now();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..2 {
            tracing::info!(i, "taken by a worker");
        }
        assert!(sink.wait_for_requests(2, PATIENCE), "both workers hold a request");
        for i in 0..capacity + extra {
            tracing::info!(i, "queued or dropped");
        }
    });
    // A hang bound, not a timing: a blocked producer would wait for the black hole (15 s).
    assert!(began.elapsed() < Duration::from_secs(10), "{:?}", began.elapsed());
    let s = guard.stats();
    assert_eq!(s.submitted, 2 + capacity + extra, "{s:?}");
    assert_eq!(s.dropped, extra, "{s:?}");
    assert_eq!(s.queued, capacity, "{s:?}");
    support::assert_invariant(&s);
    let report = guard.shutdown_timeout(Duration::ZERO);
    support::assert_invariant(&report.stats);
}

#[test]
fn after_shutdown_the_layer_is_a_silent_no_op() {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url()).start().unwrap();
    let client = guard.client();
    let layer = Layer::new(client.clone());
    let report = guard.shutdown();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let span = tracing::info_span!("late", n = 1);
        let _entered = span.enter();
        for i in 0..100 {
            tracing::error!(i, "after shutdown");
        }
    });
    assert_eq!(report.stats.submitted, 0);
    assert_eq!(client.stats().submitted, 0, "not counted anywhere");
    assert_eq!(sink.count(), 0);
}

#[test]
fn bridged_log_records_keep_their_target_file_and_line() {
    // `tracing-log` bridges `log` records with target `log`; the real one is a field.
    tracing_log::LogTracer::init().unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url()).start().unwrap();
    let mut line = 0;
    let events = shipped(&sink, &guard, Layer::new(guard.client()), || {
        line = line!() + 1;
        log::warn!(target: "app::jobs", "from log {}", 1);
        log::debug!(target: "app::jobs", "below the level");
        log::warn!(target: "ureq::pool", "the HTTP stack");
    });
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e["target"], "app::jobs");
    assert_eq!(e["level"], "WARN");
    assert_eq!(e["message"], "from log 1");
    assert!(e["file"].as_str().unwrap().ends_with("tracing_layer.rs"), "{e}");
    assert_eq!(e["line"], json!(line));
    assert!(e.get("log.target").is_none() && e.get("log.module_path").is_none(), "{e}");
}
