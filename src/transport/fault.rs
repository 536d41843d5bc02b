//! Maps ureq's errors to [`Fault`]: transient (retry) or permanent (fail), with a reason that
//! names the hop (endpoint, proxy, TLS with which peer) and, where there is one, the fix.

use std::io;

use super::proxy::Scheme;
use crate::util::redact_url;

/// A request that produced no HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fault {
    /// Worth retrying (connection trouble, timeouts), or not (TLS verification, proxy auth).
    pub(crate) transient: bool,
    pub(crate) reason: String,
}

impl Fault {
    pub(crate) fn transient(reason: String) -> Fault {
        Fault { transient: true, reason }
    }

    pub(crate) fn permanent(reason: String) -> Fault {
        Fault { transient: false, reason }
    }
}

/// The hops of the configured route, for naming them in reasons.
#[derive(Debug, Clone)]
pub(crate) struct Hops {
    /// `host:port` of the endpoint.
    pub(crate) endpoint: String,
    /// The endpoint's scheme: `"http"` or `"https"`.
    pub(crate) endpoint_scheme: String,
    /// The proxy's `host:port` and scheme, if the route has one.
    pub(crate) proxy: Option<(String, Scheme)>,
    /// Added to "unknown issuer" reasons (e.g. root certificates that failed to load).
    pub(crate) roots_note: Option<String>,
    /// The proxy URL has credentials (sent as `Proxy-Authorization` or SOCKS5 user/password).
    pub(crate) proxy_credentials: bool,
}

impl Hops {
    #[cfg(test)]
    pub(crate) fn direct(endpoint: &str) -> Hops {
        Hops {
            endpoint: endpoint.to_string(),
            endpoint_scheme: "http".into(),
            proxy: None,
            roots_note: None,
            proxy_credentials: false,
        }
    }

    /// `"endpoint h:443"` or `"endpoint h:443 (through proxy p:3128)"`.
    fn endpoint_hop(&self) -> String {
        match &self.proxy {
            None => format!("endpoint {}", self.endpoint),
            Some((p, _)) => format!("endpoint {} (through proxy {p})", self.endpoint),
        }
    }

    /// The hop a connection-level failure belongs to: the proxy when there is one (the first
    /// connection is always to it), else the endpoint.
    fn first_hop(&self) -> String {
        match &self.proxy {
            None => format!("endpoint {}", self.endpoint),
            Some((p, s)) if s.is_socks() => format!("SOCKS5 proxy {p}"),
            Some((p, _)) => format!("proxy {p}"),
        }
    }

    /// Which TLS peer a handshake failure is with.
    fn tls_hop(&self, e: &rustls::Error) -> String {
        match &self.proxy {
            Some((p, Scheme::Https)) => {
                // The proxy's own TLS comes first; a name mismatch tells which peer it was.
                if let rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext {
                    expected,
                    ..
                }) = e
                {
                    let host = p.rsplit_once(':').map_or(p.as_str(), |(h, _)| h).trim_matches(['[', ']']);
                    if expected.to_str() == host {
                        return format!("TLS with proxy {p}");
                    }
                    return format!("TLS with endpoint {} (through proxy {p})", self.endpoint);
                }
                if self.endpoint_scheme == "https" {
                    format!(
                        "TLS with proxy {p} or, through it, endpoint {} (Client::probe() tells which)",
                        self.endpoint
                    )
                } else {
                    format!("TLS with proxy {p}")
                }
            }
            _ => format!("TLS with {}", self.endpoint_hop()),
        }
    }
}

