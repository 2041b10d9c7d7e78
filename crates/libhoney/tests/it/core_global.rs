//! The process-wide default client. Its state is global, so this module has a
//! single test whose steps run in order, alone in a child process
//! (`own_process`, see `main.rs`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use libhoney::transmission::Mock;
use libhoney::{Config, ConfigError, FieldError, FlushError, GlobalError, NotInitialized, Value};

fn config(mock: &Mock) -> Config {
    Config::new()
        .read_env(false)
        .api_key("global-key")
        .dataset("global-ds")
        .transmission(mock.clone())
}

fn assert_not_initialized() {
    assert_eq!(libhoney::client().err(), Some(NotInitialized));
    assert_eq!(libhoney::add_field("k", 1), Err(NotInitialized));
    assert_eq!(
        libhoney::add(&[("k", 1)].into_iter().collect::<BTreeMap<_, _>>()),
        Err(GlobalError::<FieldError>::NotInitialized)
    );
    assert_eq!(libhoney::add_dynamic_field("d", || 1), Err(NotInitialized));
    assert_eq!(libhoney::new_event().err(), Some(NotInitialized));
    assert_eq!(libhoney::new_builder().err(), Some(NotInitialized));
    assert_eq!(libhoney::responses().err(), Some(NotInitialized));
    assert_eq!(
        libhoney::flush(),
        Err(GlobalError::<FlushError>::NotInitialized)
    );
    assert_eq!(libhoney::close(), Ok(()), "close before init does nothing");
}

