//! In-process tests of the layer with the SDK's `Mock` transmission: which
//! fields each kind of request produces, and that exactly one event is sent
//! whatever happens to the request.

use crate::common;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use common::{int_field, mock_client, only_event, str_field, Scripted, Step, TestError};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Empty, Full};
use libhoney_tower::{fields, HoneycombEvent, HoneycombLayer, PanicPolicy, RemoteAddr};
use tower::{service_fn, Layer, Service, ServiceBuilder, ServiceExt};

fn ok(body: &'static str) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(
        body.as_bytes(),
    ))))
}

fn get(uri: &str) -> Request<Full<Bytes>> {
    Request::get(uri).body(Full::new(Bytes::new())).unwrap()
}

async fn drain<B: Body + Unpin>(body: B) -> Vec<u8>
where
    B::Error: std::fmt::Debug,
{
    body.collect().await.unwrap().to_bytes().to_vec()
}

#[tokio::test]
async fn records_request_and_response_fields() {
    let (client, mock) = mock_client();
    let mut builder = client.new_builder();
    builder
        .set_dataset("web")
        .add_field("service.name", "orders");
    let before = SystemTime::now();
    let svc = HoneycombLayer::from_builder(builder).layer(service_fn(|_req| async {
        let mut res = Response::new(Full::new(Bytes::from_static(b"created!")));
        *res.status_mut() = StatusCode::CREATED;
        Ok::<_, Infallible>(res)
    }));
    let req = Request::post("http://example.com:8080/orders/17?token=secret")
        .header("user-agent", "curl/8.0")
        .header("content-length", "3")
        .body(Full::new(Bytes::from_static(b"abc")))
        .unwrap();
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(drain(res.into_body()).await, b"created!");

    let ev = only_event(&mock);
    assert_eq!(ev.dataset(), "web", "the builder's dataset");
    assert_eq!(
        str_field(&ev, "service.name"),
        Some("orders"),
        "builder field"
    );
    assert_eq!(str_field(&ev, fields::REQUEST_METHOD), Some("POST"));
    assert_eq!(str_field(&ev, fields::REQUEST_PATH), Some("/orders/17"));
    assert_eq!(str_field(&ev, fields::REQUEST_ROUTE), Some("/orders/17"));
    assert_eq!(
        str_field(&ev, fields::REQUEST_HTTP_VERSION),
        Some("HTTP/1.1")
    );
    assert_eq!(
        str_field(&ev, fields::REQUEST_HOST),
        Some("example.com:8080")
    );
    assert_eq!(str_field(&ev, fields::REQUEST_USER_AGENT), Some("curl/8.0"));
    assert_eq!(int_field(&ev, fields::REQUEST_CONTENT_LENGTH), Some(3));
    assert_eq!(int_field(&ev, fields::RESPONSE_STATUS_CODE), Some(201));
    assert_eq!(int_field(&ev, fields::RESPONSE_CONTENT_LENGTH), Some(8));
    let ms = ev.get(fields::DURATION_MS).unwrap();
    assert!(
        matches!(ms, libhoney::Value::Float(f) if *f >= 0.0),
        "{ms:?}"
    );
    assert!(ev.get(fields::ERROR).is_none());
    assert!(
        ev.get(fields::REQUEST_REMOTE_ADDR).is_none(),
        "unknown here"
    );
    assert!(ev.get(fields::RESPONSE_GRPC_STATUS).is_none());
    assert!(
        ev.fields()
            .all(|(_, v)| v.as_str() != Some("secret")
                && !v.as_str().unwrap_or("").contains("token")),
        "the query string is not recorded"
    );
    assert!(ev.timestamp() >= before && ev.timestamp() <= SystemTime::now());
}

#[tokio::test]
async fn host_header_size_hint_and_unknown_length() {
    let (client, mock) = mock_client();
    let layer = HoneycombLayer::from_client(client);

    // Origin-form URI: the host comes from the header; no Content-Length
    // header: the length comes from the body's exact size hint.
    let svc = layer.layer(service_fn(|_req: Request<Full<Bytes>>| async { ok("") }));
    let req = Request::put("/things/1")
        .header("host", "api.local")
        .body(Full::new(Bytes::from_static(b"12345")))
        .unwrap();
    svc.oneshot(req).await.unwrap();
    let ev = only_event(&mock);
    assert_eq!(str_field(&ev, fields::REQUEST_HOST), Some("api.local"));
    assert_eq!(int_field(&ev, fields::REQUEST_CONTENT_LENGTH), Some(5));
    assert_eq!(
        int_field(&ev, fields::RESPONSE_CONTENT_LENGTH),
        Some(0),
        "an empty body is finished at once, without being polled"
    );
    mock.take_events();

    // A streaming request body of unknown size: no request.content_length,
    // and no host or user agent when none is sent.
    let svc = layer.layer(service_fn(|_req: Request<Scripted>| async { ok("") }));
    let req = Request::post("/upload")
        .body(Scripted::new([Step::Data(b"abc")]))
        .unwrap();
    svc.oneshot(req).await.unwrap();
    let ev = only_event(&mock);
    assert!(ev.get(fields::REQUEST_CONTENT_LENGTH).is_none());
    assert!(ev.get(fields::REQUEST_HOST).is_none());
    assert!(ev.get(fields::REQUEST_USER_AGENT).is_none());
}

