//! Plain-HTTP endpoints through an HTTP(S) proxy, the way browsers and curl do it: the request
//! goes to the proxy with the absolute URL as its target (`POST http://host:port/path
//! HTTP/1.1`) and `Proxy-Authorization`, over a keep-alive connection to the proxy.
//!
//! ureq tunnels every proxied request with `CONNECT`, which standard forward proxies (stock
//! squid among them) refuse for ports other than 443; ureq cannot write an absolute-form
//! request target. This module is therefore a small HTTP/1.1 client of its own, used only for
//! that route: one request per call, answers read to the end (`Content-Length`, chunked, or
//! until close), idle connections pooled, every read and write bounded by the phase timeouts.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};
use ureq::http::{HeaderName, HeaderValue, Method};

use super::fault::{self, Fault, Hops};
use super::proxy::{Proxy, Scheme};
use super::Answer;

/// Largest response head accepted from the proxy.
const MAX_HEAD: usize = 64 * 1024;

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

struct Conn {
    reader: BufReader<Box<dyn Stream>>,
    /// The socket under any TLS, for setting timeouts.
    tcp: TcpStream,
}

pub(crate) struct Forward {
    proxy: Proxy,
    /// `http://host:port/path?query`.
    target: String,
    /// `host[:port]` for the Host header.
    host: String,
    /// rustls configuration for an `https://` proxy.
    tls: Option<Arc<rustls::ClientConfig>>,
    connect_timeout: Duration,
    idle: Mutex<Vec<Conn>>,
    max_idle: usize,
}

pub(crate) struct Timeouts {
    pub(crate) connect: Duration,
    pub(crate) phase: Duration,
}

