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
}

impl Hops {
    #[cfg(test)]
    pub(crate) fn direct(endpoint: &str) -> Hops {
        Hops { endpoint: endpoint.to_string(), endpoint_scheme: "http".into(), proxy: None, roots_note: None }
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

/// The status in ureq's `"proxy server responded 407/Proxy Authentication Required"`.
fn proxy_status(reason: &str) -> Option<u16> {
    let tail = reason.rsplit("responded ").next()?;
    tail.split('/').next()?.trim().parse().ok()
}

fn proxy_refused(reason: &str, hops: &Hops) -> Fault {
    let proxy = hops.proxy.as_ref().map_or("proxy".to_string(), |(p, _)| format!("proxy {p}"));
    let target = &hops.endpoint;
    let Some(status) = proxy_status(reason) else {
        // "proxy server did not respond" and the like.
        return Fault::transient(format!("{proxy}: CONNECT to {target} failed: {reason}"));
    };
    let text = reason.rsplit("responded ").next().unwrap_or(reason).replacen('/', " ", 1);
    match status {
        407 => Fault::permanent(format!(
            "{proxy} refused CONNECT to {target}: {text}: authentication required \
             (set or fix user:password in the proxy URL)"
        )),
        403 if !target.ends_with(":443") => Fault::permanent(format!(
            "{proxy} refused CONNECT to {target}: {text} (the proxy's policy denies it; many proxies, \
             stock squid among them, allow CONNECT only to port 443: serve the endpoint on 443, have \
             this port allowed, or bypass the proxy with NO_PROXY or Builder::no_proxy)"
        )),
        403 => Fault::permanent(format!(
            "{proxy} refused CONNECT to {target}: {text} (the proxy's policy denies it)"
        )),
        _ => Fault::transient(format!("{proxy} could not open a tunnel to {target}: {text}")),
    }
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
        assert!(f.reason.starts_with("proxy 127.0.0.1:3128 refused CONNECT to h:443: 407"), "{}", f.reason);
        assert!(f.reason.contains("authentication required"), "{}", f.reason);
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
