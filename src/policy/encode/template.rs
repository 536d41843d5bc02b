//! [`Template`]: a fixed JSON object each event is wrapped in, compiled once into the bytes
//! that go before it.

use std::fmt;

use serde_json::Value;

use crate::error::Error;

/// Puts each event inside a fixed JSON object, for endpoints that want an envelope such as
/// `{"bucket": "team-a", "log": "<the event as a JSON string>"}`. Set with
/// [`Builder::template`](crate::Builder::template); the [`Encoding`](crate::Encoding) then lays out the wrapped
/// events (one per request, an array, or NDJSON lines).
///
/// ```
/// use serde_json::json;
/// // Each event is sent as {"bucket":"team-a","log":"{\"level\":\"info\",…}"}.
/// let template = posthaste::Template::string_field(json!({"bucket": "team-a"}), "log");
/// let guard = posthaste::builder("http://127.0.0.1:9/ingest").template(template).start()?;
/// guard.client().send(json!({"level": "info", "msg": "ready"}))?;
/// # drop(guard);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// The object must be a JSON object without the field; `start()` checks it. Its values are
/// never printed by `Debug`.
#[derive(Clone)]
pub struct Template {
    object: Value,
    field: String,
    as_string: bool,
}

impl Template {
    /// Each event goes under `field` of `object` as a JSON **string** holding its JSON (double
    /// encoding).
    pub fn string_field(object: Value, field: impl Into<String>) -> Template {
        Template { object, field: field.into(), as_string: true }
    }

    /// Each event goes under `field` of `object` as a nested JSON value.
    pub fn value_field(object: Value, field: impl Into<String>) -> Template {
        Template { object, field: field.into(), as_string: false }
    }

    pub(super) fn validate(&self) -> Result<(), Error> {
        let bad = |reason: String| Err(Error::InvalidOption { option: "template", reason });
        match &self.object {
            Value::Object(map) if map.contains_key(&self.field) => {
                bad(format!("the object already has the field {:?}", self.field))
            }
            Value::Object(_) => Ok(()),
            other => bad(format!("expected a JSON object, got {}", kind_of(other))),
        }
    }

    /// The bytes before and after each event.
    pub(super) fn compile(&self) -> CompiledTemplate {
        let mut prefix = serde_json::to_vec(&self.object).unwrap_or_else(|_| b"{}".to_vec());
        prefix.pop(); // The closing brace; the event's field comes last.
        if prefix.len() > 1 {
            prefix.push(b',');
        }
        // Writing a `&str` into a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut prefix, self.field.as_str());
        prefix.push(b':');
        CompiledTemplate { prefix, as_string: self.as_string }
    }
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = match &self.object {
            Value::Object(map) => map.keys().map(String::as_str).collect(),
            _ => Vec::new(),
        };
        f.debug_struct("Template")
            .field("keys", &keys)
            .field("field", &self.field)
            .field("as_string", &self.as_string)
            .finish()
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(super) struct CompiledTemplate {
    pub(super) prefix: Vec<u8>,
    pub(super) as_string: bool,
}
