//! The accounting invariant under concurrent load, and agreement between the counters, the
//! receipts and the `on_outcome` callback.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use posthaste::Outcome;
use serde_json::json;
use support::{assert_invariant, fast_retry, Reply, Sink};

#[test]
fn invariant_holds_in_every_snapshot_under_load() {
    // A mixed endpoint: some transient failures, some rejections, mostly success.
    let sink = Sink::counting(|req| match req.index % 20 {
        0 => Reply::Status(503),
        7 => Reply::Status(400),
        13 => Reply::Close,
        _ => Reply::Status(200),
    });
    let seen: Arc<Mutex<HashMap<&'static str, u64>>> = Arc::default();
    let s2 = seen.clone();
    let guard = posthaste::builder(sink.url())
        .workers(3)
        .queue_capacity(300)
        .retry(fast_retry().max_attempts(3))
        .shutdown_timeout(Duration::from_secs(30))
        .on_outcome(move |_, outcome| {
            let kind = match outcome {
                Outcome::Delivered { .. } => "delivered",
                Outcome::Rejected { .. } => "rejected",
                Outcome::Failed { .. } => "failed",
                Outcome::Dropped => "dropped",
                Outcome::Cancelled => "cancelled",
                Outcome::Abandoned => "abandoned",
                _ => "other",
            };
            *s2.lock().unwrap().entry(kind).or_default() += 1;
        })
        .start()
        .unwrap();

    let done = Arc::new(AtomicBool::new(false));
    // The observer and the producers start together, so snapshots are taken under load.
    let start = Arc::new(Barrier::new(5));
    let observer = {
        let client = guard.client();
        let (done, start) = (done.clone(), start.clone());
        thread::spawn(move || {
            start.wait();
            let mut snapshots = 0u64;
            let mut last_submitted = 0;
            // Bounded: at least 1,000 snapshots, then until the producers finish, 200,000 at most.
            while (snapshots < 1_000 || !done.load(Ordering::SeqCst)) && snapshots < 200_000 {
                let s = client.stats();
                assert_invariant(&s);
                assert!(s.submitted >= last_submitted, "counters only grow");
                last_submitted = s.submitted;
                snapshots += 1;
            }
            snapshots
        })
    };
    let producers: Vec<_> = (0..4)
        .map(|p| {
            let client = guard.client();
            let start = start.clone();
            thread::spawn(move || {
                start.wait();
                let mut tracked = Vec::new();
                for i in 0..5_000u32 {
                    if i % 500 == 0 {
                        if let Ok(r) = client.send_tracked(json!({"p": p, "i": i})) {
                            tracked.push(r);
                        }
                    } else {
                        let _ = client.send(json!({"p": p, "i": i}));
                    }
                }
                tracked
            })
        })
        .collect();
    let receipts: Vec<_> = producers.into_iter().flat_map(|h| h.join().unwrap()).collect();
    done.store(true, Ordering::SeqCst);
    assert!(observer.join().unwrap() >= 1_000);

    let report = guard.shutdown();
    let s = report.stats;
    assert_invariant(&s);
    assert_eq!(s.submitted, 20_000);
    assert_eq!((s.queued, s.in_flight), (0, 0));
    assert_eq!(s.settled(), 20_000);
    assert!(s.delivered > 0 && s.rejected > 0 && s.dropped > 0, "{s:?}");
    // Every tracked event has an outcome, and the callback saw exactly what the counters say.
    assert!(receipts.iter().all(|r| r.try_outcome().is_some()));
    let seen = seen.lock().unwrap();
    let get = |k| seen.get(k).copied().unwrap_or(0);
    assert_eq!(get("delivered"), s.delivered);
    assert_eq!(get("rejected"), s.rejected);
    assert_eq!(get("failed"), s.failed);
    assert_eq!(get("dropped"), s.dropped);
    assert_eq!(get("cancelled"), s.cancelled);
    assert_eq!(get("abandoned"), s.abandoned);
    assert_eq!(get("other"), 0);
    // The sink saw every delivered event (a closed connection is never a delivery).
    assert_eq!(sink.events(), s.delivered);
}

#[test]
fn a_panicking_callback_does_not_stop_delivery() {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url()).on_outcome(|_, _| panic!("callback bug")).start().unwrap();
    let client = guard.client();
    let receipts: Vec<_> = (0..10).map(|i| client.send_tracked(json!(i)).unwrap()).collect();
    for r in &receipts {
        assert!(r.wait(support::PATIENCE).unwrap().is_delivered());
    }
    assert_eq!(guard.shutdown().stats.delivered, 10);
}
