//! The process-wide default client, for libhoney-py style module functions.
//!
//! [`init`] installs a client; the functions here use it. Before `init` they
//! return [`NotInitialized`] (or, for those whose client method can fail too,
//! [`GlobalError::NotInitialized`]), never panic. Calling `init` again replaces
//! the default client; the previous one is closed when its guard drops, or once
//! its last handle (events, builders, clones) is gone, waiting at most its
//! [`shutdown_timeout`](crate::Config::shutdown_timeout). [`close`] closes the
//! default client and uninstalls it.
//!
//! **At process exit:** Rust never drops statics, so the default client is
//! not closed when `main` returns (libhoney-py closes it from `atexit`).
//! [`init`] therefore returns a [`CloseOnDrop`] guard, the pattern of
//! process-wide clients in Rust (`sentry::init`, `tracing-appender`): keep it
//! alive in `main` (`let _guard = libhoney::init(config)?;`) and it flushes and
//! closes the client when `main` returns, also early with `?` or by a panic
//! that unwinds. The same guard type serves a client you built yourself
//! ([`Client::close_on_drop`]) and the tower and tracing integrations, whose
//! layers hold a clone of the client (in a global subscriber, for ever) and so
//! would otherwise keep "close on last drop" from ever happening.

use crate::sync::RwLockExt;
use std::sync::RwLock;

use crate::builder::Builder;
use crate::client::Client;
use crate::config::Config;
use crate::error::{CloseError, ConfigError, FieldError, FlushError, GlobalError, NotInitialized};
use crate::event::Event;
use crate::response::Responses;
use crate::value::{FieldName, Value};

static DEFAULT: RwLock<Option<Client>> = RwLock::new(None);

/// Builds a client from `config`, makes it the process-wide default, and
/// returns the guard that flushes and closes it when dropped.
///
/// Keep the guard alive for as long as events are sent, typically by binding
/// it in `main`: `let _guard = libhoney::init(config)?;`. **Not** `let _ =`,
/// which drops the guard, and so closes the client, at once (the guard is
/// `#[must_use]`). [`CloseOnDrop::client`] is the new client;
/// [`CloseOnDrop::into_client`] gives up the guard and keeps a plain handle.
///
/// Calling it again replaces the default client (the previous one closes when
/// its own guard drops, or once its last handle is dropped: if this call held
/// the last one, it waits for that close, up to the old client's shutdown
/// timeout). Global fields do not carry over. Costs as [`Client::new`].
///
/// # Errors
/// [`ConfigError`] for an invalid configuration; the previous default, if any,
/// stays in place.
///
/// ```
/// use libhoney::{Config, transmission::Mock};
/// fn run() -> Result<(), Box<dyn std::error::Error>> {
///     let _guard = libhoney::init(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
///     libhoney::add_field("build_id", "abc")?;
///     let mut ev = libhoney::new_event()?;
///     ev.add_field("n", 1);
///     ev.send()?;
///     Ok(()) // `_guard` drops: the event is delivered, the client closed
/// }
/// run()?; // as at the end of `main`
/// assert!(libhoney::new_event().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn init(config: Config) -> Result<CloseOnDrop, ConfigError> {
    let client = Client::new(config)?;
    let previous = DEFAULT.write_unpoisoned().replace(client.clone());
    drop(previous);
    Ok(CloseOnDrop {
        client: Some(client),
    })
}

/// The default client, if [`init`] was called (and [`close`] was not since).
pub fn client() -> Result<Client, NotInitialized> {
    DEFAULT.read_unpoisoned().clone().ok_or(NotInitialized)
}

/// Adds a global field to the default client.
///
/// # Errors
/// [`NotInitialized`] before [`init`].
pub fn add_field(
    name: impl Into<FieldName>,
    value: impl Into<Value>,
) -> Result<(), NotInitialized> {
    client()?.add_field(name, value);
    Ok(())
}

/// Adds the top-level keys of a struct or map as global fields of the default client.
///
/// # Errors
/// [`GlobalError::NotInitialized`] before [`init`]; otherwise
/// [`GlobalError::Client`] with the error of [`Client::add`].
pub fn add<T: serde::Serialize + ?Sized>(data: &T) -> Result<(), GlobalError<FieldError>> {
    client()
        .map_err(|_| GlobalError::NotInitialized)?
        .add(data)?;
    Ok(())
}

