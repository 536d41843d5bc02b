//! Shutdown: one deadline, never a hang, every event accounted.

mod support;

use std::time::{Duration, Instant};

use posthaste::{Outcome, Overflow, Retry};
use serde_json::json;
use support::{assert_invariant, Reply, Sink, PATIENCE};

#[test]
fn black_holed_endpoint_with_100k_queued_returns_within_deadline() {
    let sink = Sink::counting(|_| Reply::BlackHole);
    let timeout = Duration::from_millis(500);
    let guard = posthaste::builder(sink.url())
        .workers(2)
        .queue_capacity(100_000)
        .shutdown_timeout(timeout)
        .start()
        .unwrap();
    let client = guard.client();
    for i in 0..100_000u32 {
        client.send(json!({"i": i})).unwrap();
    }
    // Both workers are stuck in a request the sink will never answer.
    assert!(sink.wait_for_requests(2, PATIENCE));
    let began = Instant::now();
    let report = guard.shutdown();
    let took = began.elapsed();
    eprintln!("shutdown with 100,000 queued, black-holed: {took:?} for a {timeout:?} deadline");
    assert!(took <= timeout + Duration::from_millis(100), "shutdown took {took:?}");
    let s = report.stats;
    assert_eq!(s.submitted, 100_000);
    assert_eq!(s.abandoned, 2, "{s:?}");
    assert_eq!(s.cancelled, 99_998, "{s:?}");
    assert_eq!((s.queued, s.in_flight), (0, 0));
    assert_invariant(&s);
    assert!(report.deadline_reached);
    assert_eq!(report.detached_workers, 2);
    // Settled for good: a detached worker finishing later changes nothing.
    assert_eq!(client.stats().settled(), 100_000);
}

#[test]
fn queued_events_are_delivered_before_the_deadline() {
    let sink = Sink::counting(|_| Reply::Status(200));
    let guard = posthaste::builder(sink.url()).workers(2).shutdown_timeout(PATIENCE).start().unwrap();
    let client = guard.client();
    for i in 0..2_000 {
        client.send(json!({"i": i})).unwrap();
    }
    let report = guard.shutdown();
    assert_eq!(report.stats.delivered, 2_000);
    assert!(!report.deadline_reached);
    assert_eq!(sink.events(), 2_000);
    assert_invariant(&report.stats);
}

