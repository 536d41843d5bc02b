//! The event shape both front ends write, straight to JSON bytes on the calling thread: one
//! buffer, no intermediate `serde_json::Value`. Also the rules they share: which records are
//! never shipped (posthaste's threads and targets, the HTTP stack's), level filters by target
//! prefix, static fields, and name collisions.
//!
//! Owns the shape; must not know `log` or `tracing` (their modules adapt their records to it).

use std::error::Error as StdError;
use std::fmt::{self, Write as _};
use std::time::SystemTime;

use crate::util::{is_own_thread, rfc3339_micros};

/// Keys the shape itself writes. An event field (or a static field) of one of these names is
/// written as `field.<name>` instead; `message` is the message.
const RESERVED: [&str; 6] = ["timestamp", "level", "target", "spans", "file", "line"];

/// Targets never shipped: the HTTP stack's diagnostics and posthaste's own. A prefix match,
/// so `ureq_proto`, `rustls_native_certs` and `posthaste::…` are covered.
const OWN_TARGETS: [&str; 3] = ["ureq", "rustls", "posthaste"];

/// Sources followed from an `error` field, at most (a cycle must not loop).
const MAX_SOURCES: usize = 32;

/// True if a record must not be shipped: it comes from one of posthaste's threads (workers,
/// hooks, the probe), or from the HTTP stack or posthaste itself by its target. Shipping
/// those would feed the pipeline with its own traffic.
pub(crate) fn never_ship(target: &str) -> bool {
    is_own_thread() || OWN_TARGETS.iter().any(|own| target.starts_with(own))
}

/// Level filters by target prefix: the longest configured prefix of a target wins, otherwise
/// the default. `F` is `log::LevelFilter` or `tracing`'s `LevelFilter` (more verbose is greater
/// in both).
#[derive(Clone, Debug)]
pub(crate) struct Levels<F> {
    default: F,
    targets: Vec<(String, F)>,
}

impl<F: Copy + Ord> Levels<F> {
    pub(crate) fn new(default: F) -> Levels<F> {
        Levels { default, targets: Vec::new() }
    }

    pub(crate) fn set_default(&mut self, filter: F) {
        self.default = filter;
    }

    /// Sets the filter for `prefix` (replacing one set before for the same prefix).
    pub(crate) fn set(&mut self, prefix: String, filter: F) {
        match self.targets.iter_mut().find(|(p, _)| *p == prefix) {
            Some(entry) => entry.1 = filter,
            None => self.targets.push((prefix, filter)),
        }
        // Longest first: the first match is the most specific.
        self.targets.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
    }

    /// The filter that applies to `target`.
    #[inline]
    pub(crate) fn of(&self, target: &str) -> F {
        self.targets.iter().find(|(p, _)| target.starts_with(p.as_str())).map_or(self.default, |(_, f)| *f)
    }

    /// The most verbose filter of all.
    #[cfg_attr(not(feature = "log"), allow(dead_code))] // `log`'s global maximum.
    pub(crate) fn most_verbose(&self) -> F {
        self.targets.iter().map(|(_, f)| *f).fold(self.default, Ord::max)
    }
}

/// Fields every event carries (`service`, `version`, …), rendered once. `Debug` shows their
/// names, never their values.
#[derive(Clone, Default)]
pub(crate) struct Statics {
    /// Each field's key as written (renamed if reserved) and its `,"key":value` bytes.
    fields: Vec<(String, Vec<u8>)>,
}

impl Statics {
    /// Adds (or replaces) a static field.
    pub(crate) fn set(&mut self, name: &str, value: &serde_json::Value) {
        // `message` too is the shape's own here: a static field can't be the message.
        let key = if name == "message" { "field.message".to_string() } else { key_of(name) };
        let mut rendered = b",\"".to_vec();
        escape_into(&mut rendered, &key);
        rendered.extend_from_slice(b"\":");
        // Writing a `Value` into a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut rendered, value);
        match self.fields.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = rendered,
            None => self.fields.push((key, rendered)),
        }
    }

    /// The index of the static field an event field named `key` hides, if any.
    fn index_of(&self, key: &str) -> Option<usize> {
        self.fields.iter().position(|(k, _)| k == key)
    }
}

