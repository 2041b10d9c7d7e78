//! Events: metadata, timestamps, per-event settings, sampling and validation.

use crate::common;

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{base, mock_client, CLASSIC_KEY};
use libhoney::transmission::Discard;
use libhoney::{Client, Metadata, ResponseError, SendError, Value};

#[derive(Debug, PartialEq)]
struct RequestId {
    id: u64,
    route: &'static str,
}

#[test]
fn metadata_round_trips_to_the_response() {
    let (client, mock) = mock_client(base());
    let responses = client.responses();

    let mut ev = client.new_event();
    ev.add_field("x", 1);
    ev.add_metadata(RequestId {
        id: 7,
        route: "/orders",
    });
    assert!(ev.metadata().unwrap().is::<RequestId>());
    ev.send().unwrap();

    let mut ev = client.new_event();
    ev.add_field("x", 2);
    ev.add_metadata(String::from("replaced"));
    ev.set_metadata(Metadata::new(String::from("a string")));
    ev.send().unwrap();

    let mut ev = client.new_event();
    ev.add_field("x", 3);
    ev.send().unwrap();

    let r = responses.try_recv().unwrap();
    let md = r.metadata.expect("metadata");
    assert_eq!(
        md.downcast_ref::<RequestId>(),
        Some(&RequestId {
            id: 7,
            route: "/orders"
        })
    );
    assert!(md.downcast_ref::<String>().is_none());
    let r = responses.try_recv().unwrap();
    assert_eq!(
        r.metadata
            .unwrap()
            .downcast_ref::<String>()
            .map(String::as_str),
        Some("a string")
    );
    let r = responses.try_recv().unwrap();
    assert!(r.metadata.is_none());

    // The transmission sees the metadata but never sends it as a field.
    for ev in mock.events() {
        assert!(ev.fields().all(|(k, _)| k == "x"));
    }
    assert!(mock.events()[0].metadata().is_some());
}

#[test]
fn timestamps_default_to_creation_and_can_be_set() {
    let (client, mock) = mock_client(base());
    let before = SystemTime::now();
    let mut ev = client.new_event();
    let after = SystemTime::now();
    let ts = ev.timestamp();
    assert!(before <= ts && ts <= after);
    ev.add_field("x", 1);
    ev.send().unwrap();
    assert_eq!(
        mock.events()[0].timestamp(),
        ts,
        "creation time, not send time"
    );

    let backdated = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut ev = client.new_builder().new_event();
    ev.add_field("x", 1).set_timestamp(backdated);
    assert_eq!(ev.timestamp(), backdated);
    ev.send().unwrap();
    assert_eq!(mock.events()[1].timestamp(), backdated);
}

#[test]
fn events_carry_their_own_destination_and_sample_rate() {
    let (client, mock) = mock_client(base());
    let mut ev = client.new_event();
    ev.add_field("x", 1)
        .set_api_key(CLASSIC_KEY)
        .set_dataset("per-event")
        .set_api_host("http://localhost:8081/")
        .set_sample_rate(3);
    assert_eq!(ev.dataset(), "per-event");
    assert_eq!(ev.api_host(), "http://localhost:8081");
    assert_eq!(ev.sample_rate(), 3);
    ev.send_presampled().unwrap();
    let sent = &mock.events()[0];
    assert_eq!(sent.api_key(), CLASSIC_KEY);
    assert_eq!(sent.dataset(), "per-event");
    assert_eq!(sent.api_host(), "http://localhost:8081");
    assert_eq!(sent.sample_rate(), 3);

    // Other events are not affected.
    let ev = client.new_event();
    assert_eq!(ev.dataset(), "core-tests");
    assert_eq!(ev.sample_rate(), 1);
}

