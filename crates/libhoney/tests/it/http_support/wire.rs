//! The wire format both HTTP transmissions share: the golden events, and the
//! wire tests run by `http_wire` and `tokio_wire` alike.

use libhoney::{Client, Value};

use super::{config, fixed_time, send_id, Kind, KEY, PATIENCE};

/// The two events of the golden tests: one with every value kind (and then
/// `extra` fields), and a sampled one; both at [`fixed_time`], with metadata
/// 1 and 2.
pub fn send_golden_events(client: &Client, extra: &[(&'static str, Value)]) {
    let mut ev = client.new_event();
    ev.add_field("str", "h\u{e9} \"q\" \\ /\n\t\u{1}")
        .add_field("int", -5)
        .add_field("big", u64::MAX)
        .add_field("float", 1.5)
        .add_field("yes", true)
        .add_field("nothing", Value::Null)
        .add_field(
            "arr",
            Value::Array(vec![Value::from(1), Value::from("x"), Value::Null]),
        )
        .add_field(
            "obj",
            Value::Object(vec![
                ("k".into(), Value::from("v")),
                ("n".into(), Value::Array(vec![])),
            ]),
        )
        .add_field("nan", f64::NAN);
    for (name, value) in extra {
        ev.add_field(*name, value.clone());
    }
    ev.set_timestamp(fixed_time());
    ev.add_metadata(1u64);
    ev.send().unwrap();
    let mut ev = client.new_event();
    ev.add_field("id", 2);
    ev.set_timestamp(fixed_time());
    ev.set_sample_rate(4);
    ev.add_metadata(2u64);
    ev.send_presampled().unwrap();
}

/// The SDK keeps a path prefix of the API host (as libhoney-go does), with
/// or without a trailing slash, for APIs served behind a path-routing proxy.
pub async fn api_host_path_prefix_is_kept(kind: Kind) {
    let rx = libhoney_receiver::Receiver::builder()
        .api_key(KEY)
        .path_prefix("/prefix")
        .start()
        .expect("receiver starts");
    for (id, host) in [
        (1u64, format!("{}/prefix", rx.url())),
        (2u64, format!("{}/prefix/", rx.url())),
    ] {
        let client = kind.client(config(&rx).api_host(host).dataset("p d"));
        let responses = client.responses();
        send_id(&client, id);
        client.flush(PATIENCE).await.unwrap();
        let got: Vec<_> = std::iter::from_fn(|| responses.try_recv().ok()).collect();
        assert_eq!(got.len(), 1, "answered before the flush returned");
        assert_eq!(got[0].error, None, "{got:?}");
        assert_eq!(got[0].status_code, Some(202));
        assert!(client.close_and_collect().await.is_empty());
    }
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 2);
    for req in reqs {
        assert_eq!(req.path, "/prefix/1/batch/p%20d");
        assert_eq!(req.method, "POST");
    }
    let events = rx.events();
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.dataset == "p d"));
}
