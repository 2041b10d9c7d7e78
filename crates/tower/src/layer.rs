//! The layer and the service.

use std::fmt;
use std::net::SocketAddr;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response, Version};
use http_body::Body;
use libhoney::{Builder, Client, Event, EventSource};
use tower_layer::Layer;
use tower_service::Service;

use crate::body::ResponseBody;
use crate::fields;
use crate::future::{panic_outcome, ResponseFuture};
use crate::handle::{panic_message, Finisher, HoneycombEvent};
use crate::trace;

/// What the middleware does when a handler panics. Either way the request's
/// event is sent first, with `error` = `panic: <message>`.
///
/// Panics can only be caught when the program unwinds (`panic = "unwind"`,
/// the default); with `panic = "abort"` the process ends and no event is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PanicPolicy {
    /// Answer with an empty `500 Internal Server Error` (the default), or,
    /// to a gRPC request (`content-type: application/grpc…`), with HTTP `200`
    /// and `grpc-status: 13` (INTERNAL), which gRPC clients read as a status.
    /// The event then has the status the client saw, and the connection
    /// survives: under HTTP/2 (so always with tonic) a resumed panic would
    /// tear down every other request multiplexed on the same connection.
    #[default]
    Respond500,
    /// Resume the panic once the event is sent, as if the layer were not
    /// there: the server (or an outer layer such as tower-http's
    /// `CatchPanic`) decides what happens. The event has no
    /// `response.status_code`.
    Resume,
}

/// The peer address of a request, for servers that know it but are not axum
/// with `ConnectInfo`: insert `RemoteAddr(addr)` into the request's
/// extensions before the layer sees it, and the event gets
/// `request.remote_addr`. It takes precedence over axum's
/// `ConnectInfo<SocketAddr>` and over [`HoneycombLayer::remote_addr`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RemoteAddr(pub SocketAddr);

struct Settings {
    source: EventSource,
    panic_policy: PanicPolicy,
    remote_addr: Option<SocketAddr>,
}

/// A tower [`Layer`] that sends one Honeycomb event per HTTP request: see the
/// [crate documentation](crate) for the fields, and [`Honeycomb`] for what
/// happens per request.
///
/// Cloning is one reference-count increment; the layer can be applied to any
/// number of services (axum applies it once per route). Building one does no
/// I/O.
///
/// ```
/// use libhoney::{Client, Config, transmission::Mock};
/// use libhoney_tower::{HoneycombLayer, PanicPolicy};
///
/// let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
/// let mut builder = client.new_builder();
/// builder.set_dataset("web-requests").add_field("service.name", "checkout");
///
/// let layer = HoneycombLayer::from_builder(builder).on_panic(PanicPolicy::Resume);
/// # let _ = layer;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct HoneycombLayer {
    settings: Arc<Settings>,
}

impl fmt::Debug for HoneycombLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        f.debug_struct("HoneycombLayer")
            .field("source", &s.source.kind())
            .field("panic_policy", &s.panic_policy)
            .field("remote_addr", &s.remote_addr)
            .finish()
    }
}

impl HoneycombLayer {
    fn with_source(source: EventSource) -> Self {
        HoneycombLayer {
            settings: Arc::new(Settings {
                source,
                panic_policy: PanicPolicy::default(),
                remote_addr: None,
            }),
        }
    }

    /// Events are made by `client.new_event()`: they carry the client's
    /// global fields and dynamic fields as they are when each request
    /// arrives, and go to the client's dataset.
    pub fn from_client(client: Client) -> Self {
        Self::with_source(EventSource::Client(client))
    }

    /// Events are made by `builder.new_event()`: they carry the builder's
    /// fields and dynamic fields and use its dataset, API key and sample
    /// rate. The builder is a snapshot: later changes to the original do not
    /// reach the layer.
    pub fn from_builder(builder: Builder) -> Self {
        Self::with_source(EventSource::Builder(builder))
    }

