//! Interop with real peers: squid (forward proxy with basic authentication), tinyproxy (basic
//! authentication, stock `ConnectPort 443`), dante (SOCKS5 with the username method against a
//! system user), nginx (TLS with a generated CA, mTLS with `ssl_verify_client on`, plain HTTP)
//! and mitmproxy (a TLS-intercepting gateway). `scripts/interop.sh` installs and starts them on
//! 127.0.0.1 and runs these tests with the `INTEROP_*` variables set; plain `cargo test` skips
//! them.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use posthaste::{Outcome, StepKind};
use serde_json::json;
use support::PATIENCE;

const WHY: &str = "needs squid/tinyproxy/dante/nginx/mitmproxy: run scripts/interop.sh";

struct Env {
    dir: PathBuf,
    nginx_tls: u16,
    nginx_mtls: u16,
    nginx_http: u16,
    nginx_feed: u16,
    squid: String,
    mitm: String,
    user: String,
    password: String,
    tinyproxy: String,
    tinyproxy_password: String,
    dante: String,
    socks_user: String,
    socks_password: String,
}

fn env() -> Env {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: {WHY}"));
    let port = |name: &str| var(name).parse::<u16>().unwrap();
    Env {
        dir: PathBuf::from(var("INTEROP_DIR")),
        nginx_tls: port("INTEROP_NGINX_TLS"),
        nginx_mtls: port("INTEROP_NGINX_MTLS"),
        nginx_http: port("INTEROP_NGINX_HTTP"),
        nginx_feed: port("INTEROP_NGINX_FEED"),
        squid: var("INTEROP_SQUID"),
        mitm: var("INTEROP_MITM"),
        user: var("INTEROP_USER"),
        password: var("INTEROP_PASSWORD"),
        tinyproxy: var("INTEROP_TINYPROXY"),
        tinyproxy_password: var("INTEROP_TINYPROXY_PASSWORD"),
        dante: var("INTEROP_DANTE"),
        socks_user: var("INTEROP_SOCKS_USER"),
        socks_password: var("INTEROP_SOCKS_PASSWORD"),
    }
}

impl Env {
    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The squid URL with the credentials percent-encoded.
    fn squid_url(&self, password: &str) -> String {
        format!("http://{}:{}@{}", self.user, enc(password), self.squid)
    }

    /// The tinyproxy URL with the credentials percent-encoded.
    fn tinyproxy_url(&self, password: &str) -> String {
        format!("http://{}:{}@{}", self.user, enc(password), self.tinyproxy)
    }

    /// The dante URL (`socks5` or `socks5h`) with the credentials percent-encoded.
    fn dante_url(&self, scheme: &str, password: &str) -> String {
        format!("{scheme}://{}:{}@{}", self.socks_user, enc(password), self.dante)
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.file(name)).unwrap_or_default()
    }

    /// Waits until `name` has exactly `n` lines containing `needle` (nginx writes its access
    /// log after answering, so the last lines may come after the outcomes). Bounded.
    fn wait_for_count(&self, name: &str, needle: &str, n: usize) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = self.log(name);
            let seen = text.lines().filter(|l| l.contains(needle)).count();
            assert!(seen <= n, "{seen} lines with {needle:?} in {name}, expected {n}:\n{text}");
            if seen == n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{seen} lines with {needle:?} in {name}, expected {n}:\n{text}"
            );
            // Polls an external process's log file: there is no event to wait on.
            poll_interval(Duration::from_millis(50));
        }
    }

    /// Waits until `name` has a line containing every needle. Servers write their logs on their
    /// own schedule (squid logs a tunnel when it closes), so this polls the file, bounded.
    fn wait_for_line(&self, name: &str, needles: &[&str]) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = self.log(name);
            if let Some(line) = text.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
                return line.to_string();
            }
            assert!(Instant::now() < deadline, "no line with {needles:?} in {name}:\n{text}");
            // Polls an external process's log file: there is no event to wait on.
            poll_interval(Duration::from_millis(50));
        }
    }
}

/// Percent-encodes every byte but ASCII letters and digits.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// Waits `d` between two looks at a log file (a receive on a channel nobody sends on).
fn poll_interval(d: Duration) {
    let (_tx, rx) = std::sync::mpsc::channel::<()>();
    let _ = rx.recv_timeout(d);
}

