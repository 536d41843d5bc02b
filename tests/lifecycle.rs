//! Lifecycle across processes: `std::process::exit` with the exit hook, panics with the panic
//! hook, and spill-then-replay across two runs.
//!
//! This test binary has its own `main` (`harness = false` in Cargo.toml). Started with
//! `POSTHASTE_CHILD=<scenario>` it plays that child scenario and leaves the way the scenario
//! says (exit, panic, return); otherwise it runs the parent tests below, each of which starts
//! this same binary as a child against a loopback sink, waits for it (killing it past a
//! generous bound), and checks what arrived, what the child recorded, and what is on disk.
//! Arguments follow libtest's where they matter: name filters, `--exact`, `--skip`, `--list`,
//! `--ignored` (nothing here is ignored, so it runs nothing); other flags are accepted and
//! ignored (tests run one at a time).

mod support;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::panic::{self, AssertUnwindSafe};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use posthaste::{Guard, Outcome, Retry};
use serde_json::{json, Value};
use support::{Reply, Sink, TempDir, PATIENCE};

const CHILD: &str = "POSTHASTE_CHILD";
/// A child that runs longer than this is killed and the test fails.
const CHILD_LIMIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Parent side: the tests.

type Test = (&'static str, fn());

const TESTS: &[Test] = &[
    (
        "exit_hook_delivers_what_was_queued_at_process_exit",
        exit_hook_delivers_what_was_queued_at_process_exit,
    ),
    (
        "exit_hook_accounts_for_everything_on_a_dead_endpoint",
        exit_hook_accounts_for_everything_on_a_dead_endpoint,
    ),
    (
        "exit_hook_runs_when_main_returns_with_a_leaked_guard",
        exit_hook_runs_when_main_returns_with_a_leaked_guard,
    ),
    ("exit_hook_is_harmless_after_the_guard_was_dropped", exit_hook_is_harmless_after_the_guard_was_dropped),
    (
        "exit_from_inside_a_callback_on_a_worker_does_not_hang",
        exit_from_inside_a_callback_on_a_worker_does_not_hang,
    ),
    ("panic_on_main_sends_the_crash_event_then_the_previous_hook_runs", panic_on_main_sends_the_crash_event),
    ("panic_on_a_worker_is_reported_counted_and_the_worker_keeps_serving", panic_on_a_worker_is_reported),
    ("panics_inside_shutdown_do_not_deadlock_the_hook", panics_inside_shutdown_do_not_deadlock_the_hook),
    (
        "spilled_events_are_replayed_exactly_once_by_the_next_process",
        spilled_events_are_replayed_exactly_once,
    ),
    (
        "exit_hook_spills_then_the_next_process_delivers_exactly_once",
        exit_hook_spills_then_next_process_delivers,
    ),
];

/// Tests that need a cargo feature (CI runs the tests with `--all-features`); without it they
/// are not listed at all rather than passing without checking anything.
#[cfg(feature = "log")]
const FEATURE_TESTS: &[Test] = &[(
    "log_records_logged_just_before_exit_arrive_with_the_exit_hook",
    log_records_logged_just_before_exit_arrive,
)];
#[cfg(not(feature = "log"))]
const FEATURE_TESTS: &[Test] = &[];

fn main() {
    if let Ok(scenario) = std::env::var(CHILD) {
        child(&scenario);
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let exact = args.iter().any(|a| a == "--exact");
    // Name filters, and `--skip` filters; the values of libtest's other flags are not names.
    let (mut filters, mut skips) = (Vec::new(), Vec::new());
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--skip" => skips.extend(it.next()),
            "--test-threads" | "--color" | "--format" | "--logfile" | "-Z" => {
                it.next();
            }
            a if a.starts_with('-') => {}
            _ => filters.push(arg),
        }
    }
    let matches = |name: &str, f: &String| if exact { name == f } else { name.contains(f.as_str()) };
    let selected: Vec<&Test> = TESTS
        .iter()
        .chain(FEATURE_TESTS)
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| matches(name, f)))
        .filter(|(name, _)| !skips.iter().any(|f| matches(name, f)))
        .collect();
    if args.iter().any(|a| a == "--list") {
        for (name, _) in &selected {
            println!("{name}: test");
        }
        return;
    }
    let selected = if args.iter().any(|a| a == "--ignored") { Vec::new() } else { selected };
    println!("\nrunning {} tests", selected.len());
    let mut failed = Vec::new();
    for (name, test) in &selected {
        let began = Instant::now();
        let result = panic::catch_unwind(AssertUnwindSafe(test));
        let verdict = if result.is_ok() { "ok" } else { "FAILED" };
        println!("test {name} ... {verdict} ({:.2}s)", began.elapsed().as_secs_f64());
        if result.is_err() {
            failed.push(*name);
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        selected.len() - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        println!("failures: {failed:?}");
        std::process::exit(101);
    }
}