    /// Sets what happens when a handler panics (default
    /// [`PanicPolicy::Respond500`]).
    #[must_use = "a by-value setter returns the changed value: use it"]
    pub fn on_panic(self, policy: PanicPolicy) -> Self {
        self.map_settings(|s| s.panic_policy = policy)
    }

    /// Records `addr` as `request.remote_addr` of every request through
    /// services made by this layer, unless the request carries a
    /// [`RemoteAddr`], axum `ConnectInfo` or tonic `TcpConnectInfo`
    /// extension. For servers that build the service stack per connection,
    /// such as plain hyper: `layer.clone().remote_addr(peer).layer(service)`.
    /// (tonic builds its stack once, in `Server::builder().layer(..)`: turn on
    /// the `tonic` feature instead, which reads its `TcpConnectInfo`.)
    #[must_use = "a by-value setter returns the changed value: use it"]
    pub fn remote_addr(self, addr: SocketAddr) -> Self {
        self.map_settings(|s| s.remote_addr = Some(addr))
    }

    fn map_settings(self, f: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = match Arc::try_unwrap(self.settings) {
            Ok(settings) => settings,
            Err(shared) => Settings {
                source: shared.source.clone(),
                panic_policy: shared.panic_policy,
                remote_addr: shared.remote_addr,
            },
        };
        f(&mut settings);
        HoneycombLayer {
            settings: Arc::new(settings),
        }
    }
}

impl From<Client> for HoneycombLayer {
    fn from(client: Client) -> Self {
        HoneycombLayer::from_client(client)
    }
}

impl From<Builder> for HoneycombLayer {
    fn from(builder: Builder) -> Self {
        HoneycombLayer::from_builder(builder)
    }
}

impl<S> Layer<S> for HoneycombLayer {
    type Service = Honeycomb<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Honeycomb {
            inner,
            settings: Arc::clone(&self.settings),
        }
    }
}

/// The middleware service made by [`HoneycombLayer`]: wraps an HTTP service
/// and sends one event per request.
///
/// Per request, in [`call`](Service::call): creates the event (from the
/// client or builder; this evaluates their dynamic fields), records the
/// request fields, and inserts a [`HoneycombEvent`] handle into the request's
/// extensions; about a dozen small allocations and no lock. The event is
/// finished and sent by the [`ResponseFuture`] (on error, panic or
/// cancellation) or by the [`ResponseBody`] (when the body ends), with the
/// SDK's non-blocking `send`: the middleware never waits on the network and
/// never blocks the executor. (The exceptions are SDK settings meant for
/// batch jobs, not servers: `Config::block_on_send(true)` blocks while the
/// SDK's queue is full, and `Config::block_on_response(true)` while nobody
/// reads a full response queue. Also keep your own `Client` handle and close
/// it with `close_async` at shutdown: whoever drops the last handle closes
/// the client, which waits up to its `shutdown_timeout`.)
///
/// Requests and response errors pass through unchanged; only the response
/// body type changes, to [`ResponseBody<B>`]. Readiness is the inner
/// service's.
#[derive(Clone)]
pub struct Honeycomb<S> {
    inner: S,
    settings: Arc<Settings>,
}

impl<S: fmt::Debug> fmt::Debug for Honeycomb<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Honeycomb")
            .field("inner", &self.inner)
            .field("panic_policy", &self.settings.panic_policy)
            .finish_non_exhaustive()
    }
}

