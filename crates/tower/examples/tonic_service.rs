//! A tonic gRPC service that sends one Honeycomb event per call, with the
//! handler's `tracing` spans in the same trace.
//!
//! ```text
//! cargo run -p libhoney-tower --features tonic --example tonic_service -- --demo  # calls itself, prints, exits
//! cargo run -p libhoney-tower --features tonic --example tonic_service            # serves on 127.0.0.1:50051 until Ctrl-C/SIGTERM
//! ```
//!
//! No protoc and no build script: the service is written the way
//! `tonic-build` (or `tonic_build::manual`) would generate it, with a codec
//! that carries UTF-8 strings instead of protobuf messages, so that the
//! example needs nothing but tonic. With generated code, the layer and the
//! handlers are used the same way.
//!
//! With `HONEYCOMB_API_KEY` set, events go to Honeycomb (dataset
//! `tonic-example`, or `HONEYCOMB_DATASET`). Without it, a local
//! `libhoney-receiver` prints them.
//!
//! The test suite serves [`greeter`] too (it includes this file as a module).

#![allow(dead_code)] // The tests include this file and use only part of it.

use std::convert::Infallible;
use std::error::Error;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut};
use http::uri::PathAndQuery;
use libhoney::{Client, Config};
use libhoney_receiver::{Print, Receiver, RunningReceiver};
use libhoney_tower::propagation::TraceparentLayer;
use libhoney_tower::{HoneycombEvent, HoneycombLayer};
use tonic::body::Body;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status};
use tracing_subscriber::prelude::*;

/// The gRPC service name, as a `.proto` file would declare it.
pub const SERVICE: &str = "demo.Greeter";

/// The handlers. `say_hello` answers; `find_user` fails with a status;
/// `crash` panics.
#[tracing::instrument(skip(request))]
async fn say_hello(request: Request<String>) -> Result<Response<String>, Status> {
    if let Some(ev) = request.extensions().get::<HoneycombEvent>() {
        ev.add_field("greeting.name", request.get_ref().clone());
    }
    let reply = lookup_greeting(request.get_ref()).await;
    Ok(Response::new(reply))
}

#[tracing::instrument]
async fn lookup_greeting(name: &str) -> String {
    tokio::time::sleep(Duration::from_millis(2)).await;
    tracing::info!(language = "en", "greeting chosen");
    format!("hello, {name}")
}

async fn find_user(request: Request<String>) -> Result<Response<String>, Status> {
    Err(Status::not_found(format!(
        "no user {:?}",
        request.get_ref()
    )))
}

async fn crash(_request: Request<String>) -> Result<Response<String>, Status> {
    panic!("the crash handler panics on purpose")
}

type Handler = fn(Request<String>) -> BoxFuture<Result<Response<String>, Status>>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The server side of [`SERVICE`]: what generated code provides, by hand.
#[derive(Clone, Default)]
pub struct Greeter;

impl NamedService for Greeter {
    const NAME: &'static str = SERVICE;
}

struct Unary(Handler);

impl UnaryService<String> for Unary {
    type Response = String;
    type Future = BoxFuture<Result<Response<String>, Status>>;
    fn call(&mut self, request: Request<String>) -> Self::Future {
        (self.0)(request)
    }
}

impl tower_service::Service<http::Request<Body>> for Greeter {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let handler: Option<Handler> = match req.uri().path() {
            "/demo.Greeter/SayHello" => Some(|r| Box::pin(say_hello(r))),
            "/demo.Greeter/FindUser" => Some(|r| Box::pin(find_user(r))),
            "/demo.Greeter/Crash" => Some(|r| Box::pin(crash(r))),
            _ => None,
        };
        Box::pin(async move {
            Ok(match handler {
                Some(h) => Grpc::new(Utf8Codec).unary(Unary(h), req).await,
                None => Status::unimplemented("no such method").into_http(),
            })
        })
    }
}

/// A codec of UTF-8 strings, standing in for prost's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Utf8Codec;

impl Codec for Utf8Codec {
    type Encode = String;
    type Decode = String;
    type Encoder = Utf8Codec;
    type Decoder = Utf8Codec;
    fn encoder(&mut self) -> Utf8Codec {
        Utf8Codec
    }
    fn decoder(&mut self) -> Utf8Codec {
        Utf8Codec
    }
}

impl Encoder for Utf8Codec {
    type Item = String;
    type Error = Status;
    fn encode(&mut self, item: String, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(item.as_bytes());
        Ok(())
    }
}

impl Decoder for Utf8Codec {
    type Item = String;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<String>, Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| Status::invalid_argument("not UTF-8"))
    }
}

