//! `Encoding::OtlpLogs`: a batch of events as one OTLP/HTTP `ExportLogsServiceRequest` in the
//! protobuf JSON encoding (lowerCamelCase names, enums as integers, 64-bit integers as decimal
//! strings, trace and span ids as hex), and the reading of the collector's `partialSuccess`.
//!
//! | event key | OTLP |
//! |---|---|
//! | `timestamp` (RFC 3339, or Unix milliseconds as a number) | `timeUnixNano` and `observedTimeUnixNano` (without one: the time of encoding, observed only) |
//! | `level` | `severityText` (upper case) and `severityNumber`: TRACE 1, DEBUG 5, INFO 9, WARN 13, ERROR 17, FATAL 21 |
//! | `message` (or `msg`) | `body` (`stringValue`; a non-string as its typed value) |
//! | `target` | attribute `code.namespace` |
//! | `file`, `line` | attributes `code.file.path`, `code.line.number` |
//! | `trace_id`, `span_id` (hex) | `traceId`, `spanId` |
//! | `service`, `version`, `environment`, `host` | resource attributes `service.name`, `service.version`, `deployment.environment.name`, `host.name` |
//! | every other key (including `spans`) | an attribute of the same name, typed: `intValue`, `doubleValue`, `boolValue`, `stringValue`, `arrayValue`, `kvlistValue` |
//!
//! Events whose resource attributes differ go in separate `resourceLogs` entries, in order of
//! first appearance. A value that is not a JSON object becomes a record whose body is that value.

use serde_json::{json, Map, Value};

use crate::event::Event;

/// The keys that map to record fields or resource attributes rather than attributes.
const RESOURCE: [(&str, &str); 4] = [
    ("service", "service.name"),
    ("version", "service.version"),
    ("environment", "deployment.environment.name"),
    ("host", "host.name"),
];

/// Writes the request body for `events`; `now_nanos` is the observed time of events that carry
/// no timestamp.
pub(crate) fn encode<'a>(events: impl Iterator<Item = &'a Event>, now_nanos: u64, out: &mut Vec<u8>) {
    // (resource attributes, records), in order of first appearance.
    let mut groups: Vec<(Vec<Value>, Vec<Value>)> = Vec::new();
    for event in events {
        let owned;
        let value = match event.as_value() {
            Some(v) => v,
            None => {
                owned = serde_json::from_slice::<Value>(event.as_json_bytes().unwrap_or(b"null"))
                    .unwrap_or(Value::Null);
                &owned
            }
        };
        let (resource, record) = log_record(value, now_nanos);
        match groups.iter_mut().find(|(r, _)| *r == resource) {
            Some((_, records)) => records.push(record),
            None => groups.push((resource, vec![record])),
        }
    }
    let resource_logs: Vec<Value> = groups
        .into_iter()
        .map(|(attributes, records)| {
            json!({
                "resource": {"attributes": attributes},
                "scopeLogs": [{
                    "scope": {"name": "posthaste", "version": env!("CARGO_PKG_VERSION")},
                    "logRecords": records,
                }],
            })
        })
        .collect();
    // Writing a `Value` into a `Vec` cannot fail.
    let _ = serde_json::to_writer(out, &json!({ "resourceLogs": resource_logs }));
}

/// One event as `(resource attributes, LogRecord)`.
fn log_record(v: &Value, now_nanos: u64) -> (Vec<Value>, Value) {
    let mut record = Map::new();
    let mut attributes = Vec::new();
    let mut resource = Vec::new();
    let Value::Object(fields) = v else {
        record.insert("observedTimeUnixNano".into(), now_nanos.to_string().into());
        record.insert("body".into(), any_value(v));
        return (resource, Value::Object(record));
    };
    let time = fields.get("timestamp").and_then(timestamp_nanos);
    if let Some(t) = time {
        record.insert("timeUnixNano".into(), t.to_string().into());
    }
    record.insert("observedTimeUnixNano".into(), time.unwrap_or(now_nanos).to_string().into());
    if let Some(level) = fields.get("level").and_then(Value::as_str) {
        let text = level.to_ascii_uppercase();
        if let Some(n) = severity_number(&text) {
            record.insert("severityNumber".into(), n.into());
        }
        record.insert("severityText".into(), text.into());
    }
    let message = fields.get("message").or_else(|| fields.get("msg"));
    if let Some(m) = message {
        record.insert("body".into(), any_value(m));
    }
    for (key, value) in fields {
        match key.as_str() {
            "timestamp" | "level" => {}
            "message" | "msg" if message.is_some_and(|m| std::ptr::eq(m, value)) => {}
            "trace_id" | "span_id"
                if value.as_str().is_some_and(|s| is_hex(s, if key == "trace_id" { 32 } else { 16 })) =>
            {
                let name = if key == "trace_id" { "traceId" } else { "spanId" };
                record.insert(name.into(), value.as_str().unwrap_or_default().to_ascii_lowercase().into());
            }
            "target" => attributes.push(kv("code.namespace", value)),
            "file" => attributes.push(kv("code.file.path", value)),
            "line" => attributes.push(kv("code.line.number", value)),
            _ => match RESOURCE.iter().find(|(k, _)| *k == key) {
                Some((_, name)) => resource.push(kv(name, value)),
                None => attributes.push(kv(key, value)),
            },
        }
    }
    if !attributes.is_empty() {
        record.insert("attributes".into(), attributes.into());
    }
    (resource, Value::Object(record))
}