/// What a child left behind.
struct Ran {
    status: ExitStatus,
    stderr: String,
    /// Lines the child wrote to its record file.
    lines: Vec<String>,
    pid: u32,
    elapsed: Duration,
}

impl Ran {
    /// Record lines starting with `prefix`, without it.
    fn with(&self, prefix: &str) -> Vec<&str> {
        self.lines.iter().filter_map(|l| l.strip_prefix(prefix)).collect()
    }

    /// The value recorded as `key=value`.
    fn value(&self, key: &str) -> u64 {
        let prefix = format!("{key}=");
        let found = self.with(&prefix);
        assert_eq!(found.len(), 1, "{key} recorded once: {:?}", self.lines);
        found[0].parse().unwrap()
    }

    /// Outcome kinds recorded by the child's `on_outcome`, counted.
    fn outcomes(&self) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        for kind in self.with("outcome ") {
            *counts.entry(kind.split_whitespace().next().unwrap().to_string()).or_default() += 1;
        }
        counts
    }
}

/// Runs this binary as child `scenario` with `env`, waits for it (at most `CHILD_LIMIT`).
fn run_child(scenario: &str, env: &[(&str, String)]) -> Ran {
    let record = TempDir::new("record");
    let record_file = record.path().join("record.txt");
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .env(CHILD, scenario)
        .env("RECORD", &record_file)
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let began = Instant::now();
    let mut child = command.spawn().expect("start the child");
    let pid = child.id();
    let mut stderr_pipe = child.stderr.take().unwrap();
    let stderr_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr_pipe.read_to_string(&mut s);
        s
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(CHILD_LIMIT) {
        Ok(status) => status.expect("wait for the child"),
        Err(_) => {
            kill(pid);
            let _ = waiter.join();
            panic!("child {scenario} ran past {CHILD_LIMIT:?}; killed it");
        }
    };
    let elapsed = began.elapsed();
    waiter.join().unwrap();
    let stderr = stderr_reader.join().unwrap();
    let lines = fs::read_to_string(&record_file).unwrap_or_default().lines().map(str::to_string).collect();
    Ran { status, stderr, lines, pid, elapsed }
}

