//! Pure: encoding the events a worker sends in one request.
//!
//! No I/O and no threads. One event is sent as its own JSON document.

use crate::outcome::Envelope;

/// Encodes `batch` as one request body. A batch of one event is that event's JSON.
pub(crate) fn encode(batch: &[Envelope]) -> Vec<u8> {
    match batch {
        [one] => one.event.to_json_bytes(),
        many => {
            let mut out = Vec::with_capacity(many.iter().map(|e| e.size + 1).sum::<usize>() + 2);
            out.push(b'[');
            for (i, env) in many.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                env.event.write_json(&mut out);
            }
            out.push(b']');
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use serde_json::json;

    fn env(v: serde_json::Value) -> Envelope {
        let event = Event::from(v);
        Envelope { size: event.approx_bytes(), event, receipt: None }
    }

    #[test]
    fn single_event_is_its_own_document() {
        assert_eq!(encode(&[env(json!({"a": 1}))]), br#"{"a":1}"#);
    }

    #[test]
    fn several_events_make_an_array() {
        let body = encode(&[env(json!(1)), env(json!({"b": "x"}))]);
        assert_eq!(body, br#"[1,{"b":"x"}]"#);
    }
}
