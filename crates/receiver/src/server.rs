//! The server thread: its own tokio runtime, the accept loop (with outages
//! for [`crate::Fault::Down`] and [`crate::RunningReceiver::down_for`]) and
//! one hyper HTTP/1.1 connection per task.
//!
//! An outage keeps the port: on Linux, `shutdown(SHUT_RD)` on a listening
//! socket stops it listening (the kernel resets connections still waiting
//! to be accepted and answers new SYNs with RST, so clients get "connection
//! refused") while it stays bound, provided it was bound to an explicit port
//! (an auto-bound port is released); `listen()` on the same socket resumes.
//! While paused it has no `SO_REUSEADDR`, so no other socket can bind the
//! port, not even one with `SO_REUSEADDR` (which a bound socket that does
//! not listen would otherwise let in). It gets `SO_REUSEADDR` back just
//! before listening again, because the connections closed by the outage
//! linger in `TIME_WAIT` on the port, with `SO_REUSEADDR` inherited from the
//! listener, and block a `listen()` without it. Where shutting down a
//! listener does not stop it (not Linux), an outage closes the listener and
//! binds the port again afterwards, as before.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::time::Instant;

use crate::handler;
use crate::state::Shared;

/// Listen backlog.
const BACKLOG: i32 = 1024;
/// How soon to try again when listening again after an outage fails.
const RELISTEN_RETRY: Duration = Duration::from_millis(20);

/// Per-connection context handed to the request handler.
pub(crate) struct ConnCtx {
    /// Notified by the handler to close the connection without answering.
    pub drop_now: Notify,
}

/// A request for an outage, sent to the accept loop.
pub(crate) struct DownRequest {
    /// How long new connections are refused.
    pub duration: Duration,
    /// Told once the outage has begun: new connections are refused, and
    /// open ones have been told to close.
    pub started: Started,
}

/// Who waits for an outage to begin.
pub(crate) enum Started {
    /// A blocked thread ([`crate::RunningReceiver::down_for`]).
    Blocking(std::sync::mpsc::SyncSender<()>),
    /// A request handler ([`crate::Fault::Down`]).
    Async(oneshot::Sender<()>),
}

impl Started {
    fn notify(self) {
        match self {
            Started::Blocking(tx) => {
                let _ = tx.try_send(());
            }
            Started::Async(tx) => {
                let _ = tx.send(());
            }
        }
    }
}

/// Starts the server thread, which owns the runtime (so it is created,
/// driven and dropped outside any caller runtime).
pub(crate) fn spawn(
    listener: std::net::TcpListener,
    addr: SocketAddr,
    shared: Arc<Shared>,
    threads: usize,
    down_rx: mpsc::UnboundedReceiver<DownRequest>,
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

/// Binds and listens on the first of `addrs` that can be bound (a
/// non-blocking listener).
pub(crate) fn bind(addrs: &[SocketAddr]) -> io::Result<std::net::TcpListener> {
    let mut last = None;
    for &addr in addrs {
        match bind_one(addr) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}

fn new_socket(addr: SocketAddr) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As std's `TcpListener::bind` does on Unix (and not on Windows, where
    // it would let other sockets take the port over).
    #[cfg(unix)]
    s.set_reuse_address(true)?;
    Ok(s)
}

fn bind_one(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let sock = new_socket(addr)?;
    if addr.port() == 0 && cfg!(any(target_os = "linux", target_os = "android")) {
        // Only a socket bound to an explicit port keeps it when paused (see
        // the module docs): let a throwaway socket pick a free port, then
        // bind that one explicitly (neither listens and both have
        // SO_REUSEADDR, which on Linux lets both be bound to it meanwhile;
        // BSDs would refuse, and cannot pause a listener anyway).
        let probe = new_socket(addr)?;
        probe.bind(&addr.into())?;
        let mut picked = addr;
        picked.set_port(probe.local_addr()?.as_socket().map_or(0, |a| a.port()));
        sock.bind(&picked.into())?;
    } else {
        sock.bind(&addr.into())?;
    }
    sock.listen(BACKLOG)?;
    sock.set_nonblocking(true)?;
    Ok(sock.into())
}

/// The listening socket during an outage.
enum Paused {
    /// Still bound (the port stays reserved), not listening.
    Reserved(std::net::TcpListener),
    /// Closed: this platform cannot stop a listener without closing it.
    Closed,
}

/// Stops listening, keeping the port if the platform allows it.
fn pause(listener: TcpListener) -> Paused {
    let Ok(l) = listener.into_std() else {
        return Paused::Closed;
    };
    let s = SockRef::from(&l);
    let _ = s.set_reuse_address(false);
    let _ = s.shutdown(std::net::Shutdown::Read);
    // A socket that no longer listens fails `accept` with EINVAL; one that
    // still does (or accepts a connection here) is closed instead.
    match l.accept() {
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => Paused::Reserved(l),
        _ => Paused::Closed,
    }
}

/// Listens again after an outage; gives the paused state back on failure.
fn resume(paused: Paused, addr: SocketAddr) -> Result<TcpListener, Paused> {
    match paused {
        Paused::Reserved(l) => {
            let s = SockRef::from(&l);
            #[cfg(unix)]
            let _ = s.set_reuse_address(true);
            if s.listen(BACKLOG).is_err() {
                let _ = s.set_reuse_address(false);
                return Err(Paused::Reserved(l));
            }
            TcpListener::from_std(l).map_err(|_| Paused::Closed)
        }
        Paused::Closed => bind_one(addr)
            .and_then(TcpListener::from_std)
            .map_err(|_| Paused::Closed),
    }
}

/// `d` from now, or very far away.
fn deadline(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365))
}

async fn accept_loop(
    listener: std::net::TcpListener,
    addr: SocketAddr,
    shared: Arc<Shared>,
    mut down_rx: mpsc::UnboundedReceiver<DownRequest>,
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
            Some(down) = down_rx.recv() => {
                // Refuse new connections first, then close the open ones, so
                // that a client seeing its connection closed is refused if
                // it reconnects.
                let paused = pause(listener);
                kill_tx.send_modify(|g| *g += 1);
                match outage(paused, addr, down, &mut down_rx, &mut shutdown_rx).await {
                    Some(l) => listener = l,
                    None => return,
                }
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

/// Stays down until the outage, extended by any further down requests, is
/// over, then listens again (retrying until it can). `None`: the receiver
/// is shutting down.
async fn outage(
    mut paused: Paused,
    addr: SocketAddr,
    first: DownRequest,
    down_rx: &mut mpsc::UnboundedReceiver<DownRequest>,
    shutdown_rx: &mut watch::Receiver<bool>,
) -> Option<TcpListener> {
    let mut end = deadline(first.duration);
    first.started.notify();
    loop {
        tokio::select! {
            biased;
            _ = shutdown_rx.changed() => return None,
            Some(more) = down_rx.recv() => {
                end = end.max(deadline(more.duration));
                more.started.notify();
            }
            _ = tokio::time::sleep_until(end) => match resume(paused, addr) {
                Ok(l) => return Some(l),
                Err(p) => {
                    paused = p;
                    end = deadline(RELISTEN_RETRY);
                }
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
