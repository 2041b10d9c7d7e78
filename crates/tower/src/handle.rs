//! The per-request handle to the pending event, and how it is finished.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use libhoney::{Event, FieldName, SendError, Value};

use crate::fields;
use crate::trace::RequestTrace;

/// A cheap handle to the event of the request being served, for handlers to
/// add fields to it.
///
/// The layer creates one per request and puts it in the request's
/// extensions, so every handler and inner service can reach it:
/// - axum (feature `axum`): take it as an extractor, `ev: HoneycombEvent`
///   (or `Option<HoneycombEvent>` to know whether the layer is installed);
/// - hyper, or any `http::Request`: [`HoneycombEvent::from_request`], or
///   `req.extensions().get::<HoneycombEvent>()`;
/// - tonic: `request.extensions().get::<HoneycombEvent>()`.
///
/// **Cost.** Cloning is one atomic increment. Each [`add_field`](Self::add_field)
/// takes one lock, which is uncontended unless two tasks of the same request
/// write at once; it never waits on I/O or on the sending of the event.
///
/// **Lifetime.** The event is sent when the response body ends (or on error,
/// panic or cancellation); after that the handle is inert: adding returns
/// `false` and changes nothing. A handle that is kept does not delay the event.
///
/// ```
/// use libhoney_tower::HoneycombEvent;
/// # fn handle(req: http::Request<()>) {
/// if let Some(ev) = HoneycombEvent::from_request(&req) {
///     ev.add_field("user.id", 42);
///     ev.add_field("cache.hit", true);
/// }
/// # }
/// # handle(http::Request::new(()));
/// ```
#[derive(Clone)]
pub struct HoneycombEvent {
    shared: Arc<Shared>,
}

struct Shared {
    /// `None` once the event has been sent (or for a detached handle).
    event: Mutex<Option<Event>>,
    /// Did `request.route` come from the framework's route template?
    route_is_template: AtomicBool,
}

impl fmt::Debug for HoneycombEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HoneycombEvent")
            .field("pending", &self.is_pending())
            .finish()
    }
}

impl HoneycombEvent {
    pub(crate) fn new(event: Event, route_is_template: bool) -> Self {
        HoneycombEvent {
            shared: Arc::new(Shared {
                event: Mutex::new(Some(event)),
                route_is_template: AtomicBool::new(route_is_template),
            }),
        }
    }

    /// A handle attached to no event: every addition is discarded. Handy for
    /// calling handlers that take a `HoneycombEvent` in tests, or where the
    /// layer is not installed (the axum extractor returns one then).
    pub fn detached() -> Self {
        HoneycombEvent {
            shared: Arc::new(Shared {
                event: Mutex::new(None),
                route_is_template: AtomicBool::new(false),
            }),
        }
    }

    /// The handle the layer put in this request's extensions, if any. Costs
    /// one extension lookup and one atomic increment.
    pub fn from_request<B>(req: &http::Request<B>) -> Option<Self> {
        Self::from_extensions(req.extensions())
    }

    /// The handle in these extensions (of a request, or of its
    /// [`Parts`](http::request::Parts)), if any.
    pub fn from_extensions(extensions: &http::Extensions) -> Option<Self> {
        extensions.get::<HoneycombEvent>().cloned()
    }

    fn lock(&self) -> MutexGuard<'_, Option<Event>> {
        // A panic while the lock was held (in a `with_event` closure) leaves
        // the event usable: recover it rather than propagate the poison.
        self.shared
            .event
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds a field to the request's event; the last write of a name wins, so
    /// a handler can also override the middleware's fields (for example
    /// `request.route` in a hyper service that does its own routing, or
    /// `error` for a handled failure).
    ///
    /// Returns `false`, and does nothing, if the event was already sent or
    /// the handle is [detached](Self::detached). Takes one short lock; never
    /// blocks on I/O.
    pub fn add_field(&self, name: impl Into<FieldName>, value: impl Into<Value>) -> bool {
        let (name, value) = (name.into(), value.into());
        match self.lock().as_mut() {
            Some(event) => {
                event.add_field(name, value);
                true
            }
            None => false,
        }
    }

    /// Runs `f` on the pending [`Event`], under the handle's lock, for
    /// everything `add_field` does not cover: `Event::add` of a whole struct,
    /// a sample rate or dataset for this request, metadata. Returns `None`,
    /// without calling `f`, if the event was already sent or the handle is
    /// detached.
    ///
    /// Keep `f` short: other writers to this request's event wait for it.
    /// Do not call the event's `send`: it cannot be reached through `&mut`.
    pub fn with_event<R>(&self, f: impl FnOnce(&mut Event) -> R) -> Option<R> {
        self.lock().as_mut().map(f)
    }

    /// The current value of a field of the pending event (own or inherited
    /// from the client or builder), cloned; `None` if absent or already sent.
    pub fn get(&self, name: &str) -> Option<Value> {
        self.lock().as_ref().and_then(|ev| ev.get(name).cloned())
    }

