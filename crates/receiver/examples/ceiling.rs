//! Measures the receiver's own ceiling: events/s it can accept over loopback.
//!
//! Pre-encodes batch bodies (zstd JSON and zstd msgpack, 100 and 1000 events
//! of ~10 fields, shaped like libhoney-go's), then fires them from several
//! threads over keep-alive connections for a fixed time and reports events/s
//! and the CPU the receiver's worker threads spent per event.
//!
//! ```text
//! cargo run --release -p libhoney-receiver --example ceiling -- [options]
//!   --seconds S         per configuration (default 3)
//!   --connections N     client connections/threads (default 4)
//!   --threads T         receiver worker threads (default 2)
//!   --target HOST:PORT  load an already running receiver (e.g. the binary)
//!                       instead of an in-process one
//!   --url http://HOST:PORT  the same, given as a URL
//!   --pid PID           with --target/--url: the receiver's process id, to
//!                       report its CPU per event
//!   --only NAME         run only configuration NAME, or those whose name
//!                       contains NAME
//! ```
//!
//! By default the receiver runs in this process with `record(false)` and
//! `track_unique_u64("seq")`; every answer is checked (status 200 and a full
//! array of 202s) and at the end the receiver's counters must match what was
//! sent, with no duplicate `seq`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libhoney_receiver::Receiver;

struct Opts {
    seconds: f64,
    connections: usize,
    threads: usize,
    target: Option<SocketAddr>,
    pid: Option<u32>,
    only: Option<String>,
}

fn parse() -> Opts {
    let mut o = Opts {
        seconds: 3.0,
        connections: 4,
        threads: 2,
        target: None,
        pid: None,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut v = || it.next().expect("missing value");
        match a.as_str() {
            "--seconds" => o.seconds = v().parse().expect("seconds"),
            "--connections" => o.connections = v().parse().expect("connections"),
            "--threads" => o.threads = v().parse().expect("threads"),
            "--target" => o.target = Some(resolve(&v())),
            "--url" => {
                let u = v();
                let hp = u.trim_start_matches("http://").trim_end_matches('/');
                o.target = Some(resolve(hp));
            }
            "--only" => o.only = Some(v()),
            "--pid" => o.pid = Some(v().parse().expect("pid")),
            _ => panic!("unknown argument {a}"),
        }
    }
    o
}

fn resolve(host_port: &str) -> SocketAddr {
    use std::net::ToSocketAddrs;
    host_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| panic!("cannot resolve {host_port}"))
}

/// One event's fields, like a typical libhoney span: ~10 fields.
struct Ev {
    seq: u64,
    i: u64,
}

const NAMES: [&str; 4] = [
    "GET /api/items",
    "POST /api/orders",
    "db.query",
    "cache.get",
];

impl Ev {
    fn json(&self, out: &mut String) {
        use std::fmt::Write as _;
        let i = self.i;
        // libhoney-go sorts keys; time carries nanoseconds and an offset.
        let _ = write!(
            out,
            concat!(
                r#"{{"data":{{"duration_ms":{dur},"host":"web-{host:02}","http.status_code":{code},"name":"{name}","ok":{ok},"#,
                r#""seq":{seq},"service.name":"checkout","trace.span_id":"{span:016x}","trace.trace_id":"{trace:032x}","user_id":"user-{user}"}},"#,
                r#""time":"2024-05-01T10:11:12.{nanos:09}Z"}}"#
            ),
            dur = 1.25 + (i % 100) as f64 * 0.5,
            host = i % 16,
            code = if i % 10 == 0 { 500 } else { 200 },
            name = NAMES[(i % 4) as usize],
            ok = i % 10 != 0,
            seq = self.seq,
            span = i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            trace = (i as u128).wrapping_mul(0x1234_5678_9abc_def1_2345_6789),
            user = i % 5000,
            nanos = (i * 7919) % 1_000_000_000,
        );
    }

