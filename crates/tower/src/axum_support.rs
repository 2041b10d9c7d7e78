//! axum extractors for [`HoneycombEvent`] (feature `axum`).

use std::convert::Infallible;

use axum::extract::{FromRequestParts, MatchedPath, OptionalFromRequestParts};
use http::request::Parts;

use crate::handle::HoneycombEvent;
use crate::layer::HoneycombLayer;

fn extract(parts: &Parts) -> Option<HoneycombEvent> {
    let handle = parts.extensions.get::<HoneycombEvent>()?.clone();
    // When the layer wraps the whole `Router` (rather than `Router::layer`),
    // routing happens after it and it only saw the path; the handler's
    // extensions know the template, so record it now.
    if let Some(template) = parts.extensions.get::<MatchedPath>() {
        handle.set_route_template(template.as_str());
    }
    Some(handle)
}

/// Extracts the request's event handle (feature `axum`):
/// `async fn handler(ev: HoneycombEvent) { ev.add_field("user.id", 7); }`.
///
/// Never rejects: without the layer it yields a
/// [detached](HoneycombEvent::detached) handle that discards fields (use
/// `Option<HoneycombEvent>` to tell). Costs an extension lookup and a clone;
/// if the layer wraps the whole `Router` instead of being added with
/// `Router::layer`, it also records axum's `MatchedPath` as `request.route`
/// (one lock), which the layer could not see.
impl<S: Send + Sync> FromRequestParts<S> for HoneycombEvent {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(extract(parts).unwrap_or_else(HoneycombEvent::detached))
    }
}

/// Extracts `Option<HoneycombEvent>`: `None` when the request did not go
/// through the layer (feature `axum`).
impl<S: Send + Sync> OptionalFromRequestParts<S> for HoneycombEvent {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(extract(parts))
    }
}

/// Records axum's `MatchedPath` as `request.route` from inside the router,
/// for a [`HoneycombLayer`] that wraps the whole router (see
/// [`HoneycombLayer::wrap_router`]).
#[derive(Debug, Clone, Copy)]
struct RecordRouteLayer;

impl<S> tower_layer::Layer<S> for RecordRouteLayer {
    type Service = RecordRoute<S>;
    fn layer(&self, inner: S) -> RecordRoute<S> {
        RecordRoute { inner }
    }
}

#[derive(Debug, Clone)]
struct RecordRoute<S> {
    inner: S,
}

impl<S, B> tower_service::Service<http::Request<B>> for RecordRoute<S>
where
    S: tower_service::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let ext = req.extensions();
        if let (Some(handle), Some(template)) =
            (ext.get::<HoneycombEvent>(), ext.get::<MatchedPath>())
        {
            handle.set_route_template(template.as_str());
        }
        self.inner.call(req)
    }
}

impl HoneycombLayer {
    /// Wraps a whole axum [`Router`](axum::Router) (feature `axum`): every
    /// request gets its event, the ones no route matches included, and the
    /// result is a `Router` again, which `axum::serve` takes as it is (with
    /// `into_make_service_with_connect_info` for `request.remote_addr`).
    ///
    /// `request.route` is still the route template: the layer runs before
    /// routing, and a small service added to `router` with `Router::layer`
    /// records axum's `MatchedPath` after it. Prefer plain
    /// `router.layer(honeycomb_layer)` unless you need the outer position
    /// (to time or see requests that other outer layers reject, say); both
    /// cost about the same per request.
    ///
    /// ```
    /// use axum::{routing::get, Router};
    /// use libhoney::{Client, Config, transmission::Mock};
    /// use libhoney_tower::HoneycombLayer;
    ///
    /// let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// let api = Router::new().route("/users/{id}", get(|| async { "user" }));
    /// let app: Router = HoneycombLayer::from_client(client).wrap_router(Router::new().nest("/api", api));
    /// // axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
    /// # let _ = app;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wrap_router(&self, router: axum::Router) -> axum::Router {
        use tower_layer::Layer;
        let inner = router.layer(RecordRouteLayer);
        axum::Router::new().fallback_service(self.layer(inner))
    }
}