/// A unique marker per test run, sent as a header and found in nginx's log.
fn run_id(test: &str) -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("{test}-{}-{nanos}", std::process::id())
}

fn send(b: posthaste::Builder, run: &str, n: usize) -> (Vec<Outcome>, posthaste::Report) {
    let guard = b.header("X-Interop-Run", run).retry(support::fast_retry()).start().expect("start");
    let client = guard.client();
    let receipts: Vec<_> =
        (0..n).map(|i| client.send_tracked(json!({"run": run, "i": i})).unwrap()).collect();
    let outcomes = receipts.iter().map(|r| r.wait(PATIENCE).expect("settled")).collect();
    (outcomes, guard.shutdown())
}

/// Like [`send`], with every option at its default: the retry policy, the breaker and the
/// budget are the user's, so a refusal judged transient would show as retries and a late
/// settlement, not hide behind a short test policy.
fn send_defaults(b: posthaste::Builder, run: &str, n: usize) -> (Vec<Outcome>, posthaste::Report, Duration) {
    let guard = b.header("X-Interop-Run", run).start().expect("start");
    let client = guard.client();
    let began = Instant::now();
    let receipts: Vec<_> =
        (0..n).map(|i| client.send_tracked(json!({"run": run, "i": i})).unwrap()).collect();
    let outcomes = receipts.iter().map(|r| r.wait(PATIENCE).expect("settled")).collect();
    let took = began.elapsed();
    (outcomes, guard.shutdown(), took)
}

/// A refusal that settles at once: one request, no retry, no password in the reason.
fn refused_once<'a>(outcomes: &'a [Outcome], report: &posthaste::Report, password: &str) -> &'a str {
    let reason = failed_once(&outcomes[0]);
    assert!(!reason.contains(password) && !reason.contains(&enc(password)), "{reason}");
    assert_eq!((report.stats.requests, report.stats.retries), (1, 0), "{reason}");
    reason
}

fn all_delivered(outcomes: &[Outcome]) {
    assert!(outcomes.iter().all(Outcome::is_delivered), "{outcomes:?}");
}