#[tokio::test]
async fn client_source_sees_global_fields_at_request_time() {
    let (client, mock) = mock_client();
    let svc = HoneycombLayer::from(client.clone())
        .layer(service_fn(|_req: Request<Full<Bytes>>| async { ok("") }));
    client.add_field("build_id", "abc123"); // after the layer was made
    svc.oneshot(get("/")).await.unwrap();
    let ev = only_event(&mock);
    assert_eq!(ev.dataset(), "test-dataset");
    assert_eq!(str_field(&ev, "build_id"), Some("abc123"));
}

#[tokio::test]
async fn remote_addr_sources_and_precedence() {
    let (client, mock) = mock_client();
    let conn: SocketAddr = "10.0.0.1:1111".parse().unwrap();
    let ext: SocketAddr = "10.0.0.2:2222".parse().unwrap();
    let axum_info: SocketAddr = "10.0.0.3:3333".parse().unwrap();
    let svc = HoneycombLayer::from_client(client)
        .remote_addr(conn)
        .layer(service_fn(|_req: Request<Full<Bytes>>| async { ok("") }));

    let plain = get("/a");
    let mut with_ext = get("/b");
    with_ext.extensions_mut().insert(RemoteAddr(ext));
    let mut with_axum = get("/c");
    with_axum
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(axum_info));
    let mut with_both = get("/d");
    with_both
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(axum_info));
    with_both.extensions_mut().insert(RemoteAddr(ext));
    for req in [plain, with_ext, with_axum, with_both] {
        svc.clone().oneshot(req).await.unwrap();
    }
    let got: Vec<(String, String)> = mock
        .events()
        .iter()
        .map(|ev| {
            (
                str_field(ev, fields::REQUEST_PATH).unwrap().to_owned(),
                str_field(ev, fields::REQUEST_REMOTE_ADDR)
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    let want = [
        ("/a", "10.0.0.1:1111"),
        ("/b", "10.0.0.2:2222"),
        ("/c", "10.0.0.3:3333"),
        ("/d", "10.0.0.2:2222"),
    ]
    .map(|(p, a)| (p.to_owned(), a.to_owned()));
    assert_eq!(got, want);
}

#[tokio::test]
async fn handlers_enrich_the_event_through_the_handle() {
    let (client, mock) = mock_client();
    let (keep_tx, keep_rx) = std::sync::mpsc::channel::<HoneycombEvent>();
    let svc =
        HoneycombLayer::from_client(client).layer(service_fn(move |req: Request<Full<Bytes>>| {
            let keep_tx = keep_tx.clone();
            async move {
                let ev = HoneycombEvent::from_request(&req).expect("the layer inserts a handle");
                assert!(ev.is_pending());
                assert!(ev.add_field("user.id", 42));
                assert!(
                    ev.add_field(fields::REQUEST_ROUTE, "/users/{id}"),
                    "override"
                );
                let same = req.extensions().get::<HoneycombEvent>().unwrap();
                same.add_field("cart.items", 3);
                ev.with_event(|e| {
                    e.add_field("payment.method", "card");
                    e.set_sample_rate(1);
                })
                .expect("pending");
                assert_eq!(ev.get("user.id").and_then(|v| v.as_i64()), Some(42));
                assert_eq!(
                    ev.get(fields::REQUEST_METHOD).unwrap().as_str(),
                    Some("GET"),
                    "the middleware's fields are visible to the handler"
                );
                keep_tx.send(ev).unwrap();
                ok("")
            }
        }));
    svc.oneshot(get("/users/42")).await.unwrap();
    let ev = only_event(&mock);
    assert_eq!(int_field(&ev, "user.id"), Some(42));
    assert_eq!(int_field(&ev, "cart.items"), Some(3));
    assert_eq!(str_field(&ev, "payment.method"), Some("card"));
    assert_eq!(str_field(&ev, fields::REQUEST_ROUTE), Some("/users/{id}"));

    // A handle kept past the end of the request is inert.
    let kept = keep_rx.recv().unwrap();
    assert!(!kept.is_pending());
    assert!(!kept.add_field("late", true));
    assert!(kept.with_event(|_| ()).is_none());
    assert!(kept.get("user.id").is_none());
    assert_eq!(mock.len(), 1, "nothing is sent twice");
}

#[test]
fn detached_handle_discards_fields() {
    let ev = HoneycombEvent::detached();
    assert!(!ev.is_pending());
    assert!(!ev.add_field("x", 1));
    assert!(ev.with_event(|_| ()).is_none());
    assert!(HoneycombEvent::from_request(&Request::new(())).is_none());
    assert!(format!("{ev:?}").contains("HoneycombEvent"));
}

#[tokio::test]
async fn service_error_is_recorded_and_returned() {
    let (client, mock) = mock_client();
    let svc =
        HoneycombLayer::from_client(client).layer(service_fn(|_req: Request<Full<Bytes>>| async {
            Err::<Response<Full<Bytes>>, _>(TestError("database unavailable"))
        }));
    let err = svc.oneshot(get("/orders")).await.unwrap_err();
    assert_eq!(err.to_string(), "database unavailable", "passed through");
    let ev = only_event(&mock);
    assert_eq!(str_field(&ev, fields::ERROR), Some("database unavailable"));
    assert!(ev.get(fields::RESPONSE_STATUS_CODE).is_none());
    assert!(ev.get(fields::DURATION_MS).unwrap().as_f64().is_some());
}

#[tokio::test]
async fn a_panicking_handler_becomes_a_500_by_default() {
    let (client, mock) = mock_client();
    let svc = HoneycombLayer::from_client(client).layer(service_fn(
        |_req: Request<Full<Bytes>>| async move {
            if true {
                panic!("boom {}", 3);
            }
            ok("unreachable")
        },
    ));
    let res = svc.oneshot(get("/explode")).await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(res.body().is_end_stream());
    assert!(drain(res.into_body()).await.is_empty());
    let ev = only_event(&mock);
    assert_eq!(str_field(&ev, fields::ERROR), Some("panic: boom 3"));
    assert_eq!(int_field(&ev, fields::RESPONSE_STATUS_CODE), Some(500));
    assert_eq!(int_field(&ev, fields::RESPONSE_CONTENT_LENGTH), Some(0));
}

#[tokio::test]
async fn a_panic_is_resumed_with_the_resume_policy() {
    let (client, mock) = mock_client();
    let svc = HoneycombLayer::from_client(client)
        .on_panic(PanicPolicy::Resume)
        .layer(service_fn(|_req: Request<Full<Bytes>>| async move {
            if true {
                panic!("static message");
            }
            ok("unreachable")
        }));
    let joined = tokio::spawn(svc.oneshot(get("/explode"))).await;
    let payload = joined.unwrap_err().into_panic();
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"static message"),
        "the original panic"
    );
    let ev = only_event(&mock);
    assert_eq!(str_field(&ev, fields::ERROR), Some("panic: static message"));
    assert!(ev.get(fields::RESPONSE_STATUS_CODE).is_none());
}

