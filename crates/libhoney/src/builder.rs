//! Builders: templates for events that share fields, dynamic fields and settings.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use crate::client::Client;
use crate::destination::Destination;
use crate::error::FieldError;
use crate::event::Event;
use crate::fields::{Fields, LayeredFields};
use crate::value::{FieldName, Value};

/// A dynamic field: a name and a function called each time an event is created.
#[derive(Clone)]
pub(crate) struct DynField {
    pub(crate) name: FieldName,
    pub(crate) func: Arc<dyn Fn() -> Value + Send + Sync>,
}

/// What a builder (or a client's global scope) hands to each new event.
/// Every part is behind a reference count, so making an event copies pointers,
/// not fields; changing a template copies its fields once (copy on write) and
/// never affects events or clones made before.
#[derive(Clone)]
pub(crate) struct Template {
    pub(crate) fields: Arc<Fields>,
    pub(crate) dyn_fields: Arc<Vec<DynField>>,
    pub(crate) dest: Destination,
    pub(crate) sample_rate: u32,
}

impl Template {
    pub(crate) fn add_field(&mut self, name: FieldName, value: Value) {
        Arc::make_mut(&mut self.fields).insert(name, value);
    }

    pub(crate) fn add_object<T: serde::Serialize + ?Sized>(
        &mut self,
        data: &T,
    ) -> Result<(), FieldError> {
        let entries = crate::ser::fields_of(data)?;
        Arc::make_mut(&mut self.fields).extend(entries);
        Ok(())
    }

    pub(crate) fn add_dynamic_field(
        &mut self,
        name: FieldName,
        func: Arc<dyn Fn() -> Value + Send + Sync>,
    ) {
        let dyns = Arc::make_mut(&mut self.dyn_fields);
        if let Some(existing) = dyns.iter_mut().find(|d| d.name == name) {
            existing.func = func;
        } else {
            dyns.push(DynField { name, func });
        }
    }

    /// A new event: shares the static fields, evaluates the dynamic ones now.
    pub(crate) fn make_event(&self, client: Client) -> Event {
        self.light().into_event(client)
    }

    /// The parts of the template a new event needs, cloning only what is not
    /// empty (each clone is an atomic reference-count increment).
    pub(crate) fn light(&self) -> EventSeed {
        EventSeed {
            fields: (!self.fields.is_empty()).then(|| Arc::clone(&self.fields)),
            dyn_fields: (!self.dyn_fields.is_empty()).then(|| Arc::clone(&self.dyn_fields)),
            dest: self.dest.clone(),
            sample_rate: self.sample_rate,
        }
    }
}

/// What a new event takes from a template; built under the template's lock,
/// turned into an event (calling the dynamic fields' functions) outside it.
pub(crate) struct EventSeed {
    fields: Option<Arc<Fields>>,
    dyn_fields: Option<Arc<Vec<DynField>>>,
    dest: Destination,
    sample_rate: u32,
}

impl EventSeed {
    pub(crate) fn into_event(self, client: Client) -> Event {
        let dyn_len = self.dyn_fields.as_ref().map_or(0, |d| d.len());
        let mut own = Fields::with_capacity(16 + dyn_len);
        if let Some(dyns) = &self.dyn_fields {
            for d in dyns.iter() {
                own.insert(d.name.clone(), (d.func)());
            }
        }
        Event {
            client,
            fields: LayeredFields {
                base: self.fields,
                own,
            },
            dest: self.dest,
            sample_rate: self.sample_rate,
            timestamp: SystemTime::now(),
            metadata: None,
        }
    }
}

