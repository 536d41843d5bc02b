//! Resilience under faults, as users get it: the library's default retry policy, circuit
//! breaker and retry budget (none is overridden here), against a loopback sink whose faults are
//! switched at run time (`tests/support/faults.rs`).
//!
//! Scenarios:
//! - **flaky**: 3,000 ~230-byte events, `workers(2)`, a sink answering 503 to a seeded random
//!   30 % of requests; the same run against a healthy sink; and the Python baseline
//!   (`scripts/py_baseline.py`, 2 threads, tenacity retrying the 503s) on the same flaky sink.
//! - **outage**: one client offering 200 events/s for 16 s; every request answered 503 from
//!   2 s to 12 s.
//! - **fleet**: 64 clients of `workers(1)` in one process, each on its own path of one sink,
//!   each offering 20 events/s for 16 s; after a 2 s healthy warm-up the sink answers 503 to
//!   everything for 10 s.
//!
//! Each goal gets a PASS/FAIL line; the binary exits 0 either way (it measures, it doesn't
//! judge). Every loop is bounded in count and time, and every server, client and child process
//! it starts is stopped. `cargo bench --bench resilience`; the figures also go to
//! `$POSTHASTE_BENCH_OUT/resilience.txt`.

mod common;
#[path = "../tests/support/faults.rs"]
mod faults;
#[path = "../tests/support/sink.rs"]
mod sink;

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use faults::Faults;
use posthaste::{Client, Guard, Stats};

/// The seed of every random fault pattern here.
const SEED: u64 = 0x5EED_2024;

const FLAKY_EVENTS: u64 = 3_000;
const FLAKY_RATE: f64 = 0.30;
const FLAKY_WORKERS: usize = 2;
/// How long `flush` may wait for the flaky run to settle.
const FLAKY_FLUSH: Duration = Duration::from_secs(120);
/// The Python baseline sleeps in its threads between tries (about 0.5 s per event on this
/// sink, with 2 threads), so it gets fewer events: its rate is events over its own run time.
const PY_EVENTS: u64 = 100;
const PY_LIMIT: Duration = Duration::from_secs(60);

const OUTAGE_RATE: u64 = 200;
const OUTAGE_RUN: Duration = Duration::from_secs(16);
const OUTAGE_FROM: Duration = Duration::from_secs(2);
const OUTAGE_TO: Duration = Duration::from_secs(12);
/// How long the outage run may take to settle after its producer stops.
const OUTAGE_DRAIN: Duration = Duration::from_secs(45);

const FLEET: usize = 64;
const FLEET_TICK: Duration = Duration::from_millis(50); // one event per client per tick: 20/s
const FLEET_RUN: Duration = Duration::from_secs(16);
const FLEET_FROM: Duration = Duration::from_secs(2);
const FLEET_TO: Duration = Duration::from_secs(12);
/// How long after recovery to wait for every client to deliver again.
const FLEET_WAIT: Duration = Duration::from_secs(30);
/// How long the fleet may take to settle once every client delivered again (or the wait ended).
const FLEET_DRAIN: Duration = Duration::from_secs(15);

/// The printed figures, also written to `resilience.txt`.
#[derive(Default)]
struct Out(String);

impl Out {
    fn say(&mut self, line: impl AsRef<str>) {
        println!("{}", line.as_ref());
        self.0.push_str(line.as_ref());
        self.0.push('\n');
    }

    fn goal(&mut self, ok: bool, what: &str, measured: impl AsRef<str>) {
        let verdict = if ok { "PASS" } else { "FAIL" };
        self.say(format!("{verdict}  {what}: {}", measured.as_ref()));
    }

