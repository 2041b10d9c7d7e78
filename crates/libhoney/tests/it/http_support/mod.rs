//! Helpers shared by the wire-path tests of the HTTP transmissions
//! (`tests/http_*.rs` for the default one, `tests/tokio_*.rs` for the tokio
//! one): a receiver and a client pointed at it, events with unique ids, the
//! "one response per event, successes == accepted" check, servers that stall
//! or proxy, a small msgpack reader, and an HTTP-date formatter. The
//! submodules hold what runs over either transmission: the [`harness`] and
//! the test bodies both suites share ([`faults`], [`lifecycle`], [`proxy`],
//! [`wire`]).
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libhoney::{Client, Config, MetricsSnapshot, Response, ResponseError, SendError};
use libhoney_receiver::{Fault, Receiver, RunningReceiver};

/// `http_test!(module::name)`: a `#[test] fn name()` that runs the shared
/// body `module::name(Kind::Http)` on the test's thread, with no runtime.
/// `http_test!(test = module::name)` names the test `test`.
#[allow(unused_macros)]
macro_rules! http_test {
    ($test:ident = $module:ident :: $name:ident) => {
        #[test]
        fn $test() {
            http_support::block_on($module::$name(http_support::Kind::Http));
        }
    };
    ($module:ident :: $name:ident) => {
        http_test!($name = $module::$name);
    };
}

/// `on_both_runtimes!(name)`: runs the async fn `name` as two tests, on a
/// current-thread runtime (`name::current_thread`) and on a multi-thread one
/// with two workers (`name::multi_thread`). `on_both_runtimes!(module::name)`
/// runs the shared body `module::name(Kind::Tokio)` so, and
/// `on_both_runtimes!(test = module::name)` names the tests `test::…`.
#[allow(unused_macros)]
macro_rules! on_both_runtimes {
    (@mod $test:ident, $body:expr) => {
        mod $test {
            #[tokio::test(flavor = "current_thread")]
            async fn current_thread() {
                $body.await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn multi_thread() {
                $body.await
            }
        }
    };
    ($test:ident = $module:ident :: $name:ident) => {
        on_both_runtimes!(@mod $test, super::$module::$name($crate::http_support::Kind::Tokio));
    };
    ($module:ident :: $name:ident) => {
        on_both_runtimes!($name = $module::$name);
    };
    ($name:ident) => {
        on_both_runtimes!(@mod $name, super::$name());
    };
}

pub mod faults;
pub mod harness;
pub mod lifecycle;
pub mod proxy;
pub mod tls;
pub mod wire;

pub use harness::*;

/// The API key the receivers accept.
pub const KEY: &str = "hcaik_wiretest0123456789SECRETkey";

/// Generous bound for "does not hang" waits. Never reached when things work.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A receiver that accepts only [`KEY`].
pub fn receiver() -> RunningReceiver {
    Receiver::builder()
        .api_key(KEY)
        .start()
        .expect("receiver starts")
}

/// Whether the calling thread runs a test of `http_lanes`, which runs the
/// `Http` suites again with every event encoded in `send` into a lane (the
/// path `send` takes while the batcher is behind): [`config`] then sets
/// `EncodeOn::Send`. libtest runs each test on a thread named after it
/// (`http_lanes::wire::…`), also with `--test-threads 1`; a configuration
/// made on a thread a test spawned takes the default.
pub fn lanes_forced() -> bool {
    std::thread::current()
        .name()
        .is_some_and(|n| n.starts_with("http_lanes::"))
}

/// A configuration for `rx`: no environment, no proxy, fast retries, a
/// response queue big enough to never drop, and a generous shutdown timeout
/// (and `EncodeOn::Send` in the tests of `http_lanes`: [`lanes_forced`]).
pub fn config(rx: &RunningReceiver) -> Config {
    let encode_on = if lanes_forced() {
        libhoney::EncodeOn::Send
    } else {
        libhoney::EncodeOn::Adaptive
    };
    Config::new()
        .encode_on(encode_on)
        .read_env(false)
        .proxy_from_env(false)
        .api_key(KEY)
        .dataset("wire")
        .api_host(rx.url())
        .retry_backoff(Duration::from_millis(1), Duration::from_millis(10))
        .response_queue_capacity(100_000)
        .shutdown_timeout(PATIENCE)
}

/// [`config`] for tests that send everything in one batch at close (or
/// flush): up to 1000 events, no time trigger in practice.
pub fn one_batch(rx: &RunningReceiver) -> Config {
    config(rx)
        .max_batch_size(1000)
        .send_frequency(Duration::from_secs(3600))
}

/// A client over `config`.
pub fn client(config: Config) -> Client {
    Client::new(config).expect("valid config")
}

/// A receiver fault: answer `status` with `body` (and a `Retry-After`).
pub fn status(status: u16, body: &str, retry_after: Option<String>) -> Fault {
    Fault::Status {
        status,
        body: body.to_string(),
        retry_after,
    }
}

/// Sends one event carrying field `id` and metadata `id` (u64).
pub fn send_id(client: &Client, id: u64) {
    let mut ev = client.new_event();
    ev.add_field("id", id).add_field("name", "wire-test");
    ev.add_metadata(id);
    ev.send().expect("event accepted");
}

/// Sends events with ids in `ids`.
pub fn send_ids(client: &Client, ids: impl IntoIterator<Item = u64>) -> Vec<u64> {
    let ids: Vec<u64> = ids.into_iter().collect();
    for &id in &ids {
        send_id(client, id);
    }
    ids
}

/// The `u64` metadata of a response.
pub fn meta_id(r: &Response) -> u64 {
    *r.metadata
        .as_ref()
        .expect("response has metadata")
        .downcast_ref::<u64>()
        .expect("metadata is a u64")
}

/// Closes the client and returns every response, in arrival order, after
/// checking that the stream ends.
pub fn close_and_collect(client: &Client) -> Vec<Response> {
    let responses = client.responses();
    let t0 = Instant::now();
    client.close().expect("close drains everything");
    assert!(t0.elapsed() < PATIENCE, "close took {:?}", t0.elapsed());
    collect_until_end(&responses)
}

/// Reads responses until the stream ends (it must end within [`PATIENCE`]).
pub fn collect_until_end(responses: &libhoney::Responses) -> Vec<Response> {
    let mut out = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match responses.recv_timeout(left) {
            Ok(r) => out.push(r),
            Err(libhoney::RecvTimeoutError::Ended) => return out,
            Err(libhoney::RecvTimeoutError::Timeout) => {
                panic!("the response stream did not end ({} read)", out.len())
            }
        }
    }
}

