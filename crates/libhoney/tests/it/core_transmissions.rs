//! The in-memory transmissions (Writer, Mock, Discard) and a custom one
//! written here, end to end through a client.

use crate::common;

use std::io::BufWriter;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, UNIX_EPOCH};

use common::{base, mock_client, FailingWriter, SharedBuf, SECRET_KEY};
use libhoney::transmission::{
    Context, Discard, Mock, QueuedEvent, Responder, Transmission, Writer,
};
use libhoney::{
    Client, CloseError, Config, ConfigError, FlushError, NonFiniteFloats, Response, ResponseError,
    Value,
};
use serde_json::json;

fn writer_client(config: Config) -> (Client, SharedBuf) {
    let out = SharedBuf::default();
    let client = Client::new(config.transmission(Writer::new(out.clone()))).unwrap();
    (client, out)
}

#[test]
fn writer_writes_one_json_line_per_event() {
    let (client, out) = writer_client(base().user_agent_addition("core-tests/1"));
    client.add_field("service.name", "svc");
    let mut ev = client.new_event();
    ev.add_field("msg", "hello")
        .add_field("n", 3)
        .add_field("nested", vec![json_obj()])
        .set_timestamp(UNIX_EPOCH + Duration::from_millis(1_700_000_000_123));
    ev.send().unwrap();
    let mut ev = client.new_event();
    ev.add_field("msg", "second").set_dataset("other");
    ev.send().unwrap();
    client.close().unwrap();

    let text = out.text();
    assert_eq!(text.matches('\n').count(), 2);
    assert!(text.ends_with('\n'));
    assert!(
        text.starts_with("{\"time\":\"2023-11-14T22:13:20.123"),
        "{text}"
    );
    let lines = out.json_lines();
    assert_eq!(lines.len(), 2);
    let first = &lines[0];
    let keys: Vec<_> = first.as_object().unwrap().keys().cloned().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["data", "dataset", "samplerate", "time", "user_agent"]
    );
    let time = first["time"].as_str().unwrap();
    assert!(
        time.starts_with("2023-11-14T22:13:20.123") && time.ends_with('Z'),
        "{time}"
    );
    assert_eq!(first["samplerate"], 1);
    assert_eq!(first["dataset"], "core-tests");
    assert_eq!(first["user_agent"], client.config().user_agent());
    assert!(first["user_agent"]
        .as_str()
        .unwrap()
        .contains("core-tests/1"));
    assert_eq!(
        first["data"],
        json!({"service.name": "svc", "msg": "hello", "n": 3, "nested": [{"k": [1, true, null]}]})
    );
    assert_eq!(lines[1]["dataset"], "other");
    assert_eq!(lines[1]["data"]["msg"], "second");
    assert!(!text.contains(SECRET_KEY), "the API key is never written");

    let responses: Vec<_> = client.responses().collect();
    assert_eq!(responses.len(), 2);
    assert!(responses
        .iter()
        .all(|r| r.is_success() && r.status_code.is_none()));
}

fn json_obj() -> Value {
    Value::from_serialize(&json!({"k": [1, true, null]})).unwrap()
}

#[test]
fn writer_escapes_strings_into_valid_single_lines() {
    let (client, out) = writer_client(base());
    let nasty =
        "quote \" backslash \\ newline \n tab \t nul \u{0} bell \u{7} del \u{7f} é 🐝 \u{2028}";
    let mut ev = client.new_event();
    ev.add_field(nasty.to_string(), nasty);
    ev.send().unwrap();
    client.flush().unwrap();
    let text = out.text();
    assert_eq!(text.lines().count(), 1, "{text}");
    let line = &out.json_lines()[0];
    assert_eq!(line["data"][nasty], nasty);
}

#[test]
fn writer_works_with_sampling() {
    // libhoney-py's FileTransmission crashes here (#60): it has no response queue.
    let (client, out) = writer_client(base().sample_rate(10).response_queue_capacity(10_000));
    for i in 0..5_000u64 {
        let mut ev = client.new_event();
        ev.add_field("i", i).add_metadata(i);
        ev.send().unwrap();
    }
    client.close().unwrap();
    let lines = out.json_lines();
    let responses: Vec<_> = client.responses().collect();
    assert_eq!(responses.len(), 5_000);
    let sampled = responses
        .iter()
        .filter(|r| r.error == Some(ResponseError::Sampled))
        .count();
    let ok = responses.iter().filter(|r| r.is_success()).count();
    assert_eq!(sampled + ok, 5_000);
    assert_eq!(lines.len(), ok, "sampled events are not written");
    assert!((250..=750).contains(&ok), "kept {ok}"); // mean 500, sd 21
    assert!(lines.iter().all(|l| l["samplerate"] == 10));
    let m = client.metrics();
    assert_eq!(
        (m.events_sent, m.events_sampled),
        (ok as u64, sampled as u64)
    );
}

