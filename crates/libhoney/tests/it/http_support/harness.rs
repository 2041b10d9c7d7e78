//! One test body for both HTTP transmissions: [`Kind`] makes a client over
//! the default `Http` transmission or over the tokio one, and [`Sending`]
//! flushes and closes it the way each needs (blocking calls for `Http`, the
//! transmission's async methods for tokio). Shared bodies are `async fn`s
//! taking a [`Kind`]: an `http_*` test runs one on its own thread with
//! [`block_on`] (no runtime, as before), a `tokio_*` test on both runtime
//! flavours with `on_both_runtimes!`. Also [`run`], the usual body's
//! send-close-check, and the tokio helpers the tokio tests share.

use std::future::Future;
use std::ops::Deref;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use libhoney::{CloseError, Config, FlushError, MetricsSnapshot, Response};
use libhoney_receiver::RunningReceiver;

use super::{check_invariant, client, close_and_collect, send_ids, wait_until, Tally, PATIENCE};

#[cfg(feature = "tokio")]
pub use self::on_tokio::*;

/// Which transmission a shared test body runs over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The default transmission, driven with the client's blocking calls.
    Http,
    /// `transmission::Tokio`, on the runtime the test runs on.
    #[cfg(feature = "tokio")]
    Tokio,
}

/// A client over a transmission of some [`Kind`]; derefs to the client.
pub struct Sending {
    client: libhoney::Client,
    #[cfg(feature = "tokio")]
    tokio: Option<libhoney::transmission::Tokio>,
}

impl Kind {
    /// A client over `cfg` and a new transmission of this kind (for tokio,
    /// on the current runtime).
    pub fn client(self, cfg: Config) -> Sending {
        match self {
            Kind::Http => Sending {
                client: client(cfg),
                #[cfg(feature = "tokio")]
                tokio: None,
            },
            #[cfg(feature = "tokio")]
            Kind::Tokio => {
                let (client, t) = tokio_client(cfg);
                Sending {
                    client,
                    tokio: Some(t),
                }
            }
        }
    }

    /// Waits (bounded by [`PATIENCE`]) until `cond` holds, without blocking
    /// a runtime; false if it never did.
    pub async fn wait_until(self, cond: impl FnMut() -> bool) -> bool {
        match self {
            Kind::Http => wait_until(PATIENCE, cond),
            #[cfg(feature = "tokio")]
            Kind::Tokio => wait_until_async(cond).await,
        }
    }

    /// What the transport error of a request that timed out says.
    pub fn timeout_word(self) -> &'static str {
        match self {
            Kind::Http => "timeout",
            #[cfg(feature = "tokio")]
            Kind::Tokio => "timed out",
        }
    }
}

impl Deref for Sending {
    type Target = libhoney::Client;

    fn deref(&self) -> &libhoney::Client {
        &self.client
    }
}

impl Sending {
    /// Waits until every event sent so far has its response: the client's
    /// `flush_within`, or the tokio transmission's async `flush`.
    pub async fn flush(&self, timeout: Duration) -> Result<(), FlushError> {
        #[cfg(feature = "tokio")]
        if let Some(t) = &self.tokio {
            return t.flush(timeout).await;
        }
        self.client.flush_within(timeout)
    }

    /// Closes within `timeout`: the client's `close_within` (which ends the
    /// response stream), or the tokio transmission's async `close` (which
    /// does not; [`close_and_collect`](Sending::close_and_collect) does).
    pub async fn close_within(&self, timeout: Duration) -> Result<(), CloseError> {
        #[cfg(feature = "tokio")]
        if let Some(t) = &self.tokio {
            return t.close(timeout).await;
        }
        self.client.close_within(timeout)
    }

    /// Closes (draining everything; at once after a close that gave up)
    /// and returns every response, after checking that the stream has ended.
    pub async fn close_and_collect(&self) -> Vec<Response> {
        #[cfg(feature = "tokio")]
        if let Some(t) = &self.tokio {
            return close_and_collect_async(&self.client, t).await;
        }
        close_and_collect(&self.client)
    }
}

/// Sends `n` events (ids `0..n`) through a client of `kind` built from
/// `cfg`, closes it, and checks the invariant.
pub async fn run(
    kind: Kind,
    rx: &RunningReceiver,
    cfg: Config,
    n: u64,
) -> (Tally, MetricsSnapshot) {
    let client = kind.client(cfg);
    let sent = send_ids(&client, 0..n);
    let responses = client.close_and_collect().await;
    let metrics = client.metrics();
    let tally = check_invariant(&sent, &responses, rx, &metrics);
    (tally, metrics)
}

/// Runs `fut` to completion on this thread, with no runtime: what an
/// `http_*` test does with a shared body.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(out) => return out,
            Poll::Pending => std::thread::park(),
        }
    }
}

/// Helpers of the tests of the tokio transmission.
#[cfg(feature = "tokio")]
mod on_tokio {
    use std::time::{Duration, Instant};

    use libhoney::transmission::Tokio;
    use libhoney::{Client, Config, Response, Responses, TryRecvError};

    use super::super::{client, PATIENCE};

    /// A client over a new tokio transmission (on the current runtime), and
    /// a handle to the transmission.
    pub fn tokio_client(cfg: Config) -> (Client, Tokio) {
        let t = Tokio::new();
        (client(cfg.transmission(t.clone())), t)
    }

    /// Closes the transmission, then the client (which ends the stream), and
    /// returns every response.
    pub async fn close_and_collect_async(client: &Client, t: &Tokio) -> Vec<Response> {
        let responses = client.responses();
        t.close(PATIENCE).await.expect("close drains everything");
        client.close_async(PATIENCE).await.expect("client closes");
        drain_ended(&responses)
    }

    /// Every response waiting now, after checking that the stream has ended.
    pub fn drain_ended(responses: &Responses) -> Vec<Response> {
        let mut out = Vec::new();
        loop {
            match responses.try_recv() {
                Ok(r) => out.push(r),
                Err(TryRecvError::Ended) => return out,
                Err(TryRecvError::Empty) => panic!("the stream has not ended"),
            }
        }
    }

    /// Awaits (bounded by [`PATIENCE`]) until `cond` holds, without blocking
    /// the runtime.
    pub async fn wait_until_async(mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + PATIENCE;
        while !cond() {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        true
    }
}
