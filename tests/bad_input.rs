//! Bad configuration: a typed error from `start()`, never a panic, never a secret in the text.

use std::time::Duration;

use posthaste::{Error, Overflow, Retry};

fn err(b: posthaste::Builder) -> Error {
    match b.start() {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

#[track_caller]
fn assert_option(e: Error, name: &str) {
    match &e {
        Error::InvalidOption { option, .. } => assert_eq!(*option, name, "{e}"),
        other => panic!("expected InvalidOption({name}), got {other:?}"),
    }
    assert!(e.to_string().contains(name), "{e}");
}

const OK: &str = "http://127.0.0.1:9/ingest";

#[test]
fn invalid_urls() {
    for url in ["", "not a url", "ftp://host/x", "http://", "/relative/path", "127.0.0.1:80", "http://a b/"] {
        match err(posthaste::builder(url)) {
            Error::InvalidUrl { url: shown, reason } => {
                assert_eq!(shown, url);
                assert!(!reason.is_empty());
            }
            other => panic!("{url:?}: {other:?}"),
        }
    }
}

#[test]
fn url_credentials_are_redacted_in_errors() {
    let e = err(posthaste::builder("ftp://user:hunter2@host/"));
    let text = format!("{e} {e:?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("user:***@host"), "{text}");
}

#[test]
fn header_injection_is_refused_without_echoing_the_value() {
    for (name, value) in [("X-Ok", "a\r\nX-Injected: 1"), ("X-Ok", "line\nbreak"), ("X-Ok", "nul\0")] {
        let e = err(posthaste::builder(OK).header(name, value));
        assert!(matches!(e, Error::InvalidHeader { .. }), "{e:?}");
        let text = format!("{e} {e:?}");
        assert!(!text.contains("Injected") && !text.contains("break") && !text.contains("nul"), "{text}");
    }
    let e = err(posthaste::builder(OK).header("Bad Name", "v"));
    assert!(matches!(e, Error::InvalidHeader { .. }), "{e:?}");
    let e = err(posthaste::builder(OK).header("X-Evil\r\n", "v"));
    assert!(e.to_string().contains("\\r\\n"), "control characters are shown escaped: {e}");
}

#[test]
fn tokens_never_appear_in_errors() {
    let e = err(posthaste::builder(OK).bearer_auth("s3cr3t-token\n"));
    let text = format!("{e} {e:?}");
    assert!(matches!(e, Error::InvalidHeader { .. }));
    assert!(!text.contains("s3cr3t"), "{text}");
}

#[test]
fn zero_and_absurd_numbers() {
    assert_option(err(posthaste::builder(OK).workers(0)), "workers");
    assert_option(err(posthaste::builder(OK).workers(100_000)), "workers");
    assert_option(err(posthaste::builder(OK).queue_capacity(0)), "queue_capacity");
    assert_option(err(posthaste::builder(OK).queue_bytes(0)), "queue_bytes");
    assert_option(err(posthaste::builder(OK).overflow(Overflow::BlockFor(Duration::ZERO))), "overflow");
    assert_option(err(posthaste::builder(OK).connect_timeout(Duration::ZERO)), "connect_timeout");
    assert_option(
        err(posthaste::builder(OK).request_timeout(Duration::from_secs(86_400 * 365))),
        "request_timeout",
    );
    assert_option(
        err(posthaste::builder(OK).shutdown_timeout(Duration::from_secs(86_400))),
        "shutdown_timeout",
    );
    assert_option(err(posthaste::builder(OK).method("NOT A METHOD")), "method");
    assert_option(err(posthaste::builder(OK).content_type("a\nb")), "content_type");
    assert_option(err(posthaste::builder(OK).retry(Retry::new().max_attempts(0))), "retry.max_attempts");
    assert_option(err(posthaste::builder(OK).retry(Retry::new().multiplier(0.0))), "retry.multiplier");
    assert_option(
        err(posthaste::builder(OK).retry(Retry::new().initial_delay(Duration::from_secs(600)))),
        "retry.initial_delay",
    );
}

#[test]
fn valid_edges_are_accepted() {
    for b in [
        posthaste::builder(OK).workers(1).queue_capacity(1).queue_bytes(1),
        posthaste::builder(OK).shutdown_timeout(Duration::ZERO),
        posthaste::builder("https://collector.example:8443/a/b?c=d").method("PATCH"),
        posthaste::builder(OK).overflow(Overflow::BlockFor(Duration::from_millis(1))),
    ] {
        drop(b.start().expect("valid"));
    }
}
