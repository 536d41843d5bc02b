//! The recursion case: a global subscriber at TRACE with the posthaste layer, and `log`
//! records bridged into `tracing` (`tracing-log`'s `LogTracer`), so that everything ureq and
//! rustls log on posthaste's workers reaches the layer. 10,000 events must make exactly 10,000
//! deliveries: nothing of posthaste's own traffic is fed back, nothing hangs, nothing grows.
//!
//! Global state (one subscriber, one `log` logger per process): one test in this binary.

#![cfg(feature = "tracing")]

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use posthaste::tracing::Layer;
use support::{Sink, PATIENCE};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;

/// Counts the events it sees whose target starts with `ureq`, on posthaste's worker threads.
struct HttpStackSeen(Arc<AtomicU64>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for HttpStackSeen {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let on_worker = std::thread::current().name().is_some_and(|n| n.starts_with("posthaste-worker"));
        // A bridged `log` record's target is its `log.target` field.
        struct Target(bool);
        impl tracing::field::Visit for Target {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                self.0 |= field.name() == "log.target" && value.starts_with("ureq");
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        let mut target = Target(event.metadata().target().starts_with("ureq"));
        event.record(&mut target);
        if on_worker && target.0 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[test]
fn a_global_subscriber_at_trace_bridging_log_delivers_exactly_what_was_logged() {
    const EVENTS: u64 = 10_000;
    let sink = Sink::counting(|_| support::Reply::Status(200));
    let guard = posthaste::builder(sink.url()).start().unwrap();
    let http_seen = Arc::new(AtomicU64::new(0));
    let subscriber = tracing_subscriber::registry()
        .with(Layer::new(guard.client()).max_level(LevelFilter::TRACE))
        .with(HttpStackSeen(http_seen.clone()));
    tracing::subscriber::set_global_default(subscriber).unwrap();
    tracing_log::LogTracer::init().unwrap(); // `log` records (ureq's, rustls') into `tracing`
    log::set_max_level(log::LevelFilter::Trace);

    let began = Instant::now();
    let span = tracing::info_span!("loop", run = 1);
    let _entered = span.enter();
    for i in 0..EVENTS / 2 {
        tracing::info!(i, "from tracing");
    }
    for i in 0..EVENTS / 2 {
        log::info!("from log, bridged: {i}"); // tracing-log bridges the message, not key-values
    }
    // Records of the HTTP stack logged on a producer's thread are left out by their target.
    log::debug!(target: "ureq::unversioned::transport", "not shipped");
    log::trace!(target: "rustls::client::hs", "not shipped");
    assert!(guard.flush(PATIENCE), "{:?}", guard.stats());
    // A hang bound, not a timing.
    assert!(began.elapsed() < Duration::from_secs(60), "{:?}", began.elapsed());

    let s = guard.stats();
    assert_eq!((s.submitted, s.delivered), (EVENTS, EVENTS), "{s:?}");
    assert_eq!(sink.events(), EVENTS);
    assert_eq!(guard.stats().submitted, EVENTS);
    // The loop was possible: ureq logged on the workers, and those records reached the
    // subscriber (the other layer saw them); posthaste's layer left them out.
    assert!(http_seen.load(Ordering::SeqCst) > 0, "ureq logged nothing on the workers");
    // Nothing keeps growing once the traffic stops.
    assert_eq!(guard.stats().submitted, EVENTS);
    let report = guard.shutdown();
    assert_eq!(report.stats.submitted, EVENTS);
    support::assert_invariant(&report.stats);
}
