//! The SDK's reading of the API's answers, from raw bytes: whatever a server
//! answers, a batch of N events gets exactly N responses, nothing panics,
//! every text copied from the answer is bounded, successes are 2xx with no
//! error; the JSON fast path, when it accepts a body, reads exactly what the
//! general (serde_json) path reads; and `Retry-After` never yields more than
//! the documented maximum.
//!
//! Input: byte 0 picks JSON or msgpack and the HTTP status, byte 1 the
//! number of events (0 to 255), the rest is the body (and, as text, a
//! `Retry-After` value).
#![no_main]

use libfuzzer_sys::fuzz_target;
use libhoney::__fuzz::{answer, json_both_paths, retry_after, MAX_ERROR_TEXT, MAX_RETRY_AFTER};
use libhoney::ResponseError;

/// The longest text a response may carry: the bound and the `…` that marks a cut.
const MAX_TEXT: usize = MAX_ERROR_TEXT + '…'.len_utf8();

fuzz_target!(|data: &[u8]| {
    let [mode, events, body @ ..] = data else {
        return;
    };
    let msgpack = mode & 1 == 1;
    let status = match (mode >> 1) % 8 {
        0 | 1 | 2 => 202,
        3 => 200,
        4 => 207,
        5 => 400,
        6 => 503,
        _ => 100 + u16::from(*mode),
    };
    let events = usize::from(*events);

    let responses = answer(status, body, msgpack, events);
    assert_eq!(responses.len(), events, "one response per event");
    for r in &responses {
        assert!(r.body.len() <= MAX_TEXT, "body of {} bytes", r.body.len());
        match &r.error {
            None => {
                let s = r.status_code.expect("a success has a status");
                assert!((200..300).contains(&s), "success with status {s}");
            }
            Some(ResponseError::Rejected(m)) | Some(ResponseError::MalformedResponse(m)) => {
                assert!(m.len() <= MAX_TEXT, "error text of {} bytes", m.len());
            }
            Some(ResponseError::HttpStatus(s)) => assert_eq!(*s, status),
            Some(ResponseError::MissingStatus) => {}
            Some(other) => panic!("an answer gave {other:?}"),
        }
    }

    if !msgpack {
        let (fast, general) = json_both_paths(body);
        if let Some(fast) = fast {
            assert_eq!(Ok(fast), general, "the fast path read another answer");
        }
    }

    if let Ok(text) = std::str::from_utf8(body) {
        if let Some(d) = retry_after(text) {
            assert!(d <= MAX_RETRY_AFTER, "Retry-After {d:?}");
        }
    }
});