/// A service whose `call` itself panics (not its future).
#[derive(Clone)]
struct PanicsInCall;

impl Service<Request<Full<Bytes>>> for PanicsInCall {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: Request<Full<Bytes>>) -> Self::Future {
        panic!("call failed")
    }
}

#[tokio::test]
async fn a_panic_in_call_is_caught_too() {
    let (client, mock) = mock_client();
    let layer = HoneycombLayer::from_client(client);
    let res = layer
        .layer(PanicsInCall)
        .oneshot(get("/sync"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let ev = only_event(&mock);
    assert_eq!(str_field(&ev, fields::ERROR), Some("panic: call failed"));
    assert_eq!(int_field(&ev, fields::RESPONSE_STATUS_CODE), Some(500));

    let resume = layer.on_panic(PanicPolicy::Resume).layer(PanicsInCall);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut resume = resume;
        drop(resume.call(get("/sync2")));
    }));
    assert!(caught.is_err(), "resumed");
    assert_eq!(mock.len(), 2);
    assert!(mock.events()[1].get(fields::RESPONSE_STATUS_CODE).is_none());
}

fn never_responds() -> impl Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send,
> + Clone {
    service_fn(|_req: Request<Full<Bytes>>| async {
        std::future::pending::<()>().await;
        ok("never")
    })
}