impl<S> Honeycomb<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Honeycomb<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: fmt::Display,
    ReqBody: Body,
    ResBody: Body,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let start = Instant::now();
        let settings = &*self.settings;
        let mut event = settings.source.new_event();
        let route_is_template = record_request(&mut event, &req, settings.remote_addr);
        let (trace, span) = trace::start(&mut event, req.headers());
        let handle = HoneycombEvent::new(event, route_is_template);
        req.extensions_mut().insert(handle.clone());
        let head_request = req.method() == http::Method::HEAD;
        let grpc = is_grpc(&req);
        let finisher = Finisher {
            handle,
            start,
            trace,
        };
        let called = {
            let _entered = span.enter();
            catch_unwind(AssertUnwindSafe(|| self.inner.call(req)))
        };
        match called {
            Ok(future) => ResponseFuture::new(
                future,
                finisher,
                head_request,
                settings.panic_policy,
                grpc,
                span,
            ),
            Err(payload) => {
                let policy = settings.panic_policy;
                finisher.finish(panic_outcome(panic_message(&*payload), policy, grpc));
                match policy {
                    PanicPolicy::Respond500 => ResponseFuture::internal_error(policy, grpc),
                    PanicPolicy::Resume => resume_unwind(payload),
                }
            }
        }
    }
}

fn version_str(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "unknown",
    }
}

fn header_str(value: &http::HeaderValue) -> String {
    String::from_utf8_lossy(value.as_bytes()).into_owned()
}

/// Is this a gRPC request (`content-type: application/grpc`, `+proto`, ...)?
fn is_grpc<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// The path the client asked for: under a nested axum router, the original
/// one (axum strips the nest prefix from the URI the inner router sees).
#[cfg(feature = "axum")]
fn original_path<B>(req: &Request<B>) -> &str {
    match req.extensions().get::<axum::extract::OriginalUri>() {
        Some(original) => original.0.path(),
        None => req.uri().path(),
    }
}

#[cfg(not(feature = "axum"))]
fn original_path<B>(req: &Request<B>) -> &str {
    req.uri().path()
}

/// Records the request fields; returns whether `request.route` is a
/// framework route template.
fn record_request<B: Body>(
    event: &mut Event,
    req: &Request<B>,
    default_remote: Option<SocketAddr>,
) -> bool {
    let path = original_path(req);
    event.add_field(fields::REQUEST_METHOD, req.method().as_str().to_owned());
    event.add_field(fields::REQUEST_PATH, path.to_owned());
    let route = route_template(req);
    let route_is_template = route.is_some();
    event.add_field(
        fields::REQUEST_ROUTE,
        route.unwrap_or_else(|| path.to_owned()),
    );
    event.add_field(fields::REQUEST_HTTP_VERSION, version_str(req.version()));
    let headers = req.headers();
    if let Some(authority) = req.uri().authority() {
        event.add_field(fields::REQUEST_HOST, authority.as_str().to_owned());
    } else if let Some(host) = headers.get(http::header::HOST) {
        event.add_field(fields::REQUEST_HOST, header_str(host));
    }
    if let Some(agent) = headers.get(http::header::USER_AGENT) {
        event.add_field(fields::REQUEST_USER_AGENT, header_str(agent));
    }
    if let Some(addr) = remote_addr(req).or(default_remote) {
        event.add_field(fields::REQUEST_REMOTE_ADDR, addr.to_string());
    }
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok());
    if let Some(len) = declared.or_else(|| req.body().size_hint().exact()) {
        event.add_field(fields::REQUEST_CONTENT_LENGTH, len);
    }
    route_is_template
}

#[cfg(feature = "axum")]
fn route_template<B>(req: &Request<B>) -> Option<String> {
    req.extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
}

#[cfg(not(feature = "axum"))]
fn route_template<B>(_req: &Request<B>) -> Option<String> {
    None
}

fn remote_addr<B>(req: &Request<B>) -> Option<SocketAddr> {
    let ext = req.extensions();
    if let Some(RemoteAddr(addr)) = ext.get::<RemoteAddr>() {
        return Some(*addr);
    }
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(addr)) =
        ext.get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(*addr);
    }
    #[cfg(feature = "tonic")]
    if let Some(addr) = ext
        .get::<tonic::transport::server::TcpConnectInfo>()
        .and_then(|info| info.remote_addr())
    {
        return Some(addr);
    }
    None
}
