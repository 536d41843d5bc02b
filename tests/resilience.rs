//! Resilience in one process: the circuit breaker, the retry budget, spilling (and replay,
//! including the cap and a spill file that can't take more), sending after shutdown,
//! supervision of panicking callbacks, and the options' validation.

mod support;

use std::fs;
use std::time::Duration;

use posthaste::{AfterShutdown, Circuit, CircuitBreaker, Error, Outcome, Retry, RetryBudget};
use serde_json::{json, Value};
use support::{assert_invariant, Reply, Sink, TempDir, PATIENCE};

/// Five quick attempts without jitter.
fn quick() -> Retry {
    Retry::new()
        .initial_delay(Duration::from_millis(1))
        .max_delay(Duration::from_millis(1))
        .max_attempts(5)
        .jitter(false)
}

#[test]
fn circuit_opens_after_k_failures_and_events_wait_in_the_queue() {
    let sink = Sink::with(|_| Reply::Status(503));
    let guard = posthaste::builder(sink.url())
        .workers(1)
        .retry(quick())
        .circuit_breaker(CircuitBreaker::new().failures(5).cooldown(Duration::from_secs(60)))
        .shutdown_timeout(Duration::from_millis(200))
        .start()
        .unwrap();
    let client = guard.client();
    let first = client.send_tracked(json!({"first": true})).unwrap();
    match first.wait(PATIENCE) {
        Some(Outcome::Failed { attempts: 5, .. }) => {}
        other => panic!("{other:?}"),
    }
    let s = client.stats();
    assert_eq!((s.circuit, s.circuit_opened, s.requests), (Circuit::Open, 1, 5), "{s:?}");
    for i in 0..10 {
        client.send(json!(i)).unwrap();
    }
    // Open for a minute: nothing is taken or sent; shutdown doesn't wait for the cool-down.
    let report = guard.shutdown();
    assert_eq!(sink.count(), 5, "no request while open");
    assert_eq!(report.stats.requests, 5);
    assert_eq!(report.stats.cancelled, 10, "{:?}", report.stats);
    assert!(!report.deadline_reached, "workers stop at once: the gate opens after the deadline");
    assert_invariant(&report.stats);
}

#[test]
fn half_open_lets_one_probe_through_and_closes_on_success() {
    // Five failures, then a slow success: the probe.
    let sink = Sink::with(|req| match req.index {
        0..=4 => Reply::Status(503),
        5 => Reply::Delay(Duration::from_millis(50), Box::new(Reply::Status(200))),
        _ => Reply::Status(200),
    });
    let guard = posthaste::builder(sink.url())
        .workers(2)
        .retry(quick())
        .circuit_breaker(CircuitBreaker::new().failures(5).cooldown(Duration::from_millis(100)))
        .start()
        .unwrap();
    let client = guard.client();
    let first = client.send_tracked(json!({"first": true})).unwrap();
    assert!(matches!(first.wait(PATIENCE), Some(Outcome::Failed { .. })));
    assert_eq!(client.stats().circuit_opened, 1);
    let receipts: Vec<_> = (0..10).map(|i| client.send_tracked(json!(i)).unwrap()).collect();
    for r in &receipts {
        assert_eq!(r.wait(PATIENCE), Some(Outcome::Delivered { status: 200, attempts: 1 }));
    }
    let s = client.stats();
    assert_eq!((s.circuit, s.circuit_opened), (Circuit::Closed, 1));
    // One probe at a time: the other worker's request came only after the probe's answer.
    let probe_answered = sink.answered().iter().find(|(i, _, _)| *i == 5).unwrap().1;
    let next = sink.requests().iter().find(|r| r.index == 6).unwrap().at;
    assert!(next >= probe_answered, "a second request went out while the probe was pending");
    assert_eq!(guard.shutdown().stats.delivered, 10);
}

