//! Trust and client certificates against a loopback HTTPS server whose CA and certificates are
//! made at test time: custom roots, unknown issuer, name mismatch, expiry, mTLS, bad files, and
//! the dangerous door.

mod support;

use posthaste::{Error, Outcome, Retry, StepKind};
use serde_json::json;
use support::tls::{fixture, Ca, TempFile, TlsServer};
use support::PATIENCE;

/// Sends one event and waits for its outcome.
fn deliver(b: posthaste::Builder) -> (Outcome, posthaste::Report) {
    let guard = b.retry(support::fast_retry()).start().expect("start");
    let receipt = guard.client().send_tracked(json!({"event": "tls"})).unwrap();
    let outcome = receipt.wait(PATIENCE).expect("settled");
    (outcome, guard.shutdown())
}

fn failed_reason(o: &Outcome) -> &str {
    match o {
        Outcome::Failed { reason, attempts } => {
            assert_eq!(*attempts, 1, "TLS failures are not retried: {reason}");
            reason
        }
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[test]
fn custom_ca_from_bytes_is_trusted() {
    let ca = Ca::new("posthaste test CA");
    let server = TlsServer::start(&ca.server(&["127.0.0.1", "localhost"]), None);
    let (outcome, report) = deliver(posthaste::builder(server.url()).add_root_certs_pem(ca.pem.clone()));
    assert_eq!(outcome, Outcome::Delivered { status: 200, attempts: 1 });
    assert_eq!(report.stats.delivered, 1);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].path, "/ingest");
    assert_eq!(reqs[0].body, br#"{"event":"tls"}"#);
    // By DNS name as well as by IP.
    let (outcome, _) =
        deliver(posthaste::builder(server.url_for("localhost")).add_root_certs_pem(ca.pem.clone()));
    assert!(outcome.is_delivered(), "{outcome:?}");
}

#[test]
fn every_certificate_of_a_bundle_file_is_loaded() {
    let other = Ca::new("unrelated CA");
    let ca = Ca::new("second CA in the bundle");
    let server = TlsServer::start(&ca.server(&["127.0.0.1"]), None);
    let bundle = TempFile::new("bundle.pem", format!("{}{}", other.pem, ca.pem).as_bytes());
    let b = posthaste::builder(server.url()).add_root_certs_pem_file(&bundle.path).only_custom_roots();
    let (outcome, _) = deliver(b);
    assert!(outcome.is_delivered(), "{outcome:?}");
}

#[test]
fn unknown_issuer_fails_at_once_without_retry() {
    let ca = Ca::new("CA nobody trusts");
    let server = TlsServer::start(&ca.server(&["127.0.0.1"]), None);
    let (outcome, report) = deliver(posthaste::builder(server.url()));
    let reason = failed_reason(&outcome);
    assert!(reason.contains(&format!("TLS with endpoint 127.0.0.1:{}", server.port())), "{reason}");
    assert!(reason.contains("unknown issuer") && reason.contains("add_root_certs_pem_file"), "{reason}");
    assert_eq!((report.stats.failed, report.stats.retries, report.stats.requests), (1, 0, 1));
    assert!(server.requests().is_empty());
    assert_eq!(server.handshakes(), 0);
}

#[test]
fn name_mismatch_is_a_permanent_failure() {
    let ca = Ca::new("posthaste test CA");
    let server = TlsServer::start(&ca.server(&["collector.example"]), None);
    let (outcome, _) = deliver(posthaste::builder(server.url()).add_root_certs_pem(ca.pem.clone()));
    let reason = failed_reason(&outcome);
    assert!(reason.contains("not valid for") && reason.contains("127.0.0.1"), "{reason}");
    assert!(reason.contains("collector.example"), "{reason}");
}

#[test]
fn expired_certificate_is_a_permanent_failure() {
    let ca = Ca::new("posthaste test CA");
    let leaf = ca.server_with(&["127.0.0.1"], |p| {
        p.not_before = rcgen::date_time_ymd(2001, 1, 1);
        p.not_after = rcgen::date_time_ymd(2002, 1, 1);
    });
    let server = TlsServer::start(&leaf, None);
    let (outcome, _) = deliver(posthaste::builder(server.url()).add_root_certs_pem(ca.pem.clone()));
    assert!(failed_reason(&outcome).contains("expired"), "{outcome:?}");
}

#[test]
fn mtls_accepted_with_each_key_format() {
    let server_ca = Ca::new("server CA");
    let client_ca = Ca::new("client CA");
    let server = TlsServer::start(&server_ca.server(&["127.0.0.1"]), Some(&client_ca));
    // (rcgen key in PKCS#8, key handed to posthaste)
    let cases = [
        ("rsa-pkcs8.pem", "rsa-pkcs1.pem", &rcgen::PKCS_RSA_SHA256),
        ("ec-pkcs8.pem", "ec-sec1.pem", &rcgen::PKCS_ECDSA_P256_SHA256),
        ("ec-pkcs8.pem", "ec-pkcs8.pem", &rcgen::PKCS_ECDSA_P256_SHA256),
    ];
    for (i, (pkcs8, given, alg)) in cases.iter().enumerate() {
        let key = rcgen::KeyPair::from_pem_and_sign_algo(&fixture(pkcs8), alg).unwrap();
        let leaf = client_ca.client_with_key(&format!("client-{i}"), &key, fixture(given));
        let b = posthaste::builder(server.url())
            .add_root_certs_pem(server_ca.pem.clone())
            .client_cert_pem(leaf.cert_pem.clone(), leaf.key_pem.clone());
        let (outcome, _) = deliver(b);
        assert!(outcome.is_delivered(), "{given}: {outcome:?}");
    }
    // And from files.
    let leaf = client_ca.client("client-files");
    let (cert, key) = (
        TempFile::new("client.pem", leaf.cert_pem.as_bytes()),
        TempFile::new("client.key", leaf.key_pem.as_bytes()),
    );
    let b = posthaste::builder(server.url())
        .add_root_certs_pem(server_ca.pem.clone())
        .client_cert_pem_files(&cert.path, &key.path);
    assert!(deliver(b).0.is_delivered());
    let reqs = server.requests();
    assert_eq!(reqs.len(), 4);
    assert!(reqs.iter().all(|r| r.client_cert.is_some()), "every request came with a client certificate");
}

#[test]
fn mtls_refused_without_or_with_a_foreign_certificate() {
    let server_ca = Ca::new("server CA");
    let client_ca = Ca::new("client CA");
    let server = TlsServer::start(&server_ca.server(&["127.0.0.1"]), Some(&client_ca));
    let b = posthaste::builder(server.url()).add_root_certs_pem(server_ca.pem.clone());
    let (outcome, report) = deliver(b);
    let reason = failed_reason(&outcome);
    assert!(reason.contains("client certificate"), "{reason}");
    assert_eq!(report.stats.retries, 0);

    let stranger = Ca::new("stranger CA").client("intruder");
    let b = posthaste::builder(server.url())
        .add_root_certs_pem(server_ca.pem.clone())
        .client_cert_pem(stranger.cert_pem, stranger.key_pem);
    let (outcome, _) = deliver(b);
    let reason = failed_reason(&outcome);
    assert!(reason.contains("rejected our client certificate"), "{reason}");
    assert!(server.requests().is_empty());
    assert!(server.failed_handshakes() >= 2);
}

#[test]
fn certificate_problems_are_errors_from_start_naming_the_file() {
    let ca = Ca::new("posthaste test CA");
    let start = |b: posthaste::Builder| b.start().map(drop).unwrap_err();

    let missing = std::env::temp_dir().join("posthaste-no-such-dir/ca.pem");
    let e = start(posthaste::builder("https://127.0.0.1:9/").add_root_certs_pem_file(&missing));
    assert!(matches!(e, Error::Certificate { .. }), "{e:?}");
    assert!(e.to_string().contains("ca.pem") && e.to_string().contains("cannot be read"), "{e}");

    let empty = TempFile::new("empty.pem", b"just text\n");
    let e = start(posthaste::builder("http://127.0.0.1:9/").add_root_certs_pem_file(&empty.path));
    assert!(e.to_string().contains("empty.pem") && e.to_string().contains("no certificate"), "{e}");

    let garbage =
        TempFile::new("garbage.pem", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    let e = start(posthaste::builder("http://127.0.0.1:9/").add_root_certs_pem_file(&garbage.path));
    assert!(e.to_string().contains("garbage.pem") && e.to_string().contains("malformed"), "{e}");

    let e = start(posthaste::builder("https://127.0.0.1:9/").only_custom_roots());
    assert!(e.to_string().contains("only_custom_roots"), "{e}");

    // Client certificates: no key, a key for another certificate. The key is never echoed.
    let leaf = ca.client("me");
    let other = ca.client("someone else");
    let e = start(
        posthaste::builder("https://127.0.0.1:9/").client_cert_pem(leaf.cert_pem.clone(), ca.pem.clone()),
    );
    assert!(e.to_string().contains("private key"), "{e}");
    let (cert, key) = (
        TempFile::new("me.pem", leaf.cert_pem.as_bytes()),
        TempFile::new("other.key", other.key_pem.as_bytes()),
    );
    let e = start(posthaste::builder("https://127.0.0.1:9/").client_cert_pem_files(&cert.path, &key.path));
    let text = e.to_string();
    assert!(text.contains("other.key") && text.contains("me.pem"), "{text}");
    assert!(!text.contains("PRIVATE KEY") && !format!("{e:?}").contains(&other.key_pem[30..60]), "{text}");
}

#[test]
fn only_custom_roots_trusts_exactly_those() {
    let ca = Ca::new("posthaste test CA");
    let server = TlsServer::start(&ca.server(&["127.0.0.1"]), None);
    let (outcome, _) =
        deliver(posthaste::builder(server.url()).add_root_certs_pem(ca.pem.clone()).only_custom_roots());
    assert!(outcome.is_delivered(), "{outcome:?}");
    let guard = posthaste::builder(server.url())
        .add_root_certs_pem(ca.pem.clone())
        .only_custom_roots()
        .start()
        .unwrap();
    let d = guard.client().probe();
    let route = d.step(StepKind::Route).unwrap();
    assert!(route.detail.contains("1 roots trusted (1 custom)"), "{d}");
}

#[test]
fn dangerous_door_accepts_any_certificate_and_says_so() {
    let ca = Ca::new("CA nobody trusts");
    let server = TlsServer::start(&ca.server(&["elsewhere.example"]), None);
    let (outcome, report) = deliver(posthaste::builder(server.url()).dangerous().accept_invalid_certs());
    assert!(outcome.is_delivered(), "{outcome:?}");
    assert!(report.warnings.iter().any(|w| w.contains("DISABLED")), "{:?}", report.warnings);
    assert!(report.to_string().contains("warning: TLS certificate verification is DISABLED"));
}

#[test]
fn probe_names_the_root_that_verified_the_endpoint() {
    let ca = Ca::new("Corp Root CA");
    let server = TlsServer::start(&ca.server(&["127.0.0.1"]), None);
    let file = TempFile::new("corp-ca.pem", ca.pem.as_bytes());
    let guard = posthaste::builder(server.url()).add_root_certs_pem_file(&file.path).start().unwrap();
    let d = guard.client().probe();
    assert!(d.is_ok(), "{d}");
    let kinds: Vec<StepKind> = d.steps.iter().map(|s| s.kind).collect();
    assert_eq!(kinds, [StepKind::Route, StepKind::Resolve, StepKind::Connect, StepKind::Tls, StepKind::Http]);
    let tls = d.step(StepKind::Tls).unwrap();
    assert!(
        tls.detail.contains("anchored at CN=Corp Root CA (from") && tls.detail.contains("corp-ca.pem"),
        "{d}"
    );
    assert!(d.step(StepKind::Http).unwrap().detail.contains("answered 200"), "{d}");
    // The probe sends HEAD and does not count as an event.
    assert_eq!(server.requests().last().unwrap().method, "HEAD");
    assert_eq!(guard.shutdown().stats.submitted, 0);

    let guard = posthaste::builder(server.url()).retry(Retry::none()).start().unwrap();
    let d = guard.client().probe();
    let failure = d.failure().expect("fails");
    assert_eq!(failure.kind, StepKind::Tls);
    assert!(failure.detail.contains("unknown issuer") && failure.detail.contains("CN=127.0.0.1"), "{d}");
    assert!(d.step(StepKind::Http).is_none());
    drop(guard);
}
