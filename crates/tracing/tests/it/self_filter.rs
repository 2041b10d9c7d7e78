//! The SDK's own diagnostics (targets starting with `libhoney`) never loop
//! back into Honeycomb through the layer, also when `log` is bridged into
//! `tracing` with tracing-log; other layers still see them. The bridge is a
//! `log` logger, process-wide: each test runs alone in a child process
//! (`own_process`, see `main.rs`), where it installs the bridge if it needs it.

use crate::common;

use std::sync::{Mutex, Once, OnceLock};
use std::time::Duration;

use common::recorder::Recorder;
use common::*;
use libhoney::transmission::{Context, QueuedEvent, Responder, Transmission};
use libhoney::{Client, CloseError, Config, ConfigError, FlushError, Response};
use libhoney_tracing::HoneycombLayer;
use tracing::{info_span, Dispatch};
use tracing_subscriber::prelude::*;

/// Bridges `log` records into `tracing` (each goes to the calling thread's
/// default subscriber), once for this process.
fn bridge_log() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| tracing_log::LogTracer::init().unwrap());
}

fn stack(client: &Client, recorder: &Recorder) -> Dispatch {
    Dispatch::new(
        tracing_subscriber::registry()
            .with(recorder.clone())
            // Everything, so that only the self-filter can keep a record out.
            .with(
                HoneycombLayer::new(client.clone())
                    .max_level(tracing::level_filters::LevelFilter::TRACE)
                    .orphan_events(true),
            ),
    )
}

fn targets(events: &[QueuedEvent]) -> Vec<String> {
    events.iter().map(|e| s(e, "target").to_string()).collect()
}

#[test]
fn bridged_log_records_from_libhoney_targets_are_not_sent() {
    if !crate::own_process::alone(
        module_path!(),
        "bridged_log_records_from_libhoney_targets_are_not_sent",
    ) {
        return;
    }
    bridge_log();
    let (client, mock) = mock_client();
    let recorder = Recorder::default();
    let line = line!() + 7;
    tracing::dispatcher::with_default(&stack(&client, &recorder), || {
        log::warn!(target: "libhoney", "outside a span");
        info_span!("request").in_scope(|| {
            log::warn!(target: "libhoney", "inside a span");
            log::debug!(target: "libhoney::transmission", "queue overflow");
            log::info!(target: "libhoney_tracing", "ours too");
            log::info!(target: "app::db", "an app record");
        });
        log::error!(target: "app", "outside, from the app");
    });
    assert_eq!(
        recorder.targets(),
        [
            "libhoney",
            "libhoney",
            "libhoney::transmission",
            "libhoney_tracing",
            "app::db",
            "app"
        ],
        "every record reached the subscriber"
    );
    let events = mock.take_events();
    assert_eq!(targets(&events), ["app::db", module_path!(), "app"]);
    // The bridged record's real target, file and line are used.
    let rec = one(&events, "an app record");
    assert_eq!(s(rec, "meta.annotation_type"), "span_event");
    assert!(s(rec, "code.filepath").ends_with("self_filter.rs"));
    assert_eq!(
        rec.get("code.lineno").unwrap().as_u64(),
        Some(u64::from(line))
    );
    assert_eq!(s(rec, "code.namespace"), module_path!());
    assert_eq!(s(rec, "level"), "INFO");
    for key in ["log.target", "log.file", "log.line", "log.module_path"] {
        assert!(rec.get(key).is_none(), "{key}");
    }
}

#[test]
fn tracing_spans_and_events_from_libhoney_targets_are_not_sent() {
    if !crate::own_process::alone(
        module_path!(),
        "tracing_spans_and_events_from_libhoney_targets_are_not_sent",
    ) {
        return;
    }
    let (client, mock) = mock_client();
    let recorder = Recorder::default();
    tracing::dispatcher::with_default(&stack(&client, &recorder), || {
        tracing::warn!(target: "libhoney", "a tracing event");
        info_span!(target: "libhoney::batch", "internal").in_scope(|| {
            tracing::info!(target: "libhoney", "in internal span");
        });
        info_span!("app_span").in_scope(|| tracing::info!(target: "libhoneycomb_fan", "x"));
    });
    let events = mock.take_events();
    // "libhoneycomb_fan" starts with "libhoney": filtered too (documented).
    assert_eq!(
        events.iter().map(|e| s(e, "name")).collect::<Vec<_>>(),
        ["app_span"]
    );
    assert_eq!(recorder.targets().len(), 3);
}

