//! Batching of the default HTTP transmission, over real HTTP: grouping by
//! (API host, API key, dataset), the size and time triggers, the per-event
//! size limit, and splitting of batches over the body limit.

use crate::http_support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http_support::*;
use libhoney::{Encoding, ResponseError};
use libhoney_receiver::Receiver;

#[test]
fn events_are_grouped_by_host_key_and_dataset() {
    let rx = Receiver::builder()
        .api_key(KEY)
        .api_key("second-key")
        .start()
        .unwrap();
    let rx2 = receiver();
    let client = client(one_batch(&rx));
    let other = {
        let mut b = client.new_builder();
        b.set_dataset("other");
        b
    };
    let mut sent = Vec::new();
    let mut id = 0u64;
    let mut next = || {
        id += 1;
        id
    };
    // Interleaved, so that grouping (not arrival order) decides the batches.
    for round in 0..3 {
        let i = next();
        send_id(&client, i);
        sent.push(i);
        if round < 2 {
            let i = next();
            let mut ev = other.new_event();
            ev.add_field("id", i).add_metadata(i);
            ev.send().unwrap();
            sent.push(i);

            let i = next();
            let mut ev = client.new_event();
            ev.add_field("id", i).add_metadata(i);
            ev.set_api_key("second-key");
            ev.send().unwrap();
            sent.push(i);
        }
    }
    let i = next();
    let mut ev = client.new_event();
    ev.add_field("id", i).add_metadata(i);
    ev.set_api_host(rx2.url());
    ev.send().unwrap();
    sent.push(i);

    client.flush_within(PATIENCE).unwrap();
    let responses = client.responses();
    let got = take_n(&responses, sent.len());
    assert!(got.iter().all(|r| r.is_success()), "{got:?}");

    let mut groups: Vec<(String, String, usize)> = rx
        .requests()
        .iter()
        .map(|r| {
            (
                r.dataset.clone().unwrap(),
                header(r, "x-honeycomb-team").unwrap().to_string(),
                r.events,
            )
        })
        .collect();
    groups.sort();
    assert_eq!(
        groups,
        vec![
            ("other".to_string(), KEY.to_string(), 2),
            ("wire".to_string(), KEY.to_string(), 3),
            ("wire".to_string(), "second-key".to_string(), 2),
        ]
    );
    for ev in rx.events() {
        let id = ev.data["id"].as_u64().unwrap();
        let want = match id {
            1 | 4 | 7 => ("wire", KEY),
            2 | 5 => ("other", KEY),
            3 | 6 => ("wire", "second-key"),
            other => panic!("unexpected id {other} on the first receiver"),
        };
        assert_eq!((ev.dataset.as_str(), ev.api_key.as_str()), want, "{id}");
    }
    let on_rx2 = rx2.requests();
    assert_eq!(on_rx2.len(), 1);
    assert_eq!(on_rx2[0].events, 1);
    assert_eq!(rx2.events()[0].data["id"], 8);
    client.close().unwrap();
}

#[test]
fn a_batch_goes_out_when_it_reaches_max_batch_size() {
    let rx = receiver();
    let client = client(
        config(&rx)
            .max_batch_size(5)
            .send_frequency(Duration::from_secs(3600)),
    );
    let sent = send_ids(&client, 0..12);
    // No flush: only the size trigger can send these.
    assert!(rx.wait_for_events(10, PATIENCE), "two full batches arrive");
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert!(reqs.iter().all(|r| r.events == 5));
    let first_ten: BTreeSet<u64> = (0..10).collect();
    assert_eq!(accepted_ids(&rx), first_ten);
    // The last two wait for their batch to fill or its time; close sends them.
    let responses = close_and_collect(&client);
    let tally = check_invariant(&sent, &responses, &rx, &client.metrics());
    assert_eq!(tally.ok.len(), 12);
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[2].events, 2);
    assert_eq!(client.metrics().batches_sent, 3);
}

