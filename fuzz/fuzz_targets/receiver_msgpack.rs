//! The receiver's msgpack scanner on arbitrary bytes: it never panics, and
//! an accepted event's values survive a JSON round trip (they are valid
//! JSON values: finite numbers, UTF-8 strings).
#![no_main]

use libfuzzer_sys::fuzz_target;
use libhoney_receiver::__fuzz::{scan_batch, scan_single};

fuzz_target!(|data: &[u8]| {
    if let Ok(events) = scan_batch(data, true) {
        assert!(!events.is_empty(), "an empty batch is malformed");
        for ev in events.into_iter().flatten() {
            let text = serde_json::to_string(&ev.data).expect("values serialize");
            let back: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&text).expect("and read back");
            assert_eq!(back, ev.data);
        }
    }
    let _ = scan_single(data, true);
});
