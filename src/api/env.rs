//! [`from_env`]: a [`Builder`] configured from `POSTHASTE_*` environment variables.
//!
//! Every variable is read once, parsed, and turned into the builder call a user would write;
//! a bad value is an [`Error::InvalidOption`] naming the variable, with secrets (the bearer
//! token, header values, proxy passwords) never echoed. Unset and empty variables keep the
//! builder's defaults.

use std::time::Duration;

use crate::api::builder::{builder, Builder};
use crate::error::Error;
use crate::policy::encode::{Batch, Encoding, Gzip};
use crate::state::queue::Overflow;
use crate::util::redact_url;

/// A builder configured from the environment; builder calls made on it afterwards override
/// what the environment said.
///
/// | variable | meaning | example |
/// |---|---|---|
/// | `POSTHASTE_URL` | the endpoint (required) | `https://collector.corp/ingest` |
/// | `POSTHASTE_WORKERS` | [`Builder::workers`] | `4` |
/// | `POSTHASTE_QUEUE_CAPACITY` | [`Builder::queue_capacity`] | `50000` |
/// | `POSTHASTE_QUEUE_BYTES` | [`Builder::queue_bytes`] (bytes, or with `KiB`/`MiB`/`GiB`) | `64MiB` |
/// | `POSTHASTE_OVERFLOW` | [`Builder::overflow`]: `drop_newest`, `drop_oldest`, `block`, `block_for:<duration>` | `block_for:2s` |
/// | `POSTHASTE_BATCH` | [`Builder::batch`]: `on` for [`Batch::new`], `off` | `on` |
/// | `POSTHASTE_BATCH_MAX_EVENTS` | [`Batch::max_events`] (turns batching on) | `1000` |
/// | `POSTHASTE_BATCH_MAX_BYTES` | [`Batch::max_bytes`] (turns batching on) | `512KiB` |
/// | `POSTHASTE_BATCH_LINGER` | [`Batch::linger`] (turns batching on) | `100ms` |
/// | `POSTHASTE_ENCODING` | [`Builder::encoding`]: `json`, `json_array`, `ndjson` | `ndjson` |
/// | `POSTHASTE_GZIP` | [`Builder::gzip`]: `on` (level 1), `off`, or a level `1`–`9` | `on` |
/// | `POSTHASTE_BEARER_TOKEN` | [`Builder::bearer_auth`] (never echoed) | |
/// | `POSTHASTE_HEADERS` | [`Builder::header`], `Name: value` pairs separated by `;` (values never echoed) | `X-Team: core; X-Env: prod` |
/// | `POSTHASTE_PROXY` | [`Builder::proxy`], or `none` for [`Builder::no_proxy`] | `http://user:pw@proxy:3128` |
/// | `POSTHASTE_CA_FILE` | [`Builder::add_root_certs_pem_file`] | `/etc/corp/root-ca.pem` |
/// | `POSTHASTE_CLIENT_CERT`, `POSTHASTE_CLIENT_KEY` | [`Builder::client_cert_pem_files`] (both or neither) | |
/// | `POSTHASTE_CONNECT_TIMEOUT` | [`Builder::connect_timeout`] | `5s` |
/// | `POSTHASTE_REQUEST_TIMEOUT` | [`Builder::request_timeout`] | `15s` |
/// | `POSTHASTE_SHUTDOWN_TIMEOUT` | [`Builder::shutdown_timeout`] | `3s` |
/// | `POSTHASTE_SPILL_DIR` | [`Builder::spill_dir`] | `/var/lib/app/posthaste` |
/// | `POSTHASTE_EXIT_HOOK` | [`Builder::exit_hook`]: `true`/`false` (also `1`/`0`, `on`/`off`, `yes`/`no`) | `true` |
///
/// Durations are a number with `ms`, `s`, `m` or `h` (a bare number means seconds). Unset or
/// empty variables keep the defaults. The proxy environment variables (`HTTPS_PROXY`, …) are
/// still read by `start()` unless `POSTHASTE_PROXY` is set.
///
/// # Errors
/// [`Error::InvalidOption`] naming the variable when `POSTHASTE_URL` is missing or a value
/// does not parse (values are checked further by [`Builder::start`], as for any builder).
///
/// ```no_run
/// // POSTHASTE_URL=https://collector.corp/ingest POSTHASTE_WORKERS=4 ./app
/// let guard = posthaste::from_env()?.exit_hook(true).start()?;
/// # drop(guard);
/// # Ok::<(), posthaste::Error>(())
/// ```
pub fn from_env() -> Result<Builder, Error> {
    from_lookup(&|name| match std::env::var(name) {
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err("is not valid UTF-8".to_string()),
    })
}

