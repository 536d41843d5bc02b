//! Retries: what is retried, how often, how long apart, and what is final.

mod support;

use std::time::{Duration, Instant};

use posthaste::{Outcome, Retry};
use serde_json::json;
use support::{assert_invariant, fast_retry, Reply, Sink, PATIENCE};

fn outcome_of(sink: &Sink, retry: Retry) -> (Outcome, posthaste::Report) {
    let guard = posthaste::builder(sink.url()).workers(1).retry(retry).start().unwrap();
    let receipt = guard.client().send_tracked(json!({"x": 1})).unwrap();
    let outcome = receipt.wait(PATIENCE).expect("settled");
    (outcome, guard.shutdown())
}

#[test]
fn transient_statuses_are_retried_until_success() {
    for status in [408u16, 425, 429, 500, 502, 503, 504] {
        let sink =
            Sink::with(move |req| if req.index < 2 { Reply::Status(status) } else { Reply::Status(200) });
        let (outcome, report) = outcome_of(&sink, fast_retry());
        assert_eq!(outcome, Outcome::Delivered { status: 200, attempts: 3 }, "status {status}");
        assert_eq!((report.stats.requests, report.stats.retries), (3, 2));
        assert_eq!(sink.count(), 3);
    }
}

#[test]
fn connection_faults_are_retried_until_success() {
    for fault in [Reply::Close, Reply::Reset] {
        let first = fault.clone();
        let sink = Sink::with(move |req| if req.index == 0 { first.clone() } else { Reply::Status(202) });
        let (outcome, _) = outcome_of(&sink, fast_retry());
        assert_eq!(outcome, Outcome::Delivered { status: 202, attempts: 2 }, "{fault:?}");
    }
}

#[test]
fn permanent_statuses_are_rejected_at_once_with_the_body() {
    for status in [400u16, 401, 403, 404, 409, 422, 501] {
        let sink = Sink::with(move |_| Reply::body(status, "{\"error\":\"bucket missing\"}"));
        let (outcome, report) = outcome_of(&sink, fast_retry());
        match outcome {
            Outcome::Rejected { status: s, attempts: 1, reason } => {
                assert_eq!(s, status);
                assert!(reason.contains("bucket missing"), "{reason}");
            }
            other => panic!("{status}: {other:?}"),
        }
        assert_eq!(report.stats.rejected, 1);
        assert_eq!(sink.count(), 1, "{status} must not be retried");
    }
}

#[test]
fn redirects_are_not_followed() {
    let sink = Sink::with(|_| Reply::Full {
        status: 302,
        headers: vec![("Location".into(), "/elsewhere".into())],
        body: String::new(),
    });
    let (outcome, _) = outcome_of(&sink, fast_retry());
    assert!(matches!(outcome, Outcome::Rejected { status: 302, attempts: 1, .. }), "{outcome:?}");
    assert_eq!(sink.count(), 1);
    assert_eq!(sink.requests()[0].method, "POST");
}

