//! Request bodies and headers: JSON array, NDJSON, custom encoders, templates (the seed's
//! double-encoded envelope), gzip, idempotency keys, and low-priority workers.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use posthaste::{Batch, Encoding, Gzip, Idempotency, Outcome, Template};
use serde_json::{json, Value};
use support::{assert_invariant, fast_retry, Reply, Sink, PATIENCE};

/// Long enough that only a full batch or shutdown ends a gather in these tests.
const LONG_LINGER: Duration = Duration::from_secs(30);

fn batch_of(n: usize) -> Batch {
    Batch::new().max_events(n).linger(LONG_LINGER)
}

#[test]
fn json_array_batches() {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url()).workers(1).batch(batch_of(3)).start().unwrap();
    for i in 0..3 {
        guard.client().send(json!({"i": i})).unwrap();
    }
    // Shutdown ends the linger time and sends what is queued.
    drop(guard);
    let r = &sink.requests()[0];
    assert_eq!(r.body, br#"[{"i":0},{"i":1},{"i":2}]"#);
    assert_eq!(r.header("content-type"), Some("application/json"));
}

#[test]
fn json_array_encoding_wraps_single_events_too() {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url()).encoding(Encoding::JsonArray).start().unwrap();
    guard.client().send(json!({"one": 1})).unwrap();
    assert!(sink.wait_for_events(1, PATIENCE));
    drop(guard);
    assert_eq!(sink.requests()[0].body, br#"[{"one":1}]"#);
}

#[test]
fn ndjson_lines_and_content_type() {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url())
        .workers(1)
        .batch(batch_of(3))
        .encoding(Encoding::Ndjson)
        .start()
        .unwrap();
    for i in 0..3 {
        guard.client().send(json!({"i": i, "text": "a\nb"})).unwrap();
    }
    drop(guard);
    let r = &sink.requests()[0];
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    let text = String::from_utf8(r.body.clone()).unwrap();
    assert!(text.ends_with('\n'));
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(
        lines,
        [json!({"i": 0, "text": "a\nb"}), json!({"i": 1, "text": "a\nb"}), json!({"i": 2, "text": "a\nb"})]
    );
}

#[test]
fn ndjson_keeps_an_explicit_content_type() {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url())
        .encoding(Encoding::Ndjson)
        .content_type("application/jsonl")
        .start()
        .unwrap();
    guard.client().send(json!(1)).unwrap();
    assert!(sink.wait_for_events(1, PATIENCE));
    drop(guard);
    assert_eq!(sink.requests()[0].header("content-type"), Some("application/jsonl"));
    assert_eq!(sink.requests()[0].body, b"1\n");
}

#[test]
fn custom_encoder_writes_the_body() {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url())
        .workers(1)
        .batch(batch_of(2))
        .content_type("application/vnd.batch+json")
        .encoding(Encoding::custom(|events, body| {
            let items: Vec<Value> = events.map(|e| e.clone().into_value()).collect();
            serde_json::to_writer(body, &json!({"count": items.len(), "items": items})).unwrap();
        }))
        .start()
        .unwrap();
    guard.client().send(json!("a")).unwrap();
    guard.client().send(json!("b")).unwrap();
    drop(guard);
    let r = &sink.requests()[0];
    assert_eq!(r.json(), json!({"count": 2, "items": ["a", "b"]}));
    assert_eq!(r.header("content-type"), Some("application/vnd.batch+json"));
}

