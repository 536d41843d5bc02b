//! Pure: what a worker puts in one request body.
//!
//! Owns the throughput options ([`Batch`], [`Encoding`], [`Template`], [`Gzip`],
//! [`Idempotency`]), the gathering rule, the encoders, gzip and Standard Webhooks signing. No I/O, no threads and no clock:
//! the worker owns those and calls in here. It never names the queue's envelope: what it
//! encodes is anything that is an [`Item`] (an event and its size). Every rule is unit-tested
//! below.

mod batch;
mod codec;
mod gzip;
mod idempotency;
pub(crate) mod otlp;
mod sign;
mod template;

pub use batch::Batch;
pub(crate) use batch::{halves, is_full, joins, nap};
pub use codec::{bench_support, CustomEncoding, Encoding, Events};
pub(crate) use codec::{encode_once, Codec};
pub use gzip::Gzip;
pub use idempotency::Idempotency;
pub(crate) use sign::{Signer, WebhookSecrets};
pub use template::Template;

use crate::error::Error;
use crate::event::Event;

/// What the codec encodes: an event and its share of the byte budget. The queue's envelope
/// implements it, so this layer never names a type of the layers above.
pub(crate) trait Item: Sync {
    fn event(&self) -> &Event;
    fn size(&self) -> usize;
}

/// How a worker builds request bodies: the throughput options as the runtime takes them.
#[derive(Clone, Debug, Default)]
pub(crate) struct EncodeOptions {
    pub(crate) batch: Option<Batch>,
    pub(crate) encoding: Encoding,
    pub(crate) template: Option<Template>,
    pub(crate) gzip: Option<Gzip>,
    pub(crate) idempotency: Option<Idempotency>,
    /// Standard Webhooks secrets; empty means unsigned.
    pub(crate) signing: WebhookSecrets,
}

impl EncodeOptions {
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if let Some(b) = &self.batch {
            b.validate()?;
        }
        if let Some(t) = &self.template {
            t.validate()?;
            if matches!(self.encoding, Encoding::Custom(_) | Encoding::OtlpLogs) {
                return Err(Error::InvalidOption {
                    option: "template",
                    reason: "a template is not applied by Encoding::Custom or Encoding::OtlpLogs".into(),
                });
            }
        }
        if let Some(g) = &self.gzip {
            g.validate()?;
        }
        if let Some(i) = &self.idempotency {
            i.validate()?;
        }
        self.signing.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::encode::batch::{halves, is_full, joins, nap};
    use serde_json::json;
    use serde_json::Value;
    use std::io::Read;
    use std::time::Duration;

    /// An event with its size, as the queue hands it over.
    struct Env {
        event: Event,
        size: usize,
    }

    impl Item for Env {
        fn event(&self) -> &Event {
            &self.event
        }
        fn size(&self) -> usize {
            self.size
        }
    }

    fn env(v: Value) -> Env {
        let event = Event::from(v);
        Env { size: event.approx_bytes(), event }
    }

    fn encode(options: &EncodeOptions, batch: &[Env]) -> Vec<u8> {
        let mut out = Vec::new();
        Codec::new(options).encode(batch, &mut out);
        out
    }

    fn with(encoding: Encoding) -> EncodeOptions {
        EncodeOptions { encoding, ..EncodeOptions::default() }
    }

