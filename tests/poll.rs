//! Pollers against the loopback sink: conditional requests (`ETag` → `If-None-Match`, `304`
//! yields nothing), the extractor, `on_item` (panics caught and counted) and `forward_to` (the
//! relay, with full accounting), health transitions with backoff, pagination with its stop
//! rules, never two polls at once (a slow poll skips ticks), the errors `start()` gives, and
//! shutdown within the deadline. The timing rules themselves are unit-tested with an injected
//! clock in `src/policy/poll.rs`.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::unbounded;
use posthaste::{Error, Health};
use serde_json::{json, Value};
use support::{assert_invariant, Reply, Request, Sink, PATIENCE};

/// The shortest interval these tests poll at. A poll's request timeout defaults to half its
/// interval: with intervals of 10–40 ms that was 5–20 ms, which a loaded 2-core machine
/// overran now and then (a scheduling stall of the sink's connection thread), turning a 503 or
/// a 200 into a timed-out poll. 100 ms intervals leave a 50 ms timeout.
const TICK: Duration = Duration::from_millis(100);

fn json_reply(status: u16, headers: &[(&str, &str)], body: &Value) -> Reply {
    Reply::Full {
        status,
        headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
        body: body.to_string(),
    }
}

/// Serves `doc` with its version as `ETag`, answering `304` to a matching `If-None-Match`.
fn versioned(doc: Arc<Mutex<(u32, Value)>>) -> impl Fn(&Request) -> Reply + Send + Sync + 'static {
    move |r| {
        let (version, body) = doc.lock().unwrap().clone();
        let etag = format!("\"v{version}\"");
        if r.header("if-none-match") == Some(etag.as_str()) {
            return Reply::Full { status: 304, headers: vec![("ETag".into(), etag)], body: String::new() };
        }
        json_reply(200, &[("ETag", &etag), ("Last-Modified", "Tue, 01 Dec 2026 10:00:00 GMT")], &body)
    }
}

#[test]
fn conditional_polls_yield_each_version_once() {
    let doc = Arc::new(Mutex::new((1, json!([{"id": 1}, {"id": 2}]))));
    let sink = Sink::with(versioned(doc.clone()));
    let (tx, rx) = unbounded();
    let guard = posthaste::builder("http://127.0.0.1:9/unused")
        .poll(
            "feed",
            posthaste::poll(sink.url())
                .interval(TICK)
                .header("X-Api-Key", "k")
                .on_item(move |item| tx.send(item).unwrap()),
        )
        .start()
        .unwrap();
    let first: Vec<Value> = (0..2).map(|_| rx.recv_timeout(PATIENCE).unwrap()).collect();
    assert_eq!(first, [json!({"id": 1}), json!({"id": 2})]);
    // Two more polls, both answered 304.
    assert!(sink.wait_for_requests(3, PATIENCE));
    *doc.lock().unwrap() = (2, json!([{"id": 3}]));
    assert_eq!(rx.recv_timeout(PATIENCE).unwrap(), json!({"id": 3}));
    let seen = sink.count();
    assert!(sink.wait_for_requests(seen + 2, PATIENCE));
    let live = guard.client().poll_stats("feed").unwrap();
    assert!(live.items == 3 && live.polls >= 5, "{live:?}");
    let report = guard.shutdown();
    let stats = report.pollers[0].1;
    assert!(rx.try_recv().is_err(), "each version yields its items once");
    assert_eq!(stats.items, 3);
    assert!(stats.not_modified >= 3, "{stats:?}");
    assert_eq!(stats.failures, 0);
    let reqs = sink.requests();
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(reqs[0].header("if-none-match"), None);
    assert!(reqs.iter().all(|r| r.header("x-api-key") == Some("k")));
    assert!(reqs[1..].iter().all(|r| r.header("if-none-match").is_some()
        && r.header("if-modified-since") == Some("Tue, 01 Dec 2026 10:00:00 GMT")));
    assert_eq!(report.pollers[0].0, "feed");
    assert_eq!(stats.polls, stats.not_modified + 2, "{stats:?}");
}

