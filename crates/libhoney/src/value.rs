//! Field names and values: what an event is made of.
//!
//! Honeycomb columns hold strings, integers, floats and booleans. [`Value`] holds
//! those, plus `null` and nested arrays and objects (sent as nested JSON, as
//! libhoney-go does). Values are built with `From`/`Into` from the usual Rust
//! types, or from anything `serde::Serialize` with [`Value::from_serialize`].
//!
//! Non-finite floats (`NaN`, `±inf`) cannot be written as JSON numbers. They are
//! kept as floats in the event and converted when the event is encoded, according
//! to [`NonFiniteFloats`](crate::NonFiniteFloats) (by default: the strings `"NaN"`,
//! `"Infinity"`, `"-Infinity"`), so the wire never carries invalid JSON and the
//! other events of a batch are never affected.

use std::borrow::{Borrow, Cow};
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// The name of a field (a Honeycomb column).
///
/// Built from a `&'static str` (no allocation: the common case of literal names),
/// a `String`, or a `Cow<'static, str>`. For a name held in a borrowed, non-static
/// `&str`, pass `name.to_owned()`.
///
/// ```
/// use libhoney::FieldName;
/// let a: FieldName = "duration_ms".into();
/// let b: FieldName = format!("shard_{}", 3).into();
/// assert_eq!(&*a, "duration_ms");
/// assert_eq!(b.as_str(), "shard_3");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldName(Cow<'static, str>);

impl FieldName {
    /// A field name from a static string, usable in `const` contexts. Costs nothing.
    ///
    /// ```
    /// use libhoney::FieldName;
    /// const DURATION: FieldName = FieldName::from_static("duration_ms");
    /// assert_eq!(DURATION.as_str(), "duration_ms");
    /// ```
    pub const fn from_static(name: &'static str) -> Self {
        FieldName(Cow::Borrowed(name))
    }

    /// The name as a string slice. Costs nothing.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for FieldName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for FieldName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for FieldName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for FieldName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for FieldName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&'static str> for FieldName {
    fn from(s: &'static str) -> Self {
        FieldName(Cow::Borrowed(s))
    }
}

impl From<String> for FieldName {
    fn from(s: String) -> Self {
        FieldName(Cow::Owned(s))
    }
}

impl From<&String> for FieldName {
    fn from(s: &String) -> Self {
        FieldName(Cow::Owned(s.clone()))
    }
}

impl From<Cow<'static, str>> for FieldName {
    fn from(s: Cow<'static, str>) -> Self {
        FieldName(s)
    }
}

impl From<Arc<str>> for FieldName {
    fn from(s: Arc<str>) -> Self {
        FieldName(Cow::Owned(s.to_string()))
    }
}

impl PartialEq<str> for FieldName {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for FieldName {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

/// A field value.
///
/// Build one with `Into` from `bool`, any integer, `f32`/`f64`, `&str`, `String`,
/// `Cow<'static, str>`, `Option<T>` (`None` is `Null`), `Vec<T>`, or from any
/// `serde::Serialize` value with [`Value::from_serialize`].
///
/// ```
/// use libhoney::Value;
/// assert_eq!(Value::from(42), Value::Int(42));
/// assert_eq!(Value::from("GET"), Value::from(String::from("GET")));
/// assert_eq!(Value::from(None::<i32>), Value::Null);
/// assert!(Value::from(0.5).as_f64().is_some());
/// ```
#[derive(Clone, Debug, PartialEq, Default)]
#[non_exhaustive]
pub enum Value {
    /// JSON `null`.
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer too large for `i64` is kept here; smaller ones may be
    /// stored as either variant.
    UInt(u64),
    /// A 64-bit float. Non-finite values (`NaN`, `±inf`) are kept here and
    /// converted when the event is encoded, according to
    /// [`NonFiniteFloats`](crate::NonFiniteFloats), so the output is always
    /// valid JSON.
    Float(f64),
    /// A string. Static strings are held without copying.
    String(Cow<'static, str>),
    /// An array, sent as nested JSON.
    Array(Vec<Value>),
    /// An object, sent as nested JSON. Later duplicates of a key win.
    Object(Vec<(FieldName, Value)>),
}

impl Value {
    /// How deeply a field's value may nest arrays and objects: a scalar has
    /// depth 0, `[1]` depth 1, `{"a": [1]}` depth 2 (see [`Value::depth`]).
    ///
    /// Deeper values are refused, never sent and never recursed into
    /// without bound: [`Value::from_serialize`] and `add` fail with
    /// [`FieldError::TooDeep`](crate::FieldError::TooDeep), and `send` of
    /// an event holding one (through `add_field`) fails with
    /// [`SendError::TooDeep`](crate::SendError::TooDeep). Real data nests
    /// a few levels; 100 keeps a whole batch (array, event, `data`, value)
    /// within the 128 levels that `serde_json`, and the local receiver,
    /// read by default.
    pub const MAX_DEPTH: usize = 100;

