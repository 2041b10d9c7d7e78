//! The names of the fields the middleware puts on each request's event.
//!
//! They follow the conventions of Honeycomb's beelines: `request.*` for what
//! came in, `response.*` for what went out, and `duration_ms` and `error` at
//! the top level, so queries and boards written for beeline data keep working.
//!
//! | field | type | when present | source |
//! | --- | --- | --- | --- |
//! | [`name`](NAME) | string | always | `{method} {route}`, e.g. `GET /users/{id}`, unless the handler set one |
//! | `trace.trace_id`, `trace.span_id` | string | feature `tracing` | 32 and 16 hex digits: the request event is a span of the request's trace |
//! | `trace.parent_id` | string | feature `tracing`, incoming `traceparent` | the caller's span id |
//! | `meta.span_type` | string | feature `tracing` | `root`, or `subroot` when continuing a caller's trace |
//! | [`request.method`](REQUEST_METHOD) | string | always | the request line, e.g. `GET` |
//! | [`request.route`](REQUEST_ROUTE) | string | always | axum's [`MatchedPath`] (feature `axum`), e.g. `/users/{id}`; else the path, except [`UNMATCHED_ROUTE`] for a `404` whose route nobody named |
//! | [`request.path`](REQUEST_PATH) | string | always | the URI path, without the query string; under a nested axum router, the original path (`OriginalUri`) |
//! | [`request.http_version`](REQUEST_HTTP_VERSION) | string | always | `HTTP/1.0`, `HTTP/1.1`, `HTTP/2.0`, … |
//! | [`request.host`](REQUEST_HOST) | string | if known | the URI authority (HTTP/2 `:authority`), else the `Host` header |
//! | [`request.user_agent`](REQUEST_USER_AGENT) | string | if sent | the `User-Agent` header |
//! | [`request.remote_addr`](REQUEST_REMOTE_ADDR) | string | if known | `ip:port` of the peer: [`RemoteAddr`](crate::RemoteAddr) extension, else axum's `ConnectInfo<SocketAddr>`, else tonic's `TcpConnectInfo` (feature `tonic`), else [`HoneycombLayer::remote_addr`](crate::HoneycombLayer::remote_addr) |
//! | [`request.content_length`](REQUEST_CONTENT_LENGTH) | integer | if known up front | the `Content-Length` header, else the body's exact size hint; a chunked upload has none (request bodies are not counted) |
//! | [`response.status_code`](RESPONSE_STATUS_CODE) | integer | if a response was produced | e.g. `200`; `500` for a panic turned into a response |
//! | [`response.content_length`](RESPONSE_CONTENT_LENGTH) | integer | if a response was produced | body bytes **counted** as the server read them from the response body (exact for streaming bodies too); `0` for `HEAD`, `204` and `304` |
//! | [`response.grpc_status`](RESPONSE_GRPC_STATUS) | integer | gRPC only | the `grpc-status` header or trailer (tonic); `13` for a panic answered by the layer |
//! | [`response.grpc_message`](RESPONSE_GRPC_MESSAGE) | string | gRPC, when sent | the `grpc-message` header or trailer, percent-decoded, at most 1 KiB |
//! | [`duration_ms`](DURATION_MS) | float | always | milliseconds from the request entering the layer to the end of the response body (or the error, panic or cancellation) |
//! | [`error`](ERROR) | string | on failure | see below |
//!
//! The `error` field holds, by cause:
//! - the inner service returned `Err(e)`: `e`'s `Display` text;
//! - the handler panicked: `panic: ` and the panic message;
//! - the response future was dropped before it finished (client gone, an
//!   outer timeout): [`CANCELLED`];
//! - the response body failed: `response body error: ` and its `Display` text;
//! - the response body was dropped before its end (client gone mid-stream):
//!   [`BODY_DROPPED`].
//!
//! The query string, cookies and other headers are not recorded: they often
//! carry secrets. Add what you need from the handler through
//! [`HoneycombEvent`](crate::HoneycombEvent).
//!
//! The event's timestamp is the moment the request entered the layer.
//!
//! [`MatchedPath`]: https://docs.rs/axum/0.8/axum/extract/struct.MatchedPath.html

/// `request.method`: the HTTP method, e.g. `GET`.
pub const REQUEST_METHOD: &str = "request.method";
/// `request.route`: the matched route template where the framework knows it
/// (axum's `MatchedPath`, e.g. `/users/{id}`), else the request path.
pub const REQUEST_ROUTE: &str = "request.route";
/// `request.path`: the URI path, without the query string.
pub const REQUEST_PATH: &str = "request.path";
/// `request.http_version`: `HTTP/0.9`, `HTTP/1.0`, `HTTP/1.1`, `HTTP/2.0` or `HTTP/3.0`.
pub const REQUEST_HTTP_VERSION: &str = "request.http_version";
/// `request.host`: the URI authority, else the `Host` header.
pub const REQUEST_HOST: &str = "request.host";
/// `request.user_agent`: the `User-Agent` header.
pub const REQUEST_USER_AGENT: &str = "request.user_agent";
/// `request.remote_addr`: the peer's `ip:port`.
pub const REQUEST_REMOTE_ADDR: &str = "request.remote_addr";
/// `request.content_length`: request body size in bytes, from the
/// `Content-Length` header or the body's exact size hint.
pub const REQUEST_CONTENT_LENGTH: &str = "request.content_length";
/// `response.status_code`: the HTTP status code.
pub const RESPONSE_STATUS_CODE: &str = "response.status_code";
/// `response.content_length`: response body bytes, counted as they were read.
pub const RESPONSE_CONTENT_LENGTH: &str = "response.content_length";
/// `response.grpc_status`: the gRPC status code (header or trailer), for gRPC.
pub const RESPONSE_GRPC_STATUS: &str = "response.grpc_status";
/// `response.grpc_message`: the `grpc-message` header or trailer (tonic),
/// percent-decoded, for gRPC responses that carry one (errors).
pub const RESPONSE_GRPC_MESSAGE: &str = "response.grpc_message";
/// `name`: the span name of the request event, `{method} {route}` (e.g.
/// `GET /users/{id}`) unless the handler set one.
pub const NAME: &str = "name";
/// The `request.route` of a `404` response whose route neither the framework
/// nor the handler named (axum's fallback, a hyper service's unknown path):
/// one value instead of every path a scanner tries.
pub const UNMATCHED_ROUTE: &str = "<unmatched>";
/// `duration_ms`: milliseconds from the request entering the layer to the end
/// of the response body, or to the error, panic or cancellation.
pub const DURATION_MS: &str = "duration_ms";
/// `error`: why the request failed; absent when it did not.
pub const ERROR: &str = "error";

/// The `error` value of a request whose response future was dropped before it
/// finished: the client went away, or an outer timeout fired.
pub const CANCELLED: &str = "request cancelled";
/// The `error` value of a response whose body was dropped before its end,
/// typically because the client disconnected while it was being streamed.
pub const BODY_DROPPED: &str = "response body dropped before end";
