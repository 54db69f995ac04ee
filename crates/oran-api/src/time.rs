//! Event timestamps: written as Go's `time.RFC3339Nano` in UTC, read leniently.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDateTime, SecondsFormat, Timelike, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The `time` of a [`crate::CloudEvent`]: a UTC instant with nanoseconds.
///
/// Serialised like Go's `RFC3339Nano` (`2026-11-25T13:43:44.5663525Z`: the fraction has no
/// trailing zeros and is left out when zero). Deserialised from any RFC 3339 form, with or
/// without a fraction or offset, and from the StarlingX form without `T`/offset
/// (`2026-11-25 13:43:44.566352`, taken as UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventTime(pub DateTime<Utc>);

impl EventTime {
    /// The current wall-clock time.
    pub fn now() -> Self {
        EventTime(Utc::now())
    }
}

impl fmt::Display for EventTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_go_rfc3339_nano(&self.0))
    }
}

/// Formats `t` as Go's `time.RFC3339Nano` in UTC.
pub fn format_go_rfc3339_nano(t: &DateTime<Utc>) -> String {
    let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.nanosecond() % 1_000_000_000;
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Parses a timestamp leniently: RFC 3339 with or without fraction, or the StarlingX forms
/// (`YYYY-MM-DD HH:MM:SS[.ffffff]`, `YYYY-MM-DDTHH:MM:SS[.ffffff]` without offset) taken as UTC.
pub fn parse_lenient(s: &str) -> Option<DateTime<Utc>> {
    parse_any(s.trim()).filter(|t| (0..=9999).contains(&t.year()))
}

/// Every accepted form; [`parse_lenient`] then keeps only the years RFC 3339 can write (four
/// digits), so that whatever decodes also encodes and decodes again.
fn parse_any(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc());
        }
    }
    // Epoch seconds with a fraction, as some producers write.
    if let Ok(secs) = s.parse::<f64>()
        && secs.is_finite()
    {
        let whole = secs.trunc() as i64;
        let nanos = ((secs - secs.trunc()) * 1e9).round() as u32;
        return DateTime::from_timestamp(whole, nanos.min(999_999_999));
    }
    None
}

impl Serialize for EventTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_go_rfc3339_nano(&self.0))
    }
}

impl<'de> Deserialize<'de> for EventTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        parse_lenient(&s).map(EventTime).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "time {s:?} is not an RFC 3339 timestamp (expected e.g. {})",
                DateTime::<Utc>::UNIX_EPOCH.to_rfc3339_opts(SecondsFormat::Nanos, true)
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go_rfc3339nano() {
        let t = DateTime::parse_from_rfc3339("2026-11-25T13:43:44.566352500Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(format_go_rfc3339_nano(&t), "2026-11-25T13:43:44.5663525Z");
        let t = DateTime::parse_from_rfc3339("2026-11-25T13:43:44Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(format_go_rfc3339_nano(&t), "2026-11-25T13:43:44Z");
        let t = DateTime::parse_from_rfc3339("2026-11-25T13:43:44.000000001Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(format_go_rfc3339_nano(&t), "2026-11-25T13:43:44.000000001Z");
    }

    #[test]
    fn parses_lenient_forms() {
        let want = DateTime::parse_from_rfc3339("2026-11-25T13:43:44.5Z")
            .unwrap()
            .with_timezone(&Utc);
        for s in [
            "2026-11-25T13:43:44.5Z",
            "2026-11-25T14:43:44.5+01:00",
            "2026-11-25T13:43:44.500000",
            "2026-11-25 13:43:44.5",
        ] {
            assert_eq!(parse_lenient(s), Some(want), "{s}");
        }
        assert!(parse_lenient("2026-11-25T13:43:44Z").is_some());
        assert!(parse_lenient("yesterday").is_none());
    }

    /// Found by the `cloud_event` fuzz target: a negative year decoded (chrono's `%Y` takes a
    /// sign), but its RFC 3339 re-encoding did not decode again.
    #[test]
    fn years_outside_rfc3339_are_refused() {
        assert!(parse_lenient("-013-11-25T06:05:09.7028").is_none());
        assert!(parse_lenient("+12026-11-25T06:05:09Z").is_none());
        assert!(parse_lenient("12026-11-25 06:05:09").is_none());
        let t = parse_lenient("0013-11-25T06:05:09.7028").unwrap();
        assert_eq!(parse_lenient(&format_go_rfc3339_nano(&t)), Some(t));
    }
}