#[test]
fn the_sdks_real_diagnostics_are_not_sent() {
    if !crate::own_process::alone(module_path!(), "the_sdks_real_diagnostics_are_not_sent") {
        return;
    }
    bridge_log();
    let recorder = Recorder::default();
    let mock = libhoney::transmission::Mock::new();
    // A stand-in client first, so the layer exists when the real one starts.
    let (first, first_mock) = mock_client();
    tracing::dispatcher::with_default(&stack(&first, &recorder), || {
        // `Client::new` and `close` log at debug under target "libhoney",
        // and an empty dataset warns.
        let client = Client::new(
            Config::new()
                .read_env(false)
                .api_key("some-environment-key")
                .dataset(" ")
                .transmission(mock.clone()),
        )
        .unwrap();
        client.close().unwrap();
    });
    let seen = recorder.targets();
    assert!(
        seen.iter().filter(|t| t.as_str() == "libhoney").count() >= 3,
        "{seen:?}"
    );
    assert!(first_mock.is_empty(), "{:?}", first_mock.events());
    assert!(mock.is_empty());
}

/// A transmission that logs on every send, under libhoney targets and under
/// a dependency's, and opens a span: without the filters, each span's event
/// would make more events, and so on.
#[derive(Default)]
struct Chatty {
    responder: OnceLock<Responder>,
    sent: Mutex<Vec<QueuedEvent>>,
}

impl Transmission for Chatty {
    fn start(&self, ctx: Context) -> Result<(), ConfigError> {
        let _ = self.responder.set(ctx.responder().clone());
        Ok(())
    }
    fn send(&self, mut event: QueuedEvent) {
        log::warn!(target: "libhoney::transmission", "sending an event");
        tracing::warn!(target: "libhoney", "sending an event");
        // A dependency of the send path, under its own target.
        log::debug!(target: "some_dependency", "wrote to a socket");
        tracing::span!(target: "some_dependency", tracing::Level::INFO, "io").in_scope(|| {});
        let response = Response::success(event.take_metadata(), Some(202), Duration::ZERO);
        self.sent.lock().unwrap().push(event);
        if let Some(r) = self.responder.get() {
            r.respond(response);
        }
    }
    fn flush(&self, _: Duration) -> Result<(), FlushError> {
        Ok(())
    }
    fn close(&self, _: Duration) -> Result<(), CloseError> {
        Ok(())
    }
}

#[test]
fn diagnostics_logged_while_sending_do_not_loop() {
    if !crate::own_process::alone(
        module_path!(),
        "diagnostics_logged_while_sending_do_not_loop",
    ) {
        return;
    }
    bridge_log();
    let chatty = std::sync::Arc::new(Chatty::default());
    let client = Client::new(
        Config::new()
            .read_env(false)
            .api_key("k")
            .dataset("d")
            .transmission_arc(chatty.clone()),
    )
    .unwrap();
    let recorder = Recorder::default();
    tracing::dispatcher::with_default(&stack(&client, &recorder), || {
        for i in 0..10 {
            info_span!("unit", i).in_scope(|| tracing::info!("working"));
        }
        tracing::info!("done");
    });
    let sent = chatty.sent.lock().unwrap();
    // 10 spans, 10 span events, 1 standalone event: nothing more.
    assert_eq!(sent.len(), 21);
    assert!(sent.iter().all(|e| s(e, "target") == module_path!()));
    // The diagnostics did reach the subscriber (from span closes at least,
    // where tracing does not suppress re-entrant events).
    let seen = recorder.targets();
    assert!(
        seen.iter().filter(|t| t.starts_with("libhoney")).count() >= 10,
        "{seen:?}"
    );
    assert!(
        seen.iter().filter(|t| *t == "some_dependency").count() >= 10,
        "{seen:?}"
    );
}
