//! The benchmark's event shape (bench/peers/SHAPE.md): the same ten fields, by
//! the same formula, in every sender.

use libhoney::{Event, Value};

#[path = "ids.rs"]
mod ids;

/// Exactly 60 characters.
pub const MESSAGE: &str = "request handled by the checkout service without any trouble.";
const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];

/// Adds the fields of event `i`.
pub fn fill(ev: &mut Event, i: u64) {
    let status = if i % 100 == 0 {
        500
    } else if i % 10 == 0 {
        404
    } else {
        200
    };
    ev.add_field("service.name", Value::from_static("checkout"))
        .add_field("endpoint", Value::from_static("/api/v1/cart/items"))
        .add_field("method", Value::from_static(METHODS[(i % 4) as usize]))
        .add_field("status_code", status)
        .add_field("duration_ms", (i % 1000) as f64 * 0.731 + 0.5)
        .add_field("user_id", ids::user_id(i))
        .add_field("cache_hit", i % 3 == 0)
        .add_field("message", Value::from_static(MESSAGE))
        .add_field("trace.trace_id", ids::trace_id(i))
        .add_field("count", i);
}
