//! Several endpoints under one guard: `send_to`, per-endpoint and total stats, isolation (a
//! black-holed or failing endpoint never slows another), routing, and the errors `start()`
//! gives for bad endpoint configurations.

mod support;

use std::time::Instant;

use posthaste::{Error, Outcome, Route, SendError, DEFAULT_ENDPOINT};
use serde_json::json;
use support::{assert_invariant, Reply, Sink, PATIENCE};

fn delivered(outcome: Option<Outcome>) -> bool {
    matches!(outcome, Some(Outcome::Delivered { .. }))
}

#[test]
fn send_to_reaches_the_named_endpoint_and_each_has_its_stats() {
    let main = Sink::ok();
    let audit = Sink::ok();
    let guard = posthaste::builder(main.url())
        .bearer_auth("main-token")
        .endpoint("audit", posthaste::endpoint(audit.url()).header("X-Audit", "1").workers(1))
        .start()
        .unwrap();
    let client = guard.client();
    for i in 0..20 {
        client.send(json!({"main": i})).unwrap();
        client.send_to("audit", json!({"audit": i})).unwrap();
    }
    let last = client.send_to_tracked("audit", json!({"audit": "last"})).unwrap();
    let first = client.send_to_tracked(DEFAULT_ENDPOINT, json!({"main": "last"})).unwrap();
    assert!(delivered(last.wait(PATIENCE)) && delivered(first.wait(PATIENCE)));
    assert!(main.wait_for_events(21, PATIENCE) && audit.wait_for_events(21, PATIENCE));
    assert!(main.requests().iter().all(|r| r.json().get("main").is_some()));
    assert!(audit.requests().iter().all(|r| r.json().get("audit").is_some()));
    // Each endpoint has its own headers.
    assert!(audit
        .requests()
        .iter()
        .all(|r| r.header("x-audit") == Some("1") && r.header("authorization").is_none()));
    assert!(main.requests().iter().all(|r| r.header("authorization") == Some("Bearer main-token")));

    assert!(client.flush(PATIENCE));
    let a = client.endpoint_stats("audit").unwrap();
    let d = client.endpoint_stats(DEFAULT_ENDPOINT).unwrap();
    assert_eq!((a.submitted, a.delivered, d.submitted, d.delivered), (21, 21, 21, 21));
    assert!(client.endpoint_stats("nope").is_none());
    let total = client.stats();
    assert_eq!((total.submitted, total.delivered, total.requests), (42, 42, 42));
    let names: Vec<String> = client.stats_by_endpoint().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["default", "audit"]);

    let report = guard.shutdown();
    assert_eq!(report.stats.delivered, 42);
    assert_eq!(report.endpoints.len(), 2);
    assert_eq!((report.endpoints[1].0.as_str(), report.endpoints[1].1.delivered), ("audit", 21));
    assert_invariant(&report.stats);
    for (_, s) in &report.endpoints {
        assert_invariant(s);
    }
}

#[test]
fn an_unknown_endpoint_name_hands_the_event_back_uncounted() {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url()).start().unwrap();
    let client = guard.client();
    let err = client.send_to("nope", json!({"n": 1})).unwrap_err();
    assert!(matches!(&err, SendError::UnknownEndpoint(_)), "{err:?}");
    assert_eq!(err.into_event().unwrap().as_value().unwrap()["n"], 1);
    assert!(client.send_to_tracked("nope", json!(2)).is_err());
    assert_eq!(client.stats().submitted, 0);
    drop(guard);
}

