//! [`Client::probe`](crate::Client::probe): one request through the configured path, diagnosed
//! step by step — route, DNS, TCP, proxy TLS, tunnel, TLS with the endpoint (and which root
//! verified it), HTTP status.
//!
//! The connection steps are made here with std and rustls, mirroring what ureq does, so each
//! hop can be named; the last step is a real `HEAD` request through the workers' transport.
//! Runs on the caller's thread; bounded by the connect and request timeouts.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

use super::fault::{self, Hops};
use super::proxy::{Proxy, Scheme};
use super::tls::Recorder;
use super::Transport;

/// What a [`Step`] checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StepKind {
    /// Which way requests go: direct or through which proxy, and why.
    Route,
    /// DNS lookup of the first hop (the proxy, or the endpoint).
    Resolve,
    /// TCP connection to the first hop.
    Connect,
    /// TLS with an `https://` proxy.
    ProxyTls,
    /// The tunnel through the proxy: HTTP `CONNECT`, or the SOCKS5 handshake.
    Tunnel,
    /// TLS with the endpoint: certificate verified, and by which root.
    Tls,
    /// A `HEAD` request through the same path the workers use, and its status.
    Http,
}

impl StepKind {
    fn name(self) -> &'static str {
        match self {
            StepKind::Route => "route",
            StepKind::Resolve => "resolve",
            StepKind::Connect => "connect",
            StepKind::ProxyTls => "proxy TLS",
            StepKind::Tunnel => "tunnel",
            StepKind::Tls => "TLS",
            StepKind::Http => "HTTP",
        }
    }
}

/// One checked step of a [`Diagnosis`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Step {
    /// What was checked.
    pub kind: StepKind,
    /// Whether it worked.
    pub ok: bool,
    /// What was seen, in words: addresses, statuses, certificate names, the reason of a failure.
    pub detail: String,
}

/// The result of [`Client::probe`](crate::Client::probe): the steps taken, in order, up to
/// the first that failed. `Display` prints one numbered line per step.
///
/// ```text
/// 1. route ok: via proxy http://alice:***@127.0.0.1:3128 (from HTTPS_PROXY)
/// 2. resolve ok: 127.0.0.1:3128 is 127.0.0.1:3128
/// 3. connect ok: connected to proxy 127.0.0.1:3128
/// 4. tunnel ok: proxy 127.0.0.1:3128 opened a tunnel to collector.corp:443 (200 Connection established)
/// 5. TLS ok: collector.corp presented CN=collector.corp; certificate verified, anchored at CN=Corp Root CA (from corp-ca.pem); TLSv1_3
/// 6. HTTP ok: HEAD collector.corp:443 answered 200
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Diagnosis {
    /// The steps, in order. The last one is the first failure, if any.
    pub steps: Vec<Step>,
    /// Non-fatal problems found at start (root certificates that failed to load, disabled
    /// verification).
    pub warnings: Vec<String>,
}

impl Diagnosis {
    /// True if every step worked.
    pub fn is_ok(&self) -> bool {
        self.steps.iter().all(|s| s.ok)
    }

    /// The step that failed, if one did.
    pub fn failure(&self) -> Option<&Step> {
        self.steps.iter().find(|s| !s.ok)
    }

    /// The step of this kind, if it was taken.
    pub fn step(&self, kind: StepKind) -> Option<&Step> {
        self.steps.iter().find(|s| s.kind == kind)
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.steps.iter().enumerate() {
            let verdict = if s.ok { "ok" } else { "FAILED" };
            writeln!(f, "{}. {} {verdict}: {}", i + 1, s.kind.name(), s.detail)?;
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        Ok(())
    }
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

struct Probe<'a> {
    t: &'a Transport,
    steps: Vec<Step>,
    /// The proxy's answer to `CONNECT` as it sent it: status and reason phrase.
    tunnel: Option<(u16, String)>,
}

impl Probe<'_> {
    fn step(&mut self, kind: StepKind, ok: bool, detail: String) -> bool {
        self.steps.push(Step { kind, ok, detail });
        ok
    }
}

/// The proxy's answer to a `CONNECT` to the endpoint, as the proxy sent it (status and reason
/// phrase), from one connection made for the purpose; `None` without an HTTP(S) proxy or if
/// the proxy could not be reached. ureq keeps no reason phrase of a refused `CONNECT`: this is
/// how reasons show the proxy's own words.
pub(crate) fn connect_answer(t: &Transport) -> Option<(u16, String)> {
    let mut p = Probe { t, steps: Vec::new(), tunnel: None };
    let _ = connect_steps(&mut p);
    p.tunnel
}

