//! Any bytes as a profile source (PtpConfig YAML, the operator's JSON, a ConfigMap manifest) and
//! as a PtpOperatorConfig: parsing, validation and planning never panic. As a rendered config:
//! `sidecar_profile_name` finds what the Go sidecar's regex `profile: \s*([\w-_]+)` finds (a
//! regex engine with RE2's leftmost-first semantics and Go's ASCII classes is the oracle).
#![no_main]
use libfuzzer_sys::fuzz_target;
use ptp_config::{
    NodeSelector, RenderOptions, event_publisher_enabled, parse_profiles, plan,
    sidecar_profile_name,
};
use std::sync::LazyLock;

static GO_PROFILE: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"profile: [\t\n\x0c\r ]*([0-9A-Za-z_-]+)").unwrap());

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let node = NodeSelector::new("node1");
    if let Ok((_, profiles)) = parse_profiles(&text, &node) {
        let _ = plan(&profiles, &RenderOptions::default());
    }
    let _ = event_publisher_enabled(&text);
    let go = GO_PROFILE
        .captures(&text)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str());
    assert_eq!(sidecar_profile_name(&text), go, "in {text:?}");
});