fn kv(key: &str, value: &Value) -> Value {
    json!({"key": key, "value": any_value(value)})
}

/// A JSON value as an OTLP `AnyValue` (64-bit integers as decimal strings).
fn any_value(v: &Value) -> Value {
    match v {
        Value::Null => json!({}),
        Value::Bool(b) => json!({"boolValue": b}),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => json!({"intValue": i.to_string()}),
            (None, Some(f)) if n.is_f64() => json!({"doubleValue": f}),
            // An unsigned integer too large for int64.
            (None, Some(f)) => json!({"doubleValue": f}),
            (None, None) => json!({"stringValue": n.to_string()}),
        },
        Value::String(s) => json!({"stringValue": s}),
        Value::Array(items) => {
            json!({"arrayValue": {"values": items.iter().map(any_value).collect::<Vec<_>>()}})
        }
        Value::Object(map) => {
            json!({"kvlistValue": {"values": map.iter().map(|(k, v)| kv(k, v)).collect::<Vec<_>>()}})
        }
    }
}

fn severity_number(level: &str) -> Option<u32> {
    Some(match level {
        "TRACE" => 1,
        "DEBUG" => 5,
        "INFO" => 9,
        "WARN" | "WARNING" => 13,
        "ERROR" => 17,
        "FATAL" | "CRITICAL" => 21,
        _ => return None,
    })
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit()) && s.bytes().any(|b| b != b'0')
}

