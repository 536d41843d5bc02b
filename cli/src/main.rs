//! `posthaste`: ship NDJSON events to an HTTP endpoint from a shell, or diagnose the network
//! path to it, with the posthaste library (its public API only).
//!
//! ```text
//! posthaste send https://collector.corp/ingest events.ndjson
//! zcat events.ndjson.gz | posthaste send https://collector.corp/ingest -
//! posthaste probe https://collector.corp/ingest --proxy http://proxy.corp:3128 --ca corp-ca.pem
//! ```
//!
//! Options come from flags or from the library's `POSTHASTE_*` environment table
//! (`posthaste::from_env`); flags win. Exit status: 0 when every event was delivered (or the
//! probe succeeded), 1 when some were not (or the probe failed), 2 for bad usage or
//! configuration.

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use posthaste::{Batch, Builder, Encoding, Event, Gzip, Overflow, Stats};

#[derive(Parser)]
#[command(name = "posthaste", version, about = "Ship events over HTTP, or diagnose the path to an endpoint")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Ship NDJSON events (one JSON value per line) from FILE, or standard input with `-`.
    Send(SendArgs),
    /// Diagnose the path to URL hop by hop: route, DNS, TCP, proxy, TLS, HTTP.
    Probe(ProbeArgs),
}

#[derive(Args)]
struct Network {
    /// Proxy URL (http, https, socks5, socks5h; `none` connects directly). Defaults to
    /// POSTHASTE_PROXY, then the proxy environment variables.
    #[arg(long, value_name = "URL")]
    proxy: Option<String>,
    /// Extra trusted root certificates (PEM file), added to the bundled and OS roots.
    #[arg(long, value_name = "FILE")]
    ca: Vec<PathBuf>,
    /// Client certificate chain (PEM) for mutual TLS; needs --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// The client certificate's private key (PEM); needs --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// Sends `Authorization: Bearer TOKEN` (or POSTHASTE_BEARER_TOKEN).
    #[arg(long, value_name = "TOKEN")]
    bearer: Option<String>,
    /// An extra request header, `Name: value` (repeatable).
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    headers: Vec<String>,
}

#[derive(Args)]
struct SendArgs {
    /// The endpoint.
    url: String,
    /// The NDJSON file, or `-` for standard input.
    #[arg(default_value = "-")]
    file: String,
    #[command(flatten)]
    network: Network,
    /// Worker threads (each with its own connection). Defaults to POSTHASTE_WORKERS, else 2.
    #[arg(long)]
    workers: Option<usize>,
    /// Events per request; 1 sends each event alone. Defaults to 500 (POSTHASTE_BATCH_MAX_EVENTS).
    #[arg(long, value_name = "N")]
    batch: Option<usize>,
    /// How a request's events are laid out: json-array or ndjson. Defaults to json-array.
    #[arg(long, value_name = "ENCODING")]
    encoding: Option<String>,
    /// Compress request bodies with gzip.
    #[arg(long)]
    gzip: bool,
    /// How long to wait at the end for delivery, retries included, before cancelling what is
    /// left (seconds). Defaults to 60.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    timeout: f64,
}

#[derive(Args)]
struct ProbeArgs {
    /// The endpoint.
    url: String,
    #[command(flatten)]
    network: Network,
}

/// A configuration error: exit status 2.
struct Usage(String);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Send(args) => send(args),
        Command::Probe(args) => probe(args),
    };
    match result {
        Ok(code) => code,
        Err(Usage(message)) => {
            eprintln!("posthaste: {message}");
            ExitCode::from(2)
        }
    }
}

/// The library's environment table with `url` as the endpoint, then the flags.
fn configure(url: &str, network: &Network) -> Result<Builder, Usage> {
    // The environment table needs a URL; the command line's wins over POSTHASTE_URL.
    // Set before this process starts any thread of its own.
    std::env::set_var("POSTHASTE_URL", url);
    let mut b = posthaste::from_env().map_err(|e| Usage(e.to_string()))?;
    if let Some(p) = &network.proxy {
        b = if p.eq_ignore_ascii_case("none") { b.no_proxy() } else { b.proxy(p.as_str()) };
    }
    for ca in &network.ca {
        b = b.add_root_certs_pem_file(ca);
    }
    if let (Some(cert), Some(key)) = (&network.cert, &network.key) {
        b = b.client_cert_pem_files(cert, key);
    }
    if let Some(token) = &network.bearer {
        b = b.bearer_auth(token);
    }
    for h in &network.headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| Usage("--header takes `Name: value` (value not shown)".into()))?;
        b = b.header(name.trim(), value.trim());
    }
    Ok(b)
}

