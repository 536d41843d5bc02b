//! The transport: the only user of ureq and rustls.
//!
//! Built from [`TransportOptions`] (nothing of the builder's configuration reaches here). Owns
//! the agent configuration (set against the traps listed in ARCHITECTURE.md), the route (proxy or
//! direct, chosen once in `start()`), trust (roots, client certificate), request building,
//! reading the answer, mapping ureq's errors to [`Fault`]s with a reason that names the hop, and
//! the step-by-step probe. Nothing of ureq or rustls leaks out of this module.

mod fault;
mod forward;
pub(crate) mod probe;
pub(crate) mod proxy;
pub(crate) mod tls;

use std::io::Read;
use std::time::Duration;

use ureq::http::{self, HeaderName, HeaderValue, Method, Uri};
use ureq::Agent;

use crate::error::Error;
use crate::util::{check_header, redact_url};

pub(crate) use fault::Fault;
use fault::Hops;
use proxy::{ProxyChoice, Route};
use tls::{TlsOptions, Trust};

/// How much of a response body is read (to let the connection be reused); beyond this the
/// connection is dropped instead.
const MAX_RESPONSE_BODY: usize = 64 * 1024;
/// How much longer than `request_timeout` a whole phase may take (see `Transport::new`).
const PHASE_GRACE: Duration = Duration::from_secs(1);

/// How much of a non-2xx response body is kept as the reason.
const EXCERPT: usize = 256;

/// The endpoint's answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<String>,
    /// The start of the body: for non-2xx answers, and for 2xx ones when
    /// `keep_success_body` asks for it.
    pub(crate) excerpt: String,
}

/// A poll's answer: the status, the headers a poller uses, and the whole body.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<String>,
    pub(crate) etag: Option<String>,
    pub(crate) last_modified: Option<String>,
    pub(crate) body: Vec<u8>,
}

/// The largest body a poll reads.
const MAX_POLL_BODY: u64 = 16 * 1024 * 1024;

pub(crate) struct Transport {
    /// `host:port` (through proxy `host:port`), for messages; made once.
    endpoint: String,
    agent: Agent,
    /// One agent (and so one connection pool) per worker: workers sharing one pool trade
    /// connections back and forth, which costs about a third of the loopback throughput of
    /// one event per request (measured in `benches/e2e.rs`).
    worker_agents: Vec<Agent>,
    uri: Uri,
    method: Method,
    headers: Vec<(HeaderName, HeaderValue)>,
    connect_timeout: Duration,
    request_timeout: Duration,
    keep_success_body: usize,
    route: Route,
    hops: Hops,
    trust: Trust,
    /// Reason phrases of `CONNECT` refusals, by status, as the proxy sent them.
    connect_phrases: parking_lot::Mutex<std::collections::HashMap<u16, String>>,
    /// Set for an `http://` endpoint behind an HTTP(S) proxy: requests are forwarded in
    /// absolute form instead of tunnelled (see `forward.rs`).
    forward: Option<forward::Forward>,
}

/// One configured request header. Values are never printed.
#[derive(Clone)]
pub(crate) struct Header {
    pub(crate) name: String,
    pub(crate) value: String,
}

/// What a [`Transport`] is built from. The api layer fills it (defaults in `api/config.rs`);
/// [`Transport::new`] is the one place its URL, method and headers are checked.
#[derive(Clone)]
pub(crate) struct TransportOptions {
    pub(crate) url: String,
    pub(crate) method: String,
    pub(crate) headers: Vec<Header>,
    pub(crate) content_type: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    /// How much of a 2xx answer's body to keep for the caller (0: none; OTLP reads
    /// `partialSuccess` from it).
    pub(crate) keep_success_body: usize,
    pub(crate) proxy: ProxyChoice,
    pub(crate) tls: TlsOptions,
}

impl TransportOptions {
    /// Adds a header, replacing an earlier one of the same name (case-insensitively).
    pub(crate) fn set_header(&mut self, name: &str, value: String) {
        self.headers.retain(|h| !h.name.eq_ignore_ascii_case(name));
        self.headers.push(Header { name: name.to_string(), value });
    }
}

fn parse_url(url: &str) -> Result<Uri, String> {
    let uri: Uri = url.parse().map_err(|e: http::uri::InvalidUri| e.to_string())?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        Some(other) => return Err(format!("scheme {other:?} is not http or https")),
        None => return Err("no scheme (expected http:// or https://)".into()),
    }
    match uri.host() {
        Some(h) if !h.is_empty() => Ok(uri),
        _ => Err("no host".into()),
    }
}

fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    check_header(name, value)?;
    let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| "not a valid header name".to_string())?;
    let mut value = HeaderValue::from_str(value).map_err(|_| "invalid value".to_string())?;
    // Keeps values out of any Debug/log output of the http types.
    value.set_sensitive(true);
    Ok((name, value))
}

impl Transport {
    /// Checks the URL, method and headers, chooses the route, loads trust and builds the
    /// agents: one connection pool per worker (`workers`) and one shared.
    pub(crate) fn new(config: &TransportOptions, workers: usize) -> Result<Transport, Error> {
        let uri = parse_url(&config.url)
            .map_err(|reason| Error::InvalidUrl { url: redact_url(&config.url), reason })?;
        let method = Method::from_bytes(config.method.as_bytes()).map_err(|_| Error::InvalidOption {
            option: "method",
            reason: format!("{:?} is not an HTTP method", config.method),
        })?;
        let mut headers = Vec::with_capacity(config.headers.len() + 1);
        for h in &config.headers {
            headers.push(
                header(&h.name, &h.value)
                    .map_err(|reason| Error::InvalidHeader { name: h.name.clone(), reason })?,
            );
        }
        let (name, mut content_type) = header("Content-Type", &config.content_type)
            .map_err(|reason| Error::InvalidOption { option: "content_type", reason })?;
        content_type.set_sensitive(false);
        headers.push((name, content_type));

        // The route (read from the environment unless set explicitly) and trust, both once.
        let scheme = uri.scheme_str().unwrap_or("http").to_string();
        let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
        let port = uri.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
        let route = proxy::choose(&config.proxy, &scheme, &host, port, &|name| std::env::var(name).ok())?;
        let proxy_tls = route.proxy.as_ref().is_some_and(|p| p.scheme == proxy::Scheme::Https);
        let trust = tls::load(&config.tls, scheme == "https" || proxy_tls)?;
        let forwarded = scheme == "http" && route.proxy.as_ref().is_some_and(|p| !p.scheme.is_socks());
        let ureq_proxy = match &route.proxy {
            None => None,
            Some(_) if forwarded => None,
            Some(p) => Some(p.to_ureq().map_err(|reason| Error::InvalidProxy {
                source: route.why.clone(),
                url: p.to_string(),
                reason,
            })?),
        };
        let forward = match &route.proxy {
            Some(p) if forwarded => {
                Some(forward::Forward::for_endpoint(p, &uri, &trust, config, workers, &mut headers)?)
            }
            _ => None,
        };
        let roots_note = (!trust.warnings.is_empty()).then(|| trust.warnings.join("; "));
        let hops = Hops {
            endpoint: endpoint_of(&uri),
            endpoint_scheme: scheme,
            proxy: route.proxy.as_ref().map(|p| (p.authority(), p.scheme)),
            roots_note,
            proxy_credentials: route.proxy.as_ref().is_some_and(|p| p.basic_auth().is_some()),
        };

        let agent_config = Agent::config_builder()
            // Non-2xx answers are data for the classifier, not errors.
            .http_status_as_error(false)
            // A 302 on POST would be re-sent as a GET without the body: never follow, classify.
            .max_redirects(0)
            .max_redirects_will_error(false)
            // Per-phase timeouts only: the global/per-call/resolve ones make ureq spawn a
            // resolver thread per request.
            .timeout_connect(Some(config.connect_timeout))
            // Every read and write must make progress within `request_timeout`: a constant,
            // so ureq sets the socket timeout once per connection instead of before every
            // read and write (it skips the system call only when the value is unchanged).
            .timeout_per_read(Some(config.request_timeout))
            .timeout_per_write(Some(config.request_timeout))
            // Each phase as a whole is bounded too, a little later: while a phase's remaining
            // time is longer than the per-read one, the constant per-read value is the one
            // in force (a phase total alone changes the socket timeout on every read).
            .timeout_send_request(Some(config.request_timeout + PHASE_GRACE))
            .timeout_send_body(Some(config.request_timeout + PHASE_GRACE))
            .timeout_recv_response(Some(config.request_timeout + PHASE_GRACE))
            .timeout_recv_body(Some(config.request_timeout + PHASE_GRACE))
            // One keep-alive connection per worker at least.
            .max_idle_connections_per_host(workers.max(2))
            .max_idle_connections(workers.max(2) * 2)
            // ureq would read proxy variables on its own (and not trim NO_PROXY entries): the
            // route is chosen by `proxy::choose` and given explicitly.
            .proxy(ureq_proxy)
            .tls_config(trust.ureq_config())
            .no_delay(true)
            .user_agent(concat!("posthaste/", env!("CARGO_PKG_VERSION")))
            .build();
        let endpoint = match &route.proxy {
            None => endpoint_of(&uri),
            Some(p) => format!("{} (through proxy {})", endpoint_of(&uri), p.authority()),
        };
        Ok(Transport {
            endpoint,
            connect_phrases: parking_lot::Mutex::new(std::collections::HashMap::new()),
            worker_agents: (0..workers).map(|_| Agent::new_with_config(agent_config.clone())).collect(),
            agent: agent_config.into(),
            uri,
            method,
            headers,
            connect_timeout: config.connect_timeout,
            request_timeout: config.request_timeout,
            keep_success_body: config.keep_success_body,
            route,
            hops,
            trust,
            forward,
        })
    }