impl Forward {
    /// Forwarding of requests to `uri` (an `http://` endpoint) through `proxy`. Credentials in
    /// the endpoint URL become an `Authorization` header, as ureq would send them.
    pub(crate) fn for_endpoint(
        proxy: &Proxy,
        uri: &ureq::http::Uri,
        trust: &super::tls::Trust,
        config: &super::TransportOptions,
        workers: usize,
        headers: &mut Vec<(HeaderName, HeaderValue)>,
    ) -> Result<Forward, crate::error::Error> {
        use crate::error::Error;
        let tls = match proxy.scheme {
            Scheme::Https => Some(
                trust
                    .probe_config()
                    .map_err(|reason| Error::Certificate { origin: "roots".into(), reason })?
                    .0,
            ),
            _ => None,
        };
        let authority = uri.authority().map_or("", |a| a.as_str());
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h).to_string();
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            if !headers.iter().any(|(n, _)| n == ureq::http::header::AUTHORIZATION) {
                let (u, p) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                let basic = format!("Basic {}", crate::util::base64(format!("{u}:{p}").as_bytes()));
                let mut v = HeaderValue::from_str(&basic).map_err(|_| Error::InvalidUrl {
                    url: crate::util::redact_url(&config.url),
                    reason: "invalid user info".into(),
                })?;
                v.set_sensitive(true);
                headers.push((ureq::http::header::AUTHORIZATION, v));
            }
        }
        let path = uri.path_and_query().map_or("/", |pq| pq.as_str());
        let target = format!("http://{host_port}{path}");
        Ok(Forward::new(proxy.clone(), target, host_port, tls, config.connect_timeout, workers.max(2)))
    }

    fn new(
        proxy: Proxy,
        target: String,
        host: String,
        tls: Option<Arc<rustls::ClientConfig>>,
        connect_timeout: Duration,
        max_idle: usize,
    ) -> Forward {
        Forward { proxy, target, host, tls, connect_timeout, idle: Mutex::new(Vec::new()), max_idle }
    }

    /// Sends one request through the proxy and reads the answer.
    pub(crate) fn send(
        &self,
        method: &Method,
        headers: &[(HeaderName, HeaderValue)],
        extra: &[(&str, String)],
        body: &[u8],
        timeouts: Timeouts,
        hops: &Hops,
    ) -> Result<Answer, Fault> {
        let head = self.head(method, headers, extra, body.len());
        // A pooled connection may have been closed by the proxy meanwhile: if it fails before
        // any byte of an answer, the request is sent once more on a fresh connection.
        if let Some(conn) = self.take_idle() {
            match self.exchange(conn, method, &head, body, &timeouts) {
                Ok(answer) => return self.check(answer, hops),
                Err(Failure::Stale(_)) => {}
                Err(Failure::Io(e)) => return Err(fault::map(ureq::Error::Io(e), hops)),
            }
        }
        let conn = self.connect(&timeouts, hops)?;
        match self.exchange(conn, method, &head, body, &timeouts) {
            Ok(answer) => self.check(answer, hops),
            Err(Failure::Stale(e) | Failure::Io(e)) => Err(fault::map(ureq::Error::Io(e), hops)),
        }
    }

    fn head(
        &self,
        method: &Method,
        headers: &[(HeaderName, HeaderValue)],
        extra: &[(&str, String)],
        len: usize,
    ) -> Vec<u8> {
        let mut h = Vec::with_capacity(512);
        let _ = write!(h, "{method} {} HTTP/1.1\r\nHost: {}\r\n", self.target, self.host);
        let _ = write!(h, "User-Agent: posthaste/{}\r\n", env!("CARGO_PKG_VERSION"));
        for (name, value) in headers {
            let _ = write!(h, "{name}: ");
            h.extend_from_slice(value.as_bytes());
            h.extend_from_slice(b"\r\n");
        }
        for (name, value) in extra {
            let _ = write!(h, "{name}: {value}\r\n");
        }
        if let Some(auth) = self.proxy.basic_auth() {
            let _ = write!(h, "Proxy-Authorization: {auth}\r\n");
        }
        if *method != Method::HEAD && *method != Method::GET || len > 0 {
            let _ = write!(h, "Content-Length: {len}\r\n");
        }
        h.extend_from_slice(b"\r\n");
        h
    }

    fn take_idle(&self) -> Option<Conn> {
        self.idle.lock().pop()
    }

    fn connect(&self, t: &Timeouts, hops: &Hops) -> Result<Conn, Fault> {
        let who = format!("proxy {}", self.proxy.authority());
        let addrs: Vec<SocketAddr> = (self.proxy.host(), self.proxy.port())
            .to_socket_addrs()
            .map_err(|e| Fault::transient(format!("{who}: host not found (DNS lookup failed: {e})")))?
            .collect();
        let connect = self.connect_timeout.min(t.connect);
        let began = Instant::now();
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
        let mut tcp = None;
        for a in &addrs {
            let left = connect.saturating_sub(began.elapsed()).max(Duration::from_millis(1));
            match TcpStream::connect_timeout(a, left) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let Some(tcp) = tcp else {
            return Err(fault::map(ureq::Error::Io(last), hops));
        };
        let _ = tcp.set_nodelay(true);
        let handle = tcp.try_clone().map_err(|e| Fault::transient(format!("{who}: {e}")))?;
        let stream: Box<dyn Stream> = match (&self.tls, self.proxy.scheme) {
            (Some(config), Scheme::Https) => {
                let name = ServerName::try_from(self.proxy.host().to_string())
                    .map_err(|e| Fault::permanent(format!("{who}: not a valid TLS server name: {e}")))?;
                let mut conn = ClientConnection::new(config.clone(), name)
                    .map_err(|e| Fault::permanent(format!("TLS with {who}: {e}")))?;
                let mut tcp = tcp;
                let left = connect.saturating_sub(began.elapsed()).max(Duration::from_millis(1));
                let _ = tcp.set_read_timeout(Some(left));
                let _ = tcp.set_write_timeout(Some(left));
                while conn.is_handshaking() {
                    conn.complete_io(&mut tcp).map_err(|e| fault::map(ureq::Error::Io(e), hops))?;
                }
                Box::new(StreamOwned::new(conn, tcp))
            }
            _ => Box::new(tcp),
        };
        Ok(Conn { reader: BufReader::with_capacity(16 * 1024, stream), tcp: handle })
    }

    fn exchange(
        &self,
        mut conn: Conn,
        method: &Method,
        head: &[u8],
        body: &[u8],
        t: &Timeouts,
    ) -> Result<(Answer, bool), Failure> {
        let phase = Phase::new(t.phase);
        phase.arm_write(&conn.tcp).map_err(Failure::Stale)?;
        let w = conn.reader.get_mut();
        w.write_all(head)
            .and_then(|()| w.write_all(body))
            .and_then(|()| w.flush())
            .map_err(Failure::Stale)?;
        let phase = Phase::new(t.phase);
        // Interim 1xx answers (100 Continue) come before the real one.
        let (status, headers) = loop {
            let (status, headers) = read_head(&mut conn, &phase)?;
            if !(100..200).contains(&status) || status == 101 {
                break (status, headers);
            }
        };
        let find =
            |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
        let retry_after = find("retry-after").map(str::to_string);
        let squid = find("x-squid-error").or(find("proxy-status")).map(str::to_string);
        let keep = if (200..300).contains(&status) { 0 } else { super::EXCERPT };
        let close = find("connection").is_some_and(|v| v.to_ascii_lowercase().contains("close"));
        let no_body = *method == Method::HEAD || status == 204 || status == 304;
        let phase = Phase::new(t.phase);
        let (excerpt, reusable) = if no_body {
            (String::new(), true)
        } else if find("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
            read_chunked(&mut conn, keep, &phase).map_err(Failure::Io)?
        } else if let Some(len) = find("content-length").and_then(|v| v.trim().parse::<usize>().ok()) {
            read_exact_len(&mut conn, len, keep, &phase).map_err(Failure::Io)?
        } else {
            let (text, _) = read_to_close(&mut conn, keep, &phase).map_err(Failure::Io)?;
            (text, false)
        };
        let answer = Answer { status, retry_after, excerpt: with_note(excerpt, squid.as_deref()) };
        if reusable && !close {
            let mut idle = self.idle.lock();
            if idle.len() < self.max_idle {
                idle.push(conn);
            }
        }
        Ok((answer, squid.is_some()))
    }

    /// Answers the proxy made itself about its own policy are failures of the proxy hop.
    fn check(&self, (answer, from_proxy): (Answer, bool), hops: &Hops) -> Result<Answer, Fault> {
        let who = format!("proxy {}", self.proxy.authority());
        match answer.status {
            407 => Err(Fault::permanent(format!(
                "{who} refused to forward to {}: 407 Proxy Authentication Required: authentication required \
                 (set or fix user:password in the proxy URL)",
                hops.endpoint
            ))),
            403 if from_proxy => Err(Fault::permanent(format!(
                "{who} refused to forward to {}: 403 Forbidden (the proxy's policy denies it; {})",
                hops.endpoint, answer.excerpt
            ))),
            _ => Ok(answer),
        }
    }
}