/// Runs the probe over `t`'s route.
pub(crate) fn run(t: &Transport) -> Diagnosis {
    let mut p = Probe { t, steps: Vec::new(), tunnel: None };
    let route = t.route.describe();
    let tls_on = t.hops.endpoint_scheme == "https"
        || t.route.proxy.as_ref().is_some_and(|proxy| proxy.scheme == Scheme::Https);
    let trust = if tls_on { format!("; {}", t.trust.summary) } else { String::new() };
    let mode = if t.forward.is_some() {
        "; http:// requests are forwarded by the proxy (absolute-form, no CONNECT)"
    } else {
        ""
    };
    p.step(StepKind::Route, true, format!("{route}{mode}{trust}"));
    let _ = connect_steps(&mut p);
    if p.steps.iter().all(|s| s.ok) {
        http_step(&mut p);
    }
    Diagnosis { steps: p.steps, warnings: t.warnings().to_vec() }
}

/// Resolve, connect, proxy TLS, tunnel, endpoint TLS. `None` once a step failed.
fn connect_steps(p: &mut Probe<'_>) -> Option<()> {
    let t = p.t;
    let (host, port) = endpoint_host_port(t);
    let proxy = t.route.proxy.clone();
    let (hop_name, hop_host, hop_port) = match &proxy {
        Some(pr) => (format!("proxy {}", pr.authority()), pr.host().to_string(), pr.port()),
        None => (format!("endpoint {}", t.hops.endpoint), host.clone(), port),
    };
    let addrs: Vec<SocketAddr> = match (hop_host.as_str(), hop_port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => {
            p.step(StepKind::Resolve, false, format!("DNS lookup of {hop_name} failed: {e}"));
            return None;
        }
    };
    if addrs.is_empty() {
        p.step(StepKind::Resolve, false, format!("DNS lookup of {hop_name} found no address"));
        return None;
    }
    let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    p.step(StepKind::Resolve, true, format!("{hop_host}:{hop_port} is {}", list.join(", ")));

    let mut last = None;
    let mut tcp = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, t.connect_timeout) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let Some(tcp) = tcp else {
        let e = last.map_or("no address".into(), |e| e.to_string());
        p.step(StepKind::Connect, false, format!("could not connect to {hop_name}: {e}"));
        return None;
    };
    let _ = tcp.set_read_timeout(Some(t.request_timeout));
    let _ = tcp.set_write_timeout(Some(t.request_timeout));
    let _ = tcp.set_nodelay(true);
    p.step(StepKind::Connect, true, format!("connected to {hop_name} ({})", peer(&tcp)));
    let mut stream: Box<dyn Stream> = Box::new(tcp);

    if let Some(pr) = &proxy {
        if pr.scheme == Scheme::Https {
            stream =
                tls_step(p, stream, pr.host(), StepKind::ProxyTls, &format!("proxy {}", pr.authority()))?;
        }
        if pr.scheme.is_socks() {
            stream = socks_step(p, stream, pr, &host, port)?;
        } else if t.forward.is_none() {
            stream = connect_step(p, stream, pr, &host, port)?;
        }
    }
    if t.hops.endpoint_scheme == "https" {
        let _ = tls_step(p, stream, &host, StepKind::Tls, &format!("endpoint {}", t.hops.endpoint))?;
    }
    Some(())
}

fn endpoint_host_port(t: &Transport) -> (String, u16) {
    let host = t.uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
    let port = t.uri.port_u16().unwrap_or(if t.hops.endpoint_scheme == "https" { 443 } else { 80 });
    (host, port)
}

fn peer(s: &TcpStream) -> String {
    s.peer_addr().map_or_else(|_| "?".into(), |a| a.to_string())
}

