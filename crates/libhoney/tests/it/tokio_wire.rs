//! The tokio transmission on the wire, over real HTTP to the local receiver,
//! on current-thread and multi-thread runtimes: the same requests as the
//! default `Http` transmission for the same events (path, headers, decoded
//! bodies, compressed sizes), batching by destination, size and time, the
//! event and body size limits, and bodies large enough to be compressed on
//! the blocking pool.
use crate::http_support;

use std::collections::BTreeSet;
use std::time::Duration;

use http_support::wire::{self, send_golden_events};
use http_support::*;
use libhoney::{Client, Compression, Encoding, Response, ResponseError, Value};
use libhoney_receiver::{ReceivedRequest, RunningReceiver};

/// The golden events (with an infinity too), then events 3 to 39; all at
/// the fixed time, each with its id as metadata, the second one sampled.
fn send_fixed_events(client: &Client) {
    send_golden_events(client, &[("inf", Value::from(f64::INFINITY))]);
    for id in 3..40u64 {
        let mut ev = client.new_event();
        ev.add_field("id", id).add_field("name", "wire-test");
        ev.set_timestamp(fixed_time());
        ev.add_metadata(id);
        ev.send().unwrap();
    }
}

/// What must be the same in the requests of both transmissions.
fn comparable(r: &ReceivedRequest) -> impl PartialEq + std::fmt::Debug {
    let mut headers: Vec<(String, String)> = r
        .headers
        .iter()
        // The port differs; the rest must not.
        .filter(|(k, _)| k != "host")
        .cloned()
        .collect();
    headers.sort();
    (
        r.method.clone(),
        r.path.clone(),
        headers,
        r.body_bytes,
        r.events,
        r.response_status,
    )
}

async fn same_requests_as_http() {
    let combos = [
        (Encoding::Json, Compression::Zstd),
        (Encoding::Json, Compression::Gzip),
        (Encoding::Json, Compression::None),
        (Encoding::Msgpack, Compression::Zstd),
        (Encoding::Msgpack, Compression::None),
    ];
    for (encoding, compression) in combos {
        let cfg = |rx: &RunningReceiver| {
            config(rx)
                .dataset("a b(c)")
                .user_agent_addition("my-app/1.0")
                .encoding(encoding)
                .compression(compression)
                .max_batch_size(100)
                .send_frequency(Duration::from_secs(60))
        };
        let rx_http = receiver();
        let http = client(cfg(&rx_http));
        send_fixed_events(&http);
        http.flush_async(PATIENCE).await.unwrap();
        http.close_async(PATIENCE).await.unwrap();

        let rx_tokio = receiver();
        let (tc, t) = tokio_client(cfg(&rx_tokio));
        send_fixed_events(&tc);
        t.flush(PATIENCE).await.unwrap();
        let responses = close_and_collect_async(&tc, &t).await;
        assert_eq!(responses.len(), 39);
        assert!(responses.iter().all(Response::is_success), "{responses:?}");

        let (a, b) = (rx_http.requests(), rx_tokio.requests());
        assert_eq!(a.len(), 1, "{encoding:?}/{compression:?}: {a:?}");
        assert_eq!(b.len(), 1, "{encoding:?}/{compression:?}: {b:?}");
        assert_eq!(
            comparable(&a[0]),
            comparable(&b[0]),
            "{encoding:?}/{compression:?}"
        );
        assert!(
            a[0].decoded_body == b[0].decoded_body,
            "{encoding:?}/{compression:?}: the decoded bodies differ"
        );
        assert_eq!(b[0].path, "/1/batch/a%20b%28c%29");
        assert_eq!(header(&b[0], "x-honeycomb-team"), Some(KEY));
        assert_eq!(
            b[0].user_agent.as_deref(),
            Some(
                libhoney::Config::new()
                    .user_agent_addition("my-app/1.0")
                    .user_agent()
                    .as_str()
            )
        );
        assert_eq!(rx_http.events(), rx_tokio.events());
    }
}
on_both_runtimes!(same_requests_as_http);

async fn events_are_grouped_by_host_key_and_dataset() {
    let rx = receiver();
    let rx2 = receiver();
    let other_key = "hcaik_anotherkey0123456789abcdefgh";
    let rx_other_key = libhoney_receiver::Receiver::builder()
        .api_key(other_key)
        .start()
        .unwrap();
    let (client, t) = tokio_client(one_batch(&rx));
    let mut sent = Vec::new();
    for id in 0..30u64 {
        let mut ev = client.new_event();
        ev.add_field("id", id).add_metadata(id);
        match id % 3 {
            0 => {}
            1 => {
                ev.set_dataset("other");
            }
            _ => {
                ev.set_api_host(rx2.url());
            }
        }
        ev.send().unwrap();
        sent.push(id);
    }
    for id in 30..35u64 {
        let mut ev = client.new_event();
        ev.add_field("id", id).add_metadata(id);
        ev.set_api_host(rx_other_key.url()).set_api_key(other_key);
        ev.send().unwrap();
        sent.push(id);
    }
    t.flush(PATIENCE).await.unwrap();
    let responses = close_and_collect_async(&client, &t).await;
    assert_eq!(responses.len(), sent.len());
    assert!(responses.iter().all(Response::is_success), "{responses:?}");
    let paths: BTreeSet<(String, usize)> = rx
        .requests()
        .iter()
        .map(|r| (r.path.clone(), r.events))
        .collect();
    assert_eq!(
        paths,
        BTreeSet::from([
            ("/1/batch/other".to_string(), 10),
            ("/1/batch/wire".to_string(), 10)
        ])
    );
    assert_eq!(rx2.requests().len(), 1);
    assert_eq!(rx2.events().len(), 10);
    assert_eq!(rx_other_key.events().len(), 5);
    assert!(rx_other_key.events().iter().all(|e| e.api_key == other_key));
}
on_both_runtimes!(events_are_grouped_by_host_key_and_dataset);

