//! The receiver's JSON scanner on arbitrary bytes: it never panics, and it
//! accepts a batch exactly when `serde_json` reads the body as a non-empty
//! array (its documented promise); an accepted event's `data` is what
//! `serde_json` reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use libhoney_receiver::__fuzz::{scan_batch, scan_single};

fuzz_target!(|data: &[u8]| {
    let ours = scan_batch(data, false);
    let theirs = serde_json::from_slice::<serde_json::Value>(data);
    match (&ours, &theirs) {
        (Ok(events), Ok(serde_json::Value::Array(items))) => {
            assert_eq!(events.len(), items.len());
            for (ev, item) in events.iter().zip(items) {
                if let Ok(ev) = ev {
                    let want = item.get("data").and_then(|d| d.as_object());
                    assert_eq!(Some(&ev.data), want, "accepted event's data");
                }
            }
        }
        (Ok(_), _) => panic!("scanner accepted what serde_json refuses: {theirs:?}"),
        (Err(_), Ok(serde_json::Value::Array(items))) if !items.is_empty() => {
            panic!("scanner refused a non-empty array serde_json reads: {ours:?}")
        }
        (Err(_), _) => {}
    }
    if let Ok(fields) = scan_single(data, false) {
        let theirs: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(data).expect("single accepted, serde_json refuses");
        assert_eq!(fields, theirs);
    }
});