fn probe(args: ProbeArgs) -> Result<ExitCode, Usage> {
    let guard = configure(&args.url, &args.network)?.workers(1).start().map_err(|e| Usage(e.to_string()))?;
    let diagnosis = guard.client().probe();
    print!("{diagnosis}");
    let _ = io::stdout().flush();
    Ok(if diagnosis.is_ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn send(args: SendArgs) -> Result<ExitCode, Usage> {
    let input: Box<dyn Read + Send> = if args.file == "-" {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(&args.file).map_err(|e| Usage(format!("{}: {e}", args.file)))?)
    };
    if !(args.timeout.is_finite() && args.timeout >= 0.0) {
        return Err(Usage(format!("--timeout {}: not a number of seconds", args.timeout)));
    }
    let mut b = configure(&args.url, &args.network)?
        // A command reading a file waits for room rather than dropping events.
        .overflow(Overflow::Block);
    if let Some(n) = args.workers {
        b = b.workers(n);
    }
    let events_per_request = args.batch.unwrap_or(500);
    if events_per_request > 1 {
        b = b.batch(Batch::new().max_events(events_per_request));
    }
    b = match args.encoding.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("json-array") | Some("json_array") => b.encoding(Encoding::JsonArray),
        Some("ndjson") => b.encoding(Encoding::Ndjson),
        Some(other) => return Err(Usage(format!("--encoding {other}: use json-array or ndjson"))),
    };
    if args.gzip {
        b = b.gzip(Gzip::new());
    }
    let guard = b.start().map_err(|e| Usage(e.to_string()))?;
    let client = guard.client();

    let read = Arc::new(AtomicU64::new(0));
    let malformed = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let began = Instant::now();
    let progress = {
        let (client, read, malformed, done) = (client.clone(), read.clone(), malformed.clone(), done.clone());
        thread::spawn(move || report_progress(&client, &read, &malformed, &done, began))
    };

    let mut reader = BufReader::with_capacity(1 << 16, input);
    let mut line = Vec::new();
    let mut number = 0u64;
    let mut read_error = None;
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                read_error = Some(e);
                break;
            }
        }
        number += 1;
        let text = trim(&line);
        if text.is_empty() {
            continue;
        }
        match Event::from_json_bytes(text.to_vec()) {
            Ok(event) => {
                if client.send(event).is_err() {
                    break; // Closed: nothing more can be sent.
                }
                read.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                malformed.fetch_add(1, Ordering::Relaxed);
                eprintln!("posthaste: line {number}: not JSON ({e}); not sent");
            }
        }
    }
    let settled = guard.flush(Duration::from_secs_f64(args.timeout));
    done.store(true, Ordering::Release);
    let _ = progress.join();
    let report = guard.shutdown();
    let s = report.stats;
    let (events, bad) = (read.load(Ordering::Relaxed), malformed.load(Ordering::Relaxed));
    println!("{report}");
    println!(
        "posthaste: {events} events read, {} delivered, {} not delivered, {bad} malformed lines skipped{} in {:.1}s",
        s.delivered,
        events.saturating_sub(s.delivered),
        if settled { "" } else { " (timed out waiting for delivery)" },
        began.elapsed().as_secs_f64(),
    );
    if let Some(e) = read_error {
        eprintln!("posthaste: reading {}: {e}", args.file);
        return Ok(ExitCode::from(1));
    }
    Ok(if s.delivered == events && bad == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn trim(line: &[u8]) -> &[u8] {
    let start = line.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(line.len());
    let end = line.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |i| i + 1);
    &line[start..end]
}

/// A progress bar on a terminal, a plain line a second otherwise, until `done`.
fn report_progress(
    client: &posthaste::Client,
    read: &AtomicU64,
    malformed: &AtomicU64,
    done: &AtomicBool,
    began: Instant,
) {
    let line = |s: &Stats| {
        let secs = began.elapsed().as_secs_f64().max(1e-3);
        format!(
            "read {}, delivered {}, queued {}, failed {}, malformed {}, {:.0} events/s",
            read.load(Ordering::Relaxed),
            s.delivered,
            s.queued + s.in_flight,
            s.failed + s.rejected + s.cancelled + s.abandoned + s.dropped,
            malformed.load(Ordering::Relaxed),
            s.delivered as f64 / secs,
        )
    };
    let tick = Duration::from_millis(if io::stdout().is_terminal() { 100 } else { 1000 });
    if io::stdout().is_terminal() {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        while !done.load(Ordering::Acquire) {
            bar.set_message(line(&client.stats()));
            bar.tick();
            sleep_until_done(done, tick);
        }
        bar.finish_and_clear();
    } else {
        let mut next = Instant::now() + tick;
        while !done.load(Ordering::Acquire) {
            sleep_until_done(done, tick);
            if Instant::now() >= next && !done.load(Ordering::Acquire) {
                println!("posthaste: {}", line(&client.stats()));
                next += tick;
            }
        }
    }
}

/// Waits up to `d` in short steps, returning early once `done`.
fn sleep_until_done(done: &AtomicBool, d: Duration) {
    let until = Instant::now() + d;
    while !done.load(Ordering::Acquire) && Instant::now() < until {
        thread::park_timeout(Duration::from_millis(20).min(until.saturating_duration_since(Instant::now())));
    }
}
