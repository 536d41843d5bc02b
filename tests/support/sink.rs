//! A loopback HTTP/1.1 sink whose answers are scripted: statuses, headers, `Retry-After`,
//! delays, closed connections, resets and black holes. Used by the integration tests and, via
//! `#[path]`, by the examples and benches. Std only (plus `serde_json` to count events and
//! `flate2` to gunzip bodies sent with `Content-Encoding: gzip`).
//!
//! The sink listens on 127.0.0.1 on a free port, serves each connection on its own thread with
//! keep-alive, records what it received, and stops every thread it started when dropped.

#![allow(dead_code)] // Each test binary uses a different part of it.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How the sink answers one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A status with an empty body.
    Status(u16),
    /// A status with headers and a body.
    Full { status: u16, headers: Vec<(String, String)>, body: String },
    /// Waits, then answers (the wait ends early if the sink stops).
    Delay(Duration, Box<Reply>),
    /// Closes the connection without answering.
    Close,
    /// Resets the connection (RST) without answering.
    Reset,
    /// Never answers; holds the connection open until the sink stops.
    BlackHole,
    /// Sends the status line, headers and half the announced body, then closes.
    CloseMidBody(u16),
    /// Sends the headers, then one body byte every `every` for `bytes` bytes.
    Trickle { status: u16, bytes: usize, every: Duration },
}

impl Reply {
    /// A status with a `Retry-After` header.
    pub fn retry_after(status: u16, value: &str) -> Reply {
        Reply::Full { status, headers: vec![("Retry-After".into(), value.into())], body: String::new() }
    }

    /// A status with a body.
    pub fn body(status: u16, body: &str) -> Reply {
        Reply::Full { status, headers: Vec::new(), body: body.into() }
    }
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Request {
    /// 0-based arrival order.
    pub index: u64,
    pub at: Instant,
    pub conn: u64,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// The body, gunzipped if it came with `Content-Encoding: gzip`.
    pub body: Vec<u8>,
    /// The body's length as received (compressed, if it was).
    pub wire_len: usize,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as JSON (panics if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("body is JSON")
    }

    /// Events in the body: a JSON array counts its elements, NDJSON its lines, any other
    /// JSON value one.
    pub fn events(&self) -> u64 {
        count_events(&self.body)
    }
}

pub fn count_events(body: &[u8]) -> u64 {
    if body.first() == Some(&b'[') {
        if let Ok(items) = serde_json::from_slice::<Vec<serde::de::IgnoredAny>>(body) {
            return items.len() as u64;
        }
    }
    if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
        return 1;
    }
    body.split(|b| *b == b'\n').filter(|line| !line.iter().all(u8::is_ascii_whitespace)).count() as u64
}

type Script = dyn Fn(&Request) -> Reply + Send + Sync;

struct State {
    requests: Vec<Request>,
    /// When each answer (by request index) was about to be written.
    answered: Vec<(u64, Instant, u16)>,
}

struct Inner {
    script: Box<Script>,
    record: bool,
    stop: AtomicBool,
    count: AtomicU64,
    events: AtomicU64,
    conns: AtomicU64,
    state: Mutex<State>,
    changed: Condvar,
    streams: Mutex<Vec<(u64, TcpStream)>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// A running sink. Stops (and joins its threads) when dropped.
pub struct Sink {
    addr: SocketAddr,
    inner: Arc<Inner>,
    acceptor: Option<JoinHandle<()>>,
}

impl Sink {
    /// A sink answering 200 to everything, recording every request.
    pub fn ok() -> Sink {
        Sink::with(|_| Reply::Status(200))
    }

