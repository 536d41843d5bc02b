//! Batching: the event and byte limits, linger, the 413 split, events too large to send, and
//! the accounting of batches at the shutdown deadline.

mod support;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use posthaste::{Batch, Event, Outcome};
use serde_json::json;
use support::{assert_invariant, Reply, Sink, PATIENCE};

/// Long enough that only a full batch or shutdown ends a gather in these tests.
const LONG_LINGER: Duration = Duration::from_secs(30);

/// With NDJSON and `max_bytes(1000)`, an event that fills a batch on its own: it goes out at
/// once, without lingering (its estimate, 999 bytes plus a separator, is the whole limit).
fn filler() -> Event {
    sized(1_000_000, 999)
}

/// A pre-encoded event of exactly `len` bytes (its byte estimate is exact).
fn sized(i: usize, len: usize) -> Event {
    let head = format!(r#"{{"i":{i},"pad":""#);
    let pad = "x".repeat(len - head.len() - 2);
    let bytes = format!("{head}{pad}\"}}").into_bytes();
    assert_eq!(bytes.len(), len);
    Event::from_json_bytes(bytes).unwrap()
}

/// A sink that holds its first request until the returned sender sends (or drops), and
/// answers every later one with `then`. While the first request is held the test fills the
/// queue, so the batches that follow are decided by the limits alone.
fn gated(then: Reply) -> (Sink, Sender<()>) {
    let (release, gate) = crossbeam_channel::bounded::<()>(0);
    let gate = Mutex::new(gate);
    let sink = Sink::with(move |req| {
        if req.index == 0 {
            let _ = gate.lock().unwrap().recv_timeout(PATIENCE);
            return Reply::Status(200);
        }
        then.clone()
    });
    (sink, release)
}

fn events_per_request(sink: &Sink) -> Vec<u64> {
    sink.requests().iter().map(|r| r.events()).collect()
}

#[test]
fn a_full_batch_goes_at_once_and_the_rest_waits_for_the_linger_time() {
    let (sink, release) = gated(Reply::Status(200));
    let guard = posthaste::builder(sink.url())
        .workers(1)
        .batch(Batch::new().max_events(10).max_bytes(1000).linger(LONG_LINGER))
        .encoding(posthaste::Encoding::Ndjson)
        .start()
        .unwrap();
    let client = guard.client();
    client.send(filler()).unwrap();
    // The first batch is full with one event: it goes at once, and the sink holds it.
    assert!(sink.wait_for_requests(1, PATIENCE));
    for i in 0..25 {
        client.send(json!({"i": i})).unwrap();
    }
    drop(release);
    // Two full batches go without lingering; the last five wait for the 30 s linger time
    // (longer than this wait) or for shutdown, which sends them at once.
    assert!(sink.wait_for_events(21, PATIENCE));
    assert_eq!(events_per_request(&sink), [1, 10, 10]);
    let report = guard.shutdown();
    assert_eq!(report.stats.delivered, 26);
    assert_eq!(report.stats.requests, 4);
    assert_eq!(events_per_request(&sink), [1, 10, 10, 5]);
    let mut seen: Vec<i64> = sink.requests()[1..]
        .iter()
        .flat_map(|r| {
            let lines: Vec<serde_json::Value> = r
                .body
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| serde_json::from_slice(l).unwrap())
                .collect();
            lines
        })
        .map(|v| v["i"].as_i64().unwrap())
        .collect();
    seen.sort();
    assert_eq!(seen, (0..25).collect::<Vec<_>>());
    assert_invariant(&report.stats);
}

#[test]
fn a_batch_ends_before_max_bytes() {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url())
        .workers(1)
        .batch(Batch::new().max_events(100).max_bytes(1000).linger(LONG_LINGER))
        .start()
        .unwrap();
    let client = guard.client();
    for i in 0..20 {
        client.send(sized(i, 100)).unwrap();
    }
    // 100-byte events plus a separator each: nine fit in 1000 bytes, the tenth starts the next
    // batch. Shutdown ends the linger time.
    let report = guard.shutdown();
    assert_eq!(report.stats.delivered, 20);
    assert_eq!(events_per_request(&sink), [9, 9, 2]);
    for r in sink.requests() {
        assert!(r.body.len() <= 1000, "{} bytes", r.body.len());
    }
    assert_invariant(&report.stats);
}

#[test]
fn linger_waits_for_more_events_then_sends_what_it_has() {
    let sink = Sink::ok();
    let linger = Duration::from_secs(1);
    let guard = posthaste::builder(sink.url())
        .workers(1)
        .batch(Batch::new().max_events(1000).linger(linger))
        .start()
        .unwrap();
    let client = guard.client();
    let sent_at = Instant::now();
    for i in 0..3 {
        client.send(json!({"i": i})).unwrap();
    }
    // Not full, not shutting down: the linger time alone sends the batch.
    assert!(sink.wait_for_events(3, PATIENCE));
    let arrived = sink.requests()[0].at;
    assert_eq!(events_per_request(&sink), [3]);
    assert!(arrived.duration_since(sent_at) >= linger, "sent after {:?}", arrived.duration_since(sent_at));
    drop(guard);
}

