//! The layer: spans in, Honeycomb events out.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use libhoney::{Builder, Client, Event, EventSource, SendError, Value};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Dispatch, Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::fields::{EventVisitor, FieldList, SpanVisitor};
use crate::ids::{SpanId, TraceContext, TraceId};

/// Targets starting with this are never sent: they are the SDK's own
/// diagnostics (`libhoney`, `libhoney::…`) and this crate's
/// (`libhoney_tracing`), which must not loop back into Honeycomb.
pub const IGNORED_TARGET_PREFIX: &str = "libhoney";

/// Is `target` one whose spans and log events the layer never sends? True for
/// every target starting with [`IGNORED_TARGET_PREFIX`], including `log`
/// records bridged into `tracing` by `tracing-log` (their `log.target` field
/// is what counts).
///
/// ```
/// use libhoney_tracing::is_ignored_target;
/// assert!(is_ignored_target("libhoney") && is_ignored_target("libhoney::transmission"));
/// assert!(is_ignored_target("libhoney_tracing"));
/// assert!(!is_ignored_target("my_app::libhoney"));
/// ```
pub fn is_ignored_target(target: &str) -> bool {
    target.starts_with(IGNORED_TARGET_PREFIX)
}

/// Threads whose name starts with this are the SDK's own (`libhoney-batch`,
/// `libhoney-send-N`, `libhoney-wait`): nothing recorded on them is sent,
/// whatever its target. That covers the SDK's dependencies, such as its HTTP
/// client's debug logs, which would otherwise make a batch of events for
/// every batch sent.
pub const IGNORED_THREAD_PREFIX: &str = "libhoney";

thread_local! {
    /// Is this thread one of the SDK's? Computed once per thread.
    static SDK_THREAD: bool = std::thread::current()
        .name()
        .is_some_and(|n| n.starts_with(IGNORED_THREAD_PREFIX));
    /// Is this layer handing an event to the SDK on this thread right now?
    static SENDING: Cell<bool> = const { Cell::new(false) };
}

/// Should spans and events recorded on this thread, now, be ignored? True on
/// the SDK's threads, and while this layer is sending from this one (so
/// whatever the send path logs cannot come back as another event). A
/// thread-local read or two.
fn muted() -> bool {
    SENDING.try_with(Cell::get).unwrap_or(false) || SDK_THREAD.try_with(|b| *b).unwrap_or(false)
}

/// The target of [`external_span`]'s span. It starts with
/// [`IGNORED_TARGET_PREFIX`], so a layer of another version ignores it.
pub const EXTERNAL_SPAN_TARGET: &str = "libhoney_tracing::external";
/// The name of [`external_span`]'s span.
const EXTERNAL_SPAN_NAME: &str = "libhoney.external";

fn is_external(meta: &Metadata<'_>) -> bool {
    meta.name() == EXTERNAL_SPAN_NAME && meta.target() == EXTERNAL_SPAN_TARGET
}

/// A span standing for an event that another integration sends itself, such
/// as the request event of `libhoney-tower`: spans and log events recorded
/// inside it (while it is entered, or with it as `parent:`) join trace
/// `ctx.trace_id` as children of span `ctx.span_id`, and are kept or dropped
/// as `ctx.sampled` says. The span itself is **never sent**: the integration
/// sends its own event with those ids.
///
/// A [`HoneycombLayer`] must record it: it is an `INFO` span of target
/// [`EXTERNAL_SPAN_TARGET`], so a per-layer filter that rejects that target
/// (such as an `EnvFilter` of only `my_app=debug`) leaves the handler's spans
/// as roots of their own traces. Without a `HoneycombLayer` it is an ordinary
/// span that costs what any span costs. Creating it costs a span and one lock
/// of its extensions.
///
/// ```
/// # use libhoney::{Client, Config, transmission::Mock};
/// # let mock = Mock::new();
/// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(mock.clone())).unwrap();
/// use libhoney_tracing::{external_span, HoneycombLayer, SpanId, TraceContext, TraceId};
/// use tracing_subscriber::prelude::*;
///
/// let subscriber = tracing_subscriber::registry().with(HoneycombLayer::new(client.clone()));
/// let request = TraceContext::new(TraceId::random(), SpanId::random());
/// tracing::subscriber::with_default(subscriber, || {
///     external_span(request).in_scope(|| tracing::info_span!("load_user").in_scope(|| {}));
/// });
/// let sent = mock.events();
/// assert_eq!(sent.len(), 1, "only load_user; the external span is not sent");
/// assert_eq!(sent[0].get("trace.parent_id").unwrap().as_str(), Some(&*request.span_id.to_string()));
/// assert_eq!(sent[0].get("trace.trace_id").unwrap().as_str(), Some(&*request.trace_id.to_string()));
/// ```
pub fn external_span(ctx: TraceContext) -> tracing::Span {
    let span = tracing::info_span!(target: EXTERNAL_SPAN_TARGET, "libhoney.external");
    span.with_subscriber(|(id, dispatch)| {
        let Some(with_state) = dispatch
            .downcast_ref::<HoneycombLayer>()
            .and_then(|layer| layer.with_state)
        else {
            return;
        };
        with_state(dispatch, id, false, &mut |state| {
            state.trace_id = ctx.trace_id;
            state.span_id = ctx.span_id;
            state.parent_id = None;
            state.sampled = ctx.sampled;
        });
    });
    span
}

