//! HTTPS with a certificate chain the client can verify: a test certificate
//! authority, a server certificate it issued for `localhost` and 127.0.0.1,
//! and a TLS front that terminates TLS with it and relays the bytes to a
//! receiver. And the tests both transmissions must pass alike with
//! `Config::tls_root_certificates_pem`, run by `http_proxy` and
//! `tokio_proxy`.
//!
//! The certificates were made with openssl 3.0 (EC P-256, SHA-256, valid
//! 2026-11-26 to 2126-11-02); the leaf has `CA:FALSE`, `serverAuth` and the
//! subject alternative names `DNS:localhost` and `IP:127.0.0.1`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use libhoney::ResponseError;

use super::{config, receiver, run, Kind, KEY};

/// The test certificate authority (`CN=libhoney test CA`, valid to 2126).
pub const TEST_CA_PEM: &str = "-----BEGIN CERTIFICATE-----\n\
MIIBnjCCAUOgAwIBAgIUEAhWEq+3V1T6rZFkWu1QtPWT5IAwCgYIKoZIzj0EAwIw\n\
GzEZMBcGA1UEAwwQbGliaG9uZXkgdGVzdCBDQTAgFw0yNjExMjYxMzQyNDNaGA8y\n\
MTI2MTEwMjEzNDI0M1owGzEZMBcGA1UEAwwQbGliaG9uZXkgdGVzdCBDQTBZMBMG\n\
ByqGSM49AgEGCCqGSM49AwEHA0IABNw2XYE2Hmu+AJD6lz3vwvlrFoICgmuCKl15\n\
FFSg+ZQddC9UuVDig1o2lG10UEgQUScWb+9T9Twk0uxF1zKTvdijYzBhMB0GA1Ud\n\
DgQWBBSG1hJQ//3F2AYqn/aWK2FNT9KPujAfBgNVHSMEGDAWgBSG1hJQ//3F2AYq\n\
n/aWK2FNT9KPujAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBBjAKBggq\n\
hkjOPQQDAgNJADBGAiEAuDn4i1NadCRquf1LUA/FyVSVICizoVsDsHgefw99FmgC\n\
IQD3ewDC6ZTegqgWIzANQcfBG3KR9VVKsuJOKn6xpNsHrQ==\n\
-----END CERTIFICATE-----\n";
/// A server certificate the test CA issued for `localhost` and 127.0.0.1.
pub const LEAF_CERT_PEM: &str = "-----BEGIN CERTIFICATE-----\n\
MIIBxjCCAWygAwIBAgIUD6ftjgH+YOoXhND3lBQLxLGco/owCgYIKoZIzj0EAwIw\n\
GzEZMBcGA1UEAwwQbGliaG9uZXkgdGVzdCBDQTAgFw0yNjExMjYxMzQyNDNaGA8y\n\
MTI2MTEwMjEzNDI0M1owFDESMBAGA1UEAwwJbG9jYWxob3N0MFkwEwYHKoZIzj0C\n\
AQYIKoZIzj0DAQcDQgAEZvgi9dTj5wYRh/WZqIazOOaghouei9iUChswjn9/HoNN\n\
zTm9oLQniK1LjAUdAgoS2gRnoWFjVCwKtIYjANoKz6OBkjCBjzAMBgNVHRMBAf8E\n\
AjAAMA4GA1UdDwEB/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDATAaBgNVHREE\n\
EzARgglsb2NhbGhvc3SHBH8AAAEwHQYDVR0OBBYEFGWm/kTyDwOeHibUNFhUOpXM\n\
sFFAMB8GA1UdIwQYMBaAFIbWElD//cXYBiqf9pYrYU1P0o+6MAoGCCqGSM49BAMC\n\
A0gAMEUCIBpvMSdgfNoV6gmdu8s+OCMgTH8KzFkq4YUqsGxUzmv3AiEA0g4lHrXe\n\
ZwG4NRXGit0S19nO/YzqlD7iAostPBOMfaQ=\n\
-----END CERTIFICATE-----\n";
/// That certificate's private key (PKCS #8).
pub const LEAF_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgW/8cd+1Mu596XeAA\n\
SY3cFBd1N32NPAnd+4xcGSoep8ChRANCAARm+CL11OPnBhGH9ZmohrM45qCGi56L\n\
2JQKGzCOf38eg03NOb2gtCeIrUuMBR0CChLaBGehYWNULAq0hiMA2grP\n\
-----END PRIVATE KEY-----\n";

/// The server side of TLS (rustls with ring) with one certificate and its key.
pub fn tls_acceptor(cert_pem: &str, key_pem: &str) -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    // Deprecated in rustls 0.23.48 (ring has no post-quantum key exchange);
    // the SDK builds with ring, and so does this test server.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(server))
}

/// A TLS server with [`LEAF_CERT_PEM`] in front of `target`: each connection
/// is decrypted and relayed to `target` over plain TCP. Runs its own
/// single-thread runtime on a thread of its own, so tests of either
/// transmission can use it.
pub struct TlsFront {
    pub addr: SocketAddr,
    /// Handshakes that completed (a client that refuses the certificate
    /// aborts its handshake).
    pub completed: Arc<AtomicUsize>,
}

