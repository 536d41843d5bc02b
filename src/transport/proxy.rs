//! Proxies: the public [`Proxy`] type, parsing proxy URLs, reading the standard environment
//! variables, `NO_PROXY` matching, and choosing the route to the one endpoint.
//!
//! Pure apart from reading the environment (done once, in `start()`, through a lookup function
//! so tests inject their own). Nothing here opens a connection; nothing of ureq is public.

use std::fmt;
use std::net::IpAddr;

use crate::error::Error;

/// A proxy server: `http://`, `https://`, `socks5://` or `socks5h://`, with optional
/// `user:password@` credentials (percent-decoded).
///
/// Usually given as a URL to [`Builder::proxy`](crate::Builder::proxy); parse one yourself to
/// check it early or to inspect it. `Debug` and `Display` never show the password, nor a user
/// name given without one (`http://token@proxy` shows as `http://***@proxy:80`: it may be a
/// token), the same way posthaste's errors show URLs.
///
/// | scheme | how it is used | default port |
/// |---|---|---|
/// | `http://` | plain TCP to the proxy; `CONNECT` tunnel for `https://` endpoints, absolute-form requests for `http://` ones | 80 |
/// | `https://` | the same over TLS to the proxy (verified like the endpoint) | 443 |
/// | `socks5://` | SOCKS5; the endpoint's name is resolved locally | 1080 |
/// | `socks5h://` | SOCKS5; the proxy resolves the endpoint's name | 1080 |
///
/// A URL without a scheme (`proxy.corp:3128`) is taken as `http://`.
///
/// ```
/// let proxy = posthaste::Proxy::parse("http://alice:s%40cret@proxy.corp:3128")?;
/// assert_eq!(proxy.host(), "proxy.corp");
/// assert_eq!(proxy.port(), 3128);
/// assert_eq!(proxy.username(), Some("alice"));
/// assert_eq!(proxy.to_string(), "http://alice:***@proxy.corp:3128");
/// # Ok::<(), posthaste::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    pub(crate) scheme: Scheme,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
}

/// The proxy protocols posthaste speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scheme {
    Http,
    Https,
    Socks5,
    Socks5h,
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Socks5 => "socks5",
            Scheme::Socks5h => "socks5h",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
            Scheme::Socks5 | Scheme::Socks5h => 1080,
        }
    }

    pub(crate) fn is_socks(self) -> bool {
        matches!(self, Scheme::Socks5 | Scheme::Socks5h)
    }
}

impl Proxy {
    /// Parses a proxy URL. `user` and `password` are percent-decoded (`%40` for `@`, `%3A`
    /// for `:`).
    ///
    /// # Errors
    /// [`Error::InvalidProxy`] (from `"Proxy::parse"`) with the password redacted: an
    /// unsupported scheme, no host, a bad port, a path, or bad percent-encoding.
    pub fn parse(url: &str) -> Result<Proxy, Error> {
        Proxy::parse_from(url, "Proxy::parse")
    }

    /// Parses `url`, naming `source` (an option or an environment variable) in errors.
    pub(crate) fn parse_from(url: &str, source: &str) -> Result<Proxy, Error> {
        parse(url).map_err(|reason| Error::InvalidProxy {
            source: source.to_string(),
            url: crate::util::redact_url(url),
            reason,
        })
    }

    /// The scheme: `"http"`, `"https"`, `"socks5"` or `"socks5h"`.
    pub fn scheme(&self) -> &str {
        self.scheme.name()
    }

    /// The proxy's host name or IP address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port (the scheme's default when the URL has none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user name, percent-decoded, if the URL has credentials.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// `host:port`, IPv6 in brackets: how messages name the proxy.
    pub(crate) fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// `Proxy-Authorization` value for HTTP proxies with credentials.
    pub(crate) fn basic_auth(&self) -> Option<String> {
        if self.username.is_none() && self.password.is_none() {
            return None;
        }
        let raw =
            format!("{}:{}", self.username.as_deref().unwrap_or(""), self.password.as_deref().unwrap_or(""));
        Some(format!("Basic {}", crate::util::base64(raw.as_bytes())))
    }