/// Classifies `e`, raised while sending over the route `hops`.
pub(crate) fn map(e: ureq::Error, hops: &Hops) -> Fault {
    use ureq::Error as E;
    match e {
        E::Timeout(t) => {
            let what = match &hops.proxy {
                Some((p, _)) => format!("endpoint {} through proxy {p}", hops.endpoint),
                None => format!("endpoint {}", hops.endpoint),
            };
            Fault::transient(format!("{what}: timed out ({t})"))
        }
        E::HostNotFound => {
            Fault::transient(format!("{}: host not found (DNS lookup failed)", hops.first_hop()))
        }
        E::ConnectionFailed => Fault::transient(format!("{}: connection failed", hops.first_hop())),
        E::Io(io) => map_io(io, hops),
        E::Protocol(p) => Fault::transient(format!("{}: malformed HTTP answer: {p}", hops.endpoint_hop())),
        E::BodyStalled => Fault::transient(format!("{}: transfer stalled", hops.endpoint_hop())),
        E::Rustls(t) => tls_fault(&t, hops),
        E::Tls(t) => Fault::permanent(format!("TLS with {}: {t}", hops.endpoint_hop())),
        E::ConnectProxyFailed(reason) => proxy_refused(&reason, hops),
        E::LargeResponseHeader(got, max) => Fault::transient(format!(
            "{}: response headers too large ({got} > {max} bytes)",
            hops.endpoint_hop()
        )),
        // ureq's `BadUri` quotes the endpoint's URL, userinfo included.
        other => Fault::permanent(format!("{}: {}", hops.endpoint_hop(), redact_url(&other.to_string()))),
    }
}

/// The status and phrase in `"proxy server responded 407/Proxy Authentication Required"` (the
/// probe's text, with the proxy's phrase) or `"proxy server responded 407/407"` (ureq's, which
/// drops the phrase).
pub(crate) fn proxy_status(reason: &str) -> Option<(u16, &str)> {
    let tail = reason.rsplit("responded ").next()?;
    let (code, phrase) = tail.split_once('/').unwrap_or((tail, ""));
    Some((code.trim().parse().ok()?, phrase))
}

/// A status line for reasons: `"403 Access violation"`, as the proxy sent it. When the phrase
/// is missing or is only the number again (ureq's `CONNECT` error keeps no phrase), the
/// standard one (`"403 Forbidden"`); never the number twice.
pub(crate) fn status_line(status: u16, phrase: &str) -> String {
    let phrase = phrase.trim();
    let phrase = if phrase.is_empty() || phrase == status.to_string() {
        ureq::http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("")
    } else {
        phrase
    };
    // A phrase is the peer's text: shown whole but bounded, without control characters.
    let phrase: String = phrase.chars().filter(|c| !c.is_control()).take(80).collect();
    if phrase.is_empty() {
        status.to_string()
    } else {
        format!("{status} {phrase}")
    }
}

/// An answer to a request sent to an HTTP(S) proxy: to `CONNECT`, or to a request forwarded in
/// absolute form. What [`proxy_answer`] needs to tell the proxy's own answer from the
/// endpoint's.
pub(crate) struct ProxyAnswer<'a> {
    pub(crate) status: u16,
    /// The reason phrase as sent (may be empty).
    pub(crate) phrase: &'a str,
    /// An answer to `CONNECT`: the endpoint was never reached.
    pub(crate) connect: bool,
    /// `Proxy-Authorization` was sent.
    pub(crate) sent_credentials: bool,
    /// The answer has a `Proxy-Authenticate` header.
    pub(crate) proxy_authenticate: bool,
    /// The answer has a `Via` header.
    pub(crate) via: bool,
    /// squid's `X-Squid-Error` or an RFC 9209 `Proxy-Status`.
    pub(crate) proxy_note: Option<&'a str>,
    /// The start of the body, for the reason.
    pub(crate) excerpt: &'a str,
}

