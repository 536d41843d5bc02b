//! Criterion benchmarks of the `tracing` front end (feature `tracing`): what a
//! `tracing::info!` with 3 fields inside one span costs through the posthaste layer, against
//! the same call through `tracing_subscriber::fmt().json()` writing through
//! `tracing_appender::non_blocking` into `std::io::sink()` — what Rust programs pay today to
//! log JSON to a file without blocking — and what a call at a disabled level costs. With the
//! `log` feature too, the `log` front end's `Log::log` for the same record.
//!
//! posthaste's queue is never full and there is no network: like `benches/send.rs`, each
//! chunk of calls gets a fresh instance whose one worker is kept quiet (its endpoint refuses
//! connections and its backoff is 60 s) and whose queue holds the whole chunk; setting it up
//! and tearing it down is not timed. Each side runs as the calling thread's subscriber
//! (`with_default`).
//!
//! `cargo bench --bench logging --all-features -- --warm-up-time 1 --measurement-time 3`

mod common;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;

const CHUNK: u64 = 20_000;

fn quiet_guard(events: u64) -> posthaste::Guard {
    common::quiet_guard(events as usize)
}

/// The posthaste layer alone on a registry, over a quiet guard for `events`.
fn layered(events: u64) -> (impl tracing::Subscriber + Send + Sync + 'static, posthaste::Guard) {
    let guard = quiet_guard(events);
    (tracing_subscriber::registry().with(posthaste::tracing::Layer::new(guard.client())), guard)
}

/// The measured call: 3 fields and a message, inside one span.
#[inline(always)]
fn info(i: u64) {
    tracing::info!(step = i, residual = 0.000_123_4, host = "node-17", "step converged");
}

/// Times `iters` calls of `call` in chunks, each chunk under a fresh subscriber from `make`
/// (built and dropped outside the timing), inside one span.
fn chunks<D, M>(iters: u64, mut make: M, call: fn(u64)) -> Duration
where
    M: FnMut(u64) -> (D, posthaste::Guard),
    D: tracing::Subscriber + Send + Sync + 'static,
{
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(CHUNK);
        let (subscriber, guard) = make(n);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("solve", run = 7);
            let _entered = span.enter();
            let began = Instant::now();
            for i in 0..n {
                call(i);
            }
            total += began.elapsed();
        });
        let stats = guard.stats();
        assert_eq!(stats.dropped, 0, "the queue must never be full: {stats:?}");
        common::check_invariant("logging", &guard.shutdown_timeout(Duration::ZERO).stats);
        left -= n;
    }
    total
}

fn logging(c: &mut Criterion) {
    let mut group = c.benchmark_group("logging");

    group.bench_function("posthaste_layer", |b| b.iter_custom(|iters| chunks(iters, layered, info)));

    // The baseline: one writer thread for the whole run, as a program would have.
    let (writer, _writer_guard) = tracing_appender::non_blocking(std::io::sink());
    group.bench_function("fmt_json_non_blocking", |b| {
        b.iter_custom(|iters| {
            chunks(
                iters,
                |_| {
                    let subscriber = tracing_subscriber::fmt().json().with_writer(writer.clone()).finish();
                    // An idle guard, so both sides build and drop the same things.
                    (subscriber, quiet_guard(1))
                },
                info,
            )
        })
    });

    group.bench_function("disabled_level/posthaste_layer", |b| {
        b.iter_custom(|iters| {
            chunks(iters, layered, |i| {
                tracing::debug!(step = i, residual = 0.000_123_4, host = "node-17", "not shipped")
            })
        })
    });

    // Reference: the same call with no layer at all, what `tracing`'s dispatch costs alone.
    group.bench_function("disabled_level/registry_alone", |b| {
        b.iter_custom(|iters| {
            chunks(
                iters,
                |n| (tracing_subscriber::registry(), quiet_guard(n.min(1))),
                |i| tracing::debug!(step = i, residual = 0.000_123_4, host = "node-17", "not shipped"),
            )
        })
    });

    group.bench_function("disabled_level/posthaste_layer_with_global_filter", |b| {
        b.iter_custom(|iters| {
            chunks(
                iters,
                |n| {
                    let guard = quiet_guard(n);
                    let subscriber = tracing_subscriber::registry()
                        .with(posthaste::tracing::Layer::new(guard.client()))
                        .with(LevelFilter::INFO);
                    (subscriber, guard)
                },
                |i| tracing::debug!(step = i, residual = 0.000_123_4, host = "node-17", "not shipped"),
            )
        })
    });

    // The `log` front end, called as `log`'s macros call the installed logger (through
    // `&dyn Log`), with the same 3 values as key-values.
    #[cfg(feature = "log")]
    group.bench_function("posthaste_logger", |b| {
        use log::Log;
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(CHUNK);
                let guard = quiet_guard(n);
                let logger: Box<dyn Log> = Box::new(posthaste::log::Logger::new(guard.client()));
                let began = Instant::now();
                for i in 0..n {
                    let kvs: [(&str, log::kv::Value<'_>); 3] = [
                        ("step", log::kv::Value::from(i)),
                        ("residual", log::kv::Value::from(0.000_123_4)),
                        ("host", log::kv::Value::from("node-17")),
                    ];
                    logger.log(
                        &log::Record::builder()
                            .level(log::Level::Info)
                            .target("logging")
                            .file(Some(file!()))
                            .line(Some(line!()))
                            .key_values(&kvs)
                            .args(format_args!("step converged"))
                            .build(),
                    );
                }
                total += began.elapsed();
                assert_eq!(guard.stats().dropped, 0);
                common::check_invariant("logging", &guard.shutdown_timeout(Duration::ZERO).stats);
                left -= n;
            }
            total
        })
    });

    // Last: the process's global subscriber (tracing's fast path, as a program has it) is
    // set here, once, and stays.
    group.bench_function("disabled_level/posthaste_layer_global", |b| {
        static GLOBAL: std::sync::OnceLock<posthaste::Guard> = std::sync::OnceLock::new();
        let guard = GLOBAL.get_or_init(|| quiet_guard(1));
        let _ = tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(posthaste::tracing::Layer::new(guard.client())),
        );
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            tracing::debug!(step = i, residual = 0.000_123_4, host = "node-17", "not shipped");
        });
    });

    group.finish();
}

criterion_group!(benches, logging);
criterion_main!(benches);