/// Hands an event to the SDK with this thread muted. Never blocks (unless the
/// client was configured to block on a full queue); errors are dropped, but
/// the first [`SendError::MissingApiKey`] is logged once per layer.
fn send(ev: Event, presampled: bool, warned: &AtomicBool) {
    struct Unmute;
    impl Drop for Unmute {
        fn drop(&mut self) {
            let _ = SENDING.try_with(|s| s.set(false));
        }
    }
    let _ = SENDING.try_with(|s| s.set(true));
    let _unmute = Unmute;
    let result = if presampled {
        ev.send_presampled()
    } else {
        ev.send()
    };
    if result == Err(SendError::MissingApiKey) && !warned.swap(true, Ordering::Relaxed) {
        log::warn!(
            target: "libhoney_tracing",
            "spans are not being sent to Honeycomb: no API key (set Config::api_key or \
             HONEYCOMB_API_KEY); this is said once, the SDK's metrics count every refused event"
        );
    }
}

/// What this layer keeps in each span's extensions while the span is open.
pub(crate) struct SpanState {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    pub(crate) parent_id: Option<SpanId>,
    pub(crate) remote_parent: bool,
    pub(crate) sampled: bool,
    /// An [`external_span`]: never sent.
    external: bool,
    start: Instant,
    start_time: SystemTime,
    children: u32,
    busy: Duration,
    entered: u32,
    entered_at: Option<Instant>,
    fields: FieldList,
}

/// Runs a function on the state of a span (or, with `walk_up`, of its nearest
/// ancestor that has one), given only the dispatcher and the span's id. Made
/// for the concrete subscriber type in [`Layer::on_layer`], so that
/// [`SpanExt`](crate::SpanExt) can reach span extensions through a
/// [`tracing::Span`] without knowing that type.
pub(crate) type WithState = fn(&Dispatch, &Id, bool, &mut dyn FnMut(&mut SpanState));

fn with_state<S>(dispatch: &Dispatch, id: &Id, walk_up: bool, f: &mut dyn FnMut(&mut SpanState))
where
    S: Subscriber + for<'a> LookupSpan<'a> + 'static,
{
    let Some(subscriber) = dispatch.downcast_ref::<S>() else {
        return;
    };
    let Some(span) = subscriber.span(id) else {
        return;
    };
    for s in span.scope() {
        let mut ext = s.extensions_mut();
        if let Some(state) = ext.get_mut::<SpanState>() {
            f(state);
            return;
        }
        if !walk_up {
            return;
        }
    }
}

/// Runs `f` on the state this layer keeps for span `id`, if the span is
/// still there and this layer keeps state for it.
fn update_state<S>(ctx: &Context<'_, S>, id: &Id, f: impl FnOnce(&mut SpanState))
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    if let Some(span) = ctx.span(id) {
        if let Some(state) = span.extensions_mut().get_mut::<SpanState>() {
            f(state);
        }
    }
}

