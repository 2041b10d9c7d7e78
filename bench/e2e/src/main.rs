//! End-to-end benchmark of libhoney for Rust, against libhoney-py 2.4.0 and
//! libhoney-rust 0.1.6, over loopback to the local receiver.
//!
//! ```text
//! libhoney-bench send --url URL [--events N] [--threads T] [--encoding json|msgpack]
//!                     [--compression zstd|gzip|none] [--compression-level L]
//!                     [--batch-size N] [--max-concurrent-batches N] [--pending-work-capacity N]
//!                     [--encode-on send|batcher|adaptive] [--batcher-encodes]
//!                     [--transmission http|tokio] [--rate EVENTS_PER_S] [--send-latency]
//! libhoney-bench floor [--events N] [--encoding json|msgpack] [--compression zstd|gzip|none]
//!                      [--compression-level L] [--batch-size N]
//! libhoney-bench compare [--events N] [--big-events M] [--repeat R] [--skip-peers]
//!                        [--receiver PATH] [--peer-rust PATH] [--peer-py-python PATH --peer-py-script PATH]
//! ```
//!
//! `send` sends N events of the shape in bench/peers/SHAPE.md through the
//! default HTTP transmission (with `block_on_send`, so loss must be 0) and
//! prints one JSON line in the peers' format. `floor` does on one thread only
//! the work no delivery can skip (build, send, encode, compress, one response
//! per event; see src/floor.rs). `compare` starts the receiver as
//! its own process, runs every sender as its own process (so CPU and peak RSS
//! are each sender's alone), checks each run with the receiver's counts, and
//! prints the tables of docs/PERFORMANCE.md. See bench/run.sh.

mod floor;
mod procstat;
mod shape;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use libhoney::{Client, Compression, Config, EncodeOn, Encoding};
use serde_json::{json, Value as Json};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("send") => send(&Opts::parse(&args[1..])),
        Some("compare") => compare(&Opts::parse(&args[1..])),
        Some("floor") => floor::floor(&Opts::parse(&args[1..])),
        _ => {
            eprintln!(
                "usage: libhoney-bench send|compare|floor [options] (see the source's header)"
            );
            2
        }
    };
    std::process::exit(code);
}

#[derive(Clone, Debug)]
struct Opts {
    url: String,
    events: u64,
    big_events: u64,
    threads: usize,
    repeat: usize,
    encoding: String,
    compression: String,
    api_key: String,
    dataset: String,
    skip_peers: bool,
    skip_variants: bool,
    receiver: Option<PathBuf>,
    receiver_threads: usize,
    peer_rust: Option<PathBuf>,
    peer_py_python: Option<PathBuf>,
    peer_py_script: Option<PathBuf>,
    ceiling: Option<PathBuf>,
    out: Option<PathBuf>,
    batch_size: Option<usize>,
    max_concurrent: Option<usize>,
    pending: Option<usize>,
    transmission: String,
    rate: Option<f64>,
    send_latency: bool,
    encode_on: EncodeOn,
    compression_level: Option<i32>,
}