    /// A sink answering by `script`, recording every request.
    pub fn with(script: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Sink {
        Sink::start(Box::new(script), true)
    }

    /// A sink answering by `script` that only counts (for load: no bodies kept).
    pub fn counting(script: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Sink {
        Sink::start(Box::new(script), false)
    }

    fn start(script: Box<Script>, record: bool) -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(Inner {
            script,
            record,
            stop: AtomicBool::new(false),
            count: AtomicU64::new(0),
            events: AtomicU64::new(0),
            conns: AtomicU64::new(0),
            state: Mutex::new(State { requests: Vec::new(), answered: Vec::new() }),
            changed: Condvar::new(),
            streams: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let inner = inner.clone();
            thread::Builder::new()
                .name("sink-accept".into())
                .spawn(move || accept_loop(listener, inner))
                .unwrap()
        };
        Sink { addr, inner, acceptor: Some(acceptor) }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/ingest`
    pub fn url(&self) -> String {
        format!("http://{}/ingest", self.addr)
    }

    /// Requests received so far.
    pub fn count(&self) -> u64 {
        self.inner.count.load(Ordering::SeqCst)
    }

    /// Events in requests answered 2xx.
    pub fn events(&self) -> u64 {
        self.inner.events.load(Ordering::SeqCst)
    }

    /// Connections accepted.
    pub fn connections(&self) -> u64 {
        self.inner.conns.load(Ordering::SeqCst)
    }

    /// Recorded requests (empty for a counting sink).
    pub fn requests(&self) -> Vec<Request> {
        self.inner.state.lock().unwrap().requests.clone()
    }

    /// `(request index, when its answer was written, status)`.
    pub fn answered(&self) -> Vec<(u64, Instant, u16)> {
        self.inner.state.lock().unwrap().answered.clone()
    }

    /// Waits until `n` requests have arrived; false on timeout.
    pub fn wait_for_requests(&self, n: u64, timeout: Duration) -> bool {
        self.wait_until(timeout, |inner| inner.count.load(Ordering::SeqCst) >= n)
    }

    /// Waits until `n` events were answered 2xx; false on timeout.
    pub fn wait_for_events(&self, n: u64, timeout: Duration) -> bool {
        self.wait_until(timeout, |inner| inner.events.load(Ordering::SeqCst) >= n)
    }

    fn wait_until(&self, timeout: Duration, done: impl Fn(&Inner) -> bool) -> bool {
        wait_on(&self.inner, timeout, done)
    }

    /// A handle the script can use to wait on the sink's own progress.
    pub fn progress(&self) -> Progress {
        Progress(self.inner.clone())
    }
}

/// Lets a script wait for other requests (e.g. "answer the first only once the second came").
/// Built before the script runs via [`Sink::with_progress`].
#[derive(Clone)]
pub struct Progress(Arc<Inner>);

impl Progress {
    pub fn wait_for_requests(&self, n: u64, timeout: Duration) -> bool {
        wait_on(&self.0, timeout, |inner| inner.count.load(Ordering::SeqCst) >= n)
    }

    pub fn wait_for_answers(&self, n: usize, timeout: Duration) -> bool {
        wait_on(&self.0, timeout, |inner| inner.state.lock().unwrap().answered.len() >= n)
    }
}

impl Sink {
    /// Like [`Sink::with`], with the script given a [`Progress`] handle on its own sink.
    pub fn with_progress(script: impl Fn(&Request, &Progress) -> Reply + Send + Sync + 'static) -> Sink {
        let slot: Arc<Mutex<Option<Progress>>> = Arc::new(Mutex::new(None));
        let for_script = slot.clone();
        let sink = Sink::with(move |req| {
            let progress = for_script.lock().unwrap().clone().expect("progress set before traffic");
            script(req, &progress)
        });
        *slot.lock().unwrap() = Some(sink.progress());
        sink
    }
}

fn wait_on(inner: &Inner, timeout: Duration, done: impl Fn(&Inner) -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    let mut guard = inner.state.lock().unwrap();
    loop {
        drop(guard);
        if done(inner) {
            return true;
        }
        guard = inner.state.lock().unwrap();
        let now = Instant::now();
        if now >= deadline || inner.stop.load(Ordering::SeqCst) {
            drop(guard);
            return done(inner);
        }
        // Woken by every request and answer; the timeout only bounds a failing test.
        guard = inner.changed.wait_timeout(guard, (deadline - now).min(Duration::from_millis(50))).unwrap().0;
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor with a connection of our own.
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
        for (_, s) in self.inner.streams.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        self.inner.changed.notify_all();
        let threads: Vec<_> = self.inner.threads.lock().unwrap().drain(..).collect();
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Inner {
    fn forget_stream(&self, conn: u64) {
        self.streams.lock().unwrap().retain(|(id, _)| *id != conn);
    }
}

fn accept_loop(listener: TcpListener, inner: Arc<Inner>) {
    for (conn_id, stream) in listener.incoming().enumerate() {
        if inner.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        inner.conns.fetch_add(1, Ordering::SeqCst);
        let _ = stream.set_nodelay(true);
        if let Ok(clone) = stream.try_clone() {
            inner.streams.lock().unwrap().push((conn_id as u64, clone));
        }
        let for_thread = inner.clone();
        let handle = thread::Builder::new()
            .name(format!("sink-conn-{conn_id}"))
            .spawn(move || serve(stream, conn_id as u64, for_thread))
            .unwrap();
        inner.threads.lock().unwrap().push(handle);
    }
}

fn serve(stream: TcpStream, conn: u64, inner: Arc<Inner>) {
    serve_requests(stream, conn, &inner);
    inner.forget_stream(conn);
}

fn serve_requests(stream: TcpStream, conn: u64, inner: &Inner) {
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    while !inner.stop.load(Ordering::SeqCst) {
        let Ok(Some(mut req)) = read_request(&mut reader, conn) else { return };
        req.index = inner.count.fetch_add(1, Ordering::SeqCst);
        {
            let mut st = inner.state.lock().unwrap();
            if inner.record {
                st.requests.push(req.clone());
            }
        }
        inner.changed.notify_all();
        let reply = (inner.script)(&req);
        let events = req.events();
        if !answer(&mut writer, reply, &req, events, inner) {
            return;
        }
    }
}

/// Writes the reply. False if the connection must end.
fn answer(w: &mut TcpStream, reply: Reply, req: &Request, events: u64, inner: &Inner) -> bool {
    let (status, headers, body) = match reply {
        Reply::Status(s) => (s, Vec::new(), String::new()),
        Reply::Full { status, headers, body } => (status, headers, body),
        Reply::Delay(d, then) => {
            let deadline = Instant::now() + d;
            while Instant::now() < deadline && !inner.stop.load(Ordering::SeqCst) {
                let guard = inner.state.lock().unwrap();
                let left = deadline.saturating_duration_since(Instant::now());
                let _ = inner.changed.wait_timeout(guard, left.min(Duration::from_millis(20))).unwrap();
            }
            return answer(w, *then, req, events, inner);
        }
        Reply::Close => {
            let _ = w.shutdown(Shutdown::Both);
            return false;
        }
        Reply::Reset => {
            // SO_LINGER 0 makes the close send RST instead of FIN. The stream (and the clone
            // kept for stopping) must both go for the socket to close now.
            let _ = socket2::SockRef::from(&*w).set_linger(Some(Duration::ZERO));
            inner.forget_stream(req.conn);
            return false;
        }
        Reply::BlackHole => {
            let mut guard = inner.state.lock().unwrap();
            while !inner.stop.load(Ordering::SeqCst) {
                guard = inner.changed.wait_timeout(guard, Duration::from_millis(50)).unwrap().0;
            }
            return false;
        }
        Reply::CloseMidBody(status) => {
            let head = format!("HTTP/1.1 {status} X\r\nContent-Length: 100\r\n\r\n");
            let _ = w.write_all(head.as_bytes());
            let _ = w.write_all(&[b'x'; 50]);
            record_answer(inner, req, status, events);
            let _ = w.shutdown(Shutdown::Both);
            return false;
        }
        Reply::Trickle { status, bytes, every } => {
            let head = format!("HTTP/1.1 {status} X\r\nContent-Length: {bytes}\r\n\r\n");
            if w.write_all(head.as_bytes()).is_err() {
                return false;
            }
            for _ in 0..bytes {
                if inner.stop.load(Ordering::SeqCst) || w.write_all(b"x").is_err() {
                    return false;
                }
                let guard = inner.state.lock().unwrap();
                let _ = inner.changed.wait_timeout(guard, every).unwrap();
            }
            record_answer(inner, req, status, events);
            return true;
        }
    };
    let mut head = format!("HTTP/1.1 {status} {}\r\nContent-Length: {}\r\n", reason(status), body.len());
    for (n, v) in &headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head.push_str(&body);
    // Recorded before writing: once the client has the answer, the sink has counted it.
    record_answer(inner, req, status, events);
    w.write_all(head.as_bytes()).is_ok()
}

fn record_answer(inner: &Inner, req: &Request, status: u16, events: u64) {
    if (200..300).contains(&status) {
        inner.events.fetch_add(events, Ordering::SeqCst);
    }
    inner.state.lock().unwrap().answered.push((req.index, Instant::now(), status));
    inner.changed.notify_all();
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        413 => "Content Too Large",
        425 => "Too Early",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Reads one HTTP/1.1 request (`Content-Length` or chunked body); `Ok(None)` at a clean end of
/// the connection. Also used by the other test servers.
pub fn read_request(r: &mut impl BufRead, conn: u64) -> io::Result<Option<Request>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 {
            return Ok(None);
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    let find =
        |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(len) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(len, 0);
        r.read_exact(&mut body)?;
    }
    let wire_len = body.len();
    if find("content-encoding").is_some_and(|v| v.eq_ignore_ascii_case("gzip")) {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut plain)?;
        body = plain;
    }
    Ok(Some(Request { index: 0, at: Instant::now(), conn, method, path, headers, body, wire_len }))
}