/// Adds a global dynamic field to the default client.
///
/// # Errors
/// [`NotInitialized`] before [`init`].
pub fn add_dynamic_field<F, V>(name: impl Into<FieldName>, func: F) -> Result<(), NotInitialized>
where
    F: Fn() -> V + Send + Sync + 'static,
    V: Into<Value>,
{
    client()?.add_dynamic_field(name, func);
    Ok(())
}

/// Creates an event from the default client.
///
/// # Errors
/// [`NotInitialized`] before [`init`].
pub fn new_event() -> Result<Event, NotInitialized> {
    Ok(client()?.new_event())
}

/// Creates a builder from the default client.
///
/// # Errors
/// [`NotInitialized`] before [`init`].
pub fn new_builder() -> Result<Builder, NotInitialized> {
    Ok(client()?.new_builder())
}

/// The default client's response queue.
///
/// # Errors
/// [`NotInitialized`] before [`init`].
pub fn responses() -> Result<Responses, NotInitialized> {
    Ok(client()?.responses())
}

/// Flushes the default client (see [`Client::flush`]).
///
/// # Errors
/// [`GlobalError::NotInitialized`] before [`init`]; otherwise
/// [`GlobalError::Client`] with the error of [`Client::flush`].
pub fn flush() -> Result<(), GlobalError<FlushError>> {
    client().map_err(|_| GlobalError::NotInitialized)?.flush()?;
    Ok(())
}

/// Closes the default client and uninstalls it; later module functions return
/// `NotInitialized` until the next [`init`]. Does nothing before `init`.
///
/// # Errors
/// As [`Client::close`].
pub fn close() -> Result<(), CloseError> {
    let taken = DEFAULT.write_unpoisoned().take();
    match taken {
        Some(c) => c.close(),
        None => Ok(()),
    }
}

/// The guard that flushes and closes a client when dropped: the one pattern
/// for not losing the last events at exit, shared by the global API
/// ([`init`], [`close_on_drop`]), a client of your own
/// ([`Client::close_on_drop`]) and the tower and tracing layers (make the
/// guard from the client you give them).
///
/// Keep it alive in `main` (`let _guard = ...;`, not `let _ = ...;`): when it
/// drops, at the end of `main`, on an early `return`/`?`, or while a panic
/// unwinds, it calls [`Client::close`], which sends what is queued and waits
/// for it, up to the client's
/// [`shutdown_timeout`](crate::Config::shutdown_timeout). It closes the client
/// even while other handles to it live (a clone held by a layer in a global
/// `tracing` subscriber or a server's router, which Rust never drops at exit);
/// events sent after that are refused with
/// [`SendError::Closed`](crate::SendError::Closed). A guard of the default
/// client also uninstalls it, as [`close`] does.
///
/// **Blocking.** The drop blocks the dropping thread for up to the shutdown
/// timeout, and costs nothing before. In async code, end with
/// [`close_async`](CloseOnDrop::close_async)`(timeout).await` to wait
/// without blocking an executor thread; the guard then has nothing left to
/// do. A failed close is logged at warn level (target `libhoney`), since a
/// drop cannot return it.
#[must_use = "the client is closed when this guard is dropped; bind it with `let _guard = ...` for as long as events are sent"]
#[derive(Debug)]
pub struct CloseOnDrop {
    /// `None`: whatever client is the default when the guard drops.
    client: Option<Client>,
}

impl CloseOnDrop {
    /// A guard that closes `client` when dropped. Same as
    /// [`Client::close_on_drop`].
    pub fn new(client: Client) -> CloseOnDrop {
        CloseOnDrop {
            client: Some(client),
        }
    }

    /// The client this guard closes; for a guard made by [`close_on_drop`],
    /// the default client as it is now (`None` before [`init`] or after
    /// [`close`]). A clone (one reference-count increment).
    pub fn client(&self) -> Option<Client> {
        match &self.client {
            Some(c) => Some(c.clone()),
            None => client().ok(),
        }
    }