    fn save(&self) {
        if let Some(path) = common::out_file("resilience.txt") {
            let _ = std::fs::write(path, &self.0);
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        thread::sleep(t - now);
    }
}

fn invariant_holds(s: &Stats) -> bool {
    s.submitted == s.settled() + s.queued + s.in_flight
}

fn outcomes(s: &Stats) -> String {
    format!(
        "submitted {}, delivered {}, rejected {}, failed {}, dropped {}, cancelled {}, abandoned {}, \
         queued {}, in flight {}",
        s.submitted,
        s.delivered,
        s.rejected,
        s.failed,
        s.dropped,
        s.cancelled,
        s.abandoned,
        s.queued,
        s.in_flight
    )
}

fn traffic(s: &Stats) -> String {
    format!(
        "requests {}, retries {}, circuit_opened {}, retries_throttled {}",
        s.requests, s.retries, s.circuit_opened, s.retries_throttled
    )
}

/// The accounting checks every scenario ends with: the invariant, and every accepted event
/// delivered unless overflow dropped (and counted) it.
fn accounting(out: &mut Out, label: &str, s: &Stats) {
    out.goal(
        invariant_holds(s),
        &format!("{label}: Stats invariant (submitted = all outcomes + queued + in flight)"),
        outcomes(s),
    );
    out.goal(
        s.submitted - s.dropped == s.delivered,
        &format!("{label}: every accepted event delivered (submitted - dropped == delivered)"),
        format!("{} - {} vs {}", s.submitted, s.dropped, s.delivered),
    );
}

// ---------------------------------------------------------------------------------------------
// flaky

struct FlakyRun {
    /// When 95 % of the events had been answered 2xx at the sink.
    t95: Option<Duration>,
    /// When all had.
    t_all: Option<Duration>,
    /// When `flush` returned, and whether everything had settled.
    flushed: (Duration, bool),
    stats: Stats,
    report: Stats,
}

fn flaky_posthaste(rate: f64) -> FlakyRun {
    let faults = Faults::new();
    faults.set_failure_rate(rate, SEED);
    let sink = faults.sink();
    let guard = posthaste::builder(sink.url()).workers(FLAKY_WORKERS).start().unwrap();
    let client = guard.client();
    let start = Instant::now();
    for i in 0..FLAKY_EVENTS {
        // The default `DropNewest` with 10,000 places holds them all; a refusal is counted.
        let _ = client.send_serialize(&common::line(i));
    }
    let settled = guard.flush(FLAKY_FLUSH);
    let flushed = (start.elapsed(), settled);
    let stats = guard.stats();
    let report = guard.shutdown().stats;
    let times = faults.delivered_times();
    let at = |k: u64| times.get(k as usize - 1).map(|t| t.duration_since(start));
    let t95 = at((FLAKY_EVENTS * 95).div_ceil(100));
    FlakyRun { t95, t_all: at(FLAKY_EVENTS), flushed, stats, report }
}

struct PyRun {
    delivered: u64,
    seconds: f64,
    errors: Option<u64>,
    requests: u64,
    /// Stopped at `PY_LIMIT`.
    stopped: bool,
}

fn python_available() -> bool {
    Command::new("python3")
        .args(["-c", "import requests, tenacity"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn python_flaky(out: &mut Out) -> Option<PyRun> {
    if !python_available() {
        out.say("python baseline skipped: `python3 -c 'import requests, tenacity'` failed");
        return None;
    }
    let faults = Faults::new();
    faults.set_failure_rate(FLAKY_RATE, SEED);
    let sink = faults.sink();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/py_baseline.py");
    let started = Instant::now();
    let mut child = match Command::new("python3")
        .arg(script)
        .arg(sink.url())
        .arg(PY_EVENTS.to_string())
        .arg(FLAKY_WORKERS.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            out.say(format!("python baseline not run: {e}"));
            return None;
        }
    };
    let deadline = started + PY_LIMIT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    let mut stdout = String::new();
    if let Some(mut pipe) = child.stdout.take() {
        let _ = pipe.read_to_string(&mut stdout);
    }
    let requests = sink.count();
    let delivered = sink.events();
    match status {
        None => Some(PyRun { delivered, seconds: elapsed, errors: None, requests, stopped: true }),
        Some(s) if s.success() => {
            let v: serde_json::Value = serde_json::from_str(stdout.trim()).ok()?;
            Some(PyRun {
                delivered,
                seconds: v["seconds"].as_f64()?,
                errors: v["errors"].as_u64(),
                requests,
                stopped: false,
            })
        }
        Some(s) => {
            out.say(format!("python baseline failed ({s}): {stdout}"));
            None
        }
    }
}

fn flaky(out: &mut Out) {
    out.say(format!(
        "\n== flaky: {FLAKY_EVENTS} events of ~230 B, workers({FLAKY_WORKERS}), otherwise defaults; \
         the sink answers 503 to {:.0} % of requests at random (seed {SEED:#x})",
        FLAKY_RATE * 100.0
    ));
    let run = flaky_posthaste(FLAKY_RATE);
    let (flush_time, settled) = run.flushed;
    let never = || "not reached".to_string();
    out.say(format!(
        "posthaste, flaky sink:   95 % delivered after {}; all delivered after {}; flush returned {} after {}",
        run.t95.map_or_else(never, secs),
        run.t_all.map_or_else(never, secs),
        if settled { "settled" } else { "NOT settled (bound reached)" },
        secs(flush_time),
    ));
    out.say(format!("  at flush:    {}", outcomes(&run.stats)));
    out.say(format!("               {}", traffic(&run.stats)));
    out.say(format!("  at shutdown: {}", outcomes(&run.report)));
    let healthy = flaky_posthaste(0.0);
    out.say(format!(
        "posthaste, healthy sink: all delivered after {} ({} requests, delivered {})",
        healthy.t_all.map_or_else(never, secs),
        healthy.stats.requests,
        healthy.stats.delivered
    ));
    if let Some(base) = healthy.t_all {
        let target = base * 3 + Duration::from_secs(2);
        out.goal(
            run.t95.is_some_and(|t| t <= target),
            &format!("flaky: 95 % delivered within 3× healthy + 2 s (≤ {})", secs(target)),
            run.t95.map_or_else(never, secs),
        );
    } else {
        out.goal(
            false,
            "flaky: 95 % delivered within 3× healthy + 2 s",
            "the healthy run did not deliver all",
        );
    }
    // posthaste's rate: what it delivered over the time it took to settle (or to give up).
    let ph_rate = run.stats.delivered as f64 / flush_time.as_secs_f64();
    out.say(format!(
        "posthaste, flaky sink:   {} delivered in {} = {ph_rate:.1} events/s{}",
        run.stats.delivered,
        secs(flush_time),
        if settled { "" } else { " (flush bound reached)" }
    ));
    match python_flaky(out) {
        Some(py) => {
            let py_rate = py.delivered as f64 / py.seconds;
            out.say(format!(
                "python, flaky sink:      {} of {PY_EVENTS} delivered in {:.2} s = {py_rate:.1} events/s \
                 ({} requests, {} events failed after 5 tries{}) [ThreadPoolExecutor({FLAKY_WORKERS}) + \
                 requests + tenacity]",
                py.delivered,
                py.seconds,
                py.requests,
                py.errors.map_or_else(|| "?".into(), |e| e.to_string()),
                if py.stopped { "; stopped at the time bound" } else { "" },
            ));
            let ratio = if py_rate > 0.0 { ph_rate / py_rate } else { f64::INFINITY };
            out.goal(
                ratio >= 10.0,
                "flaky: posthaste events/s ≥ 10× Python's",
                format!("{ratio:.1}× ({ph_rate:.1} vs {py_rate:.1} events/s)"),
            );
        }
        None => out.say("python baseline: no figure"),
    }
    accounting(out, "flaky (at flush)", &run.stats);
    out.save();
}

// ---------------------------------------------------------------------------------------------
// outage

fn outage(out: &mut Out) {
    let events = OUTAGE_RATE * OUTAGE_RUN.as_secs();
    out.say(format!(
        "\n== outage: one client, defaults (2 workers), {OUTAGE_RATE} events/s for {} ({events} events); \
         every request answered 503 from {} to {}",
        secs(OUTAGE_RUN),
        secs(OUTAGE_FROM),
        secs(OUTAGE_TO)
    ));
    let faults = Faults::new();
    let sink = faults.sink();
    let guard = posthaste::builder(sink.url()).start().unwrap();
    let client = guard.client();
    let start = Instant::now();
    let (mut down, mut up) = (None, None);
    for i in 0..events {
        sleep_until(start + Duration::from_micros(i * 1_000_000 / OUTAGE_RATE));
        let t = start.elapsed();
        if down.is_none() && t >= OUTAGE_FROM {
            faults.set_outage(true);
            down = Some(Instant::now());
        }
        if up.is_none() && t >= OUTAGE_TO {
            faults.set_outage(false);
            up = Some(Instant::now());
        }
        // A full queue drops the event and counts it.
        let _ = client.send_serialize(&common::line(i));
    }
    let (down, up) = (down.unwrap(), up.unwrap());
    let produced = start.elapsed();
    let settled = guard.flush(OUTAGE_DRAIN);
    let flushed = start.elapsed();
    let stats = guard.stats();
    let report = guard.shutdown().stats;

    let width = Duration::from_secs(1);
    let buckets = faults.per_bucket(down, width, (up - down).as_secs() as usize);
    out.say(format!("requests per second during the outage (1 s buckets from its start): {buckets:?}"));
    let from = down + Duration::from_secs(3);
    let avg = faults.requests_between(from, up) as f64 / (up - from).as_secs_f64();
    out.goal(avg <= 2.0, "outage: requests/s after its first 3 s ≤ 2", format!("{avg:.1}/s"));
    let first_ok = faults.first_ok_after(up);
    let recovery = first_ok.map(|t| t - up);
    out.goal(
        recovery.is_some_and(|r| r <= Duration::from_secs(12)),
        "outage: first 2xx ≤ 12 s after it ended",
        recovery.map_or_else(|| "none".into(), secs),
    );
    out.say(format!(
        "producer done after {}; flush {} after {}",
        secs(produced),
        if settled { "settled" } else { "NOT settled (bound reached)" },
        secs(flushed)
    ));
    out.say(format!("  {}", traffic(&stats)));
    accounting(out, "outage (at flush)", &stats);
    out.say(format!("  at shutdown: {}", outcomes(&report)));
    out.save();
}

// ---------------------------------------------------------------------------------------------
// fleet

/// The largest number of instants within any window of `width`.
fn densest(mut times: Vec<Instant>, width: Duration) -> usize {
    times.sort();
    let (mut best, mut lo) = (0, 0);
    for hi in 0..times.len() {
        while times[hi] - times[lo] >= width {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

fn fleet(out: &mut Out) {
    let ticks = (FLEET_RUN.as_millis() / FLEET_TICK.as_millis()) as u64;
    out.say(format!(
        "\n== fleet: {FLEET} clients of workers(1), otherwise defaults, each on its own path of one sink, \
         each offering {} events/s for {} ({} events in all); healthy warm-up until {}, then every \
         request answered 503 until {}",
        1000 / FLEET_TICK.as_millis(),
        secs(FLEET_RUN),
        ticks * FLEET as u64,
        secs(FLEET_FROM),
        secs(FLEET_TO),
    ));
    let faults = Faults::new();
    let sink = faults.sink();
    let guards: Vec<Guard> = (0..FLEET)
        .map(|k| posthaste::builder(format!("http://{}/c/{k}", sink.addr())).workers(1).start().unwrap())
        .collect();
    let clients: Vec<Client> = guards.iter().map(Guard::client).collect();
    let start = Instant::now();
    let (mut down, mut up) = (None, None);
    for tick in 0..ticks {
        sleep_until(start + FLEET_TICK * tick as u32);
        let t = start.elapsed();
        if down.is_none() && t >= FLEET_FROM {
            faults.set_outage(true);
            down = Some(Instant::now());
        }
        if up.is_none() && t >= FLEET_TO {
            faults.set_outage(false);
            up = Some(Instant::now());
        }
        for client in &clients {
            let _ = client.send_serialize(&common::line(tick));
        }
    }
    let (down, up) = (down.unwrap(), up.unwrap());
    // Every client delivers again, or the wait ends.
    let wait_end = up + FLEET_WAIT;
    let firsts = loop {
        let firsts = faults.first_ok_after_by_path(up);
        if firsts.len() >= FLEET || Instant::now() >= wait_end {
            break firsts;
        }
        thread::sleep(Duration::from_millis(100));
    };
    let drain_end = Instant::now() + FLEET_DRAIN;
    let mut settled = true;
    for guard in &guards {
        settled &= guard.flush(drain_end.saturating_duration_since(Instant::now()));
    }
    let stats: Vec<Stats> = guards.iter().map(Guard::stats).collect();
    // All shut down by one deadline.
    let deadline = Instant::now() + Duration::from_secs(3);
    let reports: Vec<Stats> = guards.into_iter().map(|g| g.shutdown_deadline(deadline).stats).collect();
    drop(clients);

    let width = Duration::from_secs(1);
    let buckets = faults.per_bucket(down, width, (up - down).as_secs() as usize);
    out.say(format!(
        "requests per second while down (1 s buckets from the start of the outage): {buckets:?}"
    ));
    let from = down + Duration::from_secs(2);
    let avg = faults.requests_between(from, up) as f64 / (up - from).as_secs_f64();
    out.goal(
        avg <= FLEET as f64,
        &format!("fleet: requests/s after the first 2 s down ≤ {FLEET}"),
        format!("{avg:.1}/s"),
    );
    let times: Vec<Instant> = firsts.values().copied().collect();
    out.goal(
        densest(times.clone(), Duration::from_millis(250)) <= 8,
        "fleet: clients whose first delivery after recovery falls in one 250 ms window ≤ 8",
        format!(
            "{} (of {} that delivered again)",
            densest(times.clone(), Duration::from_millis(250)),
            times.len()
        ),
    );
    let last = times.iter().max().map(|t| *t - up);
    let mut spread: Vec<f64> = times.iter().map(|t| (*t - up).as_secs_f64()).collect();
    spread.sort_by(f64::total_cmp);
    if let (Some(first), Some(median)) = (spread.first(), spread.get(spread.len() / 2)) {
        out.say(format!(
            "first delivery after recovery: earliest {first:.2} s, median {median:.2} s, latest {:.2} s after it",
            spread[spread.len() - 1]
        ));
    }
    out.goal(
        times.len() == FLEET && last.is_some_and(|l| l <= Duration::from_secs(20)),
        "fleet: every client delivered again ≤ 20 s after recovery",
        if times.len() == FLEET {
            last.map_or_else(|| "none".into(), secs)
        } else {
            format!("{} of {FLEET} clients within {}", times.len(), secs(FLEET_WAIT))
        },
    );
    let sum = |all: &[Stats]| {
        let mut t = Stats::default();
        for s in all {
            t.submitted += s.submitted;
            t.delivered += s.delivered;
            t.rejected += s.rejected;
            t.failed += s.failed;
            t.dropped += s.dropped;
            t.cancelled += s.cancelled;
            t.abandoned += s.abandoned;
            t.spilled += s.spilled;
            t.queued += s.queued;
            t.in_flight += s.in_flight;
            t.requests += s.requests;
            t.retries += s.retries;
            t.circuit_opened += s.circuit_opened;
            t.retries_throttled += s.retries_throttled;
        }
        t
    };
    let total = sum(&stats);
    out.say(format!(
        "flush {} {} after recovery",
        if settled { "settled" } else { "NOT settled (bound reached)" },
        secs(Instant::now().saturating_duration_since(up))
    ));
    out.say(format!("  all clients: {}", traffic(&total)));
    accounting(out, "fleet, all clients (at flush)", &total);
    let broken = stats.iter().chain(&reports).filter(|s| !invariant_holds(s)).count();
    out.goal(
        broken == 0,
        "fleet: Stats invariant in every client's snapshot and report",
        format!("{broken} broken"),
    );
    out.say(format!("  at shutdown, all clients: {}", outcomes(&sum(&reports))));
    out.save();
}

fn main() {
    // `cargo bench` passes `--bench`; POSTHASTE_BENCH_ONLY=fleet (or flaky, outage, a
    // comma-separated list) runs only those scenarios.
    let only: Vec<String> = std::env::var("POSTHASTE_BENCH_ONLY")
        .map(|s| s.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|w| w == name);
    let began = Instant::now();
    let mut out = Out::default();
    out.say("posthaste resilience under faults, library defaults (retry, circuit breaker, retry budget)");
    if wanted("flaky") {
        flaky(&mut out);
    }
    if wanted("outage") {
        outage(&mut out);
    }
    if wanted("fleet") {
        fleet(&mut out);
    }
    out.say(format!("\n(all scenarios took {})", secs(began.elapsed())));
    out.save();
}