/// Whether an answer through an HTTP(S) proxy is the proxy refusing the request (a failure of
/// the proxy hop, named in the reason) or the endpoint's answer (`None`: judged as usual).
///
/// The rule, the one place it is decided (`CONNECT` through ureq, the probe's `CONNECT`, and
/// forwarded requests in `forward.rs`):
///
/// - Every answer to `CONNECT` other than 2xx is the proxy's: the endpoint is never reached
///   before the tunnel opens. 401 and 407 are refused credentials, permanent; 403 is the
///   proxy's policy, permanent; others (502, 503, …) are transient.
/// - On a forwarded request, 407 is the proxy's (only proxies send it). So is a 401 that
///   carries `Proxy-Authenticate` (a header only proxies send), or that answers a request
///   sent with `Proxy-Authorization` and carries no `Via` header: a proxy adds `Via` to every
///   answer it relays (RFC 9110 §7.6.3), so an answer without one was made by the proxy itself.
///   tinyproxy refuses wrong credentials this way (`401 Unauthorized`, no `Via`; it answers 407
///   only when no credentials are sent). Both are permanent. A 403 with squid's
///   `X-Squid-Error` or a `Proxy-Status` is the proxy's policy, permanent. Every other answer
///   is the endpoint's, relayed.
///
/// A proxy configured to send no `Via` at all (squid's `via off`) makes an endpoint's 401
/// read as refused proxy credentials: permanent either way, only the wording differs.
pub(crate) fn proxy_answer(a: &ProxyAnswer<'_>, hops: &Hops) -> Option<Fault> {
    let proxy = hops.proxy.as_ref().map_or("proxy".to_string(), |(p, _)| format!("proxy {p}"));
    let target = &hops.endpoint;
    let line = status_line(a.status, a.phrase);
    let refused = if a.connect {
        format!("{proxy} refused CONNECT to {target}: {line}")
    } else {
        format!("{proxy} refused to forward to {target}: {line}")
    };
    let auth = match a.status {
        407 => true,
        401 => a.connect || a.proxy_authenticate || (a.sent_credentials && !a.via),
        _ => false,
    };
    if auth {
        let what = if a.sent_credentials {
            "proxy authentication failed: the proxy refused the credentials (fix user:password in the proxy URL)"
        } else {
            "proxy authentication required (set user:password in the proxy URL)"
        };
        return Some(Fault::permanent(format!("{refused}: {what}")));
    }
    let excerpt = match (a.proxy_note, a.excerpt.is_empty()) {
        (Some(n), true) => format!("; answered by the proxy: {n}"),
        (Some(n), false) => format!("; answered by the proxy: {n}; {}", a.excerpt),
        (None, _) => String::new(),
    };
    if a.connect {
        return Some(match a.status {
            200..=299 => return None,
            403 if !target.ends_with(":443") => Fault::permanent(format!(
                "{refused} (the proxy's policy denies it; many proxies, stock squid and tinyproxy \
                 among them, allow CONNECT only to port 443: serve the endpoint on 443, have this port \
                 allowed, or bypass the proxy with NO_PROXY or Builder::no_proxy)"
            )),
            403 => Fault::permanent(format!("{refused} (the proxy's policy denies it)")),
            _ => Fault::transient(format!("{proxy} could not open a tunnel to {target}: {line}")),
        });
    }
    match a.status {
        403 if a.proxy_note.is_some() => {
            Some(Fault::permanent(format!("{refused} (the proxy's policy denies it{excerpt})")))
        }
        _ => None,
    }
}

/// ureq's `CONNECT` failure (`"proxy server responded 401/401"`, `"proxy server did not
/// respond"`) through [`proxy_answer`].
fn proxy_refused(reason: &str, hops: &Hops) -> Fault {
    let Some((status, phrase)) = proxy_status(reason) else {
        let proxy = hops.proxy.as_ref().map_or("proxy".to_string(), |(p, _)| format!("proxy {p}"));
        return Fault::transient(format!("{proxy}: CONNECT to {} failed: {reason}", hops.endpoint));
    };
    let answer = ProxyAnswer {
        status,
        phrase,
        connect: true,
        sent_credentials: hops.proxy_credentials,
        proxy_authenticate: false,
        via: false,
        proxy_note: None,
        excerpt: "",
    };
    proxy_answer(&answer, hops).unwrap_or_else(|| {
        Fault::transient(format!("{}: CONNECT answered {}", hops.endpoint, status_line(status, phrase)))
    })
}

fn map_io(e: io::Error, hops: &Hops) -> Fault {
    // TLS handshake failures arrive as InvalidData wrapping a rustls::Error.
    if e.kind() == io::ErrorKind::InvalidData {
        if let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
            return tls_fault(tls, hops);
        }
    }
    if let Some((p, scheme)) = &hops.proxy {
        if scheme.is_socks() {
            if let Some(f) = socks_fault(&e, p, &hops.endpoint) {
                return f;
            }
        }
    }
    use io::ErrorKind as K;
    // The system resolver's failures come back uncategorized, recognisable by std's text.
    if e.to_string().starts_with("failed to lookup address information") {
        return Fault::transient(format!("{}: host not found (DNS lookup failed: {e})", hops.first_hop()));
    }
    let (what, at_connect) = match e.kind() {
        K::ConnectionRefused => ("connection refused", true),
        K::ConnectionReset => ("connection reset", false),
        K::ConnectionAborted => ("connection aborted", false),
        K::UnexpectedEof => ("connection closed before the answer", false),
        K::BrokenPipe => ("connection closed while sending", false),
        K::TimedOut | K::WouldBlock => ("timed out", false),
        K::NotConnected => ("not connected", false),
        K::AddrNotAvailable => ("address not available", true),
        K::HostUnreachable => ("host unreachable", true),
        K::NetworkUnreachable => ("network unreachable", true),
        _ => ("I/O error", false),
    };
    let hop = if at_connect { hops.first_hop() } else { hops.endpoint_hop() };
    Fault::transient(format!("{hop}: {what} ({e})"))
}

