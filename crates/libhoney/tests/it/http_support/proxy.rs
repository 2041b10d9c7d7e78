//! A `CONNECT` proxy for the tests of `Config::proxy` (both HTTP
//! transmissions tunnel every request, also to `http://` targets, with
//! `CONNECT`): it checks the basic `Proxy-Authorization`, and relays bytes
//! to the target. And the proxy tests both transmissions must pass alike,
//! run by `http_proxy` and `tokio_proxy`.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libhoney::ResponseError;

use libhoney_receiver::RunningReceiver;

use super::{config, header, receiver, run, Kind, Tally, KEY, PATIENCE};

/// What the proxy saw of one connection's request head.
#[derive(Debug, Clone)]
pub struct Seen {
    pub request_line: String,
    pub proxy_authorization: Option<String>,
}

/// A `CONNECT` proxy on a port of its own, for as long as it lives.
pub struct Proxy {
    pub addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// A proxy that accepts `Proxy-Authorization: <expected>` only.
    pub fn start(expected: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2, expected) = (Arc::clone(&seen), Arc::clone(&stop), expected.to_string());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (seen, expected) = (Arc::clone(&seen2), expected.clone());
                        std::thread::spawn(move || serve(conn, &seen, &expected));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Proxy { addr, seen, stop }
    }

    /// What it saw of each connection so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Reads a request head byte by byte (so nothing after it is consumed).
fn read_head(conn: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if conn.read(&mut b).ok()? == 0 {
            return None;
        }
        head.push(b[0]);
    }
    String::from_utf8(head).ok()
}

fn serve(mut conn: TcpStream, seen: &Mutex<Vec<Seen>>, expected: &str) {
    conn.set_read_timeout(Some(PATIENCE)).unwrap();
    let Some(head) = read_head(&mut conn) else {
        return;
    };
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("").to_string();
    let proxy_authorization = lines.find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("proxy-authorization")
            .then(|| v.trim().to_string())
    });
    seen.lock().unwrap().push(Seen {
        request_line: request_line.clone(),
        proxy_authorization: proxy_authorization.clone(),
    });
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next(), parts.next());
    if method != Some("CONNECT") {
        let _ = conn.write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n");
        return;
    }
    if proxy_authorization.as_deref() != Some(expected) {
        let _ = conn.write_all(
            b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"t\"\r\nContent-Length: 0\r\n\r\n",
        );
        return;
    }
    let Ok(upstream) = TcpStream::connect(target.unwrap_or("")) else {
        let _ = conn.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    if conn
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
    {
        return;
    }
    let (mut a_in, mut b_out) = (conn.try_clone().unwrap(), upstream.try_clone().unwrap());
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut a_in, &mut b_out);
        let _ = b_out.shutdown(Shutdown::Write);
    });
    let (mut b_in, mut a_out) = (upstream, conn);
    let _ = std::io::copy(&mut b_in, &mut a_out);
    let _ = a_out.shutdown(Shutdown::Both);
    let _ = up.join();
}

