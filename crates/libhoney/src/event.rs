//! Events: one wide, structured record of something that happened.

use std::any::Any;
use std::fmt;
use std::time::SystemTime;

use crate::client::Client;
use crate::destination::Destination;
use crate::error::{FieldError, SendError};
use crate::fields::LayeredFields;
use crate::response::Metadata;
use crate::value::{FieldName, Value};

/// One event: fields, optional metadata, a timestamp, and where it goes.
///
/// Create one with [`Client::new_event`](crate::Client::new_event) or
/// [`Builder::new_event`](crate::Builder::new_event); it inherits their fields
/// and settings. Sending consumes it, so it cannot be changed after `send` or
/// sent twice.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use libhoney::{Client, Config, transmission::Mock};
/// let mock = Mock::new();
/// let client = Client::new(Config::new().api_key("k").dataset("d").transmission(mock.clone())).unwrap();
///
/// let mut ev = client.new_event();
/// ev.add_field("method", "GET")
///   .add_field("status", 200)
///   .add_field("duration_ms", 12.5)
///   .add_field("cache_hit", true);
/// ev.add_metadata(17u64); // handed back on the response, never sent
/// ev.set_timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
/// ev.set_dataset("requests");
/// ev.send().unwrap();
///
/// let sent = &mock.events()[0];
/// assert_eq!(sent.dataset(), "requests");
/// assert_eq!(sent.get("status").unwrap().as_i64(), Some(200));
/// ```
#[must_use = "an event is sent only by `send()`: dropping it discards it"]
pub struct Event {
    pub(crate) client: Client,
    pub(crate) fields: LayeredFields,
    pub(crate) dest: Destination,
    pub(crate) sample_rate: u32,
    pub(crate) timestamp: SystemTime,
    pub(crate) metadata: Option<Metadata>,
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_event(
            f,
            "Event",
            &self.dest,
            self.sample_rate,
            &self.timestamp,
            &self.fields,
            &self.metadata,
        )
    }
}

/// The Debug output of an event, the same for an [`Event`] and for the
/// [`QueuedEvent`](crate::transmission::QueuedEvent) it becomes: `name`, then
/// its destination, sample rate, timestamp, fields (as a map) and metadata.
pub(crate) fn debug_event(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    dest: &Destination,
    sample_rate: u32,
    timestamp: &SystemTime,
    fields: &LayeredFields,
    metadata: &Option<Metadata>,
) -> fmt::Result {
    f.debug_struct(name)
        .field("dest", dest)
        .field("sample_rate", &sample_rate)
        .field("timestamp", timestamp)
        .field("fields", &FieldsDebug(fields))
        .field("metadata", metadata)
        .finish()
}

struct FieldsDebug<'a>(&'a LayeredFields);

impl fmt::Debug for FieldsDebug<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| (k.as_str(), v)))
            .finish()
    }
}