#[tokio::test]
async fn an_outer_timeout_cancels_the_request() {
    let (client, mock) = mock_client();
    let svc = ServiceBuilder::new()
        .timeout(Duration::from_millis(20))
        .layer(HoneycombLayer::from_client(client))
        .service(never_responds());
    let err = svc.oneshot(get("/slow")).await.unwrap_err();
    assert_eq!(err.to_string(), "request timed out");
    let ev = only_event(&mock);
    assert_eq!(str_field(&ev, fields::ERROR), Some(fields::CANCELLED));
    assert!(ev.get(fields::RESPONSE_STATUS_CODE).is_none());
    assert!(ev.get(fields::DURATION_MS).unwrap().as_f64().is_some());
}

#[tokio::test]
async fn an_inner_timeout_is_a_service_error() {
    let (client, mock) = mock_client();
    let svc = ServiceBuilder::new()
        .layer(HoneycombLayer::from_client(client))
        .timeout(Duration::from_millis(20))
        .service(never_responds());
    svc.oneshot(get("/slow")).await.unwrap_err();
    let ev = only_event(&mock);
    assert_eq!(str_field(&ev, fields::ERROR), Some("request timed out"));
}

#[tokio::test]
async fn dropping_the_future_sends_a_cancelled_event() {
    let (client, mock) = mock_client();
    let mut svc = HoneycombLayer::from_client(client).layer(never_responds());
    let mut fut = Box::pin(svc.call(get("/dropped")));
    std::future::poll_fn(|cx| {
        assert!(fut.as_mut().poll(cx).is_pending());
        Poll::Ready(())
    })
    .await;
    assert!(mock.is_empty(), "nothing before the end");
    drop(fut);
    let ev = only_event(&mock);
    assert_eq!(str_field(&ev, fields::ERROR), Some(fields::CANCELLED));

    // Dropped before it was ever polled: still one event.
    drop(svc.call(get("/never-polled")));
    assert_eq!(mock.len(), 2);
}

#[tokio::test]
async fn streaming_bodies_are_counted_and_sent_at_their_end() {
    let (client, mock) = mock_client();
    let svc =
        HoneycombLayer::from_client(client).layer(service_fn(|_req: Request<Full<Bytes>>| async {
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", "5".parse().unwrap());
            let body = Scripted::new([
                Step::Data(b"12345"),
                Step::Data(b"1234567"),
                Step::Data(b"123456789"),
                Step::Trailers(trailers),
            ]);
            Ok::<_, Infallible>(Response::new(body))
        }));
    let res = svc.oneshot(get("/stream")).await.unwrap();
    assert!(mock.is_empty(), "sent at the end of the body, not before");
    let mut body = res.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert_eq!(first.into_data().unwrap().len(), 5);
    assert!(mock.is_empty());
    let rest = body.collect().await.unwrap();
    assert_eq!(rest.trailers().unwrap()["grpc-status"], "5");
    let ev = only_event(&mock);
    assert_eq!(int_field(&ev, fields::RESPONSE_CONTENT_LENGTH), Some(21));
    assert_eq!(int_field(&ev, fields::RESPONSE_GRPC_STATUS), Some(5));
    assert!(ev.get(fields::ERROR).is_none());
}

#[tokio::test]
async fn grpc_status_in_headers_is_recorded() {
    let (client, mock) = mock_client();
    let svc =
        HoneycombLayer::from_client(client).layer(service_fn(|_req: Request<Full<Bytes>>| async {
            let res = Response::builder()
                .header("grpc-status", "14")
                .body(Empty::<Bytes>::new())
                .unwrap();
            Ok::<_, Infallible>(res)
        }));
    svc.oneshot(get("/pkg.Service/Method")).await.unwrap();
    assert_eq!(
        int_field(&only_event(&mock), fields::RESPONSE_GRPC_STATUS),
        Some(14)
    );
}

fn scripted_service(
    steps: fn() -> Vec<Step>,
) -> impl Service<Request<Full<Bytes>>, Response = Response<Scripted>, Error = Infallible> + Clone {
    service_fn(move |_req: Request<Full<Bytes>>| async move {
        Ok::<_, Infallible>(Response::new(Scripted::new(steps())))
    })
}

