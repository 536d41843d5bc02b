//! Maps ureq's errors to [`Fault`]: transient (retry) or permanent (fail), with a reason that
//! names the hop (endpoint, proxy, TLS).

use std::io;

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

/// Classifies `e`, raised while talking to `endpoint` (`host:port`).
pub(crate) fn map(e: ureq::Error, endpoint: &str) -> Fault {
    use ureq::Error as E;
    match e {
        E::Timeout(t) => Fault::transient(format!("{endpoint}: timed out ({t})")),
        E::HostNotFound => Fault::transient(format!("{endpoint}: host not found (DNS lookup failed)")),
        E::ConnectionFailed => Fault::transient(format!("{endpoint}: connection failed")),
        E::Io(io) => map_io(io, endpoint),
        E::Protocol(p) => Fault::transient(format!("{endpoint}: malformed HTTP answer: {p}")),
        E::BodyStalled => Fault::transient(format!("{endpoint}: transfer stalled")),
        E::Rustls(t) => Fault::permanent(format!("{endpoint}: TLS failed: {t}")),
        E::Tls(t) => Fault::permanent(format!("{endpoint}: TLS failed: {t}")),
        E::ConnectProxyFailed(reason) => proxy_refused(&reason),
        E::LargeResponseHeader(got, max) => {
            Fault::transient(format!("{endpoint}: response headers too large ({got} > {max} bytes)"))
        }
        other => Fault::permanent(format!("{endpoint}: {other}")),
    }
}

fn proxy_refused(reason: &str) -> Fault {
    // 407 and 403 are the proxy's policy: retrying the same credentials won't change it.
    let permanent = reason.contains(" 407") || reason.contains(" 403");
    let text = format!("proxy refused CONNECT: {reason}");
    if permanent {
        Fault::permanent(text)
    } else {
        Fault::transient(text)
    }
}

fn map_io(e: io::Error, endpoint: &str) -> Fault {
    // TLS handshake failures arrive as InvalidData wrapping a rustls::Error.
    if e.kind() == io::ErrorKind::InvalidData {
        if let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
            return Fault::permanent(format!("{endpoint}: TLS failed: {tls}"));
        }
    }
    use io::ErrorKind as K;
    let what = match e.kind() {
        K::ConnectionRefused => "connection refused",
        K::ConnectionReset => "connection reset",
        K::ConnectionAborted => "connection aborted",
        K::UnexpectedEof => "connection closed before the answer",
        K::BrokenPipe => "connection closed while sending",
        K::TimedOut | K::WouldBlock => "timed out",
        K::NotConnected => "not connected",
        K::AddrNotAvailable => "address not available",
        _ => "I/O error",
    };
    Fault::transient(format!("{endpoint}: {what} ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_of_errors() {
        let refused = io::Error::new(io::ErrorKind::ConnectionRefused, "refused");
        assert!(map(ureq::Error::Io(refused), "h:1").transient);
        assert!(map(ureq::Error::HostNotFound, "h:1").transient);
        let tls = io::Error::new(io::ErrorKind::InvalidData, rustls::Error::DecryptError);
        let f = map(ureq::Error::Io(tls), "h:1");
        assert!(!f.transient && f.reason.contains("TLS"), "{f:?}");
        let f = map(
            ureq::Error::ConnectProxyFailed(
                "proxy server responded 407/Proxy Authentication Required".into(),
            ),
            "h:1",
        );
        assert!(!f.transient && f.reason.contains("407"), "{f:?}");
        let f = map(ureq::Error::ConnectProxyFailed("proxy server responded 502/Bad Gateway".into()), "h:1");
        assert!(f.transient);
    }
}