#[test]
fn writer_errors_are_transport_responses() {
    let client = Client::new(base().transmission(Writer::new(FailingWriter))).unwrap();
    for i in 0..3u64 {
        let mut ev = client.new_event();
        ev.add_field("i", i).add_metadata(i);
        ev.send().unwrap(); // accepted: the failure is the response
    }
    client.close().unwrap();
    let responses: Vec<_> = client.responses().collect();
    assert_eq!(responses.len(), 3);
    for (i, r) in responses.iter().enumerate() {
        assert!(
            matches!(&r.error, Some(ResponseError::Transport(m)) if m.contains("disk on fire")),
            "{r:?}"
        );
        assert_eq!(
            r.metadata.as_ref().unwrap().downcast_ref::<u64>(),
            Some(&(i as u64))
        );
    }
    assert_eq!(client.metrics().events_failed, 3);
    assert_eq!(client.metrics().events_sent, 0);
}

#[test]
fn writer_flush_and_close_flush_the_output() {
    let out = SharedBuf::default();
    let client = Client::new(
        base().transmission(Writer::new(BufWriter::with_capacity(1 << 16, out.clone()))),
    )
    .unwrap();
    let mut ev = client.new_event();
    ev.add_field("buffered", true);
    ev.send().unwrap();
    assert!(out.text().is_empty(), "still in the BufWriter");
    client.flush().unwrap();
    assert_eq!(out.json_lines().len(), 1);
    let mut ev = client.new_event();
    ev.add_field("buffered", true);
    ev.send().unwrap();
    client.close().unwrap();
    assert_eq!(out.json_lines().len(), 2);

    // A Writer serves one client.
    let w = Writer::new(SharedBuf::default());
    assert!(format!("{w:?}").contains("Writer"));
    let shared: Arc<dyn Transmission> = Arc::new(w);
    let _first = Client::new(base().transmission_arc(Arc::clone(&shared))).unwrap();
    let err = Client::new(base().transmission_arc(shared)).unwrap_err();
    assert_eq!(
        err,
        ConfigError::TransmissionInUse {
            transmission: "Writer"
        }
    );
}

fn non_finite_event(client: &Client) {
    let mut ev = client.new_event();
    ev.add_field("ok", 1.5)
        .add_field("nan", f64::NAN)
        .add_field("inf", f64::INFINITY)
        .add_field("ninf", f64::NEG_INFINITY)
        .add_field("f32nan", f32::NAN)
        .add_field("arr", vec![1.0, f64::NAN, f64::INFINITY])
        .add_field(
            "obj",
            Value::Object(vec![
                ("x".into(), f64::NEG_INFINITY.into()),
                ("y".into(), 2.into()),
            ]),
        );
    ev.send().unwrap();
}

#[test]
fn non_finite_floats_are_valid_json_under_every_policy() {
    let expected = [
        (
            NonFiniteFloats::String,
            json!({"ok": 1.5, "nan": "NaN", "inf": "Infinity", "ninf": "-Infinity",
                   "f32nan": "NaN", "arr": [1.0, "NaN", "Infinity"],
                   "obj": {"x": "-Infinity", "y": 2}}),
        ),
        (
            NonFiniteFloats::Null,
            json!({"ok": 1.5, "nan": null, "inf": null, "ninf": null, "f32nan": null,
                   "arr": [1.0, null, null], "obj": {"x": null, "y": 2}}),
        ),
        (
            // Fields are left out; inside arrays a value cannot be, so it is null.
            NonFiniteFloats::Omit,
            json!({"ok": 1.5, "arr": [1.0, null, null], "obj": {"y": 2}}),
        ),
    ];
    for (policy, want) in expected {
        let (client, out) = writer_client(base().non_finite_floats(policy));
        non_finite_event(&client);
        // Also through `add` of a serde value (non-finite floats survive it).
        #[derive(serde::Serialize)]
        struct S {
            nan: f64,
        }
        let mut ev = client.new_event();
        ev.add(&S { nan: f64::NAN }).unwrap().add_field("k", 1);
        ev.send().unwrap();
        client.close().unwrap();
        let text = out.text();
        assert!(!text.contains("NaN,") && !text.contains(":NaN"), "{text}");
        assert!(
            !text.contains(":Infinity") && !text.contains(":-Infinity"),
            "{text}"
        );
        let lines = out.json_lines(); // every line parses
        assert_eq!(lines[0]["data"], want, "{policy:?}");
        let second = &lines[1]["data"];
        match policy {
            NonFiniteFloats::String => assert_eq!(second["nan"], "NaN"),
            NonFiniteFloats::Null => assert!(second["nan"].is_null()),
            _ => assert!(second.get("nan").is_none()),
        }
    }
    // The default policy is String.
    let (client, out) = writer_client(base());
    non_finite_event(&client);
    client.close().unwrap();
    assert_eq!(out.json_lines()[0]["data"]["nan"], "NaN");
}