    /// The equivalent ureq proxy (no `NO_PROXY`: the route is chosen by posthaste).
    pub(crate) fn to_ureq(&self) -> Result<ureq::Proxy, String> {
        use ureq::ProxyProtocol as P;
        let protocol = match self.scheme {
            Scheme::Http => P::Http,
            Scheme::Https => P::Https,
            Scheme::Socks5 => P::Socks5,
            Scheme::Socks5h => P::Socks5h,
        };
        let mut b = ureq::Proxy::builder(protocol).host(&self.host).port(self.port);
        if let Some(u) = &self.username {
            b = b.username(u);
        }
        if let Some(p) = &self.password {
            b = b.password(p);
        }
        // socks5 resolves the endpoint's name here, socks5h at the proxy; HTTP proxies resolve it.
        b = b.resolve_target(self.scheme == Scheme::Socks5);
        b.build().map_err(|e| e.to_string())
    }
}

impl fmt::Display for Proxy {
    /// The URL, credentials percent-encoded, through `redact_url` like every URL posthaste
    /// shows: `user:***@` with a password, `***@` for a user name alone.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let userinfo = match (&self.username, &self.password) {
            (Some(u), Some(p)) => format!("{}:{}@", percent_encode(u), percent_encode(p)),
            (Some(u), None) => format!("{}@", percent_encode(u)),
            (None, Some(p)) => format!(":{}@", percent_encode(p)),
            (None, None) => String::new(),
        };
        let url = format!("{}://{userinfo}{}", self.scheme.name(), self.authority());
        f.write_str(&crate::util::redact_url(&url))
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Proxy").field(&self.to_string()).finish()
    }
}

fn parse(url: &str) -> Result<Proxy, String> {
    let url = url.trim();
    if url.is_empty() {
        return Err("empty".into());
    }
    let (scheme, rest) = match url.find("://") {
        Some(i) => (&url[..i], &url[i + 3..]),
        None => ("http", url),
    };
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        "socks5" => Scheme::Socks5,
        "socks5h" => Scheme::Socks5h,
        // Echoed only when it looks like a scheme: the text before `://` of a malformed URL
        // may be a password (`u:pw@host://`).
        other if crate::util::is_scheme(other) => {
            return Err(format!("scheme {other:?} is not supported (use http, https, socks5 or socks5h)"))
        }
        _ => {
            return Err("the text before \"://\" is not a scheme (use http, https, socks5 or socks5h)".into())
        }
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#']) {
        return Err("a proxy URL has no path, query or fragment".into());
    }
    let (userinfo, hostport) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(info) => {
            let (u, p) = match info.find(':') {
                Some(c) => (&info[..c], Some(&info[c + 1..])),
                None => (info, None),
            };
            let u = percent_decode(u).map_err(|e| format!("user name: {e}"))?;
            let p = p.map(percent_decode).transpose().map_err(|e| format!("password: {e}"))?;
            (Some(u), p)
        }
    };
    let (host, port) = split_host_port(hostport)?;
    if host.is_empty() {
        return Err("no host".into());
    }
    if !host.contains(':') && host.parse::<IpAddr>().is_err() && !valid_host_name(&host) {
        return Err(format!("{host:?} is not a valid host name"));
    }
    let port = match port {
        Some(p) => p,
        None => scheme.default_port(),
    };
    if scheme.is_socks() {
        for (what, v) in [("user name", &username), ("password", &password)] {
            if v.as_ref().is_some_and(|v| v.len() > 255) {
                return Err(format!("SOCKS5 allows a {what} of at most 255 bytes"));
            }
        }
    }
    Ok(Proxy { scheme, host, port, username, password })
}

/// Splits `host[:port]` / `[v6][:port]`.
fn split_host_port(s: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']').ok_or("unclosed '[' in IPv6 address")?;
        let host = &rest[..end];
        host.parse::<std::net::Ipv6Addr>().map_err(|_| format!("{host:?} is not an IPv6 address"))?;
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err("unexpected text after the IPv6 address".into()),
        };
        (host.to_string(), port)
    } else {
        match s.rfind(':') {
            Some(c) => (s[..c].to_string(), Some(&s[c + 1..])),
            None => (s.to_string(), None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(format!("port {p:?} is not a number in 1..=65535")),
            Ok(n) => Some(n),
        },
    };
    Ok((host.to_ascii_lowercase(), port))
}

fn valid_host_name(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
}

