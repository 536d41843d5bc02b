//! Pure rules, with the clock and the jitter injected: the retry policy and the status table
//! (`retry.rs`), the endpoint gate — `Retry-After` pause, circuit breaker, retry budget
//! (`gate.rs`), and how events become request bodies (`encode/`). No I/O, no threads.

pub(crate) mod encode;
pub(crate) mod gate;
pub(crate) mod poll;
pub(crate) mod retry;
pub(crate) mod route;