#[test]
fn queued_event_to_json_is_valid() {
    let (client, mock) = mock_client(base());
    let mut ev = client.new_event();
    ev.add_field("nan", f64::NAN).add_field("s", "x");
    ev.send().unwrap();
    let mut ev = client.new_event();
    ev.add_field("s", "y").set_sample_rate(5);
    ev.send_presampled().unwrap();
    let events = mock.events();
    let a: serde_json::Value = serde_json::from_str(&events[0].to_json()).unwrap();
    assert_eq!(a["data"], json!({"nan": "NaN", "s": "x"}));
    assert!(a.get("samplerate").is_none(), "left out at 1");
    assert!(a["time"].as_str().unwrap().ends_with('Z'));
    let b: serde_json::Value = serde_json::from_str(&events[1].to_json()).unwrap();
    assert_eq!(b["samplerate"], 5);
}

#[test]
fn queued_event_to_json_writes_every_year_in_place_or_not() {
    // Years 0 to 9999 are written over a fixed template; an event dated
    // after them is refused by `send` (RFC 3339 cannot express it), so only
    // valid times reach the JSON.
    use std::time::{Duration, UNIX_EPOCH};
    let (client, mock) = mock_client(base());
    let y10k = UNIX_EPOCH + Duration::new(253_402_300_800, 5);
    let y0 = UNIX_EPOCH - Duration::new(62_167_219_200, 0) + Duration::from_nanos(5);
    let y2023 = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
    for t in [y10k, y0, y2023] {
        let mut ev = client.new_event();
        ev.add_field("k", "v").set_timestamp(t);
        let sent = ev.send();
        assert_eq!(sent.is_ok(), t != y10k, "{sent:?}");
    }
    let events = mock.events();
    let times: Vec<serde_json::Value> = events
        .iter()
        .map(|e| serde_json::from_str::<serde_json::Value>(&e.to_json()).unwrap())
        .inspect(|v| assert_eq!(v["data"], json!({"k": "v"})))
        .map(|v| v["time"].clone())
        .collect();
    assert_eq!(
        times,
        vec![
            json!("0000-01-01T00:00:00.000000005Z"),
            json!("2023-11-14T22:13:20.123456789Z")
        ]
    );
}

#[test]
fn mock_records_counts_and_answers() {
    let (client, mock) = mock_client(base());
    assert!(mock.is_empty());
    let mut ev = client.new_event();
    ev.add_field("a", 1).add_metadata("m");
    ev.send().unwrap();
    client.flush().unwrap();
    client.flush().unwrap();
    assert_eq!(mock.len(), 1);
    assert_eq!(mock.flush_count(), 2);
    let recorded = mock.events();
    assert_eq!(recorded[0].get("a"), Some(&Value::from(1)));
    assert_eq!(
        recorded[0].metadata().unwrap().downcast_ref::<&str>(),
        Some(&"m"),
        "the recording keeps the metadata"
    );
    let r = client.responses().try_recv().unwrap();
    assert_eq!(r.status_code, Some(202));
    assert_eq!(r.metadata.unwrap().downcast_ref::<&str>(), Some(&"m"));
    assert_eq!(mock.take_events().len(), 1);
    assert!(mock.is_empty());
    client.close().unwrap();
    assert_eq!(mock.close_count(), 1);
    assert!(format!("{mock:?}").contains("closes: 1"));
}

