//! `Debug` output never shows the API key.

use crate::common;

use common::{base, mock_client, SharedBuf, SECRET_KEY};
use libhoney::transmission::{Discard, Writer};
use libhoney::{mask_key, Client, Config};

/// The key must not appear, nor any part of it longer than the four last
/// characters that masking shows on purpose.
fn assert_hidden(what: &str, text: &str) {
    assert!(!text.contains(SECRET_KEY), "{what} shows the key: {text}");
    let head = &SECRET_KEY[..SECRET_KEY.len() - 4];
    for w in head.as_bytes().windows(8) {
        let part = std::str::from_utf8(w).unwrap();
        assert!(!text.contains(part), "{what} shows {part:?}: {text}");
    }
}

#[test]
fn debug_output_masks_the_key_everywhere() {
    let config = base().proxy("http://user:proxypass@proxy:3128");
    let config_debug = format!("{config:?}");
    assert_hidden("Config", &config_debug);
    assert!(
        config_debug.contains(&mask_key(SECRET_KEY)),
        "{config_debug}"
    );
    assert!(!config_debug.contains("proxypass"), "{config_debug}");
    assert_hidden("Config (pretty)", &format!("{config:#?}"));

    let (client, mock) = mock_client(config);
    assert_hidden("Client", &format!("{client:?}"));
    assert_hidden("Client (pretty)", &format!("{client:#?}"));

    let mut builder = client.new_builder();
    builder.add_field("b", 1);
    assert_hidden("Builder", &format!("{builder:?}"));
    builder.set_api_key(format!("{SECRET_KEY}-builder"));
    assert_hidden("Builder with its own key", &format!("{builder:#?}"));

    let mut ev = client.new_event();
    ev.add_field("x", 1).add_metadata(String::from("meta"));
    assert_hidden("Event", &format!("{ev:?}"));
    ev.set_api_key(SECRET_KEY);
    assert_hidden("Event (pretty)", &format!("{ev:#?}"));
    ev.send().unwrap();

    let queued = &mock.events()[0];
    assert_eq!(queued.api_key(), SECRET_KEY, "transmissions can read it");
    assert_hidden("QueuedEvent", &format!("{queued:?}"));
    assert_hidden("Mock", &format!("{mock:?}"));
    let response = client.responses().try_recv().unwrap();
    assert_hidden("Response", &format!("{response:?}"));
    assert_hidden("Responses", &format!("{:?}", client.responses()));
    assert_hidden("MetricsSnapshot", &format!("{:?}", client.metrics()));
    client.close().unwrap();
    assert_hidden("closed Client", &format!("{client:?}"));

    let writer_client =
        Client::new(base().transmission(Writer::new(SharedBuf::default()))).unwrap();
    assert_hidden("Client with Writer", &format!("{writer_client:?}"));
    let w = Writer::new(SharedBuf::default());
    assert_hidden("Writer", &format!("{w:?}"));

    // Errors never carry the key either.
    let err = Client::new(base().sample_rate(0).transmission(Discard::new())).unwrap_err();
    assert_hidden("ConfigError", &format!("{err:?} {err}"));
}

#[test]
fn masking_keeps_only_the_last_four_characters() {
    assert_eq!(mask_key("fibble"), "XXbble");
    assert_eq!(mask_key("abcd"), "XXXX");
    assert_eq!(mask_key("abc"), "XXX");
    assert_eq!(mask_key(""), "");
    assert_eq!(mask_key("ключ-1234"), "XXXXX1234", "characters, not bytes");
    let short = Config::new().api_key("abcd");
    assert!(!format!("{short:?}").contains("abcd"));
}
