//! A minimal TLS endpoint on 127.0.0.1 whose certificate no client trusts: self-signed,
//! generated at test time with rcgen. It only runs handshakes (which a verifying client aborts),
//! for the "TLS unknown CA" row of the fault matrix. Stops its thread when dropped.

#![allow(dead_code)] // Each test binary uses a different part of the support module.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

pub struct UntrustedTls {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    connections: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl UntrustedTls {
    pub fn start() -> UntrustedTls {
        let generated =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .expect("generate a self-signed certificate");
        let cert = CertificateDer::from(generated.cert.der().to_vec());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(generated.key_pair.serialize_der()));
        let config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .expect("server certificate");
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, connections) = (stop.clone(), connections.clone());
            thread::Builder::new()
                .name("tls-fault".into())
                .spawn(move || {
                    for stream in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        let Ok(stream) = stream else { continue };
                        connections.fetch_add(1, Ordering::SeqCst);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                        let Ok(conn) = ServerConnection::new(config.clone()) else { continue };
                        // The client refuses our certificate: the handshake (driven by this
                        // read) ends with its alert or a closed connection.
                        let _ = StreamOwned::new(conn, stream).read(&mut [0u8; 512]);
                    }
                })
                .unwrap()
        };
        UntrustedTls { addr, stop, connections, thread: Some(thread) }
    }

    pub fn url(&self) -> String {
        format!("https://{}/ingest", self.addr)
    }

    /// TCP connections accepted.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for UntrustedTls {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
