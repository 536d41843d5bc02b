//! The retry schedule: a failing event waits for its next attempt without holding a worker,
//! and waiting retries stay inside the queue's bounds. Library defaults throughout, except the
//! worker count and queue capacity the scenarios are about.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use posthaste::{Circuit, Outcome, SendError};
use serde_json::json;
use support::{assert_invariant, Reply, Sink, PATIENCE};

#[test]
fn a_failing_event_never_holds_the_worker() {
    // The event marked "slow" fails until every other event has arrived. A worker that waited
    // out its backoff holding it would deliver nothing else meanwhile: it would fail for good.
    const OTHERS: u64 = 50;
    let others = Arc::new(AtomicU64::new(0));
    let sink = {
        let others = others.clone();
        Sink::with(move |req| {
            if req.json()["slow"] == json!(true) {
                if others.load(Ordering::SeqCst) < OTHERS {
                    return Reply::Status(503);
                }
                return Reply::Status(200);
            }
            others.fetch_add(1, Ordering::SeqCst);
            Reply::Status(200)
        })
    };
    let guard = posthaste::builder(sink.url()).workers(1).start().unwrap();
    let client = guard.client();
    let slow = client.send_tracked(json!({"slow": true})).unwrap();
    for i in 0..OTHERS {
        client.send(json!({"i": i})).unwrap();
    }
    match slow.wait(PATIENCE) {
        Some(Outcome::Delivered { attempts, .. }) => assert!(attempts >= 2, "{attempts}"),
        other => panic!("the slow event: {other:?}"),
    }
    assert!(guard.flush(PATIENCE));
    let report = guard.shutdown();
    assert_eq!(report.stats.delivered, OTHERS + 1, "{:?}", report.stats);
    assert_invariant(&report.stats);
}

#[test]
fn waiting_retries_stay_inside_the_queue_capacity() {
    let down = Arc::new(AtomicBool::new(true));
    let sink = {
        let down = down.clone();
        Sink::with(move |_| if down.load(Ordering::SeqCst) { Reply::Status(503) } else { Reply::Status(200) })
    };
    let guard = posthaste::builder(sink.url()).workers(1).queue_capacity(10).start().unwrap();
    let client = guard.client();
    for i in 0..10 {
        client.send(json!({"i": i})).unwrap();
    }
    // Every event is queued or waiting on the schedule once the breaker has opened (no
    // worker holds one then): together they fill the capacity.
    let until = Instant::now() + PATIENCE;
    loop {
        let s = client.stats();
        if s.circuit == Circuit::Open && s.queued + s.scheduled == 10 {
            assert!(s.scheduled > 0, "{s:?}");
            break;
        }
        assert!(Instant::now() < until, "never settled into the open state: {s:?}");
        std::thread::yield_now();
    }
    match client.send(json!({"i": 10})) {
        Err(SendError::Full(_)) => {}
        other => panic!("an 11th event fits in a queue of 10 with retries waiting: {other:?}"),
    }
    // Back up: everything accepted arrives.
    down.store(false, Ordering::SeqCst);
    assert!(guard.flush(PATIENCE), "{:?}", guard.stats());
    let report = guard.shutdown();
    assert_eq!((report.stats.delivered, report.stats.dropped), (10, 1), "{:?}", report.stats);
    assert_invariant(&report.stats);
}

#[test]
fn retries_waiting_at_the_deadline_are_cancelled_and_counted() {
    let sink = Sink::with(|_| Reply::Status(503));
    let guard = posthaste::builder(sink.url()).workers(1).start().unwrap();
    let client = guard.client();
    let receipt = client.send_tracked(json!({"n": 1})).unwrap();
    let until = Instant::now() + PATIENCE;
    while client.stats().scheduled == 0 {
        assert!(Instant::now() < until, "{:?}", client.stats());
        std::thread::yield_now();
    }
    // Shutdown sends a waiting retry at once, without further retries: it fails (not retried).
    let report = guard.shutdown();
    match receipt.try_outcome() {
        Some(Outcome::Failed { reason, .. }) => assert!(reason.contains("shutting down"), "{reason}"),
        Some(Outcome::Cancelled) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!((report.stats.queued, report.stats.in_flight, report.stats.scheduled), (0, 0, 0));
    assert_invariant(&report.stats);
}
