//! `honey send`: one event from arguments or stdin, then wait for its answer.

use std::io::Read;
use std::time::Duration;

use libhoney::transmission::Writer;
use libhoney::{Client, Config, Response, ResponseError, SendError};

use crate::tail::timefmt::TimeFormat;
use crate::{error, exit, infer, SendArgs, Target};

/// The largest JSON object `--stdin` reads (the API's own event limit is
/// 1,000,000 bytes; a little more lets the API, not us, say it is too large).
const MAX_STDIN_BYTES: u64 = 2_000_000;

/// The SDK configuration both `send` and `tail` start from: flags where
/// given, else the SDK's own `HONEYCOMB_*` environment variables.
pub fn config(target: &Target) -> Config {
    let mut c = Config::new()
        .sample_rate(target.sample_rate)
        .user_agent_addition(format!("honey/{}", env!("CARGO_PKG_VERSION")));
    if let Some(k) = &target.api_key {
        c = c.api_key(k.clone());
    } else if target.dry_run
        && std::env::var_os("HONEYCOMB_API_KEY").is_none()
        && std::env::var_os("HONEYCOMB_WRITEKEY").is_none()
    {
        // Nothing is sent: a dry run needs no key.
        c = c.api_key("dry-run");
    }
    if let Some(d) = &target.dataset {
        c = c.dataset(d.clone());
    }
    if let Some(h) = &target.api_host {
        c = c.api_host(h.clone());
    }
    if target.dry_run {
        c = c.transmission(Writer::new(std::io::LineWriter::new(std::io::stdout())));
    }
    c
}

/// The exit code for a send error: configuration problems are 3.
pub fn send_error_code(e: &SendError) -> u8 {
    match e {
        SendError::Closed => exit::NOT_DELIVERED,
        _ => exit::CONFIG,
    }
}

/// A send error in the CLI's words (flags rather than `Config` methods).
pub fn explain(e: &SendError) -> String {
    match e {
        SendError::MissingApiKey => {
            "no API key: pass --api-key or set HONEYCOMB_API_KEY".to_owned()
        }
        SendError::MissingDataset => {
            "no dataset: pass --dataset or set HONEYCOMB_DATASET".to_owned()
        }
        SendError::MissingApiHost => "the API host is empty: pass --api-host".to_owned(),
        other => other.to_string(),
    }
}

/// Was this failure an answer about the event itself (the API refused it;
/// sending it again would fail the same way), rather than a failure to
/// deliver it (unreachable, overloaded, wrong key), after which it could
/// still be delivered later?
pub fn refused_by_api(e: &ResponseError) -> bool {
    matches!(
        e,
        ResponseError::Rejected(_)
            | ResponseError::TooLarge { .. }
            | ResponseError::Encoding(_)
            | ResponseError::HttpStatus(400 | 413)
    )
}

/// The API's own message for a failed response: the `error` member of a
/// JSON body when there is one, else the body, else the typed error.
pub fn describe_failure(r: &Response) -> String {
    let err = r
        .error
        .as_ref()
        .map_or_else(|| "unknown error".to_owned(), |e| e.to_string());
    let body = r.body.trim();
    if body.is_empty() {
        return err;
    }
    let msg = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(512).collect());
    match &r.error {
        Some(ResponseError::HttpStatus(s)) => format!("HTTP {s}: {msg}"),
        _ => format!("{err}: {msg}"),
    }
}

/// Runs `honey send`; returns the exit code. Blocks until the event's answer,
/// at most the SDK's shutdown timeout (10 s).
pub fn run(args: SendArgs) -> u8 {
    let mut fields: Vec<(libhoney::FieldName, libhoney::Value)> = Vec::new();
    if args.stdin {
        let mut buf = Vec::new();
        if let Err(e) = std::io::stdin()
            .take(MAX_STDIN_BYTES + 1)
            .read_to_end(&mut buf)
        {
            error(format_args!("cannot read stdin: {e}"));
            return exit::CONFIG;
        }
        if buf.len() as u64 > MAX_STDIN_BYTES {
            error(format_args!(
                "stdin holds more than {MAX_STDIN_BYTES} bytes; one event must be smaller"
            ));
            return exit::USAGE;
        }
        match infer::json_object(&buf, &mut infer::Names::default()) {
            Ok(f) => fields = f,
            Err(e) => {
                error(format_args!("stdin is not one JSON object: {e}"));
                return exit::USAGE;
            }
        }
    }
    for a in &args.fields {
        let (name, value) = match infer::split_assignment(a) {
            Ok(nv) => nv,
            Err(e) => {
                error(e);
                return exit::USAGE;
            }
        };
        let v = if args.string {
            libhoney::Value::String(value.to_owned().into())
        } else {
            infer::argument(value)
        };
        fields.push((name.to_owned().into(), v));
    }
    if fields.is_empty() {
        error("no fields: give name=value arguments or --stdin with a JSON object");
        return exit::USAGE;
    }
    let timestamp = match &args.timestamp {
        None => None,
        Some(t) => match TimeFormat::Auto.parse_str(t) {
            Some(ts) => Some(ts),
            None => {
                error(format_args!(
                    "--timestamp {t:?} is neither RFC 3339 (2026-12-07T12:00:00Z) nor Unix seconds"
                ));
                return exit::USAGE;
            }
        },
    };

    let client = match Client::new(config(&args.target).block_on_send(true)) {
        Ok(c) => c,
        Err(e) => {
            error(e);
            return exit::CONFIG;
        }
    };
    let responses = client.responses();
    let mut ev = client.new_event();
    for (n, v) in fields {
        ev.add_field(n, v);
    }
    if let Some(ts) = timestamp {
        ev.set_timestamp(ts);
    }
    if let Err(e) = ev.send() {
        error(explain(&e));
        return send_error_code(&e);
    }
    if let Err(e) = client.close() {
        error(format_args!("the event may not have been delivered: {e}"));
    }
    match responses.recv_timeout(Duration::from_secs(1)) {
        Ok(r) if r.error.is_none() => exit::OK,
        Ok(r) if r.error == Some(ResponseError::Sampled) => {
            if !args.target.dry_run {
                eprintln!(
                    "honey: event dropped by sampling (1 in {} kept)",
                    args.target.sample_rate
                );
            }
            exit::OK
        }
        Ok(r) => {
            let what = match &r.error {
                Some(e) if refused_by_api(e) => "refused",
                Some(ResponseError::HttpStatus(401 | 403)) => "refused",
                _ => "not delivered",
            };
            error(format_args!("event {what}: {}", describe_failure(&r)));
            exit::NOT_DELIVERED
        }
        Err(_) => {
            error("no answer for the event before the shutdown timeout");
            exit::NOT_DELIVERED
        }
    }
}
