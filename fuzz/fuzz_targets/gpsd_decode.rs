//! gpsd's JSON reports are read by the T-GM's GNSS monitor: whatever the line, `decode`
//! returns a report or an error (never a panic), and a TPV's reading is within its documented
//! ranges (fix 0-3, a time error that is finite and not negative). Seeds: reports of gpsd 3.22
//! fed by gpsfake (fuzz/seeds/gpsd_decode).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ptp_state::gpsd::{Report, decode};

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = decode(line) {
        if let Report::Tpv { mode, .. } = &r {
            assert!(*mode <= 3);
            let g = r.reading(200).expect("a TPV has a reading");
            assert_eq!(g.fix_mode, *mode);
            assert!(g.time_error_ns.is_none_or(|e| e.is_finite() && e >= 0.0));
        } else {
            assert!(r.reading(200).is_none());
        }
    }
});