#[test]
fn backoff_wakes_at_shutdown_and_makes_one_last_attempt() {
    // Always 503: a long backoff would keep the worker asleep for a minute.
    let sink = Sink::with(|_| Reply::Status(503));
    let guard = posthaste::builder(sink.url())
        .workers(1)
        .retry(
            Retry::new()
                .initial_delay(Duration::from_secs(60))
                .max_delay(Duration::from_secs(60))
                .jitter(false),
        )
        .shutdown_timeout(Duration::from_secs(10))
        .start()
        .unwrap();
    let receipt = guard.client().send_tracked(json!({"x": 1})).unwrap();
    assert!(sink.wait_for_requests(1, PATIENCE));
    let began = Instant::now();
    let report = guard.shutdown();
    // Woken at once, not after 60 s, nor at the 10 s deadline (which would leave it Abandoned).
    // Shutdown may begin before or after the worker read the 503: either it is woken from
    // the backoff for one last attempt (2 requests), or it never sleeps (1 request).
    assert!(began.elapsed() < Duration::from_secs(5), "{:?}", began.elapsed());
    match receipt.try_outcome() {
        Some(Outcome::Failed { reason, attempts }) => {
            assert!(reason.contains("shutting down"), "{reason}");
            assert_eq!(u64::from(attempts), sink.count());
            assert!(attempts <= 2);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(report.stats.failed, 1);
    assert!(!report.deadline_reached);
}

#[test]
fn zero_timeout_cancels_everything_not_yet_sent() {
    let sink = Sink::counting(|_| Reply::BlackHole);
    let guard = posthaste::builder(sink.url()).workers(1).shutdown_timeout(Duration::ZERO).start().unwrap();
    let client = guard.client();
    let first = client.send_tracked(json!(0)).unwrap();
    assert!(sink.wait_for_requests(1, PATIENCE));
    let rest: Vec<_> = (1..10).map(|i| client.send_tracked(json!(i)).unwrap()).collect();
    let report = guard.shutdown();
    assert_eq!(first.try_outcome(), Some(Outcome::Abandoned));
    assert!(rest.iter().all(|r| r.try_outcome() == Some(Outcome::Cancelled)));
    assert_eq!((report.stats.abandoned, report.stats.cancelled), (1, 9));
}

#[test]
fn drop_shuts_down_and_later_shutdowns_report_the_same() {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url()).start().unwrap();
    let client = guard.client();
    client.send(json!(1)).unwrap();
    drop(guard);
    assert!(client.is_closed());
    assert_eq!(client.stats().delivered, 1);
}

#[test]
fn blocked_producer_wakes_with_closed_at_shutdown() {
    let sink = Sink::counting(|_| Reply::BlackHole);
    let guard = posthaste::builder(sink.url())
        .workers(1)
        .queue_capacity(1)
        .overflow(Overflow::Block)
        .shutdown_timeout(Duration::from_millis(200))
        .start()
        .unwrap();
    let client = guard.client();
    client.send(json!(0)).unwrap(); // taken by the worker, black-holed
    assert!(sink.wait_for_requests(1, PATIENCE));
    client.send(json!(1)).unwrap(); // fills the queue
    let producer = {
        let client = client.clone();
        std::thread::spawn(move || client.send(json!(2)))
    };
    // The producer is blocked (the queue stays full); shutting down must release it.
    let report = guard.shutdown();
    let result = producer.join().unwrap();
    assert!(result.unwrap_err().is_closed());
    assert_eq!(report.stats.submitted, 2);
    assert_eq!((report.stats.abandoned, report.stats.cancelled), (1, 1));
}

#[test]
fn endpoint_that_refuses_connections_does_not_delay_shutdown() {
    let url = format!("http://127.0.0.1:{}/x", support::closed_port());
    let guard = posthaste::builder(url)
        .retry(Retry::new().initial_delay(Duration::from_secs(30)).max_delay(Duration::from_secs(30)))
        .shutdown_timeout(Duration::from_secs(5))
        .start()
        .unwrap();
    let client = guard.client();
    for i in 0..100 {
        client.send(json!(i)).unwrap();
    }
    let began = Instant::now();
    let report = guard.shutdown();
    assert!(began.elapsed() < Duration::from_secs(5));
    assert_eq!(report.stats.failed + report.stats.cancelled, 100, "{:?}", report.stats);
    assert_invariant(&report.stats);
}

#[test]
fn flush_waits_for_retries_then_shutdown_has_nothing_left() {
    let sink = Sink::with(|req| if req.index < 6 { Reply::Status(503) } else { Reply::Status(200) });
    // Six failures in a row open the circuit breaker (5 requests, all failed); flush waits
    // through its first probe (within a second). Ten attempts: however the six failures fall
    // on the events, none runs out.
    let guard = posthaste::builder(sink.url())
        .workers(2)
        .retry(support::fast_retry().max_attempts(10))
        .start()
        .unwrap();
    let client = guard.client();
    for i in 0..20 {
        client.send(json!(i)).unwrap();
    }
    assert!(guard.flush(PATIENCE));
    let s = guard.stats();
    assert_eq!((s.delivered, s.queued, s.in_flight), (20, 0, 0));
    assert!(s.retries >= 6);
    let report = guard.shutdown();
    assert_eq!(report.stats.delivered, 20);
}

#[test]
fn flush_gives_up_at_its_timeout() {
    let sink = Sink::counting(|_| Reply::BlackHole);
    let guard = posthaste::builder(sink.url()).workers(1).shutdown_timeout(Duration::ZERO).start().unwrap();
    guard.client().send(json!(1)).unwrap();
    let began = Instant::now();
    assert!(!guard.flush(Duration::from_millis(100)));
    assert!(began.elapsed() >= Duration::from_millis(100));
    let s = guard.shutdown().stats;
    assert_eq!(s.abandoned + s.cancelled, 1, "{s:?}");
}
