//! Shared test support: the scripted loopback sink, its run-time fault switch, and small
//! helpers.

#![allow(dead_code)] // Each test binary uses a different part of it.

pub mod conns;
pub mod faults;
pub mod proxy;
pub mod sink;
pub mod tls;

#[allow(unused_imports)]
pub use faults::Faults;
#[allow(unused_imports)]
pub use sink::{Progress, Reply, Request, Sink};

use std::time::Duration;

/// Generous bound for waits that normally end in milliseconds; only a failing test reaches it.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Checks the accounting invariant on a snapshot.
#[track_caller]
pub fn assert_invariant(s: &posthaste::Stats) {
    assert_eq!(s.submitted, s.settled() + s.queued + s.in_flight, "invariant broken: {s:?}");
}

/// An error with a source, for the logging front ends' error chains: "could not save the
/// report", caused by the wrapped I/O error.
#[derive(Debug)]
pub struct Wrapped(pub std::io::Error);

impl std::fmt::Display for Wrapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("could not save the report")
    }
}

impl std::error::Error for Wrapped {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// A retry policy with tiny waits, for tests that exercise retries quickly.
pub fn fast_retry() -> posthaste::Retry {
    posthaste::Retry::new()
        .initial_delay(Duration::from_millis(1))
        .max_delay(Duration::from_millis(5))
        .max_attempts(5)
}

/// A port on 127.0.0.1 with nothing listening (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A fresh directory under the system's temp dir, removed (with its content) when dropped.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("posthaste-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    /// The spill files (`*.jsonl`) in it, sorted.
    pub fn spill_files(&self) -> Vec<std::path::PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(&self.0)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        files.sort();
        files
    }

    /// All lines of all spill files.
    pub fn spilled_lines(&self) -> Vec<String> {
        self.spill_files()
            .iter()
            .flat_map(|f| std::fs::read_to_string(f).unwrap().lines().map(str::to_string).collect::<Vec<_>>())
            .collect()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
