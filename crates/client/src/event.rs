//! Typed events: what a notification or a CurrentState answer says, decoded leniently.

use chrono::{DateTime, TimeDelta, Utc};
use oran_api::{ClockClass, CloudEvent, DataType, Resource, SyncState, Value};

/// Why a body could not be decoded as an event. The message names what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// A decoded event: the raw [`CloudEvent`] plus its typed [`Reading`]s.
///
/// Events come from notifications ([`decode_event`], the [`crate::receiver`]) and from
/// CurrentState ([`crate::Client::current_state`]); both have the same shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    raw: CloudEvent,
    resource: Option<Resource>,
    readings: Vec<Reading>,
    received_at: DateTime<Utc>,
}

/// One entry of `data.values`, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The value's `ResourceAddress`, e.g. `/cluster/node/node1/ens1fx/master` (the clock or
    /// interface it is about).
    pub address: String,
    /// What it says.
    pub measurement: Measurement,
}

/// What one value says, typed by its resource, `data_type` and address.
#[derive(Debug, Clone, PartialEq)]
pub enum Measurement {
    /// A synchronisation state (`LOCKED`, `HOLDOVER`, `FREERUN`; for GNSS `SYNCHRONIZED`,
    /// `ACQUIRING-SYNC`, `FAILURE-NOFIX`, ...).
    State(SyncState),
    /// A state the O-RAN vocabulary does not know (e.g. StarlingX's `NOT_SYNCHRONIZED`).
    UnknownState(String),
    /// An offset from the reference, in nanoseconds (lock-state, os-clock, GNSS metrics).
    OffsetNs(i64),
    /// A PTP clock class (clock-class events).
    ClockClass(ClockClass),
    /// The GNSS receiver's fix type (0 = no fix, 3 = 3D fix, 5 = time only).
    GpsFix(u8),
    /// SyncE SSM quality level.
    Ql(u8),
    /// SyncE extended quality level (255 = not enabled).
    ExtQl(u8),
    /// Another number.
    Number(f64),
    /// Anything else, as text.
    Text(String),
}

/// Decodes a notification body (a structured CloudEvent) leniently.
///
/// Accepted beyond the strict format: a `value` given as a JSON number; `time` with or without
/// fractional seconds, with an offset, in the form without `T`/offset, and in the StarlingX form
/// without the dot before the fraction (`2024-11-15T15:22:33868726Z`); unknown keys anywhere.
/// Anything else is an error with a clear message; it never panics.
///
/// ```
/// use ptp_events_client::{Measurement, SyncState, decode_event};
/// let body = br#"{"specversion":"1.0","id":"1","source":"/sync/ptp-status/lock-state","type":"event.sync.ptp-status.ptp-state-change","time":"2026-11-25T13:45:19.702815727Z","data":{"version":"1.0","values":[{"ResourceAddress":"/cluster/node/node1/ens1fx/master","data_type":"notification","value_type":"enumeration","value":"LOCKED"},{"ResourceAddress":"/cluster/node/node1/ens1fx/master","data_type":"metric","value_type":"decimal64.3","value":"-5"}]}}"#;
/// let event = decode_event(body)?;
/// assert_eq!(event.sync_state(), Some(SyncState::Locked));
/// assert_eq!(event.offset_ns(), Some(-5));
/// assert!(decode_event(b"garbage").is_err());
/// # Ok::<(), ptp_events_client::DecodeError>(())
/// ```
pub fn decode_event(body: &[u8]) -> Result<Event, DecodeError> {
    let raw = match CloudEvent::from_json(body) {
        Ok(ev) => ev,
        Err(first) => match starlingx_time_fixed(body) {
            Some(fixed) => CloudEvent::from_json(&fixed).map_err(|_| DecodeError(first.0))?,
            None => return Err(DecodeError(first.0)),
        },
    };
    Ok(Event::from_cloud_event(raw))
}