    /// Gives up the guard without closing anything, returning the client it
    /// would have closed (as [`client`](CloseOnDrop::client)). The client then
    /// closes when its last handle is dropped, or by an explicit `close`.
    pub fn into_client(mut self) -> Option<Client> {
        let taken = self.client.take();
        std::mem::forget(self);
        taken.or_else(|| client().ok())
    }

    /// Closes now, blocking as [`Client::close`] does, and returns its result
    /// instead of logging it.
    ///
    /// # Errors
    /// As [`Client::close`].
    pub fn close(mut self) -> Result<(), CloseError> {
        let taken = self.client.take();
        std::mem::forget(self);
        close_client(taken)
    }

    /// Closes without blocking an executor thread, as
    /// [`Client::close_async`]: the wait, up to `timeout`, runs on a helper
    /// thread. Then uninstalls the default client if it was this guard's.
    ///
    /// # Errors
    /// As [`Client::close`].
    pub fn close_async(
        mut self,
        timeout: std::time::Duration,
    ) -> impl std::future::Future<Output = Result<(), CloseError>> + Send + 'static {
        let taken = self.client.take();
        std::mem::forget(self);
        let target = taken.or_else(|| client().ok());
        async move {
            let result = match &target {
                Some(c) => c.close_async(timeout).await,
                None => Ok(()),
            };
            uninstall_if_closed();
            result
        }
    }
}

/// Closes `target` (or the default client, for `None`) and uninstalls the
/// default if it is now closed.
fn close_client(target: Option<Client>) -> Result<(), CloseError> {
    match target {
        Some(c) => {
            let result = c.close();
            uninstall_if_closed();
            result
        }
        None => close(),
    }
}

/// Uninstalls the default client if it is closed (by a guard of it).
fn uninstall_if_closed() {
    let taken = {
        let mut default = DEFAULT.write_unpoisoned();
        if default.as_ref().is_some_and(Client::is_closed) {
            default.take()
        } else {
            None
        }
    };
    drop(taken);
}

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        if let Err(e) = close_client(self.client.take()) {
            log::warn!(target: "libhoney", "closing the client: {e}");
        }
    }
}

impl From<Client> for CloseOnDrop {
    fn from(client: Client) -> Self {
        CloseOnDrop::new(client)
    }
}

impl Client {
    /// A guard that flushes and [`close`](Client::close)s this client when
    /// dropped, even while other handles live (such as the clone a tracing or
    /// tower layer holds): see [`CloseOnDrop`]. Costs one reference-count
    /// increment; the drop blocks up to the client's shutdown timeout.
    ///
    /// ```
    /// use libhoney::{Client, Config, transmission::Mock};
    /// let mock = Mock::new();
    /// let client = Client::new(Config::new().api_key("k").dataset("d").transmission(mock.clone()))?;
    /// {
    ///     let _guard = client.close_on_drop();
    ///     let held_elsewhere = client.clone(); // a layer's clone, say
    ///     let mut ev = held_elsewhere.new_event();
    ///     ev.add_field("n", 1);
    ///     ev.send()?;
    ///     std::mem::forget(held_elsewhere); // never dropped, like a global subscriber's
    /// } // the guard drops: flushed and closed
    /// assert!(client.is_closed());
    /// assert_eq!(mock.events().len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close_on_drop(&self) -> CloseOnDrop {
        CloseOnDrop::new(self.clone())
    }
}

/// A guard that [`close`]s the default client when dropped, whichever client
/// is the default then. Costs nothing until then; the drop blocks for up to
/// the client's shutdown timeout. [`init`] already returns such a guard (for
/// the client it installs); this one suits code that cannot keep `init`'s.
///
/// ```
/// use libhoney::{Config, transmission::Mock};
/// fn run() -> Result<(), Box<dyn std::error::Error>> {
///     let client = libhoney::init(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?
///         .into_client();
///     let _guard = libhoney::close_on_drop();
///     let mut ev = libhoney::new_event()?;
///     ev.add_field("job", "nightly");
///     ev.send()?;
///     # drop(client);
///     Ok(()) // the guard drops here: the event is delivered before the process exits
/// }
/// run()?; // as at the end of `main`
/// # assert!(libhoney::new_event().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn close_on_drop() -> CloseOnDrop {
    CloseOnDrop { client: None }
}