#[allow(unsafe_code)] // kill(2) on the pid of a child this test started and has not reaped.
fn kill(pid: u32) {
    // SAFETY: a plain system call on an integer pid.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}

/// Ids of the events with `"run": run` that the sink answered 2xx, with how many times.
fn delivered_ids(sink: &Sink, run: &str) -> BTreeMap<u64, u64> {
    let answered: Vec<u64> =
        sink.answered().iter().filter(|(_, _, s)| (200..300).contains(s)).map(|(i, _, _)| *i).collect();
    let mut ids = BTreeMap::new();
    for req in sink.requests() {
        if !answered.contains(&req.index) {
            continue;
        }
        let body = req.json();
        if body["run"] == run {
            *ids.entry(body["id"].as_u64().unwrap()).or_default() += 1;
        }
    }
    ids
}

fn exit_hook_delivers_what_was_queued_at_process_exit() {
    // Slow answers keep events queued when the child calls exit.
    let sink = Sink::with(|_| Reply::Delay(Duration::from_millis(10), Box::new(Reply::Status(200))));
    let ran = run_child("exit_delivers", &[("URL", sink.url()), ("N", "50".into())]);
    assert_eq!(ran.status.code(), Some(7), "{}", ran.stderr);
    let pending = ran.value("pending_at_exit");
    assert!(pending > 0, "the hook must have had work to do");
    assert_eq!(ran.outcomes(), BTreeMap::from([("Delivered".to_string(), 50)]), "{:?}", ran.lines);
    let ids = delivered_ids(&sink, "exit_delivers");
    assert_eq!(ids.len(), 50);
    assert!(ids.values().all(|n| *n == 1));
}

fn exit_hook_accounts_for_everything_on_a_dead_endpoint() {
    let sink = Sink::counting(|_| Reply::BlackHole);
    let ran = run_child("exit_black_hole", &[("URL", sink.url()), ("N", "20".into())]);
    assert_eq!(ran.status.code(), Some(3), "{}", ran.stderr);
    // Exit timeout 300 ms: the exit is bounded by it, not by the endpoint. (Generous slack:
    // the bound catches a hang, not a slow machine.)
    assert!(ran.elapsed < Duration::from_secs(10), "{:?}", ran.elapsed);
    let outcomes = ran.outcomes();
    assert_eq!(outcomes.values().sum::<u64>(), 20, "{outcomes:?}");
    assert_eq!(outcomes.get("Abandoned"), Some(&2), "{outcomes:?}"); // one per worker
    assert_eq!(outcomes.get("Cancelled"), Some(&18), "{outcomes:?}");
}

fn exit_hook_runs_when_main_returns_with_a_leaked_guard() {
    let sink = Sink::with(|_| Reply::Delay(Duration::from_millis(10), Box::new(Reply::Status(200))));
    let ran = run_child("return_from_main", &[("URL", sink.url()), ("N", "20".into())]);
    assert_eq!(ran.status.code(), Some(0), "{}", ran.stderr);
    assert!(ran.value("pending_at_return") > 0);
    assert_eq!(ran.outcomes(), BTreeMap::from([("Delivered".to_string(), 20)]), "{:?}", ran.lines);
    assert_eq!(delivered_ids(&sink, "return_from_main").len(), 20);
}

fn exit_hook_is_harmless_after_the_guard_was_dropped() {
    let sink = Sink::ok();
    let ran = run_child("exit_after_drop", &[("URL", sink.url()), ("N", "10".into())]);
    assert_eq!(ran.status.code(), Some(0), "{}", ran.stderr);
    // Settled once, by the guard's own shutdown; the hook found nothing to do.
    assert_eq!(ran.outcomes(), BTreeMap::from([("Delivered".to_string(), 10)]), "{:?}", ran.lines);
    assert_eq!(sink.events(), 10);
}

fn exit_from_inside_a_callback_on_a_worker_does_not_hang() {
    let sink = Sink::with(|_| Reply::Delay(Duration::from_millis(5), Box::new(Reply::Status(200))));
    let ran = run_child("exit_in_callback", &[("URL", sink.url()), ("N", "30".into())]);
    assert_eq!(ran.status.code(), Some(5), "{}", ran.stderr);
    assert!(ran.elapsed < Duration::from_secs(10), "{:?}", ran.elapsed);
    // Every event has an outcome: the worker that called exit can't finish its round, the
    // other drains the queue until the exit deadline.
    let outcomes = ran.outcomes();
    assert_eq!(outcomes.values().sum::<u64>(), 30, "{outcomes:?}");
    assert!(outcomes.keys().all(|k| k == "Delivered" || k == "Cancelled"), "{outcomes:?}");
}

fn crash_events(sink: &Sink) -> Vec<Value> {
    sink.requests().iter().map(|r| r.json()).filter(|v| v["event"] == "panic").collect()
}

fn panic_on_main_sends_the_crash_event() {
    let sink = Sink::ok();
    let ran = run_child("panic_main", &[("URL", sink.url())]);
    assert_eq!(ran.status.code(), Some(101), "{}", ran.stderr);
    let crashes = crash_events(&sink);
    assert_eq!(crashes.len(), 1, "{crashes:?}");
    let crash = &crashes[0];
    assert_eq!(crash["message"], "boom from main");
    // The logging front ends' shape: timestamp, level, target, message, file, line.
    assert_eq!(crash["level"], "ERROR");
    assert_eq!(crash["target"], "panic");
    let ts = crash["timestamp"].as_str().unwrap();
    assert!(ts.len() == 27 && ts.ends_with('Z') && &ts[10..11] == "T", "{ts}");
    assert_eq!(crash["file"], crash["location"]["file"]);
    assert_eq!(crash["line"], crash["location"]["line"]);
    assert!(crash["location"]["file"].as_str().unwrap().ends_with("lifecycle.rs"), "{crash}");
    assert!(crash["location"]["line"].as_u64().unwrap() > 0);
    assert_eq!(crash["thread"], "main");
    assert_eq!(crash["pid"], ran.pid);
    assert!(crash["backtrace"].is_null(), "backtraces are off in the child");
    // The previous hook ran after ours, and the default message still printed.
    assert!(ran.stderr.contains("PREVIOUS HOOK: boom from main"), "{}", ran.stderr);
    // Unwinding dropped the guard: the event sent before the panic was delivered too.
    assert_eq!(delivered_ids(&sink, "panic_main").len(), 1);
}

fn panic_on_a_worker_is_reported() {
    let sink = Sink::ok();
    let ran = run_child("panic_worker", &[("URL", sink.url()), ("RUST_BACKTRACE", "1".into())]);
    assert_eq!(ran.status.code(), Some(0), "{}", ran.stderr);
    let crashes = crash_events(&sink);
    assert_eq!(crashes.len(), 1, "{crashes:?}");
    assert_eq!(crashes[0]["message"], "callback panicked on purpose");
    assert!(crashes[0]["thread"].as_str().unwrap().starts_with("posthaste-worker-"), "{}", crashes[0]);
    assert!(crashes[0]["backtrace"].as_str().is_some_and(|b| !b.is_empty()), "RUST_BACKTRACE=1");
    assert!(ran.stderr.contains("PREVIOUS HOOK: callback panicked on purpose"), "{}", ran.stderr);
    // Counted, and the worker kept serving: the second event was delivered after the panic.
    assert_eq!(ran.value("panics"), 1);
    assert_eq!(ran.value("second"), 1, "second event delivered");
    assert_eq!(delivered_ids(&sink, "panic_worker").len(), 2);
}

fn panics_inside_shutdown_do_not_deadlock_the_hook() {
    // Regular events disappear into a black hole; crash events are answered.
    let sink =
        Sink::with(|req| if req.json()["event"] == "panic" { Reply::Status(200) } else { Reply::BlackHole });
    let ran = run_child("panic_in_shutdown", &[("URL", sink.url())]);
    assert_eq!(ran.status.code(), Some(0), "{}", ran.stderr);
    assert!(ran.elapsed < Duration::from_secs(10), "{:?}", ran.elapsed);
    // The four cancelled events' callbacks panicked inside the shutdown sweep (with the
    // shutdown state locked): four crash events went out, and shutdown finished.
    assert_eq!(crash_events(&sink).len(), 4);
    assert_eq!(ran.value("cancelled"), 4);
    assert_eq!(ran.value("abandoned"), 1);
    assert_eq!(ran.value("panics"), 4);
}

fn spilled_events_are_replayed_exactly_once() {
    let dir = TempDir::new("spill");
    let dead = format!("http://127.0.0.1:{}/ingest", support::closed_port());
    let first = run_child(
        "spill_writer",
        &[("URL", dead), ("N", "300".into()), ("SPILL", dir.path().display().to_string())],
    );
    assert_eq!(first.status.code(), Some(0), "{}", first.stderr);
    assert_eq!(first.value("spilled"), 300);
    assert_eq!(first.value("submitted"), 300);
    let files = dir.spill_files();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(fs::read_to_string(&files[0]).unwrap().lines().count(), 300);
    // Damage it: a corrupt line, then a torn one (as if the writer died mid-line).
    let mut f = OpenOptions::new().append(true).open(&files[0]).unwrap();
    f.write_all(b"{\"id\": oops}\n{\"run\":\"spill_writer\",\"id\":99").unwrap();
    drop(f);

    let sink = Sink::ok();
    let second = run_child(
        "spill_replayer",
        &[("URL", sink.url()), ("N", "10".into()), ("SPILL", dir.path().display().to_string())],
    );
    assert_eq!(second.status.code(), Some(0), "{}", second.stderr);
    assert_eq!(second.value("replayed"), 300);
    assert_eq!(second.value("replay_skipped"), 2);
    assert_eq!(second.value("delivered"), 310);
    let replayed = delivered_ids(&sink, "spill_writer");
    assert_eq!(replayed.len(), 300);
    assert!(replayed.values().all(|n| *n == 1), "each exactly once");
    assert_eq!(delivered_ids(&sink, "spill_replayer").len(), 10);
    // Re-queued first: with one worker, the 300 replayed events are the first 300 requests.
    let order: Vec<Value> = sink.requests().iter().map(|r| r.json()["run"].clone()).collect();
    assert!(order[..300].iter().all(|r| r == "spill_writer"), "replay goes first");
    // Delivered, so the file is gone (and the replayer spilled nothing of its own).
    assert!(dir.spill_files().is_empty(), "{:?}", dir.spill_files());

    // A third run finds nothing to replay.
    let third = run_child(
        "spill_replayer",
        &[("URL", sink.url()), ("N", "0".into()), ("SPILL", dir.path().display().to_string())],
    );
    assert_eq!(third.value("replayed"), 0);
}

fn exit_hook_spills_then_next_process_delivers() {
    let dir = TempDir::new("exit-spill");
    let hole = Sink::counting(|_| Reply::BlackHole);
    let first = run_child(
        "exit_spill",
        &[("URL", hole.url()), ("N", "100".into()), ("SPILL", dir.path().display().to_string())],
    );
    assert_eq!(first.status.code(), Some(0), "{}", first.stderr);
    // Everything the exit deadline cut short was spilled (on the wire ones included: the
    // black hole may or may not have kept them; replay errs on the side of sending again).
    assert_eq!(first.outcomes(), BTreeMap::from([("Spilled".to_string(), 100)]), "{:?}", first.lines);
    assert_eq!(dir.spill_files().len(), 1);

    let sink = Sink::ok();
    let second = run_child(
        "spill_replayer",
        &[("URL", sink.url()), ("N", "0".into()), ("SPILL", dir.path().display().to_string())],
    );
    assert_eq!(second.status.code(), Some(0), "{}", second.stderr);
    assert_eq!(second.value("replayed"), 100);
    let ids = delivered_ids(&sink, "exit_spill");
    assert_eq!(ids.len(), 100);
    assert!(ids.values().all(|n| *n == 1), "each exactly once");
    assert!(dir.spill_files().is_empty());
}

#[cfg(feature = "log")]
fn log_records_logged_just_before_exit_arrive() {
    let sink = Sink::with(|_| Reply::Delay(Duration::from_millis(10), Box::new(Reply::Status(200))));
    let ran = run_child("log_exit", &[("URL", sink.url()), ("N", "50".into())]);
    assert_eq!(ran.status.code(), Some(7), "{}", ran.stderr);
    assert!(ran.value("pending_at_exit") > 0, "the hook must have had work to do");
    assert_eq!(ran.outcomes(), BTreeMap::from([("Delivered".to_string(), 50)]), "{:?}", ran.lines);
    let ids = delivered_ids(&sink, "log_exit");
    assert_eq!(ids.len(), 50);
    assert!(ids.values().all(|n| *n == 1));
    let first = sink.requests()[0].json();
    assert_eq!(first["message"], "logged before exit");
    assert_eq!(first["level"], "WARN");
    assert!(ran.stderr.is_empty(), "nothing printed: {}", ran.stderr);
}

// ---------------------------------------------------------------------------------------------
// Child side: the scenarios.

/// The child's record file: one line per fact.
struct Record(Mutex<File>);

impl Record {
    fn open() -> Arc<Record> {
        let path = std::env::var("RECORD").expect("RECORD");
        Arc::new(Record(Mutex::new(OpenOptions::new().create(true).append(true).open(path).unwrap())))
    }

    fn line(&self, line: &str) {
        // One write per line, unbuffered: the process may end right after.
        let mut f = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let _ = f.write_all(format!("{line}\n").as_bytes());
    }

    fn stats(&self, s: &posthaste::Stats) {
        for (k, v) in [
            ("submitted", s.submitted),
            ("delivered", s.delivered),
            ("cancelled", s.cancelled),
            ("abandoned", s.abandoned),
            ("spilled", s.spilled),
            ("replayed", s.replayed),
            ("replay_skipped", s.replay_skipped),
            ("panics", s.panics),
        ] {
            self.line(&format!("{k}={v}"));
        }
    }
}

fn kind(outcome: &Outcome) -> String {
    format!("{outcome:?}").split([' ', '{', '(']).next().unwrap().to_string()
}

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("{key} not set for the child"))
}

