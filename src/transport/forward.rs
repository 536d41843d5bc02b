//! Plain-HTTP endpoints through an HTTP(S) proxy, the way browsers and curl do it: the request
//! goes to the proxy with the absolute URL as its target (`POST http://host:port/path
//! HTTP/1.1`) and `Proxy-Authorization`, over a keep-alive connection to the proxy.
//!
//! ureq tunnels every proxied request with `CONNECT`, which standard forward proxies (stock
//! squid among them) refuse for ports other than 443; ureq cannot write an absolute-form
//! request target. This module is therefore a small HTTP/1.1 client of its own, used only for
//! that route: one request per call, answers read to the end (`Content-Length`, chunked, or
//! until close), idle connections pooled, every read and write bounded by the phase timeouts
//! and every answer by size limits. An answer whose head was read stands even when the
//! connection is then reset (proxies refuse that way without reading the request); which
//! answers are the proxy's own refusals is decided by `fault::proxy_answer`.

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

/// Largest answer head accepted from the proxy, interim `1xx` heads included.
const MAX_HEAD: usize = 64 * 1024;
/// Largest chunk-size line.
const MAX_CHUNK_LINE: usize = 1024;
/// What an answer's body may cost on the wire beyond `MAX_RESPONSE_BODY`: chunk-size lines
/// and trailers. Past it the reading stops and the connection is not reused.
const MAX_FRAMING: usize = MAX_HEAD;

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

struct Conn {
    reader: BufReader<Box<dyn Stream>>,
    /// The socket under any TLS, for setting timeouts (`None` only in the parser's tests).
    tcp: Option<TcpStream>,
    /// How many more bytes of the current answer's head or body may be read.
    budget: usize,
}

