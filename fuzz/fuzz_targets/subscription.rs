//! Any bytes as a subscription request, and any address: no panic; what decodes re-encodes to
//! the same subscription.
#![no_main]
use libfuzzer_sys::fuzz_target;
use oran_api::{ResourceSelector, SubscriptionInfo};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = SubscriptionInfo::from_json(data) {
        let text = serde_json::to_string(&s).expect("serialises");
        assert_eq!(SubscriptionInfo::from_json(text.as_bytes()).unwrap(), s);
        let _ = ResourceSelector::parse(&s.resource_address, "node1");
    }
    let _ = ResourceSelector::parse(&String::from_utf8_lossy(data), "node1");
});