#[test]
fn failed_probe_reopens_the_circuit() {
    let sink = Sink::with(|req| if req.index <= 5 { Reply::Status(503) } else { Reply::Status(200) });
    let guard = posthaste::builder(sink.url())
        .workers(1)
        .retry(quick())
        .circuit_breaker(CircuitBreaker::new().failures(5).cooldown(Duration::from_millis(30)))
        .start()
        .unwrap();
    let client = guard.client();
    let first = client.send_tracked(json!(0)).unwrap();
    assert!(matches!(first.wait(PATIENCE), Some(Outcome::Failed { attempts: 5, .. })));
    // Its first attempt is the probe, which fails (503): open again; the next probe succeeds.
    let second = client.send_tracked(json!(1)).unwrap();
    assert_eq!(second.wait(PATIENCE), Some(Outcome::Delivered { status: 200, attempts: 2 }));
    let s = client.stats();
    assert_eq!((s.circuit, s.circuit_opened), (Circuit::Closed, 2), "{s:?}");
    drop(guard);
}

#[test]
fn a_zero_retry_budget_refuses_every_retry() {
    let sink = Sink::with(|req| if req.index == 0 { Reply::Status(503) } else { Reply::Status(200) });
    let guard = posthaste::builder(sink.url())
        .retry(quick())
        .retry_budget(RetryBudget::new().ratio(0.0).min_per_second(0))
        .start()
        .unwrap();
    let receipt = guard.client().send_tracked(json!(1)).unwrap();
    match receipt.wait(PATIENCE) {
        Some(Outcome::Failed { reason, attempts: 1 }) => assert!(reason.contains("retry budget"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let s = guard.shutdown().stats;
    assert_eq!((s.requests, s.retries, s.retries_throttled), (1, 0, 1));
    assert_eq!(sink.count(), 1);
}

#[test]
fn the_retry_budget_grows_with_first_attempts() {
    let sink = Sink::with(|req| if req.index == 0 { Reply::Status(503) } else { Reply::Status(200) });
    // One retry per first attempt, no floor: the first attempt earns the retry.
    let guard = posthaste::builder(sink.url())
        .retry(quick())
        .retry_budget(RetryBudget::new().ratio(1.0).min_per_second(0))
        .start()
        .unwrap();
    let receipt = guard.client().send_tracked(json!(1)).unwrap();
    assert_eq!(receipt.wait(PATIENCE), Some(Outcome::Delivered { status: 200, attempts: 2 }));
    assert_eq!(guard.shutdown().stats.retries_throttled, 0);

    // Half a retry per first attempt: one lone event can't earn its retry within its
    // 300 ms of retrying, so it fails (rather than waiting forever).
    let sink = Sink::with(|req| if req.index == 0 { Reply::Status(503) } else { Reply::Status(200) });
    let guard = posthaste::builder(sink.url())
        .retry(quick().max_elapsed(Duration::from_millis(300)))
        .retry_budget(RetryBudget::new().ratio(0.5).min_per_second(0))
        .start()
        .unwrap();
    let receipt = guard.client().send_tracked(json!(1)).unwrap();
    assert!(matches!(receipt.wait(PATIENCE), Some(Outcome::Failed { attempts: 1, .. })));
    assert_eq!(guard.shutdown().stats.retries_throttled, 1);
}

#[test]
fn shutdown_settles_a_retry_waiting_for_budget_at_once() {
    let sink = Sink::with(|req| if req.index == 0 { Reply::Status(503) } else { Reply::Status(200) });
    // Half a retry per first attempt and no floor: a lone event's retry waits for more traffic.
    let guard = posthaste::builder(sink.url())
        .retry(quick().max_elapsed(Duration::from_secs(60)))
        .retry_budget(RetryBudget::new().ratio(0.5).min_per_second(0))
        .shutdown_timeout(Duration::from_secs(5))
        .start()
        .unwrap();
    let receipt = guard.client().send_tracked(json!({"waits": true})).unwrap();
    let patience = std::time::Instant::now() + PATIENCE;
    while guard.stats().retries_throttled == 0 {
        assert!(std::time::Instant::now() < patience, "the retry never hit the budget");
        std::thread::yield_now();
    }
    // Shutdown makes no retries: the waiting event fails now (a transient failure, which a
    // spill directory would keep), instead of waiting to be abandoned at the deadline.
    let report = guard.shutdown();
    match receipt.try_outcome() {
        Some(Outcome::Failed { reason, attempts: 1 }) => assert!(reason.contains("retry budget"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!((report.stats.failed, report.stats.requests), (1, 1));
    assert!(!report.deadline_reached);
}

#[test]
fn exhausted_retries_are_spilled_and_replayed_by_the_next_start() {
    let dir = TempDir::new("resilience-spill");
    let dead = format!("http://127.0.0.1:{}/ingest", support::closed_port());
    let guard =
        posthaste::builder(dead).retry(quick().max_attempts(2)).spill_dir(dir.path()).start().unwrap();
    let event = json!({"order": 17, "note": "line\nbreak"});
    let receipt = guard.client().send_tracked(event.clone()).unwrap();
    assert_eq!(receipt.wait(PATIENCE), Some(Outcome::Spilled));
    // On disk before the outcome was reported.
    let lines = dir.spilled_lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(serde_json::from_str::<Value>(&lines[0]).unwrap(), event);
    let report = guard.shutdown();
    assert_eq!((report.stats.spilled, report.stats.failed), (1, 0));
    assert_invariant(&report.stats);

    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url()).spill_dir(dir.path()).start().unwrap();
    assert_eq!(guard.stats().replayed, 1);
    assert!(guard.flush(PATIENCE));
    let report = guard.shutdown();
    assert_eq!((report.stats.submitted, report.stats.delivered), (1, 1));
    assert_eq!(sink.requests()[0].json(), event);
    assert!(dir.spill_files().is_empty(), "{:?}", dir.spill_files());
}

#[test]
fn the_spill_cap_keeps_outcomes_and_counts_what_did_not_fit() {
    let dir = TempDir::new("resilience-cap");
    let sink = Sink::counting(|_| Reply::BlackHole);
    // `{"i":N}` plus a newline is 8 bytes: room for 3 events.
    let guard = posthaste::builder(sink.url())
        .workers(1)
        .spill_dir(dir.path())
        .spill_max_bytes(24)
        .shutdown_timeout(Duration::from_millis(100))
        .start()
        .unwrap();
    let client = guard.client();
    for i in 0..10 {
        client.send(json!({"i": i})).unwrap();
    }
    assert!(sink.wait_for_requests(1, PATIENCE));
    let s = guard.shutdown().stats;
    assert_invariant(&s);
    assert_eq!(s.spilled, 3, "{s:?}");
    assert_eq!(s.spill_failed, 7, "{s:?}");
    assert_eq!(s.spilled + s.cancelled + s.abandoned, 10, "{s:?}");
    assert_eq!(dir.spilled_lines().len(), 3);
}

#[test]
fn replayed_events_that_cannot_be_spilled_again_keep_their_file() {
    let dir = TempDir::new("resilience-keep");
    // Run 1: five events spilled at the deadline.
    let hole = Sink::counting(|_| Reply::BlackHole);
    let guard = posthaste::builder(hole.url())
        .workers(1)
        .spill_dir(dir.path())
        .shutdown_timeout(Duration::from_millis(50))
        .start()
        .unwrap();
    for i in 0..5 {
        guard.client().send(json!({"i": i})).unwrap();
    }
    assert_eq!(guard.shutdown().stats.spilled, 5);
    // Shutdown released the file although a detached worker is still stuck in the black hole.
    assert_eq!(dir.spill_files().len(), 1);

    // Run 2: replays them into a black hole again, and its own spill file is too small to
    // take them back. The old file must stay: duplicates later rather than loss now.
    let hole = Sink::counting(|_| Reply::BlackHole);
    let guard = posthaste::builder(hole.url())
        .workers(1)
        .spill_dir(dir.path())
        .spill_max_bytes(1)
        .shutdown_timeout(Duration::from_millis(50))
        .start()
        .unwrap();
    assert_eq!(guard.stats().replayed, 5);
    let s = guard.shutdown().stats;
    assert_eq!((s.spilled, s.spill_failed), (0, 5), "{s:?}");

    // Run 3: everything arrives.
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url()).spill_dir(dir.path()).start().unwrap();
    assert_eq!(guard.stats().replayed, 5);
    assert!(guard.flush(PATIENCE));
    assert_eq!(guard.shutdown().stats.delivered, 5);
    let mut ids: Vec<i64> = sink.requests().iter().map(|r| r.json()["i"].as_i64().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, vec![0, 1, 2, 3, 4]);
    assert!(dir.spill_files().is_empty());
}

#[test]
fn send_after_shutdown_can_deliver_synchronously() {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url())
        .after_shutdown(AfterShutdown::SendSync(Duration::from_secs(5)))
        .start()
        .unwrap();
    let client = guard.client();
    let report = guard.shutdown();
    assert_eq!(report.stats.submitted, 0);
    client.send(json!({"late": 1})).unwrap();
    // Delivered on this thread, before `send` returned.
    assert_eq!(sink.count(), 1);
    let receipt = client.send_tracked(json!({"late": 2})).unwrap();
    assert_eq!(receipt.try_outcome(), Some(Outcome::Delivered { status: 200, attempts: 1 }));
    let s = client.stats();
    assert_eq!((s.submitted, s.delivered, s.requests), (2, 2, 2));
    assert_invariant(&s);
}

#[test]
fn send_after_shutdown_to_a_dead_endpoint_is_spilled_or_failed() {
    let dir = TempDir::new("resilience-late");
    let dead = format!("http://127.0.0.1:{}/ingest", support::closed_port());
    let guard = posthaste::builder(&dead)
        .after_shutdown(AfterShutdown::SendSync(Duration::from_secs(1)))
        .spill_dir(dir.path())
        .start()
        .unwrap();
    let client = guard.client();
    drop(guard);
    let receipt = client.send_tracked(json!({"late": true})).unwrap();
    assert_eq!(receipt.try_outcome(), Some(Outcome::Spilled));
    assert_eq!(dir.spilled_lines(), vec![r#"{"late":true}"#.to_string()]);

    let guard = posthaste::builder(dead)
        .after_shutdown(AfterShutdown::SendSync(Duration::from_secs(1)))
        .start()
        .unwrap();
    let client = guard.client();
    drop(guard);
    let receipt = client.send_tracked(json!({"late": true})).unwrap();
    match receipt.try_outcome() {
        Some(Outcome::Failed { reason, attempts: 1 }) => assert!(reason.contains("refused"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_invariant(&client.stats());
}

#[test]
fn panicking_callbacks_are_counted_and_every_event_still_settles() {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url())
        .workers(2)
        .on_outcome(|event, _| {
            if event.as_value().and_then(|v| v.as_u64()).is_some_and(|i| i % 3 == 0) {
                panic!("on_outcome panicked on purpose for event {event:?}");
            }
        })
        .start()
        .unwrap();
    let client = guard.client();
    let receipts: Vec<_> = (0..30u64).map(|i| client.send_tracked(json!(i)).unwrap()).collect();
    for r in &receipts {
        assert!(r.wait(PATIENCE).unwrap().is_delivered());
    }
    let s = guard.shutdown().stats;
    assert_eq!((s.delivered, s.panics), (30, 10), "{s:?}");
    assert_invariant(&s);
}

#[test]
fn lifecycle_options_are_validated_by_start() {
    let option = |b: posthaste::Builder| match b.start() {
        Err(Error::InvalidOption { option, .. }) => option,
        other => panic!("{other:?}"),
    };
    let b = || posthaste::builder("http://127.0.0.1:9/");
    assert_eq!(option(b().exit_timeout(Duration::from_secs(3600))), "exit_timeout");
    assert_eq!(option(b().panic_timeout(Duration::ZERO)), "panic_timeout");
    assert_eq!(option(b().after_shutdown(AfterShutdown::SendSync(Duration::ZERO))), "after_shutdown");
    assert_eq!(option(b().spill_max_bytes(0)), "spill_max_bytes");
    assert_eq!(option(b().circuit_breaker(CircuitBreaker::new().failures(0))), "circuit_breaker.failures");
    assert_eq!(
        option(b().circuit_breaker(CircuitBreaker::new().cooldown(Duration::ZERO))),
        "circuit_breaker.cooldown"
    );
    assert_eq!(option(b().retry_budget(RetryBudget::new().ratio(f64::NAN))), "retry_budget.ratio");

    let dir = TempDir::new("resilience-bad-dir");
    let file = dir.path().join("not-a-directory");
    fs::write(&file, b"x").unwrap();
    match b().spill_dir(&file).start() {
        Err(e @ Error::Spill { .. }) => assert!(e.to_string().contains("not-a-directory"), "{e}"),
        other => panic!("{other:?}"),
    }
}
