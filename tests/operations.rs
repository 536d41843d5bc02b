//! Operating it: lifecycle events and metrics, seen from a program using the defaults.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use posthaste::LifecycleEvent;
use serde_json::json;
use support::{assert_invariant, Reply, Sink, PATIENCE};

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let until = Instant::now() + PATIENCE;
    while !ok() {
        assert!(Instant::now() < until, "never happened: {what}");
        std::thread::yield_now();
    }
}

fn name(e: &LifecycleEvent) -> &'static str {
    match e {
        LifecycleEvent::Started { .. } => "started",
        LifecycleEvent::CircuitOpened { .. } => "opened",
        LifecycleEvent::CircuitClosed { .. } => "closed",
        LifecycleEvent::Spilled { .. } => "spilled",
        LifecycleEvent::Replayed { .. } => "replayed",
        LifecycleEvent::Report(_) => "report",
        LifecycleEvent::ShutDown(_) => "shut down",
        _ => "other",
    }
}

#[test]
fn lifecycle_events_follow_the_endpoint_and_the_guard() {
    let down = Arc::new(AtomicBool::new(true));
    let sink = {
        let down = down.clone();
        Sink::with(move |_| if down.load(Ordering::SeqCst) { Reply::Status(503) } else { Reply::Status(200) })
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let guard = {
        let seen = seen.clone();
        posthaste::builder(sink.url())
            .on_lifecycle(move |e| {
                seen.lock().unwrap().push(name(e));
                if let LifecycleEvent::Report(m) = e {
                    assert_eq!(m.workers, 2);
                }
            })
            .report_interval(Duration::from_millis(20))
            .start()
            .unwrap()
    };
    let names = || seen.lock().unwrap().clone();
    assert_eq!(names().first(), Some(&"started"));
    let client = guard.client();
    for i in 0..10 {
        client.send(json!({"i": i})).unwrap();
    }
    wait_until("the circuit opens", || names().contains(&"opened"));
    down.store(false, Ordering::SeqCst);
    wait_until("the circuit closes", || names().contains(&"closed"));
    wait_until("a periodic report", || names().contains(&"report"));
    assert!(guard.flush(PATIENCE));
    let report = guard.shutdown();
    assert_eq!(names().last(), Some(&"shut down"));
    assert_eq!(report.stats.delivered, 10);
    assert_invariant(&report.stats);
}

#[test]
fn a_panicking_lifecycle_callback_is_counted_and_ignored() {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url()).on_lifecycle(|_| panic!("callback bug")).start().unwrap();
    guard.client().send(json!(1)).unwrap();
    assert!(guard.flush(PATIENCE));
    let report = guard.shutdown();
    assert_eq!(report.stats.delivered, 1);
    assert!(report.stats.panics >= 1, "{:?}", report.stats);
}

#[test]
fn metrics_show_service_time_load_and_rates() {
    let sink = Sink::with(|_| Reply::Delay(Duration::from_millis(5), Box::new(Reply::Status(200))));
    let guard = posthaste::builder(sink.url()).start().unwrap();
    let client = guard.client();
    let idle = client.metrics();
    assert_eq!((idle.workers, idle.busy_workers, idle.queued), (2, 0, 0));
    for i in 0..200 {
        client.send(json!({"i": i})).unwrap();
    }
    assert!(guard.flush(PATIENCE));
    let m = client.metrics();
    // Every request took at least the sink's 5 ms (histogram buckets are within 19 %).
    assert!(m.service_mean >= Duration::from_millis(4), "{m}");
    assert!(m.service_p99 >= m.service_mean, "{m}");
    assert!(m.wait_mean > Duration::ZERO, "sampled waits: {m}");
    assert!(m.average_load > 0.0 && m.average_load <= 1.0, "{m}");
    assert!(m.departure_rate > 0.0 && m.arrival_rate > 0.0, "{m}");
    assert_eq!((m.queued, m.busy_workers), (0, 0), "{m}");
    let _ = guard.shutdown();
}
