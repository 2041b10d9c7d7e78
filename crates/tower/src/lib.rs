//! # libhoney-tower: one Honeycomb event per HTTP request
//!
//! A tower [`Layer`](tower_layer::Layer) for any HTTP server built on tower
//! services (axum, hyper, tonic, …), in the spirit of the Django middleware of
//! libhoney-py: every request produces one wide event, sent through a
//! [`libhoney::Client`] (or a [`libhoney::Builder`], whose fields, dataset and
//! sample rate the events inherit).
//!
//! Each event carries the request and response fields listed in [`fields`]
//! (`request.method`, `request.route`, `request.path`, `response.status_code`,
//! `duration_ms`, body sizes, user agent, remote address, …), plus whatever
//! the handler adds through the [`HoneycombEvent`] handle found in the
//! request's extensions. Failures are events too: an `Err` from the service,
//! a panicking handler and a request abandoned midway (client gone, outer
//! timeout) each produce their event, with an `error` field saying what
//! happened.
//!
//! ```
//! use std::convert::Infallible;
//! use http::{Request, Response};
//! use http_body_util::Full;
//! use libhoney::{Client, Config, transmission::Mock};
//! use libhoney_tower::{HoneycombEvent, HoneycombLayer};
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! let mock = Mock::new(); // records events; use the default transmission in production
//! let client = Client::new(Config::new().api_key("k").dataset("my-api").transmission(mock.clone()))?;
//!
//! let handler = service_fn(|req: Request<Full<&'static [u8]>>| async move {
//!     if let Some(ev) = HoneycombEvent::from_request(&req) {
//!         ev.add_field("user.id", 42); // enrich the request's event
//!     }
//!     Ok::<_, Infallible>(Response::new(Full::new(&b"hello"[..])))
//! });
//! let service = HoneycombLayer::from_client(client.clone()).layer(handler);
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let req = Request::get("/hello").header("user-agent", "doc").body(Full::new(&b""[..]))?;
//! let response = service.oneshot(req).await?;
//! // The event is sent once the body has been read (here: dropped after its
//! // last byte by `collect`, as a server does after writing it).
//! let body = http_body_util::BodyExt::collect(response.into_body()).await?.to_bytes();
//! assert_eq!(&body[..], b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//!
//! client.flush()?;
//! let events = mock.events();
//! let ev = &events[0];
//! assert_eq!(ev.get("request.method").unwrap().as_str(), Some("GET"));
//! assert_eq!(ev.get("request.path").unwrap().as_str(), Some("/hello"));
//! assert_eq!(ev.get("response.status_code").unwrap().as_i64(), Some(200));
//! assert_eq!(ev.get("response.content_length").unwrap().as_i64(), Some(5));
//! assert_eq!(ev.get("user.id").unwrap().as_i64(), Some(42));
//! assert!(ev.get("duration_ms").unwrap().as_f64().is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Install
//!
//! ```sh
//! cargo add libhoney-tower                   # hyper, tonic, any tower service
//! cargo add libhoney-tower --features axum   # with axum's route templates and extractor
//! cargo add libhoney-sdk                     # the client it sends through (`use libhoney`)
//! ```
//!
//! Imported as `libhoney_tower`. Without the `axum` feature, `HoneycombEvent`
//! is no axum extractor and routes are not read from `MatchedPath`: a handler
//! taking a `HoneycombEvent` then fails to compile with axum's "the trait
//! `Handler<_, _>` is not implemented" (`#[axum::debug_handler]` names
//! `HoneycombEvent: FromRequestParts`), which means the feature is off.
//!
//! ## With axum (feature `axum`)
//!
//! Add the layer with `Router::layer`, so that it runs after routing and
//! records the route template (`/users/{id}`, from axum's `MatchedPath`) as
//! `request.route`; serve with `into_make_service_with_connect_info` to get
//! `request.remote_addr`. Handlers take the event as an extractor.
//!
//! ```no_run
//! # #[cfg(feature = "axum")]
//! # mod example {
//! use std::net::SocketAddr;
//! use axum::{extract::Path, routing::get, Router};
//! use libhoney_tower::{HoneycombEvent, HoneycombLayer};
//!
//! async fn user(Path(id): Path<u64>, ev: HoneycombEvent) -> String {
//!     ev.add_field("user.id", id);
//!     format!("user {id}")
//! }
//!
//! pub async fn serve(client: libhoney::Client) -> Result<(), Box<dyn std::error::Error>> {
//!     let guard = client.close_on_drop(); // see Shutdown below
//!     let app = Router::new()
//!         .route("/users/{id}", get(user))
//!         .layer(HoneycombLayer::from_client(client));
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
//!         // Finish the requests in flight on Ctrl-C (add SIGTERM: see
//!         // examples/axum_service.rs), then deliver their events.
//!         .with_graceful_shutdown(async { let _ = tokio::signal::ctrl_c().await; })
//!         .await?;
//!     guard.close_async(std::time::Duration::from_secs(5)).await?;
//!     Ok(())
//! }
//! # }
//! ```
//!
//! On a nested router (`Router::new().nest("/api", users)`, the layer on
//! `users`), `request.path` is the original path (`/api/users/7`, from
//! axum's `OriginalUri`) and `request.route` the full template
//! (`/api/users/{id}`).
//!
//! To wrap the whole router instead, use
//! [`HoneycombLayer::wrap_router`]: it returns a `Router` that `axum::serve`
//! takes as it is, and still records route templates. (A bare outer
//! `ServiceBuilder` layer would change the response body type, which
//! `axum::serve` rejects.) A `404` whose route neither the framework nor the
//! handler named, such as axum's fallback answering a scanner, has
//! `request.route` = [`fields::UNMATCHED_ROUTE`] (`<unmatched>`), so scanners
//! do not multiply the route's values.
//!
//! ## One trace per request (feature `tracing`, on by default)
//!
//! Each request event is a span of the request's trace (`trace.trace_id`,
//! `trace.span_id`, `meta.span_type`, `name`), continuing the caller's trace
//! when the request carries a W3C `traceparent` (then `trace.parent_id` is
//! the caller's span). The inner service runs inside a `tracing` span that
//! stands for the request event
//! ([`libhoney_tracing::external_span`]): with libhoney-tracing's layer
//! installed, the handler's spans and log events are the request event's
//! children, in the same trace. [`propagation`] passes the trace on to
//! outgoing calls (a tower layer for tonic and hyper clients, a `HeaderMap`
//! function for the rest).
//!
//! The event is kept or dropped by its trace id at the sample rate of the
//! client or builder, the rule libhoney-tracing uses for spans, so a trace
//! is kept or dropped whole, across services.
//!
//! ## With hyper or tonic
//!
//! The layer wraps any `Service<http::Request<B>, Response = http::Response<R>>`
//! where `B` and `R` are [`http_body::Body`]s and the error is `Display`:
//! hyper services (through `hyper_util::service::TowerToHyperService`), tonic
//! servers (`Server::builder().layer(…)`), tower-http stacks. Handlers reach
//! the event with [`HoneycombEvent::from_request`] or
//! `request.extensions().get::<HoneycombEvent>()` (in tonic, on
//! `tonic::Request::extensions()`). For `request.remote_addr`: with tonic,
//! turn on the `tonic` feature (read from tonic's `TcpConnectInfo`);
//! otherwise insert a [`RemoteAddr`] extension, or build the stack per
//! connection with [`HoneycombLayer::remote_addr`]. A service that does its
//! own routing can set `request.route` from the handler (the last write of a
//! field wins).
//!
//! gRPC responses record `response.grpc_status` and `response.grpc_message`
//! from headers or trailers. A handler that panics while serving an
//! `application/grpc` request is answered with HTTP `200` and
//! `grpc-status: 13` (INTERNAL), as gRPC clients expect; see
//! `examples/tonic_service.rs` (no protoc needed).
//!
//! ## When the event is sent
//!
//! The request body passes through untouched (the inner service keeps its
//! request type); the response body is wrapped in [`ResponseBody`], which
//! counts its bytes and sends the event when it ends, so `duration_ms` covers
//! the whole response, streaming included:
//!
//! | what happens | when the event is sent | `error` |
//! | --- | --- | --- |
//! | a response | its body's last frame (or end, failure or drop) | none; `response body dropped before end` if the client left mid-body |
//! | the service returns `Err(e)` | then | `e`'s `Display` |
//! | the handler panics | then | `panic: <message>`; see [`PanicPolicy`] |
//! | the response future is dropped | from its `Drop` | `request cancelled` |
//!
//! Sending is libhoney's [`Event::send`](libhoney::Event::send): it queues
//! the event for the SDK's background sender and returns at once, so the
//! middleware never blocks the executor (unless the client was built with
//! `Config::block_on_send(true)` or `block_on_response(true)`, settings for
//! batch jobs, not servers). Send errors (such as a closed client) are
//! ignored: a request never fails because of its event. Sampling follows the
//! client's or builder's sample rate; a handler can change it per request
//! through [`HoneycombEvent::with_event`].
//!
//! ## Shutdown
//!
//! Serve with graceful shutdown on Ctrl-C and SIGTERM (axum's
//! `with_graceful_shutdown`, tonic's `serve_with_shutdown`), so requests in
//! flight finish, and keep the SDK's guard,
//! [`Client::close_on_drop`](libhoney::Client::close_on_drop), from the start
//! of `main`: the same [`CloseOnDrop`](libhoney::CloseOnDrop) as
//! `libhoney::init` returns and libhoney-tracing's docs use. It closes the
//! client although the layers hold clones of it. In async `main`, end with
//! `guard.close_async(timeout).await`, which waits off the executor.
//!
//! ## Troubleshooting
//!
//! Without an API key every event is refused: the SDK warns when the client
//! starts, this layer warns once per process (target `libhoney_tower`) at
//! the first refused event, and the client's
//! [`metrics`](libhoney::Client::metrics) count them in
//! `events_missing_api_key`.
//!
//! ## Costs
//!
//! Per request: one event (the client's fields are shared, not copied; its
//! dynamic fields are evaluated), about a dozen small string allocations for
//! the request fields, one `Arc` for the handle, and a boxed body in axum
//! (which boxes every response body anyway). Per response frame: one
//! addition. Per field added from a handler: one uncontended lock.
//!
//! ## Cargo features
//!
//! - `tracing` (on by default): one trace per request, see above; pulls
//!   `tracing` and `libhoney-tracing`.
//! - `axum`: route templates from axum's `MatchedPath`, the original path
//!   under nested routers, remote addresses from `ConnectInfo<SocketAddr>`,
//!   the `HoneycombEvent` extractor and [`HoneycombLayer::wrap_router`]. Off
//!   by default, so hyper and tonic users do not build axum.
//! - `tonic`: remote addresses from tonic's `TcpConnectInfo`. Off by
//!   default, so other users do not build tonic.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The README's examples, compiled (and run, unless `no_run`) as doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(feature = "axum")]
mod axum_support;
mod body;
pub mod fields;
mod future;
mod handle;
mod layer;
#[cfg(feature = "tracing")]
pub mod propagation;
mod trace;

pub use body::ResponseBody;
pub use future::ResponseFuture;
pub use handle::HoneycombEvent;
pub use layer::{Honeycomb, HoneycombLayer, PanicPolicy, RemoteAddr};