/// What a lookup gives: the value, unset, or why it can't be read.
type Lookup<'a> = &'a dyn Fn(&'static str) -> Result<Option<String>, String>;

fn bad(option: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidOption { option, reason: reason.into() }
}

/// The value of `name`, trimmed; `None` when unset or empty.
fn get(lookup: Lookup<'_>, name: &'static str) -> Result<Option<String>, Error> {
    let value = lookup(name).map_err(|reason| bad(name, reason))?;
    Ok(value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty()))
}

pub(crate) fn from_lookup(lookup: Lookup<'_>) -> Result<Builder, Error> {
    let url = get(lookup, "POSTHASTE_URL")?.ok_or_else(|| bad("POSTHASTE_URL", "not set"))?;
    let mut b = builder(url);
    if let Some(v) = get(lookup, "POSTHASTE_WORKERS")? {
        b = b.workers(number("POSTHASTE_WORKERS", &v)?);
    }
    if let Some(v) = get(lookup, "POSTHASTE_QUEUE_CAPACITY")? {
        b = b.queue_capacity(number("POSTHASTE_QUEUE_CAPACITY", &v)?);
    }
    if let Some(v) = get(lookup, "POSTHASTE_QUEUE_BYTES")? {
        b = b.queue_bytes(bytes("POSTHASTE_QUEUE_BYTES", &v)?);
    }
    if let Some(v) = get(lookup, "POSTHASTE_OVERFLOW")? {
        b = b.overflow(overflow(&v)?);
    }
    let mut batch = match get(lookup, "POSTHASTE_BATCH")? {
        None => None,
        Some(v) if switch("POSTHASTE_BATCH", &v)? => Some(Batch::new()),
        Some(_) => None,
    };
    if let Some(v) = get(lookup, "POSTHASTE_BATCH_MAX_EVENTS")? {
        batch = Some(batch.unwrap_or_default().max_events(number("POSTHASTE_BATCH_MAX_EVENTS", &v)?));
    }
    if let Some(v) = get(lookup, "POSTHASTE_BATCH_MAX_BYTES")? {
        batch = Some(batch.unwrap_or_default().max_bytes(bytes("POSTHASTE_BATCH_MAX_BYTES", &v)?));
    }
    if let Some(v) = get(lookup, "POSTHASTE_BATCH_LINGER")? {
        batch = Some(batch.unwrap_or_default().linger(duration("POSTHASTE_BATCH_LINGER", &v)?));
    }
    if let Some(batch) = batch {
        b = b.batch(batch);
    }
    if let Some(v) = get(lookup, "POSTHASTE_ENCODING")? {
        b = b.encoding(match v.to_ascii_lowercase().as_str() {
            "json" => Encoding::Json,
            "json_array" | "json-array" | "array" => Encoding::JsonArray,
            "ndjson" => Encoding::Ndjson,
            _ => return Err(bad("POSTHASTE_ENCODING", format!("{v:?} is not json, json_array or ndjson"))),
        });
    }
    if let Some(v) = get(lookup, "POSTHASTE_GZIP")? {
        match v.parse::<u32>() {
            Ok(level) => b = b.gzip(Gzip::new().level(level)),
            Err(_) if switch("POSTHASTE_GZIP", &v)? => b = b.gzip(Gzip::new()),
            Err(_) => {}
        }
    }
    if let Some(v) = get(lookup, "POSTHASTE_BEARER_TOKEN")? {
        b = b.bearer_auth(v);
    }
    if let Some(v) = get(lookup, "POSTHASTE_HEADERS")? {
        for (i, pair) in v.split(';').map(str::trim).filter(|p| !p.is_empty()).enumerate() {
            let Some((name, value)) = pair.split_once(':') else {
                return Err(bad(
                    "POSTHASTE_HEADERS",
                    format!("entry {} is not `Name: value` (values are not shown)", i + 1),
                ));
            };
            b = b.header(name.trim(), value.trim());
        }
    }
    if let Some(v) = get(lookup, "POSTHASTE_PROXY")? {
        b = if v.eq_ignore_ascii_case("none") || v.eq_ignore_ascii_case("off") {
            b.no_proxy()
        } else {
            match crate::transport::proxy::Proxy::parse_from(&v, "POSTHASTE_PROXY") {
                Ok(proxy) => b.proxy(proxy),
                Err(Error::InvalidProxy { reason, .. }) => {
                    return Err(bad("POSTHASTE_PROXY", format!("{}: {reason}", redact_url(&v))))
                }
                Err(e) => return Err(e),
            }
        };
    }
    if let Some(v) = get(lookup, "POSTHASTE_CA_FILE")? {
        b = b.add_root_certs_pem_file(v);
    }
    match (get(lookup, "POSTHASTE_CLIENT_CERT")?, get(lookup, "POSTHASTE_CLIENT_KEY")?) {
        (Some(cert), Some(key)) => b = b.client_cert_pem_files(cert, key),
        (None, None) => {}
        (Some(_), None) => return Err(bad("POSTHASTE_CLIENT_KEY", "not set, but POSTHASTE_CLIENT_CERT is")),
        (None, Some(_)) => return Err(bad("POSTHASTE_CLIENT_CERT", "not set, but POSTHASTE_CLIENT_KEY is")),
    }
    if let Some(v) = get(lookup, "POSTHASTE_CONNECT_TIMEOUT")? {
        b = b.connect_timeout(duration("POSTHASTE_CONNECT_TIMEOUT", &v)?);
    }
    if let Some(v) = get(lookup, "POSTHASTE_REQUEST_TIMEOUT")? {
        b = b.request_timeout(duration("POSTHASTE_REQUEST_TIMEOUT", &v)?);
    }
    if let Some(v) = get(lookup, "POSTHASTE_SHUTDOWN_TIMEOUT")? {
        b = b.shutdown_timeout(duration("POSTHASTE_SHUTDOWN_TIMEOUT", &v)?);
    }
    if let Some(v) = get(lookup, "POSTHASTE_SPILL_DIR")? {
        b = b.spill_dir(v);
    }
    if let Some(v) = get(lookup, "POSTHASTE_EXIT_HOOK")? {
        b = b.exit_hook(switch("POSTHASTE_EXIT_HOOK", &v)?);
    }
    Ok(b)
}