/// One endpoint black-holed (accepts, never answers) does not slow the other: every event to
/// the healthy endpoint is delivered while the black hole's requests are still hanging (the
/// default request timeout is 15 s, so any coupling would show). Shutdown then settles the
/// black hole's events within the one deadline.
#[test]
fn a_black_holed_endpoint_never_slows_another() {
    let good = Sink::ok();
    let hole = Sink::with(|_| Reply::BlackHole);
    let guard =
        posthaste::builder(good.url()).endpoint("hole", posthaste::endpoint(hole.url())).start().unwrap();
    let client = guard.client();
    let mut receipts = Vec::new();
    for i in 0..300 {
        client.send_to("hole", json!({"hole": i})).unwrap();
        receipts.push(client.send_tracked(json!({"good": i})).unwrap());
    }
    for r in &receipts {
        assert!(delivered(r.wait(PATIENCE)), "{:?}", r.try_outcome());
    }
    let h = client.endpoint_stats("hole").unwrap();
    assert_eq!((h.delivered, h.failed, h.settled()), (0, 0, 0), "the black hole answered? {h:?}");
    assert!(hole.wait_for_requests(2, PATIENCE), "both of the black hole's workers are stuck");
    assert_eq!(client.endpoint_stats(DEFAULT_ENDPOINT).unwrap().delivered, 300);

    let began = Instant::now();
    let report = guard.shutdown();
    assert!(began.elapsed() < std::time::Duration::from_secs(3) + PATIENCE / 4, "{:?}", began.elapsed());
    assert!(report.deadline_reached);
    let h = &report.endpoints[1].1;
    assert_eq!((h.abandoned, h.cancelled, h.submitted), (2, 298, 300), "{h:?}");
    assert_eq!(report.stats.delivered, 300);
    assert_invariant(&report.stats);
    assert_invariant(h);
}

/// One endpoint answering 503 (retried with backoff, breaker opening) does not slow the other.
#[test]
fn a_failing_endpoint_never_slows_another() {
    let good = Sink::ok();
    let bad = Sink::with(|_| Reply::Status(503));
    let guard =
        posthaste::builder(good.url()).endpoint("bad", posthaste::endpoint(bad.url())).start().unwrap();
    let client = guard.client();
    let mut receipts = Vec::new();
    for i in 0..300 {
        client.send_to("bad", json!({"bad": i})).unwrap();
        receipts.push(client.send_tracked(json!({"good": i})).unwrap());
    }
    for r in &receipts {
        assert!(delivered(r.wait(PATIENCE)), "{:?}", r.try_outcome());
    }
    let b = client.endpoint_stats("bad").unwrap();
    assert_eq!(b.delivered, 0);
    assert!(b.requests > 0);
    assert_invariant(&b);
    let report = guard.shutdown();
    assert_eq!(report.endpoints[0].1.delivered, 300);
    assert_eq!(report.endpoints[1].1.settled(), 300);
    assert_invariant(&report.stats);
}

#[test]
fn a_route_picks_the_endpoint_and_unmatched_events_go_to_otherwise() {
    let sink = Sink::ok();
    let base = sink.url().trim_end_matches("/ingest").to_string();
    let guard = posthaste::builder(format!("{base}/other"))
        .endpoint("created", posthaste::endpoint(format!("{base}/created")))
        .endpoint("updated", posthaste::endpoint(format!("{base}/updated")))
        .endpoint("cancelled", posthaste::endpoint(format!("{base}/cancelled")))
        .route(
            Route::by_field("type")
                .to("order_created", "created")
                .to("order_updated", "updated")
                .to("order_cancelled", "cancelled"),
        )
        .start()
        .unwrap();
    let client = guard.client();
    for t in ["order_created", "order_updated", "order_cancelled", "order_lost"] {
        client.send(json!({"type": t})).unwrap();
    }
    client.send(json!({"no_type": true})).unwrap();
    client.send_serialize(&json!({"type": "order_created"})).unwrap(); // pre-encoded: not read
    assert!(client.flush(PATIENCE));
    let mut seen: Vec<(String, String)> = sink
        .requests()
        .iter()
        .map(|r| (r.path.clone(), r.json()["type"].as_str().unwrap_or("-").to_string()))
        .collect();
    seen.sort();
    let expected = [
        ("/cancelled", "order_cancelled"),
        ("/created", "order_created"),
        ("/other", "-"),
        ("/other", "order_created"),
        ("/other", "order_lost"),
        ("/updated", "order_updated"),
    ];
    assert_eq!(seen, expected.map(|(a, b)| (a.to_string(), b.to_string())));
    assert_eq!(client.endpoint_stats("created").unwrap().delivered, 1);
    drop(guard);
}

