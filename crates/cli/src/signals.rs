//! SIGINT/SIGTERM without unsafe code: a thread with a one-thread tokio
//! runtime (tokio is already in the tree through the receiver) waits for
//! them. The first signal sets a flag the caller polls; a second one exits at
//! once with status 130.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Set once SIGINT or SIGTERM arrives.
#[derive(Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// Has a stop been requested? One atomic load.
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Installs the handlers (before returning) and starts the waiting thread.
///
/// # Errors
/// The runtime or the handlers could not be set up.
pub fn install() -> std::io::Result<Stop> {
    let stop = Stop::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let waiter = {
        let _guard = rt.enter();
        Waiter::install()?
    };
    let flag = stop.clone();
    std::thread::Builder::new()
        .name("honey-signals".into())
        .spawn(move || {
            rt.block_on(async move {
                let mut waiter = waiter;
                waiter.wait().await;
                flag.0.store(true, Ordering::Relaxed);
                waiter.wait().await;
                eprintln!("honey: interrupted again; exiting without waiting");
                std::process::exit(130);
            })
        })?;
    Ok(stop)
}

#[cfg(unix)]
struct Waiter {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Waiter {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Waiter {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    async fn wait(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

#[cfg(not(unix))]
struct Waiter;

#[cfg(not(unix))]
impl Waiter {
    fn install() -> std::io::Result<Self> {
        Ok(Waiter)
    }

    async fn wait(&mut self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}
