//! An ordered set of fields where the last write of a key wins.

use std::collections::HashMap;
use std::sync::Arc;

use crate::value::{FieldName, Value};

/// Above this many fields, a hash index is kept so that adding a field stays O(1).
const INDEX_THRESHOLD: usize = 24;

/// An ordered collection of fields; setting a key that exists replaces its value
/// in place (the last write wins), as in libhoney-py and libhoney-go.
///
/// Small collections (the common case) are plain vectors searched linearly;
/// larger ones keep a hash index.
///
/// Keys and values are two vectors, not one vector of pairs: pushing a
/// `(key, value)` pair made the compiler assemble the 56-byte pair on the
/// stack and copy it into the vector in 16-byte pieces that straddled the
/// pieces it had just stored, two store-forwarding stalls per field
/// (`add_field` took 7 % of all samples of `libhoney-bench send`). Each push
/// now copies its own value whole; `add_field` fell to 3.7 %, for one more
/// allocation per event.
#[derive(Clone, Default)]
pub(crate) struct Fields {
    keys: Vec<FieldName>,
    values: Vec<Value>,
    /// Boxed: most events never have one, and every byte of `Fields` is
    /// copied into (and out of) each slot of the event queue (48 bytes inline,
    /// 8 boxed; clippy's `box_collection` assumes the size does not matter).
    #[allow(clippy::box_collection)]
    index: Option<Box<HashMap<FieldName, usize>>>,
    /// One bit per key present, from a cheap hash of the key: a clear bit
    /// proves a key absent without comparing strings.
    mask: u64,
}

/// The key's bit in `Fields::mask`: its length and end bytes, mixed.
#[inline]
fn key_bit(key: &str) -> u64 {
    let b = key.as_bytes();
    let (first, last) = match b {
        [] => (0, 0),
        [f, .., l] => (*f, *l),
        [f] => (*f, *f),
    };
    let h = (b.len() as u32)
        .wrapping_mul(0x9E37)
        .wrapping_add(u32::from(first).wrapping_mul(31))
        .wrapping_add(u32::from(last));
    1u64 << (h % 64)
}

impl Fields {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Fields {
            keys: Vec::with_capacity(n),
            values: Vec::with_capacity(n),
            index: None,
            mask: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn position(&self, key: &str) -> Option<usize> {
        if self.mask & key_bit(key) == 0 {
            return None;
        }
        self.find(key)
    }

    /// The slow half of `position`, once the mask says the key may be here.
    fn find(&self, key: &str) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(key).copied(),
            None => self.keys.iter().position(|k| k.as_str() == key),
        }
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.position(key).map(|i| &self.values[i])
    }

    // Inlined into the callers so that the key and value are written where
    // they are built: passed by reference, they were written by the caller
    // and read back at once in other widths, stalling on store forwarding.
    #[inline(always)]
    pub(crate) fn insert(&mut self, key: FieldName, value: Value) {
        let bit = key_bit(&key);
        if self.mask & bit != 0 {
            if let Some(i) = self.find(&key) {
                self.values[i] = value;
                return;
            }
        }
        if self.index.is_some() || self.keys.len() >= INDEX_THRESHOLD {
            self.index_new(&key);
        }
        self.mask |= bit;
        self.keys.push(key);
        self.values.push(value);
    }

    /// Records a new key's position in the hash index, building the index
    /// when the fields first reach `INDEX_THRESHOLD`.
    fn index_new(&mut self, key: &FieldName) {
        let n = self.keys.len();
        let index = self.index.get_or_insert_with(|| {
            let mut index = HashMap::with_capacity(n * 2);
            for (i, k) in self.keys.iter().enumerate() {
                index.insert(k.clone(), i);
            }
            Box::new(index)
        });
        index.insert(key.clone(), n);
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&FieldName, &Value)> {
        self.keys.iter().zip(self.values.iter())
    }

    /// Adds every entry of an object value; anything else is rejected by the caller.
    pub(crate) fn extend(&mut self, entries: Vec<(FieldName, Value)>) {
        self.keys.reserve(entries.len());
        self.values.reserve(entries.len());
        for (k, v) in entries {
            self.insert(k, v);
        }
    }
}

/// The fields of an event: its own fields, over a shared, immutable snapshot of
/// the fields it inherited from its client or builder (never copied per event).
#[derive(Clone, Default)]
pub(crate) struct LayeredFields {
    pub(crate) base: Option<Arc<Fields>>,
    pub(crate) own: Fields,
}

impl LayeredFields {
    pub(crate) fn is_empty(&self) -> bool {
        self.own.is_empty() && self.base.as_ref().is_none_or(|b| b.is_empty())
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.own
            .get(key)
            .or_else(|| self.base.as_ref().and_then(|b| b.get(key)))
    }

    /// Every field once: inherited fields not overridden, then the event's own.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&FieldName, &Value)> {
        let own = &self.own;
        self.base
            .iter()
            .flat_map(|b| b.iter())
            .filter(move |(k, _)| !own.contains(k))
            .chain(own.iter())
    }

    pub(crate) fn len(&self) -> usize {
        self.iter().count()
    }

    /// The first field that would be sent whose value nests deeper than
    /// [`Value::MAX_DEPTH`]. One comparison per scalar field; containers
    /// are walked without recursion.
    pub(crate) fn too_deep(&self) -> Option<&FieldName> {
        let own = &self.own;
        if let Some(base) = &self.base {
            for (k, v) in base.iter() {
                if v.too_deep() && !own.contains(k) {
                    return Some(k);
                }
            }
        }
        own.iter().find(|(_, v)| v.too_deep()).map(|(k, _)| k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_write_wins_small_and_large() {
        for n in [3usize, 100] {
            let mut f = Fields::default();
            for i in 0..n {
                f.insert(format!("k{i}").into(), Value::from(i));
            }
            f.insert("k1".into(), Value::from("again"));
            assert_eq!(f.len(), n);
            assert_eq!(f.get("k1"), Some(&Value::from("again")));
            assert_eq!(f.iter().nth(1).unwrap().0.as_str(), "k1", "order kept");
            assert_eq!(f.get("k2"), Some(&Value::from(2)));
            f.insert("new".into(), Value::Null);
            assert_eq!(f.get("new"), Some(&Value::Null));
        }
    }

    #[test]
    fn layered_own_fields_override_base() {
        let mut base = Fields::default();
        base.insert("a".into(), 1.into());
        base.insert("b".into(), 2.into());
        let mut l = LayeredFields {
            base: Some(Arc::new(base)),
            own: Fields::default(),
        };
        l.own.insert("b".into(), 20.into());
        l.own.insert("c".into(), 3.into());
        let got: Vec<_> = l.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        assert_eq!(
            got,
            vec![
                ("a".to_string(), Value::from(1)),
                ("b".to_string(), Value::from(20)),
                ("c".to_string(), Value::from(3))
            ]
        );
        assert_eq!(l.len(), 3);
        assert_eq!(l.get("b"), Some(&Value::from(20)));
        assert!(!l.is_empty());
        assert!(LayeredFields::default().is_empty());
    }
}