/// The server: the layer goes on `Server::builder()`; `request.remote_addr`
/// comes from tonic's `TcpConnectInfo` (feature `tonic`). Serves until
/// `shutdown` completes, then waits for calls in flight.
pub async fn serve(
    layer: HoneycombLayer,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    Server::builder()
        .layer(layer)
        .add_service(Greeter)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await
}

/// A client for [`SERVICE`] that passes the current trace on
/// (`traceparent`, through [`TraceparentLayer`]).
#[derive(Clone)]
pub struct GreeterClient {
    grpc: tonic::client::Grpc<libhoney_tower::propagation::Traceparent<Channel>>,
}

impl GreeterClient {
    /// Connects to `url` (such as `http://127.0.0.1:50051`).
    pub async fn connect(url: String) -> Result<Self, tonic::transport::Error> {
        let channel = Channel::from_shared(url)
            .expect("a valid URI")
            .connect()
            .await?;
        let channel = tower_layer::Layer::layer(&TraceparentLayer, channel);
        Ok(GreeterClient {
            grpc: tonic::client::Grpc::new(channel),
        })
    }

    /// Calls `method` (`SayHello`, `FindUser`, `Crash`) with `name`.
    pub async fn call(&mut self, method: &'static str, name: &str) -> Result<String, Status> {
        self.grpc
            .ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let path = match method {
            "SayHello" => "/demo.Greeter/SayHello",
            "FindUser" => "/demo.Greeter/FindUser",
            "Crash" => "/demo.Greeter/Crash",
            _ => "/demo.Greeter/Unknown",
        };
        let response = self
            .grpc
            .unary(
                Request::new(name.to_owned()),
                PathAndQuery::from_static(path),
                Utf8Codec,
            )
            .await?;
        Ok(response.into_inner())
    }
}

/// Where events go: Honeycomb if `HONEYCOMB_API_KEY` is set, else a local
/// receiver (returned, to live as long as the caller keeps it).
pub fn client_from_env() -> Result<(Client, Option<RunningReceiver>), Box<dyn Error>> {
    let dataset = std::env::var("HONEYCOMB_DATASET").unwrap_or_else(|_| "tonic-example".into());
    if std::env::var("HONEYCOMB_API_KEY").is_ok_and(|k| !k.trim().is_empty()) {
        println!("sending events to Honeycomb, dataset {dataset:?}");
        return Ok((Client::new(Config::new().dataset(dataset))?, None));
    }
    let receiver = Receiver::builder()
        .api_key("local-key")
        .print(Print::Pretty)
        .start()?;
    println!(
        "HONEYCOMB_API_KEY is not set: events go to a local receiver at {}",
        receiver.url()
    );
    let config = Config::new()
        .read_env(false)
        .api_key("local-key")
        .dataset(dataset)
        .api_host(receiver.url())
        .send_frequency(Duration::from_millis(50));
    Ok((Client::new(config)?, Some(receiver)))
}

/// Completes on Ctrl-C or, on Unix, SIGTERM (what `kill`, systemd and
/// Kubernetes send).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    run(std::env::args().any(|a| a == "--demo")).await
}

/// The example: serves until Ctrl-C or SIGTERM or, with `demo`, makes three
/// calls to itself and returns. Installs the global tracing subscriber.
pub async fn run(demo: bool) -> Result<(), Box<dyn Error>> {
    let (client, receiver) = client_from_env()?;
    // Flushes and closes the client when `main` returns, whatever else holds
    // a clone of it (the layers below do, the tracing one for ever).
    let guard = client.close_on_drop();
    client.add_field("service.name", "tonic-example");
    // The handler's `#[instrument]` spans join each request's trace.
    tracing_subscriber::registry()
        .with(libhoney_tracing::HoneycombLayer::new(client.clone()).service_name("tonic-example"))
        .init();

    let addr = if demo {
        "127.0.0.1:0"
    } else {
        "127.0.0.1:50051"
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    println!("listening on http://{addr}");
    let layer = HoneycombLayer::from_client(client.clone());

    if demo {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(layer, listener, async {
            let _ = stopped.await;
        }));
        let mut greeter = GreeterClient::connect(format!("http://{addr}")).await?;
        for (method, name) in [("SayHello", "ada"), ("FindUser", "bob"), ("Crash", "eve")] {
            let reply = greeter.call(method, name).await;
            println!("{method}({name:?}) -> {reply:?}");
        }
        let _ = stop.send(());
        server.await??;
    } else {
        serve(layer, listener, shutdown_signal()).await?;
    }
    // Deliver what is queued without blocking the runtime (the guard would
    // do it on drop otherwise, blocking this thread for up to 10 s).
    guard.close_async(Duration::from_secs(5)).await?;
    drop(receiver);
    Ok(())
}
