//! What spilling costs at the shutdown deadline: 100,000 events queued behind an endpoint
//! that never answers, shut down with a 200 ms deadline, without and with a spill directory.
//!
//! ```sh
//! cargo run --release --example spill_at_deadline
//! ```
//!
//! The endpoint is a loopback sink inside this program (no outside service). The spill
//! directory is a fresh one under the system's temp dir, removed at the end.

#[path = "../tests/support/sink.rs"]
mod sink;

use std::time::{Duration, Instant};

use serde_json::json;
use sink::{Reply, Sink};

const EVENTS: u32 = 100_000;
const DEADLINE: Duration = Duration::from_millis(200);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let hole = Sink::counting(|_| Reply::BlackHole);
    let dir = std::env::temp_dir().join(format!("posthaste-spill-at-deadline-{}", std::process::id()));
    for spill in [false, true] {
        let _ = std::fs::remove_dir_all(&dir);
        let mut builder =
            posthaste::builder(hole.url()).queue_capacity(EVENTS as usize).shutdown_timeout(DEADLINE);
        if spill {
            builder = builder.spill_dir(&dir);
        }
        let guard = builder.start()?;
        let client = guard.client();
        let requests_before = hole.count();
        for i in 0..EVENTS {
            client.send(json!({"i": i, "msg": "an event of about forty bytes"}))?;
        }
        // Both workers stuck in a request: everything else is queued.
        hole.wait_for_requests(requests_before + 2, Duration::from_secs(10));
        let began = Instant::now();
        let report = guard.shutdown();
        let took = began.elapsed();
        let bytes: u64 = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(Result::ok).filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
            .unwrap_or(0);
        let s = report.stats;
        println!(
            "spill {:<5} shutdown took {:>7.1} ms (deadline {} ms): {} spilled ({bytes} bytes), {} cancelled, {} abandoned",
            spill,
            took.as_secs_f64() * 1e3,
            DEADLINE.as_millis(),
            s.spilled,
            s.cancelled,
            s.abandoned,
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