    #[test]
    fn json_is_one_document_or_an_array() {
        let json = with(Encoding::Json);
        assert_eq!(encode(&json, &[env(json!({"a": 1}))]), br#"{"a":1}"#);
        assert_eq!(encode(&json, &[env(json!(1)), env(json!({"b": "x"}))]), br#"[1,{"b":"x"}]"#);
        let array = with(Encoding::JsonArray);
        assert_eq!(encode(&array, &[env(json!({"a": 1}))]), br#"[{"a":1}]"#);
        let batched = EncodeOptions { batch: Some(Batch::new()), ..EncodeOptions::default() };
        assert_eq!(encode(&batched, &[env(json!({"a": 1}))]), br#"[{"a":1}]"#, "one shape when batching");
    }

    #[test]
    fn ndjson_ends_every_line() {
        let nd = with(Encoding::Ndjson);
        assert_eq!(encode(&nd, &[env(json!({"a": 1})), env(json!("x\ny"))]), b"{\"a\":1}\n\"x\\ny\"\n");
    }

    #[test]
    fn custom_encoder_sees_every_event_in_order() {
        let custom = with(Encoding::custom(|events, out| {
            out.extend_from_slice(format!("{}:", events.len()).as_bytes());
            for e in events {
                e.write_json(out);
            }
        }));
        assert_eq!(encode(&custom, &[env(json!(1)), env(json!(2))]), b"2:12");
    }

    #[test]
    fn string_template_double_encodes() {
        let t = Template::string_field(json!({"bucket": "team-a"}), "log");
        let options = EncodeOptions { template: Some(t), ..EncodeOptions::default() };
        let body = encode(&options, &[env(json!({"msg": "say \"hi\""}))]);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["bucket"], "team-a");
        let inner: Value = serde_json::from_str(v["log"].as_str().unwrap()).unwrap();
        assert_eq!(inner, json!({"msg": "say \"hi\""}));
        // Pre-encoded events are wrapped the same way.
        let raw = Event::from_json_bytes(br#"{"n":1}"#.to_vec()).unwrap();
        let batch = [Env { size: 7, event: raw }];
        assert_eq!(encode(&options, &batch), br#"{"bucket":"team-a","log":"{\"n\":1}"}"#);
    }

    #[test]
    fn value_template_nests_and_frames() {
        let t = Template::value_field(json!({}), "payload");
        let options = EncodeOptions { template: Some(t), encoding: Encoding::Ndjson, ..Default::default() };
        assert_eq!(
            encode(&options, &[env(json!(1)), env(json!([2]))]),
            b"{\"payload\":1}\n{\"payload\":[2]}\n"
        );
    }

    #[test]
    fn template_validation() {
        assert!(Template::string_field(json!({"a": 1}), "log").validate().is_ok());
        let dup = Template::string_field(json!({"log": 1}), "log").validate().unwrap_err();
        assert!(dup.to_string().contains("already has the field"), "{dup}");
        let not_object = Template::value_field(json!([1]), "x").validate().unwrap_err();
        assert!(not_object.to_string().contains("an array"), "{not_object}");
        let with_custom = EncodeOptions {
            template: Some(Template::string_field(json!({}), "x")),
            encoding: Encoding::custom(|_, _| {}),
            ..Default::default()
        };
        assert!(with_custom.validate().is_err());
    }

    #[test]
    fn template_debug_hides_values() {
        let t = Template::string_field(json!({"token": "s3cret"}), "log");
        let s = format!("{t:?}");
        assert!(s.contains("token") && !s.contains("s3cret"), "{s}");
    }

    #[test]
    fn gathering_rule() {
        let limits = Batch::new().max_events(3).max_bytes(100);
        assert!(joins(&limits, 1, 10, 20));
        assert!(!joins(&limits, 3, 10, 1), "event limit");
        assert!(joins(&limits, 1, 50, 50), "exactly at the byte limit");
        assert!(!joins(&limits, 1, 50, 51), "over the byte limit");
        assert!(!joins(&limits, 1, 0, usize::MAX), "no overflow");
        assert!(is_full(&limits, 3, 0) && is_full(&limits, 1, 100) && !is_full(&limits, 2, 99));
        assert_eq!(halves(7), (3, 4));
        let ms = Duration::from_millis;
        assert_eq!(nap(ms(50), ms(50)), ms(5));
        assert_eq!(nap(ms(2), ms(50)), ms(2), "never past the linger time");
        assert_eq!(nap(ms(30_000), ms(30_000)), ms(10));
        assert_eq!(nap(ms(3), ms(3)), ms(1));
        assert_eq!(halves(2), (1, 1));
    }

    #[test]
    fn estimate_covers_separators_and_template() {
        let plain = Codec::new(&EncodeOptions::default());
        assert_eq!(plain.estimate(10), 11);
        let t = Template::string_field(json!({"bucket": "a"}), "log");
        let wrapped = Codec::new(&EncodeOptions { template: Some(t), ..Default::default() });
        // {"bucket":"a","log":"…"} around an event of 40 bytes with some quotes to escape.
        let event = env(json!({"k": "v", "kk": "vv", "kkk": "vvvvvvvvvvv"}));
        let mut out = Vec::new();
        let mut codec = wrapped;
        codec.encode(std::slice::from_ref(&event), &mut out);
        assert!(codec.estimate(event.size) >= out.len(), "{} < {}", codec.estimate(event.size), out.len());
    }

    #[test]
    fn gzip_round_trips_above_the_threshold() {
        let codec =
            Codec::new(&EncodeOptions { gzip: Some(Gzip::new().min_bytes(100)), ..Default::default() });
        let body = br#"{"event":"tick","i":1}"#.repeat(20);
        let mut out = Vec::new();
        assert!(codec.compress(&body, &mut out));
        assert!(out.len() < body.len() / 4, "{} bytes", out.len());
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&out[..]).read_to_end(&mut plain).unwrap();
        assert_eq!(plain, body);
        assert!(!codec.compress(&body[..99], &mut out), "below the threshold");
        assert!(!Codec::new(&EncodeOptions::default()).compress(&body, &mut out), "off by default");
    }

    #[test]
    fn option_validation_names_the_option() {
        let check = |o: EncodeOptions, option: &str| {
            let e = o.validate().unwrap_err().to_string();
            assert!(e.contains(option), "{e}");
        };
        let batch = |b: Batch| EncodeOptions { batch: Some(b), ..Default::default() };
        assert!(batch(Batch::new()).validate().is_ok());
        check(batch(Batch::new().max_events(0)), "batch.max_events");
        check(batch(Batch::new().max_bytes(10)), "batch.max_bytes");
        check(batch(Batch::new().linger(Duration::from_secs(61))), "batch.linger");
        check(EncodeOptions { gzip: Some(Gzip::new().level(0)), ..Default::default() }, "gzip.level");
        let bad_header = Idempotency::new().key_header("Bad Name");
        check(EncodeOptions { idempotency: Some(bad_header), ..Default::default() }, "idempotency");
    }
}