#[test]
fn bad_endpoint_configurations_are_refused_at_start() {
    let url = "http://127.0.0.1:9/";
    let e = posthaste::builder(url)
        .endpoint("a", posthaste::endpoint(url))
        .endpoint("a", posthaste::endpoint(url));
    assert!(matches!(e.start(), Err(Error::InvalidOption { option: "endpoint", .. })));
    let e = posthaste::builder(url).endpoint(DEFAULT_ENDPOINT, posthaste::endpoint(url)).start();
    assert!(matches!(e, Err(Error::InvalidOption { option: "endpoint", .. })));
    let e = posthaste::builder(url).endpoint("", posthaste::endpoint(url)).start();
    assert!(matches!(e, Err(Error::InvalidOption { option: "endpoint", .. })));
    let e = posthaste::builder(url).endpoint("w", posthaste::endpoint(url).workers(0)).start().unwrap_err();
    assert!(
        matches!(&e, Error::Endpoint { name, error } if name == "w"
        && matches!(**error, Error::InvalidOption { option: "workers", .. })),
        "{e:?}"
    );
    let e =
        posthaste::builder(url).endpoint("u", posthaste::endpoint("ftp://x:S3CRET@h/")).start().unwrap_err();
    assert!(
        matches!(&e, Error::Endpoint { name, error } if name == "u" && matches!(**error, Error::InvalidUrl { .. }))
    );
    assert!(!e.to_string().contains("S3CRET"), "{e}");
    let e = posthaste::builder(url)
        .endpoint("a", posthaste::endpoint(url))
        .route(Route::by_field("type").to("x", "a").to("y", "b"))
        .start()
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidOption { option: "route", reason } if reason.contains("\"b\"")),
        "{e:?}"
    );
}

/// A gate the sink's script waits on (bounded by `PATIENCE`) until the test opens it.
#[derive(Clone, Default)]
struct Latch(std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);

impl Latch {
    fn wait(&self) {
        let (lock, cv) = &*self.0;
        let guard = lock.lock().unwrap();
        let _ = cv.wait_timeout_while(guard, PATIENCE, |open| !*open).unwrap();
    }
    fn open(&self) {
        *self.0 .0.lock().unwrap() = true;
        self.0 .1.notify_all();
    }
}

#[test]
fn broadcast_sends_one_copy_to_every_endpoint_with_one_outcome_each() {
    let a = Sink::ok();
    let b = Sink::ok();
    let c = Sink::with(|_| Reply::Status(400));
    let guard = posthaste::builder(a.url())
        .endpoint("b", posthaste::endpoint(b.url()))
        .endpoint("c", posthaste::endpoint(c.url()))
        .start()
        .unwrap();
    let client = guard.client();
    let receipt = client.broadcast(json!({"deploy": 42})).unwrap();
    let outcomes = receipt.wait(PATIENCE);
    let names: Vec<&str> = outcomes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["default", "b", "c"]);
    assert!(delivered(outcomes[0].1.clone()) && delivered(outcomes[1].1.clone()));
    assert!(matches!(outcomes[2].1, Some(Outcome::Rejected { status: 400, .. })), "{outcomes:?}");
    assert!(!receipt.all_delivered());
    for sink in [&a, &b, &c] {
        assert_eq!(sink.requests().len(), 1);
        assert_eq!(sink.requests()[0].json(), json!({"deploy": 42}));
    }

    let receipt = client.broadcast_with(&posthaste::Broadcast::to(["b", "b", "default"]), json!(1)).unwrap();
    assert_eq!(receipt.endpoints().collect::<Vec<_>>(), ["b", "default"]);
    assert!(receipt.wait(PATIENCE).iter().all(|(_, o)| delivered(o.clone())));
    assert!(receipt.all_delivered());

    let before = client.stats();
    let err = client.broadcast_with(&posthaste::Broadcast::to(["b", "zzz"]), json!(2)).unwrap_err();
    assert!(matches!(err, SendError::UnknownEndpoint(_)));
    assert_eq!(client.stats().submitted, before.submitted, "nothing queued");

    let report = guard.shutdown();
    assert_eq!(report.stats.submitted, 5);
    assert_eq!((report.stats.delivered, report.stats.rejected), (4, 1));
    assert_invariant(&report.stats);
    let err = client.broadcast(json!(3)).unwrap_err();
    assert!(err.is_closed());
}

