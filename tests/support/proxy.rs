//! Loopback proxies for tests: an HTTP proxy (CONNECT tunnels and absolute-form forwarding,
//! optional basic authentication) and a SOCKS5 proxy (optional user/password). Both refuse
//! any destination outside 127.0.0.1/localhost, log what they were asked, and stop every
//! thread they started when dropped.

#![allow(dead_code)] // Each test binary uses a different part of it.

use super::conns::Conns;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// One request the proxy handled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// `CONNECT`, `POST`, … or `SOCKS5`.
    pub method: String,
    /// `host:port` for CONNECT/SOCKS5, the absolute URL for forwarded requests.
    pub target: String,
    /// The user name of the credentials presented, if any.
    pub user: Option<String>,
    /// The proxy's own answer: 200 (tunnel opened / forwarded), 407, 403, 502; SOCKS reply.
    pub status: u16,
}

struct Inner {
    conns: Conns,
    creds: Option<(String, String)>,
    /// Close the client connection after each forwarded answer.
    close_after_answer: bool,
    log: Mutex<Vec<Entry>>,
}

impl Inner {
    fn record(&self, method: &str, target: &str, user: Option<String>, status: u16) {
        self.log.lock().unwrap().push(Entry { method: method.into(), target: target.into(), user, status });
    }
}

/// A TLS front for a proxy: terminates TLS with `leaf` and relays the plain bytes to `inner`
/// (so `https://` proxy URLs can be tested). Stops its threads when dropped.
pub struct TlsFront {
    addr: SocketAddr,
    inner: Arc<Inner>,
    acceptor: Option<JoinHandle<()>>,
}

impl TlsFront {
    pub fn new(leaf: &super::tls::Leaf, to: SocketAddr) -> TlsFront {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes()).map(|c| c.unwrap()).collect();
        let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(Inner {
            conns: Conns::default(),
            creds: None,
            close_after_answer: false,
            log: Mutex::new(Vec::new()),
        });
        let acceptor = super::conns::accept(&inner, listener, "tls-front", move |stream, inner| {
            let _ = relay_tls(stream, config.clone(), to, inner);
        });
        TlsFront { addr, inner, acceptor: Some(acceptor) }
    }

    /// `https://user:password@127.0.0.1:PORT`
    pub fn url_with(&self, user: &str, password: &str) -> String {
        format!("https://{user}:{password}@{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.inner.conns.shut_down(self.addr, self.acceptor.take());
    }
}

/// Relays one TLS connection to `to` in plain text. One thread multiplexes both directions
/// with short read timeouts (a rustls stream cannot be split between threads).
fn relay_tls(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    to: SocketAddr,
    inner: &Inner,
) -> io::Result<()> {
    use std::time::Duration;
    let conn = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    let mut up = TcpStream::connect(to)?;
    inner.conns.track(&up);
    let tick = Some(Duration::from_millis(2));
    tls.sock.set_read_timeout(tick)?;
    up.set_read_timeout(tick)?;
    let mut buf = [0u8; 16 * 1024];
    let idle = |e: &io::Error| matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut);
    while !inner.conns.stopping() {
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => up.write_all(&buf[..n])?,
            Err(e) if idle(&e) => {}
            Err(e) => return Err(e),
        }
        match up.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                tls.write_all(&buf[..n])?;
                tls.flush()?;
            }
            Err(e) if idle(&e) => {}
            Err(e) => return Err(e),
        }
    }
    tls.conn.send_close_notify();
    let _ = tls.flush();
    Ok(())
}

/// A running proxy (HTTP or SOCKS5).
pub struct TestProxy {
    addr: SocketAddr,
    inner: Arc<Inner>,
    acceptor: Option<JoinHandle<()>>,
    scheme: &'static str,
}

impl TestProxy {
    /// An HTTP proxy without authentication.
    pub fn http() -> TestProxy {
        TestProxy::start("http", None)
    }

    /// An HTTP proxy requiring `user:password` (basic).
    pub fn http_with_auth(user: &str, password: &str) -> TestProxy {
        TestProxy::start("http", Some((user.into(), password.into())))
    }

    /// A SOCKS5 proxy requiring `user:password` (RFC 1929).
    pub fn socks5_with_auth(user: &str, password: &str) -> TestProxy {
        TestProxy::start("socks5", Some((user.into(), password.into())))
    }

