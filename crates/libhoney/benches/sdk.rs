//! Micro-benchmarks of the SDK's hot paths (divan).
//!
//! ```text
//! cargo bench -p libhoney-sdk --bench sdk
//! ```
//!
//! - `event::build`: a 10-field event of the benchmark shape (bench/peers/SHAPE.md).
//! - `event::send_only_http`: `send()` alone, of an event built beforehand.
//! - `event::send_*`: building it and handing it to `send()`: into the default
//!   HTTP transmission (a local receiver on loopback), and into `Discard`
//!   (client overhead only). Run with 1, 2 and 4 threads sending at once.
//! - `encode::*`: one 100-event batch body, JSON and msgpack.
//! - `compress::*`: that JSON body with zstd (level 1) and gzip (level 1).
//!
//! Allocation counts per iteration come from divan's `AllocProfiler`.

use std::sync::OnceLock;

use divan::{black_box, AllocProfiler, Bencher};
use libhoney::transmission::{Discard, Mock, QueuedEvent};
use libhoney::{Client, Compression, Config, EncodeOn, Encoding};

#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

fn main() {
    divan::main();
}

/// The benchmark shape of bench/peers/SHAPE.md, shared with the e2e sender.
#[path = "../../../bench/e2e/src/shape.rs"]
mod shape;
use shape::fill;

fn base() -> Config {
    Config::new()
        .read_env(false)
        .api_key("bench-key")
        .dataset("bench")
}

/// A client of the default HTTP transmission, to a local receiver, encoding
/// events where `on` says.
fn http_client_with(on: EncodeOn) -> &'static Client {
    type Held = OnceLock<(Client, libhoney_receiver::RunningReceiver)>;
    static ADAPTIVE: Held = OnceLock::new();
    static SEND: Held = OnceLock::new();
    static BATCHER: Held = OnceLock::new();
    let cell = match on {
        EncodeOn::Send => &SEND,
        EncodeOn::Batcher => &BATCHER,
        _ => &ADAPTIVE,
    };
    &cell
        .get_or_init(|| {
            let rx = libhoney_receiver::Receiver::builder()
                .record(false)
                .start()
                .expect("receiver");
            // A deep queue, so that short timing samples measure the hand-over,
            // not the overflow path when the pipeline falls behind.
            let config = base()
                .api_host(rx.url())
                .pending_work_capacity(100_000)
                .encode_on(on);
            (Client::new(config).expect("client"), rx)
        })
        .0
}

fn http_client() -> &'static Client {
    http_client_with(EncodeOn::Adaptive)
}

fn discard_client() -> &'static Client {
    static C: OnceLock<Client> = OnceLock::new();
    C.get_or_init(|| Client::new(base().transmission(Discard::new())).expect("client"))
}

mod event {
    use super::*;

    #[divan::bench]
    fn build(b: Bencher) {
        let client = discard_client();
        let mut i = 0u64;
        b.bench_local(|| {
            i += 1;
            let mut ev = client.new_event();
            fill(&mut ev, i);
            black_box(ev)
        });
    }

    #[divan::bench(threads = [1, 2, 4])]
    fn send_discard(b: Bencher) {
        build_and_send(b, discard_client());
    }

    /// Building an event and sending it, both timed.
    fn build_and_send(b: Bencher, client: &'static Client) {
        b.bench(|| {
            let i = fastrand::u64(..);
            let mut ev = client.new_event();
            fill(&mut ev, i);
            ev.send().expect("send")
        });
    }

    /// `send()` alone through a client encoding where `on` says: each event
    /// is built outside the timed part.
    fn send_only(b: Bencher, on: EncodeOn) {
        let client = http_client_with(on);
        b.with_inputs(|| {
            let mut ev = client.new_event();
            fill(&mut ev, fastrand::u64(..));
            ev
        })
        .bench_values(|ev| ev.send().expect("send"));
    }

    /// `send()` alone at the default (`EncodeOn::Adaptive`).
    #[divan::bench(threads = [1, 2, 4])]
    fn send_only_http(b: Bencher) {
        send_only(b, EncodeOn::Adaptive);
    }

    /// `send()` alone with `EncodeOn::Send`: it always encodes.
    #[divan::bench(threads = [1, 2, 4])]
    fn send_only_http_encode_in_send(b: Bencher) {
        send_only(b, EncodeOn::Send);
    }

    /// `send()` alone with `EncodeOn::Batcher`: a hand-over to the queue.
    #[divan::bench(threads = [1, 2, 4])]
    fn send_only_http_batcher_encodes(b: Bencher) {
        send_only(b, EncodeOn::Batcher);
    }

    #[divan::bench(threads = [1, 2, 4])]
    fn send_http(b: Bencher) {
        build_and_send(b, http_client());
    }
}

fn batch(n: u64) -> Vec<QueuedEvent> {
    let mock = Mock::new();
    let client = Client::new(base().transmission(mock.clone())).expect("client");
    for i in 0..n {
        let mut ev = client.new_event();
        fill(&mut ev, i);
        ev.send().expect("send");
    }
    mock.take_events()
}

mod encode {
    use super::*;

    #[divan::bench(args = [Encoding::Json, Encoding::Msgpack], name = "batch_of_100")]
    fn batch_of_100(b: Bencher, enc: Encoding) {
        let events = batch(100);
        b.counter(divan::counter::ItemsCount::new(100usize))
            .bench_local(|| libhoney::__bench::encode_batch(black_box(&events), enc));
    }
}

mod compress {
    use super::*;

    #[divan::bench(args = [Compression::Zstd, Compression::Gzip], name = "json_batch_of_100")]
    fn json_batch_of_100(b: Bencher, c: Compression) {
        let body = libhoney::__bench::encode_batch(&batch(100), Encoding::Json);
        b.counter(divan::counter::BytesCount::new(body.len()))
            .with_inputs(|| body.clone())
            .bench_local_values(|body| libhoney::__bench::compress(body, c, 1));
    }
}
