//! A `serde::Serializer` that builds a [`Value`] directly (no JSON round trip,
//! non-finite floats preserved).

use std::borrow::Cow;
use std::fmt::Display;

use serde::ser::{self, Serialize};

use crate::error::{FieldError, SerializeError};
use crate::value::{FieldName, Value};

impl ser::Error for FieldError {
    fn custom<T: Display>(msg: T) -> Self {
        FieldError::Serialize(SerializeError::Custom(msg.to_string()))
    }
}

/// Builds a [`Value`]; `.0` is how many more levels of arrays and objects
/// the value may nest (each container takes one; an enum variant with data,
/// written as `{"Variant": …}`, takes one for its object), so a too-deep
/// value fails with [`FieldError::TooDeep`] before its recursion can
/// overflow the stack.
pub(crate) struct ValueSerializer(pub(crate) usize);

impl ValueSerializer {
    /// Takes one level for a container: the serializer for its items.
    fn enter(&self) -> Result<ValueSerializer, FieldError> {
        match self.0.checked_sub(1) {
            Some(left) => Ok(ValueSerializer(left)),
            None => Err(FieldError::TooDeep {
                limit: Value::MAX_DEPTH,
            }),
        }
    }
}

type R = Result<Value, FieldError>;

impl ser::Serializer for ValueSerializer {
    type Ok = Value;
    type Error = FieldError;
    type SerializeSeq = SeqBuilder;
    type SerializeTuple = SeqBuilder;
    type SerializeTupleStruct = SeqBuilder;
    type SerializeTupleVariant = VariantSeqBuilder;
    type SerializeMap = MapBuilder;
    type SerializeStruct = MapBuilder;
    type SerializeStructVariant = VariantMapBuilder;

