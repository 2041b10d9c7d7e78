//! The process-wide default client, for libhoney-py style module functions.
//!
//! [`init`] installs a client; the functions here use it. Before `init` they
//! return [`NotInitialized`] (or, for those whose client method can fail too,
//! [`GlobalError::NotInitialized`]), never panic. Calling `init` again replaces the default client; the previous one is
//! closed once its last handle (events, builders, clones) is gone, waiting at
//! most its [`shutdown_timeout`](crate::Config::shutdown_timeout). [`close`]
//! closes the default client and uninstalls it.
//!
//! **At process exit:** Rust never drops statics, so the default client is
//! not closed when `main` returns, and events still queued then are lost
//! (libhoney-py closes it from `atexit`). Call [`close`] before returning from
//! `main`, or keep the guard of [`close_on_drop`] alive in `main`, which calls
//! it for you, also when `main` returns early with an error.

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

/// Builds a client from `config` and makes it the process-wide default.
///
/// Calling it again replaces the default client (the previous one closes once
/// its last handle is dropped: if this call held the last one, it waits for
/// that close, up to the old client's shutdown timeout). Global fields do not
/// carry over. Returns a handle to the new client. Costs as [`Client::new`].
///
/// # Errors
/// [`ConfigError`] for an invalid configuration; the previous default, if any,
/// stays in place.
///
/// ```
/// use libhoney::{Config, transmission::Mock};
/// libhoney::init(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
/// libhoney::add_field("build_id", "abc")?;
/// let mut ev = libhoney::new_event()?;
/// ev.add_field("n", 1);
/// ev.send()?;
/// libhoney::close()?;
/// assert!(libhoney::new_event().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn init(config: Config) -> Result<Client, ConfigError> {
    let client = Client::new(config)?;
    let previous = DEFAULT.write_unpoisoned().replace(client.clone());
    drop(previous);
    Ok(client)
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

/// Closes the default client when dropped: keep it alive in `main` so that
/// events queued when `main` returns (or bails out with `?`) are still
/// delivered, within the client's shutdown timeout. Made by [`close_on_drop`].
#[must_use = "the default client is closed when this guard is dropped; bind it with `let _guard = ...`"]
#[derive(Debug)]
pub struct CloseOnDrop(());

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        if let Err(e) = close() {
            log::warn!(target: "libhoney", "closing the default client: {e}");
        }
    }
}

/// A guard that [`close`]s the default client when dropped. Costs nothing
/// until then; the drop blocks for up to the client's shutdown timeout.
///
/// ```
/// use libhoney::{Config, transmission::Mock};
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     libhoney::init(Config::new().api_key("k").dataset("d").transmission(Mock::new()))?;
///     let _guard = libhoney::close_on_drop();
///     let mut ev = libhoney::new_event()?;
///     ev.add_field("job", "nightly");
///     ev.send()?;
///     Ok(()) // the guard drops here: the event is delivered before the process exits
/// }
/// # main().unwrap();
/// # assert!(libhoney::new_event().is_err());
/// ```
pub fn close_on_drop() -> CloseOnDrop {
    CloseOnDrop(())
}
