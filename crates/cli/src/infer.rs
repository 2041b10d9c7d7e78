//! Values from text: type inference for `name=value` arguments and parsed log
//! fields, and JSON read straight into SDK values (no intermediate tree).

use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use libhoney::{FieldName, Value};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Nesting deeper than this in a JSON line is refused (the line counts as
/// unparseable) rather than risking the stack; serde_json's own limit is 128.
pub const MAX_DEPTH: usize = 64;

/// Infers a number or boolean from text: `42` → integer, `-1.5e3` → float,
/// `true`/`false` → boolean, anything else a string. Costs one parse attempt
/// per type; allocates only for the string case.
pub fn scalar(s: &str) -> Value {
    let b = s.as_bytes();
    if let Some(&c) = b.first() {
        if c.is_ascii_digit() || ((c == b'-' || c == b'+') && b.len() > 1) {
            if let Ok(i) = s.parse::<i64>() {
                return Value::Int(i);
            }
            if let Ok(u) = s.parse::<u64>() {
                return Value::UInt(u);
            }
            // Only plain decimal floats: "1e5", "1.5" — not "inf" or "NaN",
            // which JSON cannot hold, and those start with a letter anyway.
            if let Ok(f) = s.parse::<f64>() {
                if f.is_finite() {
                    return Value::Float(f);
                }
            }
        }
    }
    match s {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(s.to_owned().into()),
    }
}

/// Infers like [`scalar`], and also reads JSON objects and arrays (text
/// starting with `{` or `[` that is valid JSON). Used by `send` and
/// `--add-field`.
pub fn argument(s: &str) -> Value {
    let t = s.trim_start();
    if t.starts_with('{') || t.starts_with('[') {
        let mut de = serde_json::Deserializer::from_str(s);
        if let Ok(v) = (ValueSeed { depth: 0 }).deserialize(&mut de) {
            if de.end().is_ok() {
                return v;
            }
        }
        return Value::String(s.to_owned().into());
    }
    scalar(s)
}

/// Distinct field names kept for the life of the process by [`Names`].
pub const MAX_NAMES: usize = 1024;
/// Longer names are never interned.
pub const MAX_NAME_BYTES: usize = 128;

/// Interns field names: a log repeats the same few names on every line, and
/// an interned name costs no allocation per event (`FieldName` holds a
/// `&'static str`). At most [`MAX_NAMES`] names of at most
/// [`MAX_NAME_BYTES`] bytes are kept (leaked on purpose, at most 128 KiB plus
/// the table); other names are allocated per event as usual.
#[derive(Default)]
pub struct Names {
    set: HashSet<&'static str, BuildHasherDefault<Fx>>,
    /// The name last seen at each position of an object (the first
    /// [`POSITIONS`]): log lines repeat their keys in the same order, so one
    /// comparison usually finds the name without hashing.
    by_position: Vec<&'static str>,
}

/// Positions remembered by [`Names::get_at`].
const POSITIONS: usize = 64;

impl Names {
    /// As [`get`](Names::get), first trying the name last seen at position
    /// `i` of an object. One comparison when the keys repeat.
    pub fn get_at(&mut self, i: usize, s: &str) -> FieldName {
        if let Some(&n) = self.by_position.get(i) {
            if n == s {
                return FieldName::from_static(n);
            }
        }
        let name = self.get(s);
        if i < POSITIONS {
            if let Some(n) = self.set.get(s).copied() {
                if i < self.by_position.len() {
                    self.by_position[i] = n;
                } else if i == self.by_position.len() {
                    self.by_position.push(n);
                }
            }
        }
        name
    }

    /// The name, interned if there is room. One hash of the name.
    pub fn get(&mut self, s: &str) -> FieldName {
        if let Some(&n) = self.set.get(s) {
            return FieldName::from_static(n);
        }
        if self.set.len() < MAX_NAMES && s.len() <= MAX_NAME_BYTES {
            let n: &'static str = Box::leak(s.to_owned().into_boxed_str());
            self.set.insert(n);
            return FieldName::from_static(n);
        }
        FieldName::from(s.to_owned())
    }
}

/// FxHash (rustc's): field names are short and not attacker-chosen in a way
/// that matters here (the table is bounded), so a fast hash is fine.
#[derive(Default)]
pub struct Fx(u64);

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Splits `name=value`; the name must not be empty.
pub fn split_assignment(s: &str) -> Result<(&str, &str), String> {
    match s.split_once('=') {
        Some((n, v)) if !n.is_empty() => Ok((n, v)),
        _ => Err(format!("{s:?} is not name=value")),
    }
}

/// Reads one JSON object into its top-level fields.
///
/// # Errors
/// The text is not a single JSON object, or nests deeper than [`MAX_DEPTH`].
pub fn json_object(text: &[u8], names: &mut Names) -> Result<Vec<(FieldName, Value)>, String> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let fields = de
        .deserialize_map(ObjectVisitor(names))
        .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(fields)
}