/// Notes a proxy-generated answer (squid's `X-Squid-Error`, RFC 9209 `Proxy-Status`).
fn with_note(excerpt: String, note: Option<&str>) -> String {
    match note {
        None => excerpt,
        Some(n) if excerpt.is_empty() => format!("answered by the proxy: {n}"),
        Some(n) => format!("answered by the proxy: {n}; {excerpt}"),
    }
}

enum Failure {
    /// Failed before any byte of an answer: the connection may have been closed while idle.
    Stale(io::Error),
    Io(io::Error),
}

/// One phase's deadline, applied to each read and write.
struct Phase {
    deadline: Instant,
}

impl Phase {
    fn new(d: Duration) -> Phase {
        Phase { deadline: Instant::now() + d }
    }

    fn left(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
        }
        Ok(left)
    }

    fn arm_read(&self, tcp: &TcpStream) -> io::Result<()> {
        tcp.set_read_timeout(Some(self.left()?))
    }

    fn arm_write(&self, tcp: &TcpStream) -> io::Result<()> {
        tcp.set_write_timeout(Some(self.left()?))
    }
}

/// Reads a line (through LF) within the phase; `None` at a clean end of stream.
fn read_line(conn: &mut Conn, phase: &Phase, limit: usize) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    loop {
        phase.arm_read(&conn.tcp)?;
        let buf = conn.reader.fill_buf()?;
        if buf.is_empty() {
            return if line.is_empty() { Ok(None) } else { Err(io::ErrorKind::UnexpectedEof.into()) };
        }
        let (take, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        line.extend_from_slice(&buf[..take]);
        conn.reader.consume(take);
        if line.len() > limit {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "answer line too long"));
        }
        if done {
            return Ok(Some(String::from_utf8_lossy(&line).trim_end().to_string()));
        }
    }
}

