//! Starting an instance: the transport, the spill file, replay, the workers, the hooks. Every
//! problem is reported here, before anything runs; a failure part-way stops what started.

use std::sync::Arc;
use std::time::Instant;

use super::instance::Instance;
use super::{hooks, replay, shutdown, worker, RuntimeOptions, Shared};
use crate::error::Error;
use crate::policy::route::Route;
use crate::state::spill::Spill;
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
pub(crate) fn start_instance(plans: Vec<Plan>, route: Option<&Route>) -> Result<Arc<Instance>, Error> {
    let names: Vec<String> = plans.iter().map(|p| p.name.clone()).collect();
    let routing = match route {
        Some(r) => Some(r.resolve(|name| names.iter().position(|n| n == name))?),
        None => None,
    };
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
    Ok(Arc::new(Instance::new(endpoints, names, routing)))
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
    Ok(shared)
}