    /// The endpoint as `host:port` (and the proxy it goes through), for messages.
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// `text` (ureq's "proxy server responded 403/403") with the proxy's own reason phrase,
    /// asked once per status with a `CONNECT` of our own and kept. Not for 401 and 407: sending
    /// refused credentials again could count toward locking the account. Not while shutting
    /// down (`shutting_down`), when there is no time for an extra round trip.
    fn with_proxy_phrase(&self, text: String, shutting_down: bool) -> String {
        let Some((status, phrase)) = fault::proxy_status(&text) else { return text };
        if !(phrase.trim().is_empty() || phrase.trim() == status.to_string()) || matches!(status, 401 | 407) {
            return text;
        }
        let known = self.connect_phrases.lock().get(&status).cloned();
        let phrase = match known {
            Some(p) => p,
            None if shutting_down => return text,
            None => match probe::connect_answer(self) {
                Some((s, p)) if s == status && !p.is_empty() => {
                    self.connect_phrases.lock().insert(status, p.clone());
                    p
                }
                _ => return text,
            },
        };
        format!("proxy server responded {status}/{phrase}")
    }

    /// Non-fatal problems found in `start()` (root certificates that failed to load,
    /// disabled verification), for the report and the probe.
    pub(crate) fn warnings(&self) -> &[String] {
        &self.trust.warnings
    }

    /// Sends one request with `body` on the shared connection pool, for requests made outside
    /// the worker loop (the panic hook, synchronous sends after shutdown). `extra` headers are
    /// added to the configured ones; `time_left` (during shutdown) clamps every phase timeout.
    pub(crate) fn send(
        &self,
        body: &[u8],
        extra: &[(&str, String)],
        time_left: Option<Duration>,
    ) -> Result<Answer, Fault> {
        self.request(&self.agent, self.method.clone(), body, extra, time_left)
    }

    /// Like [`Transport::send`], on worker `worker`'s own connection pool.
    pub(crate) fn send_as(
        &self,
        worker: usize,
        body: &[u8],
        extra: &[(&str, String)],
        time_left: Option<Duration>,
    ) -> Result<Answer, Fault> {
        let agent = self.worker_agents.get(worker).unwrap_or(&self.agent);
        self.request(agent, self.method.clone(), body, extra, time_left)
    }

    /// Like [`Transport::send`], with another method (the probe sends `HEAD`).
    pub(crate) fn send_method(
        &self,
        method: Method,
        body: &[u8],
        extra: &[(&str, String)],
        time_left: Option<Duration>,
    ) -> Result<Answer, Fault> {
        self.request(&self.agent, method, body, extra, time_left)
    }

    /// True for a plain-HTTP URL behind an HTTP(S) proxy (requests forwarded in absolute form).
    pub(crate) fn is_forwarded(&self) -> bool {
        self.forward.is_some()
    }

