//! Starting an instance: the transport, the spill file, replay, the workers, the hooks. Every
//! problem is reported here, before anything runs; a failure part-way stops what started.

use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, Sender};

use super::{hooks, replay, shutdown, worker, RuntimeOptions, Shared};
use crate::error::Error;
use crate::state::lifecycle::LifecycleEvent;
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
