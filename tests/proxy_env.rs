//! The proxy environment variables and the OS trust store variables. Environment variables are
//! process-wide, so this binary holds a single test that sets them in sequence.

mod support;

use posthaste::{Outcome, StepKind};
use serde_json::json;
use support::proxy::TestProxy;
use support::tls::{Ca, TlsServer};
use support::{Sink, PATIENCE};

const VARS: [&str; 10] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
    "REQUEST_METHOD",
    "SSL_CERT_DIR",
];

fn clear() {
    for v in VARS {
        std::env::remove_var(v);
    }
}

fn delivered(b: posthaste::Builder) -> posthaste::Report {
    let guard = b.retry(support::fast_retry()).start().expect("start");
    let r = guard.client().send_tracked(json!({"env": true})).unwrap();
    assert_eq!(r.wait(PATIENCE), Some(Outcome::Delivered { status: 200, attempts: 1 }));
    guard.shutdown()
}

#[test]
fn environment_variables_choose_the_proxy_and_no_proxy_bypasses_it() {
    clear();
    let ca = Ca::new("posthaste test CA");
    let server = TlsServer::start(&ca.server(&["127.0.0.1", "localhost"]), None);
    let sink = Sink::ok();
    let proxy = TestProxy::http_with_auth("envuser", "envpw");

    // HTTPS_PROXY carries https:// endpoints, with its credentials.
    std::env::set_var("HTTPS_PROXY", proxy.url_with("envuser", "envpw"));
    delivered(posthaste::builder(server.url()).add_root_certs_pem(ca.pem.clone()));
    let log = proxy.log();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].method.as_str(), log[0].user.as_deref()), ("CONNECT", Some("envuser")));
    let guard = posthaste::builder(server.url()).add_root_certs_pem(ca.pem.clone()).start().unwrap();
    let route = guard.client().probe().step(StepKind::Route).unwrap().detail.clone();
    assert!(route.contains("(from HTTPS_PROXY)") && !route.contains("envpw"), "{route}");
    drop(guard);
    // The probe went through the proxy too: its own CONNECT and the HEAD request's.
    assert_eq!(proxy.log().len(), 3);
    let base = 3;

    // …but not http:// ones: that is HTTP_PROXY's job.
    delivered(posthaste::builder(sink.url()));
    assert_eq!(proxy.log().len(), base);
    std::env::set_var("http_proxy", proxy.url_with("envuser", "envpw"));
    delivered(posthaste::builder(sink.url()));
    assert_eq!(proxy.log().len(), base + 1);
    assert_eq!(proxy.log()[base].method, "POST");

    // NO_PROXY, with spaces and a domain suffix: bypassed, straight to the endpoint.
    std::env::set_var("NO_PROXY", "example.com , 127.0.0.1");
    delivered(posthaste::builder(server.url()).add_root_certs_pem(ca.pem.clone()));
    delivered(posthaste::builder(sink.url()));
    std::env::set_var("NO_PROXY", ".example.com, localhost");
    delivered(posthaste::builder(server.url_for("localhost")).add_root_certs_pem(ca.pem.clone()));
    assert_eq!(proxy.log().len(), base + 1, "NO_PROXY entries bypass the proxy");
    // A CIDR entry.
    std::env::set_var("NO_PROXY", "10.0.0.0/8,127.0.0.0/8");
    delivered(posthaste::builder(server.url()).add_root_certs_pem(ca.pem.clone()));
    assert_eq!(proxy.log().len(), base + 1);
    // Not matching: proxied again.
    std::env::set_var("NO_PROXY", "example.com");
    delivered(posthaste::builder(server.url()).add_root_certs_pem(ca.pem.clone()));
    assert_eq!(proxy.log().len(), base + 2);

    // An explicit choice ignores the environment.
    delivered(posthaste::builder(server.url()).no_proxy().add_root_certs_pem(ca.pem.clone()));
    assert_eq!(proxy.log().len(), base + 2);

    // An invalid variable is an error naming it, password redacted.
    std::env::set_var("HTTPS_PROXY", "ftp://envuser:envpw@127.0.0.1:1");
    let e = posthaste::builder(server.url()).start().map(drop).unwrap_err().to_string();
    assert!(e.contains("HTTPS_PROXY") && e.contains("envuser:***") && !e.contains("envpw"), "{e}");
    clear();

    // OS store problems are warnings, not errors, when other roots loaded.
    let saved = std::env::var_os("SSL_CERT_FILE");
    std::env::set_var("SSL_CERT_FILE", "/nonexistent/posthaste-test/ca-bundle.crt");
    let report = delivered(posthaste::builder(server.url()).add_root_certs_pem(ca.pem.clone()));
    match saved {
        Some(v) => std::env::set_var("SSL_CERT_FILE", v),
        None => std::env::remove_var("SSL_CERT_FILE"),
    }
    assert!(
        report.warnings.iter().any(|w| w.contains("SSL_CERT_FILE=/nonexistent/posthaste-test/ca-bundle.crt")),
        "{:?}",
        report.warnings
    );
}