    /// One poll request (no body) to the configured URL or to `url` (a next page), with the
    /// configured headers and `extra`; reads the whole answer (up to 16 MiB). Each phase is
    /// bounded by the request timeout. Not for forwarded routes (see [`Transport::is_forwarded`]).
    pub(crate) fn fetch(&self, url: Option<&str>, extra: &[(&str, String)]) -> Result<Fetched, Fault> {
        let uri = match url {
            None => self.uri.clone(),
            Some(u) => {
                parse_url(u).map_err(|why| Fault::permanent(format!("next page {}: {why}", redact_url(u))))?
            }
        };
        let mut builder = http::Request::builder().method(self.method.clone()).uri(uri);
        for (name, value) in &self.headers {
            if name != http::header::CONTENT_TYPE {
                builder = builder.header(name, value);
            }
        }
        for (name, value) in extra {
            builder = builder.header(*name, value.as_str());
        }
        let request =
            builder.body(()).map_err(|e| Fault::permanent(format!("could not build the request: {e}")))?;
        let mut response = self.agent.run(request).map_err(|e| fault::map(e, &self.hops))?;
        let header = |name: http::HeaderName| {
            response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
        };
        let status = response.status().as_u16();
        let retry_after = header(http::header::RETRY_AFTER);
        let etag = header(http::header::ETAG);
        let last_modified = header(http::header::LAST_MODIFIED);
        let body = if (200..300).contains(&status) {
            response
                .body_mut()
                .with_config()
                .limit(MAX_POLL_BODY)
                .read_to_vec()
                .map_err(|e| fault::map(e, &self.hops))?
        } else {
            read_body(response.body_mut().as_reader(), EXCERPT).into_bytes()
        };
        Ok(Fetched { status, retry_after, etag, last_modified, body })
    }

    fn request(
        &self,
        agent: &Agent,
        method: Method,
        body: &[u8],
        extra: &[(&str, String)],
        time_left: Option<Duration>,
    ) -> Result<Answer, Fault> {
        if let Some(fwd) = &self.forward {
            let left = time_left.unwrap_or(Duration::MAX);
            let timeouts = forward::Timeouts {
                connect: self.connect_timeout.min(left),
                phase: self.request_timeout.min(left),
            };
            return fwd.send(&method, &self.headers, extra, body, timeouts, &self.hops);
        }
        let mut builder = http::Request::builder().method(method).uri(self.uri.clone());
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        for (name, value) in extra {
            builder = builder.header(*name, value.as_str());
        }
        let request =
            builder.body(body).map_err(|e| Fault::permanent(format!("could not build the request: {e}")))?;
        let request = match time_left {
            None => request,
            Some(left) => {
                let connect = self.connect_timeout.min(left);
                let phase = self.request_timeout.min(left);
                agent
                    .configure_request(request)
                    .timeout_connect(Some(connect))
                    .timeout_per_read(Some(phase))
                    .timeout_per_write(Some(phase))
                    .timeout_send_request(Some(phase))
                    .timeout_send_body(Some(phase))
                    .timeout_recv_response(Some(phase))
                    .timeout_recv_body(Some(phase))
                    .build()
            }
        };
        let mut response = match agent.run(request) {
            Ok(response) => response,
            // ureq keeps no reason phrase of a refused CONNECT: look up the proxy's own.
            Err(ureq::Error::ConnectProxyFailed(text)) => {
                let text = self.with_proxy_phrase(text, time_left.is_some());
                return Err(fault::map(ureq::Error::ConnectProxyFailed(text), &self.hops));
            }
            Err(e) => return Err(fault::map(e, &self.hops)),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let keep = if (200..300).contains(&status) { self.keep_success_body } else { EXCERPT };
        let excerpt = read_body(response.body_mut().as_reader(), keep);
        Ok(Answer { status, retry_after, excerpt })
    }
}

/// `host:port` of a URI (IPv6 in brackets).
fn endpoint_of(uri: &Uri) -> String {
    let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
    format!("{}:{}", uri.host().unwrap_or("?"), port)
}

/// Reads the body to its end (so the connection can be reused) up to `MAX_RESPONSE_BODY`,
/// keeping the first `keep` bytes as text. Errors while reading only end the reading: the
/// status has already been received.
fn read_body(mut reader: impl Read, keep: usize) -> String {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    let mut total = 0;
    while total <= MAX_RESPONSE_BODY {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if kept.len() < keep {
                    let take = n.min(keep - kept.len());
                    kept.extend_from_slice(&buf[..take]);
                }
                total += n;
            }
        }
    }
    String::from_utf8_lossy(&kept).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_checks() {
        assert!(parse_url("http://127.0.0.1:8080/ingest").is_ok());
        assert!(parse_url("https://collector.example/x?y=1").is_ok());
        assert!(parse_url("ftp://host/").unwrap_err().contains("ftp"));
        assert!(parse_url("/relative").is_err());
        assert!(parse_url("http://").is_err());
        assert!(parse_url("not a url").is_err());
    }

    #[test]
    fn header_checks() {
        assert!(header("X-Ok", "fine\tvalue").is_ok());
        assert!(header("X-Bad", "a\r\nInjected: 1").is_err());
        assert!(header("X-Bad", "a\nb").is_err());
        assert!(header("Bad Name", "v").is_err());
        assert!(header("", "v").is_err());
    }
}