impl TlsFront {
    pub fn start(target: SocketAddr) -> TlsFront {
        let acceptor = tls_acceptor(LEAF_CERT_PEM, LEAF_KEY_PEM);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let completed = Arc::new(AtomicUsize::new(0));
        let done = Arc::clone(&completed);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                while let Ok((tcp, _)) = listener.accept().await {
                    let (acceptor, done) = (acceptor.clone(), Arc::clone(&done));
                    tokio::spawn(async move {
                        let Ok(mut tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        done.fetch_add(1, Ordering::SeqCst);
                        if let Ok(mut plain) = tokio::net::TcpStream::connect(target).await {
                            let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                        }
                    });
                }
            });
        });
        TlsFront { addr, completed }
    }
}

/// With the test authority as the only root, HTTPS to a server whose
/// certificate it issued delivers every event, by host name and by IP
/// address: the chain, the name and the handshake are verified for real.
pub async fn https_with_configured_roots_delivers(kind: Kind) {
    for host in ["localhost", "127.0.0.1"] {
        let rx = receiver();
        let front = TlsFront::start(rx.addr());
        let cfg = config(&rx)
            .api_host(format!("https://{host}:{}", front.addr.port()))
            .tls_root_certificates_pem(TEST_CA_PEM);
        let (tally, metrics) = run(kind, &rx, cfg, 20).await;
        assert_eq!(tally.ok.len(), 20, "{host}: {:?}", tally.failed);
        assert!(front.completed.load(Ordering::SeqCst) >= 1);
        assert_eq!(metrics.retries, 0, "{metrics:?}");
        let req = &rx.requests()[0];
        assert_eq!(super::header(req, "x-honeycomb-team"), Some(KEY));
    }
}

/// The same server without the configured root: its chain ends at an
/// authority the webpki roots do not hold, so every event fails with a
/// certificate error, and nothing reaches the receiver.
pub async fn https_without_the_root_is_refused(kind: Kind) {
    let rx = receiver();
    let front = TlsFront::start(rx.addr());
    let cfg = config(&rx)
        .api_host(format!("https://localhost:{}", front.addr.port()))
        .max_attempts(1);
    let (tally, _) = run(kind, &rx, cfg, 3).await;
    assert!(tally.ok.is_empty());
    assert_eq!(tally.failed.len(), 3);
    for r in tally.failed.values() {
        match &r.error {
            Some(ResponseError::Transport(msg)) => {
                assert!(
                    msg.contains("certificate") || msg.contains("issuer"),
                    "{msg}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(rx.requests().is_empty());
    assert_eq!(front.completed.load(Ordering::SeqCst), 0);
}

/// Through a `CONNECT` proxy, TLS runs inside the tunnel with the configured
/// roots: the proxy sees only `CONNECT` to the TLS front, and every event is
/// delivered.
pub async fn https_with_configured_roots_through_a_proxy_delivers(kind: Kind) {
    let rx = receiver();
    let front = TlsFront::start(rx.addr());
    let proxy = super::proxy::Proxy::start("Basic dXNlcjpwYXNz");
    let cfg = config(&rx)
        .api_host(format!("https://localhost:{}", front.addr.port()))
        .proxy(format!("http://user:pass@{}", proxy.addr))
        .tls_root_certificates_pem(TEST_CA_PEM);
    let (tally, _) = run(kind, &rx, cfg, 10).await;
    assert_eq!(tally.ok.len(), 10, "{:?}", tally.failed);
    let seen = proxy.seen();
    assert!(!seen.is_empty());
    for s in &seen {
        assert_eq!(
            s.request_line,
            format!("CONNECT localhost:{} HTTP/1.1", front.addr.port()),
            "{seen:?}"
        );
    }
    assert!(front.completed.load(Ordering::SeqCst) >= 1);
}

/// `tls_root_certificates_pem` is read when the client is built: text with
/// no certificate, a broken block or one holding no certificate is a typed
/// error; `Debug` shows only that roots are set; a certificate with a key
/// block beside it is accepted by both transmissions.
pub fn roots_are_checked_when_the_client_is_built() {
    use libhoney::{Client, Config, ConfigError};
    let base = || Config::new().read_env(false).api_key(KEY).dataset("wire");
    let broken = "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n";
    let unended = "-----BEGIN CERTIFICATE-----\nAAAAAAAA\n";
    // Valid base64, but no certificate inside.
    let not_a_cert = "-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n";
    for (bad, says) in [
        ("", "no -----BEGIN CERTIFICATE-----"),
        ("just text", "no -----BEGIN CERTIFICATE-----"),
        (LEAF_KEY_PEM, "no -----BEGIN CERTIFICATE-----"),
        (broken, "a PEM block's body is not valid base64"),
        (
            unended,
            "a PEM block has no \"-----END CERTIFICATE-----\" line",
        ),
        (not_a_cert, "certificate 1:"),
    ] {
        let err = Client::new(
            base()
                .tls_root_certificates_pem(bad)
                .transmission(libhoney::transmission::Discard::new()),
        )
        .unwrap_err();
        assert!(
            matches!(err, ConfigError::InvalidRootCertificates { .. }),
            "{bad:?}: {err:?}"
        );
        assert!(err.to_string().contains(says), "{err}");
    }
    let config = base().tls_root_certificates_pem(TEST_CA_PEM);
    let shown = format!("{config:?}");
    assert!(
        shown.contains("tls_root_certificates: Some(\"(set)\")"),
        "{shown}"
    );
    assert!(!shown.contains("MIIB"), "{shown}");
    let both = format!("{LEAF_KEY_PEM}{TEST_CA_PEM}");
    Client::new(base().tls_root_certificates_pem(both.clone())).expect("Http");
    #[cfg(feature = "tokio")]
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let tokio = libhoney::transmission::Tokio::new();
            Client::new(base().tls_root_certificates_pem(both).transmission(tokio)).expect("Tokio");
        });
    }
}