fn failed_once(o: &Outcome) -> &str {
    match o {
        Outcome::Failed { reason, attempts: 1 } => reason,
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

#[test]
#[ignore = "needs squid/tinyproxy/dante/nginx/mitmproxy: run scripts/interop.sh"]
fn a_https_through_squid_with_basic_auth_reaches_nginx() {
    let e = env();
    let run = run_id("a");
    let url = format!("https://127.0.0.1:{}/ingest", e.nginx_tls);
    let b =
        posthaste::builder(&url).proxy(e.squid_url(&e.password)).add_root_certs_pem_file(e.file("ca.pem"));
    let (outcomes, report) = send(b, &run, 5);
    all_delivered(&outcomes);
    assert_eq!(report.stats.delivered, 5);
    // nginx saw each POST, over TLS; squid logged the tunnel with the user name.
    let line = e.wait_for_line("nginx-tls.log", &["\"POST /ingest HTTP/1.1\" 200", &run]);
    assert!(line.starts_with("127.0.0.1 "), "{line}");
    e.wait_for_count("nginx-tls.log", &run, 5);
    e.wait_for_line("squid-access.log", &["CONNECT", &format!("127.0.0.1:{}", e.nginx_tls), &e.user]);

    // The probe shows each hop through squid.
    let guard = posthaste::builder(&url)
        .proxy(e.squid_url(&e.password))
        .add_root_certs_pem_file(e.file("ca.pem"))
        .start()
        .unwrap();
    let d = guard.client().probe();
    assert!(d.is_ok(), "{d}");
    assert!(d.step(StepKind::Tunnel).unwrap().detail.contains("opened a tunnel"), "{d}");
    assert!(d.step(StepKind::Tls).unwrap().detail.contains("anchored at CN=posthaste interop CA"), "{d}");
    println!("{d}");
}

#[test]
#[ignore = "needs squid/tinyproxy/dante/nginx/mitmproxy: run scripts/interop.sh"]
fn a_squid_refusals_are_permanent_failures() {
    let e = env();
    let url = format!("https://127.0.0.1:{}/ingest", e.nginx_tls);
    let b = posthaste::builder(&url).proxy(e.squid_url("wrong")).add_root_certs_pem_file(e.file("ca.pem"));
    let (outcomes, report) = send(b, &run_id("a-bad"), 1);
    let reason = failed_once(&outcomes[0]);
    assert!(
        reason.starts_with(&format!("proxy {} refused CONNECT", e.squid)) && reason.contains("407"),
        "{reason}"
    );
    assert_eq!(report.stats.retries, 0);

    // Stock squid allows CONNECT only to SSL_ports: a TLS endpoint on another port is refused.
    let elsewhere = format!("https://127.0.0.1:{}/ingest", e.nginx_http);
    let b = posthaste::builder(&elsewhere).proxy(e.squid_url(&e.password));
    let (outcomes, report) = send(b, &run_id("a-403"), 1);
    let reason = failed_once(&outcomes[0]);
    let expected = format!("proxy {} refused CONNECT to 127.0.0.1:{}: 403", e.squid, e.nginx_http);
    assert!(
        reason.starts_with(&expected) && reason.contains("policy") && reason.contains("port 443"),
        "{reason}"
    );
    assert_eq!(report.stats.retries, 0);
}

#[test]
#[ignore = "needs squid/tinyproxy/dante/nginx/mitmproxy: run scripts/interop.sh"]
fn b_mtls_against_nginx_with_ssl_verify_client_on() {
    let e = env();
    let run = run_id("b");
    let url = format!("https://127.0.0.1:{}/ingest", e.nginx_mtls);
    // The key is SEC1 ("EC PRIVATE KEY"), as openssl writes it.
    let b = posthaste::builder(&url)
        .add_root_certs_pem_file(e.file("ca.pem"))
        .client_cert_pem_files(e.file("client.pem"), e.file("client.key"));
    let (outcomes, _) = send(b, &run, 3);
    all_delivered(&outcomes);
    let line = e.wait_for_line("nginx-mtls.log", &["\"POST /ingest HTTP/1.1\" 200", &run]);
    assert!(line.contains("CN=posthaste-interop-client"), "{line}");

    // Through squid too: the client certificate is end to end, inside the tunnel.
    let run2 = run_id("b-squid");
    let b = posthaste::builder(&url)
        .proxy(e.squid_url(&e.password))
        .add_root_certs_pem_file(e.file("ca.pem"))
        .client_cert_pem_files(e.file("client.pem"), e.file("client.key"));
    all_delivered(&send(b, &run2, 1).0);
    e.wait_for_line("nginx-mtls.log", &[&run2, "CN=posthaste-interop-client"]);

    // Without a client certificate nginx answers 400 ("No required SSL certificate was sent")
    // over TLS 1.3, or refuses the handshake: either way it is not delivered, and not retried.
    let b = posthaste::builder(&url).add_root_certs_pem_file(e.file("ca.pem"));
    let (outcomes, report) = send(b, &run_id("b-none"), 1);
    match &outcomes[0] {
        Outcome::Rejected { status: 400, attempts: 1, reason } => {
            assert!(reason.contains("No required SSL certificate was sent"), "{reason}")
        }
        Outcome::Failed { reason, attempts: 1 } => assert!(reason.contains("client certificate"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(report.stats.retries, 0);
}

#[test]
#[ignore = "needs squid/tinyproxy/dante/nginx/mitmproxy: run scripts/interop.sh"]
fn c_mitmproxy_intercepts_when_its_ca_is_trusted_and_fails_cleanly_otherwise() {
    let e = env();
    let url = format!("https://127.0.0.1:{}/ingest", e.nginx_tls);
    let mitm = format!("http://{}", e.mitm);
    let mitm_ca = e.file("mitm/mitmproxy-ca-cert.pem");

    // Trusting only mitmproxy's CA (not nginx's): delivery works, so the certificate we
    // verified was mitmproxy's, re-signed for the endpoint.
    let run = run_id("c");
    let b = posthaste::builder(&url).proxy(&mitm).add_root_certs_pem_file(&mitm_ca).only_custom_roots();
    let (outcomes, _) = send(b, &run, 3);
    all_delivered(&outcomes);
    e.wait_for_line("nginx-tls.log", &["\"POST /ingest HTTP/1.1\" 200", &run]);
    let guard = posthaste::builder(&url)
        .proxy(&mitm)
        .add_root_certs_pem_file(&mitm_ca)
        .only_custom_roots()
        .start()
        .unwrap();
    let d = guard.client().probe();
    assert!(d.step(StepKind::Tls).unwrap().detail.contains("anchored at CN=mitmproxy"), "{d}");
    drop(guard);

    // Without it: a permanent failure naming the hop, the cause, and the fix.
    let b = posthaste::builder(&url).proxy(&mitm).add_root_certs_pem_file(e.file("ca.pem"));
    let (outcomes, report) = send(b, &run_id("c-untrusted"), 1);
    let reason = failed_once(&outcomes[0]);
    assert!(reason.contains(&format!("through proxy {}", e.mitm)), "{reason}");
    assert!(reason.contains("unknown issuer") && reason.contains("intercepting"), "{reason}");
    assert_eq!(report.stats.retries, 0);
}

#[test]
#[ignore = "needs squid/tinyproxy/dante/nginx/mitmproxy: run scripts/interop.sh"]
fn d_plain_http_through_squid_is_forwarded() {
    let e = env();
    let run = run_id("d");
    let url = format!("http://127.0.0.1:{}/ingest", e.nginx_http);
    let (outcomes, _) = send(posthaste::builder(&url).proxy(e.squid_url(&e.password)), &run, 5);
    all_delivered(&outcomes);
    // Forwarded in absolute form (no CONNECT, which squid refuses for this port), with the user.
    e.wait_for_line(
        "squid-access.log",
        &["POST", &format!("http://127.0.0.1:{}/ingest", e.nginx_http), &e.user],
    );
    e.wait_for_count("nginx-http.log", &run, 5);
    let tunnel = format!("CONNECT 127.0.0.1:{}", e.nginx_http);
    assert!(!e.log("squid-access.log").lines().any(|l| l.contains("TCP_TUNNEL") && l.contains(&tunnel)));

    // Wrong password: squid's 407 is a permanent failure of the proxy hop.
    let (outcomes, _) = send(posthaste::builder(&url).proxy(e.squid_url("wrong")), &run_id("d-bad"), 1);
    let reason = failed_once(&outcomes[0]);
    assert!(
        reason.starts_with(&format!("proxy {} refused to forward", e.squid)) && reason.contains("407"),
        "{reason}"
    );
}

#[test]
#[ignore = "needs squid/tinyproxy/dante/nginx/mitmproxy: run scripts/interop.sh"]
fn e_plain_http_through_tinyproxy_is_forwarded() {
    let e = env();
    let run = run_id("e");
    let url = format!("http://127.0.0.1:{}/ingest", e.nginx_http);
    let b = posthaste::builder(&url).proxy(e.tinyproxy_url(&e.tinyproxy_password));
    let (outcomes, _, _) = send_defaults(b, &run, 5);
    all_delivered(&outcomes);
    e.wait_for_count("nginx-http.log", &run, 5);
    // Forwarded in absolute form: tinyproxy logs the request, not a CONNECT.
    e.wait_for_line("tinyproxy.log", &["Request", &format!("POST http://127.0.0.1:{}/ingest", e.nginx_http)]);
}

#[test]
#[ignore = "needs squid/tinyproxy/dante/nginx/mitmproxy: run scripts/interop.sh"]
fn e_tinyproxy_refusals_are_permanent_failures() {
    let e = env();
    let http = format!("http://127.0.0.1:{}/ingest", e.nginx_http);
    let wrong = "wrong.pw-4711";

    // Wrong password: tinyproxy answers 401 (not 407), `Connection: close`, and resets the
    // connection with the request body unread. One attempt, a proxy-authentication reason.
    let b = posthaste::builder(&http).proxy(e.tinyproxy_url(wrong));
    let (outcomes, report, took) = send_defaults(b, &run_id("e-bad"), 1);
    let reason = refused_once(&outcomes, &report, wrong);
    let expected = format!(
        "proxy {} refused to forward to 127.0.0.1:{}: 401 Unauthorized: proxy authentication failed",
        e.tinyproxy, e.nginx_http
    );
    assert!(reason.starts_with(&expected), "{reason}");
    println!("tinyproxy, wrong password, forwarded: settled in {took:?}: {reason}");

    // The same through CONNECT (an HTTPS endpoint).
    let https = format!("https://127.0.0.1:{}/ingest", e.nginx_tls);
    let b =
        posthaste::builder(&https).proxy(e.tinyproxy_url(wrong)).add_root_certs_pem_file(e.file("ca.pem"));
    let (outcomes, report, took) = send_defaults(b, &run_id("e-bad-tls"), 1);
    let reason = refused_once(&outcomes, &report, wrong);
    assert!(
        reason.starts_with(&format!("proxy {} refused CONNECT to 127.0.0.1:{}: ", e.tinyproxy, e.nginx_tls)),
        "{reason}"
    );
    assert!(reason.contains("401 Unauthorized: proxy authentication failed"), "{reason}");
    println!("tinyproxy, wrong password, CONNECT: settled in {took:?}: {reason}");

    // No credentials at all: tinyproxy's 407.
    let url = format!("http://{}", e.tinyproxy);
    let (outcomes, report, _) = send_defaults(posthaste::builder(&http).proxy(&url), &run_id("e-none"), 1);
    let reason = refused_once(&outcomes, &report, wrong);
    assert!(
        reason.contains(": 407 Proxy Authentication Required: proxy authentication required"),
        "{reason}"
    );

    // Stock `ConnectPort 443`: a CONNECT to another port is refused with 403.
    let b = posthaste::builder(&https)
        .proxy(e.tinyproxy_url(&e.tinyproxy_password))
        .add_root_certs_pem_file(e.file("ca.pem"));
    let (outcomes, report, _) = send_defaults(b, &run_id("e-403"), 1);
    let reason = refused_once(&outcomes, &report, &e.tinyproxy_password);
    // The status line as tinyproxy sent it (ureq keeps no phrase; posthaste asks the proxy).
    let expected =
        format!("proxy {} refused CONNECT to 127.0.0.1:{}: 403 Access violation", e.tinyproxy, e.nginx_tls);
    assert!(
        reason.starts_with(&expected) && reason.contains("port 443") && !reason.contains("403 403"),
        "{reason}"
    );
    println!("tinyproxy, CONNECT to port {}: {reason}", e.nginx_tls);
    // The probe reads the proxy's own status line.
    let guard = posthaste::builder(&https)
        .proxy(e.tinyproxy_url(&e.tinyproxy_password))
        .add_root_certs_pem_file(e.file("ca.pem"))
        .start()
        .unwrap();
    let d = guard.client().probe();
    let tunnel = &d.step(StepKind::Tunnel).unwrap().detail;
    assert!(!d.is_ok() && tunnel.contains("403 Access violation"), "{d}");
}

#[test]
#[ignore = "needs squid/tinyproxy/dante/nginx/mitmproxy: run scripts/interop.sh"]
fn f_through_dante_with_socks5_and_socks5h() {
    let e = env();
    let ca = e.file("ca.pem");
    // socks5: the name is resolved here; socks5h: dante resolves `localhost`.
    for (scheme, host) in [("socks5", "127.0.0.1"), ("socks5h", "localhost")] {
        let run = run_id(&format!("f-{scheme}-tls"));
        let url = format!("https://{host}:{}/ingest", e.nginx_tls);
        let b = posthaste::builder(&url)
            .proxy(e.dante_url(scheme, &e.socks_password))
            .add_root_certs_pem_file(&ca);
        let (outcomes, _, _) = send_defaults(b, &run, 3);
        all_delivered(&outcomes);
        e.wait_for_line("nginx-tls.log", &["\"POST /ingest HTTP/1.1\" 200", &run]);

        let run = run_id(&format!("f-{scheme}-http"));
        let url = format!("http://{host}:{}/ingest", e.nginx_http);
        let b = posthaste::builder(&url).proxy(e.dante_url(scheme, &e.socks_password));
        let (outcomes, _, _) = send_defaults(b, &run, 3);
        all_delivered(&outcomes);
        e.wait_for_count("nginx-http.log", &run, 3);
    }
    // dante logs each connection it passed, with the user.
    e.wait_for_line("danted.log", &["pass", &format!("127.0.0.1.{}", e.nginx_tls)]);
}

#[test]
#[ignore = "needs squid/tinyproxy/dante/nginx/mitmproxy: run scripts/interop.sh"]
fn f_dante_refusals_are_permanent_failures() {
    let e = env();
    let url = format!("https://127.0.0.1:{}/ingest", e.nginx_tls);
    let wrong = "wrong:pw 4711";
    let b = posthaste::builder(&url)
        .proxy(e.dante_url("socks5", wrong))
        .add_root_certs_pem_file(e.file("ca.pem"));
    let (outcomes, report, took) = send_defaults(b, &run_id("f-bad"), 1);
    let reason = refused_once(&outcomes, &report, wrong);
    assert!(reason.starts_with(&format!("SOCKS5 proxy {} refused the credentials", e.dante)), "{reason}");
    println!("dante, wrong password: settled in {took:?}: {reason}");

    let b = posthaste::builder(&url)
        .proxy(format!("socks5h://{}", e.dante))
        .add_root_certs_pem_file(e.file("ca.pem"));
    let (outcomes, report, _) = send_defaults(b, &run_id("f-none"), 1);
    let reason = refused_once(&outcomes, &report, wrong);
    assert!(reason.contains("accepts none of the offered authentication methods"), "{reason}");
    println!("dante, no credentials: {reason}");
}

/// `GET http://{addr}{path}` with std only (the receiver's log), the body as JSON.
fn get_json(addr: &str, path: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Every delivery — first attempts and retries, plain and gzip-compressed batches, and with two
/// secrets during key rotation — passes the independent `standardwebhooks` verifier (PyPI) in
/// `scripts/webhook_receiver.py`; a tampered secret fails it (401, `Rejected`).
#[test]
#[ignore = "needs the standardwebhooks receiver: run scripts/interop.sh"]
fn e_signed_webhooks_pass_the_standardwebhooks_verifier() {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: {WHY}"));
    let (addr, secret) = (var("INTEROP_WEBHOOKS"), var("INTEROP_WEBHOOK_SECRET"));
    // The same key with its first byte changed: well-formed, wrong.
    let key = secret.strip_prefix("whsec_").unwrap();
    let first = if key.starts_with('A') { 'B' } else { 'A' };
    let tampered = format!("whsec_{first}{}", &key[1..]);
    let run = run_id("webhooks");
    let url = |path: &str| format!("http://{addr}/{path}/{run}");
    let guard = posthaste::builder(url("plain"))
        .webhook_secret(&secret)
        .endpoint("flaky", posthaste::endpoint(url("flaky")).webhook_secret(&secret))
        .endpoint(
            "batch",
            posthaste::endpoint(url("batch"))
                .batch(posthaste::Batch::new().max_events(4))
                .gzip(posthaste::Gzip::new().min_bytes(1))
                .webhook_secret(&secret),
        )
        .endpoint(
            "rotated",
            posthaste::endpoint(url("rotated")).webhook_secret(&tampered).webhook_secret(&secret),
        )
        .endpoint("tampered", posthaste::endpoint(url("tampered")).webhook_secret(&tampered))
        .start()
        .unwrap();
    let client = guard.client();
    let receipts: Vec<_> = (0..10)
        .map(|i| client.broadcast(json!({"i": i, "text": "héllo ✓ \"quoted\"", "run": run})).unwrap())
        .collect();
    for receipt in &receipts {
        for (endpoint, outcome) in receipt.wait(PATIENCE) {
            match (endpoint.as_str(), outcome) {
                ("tampered", Some(Outcome::Rejected { status: 401, .. })) => {}
                ("flaky", Some(Outcome::Delivered { attempts: 2, .. })) => {}
                ("default" | "batch" | "rotated", Some(Outcome::Delivered { attempts: 1, .. })) => {}
                (endpoint, outcome) => panic!("{endpoint}: {outcome:?}"),
            }
        }
    }
    let report = guard.shutdown();
    assert_eq!((report.stats.submitted, report.stats.delivered, report.stats.rejected), (50, 40, 10));

    let log = get_json(&addr, "/log");
    let mine: Vec<&serde_json::Value> =
        log.as_array().unwrap().iter().filter(|r| r["path"].as_str().unwrap().ends_with(&run)).collect();
    let of = |prefix: &str| -> Vec<&serde_json::Value> {
        mine.iter().copied().filter(|r| r["path"].as_str().unwrap().starts_with(prefix)).collect()
    };
    for prefix in ["/plain/", "/flaky/", "/batch/", "/rotated/"] {
        let records = of(prefix);
        assert!(!records.is_empty(), "{prefix}");
        for r in &records {
            assert_eq!(r["verified"], true, "{prefix}: {r}");
        }
    }
    let flaky = of("/flaky/");
    assert_eq!(flaky.len(), 20, "10 first attempts and 10 retries");
    for r in flaky.iter().filter(|r| r["attempt"] == 2) {
        let first = flaky.iter().find(|f| f["id"] == r["id"] && f["attempt"] == 1);
        assert!(first.is_some(), "a retry keeps its first attempt's webhook-id: {r}");
    }
    assert_eq!(of("/batch/").iter().map(|r| r["events"].as_u64().unwrap()).sum::<u64>(), 10);
    let tampered = of("/tampered/");
    assert_eq!(tampered.len(), 10);
    assert!(tampered.iter().all(|r| r["verified"] == false), "{tampered:?}");
    assert!(tampered[0]["why"].as_str().unwrap().contains("No matching signature"), "{}", tampered[0]);
}

/// Lines of `text` that contain every needle.
fn lines_with(text: &str, needles: &[&str]) -> usize {
    text.lines().filter(|l| needles.iter().all(|n| l.contains(n))).count()
}

/// A poller of a static JSON file served by nginx, which sends `ETag` and `Last-Modified` and
/// answers conditional requests with `304` itself: the poller's repeated polls show as 304s in
/// nginx's access log, and rewriting the file yields exactly one new set of items.
#[test]
#[ignore = "needs squid/nginx/mitmproxy: run scripts/interop.sh"]
fn f_poller_conditional_requests_against_nginx() {
    let env = env();
    let run = run_id("feed");
    let file = env.file("feed").join(format!("{run}.json"));
    std::fs::write(&file, json!([{"v": 1, "i": 0}, {"v": 1, "i": 1}]).to_string()).unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    let guard = posthaste::builder("http://127.0.0.1:9/unused")
        .poll(
            "feed",
            posthaste::poll(format!("http://127.0.0.1:{}/{run}.json", env.nginx_feed))
                .interval(Duration::from_millis(200))
                .on_item(move |item| tx.send(item).unwrap()),
        )
        .start()
        .unwrap();
    let first: Vec<serde_json::Value> = (0..2).map(|_| rx.recv_timeout(PATIENCE).unwrap()).collect();
    assert_eq!(first, [json!({"v": 1, "i": 0}), json!({"v": 1, "i": 1})]);
    let path = format!("GET /{run}.json ");
    // Two conditional polls answered 304 by nginx.
    let deadline = Instant::now() + PATIENCE;
    while lines_with(&env.log("nginx-feed.log"), &[&path, "\" 304 "]) < 2 {
        assert!(Instant::now() < deadline, "no 304s:\n{}", env.log("nginx-feed.log"));
        poll_interval(Duration::from_millis(50));
    }
    assert!(rx.try_recv().is_err(), "a 304 yields no items");
    // A different size, so the ETag (mtime-size) changes even within the same second.
    std::fs::write(&file, json!([{"v": 2, "i": 0}, {"v": 2, "i": 1}, {"v": 2, "i": 2}]).to_string()).unwrap();
    let second: Vec<serde_json::Value> = (0..3).map(|_| rx.recv_timeout(PATIENCE).unwrap()).collect();
    assert!(second.iter().all(|v| v["v"] == 2), "{second:?}");
    let before = lines_with(&env.log("nginx-feed.log"), &[&path, "\" 304 "]);
    let deadline = Instant::now() + PATIENCE;
    while lines_with(&env.log("nginx-feed.log"), &[&path, "\" 304 "]) < before + 2 {
        assert!(Instant::now() < deadline, "no 304s after the rewrite:\n{}", env.log("nginx-feed.log"));
        poll_interval(Duration::from_millis(50));
    }
    let report = guard.shutdown();
    assert!(rx.try_recv().is_err(), "the rewrite yielded exactly one new set of items");
    let stats = report.pollers[0].1;
    assert_eq!((stats.items, stats.failures), (5, 0), "{stats:?}");
    let log = env.log("nginx-feed.log");
    assert_eq!(lines_with(&log, &[&path, "\" 200 "]), 2, "{log}");
    assert!(lines_with(&log, &[&path, "\" 304 ", "inm=\"\\x22"]) >= 4, "If-None-Match sent:\n{log}");
    assert_eq!(stats.not_modified as usize, lines_with(&log, &[&path, "\" 304 "]), "{log}");
}
