//! Starting an instance: the transport, the spill file, replay, the workers, the hooks. Every
//! problem is reported here, before anything runs; a failure part-way stops what started.

use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, Sender};

use super::instance::{Instance, PollLife};
use super::poller::{self, PollCounters, PollPlan};
use super::{hooks, replay, shutdown, worker, RuntimeOptions, Shared};
use crate::error::Error;
use crate::policy::poll::{Poll, Sink};
use crate::policy::route::Route;
use crate::state::lifecycle::LifecycleEvent;
use crate::state::spill::Spill;
use crate::transport::Header;
use crate::transport::{Transport, TransportOptions};

/// One endpoint to start: its name and options (validated by the api layer).
pub(crate) struct Plan {
    pub(crate) name: String,
    pub(crate) runtime: RuntimeOptions,
    pub(crate) transport: TransportOptions,
}

/// Starts every endpoint of one guard (the default one first) and resolves the route. A
/// failure part-way stops the endpoints already started; an error of a named endpoint says
/// which one.
pub(crate) fn start_instance(
    plans: Vec<Plan>,
    route: Option<&Route>,
    polls: Vec<(String, Poll)>,
) -> Result<Arc<Instance>, Error> {
    let names: Vec<String> = plans.iter().map(|p| p.name.clone()).collect();
    let routing = match route {
        Some(r) => Some(r.resolve(|name| names.iter().position(|n| n == name))?),
        None => None,
    };
    // Every poller is checked (and its transport built) before anything starts.
    let mut poll_plans = Vec::with_capacity(polls.len());
    for (name, poll) in polls {
        let plan = plan_poll(&name, poll, &plans[0].transport, &names)
            .map_err(|e| Error::Poll { name: name.clone(), error: Box::new(e) })?;
        poll_plans.push(plan);
    }
    let mut endpoints = Vec::with_capacity(plans.len());
    for (index, plan) in plans.into_iter().enumerate() {
        match start(plan.runtime, plan.transport) {
            Ok(shared) => endpoints.push(shared),
            Err(e) => {
                let now = Instant::now();
                for shared in &endpoints {
                    shutdown(shared, now);
                }
                return Err(if index == 0 {
                    e
                } else {
                    Error::Endpoint { name: plan.name, error: Box::new(e) }
                });
            }
        }
    }
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
    let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(0);
    let mut counters = Vec::with_capacity(poll_plans.len());
    let mut handles = Vec::with_capacity(poll_plans.len());
    let mut spawn_error = None;
    for (plan, forward) in poll_plans {
        let c = Arc::new(PollCounters::default());
        counters.push((plan.name.clone(), c.clone()));
        let plan = PollPlan { forward: forward.map(|i| endpoints[i].clone()), ..plan };
        match poller::spawn(plan, c, stop_rx.clone(), done_tx.clone()) {
            Ok(handle) => handles.push(handle),
            Err(e) => {
                spawn_error = Some(Error::Spawn(e));
                break;
            }
        }
    }
    drop(done_tx);
    let life = PollLife { stop: Some(stop_tx), done: Some(done_rx), handles };
    let instance = Arc::new(Instance::new(endpoints, names, routing, counters, life));
    if let Some(e) = spawn_error {
        instance.shutdown(Instant::now());
        return Err(e);
    }
    Ok(instance)
}

/// Checks a poller's options against the network options `net` and the endpoint `names`, and
/// builds its transport; the forward target comes back as an endpoint index.
fn plan_poll(
    name: &str,
    poll: Poll,
    net: &TransportOptions,
    names: &[String],
) -> Result<(PollPlan, Option<usize>), Error> {
    let timing = poll.timing(net.request_timeout)?;
    let forward = match &poll.sink {
        Some(Sink::Forward(target)) => {
            Some(names.iter().position(|n| n == target).ok_or_else(|| Error::InvalidOption {
                option: "poll",
                reason: format!("forward_to: no endpoint is called {target:?}"),
            })?)
        }
        _ => None,
    };
    let mut options = net.clone();
    options.url = poll.url_with_query();
    options.method = poll.method.clone();
    options.headers =
        poll.headers.iter().map(|(n, v)| Header { name: n.clone(), value: v.clone() }).collect();
    options.request_timeout = timing.timeout;
    let transport = Transport::new(&options, 1)?;
    if transport.is_forwarded() {
        return Err(Error::InvalidOption {
            option: "poll",
            reason: "a plain-http URL behind an HTTP proxy is not supported for pollers: use https:// or no_proxy()"
                .into(),
        });
    }
    Ok((PollPlan { name: name.to_string(), poll, timing, transport, forward: None }, forward))
}

