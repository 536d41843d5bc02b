//! [`Instance`]: everything one guard runs — the default endpoint and the named ones, each a
//! [`Shared`] with its own queue, gate, transport, workers and ledger — and the one shutdown
//! path over all of them under one deadline.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;

use super::poller::PollCounters;
use super::{shutdown, Shared};
use crate::policy::poll::PollStats;
use crate::policy::route::Routing;
use crate::state::metrics::Metrics;
use crate::state::report::Report;
use crate::state::stats::Stats;

/// One guard's endpoints. Index 0 is the default endpoint (the builder's URL).
pub(crate) struct Instance {
    pub(crate) endpoints: Vec<Arc<Shared>>,
    /// `names[i]` is `endpoints[i]`'s name; `names[0]` is `DEFAULT_ENDPOINT`.
    pub(crate) names: Vec<String>,
    /// Set when the builder was given a route: `send` consults it.
    pub(crate) routing: Option<Routing>,
    /// Each poller's name and counters.
    pub(crate) pollers: Vec<(String, Arc<PollCounters>)>,
    /// The pollers' threads: dropping the stop sender wakes and ends them; each drops its
    /// `done` sender when it ends.
    poll_life: Mutex<PollLife>,
    /// The report of the first shutdown (returned again by later calls).
    report: Mutex<Option<Report>>,
}

/// What the shutdown path needs to stop the pollers.
#[derive(Default)]
pub(crate) struct PollLife {
    pub(crate) stop: Option<Sender<()>>,
    pub(crate) done: Option<Receiver<()>>,
    pub(crate) handles: Vec<JoinHandle<()>>,
}

impl Instance {
    pub(crate) fn new(
        endpoints: Vec<Arc<Shared>>,
        names: Vec<String>,
        routing: Option<Routing>,
        pollers: Vec<(String, Arc<PollCounters>)>,
        poll_life: PollLife,
    ) -> Instance {
        Instance {
            endpoints,
            names,
            routing,
            pollers,
            poll_life: Mutex::new(poll_life),
            report: Mutex::new(None),
        }
    }

    /// One poller's counters.
    pub(crate) fn poll_stats(&self, name: &str) -> Option<PollStats> {
        self.pollers.iter().find(|(n, _)| n == name).map(|(_, c)| c.snapshot())
    }

    /// The default endpoint.
    pub(crate) fn default_endpoint(&self) -> &Arc<Shared> {
        &self.endpoints[0]
    }

    /// The index of the endpoint called `name`.
    pub(crate) fn index_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// The counters of every endpoint, summed (see [`Stats::add`]).
    pub(crate) fn stats(&self) -> Stats {
        let mut total = Stats::default();
        for shared in &self.endpoints {
            total.add(&shared.stats());
        }
        total
    }

    /// The metrics of every endpoint, combined (see [`Metrics::combine`]).
    pub(crate) fn metrics(&self) -> Metrics {
        Metrics::combine(self.endpoints.iter().map(|s| s.metrics()))
    }

    /// Each endpoint's name and counters, the default endpoint first.
    pub(crate) fn endpoint_stats(&self) -> Vec<(String, Stats)> {
        self.names.iter().cloned().zip(self.endpoints.iter().map(|s| s.stats())).collect()
    }

    /// The one shutdown path for the whole instance: intake closes and every wait wakes on
    /// every endpoint first, so all of them drain at once; then each endpoint's shutdown runs
    /// under the same deadline. Idempotent: later calls return the first call's report.
    pub(crate) fn shutdown(&self, deadline: Instant) -> Report {
        let mut life = self.report.lock();
        if let Some(report) = &*life {
            return report.clone();
        }
        let began = Instant::now();
        // Pollers first: they stop feeding the endpoints, and a poll in progress ends within
        // its request timeout or is detached at the deadline.
        let mut poll_life = std::mem::take(&mut *self.poll_life.lock());
        drop(poll_life.stop.take());
        let deadlines: Vec<Instant> = self.endpoints.iter().map(|s| s.begin_shutdown(deadline)).collect();
        let mut reports = Vec::with_capacity(self.endpoints.len());
        for (shared, deadline) in self.endpoints.iter().zip(deadlines) {
            reports.push(shutdown(shared, deadline));
        }
        let mut report = reports[0].clone();
        report.stats = Stats::default();
        report.endpoints = Vec::with_capacity(reports.len());
        for (name, r) in self.names.iter().zip(&reports) {
            report.stats.add(&r.stats);
            report.deadline_reached |= r.deadline_reached;
            report.endpoints.push((name.clone(), r.stats));
        }
        report.detached_workers = reports.iter().map(|r| r.detached_workers).sum();
        let mut polls_done = true;
        if let Some(done) = poll_life.done.take() {
            polls_done = loop {
                match done.recv_deadline(deadline) {
                    Ok(()) => continue,
                    Err(RecvTimeoutError::Disconnected) => break true,
                    Err(RecvTimeoutError::Timeout) => break false,
                }
            };
        }
        for handle in poll_life.handles.drain(..) {
            if polls_done || handle.is_finished() {
                let _ = handle.join();
            } else {
                report.detached_workers += 1;
                report.deadline_reached = true;
            }
        }
        report.pollers = self.pollers.iter().map(|(n, c)| (n.clone(), c.snapshot())).collect();
        report.elapsed = began.elapsed();
        *life = Some(report.clone());
        report
    }
}
