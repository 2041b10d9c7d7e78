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
use std::time::Duration;

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
  --max-connections N   most connections open at once; more are closed
                        at once (default 1024)
  --header-read-timeout SECS
                        longest time from a request's first byte to the end
                        of its header (default 10)
  --body-read-timeout SECS
                        longest time to receive a body, waiting for room
                        in the body memory budget included; then 408 (default 30)
  --idle-timeout SECS   close a connection with no request for this long
                        (default 60)
  --max-buffered-body-bytes N
                        most request body bytes buffered at once over all
                        connections (default 33554432)
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
    max_connections: Option<usize>,
    header_read_timeout: Option<Duration>,
    body_read_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    max_buffered_body_bytes: Option<usize>,
}

fn seconds(flag: &str, v: String) -> Result<Duration, String> {
    v.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{flag} needs a positive number of seconds"))
}

fn number(flag: &str, v: String) -> Result<usize, String> {
    v.parse()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{flag} needs a positive number"))
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
        max_connections: None,
        header_read_timeout: None,
        body_read_timeout: None,
        idle_timeout: None,
        max_buffered_body_bytes: None,
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
            "--max-connections" => a.max_connections = Some(number(&name, value("a number")?)?),
            "--header-read-timeout" => {
                a.header_read_timeout = Some(seconds(&name, value("seconds")?)?)
            }
            "--body-read-timeout" => a.body_read_timeout = Some(seconds(&name, value("seconds")?)?),
            "--idle-timeout" => a.idle_timeout = Some(seconds(&name, value("seconds")?)?),
            "--max-buffered-body-bytes" => {
                a.max_buffered_body_bytes = Some(number(&name, value("a number")?)?)
            }
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
    if let Some(n) = args.max_connections {
        b = b.max_connections(n);
    }
    if let Some(d) = args.header_read_timeout {
        b = b.header_read_timeout(d);
    }
    if let Some(d) = args.body_read_timeout {
        b = b.body_read_timeout(d);
    }
    if let Some(d) = args.idle_timeout {
        b = b.idle_timeout(d);
    }
    if let Some(n) = args.max_buffered_body_bytes {
        b = b.max_buffered_body_bytes(n);
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
