//! zstd levels and parameters on bodies of the benchmark shape: speed and
//! ratio of each, to check the default (level 1) against its neighbours.
//!
//! ```text
//! cargo run --release -p libhoney-bench --bin zstd-probe
//! ```
//!
//! 40 bodies of 500 events (the default batch size), exactly as the SDK
//! writes them: events built by the benchmark's own `shape::fill`, sent
//! uncompressed to an in-process receiver, whose recorded request bodies are
//! then compressed with one reused context per setting; best of 7 passes,
//! after a warm-up pass over every setting.

#[path = "../shape.rs"]
mod shape;

use std::time::Instant;

use libhoney::{Client, Compression, Config};
use zstd::zstd_safe::CParameter as P;

/// The JSON bodies of `batches` batches of 500 events of the shape.
fn bodies(batches: u64) -> Vec<Vec<u8>> {
    let rx = libhoney_receiver::Receiver::builder()
        .api_key("probe-key")
        .start()
        .expect("receiver");
    let client = Client::new(
        Config::new()
            .read_env(false)
            .proxy_from_env(false)
            .api_key("probe-key")
            .dataset("probe")
            .api_host(rx.url())
            .compression(Compression::None)
            .max_batch_size(500)
            .block_on_send(true),
    )
    .expect("client");
    for i in 0..batches * 500 {
        let mut ev = client.new_event();
        shape::fill(&mut ev, i);
        ev.send().expect("send");
    }
    client.close().expect("close");
    rx.requests().into_iter().map(|r| r.decoded_body).collect()
}

fn main() {
    let bodies = bodies(40);
    assert_eq!(bodies.len(), 40, "one request per 500 events");
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
