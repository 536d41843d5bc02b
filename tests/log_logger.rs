//! The `log` front end against a loopback sink that captures bodies: the installed logger (one
//! per process, so one test installs it), key-values with their JSON types, levels by target,
//! error chains, posthaste's own records left out, never blocking under `Overflow::Block`,
//! and silence after shutdown.

#![cfg(feature = "log")]

mod support;

use std::time::{Duration, Instant};

use log::{Level, LevelFilter, Log, Record};
use posthaste::log::Logger;
use posthaste::Overflow;
use serde_json::{json, Value};
use support::{Reply, Sink, Wrapped, PATIENCE};

fn by_message(sink: &Sink) -> Vec<Value> {
    let mut events: Vec<Value> = sink.requests().iter().map(|r| r.json()).collect();
    events.sort_by_key(|e| e["message"].as_str().unwrap_or_default().to_string());
    events
}

#[test]
fn the_installed_logger_ships_records_with_typed_key_values() {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url()).start().unwrap();
    Logger::new(guard.client())
        .level_for("app::db", LevelFilter::Debug)
        .with_field("service", "billing")
        .install()
        .unwrap();
    assert_eq!(log::max_level(), LevelFilter::Debug, "the most verbose level configured");
    // `log`'s `:err` capture wants a `'static` error.
    let error: &'static Wrapped = Box::leak(Box::new(Wrapped(std::io::Error::other("disk full"))));
    let line = line!() + 1;
    log::info!(user_id = 42, ratio = 0.5, ok = true, who = "ann", neg = -3, list:? = vec![1, 2]; "checkout {}", 7);
    log::debug!(target: "app::db::pool", "pool debug");
    log::debug!(target: "app", "app debug: dropped");
    log::error!(error:err = error, service = "override"; "saving failed");
    log::info!(target: "ureq::unversioned", "the HTTP stack: dropped");
    log::info!(target: "posthaste::anything", "posthaste itself: dropped");
    // `Log::flush` waits (with its deadline) for what was sent to settle.
    log::logger().flush();
    // Records ureq logged on the workers while sending (at DEBUG) were not fed back.
    let s = guard.stats();
    assert_eq!((s.submitted, s.delivered), (3, 3), "{s:?}");

    let events = by_message(&sink);
    assert_eq!(events.len(), 3, "{events:?}");
    let checkout = &events[0];
    assert_eq!(checkout["message"], "checkout 7");
    assert_eq!(checkout["level"], "INFO");
    assert_eq!(checkout["target"], "log_logger");
    assert_eq!(checkout["user_id"], json!(42));
    assert_eq!(checkout["ratio"], json!(0.5));
    assert_eq!(checkout["ok"], json!(true));
    assert_eq!(checkout["who"], json!("ann"));
    assert_eq!(checkout["neg"], json!(-3));
    assert_eq!(checkout["list"], json!("[1, 2]"));
    assert_eq!(checkout["service"], "billing");
    assert!(checkout["file"].as_str().unwrap().ends_with("log_logger.rs"));
    assert_eq!(checkout["line"], json!(line));
    assert_eq!(checkout["timestamp"].as_str().unwrap().len(), 27);
    assert!(checkout.get("spans").is_none());
    assert_eq!(events[1]["message"], "pool debug");
    assert_eq!(events[1]["level"], "DEBUG");
    let failed = &events[2];
    assert_eq!(failed["message"], "saving failed");
    assert_eq!(failed["error"], json!({"message": "could not save the report", "sources": ["disk full"]}));
    assert_eq!(failed["service"], "override", "the record's own key-value wins");

    // `log` takes one logger per process, once.
    let again = Logger::new(guard.client()).install();
    assert!(matches!(again, Err(posthaste::Error::LoggerAlreadySet)), "{again:?}");
}

fn record(logger: &Logger, level: Level, message: &str) {
    logger.log(&Record::builder().level(level).target("app").args(format_args!("{message}")).build());
}

#[test]
fn a_full_queue_under_block_drops_and_counts_never_blocks() {
    let sink = Sink::with(|_| Reply::BlackHole);
    let guard = posthaste::builder(sink.url()).overflow(Overflow::Block).start().unwrap();
    let logger = Logger::new(guard.client());
    let (capacity, extra) = (10_000, 100); // the default queue capacity
    record(&logger, Level::Info, "taken by a worker");
    record(&logger, Level::Info, "taken by a worker");
    assert!(sink.wait_for_requests(2, PATIENCE), "both workers hold a request");
    let began = Instant::now();
    for _ in 0..capacity + extra {
        record(&logger, Level::Warn, "queued or dropped");
    }
    // A hang bound, not a timing: a blocked producer would wait for the black hole (15 s).
    assert!(began.elapsed() < Duration::from_secs(10), "{:?}", began.elapsed());
    let s = guard.stats();
    assert_eq!((s.submitted, s.dropped, s.queued), (2 + capacity + extra, extra, capacity), "{s:?}");
    support::assert_invariant(&guard.shutdown_timeout(Duration::ZERO).stats);
}

#[test]
fn after_shutdown_the_logger_is_a_silent_no_op() {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url()).start().unwrap();
    let client = guard.client();
    let logger = Logger::new(client.clone());
    drop(guard);
    for _ in 0..100 {
        record(&logger, Level::Error, "after shutdown");
    }
    logger.flush();
    assert!(!logger.enabled(&log::Metadata::builder().level(Level::Debug).target("app").build()));
    assert_eq!(client.stats().submitted, 0);
    assert_eq!(sink.count(), 0);
}
