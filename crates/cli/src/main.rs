//! `honey`: send events to Honeycomb from the shell (`send`), tail structured
//! logs into it (`tail`), verify an API key (`check`), and run the project's
//! local Events API receiver (`receive`). See the crate README for the
//! guarantees (checkpoints, duplicates after a crash, exit codes) and the
//! bounds (memory, poll interval, error reports).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

mod check;
mod infer;
mod receive;
mod send;
mod signals;
mod tail;

/// Exit codes scripts can rely on.
pub mod exit {
    /// Everything read was handled, every event sent was accepted.
    pub const OK: u8 = 0;
    /// At least one event was refused by the API or could not be delivered
    /// (or, for `check`, the API key was refused).
    pub const NOT_DELIVERED: u8 = 1;
    /// Bad command-line usage (unknown flag, malformed `name=value`).
    pub const USAGE: u8 = 2;
    /// Configuration or I/O error: no API key or dataset, a file that cannot
    /// be opened, an invalid regex, a port that cannot be bound.
    pub const CONFIG: u8 = 3;
}

const AFTER_HELP: &str = "\
Exit codes: 0 ok; 1 an event was refused or not delivered (check: key refused);
2 usage error; 3 configuration or I/O error.
Environment: HONEYCOMB_API_KEY (or HONEYCOMB_WRITEKEY), HONEYCOMB_DATASET,
HONEYCOMB_API_ENDPOINT supply --api-key, --dataset, --api-host when not given.";

/// Send events to Honeycomb from the shell, tail structured logs into it,
/// check an API key, or run a local receiver to see what would be sent.
#[derive(Parser, Debug)]
#[command(name = "honey", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Send one event: fields as name=value arguments, or a JSON object on stdin.
    #[command(after_help = SEND_EXAMPLES)]
    Send(SendArgs),
    /// Tail log files (or stdin), parse each line and send it as an event.
    #[command(after_help = TAIL_EXAMPLES)]
    Tail(Box<TailArgs>),
    /// Run the local Honeycomb-compatible receiver (same flags as libhoney-receiver).
    #[command(after_help = RECEIVE_EXAMPLES)]
    Receive(ReceiveArgs),
    /// Verify an API key against /1/auth and print its team and environment.
    #[command(after_help = CHECK_EXAMPLES)]
    Check(CheckArgs),
    /// Print a shell completion script to stdout.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions {
        /// The shell to generate completions for.
        shell: clap_complete::Shell,
    },
}

const SEND_EXAMPLES: &str = "\
Examples:
  honey send -d deploys service=api version=1.4.2 ok=true duration_ms=1532.5
  honey send -d cron job=backup 'meta={\"host\":\"db1\",\"rows\":12}'
  echo '{\"job\":\"backup\",\"rows\":12}' | honey send -d cron --stdin
  honey send -d ci --string build=0042 --timestamp 2026-12-07T12:00:00Z
  honey send -d test --dry-run n=1     # print the event instead of sending it

Values are inferred: integers, floats, true/false, JSON objects and arrays;
anything else is a string (--string keeps every value a string).
Exit codes: 0 accepted (or dropped by sampling); 1 refused by the API or not
delivered, with the API's message on stderr; 2 usage; 3 configuration.";

const TAIL_EXAMPLES: &str = "\
Examples:
  honey tail -d app --parser json /var/log/app.log
  honey tail -d nginx --parser nginx --checkpoint /var/lib/honey/nginx.ckpt /var/log/nginx/access.log
  honey tail -d app --parser logfmt --backfill --read-from start app.log.1 app.log
  honey tail -d app --parser regex --regex '^(?P<level>\\w+) (?P<msg>.*)$' -
  honey tail -d app --parser json --scrub-field user_email --drop-field password \\
      --rename-field msg=message --add-field env=prod --time-field ts --time-format rfc3339 app.log
  honey tail -d app --parser json --sample-rate 20 --dynsample status --dynsample path app.log

Files are followed like `tail -F`: rotation (the path names a new file) and
truncation are detected by polling every --poll-interval. With --checkpoint,
progress is saved only past lines the API has answered; after a restart (even
after kill -9) no line is lost, and only lines sent after the last checkpoint
write (those in flight, plus those answered within --checkpoint-interval) can
be sent twice. Lines the API refused count as failed and still advance the
checkpoint; a line that could not be delivered (unreachable, 5xx, wrong key)
stops the tail with the checkpoint before it, so the next run sends it.
Exit codes: 0 ok; 1 some events failed; 2 usage; 3 configuration or I/O.";

