//! How the tokio driver connects: TCP, a `CONNECT` tunnel through a proxy,
//! TLS (rustls with ring, the webpki roots or the configured ones).

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context as TaskContext, Poll};

use hyper::Uri;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tower_service::Service;

use crate::config::Config;
use crate::error::ConfigError;
use crate::transmission::pipeline::FailureKind;

/// Why a connection could not be made.
#[derive(Debug)]
pub(super) struct ConnectError {
    message: String,
    pub(super) kind: FailureKind,
}

impl ConnectError {
    fn proxy(message: impl Into<String>) -> Self {
        ConnectError {
            message: message.into(),
            kind: FailureKind::Proxy,
        }
    }

    fn fatal(message: impl Into<String>) -> Self {
        ConnectError {
            message: message.into(),
            kind: FailureKind::Refused,
        }
    }

    /// Why hyper-util's tunnel failed (its error type is not exported, so
    /// it is read through `source` and its text): our own connection error,
    /// or a proxy failure.
    fn tunnel(e: impl std::error::Error + 'static) -> Self {
        let mut source = e.source();
        while let Some(s) = source {
            if let Some(c) = s.downcast_ref::<ConnectError>() {
                return ConnectError {
                    message: c.message.clone(),
                    kind: c.kind,
                };
            }
            source = s.source();
        }
        // As ureq does for `Http`, a refused tunnel counts as a transient
        // proxy failure (retried).
        let text = e.to_string();
        if text.contains("authorization required") {
            ConnectError::proxy(
                "the proxy refused the tunnel: 407 Proxy Authentication Required (check the \
                 user and password in the proxy URL)",
            )
        } else {
            ConnectError::proxy(format!("the proxy refused the tunnel: {text}"))
        }
    }

    fn io(what: &str, e: io::Error) -> Self {
        let kind = if e.kind() == io::ErrorKind::TimedOut {
            FailureKind::Timeout
        } else {
            FailureKind::Connection
        };
        ConnectError {
            message: format!("{what}: {e}"),
            kind,
        }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConnectError {}

/// Any connection: TCP, TLS over TCP, TLS through a tunnel.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

pub(super) struct Stream(Box<dyn Io>);

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

/// The TLS settings: ring, TLS 1.2 and 1.3, and the webpki roots (built
/// once) or only the configured ones
/// ([`Config::tls_root_certificates_pem`](crate::Config::tls_root_certificates_pem)).
pub(super) fn tls_config(config: &Config) -> Result<Arc<rustls::ClientConfig>, ConfigError> {
    fn build(roots: rustls::RootCertStore) -> Result<Arc<rustls::ClientConfig>, String> {
        // rustls 0.23.48 deprecates ring's provider because ring has no
        // post-quantum key exchange; it is the provider this crate builds
        // with (no aws-lc, no cmake: the same as ureq's), and the TLS it
        // gives is unchanged. Allowed here alone, so a fresh lock file
        // builds without warnings.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
            .map_err(|e| e.to_string())
    }
    let built = match &config.tls_roots {
        Some(certs) => {
            // `Config::resolve` has checked that rustls takes every one.
            let mut roots = rustls::RootCertStore::empty();
            roots.add_parsable_certificates(
                certs
                    .iter()
                    .map(|der| rustls::pki_types::CertificateDer::from(der.as_slice())),
            );
            build(roots)
        }
        None => {
            static TLS: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
            TLS.get_or_init(|| {
                build(rustls::RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                })
            })
            .clone()
        }
    };
    built.map_err(|reason| ConfigError::TlsSetup { reason })
}

/// Opens connections for hyper: directly, or through a `CONNECT` tunnel when
/// the proxy settings cover the destination; then TLS for `https`.
#[derive(Clone)]
pub(super) struct Connector {
    tls: tokio_rustls::TlsConnector,
    proxy: Option<Arc<Matcher>>,
}

impl Connector {
    pub(super) fn new(config: &Config) -> Result<Connector, ConfigError> {
        let proxy = match (&config.proxy, config.proxy_from_env) {
            (Some(url), _) => {
                // `Config::resolve` accepted it as an http(s) URL with a host.
                let m = Matcher::builder().all(url.clone()).build();
                let probe = Uri::from_static("https://api.honeycomb.io/");
                if m.intercept(&probe).is_none() {
                    return Err(ConfigError::InvalidProxy {
                        reason: "not a usable proxy URL".into(),
                    });
                }
                Some(Arc::new(m))
            }
            (None, true) => Some(Arc::new(Matcher::from_env())),
            (None, false) => None,
        };
        Ok(Connector {
            tls: tokio_rustls::TlsConnector::from(tls_config(config)?),
            proxy,
        })
    }