/// A template for events: fields, dynamic fields, and per-builder API key,
/// dataset, API host and sample rate, inherited by every event it creates.
///
/// A builder starts as a snapshot of its client's global fields and settings
/// (later changes to the client do not reach it). [`Clone`] gives an
/// independent copy: fields added to one never show in the other.
///
/// Cheap: creating an event from a builder copies no fields (they are shared),
/// but calls each dynamic field's function.
///
/// ```
/// use libhoney::{Client, Config, transmission::Mock};
/// let mock = Mock::new();
/// let client = Client::new(Config::new().api_key("k").dataset("d").transmission(mock.clone())).unwrap();
/// client.add_field("service.name", "checkout");
///
/// let mut db = client.new_builder();
/// db.add_field("component", "db");
/// db.set_dataset("db-events");
/// let mut shard = db.clone();
/// shard.add_field("shard", 3);
///
/// let mut ev = shard.new_event();
/// ev.add_field("duration_ms", 1.5);
/// ev.send().unwrap();
/// client.flush().unwrap();
///
/// let sent = &mock.events()[0];
/// assert_eq!(sent.dataset(), "db-events");
/// assert_eq!(sent.get("service.name").unwrap().as_str(), Some("checkout"));
/// assert_eq!(sent.get("shard").unwrap().as_i64(), Some(3));
/// assert!(db.new_event().get("shard").is_none(), "the clone's field stays in the clone");
/// ```
#[derive(Clone)]
#[must_use = "a builder only makes events: dropping it unused does nothing"]
pub struct Builder {
    pub(crate) client: Client,
    pub(crate) template: Template,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("dest", &self.template.dest)
            .field("sample_rate", &self.template.sample_rate)
            .field("fields", &self.template.fields.len())
            .field(
                "dynamic_fields",
                &self
                    .template
                    .dyn_fields
                    .iter()
                    .map(|d| d.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Builder {
    /// Adds a field to every event this builder creates from now on. The last
    /// write of a key wins. Copies the builder's fields once if they are shared
    /// (with clones or events made before), then costs one insertion.
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// let mut b = client.new_builder();
    /// b.add_field("component", "cache").add_field("shard", 3);
    /// assert_eq!(b.get("shard").and_then(|v| v.as_i64()), Some(3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_field(&mut self, name: impl Into<FieldName>, value: impl Into<Value>) -> &mut Self {
        self.template.add_field(name.into(), value.into());
        self
    }

    /// Adds every top-level key of a struct or map as a field. Serializes `data`
    /// once; nothing is added on error.
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// let mut b = client.new_builder();
    /// b.add(&std::collections::BTreeMap::from([("team", "payments")]))?;
    /// assert!(b.add(&"not a map").is_err());
    /// assert!(b.new_event().get("team").is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`FieldError::NotAnObject`] if `data` is not a struct or map,
    /// [`FieldError::Serialize`] if it cannot be serialized.
    pub fn add<T: serde::Serialize + ?Sized>(&mut self, data: &T) -> Result<&mut Self, FieldError> {
        self.template.add_object(data)?;
        Ok(self)
    }

    /// Adds a field whose value `func` computes each time an event is created
    /// (for example the number of threads, or memory in use), on the creating
    /// thread. A dynamic field overrides a static field of the same name; adding
    /// one with an existing name replaces it. Names are explicit, so two closures
    /// never collide (libhoney-py names them all `<lambda>`).
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    /// let n = Arc::new(AtomicU64::new(0));
    /// let counter = Arc::clone(&n);
    /// let mut b = client.new_builder();
    /// b.add_dynamic_field("seq", move || counter.fetch_add(1, Ordering::Relaxed));
    /// assert_eq!(b.new_event().get("seq").and_then(|v| v.as_u64()), Some(0));
    /// assert_eq!(b.new_event().get("seq").and_then(|v| v.as_u64()), Some(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_dynamic_field<F, V>(&mut self, name: impl Into<FieldName>, func: F) -> &mut Self
    where
        F: Fn() -> V + Send + Sync + 'static,
        V: Into<Value>,
    {
        self.template
            .add_dynamic_field(name.into(), Arc::new(move || func().into()));
        self
    }

    /// Creates an event with this builder's fields (shared, not copied), the
    /// values of its dynamic fields, and its settings, timestamped now. Costs one
    /// small allocation plus one call of each dynamic field; never blocks.
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// let mut b = client.new_builder();
    /// b.add_field("component", "db");
    /// let mut ev = b.new_event();
    /// ev.add_field("rows", 12);
    /// ev.send()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new_event(&self) -> Event {
        self.template.make_event(self.client.clone())
    }

    /// Sets the API key of events from this builder (the dataset rules are
    /// applied again for the new key). An empty key makes their `send` fail with
    /// [`SendError::MissingApiKey`](crate::SendError::MissingApiKey).
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// let mut other_team = client.new_builder();
    /// other_team.set_api_key("hcaik_other_team").set_dataset("their-ds");
    /// assert_eq!(other_team.dataset(), "their-ds");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "writekey")]
    pub fn set_api_key(&mut self, key: impl AsRef<str>) -> &mut Self {
        self.template.dest = self.template.dest.with_api_key(key.as_ref());
        self
    }

    /// Sets the dataset of events from this builder (the dataset rules of
    /// [`Config::dataset`](crate::Config::dataset) apply).
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// let mut b = client.new_builder();
    /// b.set_dataset("jobs");
    /// assert_eq!(b.new_event().dataset(), "jobs");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_dataset(&mut self, dataset: impl AsRef<str>) -> &mut Self {
        self.template.dest = self.template.dest.with_dataset(dataset.as_ref());
        self
    }

