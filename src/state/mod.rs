//! State without threads: the queue (with the retry schedule and the replay backlog), the ledger that settles every
//! event once, outcomes and receipts, the counters and their snapshot, the shutdown report and
//! the spill file. Nothing here starts a thread or sleeps; callers wait.

pub(crate) mod ledger;
pub(crate) mod lifecycle;
pub(crate) mod metrics;
pub(crate) mod outcome;
pub(crate) mod queue;
pub(crate) mod report;
pub(crate) mod schedule;
pub(crate) mod spill;
pub(crate) mod stats;
