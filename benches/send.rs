//! Criterion benchmarks: what `Client::send` costs per call (1 and 4 producers), next to a raw
//! crossbeam `try_send` of the same payload into a bounded channel, and what encoding a
//! 500-event batch costs.
//!
//! Both sides get the same pre-built events and a queue large enough that nothing is dropped,
//! so the numbers are the cost of handing one event over. posthaste runs with one worker that
//! is kept quiet (its endpoint refuses connections and its backoff is 60 s), like the raw
//! channel, which has no consumer. Each chunk of sends gets a fresh queue; setting it up and
//! tearing it down is not timed.
//!
//! `cargo bench --bench send -- --warm-up-time 1 --measurement-time 3`

mod common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use posthaste::{Encoding, Event, Gzip, Template};
use serde_json::{json, Value};

const CHUNK: usize = 20_000;

/// A ~200-byte log line, as JSON.
fn line(i: usize) -> Value {
    json!({
        "ts": 1_722_000_000_000u64 + i as u64,
        "level": "info",
        "logger": "solver.inner_loop",
        "msg": "step converged within tolerance after refinement",
        "step": i,
        "residual": 0.000_123_4,
        "host": "node-17.cluster.internal",
        "tags": ["numeric", "hot"],
    })
}

fn payload() -> Event {
    Event::from_serialize(&line(12_345)).unwrap()
}

/// Times `producers` threads each handing `per_thread` events to `send`; wall time from the
/// moment they are released together until the last one finishes.
fn timed<S: Fn(Event) + Send + Sync + 'static>(
    producers: usize,
    per_thread: usize,
    make: fn() -> Event,
    send: S,
) -> Duration {
    let send = Arc::new(send);
    let barrier = Arc::new(Barrier::new(producers + 1));
    let handles: Vec<_> = (0..producers)
        .map(|_| {
            let (send, barrier) = (send.clone(), barrier.clone());
            let events: Vec<Event> = (0..per_thread).map(|_| make()).collect();
            thread::spawn(move || {
                barrier.wait();
                let start = Instant::now();
                for e in events {
                    send(e);
                }
                (start, Instant::now())
            })
        })
        .collect();
    barrier.wait();
    let spans: Vec<(Instant, Instant)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let start = spans.iter().map(|s| s.0).min().unwrap();
    let end = spans.iter().map(|s| s.1).max().unwrap();
    end - start
}

fn posthaste_send(iters: u64, producers: usize, make: fn() -> Event) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters as usize;
    while left > 0 {
        let per_thread = (left.div_ceil(producers)).min(CHUNK);
        let guard = common::quiet_guard(per_thread * producers);
        let client = guard.client();
        total += timed(producers, per_thread, make, move |e| {
            if client.send(e).is_err() {
                panic!("queue sized to never drop");
            }
        });
        // Every event handed over is accounted for (cancelled at the zero deadline).
        common::check_invariant("send", &guard.shutdown_timeout(Duration::ZERO).stats);
        left = left.saturating_sub(per_thread * producers);
    }
    total
}

fn crossbeam_send(iters: u64, producers: usize, make: fn() -> Event) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters as usize;
    while left > 0 {
        let per_thread = (left.div_ceil(producers)).min(CHUNK);
        let (tx, rx) = crossbeam_channel::bounded::<Event>(per_thread * producers + 16);
        total += timed(producers, per_thread, make, move |e| {
            if tx.try_send(e).is_err() {
                panic!("channel sized to never fill");
            }
        });
        drop(rx);
        left = left.saturating_sub(per_thread * producers);
    }
    total
}

fn value_payload() -> Event {
    Event::from(line(12_345))
}

fn send_cost(c: &mut Criterion) {
    let mut group = c.benchmark_group("send");
    group.throughput(Throughput::Elements(1));
    for producers in [1usize, 4] {
        group.bench_function(BenchmarkId::new("posthaste", producers), |b| {
            b.iter_custom(|iters| posthaste_send(iters, producers, payload))
        });
        group.bench_function(BenchmarkId::new("crossbeam_try_send", producers), |b| {
            b.iter_custom(|iters| crossbeam_send(iters, producers, payload))
        });
    }
    // A `serde_json::Value` event: `send` also walks it to estimate its size.
    group.bench_function(BenchmarkId::new("posthaste_value", 1), |b| {
        b.iter_custom(|iters| posthaste_send(iters, 1, value_payload))
    });
    group.finish();
}

fn encode_cost(c: &mut Criterion) {
    const N: usize = 500;
    let mut group = c.benchmark_group("encode_500");
    group.throughput(Throughput::Elements(N as u64));
    let values = || (0..N).map(|i| Event::from(line(i))).collect::<Vec<_>>();
    let cases: Vec<(&str, Encoding, Option<Template>, Option<Gzip>)> = vec![
        ("json_array", Encoding::JsonArray, None, None),
        ("ndjson", Encoding::Ndjson, None, None),
        (
            "template_string",
            Encoding::JsonArray,
            Some(Template::string_field(json!({"bucket": "team-a"}), "log")),
            None,
        ),
        ("json_array_gzip1", Encoding::JsonArray, None, Some(Gzip::new())),
        ("json_array_gzip6", Encoding::JsonArray, None, Some(Gzip::new().level(6))),
    ];
    for (name, encoding, template, gzip) in cases {
        let mut bench = posthaste::__bench::EncodeBench::new(values(), encoding, template, gzip);
        group.bench_function(name, |b| b.iter(|| std::hint::black_box(bench.run())));
    }
    // Pre-encoded events (`send_serialize`): the worker only copies bytes.
    let pre = (0..N).map(|i| Event::from_serialize(&line(i)).unwrap()).collect();
    let mut bench = posthaste::__bench::EncodeBench::new(pre, Encoding::JsonArray, None, None);
    group.bench_function("json_array_preencoded", |b| b.iter(|| std::hint::black_box(bench.run())));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = send_cost, encode_cost
}
criterion_main!(benches);
