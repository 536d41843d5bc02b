//! Passwords in URLs never reach what posthaste shows — `Error`'s `Display` and `Debug`,
//! `Builder`'s `Debug`, a `Proxy`'s `Display` and `Debug`, reports, outcome reasons and the
//! probe — whether the URL carrying them is well-formed or not.
//!
//! Properties over generated passwords (a `Pw` marker and random letters and digits, sometimes
//! split by a character a password may hold unencoded) in well-formed and malformed URL shapes.
//! A password counts as shown when either of its halves (six characters or more) appears, in
//! any case: hosts are lowercased on the way. The pure properties run proptest's default 256
//! cases; the one that sends through a proxy on a closed loopback port runs 16.

use std::net::TcpListener;
use std::time::Duration;

use posthaste::{Outcome, Proxy};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::json;

/// A URL and the password halves it carries.
#[derive(Debug, Clone)]
struct Case {
    url: String,
    secrets: [String; 2],
}

/// Schemes posthaste supports, ones it refuses, and typos.
const SCHEMES: &[&str] = &["http", "https", "socks5", "socks5h", "ftp", "HTTP", "htp", "htps", "gopher"];

/// What may stand between the password's halves: nothing, characters a password may hold
/// unencoded (`/`, `?`, `#`, `@`, `:`, a space), escapes, and broken escapes.
const SEPARATORS: &[&str] = &["", "", "/", "?", "#", "@", ":", " ", "%2F", "%40", "%zz", "%4", "%"];

/// URL shapes: `{s}` scheme, `{u}` user, `{p}` password, `{h}` host, `{n}` port.
const SHAPES: &[&str] = &[
    // Well-formed.
    "{s}://{u}:{p}@{h}:{n}/",
    "{s}://{u}:{p}@{h}",
    "{s}://:{p}@{h}:{n}",
    "{s}://{p}@{h}:{n}",
    "{s}://{u}:{p}@[::1]:{n}",
    "{s}://{u}%3Ax:{p}%20@{h}:{n}",
    "{s}://{u}:{p}@{h}:{n}/p@x?to=a@b#c@d",
    // Missing or extra slashes, missing colon, no scheme.
    "{s}//{u}:{p}@{h}:{n}",
    "{s}:/{u}:{p}@{h}:{n}",
    "{s}:///{u}:{p}@{h}",
    "{s}:{u}:{p}@{h}",
    "//{u}:{p}@{h}:{n}",
    "{u}:{p}@{h}:{n}",
    "{u}:{p}@",
    "{p}@{h}",
    "{s}://{u}:{p}@",
    "{u}:{p}@{h}://x",
    // `@` in the path, a path, a query.
    "{s}://{u}:{p}@{h}/a@b",
    "{s}://{u}:{p}@{h}:{n}/path",
    "{s}://{u}:{p}@{h}?q",
    "{s}://{p}@{h}:{n}/p@x",
    "{p}@{h}:{n}/p@x",
    "{s}://{u}:{p}@@{h}",
    // IPv6, ports that are not numbers.
    "{s}://{u}:{p}@[::1",
    "{s}://{u}:{p}@::1:{n}",
    "{s}://{u}:{p}@[{h}]:{n}",
    "{s}://{u}:{p}@{h}:port",
    "{s}://{u}:{p}@{h}:{n}:{n}",
    "{s}://{u}:{p}@{h}:99999",
    // Spaces.
    " {s}://{u}:{p}@{h}:{n} ",
    "{s}://{u}:{p}@bad host:{n}",
    "{s}://{u} x:{p}@{h}",
    "{s} ://{u}:{p}@{h}",
];

const HOSTS: &[&str] = &["127.0.0.1", "proxy.corp", "h", "LOCALHOST", "-bad-"];

fn case() -> impl Strategy<Value = Case> {
    (
        select(SHAPES),
        select(SCHEMES),
        "[a-z][a-z0-9._-]{0,7}",
        "Pw[A-Za-z0-9]{4,7}",
        select(SEPARATORS),
        "[A-Za-z0-9]{6,9}",
        select(HOSTS),
        1u16..,
    )
        .prop_map(|(shape, scheme, user, left, sep, right, host, port)| {
            // In a password without a user name, a `:` makes the first half a user name, and
            // after `scheme://` a `/`, `?` or `#` ends the authority and makes it the host: the
            // URL's own grammar says so, to posthaste as to any HTTP client.
            let token = !shape.contains(":{p}");
            let sep = if token && matches!(sep, ":" | "/" | "?" | "#") { "" } else { sep };
            Case {
                url: shape
                    .replace("{s}", scheme)
                    .replace("{u}", &user)
                    .replace("{h}", host)
                    .replace("{n}", &port.to_string())
                    .replace("{p}", &format!("{left}{sep}{right}")),
                secrets: [left, right],
            }
        })
}

