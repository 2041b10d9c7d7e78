//! The layer without axum: a plain hyper 1 HTTP/1.1 server whose handler
//! is a `tower::service_fn` over `Request<hyper::body::Incoming>`, the stack
//! built per connection with the peer address. Real sockets, real client,
//! events read back from a real `libhoney-receiver`.

use crate::axum_example::raw_http;
use crate::common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use libhoney_receiver::{ReceivedEvent, Receiver};
use libhoney_tower::{fields, HoneycombEvent, HoneycombLayer};
use raw_http::{read_reply, send_request, write_request};
use tokio::net::{TcpListener, TcpStream};
use tower::{Layer, ServiceExt};

#[derive(Debug)]
struct HandlerError(&'static str);

impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for HandlerError {}

/// Does its own routing, and records the route itself.
async fn handler(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, HandlerError> {
    let ev = HoneycombEvent::from_request(&req).expect("the layer is installed");
    match req.uri().path() {
        "/hello" => {
            ev.add_field("greeting", "hi");
            Ok(Response::new(Full::new(Bytes::from_static(b"hi there"))))
        }
        path if path.starts_with("/upload/") => {
            ev.add_field(fields::REQUEST_ROUTE, "/upload/:name");
            let body = req
                .into_body()
                .collect()
                .await
                .map_err(|_| HandlerError("read"))?;
            Ok(Response::new(Full::new(body.to_bytes())))
        }
        _ => Err(HandlerError("database unavailable")),
    }
}

async fn serve(listener: TcpListener, layer: HoneycombLayer) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            return;
        };
        // Per connection: the layer stamps each request with the peer.
        let svc = layer
            .clone()
            .remote_addr(peer)
            .layer(tower::service_fn(handler));
        tokio::spawn(async move {
            let hyper_svc = hyper::service::service_fn(move |req| svc.clone().oneshot(req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), hyper_svc)
                .await;
        });
    }
}

fn wait_event(rx: &libhoney_receiver::RunningReceiver, path: &str) -> ReceivedEvent {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(ev) = rx
            .events()
            .into_iter()
            .find(|e| e.data[fields::REQUEST_PATH] == path)
        {
            return ev;
        }
        assert!(
            Instant::now() < deadline,
            "no event for {path}: {:?}",
            rx.events()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_hyper_server() {
    let rx = Receiver::builder().api_key("hyper-key").start().unwrap();
    let client = common::receiver_client(&rx, "hyper-key", "hyper");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, HoneycombLayer::from_client(client.clone())));

    let mut stream = TcpStream::connect(addr).await.unwrap();
    let local = stream.local_addr().unwrap();
    write_request(&mut stream, "GET", "/hello", &[], b"")
        .await
        .unwrap();
    let reply = read_reply(&mut stream).await.unwrap();
    assert_eq!(
        (reply.status, reply.body.as_slice()),
        (200, &b"hi there"[..])
    );

    let reply = send_request(addr, "POST", "/upload/a.txt", &[], &[7u8; 300])
        .await
        .unwrap();
    assert_eq!(reply.body.len(), 300);

    // A service error: hyper closes the connection without a response.
    assert!(send_request(addr, "GET", "/broken", &[], b"")
        .await
        .is_err());

    let rx = tokio::task::spawn_blocking(move || {
        let hello = wait_event(&rx, "/hello");
        let upload = wait_event(&rx, "/upload/a.txt");
        let broken = wait_event(&rx, "/broken");
        (hello, upload, broken)
    });
    let (hello, upload, broken) = rx.await.unwrap();

    assert_eq!(hello.dataset, "hyper");
    assert_eq!(
        hello.data[fields::REQUEST_ROUTE],
        "/hello",
        "no framework: the path"
    );
    assert_eq!(
        hello.data[fields::REQUEST_REMOTE_ADDR],
        local.to_string().as_str()
    );
    assert_eq!(hello.data[fields::RESPONSE_STATUS_CODE], 200);
    assert_eq!(hello.data[fields::RESPONSE_CONTENT_LENGTH], 8);
    assert_eq!(hello.data[fields::REQUEST_HTTP_VERSION], "HTTP/1.1");
    assert_eq!(hello.data["greeting"], "hi");
    assert!(hello.data[fields::DURATION_MS].is_f64());

    assert_eq!(
        upload.data[fields::REQUEST_ROUTE],
        "/upload/:name",
        "set by the handler"
    );
    assert_eq!(upload.data[fields::REQUEST_CONTENT_LENGTH], 300);
    assert_eq!(upload.data[fields::RESPONSE_CONTENT_LENGTH], 300);

    assert_eq!(broken.data[fields::ERROR], "database unavailable");
    assert!(broken.data.get(fields::RESPONSE_STATUS_CODE).is_none());

    client.close_async(Duration::from_secs(5)).await.unwrap();
}

/// The layer's response body works as a hyper body with `Infallible` errors
/// too (the common case of `Full`).
#[allow(dead_code)]
fn assert_hyper_body(_: libhoney_tower::ResponseBody<Full<Bytes>>)
where
    libhoney_tower::ResponseBody<Full<Bytes>>: hyper::body::Body<Data = Bytes, Error = Infallible>,
{
}