const RECEIVE_EXAMPLES: &str = "\
Examples:
  honey receive                         # http://127.0.0.1:8086, prints each event
  honey receive --listen 127.0.0.1:0 --quiet --jsonl events.jsonl
  honey receive --api-key test-key &
  honey send --api-host http://127.0.0.1:8086 -k test-key -d demo hello=world";

const CHECK_EXAMPLES: &str = "\
Examples:
  honey check                           # uses HONEYCOMB_API_KEY
  honey check --api-key \"$KEY\" --api-host https://api.eu1.honeycomb.io
Exit codes: 0 key accepted; 1 key refused; 3 no key or the API could not be reached.";

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  honey completions bash > ~/.local/share/bash-completion/completions/honey
  honey completions zsh > \"${fpath[1]}/_honey\"
  honey completions fish > ~/.config/fish/completions/honey.fish";

/// Where to send: shared by `send` and `tail`.
#[derive(Args, Debug, Clone)]
pub struct Target {
    /// Dataset to send to [default: $HONEYCOMB_DATASET].
    #[arg(short = 'd', long)]
    pub dataset: Option<String>,
    /// API key [default: $HONEYCOMB_API_KEY or $HONEYCOMB_WRITEKEY]. Never printed.
    #[arg(short = 'k', long)]
    pub api_key: Option<String>,
    /// API host URL [default: $HONEYCOMB_API_ENDPOINT, else Honeycomb's api.honeycomb.io over HTTPS].
    #[arg(long)]
    pub api_host: Option<String>,
    /// Keep one event in N (Honeycomb weights each kept event by N).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub sample_rate: u32,
    /// Print the events (one JSON line each, as libhoney's writer does) on
    /// stdout instead of sending them.
    #[arg(long)]
    pub dry_run: bool,
}

/// `honey send` arguments.
#[derive(Args, Debug)]
pub struct SendArgs {
    #[command(flatten)]
    pub target: Target,
    /// Read a JSON object from stdin; its keys become fields (name=value
    /// arguments are added after it and win).
    #[arg(long)]
    pub stdin: bool,
    /// Keep every name=value value a string (no type inference).
    #[arg(short = 's', long)]
    pub string: bool,
    /// The event's time: RFC 3339 (2026-12-07T12:00:00Z) or Unix seconds
    /// [default: now].
    #[arg(long)]
    pub timestamp: Option<String>,
    /// Fields, as name=value.
    #[arg(value_name = "NAME=VALUE")]
    pub fields: Vec<String>,
}

/// Line parsers for `honey tail`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParserKind {
    /// One JSON object per line.
    Json,
    /// key=value pairs (values may be "quoted").
    Logfmt,
    /// A regex with named groups (--regex, repeatable; the first that matches wins).
    Regex,
    /// nginx's "combined" log format (a built-in regex; time from time_local).
    Nginx,
}

/// Where `honey tail` starts reading each file.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    /// The beginning of the file.
    Start,
    /// The end of the file (only lines written from now on).
    End,
    /// The offset saved in --checkpoint if it is for the same file, else the beginning.
    Checkpoint,
}

