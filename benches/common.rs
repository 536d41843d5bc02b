//! What the end-to-end and CPU-overhead benchmarks share: the event they ship and where they
//! write their results.

#![allow(dead_code)] // Each bench binary uses a different part of it.

use std::path::PathBuf;

/// A ~200-byte log line (about 230 bytes as compact JSON).
#[derive(serde::Serialize)]
pub struct Line {
    pub ts: u64,
    pub level: &'static str,
    pub logger: &'static str,
    pub msg: &'static str,
    pub step: u64,
    pub residual: f64,
    pub host: &'static str,
    pub tags: [&'static str; 2],
}

pub fn line(i: u64) -> Line {
    Line {
        ts: 1_722_000_000_000 + i,
        level: "info",
        logger: "solver.inner_loop",
        msg: "step converged within tolerance after refinement",
        step: i,
        residual: 0.000_123_4,
        host: "node-17.cluster.internal",
        tags: ["numeric", "hot"],
    }
}

/// A guard whose one worker is kept quiet (its endpoint refuses connections and its backoff is
/// 60 s) and whose queue holds `events` without dropping: handing events over costs what it
/// costs, with nothing else going on. For the `send` and logging benchmarks.
pub fn quiet_guard(events: usize) -> posthaste::Guard {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    posthaste::builder(format!("http://127.0.0.1:{closed_port}/"))
        .workers(1)
        .queue_capacity(events + 16)
        .queue_bytes(1 << 34)
        .retry(
            posthaste::Retry::new()
                .initial_delay(std::time::Duration::from_secs(60))
                .max_delay(std::time::Duration::from_secs(60))
                .jitter(false),
        )
        .start()
        .unwrap()
}

/// The accounting invariant after shutdown: every accepted event has exactly one outcome.
/// A broken invariant fails the benchmark.
pub fn check_invariant(what: &str, stats: &posthaste::Stats) {
    assert_eq!(
        (stats.submitted, stats.queued, stats.in_flight),
        (stats.settled(), 0, 0),
        "{what}: accounting invariant broken after shutdown: {stats:?}"
    );
}

/// `POSTHASTE_BENCH_OUT/<name>` when the variable is set (by `scripts/bench.sh`).
pub fn out_file(name: &str) -> Option<PathBuf> {
    std::env::var_os("POSTHASTE_BENCH_OUT").map(|dir| {
        let dir = PathBuf::from(dir);
        let _ = std::fs::create_dir_all(&dir);
        dir.join(name)
    })
}

/// Resident memory of this process, from /proc (Linux), in bytes.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