/// SOCKS5 handshake failures (ureq reports them as I/O errors with these texts).
fn socks_fault(e: &io::Error, proxy: &str, target: &str) -> Option<Fault> {
    let text = e.to_string();
    let hop = format!("SOCKS5 proxy {proxy}");
    Some(match text.as_str() {
        "password authentication failed" => Fault::permanent(format!(
            "{hop} refused the credentials: authentication failed (fix user:password in the proxy URL)"
        )),
        "no acceptable auth methods" => Fault::permanent(format!(
            "{hop} accepts none of the offered authentication methods (it likely requires user:password in the proxy URL)"
        )),
        "invalid username" | "invalid password" => {
            Fault::permanent(format!("{hop}: {text} (SOCKS5 needs 1 to 255 bytes)"))
        }
        "connection not allowed by ruleset" => {
            Fault::permanent(format!("{hop} refused to connect to {target}: connection not allowed by ruleset"))
        }
        "general SOCKS server failure" | "network unreachable" | "host unreachable" | "connection refused"
        | "TTL expired" => Fault::transient(format!("{hop} could not connect to {target}: {text}")),
        "command not supported" | "address kind not supported" | "unknown auth method" | "invalid response version" => {
            Fault::permanent(format!("{hop}: {text}"))
        }
        _ => return None,
    })
}

/// TLS failures are permanent: the same certificates will fail the same way.
fn tls_fault(e: &rustls::Error, hops: &Hops) -> Fault {
    Fault::permanent(format!("{}: {}", hops.tls_hop(e), tls_reason(e, hops)))
}