    fn msgpack(&self, out: &mut Vec<u8>) {
        let i = self.i;
        let s = |out: &mut Vec<u8>, v: &str| {
            if v.len() < 32 {
                out.push(0xa0 | v.len() as u8);
            } else {
                out.push(0xd9);
                out.push(v.len() as u8);
            }
            out.extend_from_slice(v.as_bytes());
        };
        out.push(0x82);
        s(out, "data");
        out.push(0x8a);
        s(out, "duration_ms");
        out.push(0xcb);
        out.extend_from_slice(&(1.25 + (i % 100) as f64 * 0.5).to_be_bytes());
        s(out, "host");
        s(out, &format!("web-{:02}", i % 16));
        s(out, "http.status_code");
        out.push(0xcd);
        out.extend_from_slice(&(if i % 10 == 0 { 500u16 } else { 200 }).to_be_bytes());
        s(out, "name");
        s(out, NAMES[(i % 4) as usize]);
        s(out, "ok");
        out.push(if i % 10 != 0 { 0xc3 } else { 0xc2 });
        s(out, "seq");
        out.push(0xcf);
        out.extend_from_slice(&self.seq.to_be_bytes());
        s(out, "service.name");
        s(out, "checkout");
        s(out, "trace.span_id");
        s(
            out,
            &format!("{:016x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        );
        s(out, "trace.trace_id");
        s(
            out,
            &format!(
                "{:032x}",
                (i as u128).wrapping_mul(0x1234_5678_9abc_def1_2345_6789)
            ),
        );
        s(out, "user_id");
        s(out, &format!("user-{}", i % 5000));
        s(out, "time");
        // Timestamp extension, 96-bit form (what vmihailenco/msgpack emits).
        out.extend_from_slice(&[0xc7, 12, 0xff]);
        out.extend_from_slice(&(((i * 7919) % 1_000_000_000) as u32).to_be_bytes());
        out.extend_from_slice(&1_714_558_272i64.to_be_bytes());
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Enc {
    Json,
    Msgpack,
}

/// A complete pre-built HTTP request and what its answer must be.
struct Req {
    bytes: Vec<u8>,
    events: u64,
    decoded: usize,
}

/// Builds `variants` distinct requests of `n` events; `seq` runs from 0 to
/// `variants * n - 1` across them (bodies are resent, so the receiver sees
/// each seq many times: `distinct_tracked` must end at exactly
/// `variants * n`).
fn build(enc: Enc, n: u64, variants: u64) -> Vec<Req> {
    (0..variants)
        .map(|v| {
            let raw = match enc {
                Enc::Json => {
                    let mut s = String::with_capacity(n as usize * 330);
                    s.push('[');
                    for k in 0..n {
                        if k > 0 {
                            s.push(',');
                        }
                        Ev {
                            seq: v * n + k,
                            i: v * n + k,
                        }
                        .json(&mut s);
                    }
                    s.push(']');
                    s.into_bytes()
                }
                Enc::Msgpack => {
                    let mut b = Vec::with_capacity(n as usize * 260);
                    b.push(0xdd);
                    b.extend_from_slice(&(n as u32).to_be_bytes());
                    for k in 0..n {
                        Ev {
                            seq: v * n + k,
                            i: v * n + k,
                        }
                        .msgpack(&mut b);
                    }
                    b
                }
            };
            // libhoney-go: zstd level 2 ("default"), 64 KiB window.
            let body = zstd::bulk::compress(&raw, 2).expect("zstd");
            let ct = match enc {
                Enc::Json => "application/json",
                Enc::Msgpack => "application/msgpack",
            };
            let mut bytes = format!(
                "POST /1/batch/ceiling HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: ceiling\r\n\
                 X-Honeycomb-Team: bench\r\nContent-Type: {ct}\r\nContent-Encoding: zstd\r\n\
                 Content-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            bytes.extend_from_slice(&body);
            Req {
                bytes,
                events: n,
                decoded: raw.len(),
            }
        })
        .collect()
}

/// Reads one response; returns (status, body length, body starts with the
/// expected status array).
fn read_response(r: &mut BufReader<TcpStream>, body: &mut Vec<u8>) -> std::io::Result<u16> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut len = 0usize;
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    body.resize(len, 0);
    r.read_exact(body)?;
    Ok(status)
}

/// CPU seconds (user+system) of process `pid` so far (Linux only).
fn process_cpu(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// CPU seconds (user+system) consumed by this process's threads whose name
/// starts with `prefix` (Linux only; `None` elsewhere).
fn thread_cpu(prefix: &str) -> Option<f64> {
    let tick = 100.0; // USER_HZ on Linux
    let mut total = 0u64;
    for e in std::fs::read_dir("/proc/self/task").ok()? {
        let p = e.ok()?.path();
        let comm = std::fs::read_to_string(p.join("comm")).ok()?;
        if !comm.trim_end().starts_with(prefix) {
            continue;
        }
        let stat = std::fs::read_to_string(p.join("stat")).ok()?;
        let after = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = after.split_whitespace().collect();
        total += f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    }
    Some(total as f64 / tick)
}

struct Outcome {
    events: u64,
    requests: u64,
    decoded: u64,
    wire: u64,
    elapsed: f64,
}

fn run(addr: SocketAddr, reqs: Arc<Vec<Req>>, connections: usize, seconds: f64) -> Outcome {
    let stop = Arc::new(AtomicBool::new(false));
    let events = Arc::new(AtomicU64::new(0));
    let requests = Arc::new(AtomicU64::new(0));
    let decoded = Arc::new(AtomicU64::new(0));
    let wire = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let handles: Vec<_> = (0..connections)
        .map(|c| {
            let (reqs, stop) = (reqs.clone(), stop.clone());
            let (events, requests, decoded, wire) = (
                events.clone(),
                requests.clone(),
                decoded.clone(),
                wire.clone(),
            );
            std::thread::Builder::new()
                .name(format!("load-{c}"))
                .spawn(move || {
                    let s = TcpStream::connect(addr).expect("connect");
                    s.set_nodelay(true).ok();
                    let mut w = s.try_clone().expect("clone");
                    let mut r = BufReader::with_capacity(64 * 1024, s);
                    let mut body = Vec::new();
                    let mut i = c;
                    while !stop.load(Ordering::Relaxed) {
                        let q = &reqs[i % reqs.len()];
                        i += 1;
                        w.write_all(&q.bytes).expect("write");
                        let status = read_response(&mut r, &mut body).expect("read");
                        // A full array of n {"status":202} entries.
                        let want = 2 + q.events as usize * 15 - 1;
                        assert!(
                            status == 200
                                && body.len() == want
                                && body.starts_with(b"[{\"status\":202}"),
                            "unexpected answer {status}: {}",
                            String::from_utf8_lossy(&body[..body.len().min(200)])
                        );
                        events.fetch_add(q.events, Ordering::Relaxed);
                        requests.fetch_add(1, Ordering::Relaxed);
                        decoded.fetch_add(q.decoded as u64, Ordering::Relaxed);
                        wire.fetch_add(q.bytes.len() as u64, Ordering::Relaxed);
                    }
                })
                .expect("spawn")
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("load thread");
    }
    Outcome {
        events: events.load(Ordering::Relaxed),
        requests: requests.load(Ordering::Relaxed),
        decoded: decoded.load(Ordering::Relaxed),
        wire: wire.load(Ordering::Relaxed),
        elapsed: t0.elapsed().as_secs_f64(),
    }
}

fn main() {
    let o = parse();
    let local = match o.target {
        Some(_) => None,
        None => Some(
            Receiver::builder()
                .record(false)
                .track_unique_u64("seq")
                .threads(o.threads)
                .start()
                .expect("start receiver"),
        ),
    };
    let addr = o
        .target
        .unwrap_or_else(|| local.as_ref().map(|r| r.addr()).expect("receiver"));
    println!(
        "receiver {} ({}), {} connections, {} s per configuration, {} cores",
        addr,
        if local.is_some() {
            format!("in-process, {} worker threads, record off", o.threads)
        } else {
            "external".to_owned()
        },
        o.connections,
        o.seconds,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<22} {:>12} {:>10} {:>12} {:>10} {:>14}",
        "configuration", "events/s", "batches/s", "decoded MB/s", "wire MB/s", "rx CPU ns/ev"
    );
    let configs = [
        ("zstd-json-10", Enc::Json, 10),
        ("zstd-json-100", Enc::Json, 100),
        ("zstd-json-1000", Enc::Json, 1000),
        ("zstd-msgpack-100", Enc::Msgpack, 100),
        ("zstd-msgpack-1000", Enc::Msgpack, 1000),
    ];
    // --only: an exact configuration name, or else a substring of names.
    let exact = configs.iter().any(|c| Some(c.0) == o.only.as_deref());
    for (name, enc, n) in configs {
        let skip = match o.only.as_deref() {
            Some(f) if exact => name != f,
            Some(f) => !name.contains(f),
            None => false,
        };
        if skip {
            continue;
        }
        let reqs = Arc::new(build(enc, n, 16));
        // Warm up connections, allocator and caches.
        run(addr, reqs.clone(), o.connections, 0.3);
        if let Some(rx) = &local {
            rx.reset();
        }
        let cpu = || match (&local, o.pid) {
            (Some(_), _) => thread_cpu("libhoney-receiv"),
            (None, Some(pid)) => process_cpu(pid),
            (None, None) => None,
        };
        let cpu0 = cpu();
        let out = run(addr, reqs, o.connections, o.seconds);
        let cpu1 = cpu();
        let cpu_ns = match (cpu0, cpu1) {
            (Some(a), Some(b)) if out.events > 0 => {
                format!("{:.0}", (b - a) * 1e9 / out.events as f64)
            }
            _ => "-".to_owned(),
        };
        println!(
            "{:<22} {:>12.0} {:>10.0} {:>12.1} {:>10.1} {:>14}",
            name,
            out.events as f64 / out.elapsed,
            out.requests as f64 / out.elapsed,
            out.decoded as f64 / out.elapsed / 1e6,
            out.wire as f64 / out.elapsed / 1e6,
            cpu_ns
        );
        if let Some(rx) = &local {
            let s = rx.stats();
            assert_eq!(s.events_accepted, out.events, "receiver count matches");
            assert_eq!(s.events_rejected, 0);
            assert_eq!(s.requests, out.requests);
            if out.requests >= 16 {
                assert_eq!(s.distinct_tracked, 16 * n);
            }
        }
    }
}
