//! Standard Webhooks signing on the wire: the three headers, one id per event or batch kept
//! across retries, a fresh timestamp per attempt, signatures over the uncompressed body, one
//! `v1,` entry per secret, and malformed secrets refused at `start()` without being shown.
//! (`scripts/webhooks.sh` proves the same against the independent `standardwebhooks` verifier.)

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use posthaste::{Error, Outcome};
use serde_json::json;
use support::{assert_invariant, Reply, Request, Sink, PATIENCE};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER: &str = "whsec_c2Vjb25kIHNlY3JldCBmb3Igcm90YXRpb24=";

/// The `v1,` signature a receiver holding `secret` expects for `req` (body as received,
/// gunzipped by the sink).
fn expected(secret: &str, req: &Request) -> String {
    let key = decode(secret.strip_prefix("whsec_").unwrap());
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    let mut msg =
        format!("{}.{}.", req.header("webhook-id").unwrap(), req.header("webhook-timestamp").unwrap())
            .into_bytes();
    msg.extend_from_slice(&req.body);
    format!("v1,{}", encode(ring::hmac::sign(&key, &msg).as_ref()))
}

fn entries(req: &Request) -> Vec<String> {
    req.header("webhook-signature").unwrap().split(' ').map(str::to_string).collect()
}

#[test]
fn every_attempt_is_signed_and_a_retry_keeps_the_id_with_a_fresh_timestamp() {
    // The first attempt with each id is refused with 503: each event is sent twice.
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let sink = Sink::with(move |r| {
        let id = r.header("webhook-id").unwrap_or_default().to_string();
        if seen.lock().unwrap().insert(id) {
            Reply::Status(503)
        } else {
            Reply::Status(200)
        }
    });
    let guard = posthaste::builder(sink.url()).workers(1).webhook_secret(SECRET).start().unwrap();
    let client = guard.client();
    let mut receipts = Vec::new();
    for i in 0..5 {
        receipts.push(client.send_tracked(json!({"i": i})).unwrap());
    }
    for r in &receipts {
        assert_eq!(r.wait(PATIENCE), Some(Outcome::Delivered { status: 200, attempts: 2 }));
    }
    let reqs = sink.requests();
    assert_eq!(reqs.len(), 10);
    let mut by_id: HashMap<String, Vec<&Request>> = HashMap::new();
    for r in &reqs {
        by_id.entry(r.header("webhook-id").unwrap().to_string()).or_default().push(r);
    }
    assert_eq!(by_id.len(), 5, "one id per event, kept by its retry");
    for pair in by_id.values() {
        assert_eq!(pair.len(), 2);
        assert_eq!(pair[0].body, pair[1].body);
        for r in pair {
            assert_eq!(entries(r), [expected(SECRET, r)]);
            assert!(r.header("webhook-id").unwrap().len() >= 16);
            let ts: u64 = r.header("webhook-timestamp").unwrap().parse().unwrap();
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
            assert!(ts <= now && now - ts < 60, "{ts} vs {now}");
        }
    }
    let report = guard.shutdown();
    assert_eq!(report.stats.delivered, 5);
    assert_invariant(&report.stats);
}

#[test]
fn batches_with_gzip_are_signed_over_the_uncompressed_body_with_every_secret() {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url())
        .endpoint(
            "hooks",
            posthaste::endpoint(sink.url())
                .batch(posthaste::Batch::new().max_events(10))
                .gzip(posthaste::Gzip::new().min_bytes(1))
                .idempotency(posthaste::Idempotency::new())
                .webhook_secret(SECRET)
                .webhook_secret(OTHER),
        )
        .start()
        .unwrap();
    let client = guard.client();
    for i in 0..30 {
        client.send_to("hooks", json!({"i": i, "pad": "x".repeat(50)})).unwrap();
    }
    assert!(client.flush(PATIENCE));
    let reqs = sink.requests();
    assert!(!reqs.is_empty());
    for r in &reqs {
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert!(r.wire_len < r.body.len(), "compressed on the wire");
        assert_eq!(entries(r), [expected(SECRET, r), expected(OTHER, r)]);
        assert_eq!(r.header("idempotency-key"), r.header("webhook-id"), "one id per batch");
    }
    assert_eq!(reqs.iter().map(|r| r.events()).sum::<u64>(), 30);
    drop(guard);
}

#[test]
fn unsigned_endpoints_send_no_webhook_headers() {
    let sink = Sink::ok();
    let guard = posthaste::builder(sink.url()).start().unwrap();
    let receipt = guard.client().send_tracked(json!(1)).unwrap();
    assert!(receipt.wait(PATIENCE).unwrap().is_delivered());
    let r = &sink.requests()[0];
    assert!(r.header("webhook-id").is_none() && r.header("webhook-signature").is_none());
    drop(guard);
}

#[test]
fn malformed_secrets_are_refused_at_start_and_never_shown() {
    for bad in ["whsec_", "whsec_S3CRET!!", "S3CRET with spaces"] {
        let e = posthaste::builder("http://127.0.0.1:9/").webhook_secret(bad).start().unwrap_err();
        assert!(matches!(e, Error::InvalidOption { option: "webhook_secret", .. }), "{e:?}");
        let e = posthaste::builder("http://127.0.0.1:9/")
            .endpoint("h", posthaste::endpoint("http://127.0.0.1:9/").webhook_secret(bad))
            .start()
            .unwrap_err();
        assert!(matches!(&e, Error::Endpoint { name, .. } if name == "h"), "{e:?}");
        assert!(!format!("{e} {e:?}").contains("S3CRET"), "{e}");
    }
    let b = posthaste::builder("http://127.0.0.1:9/")
        .webhook_secret(SECRET)
        .endpoint("h", posthaste::endpoint("http://127.0.0.1:9/").webhook_secret(SECRET));
    let text = format!("{b:?}");
    assert!(!text.contains("MfKQ9r8"), "{text}");
}

fn encode(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            out.push(if i <= c.len() { A[(n >> (18 - 6 * i)) as usize & 63] as char } else { '=' });
        }
    }
    out
}

fn decode(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            _ => 63,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
