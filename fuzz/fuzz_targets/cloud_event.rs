//! Any bytes as a CloudEvent: decoding never panics, and what decodes re-encodes and decodes to
//! the same event.
#![no_main]
use libfuzzer_sys::fuzz_target;
use oran_api::CloudEvent;

fuzz_target!(|data: &[u8]| {
    if let Ok(ev) = CloudEvent::from_json(data) {
        let again =
            CloudEvent::from_json(ev.to_json().as_bytes()).expect("re-encoded event decodes");
        assert_eq!(again.to_json(), ev.to_json());
    }
});