fn read_head(conn: &mut Conn, phase: &Phase) -> Result<(u16, Vec<(String, String)>), Failure> {
    let first = match read_line(conn, phase, MAX_HEAD) {
        Ok(Some(l)) => l,
        // Nothing at all came back: the pooled connection was dead.
        Ok(None) => return Err(Failure::Stale(io::ErrorKind::UnexpectedEof.into())),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Err(Failure::Stale(e)),
        Err(e) => return Err(Failure::Io(e)),
    };
    let mut parts = first.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status = parts.next().and_then(|s| s.parse::<u16>().ok());
    let Some(status) = status.filter(|_| version.starts_with("HTTP/1.")) else {
        return Err(Failure::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not an HTTP answer: {:?}", first.chars().take(40).collect::<String>()),
        )));
    };
    let mut headers = Vec::new();
    let mut size = first.len();
    loop {
        let line = read_line(conn, phase, MAX_HEAD).map_err(Failure::Io)?.ok_or_else(|| {
            Failure::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed in the answer's head",
            ))
        })?;
        if line.is_empty() {
            break;
        }
        size += line.len();
        if size > MAX_HEAD {
            return Err(Failure::Io(io::Error::new(io::ErrorKind::InvalidData, "answer head too large")));
        }
        if let Some((n, v)) = line.split_once(':') {
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    // HTTP/1.0 answers close the connection unless they say otherwise.
    if version == "HTTP/1.0"
        && !headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("keep-alive"))
    {
        headers.push(("Connection".into(), "close".into()));
    }
    Ok((status, headers))
}

/// Reads `len` body bytes, keeping the first `keep`. Reusable unless the body was too large
/// to drain.
fn read_exact_len(conn: &mut Conn, len: usize, keep: usize, phase: &Phase) -> io::Result<(String, bool)> {
    if len > super::MAX_RESPONSE_BODY {
        return Ok((String::new(), false));
    }
    let mut kept = Vec::new();
    let mut left = len;
    let mut buf = [0u8; 8192];
    while left > 0 {
        phase.arm_read(&conn.tcp)?;
        let n = conn.reader.read(&mut buf[..left.min(8192)])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        keep_some(&mut kept, &buf[..n], keep);
        left -= n;
    }
    Ok((text(kept), true))
}

fn read_chunked(conn: &mut Conn, keep: usize, phase: &Phase) -> io::Result<(String, bool)> {
    let mut kept = Vec::new();
    let mut total = 0usize;
    loop {
        let line = read_line(conn, phase, 1024)?.ok_or(io::ErrorKind::UnexpectedEof)?;
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
        if size == 0 {
            // Trailers, through the blank line.
            while !read_line(conn, phase, MAX_HEAD)?.ok_or(io::ErrorKind::UnexpectedEof)?.is_empty() {}
            return Ok((text(kept), true));
        }
        total += size;
        if total > super::MAX_RESPONSE_BODY {
            return Ok((text(kept), false));
        }
        let (chunk, _) = read_exact_len(conn, size, keep.saturating_sub(kept.len()), phase)?;
        keep_some(&mut kept, chunk.as_bytes(), keep);
        read_line(conn, phase, 2)?;
    }
}

fn read_to_close(conn: &mut Conn, keep: usize, phase: &Phase) -> io::Result<(String, bool)> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    let mut total = 0;
    while total <= super::MAX_RESPONSE_BODY {
        phase.arm_read(&conn.tcp)?;
        match conn.reader.read(&mut buf)? {
            0 => break,
            n => {
                keep_some(&mut kept, &buf[..n], keep);
                total += n;
            }
        }
    }
    Ok((text(kept), false))
}

fn keep_some(kept: &mut Vec<u8>, data: &[u8], keep: usize) {
    if kept.len() < keep {
        kept.extend_from_slice(&data[..data.len().min(keep - kept.len())]);
    }
}