#[test]
fn a_panicking_custom_encoder_fails_the_batch_and_the_worker_goes_on() {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url())
        .workers(1)
        .encoding(Encoding::custom(|mut events, body| {
            let event = events.next().unwrap();
            assert!(event.as_value().unwrap()["boom"] != true, "encoder refuses this event");
            event.write_json(body);
        }))
        .start()
        .unwrap();
    let client = guard.client();
    let boom = client.send_tracked(json!({"boom": true})).unwrap();
    let fine = client.send_tracked(json!({"boom": false})).unwrap();
    match boom.wait(PATIENCE) {
        Some(Outcome::Failed { reason, attempts: 0 }) => assert!(reason.contains("refuses"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(fine.wait(PATIENCE).unwrap().is_delivered());
    let report = guard.shutdown();
    assert_eq!((report.stats.failed, report.stats.delivered), (1, 1));
    assert_invariant(&report.stats);
}

/// Seed 001: the aggregator wants `{"bucket": "team-a", "log": "<the event as a JSON string>"}`.
#[test]
fn string_template_is_the_seed_envelope() {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url())
        .bearer_auth("tok")
        .template(Template::string_field(json!({"bucket": "team-a"}), "log"))
        .start()
        .unwrap();
    let event = json!({"level": "error", "msg": "disk \"full\"", "n": 3});
    guard.client().send(event.clone()).unwrap();
    assert!(sink.wait_for_events(1, PATIENCE));
    drop(guard);
    let body = sink.requests()[0].json();
    assert_eq!(body["bucket"], "team-a");
    let log = body["log"].as_str().expect("the event travels as a JSON string");
    assert_eq!(serde_json::from_str::<Value>(log).unwrap(), event);
    assert_eq!(body.as_object().unwrap().len(), 2);
}

#[test]
fn template_with_batching_wraps_every_event() {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url())
        .workers(1)
        .batch(batch_of(2))
        .encoding(Encoding::Ndjson)
        .template(Template::value_field(json!({"source": "app"}), "event"))
        .start()
        .unwrap();
    guard.client().send(json!({"i": 1})).unwrap();
    guard.client().send(json!({"i": 2})).unwrap();
    drop(guard);
    assert_eq!(
        String::from_utf8(sink.requests()[0].body.clone()).unwrap(),
        "{\"source\":\"app\",\"event\":{\"i\":1}}\n{\"source\":\"app\",\"event\":{\"i\":2}}\n"
    );
}

#[test]
fn invalid_template_fails_at_start() {
    let err = posthaste::builder("http://127.0.0.1:9/")
        .template(Template::string_field(json!("not an object"), "log"))
        .start()
        .unwrap_err();
    assert!(err.to_string().contains("template"), "{err}");
}

#[test]
fn gzip_round_trips_and_small_bodies_stay_plain() {
    let sink = Sink::ok();
    let guard =
        posthaste::builder(sink.url()).workers(1).batch(batch_of(50)).gzip(Gzip::new()).start().unwrap();
    let client = guard.client();
    let sent: Vec<Value> =
        (0..50).map(|i| json!({"i": i, "msg": "the same words again and again"})).collect();
    for e in &sent {
        client.send(e.clone()).unwrap();
    }
    // One small event alone in the next batch, below the 1 KiB threshold: plain.
    let small = client.send_tracked(json!({"small": true})).unwrap();
    drop(guard);
    assert!(small.wait(PATIENCE).unwrap().is_delivered());
    let reqs = sink.requests();
    let big = &reqs[0];
    assert_eq!(big.header("content-encoding"), Some("gzip"));
    assert_eq!(big.json(), Value::Array(sent), "decompressed body is the batch");
    assert!(big.wire_len * 4 < big.body.len(), "{} on the wire for {} bytes", big.wire_len, big.body.len());
    let last = reqs.last().unwrap();
    assert_eq!(last.header("content-encoding"), None);
    assert_eq!(last.json(), json!([{"small": true}]));
    assert_eq!(last.wire_len, last.body.len());
}

#[test]
fn gzip_counts_compressed_bytes_sent() {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url()).gzip(Gzip::new().min_bytes(0)).start().unwrap();
    guard.client().send(json!({"x": "y".repeat(5000)})).unwrap();
    assert!(sink.wait_for_events(1, PATIENCE));
    let report = guard.shutdown();
    let r = &sink.requests()[0];
    assert_eq!(report.stats.bytes_sent, r.wire_len as u64);
    assert!(r.wire_len < 200, "{}", r.wire_len);
}

