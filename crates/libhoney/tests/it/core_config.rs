//! Config: defaults, setters and getters, dataset and key rules, and invalid
//! settings as typed errors (never panics). Environment reading is tested in
//! `core_env.rs`, its own process.

use crate::common;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::{base, mock_client, CLASSIC_KEY, SECRET_KEY};
use libhoney::transmission::{Context, Discard, Mock, QueuedEvent, Responder, Transmission};
use libhoney::{
    is_classic_key, Client, CloseError, Compression, Config, ConfigError, Encoding, FlushError,
    NonFiniteFloats, Response, SendError, API_MAX_BATCH_BYTES, API_MAX_EVENT_BYTES,
    DEFAULT_API_HOST, DEFAULT_DATASET,
};

/// A transmission that keeps the configuration it was started with, to prove
/// every option reaches the transmission.
#[derive(Clone, Default)]
struct Capture {
    config: Arc<Mutex<Option<Config>>>,
    responder: Arc<OnceLock<Responder>>,
}

impl Transmission for Capture {
    fn start(&self, ctx: Context) -> Result<(), ConfigError> {
        *self.config.lock().unwrap() = Some(ctx.config().clone());
        let _ = self.responder.set(ctx.responder().clone());
        Ok(())
    }
    fn send(&self, mut event: QueuedEvent) {
        let r = Response::success(event.take_metadata(), None, Duration::ZERO);
        self.responder.get().unwrap().respond(r);
    }
    fn flush(&self, _timeout: Duration) -> Result<(), FlushError> {
        Ok(())
    }
    fn close(&self, _timeout: Duration) -> Result<(), CloseError> {
        Ok(())
    }
}

fn assert_defaults(c: &Config) {
    assert_eq!(c.settings().api_host(), DEFAULT_API_HOST);
    assert_eq!(c.settings().api_host(), "https://api.honeycomb.io");
    assert_eq!(c.settings().sample_rate(), 1);
    assert_eq!(c.settings().max_batch_size(), 500);
    assert_eq!(c.settings().send_frequency(), Duration::from_millis(100));
    assert_eq!(c.settings().max_concurrent_batches(), 10);
    assert_eq!(c.settings().pending_work_capacity(), None);
    assert_eq!(c.settings().max_pending_bytes(), 48 << 20);
    assert_eq!(c.settings().response_queue_capacity(), 16_384);
    assert!(!c.settings().block_on_send());
    assert!(!c.settings().block_on_response());
    assert_eq!(c.settings().proxy(), None);
    assert!(c.settings().proxy_from_env());
    assert_eq!(c.settings().request_timeout(), Duration::from_secs(10));
    assert_eq!(c.settings().compression(), Compression::Zstd);
    assert_eq!(c.settings().compression_level(), 1);
    assert_eq!(c.settings().encoding(), Encoding::Json);
    assert_eq!(c.settings().max_attempts(), None);
    assert_eq!(c.settings().retry_deadline(), Duration::from_secs(60));
    assert_eq!(
        c.settings().retry_backoff(),
        (Duration::from_millis(100), Duration::from_secs(5))
    );
    assert_eq!(c.settings().shutdown_timeout(), Duration::from_secs(10));
    assert_eq!(c.settings().non_finite_floats(), NonFiniteFloats::String);
    assert_eq!(c.settings().max_event_bytes(), API_MAX_EVENT_BYTES);
    assert_eq!(c.settings().max_event_bytes(), 1_000_000);
    assert_eq!(c.settings().max_batch_bytes(), API_MAX_BATCH_BYTES);
    assert_eq!(c.settings().max_batch_bytes(), 5_000_000);
    assert!(c.user_agent().starts_with("libhoney-rust/"));
}

#[test]
fn defaults_are_as_documented() {
    let c = Config::new();
    assert_defaults(&c);
    assert_eq!(c.settings().api_key(), None);
    assert_eq!(c.settings().dataset(), None);
    assert_defaults(&Config::default());

    // The client's resolved configuration keeps every default.
    let client = Client::new(
        Config::new()
            .read_env(false)
            .api_key(SECRET_KEY)
            .dataset("d")
            .transmission(Discard::new()),
    )
    .unwrap();
    assert_defaults(client.config());
    assert_eq!(client.config().settings().api_key(), Some(SECRET_KEY));
    assert_eq!(client.config().settings().dataset(), Some("d"));
}

