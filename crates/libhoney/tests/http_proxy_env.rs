//! With `proxy_from_env` (the default), the default HTTP transmission reads
//! `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY` and `NO_PROXY` (through ureq) when
//! it starts. The environment is the process's: this file holds one test,
//! which sets it before anything else reads it.

#[macro_use]
mod http_support;

use http_support::proxy::Proxy;
use http_support::*;
use libhoney::Config;

/// Sends two events through a default (threaded) client over `cfg` and checks
/// that both were delivered.
fn deliver(cfg: Config, rx: &libhoney_receiver::RunningReceiver) {
    let client = Kind::Http.client(cfg);
    let sent = send_ids(&client, 0..2);
    let got = block_on(client.close_and_collect());
    let tally = check_invariant(&sent, &got, rx, &client.metrics());
    assert_eq!(tally.ok.len(), 2, "{:?}", tally.failed);
    rx.reset();
}

#[test]
fn proxy_settings_come_from_the_environment() {
    // The proxy's thread reads no environment; nothing else runs yet.
    let proxy = Proxy::start("Basic dXNlcjpwYXNz");
    for name in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"] {
        std::env::remove_var(name);
    }
    std::env::set_var("HTTP_PROXY", format!("http://user:pass@{}", proxy.addr));
    std::env::set_var("NO_PROXY", "localhost");
    let rx = receiver();
    let from_env = |host: String| config(&rx).api_host(host).proxy_from_env(true);
    // 127.0.0.1 is not in NO_PROXY: through the proxy, with its credentials.
    deliver(from_env(rx.url()), &rx);
    let seen = proxy.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].request_line, format!("CONNECT {} HTTP/1.1", rx.addr()));
    assert_eq!(seen[0].proxy_authorization.as_deref(), Some("Basic dXNlcjpwYXNz"));
    // localhost is in NO_PROXY: directly.
    let localhost = format!("http://localhost:{}", rx.addr().port());
    deliver(from_env(localhost), &rx);
    assert_eq!(proxy.seen().len(), 1, "NO_PROXY host went through the proxy");
    // Without proxy_from_env, the environment is ignored.
    deliver(config(&rx).proxy_from_env(false), &rx);
    assert_eq!(proxy.seen().len(), 1, "proxy_from_env(false) used the proxy");
}
