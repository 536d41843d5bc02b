//! The `posthaste` binary, run as a user would, against loopback sinks.

#[path = "../../tests/support/sink.rs"]
mod sink;

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use sink::{Reply, Sink};

fn posthaste() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_posthaste"));
    // Nothing from the environment of whoever runs the tests.
    for (name, _) in std::env::vars() {
        if name.starts_with("POSTHASTE_") || name.to_ascii_lowercase().ends_with("_proxy") {
            c.env_remove(name);
        }
    }
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A file of `n` events in a fresh directory under the target dir.
fn events_file(tag: &str, lines: impl IntoIterator<Item = String>) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("events.ndjson");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for line in lines {
        writeln!(f, "{line}").unwrap();
    }
    f.flush().unwrap();
    path
}

fn run(c: &mut Command) -> Output {
    c.stdin(Stdio::null()).output().expect("the binary runs")
}

#[test]
fn sends_a_file_of_100_000_events() {
    let sink = Sink::counting(|_| Reply::Status(200));
    let file = events_file("100k", (0..100_000).map(|i| format!(r#"{{"i":{i},"msg":"line"}}"#)));
    let out = run(posthaste().args(["send", &sink.url()]).arg(&file));
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", text(&out.stderr));
    assert_eq!(sink.events(), 100_000);
    assert!(stdout.contains("100000 events read, 100000 delivered, 0 not delivered"), "{stdout}");
}

#[test]
fn malformed_lines_are_reported_with_their_number_and_never_sent() {
    let sink = Sink::with(|_| Reply::Status(200));
    let file = events_file("bad", ["{\"a\":1}", "{not json", "", "{\"a\":3}"].map(String::from));
    let out = run(posthaste().args(["send", &sink.url(), "--batch", "1"]).arg(&file));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("line 2: not JSON"), "{stderr}");
    assert!(
        stdout.contains("2 events read, 2 delivered, 0 not delivered, 1 malformed lines skipped"),
        "{stdout}"
    );
    // Each request a JSON array (the command's default encoding); two workers: any order.
    let mut sent: Vec<String> = sink.requests().iter().map(|r| r.json()[0].to_string()).collect();
    sent.sort();
    assert_eq!(sent, [r#"{"a":1}"#, r#"{"a":3}"#]);
}

#[test]
fn reads_standard_input_and_honours_the_environment_table() {
    let sink = Sink::with(|_| Reply::Status(200));
    let mut child = posthaste()
        .args(["send", &sink.url(), "-"])
        .env("POSTHASTE_BEARER_TOKEN", "tok-from-env")
        .env("POSTHASTE_BATCH_MAX_EVENTS", "2")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"1\n2\n3\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let requests = sink.requests();
    assert_eq!(requests.iter().map(|r| r.events()).sum::<u64>(), 3);
    assert!(requests.iter().all(|r| r.header("authorization") == Some("Bearer tok-from-env")));
}

#[test]
fn undelivered_events_exit_1_with_counts() {
    let sink = Sink::with(|_| Reply::body(400, "no thanks"));
    let file = events_file("rejected", (0..3).map(|i| i.to_string()));
    let out = run(posthaste().args(["send", &sink.url(), "--batch", "1"]).arg(&file));
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("3 events read, 0 delivered, 3 not delivered"), "{stdout}");
    assert!(stdout.contains("3 rejected"), "{stdout}");
}

#[test]
fn bad_usage_and_bad_configuration_exit_2_without_secrets() {
    let out = run(posthaste().args(["send"]));
    assert_eq!(out.status.code(), Some(2));
    let out = run(posthaste().args(["send", "ftp://u:hunter2@host/", "-"]));
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("invalid endpoint URL") && !stderr.contains("hunter2"), "{stderr}");
    let out = run(posthaste().args(["send", "http://127.0.0.1:9/", "--workers", "0", "-"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("workers"), "{}", text(&out.stderr));
    let out = run(posthaste().args(["send", "http://127.0.0.1:9/", "no-such-file.ndjson"]));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn probe_exits_0_for_a_working_endpoint_and_1_for_a_dead_one() {
    let sink = Sink::ok();
    let out = run(posthaste().args(["probe", &sink.url()]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("HTTP"), "{}", text(&out.stdout));
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = run(posthaste().args(["probe", &format!("http://127.0.0.1:{port}/")]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
}
