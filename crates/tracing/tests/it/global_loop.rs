//! The real loop: the SDK logs on its own threads (here, its HTTP client's
//! debug lines for each request, and a warning for an API key rejected with
//! 401), `log` is bridged into `tracing`, and the layer is the global
//! default. Were those sent as events, each batch would make another batch,
//! forever. They must not be sent. The bridge and the global default are
//! process-wide: the test runs alone in a child process (`own_process`, see
//! `main.rs`).

use std::time::Duration;

use crate::common::recorder::Recorder;
use libhoney::{Client, Config};
use libhoney_receiver::Receiver;
use libhoney_tracing::HoneycombLayer;
use tracing_subscriber::prelude::*;

#[test]
fn sdk_warnings_on_its_own_thread_do_not_loop_back() {
    if !crate::own_process::alone(
        module_path!(),
        "sdk_warnings_on_its_own_thread_do_not_loop_back",
    ) {
        return;
    }
    tracing_log::LogTracer::init().unwrap();
    let rx = Receiver::builder()
        .api_key("the-right-key")
        .start()
        .unwrap();
    let client = Client::new(
        Config::new()
            .read_env(false)
            .api_key("a-wrong-key")
            .dataset("loop")
            .api_host(rx.url()),
    )
    .unwrap();
    let recorder = Recorder::default();
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry()
            .with(recorder.clone())
            // Everything, so that only the self-filter keeps the SDK's logs out.
            .with(
                HoneycombLayer::new(client.clone())
                    .max_level(tracing::level_filters::LevelFilter::TRACE)
                    .orphan_events(true),
            ),
    )
    .unwrap();

    tracing::info_span!("one_span").in_scope(|| {});
    // Returns once the span's event has its (401) response; the SDK warns
    // before it responds, so a looped-back event would be queued by now.
    client.flush_within(Duration::from_secs(10)).unwrap();

    let seen = recorder.targets();
    assert!(
        seen.iter().any(|t| t == "libhoney"),
        "the SDK's warning reached the subscriber: {seen:?}"
    );
    // So did its HTTP client's debug logs, under their own targets, from the
    // SDK's send thread: the thread filter keeps them out.
    assert!(seen.iter().any(|t| t.starts_with("ureq")), "{seen:?}");
    let m = client.metrics();
    assert_eq!(m.events_queued, 1, "only the span was sent: {m:?}");
    assert_eq!(m.events_failed, 1, "{m:?}");
    assert_eq!(rx.stats().events_accepted, 0);
    client.close().unwrap();
}
