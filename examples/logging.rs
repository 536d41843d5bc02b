//! `tracing` from numeric worker threads, shipped in batches to an embedded loopback collector.
//!
//! ```sh
//! cargo run --release --example logging --features tracing
//! ```
//!
//! Four threads integrate a function piece by piece, each inside a `worker` span with a
//! `chunk` span per piece, and log with `tracing::info!`/`debug!`. The posthaste layer turns
//! every event into one JSON object (timestamp, level, target, message, fields, spans, file,
//! line, static fields) on the calling thread and hands it to the queue without ever waiting;
//! the workers ship them in gzip-compressed NDJSON batches: the settings a logging user wants.
//! The collector runs inside this program on 127.0.0.1; the final report is printed.

#[path = "../tests/support/sink.rs"]
mod sink;

use std::thread;
use std::time::{Duration, Instant};

use posthaste::{Batch, Encoding, Gzip};
use sink::Sink;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;

const THREADS: u64 = 4;
const CHUNKS: u64 = 200;
const STEPS: u64 = 20_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let collector = Sink::ok();
    println!("collector listening on {}", collector.url());

    // Logs: many small events. Batch them (500 events, 1 MiB or 50 ms per request), as NDJSON
    // (or `Encoding::JsonArray`), gzip-compressed.
    let guard = posthaste::builder(collector.url())
        .bearer_auth("demo-token")
        .no_proxy() // the collector is on loopback, whatever the environment says
        .batch(Batch::new())
        .encoding(Encoding::Ndjson)
        .gzip(Gzip::new())
        .start()?;

    let layer = posthaste::tracing::Layer::new(guard.client())
        .max_level(LevelFilter::INFO)
        .level_for("logging::integrate", LevelFilter::DEBUG)
        .with_field("service", "integrator")
        .with_field("version", env!("CARGO_PKG_VERSION"))
        .with_field("host", "batch-7");
    // A global subscriber lives as long as the process; the guard ends delivery.
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))?;

    let began = Instant::now();
    tracing::info!(threads = THREADS, chunks = CHUNKS, "run started");
    let workers: Vec<_> = (0..THREADS)
        .map(|id| {
            thread::Builder::new().name(format!("numeric-{id}")).spawn(move || {
                let span = tracing::info_span!("worker", id, interval = ?(id as f64, id as f64 + 1.0));
                let _entered = span.enter();
                let mut total = 0.0;
                for chunk in 0..CHUNKS {
                    total += integrate::chunk(id, chunk);
                }
                tracing::info!(total, "worker finished");
                total
            })
        })
        .collect::<Result<_, _>>()?;
    let mut area = 0.0;
    for worker in workers {
        area += worker.join().expect("worker thread");
    }
    let logging_done = began.elapsed();
    tracing::info!(area, elapsed_ms = logging_done.as_millis() as u64, "run finished");

    // Wait for the batches to land, then shut down (within 3 s by default).
    guard.flush(Duration::from_secs(30));
    let report = guard.shutdown();
    println!("{report}");
    let s = &report.stats;
    println!(
        "integral of exp(-x²/8) over [0, {THREADS}] = {area:.9}; {} events logged in {:.2} s, \
         {} delivered in {} requests ({} bytes on the wire); the collector counted {} events",
        s.submitted,
        logging_done.as_secs_f64(),
        s.delivered,
        s.requests,
        s.bytes_sent,
        collector.events(),
    );
    if s.delivered != s.submitted || collector.events() != s.delivered {
        return Err(format!("only {} of {} events were delivered", s.delivered, s.submitted).into());
    }
    Ok(())
}

mod integrate {
    /// Integrates exp(-x²/8) over one piece of [id, id + 1] with the midpoint rule, inside a
    /// `chunk` span, logging the partial result.
    pub fn chunk(id: u64, chunk: u64) -> f64 {
        let span = tracing::debug_span!("chunk", chunk);
        let _entered = span.enter();
        let width = 1.0 / super::CHUNKS as f64;
        let start = id as f64 + chunk as f64 * width;
        let h = width / super::STEPS as f64;
        let mut sum = 0.0;
        for i in 0..super::STEPS {
            let x = start + (i as f64 + 0.5) * h;
            sum += (-x * x / 8.0).exp();
        }
        let part = sum * h;
        tracing::debug!(start, part, "chunk integrated");
        if chunk % 50 == 0 {
            tracing::info!(chunk, progress = chunk as f64 / super::CHUNKS as f64, "progress");
        }
        part
    }
}