    /// How deeply this value nests arrays and objects: 0 for a scalar, one
    /// more than its deepest item for an array or object (an empty one has
    /// depth 1). Walks the whole value once, without recursion (any depth
    /// is safe), allocating a work list only for nested containers.
    ///
    /// ```
    /// use libhoney::Value;
    /// assert_eq!(Value::from(1).depth(), 0);
    /// assert_eq!(Value::Array(vec![]).depth(), 1);
    /// let v = Value::from_serialize(&serde_json::json!({"a": [1, {"b": []}]})).unwrap();
    /// assert_eq!(v.depth(), 4);
    /// ```
    pub fn depth(&self) -> usize {
        fn children(v: &Value) -> Option<Box<dyn Iterator<Item = &Value> + '_>> {
            match v {
                Value::Array(items) => Some(Box::new(items.iter())),
                Value::Object(entries) => Some(Box::new(entries.iter().map(|(_, v)| v))),
                _ => None,
            }
        }
        let Some(top) = children(self) else {
            return 0;
        };
        let mut deepest = 1;
        // One iterator per open container: the path from the top down.
        let mut path = vec![top];
        while let Some(items) = path.last_mut() {
            match items.next() {
                Some(item) => {
                    if let Some(inner) = children(item) {
                        path.push(inner);
                        deepest = deepest.max(path.len());
                    }
                }
                None => {
                    path.pop();
                }
            }
        }
        deepest
    }

    /// Whether this value nests deeper than [`Value::MAX_DEPTH`]. Costs
    /// nothing for a scalar; walks a container as [`Value::depth`] does.
    pub(crate) fn too_deep(&self) -> bool {
        matches!(self, Value::Array(_) | Value::Object(_)) && self.depth() > Value::MAX_DEPTH
    }

    /// A string value from a static string, with no allocation.
    ///
    /// ```
    /// const UNKNOWN: libhoney::Value = libhoney::Value::from_static("unknown");
    /// assert_eq!(UNKNOWN.as_str(), Some("unknown"));
    /// ```
    pub const fn from_static(s: &'static str) -> Self {
        Value::String(Cow::Borrowed(s))
    }

    /// Converts any `serde::Serialize` value into a `Value`.
    ///
    /// Structs and maps become [`Value::Object`], sequences and tuples
    /// [`Value::Array`], unit and `None` [`Value::Null`]; unit enum variants become
    /// their name. Map keys must serialize as strings, integers, chars or bools.
    /// Non-finite floats are kept as floats (unlike `serde_json::to_value`, which
    /// turns them into `null`). Walks the value once, allocating its strings and
    /// containers; no JSON text is produced.
    ///
    /// # Errors
    /// [`FieldError::Serialize`](crate::FieldError::Serialize) when the value's
    /// `Serialize` implementation fails or a map key is not a scalar;
    /// [`FieldError::TooDeep`](crate::FieldError::TooDeep) when it nests
    /// deeper than [`Value::MAX_DEPTH`] (found before the recursion goes
    /// further, so any depth is safe).
    ///
    /// ```
    /// #[derive(serde::Serialize)]
    /// struct Req { method: &'static str, status: u16 }
    /// let v = libhoney::Value::from_serialize(&Req { method: "GET", status: 200 }).unwrap();
    /// assert_eq!(v.get("status"), Some(&libhoney::Value::from(200u16)));
    /// ```
    pub fn from_serialize<T: serde::Serialize + ?Sized>(
        value: &T,
    ) -> Result<Value, crate::FieldError> {
        value.serialize(crate::ser::ValueSerializer(Value::MAX_DEPTH))
    }

