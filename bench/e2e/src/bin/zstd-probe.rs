//! zstd levels and parameters on bodies of the benchmark shape: speed and
//! ratio of each, to check the default (level 1) against its neighbours.
//!
//! ```text
//! cargo run --release -p libhoney-bench --bin zstd-probe
//! ```
//!
//! 40 bodies of 500 events (the default batch size), JSON as the SDK writes
//! it (the receiver's `shape` formula, `time` with nanoseconds), compressed
//! with one reused context per setting; best of 7 passes, after a warm-up
//! pass over every setting.

#[path = "../values.rs"]
#[allow(dead_code)]
mod values;

use std::time::Instant;

use zstd::zstd_safe::CParameter as P;

fn body(start: u64, n: u64) -> Vec<u8> {
    let mut out = b"[".to_vec();
    for i in start..start + n {
        if i > start {
            out.push(b',');
        }
        let ev = serde_json::json!({
            "data": {
                "service_name": "checkout",
                "endpoint": "/api/v1/checkout",
                "method": values::METHODS[(i % 4) as usize],
                "status_code": values::status_code(i),
                "duration_ms": values::duration_ms(i),
                "user_id": values::user_id(i),
                "is_error": i % 100 == 0,
                "message": values::MESSAGE,
                "trace.trace_id": values::trace_id(i),
                "count": i,
            },
            "time": format!("2026-11-26T06:25:{:02}.{:09}Z", (i / 1000) % 60, i * 7919 % 1_000_000_000),
        });
        out.extend_from_slice(serde_json::to_string(&ev).expect("json").as_bytes());
    }
    out.push(b']');
    out
}

fn main() {
    let bodies: Vec<Vec<u8>> = (0..40).map(|k| body(k * 500, 500)).collect();
    let events = 40.0 * 500.0;
    let total: usize = bodies.iter().map(Vec::len).sum();
    let settings: Vec<(&str, i32, Vec<P>)> = vec![
        ("level 1 (default)", 1, vec![]),
        ("level 1, minMatch 6", 1, vec![P::MinMatch(6)]),
        ("level 1, minMatch 7", 1, vec![P::MinMatch(7)]),
        ("level 1, hashLog 12", 1, vec![P::HashLog(12)]),
        ("level 1, hashLog 14", 1, vec![P::HashLog(14)]),
        ("level 1, hashLog 15", 1, vec![P::HashLog(15)]),
        ("level 1, windowLog 16", 1, vec![P::WindowLog(16)]),
        ("level -1", -1, vec![]),
        ("level -2", -2, vec![]),
        ("level 2", 2, vec![]),
        ("level 3", 3, vec![]),
    ];
    println!("{} bytes of JSON per event", total / events as usize);
    println!("| setting | MB/s | ratio | ns/event |");
    println!("|---|---|---|---|");
    for pass in 0..2 {
        for (name, level, params) in &settings {
            let mut c = zstd::bulk::Compressor::new(*level).expect("zstd context");
            for p in params {
                c.set_parameter(*p).expect("zstd parameter");
            }
            let (mut best, mut out_len) = (f64::MAX, 0);
            for _ in 0..7 {
                let t = Instant::now();
                out_len = bodies
                    .iter()
                    .map(|b| c.compress(b).expect("compress").len())
                    .sum();
                best = best.min(t.elapsed().as_secs_f64());
            }
            if pass == 1 {
                println!(
                    "| {name} | {:.0} | {:.2} | {:.0} |",
                    total as f64 / best / 1e6,
                    total as f64 / out_len as f64,
                    best * 1e9 / events
                );
            }
        }
    }
}
