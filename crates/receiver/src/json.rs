//! JSON body scanning.
//!
//! Validation never builds a `serde_json::Value` tree: the batch array is
//! walked once with borrowed `RawValue`s (which also gives each event's exact
//! encoded size), and each event is then checked by small visitors that count
//! fields and measure strings. Values are only built when the caller wants
//! them (recording or printing).

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::scan::{
    samplerate_from_f64, EventCheck, Parsed, ScanOptions, ERR_EVENT_TOO_LARGE, ERR_MALFORMED,
    ERR_STRING_TOO_LONG, ERR_TOO_MANY_COLUMNS, MAX_EVENT, MAX_FIELDS, MAX_STRING,
};
use crate::timefmt;

/// Scans a `/1/batch` JSON body. `Err` is a request-level error; otherwise one
/// [`EventCheck`] per array element is appended to `out`.
pub(crate) fn scan_batch(
    body: &[u8],
    opts: ScanOptions<'_>,
    out: &mut Vec<EventCheck>,
) -> Result<(), &'static str> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let visitor = BatchVisitor { opts, out };
    match de.deserialize_seq(visitor) {
        Ok(0) => return Err(ERR_MALFORMED),
        Ok(_) => {}
        Err(_) => return Err(ERR_MALFORMED),
    }
    de.end().map_err(|_| ERR_MALFORMED)
}

/// Scans a `/1/events` JSON body (one object of fields). `Err` is the
/// request-level error. Time and sample rate come from headers and are left
/// unset here.
pub(crate) fn scan_single(body: &[u8], opts: ScanOptions<'_>) -> Result<EventCheck, &'static str> {
    if body.len() > MAX_EVENT {
        return Err(ERR_EVENT_TOO_LARGE);
    }
    let mut violation = None;
    let mut tracked = None;
    {
        let mut de = serde_json::Deserializer::from_slice(body);
        let seed = DataSeed {
            track: opts.track,
            violation: &mut violation,
            tracked: &mut tracked,
        };
        let res = seed.deserialize(&mut de).and_then(|()| de.end());
        if let Err(_e) = res {
            return Err(violation.unwrap_or(ERR_MALFORMED));
        }
    }
    let parsed = if opts.want_values {
        let data: Map<String, Value> = serde_json::from_slice(body).map_err(|_| ERR_MALFORMED)?;
        Some(Parsed {
            data,
            time: None,
            samplerate: None,
        })
    } else {
        None
    };
    Ok(EventCheck {
        error: None,
        tracked,
        parsed,
    })
}

struct BatchVisitor<'o, 'a> {
    opts: ScanOptions<'a>,
    out: &'o mut Vec<EventCheck>,
}

impl<'de> Visitor<'de> for BatchVisitor<'_, '_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let mut n = 0;
        while let Some(raw) = seq.next_element::<&'de RawValue>()? {
            self.out.push(check_event(raw.get(), self.opts));
            n += 1;
        }
        Ok(n)
    }
}

/// Checks one batch element given as its exact JSON text.
pub(crate) fn check_event(text: &str, opts: ScanOptions<'_>) -> EventCheck {
    if text.len() > MAX_EVENT {
        return EventCheck::invalid(ERR_EVENT_TOO_LARGE);
    }
    let mut st = EventState {
        opts,
        violation: None,
        tracked: None,
        seen_data: false,
        time: None,
        samplerate: None,
    };
    let mut de = serde_json::Deserializer::from_str(text);
    if de.deserialize_map(EventVisitor { st: &mut st }).is_err() || !st.seen_data {
        return EventCheck::invalid(st.violation.unwrap_or(ERR_MALFORMED));
    }
    let parsed = if opts.want_values {
        match extract_values(text, st.time.take(), st.samplerate) {
            Some(p) => Some(p),
            None => return EventCheck::invalid(ERR_MALFORMED),
        }
    } else {
        None
    };
    EventCheck {
        error: None,
        tracked: st.tracked,
        parsed,
    }
}

fn extract_values(text: &str, time: Option<String>, samplerate: Option<u64>) -> Option<Parsed> {
    #[derive(serde::Deserialize)]
    struct Full {
        data: Map<String, Value>,
    }
    let full: Full = serde_json::from_str(text).ok()?;
    Some(Parsed {
        data: full.data,
        time,
        samplerate,
    })
}