fn everything_changed() -> Config {
    Config::new()
        .read_env(false)
        .api_key(SECRET_KEY)
        .dataset("every-setter")
        .api_host("http://127.0.0.1:9/prefix")
        .sample_rate(7)
        .max_batch_size(33)
        .send_frequency(Duration::from_millis(7))
        .max_concurrent_batches(3)
        .pending_work_capacity(55)
        .response_queue_capacity(66)
        .block_on_send(true)
        .block_on_response(true)
        .user_agent_addition("my-integration/1.2")
        .proxy("http://user:pw@proxy.example:3128")
        .proxy_from_env(false)
        .request_timeout(Duration::from_secs(3))
        .compression(Compression::Gzip)
        .compression_level(9)
        .encoding(Encoding::Msgpack)
        .max_attempts(5)
        .retry_deadline(Duration::from_secs(4))
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(400))
        .shutdown_timeout(Duration::from_secs(2))
        .non_finite_floats(NonFiniteFloats::Omit)
        .max_event_bytes(1234)
        .max_batch_bytes(56_789)
}

fn assert_everything_changed(c: &Config) {
    assert_eq!(c.settings().api_key(), Some(SECRET_KEY));
    assert_eq!(c.settings().dataset(), Some("every-setter"));
    assert_eq!(c.settings().api_host(), "http://127.0.0.1:9/prefix");
    assert_eq!(c.settings().sample_rate(), 7);
    assert_eq!(c.settings().max_batch_size(), 33);
    assert_eq!(c.settings().send_frequency(), Duration::from_millis(7));
    assert_eq!(c.settings().max_concurrent_batches(), 3);
    assert_eq!(c.settings().pending_work_capacity(), Some(55));
    assert_eq!(c.settings().response_queue_capacity(), 66);
    assert!(c.settings().block_on_send());
    assert!(c.settings().block_on_response());
    assert!(
        c.user_agent().contains(" my-integration/1.2 ("),
        "{}",
        c.user_agent()
    );
    assert_eq!(
        c.settings().proxy(),
        Some("http://user:pw@proxy.example:3128")
    );
    assert!(!c.settings().proxy_from_env());
    assert_eq!(c.settings().request_timeout(), Duration::from_secs(3));
    assert_eq!(c.settings().compression(), Compression::Gzip);
    assert_eq!(c.settings().compression_level(), 9);
    assert_eq!(c.settings().encoding(), Encoding::Msgpack);
    assert_eq!(c.settings().max_attempts(), Some(5));
    assert_eq!(c.settings().retry_deadline(), Duration::from_secs(4));
    assert_eq!(
        c.settings().retry_backoff(),
        (Duration::from_millis(20), Duration::from_millis(400))
    );
    assert_eq!(c.settings().shutdown_timeout(), Duration::from_secs(2));
    assert_eq!(c.settings().non_finite_floats(), NonFiniteFloats::Omit);
    assert_eq!(c.settings().max_event_bytes(), 1234);
    assert_eq!(c.settings().max_batch_bytes(), 56_789);
}

#[test]
fn every_setter_is_readable_and_reaches_the_transmission() {
    assert_everything_changed(&everything_changed());

    let capture = Capture::default();
    let client = Client::new(everything_changed().transmission(capture.clone())).unwrap();
    assert_everything_changed(client.config());
    let seen = capture.config.lock().unwrap().clone().expect("started");
    assert_everything_changed(&seen);

    // Per-event settings come from the config.
    let ev = client.new_event();
    assert_eq!(ev.sample_rate(), 7);
    assert_eq!(ev.dataset(), "every-setter");
    assert_eq!(ev.api_host(), "http://127.0.0.1:9/prefix");
}

