//! The one rule "HTTP answer → what happens next", used by the workers, by sending after
//! shutdown and by the panic hook. The status table itself is `policy::retry::classify_status`;
//! this adds what only the runtime sees: the transport's answer or fault, the endpoint's name
//! for reasons, and `Retry-After`.

use std::time::{Duration, SystemTime};

use crate::policy::encode::otlp;
use crate::policy::retry::{classify_status, parse_retry_after, Verdict};
use crate::state::outcome::Outcome;
use crate::transport::{Answer, Fault};

/// What one attempt asks for next.
pub(crate) enum Next {
    /// A final outcome: delivered, rejected, or failed for a permanent reason.
    Settle(Outcome),
    /// A transient failure: worth another attempt (`retry_after` is the server's floor, clamped).
    Retry { reason: String, retry_after: Option<Duration> },
    /// The endpoint answered 413 to a request of several events: send it in halves.
    Split,
    /// The endpoint answered 2xx but reported refusing `rejected` of the request's records
    /// (OTLP `partialSuccess`): delivered, and counted.
    Partial { status: u16, attempts: u32, rejected: u64, message: String },
}

/// Judges the result of attempt number `attempts` for a request of `events` events sent to
/// `endpoint`. `retry_after_cap` clamps a `Retry-After`.
pub(crate) fn judge(
    result: Result<Answer, Fault>,
    endpoint: &str,
    attempts: u32,
    events: usize,
    retry_after_cap: Duration,
) -> Next {
    let answer = match result {
        Ok(answer) => answer,
        Err(fault) if fault.transient => return Next::Retry { reason: fault.reason, retry_after: None },
        Err(fault) => return Next::Settle(Outcome::Failed { reason: fault.reason, attempts }),
    };
    let status = answer.status;
    match classify_status(status) {
        Verdict::Delivered => {
            match (!answer.excerpt.is_empty()).then(|| otlp::partial_success(&answer.excerpt)).flatten() {
                // Which records were refused is not said: all of them, or some of the batch.
                Some((rejected, message)) if rejected >= events as u64 => Next::Settle(Outcome::Rejected {
                    status,
                    attempts,
                    reason: format!("{endpoint} rejected all {rejected} records: {message}"),
                }),
                Some((rejected, message)) => Next::Partial { status, attempts, rejected, message },
                None => Next::Settle(Outcome::Delivered { status, attempts }),
            }
        }
        Verdict::TooLarge if events > 1 => Next::Split,
        Verdict::Reject | Verdict::TooLarge => {
            Next::Settle(Outcome::Rejected { status, attempts, reason: answer.excerpt })
        }
        Verdict::Fail => Next::Settle(Outcome::Failed {
            reason: format!("{endpoint} answered {status}: proxy authentication required"),
            attempts,
        }),
        Verdict::Retry => {
            let retry_after = answer
                .retry_after
                .as_deref()
                .and_then(|v| parse_retry_after(v, SystemTime::now(), retry_after_cap));
            Next::Retry { reason: format!("{endpoint} answered {status}"), retry_after }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, retry_after: Option<&str>) -> Result<Answer, Fault> {
        Ok(Answer { status, retry_after: retry_after.map(str::to_string), excerpt: "why".into() })
    }

    const CAP: Duration = Duration::from_secs(60);

    #[test]
    fn answers_map_to_outcomes() {
        assert!(matches!(
            judge(answer(204, None), "h:1", 2, 1, CAP),
            Next::Settle(Outcome::Delivered { status: 204, attempts: 2 })
        ));
        assert!(matches!(
            judge(answer(400, None), "h:1", 1, 1, CAP),
            Next::Settle(Outcome::Rejected { status: 400, .. })
        ));
        assert!(matches!(
            judge(answer(413, None), "h:1", 1, 1, CAP),
            Next::Settle(Outcome::Rejected { status: 413, .. })
        ));
        assert!(matches!(judge(answer(413, None), "h:1", 1, 2, CAP), Next::Split));
        match judge(answer(407, None), "h:1", 1, 1, CAP) {
            Next::Settle(Outcome::Failed { reason, .. }) => {
                assert!(reason.contains("proxy authentication"), "{reason}")
            }
            _ => panic!("407 fails"),
        }
        match judge(answer(503, Some("7")), "h:1", 1, 1, CAP) {
            Next::Retry { reason, retry_after } => {
                assert_eq!(reason, "h:1 answered 503");
                assert_eq!(retry_after, Some(Duration::from_secs(7)));
            }
            _ => panic!("503 retries"),
        }
        assert!(matches!(judge(Err(Fault::transient("reset".into())), "h:1", 1, 1, CAP), Next::Retry { .. }));
        assert!(matches!(
            judge(Err(Fault::permanent("tls".into())), "h:1", 1, 1, CAP),
            Next::Settle(Outcome::Failed { .. })
        ));
    }
}