struct EventState<'a> {
    opts: ScanOptions<'a>,
    violation: Option<&'static str>,
    tracked: Option<u64>,
    seen_data: bool,
    time: Option<String>,
    samplerate: Option<u64>,
}

struct EventVisitor<'s, 'a> {
    st: &'s mut EventState<'a>,
}

#[derive(Clone, Copy)]
enum EventKey {
    Data,
    Time,
    Samplerate,
    Other,
}

struct EventKeySeed;

impl<'de> DeserializeSeed<'de> for EventKeySeed {
    type Value = EventKey;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<EventKey, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for EventKeySeed {
    type Value = EventKey;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<EventKey, E> {
        Ok(match v {
            "data" => EventKey::Data,
            "time" => EventKey::Time,
            "samplerate" => EventKey::Samplerate,
            _ => EventKey::Other,
        })
    }
}

impl<'de> Visitor<'de> for EventVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(EventKeySeed)? {
            match key {
                EventKey::Data => {
                    let st = &mut *self.st;
                    st.seen_data = true;
                    map.next_value_seed(DataSeed {
                        track: st.opts.track,
                        violation: &mut st.violation,
                        tracked: &mut st.tracked,
                    })?;
                }
                EventKey::Time => {
                    let t = map.next_value_seed(TimeSeed {
                        want: self.st.opts.want_values,
                    })?;
                    self.st.time = t;
                }
                EventKey::Samplerate => {
                    self.st.samplerate = map.next_value_seed(SamplerateSeed)?;
                }
                EventKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Parses the `time` member: a string (kept as is), an epoch number
/// (converted to RFC 3339), or null. Anything else is an error.
struct TimeSeed {
    want: bool,
}

impl<'de> DeserializeSeed<'de> for TimeSeed {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<String>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TimeSeed {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a timestamp string or epoch number")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<String>, E> {
        Ok(self.want.then(|| v.to_owned()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<String>, E> {
        if !self.want {
            return Ok(None);
        }
        Ok(Some(
            timefmt::rfc3339_from_unix(v, 0).unwrap_or_else(|| v.to_string()),
        ))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<String>, E> {
        match i64::try_from(v) {
            Ok(i) => self.visit_i64(i),
            Err(_) => Ok(self.want.then(|| v.to_string())),
        }
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Option<String>, E> {
        if !self.want {
            return Ok(None);
        }
        Ok(Some(
            timefmt::rfc3339_from_f64(v).unwrap_or_else(|| v.to_string()),
        ))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<String>, E> {
        Ok(None)
    }
}

/// Parses the `samplerate` member: a non-negative integer (or integral
/// float), or null.
struct SamplerateSeed;

impl<'de> DeserializeSeed<'de> for SamplerateSeed {
    type Value = Option<u64>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<u64>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SamplerateSeed {
    type Value = Option<u64>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a non-negative integer sample rate")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<u64>, E> {
        Ok(Some(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<u64>, E> {
        u64::try_from(v)
            .map(Some)
            .map_err(|_| E::custom("negative sample rate"))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Option<u64>, E> {
        samplerate_from_f64(v)
            .map(Some)
            .ok_or_else(|| E::custom("bad sample rate"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<u64>, E> {
        Ok(None)
    }
}

/// Validates the `data` object: field count, string sizes at any depth, and
/// captures the tracked field.
struct DataSeed<'s, 'a> {
    track: Option<&'a str>,
    violation: &'s mut Option<&'static str>,
    tracked: &'s mut Option<u64>,
}

impl<'de> DeserializeSeed<'de> for DataSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DataSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of fields")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut n = 0usize;
        while let Some(is_tracked) = map.next_key_seed(FieldKeySeed { track: self.track })? {
            n += 1;
            if n > MAX_FIELDS {
                *self.violation = Some(ERR_TOO_MANY_COLUMNS);
                return Err(de::Error::custom("too many columns"));
            }
            let tracked = if is_tracked {
                Some(&mut *self.tracked)
            } else {
                None
            };
            map.next_value_seed(ValueCheck {
                violation: self.violation,
                tracked,
            })?;
        }
        Ok(())
    }
}

/// Reads a field name and tells whether it is the tracked field.
struct FieldKeySeed<'a> {
    track: Option<&'a str>,
}

impl<'de> DeserializeSeed<'de> for FieldKeySeed<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for FieldKeySeed<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(self.track == Some(v))
    }
}

/// Validates any JSON value (recursively): strings must not exceed
/// [`MAX_STRING`] bytes. Optionally captures an integer value.
struct ValueCheck<'s> {
    violation: &'s mut Option<&'static str>,
    tracked: Option<&'s mut Option<u64>>,
}

impl<'de> DeserializeSeed<'de> for ValueCheck<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueCheck<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        if let Some(t) = self.tracked {
            *t = Some(v as u64);
        }
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        if let Some(t) = self.tracked {
            *t = Some(v);
        }
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        if v.len() > MAX_STRING {
            *self.violation = Some(ERR_STRING_TOO_LONG);
            return Err(E::custom("string too long"));
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(ValueCheck {
                violation: &mut *self.violation,
                tracked: None,
            })?
            .is_some()
        {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(ValueCheck {
                violation: &mut *self.violation,
                tracked: None,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::{ERR_STRING_TOO_LONG, ERR_TOO_MANY_COLUMNS};

    fn opts(want: bool) -> ScanOptions<'static> {
        ScanOptions {
            want_values: want,
            track: Some("seq"),
        }
    }

    fn scan(body: &str, want: bool) -> Result<Vec<EventCheck>, &'static str> {
        let mut out = Vec::new();
        scan_batch(body.as_bytes(), opts(want), &mut out).map(|()| out)
    }

    #[test]
    fn basic_batch() {
        let v = scan(
            r#"[{"data":{"a":1,"seq":7,"s":"x\"y"},"time":"2024-01-01T00:00:00Z","samplerate":3},{"data":{}}]"#,
            true,
        )
        .unwrap();
        assert_eq!(v.len(), 2);
        assert!(v[0].error.is_none());
        assert_eq!(v[0].tracked, Some(7));
        let p = v[0].parsed.as_ref().unwrap();
        assert_eq!(p.time.as_deref(), Some("2024-01-01T00:00:00Z"));
        assert_eq!(p.samplerate, Some(3));
        assert_eq!(p.data["s"], "x\"y");
        assert!(v[1].error.is_none());
    }

    #[test]
    fn request_level_errors() {
        for body in ["", "[]", "{}", "[", "[1,]", "[{}] x", "nul", "\"a\""] {
            assert_eq!(scan(body, false).err(), Some(ERR_MALFORMED), "{body}");
        }
    }

    #[test]
    fn per_event_errors() {
        let v = scan(
            r#"[1, {"x":1}, {"data":[]}, {"data":null}, {"data":{},"time":[]}, {"data":{},"samplerate":-1}, {"data":{"ok":true}}]"#,
            false,
        )
        .unwrap();
        assert_eq!(v.len(), 7);
        for c in &v[..6] {
            assert_eq!(c.error, Some(ERR_MALFORMED));
        }
        assert!(v[6].error.is_none());
    }

    #[test]
    fn limits() {
        let mut fields = String::from("{");
        for i in 0..2001 {
            if i > 0 {
                fields.push(',');
            }
            fields.push_str(&format!("\"f{i}\":{i}"));
        }
        fields.push('}');
        let body = format!(r#"[{{"data":{fields}}}]"#);
        assert_eq!(
            scan(&body, false).unwrap()[0].error,
            Some(ERR_TOO_MANY_COLUMNS)
        );
        let long = "a".repeat(MAX_STRING + 1);
        let body = format!(r#"[{{"data":{{"a":{{"b":["{long}"]}}}}}}]"#);
        assert_eq!(
            scan(&body, false).unwrap()[0].error,
            Some(ERR_STRING_TOO_LONG)
        );
        let ok = "a".repeat(MAX_STRING);
        let body = format!(r#"[{{"data":{{"a":"{ok}"}}}}]"#);
        assert!(scan(&body, false).unwrap()[0].error.is_none());
    }

    #[test]
    fn epoch_time() {
        let v = scan(r#"[{"data":{},"time":1714558272}]"#, true).unwrap();
        assert_eq!(
            v[0].parsed.as_ref().unwrap().time.as_deref(),
            Some("2024-05-01T10:11:12Z")
        );
    }
}