    /// An HTTP proxy requiring `user:password` that closes the connection after each
    /// forwarded answer (as some proxies do), leaving the client's pooled connection stale.
    pub fn http_closing(user: &str, password: &str) -> TestProxy {
        TestProxy::start_with("http", Some((user.into(), password.into())), true)
    }

    fn start(scheme: &'static str, creds: Option<(String, String)>) -> TestProxy {
        TestProxy::start_with(scheme, creds, false)
    }

    fn start_with(
        scheme: &'static str,
        creds: Option<(String, String)>,
        close_after_answer: bool,
    ) -> TestProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(Inner {
            conns: Conns::default(),
            creds,
            close_after_answer,
            log: Mutex::new(Vec::new()),
        });
        let acceptor = super::conns::accept(&inner, listener, "proxy", move |stream, inner| {
            let _ = if scheme == "http" { http_conn(stream, inner) } else { socks_conn(stream, inner) };
        });
        TestProxy { addr, inner, acceptor: Some(acceptor), scheme }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `scheme://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// `scheme://user:password@127.0.0.1:PORT`
    pub fn url_with(&self, user: &str, password: &str) -> String {
        format!("{}://{user}:{password}@{}", self.scheme, self.addr)
    }

    pub fn log(&self) -> Vec<Entry> {
        self.inner.log.lock().unwrap().clone()
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        self.inner.conns.shut_down(self.addr, self.acceptor.take());
    }
}

/// Only loopback destinations: tests never reach beyond this machine.
fn loopback(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "localhost" | "::1" | "[::1]")
}

fn connect_upstream(target: &str, inner: &Inner) -> io::Result<TcpStream> {
    let host = target.rsplit_once(':').map_or(target, |(h, _)| h);
    if !loopback(host) {
        return Err(io::Error::new(io::ErrorKind::PermissionDenied, "test proxies only reach loopback"));
    }
    let s = TcpStream::connect(target)?;
    inner.conns.track(&s);
    Ok(s)
}

/// Copies both ways until either side ends; `pending` is client data already read.
fn pump(client: TcpStream, upstream: TcpStream, pending: &[u8], inner: &Arc<Inner>) -> io::Result<()> {
    let mut up_w = upstream.try_clone()?;
    up_w.write_all(pending)?;
    let (mut c_r, mut u_r, mut c_w) = (client.try_clone()?, upstream, client);
    let inner2 = inner.clone();
    inner.conns.spawn("proxy-pump", move || {
        let _ = io::copy(&mut c_r, &mut up_w);
        let _ = up_w.shutdown(Shutdown::Write);
        drop(inner2);
    });
    let _ = io::copy(&mut u_r, &mut c_w);
    let _ = c_w.shutdown(Shutdown::Write);
    Ok(())
}

fn decode_basic(value: &str) -> Option<(String, String)> {
    let b64 = value.strip_prefix("Basic ")?.trim();
    let raw = base64_decode(b64)?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = s.bytes().filter(|b| *b != b'=').collect();
    let mut out = Vec::new();
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= val(*c)? << (18 - 6 * i);
        }
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

fn http_conn(client: TcpStream, inner: &Arc<Inner>) -> io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client_w = client;
    loop {
        let Some(request) = super::sink::read_request(&mut reader, 0)? else { return Ok(()) };
        let (method, target, headers, body) = (request.method, request.path, request.headers, request.body);
        let find =
            |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
        let presented = find("proxy-authorization").and_then(|v| decode_basic(&v));
        let user = presented.as_ref().map(|(u, _)| u.clone());
        if let Some(creds) = &inner.creds {
            if presented.as_ref() != Some(creds) {
                inner.record(&method, &target, user, 407);
                client_w.write_all(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n",
                )?;
                continue;
            }
        }
        if method == "CONNECT" {
            let upstream = match connect_upstream(&target, inner) {
                Ok(u) => u,
                Err(_) => {
                    inner.record(&method, &target, user, 502);
                    client_w.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")?;
                    return Ok(());
                }
            };
            inner.record(&method, &target, user, 200);
            client_w.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
            let pending = reader.buffer().to_vec();
            return pump(client_w, upstream, &pending, inner);
        }
        // Absolute-form: forward one request with `Connection: close`, relay the answer, close.
        let Some(rest) = target.strip_prefix("http://") else {
            inner.record(&method, &target, user, 400);
            client_w.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")?;
            return Ok(());
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let mut upstream = match connect_upstream(authority, inner) {
            Ok(u) => u,
            Err(_) => {
                inner.record(&method, &target, user, 502);
                client_w.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")?;
                return Ok(());
            }
        };
        inner.record(&method, &target, user, 200);
        let mut head = format!("{method} {} HTTP/1.1\r\n", if path.is_empty() { "/" } else { path });
        for (n, v) in &headers {
            let n_l = n.to_ascii_lowercase();
            if !matches!(n_l.as_str(), "proxy-authorization" | "proxy-connection" | "connection") {
                head.push_str(&format!("{n}: {v}\r\n"));
            }
        }
        head.push_str("Via: 1.1 test-proxy\r\nConnection: close\r\n\r\n");
        upstream.write_all(head.as_bytes())?;
        upstream.write_all(&body)?;
        relay_answer(&mut BufReader::new(upstream), &mut client_w)?;
        if inner.close_after_answer {
            let _ = client_w.shutdown(Shutdown::Both);
            return Ok(());
        }
    }
}

