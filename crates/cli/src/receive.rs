//! `honey receive`: the project's local receiver (`libhoney-receiver`), with
//! the same flags and output as its own binary.

use std::io::Write;

use libhoney_receiver::{Print, Receiver};

use crate::{error, exit, signals, ReceiveArgs};

/// Runs `honey receive` until SIGINT or SIGTERM (noticed within 100 ms);
/// returns the exit code.
pub fn run(args: ReceiveArgs) -> u8 {
    let mut b = Receiver::builder()
        .addr(args.listen.as_str())
        .record(args.record && !args.no_record)
        .threads(usize::try_from(args.threads).unwrap_or(2));
    if !args.quiet {
        b = b.print(Print::Pretty);
    }
    if let Some(p) = &args.jsonl {
        b = b.print(Print::JsonLines(p.clone()));
    }
    for k in &args.api_key {
        b = b.api_key(k.clone());
    }
    if let Some(t) = &args.track_unique {
        b = b.track_unique_u64(t.clone());
    }
    if let Some(m) = args.max_body_bytes {
        b = b.max_body_bytes(m);
    }
    if let Some(p) = &args.path_prefix {
        b = b.path_prefix(p.clone());
    }
    // Handlers first, so a supervisor that signals right after reading the
    // "listening" line gets a clean stop.
    let stop = match signals::install() {
        Ok(s) => s,
        Err(e) => {
            error(format_args!("cannot install signal handlers: {e}"));
            return exit::CONFIG;
        }
    };
    let rx = match b.start() {
        Ok(rx) => rx,
        Err(e) => {
            error(format_args!("cannot start on {}: {e}", args.listen));
            return exit::CONFIG;
        }
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {}", rx.url());
        let _ = out.flush();
    }
    if rx.api_host() != rx.url() {
        eprintln!("honey: API host {}", rx.api_host());
    }
    // A stop is noticed within this bound.
    while !stop.requested() {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let stats = rx.stats();
    rx.shutdown();
    eprintln!(
        "honey: receiver stopped; {}",
        serde_json::to_string(&stats).unwrap_or_default()
    );
    exit::OK
}
