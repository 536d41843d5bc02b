//! Resilience options of [`Builder`]: the retry policy, the circuit breaker and the retry
//! budget. Their rules live in `policy/retry.rs` and `policy/gate.rs`.

use super::Builder;
use crate::policy::gate::{CircuitBreaker, RetryBudget};
use crate::policy::retry::Retry;

impl Builder {
    /// The retry policy. Defaults to [`Retry::new()`]: 10 attempts, 500 ms initial backoff
    /// doubling up to 30 s, 120 s in all.
    pub fn retry(mut self, policy: Retry) -> Builder {
        self.config.runtime.retry = policy;
        self
    }

    /// The circuit breaker. Defaults to [`CircuitBreaker::new()`]: opens at a failure rate
    /// shown above 50 % over at least 20 requests in 10 s, or when 5 or more requests in 10 s
    /// all failed; probes after about 1 s, then at intervals doubling to 8 s, each ±50 % at random.
    pub fn circuit_breaker(mut self, breaker: CircuitBreaker) -> Builder {
        self.config.runtime.breaker = breaker;
        self
    }

    /// The retry budget. Defaults to [`RetryBudget::new()`]: retries ≤ 50 % of first attempts
    /// plus 10 per second.
    pub fn retry_budget(mut self, budget: RetryBudget) -> Builder {
        self.config.runtime.budget = budget;
        self
    }
}