    /// Sets the API host of events from this builder (a trailing `/` is
    /// dropped). An invalid host makes their `send` fail with
    /// [`SendError::InvalidApiHost`](crate::SendError::InvalidApiHost).
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// let mut b = client.new_builder();
    /// b.set_api_host("https://api.eu1.honeycomb.io/");
    /// assert_eq!(b.api_host(), "https://api.eu1.honeycomb.io");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_api_host(&mut self, host: impl AsRef<str>) -> &mut Self {
        self.template.dest = self.template.dest.with_api_host(host.as_ref());
        self
    }

    /// Sets the sample rate of events from this builder. 0 makes their `send`
    /// fail with [`SendError::ZeroSampleRate`](crate::SendError::ZeroSampleRate).
    ///
    /// ```
    /// # use libhoney::{Client, Config, transmission::Mock};
    /// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
    /// let mut noisy = client.new_builder();
    /// noisy.set_sample_rate(100); // keep 1 in 100
    /// assert_eq!(noisy.new_event().sample_rate(), 100);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_sample_rate(&mut self, rate: u32) -> &mut Self {
        self.template.sample_rate = rate;
        self
    }

    /// The dataset events from this builder go to. Costs nothing.
    pub fn dataset(&self) -> &str {
        self.template.dest.dataset()
    }

    /// The API host events from this builder go to. Costs nothing.
    pub fn api_host(&self) -> &str {
        self.template.dest.api_host()
    }

    /// The sample rate of events from this builder. Costs nothing.
    pub fn sample_rate(&self) -> u32 {
        self.template.sample_rate
    }

    /// The value of a static field of this builder (dynamic fields have no value
    /// until an event is created). A lookup; costs nothing.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.template.fields.get(name)
    }
}

/// What events are made from: a [`Client`] (its global fields, as they are
/// when each event is made) or a [`Builder`] (its fields, dynamic fields and
/// settings). For code that accepts either, such as the `libhoney-tower` and
/// `libhoney-tracing` layers. Cloning is one reference-count increment.
///
/// ```
/// # use libhoney::{Client, Config, transmission::Mock};
/// use libhoney::EventSource;
/// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
/// let mut db = client.new_builder();
/// db.add_field("component", "db");
/// let sources = [EventSource::from(client.clone()), EventSource::from(db)];
/// assert_eq!(sources.map(|s| s.kind()), ["client", "builder"]);
/// let ev = EventSource::from(client.new_builder()).new_event();
/// assert!(ev.get("component").is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub enum EventSource {
    /// Events from [`Client::new_event`].
    Client(Client),
    /// Events from [`Builder::new_event`].
    Builder(Builder),
}

impl EventSource {
    /// A new event from the client or the builder; costs what their
    /// `new_event` costs (no field is copied).
    pub fn new_event(&self) -> Event {
        match self {
            EventSource::Client(client) => client.new_event(),
            EventSource::Builder(builder) => builder.new_event(),
        }
    }

    /// `"client"` or `"builder"`, for `Debug` output that must not show more.
    pub fn kind(&self) -> &'static str {
        match self {
            EventSource::Client(_) => "client",
            EventSource::Builder(_) => "builder",
        }
    }
}

impl From<Client> for EventSource {
    fn from(client: Client) -> Self {
        EventSource::Client(client)
    }
}

impl From<Builder> for EventSource {
    fn from(builder: Builder) -> Self {
        EventSource::Builder(builder)
    }
}
