//! `libhoney-receiver`: run the local Honeycomb-compatible receiver.
//!
//! Prints `listening on http://IP:PORT` as its first stdout line (with
//! `--path-prefix`, the API host `http://IP:PORT/PREFIX` goes to stderr),
//! then (unless `--quiet`) one line per accepted event. Stops on SIGINT or
//! SIGTERM.
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use libhoney_receiver::{Print, Receiver};

const USAGE: &str = "\
usage: libhoney-receiver [options]

  --listen ADDR         address to listen on (default 127.0.0.1:8086; port 0 = any)
  --api-key KEY         accepted API key (repeatable; none = any non-empty key)
  --jsonl PATH          write accepted events as JSON lines to PATH
  --quiet               do not print events to stdout
  --record              keep events in memory (default: off)
  --no-record           do not keep events in memory (default)
  --track-unique FIELD  count distinct/duplicate integer values of data field FIELD
  --threads N           server worker threads (default 2)
  --max-body-bytes N    largest decompressed body (default 5000000)
  --path-prefix P       serve the API under path prefix P (e.g. /prefix:
                        POST /prefix/1/batch/{dataset}); default: none
  -h, --help            this help

Control endpoints: GET /_receiver/stats, POST /_receiver/reset.";

struct Args {
    listen: String,
    api_keys: Vec<String>,
    jsonl: Option<PathBuf>,
    quiet: bool,
    record: bool,
    track: Option<String>,
    threads: usize,
    max_body: Option<usize>,
    path_prefix: Option<String>,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut a = Args {
        listen: "127.0.0.1:8086".to_owned(),
        api_keys: Vec::new(),
        jsonl: None,
        quiet: false,
        record: false,
        track: None,
        threads: 2,
        max_body: None,
        path_prefix: None,
    };
    while let Some(arg) = it.next() {
        // Accept both `--opt value` and `--opt=value`.
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs {what}"))
        };
        match name.as_str() {
            "--listen" => a.listen = value("an address")?,
            "--api-key" => a.api_keys.push(value("a key")?),
            "--jsonl" => a.jsonl = Some(PathBuf::from(value("a path")?)),
            "--quiet" | "-q" => a.quiet = true,
            "--record" => a.record = true,
            "--no-record" => a.record = false,
            "--track-unique" => a.track = Some(value("a field name")?),
            "--threads" => {
                a.threads = value("a number")?
                    .parse()
                    .map_err(|_| "--threads needs a positive number".to_owned())?
            }
            "--max-body-bytes" => {
                a.max_body = Some(
                    value("a number")?
                        .parse()
                        .map_err(|_| "--max-body-bytes needs a number".to_owned())?,
                )
            }
            "--path-prefix" => a.path_prefix = Some(value("a path")?),
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    Ok(Some(a))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("libhoney-receiver: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut b = Receiver::builder()
        .addr(args.listen.as_str())
        .record(args.record)
        .threads(args.threads);
    if !args.quiet {
        b = b.print(Print::Pretty);
    }
    if let Some(p) = &args.jsonl {
        b = b.print(Print::JsonLines(p.clone()));
    }
    for k in &args.api_keys {
        b = b.api_key(k.clone());
    }
    if let Some(t) = &args.track {
        b = b.track_unique_u64(t.clone());
    }
    if let Some(m) = args.max_body {
        b = b.max_body_bytes(m);
    }
    if let Some(p) = &args.path_prefix {
        b = b.path_prefix(p.clone());
    }
    // Signal handlers are installed before the "listening" line, so a
    // supervisor that signals right after reading it gets a clean exit.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("libhoney-receiver: cannot start signal handling: {e}");
            return ExitCode::FAILURE;
        }
    };
    let signals = {
        let _guard = rt.enter();
        match Signals::install() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("libhoney-receiver: cannot install signal handlers: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    let rx = match b.start() {
        Ok(rx) => rx,
        Err(e) => {
            eprintln!("libhoney-receiver: cannot start on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {}", rx.url());
        let _ = out.flush();
    }
    if rx.api_host() != rx.url() {
        // On stderr: stdout's first line keeps its fixed form.
        eprintln!("libhoney-receiver: API host {}", rx.api_host());
    }
    rt.block_on(signals.wait());
    let stats = rx.stats();
    rx.shutdown();
    eprintln!(
        "libhoney-receiver: stopped; {}",
        serde_json::to_string(&stats).unwrap_or_default()
    );
    ExitCode::SUCCESS
}

#[cfg(unix)]
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> std::io::Result<Signals> {
        Ok(Signals)
    }

    async fn wait(self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}
