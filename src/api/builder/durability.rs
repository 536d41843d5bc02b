//! Durability options of [`Builder`]: the exit hook, the panic hook, what `send` does after
//! shutdown, and spilling undeliverable events to disk.

use std::path::PathBuf;
use std::time::Duration;

use super::Builder;
use crate::runtime::AfterShutdown;

impl Builder {
    /// Runs the shutdown path when the process exits without the guard having been dropped:
    /// through [`std::process::exit`] (which skips destructors), or returning from `main`
    /// while the guard is leaked or kept in a `static`. It then gets its own deadline,
    /// [`Builder::exit_timeout`]. Registered with the C library's `atexit`; runs once, on the
    /// exiting thread, and does nothing for a guard already shut down. It does not run on
    /// signals that kill the process (`SIGKILL`, or `SIGTERM`/`SIGINT` without a handler) nor
    /// on `abort`. Defaults to `false`.
    ///
    /// ```no_run
    /// let guard = posthaste::builder("https://collector.example/ingest").exit_hook(true).start()?;
    /// guard.client().send(serde_json::json!({"event": "bye"}))?;
    /// std::process::exit(0); // still delivered (within exit_timeout)
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn exit_hook(mut self, on: bool) -> Builder {
        self.config.runtime.exit_hook = on;
        self
    }

    /// The shutdown deadline used by the exit hook (0 – 10 minutes). Defaults to 1 s.
    pub fn exit_timeout(mut self, d: Duration) -> Builder {
        self.config.runtime.exit_timeout = d;
        self
    }

    /// On panic (any thread), sends one crash event straight to the endpoint, bypassing the
    /// queue, then calls the panic hook that was installed before (so the usual message still
    /// prints). The event has the logging front ends' shape (see the crate docs, *Logging*):
    /// `{"timestamp":…,"level":"ERROR","target":"panic","message":…,"file":…,"line":…,
    /// "event":"panic","location":{"file":…,"line":…,"column":…},"thread":…,"backtrace":…,
    /// "pid":…,"timestamp_ms":…}`; `backtrace` is `null` unless backtraces are enabled
    /// (`RUST_BACKTRACE` / `RUST_LIB_BACKTRACE`). (`log` and `tracing` have no level above
    /// `ERROR`; `"event":"panic"` tells a crash from a logged error.) It is sent with the configured
    /// headers through a connection of its own, waiting at most [`Builder::panic_timeout`];
    /// if that fails and a spill directory is set, it is spilled. One crash event at a time:
    /// a panic on another thread while one is being sent is passed straight to the previous
    /// hook. Install your own panic hook *before* `start()` for it to be chained. Queued events
    /// are not flushed by the hook: unwinding drops the guard as usual (with `panic = "abort"`
    /// they are lost, as on `SIGKILL`). Defaults to `false`.
    pub fn panic_hook(mut self, on: bool) -> Builder {
        self.config.runtime.panic_hook = on;
        self
    }

    /// The longest the panic hook waits for the crash event to be sent (1 ms – 60 s).
    /// Defaults to 2 s.
    pub fn panic_timeout(mut self, d: Duration) -> Builder {
        self.config.runtime.panic_timeout = d;
        self
    }

    /// What `send` does once shutdown has begun. Defaults to [`AfterShutdown::Refuse`].
    pub fn after_shutdown(mut self, mode: AfterShutdown) -> Builder {
        self.config.runtime.after_shutdown = mode;
        self
    }

    /// Keeps undeliverable events on disk, in JSON-lines files in `dir` (created if needed;
    /// checked by `start()`). An event is spilled instead of ending `Cancelled` or `Abandoned`
    /// at the shutdown deadline, or `Failed` after its retries ran out on transient errors
    /// (connection errors, timeouts, 408/425/429/5xx); it then settles
    /// [`Outcome::Spilled`](crate::Outcome::Spilled). Each write is synced to disk before the event settles, so
    /// everything spilled is on disk when shutdown returns. The next `start()` with the same
    /// directory re-queues spilled events ahead of new ones ([`Builder::spill_replay`]).
    /// Several processes may share a directory (on a local file system: files are locked
    /// with `flock`). Defaults to no spilling.
    ///
    /// ```no_run
    /// let guard = posthaste::builder("https://collector.example/ingest")
    ///     .spill_dir("/var/lib/myapp/posthaste")
    ///     .start()?;
    /// # drop(guard);
    /// # Ok::<(), posthaste::Error>(())
    /// ```
    pub fn spill_dir(mut self, dir: impl Into<PathBuf>) -> Builder {
        self.config.runtime.spill_dir = Some(dir.into());
        self
    }

    /// The most bytes this instance writes to its spill file; events that don't fit keep
    /// their outcome and are counted in [`Stats::spill_failed`](crate::Stats::spill_failed).
    /// Replay also reads about this much at one start (the rest waits for the next).
    /// Defaults to 64 MiB.
    pub fn spill_max_bytes(mut self, bytes: u64) -> Builder {
        self.config.runtime.spill_max_bytes = bytes;
        self
    }

    /// Whether `start()` replays the spill files of runs that have ended: their events are
    /// counted `submitted` and `replayed`, taken by workers before anything queued, and each
    /// file is removed once all its events have an outcome (delivered, refused, or spilled
    /// again). Torn or corrupt lines are skipped and counted in
    /// [`Stats::replay_skipped`](crate::Stats::replay_skipped). Defaults to `true` (with a
    /// spill directory).
    pub fn spill_replay(mut self, on: bool) -> Builder {
        self.config.runtime.spill_replay = on;
        self
    }
}