#[test]
fn a_batch_goes_out_send_frequency_after_its_first_event() {
    let rx = receiver();
    let client = client(
        config(&rx)
            .max_batch_size(100_000)
            .send_frequency(Duration::from_millis(150)),
    );
    // A single event goes out on time, without flush.
    send_id(&client, 0);
    assert!(rx.wait_for_events(1, PATIENCE), "sent by the time trigger");

    // The timer starts with the batch's first event and is not pushed back by
    // later ones: while events keep arriving (faster than the frequency),
    // batches still go out.
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (client, stop) = (client.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut id = 1;
            let deadline = std::time::Instant::now() + PATIENCE;
            while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
                send_id(&client, id);
                id += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            id
        })
    };
    let reached = wait_until(PATIENCE, || rx.stats().requests >= 3);
    stop.store(true, Ordering::Relaxed);
    let last = sender.join().unwrap();
    assert!(
        reached,
        "batches must go out while events keep arriving: {:?}",
        rx.stats()
    );
    let sent: Vec<u64> = (0..last).collect();
    let responses = close_and_collect(&client);
    let tally = check_invariant(&sent, &responses, &rx, &client.metrics());
    assert_eq!(tally.ok.len(), sent.len());
}

/// Six datasets interleaved from one thread, more than a lane keeps open
/// at once (four): every event still reaches its own dataset exactly once,
/// and no request holds more than `max_batch_size` events.
#[test]
fn interleaved_datasets_each_get_exactly_their_events() {
    let rx = receiver();
    let client = client(one_batch(&rx).max_batch_size(7));
    let datasets = ["d0", "d1", "d2", "d3", "d4", "d5"];
    let mut sent = Vec::new();
    for id in 0..120u64 {
        let mut ev = client.new_event();
        ev.add_field("id", id).add_metadata(id);
        ev.set_dataset(datasets[id as usize % datasets.len()]);
        ev.send().unwrap();
        sent.push(id);
    }
    let responses = close_and_collect(&client);
    let tally = check_invariant(&sent, &responses, &rx, &client.metrics());
    assert_eq!(tally.ok.len(), sent.len());
    let mut got: Vec<(String, u64)> = rx
        .events()
        .iter()
        .map(|e| (e.dataset.clone(), e.data["id"].as_u64().unwrap()))
        .collect();
    got.sort();
    let mut want: Vec<(String, u64)> = sent
        .iter()
        .map(|&id| (datasets[id as usize % datasets.len()].to_string(), id))
        .collect();
    want.sort();
    assert_eq!(got, want);
    assert!(rx.requests().iter().all(|r| r.events <= 7));
}

/// A client idle long enough for its batcher to wait on its queue with no
/// deadline still sends a lone event on time. In the `http_lanes` binary the
/// event goes into a lane, not the queue, and only the lane's wake-up tells
/// the batcher its deadline: without it the event would wait for the close.
#[test]
fn an_idle_clients_lone_event_goes_out_on_the_timer() {
    let rx = receiver();
    let client = client(
        config(&rx)
            .max_batch_size(100_000)
            .send_frequency(Duration::from_millis(50)),
    );
    for round in 0..2u64 {
        // Well past the batcher's 50 rounds of 1 ms before it waits.
        std::thread::sleep(Duration::from_millis(300));
        send_id(&client, round);
        assert!(
            rx.wait_for_events(round as usize + 1, PATIENCE),
            "round {round}: sent by the time trigger, before any flush"
        );
    }
    let responses = close_and_collect(&client);
    let tally = check_invariant(&[0, 1], &responses, &rx, &client.metrics());
    assert_eq!(tally.ok.len(), 2);
}

