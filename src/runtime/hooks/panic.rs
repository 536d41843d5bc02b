//! The panic hook: one crash event sent synchronously, through a transport of the instance's
//! own, before the previously installed hook runs.

use std::backtrace::{Backtrace, BacktraceStatus};
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe, PanicHookInfo};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex, Once, Weak};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::lock;
use crate::event::Event;
use crate::policy::encode;
use crate::runtime::judge::{judge, Next};
use crate::runtime::{fresh_id, unix_now, Shared};
use crate::state::outcome::Envelope;
use crate::transport::Transport;
use crate::util::{mark_own_thread, panic_text, rfc3339_micros, OwnScope};

struct PanicTarget {
    shared: Weak<Shared>,
    /// Not the workers' transport: a panic inside theirs can't wedge this one.
    transport: Arc<Transport>,
}

static PANIC_REGISTRY: StdMutex<Vec<PanicTarget>> = StdMutex::new(Vec::new());
static PANIC_INSTALL: Once = Once::new();
/// A crash event is being sent (by any thread).
static PANIC_SENDING: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// This thread is inside our hook: a panic now must not send again.
    static IN_PANIC_HOOK: Cell<bool> = const { Cell::new(false) };
}

pub(super) fn register_panic(shared: &Arc<Shared>, transport: Arc<Transport>) {
    {
        let mut registry = lock(&PANIC_REGISTRY);
        registry.retain(|t| t.shared.strong_count() > 0);
        registry.push(PanicTarget { shared: Arc::downgrade(shared), transport });
    }
    PANIC_INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            on_panic(info);
            previous(info);
        }));
    });
}

fn on_panic(info: &PanicHookInfo<'_>) {
    let nested = IN_PANIC_HOOK.try_with(|flag| flag.replace(true)).unwrap_or(true);
    if nested {
        return;
    }
    // While the hook works on the panicking thread, the logging front ends ignore it.
    let _own = OwnScope::enter();
    if !PANIC_SENDING.swap(true, Ordering::AcqRel) {
        // Panicking in a panic hook aborts the process: contain anything unexpected.
        let _ = panic::catch_unwind(AssertUnwindSafe(|| send_crash_events(info)));
        PANIC_SENDING.store(false, Ordering::Release);
    }
    let _ = IN_PANIC_HOOK.try_with(|flag| flag.set(false));
}

fn send_crash_events(info: &PanicHookInfo<'_>) {
    // Never block on the registry: it is only held briefly, but a panic may strike while
    // this very thread holds it.
    let targets: Vec<(Arc<Shared>, Arc<Transport>)> = {
        let registry = match PANIC_REGISTRY.try_lock() {
            Ok(r) => r,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return,
        };
        registry.iter().filter_map(|t| Some((t.shared.upgrade()?, t.transport.clone()))).collect()
    };
    if targets.is_empty() {
        return;
    }
    let event = crash_event(info);
    for (shared, transport) in targets {
        send_crash(&shared, transport, &event);
    }
}

/// The crash event for `info` (documented on [`Builder::panic_hook`](crate::Builder::panic_hook)):
/// the logging front ends' shape (`timestamp`, `level`, `target`, `message`, `file`, `line`)
/// plus the fields it always had.
fn crash_event(info: &PanicHookInfo<'_>) -> Event {
    let message = panic_text(info.payload());
    let location = info.location().map(|l| json!({"file": l.file(), "line": l.line(), "column": l.column()}));
    let thread = thread::current();
    let backtrace = Backtrace::capture();
    let backtrace = (backtrace.status() == BacktraceStatus::Captured).then(|| backtrace.to_string());
    let now = SystemTime::now();
    let millis = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let timestamp = String::from_utf8_lossy(&rfc3339_micros(now)).into_owned();
    Event::from(json!({
        "timestamp": timestamp,
        "level": "ERROR",
        "target": "panic",
        "message": message,
        "file": info.location().map(|l| l.file()),
        "line": info.location().map(|l| l.line()),
        "event": "panic",
        "location": location,
        "thread": thread.name().unwrap_or("<unnamed>"),
        "backtrace": backtrace,
        "pid": std::process::id(),
        "timestamp_ms": millis,
    }))
}

/// Sends one crash event within the panic timeout; spills it if the endpoint is unreachable.
fn send_crash(shared: &Arc<Shared>, transport: Arc<Transport>, event: &Event) {
    let timeout = shared.options.panic_timeout;
    let deadline = Instant::now() + timeout;
    // An open circuit or a Retry-After pause: don't wait on a dead endpoint, spill at once.
    let reached = if shared.gate.blocked_until(Instant::now()).is_some() {
        Reached::No
    } else {
        let crash = [Envelope::new(event.clone(), 0, None)];
        let (body, headers) = encode::encode_once(&shared.options.encode, &crash, (&fresh_id(), unix_now()));
        let (tx, rx) = crossbeam_channel::bounded(1);
        let send = move || {
            // The logging front ends drop records from this thread (the HTTP stack's too).
            mark_own_thread();
            let cap = Duration::ZERO; // Retry-After does not matter: there is no retry.
            let reached = match judge(transport.send(&body, &headers, Some(timeout)), "", 1, 1, cap) {
                Next::Retry { .. } => Reached::No,
                // Delivered, refused, or a permanent failure (TLS, proxy auth): spilling won't help.
                Next::Settle(_) | Next::Split | Next::Partial { .. } => Reached::Yes,
            };
            let _ = tx.send(reached);
        };
        // On a helper thread, so that the wait is bounded even if a phase timeout isn't.
        match thread::Builder::new().name("posthaste-panic".into()).spawn(send) {
            Ok(_) => rx.recv_deadline(deadline).unwrap_or(Reached::No),
            Err(_) => Reached::No,
        }
    };
    if reached == Reached::No {
        if let Some(spill) = shared.ledger.spill() {
            let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(10));
            spill.append([event], Some(left));
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reached {
    Yes,
    No,
}
