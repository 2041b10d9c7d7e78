//! The `Discard` transmission.

use std::sync::OnceLock;
use std::time::Duration;

use super::{Context, QueuedEvent, Responder, Transmission};
use crate::error::{CloseError, ConfigError, FlushError};
use crate::response::Response;

/// Drops every event. Each still gets a success response without a status
/// code (it was handled as asked), so accounting holds. Costs next to nothing;
/// useful to switch sending off without changing code.
///
/// ```
/// use libhoney::{Client, Config, transmission::Discard};
/// let client = Client::new(Config::new().api_key("k").dataset("d").transmission(Discard::new())).unwrap();
/// let mut ev = client.new_event();
/// ev.add_field("x", 1);
/// ev.send().unwrap();
/// assert!(client.responses().recv().unwrap().is_success());
/// ```
#[derive(Debug, Default)]
pub struct Discard {
    responder: OnceLock<Responder>,
}

impl Discard {
    /// A new discarding transmission. Costs nothing.
    pub fn new() -> Self {
        Discard::default()
    }
}

impl Transmission for Discard {
    fn start(&self, ctx: Context) -> Result<(), ConfigError> {
        self.responder
            .set(ctx.responder.clone())
            .map_err(|_| ConfigError::TransmissionInUse {
                transmission: "Discard",
            })
    }

    fn send(&self, mut ev: QueuedEvent) {
        if let Some(r) = self.responder.get() {
            r.respond(Response::success(ev.take_metadata(), None, Duration::ZERO));
        }
    }

    fn flush(&self, _timeout: Duration) -> Result<(), FlushError> {
        Ok(())
    }

    fn close(&self, _timeout: Duration) -> Result<(), CloseError> {
        Ok(())
    }
}
