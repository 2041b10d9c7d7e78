//! The axum extractor, and the layer wrapping a whole `Router` (in process,
//! with the SDK's `Mock` transmission).

use crate::common;

use axum::body::Body;
use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use common::{int_field, mock_client, only_event, str_field};
use http::Request;
use http_body_util::BodyExt;
use libhoney_tower::{fields, HoneycombEvent, HoneycombLayer};
use tower::{Layer, ServiceExt};

async fn with_extractor(Path(id): Path<u32>, ev: HoneycombEvent) -> String {
    ev.add_field("item.id", id);
    format!("item {id}")
}

async fn without_extractor() -> &'static str {
    "plain"
}

async fn optional(ev: Option<HoneycombEvent>) -> &'static str {
    match ev {
        Some(_) => "layer",
        None => "no layer",
    }
}

async fn detached(ev: HoneycombEvent) -> String {
    format!("pending={}", ev.is_pending())
}

fn router() -> Router {
    Router::new()
        .route("/items/{id}", get(with_extractor))
        .route("/plain/{id}", get(without_extractor))
        .route("/optional", get(optional))
        .route("/detached", get(detached))
}

async fn call(
    svc: impl tower::Service<
        Request<Body>,
        Response = http::Response<impl http_body::Body<Error = impl std::fmt::Debug>>,
        Error = impl std::fmt::Debug,
    >,
    uri: &str,
) -> String {
    let res = svc
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn router_layer_records_the_template_and_the_extractor_enriches() {
    let (client, mock) = mock_client();
    let app = router().layer(HoneycombLayer::from_client(client));
    assert_eq!(call(app.clone(), "/items/9").await, "item 9");
    let ev = only_event(&mock);
    assert_eq!(str_field(&ev, fields::REQUEST_ROUTE), Some("/items/{id}"));
    assert_eq!(int_field(&ev, "item.id"), Some(9));
    mock.take_events();

    assert_eq!(call(app, "/optional").await, "layer");
}

#[tokio::test]
async fn outer_layer_sees_the_path_unless_the_extractor_records_the_template() {
    let (client, mock) = mock_client();
    // The layer wraps the whole router: it runs before routing.
    let app = HoneycombLayer::from_client(client).layer(router());

    assert_eq!(call(app.clone(), "/plain/5").await, "plain");
    let ev = only_event(&mock);
    assert_eq!(str_field(&ev, fields::REQUEST_ROUTE), Some("/plain/5"));
    mock.take_events();

    assert_eq!(call(app, "/items/3").await, "item 3");
    let ev = only_event(&mock);
    assert_eq!(
        str_field(&ev, fields::REQUEST_ROUTE),
        Some("/items/{id}"),
        "recorded by the extractor"
    );
    assert_eq!(str_field(&ev, fields::REQUEST_PATH), Some("/items/3"));
}

#[tokio::test]
async fn without_the_layer_the_extractor_is_detached_and_never_rejects() {
    let app = router();
    assert_eq!(call(app.clone(), "/optional").await, "no layer");
    assert_eq!(call(app.clone(), "/detached").await, "pending=false");
    assert_eq!(call(app, "/items/1").await, "item 1");
}
