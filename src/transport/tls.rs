//! Trust and client certificates: loading root certificates (bundled Mozilla set, the OS store,
//! the user's PEM files or bytes), client certificate chains and keys for mTLS, and the rustls
//! configuration the probe uses.
//!
//! Everything here runs once, in `start()`; every problem with the user's files is an
//! [`Error::Certificate`] naming the file. OS-store problems are warnings, not errors.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, TrustAnchor, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::Error;

/// PEM data given by the user: a file (read in `start()`) or bytes.
#[derive(Clone)]
pub(crate) enum PemSource {
    File(PathBuf),
    Bytes(Vec<u8>),
}

impl PemSource {
    /// How errors and diagnostics name it.
    pub(crate) fn origin(&self) -> String {
        match self {
            PemSource::File(p) => p.display().to_string(),
            PemSource::Bytes(_) => "<PEM bytes>".to_string(),
        }
    }

    fn read(&self) -> Result<Vec<u8>, Error> {
        match self {
            PemSource::File(p) => std::fs::read(p).map_err(|e| Error::Certificate {
                origin: self.origin(),
                reason: format!("cannot be read: {e}"),
            }),
            PemSource::Bytes(b) => Ok(b.clone()),
        }
    }
}

impl fmt::Debug for PemSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Bytes may be a private key: never print them.
        f.write_str(&self.origin())
    }
}

/// The TLS options set on the builder.
#[derive(Clone, Debug, Default)]
pub(crate) struct TlsOptions {
    pub(crate) custom_roots: Vec<PemSource>,
    pub(crate) only_custom_roots: bool,
    /// `(certificate chain, private key)`.
    pub(crate) client_cert: Option<(PemSource, PemSource)>,
    pub(crate) accept_invalid_certs: bool,
}

/// One trusted root with where it came from, for diagnostics.
pub(crate) struct Root {
    pub(crate) der: CertificateDer<'static>,
    anchor: TrustAnchor<'static>,
    /// `"CN=Corp Root CA (from /etc/corp-ca.pem)"`.
    pub(crate) label: String,
}

/// The loaded trust and client identity, ready for ureq and for the probe.
pub(crate) struct Trust {
    pub(crate) roots: Vec<Root>,
    pub(crate) client: Option<ClientIdentity>,
    pub(crate) accept_invalid_certs: bool,
    /// Non-fatal problems (OS store), shown by the probe and in the shutdown report.
    pub(crate) warnings: Vec<String>,
    /// One line: where the roots came from.
    pub(crate) summary: String,
}

pub(crate) struct ClientIdentity {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
    pub(crate) origin: String,
}

impl Clone for ClientIdentity {
    fn clone(&self) -> ClientIdentity {
        ClientIdentity { chain: self.chain.clone(), key: self.key.clone_key(), origin: self.origin.clone() }
    }
}

