//! Client: thread safety, shared use from many threads, and its lifecycle
//! (flush, close, drop).

use crate::common;

use std::collections::HashSet;
use std::sync::Arc;
use std::thread;

use common::{base, mock_client};
use libhoney::transmission::{Mock, QueuedEvent, Transmission};
use libhoney::{
    Builder, Client, Config, Event, FlushError, Metadata, Response, Responses, SendError, Value,
};

fn assert_send_sync<T: Send + Sync>() {}
fn assert_clone<T: Clone>() {}

#[test]
fn public_types_are_thread_safe() {
    assert_send_sync::<Client>();
    assert_clone::<Client>();
    assert_send_sync::<Builder>();
    assert_clone::<Builder>();
    assert_send_sync::<Event>();
    assert_send_sync::<Responses>();
    assert_clone::<Responses>();
    assert_send_sync::<Response>();
    assert_send_sync::<Metadata>();
    assert_send_sync::<Value>();
    assert_send_sync::<Config>();
    assert_send_sync::<QueuedEvent>();
    assert_send_sync::<Mock>();
    // The transmission trait is object safe.
    let _: Option<Arc<dyn Transmission>> = None;
}

#[test]
fn many_threads_send_through_one_shared_client() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 500;
    let (client, mock) = mock_client(base().response_queue_capacity(THREADS * PER_THREAD + 2));
    client.add_field("global", "yes");
    thread::scope(|s| {
        for t in 0..THREADS {
            // A plain shared reference: every client method takes &self.
            let client = &client;
            s.spawn(move || {
                let mut builder = client.new_builder();
                builder.add_field("thread", t);
                for i in 0..PER_THREAD {
                    let mut ev = builder.new_event();
                    ev.add_field("i", i);
                    ev.add_metadata((t, i));
                    ev.send().unwrap();
                }
            });
        }
    });
    // Clones moved into threads work the same.
    let handles: Vec<_> = (0..2)
        .map(|t| {
            let c = client.clone();
            thread::spawn(move || {
                let mut ev = c.new_event();
                ev.add_field("clone", t);
                ev.send().unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    client.flush().unwrap();

    let total = THREADS * PER_THREAD + 2;
    assert_eq!(mock.len(), total);
    let responses: Vec<_> = client.responses().try_iter().collect();
    // 2 responses were for the clone events, the rest carry (thread, i).
    assert_eq!(responses.len(), total);
    let ids: HashSet<(usize, usize)> = responses
        .iter()
        .filter_map(|r| {
            r.metadata
                .as_ref()?
                .downcast_ref::<(usize, usize)>()
                .copied()
        })
        .collect();
    assert_eq!(ids.len(), THREADS * PER_THREAD, "every event answered once");
    for ev in mock.events() {
        assert_eq!(ev.get("global").and_then(Value::as_str), Some("yes"));
    }
    assert_eq!(client.metrics().events_queued, total as u64);
    assert_eq!(client.metrics().events_sent, total as u64);
}

#[test]
fn flush_keeps_the_client_open_and_close_stops_it() {
    let (client, mock) = mock_client(base());
    client.flush().unwrap();
    client
        .flush_within(std::time::Duration::from_secs(1))
        .unwrap();
    assert_eq!(mock.flush_count(), 2);
    assert!(!client.is_closed());

    let mut ev = client.new_event();
    ev.add_field("before", 1);
    ev.send().unwrap();

    // An event made before close cannot be sent after it.
    let mut late = client.new_event();
    late.add_field("late", 1);
    let builder = client.new_builder();

    client.close().unwrap();
    assert!(client.is_closed());
    assert_eq!(mock.close_count(), 1);
    assert_eq!(late.send(), Err(SendError::Closed));
    let mut from_builder = builder.new_event();
    from_builder.add_field("x", 1);
    assert_eq!(from_builder.send(), Err(SendError::Closed));
    let mut after = client.new_event();
    after.add_field("x", 1);
    assert_eq!(after.send(), Err(SendError::Closed));
    assert_eq!(
        mock.len(),
        1,
        "nothing reached the transmission after close"
    );

    // Closing again, from any handle, does nothing more.
    client.close().unwrap();
    client.clone().close().unwrap();
    assert_eq!(mock.close_count(), 1);
    assert_eq!(client.flush(), Err(FlushError::Closed));
    assert_eq!(
        mock.flush_count(),
        2,
        "a flush after close never reaches the transmission"
    );

    // Exactly the one accepted event has a response, then the stream ends.
    let responses: Vec<_> = client.responses().collect();
    assert_eq!(responses.len(), 1);
}

#[test]
fn dropping_the_last_handle_closes_the_client() {
    let mock = Mock::new();
    let client = Client::new(base().transmission(mock.clone())).unwrap();
    let responses = client.responses();
    let clone = client.clone();
    let builder = client.new_builder();
    let mut ev = client.new_event();
    ev.add_field("x", 1);

    drop(client);
    drop(clone);
    assert_eq!(mock.close_count(), 0, "builders and events keep it alive");
    drop(builder);
    assert_eq!(mock.close_count(), 0);
    ev.send().unwrap(); // the event was the last handle
    assert_eq!(mock.close_count(), 1, "closed when the last handle went");
    assert_eq!(mock.len(), 1);
    let all: Vec<_> = responses.collect(); // ends: the client is closed
    assert_eq!(all.len(), 1);
    assert!(all[0].is_success());
}

#[test]
fn async_flush_and_close_complete() {
    // A minimal executor: poll on this thread, park until woken.
    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        use std::task::{Context, Poll, Wake, Waker};
        struct Unpark(thread::Thread);
        impl Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unpark(thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut f = std::pin::pin!(f);
        loop {
            if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
                return out;
            }
            thread::park();
        }
    }
    let (client, mock) = mock_client(base());
    let mut ev = client.new_event();
    ev.add_field("x", 1);
    ev.send().unwrap();
    let timeout = std::time::Duration::from_secs(5);
    block_on(client.flush_async(timeout)).unwrap();
    assert_eq!(mock.flush_count(), 1);
    block_on(client.close_async(timeout)).unwrap();
    assert_eq!(mock.close_count(), 1);
    assert_eq!(
        block_on(client.flush_async(timeout)),
        Err(FlushError::Closed)
    );
}