/// Builds and starts one endpoint. The options were validated by the api layer; the
/// transport checks its own (URL, method, headers, proxy, certificates).
pub(crate) fn start(options: RuntimeOptions, net: TransportOptions) -> Result<Arc<Shared>, Error> {
    let workers = options.workers;
    let transport = Transport::new(&net, workers)?;
    let spill = match &options.spill_dir {
        Some(dir) => Some(Arc::new(Spill::open(dir, options.spill_max_bytes)?)),
        None => None,
    };
    // The panic hook's own transport: a panic inside the workers' can't wedge it.
    let panic_transport =
        if options.panic_hook { Some(Arc::new(Transport::new(&net, workers)?)) } else { None };
    let shared = Arc::new(Shared::new(options, transport, spill));
    // Spilled events of earlier runs go ahead of everything (workers take them first).
    replay::replay(&shared);
    let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(0);
    let mut handles = Vec::with_capacity(workers);
    let mut spawn_error = None;
    for index in 0..workers {
        match worker::spawn(&shared, index, done_tx.clone()) {
            Ok(handle) => handles.push(handle),
            Err(e) => {
                spawn_error = Some(Error::Spawn(e));
                break;
            }
        }
    }
    // With the `metrics` feature the reporter also publishes, every second by default.
    let publishing = cfg!(feature = "metrics");
    let report_every = shared.options.report_interval.or(publishing.then_some(Duration::from_secs(1)));
    if spawn_error.is_none() {
        if let Some(interval) = report_every {
            match reporter(&shared, interval, done_tx.clone()) {
                Ok(handle) => handles.push(handle),
                Err(e) => spawn_error = Some(Error::Spawn(e)),
            }
        }
    }
    drop(done_tx);
    {
        let mut threads = shared.threads.lock();
        threads.handles = handles;
        threads.done_rx = Some(done_rx);
    }
    let installed = match spawn_error {
        Some(e) => Err(e),
        None => hooks::install(&shared, panic_transport),
    };
    if let Err(e) = installed {
        // Stop the ones already running before reporting.
        shutdown(&shared, Instant::now());
        return Err(e);
    }
    let endpoint = shared.transport.endpoint().to_string();
    shared.ledger.emit(|| LifecycleEvent::Started { endpoint, workers: shared.options.workers });
    Ok(shared)
}

/// The reporter thread: every `interval` until shutdown begins, a `Report` to `on_lifecycle`
/// (when `report_interval` is set) and, with the `metrics` feature, a round of published
/// series (once more at the end, so the final counts are seen). `done` is dropped when it
/// ends, like a worker's.
fn reporter(shared: &Arc<Shared>, interval: Duration, done: Sender<()>) -> std::io::Result<JoinHandle<()>> {
    let shared = shared.clone();
    thread::Builder::new().name("posthaste-reporter".into()).spawn(move || {
        // The logging front ends drop records from this thread (`on_lifecycle` runs here).
        crate::util::mark_own_thread();
        let _done = done;
        while let Err(RecvTimeoutError::Timeout) = shared.shutdown_rx.recv_timeout(interval) {
            if shared.options.report_interval.is_some() {
                shared.ledger.emit(|| LifecycleEvent::Report(shared.metrics()));
            }
            #[cfg(feature = "metrics")]
            super::publish::publish(&shared);
        }
        #[cfg(feature = "metrics")]
        super::publish::publish(&shared);
    })
}
