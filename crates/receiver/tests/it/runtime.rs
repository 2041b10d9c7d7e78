//! Starting, using and dropping a receiver from inside a caller's tokio
//! runtime (both flavours) and from plain threads.

use crate::common;

use std::time::Duration;

use common::*;
use libhoney_receiver::{Fault, Receiver};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request with tokio's own TcpStream (so the caller's runtime really
/// does I/O while the receiver runs on its own).
async fn async_post(addr: std::net::SocketAddr, path: &str, body: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nX-Honeycomb-Team: k\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8(out).unwrap()
}

async fn exercise() {
    let rx = Receiver::builder().start().unwrap();
    let resp = async_post(rx.addr(), "/1/batch/rt", &batch_json(0, 5)).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.ends_with(&format!("[{}]", ["{\"status\":202}"; 5].join(","))));
    assert!(rx.wait_for_events_async(5, Duration::from_secs(5)).await);
    assert!(!rx.wait_for_events_async(6, Duration::from_millis(30)).await);
    // The blocking API also works here (the server is not on this runtime).
    assert!(rx.wait_for_events(5, Duration::from_secs(1)));
    let addr = rx.addr();
    let waiter = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        async_post(addr, "/1/batch/rt", &batch_json(5, 2)).await
    });
    assert!(rx.wait_for_events_async(7, Duration::from_secs(5)).await);
    waiter.await.unwrap();
    rx.push_fault(Fault::Delay(Duration::from_millis(20)), 1);
    let resp = async_post(rx.addr(), "/1/batch/rt", &batch_json(7, 1)).await;
    assert!(resp.starts_with("HTTP/1.1 200"));
    assert_eq!(rx.stats().events_accepted, 8);
    // down_for blocks only until the outage has begun, so it works from
    // inside the caller's runtime (even a current-thread one).
    rx.down_for(Duration::from_millis(200));
    let e = tokio::net::TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    let t0 = std::time::Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(t0.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let resp = async_post(addr, "/1/batch/rt", &batch_json(8, 1)).await;
    assert!(resp.starts_with("HTTP/1.1 200"));
    // Dropping inside the runtime must not panic.
    drop(rx);
    // And a second receiver can be started and shut down explicitly.
    let rx2 = Receiver::builder().threads(1).start().unwrap();
    let resp = async_post(rx2.addr(), "/1/batch/rt", &batch_json(0, 1)).await;
    assert!(resp.starts_with("HTTP/1.1 200"));
    rx2.shutdown();
}

#[tokio::test(flavor = "current_thread")]
async fn inside_current_thread_runtime() {
    exercise().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inside_multi_thread_runtime() {
    exercise().await;
}

#[test]
fn from_plain_threads_and_shared_between_them() {
    let rx = std::sync::Arc::new(Receiver::builder().start().unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let rx = rx.clone();
            std::thread::spawn(move || {
                let mut c = Conn::open(rx.addr()).unwrap();
                for i in 0..25 {
                    let r = c
                        .request(
                            "POST",
                            "/1/batch/th",
                            &[KEY],
                            &batch_json(t * 1000 + i * 4, 4),
                        )
                        .unwrap();
                    assert_eq!(r.statuses(), vec![202; 4]);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(rx.wait_for_events(400, Duration::from_secs(5)));
    assert_eq!(rx.events().len(), 400);
    assert_eq!(rx.requests().len(), 100);
}

#[test]
fn shutdown_frees_the_port_and_bind_errors_surface() {
    let rx = Receiver::builder().start().unwrap();
    let addr = rx.addr();
    // The port is taken: a second receiver on it fails to start.
    assert!(Receiver::builder().addr(addr).start().is_err());
    rx.shutdown();
    assert!(std::net::TcpStream::connect(addr).is_err());
    // ... and can be bound again.
    let again = Receiver::builder().addr(addr).start().unwrap();
    assert_eq!(again.addr(), addr);
    assert_eq!(again.url(), format!("http://{addr}"));
    assert!(Receiver::builder().addr("no such host:x").start().is_err());
}
