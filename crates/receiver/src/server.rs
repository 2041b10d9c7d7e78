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
//!
//! Bounds (see [`crate::ReceiverBuilder`]): at most `max_connections`
//! connections are open at once (more are closed as soon as accepted);
//! each connection has a watchdog that closes it when it stays idle (no
//! request) longer than `idle_timeout`, or takes longer than
//! `header_read_timeout` from the first byte of a request to the end of its
//! header. The body's own timeout and memory budget are applied by the
//! handler, which marks the connection busy while it runs.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch, Notify, Semaphore};
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
    /// What the connection is doing, for its watchdog.
    pub activity: Activity,
}

const IDLE: u8 = 0;
const HEAD: u8 = 1;
const BUSY: u8 = 2;

/// A connection's phase, kept for its watchdog: idle (no request), reading
/// a request head (since its first byte), or busy (a request is being
/// handled: its body has its own timeout).
pub(crate) struct Activity {
    base: Instant,
    phase: AtomicU8,
    /// When the phase began, in milliseconds since `base`.
    since_ms: AtomicU64,
    changed: Notify,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            base: Instant::now(),
            phase: AtomicU8::new(IDLE),
            since_ms: AtomicU64::new(0),
            changed: Notify::new(),
        }
    }

    fn enter(&self, phase: u8) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.since_ms.store(ms, Ordering::Release);
        self.phase.store(phase, Ordering::Release);
        self.changed.notify_one();
    }

    /// Bytes arrived: an idle connection starts reading a request head.
    fn bytes_read(&self) {
        if self.phase.load(Ordering::Acquire) == IDLE {
            self.enter(HEAD);
        }
    }

    /// A request's head was read: busy until the guard is dropped (when
    /// the handler returns), then idle again.
    pub(crate) fn busy(&self) -> BusyGuard<'_> {
        self.enter(BUSY);
        BusyGuard(self)
    }

    /// Resolves when the connection has been idle longer than `idle`, or
    /// reading one head longer than `header`.
    async fn expired(&self, idle: Duration, header: Duration) {
        loop {
            let changed = self.changed.notified();
            let phase = self.phase.load(Ordering::Acquire);
            let limit = match phase {
                IDLE => idle,
                HEAD => header,
                _ => {
                    changed.await;
                    continue;
                }
            };
            let since = Duration::from_millis(self.since_ms.load(Ordering::Acquire));
            let deadline = self
                .base
                .checked_add(since)
                .and_then(|t| t.checked_add(limit));
            let Some(deadline) = deadline else {
                changed.await;
                continue;
            };
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep_until(deadline) => {
                    if self.phase.load(Ordering::Acquire) == phase
                        && Duration::from_millis(self.since_ms.load(Ordering::Acquire)) == since
                    {
                        return;
                    }
                }
            }
        }
    }
}

/// Marks the end of a request's handling (see [`Activity::busy`]).
pub(crate) struct BusyGuard<'a>(&'a Activity);

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.0.enter(IDLE);
    }
}

/// The connection's socket, telling its [`Activity`] when bytes arrive.
struct Watched {
    stream: TcpStream,
    ctx: Arc<ConnCtx>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.ctx.activity.bytes_read();
        }
        res
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
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
    let open = Arc::new(Semaphore::new(shared.cfg.limits.max_connections));
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
                Ok((stream, _)) => match open.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let conn = serve_conn(stream, shared.clone(), kill_tx.subscribe());
                        tokio::spawn(async move {
                            conn.await;
                            drop(permit);
                        });
                    }
                    // Over the cap: closed at once.
                    Err(_) => drop(stream),
                },
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
        activity: Activity::new(),
    });
    let limits = shared.cfg.limits;
    let svc_ctx = ctx.clone();
    let svc = service_fn(move |req| handler::handle(req, shared.clone(), svc_ctx.clone()));
    let io = Watched {
        stream,
        ctx: ctx.clone(),
    };
    let conn = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), svc);
    tokio::select! {
        _ = conn => {}
        _ = kill.changed() => {}
        _ = ctx.drop_now.notified() => {}
        _ = ctx.activity.expired(limits.idle_timeout, limits.header_read_timeout) => {}
    }
}
