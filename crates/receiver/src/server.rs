//! The server thread: its own tokio runtime, the accept loop (with outages
//! for [`crate::Fault::Down`]) and one hyper HTTP/1.1 connection per task.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch, Notify};

use crate::handler;
use crate::state::Shared;

/// Per-connection context handed to the request handler.
pub(crate) struct ConnCtx {
    /// Notified by the handler to close the connection without answering.
    pub drop_now: Notify,
}

/// Starts the server thread, which owns the runtime (so it is created,
/// driven and dropped outside any caller runtime).
pub(crate) fn spawn(
    listener: std::net::TcpListener,
    addr: SocketAddr,
    shared: Arc<Shared>,
    threads: usize,
    down_rx: mpsc::UnboundedReceiver<Duration>,
    shutdown_rx: watch::Receiver<bool>,
) -> io::Result<JoinHandle<()>> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("libhoney-receiver-worker")
        .enable_io()
        .enable_time()
        .build()?;
    std::thread::Builder::new()
        .name("libhoney-receiver".to_owned())
        .spawn(move || {
            rt.block_on(accept_loop(listener, addr, shared, down_rx, shutdown_rx));
            rt.shutdown_timeout(Duration::from_secs(1));
        })
}

fn rebind(addr: SocketAddr) -> io::Result<TcpListener> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(1024)
}

async fn accept_loop(
    listener: std::net::TcpListener,
    addr: SocketAddr,
    shared: Arc<Shared>,
    mut down_rx: mpsc::UnboundedReceiver<Duration>,
    mut shutdown_rx: watch::Receiver<bool>,
) {
    let mut listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(_) => return,
    };
    // Bumped to close every open connection (outages).
    let (kill_tx, _kill_rx) = watch::channel(0u64);
    loop {
        tokio::select! {
            biased;
            _ = shutdown_rx.changed() => return,
            Some(d) = down_rx.recv() => {
                drop(listener);
                kill_tx.send_modify(|g| *g += 1);
                tokio::select! {
                    _ = shutdown_rx.changed() => return,
                    _ = tokio::time::sleep(d) => {}
                }
                listener = loop {
                    match rebind(addr) {
                        Ok(l) => break l,
                        Err(_) => tokio::select! {
                            _ = shutdown_rx.changed() => return,
                            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                        },
                    }
                };
            }
            res = listener.accept() => match res {
                Ok((stream, _)) => {
                    tokio::spawn(serve_conn(stream, shared.clone(), kill_tx.subscribe()));
                }
                // Out of file descriptors and the like: back off briefly.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
        }
    }
}

async fn serve_conn(stream: TcpStream, shared: Arc<Shared>, mut kill: watch::Receiver<u64>) {
    let _ = stream.set_nodelay(true);
    let ctx = Arc::new(ConnCtx {
        drop_now: Notify::new(),
    });
    let svc_ctx = ctx.clone();
    let svc = service_fn(move |req| handler::handle(req, shared.clone(), svc_ctx.clone()));
    let conn = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), svc);
    tokio::select! {
        _ = conn => {}
        _ = kill.changed() => {}
        _ = ctx.drop_now.notified() => {}
    }
}