impl Opts {
    fn parse(args: &[String]) -> Opts {
        let mut o = Opts {
            url: String::new(),
            events: 200_000,
            big_events: 1_000_000,
            threads: 1,
            repeat: 3,
            encoding: "json".into(),
            compression: "zstd".into(),
            api_key: "bench-key".into(),
            dataset: "bench".into(),
            skip_peers: false,
            skip_variants: false,
            receiver: None,
            receiver_threads: 2,
            peer_rust: None,
            peer_py_python: None,
            peer_py_script: None,
            ceiling: None,
            out: None,
            batch_size: None,
            max_concurrent: None,
            pending: None,
            transmission: "http".into(),
            rate: None,
            send_latency: false,
            encode_on: EncodeOn::Adaptive,
            compression_level: None,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut val = || it.next().cloned().unwrap_or_default();
            match flag.as_str() {
                "--url" => o.url = val(),
                "--events" => o.events = val().parse().expect("--events N"),
                "--big-events" => o.big_events = val().parse().expect("--big-events N"),
                "--threads" => o.threads = val().parse().expect("--threads T"),
                "--repeat" => o.repeat = val().parse().expect("--repeat R"),
                "--encoding" => o.encoding = val(),
                "--compression" => o.compression = val(),
                "--api-key" => o.api_key = val(),
                "--dataset" => o.dataset = val(),
                "--skip-peers" => o.skip_peers = true,
                "--skip-variants" => o.skip_variants = true,
                "--receiver" => o.receiver = Some(val().into()),
                "--receiver-threads" => {
                    o.receiver_threads = val().parse().expect("--receiver-threads K")
                }
                "--peer-rust" => o.peer_rust = Some(val().into()),
                "--peer-py-python" => o.peer_py_python = Some(val().into()),
                "--peer-py-script" => o.peer_py_script = Some(val().into()),
                "--ceiling" => o.ceiling = Some(val().into()),
                "--out" => o.out = Some(val().into()),
                "--batch-size" => o.batch_size = Some(val().parse().expect("--batch-size N")),
                "--transmission" => o.transmission = val(),
                "--rate" => o.rate = Some(val().parse().expect("--rate EVENTS_PER_S")),
                "--send-latency" => o.send_latency = true,
                "--max-concurrent-batches" => {
                    o.max_concurrent = Some(val().parse().expect("--max-concurrent-batches N"))
                }
                "--pending-work-capacity" => {
                    o.pending = Some(val().parse().expect("--pending-work-capacity N"))
                }
                "--batcher-encodes" => o.encode_on = EncodeOn::Batcher,
                "--encode-on" => {
                    o.encode_on = match val().as_str() {
                        "send" => EncodeOn::Send,
                        "batcher" => EncodeOn::Batcher,
                        "adaptive" => EncodeOn::Adaptive,
                        other => panic!("--encode-on send|batcher|adaptive, not {other}"),
                    }
                }
                "--compression-level" => {
                    o.compression_level = Some(val().parse().expect("--compression-level L"))
                }
                other => {
                    eprintln!("unknown option {other}");
                    std::process::exit(2);
                }
            }
        }
        o
    }
}

// ---------------------------------------------------------------- send

/// `--encoding` and `--compression` as the SDK's settings.
fn encoding_and_compression(o: &Opts) -> (Encoding, Compression) {
    let encoding = match o.encoding.as_str() {
        "msgpack" => Encoding::Msgpack,
        _ => Encoding::Json,
    };
    let compression = match o.compression.as_str() {
        "gzip" => Compression::Gzip,
        "none" => Compression::None,
        _ => Compression::Zstd,
    };
    (encoding, compression)
}

