//! The process-wide hooks. Both are installed once per process and find the running instances
//! through registries of `Weak<Shared>`, so a guard that was leaked (or lives in a static) is
//! still found, and one that was dropped is simply skipped. Neither hook takes a lock that
//! posthaste holds while running user code or while a worker sends: the exit hook only
//! try-locks the shutdown state until its deadline, and the panic hook sends through a
//! transport of its own on a helper thread and waits for it with a timeout.

mod exit;
mod panic;

use std::sync::{Arc, Mutex as StdMutex, PoisonError};

use crate::error::Error;
use crate::runtime::Shared;
use crate::transport::Transport;

/// Registers the instance with the process-wide hooks it asked for.
pub(crate) fn install(shared: &Arc<Shared>, panic_transport: Option<Arc<Transport>>) -> Result<(), Error> {
    if shared.options.exit_hook {
        exit::register_exit(shared)?;
    }
    if let Some(transport) = panic_transport {
        panic::register_panic(shared, transport);
    }
    Ok(())
}

fn lock<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The registries hold plain data that a panic can't leave half-updated.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