/// `host:port` for a request line or a Host header (IPv6 in brackets).
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A TLS handshake over `stream` with `name`, verified with the configured roots.
fn tls_step(
    p: &mut Probe<'_>,
    mut stream: Box<dyn Stream>,
    name: &str,
    kind: StepKind,
    who: &str,
) -> Option<Box<dyn Stream>> {
    let (config, recorder): (Arc<rustls::ClientConfig>, Arc<Recorder>) = match p.t.trust.probe_config() {
        Ok(c) => c,
        Err(e) => {
            p.step(kind, false, format!("TLS with {who} cannot be set up: {e}"));
            return None;
        }
    };
    let server_name = match ServerName::try_from(name.to_string()) {
        Ok(n) => n,
        Err(e) => {
            p.step(kind, false, format!("{name:?} is not a valid TLS server name: {e}"));
            return None;
        }
    };
    let mut conn = match ClientConnection::new(config, server_name) {
        Ok(c) => c,
        Err(e) => {
            p.step(kind, false, format!("TLS with {who}: {e}"));
            return None;
        }
    };
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut stream) {
            let tls = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()).cloned();
            let hops = Hops { proxy: None, ..p.t.hops.clone() };
            let why = match tls {
                Some(tls) => fault::tls_reason(&tls, &with_proxy_note(&hops, p.t)),
                None => format!("connection failed during the handshake: {e}"),
            };
            let seen = recorder.seen.lock().clone();
            let presented = seen.map(|s| format!(" (it presented {})", s.subject)).unwrap_or_default();
            p.step(kind, false, format!("TLS with {who} failed: {why}{presented}"));
            return None;
        }
    }
    let seen = recorder.seen.lock().clone();
    let version = conn.protocol_version().map_or("TLS".into(), |v| format!("{v:?}"));
    let subject = seen.as_ref().map_or("a certificate".into(), |s| s.subject.clone());
    let verified = if p.t.trust.accept_invalid_certs {
        "NOT verified (Builder::dangerous().accept_invalid_certs())".to_string()
    } else {
        match seen.and_then(|s| s.anchor) {
            Some(a) => format!("certificate verified, anchored at {a}"),
            None => "certificate verified".to_string(),
        }
    };
    let client = match &p.t.trust.client {
        Some(id) => format!("; client {}", id.origin),
        None => String::new(),
    };
    p.step(kind, true, format!("{name} presented {subject}; {verified}; {version}{client}"));
    Some(Box::new(StreamOwned::new(conn, stream)))
}

/// Names the proxy in TLS reasons for the endpoint reached through it.
fn with_proxy_note(h: &Hops, t: &Transport) -> Hops {
    Hops { proxy: t.hops.proxy.clone(), ..h.clone() }
}

/// HTTP `CONNECT` through an HTTP(S) proxy, as ureq sends it.
fn connect_step(
    p: &mut Probe<'_>,
    mut stream: Box<dyn Stream>,
    proxy: &Proxy,
    host: &str,
    port: u16,
) -> Option<Box<dyn Stream>> {
    let target = authority(host, port);
    let mut req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Connection: Keep-Alive\r\n");
    if let Some(auth) = proxy.basic_auth() {
        req.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    req.push_str("\r\n");
    if let Err(e) = stream.write_all(req.as_bytes()).and_then(|()| stream.flush()) {
        p.step(StepKind::Tunnel, false, format!("proxy {}: sending CONNECT failed: {e}", proxy.authority()));
        return None;
    }
    // Read the answer's head byte by byte, so no tunnel data is consumed.
    let head = match read_head(&mut stream) {
        Ok(h) => h,
        Err(e) => {
            p.step(
                StepKind::Tunnel,
                false,
                format!("proxy {} did not answer CONNECT: {e}", proxy.authority()),
            );
            return None;
        }
    };
    let status_line = head.lines().next().unwrap_or_default().to_string();
    let mut parts = status_line.splitn(3, ' ');
    let _version = parts.next();
    let code: u16 = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
    let reason = parts.next().unwrap_or("").trim().to_string();
    p.tunnel = Some((code, reason.clone()));
    if code == 200 {
        let detail = format!("proxy {} opened a tunnel to {target} ({code} {reason})", proxy.authority());
        p.step(StepKind::Tunnel, true, detail);
        return Some(stream);
    }
    let text = format!("proxy server responded {code}/{reason}");
    let f = fault::map(ureq::Error::ConnectProxyFailed(text), &p.t.hops);
    p.step(StepKind::Tunnel, false, f.reason);
    None
}

/// Reads an HTTP response head (through the blank line).
fn read_head(s: &mut dyn Stream) -> io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "answer head too large"));
        }
        if s.read(&mut byte)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
        }
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// The SOCKS5 handshake (RFC 1928/1929), as ureq does it.
fn socks_step(
    p: &mut Probe<'_>,
    mut s: Box<dyn Stream>,
    proxy: &Proxy,
    host: &str,
    port: u16,
) -> Option<Box<dyn Stream>> {
    let who = format!("SOCKS5 proxy {}", proxy.authority());
    match socks5(&mut s, proxy, host, port) {
        Ok(()) => {
            p.step(StepKind::Tunnel, true, format!("{who} connected us to {}", authority(host, port)));
            Some(s)
        }
        Err(e) => {
            let f = fault::map(ureq::Error::Io(e), &p.t.hops);
            p.step(StepKind::Tunnel, false, f.reason);
            None
        }
    }
}