    fn serialize_bool(self, v: bool) -> R {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> R {
        Ok(Value::from(v))
    }
    fn serialize_i16(self, v: i16) -> R {
        Ok(Value::from(v))
    }
    fn serialize_i32(self, v: i32) -> R {
        Ok(Value::from(v))
    }
    fn serialize_i64(self, v: i64) -> R {
        Ok(Value::from(v))
    }
    fn serialize_i128(self, v: i128) -> R {
        if let Ok(i) = i64::try_from(v) {
            Ok(Value::Int(i))
        } else if let Ok(u) = u64::try_from(v) {
            Ok(Value::UInt(u))
        } else {
            Ok(Value::String(Cow::Owned(v.to_string())))
        }
    }
    fn serialize_u8(self, v: u8) -> R {
        Ok(Value::from(v))
    }
    fn serialize_u16(self, v: u16) -> R {
        Ok(Value::from(v))
    }
    fn serialize_u32(self, v: u32) -> R {
        Ok(Value::from(v))
    }
    fn serialize_u64(self, v: u64) -> R {
        Ok(Value::from(v))
    }
    fn serialize_u128(self, v: u128) -> R {
        match u64::try_from(v) {
            Ok(u) => Ok(Value::from(u)),
            Err(_) => Ok(Value::String(Cow::Owned(v.to_string()))),
        }
    }
    fn serialize_f32(self, v: f32) -> R {
        Ok(Value::from(v))
    }
    fn serialize_f64(self, v: f64) -> R {
        Ok(Value::Float(v))
    }
    fn serialize_char(self, v: char) -> R {
        Ok(Value::from(v))
    }
    fn serialize_str(self, v: &str) -> R {
        Ok(Value::from(v))
    }
    fn serialize_bytes(self, v: &[u8]) -> R {
        Ok(Value::Array(v.iter().map(|b| Value::from(*b)).collect()))
    }
    fn serialize_none(self) -> R {
        Ok(Value::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> R {
        value.serialize(self)
    }
    fn serialize_unit(self) -> R {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> R {
        Ok(Value::Null)
    }
    fn serialize_unit_variant(self, _name: &'static str, _i: u32, variant: &'static str) -> R {
        Ok(Value::from_static(variant))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> R {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _i: u32,
        variant: &'static str,
        value: &T,
    ) -> R {
        let inner = self.enter()?;
        Ok(Value::Object(vec![(
            FieldName::from_static(variant),
            value.serialize(inner)?,
        )]))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqBuilder, FieldError> {
        Ok(SeqBuilder(
            self.enter()?.0,
            Vec::with_capacity(len.unwrap_or(0)),
        ))
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqBuilder, FieldError> {
        Ok(SeqBuilder(self.enter()?.0, Vec::with_capacity(len)))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SeqBuilder, FieldError> {
        Ok(SeqBuilder(self.enter()?.0, Vec::with_capacity(len)))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _i: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantSeqBuilder, FieldError> {
        // Two levels: the variant's object and its array.
        let left = self.enter()?.enter()?.0;
        Ok(VariantSeqBuilder(variant, left, Vec::with_capacity(len)))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<MapBuilder, FieldError> {
        Ok(MapBuilder {
            left: self.enter()?.0,
            entries: Vec::with_capacity(len.unwrap_or(0)),
            key: None,
        })
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<MapBuilder, FieldError> {
        Ok(MapBuilder {
            left: self.enter()?.0,
            entries: Vec::with_capacity(len),
            key: None,
        })
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _i: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantMapBuilder, FieldError> {
        let left = self.enter()?.enter()?.0;
        Ok(VariantMapBuilder(variant, left, Vec::with_capacity(len)))
    }
}

/// Items of an array; `.0` is the levels left for each item.
pub(crate) struct SeqBuilder(usize, Vec<Value>);

impl ser::SerializeSeq for SeqBuilder {
    type Ok = Value;
    type Error = FieldError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), FieldError> {
        self.1.push(value.serialize(ValueSerializer(self.0))?);
        Ok(())
    }
    fn end(self) -> R {
        Ok(Value::Array(self.1))
    }
}

impl ser::SerializeTuple for SeqBuilder {
    type Ok = Value;
    type Error = FieldError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), FieldError> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> R {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for SeqBuilder {
    type Ok = Value;
    type Error = FieldError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), FieldError> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> R {
        ser::SerializeSeq::end(self)
    }
}

pub(crate) struct VariantSeqBuilder(&'static str, usize, Vec<Value>);

impl ser::SerializeTupleVariant for VariantSeqBuilder {
    type Ok = Value;
    type Error = FieldError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), FieldError> {
        self.2.push(value.serialize(ValueSerializer(self.1))?);
        Ok(())
    }
    fn end(self) -> R {
        Ok(Value::Object(vec![(
            FieldName::from_static(self.0),
            Value::Array(self.2),
        )]))
    }
}

pub(crate) struct MapBuilder {
    /// Levels left for each value.
    left: usize,
    entries: Vec<(FieldName, Value)>,
    key: Option<FieldName>,
}

impl ser::SerializeMap for MapBuilder {
    type Ok = Value;
    type Error = FieldError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), FieldError> {
        self.key = Some(key.serialize(KeySerializer)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), FieldError> {
        let key = self
            .key
            .take()
            .ok_or(FieldError::Serialize(SerializeError::ValueWithoutKey))?;
        self.entries
            .push((key, value.serialize(ValueSerializer(self.left))?));
        Ok(())
    }
    fn end(self) -> R {
        Ok(Value::Object(self.entries))
    }
}

impl ser::SerializeStruct for MapBuilder {
    type Ok = Value;
    type Error = FieldError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), FieldError> {
        self.entries.push((
            FieldName::from_static(key),
            value.serialize(ValueSerializer(self.left))?,
        ));
        Ok(())
    }
    fn end(self) -> R {
        Ok(Value::Object(self.entries))
    }
}

pub(crate) struct VariantMapBuilder(&'static str, usize, Vec<(FieldName, Value)>);

impl ser::SerializeStructVariant for VariantMapBuilder {
    type Ok = Value;
    type Error = FieldError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), FieldError> {
        self.2.push((
            FieldName::from_static(key),
            value.serialize(ValueSerializer(self.1))?,
        ));
        Ok(())
    }
    fn end(self) -> R {
        Ok(Value::Object(vec![(
            FieldName::from_static(self.0),
            Value::Object(self.2),
        )]))
    }
}

/// Serializes map keys: strings, and scalars written as strings.
struct KeySerializer;

fn key_err(found: &'static str) -> FieldError {
    FieldError::Serialize(SerializeError::KeyNotScalar { found })
}

type K = Result<FieldName, FieldError>;

impl ser::Serializer for KeySerializer {
    type Ok = FieldName;
    type Error = FieldError;
    type SerializeSeq = ser::Impossible<FieldName, FieldError>;
    type SerializeTuple = ser::Impossible<FieldName, FieldError>;
    type SerializeTupleStruct = ser::Impossible<FieldName, FieldError>;
    type SerializeTupleVariant = ser::Impossible<FieldName, FieldError>;
    type SerializeMap = ser::Impossible<FieldName, FieldError>;
    type SerializeStruct = ser::Impossible<FieldName, FieldError>;
    type SerializeStructVariant = ser::Impossible<FieldName, FieldError>;

    fn serialize_bool(self, v: bool) -> K {
        Ok(FieldName::from_static(if v { "true" } else { "false" }))
    }
    fn serialize_i8(self, v: i8) -> K {
        Ok(v.to_string().into())
    }
    fn serialize_i16(self, v: i16) -> K {
        Ok(v.to_string().into())
    }
    fn serialize_i32(self, v: i32) -> K {
        Ok(v.to_string().into())
    }
    fn serialize_i64(self, v: i64) -> K {
        Ok(v.to_string().into())
    }
    fn serialize_i128(self, v: i128) -> K {
        Ok(v.to_string().into())
    }
    fn serialize_u8(self, v: u8) -> K {
        Ok(v.to_string().into())
    }
    fn serialize_u16(self, v: u16) -> K {
        Ok(v.to_string().into())
    }
    fn serialize_u32(self, v: u32) -> K {
        Ok(v.to_string().into())
    }
    fn serialize_u64(self, v: u64) -> K {
        Ok(v.to_string().into())
    }
    fn serialize_u128(self, v: u128) -> K {
        Ok(v.to_string().into())
    }
    fn serialize_f32(self, _v: f32) -> K {
        Err(key_err("a float"))
    }
    fn serialize_f64(self, _v: f64) -> K {
        Err(key_err("a float"))
    }
    fn serialize_char(self, v: char) -> K {
        Ok(v.to_string().into())
    }
    fn serialize_str(self, v: &str) -> K {
        Ok(v.to_owned().into())
    }
    fn serialize_bytes(self, _v: &[u8]) -> K {
        Err(key_err("bytes"))
    }
    fn serialize_none(self) -> K {
        Err(key_err("none"))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> K {
        value.serialize(self)
    }
    fn serialize_unit(self) -> K {
        Err(key_err("unit"))
    }
    fn serialize_unit_struct(self, _name: &'static str) -> K {
        Err(key_err("a unit struct"))
    }
    fn serialize_unit_variant(self, _n: &'static str, _i: u32, variant: &'static str) -> K {
        Ok(FieldName::from_static(variant))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> K {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _n: &'static str,
        _i: u32,
        _v: &'static str,
        _value: &T,
    ) -> K {
        Err(key_err("an enum variant with data"))
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, FieldError> {
        Err(key_err("a sequence"))
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, FieldError> {
        Err(key_err("a tuple"))
    }
    fn serialize_tuple_struct(
        self,
        _n: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, FieldError> {
        Err(key_err("a tuple struct"))
    }
    fn serialize_tuple_variant(
        self,
        _n: &'static str,
        _i: u32,
        _v: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, FieldError> {
        Err(key_err("a tuple variant"))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, FieldError> {
        Err(key_err("a map"))
    }
    fn serialize_struct(
        self,
        _n: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, FieldError> {
        Err(key_err("a struct"))
    }
    fn serialize_struct_variant(
        self,
        _n: &'static str,
        _i: u32,
        _v: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, FieldError> {
        Err(key_err("a struct variant"))
    }
}

/// Serializes `data` for `add`: a struct or map whose entries become
/// fields, each of which may nest up to [`Value::MAX_DEPTH`] levels (one
/// more level than [`Value::from_serialize`] allows, for the object itself).
pub(crate) fn fields_of<T: Serialize + ?Sized>(
    data: &T,
) -> Result<Vec<(FieldName, Value)>, FieldError> {
    match data.serialize(ValueSerializer(Value::MAX_DEPTH + 1))? {
        Value::Object(entries) => Ok(entries),
        other => Err(FieldError::NotAnObject {
            found: kind_of(&other),
        }),
    }
}

/// The kind of a non-object value, for error messages.
pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Int(_) | Value::UInt(_) => "an integer",
        Value::Float(_) => "a float",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(serde::Serialize)]
    struct Inner {
        depth: u8,
    }

    #[derive(serde::Serialize)]
    #[allow(dead_code)]
    enum E {
        Unit,
        New(i32),
        Tup(i32, i32),
        Struct { a: bool },
    }

    #[derive(serde::Serialize)]
    struct Outer {
        name: String,
        #[serde(rename = "duration_ms")]
        d: f64,
        nan: f64,
        inner: Inner,
        list: Vec<u32>,
        opt: Option<u8>,
        e1: E,
        e2: E,
        e3: E,
        e4: E,
        big: u128,
        #[serde(skip)]
        _skipped: u8,
    }

    #[test]
    fn structs_and_enums() {
        let v = Value::from_serialize(&Outer {
            name: "x".into(),
            d: 1.5,
            nan: f64::NAN,
            inner: Inner { depth: 2 },
            list: vec![1, 2],
            opt: None,
            e1: E::Unit,
            e2: E::New(3),
            e3: E::Tup(1, 2),
            e4: E::Struct { a: true },
            big: u128::MAX,
            _skipped: 0,
        })
        .unwrap();
        assert_eq!(v.get("name"), Some(&Value::from("x")));
        assert_eq!(v.get("duration_ms"), Some(&Value::Float(1.5)));
        assert!(v.get("nan").unwrap().as_f64().unwrap().is_nan());
        assert_eq!(v.get("inner").unwrap().get("depth"), Some(&Value::from(2)));
        assert_eq!(v.get("list"), Some(&Value::from(vec![1u32, 2])));
        assert_eq!(v.get("opt"), Some(&Value::Null));
        assert_eq!(v.get("e1"), Some(&Value::from("Unit")));
        assert_eq!(v.get("e2").unwrap().get("New"), Some(&Value::from(3)));
        assert_eq!(
            v.get("e3").unwrap().get("Tup"),
            Some(&Value::from(vec![1, 2]))
        );
        assert_eq!(
            v.get("e4").unwrap().get("Struct").unwrap().get("a"),
            Some(&Value::Bool(true))
        );
        assert_eq!(v.get("big"), Some(&Value::from(u128::MAX.to_string())));
        assert!(v.get("_skipped").is_none());
    }

    #[test]
    fn map_keys() {
        let mut m = BTreeMap::new();
        m.insert(1, "a");
        m.insert(2, "b");
        let v = Value::from_serialize(&m).unwrap();
        assert_eq!(v.get("2"), Some(&Value::from("b")));

        let mut bad = BTreeMap::new();
        bad.insert(vec![1], 1);
        let err = Value::from_serialize(&bad).unwrap_err();
        assert!(err.to_string().contains("map key"), "{err}");
    }
}