#[test]
fn mock_respond_with_decides_each_response() {
    let mock = Mock::new();
    // Configured on a clone: every clone shares the same mock.
    let answering =
        mock.clone()
            .respond_with(|ev| match ev.get("status").and_then(Value::as_u64) {
                Some(202) | None => Response::success(None, Some(202), Duration::ZERO),
                Some(s) => Response::failure(None, ResponseError::Rejected(format!("status {s}")))
                    .with_status(s as u16)
                    .with_body("rejected"),
            });
    let client = Client::new(base().transmission(answering)).unwrap();
    for (i, status) in [202u64, 400, 202].into_iter().enumerate() {
        let mut ev = client.new_event();
        ev.add_field("status", status).add_metadata(i as u64);
        ev.send().unwrap();
    }
    assert_eq!(mock.len(), 3, "the original handle sees the events");
    let rs: Vec<_> = client.responses().try_iter().collect();
    assert_eq!(rs.len(), 3);
    assert!(rs[0].is_success());
    assert_eq!(rs[1].status_code, Some(400));
    assert_eq!(rs[1].body, "rejected");
    assert_eq!(
        rs[1].error,
        Some(ResponseError::Rejected("status 400".into()))
    );
    assert_eq!(
        rs[1].metadata.as_ref().unwrap().downcast_ref::<u64>(),
        Some(&1),
        "metadata is put back on the answer"
    );
    let m = client.metrics();
    assert_eq!((m.events_sent, m.events_failed), (2, 1));
}

#[test]
fn discard_answers_every_event_with_success() {
    let client = Client::new(base().transmission(Discard::new())).unwrap();
    for i in 0..10u64 {
        let mut ev = client.new_event();
        ev.add_field("i", i).add_metadata(i);
        ev.send().unwrap();
    }
    client.close().unwrap();
    let rs: Vec<_> = client.responses().collect();
    assert_eq!(rs.len(), 10);
    for (i, r) in rs.iter().enumerate() {
        assert!(r.is_success());
        assert_eq!(r.status_code, None);
        assert_eq!(
            r.metadata.as_ref().unwrap().downcast_ref::<u64>(),
            Some(&(i as u64))
        );
    }
    assert_eq!(client.metrics().events_sent, 10);
}

/// A custom transmission: holds events until `flush`, then answers each with
/// its JSON size as the body. Its queue length shows in the client's metrics.
#[derive(Default)]
struct HoldUntilFlush {
    responder: OnceLock<Responder>,
    context: OnceLock<String>,
    held: Mutex<Vec<QueuedEvent>>,
    log: Mutex<Vec<String>>,
}

impl HoldUntilFlush {
    fn answer_all(&self) {
        let held = std::mem::take(&mut *self.held.lock().unwrap());
        for mut ev in held {
            let json = ev.to_json();
            let r = Response::success(ev.take_metadata(), Some(202), Duration::ZERO)
                .with_body(json.len().to_string());
            self.responder.get().unwrap().respond(r);
        }
    }
}

impl Transmission for HoldUntilFlush {
    fn start(&self, ctx: Context) -> Result<(), ConfigError> {
        self.context.set(format!("{ctx:?}")).unwrap();
        self.log.lock().unwrap().push(format!(
            "start {}",
            ctx.config().settings().dataset().unwrap_or("")
        ));
        self.responder
            .set(ctx.responder().clone())
            .map_err(|_| ConfigError::Transmission("started twice".into()))
    }
    fn send(&self, event: QueuedEvent) {
        self.held.lock().unwrap().push(event);
    }
    fn flush(&self, _timeout: Duration) -> Result<(), FlushError> {
        self.log.lock().unwrap().push("flush".into());
        self.answer_all();
        Ok(())
    }
    fn close(&self, _timeout: Duration) -> Result<(), CloseError> {
        self.log.lock().unwrap().push("close".into());
        self.answer_all();
        Ok(())
    }
    fn queue_len(&self) -> usize {
        self.held.lock().unwrap().len()
    }
}

#[test]
fn a_custom_transmission_works_end_to_end() {
    let custom = Arc::new(HoldUntilFlush::default());
    let client = Client::new(
        base()
            .dataset("custom-ds")
            .transmission_arc(custom.clone() as Arc<dyn Transmission>),
    )
    .unwrap();
    let responses = client.responses();
    for i in 0..4u64 {
        let mut ev = client.new_event();
        ev.add_field("i", i).add_metadata(i);
        ev.send().unwrap();
    }
    {
        let held = custom.held.lock().unwrap();
        assert_eq!(held.len(), 4);
        assert_eq!(held[2].get("i"), Some(&Value::from(2)));
        assert_eq!(held[2].dataset(), "custom-ds");
        assert_eq!(held[2].api_key(), SECRET_KEY);
        assert_eq!(held[2].api_host(), "https://api.honeycomb.io");
        assert_eq!(held[2].sample_rate(), 1);
        assert_eq!(held[2].metadata().unwrap().downcast_ref::<u64>(), Some(&2));
        assert!(!format!("{:?}", held[2]).contains(SECRET_KEY));
    }
    assert_eq!(client.metrics().queue_length, 4);
    assert_eq!(client.metrics().events_queued, 4);
    assert!(responses.is_empty());
    client.flush().unwrap();
    assert_eq!(client.metrics().queue_length, 0);
    let got: Vec<_> = responses.try_iter().collect();
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|r| r.body.parse::<usize>().unwrap() > 10));
    let mut ev = client.new_event();
    ev.add_field("last", true);
    ev.send().unwrap();
    client.close().unwrap();
    assert_eq!(responses.count(), 1, "close answered the last held event");
    assert_eq!(
        *custom.log.lock().unwrap(),
        ["start custom-ds", "flush", "close"]
    );
    let ctx = custom.context.get().unwrap();
    assert!(
        ctx.contains("Context") && !ctx.contains(SECRET_KEY),
        "{ctx}"
    );
    let m = client.metrics();
    assert_eq!((m.events_queued, m.events_sent), (5, 5));
}