#[test]
fn zero_linger_sends_what_is_queued_without_waiting() {
    let sink = Sink::ok();
    let guard =
        posthaste::builder(sink.url()).workers(1).batch(Batch::new().linger(Duration::ZERO)).start().unwrap();
    let receipt = guard.client().send_tracked(json!({"alone": true})).unwrap();
    assert_eq!(receipt.wait(PATIENCE), Some(Outcome::Delivered { status: 200, attempts: 1 }));
    assert_eq!(sink.requests()[0].json(), json!([{"alone": true}]));
    drop(guard);
}

#[test]
fn an_event_larger_than_max_bytes_is_rejected_unsent() {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url()).batch(Batch::new().max_bytes(100)).start().unwrap();
    let client = guard.client();
    let big = client.send_tracked(sized(1, 200)).unwrap();
    let small = client.send_tracked(sized(2, 50)).unwrap();
    match big.wait(PATIENCE) {
        Some(Outcome::Rejected { status: 413, attempts: 0, reason }) => {
            assert!(reason.contains("202 bytes") && reason.contains("max_bytes (100)"), "{reason}")
        }
        other => panic!("expected an unsent rejection, got {other:?}"),
    }
    assert!(small.wait(PATIENCE).unwrap().is_delivered());
    let report = guard.shutdown();
    assert_eq!((report.stats.rejected, report.stats.delivered, report.stats.requests), (1, 1, 1));
    assert_eq!(sink.requests().len(), 1);
    assert_eq!(sink.requests()[0].events(), 1);
    assert_invariant(&report.stats);
}

#[test]
fn a_413_splits_the_batch_in_halves_down_to_what_fits() {
    // The endpoint takes at most two events per request.
    let sink = Sink::with(|req| Reply::Status(if req.events() > 2 { 413 } else { 200 }));
    let guard = posthaste::builder(sink.url())
        .workers(1)
        .batch(Batch::new().max_events(8).linger(LONG_LINGER))
        .start()
        .unwrap();
    let client = guard.client();
    let receipts: Vec<_> = (0..8).map(|i| client.send_tracked(json!({"i": i})).unwrap()).collect();
    // Shutdown ends the linger time; the halves are sent while it drains.
    let report = guard.shutdown_timeout(PATIENCE);
    for r in &receipts {
        assert_eq!(r.try_outcome(), Some(Outcome::Delivered { status: 200, attempts: 1 }));
    }
    // 8 → 413; 4 → 413; 2, 2; 4 → 413; 2, 2.
    assert_eq!(events_per_request(&sink), [8, 4, 2, 2, 4, 2, 2]);
    assert_eq!((report.stats.delivered, report.stats.requests, report.stats.retries), (8, 7, 0));
    let mut delivered: Vec<i64> = sink
        .requests()
        .iter()
        .filter(|r| r.events() <= 2)
        .flat_map(|r| r.json().as_array().unwrap().clone())
        .map(|v| v["i"].as_i64().unwrap())
        .collect();
    delivered.sort();
    assert_eq!(delivered, (0..8).collect::<Vec<_>>(), "each event delivered once, in order of halves");
    assert_invariant(&report.stats);
}