/// Reads exactly `n` responses (each within [`PATIENCE`]).
pub fn take_n(responses: &libhoney::Responses, n: usize) -> Vec<Response> {
    (0..n)
        .map(|i| {
            responses
                .recv_timeout(PATIENCE)
                .unwrap_or_else(|e| panic!("response {i} of {n}: {e}"))
        })
        .collect()
}

/// The ids (field `id`) of the events the receiver accepted; panics on an
/// event accepted twice.
pub fn accepted_ids(rx: &RunningReceiver) -> BTreeSet<u64> {
    let mut set = BTreeSet::new();
    for ev in rx.events() {
        let id = ev.data["id"].as_u64().expect("event has an integer id");
        assert!(set.insert(id), "the receiver accepted event {id} twice");
    }
    set
}

/// What the responses said, by kind.
#[derive(Debug, Default)]
pub struct Tally {
    pub ok: BTreeSet<u64>,
    /// Failed ids with their error, per id.
    pub failed: BTreeMap<u64, Response>,
}

impl Tally {
    /// Failed ids whose error matches.
    pub fn failed_with(&self, f: impl Fn(&ResponseError) -> bool) -> BTreeSet<u64> {
        self.failed
            .iter()
            .filter(|(_, r)| r.error.as_ref().is_some_and(&f))
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn sampled(&self) -> usize {
        self.failed_with(|e| matches!(e, ResponseError::Sampled))
            .len()
    }

    pub fn overflowed(&self) -> usize {
        self.failed_with(|e| matches!(e, ResponseError::QueueOverflow))
            .len()
    }
}

/// The central invariant: every id in `sent` has exactly one response, no
/// other response exists, and the ids the receiver accepted are exactly the
/// ids the SDK reported as successes. Also checks the success/failure
/// counters of the client's metrics against the responses.
pub fn check_invariant(
    sent: &[u64],
    responses: &[Response],
    rx: &RunningReceiver,
    metrics: &MetricsSnapshot,
) -> Tally {
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    let mut tally = Tally::default();
    for r in responses {
        let id = meta_id(r);
        *seen.entry(id).or_default() += 1;
        if r.is_success() {
            assert!(r.error.is_none());
            tally.ok.insert(id);
        } else {
            tally.failed.insert(id, r.clone());
        }
    }
    let sent_set: BTreeSet<u64> = sent.iter().copied().collect();
    assert_eq!(sent_set.len(), sent.len(), "test bug: ids not unique");
    let dup: Vec<_> = seen.iter().filter(|(_, n)| **n != 1).collect();
    assert!(dup.is_empty(), "ids with more than one response: {dup:?}");
    let answered: BTreeSet<u64> = seen.keys().copied().collect();
    let missing: Vec<_> = sent_set.difference(&answered).collect();
    assert!(missing.is_empty(), "ids without a response: {missing:?}");
    let extra: Vec<_> = answered.difference(&sent_set).collect();
    assert!(extra.is_empty(), "responses for ids never sent: {extra:?}");
    let accepted = accepted_ids(rx);
    assert_eq!(
        accepted, tally.ok,
        "the receiver accepted exactly the events reported as sent"
    );
    assert_eq!(metrics.events_sent, tally.ok.len() as u64, "{metrics:?}");
    let overflowed = tally.overflowed() as u64;
    assert_eq!(metrics.events_overflowed, overflowed, "{metrics:?}");
    let sampled = tally.sampled() as u64;
    assert_eq!(metrics.events_sampled, sampled, "{metrics:?}");
    assert_eq!(
        metrics.events_failed,
        tally.failed.len() as u64 - overflowed - sampled,
        "{metrics:?}"
    );
    assert_eq!(
        metrics.events_queued,
        sent.len() as u64 - sampled,
        "{metrics:?}"
    );
    assert_eq!(metrics.responses_dropped, 0, "{metrics:?}");
    tally
}

/// A fixed instant with every nanosecond digit significant:
/// 2023-11-14T22:13:20.123456789Z.
pub fn fixed_time() -> SystemTime {
    UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789)
}