/// Sends `n` events at `rate`, each with its index as metadata, and checks
/// that every one is either kept (sent, with the rate) or answered Sampled.
/// Returns how many were kept.
fn sample(client: &Client, mock: &libhoney::transmission::Mock, n: u64, rate: u32) -> usize {
    let before = mock.len();
    for i in 0..n {
        let mut ev = client.new_event();
        ev.add_field("i", i).add_metadata(i).set_sample_rate(rate);
        ev.send().unwrap();
    }
    client.flush().unwrap();
    let kept: Vec<_> = mock.events().into_iter().skip(before).collect();
    for ev in &kept {
        assert_eq!(ev.sample_rate(), rate, "kept events carry the rate");
    }
    let responses: Vec<_> = client.responses().try_iter().collect();
    assert_eq!(responses.len() as u64, n, "exactly one response per event");
    let mut seen = HashSet::new();
    let mut sampled = 0;
    for r in &responses {
        let i = *r.metadata.as_ref().unwrap().downcast_ref::<u64>().unwrap();
        assert!(seen.insert(i), "one response per event");
        match &r.error {
            Some(ResponseError::Sampled) => {
                sampled += 1;
                assert_eq!(r.status_code, None);
                assert!(!r.is_success());
            }
            None => assert!(r.is_success()),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(sampled + kept.len(), n as usize);
    let kept_ids: HashSet<u64> = kept
        .iter()
        .map(|e| e.get("i").and_then(Value::as_u64).unwrap())
        .collect();
    assert_eq!(kept_ids.len(), kept.len());
    kept.len()
}

#[test]
fn send_keeps_about_one_in_n() {
    let (client, mock) = mock_client(base().response_queue_capacity(200_000));
    // Binomial(100_000, 0.1): mean 10_000, sd ~95; the bounds are 10 sd wide.
    let kept = sample(&client, &mock, 100_000, 10);
    assert!((9_000..=11_000).contains(&kept), "kept {kept}");
    let m = client.metrics();
    assert_eq!(m.events_sampled, 100_000 - kept as u64);
    assert_eq!(m.events_queued, kept as u64);
    assert_eq!(m.events_sent, kept as u64);

    // Rate 1 keeps everything.
    assert_eq!(sample(&client, &mock, 1_000, 1), 1_000);
    // Rate 2: mean 5_000, sd 50.
    let kept = sample(&client, &mock, 10_000, 2);
    assert!((4_500..=5_500).contains(&kept), "kept {kept}");
}

#[test]
fn the_sample_rate_comes_from_config_builder_or_event() {
    let (client, mock) = mock_client(base().sample_rate(4).response_queue_capacity(100_000));
    let mut b = client.new_builder();
    assert_eq!(b.sample_rate(), 4);
    for _ in 0..20_000 {
        let mut ev = client.new_event();
        ev.add_field("from", "config");
        ev.send().unwrap();
    }
    b.set_sample_rate(1);
    for _ in 0..1_000 {
        let mut ev = b.new_event();
        ev.add_field("from", "builder");
        ev.send().unwrap();
    }
    let by = |what: &str| {
        mock.events()
            .iter()
            .filter(|e| e.get("from").and_then(Value::as_str) == Some(what))
            .map(|e| e.sample_rate())
            .collect::<Vec<_>>()
    };
    let config = by("config");
    // Mean 5_000, sd ~61.
    assert!((4_000..=6_000).contains(&config.len()), "{}", config.len());
    assert!(config.iter().all(|&r| r == 4));
    assert_eq!(by("builder"), vec![1; 1_000]);
}

#[test]
fn send_presampled_never_drops() {
    let (client, mock) = mock_client(base().sample_rate(1_000));
    for i in 0..5_000u64 {
        let mut ev = client.new_event();
        ev.add_field("i", i);
        ev.send_presampled().unwrap();
    }
    assert_eq!(mock.len(), 5_000);
    assert!(mock.events().iter().all(|e| e.sample_rate() == 1_000));
    let m = client.metrics();
    assert_eq!(m.events_sampled, 0);
    assert_eq!(m.events_sent, 5_000);
}

#[test]
fn refused_events_return_an_error_and_get_no_response() {
    let (client, mock) = mock_client(base().sample_rate(10));
    let responses = client.responses();
    let with_field = || {
        let mut ev = client.new_event();
        ev.add_field("x", 1);
        ev
    };
    let mut cases = Vec::new();
    // Validation comes before sampling: an empty event is refused, never
    // "sampled", whatever the draw.
    for _ in 0..100 {
        cases.push((client.new_event(), SendError::EmptyEvent));
    }
    let mut ev = with_field();
    ev.set_api_key("");
    cases.push((ev, SendError::MissingApiKey));
    let mut ev = with_field();
    ev.set_api_key(CLASSIC_KEY).set_dataset("");
    cases.push((ev, SendError::MissingDataset));
    let mut ev = with_field();
    ev.set_api_host("");
    cases.push((ev, SendError::MissingApiHost));
    let mut ev = with_field();
    ev.set_api_host("ftp://nope");
    let invalid_host = ev;
    let mut ev = with_field();
    ev.set_sample_rate(0);
    cases.push((ev, SendError::ZeroSampleRate));

    for (i, (ev, want)) in cases.into_iter().enumerate() {
        let presampled = i % 2 == 0;
        let got = if presampled {
            ev.send_presampled()
        } else {
            ev.send()
        };
        assert_eq!(got, Err(want.clone()));
        assert!(!want.to_string().is_empty());
    }
    match invalid_host.send() {
        Err(SendError::InvalidApiHost { host, reason }) => {
            assert_eq!(host, "ftp://nope");
            assert!(!reason.is_empty());
        }
        other => panic!("{other:?}"),
    }

    // Closed: events made before close, and after.
    let early = with_field();
    client.close().unwrap();
    assert_eq!(early.send(), Err(SendError::Closed));
    assert_eq!(with_field().send_presampled(), Err(SendError::Closed));

    assert!(mock.is_empty());
    assert_eq!(responses.count(), 0, "no response for any refused event");
    let m = client.metrics();
    assert_eq!((m.events_queued, m.events_sampled), (0, 0));
}

#[test]
fn events_are_plain_values_until_sent() {
    let client = Client::new(base().transmission(Discard::new())).unwrap();
    let mut ev = client.new_event();
    assert!(ev.is_empty());
    assert_eq!(ev.len(), 0);
    ev.add_field("a", 1).add_field("b", "two");
    assert_eq!(ev.len(), 2);
    assert_eq!(ev.fields().map(|(k, _)| k).collect::<Vec<_>>(), ["a", "b"]);
    let debug = format!("{ev:?}");
    assert!(debug.contains("\"a\"") && debug.contains("two"), "{debug}");
    // Dropping an unsent event is fine and produces nothing.
    drop(ev);
    assert!(client.responses().is_empty());
    // `send` takes the event by value, so it cannot be sent twice or changed
    // afterwards (a compile-fail doctest on `Event::send` proves it).
}
