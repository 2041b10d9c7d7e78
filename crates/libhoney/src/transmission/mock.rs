//! The `Mock` transmission, for tests.

use crate::sync::LockExt;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::{Context, QueuedEvent, Responder, Transmission};
use crate::error::{CloseError, ConfigError, FlushError};
use crate::response::Response;

type ResponseFn = dyn Fn(&QueuedEvent) -> Response + Send + Sync;

/// Records every event and answers each at once (by default with status 202),
/// counting flushes and closes. For your own tests: keep a clone, give another
/// to [`Config::transmission`](crate::Config::transmission), then inspect.
///
/// It proves what your code sends, not the wire path: for that, test against
/// the local receiver (`libhoney-receiver`).
///
/// ```
/// use libhoney::{Client, Config, ResponseError, transmission::Mock};
/// let mock = Mock::new().respond_with(|ev| {
///     if ev.get("fail").is_some() {
///         libhoney::Response::failure(None, ResponseError::Rejected("nope".into())).with_status(400)
///     } else {
///         libhoney::Response::success(None, Some(202), std::time::Duration::ZERO)
///     }
/// });
/// let client = Client::new(Config::new().api_key("k").dataset("d").transmission(mock.clone())).unwrap();
/// let mut ev = client.new_event();
/// ev.add_field("fail", true);
/// ev.send().unwrap();
/// client.close().unwrap();
/// assert_eq!(mock.events().len(), 1);
/// assert_eq!(mock.close_count(), 1);
/// assert_eq!(client.responses().recv().unwrap().status_code, Some(400));
/// ```
#[derive(Clone, Default)]
pub struct Mock {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    events: Mutex<Vec<QueuedEvent>>,
    responder: OnceLock<Responder>,
    respond_with: Mutex<Option<Arc<ResponseFn>>>,
    flushes: AtomicUsize,
    closes: AtomicUsize,
}

impl fmt::Debug for Mock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mock")
            .field("events", &self.len())
            .field("flushes", &self.flush_count())
            .field("closes", &self.close_count())
            .finish()
    }
}

impl Mock {
    /// A new mock; answers every event with a 202 success. Keep a clone to
    /// inspect it after handing one to a client.
    ///
    /// ```
    /// use libhoney::{Client, Config, transmission::Mock};
    /// let mock = Mock::new();
    /// let client = Client::new(Config::new().api_key("k").dataset("d").transmission(mock.clone()))?;
    /// let mut ev = client.new_event();
    /// ev.add_field("x", 1);
    /// ev.send()?;
    /// assert_eq!(mock.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> Self {
        Mock::default()
    }

    /// Answers each event with `f(event)` instead (the event's metadata is put
    /// on the response for you), replacing any earlier `respond_with`.
    ///
    /// It applies to every clone of this mock, from the next event on, so it
    /// can be set before or after the mock is handed to a client. `f` runs on
    /// the thread that calls `send`, while no lock is held.
    #[must_use = "a by-value setter returns the changed value: use it"]
    pub fn respond_with(
        self,
        f: impl Fn(&QueuedEvent) -> Response + Send + Sync + 'static,
    ) -> Self {
        *self.inner.respond_with.lock_unpoisoned() = Some(Arc::new(f));
        self
    }

    /// A copy of every event received so far, in order. Costs a clone of each
    /// (fields are shared by reference count); holds the mock's lock meanwhile.
    pub fn events(&self) -> Vec<QueuedEvent> {
        self.inner.events.lock_unpoisoned().clone()
    }

    /// Takes the events received so far, leaving none. Costs nothing more than
    /// the lock.
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let mock = Mock::new();
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(mock.clone()))?;
    /// let mut ev = client.new_event();
    /// ev.add_field("x", 1);
    /// ev.send()?;
    /// assert_eq!(mock.take_events().len(), 1);
    /// assert!(mock.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn take_events(&self) -> Vec<QueuedEvent> {
        std::mem::take(&mut *self.inner.events.lock_unpoisoned())
    }

    /// How many events were received (taken ones excluded).
    pub fn len(&self) -> usize {
        self.inner.events.lock_unpoisoned().len()
    }

    /// Were no events received (or all taken)?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many times `flush` was called (by [`Client::flush`](crate::Client::flush)).
    pub fn flush_count(&self) -> usize {
        self.inner.flushes.load(Ordering::SeqCst)
    }

    /// How many times `close` was called (once per client: by
    /// [`Client::close`](crate::Client::close) or when its last handle was dropped).
    pub fn close_count(&self) -> usize {
        self.inner.closes.load(Ordering::SeqCst)
    }
}

impl Transmission for Mock {
    fn start(&self, ctx: Context) -> Result<(), ConfigError> {
        self.inner
            .responder
            .set(ctx.responder.clone())
            .map_err(|_| ConfigError::TransmissionInUse {
                transmission: "Mock",
            })
    }

    fn send(&self, mut ev: QueuedEvent) {
        let metadata = ev.take_metadata();
        let respond_with = self.inner.respond_with.lock_unpoisoned().clone();
        let mut response = match respond_with {
            Some(f) => f(&ev),
            None => Response::success(None, Some(202), Duration::ZERO),
        };
        response.metadata = metadata.clone();
        ev.metadata = metadata;
        self.inner.events.lock_unpoisoned().push(ev);
        if let Some(r) = self.inner.responder.get() {
            r.respond(response);
        }
    }

    fn flush(&self, _timeout: Duration) -> Result<(), FlushError> {
        self.inner.flushes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn close(&self, _timeout: Duration) -> Result<(), CloseError> {
        self.inner.closes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}