#[test]
fn writer_keeps_f32_values_and_odd_timestamps_valid() {
    let (client, out) = writer_client(base());
    let mut ev = client.new_event();
    ev.add_field("f32", 0.1f32)
        .add_field("f32_max", f32::MAX)
        .set_timestamp(UNIX_EPOCH - Duration::from_millis(1_500));
    ev.send().unwrap();
    let mut ev = client.new_event();
    ev.add_field("far", true)
        .set_timestamp(UNIX_EPOCH + Duration::from_secs(300_000_000_000));
    assert_eq!(ev.send(), Err(libhoney::SendError::TimestampOutOfRange));
    let mut ev = client.new_event();
    ev.add_field("last", true)
        .set_timestamp(UNIX_EPOCH + Duration::from_secs(253_402_300_799));
    ev.send().unwrap();
    client.close().unwrap();
    let text = out.text();
    assert!(text.contains("\"f32\":0.1,"), "{text}");
    let lines = out.json_lines();
    assert_eq!(lines[0]["data"]["f32"].as_f64(), Some(0.1));
    assert_eq!(lines[0]["data"]["f32_max"].as_f64(), Some(3.4028235e38));
    let t = lines[0]["time"].as_str().unwrap();
    assert!(t.starts_with("1969-12-31T23:59:58.5"), "{t}");
    assert_eq!(lines[1]["time"], "9999-12-31T23:59:59.000000000Z");
    assert_eq!(
        lines.len(),
        2,
        "the year-11476 event was refused, not written"
    );
}

/// A transmission that keeps its whole start context, config included.
struct KeepsContext(OnceLock<Context>);

impl Transmission for KeepsContext {
    fn start(&self, ctx: Context) -> Result<(), ConfigError> {
        let _ = self.0.set(ctx);
        Ok(())
    }
    fn send(&self, mut event: QueuedEvent) {
        let ctx = self.0.get().unwrap();
        let r = Response::success(event.take_metadata(), None, Duration::ZERO);
        ctx.responder().respond(r);
    }
    fn flush(&self, _timeout: Duration) -> Result<(), FlushError> {
        Ok(())
    }
    fn close(&self, _timeout: Duration) -> Result<(), CloseError> {
        Ok(())
    }
}

#[test]
fn a_transmission_that_keeps_its_config_is_freed_with_the_client() {
    let t: Arc<dyn Transmission> = Arc::new(KeepsContext(OnceLock::new()));
    let weak = Arc::downgrade(&t);
    let client = Client::new(base().transmission_arc(t)).unwrap();
    let mut ev = client.new_event();
    ev.add_field("x", 1);
    ev.send().unwrap();
    assert!(weak.upgrade().is_some());
    drop(client);
    assert!(
        weak.upgrade().is_none(),
        "no reference cycle through the config"
    );
}

#[test]
fn writer_lines_never_interleave_across_threads() {
    let (client, out) = writer_client(base().response_queue_capacity(8 * 300));
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let client = &client;
            s.spawn(move || {
                for i in 0..300u64 {
                    let mut ev = client.new_event();
                    ev.add_field("t", t)
                        .add_field("i", i)
                        .add_field("pad", "x".repeat(500));
                    ev.send().unwrap();
                }
            });
        }
    });
    client.close().unwrap();
    let lines = out.json_lines(); // each line parses on its own
    assert_eq!(lines.len(), 8 * 300);
    let mut seen = std::collections::HashSet::new();
    for l in &lines {
        let key = (
            l["data"]["t"].as_u64().unwrap(),
            l["data"]["i"].as_u64().unwrap(),
        );
        assert!(seen.insert(key));
    }
    assert_eq!(client.metrics().events_sent, 8 * 300);
}
