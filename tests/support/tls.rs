//! TLS test rig: certificate authorities, server and client certificates made at test time
//! (rcgen), and a loopback HTTPS server (rustls) that records what it received, optionally
//! requiring client certificates (mTLS). Stops every thread it started when dropped.

#![allow(dead_code)] // Each test binary uses a different part of it.

use super::conns::Conns;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate authority.
pub struct Ca {
    pub name: String,
    pub pem: String,
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A certificate with its private key (PKCS#8 PEM unless made from another key).
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca { name: name.to_string(), pem: cert.pem(), cert, key }
    }

    /// A server certificate for `names` (IP addresses or DNS names).
    pub fn server(&self, names: &[&str]) -> Leaf {
        self.server_with(names, |_| {})
    }

    /// A server certificate, with `edit` applied to its parameters (e.g. validity dates).
    pub fn server_with(&self, names: &[&str], edit: impl FnOnce(&mut CertificateParams)) -> Leaf {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        params.distinguished_name.push(DnType::CommonName, names.first().cloned().unwrap_or_default());
        edit(&mut params);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Leaf { cert_pem: cert.pem(), key_pem: key.serialize_pem() }
    }

    /// A client certificate named `cn`, with a fresh ECDSA key.
    pub fn client(&self, cn: &str) -> Leaf {
        let key = KeyPair::generate().unwrap();
        self.client_with_key(cn, &key, key.serialize_pem())
    }

    /// A client certificate for `key`; `key_pem` is what the leaf hands out as its key (the
    /// same key in another encoding: PKCS#1, SEC1).
    pub fn client_with_key(&self, cn: &str, key: &KeyPair, key_pem: String) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(key, &self.cert, &self.key).unwrap();
        Leaf { cert_pem: cert.pem(), key_pem }
    }
}

/// One request as the HTTPS server received it.
#[derive(Clone, Debug)]
pub struct TlsRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The client certificate (DER), if one was presented.
    pub client_cert: Option<Vec<u8>>,
}

impl TlsRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

struct Inner {
    conns: Conns,
    requests: Mutex<Vec<TlsRequest>>,
    changed: Condvar,
    handshakes: AtomicU64,
    failed_handshakes: AtomicU64,
    status: u16,
}

/// A loopback HTTPS server answering `status` to every request.
pub struct TlsServer {
    addr: SocketAddr,
    inner: Arc<Inner>,
    acceptor: Option<JoinHandle<()>>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsServer {
    /// Serves with `leaf`; with `client_ca`, requires a client certificate it issued.
    pub fn start(leaf: &Leaf, client_ca: Option<&Ca>) -> TlsServer {
        TlsServer::start_with_status(leaf, client_ca, 200)
    }

    pub fn start_with_status(leaf: &Leaf, client_ca: Option<&Ca>, status: u16) -> TlsServer {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes()).map(|c| c.unwrap()).collect();
        let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in CertificateDer::pem_slice_iter(ca.pem.as_bytes()) {
                    roots.add(c.unwrap()).unwrap();
                }
                let verifier =
                    rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                        .build()
                        .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = Arc::new(builder.with_single_cert(chain, key).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(Inner {
            conns: Conns::default(),
            requests: Mutex::new(Vec::new()),
            changed: Condvar::new(),
            handshakes: AtomicU64::new(0),
            failed_handshakes: AtomicU64::new(0),
            status,
        });
        let acceptor = super::conns::accept(&inner, listener, "tls", move |stream, inner| {
            serve(stream, config.clone(), inner)
        });
        TlsServer { addr, inner, acceptor: Some(acceptor) }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `https://127.0.0.1:PORT/ingest`
    pub fn url(&self) -> String {
        self.url_for("127.0.0.1")
    }

    /// `https://HOST:PORT/ingest`
    pub fn url_for(&self, host: &str) -> String {
        format!("https://{host}:{}/ingest", self.addr.port())
    }

    pub fn requests(&self) -> Vec<TlsRequest> {
        self.inner.requests.lock().unwrap().clone()
    }

    /// Completed handshakes.
    pub fn handshakes(&self) -> u64 {
        self.inner.handshakes.load(Ordering::SeqCst)
    }

    /// Handshakes that failed (bad or missing client certificate, client gave up, …).
    pub fn failed_handshakes(&self) -> u64 {
        self.inner.failed_handshakes.load(Ordering::SeqCst)
    }

    /// Waits until `n` requests arrived; false on timeout.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut reqs = self.inner.requests.lock().unwrap();
        while reqs.len() < n {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            reqs = self.inner.changed.wait_timeout(reqs, deadline - now).unwrap().0;
        }
        true
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.inner.conns.shut_down(self.addr, self.acceptor.take());
    }
}

fn serve(tcp: TcpStream, config: Arc<rustls::ServerConfig>, inner: &Inner) {
    let Ok(conn) = rustls::ServerConnection::new(config) else { return };
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        if tls.conn.complete_io(&mut tls.sock).is_err() {
            inner.failed_handshakes.fetch_add(1, Ordering::SeqCst);
            inner.changed.notify_all();
            return;
        }
    }
    inner.handshakes.fetch_add(1, Ordering::SeqCst);
    let client_cert = tls.conn.peer_certificates().and_then(|c| c.first()).map(|c| c.as_ref().to_vec());
    let mut reader = BufReader::new(tls);
    while !inner.conns.stopping() {
        let Ok(Some((method, path, headers, body))) = read_request(&mut reader) else { return };
        inner.requests.lock().unwrap().push(TlsRequest {
            method,
            path,
            headers,
            body,
            client_cert: client_cert.clone(),
        });
        inner.changed.notify_all();
        let answer = format!("HTTP/1.1 {} X\r\nContent-Length: 0\r\n\r\n", inner.status);
        let w = reader.get_mut();
        if w.write_all(answer.as_bytes()).and_then(|()| w.flush()).is_err() {
            return;
        }
    }
}

type Head = (String, String, Vec<(String, String)>, Vec<u8>);

/// Reads one HTTP/1.1 request; `None` at a clean end (the sink's parser).
pub fn read_request(r: &mut impl BufRead) -> io::Result<Option<Head>> {
    Ok(super::sink::read_request(r, 0)?.map(|req| (req.method, req.path, req.headers, req.body)))
}

/// A file in a fresh temporary directory, removed (with the directory) when dropped.
pub struct TempFile {
    pub path: std::path::PathBuf,
}

impl TempFile {
    pub fn new(name: &str, contents: &[u8]) -> TempFile {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "posthaste-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::File::create(&path).unwrap().write_all(contents).unwrap();
        TempFile { path }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Reads a test key fixture from `tests/support/keys/`.
pub fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/keys").join(name);
    let mut s = String::new();
    std::fs::File::open(path).unwrap().read_to_string(&mut s).unwrap();
    s
}

impl super::conns::Server for Inner {
    fn conns(&self) -> &Conns {
        &self.conns
    }
}
