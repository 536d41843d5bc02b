//! [`Route`]: which endpoint `send` picks for an event, by the value of one of its fields.
//!
//! Pure: the table is resolved to endpoint indices once, at `start()` (where an unknown
//! endpoint name is an error), and `pick` only reads the event.

use crate::error::Error;
use crate::event::Event;

/// The name of the builder's own endpoint, for [`Client::send_to`](crate::Client::send_to),
/// [`Route`], a [`Broadcast`](crate::Broadcast) and per-endpoint stats.
pub const DEFAULT_ENDPOINT: &str = "default";

/// Routes each event given to [`Client::send`](crate::Client::send) (and `send_tracked`) to a
/// named endpoint by the value of one string field, set with
/// [`Builder::route`](crate::Builder::route).
///
/// The field is a top-level key (`"type"`) or a JSON pointer (`"/data/type"`). An event whose
/// field is missing, not a string, or has no entry in the table — and every pre-encoded
/// event (`Event::from_json_bytes`, `send_serialize`), whose fields are not read — goes to the
/// [`otherwise`](Route::otherwise) endpoint, which defaults to the builder's own endpoint. Every
/// endpoint named here must exist: `start()` refuses an unknown name with
/// [`Error::InvalidOption`](crate::Error::InvalidOption) (`"route"`).
///
/// ```
/// let guard = posthaste::builder("http://127.0.0.1:9/other")
///     .endpoint("created", posthaste::endpoint("http://127.0.0.1:9/orders/created"))
///     .endpoint("updated", posthaste::endpoint("http://127.0.0.1:9/orders/updated"))
///     .route(posthaste::Route::by_field("type").to("order_created", "created").to("order_updated", "updated"))
///     .start()?;
/// // Goes to the "created" endpoint; an "order_cancelled" would go to the default one.
/// guard.client().send(serde_json::json!({"type": "order_created", "id": 7})).unwrap();
/// # drop(guard);
/// # Ok::<(), posthaste::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Route {
    field: String,
    table: Vec<(String, String)>,
    otherwise: String,
}

impl Route {
    /// Routes by the string value of `field`: a top-level key, or a JSON pointer if it starts
    /// with `/`. The table starts empty.
    pub fn by_field(field: impl Into<String>) -> Route {
        Route { field: field.into(), table: Vec::new(), otherwise: DEFAULT_ENDPOINT.to_string() }
    }

    /// Sends events whose field equals `value` to the endpoint called `endpoint`. A later entry
    /// for the same value replaces an earlier one.
    pub fn to(mut self, value: impl Into<String>, endpoint: impl Into<String>) -> Route {
        let value = value.into();
        self.table.retain(|(v, _)| *v != value);
        self.table.push((value, endpoint.into()));
        self
    }

    /// Where events that match no entry go. Defaults to the builder's own endpoint
    /// ([`DEFAULT_ENDPOINT`]).
    pub fn otherwise(mut self, endpoint: impl Into<String>) -> Route {
        self.otherwise = endpoint.into();
        self
    }

    /// Resolves every endpoint name to its index; an unknown name is an error.
    pub(crate) fn resolve(&self, index_of: impl Fn(&str) -> Option<usize>) -> Result<Routing, Error> {
        let find = |name: &str| {
            index_of(name).ok_or_else(|| Error::InvalidOption {
                option: "route",
                reason: format!("no endpoint is called {name:?}"),
            })
        };
        if self.field.is_empty() {
            return Err(Error::InvalidOption { option: "route", reason: "the field name is empty".into() });
        }
        let mut table = Vec::with_capacity(self.table.len());
        for (value, name) in &self.table {
            table.push((value.clone(), find(name)?));
        }
        let pointer = if self.field.starts_with('/') {
            self.field.clone()
        } else {
            format!("/{}", self.field.replace('~', "~0").replace('/', "~1"))
        };
        Ok(Routing { pointer, table, otherwise: find(&self.otherwise)? })
    }
}

/// A [`Route`] resolved at `start()`: endpoint indices instead of names.
#[derive(Debug)]
pub(crate) struct Routing {
    pointer: String,
    table: Vec<(String, usize)>,
    otherwise: usize,
}

impl Routing {
    /// The index of the endpoint `event` goes to.
    pub(crate) fn pick(&self, event: &Event) -> usize {
        let Some(value) = event.as_value().and_then(|v| v.pointer(&self.pointer)).and_then(|v| v.as_str())
        else {
            return self.otherwise;
        };
        self.table.iter().find(|(v, _)| v == value).map_or(self.otherwise, |(_, i)| *i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(name: &str) -> Option<usize> {
        ["default", "a", "b"].iter().position(|n| *n == name)
    }

    #[test]
    fn picks_by_field_and_falls_back_to_otherwise() {
        let r = Route::by_field("type").to("x", "a").to("y", "b").resolve(names).unwrap();
        assert_eq!(r.pick(&json!({"type": "x"}).into()), 1);
        assert_eq!(r.pick(&json!({"type": "y"}).into()), 2);
        assert_eq!(r.pick(&json!({"type": "z"}).into()), 0);
        assert_eq!(r.pick(&json!({"type": 1}).into()), 0);
        assert_eq!(r.pick(&json!({}).into()), 0);
        assert_eq!(r.pick(&Event::from_json_bytes(br#"{"type":"x"}"#.to_vec()).unwrap()), 0);
        let r = Route::by_field("/data/kind").to("x", "a").otherwise("b").resolve(names).unwrap();
        assert_eq!(r.pick(&json!({"data": {"kind": "x"}}).into()), 1);
        assert_eq!(r.pick(&json!({"kind": "x"}).into()), 2);
        let r = Route::by_field("a/b").to("x", "a").resolve(names).unwrap();
        assert_eq!(r.pick(&json!({"a/b": "x"}).into()), 1);
    }

    #[test]
    fn unknown_names_are_refused() {
        let e = Route::by_field("type").to("x", "nope").resolve(names).unwrap_err();
        assert!(e.to_string().contains("\"nope\""), "{e}");
        assert!(Route::by_field("type").otherwise("nope").resolve(names).is_err());
        assert!(Route::by_field("").resolve(names).is_err());
    }
}