fn send(o: &Opts) -> i32 {
    let (encoding, compression) = encoding_and_compression(o);
    let config = Config::new()
        .read_env(false)
        .api_key(o.api_key.clone())
        .dataset(o.dataset.clone())
        .api_host(o.url.clone())
        .encoding(encoding)
        .compression(compression)
        .block_on_send(true)
        .encode_on(o.encode_on)
        .block_on_response(true)
        .shutdown_timeout(Duration::from_secs(300));
    // Options given on the command line; the SDK's defaults otherwise.
    fn set<T>(config: Config, value: Option<T>, setter: fn(Config, T) -> Config) -> Config {
        match value {
            Some(v) => setter(config, v),
            None => config,
        }
    }
    let config = set(config, o.batch_size, Config::max_batch_size);
    let config = set(config, o.max_concurrent, Config::max_concurrent_batches);
    let config = set(config, o.pending, Config::pending_work_capacity);
    let config = set(config, o.compression_level, Config::compression_level);
    // `--transmission tokio`: the Tokio transmission on a multi-thread
    // runtime (a worker per core), fed from the same plain threads.
    let runtime = (o.transmission == "tokio").then(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    });
    let tokio_tx = runtime
        .as_ref()
        .map(|rt| libhoney::transmission::Tokio::with_handle(rt.handle().clone()));
    let config = match &tokio_tx {
        Some(t) => config.transmission(t.clone()),
        None => config,
    };
    let client = match Client::new(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let responses = client.responses();
    let cpu0 = procstat::cpu_seconds();
    let start = Instant::now();
    let n = o.events;
    let reader = std::thread::spawn(move || {
        let (mut delivered, mut failed, mut last) = (0u64, 0u64, None);
        let mut first_error = None;
        for r in responses {
            if r.is_success() {
                delivered += 1;
            } else {
                failed += 1;
                first_error.get_or_insert_with(|| format!("{:?} {}", r.error, r.body));
            }
            // The clock is read once, at the last expected response (reading
            // it per response cost the process about 1 % of its CPU).
            if delivered + failed == n {
                last = Some(start.elapsed());
            }
        }
        let last = last.unwrap_or_else(|| start.elapsed());
        (delivered, failed, last, first_error)
    });
    let t = o.threads.max(1) as u64;
    let barrier = Arc::new(Barrier::new(t as usize));
    let rate = o.rate;
    let workers: Vec<_> = (0..t)
        .map(|k| {
            let (client, barrier) = (client.clone(), Arc::clone(&barrier));
            // `--rate`: each thread keeps to its share of the rate, checking
            // the clock every 64 events and sleeping when ahead.
            let per_event = rate.map(|r| Duration::from_secs_f64(t as f64 / r));
            let timed = o.send_latency;
            std::thread::spawn(move || {
                let mut latencies: Vec<u32> =
                    Vec::with_capacity(if timed { (n / t) as usize + 1 } else { 0 });
                barrier.wait();
                let t0 = Instant::now();
                for (j, i) in (k * n / t..(k + 1) * n / t).enumerate() {
                    if let Some(d) = per_event.filter(|_| j % 64 == 0) {
                        let due = d * j as u32;
                        let now = t0.elapsed();
                        if due > now {
                            std::thread::sleep(due - now);
                        }
                    }
                    let mut ev = client.new_event();
                    shape::fill(&mut ev, i);
                    if timed {
                        let t = Instant::now();
                        ev.send().expect("send");
                        latencies.push(t.elapsed().as_nanos().min(u32::MAX as u128) as u32);
                    } else {
                        ev.send().expect("send");
                    }
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.join().expect("sender thread"));
    }
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
    };
    let send_s = start.elapsed().as_secs_f64();
    if let (Some(rt), Some(t)) = (&runtime, &tokio_tx) {
        if let Err(e) = rt.block_on(t.close(Duration::from_secs(300))) {
            eprintln!("tokio close: {e}");
        }
    }
    let close = client.close();
    let (delivered, failed, last, first_error) = reader.join().expect("reader thread");
    let cpu = procstat::cpu_seconds() - cpu0;
    if let Some(e) = first_error {
        eprintln!("first failure: {e}");
    }
    if let Err(e) = close {
        eprintln!("close: {e}");
    }
    let m = client.metrics();
    let line = json!({
        "sdk": "libhoney-rust (this)",
        "events": n,
        "threads": t,
        "encoding": o.encoding,
        "compression": o.compression,
        "transmission": o.transmission,
        "elapsed_s": last.as_secs_f64(),
        "send_s": send_s,
        "delivered": delivered,
        "failed": failed,
        "no_response": n - delivered - failed,
        "cpu_s": cpu,
        "peak_rss_kb": procstat::peak_rss_kb(),
        "requests": m.batches_sent,
        "retries": m.retries,
    });
    let mut line = line;
    if o.send_latency {
        // Each `send()` timed with two clock reads (about 20-40 ns of them).
        line["send_ns_p50"] = json!(pct(0.50));
        line["send_ns_p90"] = json!(pct(0.90));
        line["send_ns_p99"] = json!(pct(0.99));
    }
    println!("{line}");
    0
}

// ---------------------------------------------------------------- compare

struct ReceiverProc {
    child: Child,
    addr: String,
}

impl ReceiverProc {
    fn start(path: &Path, threads: usize) -> ReceiverProc {
        let mut child = Command::new(path)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--quiet",
                "--no-record",
                "--track-unique",
                "count",
            ])
            .args(["--threads", &threads.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("receiver's first line");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .expect("listening on URL")
            .to_string();
        let addr = url.trim_start_matches("http://").to_string();
        ReceiverProc { child, addr }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn http(&self, method: &str, path: &str) -> String {
        let mut s = TcpStream::connect(&self.addr).expect("connect to receiver");
        write!(s, "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", self.addr)
            .expect("write");
        let mut resp = String::new();
        s.read_to_string(&mut resp).expect("read");
        resp.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    }

    fn stats(&self) -> Json {
        let body = self.http("GET", "/_receiver/stats");
        // Tolerate chunked framing: take the JSON object in the body.
        let start = body.find('{').unwrap_or(0);
        let end = body.rfind('}').map_or(body.len(), |e| e + 1);
        serde_json::from_str(&body[start..end]).unwrap_or(Json::Null)
    }

    fn reset(&self) {
        self.http("POST", "/_receiver/reset");
    }
}

impl Drop for ReceiverProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One run of one sender. Every field is written to the `--out` file (via `Debug`).
#[derive(Clone, Debug)]
#[allow(dead_code)]
struct Run {
    label: String,
    events: u64,
    threads: usize,
    rate: f64,
    cpu_us_per_event: f64,
    peak_rss_mb: f64,
    delivered: u64,
    accepted: u64,
    duplicates: u64,
    loss: u64,
    ok: bool,
}

fn run_sender(
    rx: &ReceiverProc,
    label: &str,
    mut cmd: Command,
    events: u64,
    threads: usize,
    strict: bool,
) -> Option<Run> {
    rx.reset();
    let out = cmd.stderr(Stdio::inherit()).output().ok()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))?;
    let v: Json = serde_json::from_str(line).ok()?;
    let stats = rx.stats();
    let delivered = v["delivered"].as_u64().unwrap_or(0);
    let elapsed = v["elapsed_s"].as_f64().unwrap_or(f64::NAN);
    let cpu = v["cpu_s"].as_f64().unwrap_or(f64::NAN);
    let accepted = stats["distinct_tracked"].as_u64().unwrap_or(0);
    let duplicates = stats["duplicate_tracked"].as_u64().unwrap_or(0);
    let loss = events.saturating_sub(delivered);
    // Every delivered event is one the receiver stored, exactly once.
    let consistent = accepted == delivered && duplicates == 0;
    let ok = consistent && (!strict || loss == 0);
    if !ok {
        eprintln!(
            "CHECK FAILED for {label}: delivered {delivered}, receiver accepted {accepted} distinct, {duplicates} duplicates, loss {loss}"
        );
    }
    Some(Run {
        label: label.to_string(),
        events,
        threads,
        rate: delivered as f64 / elapsed,
        cpu_us_per_event: cpu * 1e6 / delivered.max(1) as f64,
        peak_rss_mb: v["peak_rss_kb"].as_f64().unwrap_or(f64::NAN) / 1024.0,
        delivered,
        accepted,
        duplicates,
        loss,
        ok,
    })
}

/// One run of `libhoney-bench floor`: its CPU µs per event, if every event
/// was answered with a success.
fn run_floor(events: u64) -> Option<f64> {
    let out = Command::new(std::env::current_exe().ok()?)
        .args(["floor", "--events", &events.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .ok()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Json = serde_json::from_str(stdout.lines().last()?).ok()?;
    if !out.status.success() || v["delivered"].as_u64() != Some(events) {
        eprintln!("CHECK FAILED for the floor: {stdout}");
        return None;
    }
    v["cpu_us_per_event"].as_f64()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.retain(|x| x.is_finite());
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// Medians of repeated runs of one sender.
#[derive(Clone, Debug)]
struct Summary {
    label: String,
    events: u64,
    threads: usize,
    rate: f64,
    cpu_us: f64,
    rss_mb: f64,
    loss: u64,
    runs: usize,
    ok: bool,
}

fn summarize(runs: &[Run]) -> Option<Summary> {
    let first = runs.first()?;
    Some(Summary {
        label: first.label.clone(),
        events: first.events,
        threads: first.threads,
        rate: median(runs.iter().map(|r| r.rate).collect()),
        cpu_us: median(runs.iter().map(|r| r.cpu_us_per_event).collect()),
        rss_mb: median(runs.iter().map(|r| r.peak_rss_mb).collect()),
        loss: runs.iter().map(|r| r.loss).max().unwrap_or(0),
        runs: runs.len(),
        ok: runs.iter().all(|r| r.ok),
    })
}

fn print_table(title: &str, rows: &[Summary], baseline: Option<&Summary>) {
    println!("\n{title}\n");
    println!("| sender | events | threads | delivered events/s | CPU µs/event | peak RSS MB | max loss | runs | checks |{}", if baseline.is_some() { " ours ÷ this (events/s) |" } else { "" });
    println!(
        "|---|---|---|---|---|---|---|---|---|{}",
        if baseline.is_some() { "---|" } else { "" }
    );
    for r in rows {
        let ratio = baseline
            .map(|b| format!(" {:.1}× |", b.rate / r.rate))
            .unwrap_or_default();
        println!(
            "| {} | {} | {} | {:.0} | {:.2} | {:.1} | {} | {} | {} |{}",
            r.label,
            r.events,
            r.threads,
            r.rate,
            r.cpu_us,
            r.rss_mb,
            r.loss,
            r.runs,
            if r.ok { "ok" } else { "FAILED" },
            ratio
        );
    }
}

fn self_cmd(
    o: &Opts,
    url: &str,
    events: u64,
    threads: usize,
    encoding: &str,
    compression: &str,
) -> Command {
    let mut c = Command::new(std::env::current_exe().expect("current exe"));
    c.args([
        "send",
        "--url",
        url,
        "--events",
        &events.to_string(),
        "--threads",
        &threads.to_string(),
    ])
    .args(["--encoding", encoding, "--compression", compression])
    .args(["--api-key", &o.api_key, "--dataset", &o.dataset]);
    c
}

fn sibling(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.with_file_name(name)
}

/// Builds the command line of one sender, once per run.
type CommandMaker = Box<dyn Fn() -> Command>;

/// A peer's command line: `program` (and its leading arguments, such as a
/// script) with the peers' common options (bench/peers/README.md).
fn peer_command(
    program: Vec<std::ffi::OsString>,
    url: &str,
    events: u64,
    threads: usize,
) -> CommandMaker {
    let url = url.to_string();
    Box::new(move || {
        let mut c = Command::new(&program[0]);
        c.args(&program[1..]).args([
            "--url",
            &url,
            "--events",
            &events.to_string(),
            "--threads",
            &threads.to_string(),
        ]);
        c
    })
}

fn compare(o: &Opts) -> i32 {
    let receiver_path = o
        .receiver
        .clone()
        .unwrap_or_else(|| sibling("libhoney-receiver"));
    let rx = ReceiverProc::start(&receiver_path, o.receiver_threads);
    let url = rx.url();
    println!(
        "receiver: {} ({} threads) at {url}",
        receiver_path.display(),
        o.receiver_threads
    );
    let mut all_ok = true;
    let mut jsonl = Vec::new();

    if let Some(ceiling) = &o.ceiling {
        println!("\n## The receiver alone (its own load generator, pre-encoded bodies)\n");
        match Command::new(ceiling).args(["--url", &url]).output() {
            Ok(out) => print!("{}", String::from_utf8_lossy(&out.stdout)),
            Err(e) => println!("could not run {}: {e}", ceiling.display()),
        }
    }

    let mut same_work: Vec<Summary> = Vec::new();
    for threads in [1usize, 4] {
        let mut group: Vec<(String, CommandMaker, bool)> = Vec::new();
        let (o2, u2) = (o.clone(), url.clone());
        group.push((
            "libhoney-rust (this), JSON+zstd".into(),
            Box::new(move || self_cmd(&o2, &u2, o2.events, threads, "json", "zstd")),
            true,
        ));
        if !o.skip_peers {
            if let Some(p) = &o.peer_rust {
                let maker = peer_command(vec![p.clone().into()], &url, o.events, threads);
                group.push(("libhoney-rust 0.1.6".into(), maker, false));
            }
            if let (Some(py), Some(script)) = (&o.peer_py_python, &o.peer_py_script) {
                let program = vec![py.clone().into(), script.clone().into()];
                let maker = peer_command(program, &url, o.events, threads);
                group.push(("libhoney-py 2.4.0".into(), maker, false));
            }
        }
        // Runs are interleaved (each sender once per round), so that a slow
        // spell of this shared VM falls on every sender alike.
        let mut runs: Vec<Vec<_>> = group.iter().map(|_| Vec::new()).collect();
        // With one thread, each round also runs the floor (src/floor.rs):
        // the same events built, encoded, compressed and answered on one
        // thread, with nothing handed over or sent.
        let mut floor_us = Vec::new();
        for rep in 0..o.repeat {
            for ((label, make, strict), runs) in group.iter().zip(&mut runs) {
                eprintln!("[{label}] threads={threads} run {}/{}", rep + 1, o.repeat);
                if let Some(r) = run_sender(&rx, label, make(), o.events, threads, *strict) {
                    jsonl.push(format!("{r:?}"));
                    runs.push(r);
                }
            }
            if threads == 1 {
                eprintln!("[floor] run {}/{}", rep + 1, o.repeat);
                match run_floor(o.events) {
                    Some(us) => floor_us.push(us),
                    None => all_ok = false,
                }
            }
        }
        let mut summaries = Vec::new();
        for ((_, _, strict), runs) in group.iter().zip(&runs) {
            if let Some(s) = summarize(runs) {
                all_ok &= s.ok || !strict;
                summaries.push(s);
            }
        }
        print_table(
            &format!(
                "## Same work: {} events, {threads} application thread(s), medians of {} runs",
                o.events, o.repeat
            ),
            &summaries,
            summaries.first(),
        );
        if !floor_us.is_empty() {
            let ours = summaries.first().map_or(f64::NAN, |r| r.cpu_us);
            let floor = median(floor_us.clone());
            println!(
                "\nFloor (`libhoney-bench floor`: one thread builds, encodes, compresses and answers \
                 each event, sends nothing): {:.2} µs of CPU per event, median of {} (runs: {}); \
                 the delivery above costs {:.2} µs, {:.2}× the floor.",
                floor,
                floor_us.len(),
                floor_us.iter().map(|u| format!("{u:.2}")).collect::<Vec<_>>().join(", "),
                ours,
                ours / floor,
            );
        }
        same_work.extend(summaries);
    }

    if !o.skip_variants {
        let mut rows = Vec::new();
        // (encoding, compression, where events are encoded (`None`: the
        // default), the Tokio transmission instead of Http)
        for (enc, comp, encode_on, tokio) in [
            ("json", "zstd", None, false),
            ("json", "zstd", Some("send"), false),
            ("json", "zstd", Some("batcher"), false),
            ("json", "zstd", None, true),
            ("json", "gzip", None, false),
            ("json", "none", None, false),
            ("msgpack", "zstd", None, false),
            ("msgpack", "gzip", None, false),
            ("msgpack", "none", None, false),
        ] {
            for threads in [1usize, 4] {
                let how = match (encode_on, tokio) {
                    (Some("send"), _) => ", always encoded in send",
                    (Some(_), _) => ", batcher encodes",
                    (_, true) => ", Tokio transmission",
                    _ => "",
                };
                let label = format!("libhoney-rust (this), {enc}+{comp}{how}");
                let mut runs = Vec::new();
                for rep in 0..o.repeat {
                    eprintln!("[{label}] threads={threads} run {}/{}", rep + 1, o.repeat);
                    let mut cmd = self_cmd(o, &url, o.big_events, threads, enc, comp);
                    if let Some(on) = encode_on {
                        cmd.args(["--encode-on", on]);
                    }
                    if tokio {
                        cmd.args(["--transmission", "tokio"]);
                    }
                    if let Some(r) = run_sender(&rx, &label, cmd, o.big_events, threads, true) {
                        jsonl.push(format!("{r:?}"));
                        runs.push(r);
                    }
                }
                if let Some(s) = summarize(&runs) {
                    all_ok &= s.ok;
                    rows.push(s);
                }
            }
        }
        print_table(
            &format!(
                "## Variants of this SDK: {} events each, medians of {} runs",
                o.big_events, o.repeat
            ),
            &rows,
            None,
        );
    }
    if let Some(out) = &o.out {
        let _ = std::fs::write(out, jsonl.join("\n") + "\n");
    }
    println!("\nall checks {}", if all_ok { "passed" } else { "FAILED" });
    if all_ok {
        0
    } else {
        1
    }
}
