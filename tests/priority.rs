//! Priority lanes: high-priority events are taken first, have their own capacity, and under
//! overflow push normal events out before they are dropped themselves.

mod support;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use posthaste::{Event, Outcome, Priority, SendError};
use serde_json::{json, Value};
use support::{assert_invariant, Reply, Sink, PATIENCE};

/// A sink whose first request waits until the test lets it go, so that a single worker is
/// busy while the test fills the queue.
fn held_sink() -> (Sink, mpsc::Sender<()>) {
    let (go, gate) = mpsc::channel::<()>();
    let gate = Mutex::new(Some(gate));
    let sink = Sink::with(move |req| {
        if req.index == 0 {
            if let Some(gate) = gate.lock().unwrap().take() {
                let _ = gate.recv_timeout(PATIENCE);
            }
        }
        Reply::Status(200)
    });
    (sink, go)
}

fn tags(sink: &Sink) -> Vec<String> {
    sink.requests().iter().map(|r| r.json()["tag"].as_str().unwrap_or("?").to_string()).collect()
}

/// An event of exactly 100 bytes of JSON.
fn sized(tag: &str) -> Event {
    let pad = "x".repeat(100 - format!(r#"{{"tag":"{tag}","pad":""}}"#).len());
    Event::from_json_bytes(format!(r#"{{"tag":"{tag}","pad":"{pad}"}}"#).into_bytes()).unwrap()
}

#[test]
fn high_priority_events_are_taken_first() {
    let (sink, go) = held_sink();
    let guard = posthaste::builder(sink.url()).workers(1).start().unwrap();
    let client = guard.client();
    let first = client.send_tracked(json!({"tag": "first"})).unwrap();
    // Wait until the worker holds it at the sink (it is in flight, nothing queued).
    assert!(sink.wait_for_requests(1, PATIENCE), "the first event reached the sink");
    for i in 0..3 {
        client.send(json!({"tag": format!("n{i}")})).unwrap();
    }
    for i in 0..2 {
        client.send_with(json!({"tag": format!("h{i}")}), Priority::High).unwrap();
    }
    go.send(()).unwrap();
    assert!(first.wait(PATIENCE).is_some_and(|o| o.is_delivered()));
    assert!(guard.flush(PATIENCE));
    assert_eq!(tags(&sink), ["first", "h0", "h1", "n0", "n1", "n2"]);
    assert_invariant(&guard.shutdown().stats);
}

#[test]
fn under_overflow_normal_events_are_dropped_before_high_ones() {
    let (sink, go) = held_sink();
    let dropped = Arc::new(Mutex::new(Vec::new()));
    let guard = {
        let dropped = dropped.clone();
        posthaste::builder(sink.url())
            .workers(1)
            .queue_bytes(500)
            .priority_capacity(2)
            .on_outcome(move |event, outcome| {
                if *outcome == Outcome::Dropped {
                    let v: Value = serde_json::from_slice(&event.to_json_bytes()).unwrap();
                    dropped.lock().unwrap().push(v["tag"].as_str().unwrap().to_string());
                }
            })
            .start()
            .unwrap()
    };
    let client = guard.client();
    client.send(sized("first")).unwrap();
    assert!(sink.wait_for_requests(1, PATIENCE), "the first event reached the sink");
    // The byte budget holds five of these.
    for i in 0..5 {
        client.send(sized(&format!("n{i}"))).unwrap();
    }
    assert!(matches!(client.send(sized("n5")), Err(SendError::Full(_))), "full for normal events");
    // High-priority events make room by dropping the oldest normal ones…
    client.send_with(sized("h0"), Priority::High).unwrap();
    client.send_with(sized("h1"), Priority::High).unwrap();
    // …until their own lane is full: then the overflow policy (DropNewest) applies to them.
    assert!(matches!(client.send_with(sized("h2"), Priority::High), Err(SendError::Full(_))));
    assert_eq!(*dropped.lock().unwrap(), ["n5", "n0", "n1", "h2"]);
    go.send(()).unwrap();
    assert!(guard.flush(PATIENCE));
    assert_eq!(tags(&sink), ["first", "h0", "h1", "n2", "n3", "n4"]);
    let s = guard.shutdown().stats;
    assert_eq!((s.submitted, s.delivered, s.dropped), (10, 6, 4), "{s:?}");
    assert_invariant(&s);
}

#[cfg(feature = "tracing")]
#[test]
fn errors_logged_through_the_tracing_layer_take_the_high_lane() {
    use tracing_subscriber::layer::SubscriberExt;
    let (sink, go) = held_sink();
    let guard = posthaste::builder(sink.url()).workers(1).start().unwrap();
    let first = guard.client().send_tracked(json!({"tag": "first"})).unwrap();
    assert!(sink.wait_for_requests(1, PATIENCE), "the first event reached the sink");
    let layer = posthaste::tracing::Layer::new(guard.client());
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info!(tag = "i0", "ordinary");
        tracing::info!(tag = "i1", "ordinary");
        tracing::error!(tag = "e0", "something broke");
    });
    go.send(()).unwrap();
    assert!(first.wait(PATIENCE).is_some_and(|o| o.is_delivered()));
    assert!(guard.flush(PATIENCE));
    assert_eq!(tags(&sink), ["first", "e0", "i0", "i1"]);
    assert_invariant(&guard.shutdown().stats);
}