/// Fails the property if `text` (what `what` showed) holds either half of the password.
fn hidden(case: &Case, what: &str, text: &str) -> Result<(), TestCaseError> {
    let lower = text.to_lowercase();
    for s in &case.secrets {
        prop_assert!(!lower.contains(&s.to_lowercase()), "{what} of {:?} shows {s:?}: {text}", case.url);
    }
    Ok(())
}

/// Starts `b`; checks the error, or the guard's `Debug` and its shutdown report.
fn start_hidden(case: &Case, what: &str, b: posthaste::Builder) -> Result<(), TestCaseError> {
    hidden(case, &format!("{what}: Builder Debug"), &format!("{b:?}"))?;
    match b.start() {
        Err(e) => hidden(case, &format!("{what}: Error"), &format!("{e} {e:?}")),
        Ok(guard) => {
            hidden(case, &format!("{what}: Guard Debug"), &format!("{guard:?}"))?;
            let report = guard.shutdown();
            hidden(case, &format!("{what}: Report"), &format!("{report} {report:?}"))
        }
    }
}

proptest! {
    #[test]
    fn endpoint_urls_never_show_the_password(case in case()) {
        start_hidden(&case, "builder(url)", posthaste::builder(case.url.clone()))?;
    }

    #[test]
    fn proxy_urls_never_show_the_password(case in case()) {
        const OK: &str = "http://127.0.0.1:9/";
        let url = case.url.as_str();
        start_hidden(&case, "proxy(&str)", posthaste::builder(OK).proxy(url))?;
        start_hidden(&case, "proxy(String)", posthaste::builder(OK).proxy(case.url.clone()))?;
        match Proxy::parse(url) {
            Err(e) => hidden(&case, "Proxy::parse error", &format!("{e} {e:?}"))?,
            Ok(p) => {
                hidden(&case, "Proxy", &format!("{p} {p:?}"))?;
                start_hidden(&case, "proxy(Proxy)", posthaste::builder(OK).proxy(p))?;
            }
        }
    }
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// Well-formed proxy URLs with a password, to a proxy that refuses connections.
fn proxy_case() -> impl Strategy<Value = (Case, &'static str)> {
    (
        select(&["http", "https", "socks5", "socks5h"][..]),
        select(&["http://127.0.0.1:9/", "https://127.0.0.1:9/"][..]),
        "[a-z]{1,8}",
        "Pw[A-Za-z0-9]{4,7}",
        select(&["", "%2F", "%40", "%3A", "%20"][..]),
        "[A-Za-z0-9]{6,9}",
    )
        .prop_map(|(scheme, endpoint, user, left, sep, right)| {
            let url = format!("{scheme}://{user}:{left}{sep}{right}@127.0.0.1:{}", closed_port());
            (Case { url, secrets: [left, right] }, endpoint)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn reports_reasons_and_probes_never_show_the_proxy_password((case, endpoint) in proxy_case()) {
        let guard = posthaste::builder(endpoint)
            .proxy(case.url.as_str())
            .start()
            .expect("a well-formed proxy URL starts");
        let client = guard.client();

        let diagnosis = client.probe();
        prop_assert!(!diagnosis.is_ok(), "the proxy's port is closed: {diagnosis}");
        let shown = format!("{diagnosis} {diagnosis:?}");
        prop_assert!(shown.contains(":***@127.0.0.1:"), "the route names the proxy: {diagnosis}");
        hidden(&case, "probe", &shown)?;

        let receipt = client.send_tracked(json!({"n": 1})).expect("accepted");
        // Shutdown settles the event (its attempt is refused and not retried) and returns as
        // soon as it has, well before the default deadline.
        let report = guard.shutdown();
        let outcome = receipt.wait(Duration::from_secs(5)).expect("settled by shutdown");
        hidden(&case, "Report", &format!("{report} {report:?}"))?;
        match &outcome {
            Outcome::Failed { reason, .. } => {
                prop_assert!(reason.contains("127.0.0.1"), "the reason names the proxy: {reason}");
                hidden(&case, "outcome", &format!("{outcome:?}"))?;
            }
            other => prop_assert!(false, "expected Failed, got {other:?}"),
        }
    }
}
