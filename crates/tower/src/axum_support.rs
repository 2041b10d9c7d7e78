//! axum extractors for [`HoneycombEvent`] (feature `axum`).

use std::convert::Infallible;

use axum::extract::{FromRequestParts, MatchedPath, OptionalFromRequestParts};
use http::request::Parts;

use crate::handle::HoneycombEvent;

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