/// Decodes `%XX` escapes. Errors never quote the text: it may be a password.
fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or("truncated %-escape")?;
            let hex = std::str::from_utf8(hex).map_err(|_| "bad %-escape")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "bad %-escape (not two hex digits)")?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "not UTF-8 after %-decoding".to_string())
}

/// Encodes every byte but RFC 3986's unreserved and sub-delims characters, for showing a user
/// name or password inside a URL (`:`, `@`, `/`, `%` and spaces included).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What the builder was told about proxies.
#[derive(Clone, Debug, Default)]
pub(crate) enum ProxyChoice {
    /// Read the environment at `start()` (the default).
    #[default]
    Env,
    /// `Builder::no_proxy()`.
    Off,
    /// `Builder::proxy(..)`: the parsed proxy, or the parse error (reported by `start()`).
    Explicit(Result<Proxy, ParseFailure>),
}

/// A proxy URL that did not parse, kept until `start()` reports it.
#[derive(Clone, Debug)]
pub(crate) struct ParseFailure {
    /// Already through `redact_url`.
    pub(crate) url: String,
    pub(crate) reason: String,
}

/// Turns a value into a proxy for [`Builder::proxy`](crate::Builder::proxy): a URL (`&str`,
/// `String`) or a parsed [`Proxy`]. A URL that does not parse is reported by
/// [`Builder::start`](crate::Builder::start). Sealed: implemented by posthaste only.
pub trait IntoProxy: sealed::Sealed {}

mod sealed {
    // A supertrait of a public trait must itself be public; this module keeps it unnameable.
    #[allow(unreachable_pub)]
    pub trait Sealed {
        /// The proxy, or `(redacted URL, reason)`.
        fn into_proxy(self) -> Result<super::Proxy, (String, String)>;
    }
}

fn parse_redacted(url: &str) -> Result<Proxy, (String, String)> {
    parse(url).map_err(|reason| (crate::util::redact_url(url), reason))
}

impl IntoProxy for &str {}
impl sealed::Sealed for &str {
    fn into_proxy(self) -> Result<Proxy, (String, String)> {
        parse_redacted(self)
    }
}
impl IntoProxy for String {}
impl sealed::Sealed for String {
    fn into_proxy(self) -> Result<Proxy, (String, String)> {
        parse_redacted(&self)
    }
}
impl IntoProxy for &String {}
impl sealed::Sealed for &String {
    fn into_proxy(self) -> Result<Proxy, (String, String)> {
        parse_redacted(self)
    }
}
impl IntoProxy for Proxy {}
impl sealed::Sealed for Proxy {
    fn into_proxy(self) -> Result<Proxy, (String, String)> {
        Ok(self)
    }
}

pub(crate) fn into_choice(p: impl IntoProxy) -> ProxyChoice {
    ProxyChoice::Explicit(sealed::Sealed::into_proxy(p).map_err(|(url, reason)| ParseFailure { url, reason }))
}

/// The route chosen at `start()` for the endpoint.
#[derive(Clone, Debug)]
pub(crate) struct Route {
    pub(crate) proxy: Option<Proxy>,
    /// Why: `"Builder::proxy"`, `"HTTPS_PROXY"`, `"NO_PROXY entry \".corp\""`, …
    pub(crate) why: String,
}

impl Route {
    /// Plain text for diagnostics.
    pub(crate) fn describe(&self) -> String {
        match &self.proxy {
            Some(p) => format!("via proxy {p} (from {})", self.why),
            None => format!("direct ({})", self.why),
        }
    }
}

