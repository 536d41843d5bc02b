//! The `metrics` feature: posthaste's series reach whatever recorder the program installed.
#![cfg(feature = "metrics")]

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use serde_json::json;
use support::{Sink, PATIENCE};

/// Every series as its last value, by `name{endpoint}`.
#[derive(Clone, Default)]
struct Values(Arc<Mutex<HashMap<String, f64>>>);

struct Series(String, Values);

impl CounterFn for Series {
    fn increment(&self, value: u64) {
        *self.1 .0.lock().unwrap().entry(self.0.clone()).or_default() += value as f64;
    }
    fn absolute(&self, value: u64) {
        self.1 .0.lock().unwrap().insert(self.0.clone(), value as f64);
    }
}

impl GaugeFn for Series {
    fn increment(&self, value: f64) {
        *self.1 .0.lock().unwrap().entry(self.0.clone()).or_default() += value;
    }
    fn decrement(&self, value: f64) {
        *self.1 .0.lock().unwrap().entry(self.0.clone()).or_default() -= value;
    }
    fn set(&self, value: f64) {
        self.1 .0.lock().unwrap().insert(self.0.clone(), value);
    }
}

struct TestRecorder(Values);

impl TestRecorder {
    fn series(&self, key: &Key) -> Arc<Series> {
        let labels: Vec<String> = key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
        Arc::new(Series(format!("{}{{{}}}", key.name(), labels.join(",")), self.0.clone()))
    }
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.series(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.series(key))
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[test]
fn counters_and_gauges_reach_the_installed_recorder() {
    let values = Values::default();
    metrics::set_global_recorder(TestRecorder(values.clone())).unwrap();
    let sink = Sink::ok();
    let endpoint = sink.url().trim_start_matches("http://").trim_end_matches("/ingest").to_string();
    let guard = posthaste::builder(sink.url()).start().unwrap();
    for i in 0..25 {
        guard.client().send(json!({"i": i})).unwrap();
    }
    assert!(guard.flush(PATIENCE));
    // Published at the end of the run too: the final counts are there after shutdown.
    let _ = guard.shutdown();
    let get = |name: &str| values.0.lock().unwrap().get(&format!("{name}{{endpoint={endpoint}}}")).copied();
    assert_eq!(get("posthaste_events_submitted_total"), Some(25.0));
    assert_eq!(get("posthaste_events_delivered_total"), Some(25.0));
    assert_eq!(get("posthaste_requests_total"), Some(25.0));
    assert_eq!(get("posthaste_queued_events"), Some(0.0));
    assert_eq!(get("posthaste_circuit_open"), Some(0.0));
    assert!(get("posthaste_departure_rate").is_some_and(|r| r > 0.0));
}