#[test]
fn forward_to_relays_items_into_a_signed_endpoint_with_full_accounting() {
    let feed =
        Sink::with(|_| json_reply(200, &[], &json!({"data": [{"order": 1}, {"order": 2}, {"order": 3}]})));
    let hooks = Sink::ok();
    let guard = posthaste::builder("http://127.0.0.1:9/unused")
        .endpoint("hooks", posthaste::endpoint(hooks.url()).webhook_secret("whsec_c2VjcmV0"))
        .poll(
            "orders",
            posthaste::poll(feed.url())
                .interval(Duration::from_secs(3600))
                .query("status", "new")
                .extract(|v| v["data"].as_array().cloned().unwrap_or_default())
                .forward_to("hooks"),
        )
        .start()
        .unwrap();
    assert!(hooks.wait_for_events(3, PATIENCE));
    let client = guard.client();
    assert!(client.flush(PATIENCE));
    let report = guard.shutdown();
    let hooks_stats = &report.endpoints[1].1;
    assert_eq!((hooks_stats.submitted, hooks_stats.delivered), (3, 3));
    assert_invariant(hooks_stats);
    assert_eq!(report.pollers[0].1.items, 3);
    assert!(feed.requests()[0].path.ends_with("/ingest?status=new"), "{}", feed.requests()[0].path);
    let orders: Vec<Value> = hooks.requests().iter().map(|r| r.json()["order"].clone()).collect();
    assert_eq!(orders.len(), 3);
    assert!(hooks.requests().iter().all(|r| r.header("webhook-signature").is_some()));
}

#[test]
fn health_goes_failing_after_the_threshold_then_recovered_and_panics_are_counted() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let sink = Sink::with(move |_| match c.fetch_add(1, Ordering::SeqCst) {
        0..=3 => Reply::Status(500),
        _ => json_reply(200, &[], &json!([1, 2])),
    });
    let (tx, rx) = unbounded();
    let began = Instant::now();
    let guard = posthaste::builder("http://127.0.0.1:9/unused")
        .poll(
            "health",
            posthaste::poll(sink.url())
                .interval(TICK)
                .failure_threshold(3)
                .on_health(move |h| tx.send((h.clone(), Instant::now())).unwrap())
                .on_item(|_| panic!("an item callback that panics")),
        )
        .start()
        .unwrap();
    let (failing, at_failing) = rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(failing, Health::Failing { failures: 3 });
    let (recovered, at_recovered) = rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(recovered, Health::Recovered { after_failures: 4 });
    // Backoff while failing: 1, 2, 4 ticks after failures 1–3, 8 after the 4th.
    assert!(at_failing - began >= 3 * TICK, "{:?}", at_failing - began);
    assert!(at_recovered - at_failing >= (4 + 8) * TICK, "{:?}", at_recovered - at_failing);
    let stats = guard.client().poll_stats("health").unwrap();
    drop(guard);
    assert!(rx.try_recv().is_err(), "one transition each way");
    assert_eq!(stats.failures, 4);
    assert!(stats.panics >= 2 && stats.items >= 2, "{stats:?}");
}

#[test]
fn pagination_follows_next_until_a_repeat_or_the_cap() {
    let sink = Sink::with(|r| {
        let page: u32 = r.path.rsplit('=').next().and_then(|p| p.parse().ok()).unwrap_or(1);
        // Page 4 points back to page 2: a loop the poller must stop.
        let next = if page < 4 { page + 1 } else { 2 };
        json_reply(200, &[], &json!({"items": [page], "next": next}))
    });
    let base = sink.url();
    let run = |max_pages: usize| {
        let (tx, rx) = unbounded();
        let base = base.clone();
        let guard = posthaste::builder("http://127.0.0.1:9/unused")
            .poll(
                "pages",
                posthaste::poll(format!("{base}?page=1"))
                    .interval(Duration::from_secs(3600))
                    .max_pages(max_pages)
                    .extract(|v| v["items"].as_array().cloned().unwrap_or_default())
                    .paginate(move |v| Some(format!("{base}?page={}", v["next"])))
                    .on_item(move |item| tx.send(item).unwrap()),
            )
            .start()
            .unwrap();
        let first = rx.recv_timeout(PATIENCE).unwrap();
        // Shutdown lets the poll in progress finish (pages are not interrupted): then every
        // item it yielded has been handed out.
        let report = guard.shutdown();
        let mut pages = vec![first.as_u64().unwrap()];
        pages.extend(rx.try_iter().map(|v| v.as_u64().unwrap()));
        (pages, report.pollers[0].1)
    };
    let (pages, stats) = run(10);
    assert_eq!(pages, [1, 2, 3, 4], "stops when page 2 comes again");
    assert_eq!((stats.polls, stats.pages), (1, 4));
    let (pages, _) = run(2);
    assert_eq!(pages, [1, 2], "the page cap");
}

