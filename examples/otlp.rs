//! `tracing` logs shipped as OpenTelemetry: OTLP/HTTP JSON `ExportLogsServiceRequest`s, to an
//! embedded loopback collector that counts the log records it receives.
//!
//! ```sh
//! cargo run --example otlp --features tracing
//! ```
//!
//! To send to an OpenTelemetry Collector instead, point the builder at its OTLP/HTTP receiver
//! (`http://collector:4318/v1/logs`, or `https://…` with `add_root_certs_pem_file` for a
//! corporate CA), add the back end's key as a header if it wants one, and keep batching and
//! gzip on:
//!
//! ```text
//! posthaste::builder("https://otel-collector.corp:4318/v1/logs")
//!     .header("Authorization", "Bearer <api key>")
//!     .batch(Batch::new().max_events(512))
//!     .encoding(Encoding::OtlpLogs)
//!     .gzip(Gzip::new())
//! ```

#[path = "../tests/support/sink.rs"]
mod sink;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use posthaste::{Batch, Encoding, Gzip};
use sink::{Reply, Sink};
use tracing_subscriber::layer::SubscriberExt;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The collector: counts the logRecords of each ExportLogsServiceRequest.
    let records = Arc::new(AtomicU64::new(0));
    let collector = {
        let records = records.clone();
        Sink::with(move |req| {
            let body = req.json();
            let n: usize = body["resourceLogs"]
                .as_array()
                .map(|rl| {
                    rl.iter()
                        .flat_map(|r| r["scopeLogs"].as_array().cloned().unwrap_or_default())
                        .map(|s| s["logRecords"].as_array().map_or(0, Vec::len))
                        .sum()
                })
                .unwrap_or(0);
            records.fetch_add(n as u64, Ordering::SeqCst);
            Reply::Status(200)
        })
    };
    let url = format!("{}/v1/logs", collector.url().trim_end_matches("/ingest"));
    println!("OTLP collector listening on {url}");

    let guard = posthaste::builder(&url)
        .no_proxy() // the collector is on loopback, whatever the environment says
        .batch(Batch::new().max_events(512))
        .encoding(Encoding::OtlpLogs)
        .gzip(Gzip::new())
        .start()?;
    let layer = posthaste::tracing::Layer::new(guard.client())
        .with_field("service", "otlp-example")
        .with_field("version", env!("CARGO_PKG_VERSION"))
        .with_field("environment", "demo");
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))?;

    let span = tracing::info_span!("solve", run = 7);
    let _entered = span.enter();
    for step in 0..1_000u64 {
        let residual = 1.0 / (step as f64 + 1.0);
        tracing::info!(step, residual, converged = residual < 0.01, "step done");
    }
    tracing::warn!(steps = 1_000u64, "solver finished");

    guard.flush(Duration::from_secs(30));
    let report = guard.shutdown();
    println!("{report}");
    println!("the collector received {} log records", records.load(Ordering::SeqCst));
    Ok(())
}