/// Decodes a CurrentState body: one event, or a JSON array of events (what a producer answers
/// for an address covering several resources, e.g. `/cluster/node/<n>/sync`).
pub fn decode_events(body: &[u8]) -> Result<Vec<Event>, DecodeError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'[') {
        return decode_event(body).map(|e| vec![e]);
    }
    let items: Vec<serde_json::Value> = serde_json::from_slice(body)
        .map_err(|e| DecodeError(format!("not a JSON array of CloudEvents: {e}")))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let bytes = serde_json::to_vec(item).expect("a JSON value serialises");
            decode_event(&bytes).map_err(|e| DecodeError(format!("event #{i}: {e}")))
        })
        .collect()
}

/// When `time` is in the StarlingX form `YYYY-MM-DDTHH:MM:SS<fraction>Z` (no dot), the body with
/// the dot put back; `None` when the body is not JSON or its time is not in that form.
fn starlingx_time_fixed(body: &[u8]) -> Option<Vec<u8>> {
    let mut v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let time = v.get_mut("time")?;
    let s = time.as_str()?;
    // 19 characters = "YYYY-MM-DDTHH:MM:SS"; digits follow directly.
    let (head, tail) = (s.get(..19)?, s.get(19..)?);
    let digits = tail.trim_end_matches('Z');
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let fixed = format!("{head}.{digits}Z");
    oran_api::parse_lenient(&fixed)?;
    *time = serde_json::Value::String(fixed);
    serde_json::to_vec(&v).ok()
}

impl Event {
    /// Types the values of `raw` (the time of receipt is now).
    pub fn from_cloud_event(raw: CloudEvent) -> Event {
        let resource = resource_of(&raw);
        let readings = raw
            .data
            .values
            .iter()
            .map(|v| Reading {
                address: v.resource_address.clone(),
                measurement: classify(resource, v),
            })
            .collect();
        Event {
            raw,
            resource,
            readings,
            received_at: Utc::now(),
        }
    }

    /// The CloudEvent as received.
    pub fn raw(&self) -> &CloudEvent {
        &self.raw
    }

    /// The CloudEvent as received, by value.
    pub fn into_raw(self) -> CloudEvent {
        self.raw
    }

    /// The event id (every subscriber of one event sees the same id).
    pub fn id(&self) -> &str {
        &self.raw.id
    }

    /// The CloudEvent `source`, e.g. `/sync/ptp-status/lock-state`.
    pub fn source(&self) -> &str {
        &self.raw.source
    }

    /// The CloudEvent `type`, e.g. `event.sync.ptp-status.ptp-state-change`.
    pub fn event_type(&self) -> &str {
        &self.raw.event_type
    }

    /// Which of the seven PTP resources this event is about (`None` for other producers'
    /// resources, e.g. a mock).
    pub fn resource(&self) -> Option<Resource> {
        self.resource
    }

    /// When the event happened, by the producer's clock.
    pub fn time(&self) -> DateTime<Utc> {
        self.raw.time.0
    }

    /// When this event was decoded, by the local clock.
    pub fn received_at(&self) -> DateTime<Utc> {
        self.received_at
    }

    /// Receipt minus event time: the delivery latency when both clocks agree (negative when the
    /// producer's clock is ahead).
    pub fn latency(&self) -> TimeDelta {
        self.received_at - self.time()
    }

    /// The values, typed.
    pub fn readings(&self) -> &[Reading] {
        &self.readings
    }

    /// The values as received.
    pub fn values(&self) -> &[Value] {
        &self.raw.data.values
    }

    /// The first state in the event (the clock's, the node's or the GNSS receiver's). Events
    /// about several clocks (dual NIC) carry one per clock: see [`Event::readings`].
    pub fn sync_state(&self) -> Option<SyncState> {
        self.readings.iter().find_map(|r| match r.measurement {
            Measurement::State(s) => Some(s),
            _ => None,
        })
    }