#[test]
fn global_client_lifecycle() {
    if !crate::own_process::alone(module_path!(), "global_client_lifecycle") {
        return;
    }
    // 1. Before init every function says so; none panics.
    assert_not_initialized();
    assert!(NotInitialized.to_string().contains("init"));
    assert!(GlobalError::<FieldError>::NotInitialized
        .to_string()
        .contains("init"));
    assert!(GlobalError::<FlushError>::NotInitialized
        .to_string()
        .contains("init"));

    // 2. A bad config installs nothing; every kind of invalid setting is a
    //    typed error from init too.
    let err = libhoney::init(config(&Mock::new()).sample_rate(0)).unwrap_err();
    assert_eq!(err, ConfigError::ZeroSampleRate);
    type Check = fn(&ConfigError) -> bool;
    let bad: Vec<(Config, Check)> = vec![
        (config(&Mock::new()).max_batch_size(0), |e| {
            matches!(
                e,
                ConfigError::Zero {
                    option: "max_batch_size"
                }
            )
        }),
        (
            config(&Mock::new()).send_frequency(std::time::Duration::ZERO),
            |e| {
                matches!(
                    e,
                    ConfigError::ZeroDuration {
                        option: "send_frequency"
                    }
                )
            },
        ),
        (config(&Mock::new()).api_host("nope"), |e| {
            matches!(e, ConfigError::InvalidApiHost { .. })
        }),
        (config(&Mock::new()).proxy("socks5://p:1"), |e| {
            matches!(e, ConfigError::InvalidProxy { .. })
        }),
        (config(&Mock::new()).compression_level(99), |e| {
            matches!(e, ConfigError::InvalidCompressionLevel { level: 99, .. })
        }),
    ];
    for (c, is_expected) in bad {
        let err = libhoney::init(c).unwrap_err();
        assert!(is_expected(&err), "{err:?}");
    }
    assert_not_initialized();

    // 3. init installs a default client that every function uses.
    let first = Mock::new();
    // `into_client` gives up init's guard: this client then closes when its
    //  last handle goes, as any client (steps 5 and 6 rely on that).
    let first_handle = libhoney::init(config(&first))
        .unwrap()
        .into_client()
        .unwrap();
    let counter = Arc::new(AtomicU64::new(0));
    let c = Arc::clone(&counter);
    libhoney::add_field("build", "b1").unwrap();
    libhoney::add(&[("region", "eu")].into_iter().collect::<BTreeMap<_, _>>()).unwrap();
    assert_eq!(
        libhoney::add(&vec![1, 2]),
        Err(GlobalError::Client(FieldError::NotAnObject {
            found: "a sequence"
        }))
    );
    libhoney::add_dynamic_field("calls", move || c.fetch_add(1, Ordering::SeqCst) + 1).unwrap();
    let responses = libhoney::responses().unwrap();
    let mut ev = libhoney::new_event().unwrap();
    ev.add_field("n", 1).add_metadata("first-event");
    ev.send().unwrap();
    let mut b = libhoney::new_builder().unwrap();
    b.add_field("component", "db");
    let mut ev = b.new_event();
    ev.add_field("n", 2);
    ev.send().unwrap();
    libhoney::flush().unwrap();
    assert_eq!(first.flush_count(), 1);
    let sent = first.events();
    assert_eq!(sent.len(), 2);
    for (i, ev) in sent.iter().enumerate() {
        assert_eq!(ev.get("build").and_then(Value::as_str), Some("b1"));
        assert_eq!(ev.get("region").and_then(Value::as_str), Some("eu"));
        assert_eq!(ev.get("calls").and_then(Value::as_u64), Some(i as u64 + 1));
        assert_eq!(ev.dataset(), "global-ds");
    }
    assert_eq!(sent[1].get("component").and_then(Value::as_str), Some("db"));
    let r = responses.try_recv().unwrap();
    assert_eq!(
        r.metadata.unwrap().downcast_ref::<&str>(),
        Some(&"first-event")
    );
    // The handle init returned is the default client.
    first_handle.add_field("via_handle", true);
    assert!(libhoney::new_event().unwrap().get("via_handle").is_some());

    // 4. A failed re-init keeps the current default.
    assert!(libhoney::init(config(&Mock::new()).max_batch_size(0)).is_err());
    let mut ev = libhoney::new_event().unwrap();
    ev.add_field("n", 3);
    ev.send().unwrap();
    assert_eq!(first.len(), 3);

    // 5. init again replaces the default. The old client is not closed while
    //    a handle to it lives (here: `first_handle` and an unsent event)...
    let old_event = {
        let mut ev = libhoney::new_event().unwrap();
        ev.add_field("n", 4);
        ev
    };
    let second = Mock::new();
    let second_handle = libhoney::init(config(&second))
        .unwrap()
        .into_client()
        .unwrap();
    assert_eq!(first.close_count(), 0);
    let mut ev = libhoney::new_event().unwrap();
    ev.add_field("n", 5);
    assert!(ev.get("build").is_none(), "global fields do not carry over");
    ev.send().unwrap();
    assert_eq!(second.len(), 1);
    assert!(!first_handle.is_closed());
    // ...its events still go to it...
    old_event.send().unwrap();
    assert_eq!(first.len(), 4);
    // ...and it closes when its last handle (clients, builders, events) is dropped.
    drop(first_handle);
    assert_eq!(first.close_count(), 0, "the builder `b` still holds it");
    drop(b);
    assert_eq!(first.close_count(), 1);
    let old: Vec<_> = responses.collect();
    assert_eq!(
        old.len(),
        3,
        "the old stream ends after its remaining responses"
    );

    //    Without outstanding handles, replacing closes the old client at once.
    drop(second_handle);
    let third = Mock::new();
    drop(libhoney::init(config(&third)).unwrap().into_client());
    assert_eq!(second.close_count(), 1);
    assert_eq!(third.close_count(), 0);

    // 6. close() closes the default and uninstalls it.
    let responses = libhoney::responses().unwrap();
    let mut ev = libhoney::new_event().unwrap();
    ev.add_field("n", 6);
    ev.send().unwrap();
    libhoney::close().unwrap();
    assert_eq!(third.close_count(), 1);
    assert_not_initialized();
    assert_eq!(responses.count(), 1, "the stream ends after close");

    // 7. init works again after close.
    let fourth = Mock::new();
    let _fourth_guard = libhoney::init(config(&fourth)).unwrap().into_client();
    let mut ev = libhoney::new_event().unwrap();
    ev.add_field("n", 7);
    ev.send().unwrap();
    assert_eq!(fourth.len(), 1);
    libhoney::close().unwrap();
    assert_eq!(fourth.close_count(), 1);
    assert_not_initialized();

    // 8. init's guard flushes, closes and uninstalls the client when dropped,
    //    even while another handle (a layer's clone, say) lives.
    let fifth = Mock::new();
    let guard = libhoney::init(config(&fifth)).unwrap();
    let held = guard.client().unwrap();
    let mut ev = libhoney::new_event().unwrap();
    ev.add_field("n", 8);
    ev.send().unwrap();
    drop(guard);
    assert_eq!(fifth.close_count(), 1);
    assert_eq!(fifth.len(), 1);
    assert!(held.is_closed());
    assert_not_initialized();

    // 9. A guard of a replaced client closes that client only; the default
    //    installed after it stays.
    let sixth = Mock::new();
    let seventh = Mock::new();
    let sixth_guard = libhoney::init(config(&sixth)).unwrap();
    let seventh_guard = libhoney::init(config(&seventh)).unwrap();
    drop(sixth_guard);
    assert_eq!((sixth.close_count(), seventh.close_count()), (1, 0));
    assert!(libhoney::new_event().is_ok());
    // close() through the guard returns the result instead of logging it.
    seventh_guard.close().unwrap();
    assert_eq!(seventh.close_count(), 1);
    assert_not_initialized();

    // 10. close_on_drop() closes whatever client is the default at drop time.
    let eighth = Mock::new();
    let guard = libhoney::close_on_drop();
    assert!(guard.client().is_none());
    let _kept = libhoney::init(config(&eighth)).unwrap().into_client();
    assert!(guard.client().is_some());
    drop(guard);
    assert_eq!(eighth.close_count(), 1);
    assert_not_initialized();
}
