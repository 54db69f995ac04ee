//! Any bytes as a profile source (PtpConfig YAML, the operator's JSON, a ConfigMap manifest) and
//! as a PtpOperatorConfig: parsing, validation and planning never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ptp_config::{NodeSelector, RenderOptions, event_publisher_enabled, parse_profiles, plan};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let node = NodeSelector::new("node1");
    if let Ok((_, profiles)) = parse_profiles(&text, &node) {
        let _ = plan(&profiles, &RenderOptions::default());
    }
    let _ = event_publisher_enabled(&text);
});