fn number(name: &'static str, v: &str) -> Result<usize, Error> {
    v.replace('_', "").parse().map_err(|_| bad(name, format!("{v:?} is not a whole number")))
}

/// A byte count: a number, optionally with `B`, `KiB`, `MiB` or `GiB` (also `K`, `M`, `G`).
fn bytes(name: &'static str, v: &str) -> Result<usize, Error> {
    let v_lower = v.to_ascii_lowercase();
    let digits_end = v_lower.find(|c: char| !c.is_ascii_digit() && c != '_').unwrap_or(v_lower.len());
    let (n, unit) = v_lower.split_at(digits_end);
    let multiplier: usize = match unit.trim() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1 << 10,
        "m" | "mib" | "mb" => 1 << 20,
        "g" | "gib" | "gb" => 1 << 30,
        _ => return Err(bad(name, format!("{v:?} is not a byte count (e.g. 65536, 64KiB, 16MiB)"))),
    };
    number(name, n)?.checked_mul(multiplier).ok_or_else(|| bad(name, format!("{v:?} is too large")))
}

/// A duration: a number with `ms`, `s`, `m` or `h`; a bare number means seconds.
fn duration(name: &'static str, v: &str) -> Result<Duration, Error> {
    let v_lower = v.to_ascii_lowercase();
    let end = v_lower.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(v_lower.len());
    let (n, unit) = v_lower.split_at(end);
    let n: f64 = n.parse().map_err(|_| bad(name, format!("{v:?} is not a duration (e.g. 500ms, 3s, 2m)")))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad(name, format!("{v:?} is not a duration (e.g. 500ms, 3s, 2m)"))),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| bad(name, format!("{v:?} is out of range")))
}

