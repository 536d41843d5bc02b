//! Starting an instance: the transport, the spill file, replay, the workers, the hooks. Every
//! problem is reported here, before anything runs; a failure part-way stops what started.

use std::sync::Arc;
use std::time::Instant;

use super::{hooks, replay, shutdown, worker, RuntimeOptions, Shared};
use crate::error::Error;
use crate::state::spill::Spill;
use crate::transport::{Transport, TransportOptions};

/// Builds and starts one instance. The options were validated by the api layer; the
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