/// Loads the user's certificates always (so bad files fail `start()` even for an `http://`
/// endpoint), and the bundled and OS roots only when `need_roots` (some hop uses TLS).
pub(crate) fn load(opts: &TlsOptions, need_roots: bool) -> Result<Trust, Error> {
    let mut roots = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut warnings = Vec::new();
    let mut add = |der: CertificateDer<'static>, origin: &str, roots: &mut Vec<Root>| -> Result<(), String> {
        let anchor = webpki::anchor_from_trusted_cert(&der).map_err(|e| format!("{e:?}"))?.to_owned();
        if seen.insert(der.as_ref().to_vec()) {
            let label = format!("{} (from {origin})", name_of(anchor.subject.as_ref()));
            roots.push(Root { der, anchor, label });
        }
        Ok(())
    };
    let mut custom = 0;
    for source in &opts.custom_roots {
        let bytes = source.read()?;
        let bad = |reason: String| Error::Certificate { origin: source.origin(), reason };
        let mut n = 0;
        for (i, item) in CertificateDer::pem_slice_iter(&bytes).enumerate() {
            let der = item.map_err(|e| bad(format!("certificate #{} is not valid PEM: {e}", i + 1)))?;
            add(der, &source.origin(), &mut roots)
                .map_err(|e| bad(format!("certificate #{} is malformed: {e}", i + 1)))?;
            n += 1;
        }
        if n == 0 {
            return Err(bad("no certificate found (expected \"-----BEGIN CERTIFICATE-----\")".into()));
        }
        custom += n;
    }
    if opts.only_custom_roots && custom == 0 {
        return Err(Error::Certificate {
            origin: "Builder::only_custom_roots".into(),
            reason: "no root certificate was added (add_root_certs_pem_file / add_root_certs_pem)".into(),
        });
    }
    let mut summary = vec![format!("{custom} custom")];
    if need_roots && !opts.only_custom_roots {
        let native = rustls_native_certs::load_native_certs();
        let origin = match (std::env::var_os("SSL_CERT_FILE"), std::env::var_os("SSL_CERT_DIR")) {
            (Some(f), _) => format!("SSL_CERT_FILE={}", PathBuf::from(f).display()),
            (None, Some(d)) => format!("SSL_CERT_DIR={}", PathBuf::from(d).display()),
            (None, None) => "the OS store".to_string(),
        };
        for e in &native.errors {
            warnings.push(format!("loading root certificates from {origin}: {e}"));
        }
        let (mut ok, mut skipped) = (0, 0);
        for der in native.certs {
            match add(der, &origin, &mut roots) {
                Ok(()) => ok += 1,
                Err(_) => skipped += 1,
            }
        }
        if skipped > 0 {
            warnings
                .push(format!("{skipped} certificates from {origin} could not be parsed and were skipped"));
        }
        summary.push(format!("{ok} from {origin}"));
        let bundled = webpki_root_certs::TLS_SERVER_ROOT_CERTS;
        for der in bundled {
            // The bundled set is parsed by its own tests; a failure here would be a bug there.
            let _ = add(der.clone(), "the bundled Mozilla set", &mut roots);
        }
        summary.push(format!("{} bundled Mozilla", bundled.len()));
    }
    let client = match &opts.client_cert {
        None => None,
        Some((chain, key)) => Some(load_identity(chain, key)?),
    };
    if opts.accept_invalid_certs {
        warnings.push(
            "TLS certificate verification is DISABLED (Builder::dangerous().accept_invalid_certs())"
                .to_string(),
        );
    }
    Ok(Trust {
        summary: format!("{} roots trusted ({})", roots.len(), summary.join(", ")),
        roots,
        client,
        accept_invalid_certs: opts.accept_invalid_certs,
        warnings,
    })
}

fn load_identity(chain_src: &PemSource, key_src: &PemSource) -> Result<ClientIdentity, Error> {
    let bytes = chain_src.read()?;
    let bad = |src: &PemSource, reason: String| Error::Certificate { origin: src.origin(), reason };
    let mut chain = Vec::new();
    for (i, item) in CertificateDer::pem_slice_iter(&bytes).enumerate() {
        let der =
            item.map_err(|e| bad(chain_src, format!("certificate #{} is not valid PEM: {e}", i + 1)))?;
        webpki::EndEntityCert::try_from(&der)
            .map_err(|e| bad(chain_src, format!("certificate #{} is malformed: {e:?}", i + 1)))?;
        chain.push(der);
    }
    if chain.is_empty() {
        return Err(bad(chain_src, "no certificate found (expected \"-----BEGIN CERTIFICATE-----\")".into()));
    }
    let key_bytes = key_src.read()?;
    let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| {
        bad(
            key_src,
            format!("no usable private key (PKCS#8, PKCS#1 or SEC1 PEM expected): {}", key_error(&e)),
        )
    })?;
    let provider = rustls::crypto::ring::default_provider();
    rustls::sign::CertifiedKey::from_der(chain.clone(), key.clone_key(), &provider)
        .map_err(|e| bad(key_src, format!("unusable with {}: {e}", chain_src.origin())))?;
    Ok(ClientIdentity {
        chain,
        key,
        origin: format!("certificate {} with key {}", chain_src.origin(), key_src.origin()),
    })
}

