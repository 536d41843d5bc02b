//! The fault matrix: one row per way an endpoint (or the path to it) can fail, each asserting
//! the event's outcome, its attempt count, the requests the endpoint saw, and the accounting
//! invariant. Defaults everywhere except quick timings: 3 attempts, 1 ms backoff without
//! jitter, 300 ms request phases. The circuit breaker (5 failures) and the retry budget keep
//! their defaults, and never interfere with 3 attempts.

mod support;

use std::time::{Duration, Instant, SystemTime};

use posthaste::{Outcome, Retry};
use serde_json::json;
use support::tls::{Ca, TlsServer};
use support::{assert_invariant, Reply, Request, Sink, PATIENCE};

/// Where the row's event goes.
enum Target {
    /// A scripted loopback sink.
    Sink(fn(&Request) -> Reply),
    /// A closed port: connection refused.
    Refused,
    /// A host under `.invalid`, which never resolves (RFC 6761).
    Unresolvable,
    /// A TLS endpoint with a certificate from an unknown CA.
    UntrustedTls,
}

/// The expected outcome.
#[derive(Debug)]
enum Expect {
    Delivered(u16),
    Rejected(u16),
    /// `Failed` with a reason containing this text.
    Failed(&'static str),
}

struct Row {
    name: &'static str,
    target: Target,
    expect: Expect,
    attempts: u32,
    /// Extra check on the sink's record (e.g. the Retry-After wait).
    check: Option<fn(&Sink)>,
}

fn first_then_ok(first: Reply) -> impl Fn(&Request) -> Reply {
    move |req| if req.index == 0 { first.clone() } else { Reply::Status(200) }
}

/// Rows whose first answer is `status` and whose retry succeeds.
macro_rules! once_then_ok {
    ($reply:expr) => {
        Target::Sink(|req| first_then_ok($reply)(req))
    };
}

fn http_date_in(d: Duration) -> String {
    httpdate_fmt(SystemTime::now() + d)
}

/// Formats an HTTP date (IMF-fixdate) without a dependency: the sink only needs to send it.
fn httpdate_fmt(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    let days = secs / 86_400;
    let (h, m, s) = ((secs % 86_400) / 3600, (secs % 3600) / 60, secs % 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let mon = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        [(month - 1) as usize];
    format!("{weekday}, {day:02} {mon} {year} {h:02}:{m:02}:{s:02} GMT")
}

/// The second request came at least `floor` after the first answer.
fn waited_at_least(sink: &Sink, floor: Duration) {
    let answered = sink.answered();
    let requests = sink.requests();
    let first_answer = answered.iter().find(|(i, _, _)| *i == 0).expect("first answer").1;
    let gap = requests[1].at.duration_since(first_answer);
    assert!(gap >= floor, "retried after {gap:?}, Retry-After asked for {floor:?}");
}

fn rows() -> Vec<Row> {
    let reject = |name, status: u16| Row {
        name,
        target: match status {
            400 => Target::Sink(|_| Reply::body(400, "bad event")),
            401 => Target::Sink(|_| Reply::Status(401)),
            403 => Target::Sink(|_| Reply::Status(403)),
            404 => Target::Sink(|_| Reply::Status(404)),
            413 => Target::Sink(|_| Reply::Status(413)),
            501 => Target::Sink(|_| Reply::Status(501)),
            _ => unreachable!(),
        },
        expect: Expect::Rejected(status),
        attempts: 1,
        check: None,
    };
    let retried =
        |name, target| Row { name, target, expect: Expect::Delivered(200), attempts: 2, check: None };
    vec![
        reject("400 bad request", 400),
        reject("401 unauthorized", 401),
        reject("403 forbidden", 403),
        reject("404 not found", 404),
        reject("413 too large (no batching: rejected)", 413),
        reject("501 not implemented", 501),
        Row {
            name: "302 redirect (never followed)",
            target: Target::Sink(|req| {
                assert_eq!(req.method, "POST", "a redirect must never turn into a GET");
                Reply::Full {
                    status: 302,
                    headers: vec![("Location".into(), "/elsewhere".into())],
                    body: String::new(),
                }
            }),
            expect: Expect::Rejected(302),
            attempts: 1,
            check: None,
        },
        retried("408 request timeout", once_then_ok!(Reply::Status(408))),
        retried("425 too early", once_then_ok!(Reply::Status(425))),
        Row {
            name: "429 with Retry-After seconds",
            target: once_then_ok!(Reply::retry_after(429, "1")),
            expect: Expect::Delivered(200),
            attempts: 2,
            check: Some(|sink| waited_at_least(sink, Duration::from_secs(1))),
        },
        Row {
            name: "429 with Retry-After HTTP-date",
            target: Target::Sink(|req| {
                if req.index == 0 {
                    Reply::retry_after(429, &http_date_in(Duration::from_secs(2)))
                } else {
                    Reply::Status(200)
                }
            }),
            expect: Expect::Delivered(200),
            attempts: 2,
            // The date has one-second resolution: at least a second remains of the two.
            check: Some(|sink| waited_at_least(sink, Duration::from_millis(900))),
        },
        retried(
            "429 with garbage Retry-After (backoff applies)",
            once_then_ok!(Reply::retry_after(429, "soon")),
        ),
        retried("500 internal error", once_then_ok!(Reply::Status(500))),
        retried("502 bad gateway", once_then_ok!(Reply::Status(502))),
        retried("503 unavailable", once_then_ok!(Reply::Status(503))),
        retried("504 gateway timeout", once_then_ok!(Reply::Status(504))),
        Row {
            name: "503 every time (retries exhausted)",
            target: Target::Sink(|_| Reply::Status(503)),
            expect: Expect::Failed("gave up after 3 attempts"),
            attempts: 3,
            check: None,
        },
        Row {
            name: "connection refused",
            target: Target::Refused,
            expect: Expect::Failed("refused"),
            attempts: 3,
            check: None,
        },
        retried("reset before the answer", once_then_ok!(Reply::Reset)),
        retried("closed before the answer", once_then_ok!(Reply::Close)),
        Row {
            name: "closed mid-body (status already received)",
            target: Target::Sink(|_| Reply::CloseMidBody(200)),
            expect: Expect::Delivered(200),
            attempts: 1,
            check: None,
        },
        retried("headers never sent (black hole)", once_then_ok!(Reply::BlackHole)),
        Row {
            name: "200 body trickled past the timeout (status already received)",
            target: Target::Sink(|_| Reply::Trickle {
                status: 200,
                bytes: 1000,
                every: Duration::from_millis(50),
            }),
            expect: Expect::Delivered(200),
            attempts: 1,
            check: None,
        },
        retried(
            "503 body trickled past the timeout",
            once_then_ok!(Reply::Trickle { status: 503, bytes: 1000, every: Duration::from_millis(50) }),
        ),
        Row {
            name: "DNS failure (.invalid host)",
            target: Target::Unresolvable,
            // The reason names the host and says the lookup failed; transient, so retried.
            expect: Expect::Failed("posthaste-fault-matrix.invalid:80: host not found"),
            attempts: 3,
            check: None,
        },
        Row {
            name: "TLS certificate from an unknown CA (permanent)",
            target: Target::UntrustedTls,
            expect: Expect::Failed("TLS"),
            attempts: 1,
            check: None,
        },
    ]
}

/// Runs one row; panics with what went wrong, if anything.
fn run(row: &Row) {
    let mut sink = None;
    let mut tls = None;
    let url = match row.target {
        Target::Sink(script) => sink.insert(Sink::with(script)).url(),
        Target::Refused => format!("http://127.0.0.1:{}/ingest", support::closed_port()),
        Target::Unresolvable => "http://posthaste-fault-matrix.invalid/ingest".to_string(),
        Target::UntrustedTls => {
            // A CA made now, which no client trusts.
            let leaf = Ca::new("posthaste fault matrix unknown CA").server(&["127.0.0.1"]);
            tls.insert(TlsServer::start(&leaf, None)).url()
        }
    };
    let guard = posthaste::builder(url)
        .workers(1)
        .retry(
            Retry::new()
                .initial_delay(Duration::from_millis(1))
                .max_delay(Duration::from_millis(1))
                .max_attempts(3)
                .jitter(false),
        )
        .connect_timeout(Duration::from_millis(500))
        .request_timeout(Duration::from_millis(300))
        .start()
        .unwrap();
    let receipt = guard.client().send_tracked(json!({"row": row.name})).unwrap();
    let outcome = receipt.wait(PATIENCE).expect("an outcome in time");
    let (attempts, what) = match (&row.expect, &outcome) {
        (Expect::Delivered(want), Outcome::Delivered { status, attempts }) => {
            assert_eq!(status, want);
            (*attempts, "delivered")
        }
        (Expect::Rejected(want), Outcome::Rejected { status, attempts, .. }) => {
            assert_eq!(status, want);
            (*attempts, "rejected")
        }
        (Expect::Failed(text), Outcome::Failed { reason, attempts }) => {
            assert!(reason.contains(text), "reason {reason:?} lacks {text:?}");
            (*attempts, "failed")
        }
        (want, got) => panic!("expected {want:?}, got {got:?}"),
    };
    assert_eq!(attempts, row.attempts, "attempts");
    let stats = guard.shutdown().stats;
    assert_invariant(&stats);
    assert_eq!(stats.submitted, 1);
    let count = match what {
        "delivered" => stats.delivered,
        "rejected" => stats.rejected,
        _ => stats.failed,
    };
    assert_eq!(count, 1, "{stats:?}");
    assert_eq!(stats.requests, u64::from(row.attempts), "requests in Stats");
    assert_eq!(stats.retries, u64::from(row.attempts) - 1, "retries in Stats");
    if let Some(sink) = &sink {
        assert_eq!(sink.count(), u64::from(row.attempts), "requests the sink saw");
        if let Some(check) = row.check {
            check(sink);
        }
    }
    if let Some(tls) = &tls {
        assert_eq!(tls.handshakes(), 0, "the client refused the certificate");
        assert!(tls.requests().is_empty());
    }
}

#[test]
fn fault_matrix() {
    let rows = rows();
    assert!(rows.len() >= 20);
    let began = Instant::now();
    let mut failures = Vec::new();
    for row in &rows {
        if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(row))) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{}: {message}", row.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
    eprintln!("{} fault rows passed in {:?}", rows.len(), began.elapsed());
}

#[test]
fn http_date_formatting() {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
    assert_eq!(httpdate_fmt(t), "Wed, 21 Oct 2015 07:28:00 GMT");
}