fn socks5(s: &mut Box<dyn Stream>, proxy: &Proxy, host: &str, port: u16) -> io::Result<()> {
    let user = proxy.username.as_deref();
    s.write_all(if user.is_some() { &[5, 2, 2, 0] } else { &[5, 1, 0] })?;
    let mut reply = [0u8; 2];
    s.read_exact(&mut reply)?;
    match (reply[1], user) {
        (0, _) => {}
        (2, Some(u)) => {
            let pw = proxy.password.as_deref().unwrap_or("");
            let mut auth = vec![1, u.len() as u8];
            auth.extend_from_slice(u.as_bytes());
            auth.push(pw.len() as u8);
            auth.extend_from_slice(pw.as_bytes());
            s.write_all(&auth)?;
            s.read_exact(&mut reply)?;
            if reply[1] != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "password authentication failed",
                ));
            }
        }
        (0xff, _) => return Err(io::Error::other("no acceptable auth methods")),
        _ => return Err(io::Error::other("unknown auth method")),
    }
    let mut req = vec![5, 1, 0];
    let resolved;
    let ip = if proxy.scheme == Scheme::Socks5 {
        resolved = (host, port).to_socket_addrs()?.next().map(|a| a.ip());
        resolved
    } else {
        host.parse().ok()
    };
    match ip {
        Some(std::net::IpAddr::V4(v4)) => {
            req.push(1);
            req.extend_from_slice(&v4.octets());
        }
        Some(std::net::IpAddr::V6(v6)) => {
            req.push(4);
            req.extend_from_slice(&v6.octets());
        }
        None => {
            req.push(3);
            req.push(host.len().min(255) as u8);
            req.extend_from_slice(host.as_bytes());
        }
    }
    req.extend_from_slice(&port.to_be_bytes());
    s.write_all(&req)?;
    let mut head = [0u8; 4];
    s.read_exact(&mut head)?;
    if head[1] != 0 {
        let reason = match head[1] {
            1 => "general SOCKS server failure",
            2 => "connection not allowed by ruleset",
            3 => "network unreachable",
            4 => "host unreachable",
            5 => "connection refused",
            6 => "TTL expired",
            7 => "command not supported",
            _ => "address kind not supported",
        };
        return Err(io::Error::other(reason));
    }
    let len = match head[3] {
        1 => 4,
        4 => 16,
        3 => {
            let mut l = [0u8];
            s.read_exact(&mut l)?;
            l[0] as usize
        }
        _ => return Err(io::Error::other("address kind not supported")),
    };
    let mut rest = vec![0u8; len + 2];
    s.read_exact(&mut rest)
}

/// A real `HEAD` through the workers' transport.
fn http_step(p: &mut Probe<'_>) {
    let t = p.t;
    match t.send_method(
        ureq::http::Method::HEAD,
        &[],
        &[],
        Some(t.request_timeout.max(Duration::from_millis(1))),
    ) {
        Ok(answer) => {
            let s = answer.status;
            let (ok, note) = match s {
                200..=299 => (true, ""),
                405 | 501 => (true, " (the endpoint does not take HEAD; it is reachable)"),
                401 | 403 => {
                    (false, " (the endpoint refused the credentials: check the Authorization header)")
                }
                404 => (false, " (check the URL's path)"),
                407 => (false, " (a proxy wants credentials)"),
                300..=399 => (false, " (a redirect: posthaste does not follow them; use the final URL)"),
                _ => (false, ""),
            };
            p.step(StepKind::Http, ok, format!("HEAD {} answered {s}{note}", t.hops.endpoint));
        }
        Err(f) => {
            p.step(StepKind::Http, false, f.reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_numbers_steps_and_lists_warnings() {
        let d = Diagnosis {
            steps: vec![
                Step { kind: StepKind::Route, ok: true, detail: "direct".into() },
                Step { kind: StepKind::Connect, ok: false, detail: "refused".into() },
            ],
            warnings: vec!["w".into()],
        };
        assert_eq!(d.to_string(), "1. route ok: direct\n2. connect FAILED: refused\nwarning: w\n");
        assert!(!d.is_ok());
        assert_eq!(d.failure().unwrap().kind, StepKind::Connect);
        assert!(d.step(StepKind::Tls).is_none());
    }
}
