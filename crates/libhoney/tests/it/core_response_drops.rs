//! The response queue, full and not blocking, keeps error responses in
//! preference to successes (issue #13, item 6), through a client.

use libhoney::transmission::Mock;
use libhoney::{Client, Config, Response, ResponseError};
use std::time::Duration;

fn client(capacity: usize) -> Client {
    let mock = Mock::new().respond_with(|ev| {
        if ev.get("fail").is_some() {
            Response::failure(None, ResponseError::Rejected("refused".into()))
        } else {
            Response::success(None, Some(202), Duration::ZERO)
        }
    });
    Client::new(
        Config::new()
            .api_key("k")
            .dataset("d")
            .response_queue_capacity(capacity)
            .transmission(mock),
    )
    .unwrap()
}

fn send(client: &Client, id: u64, fail: bool) {
    let mut ev = client.new_event();
    ev.add_field("id", id).add_metadata(id);
    if fail {
        ev.add_field("fail", true);
    }
    ev.send().unwrap();
}

fn ids(responses: &[Response]) -> Vec<(u64, bool)> {
    responses
        .iter()
        .map(|r| {
            let id = *r.metadata.as_ref().unwrap().downcast_ref::<u64>().unwrap();
            (id, r.is_success())
        })
        .collect()
}

#[test]
fn a_full_queue_nobody_reads_keeps_the_errors() {
    let client = client(8);
    let responses = client.responses();
    for id in 0..20 {
        send(&client, id, false);
    }
    for id in 20..23 {
        send(&client, id, true);
    }
    for id in 23..43 {
        send(&client, id, false);
    }
    let got: Vec<Response> = std::iter::from_fn(|| responses.try_recv().ok()).collect();
    let got = ids(&got);
    assert_eq!(
        got,
        vec![
            (3, true),
            (4, true),
            (5, true),
            (6, true),
            (7, true),
            (20, false),
            (21, false),
            (22, false)
        ],
        "the errors took the places of the oldest successes"
    );
    assert_eq!(client.metrics().responses_dropped, 43 - 8);
}

#[test]
fn a_queue_full_of_errors_drops_the_newest_error() {
    let client = client(2);
    let responses = client.responses();
    for id in 0..3 {
        send(&client, id, true);
    }
    let got: Vec<Response> = std::iter::from_fn(|| responses.try_recv().ok()).collect();
    assert_eq!(ids(&got), vec![(0, false), (1, false)]);
    assert_eq!(client.metrics().responses_dropped, 1);
}
