//! The tokio transmission through a `CONNECT` proxy (`Config::proxy`, with
//! basic credentials, as `Http` does), and its HTTPS: certificates are
//! verified against the webpki roots, so a self-signed server is refused,
//! directly and through the tunnel, without retries.
#![cfg(feature = "tokio")]

mod http_support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_support::*;
use libhoney::transmission::Tokio;
use libhoney::{Client, Config, Response, ResponseError, TryRecvError};

/// Runs an async test body on a current-thread and on a multi-thread runtime.
macro_rules! on_both_runtimes {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "current_thread")]
            async fn current_thread() {
                super::$name().await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn multi_thread() {
                super::$name().await
            }
        }
    };
}

/// Sends `ids` through a tokio client built from `cfg`, closes it, and
/// returns the responses and the client.
async fn send_and_close(
    cfg: Config,
    ids: std::ops::Range<u64>,
) -> (Vec<u64>, Vec<Response>, Client) {
    let t = Tokio::new();
    let client = client(cfg.transmission(t.clone()));
    let sent = send_ids(&client, ids);
    let responses = client.responses();
    t.close(PATIENCE).await.expect("close drains everything");
    client.close_async(PATIENCE).await.expect("client closes");
    let mut got = Vec::new();
    loop {
        match responses.try_recv() {
            Ok(r) => got.push(r),
            Err(TryRecvError::Ended) => break,
            Err(TryRecvError::Empty) => panic!("the stream did not end after close"),
        }
    }
    (sent, got, client)
}

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