    /// The value as `i64`, if it is an integer that fits. Costs nothing (as do the
    /// other `as_*` and `is_null`).
    ///
    /// ```
    /// use libhoney::Value;
    /// assert_eq!(Value::from(7u8).as_i64(), Some(7));
    /// assert_eq!(Value::from(u64::MAX).as_i64(), None);
    /// assert_eq!(Value::from(u64::MAX).as_u64(), Some(u64::MAX));
    /// assert_eq!(Value::from(2).as_f64(), Some(2.0));
    /// assert_eq!(Value::from("x").as_str(), Some("x"));
    /// assert_eq!(Value::from(true).as_bool(), Some(true));
    /// assert!(Value::from(None::<u8>).is_null());
    /// ```
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(i) => Some(i),
            Value::UInt(u) => i64::try_from(u).ok(),
            _ => None,
        }
    }

    /// The value as `u64`, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Int(i) => u64::try_from(i).ok(),
            Value::UInt(u) => Some(u),
            _ => None,
        }
    }

    /// The value as `f64`, if it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Float(f) => Some(f),
            Value::Int(i) => Some(i as f64),
            Value::UInt(u) => Some(u as f64),
            _ => None,
        }
    }

    /// The value as `&str`, if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as `bool`, if it is a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// Is this `Null`?
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// For an object, the value of `key` (the last one if the key repeats). A
    /// linear scan of the object's entries.
    ///
    /// ```
    /// let v = libhoney::Value::from_serialize(&serde_json::json!({"a": {"b": 1}})).unwrap();
    /// assert_eq!(v.get("a").and_then(|a| a.get("b")).and_then(|b| b.as_i64()), Some(1));
    /// ```
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(entries) => entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

macro_rules! from_signed {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self { Value::Int(v as i64) }
        }
    )*};
}
from_signed!(i8, i16, i32, i64);

impl From<isize> for Value {
    fn from(v: isize) -> Self {
        Value::Int(v as i64)
    }
}

macro_rules! from_unsigned {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self { Value::Int(i64::from(v)) }
        }
    )*};
}
from_unsigned!(u8, u16, u32);

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::UInt(v),
        }
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::from(v as u64)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl From<f32> for Value {
    /// Keeps the decimal value the `f32` prints as: `0.1f32` becomes `0.1`,
    /// not `0.10000000149011612` (its exact binary value), as `serde_json`
    /// and libhoney-go write a 32-bit float. Costs a short format and parse.
    fn from(v: f32) -> Self {
        if v.is_finite() {
            let shortest = zmij::Buffer::new().format_finite(v).parse::<f64>();
            Value::Float(shortest.unwrap_or(f64::from(v)))
        } else {
            Value::Float(f64::from(v))
        }
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(Cow::Owned(v.to_owned()))
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::String(Cow::Owned(v.clone()))
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(Cow::Owned(v))
    }
}

impl From<Cow<'static, str>> for Value {
    fn from(v: Cow<'static, str>) -> Self {
        Value::String(v)
    }
}

impl From<Arc<str>> for Value {
    fn from(v: Arc<str>) -> Self {
        Value::String(Cow::Owned(v.to_string()))
    }
}

impl From<char> for Value {
    fn from(v: char) -> Self {
        Value::String(Cow::Owned(v.to_string()))
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        match v {
            Some(v) => v.into(),
            None => Value::Null,
        }
    }
}

impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Self {
        Value::Array(v.into_iter().map(Into::into).collect())
    }
}

impl From<std::time::Duration> for Value {
    /// A duration becomes a float number of milliseconds, the unit Honeycomb's
    /// `duration_ms` convention uses.
    fn from(d: std::time::Duration) -> Self {
        Value::Float(d.as_secs_f64() * 1000.0)
    }
}

impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::UInt(u) => s.serialize_u64(*u),
            Value::Float(f) => s.serialize_f64(*f),
            Value::String(v) => s.serialize_str(v),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Object(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k.as_str(), v)?;
                }
                map.end()
            }
        }
    }
}
