//! The API key (and a proxy password) never appear in Debug output or error
//! messages of a client using the default HTTP transmission.

use crate::http_support;

use http_support::*;
use libhoney::{mask_key, Client, ConfigError};

const SECRET: &str = "hcaik_01hqk4k20zjjkq7ysa4m5sgjpjSECRET";
const PROXY_PASSWORD: &str = "pr0xy-pa55word";

fn assert_masked(text: &str) {
    assert!(!text.contains(SECRET), "key in {text}");
    assert!(!text.contains("SECRET"), "part of the key in {text}");
    assert!(!text.contains(PROXY_PASSWORD), "proxy password in {text}");
}

#[test]
fn debug_output_masks_the_key_and_the_proxy_password() {
    let rx = receiver();
    let config = config(&rx)
        .api_key(SECRET)
        .proxy(format!("http://user:{PROXY_PASSWORD}@127.0.0.1:9"));
    let config_debug = format!("{config:?}");
    assert_masked(&config_debug);
    assert!(config_debug.contains(&mask_key(SECRET)), "{config_debug}");

    let client = Client::new(config).unwrap();
    let texts = [
        format!("{client:?}"),
        format!("{:#?}", client),
        format!("{:?}", client.config()),
        format!("{:?}", client.new_builder()),
        format!("{:?}", client.new_event()),
        format!("{:?}", client.responses()),
        format!("{:?}", client.metrics()),
    ];
    for t in &texts {
        assert_masked(t);
    }
    assert!(texts[0].contains(&mask_key(SECRET)), "{}", texts[0]);

    // A key set on a builder or an event is masked too.
    let mut b = client.new_builder();
    b.set_api_key(format!("{SECRET}-builder"));
    assert_masked(&format!("{b:?}"));
    let mut ev = client.new_event();
    ev.set_api_key(format!("{SECRET}-event"));
    ev.add_field("id", 1);
    assert_masked(&format!("{ev:?}"));
    let _ = client.close_within(std::time::Duration::from_millis(100));
}

#[test]
fn errors_do_not_repeat_the_proxy_url() {
    let bad = [
        format!("http://user:{PROXY_PASSWORD}@host:notaport"),
        format!("ftp://user:{PROXY_PASSWORD}@host:1"),
    ];
    for proxy in bad {
        let err = Client::new(
            libhoney::Config::new()
                .read_env(false)
                .api_key(SECRET)
                .dataset("d")
                .proxy(proxy.clone()),
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::InvalidProxy { .. }), "{err:?}");
        assert_masked(&err.to_string());
        assert_masked(&format!("{err:?}"));
    }
}

#[test]
fn responses_of_a_rejected_key_do_not_carry_it() {
    let rx = receiver();
    let client = client(config(&rx).api_key(SECRET));
    let sent = send_ids(&client, 0..2);
    let responses = close_and_collect(&client);
    let tally = check_invariant(&sent, &responses, &rx, &client.metrics());
    assert_eq!(tally.failed.len(), 2);
    for r in &responses {
        assert_masked(&format!("{r:?}"));
        assert_masked(&r.error.as_ref().unwrap().to_string());
    }
    // The key did go on the wire, in the header only.
    let req = &rx.requests()[0];
    assert_eq!(header(req, "x-honeycomb-team"), Some(SECRET));
    assert!(!req.path.contains(SECRET));
}
