//! With `proxy_from_env` (the default), the tokio transmission reads
//! `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY` and `NO_PROXY` when it starts.
//! The environment is the process's: this file holds one test, which sets it
//! before anything else reads it.
#![cfg(feature = "tokio")]

mod http_support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_support::*;
use libhoney::transmission::Tokio;
use libhoney::Config;

/// What the proxy saw of one connection's request head.
#[derive(Debug, Clone)]
struct Seen {
    request_line: String,
    proxy_authorization: Option<String>,
}

struct Proxy {
    addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// A proxy that accepts `Proxy-Authorization: <expected>` only.
    fn start(expected: &str) -> Proxy {
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

    fn seen(&self) -> Vec<Seen> {
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

/// Sends two events through a tokio client over `cfg` and checks that both
/// were delivered.
async fn deliver(cfg: Config, rx: &libhoney_receiver::RunningReceiver) {
    let t = Tokio::new();
    let client = client(cfg.transmission(t.clone()));
    let sent = send_ids(&client, 0..2);
    let responses = client.responses();
    t.close(PATIENCE).await.unwrap();
    client.close_async(PATIENCE).await.unwrap();
    let got: Vec<_> = std::iter::from_fn(|| responses.try_recv().ok()).collect();
    let tally = check_invariant(&sent, &got, rx, &client.metrics());
    assert_eq!(tally.ok.len(), 2, "{:?}", tally.failed);
    rx.reset();
}

#[test]
fn proxy_settings_come_from_the_environment() {
    // The proxy's thread reads no environment; nothing else runs yet.
    let proxy = Proxy::start("Basic dXNlcjpwYXNz");
    std::env::set_var("HTTP_PROXY", format!("http://user:pass@{}", proxy.addr));
    std::env::set_var("NO_PROXY", "localhost");
    std::env::remove_var("ALL_PROXY");
    std::env::remove_var("REQUEST_METHOD");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let rx = receiver();
        let from_env = |host: String| config(&rx).api_host(host).proxy_from_env(true);
        // 127.0.0.1 is not in NO_PROXY: through the proxy.
        deliver(from_env(rx.url()), &rx).await;
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
        // localhost is: directly.
        let localhost = format!("http://localhost:{}", rx.addr().port());
        deliver(from_env(localhost), &rx).await;
        assert_eq!(proxy.seen().len(), 1);
        // And without proxy_from_env, the environment is ignored.
        deliver(config(&rx).proxy_from_env(false), &rx).await;
        assert_eq!(proxy.seen().len(), 1);
    });
}
