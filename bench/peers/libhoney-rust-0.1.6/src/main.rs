//! Benchmark peer: sends the shared bench event shape (see ../SHAPE.md) to a
//! Honeycomb-compatible receiver with libhoney-rust 0.1.6 from crates.io, and
//! prints one JSON line with the outcome on stdout.
//!
//! How libhoney-rust 0.1.6 is used, and why (see ../README.md for more):
//! - `libhoney::init` with `transmission::Options::default()` (batch 50,
//!   10 concurrent batches, 100 ms batch timeout, pending capacity 10 000).
//!   Only `api_key`, `api_host` and `dataset` are set on `client::Options`.
//! - Each application thread gets a `Client` clone (the crate's documented way
//!   to share a client, since `Event::send` needs `&mut Client`). The clones are
//!   handed back to the main thread and only dropped after all responses are in,
//!   because dropping ANY clone runs `Transmission::drop` -> `stop()`, which
//!   shuts down the shared batching loop.
//! - The response channel is drained on a dedicated thread: if it is not read,
//!   the transmission blocks once 40 000 responses are queued (issue #74).
//! - `close()` does not wait for delivery (#65/#66), so delivery is counted
//!   from the responses (per-event status 202) and we wait until responses for
//!   all N events have arrived, or until no response has arrived for
//!   `--timeout` seconds.

use std::process;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use libhoney::{FieldHolder, Value};

/// The shape's per-event values, shared with this SDK's sender.
#[path = "../../../e2e/src/values.rs"]
mod values;
use values::{duration_ms, status_code, trace_id, user_id, MESSAGE, METHODS};

const SDK: &str = "libhoney-rust 0.1.6";

struct Args {
    url: String,
    events: u64,
    threads: u64,
    api_key: String,
    dataset: String,
    timeout_s: f64,
}

fn usage() -> ! {
    eprintln!(
        "usage: peer-libhoney-rust --url URL [--events N (200000)] [--threads T (1)] \
         [--api-key KEY (bench-key)] [--dataset NAME (bench)] [--timeout S (10)]"
    );
    process::exit(2);
}

fn parse_args() -> Args {
    let mut a = Args {
        url: String::new(),
        events: 200_000,
        threads: 1,
        api_key: "bench-key".into(),
        dataset: "bench".into(),
        timeout_s: 10.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            usage();
        }
        let val = it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--url" => a.url = val,
            "--events" => a.events = val.parse().unwrap_or_else(|_| usage()),
            "--threads" => a.threads = val.parse().unwrap_or_else(|_| usage()),
            "--api-key" => a.api_key = val,
            "--dataset" => a.dataset = val,
            "--timeout" => a.timeout_s = val.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    if a.url.is_empty() || a.threads == 0 || !(a.timeout_s > 0.0) {
        usage();
    }
    // libhoney-rust builds the endpoint as format!("{}/1/batch/{}", api_host, ...).
    a.url = a.url.trim_end_matches('/').to_string();
    a
}

/// Fills `ev` with the fields of event `i` (the shared shape, SHAPE.md).
fn add_shape_fields<E: FieldHolder>(ev: &mut E, i: u64) {
    ev.add_field("service.name", Value::from("checkout"));
    ev.add_field("endpoint", Value::from("/api/v1/cart/items"));
    ev.add_field("method", Value::from(METHODS[(i % 4) as usize]));
    ev.add_field("status_code", Value::from(status_code(i)));
    ev.add_field("duration_ms", Value::from(duration_ms(i)));
    ev.add_field("user_id", Value::from(user_id(i)));
    ev.add_field("cache_hit", Value::from(i % 3 == 0));
    ev.add_field("message", Value::from(MESSAGE));
    ev.add_field("trace.trace_id", Value::from(trace_id(i)));
    ev.add_field("count", Value::from(i));
}

fn rusage() -> (f64, i64) {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (tv(ru.ru_utime) + tv(ru.ru_stime), ru.ru_maxrss as i64)
}

struct Tally {
    delivered: u64,
    failed: u64,
    last_response: Option<Instant>,
    timed_out: bool,
    first_error: Option<String>,
    /// failure reason (status or error text) -> count, for stderr diagnostics
    reasons: std::collections::BTreeMap<String, u64>,
}

