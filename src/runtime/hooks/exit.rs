//! The exit hook: `atexit(3)` runs the shutdown path of every live instance that asked for it,
//! for programs that end through `process::exit` or leak their guard.

use std::panic;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex, Once, Weak};
use std::time::Instant;

use super::lock;
use crate::error::Error;
use crate::runtime::shutdown::try_shutdown;
use crate::runtime::Shared;
use crate::util::OwnScope;

static EXIT_REGISTRY: StdMutex<Vec<Weak<Shared>>> = StdMutex::new(Vec::new());
static EXIT_REGISTER: Once = Once::new();
static EXIT_REGISTERED: AtomicBool = AtomicBool::new(false);
static EXIT_RAN: AtomicBool = AtomicBool::new(false);

pub(super) fn register_exit(shared: &Arc<Shared>) -> Result<(), Error> {
    EXIT_REGISTER.call_once(|| EXIT_REGISTERED.store(atexit(at_exit), Ordering::Release));
    if !EXIT_REGISTERED.load(Ordering::Acquire) {
        return Err(Error::InvalidOption {
            option: "exit_hook",
            reason: "the C library refused to register an atexit handler".into(),
        });
    }
    let mut registry = lock(&EXIT_REGISTRY);
    registry.retain(|w| w.strong_count() > 0);
    registry.push(Arc::downgrade(shared));
    Ok(())
}

#[allow(unsafe_code)] // atexit(3) with a plain `extern "C" fn` that never unwinds.
fn atexit(f: extern "C" fn()) -> bool {
    // SAFETY: `f` is a valid function for the life of the process and catches every panic.
    unsafe { libc::atexit(f) == 0 }
}

extern "C" fn at_exit() {
    // Unwinding out of an `extern "C"` function aborts; nothing may escape.
    let _ = panic::catch_unwind(run_exit_hooks);
}

/// Shuts down every live instance that asked for the exit hook, all under one clock: intake
/// closes everywhere first, so the instances drain in parallel.
fn run_exit_hooks() {
    if EXIT_RAN.swap(true, Ordering::AcqRel) {
        return;
    }
    // The shutdown runs on the thread that called `exit`: the logging front ends ignore it.
    let _own = OwnScope::enter();
    let targets: Vec<Arc<Shared>> = lock(&EXIT_REGISTRY).drain(..).filter_map(|w| w.upgrade()).collect();
    let now = Instant::now();
    let deadlines: Vec<Instant> =
        targets.iter().map(|shared| shared.begin_shutdown(now + shared.options.exit_timeout)).collect();
    for (shared, deadline) in targets.iter().zip(deadlines) {
        // Try-lock up to the deadline: `exit` may be called from an `on_outcome` callback
        // running inside a shutdown on this very thread.
        let _ = try_shutdown(shared, deadline);
    }
}
