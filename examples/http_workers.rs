//! The HTTP-worker patterns with one guard, against embedded loopback servers:
//!
//! 1. a payment-status poller (`GET …/status?status=pending` every 30 s, conditional, each
//!    payment handed to a callback);
//! 2. an API health check that alerts after 3 consecutive failures, and again on recovery;
//! 3. an order relay: poll an order feed and forward each order to a webhook endpoint signed
//!    per the Standard Webhooks specification;
//! 4. a broadcast of one alert to two endpoints, with each endpoint's outcome printed.
//!
//! ```sh
//! cargo run --example http_workers
//! ```

#[path = "../tests/support/sink.rs"]
mod sink;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use posthaste::{Broadcast, Health};
use serde_json::json;
use sink::{Reply, Sink};

const WAIT: Duration = Duration::from_secs(10);

fn json_reply(body: serde_json::Value) -> Reply {
    Reply::Full { status: 200, headers: vec![("ETag".into(), "\"v1\"".into())], body: body.to_string() }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The outside world, on 127.0.0.1.
    let payments = Sink::with(|r| {
        if r.header("if-none-match") == Some("\"v1\"") {
            return Reply::Status(304);
        }
        json_reply(json!([
            {"id": "pay_1", "status": "completed"},
            {"id": "pay_2", "status": "failed", "error": "card declined"},
        ]))
    });
    let answers = Arc::new(AtomicUsize::new(0));
    let counted = answers.clone();
    // Down for its first 4 checks, then up.
    let api = Sink::with(move |_| match counted.fetch_add(1, Ordering::SeqCst) {
        0..=3 => Reply::Status(503),
        _ => json_reply(json!({"status": "ok"})),
    });
    let orders = Sink::with(|_| json_reply(json!({"orders": [{"order": 1001}, {"order": 1002}]})));
    let partner = Sink::ok();
    let slack = Sink::ok();
    let pager = Sink::with(|_| Reply::Status(400));

    let (done_tx, done_rx) = crossbeam_channel::unbounded();
    let payments_done = done_tx.clone();
    let health_done = done_tx;
    let guard = posthaste::builder(slack.url())
        .endpoint(
            "partner",
            posthaste::endpoint(partner.url()).webhook_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        )
        .endpoint("pager", posthaste::endpoint(pager.url()))
        // 1. Payment status.
        .poll(
            "payments",
            posthaste::poll(payments.url())
                .interval(Duration::from_secs(30))
                .bearer_auth("your-token")
                .query("status", "pending")
                .on_item(move |payment| {
                    match payment["status"].as_str() {
                        Some("completed") => println!("payment {} completed", payment["id"]),
                        _ => println!("payment {} failed: {}", payment["id"], payment["error"]),
                    }
                    let _ = payments_done.send("payment");
                }),
        )
        // 2. Health check.
        .poll(
            "api-health",
            posthaste::poll(api.url()).interval(Duration::from_millis(20)).failure_threshold(3).on_health(
                move |h| {
                    match h {
                        Health::Failing { failures } => {
                            println!("ALERT: api down ({failures} failed checks)")
                        }
                        Health::Recovered { after_failures } => {
                            println!("api recovered after {after_failures} failed checks")
                        }
                        _ => {}
                    }
                    let _ = health_done.send("health");
                },
            ),
        )
        // 3. Order relay.
        .poll(
            "orders",
            posthaste::poll(orders.url())
                .interval(Duration::from_secs(60))
                .extract(|v| v["orders"].as_array().cloned().unwrap_or_default())
                .forward_to("partner"),
        )
        .start()?;
    let client = guard.client();

    // 4. Broadcast an urgent alert to Slack (the default endpoint) and the pager, failing fast.
    let alert = json!({"alert_type": "disk", "severity": "urgent", "message": "disk 95% full"});
    let receipt = client.broadcast_with(&Broadcast::to(["default", "pager"]).fail_fast(true), alert)?;
    for (endpoint, outcome) in receipt.wait(WAIT) {
        println!("alert → {endpoint}: {outcome:?}");
    }

    // Two payments and two health transitions.
    for _ in 0..4 {
        done_rx.recv_timeout(WAIT)?;
    }
    partner.wait_for_events(2, WAIT);
    for r in partner.requests() {
        println!("partner got {} signed {}", r.json(), r.header("webhook-signature").unwrap_or("-"));
    }
    let report = guard.shutdown();
    println!("{report}");
    for (name, stats) in &report.pollers {
        println!("poller {name}: {stats:?}");
    }
    Ok(())
}
