//! The tokio transmission through a `CONNECT` proxy (`Config::proxy`, with
//! basic credentials, as `Http` does), and its HTTPS: certificates are
//! verified against the webpki roots, so a self-signed server is refused,
//! directly and through the tunnel, without retries.
use crate::http_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use http_support::proxy::{self, Proxy};
use http_support::tls;
use http_support::*;
use libhoney::{Config, Response, ResponseError};

/// Sends `ids` through a tokio client built from `cfg`, closes it, and
/// returns the ids, the responses and the client.
async fn send_and_close(
    cfg: Config,
    ids: std::ops::Range<u64>,
) -> (Vec<u64>, Vec<Response>, Sending) {
    let client = Kind::Tokio.client(cfg);
    let sent = send_ids(&client, ids);
    let responses = client.close_and_collect().await;
    (sent, responses, client)
}

on_both_runtimes!(proxy::events_go_through_the_proxy_with_basic_credentials);
on_both_runtimes!(proxy::percent_encoded_credentials_are_decoded_once);
on_both_runtimes!(proxy::wrong_proxy_credentials_fail_as_transport_errors);
on_both_runtimes!(proxy::the_proxy_is_not_used_without_config_proxy);
on_both_runtimes!(tls::https_with_configured_roots_delivers);
on_both_runtimes!(tls::https_without_the_root_is_refused);
on_both_runtimes!(tls::https_with_configured_roots_through_a_proxy_delivers);

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
        let acceptor = tls::tls_acceptor(SELF_SIGNED_CERT, SELF_SIGNED_KEY);
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