fn count() -> u64 {
    env("N").parse().unwrap()
}

/// A builder for the scenario's endpoint that records every outcome.
fn builder(record: &Arc<Record>) -> posthaste::Builder {
    let record = record.clone();
    posthaste::builder(env("URL"))
        .on_outcome(move |_, outcome| record.line(&format!("outcome {}", kind(outcome))))
}

fn send_all(guard: &Guard, run: &str) {
    let client = guard.client();
    for id in 0..count() {
        client.send(json!({"run": run, "id": id})).unwrap();
    }
}

fn child(scenario: &str) {
    let record = Record::open();
    match scenario {
        "exit_delivers" => {
            let guard = builder(&record).exit_hook(true).exit_timeout(PATIENCE).start().unwrap();
            send_all(&guard, scenario);
            let s = guard.stats();
            record.line(&format!("pending_at_exit={}", s.queued + s.in_flight));
            std::mem::forget(guard); // leaked: only the exit hook can deliver now
            std::process::exit(7);
        }
        #[cfg(feature = "log")]
        "log_exit" => {
            let guard = builder(&record).exit_hook(true).exit_timeout(PATIENCE).start().unwrap();
            posthaste::log::Logger::new(guard.client()).with_field("run", scenario).install().unwrap();
            for id in 0..count() {
                log::warn!(id; "logged before exit");
            }
            let s = guard.stats();
            record.line(&format!("pending_at_exit={}", s.queued + s.in_flight));
            std::mem::forget(guard); // leaked, as a logger's guard often is: the exit hook delivers
            std::process::exit(7);
        }
        "exit_black_hole" => {
            static GUARD: OnceLock<Guard> = OnceLock::new();
            let guard = builder(&record)
                .workers(2)
                .exit_hook(true)
                .exit_timeout(Duration::from_millis(300))
                .start()
                .unwrap();
            let guard = GUARD.get_or_init(|| guard); // in a static: never dropped
            send_all(guard, scenario);
            // Both workers are stuck in a request, the rest queued.
            while guard.stats().in_flight < 2 {
                thread::yield_now();
            }
            // Exit from another thread than main.
            thread::spawn(|| std::process::exit(3)).join().unwrap();
        }
        "return_from_main" => {
            let guard = builder(&record).exit_hook(true).exit_timeout(PATIENCE).start().unwrap();
            send_all(&guard, scenario);
            let s = guard.stats();
            record.line(&format!("pending_at_return={}", s.queued + s.in_flight));
            std::mem::forget(guard);
            // `main` returns normally; the runtime's exit runs the hook.
        }
        "exit_after_drop" => {
            let guard = builder(&record).exit_hook(true).start().unwrap();
            send_all(&guard, scenario);
            drop(guard);
            thread::spawn(|| std::process::exit(0)).join().unwrap();
        }
        "exit_in_callback" => {
            static EXITED: AtomicBool = AtomicBool::new(false);
            let r = record.clone();
            let guard = posthaste::builder(env("URL"))
                .workers(2)
                .exit_hook(true)
                .exit_timeout(Duration::from_secs(1))
                .on_outcome(move |_, outcome| {
                    r.line(&format!("outcome {}", kind(outcome)));
                    // exit must run once: calling it again from inside the hook is undefined.
                    if outcome.is_delivered() && !EXITED.swap(true, Ordering::SeqCst) {
                        std::process::exit(5);
                    }
                })
                .start()
                .unwrap();
            send_all(&guard, scenario);
            std::mem::forget(guard);
            // The callback exits the process.
            loop {
                thread::park();
            }
        }
        "panic_main" => {
            install_previous_hook();
            let guard = builder(&record).panic_hook(true).start().unwrap();
            guard.client().send(json!({"run": scenario, "id": 0})).unwrap();
            panic!("boom from main");
        }
        "panic_worker" => {
            install_previous_hook();
            static PANICKED: AtomicBool = AtomicBool::new(false);
            let guard = posthaste::builder(env("URL"))
                .workers(1)
                .panic_hook(true)
                .on_outcome(|_, _| {
                    if !PANICKED.swap(true, Ordering::SeqCst) {
                        panic!("callback panicked on purpose");
                    }
                })
                .start()
                .unwrap();
            let client = guard.client();
            let first = client.send_tracked(json!({"run": scenario, "id": 0})).unwrap();
            assert!(first.wait(PATIENCE).unwrap().is_delivered());
            let second = client.send_tracked(json!({"run": scenario, "id": 1})).unwrap();
            let second_ok = second.wait(PATIENCE).unwrap().is_delivered();
            record.line(&format!("second={}", u8::from(second_ok)));
            record.stats(&guard.shutdown().stats);
        }
        "panic_in_shutdown" => {
            install_previous_hook();
            let guard = posthaste::builder(env("URL"))
                .workers(1)
                .panic_hook(true)
                .panic_timeout(Duration::from_secs(5))
                .shutdown_timeout(Duration::from_millis(200))
                .on_outcome(|_, outcome| {
                    if *outcome == Outcome::Cancelled {
                        panic!("callback panicked during shutdown");
                    }
                })
                .start()
                .unwrap();
            let client = guard.client();
            for id in 0..5 {
                client.send(json!({"run": scenario, "id": id})).unwrap();
            }
            while guard.stats().in_flight < 1 {
                thread::yield_now();
            }
            record.stats(&guard.shutdown().stats);
        }
        "spill_writer" => {
            let guard = builder(&record)
                .spill_dir(env("SPILL"))
                .retry(Retry::new().initial_delay(Duration::from_millis(1)).max_attempts(2))
                .shutdown_timeout(Duration::from_secs(1))
                .start()
                .unwrap();
            send_all(&guard, scenario);
            record.stats(&guard.shutdown().stats);
        }
        "spill_replayer" => {
            let guard = builder(&record).workers(1).spill_dir(env("SPILL")).start().unwrap();
            send_all(&guard, scenario);
            assert!(guard.flush(PATIENCE));
            record.stats(&guard.shutdown().stats);
        }
        "exit_spill" => {
            let guard = builder(&record)
                .workers(2)
                .spill_dir(env("SPILL"))
                .exit_hook(true)
                .exit_timeout(Duration::from_millis(300))
                .start()
                .unwrap();
            send_all(&guard, scenario);
            while guard.stats().in_flight < 2 {
                thread::yield_now();
            }
            std::mem::forget(guard);
            std::process::exit(0);
        }
        other => panic!("unknown child scenario {other}"),
    }
}

/// A hook installed before posthaste's, which must still run after it.
fn install_previous_hook() {
    let default = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        eprintln!("PREVIOUS HOOK: {message}");
        default(info);
    }));
}
