//! The SDK's reading of the API's answers, from structure: an arbitrary list
//! of per-event statuses, written as the API may write it (JSON or msgpack,
//! member names in any case, members in any order, unknown members of any
//! shape, null or empty errors, integers in any msgpack width), is read back
//! as exactly that list, and a batch of that many events gets the matching
//! responses.
#![no_main]

use arbitrary::{Arbitrary, Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use libhoney::__fuzz::{answer, statuses, Status, MAX_ERROR_TEXT};
use libhoney::ResponseError;
use serde_json::{Map, Value as Json};

#[derive(Debug)]
struct Item {
    status: u16,
    /// `None`: no member; `Some(None)`: null; `Some(Some(""))`: empty.
    error: Option<Option<String>>,
    /// Unknown members, before or after the known ones.
    extra: Vec<(String, Json)>,
    upper: bool,
    error_first: bool,
    width: u8,
}

fn json_value(u: &mut Unstructured<'_>, depth: usize) -> Result<Json> {
    let kinds = if depth >= 4 { 5 } else { 7 };
    Ok(match u.choose_index(kinds)? {
        0 => Json::Null,
        1 => Json::Bool(u.arbitrary()?),
        2 => Json::from(u.arbitrary::<i64>()?),
        3 => Json::from(
            u.arbitrary::<f32>()
                .map(f64::from)
                .ok()
                .filter(|f| f.is_finite())
                .unwrap_or(0.5),
        ),
        4 => Json::String(u.arbitrary()?),
        5 => Json::Array(
            (0..u.int_in_range(0..=3)?)
                .map(|_| json_value(u, depth + 1))
                .collect::<Result<_>>()?,
        ),
        _ => {
            let mut m = Map::new();
            for _ in 0..u.int_in_range(0..=3)? {
                m.insert(u.arbitrary()?, json_value(u, depth + 1)?);
            }
            Json::Object(m)
        }
    })
}

impl<'a> Arbitrary<'a> for Item {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let status = u.arbitrary()?;
        let error = match u.choose_index(4)? {
            0 => None,
            1 => Some(None),
            2 => Some(Some(String::new())),
            _ => Some(Some(u.arbitrary::<String>()?)),
        };
        let mut extra = Vec::new();
        for _ in 0..u.int_in_range(0..=2)? {
            let name: String = u.arbitrary()?;
            if name.eq_ignore_ascii_case("status") || name.eq_ignore_ascii_case("error") {
                continue;
            }
            extra.push((name, json_value(u, 0)?));
        }
        Ok(Item {
            status,
            error,
            extra,
            upper: u.arbitrary()?,
            error_first: u.arbitrary()?,
            width: u.arbitrary()?,
        })
    }
}

impl Item {
    /// What the SDK must read: the error only when it is a non-empty string.
    fn expected(&self) -> Status {
        let error = self.error.clone().flatten().filter(|e| !e.is_empty());
        (self.status, error)
    }

    fn name(&self, name: &str) -> String {
        if self.upper {
            name.to_ascii_uppercase()
        } else {
            name.to_string()
        }
    }

    /// The members in the order they are written.
    fn members(&self) -> Vec<(String, Json)> {
        let mut known = vec![(self.name("status"), Json::from(self.status))];
        if let Some(e) = &self.error {
            let e = (
                self.name("error"),
                e.clone().map_or(Json::Null, Json::String),
            );
            if self.error_first {
                known.insert(0, e);
            } else {
                known.push(e);
            }
        }
        let mut all = self.extra.clone();
        let at = usize::from(self.width) % (all.len() + 1);
        for (k, m) in known.into_iter().enumerate() {
            all.insert(at + k, m);
        }
        all
    }
}

fn to_json(items: &[Item]) -> Vec<u8> {
    let arr: Vec<Json> = items
        .iter()
        .map(|i| Json::Object(i.members().into_iter().collect()))
        .collect();
    serde_json::to_vec(&Json::Array(arr)).unwrap()
}