#[test]
fn idempotency_key_is_stable_across_retries_and_unique_per_request() {
    // The first two attempts of the first request fail; everything else succeeds.
    let sink = Sink::with(|req| Reply::Status(if req.index < 2 { 503 } else { 200 }));
    let guard = posthaste::builder(sink.url())
        .workers(1)
        .retry(fast_retry().jitter(false))
        .idempotency(Idempotency::new())
        .start()
        .unwrap();
    let first = guard.client().send_tracked(json!({"n": 1})).unwrap();
    assert_eq!(first.wait(PATIENCE), Some(Outcome::Delivered { status: 200, attempts: 3 }));
    let second = guard.client().send_tracked(json!({"n": 2})).unwrap();
    assert!(second.wait(PATIENCE).unwrap().is_delivered());
    drop(guard);
    let reqs = sink.requests();
    assert_eq!(reqs.len(), 4);
    let keys: Vec<&str> = reqs.iter().map(|r| r.header("idempotency-key").unwrap()).collect();
    let attempts: Vec<&str> = reqs.iter().map(|r| r.header("x-attempt").unwrap()).collect();
    assert_eq!(keys[0], keys[1]);
    assert_eq!(keys[1], keys[2]);
    assert_ne!(keys[2], keys[3], "a new request gets a new key");
    assert_eq!(attempts, ["1", "2", "3", "1"]);
    for key in keys {
        assert_eq!(key.len(), 36);
        assert_eq!(&key[14..15], "4", "UUID version 4: {key}");
    }
}

#[test]
fn idempotency_headers_can_be_renamed_or_omitted() {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url())
        .idempotency(Idempotency::new().key_header("X-Request-Id").without_attempt_header())
        .start()
        .unwrap();
    guard.client().send(json!(1)).unwrap();
    assert!(sink.wait_for_events(1, PATIENCE));
    drop(guard);
    let r = &sink.requests()[0];
    assert_eq!(r.header("x-request-id").map(str::len), Some(36));
    assert_eq!(r.header("x-attempt"), None);
    assert_eq!(r.header("idempotency-key"), None);
}

#[test]
fn halves_of_a_split_batch_get_their_own_keys() {
    let sink = Sink::with(|req| Reply::Status(if req.events() > 1 { 413 } else { 200 }));
    let guard = posthaste::builder(sink.url())
        .workers(1)
        .batch(batch_of(2))
        .idempotency(Idempotency::new())
        .start()
        .unwrap();
    guard.client().send(json!(1)).unwrap();
    guard.client().send(json!(2)).unwrap();
    drop(guard);
    let keys: Vec<String> =
        sink.requests().iter().map(|r| r.header("idempotency-key").unwrap().to_string()).collect();
    assert_eq!(keys.len(), 3);
    assert!(keys[0] != keys[1] && keys[1] != keys[2] && keys[0] != keys[2], "{keys:?}");
}

/// The nice value of the calling thread (Linux: field 19 of /proc/thread-self/stat).
#[cfg(target_os = "linux")]
fn thread_nice() -> i32 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    rest.split(' ').nth(16).unwrap().parse().unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn low_priority_workers_raise_only_their_own_nice_value() {
    let sink = Sink::ok();
    let base = thread_nice();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    // on_outcome runs on the worker that delivered the event.
    let guard = posthaste::builder(sink.url())
        .workers(2)
        .worker_nice(7)
        .on_outcome(move |_, _| s.lock().unwrap().push(thread_nice()))
        .start()
        .unwrap();
    let r = guard.client().send_tracked(json!(1)).unwrap();
    assert!(r.wait(PATIENCE).unwrap().is_delivered());
    drop(guard);
    assert_eq!(*seen.lock().unwrap(), [(base + 7).min(19)]);
    assert_eq!(thread_nice(), base, "the caller's priority is untouched");
}

#[test]
fn sending_after_shutdown_uses_the_configured_envelope() {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url())
        .template(Template::string_field(json!({"bucket": "team-a"}), "log"))
        .after_shutdown(posthaste::AfterShutdown::SendSync(PATIENCE))
        .start()
        .unwrap();
    let client = guard.client();
    drop(guard.shutdown());
    // Delivered on this thread, after shutdown, in the same envelope the workers use.
    client.send(json!({"late": true})).unwrap();
    let body = sink.requests()[0].json();
    assert_eq!(body["bucket"], "team-a");
    let inner: Value = serde_json::from_str(body["log"].as_str().unwrap()).unwrap();
    assert_eq!(inner, json!({"late": true}));
    let s = client.stats();
    assert_eq!((s.submitted, s.delivered), (1, 1));
    assert_invariant(&s);
}