#[test]
fn attempt_budget_ends_in_failed() {
    let sink = Sink::with(|_| Reply::Status(503));
    let (outcome, report) = outcome_of(&sink, fast_retry().max_attempts(4));
    match outcome {
        Outcome::Failed { reason, attempts: 4 } => {
            assert!(reason.contains("503") && reason.contains("gave up after 4 attempts"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sink.count(), 4);
    assert_eq!(report.stats.failed, 1);
    assert_invariant(&report.stats);
}

#[test]
fn time_budget_ends_in_failed_before_the_attempt_budget() {
    let sink = Sink::with(|_| Reply::Status(500));
    let retry = Retry::new()
        .initial_delay(Duration::from_millis(100))
        .max_delay(Duration::from_millis(100))
        .max_attempts(100)
        .max_elapsed(Duration::from_millis(250))
        .jitter(false);
    let (outcome, _) = outcome_of(&sink, retry);
    // Waits of exactly 100 ms: attempts at 0, 100, 200 ms; a fourth would start past 250 ms.
    assert!(matches!(outcome, Outcome::Failed { attempts: 3, .. }), "{outcome:?}");
}

#[test]
fn refused_connections_are_retried_then_failed() {
    let url = format!("http://127.0.0.1:{}/x", support::closed_port());
    let guard = posthaste::builder(url).workers(1).retry(fast_retry().max_attempts(3)).start().unwrap();
    let receipt = guard.client().send_tracked(json!(1)).unwrap();
    match receipt.wait(PATIENCE).unwrap() {
        Outcome::Failed { reason, attempts: 3 } => assert!(reason.contains("refused"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(guard.shutdown().stats.requests, 3);
}

#[test]
fn slow_answers_time_out_and_are_retried() {
    let sink = Sink::with(|req| {
        if req.index == 0 {
            Reply::Delay(Duration::from_secs(5), Box::new(Reply::Status(200)))
        } else {
            Reply::Status(200)
        }
    });
    let guard = posthaste::builder(sink.url())
        .workers(1)
        .request_timeout(Duration::from_millis(150))
        .retry(fast_retry())
        .start()
        .unwrap();
    let receipt = guard.client().send_tracked(json!(1)).unwrap();
    assert_eq!(receipt.wait(PATIENCE), Some(Outcome::Delivered { status: 200, attempts: 2 }));
}

#[test]
fn retry_after_seconds_is_a_floor() {
    let sink =
        Sink::with(|req| if req.index == 0 { Reply::retry_after(429, "1") } else { Reply::Status(200) });
    let (outcome, _) = outcome_of(&sink, fast_retry());
    assert_eq!(outcome, Outcome::Delivered { status: 200, attempts: 2 });
    let answered = sink.answered()[0].1;
    let retried = sink.requests()[1].at;
    assert!(retried.duration_since(answered) >= Duration::from_secs(1), "{:?}", retried - answered);
}

#[test]
fn retry_after_pauses_every_worker() {
    // Two workers, two events in flight at once. The first is answered 429 Retry-After: 2;
    // only then is the second answered 503 (no Retry-After). Its own backoff is 300 ms, but
    // the shared pause holds it back until the 2 s are over.
    let sink = Sink::with_progress(|req, progress| match req.index {
        0 => {
            assert!(progress.wait_for_requests(2, PATIENCE));
            Reply::retry_after(429, "2")
        }
        1 => {
            assert!(progress.wait_for_answers(1, PATIENCE));
            Reply::Status(503)
        }
        _ => Reply::Status(200),
    });
    let retry = Retry::new().initial_delay(Duration::from_millis(300)).jitter(false);
    let guard = posthaste::builder(sink.url()).workers(2).retry(retry).start().unwrap();
    let client = guard.client();
    let a = client.send_tracked(json!("a")).unwrap();
    let b = client.send_tracked(json!("b")).unwrap();
    assert!(a.wait(PATIENCE).unwrap().is_delivered());
    assert!(b.wait(PATIENCE).unwrap().is_delivered());
    let paused_at = sink.answered().iter().find(|(i, _, _)| *i == 0).unwrap().1;
    let later: Vec<Instant> = sink.requests().iter().filter(|r| r.index >= 2).map(|r| r.at).collect();
    assert_eq!(later.len(), 2);
    for at in later {
        assert!(at.duration_since(paused_at) >= Duration::from_secs(2), "{:?}", at - paused_at);
    }
    drop(guard);
}

#[test]
fn garbage_retry_after_falls_back_to_backoff() {
    let sink =
        Sink::with(
            |req| if req.index == 0 { Reply::retry_after(503, "soon-ish") } else { Reply::Status(200) },
        );
    let (outcome, _) = outcome_of(&sink, fast_retry());
    assert_eq!(outcome, Outcome::Delivered { status: 200, attempts: 2 });
}

#[test]
fn retry_none_makes_one_attempt() {
    let sink = Sink::with(|_| Reply::Status(503));
    let (outcome, _) = outcome_of(&sink, Retry::none());
    assert!(matches!(outcome, Outcome::Failed { attempts: 1, .. }), "{outcome:?}");
    assert_eq!(sink.count(), 1);
}