    /// The first offset in nanoseconds.
    pub fn offset_ns(&self) -> Option<i64> {
        self.readings.iter().find_map(|r| match r.measurement {
            Measurement::OffsetNs(o) => Some(o),
            _ => None,
        })
    }

    /// The first clock class.
    pub fn clock_class(&self) -> Option<ClockClass> {
        self.readings.iter().find_map(|r| match r.measurement {
            Measurement::ClockClass(c) => Some(c),
            _ => None,
        })
    }

    /// The GNSS fix type.
    pub fn gps_fix(&self) -> Option<u8> {
        self.readings.iter().find_map(|r| match r.measurement {
            Measurement::GpsFix(f) => Some(f),
            _ => None,
        })
    }

    /// The SyncE quality level and extended quality level.
    pub fn synce_quality(&self) -> (Option<u8>, Option<u8>) {
        let ql = self.readings.iter().find_map(|r| match r.measurement {
            Measurement::Ql(q) => Some(q),
            _ => None,
        });
        let ext = self.readings.iter().find_map(|r| match r.measurement {
            Measurement::ExtQl(q) => Some(q),
            _ => None,
        });
        (ql, ext)
    }

    /// Whether this is the placeholder a producer sends while it has no data for the resource
    /// (values at `/cluster/node/<n>/ptp-not-set` or `.../event-not-found`).
    pub fn is_placeholder(&self) -> bool {
        self.raw.data.values.first().is_some_and(|v| {
            v.resource_address.ends_with("/ptp-not-set")
                || v.resource_address.ends_with("/event-not-found")
        })
    }
}

impl std::fmt::Display for Event {
    /// One line: `<source> <type> id=<id> time=<time> [<address>=<value>, ...]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} id={} time={} [",
            self.source(),
            self.event_type(),
            self.id(),
            self.raw.time
        )?;
        for (i, v) in self.values().iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}={}", v.resource_address, v.value)?;
        }
        f.write_str("]")
    }
}

fn resource_of(raw: &CloudEvent) -> Option<Resource> {
    raw.resource().or_else(|| {
        // CEP v2 writes the full address as source: /cluster/node/<n>/sync/...
        let i = raw.source.find("/sync/")?;
        Resource::from_source(&raw.source[i..])
    })
}

fn classify(resource: Option<Resource>, v: &Value) -> Measurement {
    let text = v.value.trim();
    if v.data_type == DataType::Notification {
        return match text.parse::<SyncState>() {
            Ok(s) => Measurement::State(s),
            Err(_) => Measurement::UnknownState(text.to_owned()),
        };
    }
    // A metric. The Go producer sends the SyncE lock state as a metric whose value is a state.
    if let Ok(s) = text.parse::<SyncState>() {
        return Measurement::State(s);
    }
    let last = v
        .resource_address
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let small = || parse_number(text).and_then(|n| u8::try_from(n.round() as i64).ok());
    let typed = match (resource, last.as_str()) {
        (Some(Resource::ClockClass), _) => small().map(|c| Measurement::ClockClass(ClockClass(c))),
        (_, "gpsfix") => small().map(Measurement::GpsFix),
        (_, "ql") => small().map(Measurement::Ql),
        (_, "extql") => small().map(Measurement::ExtQl),
        (Some(Resource::LockState | Resource::OsClockSyncState | Resource::GnssSyncStatus), _) => {
            parse_offset(text).map(Measurement::OffsetNs)
        }
        _ => None,
    };
    typed.unwrap_or_else(|| match parse_number(text) {
        Some(n) => Measurement::Number(n),
        None => Measurement::Text(text.to_owned()),
    })
}

fn parse_number(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Integers are parsed exactly (`-9999999999999999` does not fit an f64); decimals are rounded.
fn parse_offset(s: &str) -> Option<i64> {
    s.parse::<i64>()
        .ok()
        .or_else(|| parse_number(s).map(|n| n.round() as i64))
}