impl Conn {
    fn new(stream: Box<dyn Stream>, tcp: Option<TcpStream>) -> Conn {
        Conn { reader: BufReader::with_capacity(16 * 1024, stream), tcp, budget: 0 }
    }
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
                Ok(reply) => return self.check(reply, hops),
                Err(Failure::Stale(_)) => {}
                Err(Failure::Io(e)) => return Err(fault::map(ureq::Error::Io(e), hops)),
            }
        }
        let conn = self.connect(&timeouts, hops)?;
        match self.exchange(conn, method, &head, body, &timeouts) {
            Ok(reply) => self.check(reply, hops),
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
        Ok(Conn::new(stream, Some(handle)))
    }

    fn exchange(
        &self,
        mut conn: Conn,
        method: &Method,
        head: &[u8],
        body: &[u8],
        t: &Timeouts,
    ) -> Result<Reply, Failure> {
        let phase = Phase::new(t.phase);
        phase.arm_write(&conn).map_err(Failure::Stale)?;
        let w = conn.reader.get_mut();
        // A proxy may answer and close without reading the request (tinyproxy refusing
        // credentials does): when the peer closed, an answer that came before stands.
        use io::ErrorKind as K;
        let write_error = match w.write_all(head).and_then(|()| w.write_all(body)).and_then(|()| w.flush()) {
            Ok(()) => None,
            Err(e) if matches!(e.kind(), K::BrokenPipe | K::ConnectionReset | K::ConnectionAborted) => {
                Some(e)
            }
            Err(e) => return Err(Failure::Stale(e)),
        };
        let reply = match read_answer(&mut conn, method, t.phase) {
            Ok(reply) => reply,
            Err(f) => return Err(write_error.map_or(f, Failure::Stale)),
        };
        if reply.reusable && write_error.is_none() {
            let mut idle = self.idle.lock();
            if idle.len() < self.max_idle {
                idle.push(conn);
            }
        }
        Ok(reply)
    }

    /// The proxy's own refusals are failures of the proxy hop (the rule is
    /// [`fault::proxy_answer`]); every other answer is the endpoint's.
    fn check(&self, reply: Reply, hops: &Hops) -> Result<Answer, Fault> {
        let head = &reply.head;
        let note = head.find("x-squid-error").or(head.find("proxy-status"));
        let refusal = fault::ProxyAnswer {
            status: head.status,
            phrase: &head.phrase,
            connect: false,
            sent_credentials: self.proxy.basic_auth().is_some(),
            proxy_authenticate: head.find("proxy-authenticate").is_some(),
            via: head.find("via").is_some(),
            proxy_note: note,
            excerpt: &reply.excerpt,
        };
        if let Some(f) = fault::proxy_answer(&refusal, hops) {
            return Err(f);
        }
        Ok(Answer {
            status: head.status,
            retry_after: head.find("retry-after").map(str::to_string),
            excerpt: with_note(reply.excerpt, note),
        })
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

/// An answer's head: the status line and the header fields.
struct Head {
    status: u16,
    /// The reason phrase as sent (may be empty).
    phrase: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn find(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// An answer read from the proxy.
struct Reply {
    head: Head,
    /// The start of the body, for non-2xx answers.
    excerpt: String,
    /// The body was read to its end and the connection may carry another request.
    reusable: bool,
}

/// Reads one answer: interim `1xx` heads, the final head, then the body (`Content-Length`,
/// chunked, or until close), keeping the start of a non-2xx body.
///
/// Once a head is read the answer stands: a body cut short (reset, timeout, malformed
/// framing, over the limits) only ends the reading and keeps the connection out of the pool.
/// No head (nothing read, a reset or a close before it) is a [`Failure`]. Reads at most
/// `MAX_HEAD` bytes of heads and `MAX_RESPONSE_BODY + MAX_FRAMING` of body; the heads and the
/// body each within `phase`.
fn read_answer(conn: &mut Conn, method: &Method, phase: Duration) -> Result<Reply, Failure> {
    let head_phase = Phase::new(phase);
    conn.budget = MAX_HEAD;
    let head = loop {
        let head = read_head(conn, &head_phase)?;
        if !(100..200).contains(&head.status) || head.status == 101 {
            break head;
        }
    };
    let keep = if (200..300).contains(&head.status) { 0 } else { super::EXCERPT };
    let close = head.find("connection").is_some_and(|v| v.to_ascii_lowercase().contains("close"));
    let no_body = *method == Method::HEAD || head.status == 204 || head.status == 304;
    let mut kept = Vec::new();
    let phase = &Phase::new(phase);
    conn.budget = super::MAX_RESPONSE_BODY + MAX_FRAMING;
    let body = if no_body {
        Ok(true)
    } else if head.find("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        read_chunked(conn, &mut kept, keep, phase)
    } else if let Some(len) = head.find("content-length").and_then(|v| v.trim().parse::<usize>().ok()) {
        read_exact_len(conn, len, &mut kept, keep, phase)
    } else {
        read_to_close(conn, &mut kept, keep, phase).map(|()| false)
    };
    let reusable = body.unwrap_or(false) && !close;
    Ok(Reply { head, excerpt: text(&kept), reusable })
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

    fn arm_read(&self, conn: &Conn) -> io::Result<()> {
        let left = self.left()?;
        conn.tcp.as_ref().map_or(Ok(()), |tcp| tcp.set_read_timeout(Some(left)))
    }

    fn arm_write(&self, conn: &Conn) -> io::Result<()> {
        let left = self.left()?;
        conn.tcp.as_ref().map_or(Ok(()), |tcp| tcp.set_write_timeout(Some(left)))
    }
}

fn too_large(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{what} too large"))
}

/// Reads a line (through LF) of at most `limit` bytes within the phase and the budget; `None`
/// at a clean end of stream.
fn read_line(conn: &mut Conn, phase: &Phase, limit: usize) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    loop {
        phase.arm_read(conn)?;
        let buf = conn.reader.fill_buf()?;
        if buf.is_empty() {
            return if line.is_empty() { Ok(None) } else { Err(io::ErrorKind::UnexpectedEof.into()) };
        }
        let (take, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if line.len() + take > limit {
            return Err(too_large("answer line"));
        }
        if take > conn.budget {
            return Err(too_large("answer"));
        }
        line.extend_from_slice(&buf[..take]);
        conn.reader.consume(take);
        conn.budget -= take;
        if done {
            return Ok(Some(String::from_utf8_lossy(&line).trim_end().to_string()));
        }
    }
}

fn read_head(conn: &mut Conn, phase: &Phase) -> Result<Head, Failure> {
    let first = match read_line(conn, phase, MAX_HEAD) {
        Ok(Some(l)) => l,
        // Nothing at all came back: the pooled connection was dead.
        Ok(None) => return Err(Failure::Stale(io::ErrorKind::UnexpectedEof.into())),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Err(Failure::Stale(e)),
        Err(e) => return Err(Failure::Io(e)),
    };
    let mut parts = first.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status = parts.next().filter(|s| s.len() == 3).and_then(|s| s.parse::<u16>().ok());
    let Some(status) = status.filter(|s| (100..600).contains(s) && version.starts_with("HTTP/1.")) else {
        return Err(Failure::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not an HTTP answer: {:?}", first.chars().take(40).collect::<String>()),
        )));
    };
    let phrase = parts.next().unwrap_or_default().trim().to_string();
    let mut headers = Vec::new();
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
    Ok(Head { status, phrase, headers })
}

/// Reads into `buf` within the phase and the budget.
fn read_some(conn: &mut Conn, buf: &mut [u8], phase: &Phase) -> io::Result<usize> {
    let max = buf.len().min(conn.budget);
    if max == 0 {
        return Err(too_large("answer body"));
    }
    phase.arm_read(conn)?;
    let n = conn.reader.read(&mut buf[..max])?;
    conn.budget -= n;
    Ok(n)
}

/// Reads `len` body bytes, keeping the first `keep` in `kept`. `Ok(true)`: read to the end;
/// `Ok(false)`: too large to drain, not read.
fn read_exact_len(
    conn: &mut Conn,
    len: usize,
    kept: &mut Vec<u8>,
    keep: usize,
    phase: &Phase,
) -> io::Result<bool> {
    if len > super::MAX_RESPONSE_BODY {
        return Ok(false);
    }
    let mut left = len;
    let mut buf = [0u8; 8192];
    while left > 0 {
        let want = left.min(buf.len());
        let n = read_some(conn, &mut buf[..want], phase)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        keep_some(kept, &buf[..n], keep);
        left -= n;
    }
    Ok(true)
}

fn read_chunked(conn: &mut Conn, kept: &mut Vec<u8>, keep: usize, phase: &Phase) -> io::Result<bool> {
    let mut total = 0usize;
    let eof = || io::Error::from(io::ErrorKind::UnexpectedEof);
    loop {
        let line = read_line(conn, phase, MAX_CHUNK_LINE)?.ok_or_else(eof)?;
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
        if size == 0 {
            // Trailers, through the blank line.
            while !read_line(conn, phase, MAX_HEAD)?.ok_or_else(eof)?.is_empty() {}
            return Ok(true);
        }
        total = total.saturating_add(size);
        if total > super::MAX_RESPONSE_BODY {
            return Ok(false);
        }
        if !read_exact_len(conn, size, kept, keep, phase)? {
            return Ok(false);
        }
        if !read_line(conn, phase, 2)?.ok_or_else(eof)?.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "no CRLF after a chunk"));
        }
    }
}