/// `honey tail` arguments.
#[derive(Args, Debug)]
pub struct TailArgs {
    #[command(flatten)]
    pub target: Target,
    /// Files to follow, or `-` for stdin (alone; read to its end).
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// How to parse each line.
    #[arg(short = 'p', long, value_enum, default_value_t = ParserKind::Json)]
    pub parser: ParserKind,
    /// Regex with named groups for --parser regex (repeatable).
    #[arg(long)]
    pub regex: Vec<String>,
    /// Read each file to its end, then exit (no following).
    #[arg(long)]
    pub backfill: bool,
    /// Where to start [default: checkpoint if --checkpoint is given, else end;
    /// start with --backfill].
    #[arg(long, value_enum)]
    pub read_from: Option<ReadFrom>,
    /// State file recording, per file, the offset up to which every line was
    /// answered by the API. Written atomically (temp file + rename).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Longest time between checkpoint writes (also written at exit).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub checkpoint_interval: Duration,
    /// How often a file at its end is checked for new lines, rotation and truncation.
    #[arg(long, default_value = "250ms", value_parser = parse_duration)]
    pub poll_interval: Duration,
    /// Add a field to every event: name=value (value inferred as in `send`);
    /// replaces a parsed field of the same name (repeatable).
    #[arg(long, value_name = "NAME=VALUE")]
    pub add_field: Vec<String>,
    /// Remove a parsed field (repeatable).
    #[arg(long, value_name = "NAME")]
    pub drop_field: Vec<String>,
    /// Rename a parsed field: old=new (repeatable).
    #[arg(long, value_name = "OLD=NEW")]
    pub rename_field: Vec<String>,
    /// Replace a field's value by the hex SHA-256 of its text (repeatable).
    #[arg(long, value_name = "NAME")]
    pub scrub_field: Vec<String>,
    /// Use this field as the event's time (after renames).
    #[arg(long, value_name = "NAME")]
    pub time_field: Option<String>,
    /// Format of --time-field: auto (RFC 3339 or Unix seconds), rfc3339, unix,
    /// unix_ms, unix_us, unix_ns, common_log (10/Oct/2000:13:55:36 -0700), or a
    /// strftime pattern (%Y %m %d %H %M %S %f %z %b %T %F %s %%).
    #[arg(long, default_value = "auto")]
    pub time_format: String,
    /// Per-key dynamic sampling: keep about one line in --sample-rate overall,
    /// rare values of these fields more often (repeatable; the key is their
    /// combined values).
    #[arg(long, value_name = "FIELD")]
    pub dynsample: Vec<String>,
    /// Window over which dynamic sampling counts keys before recomputing rates.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub dynsample_window: Duration,
    /// Send unparseable lines as events with the line in the field `raw`.
    #[arg(long)]
    pub send_unparsed: bool,
    /// Print a progress line on stderr [default: when stderr is a terminal].
    #[arg(long, conflicts_with = "quiet")]
    pub progress: bool,
    /// No progress line and no summary.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// `honey receive` arguments: those of the `libhoney-receiver` binary.
#[derive(Args, Debug)]
pub struct ReceiveArgs {
    /// Address to listen on (port 0 = any free port).
    #[arg(long, default_value = "127.0.0.1:8086")]
    pub listen: String,
    /// Accepted API key (repeatable; none = any non-empty key).
    #[arg(long)]
    pub api_key: Vec<String>,
    /// Write accepted events as JSON lines to PATH.
    #[arg(long, value_name = "PATH")]
    pub jsonl: Option<PathBuf>,
    /// Do not print events to stdout.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Keep events in memory (served by nothing here; for parity with libhoney-receiver).
    #[arg(long, overrides_with = "no_record")]
    pub record: bool,
    /// Do not keep events in memory (default).
    #[arg(long)]
    pub no_record: bool,
    /// Count distinct/duplicate integer values of this data field (see GET /_receiver/stats).
    #[arg(long, value_name = "FIELD")]
    pub track_unique: Option<String>,
    /// Server worker threads.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    pub threads: u64,
    /// Largest decompressed body.
    #[arg(long)]
    pub max_body_bytes: Option<usize>,
    /// Serve the API under this path prefix (e.g. /prefix).
    #[arg(long)]
    pub path_prefix: Option<String>,
}

/// `honey check` arguments.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// API key [default: $HONEYCOMB_API_KEY or $HONEYCOMB_WRITEKEY]. Never printed.
    #[arg(short = 'k', long)]
    pub api_key: Option<String>,
    /// API host URL [default: $HONEYCOMB_API_ENDPOINT, else Honeycomb's api.honeycomb.io over HTTPS].
    #[arg(long)]
    pub api_host: Option<String>,
    /// How long to wait for the API.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Parses `250ms`, `1s`, `2m`, `1.5s` or a bare number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (examples: 250ms, 1s, 2m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {s:?} (use ms, s, m or h)"
            ))
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

/// Prints an error for the user, prefixed with the program name.
pub fn error(msg: impl std::fmt::Display) {
    eprintln!("honey: {msg}");
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Send(a) => send::run(a),
        Command::Tail(a) => tail::run(*a),
        Command::Receive(a) => receive::run(a),
        Command::Check(a) => check::run(a),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "honey", &mut std::io::stdout());
            exit::OK
        }
    };
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("1y").is_err());
    }
}