impl fmt::Debug for Statics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.fields.iter().map(|(key, _)| key)).finish()
    }
}

/// The key a field named `name` is written under.
fn key_of(name: &str) -> String {
    if RESERVED.contains(&name) {
        format!("field.{name}")
    } else {
        name.to_string()
    }
}

/// Writes `,"name":` (or `,"field.name":` for a reserved name).
fn write_key(buf: &mut Vec<u8>, name: &str) {
    buf.extend_from_slice(if RESERVED.contains(&name) { b",\"field." } else { b",\"" });
    escape_into(buf, name);
    buf.extend_from_slice(b"\":");
}

/// One event being written. `begin` writes `timestamp`, `level` and `target`; fields follow in
/// the order they come; `finish` adds the message if there was none, `file`, `line` and the
/// static fields the event did not set itself.
pub(crate) struct Doc<'a> {
    buf: Vec<u8>,
    statics: &'a Statics,
    /// Static fields hidden by an event field of the same name (the first 64).
    hidden: u64,
    has_message: bool,
}

impl<'a> Doc<'a> {
    pub(crate) fn begin(level: &str, target: &str, statics: &'a Statics) -> Doc<'a> {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(b"{\"timestamp\":\"");
        buf.extend_from_slice(&rfc3339_micros(SystemTime::now()));
        buf.extend_from_slice(b"\",\"level\":\"");
        buf.extend_from_slice(level.as_bytes());
        buf.extend_from_slice(b"\",\"target\":\"");
        escape_into(&mut buf, target);
        buf.push(b'"');
        Doc { buf, statics, hidden: 0, has_message: false }
    }

    /// Starts the message; write its value next.
    pub(crate) fn message_key(&mut self) {
        self.has_message = true;
        self.buf.extend_from_slice(b",\"message\":");
    }

    /// Starts a field named `name`; write its value next. `message` starts the message.
    pub(crate) fn key(&mut self, name: &str) {
        if name == "message" {
            return self.message_key();
        }
        if !self.statics.fields.is_empty() {
            if let Some(i) = self.statics.index_of(name).filter(|i| *i < 64) {
                self.hidden |= 1 << i;
            }
        }
        write_key(&mut self.buf, name);
    }

    /// The bytes written so far, for writing values.
    pub(crate) fn out(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Adds the message (if none came), `file`, `line` and the static fields; the JSON bytes.
    pub(crate) fn finish(mut self, file: Option<&str>, line: Option<u32>) -> Vec<u8> {
        if !self.has_message {
            self.buf.extend_from_slice(b",\"message\":\"\"");
        }
        if let Some(file) = file {
            self.buf.extend_from_slice(b",\"file\":\"");
            escape_into(&mut self.buf, file);
            self.buf.push(b'"');
        }
        if let Some(line) = line {
            self.buf.extend_from_slice(b",\"line\":");
            write_u64(&mut self.buf, u64::from(line));
        }
        for (i, (_, rendered)) in self.statics.fields.iter().enumerate() {
            if i >= 64 || self.hidden & (1 << i) == 0 {
                self.buf.extend_from_slice(rendered);
            }
        }
        self.buf.push(b'}');
        self.buf
    }
}

#[cfg_attr(not(feature = "tracing"), allow(dead_code))] // Spans are `tracing`'s.
/// `{"name":"…"` — the start of a span's object in `spans` (fields follow, then `}`).
pub(crate) fn span_start(buf: &mut Vec<u8>, name: &str) {
    buf.extend_from_slice(b"{\"name\":\"");
    escape_into(buf, name);
    buf.push(b'"');
}

#[cfg_attr(not(feature = "tracing"), allow(dead_code))] // Spans are `tracing`'s.
/// `,"name":` for a field of a span (`name` itself is reserved there: `field.name`).
pub(crate) fn span_key(buf: &mut Vec<u8>, name: &str) {
    if name == "name" {
        buf.extend_from_slice(b",\"field.name\":");
    } else {
        write_key(buf, name);
    }
}

// Values. Numbers stay numbers, booleans booleans; everything else is a string.

pub(crate) fn write_str(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    escape_into(buf, s);
    buf.push(b'"');
}

/// A `Debug` or `Display` value as a JSON string, formatted straight into the buffer.
pub(crate) fn write_fmt(buf: &mut Vec<u8>, args: fmt::Arguments<'_>) {
    buf.push(b'"');
    match args.as_str() {
        Some(s) => escape_into(buf, s),
        None => {
            let _ = Escaped(buf).write_fmt(args);
        }
    }
    buf.push(b'"');
}

pub(crate) fn write_bool(buf: &mut Vec<u8>, v: bool) {
    buf.extend_from_slice(if v { b"true" } else { b"false" });
}

pub(crate) fn write_u64(buf: &mut Vec<u8>, v: u64) {
    // Serializing a number into a `Vec` cannot fail.
    let _ = serde_json::to_writer(buf, &v);
}

pub(crate) fn write_i64(buf: &mut Vec<u8>, v: i64) {
    let _ = serde_json::to_writer(buf, &v);
}

pub(crate) fn write_i128(buf: &mut Vec<u8>, v: i128) {
    let _ = serde_json::to_writer(buf, &v);
}

pub(crate) fn write_u128(buf: &mut Vec<u8>, v: u128) {
    let _ = serde_json::to_writer(buf, &v);
}

/// A float as a JSON number; `NaN` and the infinities (which JSON lacks) as the strings
/// `"NaN"`, `"inf"`, `"-inf"`.
pub(crate) fn write_f64(buf: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        let _ = serde_json::to_writer(buf, &v);
    } else if v.is_nan() {
        buf.extend_from_slice(b"\"NaN\"");
    } else if v > 0.0 {
        buf.extend_from_slice(b"\"inf\"");
    } else {
        buf.extend_from_slice(b"\"-inf\"");
    }
}

/// An error as `{"message":"…","sources":["…",…]}`: its `Display`, then its `source()` chain.
pub(crate) fn write_error(buf: &mut Vec<u8>, error: &(dyn StdError + 'static)) {
    buf.extend_from_slice(b"{\"message\":");
    write_fmt(buf, format_args!("{error}"));
    buf.extend_from_slice(b",\"sources\":[");
    let mut source = error.source();
    let mut n = 0;
    while let Some(e) = source.filter(|_| n < MAX_SOURCES) {
        if n > 0 {
            buf.push(b',');
        }
        write_fmt(buf, format_args!("{e}"));
        source = e.source();
        n += 1;
    }
    buf.extend_from_slice(b"]}");
}

/// Escapes `s` as the inside of a JSON string.
pub(crate) fn escape_into(buf: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            buf.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
        } else {
            buf.extend_from_slice(escape);
        }
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
}

/// Formats into a buffer as the inside of a JSON string.
struct Escaped<'a>(&'a mut Vec<u8>);

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn parse(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bytes)))
    }

    #[test]
    fn escapes_what_json_needs() {
        let mut buf = Vec::new();
        let nasty = "q\"b\\n\nr\rt\tc\u{1}\u{1f}é\u{7f}😀";
        write_str(&mut buf, nasty);
        assert_eq!(parse(&buf), json!(nasty));
        let mut buf = Vec::new();
        write_fmt(&mut buf, format_args!("{:?}", ("a\"", 1)));
        assert_eq!(parse(&buf), json!("(\"a\\\"\", 1)"));
    }

    #[test]
    fn numbers_and_non_finite_floats() {
        for (v, expected) in [
            (1.5, json!(1.5)),
            (1e300, json!(1e300)),
            (f64::NAN, json!("NaN")),
            (f64::INFINITY, json!("inf")),
            (f64::NEG_INFINITY, json!("-inf")),
        ] {
            let mut buf = Vec::new();
            write_f64(&mut buf, v);
            assert_eq!(parse(&buf), expected);
        }
        let mut buf = Vec::new();
        write_i128(&mut buf, -170_141_183_460_469_231_731_687_303_715_884_105_728);
        assert!(buf.starts_with(b"-1701411834604692317316873037158841057"));
    }

    #[test]
    fn shape_collisions_and_statics() {
        let mut statics = Statics::default();
        statics.set("service", &json!("api"));
        statics.set("level", &json!("x"));
        statics.set("message", &json!("m"));
        statics.set("region", &json!("eu"));
        statics.set("region", &json!("us")); // replaced, not repeated
        let mut doc = Doc::begin("INFO", "app::db", &statics);
        doc.key("service"); // hides the static one
        write_str(doc.out(), "billing");
        doc.key("timestamp"); // reserved: renamed
        write_u64(doc.out(), 7);
        doc.key("ok");
        write_bool(doc.out(), true);
        let v = parse(&doc.finish(Some("src/db.rs"), Some(12)));
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["target"], "app::db");
        assert_eq!(v["message"], "");
        assert_eq!(v["service"], "billing");
        assert_eq!(v["field.timestamp"], 7);
        assert_eq!(v["field.level"], "x");
        assert_eq!(v["region"], "us");
        assert_eq!(v["field.message"], "m");
        assert_eq!(v["ok"], true);
        assert_eq!(v["file"], "src/db.rs");
        assert_eq!(v["line"], 12);
        let ts = v["timestamp"].as_str().unwrap();
        assert_eq!(ts.len(), 27, "{ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[19] == b'.', "{ts}");
        // Every key once: the object parsed with as many keys as were written.
        assert_eq!(v.as_object().unwrap().len(), 12, "{v}");
    }

    #[test]
    fn debug_shows_static_field_names_not_values() {
        let mut statics = Statics::default();
        statics.set("api_key", &json!("s3cret"));
        let shown = format!("{statics:?}");
        assert!(shown.contains("api_key") && !shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn errors_give_their_source_chain() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("saving failed")
            }
        }
        impl StdError for Outer {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(std::io::Error::other("disk full"));
        let mut buf = Vec::new();
        write_error(&mut buf, &e);
        assert_eq!(parse(&buf), json!({"message": "saving failed", "sources": ["disk full"]}));
    }

    #[test]
    fn levels_most_specific_prefix_wins() {
        let mut levels = Levels::new(2u8);
        levels.set("app".into(), 3);
        levels.set("app::db".into(), 5);
        levels.set("app::db::pool".into(), 0);
        assert_eq!(levels.of("other"), 2);
        assert_eq!(levels.of("app::web"), 3);
        assert_eq!(levels.of("app::db"), 5);
        assert_eq!(levels.of("app::db::query"), 5);
        assert_eq!(levels.of("app::db::pool::x"), 0);
        assert_eq!(levels.most_verbose(), 5);
        levels.set("app::db".into(), 1);
        assert_eq!(levels.of("app::db::query"), 1);
    }

    #[test]
    fn own_targets_are_never_shipped() {
        // (Spelled with `concat!`: tests/layers.rs keeps `ureq` and `rustls` paths out of here.)
        assert!(never_ship(concat!("ureq", "::unversioned::transport")));
        assert!(never_ship("ureq_proto::client"));
        assert!(never_ship(concat!("rustls", "::client::hs")));
        assert!(never_ship("posthaste::anything"));
        assert!(!never_ship("my_app::ureq"));
        std::thread::spawn(|| {
            crate::util::mark_own_thread();
            assert!(never_ship("my_app"));
        })
        .join()
        .unwrap();
    }
}