fn too_large_is_answered_and_the_rest_delivered(encoding: Encoding) {
    let rx = receiver();
    let client = client(one_batch(&rx).encoding(encoding));
    let sent = send_ids(&client, 0..3);
    let mut big = client.new_event();
    big.add_field("id", 3)
        .add_field("name", "big-one")
        .add_field("service.name", "svc")
        .add_field("blob", "x".repeat(1_000_001));
    big.add_metadata(3u64);
    big.send().unwrap();
    let sent: Vec<u64> = sent.into_iter().chain(3..6).collect();
    send_ids(&client, 4..6);
    let responses = close_and_collect(&client);
    let tally = check_invariant(&sent, &responses, &rx, &client.metrics());
    assert_eq!(tally.ok, [0, 1, 2, 4, 5].into_iter().collect());
    let r = &tally.failed[&3];
    match &r.error {
        Some(ResponseError::TooLarge {
            size,
            limit,
            name,
            service_name,
        }) => {
            assert!(*size > 1_000_001 && *size < 1_000_200, "{size}");
            assert_eq!(*limit, 1_000_000);
            assert_eq!(name.as_deref(), Some("big-one"));
            assert_eq!(service_name.as_deref(), Some("svc"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.status_code, None);
    let msg = r.error.as_ref().unwrap().to_string();
    assert!(
        msg.contains("big-one") && msg.contains("svc") && msg.contains("1000000"),
        "{msg}"
    );
    assert_eq!(rx.requests().len(), 1, "the others went in one request");
}

#[test]
fn an_event_over_the_api_limit_gets_too_large_json() {
    too_large_is_answered_and_the_rest_delivered(Encoding::Json);
}

#[test]
fn an_event_over_the_api_limit_gets_too_large_msgpack() {
    too_large_is_answered_and_the_rest_delivered(Encoding::Msgpack);
}

#[test]
fn max_event_bytes_lowers_the_event_limit() {
    for encoding in [Encoding::Json, Encoding::Msgpack] {
        let rx = receiver();
        let client = client(config(&rx).encoding(encoding).max_event_bytes(500));
        let mut sent = Vec::new();
        for id in 0..10u64 {
            let mut ev = client.new_event();
            // Even ids are small, odd ids are over 500 bytes.
            let pad = if id % 2 == 0 { 10 } else { 600 };
            ev.add_field("id", id)
                .add_field("pad", "p".repeat(pad))
                .add_metadata(id);
            if id == 3 {
                ev.add_field("service.name", "only-service");
            }
            ev.send().unwrap();
            sent.push(id);
        }
        let responses = close_and_collect(&client);
        let tally = check_invariant(&sent, &responses, &rx, &client.metrics());
        assert_eq!(tally.ok, [0, 2, 4, 6, 8].into_iter().collect());
        for (id, r) in &tally.failed {
            match &r.error {
                Some(ResponseError::TooLarge {
                    size,
                    limit,
                    name,
                    service_name,
                }) => {
                    assert!(*size > 600, "{size}");
                    assert_eq!(*limit, 500);
                    assert_eq!(name, &None);
                    let want = (*id == 3).then(|| "only-service".to_string());
                    assert_eq!(service_name, &want);
                }
                other => panic!("{encoding:?} {id}: {other:?}"),
            }
        }
    }
}

#[test]
fn a_batch_over_max_batch_bytes_is_split_never_dropped() {
    for encoding in [Encoding::Json, Encoding::Msgpack] {
        let rx = receiver();
        let limit = 2_000;
        let client = client(
            config(&rx)
                .encoding(encoding)
                .max_batch_bytes(limit)
                .max_batch_size(10_000)
                .send_frequency(Duration::from_secs(3600)),
        );
        let mut sent = Vec::new();
        for id in 0..60u64 {
            let mut ev = client.new_event();
            // Varying sizes, 100 to 400 bytes.
            ev.add_field("id", id)
                .add_field("pad", "p".repeat(100 + (id as usize * 37) % 300))
                .add_metadata(id);
            ev.send().unwrap();
            sent.push(id);
        }
        let responses = close_and_collect(&client);
        let tally = check_invariant(&sent, &responses, &rx, &client.metrics());
        assert_eq!(tally.ok.len(), 60, "{encoding:?}: none dropped");
        let reqs = rx.requests();
        assert!(reqs.len() >= 8, "{encoding:?}: split into {}", reqs.len());
        for r in &reqs {
            assert!(
                r.decoded_body.len() <= limit,
                "{encoding:?}: a body of {} bytes",
                r.decoded_body.len()
            );
            assert_eq!(r.response_status, 200);
        }
        // Splitting keeps the order of events within each request (requests
        // themselves go out concurrently, in any order).
        for r in &reqs {
            let ids: Vec<u64> = rx
                .events()
                .iter()
                .filter(|e| e.request_index == r.index)
                .map(|e| e.data["id"].as_u64().unwrap())
                .collect();
            assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
        }
    }
}

/// An event that fits the body limit only without the batch framing (the
/// array brackets or header) must not make a body over the limit.
#[test]
fn no_body_exceeds_max_batch_bytes_even_for_one_event() {
    for encoding in [Encoding::Json, Encoding::Msgpack] {
        let limit = 400;
        let rx = Receiver::builder()
            .api_key(KEY)
            .max_body_bytes(limit)
            .start()
            .unwrap();
        let client = client(
            config(&rx)
                .encoding(encoding)
                .max_batch_bytes(limit)
                .max_batch_size(1),
        );
        let mut sent = Vec::new();
        // Sizes that sweep across the limit, one event per batch.
        for (id, pad) in (330..420).enumerate() {
            let id = id as u64;
            let mut ev = client.new_event();
            ev.add_field("id", id)
                .add_field("pad", "p".repeat(pad))
                .add_metadata(id);
            ev.send().unwrap();
            sent.push(id);
        }
        let responses = close_and_collect(&client);
        let tally = check_invariant(&sent, &responses, &rx, &client.metrics());
        for r in rx.requests() {
            assert!(
                r.decoded_body.len() <= limit,
                "{encoding:?}: a body of {} bytes over the {limit} limit",
                r.decoded_body.len()
            );
        }
        for (id, r) in &tally.failed {
            assert!(
                matches!(r.error, Some(ResponseError::TooLarge { .. })),
                "{encoding:?} {id}: {r:?}"
            );
        }
        assert!(!tally.ok.is_empty() && !tally.failed.is_empty());
    }
}

/// Adds string fields `p0`, `p1`, ... (each under the receiver's 64 KB
/// string limit) so that the event's JSON is exactly `size` bytes:
/// `{"data":{"id":N,"p0":"...",...},"time":"2023-11-14T22:13:20.123456789Z"}`.
fn event_of_json_size(client: &libhoney::Client, id: u64, size: usize) {
    const CHUNK: usize = 60_000;
    let frame =
        format!(r#"{{"data":{{"id":{id}}},"time":"2023-11-14T22:13:20.123456789Z"}}"#).len();
    let mut left = size - frame;
    let mut ev = client.new_event();
    ev.add_field("id", id).set_timestamp(fixed_time());
    ev.add_metadata(id);
    let mut i = 0;
    while left > 0 {
        let name = format!("p{i}");
        // ,"pN":"" costs name + 6 bytes around the value.
        let overhead = name.len() + 6;
        assert!(left > overhead, "test bug: cannot hit the size exactly");
        let mut n = (left - overhead).min(CHUNK);
        if left - overhead - n != 0 && left - overhead - n <= 10 {
            n -= 20; // leave room for one more field
        }
        ev.add_field(name, "x".repeat(n));
        left -= overhead + n;
        i += 1;
    }
    ev.send().unwrap();
}

/// The SDK and the receiver agree on the API's event limit: an event of
/// exactly 1,000,000 bytes of JSON goes and is accepted, one byte more is
/// answered TooLarge with its exact size and never sent.
#[test]
fn the_event_limit_is_exact_and_agrees_with_the_receiver() {
    let rx = receiver();
    let client = client(one_batch(&rx));
    event_of_json_size(&client, 0, 1_000_000);
    event_of_json_size(&client, 1, 1_000_001);
    send_ids(&client, 2..4);
    let responses = close_and_collect(&client);
    let tally = check_invariant(&[0, 1, 2, 3], &responses, &rx, &client.metrics());
    assert_eq!(tally.ok, [0, 2, 3].into_iter().collect());
    match &tally.failed[&1].error {
        Some(ResponseError::TooLarge { size, limit, .. }) => {
            assert_eq!((*size, *limit), (1_000_001, 1_000_000));
        }
        other => panic!("{other:?}"),
    }
    // The first item of the body is that event, exactly 1,000,000 bytes.
    let req = &rx.requests()[0];
    let body = String::from_utf8(req.decoded_body.clone()).unwrap();
    let end = body.find(r#"},{"data""#).expect("a second event") + 1;
    assert!(body[1..].starts_with(r#"{"data":{"id":0,"#));
    assert_eq!(end - 1, 1_000_000);
}

/// With the default limits, a flush of events near the 1,000,000-byte event
/// limit is split under the 5,000,000-byte body limit, which the receiver
/// enforces by default too: nothing is rejected or dropped.
#[test]
fn default_limits_split_big_batches_the_receiver_accepts() {
    let rx = receiver();
    let client = client(one_batch(&rx));
    for id in 0..12 {
        event_of_json_size(&client, id, 999_000);
    }
    let responses = close_and_collect(&client);
    let sent: Vec<u64> = (0..12).collect();
    let tally = check_invariant(&sent, &responses, &rx, &client.metrics());
    assert_eq!(tally.ok.len(), 12);
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 3, "5 + 5 + 2 events");
    for r in &reqs {
        assert!(r.decoded_body.len() <= libhoney::API_MAX_BATCH_BYTES);
        assert_eq!(r.response_status, 200);
    }
}

/// With `EncodeOn::Adaptive` (the default), a flood from two threads into a
/// small queue puts the batcher behind, so batches mix events that `send`
/// encoded with events the batcher encodes, and events too large to send
/// (which stay unencoded either way). Each response must still belong to
/// its event: the too-large ones, and only they, fail, and the receiver has
/// every other event, once, with its own id (so metadata never slid against
/// the bodies). Checked in both encodings and with `EncodeOn::Send` too.
#[test]
fn adaptive_encoding_under_load_keeps_every_response_with_its_event() {
    use libhoney::EncodeOn;
    for encoding in [Encoding::Json, Encoding::Msgpack] {
        for on in [EncodeOn::Adaptive, EncodeOn::Send] {
            let rx = receiver();
            let client = client(
                config(&rx)
                    .encoding(encoding)
                    .encode_on(on)
                    .block_on_send(true)
                    .pending_work_capacity(64)
                    .max_batch_size(25)
                    .max_event_bytes(300),
            );
            let reader = spawn_reader(&client);
            let big = "x".repeat(400);
            let senders: Vec<_> = (0..2u64)
                .map(|k| {
                    let (client, big) = (client.clone(), big.clone());
                    std::thread::spawn(move || {
                        (0..3_000u64)
                            .map(|i| i * 2 + k)
                            .inspect(|&id| {
                                let mut ev = client.new_event();
                                ev.add_field("id", id).add_field("f", id as f64 / 8.0);
                                if id % 7 == 0 {
                                    ev.add_field("big", big.as_str());
                                }
                                ev.add_metadata(id);
                                ev.send().expect("accepted");
                            })
                            .collect::<Vec<u64>>()
                    })
                })
                .collect();
            let sent: Vec<u64> = senders
                .into_iter()
                .flat_map(|s| s.join().unwrap())
                .collect();
            client.close().unwrap();
            let got = reader.join().unwrap();
            let tally = check_invariant(&sent, &got, &rx, &client.metrics());
            let too_large: BTreeSet<u64> = sent.iter().copied().filter(|id| id % 7 == 0).collect();
            assert_eq!(
                tally.failed.keys().copied().collect::<BTreeSet<u64>>(),
                too_large,
                "{encoding:?} {on:?}: exactly the large events failed"
            );
            assert!(tally
                .failed
                .values()
                .all(|r| matches!(r.error, Some(ResponseError::TooLarge { .. }))));
            for ev in rx.events() {
                let id = ev.data["id"].as_u64().unwrap();
                assert_eq!(
                    ev.data["f"].as_f64(),
                    Some(id as f64 / 8.0),
                    "{encoding:?} {on:?}"
                );
            }
            assert_eq!(tally.ok.len(), sent.len() - too_large.len());
        }
    }
}