#[test]
fn aliases_and_small_setters() {
    assert_eq!(Config::new().writekey("w").settings().api_key(), Some("w"));
    assert_eq!(
        Config::new()
            .writekey("w")
            .api_key("a")
            .settings()
            .api_key(),
        Some("a"),
        "the last setter wins"
    );
    assert_eq!(
        Config::new()
            .encoding(Encoding::Msgpack)
            .settings()
            .encoding(),
        Encoding::Msgpack
    );
    assert_eq!(
        Config::new()
            .encoding(Encoding::Msgpack)
            .encoding(Encoding::Json)
            .settings()
            .encoding(),
        Encoding::Json
    );
    // The response queue follows the pending capacity unless set.
    assert_eq!(
        Config::new()
            .pending_work_capacity(10)
            .settings()
            .response_queue_capacity(),
        20
    );
    assert_eq!(
        Config::new()
            .pending_work_capacity(10)
            .response_queue_capacity(3)
            .settings()
            .response_queue_capacity(),
        3
    );
    // A blank user agent addition adds nothing.
    assert_eq!(
        Config::new().user_agent_addition("   ").user_agent(),
        Config::new().user_agent()
    );
    let ua = Config::new().user_agent();
    assert!(
        ua.starts_with(concat!("libhoney-rust/", env!("CARGO_PKG_VERSION"), " (")),
        "{ua}"
    );
}

/// Each invalid setting, and the error `Client::new` must return for it.
fn invalid_settings() -> Vec<(&'static str, Config, ConfigError)> {
    let b = || base().transmission(Discard::new());
    let zero = |option| ConfigError::Zero { option };
    let zero_d = |option| ConfigError::ZeroDuration { option };
    vec![
        (
            "sample_rate",
            b().sample_rate(0),
            ConfigError::ZeroSampleRate,
        ),
        (
            "max_batch_size",
            b().max_batch_size(0),
            zero("max_batch_size"),
        ),
        (
            "max_concurrent_batches",
            b().max_concurrent_batches(0),
            zero("max_concurrent_batches"),
        ),
        (
            "pending_work_capacity",
            b().pending_work_capacity(0),
            zero("pending_work_capacity"),
        ),
        (
            "response_queue_capacity",
            b().response_queue_capacity(0),
            zero("response_queue_capacity"),
        ),
        (
            "max_event_bytes",
            b().max_event_bytes(0),
            zero("max_event_bytes"),
        ),
        (
            "max_batch_bytes",
            b().max_batch_bytes(0),
            zero("max_batch_bytes"),
        ),
        ("max_attempts", b().max_attempts(0), zero("max_attempts")),
        (
            "send_frequency",
            b().send_frequency(Duration::ZERO),
            zero_d("send_frequency"),
        ),
        (
            "request_timeout",
            b().request_timeout(Duration::ZERO),
            zero_d("request_timeout"),
        ),
        (
            "retry_deadline",
            b().retry_deadline(Duration::ZERO),
            zero_d("retry_deadline"),
        ),
        (
            "shutdown_timeout",
            b().shutdown_timeout(Duration::ZERO),
            zero_d("shutdown_timeout"),
        ),
        (
            "zstd level -8",
            b().compression_level(-8),
            ConfigError::InvalidCompressionLevel {
                level: -8,
                range: (-7, 22),
            },
        ),
        (
            "zstd level 23",
            b().compression_level(23),
            ConfigError::InvalidCompressionLevel {
                level: 23,
                range: (-7, 22),
            },
        ),
        (
            "gzip level -1",
            b().compression(Compression::Gzip).compression_level(-1),
            ConfigError::InvalidCompressionLevel {
                level: -1,
                range: (0, 9),
            },
        ),
        (
            "gzip level 10",
            b().compression_level(10).compression(Compression::Gzip),
            ConfigError::InvalidCompressionLevel {
                level: 10,
                range: (0, 9),
            },
        ),
    ]
}

#[test]
fn invalid_settings_are_typed_errors_from_client_new() {
    for (what, config, expected) in invalid_settings() {
        let err = Client::new(config).expect_err(what);
        assert_eq!(err, expected, "{what}");
        let msg = err.to_string();
        assert!(!msg.is_empty(), "{what}");
        if let ConfigError::Zero { option } | ConfigError::ZeroDuration { option } = &err {
            assert!(msg.contains(option), "{what}: {msg}");
        }
    }
}

