//! The PTP management codec reads what arrives on ptp4l's management socket: whatever the
//! bytes, `decode` returns a message or an error (never a panic), and a decoded message
//! encodes to bytes that decode to the same message. Seeds: the requests `pmc` 3.1.1 sends and
//! the responses ptp4l 3.1.1 gives (fuzz/seeds/mgmt_decode).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ptp_mgmt::codec::{decode, encode};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = decode(data) {
        let again = decode(&encode(&m)).expect("an encoded message decodes");
        assert_eq!(again, m);
    }
});
