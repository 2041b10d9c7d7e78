//! Bursts at the defaults: what a new user sees. Nothing is configured but
//! the API key, dataset and host (no `block_on_send`, default queue), and the
//! responses are read on a thread, as the docs advise.
//!
//! ```text
//! burst thread --url URL [--events N]            # one thread sends N events in a loop, then closes
//! burst tasks  --url URL [--tasks T] [--per-task N] [--async] [--transmission http|tokio]
//!                                                # T tokio tasks send N events each (send, or send_async)
//! (either) [--pending-work-capacity N]           # instead of the default, for comparisons
//! ```
//!
//! Prints one JSON line: events sent, delivered, lost (overflowed or
//! failed), without a response (from the client's metrics), responses read
//! and dropped by the response queue, wall time, CPU seconds and peak RSS of
//! this process. Start the receiver yourself (`bench/burst.sh` does it all).

#[path = "../procstat.rs"]
mod procstat;
#[path = "../shape.rs"]
mod shape;

use std::time::{Duration, Instant};

use libhoney::{Client, Config, ResponseError};
use serde_json::json;

struct Opts {
    url: String,
    events: u64,
    tasks: u64,
    per_task: u64,
    send_async: bool,
    tokio_transmission: bool,
    /// `--pending-work-capacity`, for comparisons; the default otherwise.
    pending: Option<usize>,
    /// `--max-pending-bytes`, likewise.
    pending_bytes: Option<usize>,
}

fn parse(args: &[String]) -> Opts {
    let mut o = Opts {
        url: String::new(),
        events: 200_000,
        tasks: 100,
        per_task: 1_000,
        send_async: false,
        tokio_transmission: false,
        pending: None,
        pending_bytes: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().unwrap_or_default();
        match a.as_str() {
            "--url" => o.url = val(),
            "--events" => o.events = val().parse().expect("--events N"),
            "--tasks" => o.tasks = val().parse().expect("--tasks T"),
            "--per-task" => o.per_task = val().parse().expect("--per-task N"),
            "--async" => o.send_async = true,
            "--transmission" => o.tokio_transmission = val() == "tokio",
            "--max-pending-bytes" => {
                o.pending_bytes = Some(val().parse().expect("--max-pending-bytes N"))
            }
            "--pending-work-capacity" => {
                o.pending = Some(val().parse().expect("--pending-work-capacity N"))
            }
            other => panic!("unknown option {other}"),
        }
    }
    assert!(!o.url.is_empty(), "--url URL of a running receiver");
    o
}

/// The defaults, and only what a user must say.
fn config(o: &Opts) -> Config {
    let config = Config::new()
        .read_env(false)
        .api_key("bench-key")
        .dataset("burst")
        .api_host(o.url.clone());
    let config = match o.pending_bytes {
        Some(n) => config.max_pending_bytes(n),
        None => config,
    };
    match o.pending {
        Some(n) => config.pending_work_capacity(n),
        None => config,
    }
}

/// Reads every response; (delivered, overflowed, failed otherwise).
fn reader(client: &Client) -> std::thread::JoinHandle<(u64, u64, u64)> {
    let responses = client.responses();
    std::thread::spawn(move || {
        let (mut ok, mut overflow, mut failed) = (0, 0, 0);
        for r in responses {
            match r.error {
                None => ok += 1,
                Some(ResponseError::QueueOverflow) => overflow += 1,
                Some(_) => failed += 1,
            }
        }
        (ok, overflow, failed)
    })
}

/// One JSON line. Outcomes come from the client's metrics, which count every
/// response before the response queue (so a response the queue dropped
/// still counts); `responses_read` is what the reader thread got.
fn report(
    kind: &str,
    sent: u64,
    client: &Client,
    counts: (u64, u64, u64),
    start: Instant,
    cpu0: f64,
) {
    let (ok, overflow, failed) = counts;
    let m = client.metrics();
    println!(
        "{}",
        json!({
            "burst": kind,
            "sent": sent,
            "delivered": m.events_sent,
            "overflowed": m.events_overflowed,
            "failed": m.events_failed,
            "no_response": sent - m.events_sent - m.events_overflowed - m.events_failed,
            "responses_read": ok + overflow + failed,
            "responses_dropped": m.responses_dropped,
            "wall_s": start.elapsed().as_secs_f64(),
            "cpu_s": procstat::cpu_seconds() - cpu0,
            "peak_rss_mb": procstat::peak_rss_kb() as f64 / 1024.0,
        })
    );
}

fn thread_burst(o: &Opts) {
    let client = Client::new(config(o)).expect("client");
    let read = reader(&client);
    let (start, cpu0) = (Instant::now(), procstat::cpu_seconds());
    for i in 0..o.events {
        let mut ev = client.new_event();
        shape::fill(&mut ev, i);
        ev.send().expect("send");
    }
    let close = client.close();
    let counts = read.join().expect("reader");
    if let Err(e) = close {
        eprintln!("close: {e}");
    }
    report("thread", o.events, &client, counts, start, cpu0);
}

fn task_burst(o: &Opts) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = runtime.block_on(async {
        let config = if o.tokio_transmission {
            config(o).transmission(libhoney::transmission::Tokio::new())
        } else {
            config(o)
        };
        Client::new(config).expect("client")
    });
    let read = reader(&client);
    let (start, cpu0) = (Instant::now(), procstat::cpu_seconds());
    let (tasks, per_task, send_async) = (o.tasks, o.per_task, o.send_async);
    runtime.block_on(async {
        let handles: Vec<_> = (0..tasks)
            .map(|t| {
                let client = client.clone();
                tokio::spawn(async move {
                    for j in 0..per_task {
                        let mut ev = client.new_event();
                        shape::fill(&mut ev, t * per_task + j);
                        if send_async {
                            ev.send_async().await.expect("send_async");
                        } else {
                            ev.send().expect("send");
                        }
                        if j % 64 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.expect("task");
        }
        if let Err(e) = client.close_async(Duration::from_secs(60)).await {
            eprintln!("close: {e}");
        }
    });
    let counts = read.join().expect("reader");
    report(
        if send_async { "tasks-async" } else { "tasks" },
        tasks * per_task,
        &client,
        counts,
        start,
        cpu0,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("thread") => thread_burst(&parse(&args[1..])),
        Some("tasks") => task_burst(&parse(&args[1..])),
        _ => {
            eprintln!("usage: burst thread|tasks --url URL [options] (see the source's header)");
            std::process::exit(2);
        }
    }
}