#[tokio::test]
async fn a_failing_body_is_recorded() {
    let (client, mock) = mock_client();
    let svc = HoneycombLayer::from_client(client).layer(scripted_service(|| {
        vec![Step::Data(b"abc"), Step::Fail("disk gone")]
    }));
    let res = svc.oneshot(get("/file")).await.unwrap();
    let err = res.into_body().collect().await.unwrap_err();
    assert_eq!(err.to_string(), "disk gone");
    let ev = only_event(&mock);
    assert_eq!(
        str_field(&ev, fields::ERROR),
        Some("response body error: disk gone")
    );
    assert_eq!(int_field(&ev, fields::RESPONSE_CONTENT_LENGTH), Some(3));
    assert_eq!(int_field(&ev, fields::RESPONSE_STATUS_CODE), Some(200));
}

#[tokio::test]
async fn a_body_dropped_midway_is_recorded() {
    let (client, mock) = mock_client();
    let svc = HoneycombLayer::from_client(client).layer(scripted_service(|| {
        vec![Step::Data(b"abcd"), Step::Data(b"efgh")]
    }));
    let res = svc.oneshot(get("/download")).await.unwrap();
    let mut body = res.into_body();
    body.frame().await.unwrap().unwrap();
    drop(body); // the client went away mid-stream
    let ev = only_event(&mock);
    assert_eq!(str_field(&ev, fields::ERROR), Some(fields::BODY_DROPPED));
    assert_eq!(int_field(&ev, fields::RESPONSE_CONTENT_LENGTH), Some(4));
}

#[tokio::test]
async fn bodies_servers_do_not_read_are_not_errors() {
    let (client, mock) = mock_client();
    let layer = HoneycombLayer::from_client(client);

    // HEAD: the server drops the body unread.
    let svc = layer.layer(scripted_service(|| vec![Step::Data(b"abcd")]));
    let head = Request::head("/h").body(Full::new(Bytes::new())).unwrap();
    drop(svc.oneshot(head).await.unwrap());

    // All Content-Length bytes sent: the server stops without polling for
    // the end.
    let svc = layer.layer(service_fn(|_req: Request<Full<Bytes>>| async {
        let res = Response::builder()
            .header("content-length", "4")
            .body(Scripted::new([Step::Data(b"abcd"), Step::Data(b"")]))
            .unwrap();
        Ok::<_, Infallible>(res)
    }));
    let res = svc.oneshot(get("/cl")).await.unwrap();
    let mut body = res.into_body();
    body.frame().await.unwrap().unwrap();
    drop(body);

    // 204 No Content.
    let svc = layer.layer(service_fn(|_req: Request<Full<Bytes>>| async {
        let res = Response::builder()
            .status(204)
            .body(Scripted::new([]))
            .unwrap();
        Ok::<_, Infallible>(res)
    }));
    drop(svc.oneshot(get("/nc")).await.unwrap());

    let events = mock.events();
    assert_eq!(events.len(), 3);
    for ev in &events {
        assert!(ev.get(fields::ERROR).is_none(), "{ev:?}");
    }
    assert_eq!(
        int_field(&events[0], fields::RESPONSE_CONTENT_LENGTH),
        Some(0)
    );
    assert_eq!(
        int_field(&events[1], fields::RESPONSE_CONTENT_LENGTH),
        Some(4)
    );
    assert_eq!(
        int_field(&events[2], fields::RESPONSE_STATUS_CODE),
        Some(204)
    );
}

#[tokio::test]
async fn a_panicking_body_is_recorded_then_resumed() {
    let (client, mock) = mock_client();
    let svc = HoneycombLayer::from_client(client).layer(scripted_service(|| {
        vec![Step::Data(b"ab"), Step::Panic("body broke")]
    }));
    let res = svc.oneshot(get("/gen")).await.unwrap();
    let mut body = res.into_body();
    body.frame().await.unwrap().unwrap();
    let caught = std::future::poll_fn(|cx| {
        Poll::Ready(std::panic::catch_unwind(std::panic::AssertUnwindSafe(
            || {
                let _ = pin!(&mut body).poll_frame(cx);
            },
        )))
    })
    .await;
    assert!(caught.is_err(), "the body's panic is resumed");
    drop(body);
    let ev = only_event(&mock);
    assert_eq!(str_field(&ev, fields::ERROR), Some("panic: body broke"));
    assert_eq!(int_field(&ev, fields::RESPONSE_CONTENT_LENGTH), Some(2));
}

#[tokio::test]
async fn a_closed_client_never_fails_a_request() {
    let (client, mock) = mock_client();
    let svc = HoneycombLayer::from_client(client.clone()).layer(service_fn(
        |_req: Request<Full<Bytes>>| async { ok("still fine") },
    ));
    client.close().unwrap();
    let res = svc.oneshot(get("/")).await.unwrap();
    assert_eq!(drain(res.into_body()).await, b"still fine");
    assert!(mock.is_empty(), "the send failed quietly");
}