struct ObjectVisitor<'a>(&'a mut Names);

/// A top-level key at a position, interned.
struct KeySeed<'a>(&'a mut Names, usize);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = FieldName;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<FieldName, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = FieldName;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_str<E>(self, v: &str) -> Result<FieldName, E> {
        Ok(self.0.get_at(self.1, v))
    }
}

impl<'de> Visitor<'de> for ObjectVisitor<'_> {
    type Value = Vec<(FieldName, Value)>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(16));
        while let Some(k) = map.next_key_seed(KeySeed(self.0, out.len()))? {
            let v = map.next_value_seed(ValueSeed { depth: 1 })?;
            out.push((k, v));
        }
        Ok(out)
    }
}

struct ValueSeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::UInt(v),
        })
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned().into()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v.into()))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(de::Error::custom("nested too deeply"));
        }
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(ValueSeed {
            depth: self.depth + 1,
        })? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(de::Error::custom("nested too deeply"));
        }
        let mut out = Vec::new();
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value_seed(ValueSeed {
                depth: self.depth + 1,
            })?;
            out.push((FieldName::from(k), v));
        }
        Ok(Value::Object(out))
    }
}

/// The text of a value, as scrubbing hashes it and as dynamic sampling keys
/// it: strings as they are, other values as their JSON.
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_are_inferred() {
        assert_eq!(scalar("42"), Value::Int(42));
        assert_eq!(scalar("-7"), Value::Int(-7));
        assert_eq!(scalar("18446744073709551615"), Value::UInt(u64::MAX));
        assert_eq!(scalar("1.5"), Value::Float(1.5));
        assert_eq!(scalar("1e3"), Value::Float(1000.0));
        assert_eq!(scalar("true"), Value::Bool(true));
        assert_eq!(scalar("false"), Value::Bool(false));
        for s in [
            "", "-", "abc", "NaN", "inf", "1.2.3", "0x10", "True", "null",
        ] {
            assert_eq!(scalar(s), Value::String(s.to_owned().into()), "{s}");
        }
    }

    #[test]
    fn arguments_read_json() {
        let v = argument(r#"{"a":1,"b":[true,null]}"#);
        assert_eq!(v.get("a").and_then(Value::as_i64), Some(1));
        assert_eq!(
            argument("[1,2]"),
            Value::Array(vec![Value::Int(1), Value::Int(2)])
        );
        assert_eq!(argument("{not json"), Value::String("{not json".into()));
        assert_eq!(argument("{} x"), Value::String("{} x".into()));
    }

    #[test]
    fn objects_only_and_depth_bounded() {
        let n = &mut Names::default();
        let f = json_object(br#"{"a":"x","n":1.5,"o":{"p":[1]},"e\u0073c":1}"#, n).unwrap();
        assert_eq!(f.len(), 4);
        assert_eq!(f[0], (FieldName::from("a"), Value::String("x".into())));
        assert_eq!(f[3].0, "esc");
        assert!(json_object(b"[1]", n).is_err());
        assert!(json_object(b"{\"a\":1} trailing", n).is_err());
        assert!(json_object(b"{\"a\":", n).is_err());
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(100), "]".repeat(100));
        assert!(json_object(deep.as_bytes(), n).is_err());
    }

    #[test]
    fn names_are_interned_up_to_the_bound() {
        let mut n = Names::default();
        for i in 0..MAX_NAMES + 10 {
            assert_eq!(n.get(&format!("f{i}")).as_str(), format!("f{i}"));
        }
        assert_eq!(n.set.len(), MAX_NAMES);
        // By position: a hit, a miss that replaces the position, a new position.
        assert_eq!(n.get_at(0, "f1").as_str(), "f1");
        assert_eq!(n.get_at(0, "f2").as_str(), "f2");
        assert_eq!(n.by_position, ["f2"]);
        assert_eq!(n.get_at(1, "f3").as_str(), "f3");
        assert_eq!(n.get_at(5, "f4").as_str(), "f4"); // a gap: not remembered
        assert_eq!(n.by_position, ["f2", "f3"]);
        let long = "x".repeat(MAX_NAME_BYTES + 1);
        assert_eq!(n.get(&long).as_str(), long);
        assert_eq!(n.set.len(), MAX_NAMES);
    }

    #[test]
    fn assignments() {
        assert_eq!(split_assignment("a=b=c"), Ok(("a", "b=c")));
        assert_eq!(split_assignment("a="), Ok(("a", "")));
        assert!(split_assignment("=x").is_err());
        assert!(split_assignment("novalue").is_err());
    }
}