/// With `fail_fast`, a copy still queued when another copy fails permanently is cancelled,
/// never sent; without it, it is delivered. The "held" endpoint's only worker is kept busy
/// by a request the sink holds until the test opens the latch.
#[test]
fn fail_fast_cancels_the_copies_not_yet_sent() {
    for fail_fast in [true, false] {
        let latch = Latch::default();
        let held_latch = latch.clone();
        let held = Sink::with(move |r| {
            if r.json().get("block").is_some() {
                held_latch.wait();
            }
            Reply::Status(200)
        });
        let bad = Sink::with(|_| Reply::Status(422));
        let guard = posthaste::builder(bad.url())
            .endpoint("held", posthaste::endpoint(held.url()).workers(1))
            .start()
            .unwrap();
        let client = guard.client();
        let blocker = client.send_to_tracked("held", json!({"block": true})).unwrap();
        assert!(held.wait_for_requests(1, PATIENCE), "the held worker is busy");
        let how = posthaste::Broadcast::all().fail_fast(fail_fast);
        let receipt = client.broadcast_with(&how, json!({"copy": 1})).unwrap();
        // The default endpoint's copy fails first: the held copy is still queued.
        let first = receipt.get("default").unwrap().wait(PATIENCE);
        assert!(matches!(first, Some(Outcome::Rejected { status: 422, .. })), "{first:?}");
        assert_eq!(receipt.get("held").unwrap().try_outcome(), None);
        latch.open();
        assert!(delivered(blocker.wait(PATIENCE)));
        let outcomes = receipt.wait(PATIENCE);
        if fail_fast {
            assert_eq!(outcomes[1].1, Some(Outcome::Cancelled), "{outcomes:?}");
            assert_eq!(held.requests().len(), 1, "the cancelled copy was never sent");
        } else {
            assert!(delivered(outcomes[1].1.clone()), "{outcomes:?}");
            assert_eq!(held.requests().len(), 2);
        }
        let report = guard.shutdown();
        assert_eq!(report.stats.submitted, 3);
        assert_eq!(report.stats.cancelled, u64::from(fail_fast));
        assert_invariant(&report.stats);
    }
}

/// A copy already on the wire when another fails cannot be recalled: it is reported as it ends.
#[test]
fn fail_fast_reports_copies_already_on_the_wire_as_they_end() {
    let latch = Latch::default();
    let held_latch = latch.clone();
    // The bad endpoint answers only once the held copy has arrived, so that copy is on the
    // wire when the failure comes, however the two workers are scheduled.
    let arrived = Latch::default();
    let held_arrived = arrived.clone();
    let held = Sink::with(move |_| {
        held_arrived.open();
        held_latch.wait();
        Reply::Status(200)
    });
    let bad = Sink::with(move |_| {
        arrived.wait();
        Reply::Status(400)
    });
    let guard =
        posthaste::builder(held.url()).endpoint("bad", posthaste::endpoint(bad.url())).start().unwrap();
    let client = guard.client();
    let how = posthaste::Broadcast::all().fail_fast(true);
    let receipt = client.broadcast_with(&how, json!({"copy": 1})).unwrap();
    assert!(held.wait_for_requests(1, PATIENCE), "the held copy is on the wire");
    let bad_outcome = receipt.get("bad").unwrap().wait(PATIENCE);
    assert!(matches!(bad_outcome, Some(Outcome::Rejected { status: 400, .. })), "{bad_outcome:?}");
    assert_eq!(receipt.get("default").unwrap().try_outcome(), None);
    latch.open();
    let outcomes = receipt.wait(PATIENCE);
    assert!(delivered(outcomes[0].1.clone()), "{outcomes:?}");
    drop(guard);
}
