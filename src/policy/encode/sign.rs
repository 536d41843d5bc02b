//! Standard Webhooks signing (<https://www.standardwebhooks.com>): the `webhook-id`,
//! `webhook-timestamp` and `webhook-signature` headers of one request.
//!
//! Pure: the id and the timestamp are given (the worker keeps the id across retries and reads
//! the clock for each attempt). The signature is `v1,` and the base64 HMAC-SHA256 of
//! `{id}.{timestamp}.{body}` over the uncompressed body, one entry per secret (key rotation).
//! `ring` is used here only: none of its types leaves this module, and a secret is never
//! shown (`Debug` prints how many there are).

use std::fmt;

use ring::hmac;

use crate::error::Error;
use crate::util::{base64, base64_decode};

/// The secrets an endpoint signs with, as the user gave them (checked by `validate`).
#[derive(Clone, Default)]
pub(crate) struct WebhookSecrets(Vec<String>);

impl WebhookSecrets {
    pub(crate) fn push(&mut self, secret: String) {
        self.0.push(secret);
    }

    /// Every secret must be `whsec_` (optional) followed by non-empty standard base64.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        for (i, secret) in self.0.iter().enumerate() {
            decode(secret).map_err(|what| Error::InvalidOption {
                option: "webhook_secret",
                reason: format!("secret #{} {what} (its value is not shown)", i + 1),
            })?;
        }
        Ok(())
    }
}

impl fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} secret(s)", self.0.len())
    }
}

fn decode(secret: &str) -> Result<Vec<u8>, &'static str> {
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    match base64_decode(b64) {
        None => Err("is not base64 after the whsec_ prefix"),
        Some(key) if key.is_empty() => Err("is empty"),
        Some(key) => Ok(key),
    }
}

/// Signs request bodies with every configured secret.
pub(crate) struct Signer {
    keys: Vec<hmac::Key>,
}

impl Signer {
    /// `None` without secrets. Secrets that don't decode were refused by `validate` at start.
    pub(crate) fn new(secrets: &WebhookSecrets) -> Option<Signer> {
        let keys: Vec<hmac::Key> = secrets
            .0
            .iter()
            .filter_map(|s| decode(s).ok())
            .map(|k| hmac::Key::new(hmac::HMAC_SHA256, &k))
            .collect();
        (!keys.is_empty()).then_some(Signer { keys })
    }

    /// The three headers for one attempt at sending `body` (uncompressed) as message `id`
    /// at `timestamp` (seconds since the Unix epoch).
    pub(crate) fn headers(&self, id: &str, timestamp: u64, body: &[u8]) -> [(&'static str, String); 3] {
        let prefix = format!("{id}.{timestamp}.");
        let signatures: Vec<String> = self
            .keys
            .iter()
            .map(|key| {
                let mut ctx = hmac::Context::with_key(key);
                ctx.update(prefix.as_bytes());
                ctx.update(body);
                format!("v1,{}", base64(ctx.sign().as_ref()))
            })
            .collect();
        [
            ("webhook-id", id.to_string()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signatures.join(" ")),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(list: &[&str]) -> WebhookSecrets {
        WebhookSecrets(list.iter().map(|s| s.to_string()).collect())
    }

    /// The example of the Standard Webhooks reference libraries' tests.
    #[test]
    fn matches_the_reference_example() {
        let s = secrets(&["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]);
        s.validate().unwrap();
        let signer = Signer::new(&s).unwrap();
        let h = signer.headers("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
        assert_eq!(h[0], ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek".to_string()));
        assert_eq!(h[1], ("webhook-timestamp", "1614265330".to_string()));
        assert_eq!(
            h[2],
            ("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".to_string())
        );
    }

    #[test]
    fn several_secrets_give_several_entries() {
        let s = secrets(&["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "c2Vjb25k"]);
        let h = Signer::new(&s).unwrap().headers("id", 1, b"{}");
        let entries: Vec<&str> = h[2].1.split(' ').collect();
        assert_eq!(entries.len(), 2);
        assert!(entries.iter().all(|e| e.starts_with("v1,") && e.len() == 3 + 44), "{entries:?}");
        assert_ne!(entries[0], entries[1]);
    }

    #[test]
    fn malformed_secrets_are_refused_without_showing_them() {
        for bad in ["whsec_", "whsec_not base64!", "whsec_S3CRET$$"] {
            let e = secrets(&["whsec_c2Vjb25k", bad]).validate().unwrap_err();
            let text = e.to_string();
            assert!(text.contains("webhook_secret") && text.contains("#2"), "{text}");
            assert!(!text.contains("S3CRET") && !text.contains("base64!"), "{text}");
        }
        assert_eq!(format!("{:?}", secrets(&["whsec_S3CRET"])), "1 secret(s)");
        assert!(Signer::new(&secrets(&[])).is_none());
    }
}
