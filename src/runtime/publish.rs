//! The `metrics` feature: posthaste's counters and gauges published through the `metrics`
//! crate facade, so any exporter (Prometheus, StatsD, …) sees them. The reporter thread calls
//! [`publish`] once per report interval (every second unless `report_interval` says
//! otherwise). Every series has the label `endpoint` (`host:port`).
//!
//! | name | kind | meaning |
//! |---|---|---|
//! | `posthaste_events_submitted_total` | counter | events accepted by `send` |
//! | `posthaste_events_delivered_total` | counter | events answered 2xx |
//! | `posthaste_events_rejected_total` | counter | events refused by the endpoint |
//! | `posthaste_events_failed_total` | counter | events that failed for good |
//! | `posthaste_events_dropped_total` | counter | events dropped by the overflow policy |
//! | `posthaste_events_cancelled_total` | counter | events never sent before the shutdown deadline |
//! | `posthaste_events_abandoned_total` | counter | events on the wire at the shutdown deadline |
//! | `posthaste_events_spilled_total` | counter | events written to the spill file |
//! | `posthaste_requests_total` | counter | HTTP requests made |
//! | `posthaste_retries_total` | counter | requests that were retries |
//! | `posthaste_request_bytes_total` | counter | request body bytes sent |
//! | `posthaste_queued_events` | gauge | events queued or waiting on the retry schedule |
//! | `posthaste_in_flight_events` | gauge | events taken by workers, not settled |
//! | `posthaste_busy_workers` | gauge | workers in a request |
//! | `posthaste_load` | gauge | average share of time workers spent in requests over the metrics window |
//! | `posthaste_wait_p99_seconds` | gauge | 99th percentile of accepted → first attempt |
//! | `posthaste_service_p99_seconds` | gauge | 99th percentile of first attempt → outcome |
//! | `posthaste_arrival_rate` | gauge | events accepted per second over the window |
//! | `posthaste_departure_rate` | gauge | events settled per second over the window |
//! | `posthaste_circuit_open` | gauge | 1 while the circuit breaker is open, else 0 |

use crate::policy::gate::Circuit;
use crate::runtime::Shared;

/// Publishes one round of every series.
pub(crate) fn publish(shared: &Shared) {
    let endpoint = shared.transport.endpoint().to_string();
    let s = shared.stats();
    let m = shared.metrics();
    for (name, value) in [
        ("posthaste_events_submitted_total", s.submitted),
        ("posthaste_events_delivered_total", s.delivered),
        ("posthaste_events_rejected_total", s.rejected),
        ("posthaste_events_failed_total", s.failed),
        ("posthaste_events_dropped_total", s.dropped),
        ("posthaste_events_cancelled_total", s.cancelled),
        ("posthaste_events_abandoned_total", s.abandoned),
        ("posthaste_events_spilled_total", s.spilled),
        ("posthaste_requests_total", s.requests),
        ("posthaste_retries_total", s.retries),
        ("posthaste_request_bytes_total", s.bytes_sent),
    ] {
        metrics::counter!(name, "endpoint" => endpoint.clone()).absolute(value);
    }
    for (name, value) in [
        ("posthaste_queued_events", m.queued as f64),
        ("posthaste_in_flight_events", s.in_flight.saturating_sub(s.scheduled) as f64),
        ("posthaste_busy_workers", m.busy_workers as f64),
        ("posthaste_load", m.average_load),
        ("posthaste_wait_p99_seconds", m.wait_p99.as_secs_f64()),
        ("posthaste_service_p99_seconds", m.service_p99.as_secs_f64()),
        ("posthaste_arrival_rate", m.arrival_rate),
        ("posthaste_departure_rate", m.departure_rate),
        ("posthaste_circuit_open", f64::from(u8::from(s.circuit == Circuit::Open))),
    ] {
        metrics::gauge!(name, "endpoint" => endpoint.clone()).set(value);
    }
}
