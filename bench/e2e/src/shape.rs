//! The benchmark's event shape (bench/peers/SHAPE.md): the same ten fields, by
//! the same formula, in every sender.

use libhoney::{Event, Value};

#[path = "values.rs"]
mod values;

pub use values::MESSAGE;
use values::{duration_ms, status_code, trace_id, user_id, METHODS};

/// Adds the fields of event `i`.
pub fn fill(ev: &mut Event, i: u64) {
    ev.add_field("service.name", Value::from_static("checkout"))
        .add_field("endpoint", Value::from_static("/api/v1/cart/items"))
        .add_field("method", Value::from_static(METHODS[(i % 4) as usize]))
        .add_field("status_code", status_code(i))
        .add_field("duration_ms", duration_ms(i))
        .add_field("user_id", user_id(i))
        .add_field("cache_hit", i % 3 == 0)
        .add_field("message", Value::from_static(MESSAGE))
        .add_field("trace.trace_id", trace_id(i))
        .add_field("count", i);
}
