//! The lines the daemon writes, in the Go daemon's formats (reference §5.3).

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch, as Go's `time.Now().Unix()`.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `"%s[%d]:[%s] PTP_PROCESS_STATUS:%d"` (`logProcessStatus`), e.g.
/// `ptp4l[1757326326]:[ptp4l.0.config] PTP_PROCESS_STATUS:1`.
pub fn process_status_line(process: &str, config: &str, up: bool, unix: u64) -> String {
    format!(
        "{process}[{unix}]:[{config}] PTP_PROCESS_STATUS:{}",
        u8::from(up)
    )
}

/// The control line the daemon sends after (re)applying profiles.
pub const CMD_RESTART: &str = "CMD RESTART";
/// The control line that ends a replay.
pub const CMD_LIVE_START: &str = "CMD LIVE_START";

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// The Go daemon's `removeMessageSuffix`: delete `{` and `}`, then replace
/// `([a-zA-Z0-9]+\.[a-zA-Z0-9]+\.config):[a-zA-Z0-9]+(:[a-zA-Z0-9]+)?` with `$1`
/// (`[ptp4l.0.config:6]` → `[ptp4l.0.config]`, linuxptp 3.1's literal `{level}` too).
pub fn remove_message_suffix(line: &str) -> String {
    let s: String = line.chars().filter(|c| *c != '{' && *c != '}').collect();
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    let mut from = 0;
    while let Some(rel) = s[from..].find(".config:") {
        let at = from + rel;
        let after = at + ".config".len();
        from = after;
        // `[a-zA-Z0-9]+\.[a-zA-Z0-9]+` right before `.config`.
        let mut i = at;
        while i > 0 && is_alnum(b[i - 1]) {
            i -= 1;
        }
        if i == at || i == 0 || b[i - 1] != b'.' {
            continue;
        }
        let j = i - 1;
        if j == 0 || !is_alnum(b[j - 1]) {
            continue;
        }
        // `:[a-zA-Z0-9]+(:[a-zA-Z0-9]+)?`
        let mut k = after + 1;
        while k < b.len() && is_alnum(b[k]) {
            k += 1;
        }
        if k == after + 1 {
            continue;
        }
        if k < b.len() && b[k] == b':' {
            let mut m = k + 1;
            while m < b.len() && is_alnum(b[m]) {
                m += 1;
            }
            if m > k + 1 {
                k = m;
            }
        }
        out.push_str(&s[last..after]);
        last = k;
        from = k;
    }
    out.push_str(&s[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_level_suffixes_as_go_does() {
        let cases = [
            (
                "ptp4l[1306914.557]: [ptp4l.1.config:5] port 1 (ens4f1): INITIALIZING to LISTENING on INIT_COMPLETE",
                "ptp4l[1306914.557]: [ptp4l.1.config] port 1 (ens4f1): INITIALIZING to LISTENING on INIT_COMPLETE",
            ),
            (
                "ptp4l[5217.361]: [ptp4l.0.config:{level}] port 1: LISTENING to UNCALIBRATED on RS_SLAVE",
                "ptp4l[5217.361]: [ptp4l.0.config] port 1: LISTENING to UNCALIBRATED on RS_SLAVE",
            ),
            (
                "phc2sys[1.2]: [ptp4l.0.config:6:7] CLOCK_REALTIME phc offset -414 s0 freq +2872 delay 551",
                "phc2sys[1.2]: [ptp4l.0.config] CLOCK_REALTIME phc offset -414 s0 freq +2872 delay 551",
            ),
            (
                "ptp4l[74737.942]: [ptp4l.0.config] rms 53 max 74 freq -16642 +/- 40 delay 1089 +/- 20",
                "ptp4l[74737.942]: [ptp4l.0.config] rms 53 max 74 freq -16642 +/- 40 delay 1089 +/- 20",
            ),
            ("no config here: x", "no config here: x"),
        ];
        for (input, want) in cases {
            assert_eq!(remove_message_suffix(input), want, "{input}");
        }
    }

    #[test]
    fn process_status_has_the_go_format() {
        assert_eq!(
            process_status_line("ptp4l", "ptp4l.0.config", true, 1757326326),
            "ptp4l[1757326326]:[ptp4l.0.config] PTP_PROCESS_STATUS:1"
        );
        assert_eq!(
            process_status_line("phc2sys", "ptp4l.1.config", false, 1757326339),
            "phc2sys[1757326339]:[ptp4l.1.config] PTP_PROCESS_STATUS:0"
        );
    }
}