/// A timestamp as Unix nanoseconds: an RFC 3339 string, or Unix milliseconds as a number.
fn timestamp_nanos(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => rfc3339_nanos(s),
        Value::Number(n) => n.as_u64().and_then(|ms| ms.checked_mul(1_000_000)),
        _ => None,
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` into Unix nanoseconds (1970 or later).
pub(crate) fn rfc3339_nanos(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok())?
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[start..i];
        if digits.is_empty() {
            return None;
        }
        let kept = &digits[..digits.len().min(9)];
        nanos = kept.parse::<i64>().ok()? * 10i64.pow(9 - kept.len() as u32);
    }
    let offset = match &s[i..] {
        "Z" | "z" => 0,
        zone if zone.len() == 6
            && matches!(zone.as_bytes()[0], b'+' | b'-')
            && zone.as_bytes()[3] == b':' =>
        {
            let h = num(i + 1..i + 3)?;
            let m = num(i + 4..i + 6)?;
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            sign * (h * 3600 + m * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    u64::try_from(secs).ok()?.checked_mul(1_000_000_000)?.checked_add(nanos as u64)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// What a collector's 2xx answer says about records it refused: `(rejected, message)` from
/// `partialSuccess`, if it names any.
pub(crate) fn partial_success(body: &str) -> Option<(u64, String)> {
    let v: Value = serde_json::from_str(body).ok()?;
    let p = v.get("partialSuccess")?;
    let rejected = match p.get("rejectedLogRecords")? {
        Value::String(s) => s.parse().ok()?,
        Value::Number(n) => n.as_u64()?,
        _ => return None,
    };
    let message = p.get("errorMessage").and_then(Value::as_str).unwrap_or("").to_string();
    (rejected > 0).then_some((rejected, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(events: &[Value]) -> Value {
        let events: Vec<Event> = events.iter().cloned().map(Event::from).collect();
        let mut out = Vec::new();
        encode(events.iter(), 42, &mut out);
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339_nanos("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_nanos("2026-12-02T01:02:03.123456Z"), Some(1_796_173_323_123_456_000));
        assert_eq!(rfc3339_nanos("2026-12-02T02:02:03.5+01:00"), Some(1_796_173_323_500_000_000));
        assert_eq!(rfc3339_nanos("2000-02-29T00:00:00.000000001Z"), Some(951_782_400_000_000_001));
        for bad in
            ["", "2026-13-01T00:00:00Z", "2026-12-02 01:02:03", "2026-12-02T01:02:03", "1969-12-31T23:59:59Z"]
        {
            assert_eq!(rfc3339_nanos(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_log_event_maps_to_a_log_record() {
        let v = body(&[json!({
            "timestamp": "2026-12-02T01:02:03.123456Z",
            "level": "warn",
            "target": "solver::inner",
            "message": "slow step",
            "file": "src/solver.rs",
            "line": 42,
            "step": 7,
            "residual": 0.5,
            "converged": false,
            "tags": ["a", 1],
            "spans": [{"name": "solve", "n": 3}],
            "service": "solver",
            "version": "1.2.3",
            "trace_id": "4BF92F3577B34DA6A3CE929D0E0E4736",
            "span_id": "00f067aa0ba902b7",
            "nothing": null,
        })]);
        let rl = &v["resourceLogs"][0];
        assert_eq!(
            rl["resource"]["attributes"],
            json!([
                {"key": "service.name", "value": {"stringValue": "solver"}},
                {"key": "service.version", "value": {"stringValue": "1.2.3"}},
            ])
        );
        assert_eq!(rl["scopeLogs"][0]["scope"]["name"], "posthaste");
        let r = &rl["scopeLogs"][0]["logRecords"][0];
        assert_eq!(r["timeUnixNano"], "1796173323123456000");
        assert_eq!(r["observedTimeUnixNano"], "1796173323123456000");
        assert_eq!((r["severityNumber"].clone(), r["severityText"].clone()), (json!(13), json!("WARN")));
        assert_eq!(r["body"], json!({"stringValue": "slow step"}));
        assert_eq!(r["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(r["spanId"], "00f067aa0ba902b7");
        let attr = |k: &str| {
            r["attributes"].as_array().unwrap().iter().find(|a| a["key"] == k).map(|a| a["value"].clone())
        };
        assert_eq!(attr("code.namespace"), Some(json!({"stringValue": "solver::inner"})));
        assert_eq!(attr("code.file.path"), Some(json!({"stringValue": "src/solver.rs"})));
        assert_eq!(attr("code.line.number"), Some(json!({"intValue": "42"})));
        assert_eq!(attr("step"), Some(json!({"intValue": "7"})));
        assert_eq!(attr("residual"), Some(json!({"doubleValue": 0.5})));
        assert_eq!(attr("converged"), Some(json!({"boolValue": false})));
        assert_eq!(
            attr("tags"),
            Some(json!({"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "1"}]}}))
        );
        assert_eq!(
            attr("spans"),
            Some(json!({"arrayValue": {"values": [{"kvlistValue": {"values": [
                {"key": "n", "value": {"intValue": "3"}},
                {"key": "name", "value": {"stringValue": "solve"}},
            ]}}]}}))
        );
        assert_eq!(attr("nothing"), Some(json!({})));
    }

    #[test]
    fn plain_events_and_resources_group() {
        let v = body(&[
            json!({"event": "boot"}),
            json!({"service": "b", "n": 1}),
            json!({"event": "tick"}),
            json!(5),
        ]);
        let rl = v["resourceLogs"].as_array().unwrap();
        assert_eq!(rl.len(), 2, "{v}");
        let first = rl[0]["scopeLogs"][0]["logRecords"].as_array().unwrap();
        assert_eq!(first.len(), 3, "the two plain events and the bare number share the empty resource");
        assert_eq!(first[0]["observedTimeUnixNano"], "42");
        assert!(first[0].get("timeUnixNano").is_none() && first[0].get("body").is_none());
        assert_eq!(first[2]["body"], json!({"intValue": "5"}));
        assert_eq!(rl[1]["resource"]["attributes"][0]["key"], "service.name");
    }

    #[test]
    fn partial_success_is_read() {
        assert_eq!(
            partial_success(r#"{"partialSuccess":{"rejectedLogRecords":"2","errorMessage":"too old"}}"#),
            Some((2, "too old".into()))
        );
        assert_eq!(
            partial_success(r#"{"partialSuccess":{"rejectedLogRecords":3}}"#),
            Some((3, String::new()))
        );
        assert_eq!(partial_success(r#"{"partialSuccess":{}}"#), None);
        assert_eq!(partial_success("{}"), None);
        assert_eq!(partial_success(""), None);
    }
}
