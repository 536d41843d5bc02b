//! The corporate log collector, end to end: `log` records from numeric threads, shipped
//! through a proxy with a custom CA when the environment names them, in an envelope the
//! collector insists on, with a bearer token, a bounded queue, the exit hook, and a panic that
//! reaches the collector as a crash event.
//!
//! ```sh
//! cargo run --release --example corporate_logs --features log
//! # against a real collector:
//! LOG_URL=https://logs.corp.example/ingest LOG_TOKEN=… LOG_BUCKET=team-numeric \
//!   LOG_PROXY=http://svc:pw@proxy.corp:3128 LOG_CA_FILE=/etc/pki/corp-root-ca.pem \
//!   cargo run --release --example corporate_logs --features log
//! ```
//!
//! Without `LOG_URL` it runs on a bare machine against a collector embedded in this program on
//! 127.0.0.1, which checks what the real one would: the bearer token and the envelope
//! `{"bucket": "…", "log": "<the record as a JSON string>"}` (double encoding: the record is a
//! string inside the JSON). The logging setup lives in a function that never returns the
//! guard, as in a program whose entry point you don't own: the exit hook delivers what is
//! still queued when the process ends.

#[path = "../tests/support/sink.rs"]
mod sink;

use std::thread;

use posthaste::{Batch, Encoding, Overflow, Template};
use serde_json::{json, Value};
use sink::{Reply, Request, Sink};

const THREADS: u64 = 3;
const ROWS: u64 = 300;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The embedded collector: 401 without the token, 404 for a body it doesn't expect.
    let collector = std::env::var("LOG_URL").is_err().then(|| Sink::with(answer));
    let url = match &collector {
        Some(sink) => sink.url(),
        None => std::env::var("LOG_URL")?,
    };
    let client = setup_logging(&url, collector.is_some())?;

    log::info!(threads = THREADS, rows = ROWS; "factorizing");
    let workers: Vec<_> = (0..THREADS)
        .map(|id| thread::Builder::new().name(format!("numeric-{id}")).spawn(move || factorize(id)))
        .collect::<Result<_, _>>()?;
    for worker in workers {
        let _ = worker.join().expect("numeric thread");
    }

    // A thread that panics: the panic hook sends the crash event before the usual message.
    let crashed = thread::Builder::new().name("numeric-singular".into()).spawn(|| {
        let pivot = 0.0_f64;
        if pivot == 0.0 {
            panic!("matrix is singular at row 17 (pivot {pivot})");
        }
    })?;
    let _ = crashed.join();
    log::warn!(failed_threads = 1; "one thread crashed, results are partial");

    // `Log::flush` waits (5 s at most by default) for what was logged to arrive.
    log::logger().flush();
    let s = client.stats();
    println!(
        "{} records logged: {} delivered, {} dropped, {} queued or in flight ({} requests)",
        s.submitted,
        s.delivered,
        s.dropped,
        s.queued + s.in_flight,
        s.requests
    );
    if let Some(sink) = &collector {
        let records: Vec<Value> = sink.requests().iter().flat_map(unwrap_envelopes).collect();
        let Some(mut crash) = records.iter().find(|r| r["event"] == "panic").cloned() else {
            return Err("the crash event did not arrive".into());
        };
        crash["backtrace"] = json!("…"); // long when RUST_BACKTRACE is set
        println!("the collector accepted {} records, among them the crash event:\n{crash:#}", records.len());
    }
    // The guard was never returned: the exit hook (atexit) shuts posthaste down now, within
    // its deadline (1 s), delivering whatever is still queued.
    Ok(())
}

/// Everything logging needs, from the environment; the guard is leaked on purpose (a client
/// is returned for the counters).
fn setup_logging(url: &str, embedded: bool) -> Result<posthaste::Client, Box<dyn std::error::Error>> {
    let bucket = std::env::var("LOG_BUCKET").unwrap_or_else(|_| "team-numeric".into());
    let token = std::env::var("LOG_TOKEN").unwrap_or_else(|_| "demo-token".into());
    let mut builder = posthaste::builder(url)
        .bearer_auth(token)
        // The collector wants {"bucket": "…", "log": "<record as a JSON string>"}.
        .template(Template::string_field(json!({"bucket": bucket}), "log"))
        // Logs: batches of NDJSON lines (one envelope per line).
        .batch(Batch::new())
        .encoding(Encoding::Ndjson)
        // Bounded: 5,000 records at most in memory; a full queue drops and counts (the logger
        // never blocks a numeric thread, whatever the policy).
        .queue_capacity(5_000)
        .overflow(Overflow::DropNewest)
        .exit_hook(true)
        .panic_hook(true);
    if embedded {
        builder = builder.no_proxy(); // loopback, whatever the environment says
    }
    if let Ok(proxy) = std::env::var("LOG_PROXY") {
        builder = builder.proxy(proxy.as_str());
    }
    if let Ok(ca) = std::env::var("LOG_CA_FILE") {
        builder = builder.add_root_certs_pem_file(ca);
    }
    let guard = builder.start()?;
    posthaste::log::Logger::new(guard.client())
        .max_level(log::LevelFilter::Info)
        .level_for("corporate_logs::solver", log::LevelFilter::Debug)
        .with_field("service", "factorizer")
        .with_field("environment", "demo")
        .install()?;
    let client = guard.client();
    // Nobody holds the guard: the exit hook ends delivery when the process ends.
    std::mem::forget(guard);
    Ok(client)
}

/// Factorizes `ROWS` numbers on one thread, logging each result from the `solver` module.
fn factorize(id: u64) -> u64 {
    let mut primes = 0;
    for row in 0..ROWS {
        let n = 1_000_003 + id * 1_000_000 + row * 7_919;
        let factors = solver::factors(n);
        primes += u64::from(factors.len() == 1);
        solver::report(id, n, &factors);
    }
    log::info!(thread = id, primes; "thread done");
    primes
}

mod solver {
    pub fn factors(mut n: u64) -> Vec<u64> {
        let mut out = Vec::new();
        let mut d = 2;
        while d * d <= n {
            while n % d == 0 {
                out.push(d);
                n /= d;
            }
            d += 1;
        }
        if n > 1 {
            out.push(n);
        }
        out
    }

    pub fn report(thread: u64, n: u64, factors: &[u64]) {
        if factors.len() == 1 {
            log::info!(thread, n; "prime found");
        } else {
            log::debug!(thread, n, count = factors.len(), factors:? = factors; "factorized");
        }
    }
}

/// The embedded collector's rules.
fn answer(req: &Request) -> Reply {
    if req.header("Authorization") != Some("Bearer demo-token") {
        return Reply::Status(401);
    }
    let ok = String::from_utf8_lossy(&req.body).lines().all(|line| {
        serde_json::from_str::<Value>(line).is_ok_and(|v| v["bucket"].is_string() && v["log"].is_string())
    });
    Reply::Status(if ok { 200 } else { 404 })
}

/// The records inside a request's envelopes.
fn unwrap_envelopes(req: &Request) -> Vec<Value> {
    String::from_utf8_lossy(&req.body)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|envelope| serde_json::from_str(envelope["log"].as_str()?).ok())
        .collect()
}