fn main() {
    assert_eq!(MESSAGE.chars().count(), 60);
    let args = parse_args();
    let n = args.events;
    let t = args.threads;

    let client = libhoney::init(libhoney::Config {
        options: libhoney::client::Options {
            api_key: args.api_key.clone(),
            api_host: args.url.clone(),
            dataset: args.dataset.clone(),
            ..libhoney::client::Options::default()
        },
        transmission_options: libhoney::transmission::Options::default(),
    });

    // Reader thread: drains the response channel (issue #74) and stops when
    // every event has a response, or when no response arrived for timeout_s.
    let responses = client.responses();
    let idle_timeout = Duration::from_secs_f64(args.timeout_s);
    let started = Arc::new(AtomicBool::new(false));
    let reader_started = started.clone();
    let reader = thread::spawn(move || {
        let mut tally = Tally {
            delivered: 0,
            failed: 0,
            last_response: None,
            timed_out: false,
            first_error: None,
            reasons: Default::default(),
        };
        while !reader_started.load(Ordering::Acquire) {
            thread::sleep(Duration::from_millis(1));
        }
        let mut last_progress = Instant::now();
        while tally.delivered + tally.failed < n {
            match responses.recv_timeout(Duration::from_millis(100)) {
                Ok(r) => {
                    let now = Instant::now();
                    tally.last_response = Some(now);
                    last_progress = now;
                    let status = r.status_code.map(|s| s.as_u16());
                    if status == Some(202) && r.error.is_none() {
                        tally.delivered += 1;
                    } else {
                        tally.failed += 1;
                        let reason = match (&r.error, status) {
                            (Some(e), _) => {
                                // drop the URL so that reasons group
                                let e = match (e.find(" for url ("), e.find("): ")) {
                                    (Some(a), Some(b)) if a < b => {
                                        format!("{}{}", &e[..a], &e[b + 1..])
                                    }
                                    _ => e.clone(),
                                };
                                format!("error: {}", e)
                            }
                            (None, s) => format!("status: {:?}", s),
                        };
                        *tally.reasons.entry(reason).or_insert(0) += 1;
                        if tally.first_error.is_none() {
                            tally.first_error = Some(format!(
                                "status={:?} error={:?} body={:?}",
                                status, r.error, r.body
                            ));
                        }
                    }
                }
                Err(e) if e.is_timeout() => {
                    if last_progress.elapsed() >= idle_timeout {
                        tally.timed_out = true;
                        break;
                    }
                }
                Err(_) => {
                    eprintln!("response channel disconnected");
                    tally.timed_out = true;
                    break;
                }
            }
        }
        (tally, Instant::now())
    });

    // Application threads: thread k sends events [k*n/t, (k+1)*n/t).
    let barrier = Arc::new(Barrier::new(t as usize + 1));
    let mut senders = Vec::with_capacity(t as usize);
    for k in 0..t {
        let mut c = client.clone();
        let b = barrier.clone();
        let lo = k * n / t;
        let hi = (k + 1) * n / t;
        senders.push(thread::spawn(move || {
            b.wait();
            let mut errors = 0u64;
            for i in lo..hi {
                let mut ev = c.new_event();
                add_shape_fields(&mut ev, i);
                if let Err(e) = ev.send(&mut c) {
                    if errors == 0 {
                        eprintln!("send error: {}", e);
                    }
                    errors += 1;
                }
            }
            // Hand the clone back: dropping it here would stop the shared
            // transmission (Transmission::drop calls stop()).
            (c, errors)
        }));
    }
    barrier.wait();
    let t0 = Instant::now();
    started.store(true, Ordering::Release);

    let mut clones = Vec::with_capacity(t as usize);
    let mut send_errors = 0u64;
    for h in senders {
        let (c, e) = h.join().expect("sender thread panicked");
        clones.push(c);
        send_errors += e;
    }
    let send_s = t0.elapsed().as_secs_f64();

    let (tally, reader_end) = reader.join().expect("reader thread panicked");
    let end = if tally.timed_out {
        reader_end
    } else {
        tally.last_response.unwrap_or(reader_end)
    };
    let elapsed_s = end.duration_since(t0).as_secs_f64();
    let last_response_s = tally
        .last_response
        .map(|l| l.duration_since(t0).as_secs_f64())
        .unwrap_or(0.0);
    if let Some(e) = &tally.first_error {
        eprintln!("first failed response: {}", e);
    }
    for (reason, count) in &tally.reasons {
        eprintln!("failed x{}: {}", count, reason);
    }
    if send_errors > 0 {
        eprintln!("{} events rejected by Event::send", send_errors);
    }

    let no_response = n - tally.delivered - tally.failed;
    let clean_exit = !tally.timed_out;
    if clean_exit {
        // Everything has a response, so the work queue is empty: stopping is safe.
        if let Err(e) = client.close() {
            eprintln!("close: {}", e);
        }
        drop(clones);
    } else {
        eprintln!(
            "timed out: no response for {:.1}s; {} events without a response",
            args.timeout_s, no_response
        );
        // Do not drop the clones or close: Transmission::drop unwraps stop(),
        // which panics if the work channel is full.
        std::mem::forget(clones);
        std::mem::forget(client);
    }

    let (cpu_s, peak_rss_kb) = rusage();
    println!(
        "{{\"sdk\":\"{}\",\"events\":{},\"threads\":{},\"elapsed_s\":{:.6},\"delivered\":{},\"failed\":{},\"no_response\":{},\"cpu_s\":{:.6},\"peak_rss_kb\":{},\"send_s\":{:.6},\"last_response_s\":{:.6},\"timed_out\":{}}}",
        SDK, n, t, elapsed_s, tally.delivered, tally.failed, no_response, cpu_s, peak_rss_kb,
        send_s, last_response_s, tally.timed_out
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // Do not wait for the libhoney-rust runtimes to wind down.
    process::exit(0);
}
