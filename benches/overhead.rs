//! What shipping costs the host program, and what an outage costs in memory.
//!
//! **CPU overhead**: a fixed, deterministic numeric workload (a logistic-map iteration with a
//! square root, latency-bound floating point) runs on every core, alone and then while its own
//! threads ship 10,000 events/s through posthaste from their inner loop, the way a numeric
//! program logs. Two measures: the extra **CPU time** the process spends (posthaste's workers
//! plus the producers' `send` calls, the sink's own threads subtracted), relative to the
//! workload alone — robust on a machine shared with other jobs — and the slowdown of the
//! workload's **wall time**, which is the same thing on an otherwise idle machine. Each mode
//! runs 5 times, interleaved; the runs with the least wall time and CPU time are compared. The
//! loopback sink stands in for a remote collector: it is started from a thread at nice 19 (its
//! threads inherit it), so it gets the CPU only when the workload leaves some.
//!
//! **Memory under an outage**: for 30 s (`POSTHASTE_OUTAGE_SECS`) the endpoint refuses every
//! connection while a producer sends 10,000 events/s; resident memory is sampled every second.
//!
//! `cargo bench --bench overhead`; results also go to `$POSTHASTE_BENCH_OUT/overhead.json`.

mod common;
#[path = "../tests/support/sink.rs"]
mod sink;

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use posthaste::{Batch, Client};
use sink::{Reply, Sink};

const RATE: u64 = 10_000;
const REPS: usize = 5;

/// The workload's inner loop; calls `step` every `every` iterations (never if 0).
fn workload(iters: u64, seed: u64, every: u64, mut step: impl FnMut(u64)) -> f64 {
    let mut x = 0.1 + (seed % 7) as f64 * 0.1;
    let mut acc = 0.0;
    let mut next = if every == 0 { u64::MAX } else { every };
    for i in 0..iters {
        x = 3.99 * x * (1.0 - x);
        acc += x.sqrt();
        if i == next {
            step(i);
            next += every;
        }
    }
    acc
}

/// Runs the workload on `threads` threads; returns the wall time and the CPU time of the
/// workload's own threads.
fn run(threads: usize, iters: u64, every: u64, client: Option<&Client>) -> (Duration, f64) {
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let barrier = barrier.clone();
            let client = client.cloned();
            thread::spawn(move || {
                barrier.wait();
                let cpu = cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID);
                let acc = workload(iters, t as u64, every, |i| {
                    if let Some(c) = &client {
                        let _ = c.send_serialize(&common::line(i));
                    }
                });
                black_box(acc);
                cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID) - cpu
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let cpu: f64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    (start.elapsed(), cpu)
}

fn nice_sink() -> Sink {
    // Threads inherit the nice value of the thread that creates them.
    thread::spawn(|| {
        #[allow(unsafe_code)] // setpriority on this thread only.
        // SAFETY: plain integer arguments; affects the calling thread only.
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, 19);
        }
        Sink::counting(|_| Reply::Status(200))
    })
    .join()
    .unwrap()
}

