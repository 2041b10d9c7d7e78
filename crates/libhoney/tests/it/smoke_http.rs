use libhoney::{Client, Config};
use libhoney_receiver::Receiver;
use std::time::Duration;

#[test]
fn events_reach_the_receiver() {
    let rx = Receiver::builder().api_key("key1").start().unwrap();
    let client = Client::new(
        Config::new()
            .read_env(false)
            .api_key("key1")
            .dataset("smoke ds")
            .api_host(rx.url()),
    )
    .unwrap();
    let responses = client.responses();
    for i in 0..250 {
        let mut ev = client.new_event();
        ev.add_field("i", i)
            .add_field("name", "smoke")
            .add_field("nan", f64::NAN);
        ev.add_metadata(i);
        ev.send().unwrap();
    }
    client.flush_within(Duration::from_secs(10)).unwrap();
    let got: Vec<_> = responses.try_iter().collect();
    assert_eq!(got.len(), 250);
    assert!(
        got.iter()
            .all(|r| r.is_success() && r.status_code == Some(202)),
        "{:?}",
        got.iter().find(|r| !r.is_success())
    );
    let events = rx.events();
    assert_eq!(events.len(), 250);
    assert_eq!(events[0].dataset, "smoke ds");
    assert_eq!(events[0].data["nan"], "NaN");
    let req = &rx.requests()[0];
    assert_eq!(req.content_encoding.as_deref(), Some("zstd"));
    println!("{:?}", req.user_agent);
    client.close().unwrap();
    assert!(responses.recv().is_none());
    println!("{:?}", client.metrics());
}
