//! Any bytes, split into lines with increasing times, fed to the engine (and its timers): no
//! panic, and the metrics and current state always render.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ptp_state::{Engine, EngineConfig};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut engine = Engine::new(EngineConfig::new("fuzz-node"));
    let mut out = Vec::new();
    let mut now = 0u64;
    for (i, line) in text.split('\n').enumerate() {
        now += 1_000_000_000 * (i as u64 % 7);
        engine.feed(line, now, &mut out);
        engine.tick(now, &mut out);
        out.clear();
    }
    let mut metrics = String::new();
    engine.render_metrics(&mut metrics);
    for r in oran_api::Resource::ALL {
        let _ = engine.current(r);
    }
});