/// A [`tracing_subscriber::Layer`] that sends each closed span to Honeycomb
/// as one wide event, and each log event as a span event (see the
/// [crate docs](crate) for every field sent and the rules).
///
/// Build it from a [`Client`] or a [`Builder`], adjust it with the chained
/// setters, and add it to a registry:
///
/// ```
/// # use libhoney::{Client, Config, transmission::Mock};
/// # let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Mock::new())).unwrap();
/// use libhoney_tracing::HoneycombLayer;
/// use tracing::Level;
/// use tracing_subscriber::prelude::*;
///
/// let layer = HoneycombLayer::new(client.clone())
///     .service_name("checkout")
///     .sample_rate(10) // keep one trace in 10
///     .max_level(Level::INFO);
/// let subscriber = tracing_subscriber::registry().with(layer);
/// # drop(subscriber);
/// ```
///
/// **Costs.** No locks of its own: per span, one small allocation for its
/// state, a lock of the parent's extensions at creation (to count children),
/// one of its own on each `Span::record` and, unless
/// [`busy_time`](HoneycombLayer::busy_time) is off, on each enter and exit.
/// Field values are converted when recorded (strings and `Debug` values are
/// copied). At close, one libhoney event is built and handed to the SDK.
///
/// **Never blocks.** Sending is the SDK's non-blocking send (it only blocks
/// if you turned on [`Config::block_on_send`](libhoney::Config::block_on_send)
/// and its queue is full). Send errors (a closed client, for example) are
/// ignored: telemetry never fails the instrumented code.
///
/// One `HoneycombLayer` per subscriber: span state lives in the span's
/// extensions under this crate's type, and a second layer in the same
/// subscriber would share it.
#[derive(Clone)]
pub struct HoneycombLayer {
    source: EventSource,
    service_name: Option<Value>,
    pub(crate) sample_rate: u32,
    max_level: LevelFilter,
    span_events: bool,
    orphan_events: bool,
    busy_time: bool,
    pub(crate) with_state: Option<WithState>,
    /// Set once the missing API key has been reported.
    key_warned: Arc<AtomicBool>,
}

impl fmt::Debug for HoneycombLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HoneycombLayer")
            .field("source", &self.source.kind())
            .field("service_name", &self.service_name)
            .field("sample_rate", &self.sample_rate)
            .field("max_level", &self.max_level)
            .field("span_events", &self.span_events)
            .field("orphan_events", &self.orphan_events)
            .field("busy_time", &self.busy_time)
            .finish()
    }
}