/// `true`/`false`, `1`/`0`, `on`/`off`, `yes`/`no`.
fn switch(name: &'static str, v: &str) -> Result<bool, Error> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "on" | "yes" => Ok(true),
        "false" | "0" | "off" | "no" => Ok(false),
        _ => Err(bad(name, format!("{v:?} is not true or false"))),
    }
}

fn overflow(v: &str) -> Result<Overflow, Error> {
    let lower = v.to_ascii_lowercase();
    match lower.as_str() {
        "drop_newest" | "drop-newest" => Ok(Overflow::DropNewest),
        "drop_oldest" | "drop-oldest" => Ok(Overflow::DropOldest),
        "block" => Ok(Overflow::Block),
        _ => match lower.strip_prefix("block_for:").or_else(|| lower.strip_prefix("block-for:")) {
            Some(d) => Ok(Overflow::BlockFor(duration("POSTHASTE_OVERFLOW", d.trim())?)),
            None => Err(bad(
                "POSTHASTE_OVERFLOW",
                format!("{v:?} is not drop_newest, drop_oldest, block or block_for:<duration>"),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn build(vars: &[(&'static str, &str)]) -> Result<Builder, Error> {
        let map: HashMap<&'static str, String> = vars.iter().map(|(k, v)| (*k, v.to_string())).collect();
        from_lookup(&|name| Ok(map.get(name).cloned()))
    }

    fn debug(vars: &[(&'static str, &str)]) -> String {
        format!("{:?}", build(vars).expect("valid"))
    }

    const URL: (&str, &str) = ("POSTHASTE_URL", "http://127.0.0.1:9/ingest");

    #[test]
    fn every_variable_reaches_its_option() {
        let rows: &[(&'static str, &str, &str)] = &[
            ("POSTHASTE_WORKERS", "7", "workers: 7"),
            ("POSTHASTE_QUEUE_CAPACITY", "1_000", "queue_capacity: 1000"),
            ("POSTHASTE_QUEUE_BYTES", "2MiB", "queue_bytes: 2097152"),
            ("POSTHASTE_OVERFLOW", "block_for:250ms", "overflow: BlockFor(250ms)"),
            ("POSTHASTE_OVERFLOW", "drop_oldest", "overflow: DropOldest"),
            ("POSTHASTE_BATCH", "on", "max_events: 500"),
            ("POSTHASTE_BATCH_MAX_EVENTS", "42", "max_events: 42"),
            ("POSTHASTE_BATCH_MAX_BYTES", "64KiB", "max_bytes: 65536"),
            ("POSTHASTE_BATCH_LINGER", "5ms", "linger: 5ms"),
            ("POSTHASTE_ENCODING", "ndjson", "encoding: Ndjson"),
            ("POSTHASTE_GZIP", "6", "level: 6"),
            ("POSTHASTE_GZIP", "on", "level: 1"),
            ("POSTHASTE_BEARER_TOKEN", "tok-123", "\"Authorization\""),
            ("POSTHASTE_HEADERS", "X-Team: core; X-Env: prod", "\"X-Team\", \"X-Env\""),
            ("POSTHASTE_PROXY", "http://u:pw@proxy:3128", "u:***@proxy:3128"),
            ("POSTHASTE_PROXY", "none", "proxy: Off"),
            ("POSTHASTE_CA_FILE", "/etc/corp/ca.pem", "/etc/corp/ca.pem"),
            ("POSTHASTE_CONNECT_TIMEOUT", "2s", "connect_timeout: 2s"),
            ("POSTHASTE_REQUEST_TIMEOUT", "1.5", "request_timeout: 1.5s"),
            ("POSTHASTE_SHUTDOWN_TIMEOUT", "1m", "shutdown_timeout: 60s"),
            ("POSTHASTE_SPILL_DIR", "/tmp/spill", "spill_dir: Some(\"/tmp/spill\")"),
            ("POSTHASTE_EXIT_HOOK", "yes", "exit_hook: true"),
        ];
        for (name, value, shown) in rows {
            let d = debug(&[URL, (name, value)]);
            assert!(d.contains(shown), "{name}={value}: {shown:?} not in {d}");
        }
        let d = debug(&[URL, ("POSTHASTE_CLIENT_CERT", "/c.pem"), ("POSTHASTE_CLIENT_KEY", "/k.pem")]);
        assert!(d.contains("/c.pem") && d.contains("/k.pem"), "{d}");
        // Unset and empty keep the defaults.
        assert_eq!(debug(&[URL, ("POSTHASTE_WORKERS", "  ")]), format!("{:?}", builder(URL.1)));
    }

    #[test]
    fn every_bad_value_names_its_variable_and_hides_secrets() {
        let rows: &[(&'static str, &str)] = &[
            ("POSTHASTE_WORKERS", "four"),
            ("POSTHASTE_QUEUE_CAPACITY", "-1"),
            ("POSTHASTE_QUEUE_BYTES", "16 parsecs"),
            ("POSTHASTE_OVERFLOW", "sometimes"),
            ("POSTHASTE_OVERFLOW", "block_for:soon"),
            ("POSTHASTE_BATCH", "maybe"),
            ("POSTHASTE_BATCH_MAX_EVENTS", "many"),
            ("POSTHASTE_BATCH_MAX_BYTES", "1TB?"),
            ("POSTHASTE_BATCH_LINGER", "5 fortnights"),
            ("POSTHASTE_ENCODING", "xml"),
            ("POSTHASTE_GZIP", "fast"),
            ("POSTHASTE_HEADERS", "X-Secret=hunter2"),
            ("POSTHASTE_PROXY", "htp:/user:hunter2@"),
            ("POSTHASTE_CLIENT_CERT", "/c.pem"),
            ("POSTHASTE_CONNECT_TIMEOUT", "2 days"),
            ("POSTHASTE_REQUEST_TIMEOUT", "fast"),
            ("POSTHASTE_SHUTDOWN_TIMEOUT", "-3s"),
            ("POSTHASTE_EXIT_HOOK", "perhaps"),
        ];
        for (name, value) in rows {
            let e = build(&[URL, (name, value)]).map(|_| ()).unwrap_err();
            let text = format!("{e} {e:?}");
            let named = match &e {
                Error::InvalidOption { option, .. } => *option,
                other => panic!("{name}={value}: {other:?}"),
            };
            let expected = if *name == "POSTHASTE_CLIENT_CERT" { "POSTHASTE_CLIENT_KEY" } else { name };
            assert_eq!(named, expected, "{name}={value}: {text}");
            assert!(!text.contains("hunter2"), "{name}: secret shown: {text}");
        }
        let e = build(&[]).map(|_| ()).unwrap_err();
        assert!(e.to_string().contains("POSTHASTE_URL"), "{e}");
        let e = from_lookup(&|name| {
            if name == "POSTHASTE_URL" {
                Err("is not valid UTF-8".into())
            } else {
                Ok(None)
            }
        })
        .map(|_| ())
        .unwrap_err();
        assert!(e.to_string().contains("POSTHASTE_URL") && e.to_string().contains("UTF-8"), "{e}");
        // Values checked by start() are reported there, still naming the option.
        let e = build(&[URL, ("POSTHASTE_WORKERS", "0")]).unwrap().start().map(|_| ()).unwrap_err();
        assert!(e.to_string().contains("workers"), "{e}");
        let e = build(&[URL, ("POSTHASTE_BEARER_TOKEN", "tok\nen-hunter2")])
            .unwrap()
            .start()
            .map(|_| ())
            .unwrap_err();
        assert!(!format!("{e} {e:?}").contains("hunter2"), "{e:?}");
    }

    #[test]
    fn builder_calls_after_from_env_override_it() {
        let b = build(&[URL, ("POSTHASTE_WORKERS", "7")]).unwrap().workers(3);
        assert!(format!("{b:?}").contains("workers: 3"));
    }

    #[test]
    fn units() {
        assert_eq!(bytes("X", "1_024").unwrap(), 1024);
        assert_eq!(bytes("X", "3k").unwrap(), 3072);
        assert_eq!(bytes("X", "1GiB").unwrap(), 1 << 30);
        assert_eq!(duration("X", "250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(duration("X", "2h").unwrap(), Duration::from_secs(7200));
        assert!(duration("X", "1e999").is_err());
    }
}