/// Relays one answer (head and `Content-Length` body) from upstream to the client.
fn relay_answer(up: &mut BufReader<TcpStream>, client: &mut TcpStream) -> io::Result<()> {
    let mut head = String::new();
    let mut len = 0;
    loop {
        let mut line = String::new();
        if up.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if let Some((n, v)) = line.split_once(':') {
            if n.trim().eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; len];
    up.read_exact(&mut body)?;
    client.write_all(head.as_bytes())?;
    client.write_all(&body)
}

fn socks_conn(mut client: TcpStream, inner: &Arc<Inner>) -> io::Result<()> {
    let mut hdr = [0u8; 2];
    client.read_exact(&mut hdr)?;
    let mut methods = vec![0u8; hdr[1] as usize];
    client.read_exact(&mut methods)?;
    let mut user = None;
    if let Some((want_u, want_p)) = inner.creds.clone() {
        if !methods.contains(&2) {
            inner.record("SOCKS5", "", None, 0xff);
            client.write_all(&[5, 0xff])?;
            return Ok(());
        }
        client.write_all(&[5, 2])?;
        let mut v = [0u8; 2];
        client.read_exact(&mut v)?;
        let mut u = vec![0u8; v[1] as usize];
        client.read_exact(&mut u)?;
        let mut pl = [0u8; 1];
        client.read_exact(&mut pl)?;
        let mut p = vec![0u8; pl[0] as usize];
        client.read_exact(&mut p)?;
        let (u, p) = (String::from_utf8_lossy(&u).to_string(), String::from_utf8_lossy(&p).to_string());
        if (u.as_str(), p.as_str()) != (want_u.as_str(), want_p.as_str()) {
            inner.record("SOCKS5", "", Some(u), 1);
            client.write_all(&[1, 1])?;
            return Ok(());
        }
        client.write_all(&[1, 0])?;
        user = Some(u);
    } else {
        client.write_all(&[5, 0])?;
    }
    let mut req = [0u8; 4];
    client.read_exact(&mut req)?;
    let host = match req[3] {
        1 => {
            let mut a = [0u8; 4];
            client.read_exact(&mut a)?;
            std::net::Ipv4Addr::from(a).to_string()
        }
        4 => {
            let mut a = [0u8; 16];
            client.read_exact(&mut a)?;
            format!("[{}]", std::net::Ipv6Addr::from(a))
        }
        _ => {
            let mut l = [0u8; 1];
            client.read_exact(&mut l)?;
            let mut name = vec![0u8; l[0] as usize];
            client.read_exact(&mut name)?;
            String::from_utf8_lossy(&name).to_string()
        }
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port)?;
    let target = format!("{host}:{}", u16::from_be_bytes(port));
    match connect_upstream(&target, inner) {
        Ok(upstream) => {
            inner.record("SOCKS5", &target, user, 0);
            client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0])?;
            pump(client, upstream, &[], inner)
        }
        Err(_) => {
            inner.record("SOCKS5", &target, user, 2);
            client.write_all(&[5, 2, 0, 1, 0, 0, 0, 0, 0, 0])
        }
    }
}

impl super::conns::Server for Inner {
    fn conns(&self) -> &Conns {
        &self.conns
    }
}