fn text(b: Vec<u8>) -> String {
    String::from_utf8_lossy(&b).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    /// A one-connection fake proxy: for each canned answer, reads one request head (and its
    /// `Content-Length` body), records the head, writes the answer.
    fn fake_proxy(answers: Vec<&'static str>) -> (Proxy, thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut writer = stream;
            let mut heads = Vec::new();
            for answer in answers {
                let mut head = String::new();
                let mut len = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if let Some(v) = line.strip_prefix("Content-Length: ") {
                        len = v.trim().parse().unwrap();
                    }
                    head.push_str(&line);
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; len];
                reader.read_exact(&mut body).unwrap();
                heads.push(head);
                writer.write_all(answer.as_bytes()).unwrap();
            }
            heads
        });
        (Proxy::parse(&format!("http://u:p%40ss@127.0.0.1:{port}")).unwrap(), handle)
    }

    fn hops() -> Hops {
        Hops {
            endpoint: "collector:8080".into(),
            endpoint_scheme: "http".into(),
            proxy: None,
            roots_note: None,
        }
    }

    fn timeouts() -> Timeouts {
        Timeouts { connect: Duration::from_secs(5), phase: Duration::from_secs(5) }
    }

    #[test]
    fn absolute_form_chunked_interim_and_keep_alive() {
        let (proxy, server) = fake_proxy(vec![
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\nRetry-After: 7\r\n\r\n4\r\nbusy\r\n7;x=y\r\n, later\r\n0\r\nTrailer: t\r\n\r\n",
            "HTTP/1.1 204 No Content\r\n\r\n",
            "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ]);
        let f = Forward::new(
            proxy,
            "http://collector:8080/ingest?x=1".into(),
            "collector:8080".into(),
            None,
            Duration::from_secs(5),
            2,
        );
        let headers = vec![(HeaderName::from_static("x-team"), HeaderValue::from_static("a"))];
        let a = f.send(&Method::POST, &headers, &[], b"{}", timeouts(), &hops()).unwrap();
        assert_eq!((a.status, a.retry_after.as_deref(), a.excerpt.as_str()), (503, Some("7"), "busy, later"));
        let a = f.send(&Method::POST, &headers, &[], b"{}", timeouts(), &hops()).unwrap();
        assert_eq!(a.status, 204);
        let a = f.send(&Method::POST, &headers, &[], b"{}", timeouts(), &hops()).unwrap();
        assert_eq!((a.status, a.excerpt.as_str()), (200, ""));
        // HTTP/1.0 without keep-alive: not pooled.
        assert!(f.idle.lock().is_empty());
        let heads = server.join().unwrap();
        assert_eq!(heads.len(), 3, "one connection, kept alive");
        let first = &heads[0];
        assert!(
            first.starts_with("POST http://collector:8080/ingest?x=1 HTTP/1.1\r\nHost: collector:8080\r\n"),
            "{first}"
        );
        assert!(first.contains("x-team: a\r\n") && first.contains("Content-Length: 2\r\n"), "{first}");
        assert!(first.contains("Proxy-Authorization: Basic dTpwQHNz\r\n"), "{first}");
    }

    #[test]
    fn proxy_407_and_squid_403_fail_the_proxy_hop() {
        let (proxy, server) = fake_proxy(vec![
            "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 403 Forbidden\r\nX-Squid-Error: ERR_ACCESS_DENIED 0\r\nContent-Length: 6\r\n\r\ndenied",
            "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
        ]);
        let f = Forward::new(
            proxy,
            "http://collector:8080/".into(),
            "collector:8080".into(),
            None,
            Duration::from_secs(5),
            2,
        );
        let e = f.send(&Method::POST, &[], &[], b"", timeouts(), &hops()).unwrap_err();
        assert!(!e.transient && e.reason.contains("refused to forward to collector:8080: 407"), "{e:?}");
        let e = f.send(&Method::POST, &[], &[], b"", timeouts(), &hops()).unwrap_err();
        assert!(!e.transient && e.reason.contains("ERR_ACCESS_DENIED"), "{e:?}");
        // A 403 without the proxy's marks is the endpoint's answer.
        assert_eq!(f.send(&Method::POST, &[], &[], b"", timeouts(), &hops()).unwrap().status, 403);
        server.join().unwrap();
    }

    #[test]
    fn a_silent_peer_times_out_within_the_phase() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = Proxy::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        let f = Forward::new(proxy, "http://c/".into(), "c".into(), None, Duration::from_secs(5), 2);
        let t = Timeouts { connect: Duration::from_secs(5), phase: Duration::from_millis(100) };
        let began = Instant::now();
        let e = f.send(&Method::POST, &[], &[], b"", t, &hops()).unwrap_err();
        assert!(e.transient && e.reason.contains("timed out"), "{e:?}");
        assert!(began.elapsed() < Duration::from_secs(3), "{:?}", began.elapsed());
        drop(listener);
    }
}