#[test]
fn a_rejected_config_does_not_start_its_transmission() {
    let mock = Mock::new();
    let err = Client::new(base().sample_rate(0).transmission(mock.clone())).unwrap_err();
    assert_eq!(err, ConfigError::ZeroSampleRate);
    // The mock was never started, so a valid client can still use it.
    let client = Client::new(base().transmission(mock.clone())).unwrap();
    let mut ev = client.new_event();
    ev.add_field("ok", true);
    ev.send().unwrap();
    assert_eq!(mock.len(), 1);
}

#[test]
fn a_transmission_serves_one_client() {
    let mock = Mock::new();
    let _first = Client::new(base().transmission(mock.clone())).unwrap();
    let err = Client::new(base().transmission(mock.clone())).unwrap_err();
    assert_eq!(
        err,
        ConfigError::TransmissionInUse {
            transmission: "Mock"
        }
    );
}

#[test]
fn compression_levels_in_range_are_accepted() {
    for level in [-7, -1, 0, 1, 3, 22] {
        let c = Client::new(
            base()
                .compression(Compression::Zstd)
                .compression_level(level)
                .transmission(Discard::new()),
        )
        .unwrap();
        assert_eq!(c.config().settings().compression_level(), level);
    }
    for level in [0, 1, 9] {
        Client::new(
            base()
                .compression(Compression::Gzip)
                .compression_level(level)
                .transmission(Discard::new()),
        )
        .unwrap();
    }
    // Without compression the level is unused, so anything goes.
    Client::new(
        base()
            .compression(Compression::None)
            .compression_level(99)
            .transmission(Discard::new()),
    )
    .unwrap();
}

