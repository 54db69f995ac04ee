//! Any bytes, as a line: the parser never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let _ = ptp_state::parse_line(&line);
});
