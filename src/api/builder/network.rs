//! Network options of [`Builder`]: timeouts, proxies, trusted roots, client certificates
//! (mTLS), and the [`Dangerous`] door.
//!
//! Setters only record; files are read, URLs parsed and the environment consulted in
//! `start()` (see `transport`), so every problem is an error from `start()`.

use std::path::PathBuf;
use std::time::Duration;

use super::Builder;
use crate::transport::proxy::{into_choice, IntoProxy, ProxyChoice};
use crate::transport::tls::PemSource;

impl Builder {
    /// The time allowed to establish a connection (TCP, proxy and TLS handshakes).
    /// Defaults to 5 s.
    pub fn connect_timeout(mut self, d: Duration) -> Builder {
        self.config.transport.connect_timeout = d;
        self
    }

    /// The time a request may go without progress after connecting: every read and write
    /// must complete within it, and each phase as a whole (sending the request, waiting for
    /// the response headers, reading the response body) within it plus 1 s. During shutdown
    /// each is clamped to the time left. Defaults to 15 s.
    pub fn request_timeout(mut self, d: Duration) -> Builder {
        self.config.transport.request_timeout = d;
        self
    }

    /// Sends through this proxy: a URL (`http://`, `https://`, `socks5://`, `socks5h://`,
    /// with optional percent-encoded `user:password@`) or a parsed [`Proxy`](crate::Proxy).
    /// The proxy environment variables are then not read, `NO_PROXY` included. An invalid URL
    /// is reported by `start()` as [`Error::InvalidProxy`](crate::Error::InvalidProxy), the
    /// password redacted.
    ///
    /// `https://` endpoints are reached through a `CONNECT` tunnel (TLS stays end to end).
    /// `http://` endpoints behind an `http://` or `https://` proxy are sent to the proxy in
    /// absolute form (`POST http://host/path`), as browsers do, so proxies that allow
    /// `CONNECT` only to port 443 (stock squid) forward them; SOCKS5 tunnels both. See the
    /// crate docs' "Corporate networks".
    ///
    /// Defaults to the environment: `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` and
    /// `NO_PROXY`, read once by `start()` (see "Corporate networks" in the crate docs for the
    /// precedence).
    ///
    /// ```no_run
    /// let guard = posthaste::builder("https://collector.example/ingest")
    ///     .proxy("http://alice:s3cret@proxy.corp:3128")
    ///     .start()?;
    /// # Ok::<(), posthaste::Error>(())
    /// ```
    pub fn proxy(mut self, proxy: impl IntoProxy) -> Builder {
        self.config.transport.proxy = into_choice(proxy);
        self
    }

    /// Connects directly: no proxy, whatever the environment says. Defaults to reading the
    /// proxy environment variables.
    pub fn no_proxy(mut self) -> Builder {
        self.config.transport.proxy = ProxyChoice::Off;
        self
    }

    /// Trusts the root certificates in a PEM file (every certificate in it, for a bundle), in
    /// addition to the bundled Mozilla roots and the OS store. Read by `start()`: an unreadable
    /// file, one without a certificate, or a malformed certificate is an
    /// [`Error::Certificate`](crate::Error::Certificate) naming the file. May be called
    /// several times. Defaults to no extra roots.
    ///
    /// ```no_run
    /// let guard = posthaste::builder("https://collector.corp/ingest")
    ///     .add_root_certs_pem_file("/etc/corp/root-ca.pem")
    ///     .start()?;
    /// # Ok::<(), posthaste::Error>(())
    /// ```
    pub fn add_root_certs_pem_file(mut self, path: impl Into<PathBuf>) -> Builder {
        self.config.transport.tls.custom_roots.push(PemSource::File(path.into()));
        self
    }

    /// Like [`add_root_certs_pem_file`](Builder::add_root_certs_pem_file), from PEM bytes
    /// (errors name `<PEM bytes>`). Defaults to no extra roots.
    pub fn add_root_certs_pem(mut self, pem: impl Into<Vec<u8>>) -> Builder {
        self.config.transport.tls.custom_roots.push(PemSource::Bytes(pem.into()));
        self
    }

    /// Trusts only the roots added with `add_root_certs_pem_file` / `add_root_certs_pem`:
    /// neither the bundled Mozilla roots nor the OS store. `start()` fails if none were added.
    /// Defaults to off (the union of bundled, OS and added roots).
    pub fn only_custom_roots(mut self) -> Builder {
        self.config.transport.tls.only_custom_roots = true;
        self
    }

    /// Presents a client certificate (mutual TLS): `cert_chain` is a PEM file with the
    /// certificate first and any intermediates after it; `key` a PEM file with its private key
    /// (PKCS#8, PKCS#1/RSA or SEC1/EC). Checked by `start()`: unreadable files, no certificate,
    /// no key, or a key that does not match the certificate are an
    /// [`Error::Certificate`](crate::Error::Certificate) naming the file (never the key).
    /// The certificate is also offered to an `https://` proxy that asks for one.
    /// Defaults to none.
    ///
    /// ```no_run
    /// let guard = posthaste::builder("https://collector.corp/ingest")
    ///     .client_cert_pem_files("/etc/app/client.pem", "/etc/app/client.key")
    ///     .start()?;
    /// # Ok::<(), posthaste::Error>(())
    /// ```
    pub fn client_cert_pem_files(
        mut self,
        cert_chain: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Builder {
        self.config.transport.tls.client_cert =
            Some((PemSource::File(cert_chain.into()), PemSource::File(key.into())));
        self
    }

    /// Like [`client_cert_pem_files`](Builder::client_cert_pem_files), from PEM bytes.
    /// Defaults to none.
    pub fn client_cert_pem(mut self, cert_chain: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Builder {
        self.config.transport.tls.client_cert =
            Some((PemSource::Bytes(cert_chain.into()), PemSource::Bytes(key.into())));
        self
    }

    /// Opens the door to options that weaken security. See [`Dangerous`].
    pub fn dangerous(self) -> Dangerous {
        Dangerous { builder: self }
    }
}

/// Options that weaken security, reached only through [`Builder::dangerous`].
///
/// Each one says what it gives up. They exist for test rigs and emergencies; a corporate CA
/// belongs in [`Builder::add_root_certs_pem_file`] instead.
#[must_use = "a Dangerous does nothing until an option is chosen and `.start()` is called"]
#[derive(Debug)]
pub struct Dangerous {
    builder: Builder,
}

impl Dangerous {
    /// Accepts **any** server certificate: expired, self-signed, issued for another host, or
    /// presented by an attacker in the middle. Traffic is still encrypted, but to whoever
    /// answers; tokens sent with it can be stolen. Applies to the endpoint and to an
    /// `https://` proxy. `Client::probe()` and the shutdown `Report` carry a warning while it
    /// is on. Defaults to off: certificates are always verified.
    ///
    /// ```no_run
    /// let guard = posthaste::builder("https://10.0.0.5:8443/ingest")
    ///     .dangerous()
    ///     .accept_invalid_certs()
    ///     .start()?;
    /// # Ok::<(), posthaste::Error>(())
    /// ```
    pub fn accept_invalid_certs(mut self) -> Builder {
        self.builder.config.transport.tls.accept_invalid_certs = true;
        self.builder
    }
}