/// `t` as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), for Retry-After.
pub fn http_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).expect("after 1970").as_secs() as i64;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        WD[days.rem_euclid(7) as usize],
        d,
        MON[(m - 1) as usize],
        y,
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// A decoded msgpack value, keeping what JSON would lose (the timestamp
/// extension, the difference between ints and uints).
#[derive(Debug, Clone, PartialEq)]
pub enum Mp {
    Nil,
    Bool(bool),
    UInt(u64),
    Int(i64),
    F64(f64),
    Str(String),
    Array(Vec<Mp>),
    Map(Vec<(Mp, Mp)>),
    Ext(i8, Vec<u8>),
}

impl Mp {
    pub fn s(s: &str) -> Mp {
        Mp::Str(s.to_string())
    }

    /// A map with string keys.
    pub fn map(entries: Vec<(&str, Mp)>) -> Mp {
        Mp::Map(entries.into_iter().map(|(k, v)| (Mp::s(k), v)).collect())
    }

    /// Normalises integers: a non-negative `Int` becomes a `UInt` (msgpack
    /// encoders may pick either for the same number).
    pub fn norm(self) -> Mp {
        match self {
            Mp::Int(i) if i >= 0 => Mp::UInt(i as u64),
            Mp::Array(v) => Mp::Array(v.into_iter().map(Mp::norm).collect()),
            Mp::Map(v) => Mp::Map(v.into_iter().map(|(k, v)| (k.norm(), v.norm())).collect()),
            other => other,
        }
    }
}

