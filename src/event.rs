//! [`Event`]: what a producer hands to [`Client::send`](crate::Client::send).
//!
//! Owns the two representations (a `serde_json::Value` serialized later on a worker, or bytes
//! already encoded as JSON) and the byte estimate the workers sample to learn what the queue
//! charges a `Value` event.

use serde_json::Value;

/// One event: a JSON value, or bytes already encoded as JSON.
///
/// `From<serde_json::Value>` lets you pass a `json!(..)` straight to `send`. A `Value` is
/// serialized on a worker thread, not on the caller's; pre-encoded bytes
/// ([`Event::from_json_bytes`], [`Client::send_serialize`](crate::Client::send_serialize))
/// are sent as they are.
///
/// ```
/// use posthaste::Event;
/// let a = Event::from(serde_json::json!({"event": "boot"}));
/// let b = Event::from_json_bytes(br#"{"event":"boot"}"#.to_vec()).unwrap();
/// assert_eq!(a.to_json_bytes(), b.to_json_bytes());
/// ```
#[derive(Clone, PartialEq)]
pub struct Event {
    repr: Repr,
}

#[derive(Clone, PartialEq)]
enum Repr {
    Value(Value),
    Json(Vec<u8>),
}

impl Event {
    /// An event from pre-encoded JSON bytes. The bytes are checked to be one valid JSON value
    /// (on the calling thread) so that batches built from them stay valid JSON.
    pub fn from_json_bytes(bytes: Vec<u8>) -> Result<Event, serde_json::Error> {
        serde_json::from_slice::<serde::de::IgnoredAny>(&bytes)?;
        Ok(Event { repr: Repr::Json(bytes) })
    }

    /// Bytes that the caller wrote as one valid JSON value (the logging front ends), taken
    /// without the check [`from_json_bytes`](Event::from_json_bytes) makes.
    #[cfg_attr(not(any(feature = "log", feature = "tracing")), allow(dead_code))]
    pub(crate) fn from_json_unchecked(bytes: Vec<u8>) -> Event {
        Event { repr: Repr::Json(bytes) }
    }

    /// Serializes `value` to JSON bytes now, on the calling thread.
    pub fn from_serialize<T: serde::Serialize + ?Sized>(value: &T) -> Result<Event, serde_json::Error> {
        Ok(Event { repr: Repr::Json(serde_json::to_vec(value)?) })
    }

    /// The value, if this event was built from a `serde_json::Value`.
    pub fn as_value(&self) -> Option<&Value> {
        match &self.repr {
            Repr::Value(v) => Some(v),
            Repr::Json(_) => None,
        }
    }

    /// The pre-encoded bytes, if this event was built from bytes.
    pub fn as_json_bytes(&self) -> Option<&[u8]> {
        match &self.repr {
            Repr::Json(b) => Some(b),
            Repr::Value(_) => None,
        }
    }

    /// The event as a `Value` (parsing pre-encoded bytes if needed).
    pub fn into_value(self) -> Value {
        match self.repr {
            Repr::Value(v) => v,
            // Valid by construction: `from_json_bytes` checked, `from_serialize` produced them.
            Repr::Json(b) => serde_json::from_slice(&b).unwrap_or(Value::Null),
        }
    }

    /// The event encoded as compact JSON.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_json(&mut out);
        out
    }

    /// Appends the compact JSON encoding of the event to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match &self.repr {
            // Writing a `Value` into a `Vec` cannot fail: its keys are strings and the writer
            // is infallible.
            Repr::Value(v) => {
                let _ = serde_json::to_writer(&mut *out, v);
            }
            Repr::Json(b) => out.extend_from_slice(b),
        }
    }

    /// The event's size: exact for pre-encoded bytes, an estimate of the compact JSON length
    /// for a `Value` (see [`estimate_value`]). `send` does not call it for a `Value` (the
    /// queue charges the mean of recent ones); workers, replay and pollers do.
    pub(crate) fn approx_bytes(&self) -> usize {
        match &self.repr {
            Repr::Value(v) => estimate_value(v),
            Repr::Json(b) => b.len(),
        }
    }
}

impl From<Value> for Event {
    fn from(value: Value) -> Event {
        Event { repr: Repr::Value(value) }
    }
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Show the shape, not the content: events may carry user data.
        match &self.repr {
            Repr::Value(_) => write!(f, "Event(value, ~{} bytes)", self.approx_bytes()),
            Repr::Json(b) => write!(f, "Event(json, {} bytes)", b.len()),
        }
    }
}

/// Estimates the compact JSON length of `v` without allocating: string and key lengths plus
/// quotes and separators, 8 bytes per number, 4–5 per literal. Escapes are not counted, so the
/// estimate can be a little low for strings full of quotes or control characters. It walks the
/// value once; for the few-field events this library is used for that is tens of nanoseconds.
pub(crate) fn estimate_value(v: &Value) -> usize {
    match v {
        Value::Null | Value::Bool(true) => 4,
        Value::Bool(false) => 5,
        Value::Number(_) => 8,
        Value::String(s) => s.len() + 2,
        Value::Array(a) => 2 + a.iter().map(|x| estimate_value(x) + 1).sum::<usize>(),
        Value::Object(m) => 2 + m.iter().map(|(k, x)| k.len() + 4 + estimate_value(x)).sum::<usize>(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn estimate_is_close_to_encoded_length() {
        let v = json!({"event": "tick", "i": 12345, "ok": true, "tags": ["a", "bb"], "nested": {"x": null}});
        let exact = serde_json::to_vec(&v).unwrap().len();
        let est = estimate_value(&v);
        assert!(est.abs_diff(exact) * 5 <= exact, "estimate {est} vs exact {exact}");
    }

    #[test]
    fn bytes_are_validated_and_exact() {
        assert!(Event::from_json_bytes(b"{not json".to_vec()).is_err());
        let e = Event::from_json_bytes(b"[1,2]".to_vec()).unwrap();
        assert_eq!(e.approx_bytes(), 5);
        assert_eq!(e.into_value(), json!([1, 2]));
    }

    #[test]
    fn debug_hides_content() {
        let e = Event::from(json!({"token": "s3cret"}));
        assert!(!format!("{e:?}").contains("s3cret"));
    }
}