    /// Is the event still waiting to be sent (and so still taking fields)?
    pub fn is_pending(&self) -> bool {
        self.lock().is_some()
    }

    /// Records `route` as `request.route` unless the route already came from
    /// the framework's template. Lock-free when it did.
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) fn set_route_template(&self, route: &str) {
        if self.shared.route_is_template.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(event) = self.lock().as_mut() {
            event.add_field(fields::REQUEST_ROUTE, route.to_owned());
        }
    }

    /// Takes the event out, so that it is sent exactly once.
    fn take(&self) -> Option<Event> {
        self.lock().take()
    }
}

/// How a request ended, as far as the event is concerned.
pub(crate) struct Outcome {
    pub(crate) status: Option<u16>,
    pub(crate) response_bytes: Option<u64>,
    pub(crate) grpc_status: Option<i64>,
    pub(crate) grpc_message: Option<String>,
    pub(crate) error: Option<String>,
}

impl Outcome {
    pub(crate) fn error(error: impl Into<String>) -> Self {
        Outcome {
            status: None,
            response_bytes: None,
            grpc_status: None,
            grpc_message: None,
            error: Some(error.into()),
        }
    }
}

/// Owns the duty to send a request's event once. Dropping it sends nothing:
/// the future and the body call [`Finisher::finish`] from their own `Drop`.
pub(crate) struct Finisher {
    pub(crate) handle: HoneycombEvent,
    pub(crate) start: Instant,
    pub(crate) trace: RequestTrace,
}

/// Has a request event been refused for want of an API key yet (in this
/// process)? Reported once, then only counted by the SDK's metrics.
static KEY_WARNED: AtomicBool = AtomicBool::new(false);

/// Is the route still the path the layer put there, that is, named neither by
/// the framework nor by the handler?
fn route_unnamed(event: &Event) -> bool {
    match (
        event.get(fields::REQUEST_ROUTE),
        event.get(fields::REQUEST_PATH),
    ) {
        (Some(route), Some(path)) => route == path,
        _ => false,
    }
}

impl Finisher {
    /// Adds the outcome and the duration, then sends (non-blocking). A send
    /// error (client closed, no API key...) is dropped: there is nobody to
    /// report it to, and the request must not fail because of it.
    pub(crate) fn finish(self, outcome: Outcome) {
        let Some(mut event) = self.handle.take() else {
            return;
        };
        if let Some(status) = outcome.status {
            event.add_field(fields::RESPONSE_STATUS_CODE, status);
        }
        if let Some(bytes) = outcome.response_bytes {
            event.add_field(fields::RESPONSE_CONTENT_LENGTH, bytes);
        }
        if let Some(grpc) = outcome.grpc_status {
            event.add_field(fields::RESPONSE_GRPC_STATUS, grpc);
        }
        if let Some(message) = outcome.grpc_message {
            event.add_field(fields::RESPONSE_GRPC_MESSAGE, message);
        }
        if let Some(error) = outcome.error {
            event.add_field(fields::ERROR, error);
        }
        // A 404 whose route nobody named (a scanner's path, axum's fallback)
        // gets one bounded route name instead of its path.
        if outcome.status == Some(404)
            && !self.handle.shared.route_is_template.load(Ordering::Acquire)
            && route_unnamed(&event)
        {
            event.add_field(fields::REQUEST_ROUTE, fields::UNMATCHED_ROUTE);
        }
        if event.get(fields::NAME).is_none() {
            let name = match (
                event.get(fields::REQUEST_METHOD).and_then(Value::as_str),
                event.get(fields::REQUEST_ROUTE).and_then(Value::as_str),
            ) {
                (Some(method), Some(route)) => format!("{method} {route}"),
                _ => "request".to_owned(),
            };
            event.add_field(fields::NAME, name);
        }
        let ms = self.start.elapsed().as_secs_f64() * 1000.0;
        event.add_field(fields::DURATION_MS, ms);
        if !self.trace.sampled {
            return; // the whole trace is dropped, by its trace id
        }
        let result = if cfg!(feature = "tracing") && event.sample_rate() > 1 {
            // Kept by the trace-id rule already; record the rate only.
            event.send_presampled()
        } else {
            event.send()
        };
        if result == Err(SendError::MissingApiKey) && !KEY_WARNED.swap(true, Ordering::Relaxed) {
            log::warn!(
                target: "libhoney_tower",
                "request events are not being sent to Honeycomb: no API key (set Config::api_key \
                 or HONEYCOMB_API_KEY); this is said once, the SDK's metrics count every refused event"
            );
        }
    }
}

/// The message of a panic payload, as `panic: <message>`.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let msg = if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.as_str()
    } else {
        "non-string panic payload"
    };
    format!("panic: {msg}")
}