/// A poll slower than the interval (three pages, each answered after 120 ms, every 300 ms) never
/// overlaps the next one: it skips the ticks it outlasted, and counts them.
#[test]
fn a_slow_poll_skips_ticks_and_polls_never_overlap() {
    let sink = Sink::with(move |r| {
        let page: u32 = r.path.rsplit('=').next().and_then(|p| p.parse().ok()).unwrap_or(1);
        Reply::Delay(Duration::from_millis(120), Box::new(json_reply(200, &[], &json!({"page": page}))))
    });
    let base = sink.url();
    let guard = posthaste::builder("http://127.0.0.1:9/unused")
        .poll(
            "slow",
            posthaste::poll(format!("{base}?page=1"))
                .interval(Duration::from_millis(300))
                .request_timeout(Duration::from_millis(270))
                .paginate(move |v| {
                    let page = v["page"].as_u64().unwrap();
                    (page < 3).then(|| format!("{base}?page={}", page + 1))
                }),
        )
        .start()
        .unwrap();
    assert!(sink.wait_for_requests(9, PATIENCE), "three polls of three pages");
    let report = guard.shutdown();
    let stats = report.pollers[0].1;
    assert!(stats.polls >= 3 && stats.skipped_ticks >= stats.polls - 1, "{stats:?}");
    assert_eq!(stats.failures, 0, "{stats:?}");
    // One request at a time: each arrives after the previous one was answered.
    let requests = sink.requests();
    let answered = sink.answered();
    for pair in requests.windows(2) {
        let done = answered.iter().find(|(i, _, _)| *i == pair[0].index).expect("answered").1;
        assert!(pair[1].at >= done, "request {} overlapped request {}", pair[1].index, pair[0].index);
    }
}

#[test]
fn shutdown_stops_idle_and_stuck_pollers_within_the_deadline() {
    let hole = Sink::with(|_| Reply::BlackHole);
    let idle = Sink::ok();
    let guard = posthaste::builder("http://127.0.0.1:9/unused")
        .poll("stuck", posthaste::poll(hole.url()).interval(Duration::from_secs(60)).jitter(Duration::ZERO))
        .poll("idle", posthaste::poll(idle.url()).interval(Duration::from_secs(3600)))
        .start()
        .unwrap();
    assert!(hole.wait_for_requests(1, PATIENCE), "the stuck poller is in its request");
    let began = Instant::now();
    let report = guard.shutdown_timeout(Duration::from_millis(300));
    let took = began.elapsed();
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(report.detached_workers, 1, "{report:?}");
    assert!(report.deadline_reached);
}

#[test]
fn bad_poller_configurations_are_refused_at_start() {
    let b = || posthaste::builder("http://127.0.0.1:9/");
    let p = || posthaste::poll("http://127.0.0.1:9/feed");
    let e =
        b().poll("a", p().interval(Duration::from_secs(1)).request_timeout(Duration::from_secs(1))).start();
    assert!(
        matches!(&e, Err(Error::Poll { name, error }) if name == "a"
        && matches!(**error, Error::InvalidOption { option: "poll", .. })),
        "{e:?}"
    );
    let e = b().poll("a", p().forward_to("nope")).start().unwrap_err();
    assert!(e.to_string().contains("\"nope\""), "{e}");
    let e = b().poll("a", p()).poll("a", p()).start().unwrap_err();
    assert!(matches!(e, Error::InvalidOption { option: "poll", .. }), "{e:?}");
    let e = b().poll("u", posthaste::poll("ftp://u:S3CRET@h/")).start().unwrap_err();
    assert!(matches!(&e, Error::Poll { error, .. } if matches!(**error, Error::InvalidUrl { .. })), "{e:?}");
    assert!(!e.to_string().contains("S3CRET"));
    let e = b().poll("h", p().header("X-Bad", "a\r\nb")).start().unwrap_err();
    assert!(
        matches!(&e, Error::Poll { error, .. } if matches!(**error, Error::InvalidHeader { .. })),
        "{e:?}"
    );
}

/// A failing poll's `Retry-After` is honoured: the next poll waits for it, not for the much
/// shorter backoff of the interval.
#[test]
fn retry_after_holds_the_next_poll_back() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let sink = Sink::with(move |_| match c.fetch_add(1, Ordering::SeqCst) {
        0 => Reply::retry_after(503, "1"),
        _ => json_reply(200, &[], &json!([])),
    });
    let guard = posthaste::builder("http://127.0.0.1:9/unused")
        .poll("limited", posthaste::poll(sink.url()).interval(TICK))
        .start()
        .unwrap();
    assert!(sink.wait_for_requests(2, PATIENCE));
    drop(guard);
    let reqs = sink.requests();
    let gap = reqs[1].at - reqs[0].at;
    assert!(gap >= Duration::from_millis(900), "the second poll came after {gap:?}");
}