    async fn connect(self, dst: Uri) -> Result<Stream, ConnectError> {
        let https = match dst.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            other => {
                return Err(ConnectError::fatal(format!(
                    "unsupported URL scheme {other:?}"
                )))
            }
        };
        let (host, port) = host_port(&dst, https)?;
        let stream = match self.proxy.as_ref().and_then(|m| m.intercept(&dst)) {
            Some(proxy) => {
                let puri = proxy.uri();
                let proxy_https = match puri.scheme_str() {
                    Some("https") => true,
                    Some("http") => false,
                    other => {
                        return Err(ConnectError::fatal(format!(
                            "unsupported proxy scheme {other:?}: use an http:// or https:// proxy"
                        )))
                    }
                };
                // hyper-util's CONNECT tunnel, over our connection to the
                // proxy (TLS to it for an https:// proxy). The destination
                // carries its port: the tunnel would assume 443.
                let to_proxy = ToProxy {
                    connector: self.clone(),
                    https: proxy_https,
                };
                let mut tunnel = Tunnel::new(puri.clone(), to_proxy);
                if let Some(auth) = proxy.basic_auth() {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                let target = Uri::builder()
                    .scheme(if https { "https" } else { "http" })
                    .authority(format!("{}:{port}", dst.host().unwrap_or(host)))
                    .path_and_query("/")
                    .build()
                    .map_err(|e| ConnectError::fatal(format!("invalid destination: {e}")))?;
                tunnel
                    .call(target)
                    .await
                    .map_err(ConnectError::tunnel)?
                    .into_inner()
            }
            None => self.open(host, port, false).await?,
        };
        if https {
            self.tls(stream, host).await
        } else {
            Ok(stream)
        }
    }

    async fn open(&self, host: &str, port: u16, tls: bool) -> Result<Stream, ConnectError> {
        let tcp = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| ConnectError::io(&format!("connecting to {host}:{port}"), e))?;
        let _ = tcp.set_nodelay(true);
        let s = Stream(Box::new(tcp));
        if tls {
            self.tls(s, host).await
        } else {
            Ok(s)
        }
    }

    async fn tls(&self, s: Stream, host: &str) -> Result<Stream, ConnectError> {
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| ConnectError::fatal(format!("invalid TLS server name {host:?}: {e}")))?;
        match self.tls.connect(name, s).await {
            Ok(tls) => Ok(Stream(Box::new(tls))),
            // rustls reports its errors (certificates, protocol) as invalid data.
            Err(e) if e.kind() == io::ErrorKind::InvalidData => Err(ConnectError {
                message: format!("TLS with {host}: {e}"),
                kind: FailureKind::Tls,
            }),
            Err(e) => Err(ConnectError::io(&format!("TLS with {host}"), e)),
        }
    }
}

/// Host (without IPv6 brackets) and port of a URL.
fn host_port(uri: &Uri, https: bool) -> Result<(&str, u16), ConnectError> {
    let host = uri
        .host()
        .ok_or_else(|| ConnectError::fatal(format!("no host in {uri}")))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Ok((host, uri.port_u16().unwrap_or(if https { 443 } else { 80 })))
}

/// The connection to the proxy itself, for hyper-util's [`Tunnel`]: TCP,
/// and TLS for an `https://` proxy.
#[derive(Clone)]
struct ToProxy {
    connector: Connector,
    https: bool,
}

impl tower_service::Service<Uri> for ToProxy {
    type Response = TokioIo<Stream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<TokioIo<Stream>, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, proxy: Uri) -> Self::Future {
        let me = self.clone();
        Box::pin(async move {
            let (host, port) = host_port(&proxy, me.https)?;
            me.connector
                .open(host, port, me.https)
                .await
                .map(TokioIo::new)
        })
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<TokioIo<Stream>, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let me = self.clone();
        Box::pin(async move { me.connect(dst).await.map(TokioIo::new) })
    }
}