/// Why a handshake failed, in words, with the fix where there is one.
pub(crate) fn tls_reason(e: &rustls::Error, hops: &Hops) -> String {
    use rustls::{AlertDescription as A, CertificateError as C, Error as R};
    match e {
        R::InvalidCertificate(c) => match c {
            C::UnknownIssuer => {
                let mut s =
                    "certificate not trusted: unknown issuer (its CA is not among the trusted roots; \
                             add it with Builder::add_root_certs_pem_file"
                        .to_string();
                if hops.proxy.is_some() {
                    s.push_str("; a TLS-intercepting proxy re-signs traffic with its own CA: trust that CA");
                }
                s.push(')');
                if let Some(note) = &hops.roots_note {
                    s.push_str(&format!("; note: {note}"));
                }
                s
            }
            C::NotValidForName => "certificate is not valid for this host name".into(),
            C::NotValidForNameContext { expected, presented } => {
                format!(
                    "certificate is not valid for {:?} (it is for {})",
                    expected.to_str(),
                    presented.join(", ")
                )
            }
            C::Expired => "certificate expired".into(),
            C::ExpiredContext { time, not_after } => {
                format!("certificate expired ({}s ago)", time.as_secs().saturating_sub(not_after.as_secs()))
            }
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "certificate is not valid yet (check the clock)".into()
            }
            C::Revoked => "certificate revoked".into(),
            C::BadSignature => "certificate has a bad signature".into(),
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                "certificate is not valid for TLS server authentication".into()
            }
            C::BadEncoding => "certificate is malformed".into(),
            other => format!("certificate rejected: {other:?}"),
        },
        R::AlertReceived(alert) => match alert {
            A::CertificateRequired => {
                "the server requires a client certificate (Builder::client_cert_pem_files)".into()
            }
            A::BadCertificate
            | A::UnknownCA
            | A::CertificateUnknown
            | A::UnsupportedCertificate
            | A::CertificateRevoked
            | A::CertificateExpired
            | A::AccessDenied => {
                format!("the server refused the handshake ({alert:?}): it rejected our client certificate or has none to request")
            }
            A::HandshakeFailure => {
                "the server refused the handshake (HandshakeFailure: no common protocol version or \
                 cipher suite, or a client certificate is required)"
                    .into()
            }
            other => format!("the server refused the handshake: alert {other:?}"),
        },
        R::InvalidMessage(m) => {
            format!("not a TLS server, or a garbled answer ({m:?}); is this port plain HTTP?")
        }
        other => format!("handshake failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn via(scheme: Scheme) -> Hops {
        Hops {
            endpoint: "h:443".into(),
            endpoint_scheme: "https".into(),
            proxy: Some(("127.0.0.1:3128".into(), scheme)),
            roots_note: None,
            proxy_credentials: true,
        }
    }

    #[test]
    fn classification_of_errors() {
        let direct = Hops::direct("h:1");
        let refused = io::Error::new(io::ErrorKind::ConnectionRefused, "refused");
        assert!(map(ureq::Error::Io(refused), &direct).transient);
        assert!(map(ureq::Error::HostNotFound, &direct).transient);
        let tls = io::Error::new(io::ErrorKind::InvalidData, rustls::Error::DecryptError);
        let f = map(ureq::Error::Io(tls), &direct);
        assert!(!f.transient && f.reason.contains("TLS"), "{f:?}");
        let f =
            map(ureq::Error::ConnectProxyFailed("proxy server responded 502/Bad Gateway".into()), &direct);
        assert!(f.transient);
        let f = map(ureq::Error::BadUri("http://u:hunter2@h/ is missing scheme".into()), &direct);
        assert!(!f.transient && !f.reason.contains("hunter2"), "{f:?}");
    }

    #[test]
    fn proxy_refusals_name_the_proxy_and_the_fix() {
        let hops = via(Scheme::Http);
        let f = map(
            ureq::Error::ConnectProxyFailed(
                "proxy server responded 407/Proxy Authentication Required".into(),
            ),
            &hops,
        );
        assert!(!f.transient);
        assert_eq!(
            f.reason,
            "proxy 127.0.0.1:3128 refused CONNECT to h:443: 407 Proxy Authentication Required: proxy \
             authentication failed: the proxy refused the credentials (fix user:password in the proxy URL)"
        );
        let f = map(ureq::Error::ConnectProxyFailed("proxy server responded 403/Forbidden".into()), &hops);
        assert!(!f.transient && f.reason.ends_with("(the proxy's policy denies it)"), "{}", f.reason);
        let mut other_port = via(Scheme::Http);
        other_port.endpoint = "h:8443".into();
        let f =
            map(ureq::Error::ConnectProxyFailed("proxy server responded 403/Forbidden".into()), &other_port);
        assert!(
            !f.transient && f.reason.contains("port 443") && f.reason.contains("NO_PROXY"),
            "{}",
            f.reason
        );
        let f = map(ureq::Error::ConnectProxyFailed("proxy server did not respond".into()), &hops);
        assert!(f.transient);
        let refused = io::Error::new(io::ErrorKind::ConnectionRefused, "refused");
        let f = map(ureq::Error::Io(refused), &hops);
        assert!(
            f.transient && f.reason.starts_with("proxy 127.0.0.1:3128: connection refused"),
            "{}",
            f.reason
        );
    }

    #[test]
    fn status_lines_show_the_phrase_once() {
        assert_eq!(status_line(403, "Access violation"), "403 Access violation");
        assert_eq!(status_line(407, "407"), "407 Proxy Authentication Required");
        assert_eq!(status_line(401, ""), "401 Unauthorized");
        assert_eq!(status_line(599, " "), "599");
        assert_eq!(status_line(403, "a\u{7}b"), "403 ab");
        // ureq's CONNECT error keeps no phrase; the probe's keeps the proxy's.
        let hops = via(Scheme::Http);
        let f = map(ureq::Error::ConnectProxyFailed("proxy server responded 403/403".into()), &hops);
        assert!(f.reason.contains("h:443: 403 Forbidden (the proxy's policy"), "{}", f.reason);
        let f = map(ureq::Error::ConnectProxyFailed("proxy server responded 502/Bad Gateway".into()), &hops);
        assert_eq!(f.reason, "proxy 127.0.0.1:3128 could not open a tunnel to h:443: 502 Bad Gateway");
        assert!(f.transient);
    }

    #[test]
    fn a_proxy_401_is_told_from_the_endpoint_401() {
        let hops = via(Scheme::Http);
        let answer = |connect, proxy_authenticate, via, sent_credentials| ProxyAnswer {
            status: 401,
            phrase: "Unauthorized",
            connect,
            sent_credentials,
            proxy_authenticate,
            via,
            proxy_note: None,
            excerpt: "<html>",
        };
        // To CONNECT: always the proxy's, whatever the headers.
        let f = proxy_answer(&answer(true, false, true, true), &hops).unwrap();
        assert!(!f.transient, "{f:?}");
        assert!(f.reason.starts_with("proxy 127.0.0.1:3128 refused CONNECT to h:443: 401 Unauthorized: proxy authentication failed"), "{f:?}");
        // Forwarded: Proxy-Authenticate, or credentials sent and no Via (tinyproxy).
        for (pa, via, creds) in [(true, true, false), (false, false, true)] {
            let f = proxy_answer(&answer(false, pa, via, creds), &hops).unwrap();
            assert!(
                !f.transient && f.reason.contains("refused to forward to h:443: 401 Unauthorized"),
                "{f:?}"
            );
        }
        // Relayed from the endpoint (Via), or no proxy credentials were sent: the endpoint's.
        assert!(proxy_answer(&answer(false, false, true, true), &hops).is_none());
        assert!(proxy_answer(&answer(false, false, false, false), &hops).is_none());
        // 407 is always the proxy's; without credentials the reason says to set them.
        let f = proxy_answer(
            &ProxyAnswer { status: 407, phrase: "", ..answer(false, false, true, false) },
            &hops,
        )
        .unwrap();
        assert!(f.reason.ends_with("407 Proxy Authentication Required: proxy authentication required (set user:password in the proxy URL)"), "{f:?}");
        // Other forwarded answers are the endpoint's; a 403 with squid's marks is the proxy's.
        assert!(
            proxy_answer(&ProxyAnswer { status: 503, ..answer(false, false, false, true) }, &hops).is_none()
        );
        let squid = ProxyAnswer {
            status: 403,
            phrase: "Forbidden",
            proxy_note: Some("ERR_ACCESS_DENIED 0"),
            ..answer(false, false, true, true)
        };
        let f = proxy_answer(&squid, &hops).unwrap();
        assert!(!f.transient && f.reason.contains("403 Forbidden (the proxy's policy denies it; answered by the proxy: ERR_ACCESS_DENIED 0; <html>)"), "{f:?}");
    }

    #[test]
    fn socks_failures() {
        let hops = via(Scheme::Socks5);
        let auth = io::Error::new(io::ErrorKind::PermissionDenied, "password authentication failed");
        let f = map(ureq::Error::Io(auth), &hops);
        assert!(!f.transient && f.reason.contains("SOCKS5 proxy 127.0.0.1:3128"), "{f:?}");
        let f = map(ureq::Error::Io(io::Error::other("no acceptable auth methods")), &hops);
        assert!(!f.transient, "{f:?}");
        let f = map(ureq::Error::Io(io::Error::other("host unreachable")), &hops);
        assert!(f.transient, "{f:?}");
    }

    #[test]
    fn tls_reasons_say_why() {
        let direct = Hops { endpoint_scheme: "https".into(), ..Hops::direct("h:443") };
        let unknown = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let f = tls_fault(&unknown, &direct);
        assert!(
            !f.transient
                && f.reason.contains("TLS with endpoint h:443: certificate not trusted: unknown issuer")
        );
        let f = tls_fault(&unknown, &via(Scheme::Http));
        assert!(f.reason.contains("through proxy") && f.reason.contains("intercepting"), "{}", f.reason);
        let expired = rustls::Error::InvalidCertificate(rustls::CertificateError::Expired);
        assert!(tls_fault(&expired, &direct).reason.contains("expired"));
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired);
        assert!(tls_fault(&alert, &direct).reason.contains("client certificate"));
        let f = tls_fault(&unknown, &via(Scheme::Https));
        assert!(f.reason.contains("TLS with proxy 127.0.0.1:3128 or"), "{}", f.reason);
    }
}