/// Chooses the route to `host:port` of a `scheme` ("http"/"https") endpoint.
///
/// Precedence: `Builder::no_proxy()` → direct; `Builder::proxy(..)` → that proxy (the
/// environment is not read); otherwise the environment: for https endpoints `https_proxy`,
/// `HTTPS_PROXY`, then `all_proxy`, `ALL_PROXY`; for http endpoints `http_proxy`, `HTTP_PROXY`
/// (ignored when `REQUEST_METHOD` is set, as in CGI, where it can come from a request header),
/// then `all_proxy`, `ALL_PROXY`. The first non-empty one wins; `no_proxy`/`NO_PROXY` can then
/// exclude the endpoint.
pub(crate) fn choose(
    choice: &ProxyChoice,
    scheme: &str,
    host: &str,
    port: u16,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Route, Error> {
    match choice {
        ProxyChoice::Off => return Ok(Route { proxy: None, why: "Builder::no_proxy".into() }),
        ProxyChoice::Explicit(Ok(p)) => {
            return Ok(Route { proxy: Some(p.clone()), why: "Builder::proxy".into() })
        }
        ProxyChoice::Explicit(Err(f)) => {
            return Err(Error::InvalidProxy {
                source: "Builder::proxy".into(),
                url: f.url.clone(),
                reason: f.reason.clone(),
            })
        }
        ProxyChoice::Env => {}
    }
    let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let cgi = get("REQUEST_METHOD").is_some();
    let names: &[&str] = if scheme == "https" {
        &["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]
    } else if cgi {
        &["http_proxy", "all_proxy", "ALL_PROXY"]
    } else {
        &["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
    };
    let Some((name, value)) = names.iter().find_map(|n| get(n).map(|v| (*n, v))) else {
        return Ok(Route { proxy: None, why: "no proxy variable set".into() });
    };
    let proxy = Proxy::parse_from(&value, name)?;
    for var in ["no_proxy", "NO_PROXY"] {
        if let Some(list) = get(var) {
            if let Some(entry) = no_proxy_match(&list, host, port) {
                return Ok(Route { proxy: None, why: format!("{var} entry {entry:?} matches {host}") });
            }
            // The lowercase one, when set, is the list in force (like curl).
            break;
        }
    }
    Ok(Route { proxy: Some(proxy), why: name.to_string() })
}

/// The `NO_PROXY` entry that matches `host` (a name or an IP, IPv6 without brackets) and
/// `port`, if any.
///
/// Rules: a comma-separated list, entries trimmed, empty ones skipped, case-insensitive.
/// `*` matches everything. An IP address matches that address; `addr/len` (CIDR) the addresses
/// in that network; these never match a host *name* (no DNS lookup is made). A domain, with or
/// without a leading `.` or `*.`, matches itself and its subdomains. An entry may end with
/// `:port` to match only that port.
pub(crate) fn no_proxy_match(list: &str, host: &str, port: u16) -> Option<String> {
    let host = host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase();
    let host_ip: Option<IpAddr> = host.parse().ok();
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .find(|entry| entry_matches(entry, &host, host_ip, port))
        .map(str::to_string)
}

fn entry_matches(entry: &str, host: &str, host_ip: Option<IpAddr>, port: u16) -> bool {
    if entry == "*" {
        return true;
    }
    let entry = entry.to_ascii_lowercase();
    // CIDR.
    if let Some((net, len)) = entry.split_once('/') {
        let net = net.trim_start_matches('[').trim_end_matches(']');
        return match (net.parse::<IpAddr>(), len.parse::<u8>(), host_ip) {
            (Ok(net), Ok(len), Some(ip)) => in_network(ip, net, len),
            _ => false,
        };
    }
    // Split an optional port: `[v6]:port`, `v4:port`, `name:port`; a bare IPv6 has no port.
    let (name, want_port) = if let Some(rest) = entry.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, after)) => {
                (ip.to_string(), after.strip_prefix(':').and_then(|p| p.parse::<u16>().ok()))
            }
            None => return false,
        }
    } else if entry.parse::<IpAddr>().is_ok() {
        (entry.clone(), None)
    } else {
        match entry.rsplit_once(':') {
            Some((n, p)) if p.parse::<u16>().is_ok() => (n.to_string(), p.parse::<u16>().ok()),
            _ => (entry.clone(), None),
        }
    };
    if want_port.is_some_and(|p| p != port) {
        return false;
    }
    if let Ok(ip) = name.parse::<IpAddr>() {
        return host_ip == Some(ip);
    }
    if host_ip.is_some() {
        return false;
    }
    let domain = name.trim_start_matches("*.").trim_start_matches('.').trim_end_matches('.');
    !domain.is_empty()
        && (host == domain || host.strip_suffix(domain).is_some_and(|head| head.ends_with('.')))
}