async fn a_batch_goes_out_at_max_batch_size() {
    let rx = receiver();
    let (client, t) = tokio_client(
        config(&rx)
            .max_batch_size(7)
            .send_frequency(Duration::from_secs(60)),
    );
    let sent = send_ids(&client, 0..30);
    // 4 full batches go out without a flush, each of exactly 7 events.
    assert!(rx.wait_for_events_async(28, PATIENCE).await);
    t.flush(PATIENCE).await.unwrap();
    let responses = close_and_collect_async(&client, &t).await;
    let tally = check_invariant(&sent, &responses, &rx, &client.metrics());
    assert_eq!(tally.ok.len(), 30);
    let mut sizes: Vec<usize> = rx.requests().iter().map(|r| r.events).collect();
    sizes.sort();
    assert_eq!(sizes, vec![2, 7, 7, 7, 7]);
}
on_both_runtimes!(a_batch_goes_out_at_max_batch_size);

async fn a_batch_goes_out_send_frequency_after_its_first_event() {
    let rx = receiver();
    let (client, t) = tokio_client(
        config(&rx)
            .max_batch_size(1000)
            .send_frequency(Duration::from_millis(30)),
    );
    let sent = send_ids(&client, 0..5);
    // No flush: the timer ships the batch.
    assert!(rx.wait_for_events_async(5, PATIENCE).await);
    let more = send_ids(&client, 5..8);
    assert!(rx.wait_for_events_async(8, PATIENCE).await);
    let responses = close_and_collect_async(&client, &t).await;
    let all: Vec<u64> = sent.into_iter().chain(more).collect();
    let tally = check_invariant(&all, &responses, &rx, &client.metrics());
    assert_eq!(tally.ok.len(), 8);
    assert_eq!(rx.requests().len(), 2);
}
on_both_runtimes!(a_batch_goes_out_send_frequency_after_its_first_event);

async fn too_large(block_on_response: bool, encoding: Encoding) {
    let rx = receiver();
    let (client, t) = tokio_client(
        one_batch(&rx)
            .encoding(encoding)
            .block_on_response(block_on_response),
    );
    let mut sent = send_ids(&client, 0..3);
    let mut ev = client.new_event();
    ev.add_field("id", 3u64)
        .add_field("name", "big")
        .add_field("blob", "x".repeat(1_100_000));
    ev.add_metadata(3u64);
    ev.send().unwrap();
    sent.push(3);
    sent.extend(send_ids(&client, 4..6));
    let responses = close_and_collect_async(&client, &t).await;
    let tally = check_invariant(&sent, &responses, &rx, &client.metrics());
    assert_eq!(tally.ok, BTreeSet::from([0, 1, 2, 4, 5]));
    match &tally.failed[&3].error {
        Some(ResponseError::TooLarge { limit, name, .. }) => {
            assert_eq!(*limit, 1_000_000);
            assert_eq!(name.as_deref(), Some("big"));
        }
        other => panic!("{other:?}"),
    }
}

async fn an_event_over_the_api_limit_gets_too_large() {
    too_large(false, Encoding::Json).await;
    too_large(false, Encoding::Msgpack).await;
    // With block_on_response, the answer goes through the blocking pool.
    too_large(true, Encoding::Json).await;
}
on_both_runtimes!(an_event_over_the_api_limit_gets_too_large);

async fn a_batch_over_max_batch_bytes_is_split_never_dropped() {
    let rx = receiver();
    let limit = 2_000;
    let (client, t) = tokio_client(one_batch(&rx).max_batch_bytes(limit));
    let mut sent = Vec::new();
    for id in 0..60u64 {
        let mut ev = client.new_event();
        ev.add_field("id", id).add_field("pad", "p".repeat(150));
        ev.add_metadata(id);
        ev.send().unwrap();
        sent.push(id);
    }
    let responses = close_and_collect_async(&client, &t).await;
    let tally = check_invariant(&sent, &responses, &rx, &client.metrics());
    assert_eq!(tally.ok.len(), 60);
    let reqs = rx.requests();
    assert!(reqs.len() >= 5, "split into several bodies: {}", reqs.len());
    for r in &reqs {
        assert!(
            r.decoded_body.len() <= limit,
            "{} > {limit}",
            r.decoded_body.len()
        );
    }
    assert_eq!(reqs.iter().map(|r| r.events).sum::<usize>(), 60);
}
on_both_runtimes!(a_batch_over_max_batch_bytes_is_split_never_dropped);

async fn big_bodies_are_compressed_on_the_blocking_pool() {
    for compression in [Compression::Zstd, Compression::Gzip] {
        let rx = receiver();
        let (client, t) = tokio_client(one_batch(&rx).compression(compression));
        let mut sent = Vec::new();
        for id in 0..400u64 {
            let mut ev = client.new_event();
            ev.add_field("id", id)
                .add_field("pad", format!("{id:>1000}"));
            ev.add_metadata(id);
            ev.send().unwrap();
            sent.push(id);
        }
        let responses = close_and_collect_async(&client, &t).await;
        let tally = check_invariant(&sent, &responses, &rx, &client.metrics());
        assert_eq!(tally.ok.len(), 400);
        let reqs = rx.requests();
        assert_eq!(reqs.len(), 1);
        assert!(reqs[0].decoded_body.len() > 400_000);
        assert!(reqs[0].body_bytes < reqs[0].decoded_body.len() / 4);
    }
}
on_both_runtimes!(big_bodies_are_compressed_on_the_blocking_pool);

on_both_runtimes!(an_api_host_path_prefix_is_kept = wire::api_host_path_prefix_is_kept);