/// A PEM error without echoing key material.
fn key_error(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error as E;
    match e {
        E::NoItemsFound => "no private key found".into(),
        E::MissingSectionEnd { .. } => "a PEM section is not closed".into(),
        E::IllegalSectionStart { .. } => "a PEM section starts badly".into(),
        E::Base64Decode(_) => "invalid base64".into(),
        E::Io(e) => e.to_string(),
        _ => "malformed PEM".into(),
    }
}

impl Trust {
    /// ureq's TLS configuration for these roots and identity.
    pub(crate) fn ureq_config(&self) -> ureq::tls::TlsConfig {
        use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};
        let roots: Vec<Certificate<'static>> =
            self.roots.iter().map(|r| Certificate::from_der(r.der.as_ref()).to_owned()).collect();
        let client = self.client.as_ref().and_then(|id| {
            let chain: Vec<Certificate<'static>> =
                id.chain.iter().map(|c| Certificate::from_der(c.as_ref()).to_owned()).collect();
            // ureq names the key's kind with a type it does not export; PEM carries the kind.
            let label = match &id.key {
                PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
                PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
                _ => "PRIVATE KEY",
            };
            let pem = format!(
                "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
                crate::util::base64(id.key.secret_der())
            );
            // The key was parsed and matched to the certificate in `load`; this cannot fail.
            let key = PrivateKey::from_pem(pem.as_bytes()).ok()?;
            Some(ClientCert::new_with_certs(&chain, key))
        });
        TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(RootCerts::Specific(Arc::new(roots)))
            .client_cert(client)
            .disable_verification(self.accept_invalid_certs)
            .build()
    }

    /// A rustls configuration equivalent to ureq's, whose verifier also records which root
    /// anchored the server's chain (for the probe).
    pub(crate) fn probe_config(&self) -> Result<(Arc<ClientConfig>, Arc<Recorder>), String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut store = RootCertStore::empty();
        for r in &self.roots {
            store.roots.push(r.anchor.clone());
        }
        let recorder = Arc::new(Recorder::default());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(rustls::ALL_VERSIONS)
            .map_err(|e| e.to_string())?;
        let verifier: Arc<dyn ServerCertVerifier> = if self.accept_invalid_certs {
            Arc::new(AcceptAnything { provider: provider.clone(), recorder: recorder.clone() })
        } else if store.is_empty() {
            return Err("no root certificates loaded".into());
        } else {
            let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                .build()
                .map_err(|e| e.to_string())?;
            let anchors: Vec<(TrustAnchor<'static>, String)> =
                self.roots.iter().map(|r| (r.anchor.clone(), r.label.clone())).collect();
            Arc::new(Recording { inner, anchors, recorder: recorder.clone() })
        };
        let builder = builder.dangerous().with_custom_certificate_verifier(verifier);
        let config = match &self.client {
            Some(id) => builder
                .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
                .map_err(|e| e.to_string())?,
            None => builder.with_no_client_auth(),
        };
        Ok((Arc::new(config), recorder))
    }
}

/// What the probe's verifier saw in the last handshake.
#[derive(Default)]
pub(crate) struct Recorder {
    pub(crate) seen: Mutex<Option<Seen>>,
}

#[derive(Clone, Debug)]
pub(crate) struct Seen {
    /// The server certificate's subject, e.g. `CN=collector.example`.
    pub(crate) subject: String,
    /// The root that anchored the chain (label), or why none did.
    pub(crate) anchor: Option<String>,
}

