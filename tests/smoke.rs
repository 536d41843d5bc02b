//! Delivery basics: events arrive as sent, with the configured headers, and are accounted.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use posthaste::{Outcome, SendError};
use serde_json::json;
use support::{assert_invariant, Sink, PATIENCE};

#[test]
fn events_arrive_with_headers_and_are_delivered() {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url())
        .bearer_auth("tok-123")
        .header("X-Team", "a")
        .workers(2)
        .start()
        .unwrap();
    let client = guard.client();
    for i in 0..50 {
        client.send(json!({"i": i})).unwrap();
    }
    let receipt = client.send_tracked(json!({"last": true})).unwrap();
    assert_eq!(receipt.wait(PATIENCE), Some(Outcome::Delivered { status: 200, attempts: 1 }));
    assert!(sink.wait_for_events(51, PATIENCE));
    let report = guard.shutdown();
    assert_eq!(report.stats.delivered, 51);
    assert_eq!(report.stats.requests, 51);
    assert_eq!(report.stats.retries, 0);
    assert!(!report.deadline_reached);
    assert_eq!(report.detached_workers, 0);
    assert_invariant(&report.stats);

    let reqs = sink.requests();
    assert_eq!(reqs.len(), 51);
    let mut seen: Vec<i64> = reqs.iter().filter_map(|r| r.json()["i"].as_i64()).collect();
    seen.sort();
    assert_eq!(seen, (0..50).collect::<Vec<_>>());
    for r in &reqs {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/ingest");
        assert_eq!(r.header("authorization"), Some("Bearer tok-123"));
        assert_eq!(r.header("x-team"), Some("a"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(r.header("user-agent").unwrap().starts_with("posthaste/"));
    }
    // Keep-alive: two workers, a handful of connections at most, not one per request.
    assert!(sink.connections() <= 4, "{} connections", sink.connections());
}

#[test]
fn method_content_type_basic_auth_and_serialize() {
    #[derive(serde::Serialize)]
    struct Tick {
        n: u32,
    }
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url())
        .method("PUT")
        .content_type("application/vnd.x+json")
        .basic_auth("Aladdin", "open sesame")
        .start()
        .unwrap();
    guard.client().send_serialize(&Tick { n: 7 }).unwrap();
    assert!(sink.wait_for_events(1, PATIENCE));
    drop(guard);
    let r = &sink.requests()[0];
    assert_eq!(r.method, "PUT");
    assert_eq!(r.body, br#"{"n":7}"#);
    assert_eq!(r.header("content-type"), Some("application/vnd.x+json"));
    assert_eq!(r.header("authorization"), Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="));
}

#[test]
fn on_outcome_sees_every_event_once() {
    let sink = Sink::with(|req| {
        if req.json()["bad"] == true {
            support::Reply::Status(400)
        } else {
            support::Reply::Status(200)
        }
    });
    let delivered = Arc::new(AtomicU64::new(0));
    let rejected = Arc::new(Mutex::new(Vec::new()));
    let (d, r) = (delivered.clone(), rejected.clone());
    let guard = posthaste::builder(sink.url())
        .on_outcome(move |event, outcome| match outcome {
            Outcome::Delivered { .. } => {
                d.fetch_add(1, Ordering::SeqCst);
            }
            Outcome::Rejected { status, .. } => r.lock().unwrap().push((*status, event.as_value().cloned())),
            other => panic!("unexpected {other:?}"),
        })
        .start()
        .unwrap();
    let client = guard.client();
    for i in 0..20 {
        client.send(json!({"i": i, "bad": i % 5 == 0})).unwrap();
    }
    let report = guard.shutdown();
    assert_eq!(report.stats.delivered, 16);
    assert_eq!(report.stats.rejected, 4);
    assert_eq!(delivered.load(Ordering::SeqCst), 16);
    let rejected = rejected.lock().unwrap();
    assert_eq!(rejected.len(), 4);
    assert!(rejected.iter().all(|(s, e)| *s == 400 && e.as_ref().unwrap()["bad"] == true));
}

#[test]
fn send_after_shutdown_hands_the_event_back() {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url()).start().unwrap();
    let client = guard.client();
    let report = guard.shutdown();
    assert!(client.is_closed());
    match client.send(json!({"late": 1})) {
        Err(SendError::Closed(event)) => assert_eq!(event.into_value(), json!({"late": 1})),
        other => panic!("expected Closed, got {other:?}"),
    }
    assert!(client.send_tracked(json!(1)).unwrap_err().is_closed());
    // Not counted: the caller has it back.
    assert_eq!(client.stats().submitted, report.stats.submitted);
    assert_eq!(report.stats.submitted, 0);
}

#[test]
fn pre_encoded_events_are_sent_verbatim() {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url()).start().unwrap();
    let raw = br#"{"pre":"encoded","n":[1,2,3]}"#.to_vec();
    guard.client().send(posthaste::Event::from_json_bytes(raw.clone()).unwrap()).unwrap();
    assert!(sink.wait_for_events(1, PATIENCE));
    drop(guard);
    assert_eq!(sink.requests()[0].body, raw);
}

#[test]
fn worker_threads_are_named_and_joined() {
    let sink = Sink::with(|_| {
        let name = std::thread::current().name().map(str::to_string);
        assert!(name.is_some());
        support::Reply::Status(200)
    });
    let names = Arc::new(Mutex::new(Vec::new()));
    let n = names.clone();
    let guard = posthaste::builder(sink.url())
        .workers(3)
        .on_outcome(move |_, _| {
            n.lock().unwrap().push(std::thread::current().name().unwrap_or("").to_string())
        })
        .start()
        .unwrap();
    for i in 0..30 {
        guard.client().send(json!(i)).unwrap();
    }
    let report = guard.shutdown();
    assert_eq!(report.stats.delivered, 30);
    assert_eq!(report.detached_workers, 0);
    assert!(names.lock().unwrap().iter().all(|n| n.starts_with("posthaste-worker-")));
}
