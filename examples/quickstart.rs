//! Ships 100,000 events to an embedded loopback collector, through injected transient
//! failures, and prints the final report.
//!
//! ```sh
//! cargo run --release --example quickstart
//! ```
//!
//! The collector runs inside this program on 127.0.0.1 (no outside service): it answers 503 to
//! one request in 250 and closes one connection in 1,000 without answering. posthaste retries
//! both; every event arrives.

#[path = "../tests/support/sink.rs"]
mod sink;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use posthaste::{Overflow, Retry};
use serde_json::json;
use sink::{Reply, Sink};

const EVENTS: u64 = 100_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let collector = Sink::counting(|req| match req.index {
        i if i % 250 == 7 => Reply::Status(503),
        i if i % 1_000 == 500 => Reply::Close,
        _ => Reply::Status(200),
    });
    println!("collector listening on {}", collector.url());

    let guard = posthaste::builder(collector.url())
        .bearer_auth("demo-token")
        .workers(4)
        // This demo wants every event delivered, so producers wait for room instead of dropping.
        .overflow(Overflow::Block)
        .retry(Retry::new().initial_delay(Duration::from_millis(20)))
        .shutdown_timeout(Duration::from_secs(10))
        .start()?;
    let client = guard.client();

    // A progress line, redrawn four times a second.
    let done = Arc::new(AtomicBool::new(false));
    let progress = {
        let client = client.clone();
        let done = done.clone();
        thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let s = client.stats();
                print!(
                    "\r  submitted {:>7}  delivered {:>7}  queued {:>5}  retries {:>4}",
                    s.submitted, s.delivered, s.queued, s.retries
                );
                let _ = std::io::stdout().flush();
                thread::park_timeout(Duration::from_millis(250));
            }
        })
    };

    let began = Instant::now();
    for i in 0..EVENTS {
        client.send(json!({"event": "step", "i": i, "loss": 1.0 / (i as f64 + 1.0), "host": "batch-7"}))?;
    }
    // Wait for retries to finish (shutdown alone would deliver what is queued without retries).
    guard.flush(Duration::from_secs(60));
    let report = guard.shutdown();
    let elapsed = began.elapsed();
    done.store(true, Ordering::Relaxed);
    progress.thread().unpark();
    progress.join().expect("progress thread");

    let s = &report.stats;
    println!(
        "\r  submitted {:>7}  delivered {:>7}  queued {:>5}  retries {:>4}",
        s.submitted, s.delivered, s.queued, s.retries
    );
    println!("{report}");
    println!(
        "{:.0} events/s end to end: {} events in {:.2} s; the collector counted {} events in {} requests",
        s.delivered as f64 / elapsed.as_secs_f64(),
        s.delivered,
        elapsed.as_secs_f64(),
        collector.events(),
        collector.count(),
    );
    if s.delivered != EVENTS {
        return Err(format!("only {} of {EVENTS} events were delivered", s.delivered).into());
    }
    Ok(())
}