/// Verifies exactly like rustls' WebPKI verifier, then records the anchoring root.
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    anchors: Vec<(TrustAnchor<'static>, String)>,
    recorder: Arc<Recorder>,
}

impl fmt::Debug for Recording {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Recording")
    }
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let subject = webpki::EndEntityCert::try_from(end_entity)
            .ok()
            .map(|_| subject_of(end_entity.as_ref()))
            .unwrap_or_else(|| "(unparsable certificate)".into());
        let verdict =
            self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        let anchor = verdict.as_ref().ok().and_then(|_| self.anchor_of(end_entity, intermediates, now));
        *self.recorder.seen.lock() = Some(Seen { subject, anchor });
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

impl Recording {
    fn anchor_of(
        &self,
        ee: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Option<String> {
        let cert = webpki::EndEntityCert::try_from(ee).ok()?;
        let anchors: Vec<TrustAnchor<'_>> = self.anchors.iter().map(|(a, _)| a.clone()).collect();
        let path = cert
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &anchors,
                intermediates,
                now,
                webpki::KeyUsage::server_auth(),
                None,
                None,
            )
            .ok()?;
        let spki = path.anchor().subject_public_key_info.as_ref();
        self.anchors.iter().find(|(a, _)| a.subject_public_key_info.as_ref() == spki).map(|(_, l)| l.clone())
    }
}

/// `Builder::dangerous().accept_invalid_certs()`: checks handshake signatures, trusts any
/// certificate.
struct AcceptAnything {
    provider: Arc<rustls::crypto::CryptoProvider>,
    recorder: Arc<Recorder>,
}

impl fmt::Debug for AcceptAnything {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AcceptAnything")
    }
}

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let subject = subject_of(end_entity.as_ref());
        *self.recorder.seen.lock() = Some(Seen { subject, anchor: None });
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

// --- Minimal DER reading, for naming certificates in messages. -------------------------------

/// Reads one DER TLV at the start of `b`: `(tag, contents, rest)`.
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let first = *b.get(1)?;
    let (len, head) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *b.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let end = head.checked_add(len)?;
    Some((tag, b.get(head..end)?, b.get(end..)?))
}

/// The subject of a certificate, as `CN=…, O=…`.
pub(crate) fn subject_of(cert: &[u8]) -> String {
    (|| {
        let (_, cert, _) = tlv(cert)?;
        let (_, tbs, _) = tlv(cert)?;
        let mut rest = tbs;
        // [0] version (optional), serial, signature algorithm, issuer, validity, subject.
        let (tag, _, r) = tlv(rest)?;
        rest = if tag == 0xa0 { tlv(r)?.2 } else { r };
        let (_, _, r) = tlv(rest)?; // signature algorithm
        let (_, _, r) = tlv(r)?; // issuer
        let (_, _, r) = tlv(r)?; // validity
        let (_, subject, _) = tlv(r)?;
        Some(name_of(subject))
    })()
    .unwrap_or_else(|| "(unreadable subject)".into())
}

/// Renders a DER Name's contents (the RDN sequence) as `CN=…, O=…`, keeping CN, O and OU.
pub(crate) fn name_of(name: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut rest = name;
    while let Some((_, set, r)) = tlv(rest) {
        rest = r;
        let mut inner = set;
        while let Some((_, atv, r2)) = tlv(inner) {
            inner = r2;
            let Some((_, oid, value)) = tlv(atv) else { continue };
            let label = match oid {
                [0x55, 0x04, 0x03] => "CN",
                [0x55, 0x04, 0x0a] => "O",
                [0x55, 0x04, 0x0b] => "OU",
                _ => continue,
            };
            if let Some((_, text, _)) = tlv(value) {
                parts.push(format!("{label}={}", String::from_utf8_lossy(text)));
            }
        }
    }
    if parts.is_empty() {
        "(unnamed)".into()
    } else {
        parts.join(", ")
    }
}
