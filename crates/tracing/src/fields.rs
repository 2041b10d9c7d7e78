//! Turning `tracing` field values into libhoney fields, collision-safely.

use std::fmt;

use libhoney::{FieldName, Value};
use tracing::field::{Field, Visit};

/// The prefix given to a user field whose name is one this layer sets itself.
pub const RESERVED_PREFIX: &str = "tracing.";

/// Field names this layer sets on the events it sends. See
/// [`is_reserved`].
pub const RESERVED_FIELDS: &[&str] = &[
    "name",
    "duration_ms",
    "busy_ms",
    "level",
    "target",
    "service.name",
    "code.filepath",
    "code.lineno",
    "code.namespace",
];

/// Name prefixes this layer owns: every field starting with one of them is
/// reserved.
pub const RESERVED_PREFIXES: &[&str] = &["trace.", "meta."];

/// Is `name` reserved, that is, would a user field of that name collide with
/// one this layer sets? True for every name in [`RESERVED_FIELDS`] and every
/// name starting with one of [`RESERVED_PREFIXES`].
///
/// A reserved user field is sent as `tracing.{name}` instead, so that
/// `info_span!("x", name = "bob", duration_ms = 3)` arrives with our `name`
/// and `duration_ms` intact and the user's values under `tracing.name` and
/// `tracing.duration_ms`. The check is a handful of string compares; only a
/// renamed field costs an allocation.
///
/// ```
/// use libhoney_tracing::is_reserved;
/// assert!(is_reserved("name") && is_reserved("trace.span_id") && is_reserved("meta.anything"));
/// assert!(!is_reserved("user_id") && !is_reserved("tracing.name") && !is_reserved("names"));
/// ```
pub fn is_reserved(name: &str) -> bool {
    RESERVED_FIELDS.contains(&name) || RESERVED_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The libhoney field name for a `tracing` field name.
pub(crate) fn field_name(name: &'static str) -> FieldName {
    if is_reserved(name) {
        FieldName::from(format!("{RESERVED_PREFIX}{name}"))
    } else {
        FieldName::from_static(name)
    }
}

/// Fields in recording order, where recording a name again replaces its value.
pub(crate) type FieldList = Vec<(FieldName, Value)>;

fn set(list: &mut FieldList, name: FieldName, value: Value) {
    match list.iter_mut().find(|(k, _)| *k == name) {
        Some(slot) => slot.1 = value,
        None => list.push((name, value)),
    }
}

fn from_i128(v: i128) -> Value {
    match i64::try_from(v) {
        Ok(i) => Value::Int(i),
        Err(_) => Value::from(v.to_string()),
    }
}

fn from_u128(v: u128) -> Value {
    match u64::try_from(v) {
        Ok(u) => Value::from(u),
        Err(_) => Value::from(v.to_string()),
    }
}

/// The `record_*` methods of [`Visit`] for the numbers and booleans, which
/// spans and log events record alike: `self.put(field, value)`.
macro_rules! record_plain_values {
    () => {
        fn record_f64(&mut self, field: &Field, value: f64) {
            self.put(field, Value::Float(value));
        }
        fn record_i64(&mut self, field: &Field, value: i64) {
            self.put(field, Value::Int(value));
        }
        fn record_i128(&mut self, field: &Field, value: i128) {
            self.put(field, from_i128(value));
        }
        fn record_u128(&mut self, field: &Field, value: u128) {
            self.put(field, from_u128(value));
        }
        fn record_bool(&mut self, field: &Field, value: bool) {
            self.put(field, Value::Bool(value));
        }
    };
}

/// Records the fields of a span (at creation and on `Span::record`).
pub(crate) struct SpanVisitor<'a>(pub(crate) &'a mut FieldList);

impl SpanVisitor<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        set(self.0, field_name(field.name()), value);
    }
}

impl Visit for SpanVisitor<'_> {
    record_plain_values!();
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::from(format!("{value:?}")));
    }
}

/// Records the fields of a log event: its message apart, the `log.*` fields
/// that `tracing-log` adds to bridged `log` records apart, the rest as fields.
#[derive(Default)]
pub(crate) struct EventVisitor {
    pub(crate) message: Option<String>,
    pub(crate) log_target: Option<String>,
    pub(crate) log_module: Option<String>,
    pub(crate) log_file: Option<String>,
    pub(crate) log_line: Option<u64>,
    pub(crate) fields: FieldList,
}

impl EventVisitor {
    /// Takes a textual value of a field that is not ordinary (the message and
    /// the `log.*` fields); hands the value back for an ordinary field.
    fn special(&mut self, field: &Field, value: String) -> Option<String> {
        let slot = match field.name() {
            "message" => &mut self.message,
            "log.target" => &mut self.log_target,
            "log.module_path" => &mut self.log_module,
            "log.file" => &mut self.log_file,
            _ => return Some(value),
        };
        *slot = Some(value);
        None
    }

    fn put_text(&mut self, field: &Field, value: String) {
        if let Some(value) = self.special(field, value) {
            self.put(field, Value::from(value));
        }
    }

    fn put(&mut self, field: &Field, value: Value) {
        set(&mut self.fields, field_name(field.name()), value);
    }
}

impl Visit for EventVisitor {
    record_plain_values!();
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "log.line" {
            self.log_line = Some(value);
        } else {
            self.put(field, Value::from(value));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put_text(field, value.to_owned());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put_text(field, value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put_text(field, format!("{value:?}"));
    }
}