impl HoneycombLayer {
    fn with_source(source: EventSource, sample_rate: u32) -> Self {
        HoneycombLayer {
            source,
            service_name: None,
            sample_rate: sample_rate.max(1),
            max_level: LevelFilter::INFO,
            span_events: true,
            orphan_events: false,
            busy_time: true,
            with_state: None,
            key_warned: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A layer sending through `client` (a clone is cheap; keep one to
    /// [`flush`](Client::flush) or [`close`](Client::close) it at exit).
    /// Events carry the client's global fields, read each time an event is
    /// built, and go to the client's dataset. The sample rate starts as the
    /// client's configured one. No I/O, no thread.
    pub fn new(client: Client) -> Self {
        let rate = client.config().settings().sample_rate();
        HoneycombLayer::with_source(EventSource::Client(client), rate)
    }

    /// A layer sending through a [`Builder`]: its fields, dataset, API key and
    /// host apply to every event (the builder is a snapshot; later changes to
    /// the client's global fields do not reach it). The sample rate starts as
    /// the builder's.
    pub fn from_builder(builder: Builder) -> Self {
        let rate = builder.sample_rate();
        HoneycombLayer::with_source(EventSource::Builder(builder), rate)
    }

    /// Sets `service.name` on every event this layer sends. Unset by default
    /// (then no `service.name` field is added).
    #[must_use = "a by-value setter returns the changed value: use it"]
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(Value::from(name.into()));
        self
    }

    /// Keeps one trace in `rate`, deterministically by trace id
    /// ([`TraceId::is_sampled`]), so a trace is kept or dropped whole: its
    /// spans, span events and children on other threads or tasks alike. Kept
    /// events carry `samplerate: rate`, so Honeycomb counts them right.
    /// Defaults to the client's (or builder's) sample rate; 0 is taken as 1.
    ///
    /// The client's own per-event random sampling is not applied to spans
    /// (that would break traces apart); log events outside any span are
    /// sampled at random at this rate, since they have no trace id.
    ///
    /// A dropped span costs its creation and field recording but no event.
    #[must_use = "a by-value setter returns the changed value: use it"]
    pub fn sample_rate(mut self, rate: u32) -> Self {
        self.sample_rate = rate.max(1);
        self
    }

    /// Ignores spans and log events more verbose than `level` (default:
    /// [`LevelFilter::INFO`]: your `#[instrument]` and `info_span!` spans and
    /// `info!`..`error!` events, not the `DEBUG`/`TRACE` internals of
    /// dependencies such as `h2`, each of which would be a billed event). A
    /// span ignored this way is not sent; its children attach to its nearest
    /// sent ancestor.
    ///
    /// This is a floor under whatever per-layer filter you add with
    /// [`Layer::with_filter`](tracing_subscriber::Layer::with_filter): both
    /// must let a span through. To let such a filter send `DEBUG` spans of
    /// your own crate, lift the floor: `.max_level(LevelFilter::TRACE)
    /// .with_filter(EnvFilter::new("info,my_app=debug"))` (see the crate docs).
    /// The check costs a comparison, after the callsite is enabled; a
    /// per-layer filter also skips building what it rejects.
    #[must_use = "a by-value setter returns the changed value: use it"]
    pub fn max_level(mut self, level: impl Into<LevelFilter>) -> Self {
        self.max_level = level.into();
        self
    }

    /// Sends each log event that happens inside a span as a Honeycomb span
    /// event (default: on). Off, such log events are ignored.
    #[must_use = "a by-value setter returns the changed value: use it"]
    pub fn span_events(mut self, on: bool) -> Self {
        self.span_events = on;
        self
    }

    /// Sends each log event that happens outside every span as a standalone
    /// event (default: **off**). Log lines outside any span (startup,
    /// shutdown, background chatter) are not part of a trace, and each would
    /// be a billed event; turn this on to send them (subject to
    /// [`max_level`](HoneycombLayer::max_level) and your filters).
    #[must_use = "a by-value setter returns the changed value: use it"]
    pub fn orphan_events(mut self, on: bool) -> Self {
        self.orphan_events = on;
        self
    }

    /// Measures `busy_ms`, the time spans spent entered (default: on). Off,
    /// entering and exiting a span costs this layer nothing, and `busy_ms`
    /// is not sent.
    #[must_use = "a by-value setter returns the changed value: use it"]
    pub fn busy_time(mut self, on: bool) -> Self {
        self.busy_time = on;
        self
    }

    /// Reports a send refused for want of an API key, once per layer (and
    /// its clones).
    fn send(&self, ev: Event, presampled: bool) {
        send(ev, presampled, &self.key_warned);
    }

    fn wants(&self, meta: &Metadata<'_>) -> bool {
        *meta.level() <= self.max_level && !is_ignored_target(meta.target()) && !muted()
    }

    fn add_common(
        &self,
        ev: &mut Event,
        meta: &'static Metadata<'static>,
        target: Cow<'static, str>,
        namespace: Option<Cow<'static, str>>,
        file: Option<Cow<'static, str>>,
        line: Option<u64>,
    ) {
        ev.add_field("level", Value::from_static(meta.level().as_str()));
        ev.add_field("target", target);
        if let Some(ns) = namespace {
            ev.add_field("code.namespace", ns);
        }
        if let Some(file) = file {
            ev.add_field("code.filepath", file);
        }
        if let Some(line) = line {
            ev.add_field("code.lineno", line);
        }
        if let Some(service) = &self.service_name {
            ev.add_field("service.name", service.clone());
        }
    }
}

/// Values the event metadata holds for the life of the program.
fn static_str(s: Option<&'static str>) -> Option<Cow<'static, str>> {
    s.map(Cow::Borrowed)
}

impl<S> Layer<S> for HoneycombLayer
where
    S: Subscriber + for<'a> LookupSpan<'a> + 'static,
{
    fn on_layer(&mut self, _subscriber: &mut S) {
        self.with_state = Some(with_state::<S>);
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let external = is_external(attrs.metadata());
        if !external && !self.wants(attrs.metadata()) {
            return;
        }
        let Some(span) = ctx.span(id) else {
            return;
        };
        let parent = span.scope().skip(1).find_map(|p| {
            let mut ext = p.extensions_mut();
            let state = ext.get_mut::<SpanState>()?;
            state.children += 1;
            Some((state.trace_id, state.span_id, state.sampled))
        });
        let (trace_id, parent_id, sampled) = match parent {
            Some((trace, parent, sampled)) => (trace, Some(parent), sampled),
            None => {
                let trace = TraceId::random();
                (trace, None, trace.is_sampled(self.sample_rate))
            }
        };
        let mut fields = FieldList::new();
        attrs.record(&mut SpanVisitor(&mut fields));
        let state = SpanState {
            trace_id,
            span_id: SpanId::random(),
            parent_id,
            remote_parent: false,
            sampled,
            external,
            start: Instant::now(),
            start_time: SystemTime::now(),
            children: 0,
            busy: Duration::ZERO,
            entered: 0,
            entered_at: None,
            fields,
        };
        let mut ext = span.extensions_mut();
        // `replace`, not `insert`: never panic if another layer put one there.
        ext.replace(state);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        update_state(&ctx, id, |state| {
            values.record(&mut SpanVisitor(&mut state.fields));
        });
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if !self.busy_time {
            return;
        }
        update_state(&ctx, id, |state| {
            if state.entered == 0 {
                state.entered_at = Some(Instant::now());
            }
            state.entered += 1;
        });
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if !self.busy_time {
            return;
        }
        update_state(&ctx, id, |state| {
            state.entered = state.entered.saturating_sub(1);
            if state.entered == 0 {
                if let Some(at) = state.entered_at.take() {
                    state.busy += at.elapsed();
                }
            }
        });
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        if !self.wants(meta) {
            return;
        }
        let in_span = ctx.event_span(event).map(|span| {
            span.scope().find_map(|s| {
                let ext = s.extensions();
                let state = ext.get::<SpanState>()?;
                Some((state.trace_id, state.span_id, state.sampled))
            })
        });
        let in_span = in_span.flatten();
        match in_span {
            Some(_) if !self.span_events => return,
            Some((_, _, false)) => return,
            None if !self.orphan_events => return,
            _ => {}
        }
        let mut v = EventVisitor::default();
        event.record(&mut v);
        // A `log` record bridged by tracing-log: its real target is a field.
        let target: Cow<'static, str> = match v.log_target.take() {
            Some(t) => Cow::Owned(t),
            None => Cow::Borrowed(meta.target()),
        };
        if is_ignored_target(&target) {
            return;
        }
        let namespace = v.log_module.take().map(Cow::Owned);
        let file = v.log_file.take().map(Cow::Owned);
        let line = v.log_line.or(meta.line().map(u64::from));

        let mut ev = self.source.new_event();
        let name = v.message.take().unwrap_or_else(|| meta.name().to_owned());
        ev.add_field("name", name);
        self.add_common(
            &mut ev,
            meta,
            target,
            namespace.or_else(|| static_str(meta.module_path())),
            file.or_else(|| static_str(meta.file())),
            line,
        );
        if let Some((trace_id, span_id, _)) = in_span {
            ev.add_field("meta.annotation_type", Value::from_static("span_event"));
            ev.add_field("trace.trace_id", trace_id.to_string());
            ev.add_field("trace.parent_id", span_id.to_string());
        }
        for (k, val) in v.fields {
            ev.add_field(k, val);
        }
        ev.set_sample_rate(self.sample_rate);
        self.send(ev, in_span.is_some());
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let Some(state) = span.extensions_mut().remove::<SpanState>() else {
            return;
        };
        if !state.sampled || state.external {
            return;
        }
        let meta = span.metadata();
        let mut ev = self.source.new_event();
        ev.set_timestamp(state.start_time);
        ev.add_field("name", Value::from_static(meta.name()));
        ev.add_field("duration_ms", state.start.elapsed());
        if self.busy_time {
            let mut busy = state.busy;
            if let Some(at) = state.entered_at {
                busy += at.elapsed();
            }
            ev.add_field("busy_ms", busy);
        }
        ev.add_field("trace.trace_id", state.trace_id.to_string());
        ev.add_field("trace.span_id", state.span_id.to_string());
        if let Some(parent) = state.parent_id {
            ev.add_field("trace.parent_id", parent.to_string());
        }
        let span_type = if state.remote_parent {
            "subroot"
        } else if state.parent_id.is_none() {
            "root"
        } else if state.children == 0 {
            "leaf"
        } else {
            "mid"
        };
        ev.add_field("meta.span_type", Value::from_static(span_type));
        self.add_common(
            &mut ev,
            meta,
            Cow::Borrowed(meta.target()),
            static_str(meta.module_path()),
            static_str(meta.file()),
            meta.line().map(u64::from),
        );
        for (k, v) in state.fields {
            ev.add_field(k, v);
        }
        ev.set_sample_rate(self.sample_rate);
        self.send(ev, true);
    }
}
