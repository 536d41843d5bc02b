//! Each overflow policy under 8 concurrent producers.
//!
//! To make the counts exact, the single worker is first parked on a black-holed request, so
//! the queue fills and stays full while the producers run.

mod support;

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use posthaste::{Event, Guard, Outcome, Overflow};
use serde_json::json;
use support::{assert_invariant, Reply, Sink, PATIENCE};

const PRODUCERS: u64 = 8;

/// A guard whose only worker is stuck on a black-holed request.
fn parked(sink: &Sink, capacity: usize, overflow: Overflow) -> Guard {
    let guard = posthaste::builder(sink.url())
        .workers(1)
        .queue_capacity(capacity)
        .overflow(overflow)
        .shutdown_timeout(Duration::from_millis(100))
        .start()
        .unwrap();
    guard.client().send(json!({"parked": true})).unwrap();
    assert!(sink.wait_for_requests(1, PATIENCE));
    guard
}

/// Runs `per` sends on each of 8 threads; returns (accepted, full) counts.
fn produce(guard: &Guard, per: u64) -> (u64, u64) {
    let handles: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let client = guard.client();
            thread::spawn(move || {
                let (mut ok, mut full) = (0, 0);
                for i in 0..per {
                    match client.send(json!({"p": p, "i": i})) {
                        Ok(()) => ok += 1,
                        Err(e) if e.is_full() => full += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
                (ok, full)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

#[test]
fn drop_newest_refuses_exactly_what_does_not_fit() {
    let sink = Sink::counting(|_| Reply::BlackHole);
    let guard = parked(&sink, 100, Overflow::DropNewest);
    let (ok, full) = produce(&guard, 1_000);
    assert_eq!(ok, 100);
    assert_eq!(full, 8_000 - 100);
    let s = guard.stats();
    assert_eq!((s.submitted, s.dropped, s.queued, s.in_flight), (8_001, 7_900, 100, 1));
    assert_invariant(&s);
    let report = guard.shutdown();
    assert_eq!((report.stats.cancelled, report.stats.abandoned), (100, 1));
    assert_invariant(&report.stats);
}

#[test]
fn drop_newest_by_bytes() {
    let sink = Sink::counting(|_| Reply::BlackHole);
    let guard = posthaste::builder(sink.url())
        .workers(1)
        .queue_bytes(1_000)
        .shutdown_timeout(Duration::from_millis(100))
        .start()
        .unwrap();
    let client = guard.client();
    client.send(json!(0)).unwrap();
    assert!(sink.wait_for_requests(1, PATIENCE));
    // Exactly 100 bytes each: ten fit in 1,000.
    let event = |i: u64| {
        let s = format!("{{\"i\":\"{i:03}\",\"pad\":\"{}\"}}", "x".repeat(100 - 20));
        assert_eq!(s.len(), 100);
        Event::from_json_bytes(s.into_bytes()).unwrap()
    };
    let results: Vec<bool> = (0..30).map(|i| client.send(event(i)).is_ok()).collect();
    assert_eq!(results.iter().filter(|ok| **ok).count(), 10);
    assert!(results[..10].iter().all(|ok| *ok));
    assert_eq!(guard.stats().queued_bytes, 1_000);
    // Larger than the whole budget: can never fit, dropped at once.
    let huge = Event::from_json_bytes(format!("\"{}\"", "y".repeat(2_000)).into_bytes()).unwrap();
    assert!(client.send(huge).unwrap_err().is_full());
    let report = guard.shutdown();
    assert_eq!(report.stats.dropped, 21);
    assert_eq!(report.stats.queued_bytes, 0);
}

#[test]
fn drop_oldest_keeps_the_newest_of_every_producer() {
    let sink = Sink::counting(|_| Reply::BlackHole);
    let cancelled = Arc::new(Mutex::new(Vec::new()));
    let c = cancelled.clone();
    let guard = posthaste::builder(sink.url())
        .workers(1)
        .queue_capacity(100)
        .overflow(Overflow::DropOldest)
        .shutdown_timeout(Duration::from_millis(100))
        .on_outcome(move |event, outcome| {
            if *outcome == Outcome::Cancelled {
                let v = event.as_value().unwrap();
                c.lock().unwrap().push((v["p"].as_u64().unwrap(), v["i"].as_u64().unwrap()));
            }
        })
        .start()
        .unwrap();
    guard.client().send(json!({"parked": true})).unwrap();
    assert!(sink.wait_for_requests(1, PATIENCE));
    let (ok, full) = produce(&guard, 1_000);
    assert_eq!((ok, full), (8_000, 0), "DropOldest always accepts");
    let s = guard.stats();
    assert_eq!((s.dropped, s.queued), (7_900, 100));
    let report = guard.shutdown();
    assert_eq!(report.stats.cancelled, 100);
    assert_invariant(&report.stats);
    // What survived is, for each producer, a suffix of what it sent: the oldest went first.
    let cancelled = cancelled.lock().unwrap();
    for p in 0..PRODUCERS {
        let mut mine: Vec<u64> = cancelled.iter().filter(|(q, _)| *q == p).map(|(_, i)| *i).collect();
        mine.sort();
        if let Some(first) = mine.first() {
            assert_eq!(mine, (*first..1_000).collect::<Vec<_>>(), "producer {p}");
        }
    }
}

#[test]
fn block_waits_for_room_and_loses_nothing() {
    let sink = Sink::counting(|_| Reply::Status(200));
    let guard = posthaste::builder(sink.url())
        .workers(2)
        .queue_capacity(10)
        .overflow(Overflow::Block)
        .shutdown_timeout(PATIENCE)
        .start()
        .unwrap();
    let (ok, full) = produce(&guard, 500);
    assert_eq!((ok, full), (4_000, 0));
    let report = guard.shutdown();
    assert_eq!(report.stats.delivered, 4_000);
    assert_eq!(report.stats.dropped, 0);
    assert_eq!(sink.events(), 4_000);
}

#[test]
fn block_waits_for_byte_budget_too() {
    let sink = Sink::counting(|_| Reply::Status(200));
    let guard = posthaste::builder(sink.url())
        .workers(2)
        .queue_bytes(400)
        .overflow(Overflow::Block)
        .shutdown_timeout(PATIENCE)
        .start()
        .unwrap();
    let (ok, full) = produce(&guard, 250);
    assert_eq!((ok, full), (2_000, 0));
    let report = guard.shutdown();
    assert_eq!(report.stats.delivered, 2_000);
    assert_eq!(sink.events(), 2_000);
}

#[test]
fn block_for_gives_up_after_the_wait() {
    let sink = Sink::counting(|_| Reply::BlackHole);
    let wait = Duration::from_millis(20);
    let guard = parked(&sink, 10, Overflow::BlockFor(wait));
    let handles: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let client = guard.client();
            thread::spawn(move || {
                let mut waited_full = Vec::new();
                for i in 0..5 {
                    let began = Instant::now();
                    if let Err(e) = client.send(json!({"p": p, "i": i})) {
                        assert!(e.is_full());
                        waited_full.push(began.elapsed());
                    }
                }
                waited_full
            })
        })
        .collect();
    let fulls: Vec<Duration> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    assert_eq!(fulls.len(), 40 - 10);
    assert!(fulls.iter().all(|d| *d >= wait), "every refusal waited first");
    let report = guard.shutdown();
    assert_eq!(report.stats.dropped, 30);
    assert_eq!(report.stats.cancelled, 10);
    assert_invariant(&report.stats);
}