fn least(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

/// CPU time used so far by this process (or, with `CLOCK_THREAD_CPUTIME_ID`, this thread).
fn cpu_clock(clock: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    #[allow(unsafe_code)] // clock_gettime fills the timespec we own.
    // SAFETY: a valid pointer to a local timespec.
    unsafe {
        libc::clock_gettime(clock, &mut ts);
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn process_cpu() -> f64 {
    cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// CPU time used so far by this process's threads whose name starts with `prefix` (from
/// /proc, in clock ticks of 10 ms).
fn threads_cpu(prefix: &str) -> f64 {
    let mut ticks = 0u64;
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        if !stat[open + 1..close].starts_with(prefix) {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        // utime and stime: fields 14 and 15 of the whole line.
        ticks += fields.get(11).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
        ticks += fields.get(12).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    }
    ticks as f64 / 100.0
}

struct Mode {
    name: &'static str,
    configure: Option<fn(posthaste::Builder) -> posthaste::Builder>,
}

fn cpu_overhead(results: &mut Vec<serde_json::Value>) {
    let threads = thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    // Calibrate: iterations per second of one thread, then size the run to ~3 s.
    let probe = 20_000_000;
    let t = Instant::now();
    black_box(workload(probe, 0, 0, |_| {}));
    let per_sec = probe as f64 / t.elapsed().as_secs_f64();
    let iters = (per_sec * 3.0) as u64;
    // Every thread sends RATE / threads events per second of its own progress.
    let every = (per_sec / (RATE as f64 / threads as f64)) as u64;
    let modes = [
        Mode { name: "alone", configure: None },
        Mode { name: "posthaste unbatched", configure: Some(|b| b) },
        Mode { name: "posthaste unbatched, worker_nice(10)", configure: Some(|b| b.worker_nice(10)) },
        Mode { name: "posthaste batched", configure: Some(|b| b.batch(Batch::new())) },
        Mode {
            name: "posthaste batched, worker_nice(10)",
            configure: Some(|b| b.batch(Batch::new()).worker_nice(10)),
        },
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    let mut cpus: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    let mut own: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    let mut shipped: Vec<Vec<(u64, u64, f64)>> = vec![Vec::new(); modes.len()];
    for _ in 0..REPS {
        for (m, mode) in modes.iter().enumerate() {
            let Some(configure) = mode.configure else {
                let cpu = process_cpu();
                let (wall, own_cpu) = run(threads, iters, 0, None);
                times[m].push(wall.as_secs_f64());
                cpus[m].push(process_cpu() - cpu);
                own[m].push(own_cpu);
                continue;
            };
            let sink = nice_sink();
            let cpu = process_cpu();
            let sink_cpu = threads_cpu("sink-");
            let guard = configure(posthaste::builder(sink.url())).start().unwrap();
            let client = guard.client();
            let (wall, own_cpu) = run(threads, iters, every, Some(&client));
            let wall = wall.as_secs_f64();
            own[m].push(own_cpu);
            let report = guard.shutdown();
            common::check_invariant(mode.name, &report.stats);
            let sink_cpu = threads_cpu("sink-") - sink_cpu;
            cpus[m].push(process_cpu() - cpu - sink_cpu);
            drop(sink);
            times[m].push(wall);
            shipped[m].push((report.stats.delivered, report.stats.dropped, wall));
        }
    }
    let alone = least(&times[0]);
    let alone_cpu = least(&cpus[0]);
    let alone_own = least(&own[0]);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "\nCPU overhead: {threads} threads × {iters} iterations, events every {every} iterations per thread"
    );
    println!("(load average at the end: {})", load.split(' ').take(3).collect::<Vec<_>>().join(" "));
    println!("| mode | wall time (best of {REPS}) | wall slowdown | CPU time (best of {REPS}) | CPU overhead | of which in the workload's threads | events/s shipped | dropped |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (m, mode) in modes.iter().enumerate() {
        let t = least(&times[m]);
        let cpu = least(&cpus[m]);
        let slowdown = (t / alone - 1.0) * 100.0;
        let overhead = (cpu / alone_cpu - 1.0) * 100.0;
        let own_overhead = (least(&own[m]) / alone_own - 1.0) * 100.0;
        let (rate, dropped) = match shipped[m].iter().map(|s| s.1).max() {
            Some(dropped) => {
                let delivered: u64 = shipped[m].iter().map(|s| s.0).sum();
                let wall: f64 = shipped[m].iter().map(|s| s.2).sum();
                (format!("{:.0}", delivered as f64 / wall), dropped.to_string())
            }
            None => ("–".into(), "–".into()),
        };
        let pct = |v: f64| if m == 0 { "–".to_string() } else { format!("{v:+.1} %") };
        println!(
            "| {} | {:.3} s | {} | {:.3} s | {} | {} | {} | {} |",
            mode.name,
            t,
            pct(slowdown),
            cpu,
            pct(overhead),
            pct(own_overhead),
            rate,
            dropped
        );
        results.push(serde_json::json!({"kind": "cpu", "name": mode.name, "seconds": t, "slowdown_percent": slowdown,
            "cpu_seconds": cpu, "cpu_overhead_percent": overhead, "own_threads_overhead_percent": own_overhead, "runs": times[m], "cpu_runs": cpus[m],
            "shipped": shipped[m].iter().map(|s| serde_json::json!({"delivered": s.0, "dropped": s.1, "wall": s.2})).collect::<Vec<_>>()}));
    }
}

fn outage(results: &mut Vec<serde_json::Value>) {
    let secs: u64 = std::env::var("POSTHASTE_OUTAGE_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let guard = posthaste::builder(format!("http://127.0.0.1:{port}/ingest"))
        .shutdown_timeout(Duration::ZERO)
        .start()
        .unwrap();
    let client = guard.client();
    let start = Instant::now();
    let mut samples = Vec::new();
    let mut sent = 0u64;
    let mut next_sample = Duration::from_secs(1);
    while start.elapsed() < Duration::from_secs(secs) {
        // Paced at RATE events/s.
        let due = (start.elapsed().as_secs_f64() * RATE as f64) as u64;
        while sent < due {
            let _ = client.send_serialize(&common::line(sent));
            sent += 1;
        }
        if start.elapsed() >= next_sample {
            samples.push(common::rss_bytes().unwrap_or(0));
            next_sample += Duration::from_secs(1);
        }
        thread::sleep(Duration::from_micros(500));
    }
    samples.push(common::rss_bytes().unwrap_or(0));
    let stats = client.stats();
    let report = guard.shutdown();
    common::check_invariant("outage", &report.stats);
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let at = |s: usize| samples.get(s.saturating_sub(1)).or(samples.last()).copied().unwrap_or(0);
    let max = samples.iter().copied().max().unwrap_or(0);
    println!("\nMemory under a {secs} s outage (connections refused), {RATE} events/s offered:");
    println!(
        "RSS at 1 s {:.1} MiB, 5 s {:.1} MiB, {secs} s {:.1} MiB, max {:.1} MiB; queued {} events ({:.1} MiB budget used), dropped {}, cancelled at exit {}",
        mib(at(1)),
        mib(at(5)),
        mib(at(secs as usize)),
        mib(max),
        stats.queued,
        mib(stats.queued_bytes),
        stats.dropped,
        report.stats.cancelled
    );
    results
        .push(serde_json::json!({"kind": "outage", "seconds": secs, "rss_samples": samples, "offered": sent,
        "queued": stats.queued, "dropped": stats.dropped}));
}

fn main() {
    let mut results = Vec::new();
    let only = std::env::var("POSTHASTE_BENCH_ONLY").unwrap_or_default();
    if only.is_empty() || only.contains("cpu") {
        cpu_overhead(&mut results);
    }
    if only.is_empty() || only.contains("outage") {
        outage(&mut results);
    }
    if let Some(path) = common::out_file("overhead.json") {
        std::fs::write(path, serde_json::to_vec_pretty(&results).unwrap()).unwrap();
    }
}