/// Reads until the peer closes, keeping the first `keep` bytes. A reset after the answer
/// began is how some proxies end one (tinyproxy's refusals): reading just ends.
fn read_to_close(conn: &mut Conn, kept: &mut Vec<u8>, keep: usize, phase: &Phase) -> io::Result<()> {
    let mut buf = [0u8; 8192];
    let mut total = 0;
    while total <= super::MAX_RESPONSE_BODY {
        match read_some(conn, &mut buf, phase)? {
            0 => break,
            n => {
                keep_some(kept, &buf[..n], keep);
                total += n;
            }
        }
    }
    Ok(())
}

fn keep_some(kept: &mut Vec<u8>, data: &[u8], keep: usize) {
    if kept.len() < keep {
        kept.extend_from_slice(&data[..data.len().min(keep - kept.len())]);
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim().to_string()
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
            proxy_credentials: true,
        }
    }

    fn timeouts() -> Timeouts {
        Timeouts { connect: Duration::from_secs(5), phase: Duration::from_secs(5) }
    }

    /// A forward route for a plain-HTTP `target` through `proxy`: no TLS, 5 s to connect, two
    /// pooled connections.
    fn plain_forward(proxy: Proxy, target: &str, host: &str) -> Forward {
        Forward::new(proxy, target.into(), host.into(), None, Duration::from_secs(5), 2)
    }

    #[test]
    fn absolute_form_chunked_interim_and_keep_alive() {
        let (proxy, server) = fake_proxy(vec![
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\nRetry-After: 7\r\n\r\n4\r\nbusy\r\n7;x=y\r\n, later\r\n0\r\nTrailer: t\r\n\r\n",
            "HTTP/1.1 204 No Content\r\n\r\n",
            "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ]);
        let f = plain_forward(proxy, "http://collector:8080/ingest?x=1", "collector:8080");
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
        let f = plain_forward(proxy, "http://collector:8080/", "collector:8080");
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
        let f = plain_forward(proxy, "http://c/", "c");
        let t = Timeouts { connect: Duration::from_secs(5), phase: Duration::from_millis(100) };
        let began = Instant::now();
        let e = f.send(&Method::POST, &[], &[], b"", t, &hops()).unwrap_err();
        assert!(e.transient && e.reason.contains("timed out"), "{e:?}");
        assert!(began.elapsed() < Duration::from_secs(3), "{:?}", began.elapsed());
        drop(listener);
    }

    /// A one-connection fake proxy running `serve` on the accepted connection.
    fn one_shot(
        creds: &str,
        serve: impl FnOnce(TcpStream) + Send + 'static,
    ) -> (Forward, thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = thread::spawn(move || serve(listener.accept().unwrap().0));
        let proxy = Proxy::parse(&format!("http://{creds}127.0.0.1:{port}")).unwrap();
        let f = plain_forward(proxy, "http://collector:8080/", "collector:8080");
        (f, handle)
    }

    /// Reads a request head (not its body) through the blank line.
    fn read_request_head(stream: &TcpStream) {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        while line != "\r\n" {
            line.clear();
            if reader.read_line(&mut line).unwrap() == 0 {
                return;
            }
        }
    }

    const TINYPROXY_401: &str = "HTTP/1.0 401 Unauthorized\r\nServer: tinyproxy/1.11.1\r\nContent-Type: text/html\r\n\
        WWW-Authenticate: Basic realm=\"Tinyproxy\"\r\nConnection: close\r\n\r\n<html><h1>Unauthorized</h1></html>\n";

    /// The answer, then a close with the request body unread: the kernel resets the connection.
    fn answer_then_reset(answer: &'static str) -> impl FnOnce(TcpStream) + Send + 'static {
        move |mut stream| {
            read_request_head(&stream);
            stream.write_all(answer.as_bytes()).unwrap();
        }
    }

    #[test]
    fn a_close_delimited_answer_cut_by_a_reset_stands() {
        // tinyproxy refusing the credentials: 401 without Via, the body unread, then a reset.
        let (f, server) = one_shot("u:p%40ss@", answer_then_reset(TINYPROXY_401));
        let body = vec![b'x'; 256 * 1024];
        let e = f.send(&Method::POST, &[], &[], &body, timeouts(), &hops()).unwrap_err();
        assert!(!e.transient, "{e:?}");
        assert!(
            e.reason.contains(
                "refused to forward to collector:8080: 401 Unauthorized: proxy authentication failed"
            ),
            "{e:?}"
        );
        assert!(!e.reason.contains("p@ss") && !e.reason.contains("401 401"), "{e:?}");
        server.join().unwrap();
        assert!(f.idle.lock().is_empty());

        // The same through a proxy that relays the endpoint's 401 (with Via): the endpoint's.
        let relayed =
            "HTTP/1.0 401 Unauthorized\r\nVia: 1.1 tinyproxy\r\nWWW-Authenticate: Basic\r\n\r\nwho are you";
        let (f, server) = one_shot("u:p%40ss@", answer_then_reset(relayed));
        let a = f.send(&Method::POST, &[], &[], &body, timeouts(), &hops()).unwrap();
        assert_eq!((a.status, a.excerpt.as_str()), (401, "who are you"));
        server.join().unwrap();
    }

    #[test]
    fn an_answer_before_the_request_body_was_written_stands() {
        // The proxy answers after the head and closes: the rest of a large body meets a
        // reset, and the answer is read after the failed write.
        let (f, server) = one_shot(
            "",
            answer_then_reset("HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\nConnection: close\r\n\r\n"),
        );
        let body = vec![b'x'; 32 * 1024 * 1024];
        let e = f.send(&Method::POST, &[], &[], &body, timeouts(), &hops()).unwrap_err();
        assert!(!e.transient, "{e:?}");
        assert!(
            e.reason.contains(": 407 Proxy Authentication Required: proxy authentication required"),
            "{e:?}"
        );
        server.join().unwrap();
    }

    #[test]
    fn an_http_1_0_answer_without_content_length_is_read_to_close() {
        let (f, server) = one_shot("", |mut stream| {
            read_request_head(&stream);
            stream.write_all(b"HTTP/1.0 503 Service Unavailable\r\nRetry-After: 3\r\n\r\nbusy\r\n").unwrap();
        });
        let a = f.send(&Method::POST, &[], &[], b"", timeouts(), &hops()).unwrap();
        assert_eq!((a.status, a.retry_after.as_deref(), a.excerpt.as_str()), (503, Some("3"), "busy"));
        assert!(f.idle.lock().is_empty(), "read to close: not pooled");
        server.join().unwrap();
    }

    #[test]
    fn a_reset_before_the_head_is_transient() {
        let (f, server) = one_shot("", |stream| {
            // Reads part of the request and closes with the rest unread: a reset.
            let mut first = [0u8; 16];
            (&stream).read_exact(&mut first).unwrap();
        });
        let e = f.send(&Method::POST, &[], &[], &vec![b'x'; 256 * 1024], timeouts(), &hops()).unwrap_err();
        assert!(e.transient, "{e:?}");
        assert!(e.reason.contains("connection reset") || e.reason.contains("connection closed"), "{e:?}");
        server.join().unwrap();
    }

    /// An in-memory peer for the parser: `data`, then an end of stream, a reset or a timeout.
    /// Counts the bytes it hands out.
    struct Peer {
        data: Vec<u8>,
        at: usize,
        end: io::ErrorKind,
        given: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Read for Peer {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.at == self.data.len() {
                return if self.end == io::ErrorKind::UnexpectedEof { Ok(0) } else { Err(self.end.into()) };
            }
            let n = buf.len().min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            self.given.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            Ok(n)
        }
    }

    impl Write for Peer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn parse(data: Vec<u8>, end: io::ErrorKind) -> (Result<Reply, Failure>, Conn, usize) {
        let given = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peer = Peer { data, at: 0, end, given: given.clone() };
        let mut conn = Conn::new(Box::new(peer), None);
        let r = read_answer(&mut conn, &Method::POST, Duration::from_secs(5));
        let n = given.load(std::sync::atomic::Ordering::Relaxed);
        (r, conn, n)
    }

    /// What the parser may take from a peer at most: the heads, the body with its framing,
    /// and one buffer of read-ahead.
    const MOST: usize = MAX_HEAD + super::super::MAX_RESPONSE_BODY + MAX_FRAMING + 16 * 1024;

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Framing {
            Length,
            Chunked(Vec<usize>),
            Close,
        }

        /// A well-formed answer: interim heads, a status, extra headers, a framed body.
        #[derive(Debug, Clone)]
        struct Wire {
            interim: usize,
            http10: bool,
            status: u16,
            phrase: String,
            extra: Vec<(String, String)>,
            body: Vec<u8>,
            framing: Framing,
            close: bool,
        }

        impl Wire {
            fn bytes(&self) -> Vec<u8> {
                let mut w = Vec::new();
                for _ in 0..self.interim {
                    w.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                }
                let version = if self.http10 { "1.0" } else { "1.1" };
                w.extend_from_slice(format!("HTTP/{version} {} {}\r\n", self.status, self.phrase).as_bytes());
                for (n, v) in &self.extra {
                    w.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
                }
                if self.close {
                    w.extend_from_slice(b"Connection: close\r\n");
                } else if self.http10 {
                    w.extend_from_slice(b"Connection: keep-alive\r\n");
                }
                match &self.framing {
                    Framing::Length => {
                        w.extend_from_slice(
                            format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes(),
                        );
                        w.extend_from_slice(&self.body);
                    }
                    Framing::Chunked(cuts) => {
                        w.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                        let mut rest = &self.body[..];
                        let mut cuts = cuts.iter().cycle();
                        while !rest.is_empty() {
                            let n = (*cuts.next().unwrap_or(&1)).clamp(1, rest.len());
                            w.extend_from_slice(format!("{n:x};ext=1\r\n").as_bytes());
                            w.extend_from_slice(&rest[..n]);
                            w.extend_from_slice(b"\r\n");
                            rest = &rest[n..];
                        }
                        w.extend_from_slice(b"0\r\nX-Trailer: t\r\n\r\n");
                    }
                    Framing::Close => {
                        w.extend_from_slice(b"\r\n");
                        w.extend_from_slice(&self.body);
                    }
                }
                w
            }

            fn reusable(&self) -> bool {
                !self.close && !matches!(self.framing, Framing::Close)
            }
        }

        fn wire() -> impl Strategy<Value = Wire> {
            let framing = prop_oneof![
                Just(Framing::Length),
                proptest::collection::vec(1usize..700, 1..6).prop_map(Framing::Chunked),
                Just(Framing::Close),
            ];
            (
                0usize..3,
                any::<bool>(),
                prop_oneof![200u16..300, 400u16..600].prop_filter("no body", |s| *s != 204),
                "[A-Za-z][A-Za-z ]{0,30}",
                proptest::collection::vec(("X-[A-Za-z]{1,10}", "[ -~]{0,60}"), 0..6),
                proptest::collection::vec(any::<u8>(), 0..3000),
                framing,
                any::<bool>(),
            )
                .prop_map(|(interim, http10, status, phrase, extra, body, framing, close)| {
                    Wire {
                        interim,
                        http10,
                        status,
                        phrase: phrase.trim().to_string(),
                        extra: extra.into_iter().map(|(n, v)| (n, v.trim().to_string())).collect(),
                        body,
                        framing,
                        close,
                    }
                })
        }

        /// Damage done to a well-formed answer.
        #[derive(Debug, Clone)]
        enum Damage {
            Truncate(usize),
            Overwrite(usize, Vec<u8>),
            Insert(usize, Vec<u8>),
            /// Replaces the answer with one of hostile shapes.
            Hostile(usize),
        }

        fn damage() -> impl Strategy<Value = Damage> {
            prop_oneof![
                any::<usize>().prop_map(Damage::Truncate),
                (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..16))
                    .prop_map(|(a, b)| Damage::Overwrite(a, b)),
                (
                    any::<usize>(),
                    proptest::collection::vec(
                        prop_oneof![
                            Just(b'\r'),
                            Just(b'\n'),
                            Just(b':'),
                            Just(b';'),
                            Just(b' '),
                            any::<u8>()
                        ],
                        1..16
                    )
                )
                    .prop_map(|(a, b)| Damage::Insert(a, b)),
                (0usize..8).prop_map(Damage::Hostile),
            ]
        }

        fn hostile(kind: usize) -> Vec<u8> {
            let long = |b: u8, n: usize| vec![b; n];
            match kind {
                // An endless status line, an endless header, endless interim answers.
                0 => long(b'H', MAX_HEAD * 2),
                1 => [&b"HTTP/1.1 200 OK\r\nX: "[..], &long(b'a', MAX_HEAD * 2)].concat(),
                2 => b"HTTP/1.1 100 Continue\r\n\r\n".repeat(MAX_HEAD / 10),
                // Chunk sizes that overflow, endless chunk extensions, tiny chunks forever.
                3 => b"HTTP/1.1 500 E\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nab\r\nffffffffffffffff\r\n".to_vec(),
                4 => [&b"HTTP/1.1 500 E\r\nTransfer-Encoding: chunked\r\n\r\n1;"[..], &long(b'e', 4096)].concat(),
                5 => [&b"HTTP/1.1 500 E\r\nTransfer-Encoding: chunked\r\n\r\n"[..], &b"1;aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nx\r\n".repeat(40_000)].concat(),
                // A body far over the limits, without and with a length; endless trailers.
                6 => [&b"HTTP/1.0 502 B\r\n\r\n"[..], &long(b'b', super::super::super::MAX_RESPONSE_BODY * 3)].concat(),
                _ => [&b"HTTP/1.1 500 E\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"[..], &b"T: t\r\n".repeat(MAX_HEAD)].concat(),
            }
        }

        fn damaged(mut w: Vec<u8>, d: &Damage) -> Vec<u8> {
            match d {
                Damage::Truncate(at) => w.truncate(at % (w.len() + 1)),
                Damage::Overwrite(at, bytes) => {
                    let at = at % (w.len() + 1);
                    for (i, b) in bytes.iter().enumerate() {
                        if let Some(slot) = w.get_mut(at + i) {
                            *slot = *b;
                        }
                    }
                }
                Damage::Insert(at, bytes) => {
                    let at = at % (w.len() + 1);
                    w.splice(at..at, bytes.iter().copied());
                }
                Damage::Hostile(kind) => return hostile(*kind),
            }
            w
        }

        fn end() -> impl Strategy<Value = io::ErrorKind> {
            prop_oneof![
                Just(io::ErrorKind::UnexpectedEof),
                Just(io::ErrorKind::ConnectionReset),
                Just(io::ErrorKind::TimedOut),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

            /// Well-formed answers read back exactly: status, phrase, excerpt, and no byte
            /// more than the answer (the next answer on the connection reads too).
            #[test]
            fn well_formed_answers_read_back(w in wire(), end in end()) {
                let mut data = w.bytes();
                let reusable = w.reusable();
                if reusable {
                    data.extend_from_slice(b"HTTP/1.1 204 No Content\r\n\r\n");
                }
                let (r, mut conn, _) = parse(data, end);
                let Ok(reply) = r else { panic!("a well-formed answer failed: {w:?}") };
                prop_assert_eq!(reply.head.status, w.status);
                prop_assert_eq!(&reply.head.phrase, &w.phrase);
                let keep = if (200..300).contains(&w.status) { 0 } else { super::super::super::EXCERPT };
                let expected = text(&w.body[..w.body.len().min(keep)]);
                prop_assert_eq!(&reply.excerpt, &expected);
                prop_assert_eq!(reply.reusable, reusable);
                if reusable {
                    let next = read_answer(&mut conn, &Method::POST, Duration::from_secs(5));
                    let next = next.map(|r| (r.head.status, r.reusable)).ok();
                    prop_assert_eq!(next, Some((204, true)));
                }
            }

            /// Damaged and hostile answers: never a panic, never more bytes than the limits,
            /// never past the phase; a reply always has a valid status and a bounded excerpt.
            #[test]
            fn damaged_answers_stay_within_limits(w in wire(), d in damage(), end in end()) {
                let data = damaged(w.bytes(), &d);
                let began = Instant::now();
                let (r, _, given) = parse(data, end);
                prop_assert!(given <= MOST, "read {} bytes", given);
                prop_assert!(began.elapsed() < Duration::from_secs(5));
                if let Ok(reply) = r {
                    prop_assert!((100..600).contains(&reply.head.status));
                    prop_assert!(reply.excerpt.len() <= 3 * super::super::super::EXCERPT);
                }
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

            /// Over a real socket, a peer that sends part of an answer and then stays silent:
            /// the reading ends within its phases (head and body, 150 ms each).
            #[test]
            fn a_stalled_peer_never_holds_the_reader_past_the_phases(w in wire(), cut in any::<usize>()) {
                let mut data = w.bytes();
                data.truncate(cut % (data.len() + 1));
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = listener.local_addr().unwrap();
                let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
                let peer = thread::spawn(move || {
                    let (mut s, _) = listener.accept().unwrap();
                    s.write_all(&data).unwrap();
                    // Silent, connection open, until the reader is done.
                    let _ = done_rx.recv_timeout(Duration::from_secs(10));
                });
                let tcp = TcpStream::connect(addr).unwrap();
                let mut conn = Conn::new(Box::new(tcp.try_clone().unwrap()), Some(tcp));
                let phase = Duration::from_millis(150);
                let began = Instant::now();
                let _ = read_answer(&mut conn, &Method::POST, phase);
                let took = began.elapsed();
                done_tx.send(()).unwrap();
                peer.join().unwrap();
                prop_assert!(took < 2 * phase + Duration::from_millis(500), "took {:?}", took);
            }
        }
    }
}