#[test]
fn api_hosts_are_checked() {
    for ok in [
        "https://api.honeycomb.io",
        "https://api.eu1.honeycomb.io/",
        "http://127.0.0.1:8080",
        "http://localhost:1/prefix/path",
        "http://[::1]:9000",
    ] {
        let c = Client::new(base().api_host(ok).transmission(Discard::new()))
            .unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert_eq!(c.config().settings().api_host(), ok);
        // Events carry the host without a trailing slash.
        assert_eq!(c.new_event().api_host(), ok.trim_end_matches('/'));
    }
    for bad in [
        "",
        "api.honeycomb.io",
        "ftp://api.honeycomb.io",
        "http://",
        "http:///path",
        "http://host:notaport",
        "http://host:99999",
        "http://ho st",
        "http://host/?q=1",
        "http://host/#frag",
        "http://[::1",
    ] {
        match Client::new(base().api_host(bad).transmission(Discard::new())) {
            Err(ConfigError::InvalidApiHost { host, reason }) => {
                assert_eq!(host, bad);
                assert!(!reason.is_empty());
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
}

#[test]
fn proxies_are_checked_without_repeating_the_password() {
    for ok in [
        "http://proxy:3128",
        "https://proxy.example",
        "http://user:pw@proxy:3128",
    ] {
        Client::new(base().proxy(ok).transmission(Discard::new()))
            .unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in [
        "",
        "proxy:3128",
        "socks5://proxy:1080",
        "http://user:hunter2@",
        "http://user:hunter2@proxy:port",
    ] {
        let err = Client::new(base().proxy(bad).transmission(Discard::new())).unwrap_err();
        assert!(matches!(err, ConfigError::InvalidProxy { .. }), "{bad}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
    }
}

#[test]
fn classic_key_detection() {
    assert!(is_classic_key(""));
    assert!(is_classic_key(CLASSIC_KEY));
    let ingest = format!("hcxic_{}", "0a".repeat(29));
    assert!(is_classic_key(&ingest));
    assert!(!is_classic_key(SECRET_KEY));
    assert!(!is_classic_key(&CLASSIC_KEY.to_uppercase()));
    assert!(!is_classic_key(&CLASSIC_KEY[1..]));
    assert!(!is_classic_key(&format!("hcxik_{}", "0a".repeat(29))));
}

#[test]
fn environment_keys_trim_the_dataset_or_use_unknown_dataset() {
    let env = || Config::new().read_env(false).api_key(SECRET_KEY);

    let (c, mock) = mock_client(env().dataset("  my-service \t"));
    assert_eq!(c.config().settings().dataset(), Some("my-service"));
    let mut ev = c.new_event();
    ev.add_field("x", 1);
    assert_eq!(ev.dataset(), "my-service");
    ev.send().unwrap();
    assert_eq!(mock.events()[0].dataset(), "my-service");

    for blank in [None, Some(""), Some("   ")] {
        let config = match blank {
            Some(d) => env().dataset(d),
            None => env(),
        };
        let (c, mock) = mock_client(config);
        assert_eq!(
            c.config().settings().dataset(),
            Some(DEFAULT_DATASET),
            "{blank:?}"
        );
        let mut ev = c.new_event();
        ev.add_field("x", 1);
        ev.send().unwrap();
        assert_eq!(mock.events()[0].dataset(), "unknown_dataset");
    }

    // The same rules apply to datasets set on builders and events.
    let (c, _mock) = mock_client(env().dataset("d"));
    let mut b = c.new_builder();
    b.set_dataset(" b ");
    assert_eq!(b.dataset(), "b");
    let mut ev = c.new_event();
    ev.set_dataset("");
    assert_eq!(ev.dataset(), "unknown_dataset");
}

#[test]
fn classic_keys_keep_whitespace_and_need_a_dataset() {
    let classic = || Config::new().read_env(false).api_key(CLASSIC_KEY);

    let (c, mock) = mock_client(classic().dataset(" spaced "));
    assert_eq!(c.config().settings().dataset(), Some(" spaced "));
    let mut ev = c.new_event();
    ev.add_field("x", 1);
    ev.send().unwrap();
    assert_eq!(mock.events()[0].dataset(), " spaced ");

    let ingest = format!("hcxic_{}", "0a".repeat(29));
    for config in [
        classic().dataset(""),
        classic(),
        Config::new().read_env(false).api_key(ingest).dataset(""),
    ] {
        let (c, mock) = mock_client(config);
        let responses = c.responses();
        let mut ev = c.new_event();
        ev.add_field("x", 1);
        assert_eq!(ev.send(), Err(SendError::MissingDataset));
        assert!(mock.is_empty());
        assert!(responses.is_empty(), "a refused event gets no response");
    }
}

#[test]
fn a_missing_key_is_a_send_error_not_a_config_error() {
    let (c, mock) = mock_client(Config::new().read_env(false).dataset("d"));
    assert_eq!(c.config().settings().api_key(), None);
    let mut ev = c.new_event();
    ev.add_field("x", 1);
    assert_eq!(ev.send(), Err(SendError::MissingApiKey));
    assert!(mock.is_empty());
    assert!(c.responses().is_empty());
}

#[test]
fn huge_durations_never_panic() {
    // `Duration::MAX` reads as "wait forever"; it must not overflow an
    // `Instant` anywhere (a panic in a transmission thread loses every event).
    // The default transmission is used here, aimed at a closed local port so
    // that each event fails fast with a transport error.
    let forever = Duration::MAX;
    let client = Client::new(
        base()
            .api_host("http://127.0.0.1:9")
            .proxy_from_env(false)
            .max_attempts(1)
            .send_frequency(forever)
            .request_timeout(forever)
            .retry_deadline(forever)
            .retry_backoff(forever, forever)
            .shutdown_timeout(forever),
    )
    .unwrap();
    let responses = client.responses();
    let mut ev = client.new_event();
    ev.add_field("x", 1);
    ev.send().unwrap();
    client.flush_within(Duration::MAX).unwrap();
    let r = responses.try_recv().expect("one response after the flush");
    assert!(
        matches!(r.error, Some(libhoney::ResponseError::Transport(_))),
        "{r:?}"
    );
    client.close_within(Duration::MAX).unwrap();
    assert!(responses.recv().is_none());
}
