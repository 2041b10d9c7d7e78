//! `honey check`: `GET /1/auth` with the API key, print team and environment.

use crate::{error, exit, CheckArgs};

/// The largest `/1/auth` answer read (the real one is a few hundred bytes).
const MAX_BODY_BYTES: u64 = 64 * 1024;

/// Runs `honey check`; returns the exit code. Blocks for one HTTP request,
/// at most `--timeout`.
pub fn run(args: CheckArgs) -> u8 {
    let key = args
        .api_key
        .or_else(|| std::env::var("HONEYCOMB_API_KEY").ok())
        .or_else(|| std::env::var("HONEYCOMB_WRITEKEY").ok())
        .filter(|k| !k.is_empty());
    let Some(key) = key else {
        error("no API key: pass --api-key or set HONEYCOMB_API_KEY");
        return exit::CONFIG;
    };
    let host = args
        .api_host
        .or_else(|| std::env::var("HONEYCOMB_API_ENDPOINT").ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| libhoney::DEFAULT_API_HOST.to_owned());
    let url = format!("{}/1/auth", host.trim_end_matches('/'));
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(args.timeout))
        .user_agent(format!("honey/{}", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent();
    let mut resp = match agent.get(&url).header("X-Honeycomb-Team", &key).call() {
        Ok(r) => r,
        Err(e) => {
            error(format_args!("cannot reach {url}: {e}"));
            return exit::CONFIG;
        }
    };
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_BODY_BYTES)
        .read_to_string()
        .unwrap_or_default();
    let json: Option<serde_json::Value> = serde_json::from_str(&body).ok();
    if status != 200 {
        let msg = json
            .as_ref()
            .and_then(|j| j.get("error")?.as_str().map(str::to_owned))
            .unwrap_or_else(|| body.chars().take(512).collect());
        error(format_args!("API key refused: HTTP {status}: {msg}"));
        return if status == 401 || status == 403 {
            exit::NOT_DELIVERED
        } else {
            exit::CONFIG
        };
    }
    let Some(j) = json else {
        error(format_args!(
            "{url} answered 200 with a body that is not JSON"
        ));
        return exit::CONFIG;
    };
    let slug = |k: &str| -> String {
        let o = j.get(k);
        let name = o.and_then(|o| o.get("name")).and_then(|v| v.as_str());
        let slug = o.and_then(|o| o.get("slug")).and_then(|v| v.as_str());
        match (name, slug) {
            (Some(n), Some(s)) if n != s => format!("{n} ({s})"),
            (_, Some(s)) => s.to_owned(),
            (Some(n), None) => n.to_owned(),
            (None, None) => "-".to_owned(),
        }
    };
    println!("team: {}", slug("team"));
    let env = slug("environment");
    if env.is_empty() || env == "-" {
        println!("environment: (none: a Classic key)");
    } else {
        println!("environment: {env}");
    }
    if let Some(access) = j.get("api_key_access").and_then(|a| a.as_object()) {
        let mut granted: Vec<&str> = access
            .iter()
            .filter(|(_, v)| v.as_bool() == Some(true))
            .map(|(k, _)| k.as_str())
            .collect();
        granted.sort_unstable();
        println!("access: {}", granted.join(", "));
    }
    println!("api host: {host}");
    exit::OK
}