/// Decodes one complete msgpack value (panics on trailing bytes or errors).
pub fn mp_decode(b: &[u8]) -> Mp {
    let mut rd = b;
    let v = mp_value(&mut rd);
    assert!(rd.is_empty(), "{} trailing bytes", rd.len());
    v
}

fn take<'a>(rd: &mut &'a [u8], n: usize) -> &'a [u8] {
    assert!(rd.len() >= n, "truncated msgpack");
    let (a, b) = rd.split_at(n);
    *rd = b;
    a
}

fn be(rd: &mut &[u8], n: usize) -> u64 {
    take(rd, n)
        .iter()
        .fold(0u64, |acc, &x| acc << 8 | u64::from(x))
}

fn mp_value(rd: &mut &[u8]) -> Mp {
    let tag = take(rd, 1)[0];
    // Each takes its length first, so that a length read from `rd` can be
    // passed along with `rd`.
    let str_of = |n: usize, rd: &mut &[u8]| {
        Mp::Str(String::from_utf8(take(rd, n).to_vec()).expect("utf-8 string"))
    };
    let array = |n: usize, rd: &mut &[u8]| Mp::Array((0..n).map(|_| mp_value(rd)).collect());
    let map =
        |n: usize, rd: &mut &[u8]| Mp::Map((0..n).map(|_| (mp_value(rd), mp_value(rd))).collect());
    let ext = |n: usize, rd: &mut &[u8]| {
        let ty = take(rd, 1)[0] as i8;
        Mp::Ext(ty, take(rd, n).to_vec())
    };
    match tag {
        0x00..=0x7f => Mp::UInt(u64::from(tag)),
        0x80..=0x8f => map(usize::from(tag & 0x0f), rd),
        0x90..=0x9f => array(usize::from(tag & 0x0f), rd),
        0xa0..=0xbf => str_of(usize::from(tag & 0x1f), rd),
        0xc0 => Mp::Nil,
        0xc2 => Mp::Bool(false),
        0xc3 => Mp::Bool(true),
        0xc7 => ext(be(rd, 1) as usize, rd),
        0xc8 => ext(be(rd, 2) as usize, rd),
        0xc9 => ext(be(rd, 4) as usize, rd),
        0xca => Mp::F64(f64::from(f32::from_bits(be(rd, 4) as u32))),
        0xcb => Mp::F64(f64::from_bits(be(rd, 8))),
        0xcc => Mp::UInt(be(rd, 1)),
        0xcd => Mp::UInt(be(rd, 2)),
        0xce => Mp::UInt(be(rd, 4)),
        0xcf => Mp::UInt(be(rd, 8)),
        0xd0 => Mp::Int(i64::from(be(rd, 1) as u8 as i8)),
        0xd1 => Mp::Int(i64::from(be(rd, 2) as u16 as i16)),
        0xd2 => Mp::Int(i64::from(be(rd, 4) as u32 as i32)),
        0xd3 => Mp::Int(be(rd, 8) as i64),
        0xd4 => ext(1, rd),
        0xd5 => ext(2, rd),
        0xd6 => ext(4, rd),
        0xd7 => ext(8, rd),
        0xd8 => ext(16, rd),
        0xd9 => str_of(be(rd, 1) as usize, rd),
        0xda => str_of(be(rd, 2) as usize, rd),
        0xdb => str_of(be(rd, 4) as usize, rd),
        0xdc => array(be(rd, 2) as usize, rd),
        0xdd => array(be(rd, 4) as usize, rd),
        0xde => map(be(rd, 2) as usize, rd),
        0xdf => map(be(rd, 4) as usize, rd),
        0xe0..=0xff => Mp::Int(i64::from(tag as i8)),
        other => panic!("unexpected msgpack tag {other:#x}"),
    }
}