impl Event {
    /// Sets a field. The last write of a key wins, over inherited, dynamic and
    /// earlier own fields. Costs one insertion (a short scan, or a hash lookup
    /// for events with many fields); never blocks.
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// let mut ev = client.new_event();
    /// ev.add_field("status", 200).add_field("status", 500);
    /// assert_eq!(ev.get("status").and_then(|v| v.as_i64()), Some(500));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_field(&mut self, name: impl Into<FieldName>, value: impl Into<Value>) -> &mut Self {
        self.fields.own.insert(name.into(), value.into());
        self
    }

    /// Adds every top-level key of a struct or map as a field (nested values are
    /// sent as nested JSON).
    ///
    /// # Errors
    /// [`FieldError::NotAnObject`] if `data` is not a struct or map,
    /// [`FieldError::Serialize`] if it cannot be serialized. Nothing is added then.
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Discard};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Discard::new())).unwrap();
    /// #[derive(serde::Serialize)]
    /// struct Request<'a> { method: &'a str, path: &'a str, status: u16 }
    /// let mut ev = client.new_event();
    /// ev.add(&Request { method: "GET", path: "/", status: 200 }).unwrap();
    /// assert_eq!(ev.get("status").unwrap().as_i64(), Some(200));
    /// assert!(ev.add(&vec![1, 2, 3]).is_err());
    /// ```
    pub fn add<T: serde::Serialize + ?Sized>(&mut self, data: &T) -> Result<&mut Self, FieldError> {
        let entries = crate::ser::fields_of(data)?;
        self.fields.own.extend(entries);
        Ok(self)
    }

    /// Attaches metadata: never sent, handed back on this event's
    /// [`Response`](crate::Response) so you can match responses to events.
    /// Replaces earlier metadata. Costs one allocation.
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// let mut ev = client.new_event();
    /// ev.add_field("x", 1).add_metadata(("order", 42u64));
    /// ev.send()?;
    /// let r = client.responses().try_recv()?;
    /// assert_eq!(r.metadata.unwrap().downcast_ref::<(&str, u64)>(), Some(&("order", 42)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_metadata<T: Any + Send + Sync>(&mut self, metadata: T) -> &mut Self {
        self.metadata = Some(Metadata::new(metadata));
        self
    }

    /// Attaches already wrapped metadata (for example, one [`Metadata`] shared by
    /// several events). Costs a reference count.
    pub fn set_metadata(&mut self, metadata: Metadata) -> &mut Self {
        self.metadata = Some(metadata);
        self
    }

    /// The attached metadata. Costs nothing.
    pub fn metadata(&self) -> Option<&Metadata> {
        self.metadata.as_ref()
    }

    /// Sets the event's time (it defaults to when the event was created). Use
    /// it to back-date an event to when its work started. A time outside the
    /// years 0000 to 9999 (which RFC 3339, the Events API's time format,
    /// cannot express) makes [`send`](Event::send) fail with
    /// [`SendError::TimestampOutOfRange`].
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// let started = std::time::SystemTime::now();
    /// // ... the work ...
    /// let mut ev = client.new_event();
    /// ev.add_field("duration_ms", started.elapsed()?.as_secs_f64() * 1000.0);
    /// ev.set_timestamp(started);
    /// assert_eq!(ev.timestamp(), started);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_timestamp(&mut self, timestamp: SystemTime) -> &mut Self {
        self.timestamp = timestamp;
        self
    }

    /// The event's time. Costs nothing.
    pub fn timestamp(&self) -> SystemTime {
        self.timestamp
    }

    /// Sets this event's sample rate (see [`send`](Event::send)). 0 makes `send`
    /// fail with [`SendError::ZeroSampleRate`].
    pub fn set_sample_rate(&mut self, rate: u32) -> &mut Self {
        self.sample_rate = rate;
        self
    }

    /// The event's sample rate. Costs nothing.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Sets this event's API key (the dataset rules are applied again for it).
    #[doc(alias = "writekey")]
    pub fn set_api_key(&mut self, key: impl AsRef<str>) -> &mut Self {
        self.dest = self.dest.with_api_key(key.as_ref());
        self
    }

    /// Sets this event's dataset (the dataset rules of
    /// [`Config::dataset`](crate::Config::dataset) apply).
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// let mut ev = client.new_event();
    /// ev.set_dataset("audit");
    /// assert_eq!(ev.dataset(), "audit");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_dataset(&mut self, dataset: impl AsRef<str>) -> &mut Self {
        self.dest = self.dest.with_dataset(dataset.as_ref());
        self
    }

    /// Sets this event's API host (a trailing `/` is dropped). An invalid host
    /// makes `send` fail with [`SendError::InvalidApiHost`].
    pub fn set_api_host(&mut self, host: impl AsRef<str>) -> &mut Self {
        self.dest = self.dest.with_api_host(host.as_ref());
        self
    }

    /// The dataset the event goes to. Costs nothing.
    pub fn dataset(&self) -> &str {
        self.dest.dataset()
    }

    /// The API host the event goes to. Costs nothing.
    pub fn api_host(&self) -> &str {
        self.dest.api_host()
    }

    /// The value of a field (own or inherited). A lookup; costs nothing.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.get(name)
    }

    /// Every field, inherited ones first, each name once (the value that wins).
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// client.add_field("a", 1);
    /// let mut ev = client.new_event();
    /// ev.add_field("b", 2).add_field("a", 3);
    /// let fields: Vec<_> = ev.fields().map(|(k, v)| (k, v.as_i64().unwrap())).collect();
    /// assert_eq!(fields, [("b", 2), ("a", 3)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fields(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.fields.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// How many fields the event has (each name once). Walks the fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Has the event no fields? An empty event cannot be sent. Costs nothing.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Sends the event, applying its sample rate: at rate N one event in N is
    /// kept (and carries `samplerate: N`); each dropped one gets a
    /// [`ResponseError::Sampled`](crate::ResponseError::Sampled) response.
    ///
    /// Never blocks (unless [`Config::block_on_send`](crate::Config::block_on_send)
    /// is on and the queue is full) and never panics. `Ok` means accepted: the
    /// outcome arrives later as exactly one [`Response`](crate::Response).
    /// Transmissions that answer at once ([`Writer`](crate::transmission::Writer),
    /// [`Mock`](crate::transmission::Mock), [`Discard`](crate::transmission::Discard))
    /// do their work inside `send`: the `Writer` writes there, and with
    /// [`block_on_response`](crate::Config::block_on_response) on, `send` also
    /// waits for room in the response queue.
    ///
    /// With the default transmission, costs one push on a channel (about
    /// 0.15 µs median for ten fields on a 2-core VM, see
    /// docs/PERFORMANCE.md) while its batcher keeps up; while the batcher is
    /// behind, `send` also encodes the event on this thread and frees its
    /// fields (about 0.7 µs median), which spreads the work over the sending
    /// threads.
    ///
    /// `send` takes the event by value: once sent it cannot be changed or
    /// sent again (libhoney-py lets a queued event change; libhoney-go can
    /// enqueue one event twice).
    ///
    /// ```compile_fail
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new())).unwrap();
    /// let mut ev = client.new_event();
    /// ev.add_field("x", 1);
    /// ev.send().unwrap();
    /// ev.send().unwrap(); // error[E0382]: use of moved value: `ev`
    /// ```
    ///
    /// ```
    /// # use libhoney::{Client, Config, SendError, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// let mut ev = client.new_event();
    /// ev.add_field("path", "/");
    /// ev.send()?;
    /// assert_eq!(client.new_event().send(), Err(SendError::EmptyEvent)); // no response for it
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// The event is not accepted, and gets no response, if it has no fields
    /// ([`SendError::EmptyEvent`]), no API key, dataset or valid API host, a
    /// sample rate of 0, a timestamp outside the years 0000 to 9999
    /// ([`SendError::TimestampOutOfRange`]), or its client is closed
    /// ([`SendError::Closed`]).
    pub fn send(self) -> Result<(), SendError> {
        Client::dispatch(self, true)
    }

    /// Sends the event without sampling it, for events your code already
    /// sampled; it still carries its sample rate so Honeycomb weights it.
    /// Blocking and errors as [`send`](Event::send).
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// let mut ev = client.new_event();
    /// ev.add_field("x", 1).set_sample_rate(10); // we kept 1 in 10 ourselves
    /// ev.send_presampled()?; // never dropped here
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`send`](Event::send).
    pub fn send_presampled(self) -> Result<(), SendError> {
        Client::dispatch(self, false)
    }

    /// Sends the event from async code, waiting (without blocking a thread)
    /// for room in the transmission's queue where [`send`](Event::send) would
    /// answer [`QueueOverflow`](crate::ResponseError::QueueOverflow): the way
    /// to never drop an event under a burst from a tokio task (or any async
    /// runtime: the future needs none in particular). Validation, sampling
    /// and errors as `send`. While the queue has room it costs what `send`
    /// costs, plus one boxed future; it waits only while the queue is full,
    /// and until the batcher has taken it down to half.
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     use std::task::{Context, Poll, Wake, Waker};
    /// #     struct T(std::thread::Thread);
    /// #     impl Wake for T { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
    /// #     let waker = Waker::from(std::sync::Arc::new(T(std::thread::current())));
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(&waker)) { return v; }
    /// #         std::thread::park();
    /// #     }
    /// # }
    /// let mut ev = client.new_event();
    /// ev.add_field("path", "/");
    /// // inside an async fn: ev.send_async().await?
    /// block_on(ev.send_async())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`send`](Event::send).
    pub fn send_async(self) -> impl std::future::Future<Output = Result<(), SendError>> + Send {
        Client::dispatch_async(self)
    }
}