#[test]
fn a_413_to_a_single_event_rejects_it() {
    let sink = Sink::with(|_| Reply::body(413, "too large"));
    let guard = posthaste::builder(sink.url())
        .workers(1)
        .batch(Batch::new().max_events(4).linger(LONG_LINGER))
        .start()
        .unwrap();
    let client = guard.client();
    let receipts: Vec<_> = (0..4).map(|i| client.send_tracked(json!(i)).unwrap()).collect();
    let report = guard.shutdown_timeout(PATIENCE);
    for r in &receipts {
        match r.try_outcome() {
            Some(Outcome::Rejected { status: 413, attempts: 1, reason }) => assert_eq!(reason, "too large"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(events_per_request(&sink), [4, 2, 1, 1, 2, 1, 1]);
    assert_eq!(report.stats.rejected, 4);
    assert_invariant(&report.stats);
}

#[test]
fn without_batching_a_413_rejects_and_nothing_is_gathered() {
    let sink = Sink::with(|req| Reply::Status(if req.json()["big"] == true { 413 } else { 200 }));
    let guard = posthaste::builder(sink.url()).workers(1).start().unwrap();
    let client = guard.client();
    let big = client.send_tracked(json!({"big": true})).unwrap();
    for i in 0..5 {
        client.send(json!({"i": i})).unwrap();
    }
    assert!(matches!(big.wait(PATIENCE), Some(Outcome::Rejected { status: 413, attempts: 1, .. })));
    let report = guard.shutdown();
    assert_eq!(events_per_request(&sink), [1; 6]);
    assert!(sink.requests().iter().all(|r| r.json().is_object()), "one document per request");
    assert_eq!((report.stats.delivered, report.stats.rejected), (5, 1));
}

#[test]
fn at_the_deadline_a_batch_on_the_wire_is_abandoned_and_the_rest_cancelled() {
    let (sink, release) = gated(Reply::BlackHole);
    let guard = posthaste::builder(sink.url())
        .workers(1)
        .batch(Batch::new().max_events(100).max_bytes(1000).linger(LONG_LINGER))
        .encoding(posthaste::Encoding::Ndjson)
        .shutdown_timeout(Duration::from_millis(200))
        .start()
        .unwrap();
    let client = guard.client();
    client.send(filler()).unwrap();
    assert!(sink.wait_for_requests(1, PATIENCE));
    for i in 0..20 {
        client.send(sized(i, 100)).unwrap();
    }
    drop(release);
    // Nine events are on the wire, never answered; the tenth waits in the worker's slot for
    // the next batch, ten more in the queue.
    assert!(sink.wait_for_requests(2, PATIENCE));
    let report = guard.shutdown();
    assert!(report.deadline_reached);
    assert_eq!(report.stats.delivered, 1, "{:?}", report.stats);
    assert_eq!(report.stats.abandoned, 9, "{:?}", report.stats);
    assert_eq!(report.stats.cancelled, 11, "{:?}", report.stats);
    assert_eq!(report.stats.submitted, 21);
    assert_eq!((report.stats.queued, report.stats.in_flight), (0, 0));
    assert_invariant(&report.stats);
}

#[test]
fn many_events_in_few_requests_all_accounted() {
    let sink = Sink::counting(|_| Reply::Status(200));
    let guard = posthaste::builder(sink.url())
        .workers(2)
        .queue_capacity(50_000)
        .batch(Batch::new().max_events(500))
        .encoding(posthaste::Encoding::Ndjson)
        .start()
        .unwrap();
    let client = guard.client();
    for i in 0..20_000 {
        client.send(json!({"i": i, "msg": "hello"})).unwrap();
    }
    let report = guard.shutdown_timeout(PATIENCE);
    assert_eq!(report.stats.delivered, 20_000, "{report}");
    assert_eq!(sink.events(), 20_000);
    // How full batches get depends on how fast this thread produces; 10 events per request on
    // average is far from one per request whatever the machine.
    assert!(report.stats.requests <= 2_000, "{} requests", report.stats.requests);
    assert_invariant(&report.stats);
}

#[test]
fn invalid_batch_options_fail_at_start() {
    let err =
        posthaste::builder("http://127.0.0.1:9/").batch(Batch::new().max_events(0)).start().unwrap_err();
    assert!(err.to_string().contains("batch.max_events"), "{err}");
    let err = posthaste::builder("http://127.0.0.1:9/").worker_nice(40).start().unwrap_err();
    assert!(err.to_string().contains("worker_nice"), "{err}");
}

#[test]
fn a_retried_batch_keeps_its_idempotency_key() {
    let (release, gate) = crossbeam_channel::bounded::<()>(0);
    let gate = Mutex::new(gate);
    // The first request is held while the batch queues; the batch's first attempt gets 503.
    let sink = Sink::with(move |req| match req.index {
        0 => {
            let _ = gate.lock().unwrap().recv_timeout(PATIENCE);
            Reply::Status(200)
        }
        1 => Reply::Status(503),
        _ => Reply::Status(200),
    });
    let guard = posthaste::builder(sink.url())
        .workers(1)
        .retry(support::fast_retry().jitter(false))
        .batch(Batch::new().max_events(3).linger(Duration::from_secs(1)))
        .idempotency(posthaste::Idempotency::new())
        .start()
        .unwrap();
    let client = guard.client();
    client.send(json!("first")).unwrap();
    assert!(sink.wait_for_requests(1, PATIENCE));
    let receipts: Vec<_> = (0..3).map(|i| client.send_tracked(json!(i)).unwrap()).collect();
    drop(release);
    for r in &receipts {
        assert_eq!(r.wait(PATIENCE), Some(Outcome::Delivered { status: 200, attempts: 2 }));
    }
    drop(guard);
    let reqs = sink.requests();
    assert_eq!(reqs.iter().map(|r| r.events()).collect::<Vec<_>>(), [1, 3, 3]);
    let key = |i: usize| reqs[i].header("idempotency-key").unwrap().to_string();
    assert_eq!(key(1), key(2), "a retry carries its request's key");
    assert_ne!(key(0), key(1));
    assert_eq!(reqs[1].header("x-attempt"), Some("1"));
    assert_eq!(reqs[2].header("x-attempt"), Some("2"));
    assert_eq!(reqs[1].body, reqs[2].body, "the retry sends the same body");
}