/// The msgpack timestamp extension payload (8- or 12-byte form) for `t`.
pub fn mp_timestamp(t: SystemTime) -> Mp {
    let d = t.duration_since(UNIX_EPOCH).expect("after 1970");
    let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
    if secs < (1 << 34) {
        let v = (u64::from(nanos) << 34) | secs;
        Mp::Ext(-1, v.to_be_bytes().to_vec())
    } else {
        let mut p = nanos.to_be_bytes().to_vec();
        p.extend_from_slice(&(secs as i64).to_be_bytes());
        Mp::Ext(-1, p)
    }
}

/// A request header's value (names are lowercased by the receiver).
pub fn header<'a>(req: &'a libhoney_receiver::ReceivedRequest, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A server that accepts connections and never answers (holding them open
/// until it is dropped).
pub struct Stalled {
    pub url: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Stalled {
    pub fn start() -> Stalled {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => held.push(s),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Stalled {
            url,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Stalled {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sends one event with id `id` and metadata `id`; false if the client was
/// closed (any other error panics).
fn try_send_id(client: &Client, id: u64) -> bool {
    let mut ev = client.new_event();
    ev.add_field("id", id).add_metadata(id);
    match ev.send() {
        Ok(()) => true,
        Err(SendError::Closed) => false,
        Err(e) => panic!("{e}"),
    }
}

/// A plain thread that sends events with ids in `ids` until the client is
/// closed; it yields the ids of the sends that returned `Ok`.
pub fn spawn_sender(client: &Client, ids: Range<u64>) -> JoinHandle<Vec<u64>> {
    let client = client.clone();
    std::thread::spawn(move || {
        ids.take_while(|&id| try_send_id(&client, id))
            .collect::<Vec<u64>>()
    })
}

/// `n` plain threads: the `k`-th runs `f(&client, k)` on a clone of `client`
/// and yields the ids it sent.
pub fn on_threads(
    client: &Client,
    n: u64,
    f: impl Fn(&Client, u64) -> Vec<u64> + Clone + Send + 'static,
) -> Vec<JoinHandle<Vec<u64>>> {
    (0..n)
        .map(|k| {
            let (client, f) = (client.clone(), f.clone());
            std::thread::spawn(move || f(&client, k))
        })
        .collect()
}

/// Joins threads of [`on_threads`]: every id they sent, thread by thread.
pub fn join_ids(threads: Vec<JoinHandle<Vec<u64>>>) -> Vec<u64> {
    threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect()
}

/// A plain thread that reads the client's responses as they come until the
/// stream ends (within [`PATIENCE`]), and yields them.
pub fn spawn_reader(client: &Client) -> JoinHandle<Vec<Response>> {
    let responses = client.responses();
    std::thread::spawn(move || collect_until_end(&responses))
}

/// Plain threads that send events with fresh ids as fast as they can, until
/// the client is closed or they are stopped.
pub struct RacingSenders {
    ok: Arc<Mutex<Vec<u64>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl RacingSenders {
    /// Starts `n` sending threads.
    pub fn start(client: &Client, n: usize) -> RacingSenders {
        let ok = Arc::new(Mutex::new(Vec::new()));
        let next = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..n)
            .map(|_| {
                let (client, ok, next, stop) = (
                    client.clone(),
                    Arc::clone(&ok),
                    Arc::clone(&next),
                    Arc::clone(&stop),
                );
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let id = next.fetch_add(1, Ordering::Relaxed);
                        if !try_send_id(&client, id) {
                            return;
                        }
                        ok.lock().unwrap().push(id);
                    }
                })
            })
            .collect();
        RacingSenders { ok, stop, threads }
    }

    /// Asks the threads to stop after their current send.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Have all the threads stopped?
    pub fn finished(&self) -> bool {
        self.threads.iter().all(JoinHandle::is_finished)
    }

    /// Joins the threads; the ids of the sends that returned `Ok`.
    pub fn join(self) -> Vec<u64> {
        for t in self.threads {
            t.join().unwrap();
        }
        let ok = self.ok.lock().unwrap().clone();
        ok
    }
}

/// Waits (bounded) until `cond` holds; false if it never did.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
