//! Proxies: CONNECT tunnels with basic authentication, plain-HTTP forwarding (absolute-form),
//! SOCKS5 with user/password, how refusals are classified, and the probe through a proxy.
//! Proxies and endpoints are loopback servers started by each test.

mod support;

use posthaste::{Error, Outcome, Proxy, Retry, StepKind};
use serde_json::json;
use support::proxy::{Entry, TestProxy, TlsFront};
use support::tls::{Ca, TlsServer};
use support::{Sink, PATIENCE};

fn send_one(b: posthaste::Builder) -> (Outcome, posthaste::Report) {
    let guard = b.retry(support::fast_retry()).start().expect("start");
    let receipt = guard.client().send_tracked(json!({"via": "proxy"})).unwrap();
    let outcome = receipt.wait(PATIENCE).expect("settled");
    (outcome, guard.shutdown())
}

fn entry(method: &str, target: &str, user: Option<&str>, status: u16) -> Entry {
    Entry { method: method.into(), target: target.into(), user: user.map(str::to_string), status }
}

#[test]
fn https_through_connect_proxy_with_credentials() {
    let ca = Ca::new("posthaste test CA");
    let server = TlsServer::start(&ca.server(&["127.0.0.1"]), None);
    // A password with characters that must be percent-encoded in the URL.
    let proxy = TestProxy::http_with_auth("alice", "p@ss:w/rd");
    let url = format!("http://alice:p%40ss%3Aw%2Frd@{}", proxy.addr());
    let (outcome, report) =
        send_one(posthaste::builder(server.url()).proxy(url).add_root_certs_pem(ca.pem.clone()));
    assert_eq!(outcome, Outcome::Delivered { status: 200, attempts: 1 });
    assert_eq!(report.stats.delivered, 1);
    let target = format!("127.0.0.1:{}", server.port());
    assert_eq!(proxy.log(), [entry("CONNECT", &target, Some("alice"), 200)]);
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn bad_proxy_credentials_fail_once_and_name_the_proxy() {
    let ca = Ca::new("posthaste test CA");
    let server = TlsServer::start(&ca.server(&["127.0.0.1"]), None);
    let proxy = TestProxy::http_with_auth("alice", "right");
    let b = posthaste::builder(server.url())
        .proxy(proxy.url_with("alice", "wrong"))
        .add_root_certs_pem(ca.pem.clone());
    let (outcome, report) = send_one(b);
    match &outcome {
        Outcome::Failed { reason, attempts: 1 } => {
            let expected =
                format!("proxy {} refused CONNECT to 127.0.0.1:{}: 407", proxy.addr(), server.port());
            assert!(reason.starts_with(&expected), "{reason}");
            assert!(reason.contains("proxy authentication failed"), "{reason}");
            assert!(!reason.contains("wrong"), "no password in reasons: {reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(report.stats.retries, 0);
    assert_eq!(proxy.log().len(), 1, "not retried");
    assert!(server.requests().is_empty());
}

#[test]
fn plain_http_is_forwarded_in_absolute_form() {
    for proxy in [TestProxy::http_with_auth("bob", "secret"), TestProxy::http_closing("bob", "secret")] {
        forwarded_through(proxy);
    }
}

fn forwarded_through(proxy: TestProxy) {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url())
        .proxy(proxy.url_with("bob", "secret"))
        .bearer_auth("tok")
        .retry(support::fast_retry())
        .start()
        .unwrap();
    let client = guard.client();
    // Several events, over one kept-alive connection to the proxy or, with a proxy that closes
    // after each answer, over pooled connections that went stale and are replaced silently.
    let receipts: Vec<_> = (0..10).map(|i| client.send_tracked(json!({"i": i})).unwrap()).collect();
    for r in &receipts {
        assert_eq!(r.wait(PATIENCE), Some(Outcome::Delivered { status: 200, attempts: 1 }));
    }
    let report = guard.shutdown();
    assert_eq!((report.stats.delivered, report.stats.retries), (10, 0));
    let log = proxy.log();
    assert_eq!(log.len(), 10);
    let absolute = format!("http://{}/ingest", sink.addr());
    assert!(log.iter().all(|e| *e == entry("POST", &absolute, Some("bob"), 200)), "{log:?}");
    let reqs = sink.requests();
    assert_eq!(reqs.len(), 10);
    for r in &reqs {
        assert_eq!(r.path, "/ingest");
        assert_eq!(r.header("host"), Some(sink.addr().to_string().as_str()));
        assert_eq!(r.header("authorization"), Some("Bearer tok"));
        assert_eq!(r.header("proxy-authorization"), None, "the proxy strips its credentials");
        assert_eq!(r.header("via"), Some("1.1 test-proxy"));
    }
}

#[test]
fn plain_http_with_bad_credentials_fails_once() {
    let sink = Sink::ok();
    let proxy = TestProxy::http_with_auth("bob", "secret");
    let (outcome, _) = send_one(posthaste::builder(sink.url()).proxy(proxy.url()));
    match &outcome {
        Outcome::Failed { reason, attempts: 1 } => {
            let expected = format!("proxy {} refused to forward to {}: 407", proxy.addr(), sink.addr());
            assert!(reason.starts_with(&expected), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(proxy.log().len(), 1);
    assert_eq!(sink.count(), 0);
}

#[test]
fn socks5_with_good_and_bad_credentials() {
    let ca = Ca::new("posthaste test CA");
    let server = TlsServer::start(&ca.server(&["127.0.0.1"]), None);
    let socks = TestProxy::socks5_with_auth("carol", "pw");
    let (outcome, _) = send_one(
        posthaste::builder(server.url())
            .proxy(socks.url_with("carol", "pw"))
            .add_root_certs_pem(ca.pem.clone()),
    );
    assert!(outcome.is_delivered(), "{outcome:?}");
    // socks5h: the name goes to the proxy unresolved.
    let sink = Sink::ok();
    let plain = sink.url().replace("127.0.0.1", "localhost");
    let (outcome, _) =
        send_one(posthaste::builder(plain).proxy(format!("socks5h://carol:pw@{}", socks.addr())));
    assert!(outcome.is_delivered(), "{outcome:?}");
    let log = socks.log();
    assert_eq!(log[0], entry("SOCKS5", &format!("127.0.0.1:{}", server.port()), Some("carol"), 0));
    assert_eq!(log[1], entry("SOCKS5", &format!("localhost:{}", sink.addr().port()), Some("carol"), 0));

    let (outcome, report) = send_one(posthaste::builder(server.url()).proxy(socks.url_with("carol", "nope")));
    match &outcome {
        Outcome::Failed { reason, attempts: 1 } => {
            assert!(reason.contains(&format!("SOCKS5 proxy {}", socks.addr())), "{reason}");
            assert!(reason.contains("authentication failed"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(report.stats.retries, 0);
    let (outcome, _) = send_one(posthaste::builder(server.url()).proxy(socks.url()));
    assert!(
        matches!(&outcome, Outcome::Failed { reason, attempts: 1 } if reason.contains("user:password")),
        "{outcome:?}"
    );
}

#[test]
fn unreachable_proxy_is_transient_and_named() {
    let port = support::closed_port();
    let guard = posthaste::builder("https://collector.example/ingest")
        .proxy(format!("http://127.0.0.1:{port}"))
        .retry(
            Retry::new()
                .max_attempts(2)
                .initial_delay(std::time::Duration::from_millis(1))
                .max_delay(std::time::Duration::from_millis(1)),
        )
        .start()
        .unwrap();
    let r = guard.client().send_tracked(json!(1)).unwrap();
    match r.wait(PATIENCE) {
        Some(Outcome::Failed { reason, attempts: 2 }) => {
            assert!(reason.starts_with(&format!("proxy 127.0.0.1:{port}: connection refused")), "{reason}");
            assert!(reason.contains("gave up after 2 attempts"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn probe_through_a_proxy_shows_each_hop() {
    let ca = Ca::new("Corp Root CA");
    let server = TlsServer::start(&ca.server(&["127.0.0.1"]), None);
    let proxy = TestProxy::http_with_auth("alice", "pw");
    let guard = posthaste::builder(server.url())
        .proxy(proxy.url_with("alice", "pw"))
        .add_root_certs_pem(ca.pem.clone())
        .start()
        .unwrap();
    let d = guard.client().probe();
    assert!(d.is_ok(), "{d}");
    let kinds: Vec<StepKind> = d.steps.iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        [
            StepKind::Route,
            StepKind::Resolve,
            StepKind::Connect,
            StepKind::Tunnel,
            StepKind::Tls,
            StepKind::Http
        ]
    );
    let text = d.to_string();
    assert!(
        text.contains(&format!("via proxy http://alice:***@{} (from Builder::proxy)", proxy.addr())),
        "{text}"
    );
    assert!(text.contains("opened a tunnel") && text.contains("anchored at CN=Corp Root CA"), "{text}");
    assert!(!text.contains(":pw@"), "{text}");
    drop(guard);

    let guard = posthaste::builder(server.url()).proxy(proxy.url_with("alice", "bad")).start().unwrap();
    let d = guard.client().probe();
    let failure = d.failure().unwrap();
    assert_eq!(failure.kind, StepKind::Tunnel, "{d}");
    assert!(failure.detail.contains("407"), "{d}");

    // Plain HTTP: forwarded, no tunnel step.
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url()).proxy(proxy.url_with("alice", "pw")).start().unwrap();
    let d = guard.client().probe();
    assert!(d.is_ok(), "{d}");
    assert!(d.step(StepKind::Tunnel).is_none());
    assert!(d.step(StepKind::Route).unwrap().detail.contains("absolute-form"), "{d}");
    assert_eq!(sink.requests()[0].method, "HEAD");
}

#[test]
fn invalid_proxy_urls_fail_start_with_the_password_redacted() {
    for (url, why) in [
        ("gopher://u:hunter2@p:1", "scheme"),
        ("http://u:hunter2@p:99999", "port"),
        ("http://u:hunter2@p:1/path", "path"),
        ("http://u:%zz@p:1", "password"),
    ] {
        let e = posthaste::builder("https://collector.example/").proxy(url).start().map(drop).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, Error::InvalidProxy { .. }), "{e:?}");
        assert!(text.contains("Builder::proxy") && text.contains(why), "{text}");
        assert!(!text.contains("hunter2") && !format!("{e:?}").contains("hunter2"), "{text}");
    }
    // A parsed Proxy is accepted as it is.
    let p = Proxy::parse("socks5h://u:pw@127.0.0.1:1080").unwrap();
    assert_eq!(p.to_string(), "socks5h://u:***@127.0.0.1:1080");
    let guard = posthaste::builder("https://collector.example/").proxy(p).start().unwrap();
    assert!(format!("{guard:?}").contains("through proxy 127.0.0.1:1080"), "{guard:?}");
}

#[test]
fn https_proxy_for_https_and_plain_http_endpoints() {
    let ca = Ca::new("posthaste test CA");
    let server = TlsServer::start(&ca.server(&["127.0.0.1"]), None);
    let sink = Sink::ok();
    let proxy = TestProxy::http_with_auth("dave", "pw");
    let front = TlsFront::new(&ca.server(&["127.0.0.1"]), proxy.addr());
    let url = front.url_with("dave", "pw");
    // TLS to the proxy, CONNECT, TLS to the endpoint inside it; both verified with the CA.
    let (outcome, _) =
        send_one(posthaste::builder(server.url()).proxy(url.as_str()).add_root_certs_pem(ca.pem.clone()));
    assert!(outcome.is_delivered(), "{outcome:?}");
    // Absolute-form forwarding over TLS to the proxy.
    let (outcome, _) =
        send_one(posthaste::builder(sink.url()).proxy(url.as_str()).add_root_certs_pem(ca.pem.clone()));
    assert!(outcome.is_delivered(), "{outcome:?}");
    let log = proxy.log();
    assert_eq!(log[0], entry("CONNECT", &format!("127.0.0.1:{}", server.port()), Some("dave"), 200));
    assert_eq!(log[1], entry("POST", &format!("http://{}/ingest", sink.addr()), Some("dave"), 200));

    let guard = posthaste::builder(server.url())
        .proxy(url.as_str())
        .add_root_certs_pem(ca.pem.clone())
        .start()
        .unwrap();
    let d = guard.client().probe();
    assert!(d.is_ok(), "{d}");
    let proxy_tls = d.step(StepKind::ProxyTls).expect("proxy TLS step");
    assert!(proxy_tls.detail.contains("anchored at CN=posthaste test CA"), "{d}");
    drop(guard);

    // The proxy's certificate is checked like the endpoint's.
    let (outcome, _) = send_one(posthaste::builder(sink.url()).proxy(url.as_str()));
    match &outcome {
        Outcome::Failed { reason, attempts: 1 } => {
            assert!(
                reason.contains(&format!("TLS with proxy {}", front.addr()))
                    && reason.contains("unknown issuer"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_refused_connect_reads_with_the_proxys_own_reason_phrase() {
    use std::io::{BufRead, BufReader, Write};
    // A proxy that refuses every CONNECT with a phrase of its own, reading each request head.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let mut served = 0;
        // ureq's CONNECT, then the one posthaste makes to read the phrase; bounded.
        while served < 2 {
            let Ok((stream, _)) = listener.accept() else { break };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let mut w = stream;
            let _ = w.write_all(b"HTTP/1.1 403 Tunnels closed by policy\r\nContent-Length: 0\r\n\r\n");
            served += 1;
        }
        served
    });
    let b = posthaste::builder("https://127.0.0.1:9/ingest").proxy(format!("http://{addr}"));
    let (outcome, report) = send_one(b);
    match outcome {
        Outcome::Failed { reason, attempts: 1 } => {
            assert!(
                reason.contains("403 Tunnels closed by policy") && !reason.contains("403 403"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(report.stats.requests, 1);
    assert_eq!(server.join().unwrap(), 2);
}