fn in_network(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) if len <= 32 => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) if len <= 128 => {
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
            u128::from(ip) & mask == u128::from(net) & mask
        }
        // An IPv4-mapped IPv6 endpoint against an IPv4 network.
        (IpAddr::V6(ip), IpAddr::V4(_)) => {
            ip.to_ipv4_mapped().is_some_and(|v4| in_network(IpAddr::V4(v4), net, len))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_schemes_credentials_and_ports() {
        let p = Proxy::parse("http://u%3Ax:p%40ss%2Bw@Proxy.Corp:3128/").unwrap();
        assert_eq!((p.scheme(), p.host(), p.port()), ("http", "proxy.corp", 3128));
        assert_eq!(p.username(), Some("u:x"));
        assert_eq!(p.password.as_deref(), Some("p@ss+w"));
        assert_eq!(format!("{p}"), "http://u%3Ax:***@proxy.corp:3128");
        assert!(!format!("{p:?}").contains("p@ss"));
        assert_eq!(Proxy::parse("proxy:8080").unwrap().scheme(), "http");
        assert_eq!(Proxy::parse("https://p").unwrap().port(), 443);
        assert_eq!(Proxy::parse("http://p").unwrap().port(), 80);
        assert_eq!(Proxy::parse("socks5://p").unwrap().port(), 1080);
        assert_eq!(Proxy::parse("SOCKS5H://p:1").unwrap().scheme(), "socks5h");
        let v6 = Proxy::parse("http://[::1]:3128").unwrap();
        assert_eq!((v6.host(), v6.authority()), ("::1", "[::1]:3128".to_string()));
        assert_eq!(Proxy::parse("http://tok@p:1").unwrap().username(), Some("tok"));
    }

    #[test]
    fn display_goes_through_the_redaction_rule() {
        let shown = |url: &str| Proxy::parse(url).unwrap().to_string();
        assert_eq!(shown("http://tok@p:1"), "http://***@p:1");
        assert_eq!(shown("socks5://:pw@p"), "socks5://:***@p:1080");
        assert_eq!(shown("https://a%40b:p%40ss%2Fx@[::1]:8443"), "https://a%40b:***@[::1]:8443");
        assert_eq!(shown("u:pw@p:3"), "http://u:***@p:3");
        assert_eq!(shown("u:pw with spaces@p:3"), "http://u:***@p:3");
        assert_eq!(shown("p:3"), "http://p:3");
        let p = Proxy::parse("http://us%20er:hunter2@p:1").unwrap();
        assert!(!format!("{p} {p:?}").contains("hunter2"), "{p:?}");
    }

    #[test]
    fn rejects_bad_urls_without_leaking_the_password() {
        for bad in [
            "",
            "ftp://p:1",
            "http://",
            "http://p:0",
            "http://p:99999",
            "http://p:x",
            "http://p/path",
            "http://u:%zz@p",
            "http://[::1",
            "http://bad host:1",
            "socks4://p",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let e = Proxy::parse_from("htp://user:hunter2@p:1", "HTTPS_PROXY").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("HTTPS_PROXY") && text.contains("user:***") && !text.contains("hunter2"),
            "{text}"
        );
        // Reasons never quote what may be a password: the text before `://`, bad escapes.
        for (bad, secret) in [
            ("u:hunter2@p://x", "hunter2"),
            ("user:hunter2@p:1://", "hunter2"),
            ("http://u:ab%zzcd@p", "zz"),
            ("http://u:%4@p", "%4"),
            ("htp:/user:hunter2@", "hunter2"),
            ("http://u:hunter2@p:x", "hunter2"),
        ] {
            let e = Proxy::parse_from(bad, "Builder::proxy").unwrap_err();
            let text = format!("{e} {e:?}");
            assert!(!text.contains(secret), "{bad}: {text}");
        }
        assert!(parse("gopher://p").unwrap_err().contains("\"gopher\""));
    }

    #[test]
    fn no_proxy_rules() {
        let m = |list: &str, host: &str| no_proxy_match(list, host, 443).is_some();
        assert!(m("example.com", "example.com"));
        assert!(m("example.com", "api.example.com"));
        assert!(m(".example.com", "api.example.com"));
        assert!(m(".example.com", "example.com"));
        assert!(m("*.example.com", "a.b.example.com"));
        assert!(!m("example.com", "badexample.com"));
        assert!(!m("api.example.com", "example.com"));
        assert!(m("a.com , b.com", "x.b.com"), "entries are trimmed");
        assert!(m(" ,, B.COM ", "b.com"), "empty entries skipped, case-insensitive");
        assert!(m("*", "anything"));
        assert!(m("10.1.2.3", "10.1.2.3"));
        assert!(!m("10.1.2.3", "10.1.2.4"));
        assert!(m("10.0.0.0/8", "10.200.0.1"));
        assert!(!m("10.0.0.0/8", "11.0.0.1"));
        assert!(m("127.0.0.0/8", "127.0.0.1"));
        assert!(!m("10.0.0.0/8", "ten.example"), "no DNS for CIDR");
        assert!(m("::1", "::1"));
        assert!(m("[::1]", "[::1]"));
        assert!(m("fd00::/8", "fd12::1"));
        assert!(!m("fd00::/8", "fe80::1"));
        assert!(m("example.com.", "example.com."), "trailing dots ignored");
        assert!(no_proxy_match("example.com:8080", "example.com", 8080).is_some());
        assert!(no_proxy_match("example.com:8080", "example.com", 443).is_none());
        assert!(no_proxy_match("127.0.0.1:80", "127.0.0.1", 80).is_some());
        assert!(no_proxy_match("[::1]:80", "::1", 81).is_none());
        assert!(!m("", "example.com"));
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn env_precedence_by_scheme() {
        let vars =
            [("HTTPS_PROXY", "http://s:1"), ("HTTP_PROXY", "http://h:1"), ("ALL_PROXY", "socks5h://a:1")];
        let e = env(&vars);
        let r = choose(&ProxyChoice::Env, "https", "x", 443, &e).unwrap();
        assert_eq!((r.proxy.unwrap().host(), r.why.as_str()), ("s", "HTTPS_PROXY"));
        let r = choose(&ProxyChoice::Env, "http", "x", 80, &e).unwrap();
        assert_eq!(r.proxy.unwrap().host(), "h");
        let only_all = [("ALL_PROXY", "socks5h://a:1"), ("https_proxy", " ")];
        let r = choose(&ProxyChoice::Env, "https", "x", 443, &env(&only_all)).unwrap();
        assert_eq!(r.proxy.unwrap().scheme(), "socks5h");
        let lower_wins = [("https_proxy", "http://lower:1"), ("HTTPS_PROXY", "http://upper:1")];
        let r = choose(&ProxyChoice::Env, "https", "x", 443, &env(&lower_wins)).unwrap();
        assert_eq!(r.proxy.unwrap().host(), "lower");
        let cgi = [("HTTP_PROXY", "http://evil:1"), ("REQUEST_METHOD", "GET")];
        assert!(choose(&ProxyChoice::Env, "http", "x", 80, &env(&cgi)).unwrap().proxy.is_none());
        assert!(choose(&ProxyChoice::Env, "https", "x", 443, &env(&[])).unwrap().proxy.is_none());
    }

    #[test]
    fn no_proxy_and_explicit_choices() {
        let vars = [("HTTPS_PROXY", "http://s:1"), ("NO_PROXY", "internal, .corp")];
        let r = choose(&ProxyChoice::Env, "https", "api.corp", 443, &env(&vars)).unwrap();
        assert!(r.proxy.is_none());
        assert!(r.why.contains("\".corp\""), "{}", r.why);
        assert!(choose(&ProxyChoice::Env, "https", "example.com", 443, &env(&vars)).unwrap().proxy.is_some());
        // Lowercase no_proxy is the list in force when set.
        let both = [("HTTPS_PROXY", "http://s:1"), ("no_proxy", "other"), ("NO_PROXY", "*")];
        assert!(choose(&ProxyChoice::Env, "https", "x", 443, &env(&both)).unwrap().proxy.is_some());
        // Explicit and off ignore the environment.
        let explicit = into_choice("http://e:2");
        assert_eq!(
            choose(&explicit, "https", "api.corp", 443, &env(&vars)).unwrap().proxy.unwrap().host(),
            "e"
        );
        assert!(choose(&ProxyChoice::Off, "https", "x", 443, &env(&vars)).unwrap().proxy.is_none());
        // Errors name their source.
        let bad = [("HTTPS_PROXY", "gopher://u:pw@p")];
        let e = choose(&ProxyChoice::Env, "https", "x", 443, &env(&bad)).unwrap_err().to_string();
        assert!(e.contains("HTTPS_PROXY") && !e.contains("pw@"), "{e}");
        let e =
            choose(&into_choice("http://u:pw@p:x"), "https", "x", 443, &env(&[])).unwrap_err().to_string();
        assert!(e.contains("Builder::proxy") && !e.contains(":pw"), "{e}");
    }
}