/// Standard base64, with padding.
pub fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(T[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A receiver, a proxy that accepts `Proxy-Authorization: <expected>`, and
/// [`run`] of `n` events through a client of `kind` that goes through the
/// proxy as `http://<userinfo>@…`, with `max_attempts`.
async fn through_a_proxy(
    kind: Kind,
    expected: &str,
    userinfo: &str,
    max_attempts: u32,
    n: u64,
) -> (RunningReceiver, Proxy, Tally) {
    let rx = receiver();
    let proxy = Proxy::start(expected);
    let cfg = config(&rx)
        .proxy(format!("http://{userinfo}@{}", proxy.addr))
        .max_attempts(max_attempts);
    let (tally, _) = run(kind, &rx, cfg, n).await;
    (rx, proxy, tally)
}

pub async fn events_go_through_the_proxy_with_basic_credentials(kind: Kind) {
    let (rx, proxy, tally) = through_a_proxy(kind, "Basic dXNlcjpwYXNz", "user:pass", 1, 5).await;
    assert_eq!(tally.ok.len(), 5, "{:?}", tally.failed);
    let seen = proxy.seen();
    assert!(!seen.is_empty());
    for s in &seen {
        assert_eq!(
            s.request_line,
            format!("CONNECT {} HTTP/1.1", rx.addr()),
            "{seen:?}"
        );
        assert_eq!(s.proxy_authorization.as_deref(), Some("Basic dXNlcjpwYXNz"));
    }
    // The tunnelled request itself is the usual one.
    let req = &rx.requests()[0];
    assert_eq!(req.path, "/1/batch/wire");
    assert_eq!(header(req, "x-honeycomb-team"), Some(KEY));
}

pub async fn percent_encoded_credentials_are_decoded_once(kind: Kind) {
    let expected = format!("Basic {}", base64(b"us er:p@ss:w%rd+"));
    let (_rx, proxy, tally) =
        through_a_proxy(kind, &expected, "us%20er:p%40ss%3Aw%25rd+", 1, 2).await;
    assert_eq!(tally.ok.len(), 2, "{:?} {:?}", tally.failed, proxy.seen());
}

pub async fn wrong_proxy_credentials_fail_as_transport_errors(kind: Kind) {
    let (rx, proxy, tally) = through_a_proxy(kind, "Basic dXNlcjpwYXNz", "user:wrong", 2, 3).await;
    assert!(tally.ok.is_empty());
    for r in tally.failed.values() {
        match &r.error {
            Some(ResponseError::Transport(msg)) => {
                assert!(msg.contains("407"), "{msg}");
                assert!(!msg.contains("wrong"), "no password in errors: {msg}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(rx.requests().is_empty());
    assert_eq!(proxy.seen().len(), 2, "one CONNECT per attempt");
}

pub async fn the_proxy_is_not_used_without_config_proxy(kind: Kind) {
    let rx = receiver();
    let proxy = Proxy::start("Basic dXNlcjpwYXNz");
    run(kind, &rx, config(&rx), 2).await;
    assert!(proxy.seen().is_empty());
}

/// Sends two events through a `kind` client over `cfg` and checks that both
/// were delivered.
async fn deliver(kind: Kind, cfg: libhoney::Config, rx: &RunningReceiver) {
    let client = kind.client(cfg);
    let sent = super::send_ids(&client, 0..2);
    let got = client.close_and_collect().await;
    let tally = super::check_invariant(&sent, &got, rx, &client.metrics());
    assert_eq!(tally.ok.len(), 2, "{:?}", tally.failed);
    rx.reset();
}

/// With `proxy_from_env` (the default), a transmission reads
/// `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY` and `NO_PROXY` when it starts. The
/// environment is the process's: call this from a test alone in its process
/// (`own_process::alone`), before anything else reads the environment.
pub async fn proxy_settings_come_from_the_environment(kind: Kind) {
    let proxy = Proxy::start("Basic dXNlcjpwYXNz");
    for name in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "REQUEST_METHOD",
    ] {
        std::env::remove_var(name);
    }
    std::env::set_var("HTTP_PROXY", format!("http://user:pass@{}", proxy.addr));
    std::env::set_var("NO_PROXY", "localhost");
    let rx = receiver();
    let from_env = |host: String| config(&rx).api_host(host).proxy_from_env(true);
    // 127.0.0.1 is not in NO_PROXY: through the proxy, with its credentials.
    deliver(kind, from_env(rx.url()), &rx).await;
    let seen = proxy.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        seen[0].request_line,
        format!("CONNECT {} HTTP/1.1", rx.addr())
    );
    assert_eq!(
        seen[0].proxy_authorization.as_deref(),
        Some("Basic dXNlcjpwYXNz")
    );
    // localhost is in NO_PROXY: directly.
    let localhost = format!("http://localhost:{}", rx.addr().port());
    deliver(kind, from_env(localhost), &rx).await;
    assert_eq!(
        proxy.seen().len(),
        1,
        "a NO_PROXY host went through the proxy"
    );
    // Without proxy_from_env, the environment is ignored.
    deliver(kind, config(&rx).proxy_from_env(false), &rx).await;
    assert_eq!(
        proxy.seen().len(),
        1,
        "proxy_from_env(false) used the proxy"
    );
}