fn mp_value(out: &mut Vec<u8>, v: &Json, width: u8) {
    use rmp::encode as e;
    match v {
        Json::Null => e::write_nil(out).unwrap(),
        Json::Bool(b) => e::write_bool(out, *b).unwrap(),
        Json::Number(n) => {
            if let Some(u) = n.as_u64() {
                mp_uint(out, u, width);
            } else if let Some(i) = n.as_i64() {
                e::write_sint(out, i).unwrap();
            } else {
                e::write_f64(out, n.as_f64().unwrap()).unwrap();
            }
        }
        Json::String(s) => {
            if width & 0x10 != 0 {
                e::write_bin(out, s.as_bytes()).unwrap();
            } else {
                e::write_str(out, s).unwrap();
            }
        }
        Json::Array(a) => {
            e::write_array_len(out, a.len() as u32).unwrap();
            for x in a {
                mp_value(out, x, width.rotate_left(1));
            }
        }
        Json::Object(m) => {
            e::write_map_len(out, m.len() as u32).unwrap();
            for (k, x) in m {
                e::write_str(out, k).unwrap();
                mp_value(out, x, width.rotate_left(1));
            }
        }
    }
}

fn mp_uint(out: &mut Vec<u8>, u: u64, width: u8) {
    use rmp::encode as e;
    // Any width, signed forms of non-negative numbers included.
    match width % 7 {
        0 => drop(e::write_uint(out, u).unwrap()),
        1 if u <= u64::from(u16::MAX) => e::write_u16(out, u as u16).unwrap(),
        2 if u <= u64::from(u32::MAX) => e::write_u32(out, u as u32).unwrap(),
        3 if u <= i16::MAX as u64 => e::write_i16(out, u as i16).unwrap(),
        4 if u <= i32::MAX as u64 => e::write_i32(out, u as i32).unwrap(),
        5 if u <= i64::MAX as u64 => e::write_i64(out, u as i64).unwrap(),
        _ => e::write_u64(out, u).unwrap(),
    }
}

fn to_msgpack(items: &[Item]) -> Vec<u8> {
    let mut out = Vec::new();
    rmp::encode::write_array_len(&mut out, items.len() as u32).unwrap();
    for i in items {
        let members = i.members();
        rmp::encode::write_map_len(&mut out, members.len() as u32).unwrap();
        for (k, v) in &members {
            rmp::encode::write_str(&mut out, k).unwrap();
            if k.eq_ignore_ascii_case("error") {
                // Errors are strings (never bin) in what the SDK reads.
                match v {
                    Json::String(s) => rmp::encode::write_str(&mut out, s).unwrap(),
                    _ => rmp::encode::write_nil(&mut out).unwrap(),
                }
            } else {
                mp_value(&mut out, v, i.width);
            }
        }
    }
    out
}

fuzz_target!(|items: Vec<Item>| {
    // Texts past the bound are cut (tested in the SDK's unit tests); keep
    // the comparison exact here.
    if items
        .iter()
        .any(|i| i.error.iter().flatten().any(|e| e.len() > MAX_ERROR_TEXT))
    {
        return;
    }
    let want: Vec<Status> = items.iter().map(Item::expected).collect();
    for (msgpack, body) in [(false, to_json(&items)), (true, to_msgpack(&items))] {
        assert_eq!(
            statuses(&body, msgpack).as_ref(),
            Ok(&want),
            "msgpack: {msgpack}"
        );
        let responses = answer(200, &body, msgpack, want.len());
        assert_eq!(responses.len(), want.len());
        for (r, (status, error)) in responses.iter().zip(&want) {
            assert_eq!(r.status_code, Some(*status));
            let ok = (200..300).contains(status) && error.is_none();
            match (&r.error, error) {
                (None, _) => assert!(ok),
                (Some(ResponseError::Rejected(m)), Some(e)) => assert_eq!(m, e),
                (Some(ResponseError::Rejected(m)), None) => {
                    assert_eq!(m, &format!("status {status}"))
                }
                (other, _) => panic!("{other:?} for {status} {error:?}"),
            }
        }
    }
});