fn base64(input: &[u8]) -> String {
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

async fn events_go_through_the_proxy_with_basic_credentials() {
    let rx = receiver();
    let proxy = Proxy::start("Basic dXNlcjpwYXNz");
    let cfg = config(&rx)
        .proxy(format!("http://user:pass@{}", proxy.addr))
        .max_attempts(1);
    let (sent, responses, client) = send_and_close(cfg, 0..5).await;
    let tally = check_invariant(&sent, &responses, &rx, &client.metrics());
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
    let req = &rx.requests()[0];
    assert_eq!(req.path, "/1/batch/wire");
    assert_eq!(header(req, "x-honeycomb-team"), Some(KEY));
}
on_both_runtimes!(events_go_through_the_proxy_with_basic_credentials);

async fn percent_encoded_credentials_are_decoded_once() {
    let rx = receiver();
    let proxy = Proxy::start(&format!("Basic {}", base64(b"us er:p@ss:w%rd+")));
    let cfg = config(&rx)
        .proxy(format!("http://us%20er:p%40ss%3Aw%25rd+@{}", proxy.addr))
        .max_attempts(1);
    let (sent, responses, client) = send_and_close(cfg, 0..2).await;
    let tally = check_invariant(&sent, &responses, &rx, &client.metrics());
    assert_eq!(tally.ok.len(), 2, "{:?} {:?}", tally.failed, proxy.seen());
}
on_both_runtimes!(percent_encoded_credentials_are_decoded_once);

async fn wrong_proxy_credentials_fail_as_transport_errors() {
    let rx = receiver();
    let proxy = Proxy::start("Basic dXNlcjpwYXNz");
    let cfg = config(&rx)
        .proxy(format!("http://user:wrong@{}", proxy.addr))
        .max_attempts(2);
    let (sent, responses, client) = send_and_close(cfg, 0..3).await;
    let tally = check_invariant(&sent, &responses, &rx, &client.metrics());
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
on_both_runtimes!(wrong_proxy_credentials_fail_as_transport_errors);

async fn the_proxy_is_not_used_without_config_proxy() {
    let rx = receiver();
    let proxy = Proxy::start("Basic dXNlcjpwYXNz");
    let (sent, responses, client) = send_and_close(config(&rx), 0..2).await;
    check_invariant(&sent, &responses, &rx, &client.metrics());
    assert!(proxy.seen().is_empty());
}
on_both_runtimes!(the_proxy_is_not_used_without_config_proxy);

/// A self-signed certificate for `localhost` and 127.0.0.1 (not in any root
/// store), and its key.
const SELF_SIGNED_CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBnDCCAUGgAwIBAgIUJg/4sGoZHYn8wiY4Jzzgjj4Ki7gwCgYIKoZIzj0EAwIw\nFDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyNjAxNTU0M1oYDzIxMjYxMTAy\nMDE1NTQzWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO\nPQMBBwNCAAQ4QsZK9REL2w/vLLZnl7a7lrnnk0d+25EGzlFNZl1bslAMwIZ2Y5QP\n/pvtFt3ullZp5WDOZOVyXYETuY0PH0Who28wbTAdBgNVHQ4EFgQUqGN/c6adhzt2\nnvPVivQ5a/QhtxcwHwYDVR0jBBgwFoAUqGN/c6adhzt2nvPVivQ5a/QhtxcwDwYD\nVR0TAQH/BAUwAwEB/zAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwCgYIKoZI\nzj0EAwIDSQAwRgIhAOWC8zKhhZRMM8FkL6rNdY1fhhXxfFVCxnXp7qTh0N8QAiEA\np2Ap9vrV8v35YW0MpOWuj3CePVslyVUUpGWsRljvhY0=\n-----END CERTIFICATE-----";
const SELF_SIGNED_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgMZvZvfIVvQrT1aLh\nrpneGehsGbZDo+DRJdSMAvQNSDahRANCAAQ4QsZK9REL2w/vLLZnl7a7lrnnk0d+\n25EGzlFNZl1bslAMwIZ2Y5QP/pvtFt3ullZp5WDOZOVyXYETuY0PH0Wh\n-----END PRIVATE KEY-----";

/// A TLS server with [`SELF_SIGNED_CERT`]: counts the handshakes it starts
/// and the ones that complete (after which it would read a request).
struct TlsServer {
    addr: std::net::SocketAddr,
    started: Arc<AtomicUsize>,
    completed: Arc<AtomicUsize>,
}

impl TlsServer {
    async fn start() -> TlsServer {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let cert = CertificateDer::from_pem_slice(SELF_SIGNED_CERT.as_bytes()).unwrap();
        let key = PrivateKeyDer::from_pem_slice(SELF_SIGNED_KEY.as_bytes()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let started = Arc::new(AtomicUsize::new(0));
        let completed = Arc::new(AtomicUsize::new(0));
        let (s, c) = (Arc::clone(&started), Arc::clone(&completed));
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                s.fetch_add(1, Ordering::SeqCst);
                let (acceptor, c) = (acceptor.clone(), Arc::clone(&c));
                tokio::spawn(async move {
                    if acceptor.accept(tcp).await.is_ok() {
                        c.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        TlsServer {
            addr,
            started,
            completed,
        }
    }
}

/// HTTPS is verified: a server whose certificate chains to no trusted root
/// is refused at the handshake, and the failure is not retried.
async fn an_untrusted_certificate_is_refused_without_retries() {
    let server = TlsServer::start().await;
    let rx = receiver();
    let cfg = config(&rx)
        .api_host(format!("https://localhost:{}", server.addr.port()))
        .max_attempts(3);
    let (_, responses, client) = send_and_close(cfg, 0..3).await;
    assert_eq!(responses.len(), 3);
    for r in &responses {
        match &r.error {
            Some(ResponseError::Transport(msg)) => {
                assert!(msg.contains("certificate"), "{msg}")
            }
            other => panic!("{other:?}"),
        }
    }
    let m = client.metrics();
    assert_eq!((m.retries, m.batches_sent), (0, 1), "{m:?}");
    assert_eq!(server.started.load(Ordering::SeqCst), 1);
    assert_eq!(server.completed.load(Ordering::SeqCst), 0);
}
on_both_runtimes!(an_untrusted_certificate_is_refused_without_retries);

/// Through the proxy, TLS runs inside the tunnel, end to end with the API
/// host: the proxy sees only `CONNECT`, and the certificate is still checked.
async fn https_through_the_proxy_is_verified_end_to_end() {
    let server = TlsServer::start().await;
    let rx = receiver();
    let proxy = Proxy::start("Basic dXNlcjpwYXNz");
    let cfg = config(&rx)
        .api_host(format!("https://127.0.0.1:{}", server.addr.port()))
        .proxy(format!("http://user:pass@{}", proxy.addr))
        .max_attempts(3);
    let (_, responses, client) = send_and_close(cfg, 0..2).await;
    for r in &responses {
        assert!(
            matches!(&r.error, Some(ResponseError::Transport(m)) if m.contains("certificate")),
            "{r:?}"
        );
    }
    assert_eq!(client.metrics().batches_sent, 1);
    let seen = proxy.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        seen[0].request_line,
        format!("CONNECT {} HTTP/1.1", server.addr)
    );
    assert_eq!(server.completed.load(Ordering::SeqCst), 0);
}
on_both_runtimes!(https_through_the_proxy_is_verified_end_to_end);
