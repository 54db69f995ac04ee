//! The structured CloudEvent and its `data` as the PTP events API sends them.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{DATA_VERSION, EventTime, Resource, SPEC_VERSION};

/// A CloudEvent in structured JSON mode, as POSTed to consumers and answered by CurrentState.
///
/// Key order on the wire: `specversion, id, source, type, time, data` (Go's CloudEvents SDK).
/// No `datacontenttype`, `subject` or `dataschema` are written; when decoding they, and any other
/// key, are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent {
    /// Always `"1.0"`.
    pub specversion: String,
    /// The event id (a UUID); every subscriber of one event sees the same id.
    pub id: String,
    /// The short resource path, e.g. `/sync/ptp-status/lock-state`.
    pub source: String,
    /// The event type, e.g. `event.sync.ptp-status.ptp-state-change`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When the event happened.
    pub time: EventTime,
    /// The payload.
    pub data: Data,
}

impl CloudEvent {
    /// An event of `resource` with its `type` and `source`.
    pub fn new(resource: Resource, id: String, time: EventTime, values: Vec<Value>) -> Self {
        CloudEvent {
            specversion: SPEC_VERSION.to_owned(),
            id,
            source: resource.source().to_owned(),
            event_type: resource.event_type().to_owned(),
            time,
            data: Data {
                version: DATA_VERSION.to_owned(),
                values,
            },
        }
    }

    /// The resource this event belongs to, from its `source` (or, failing that, its `type`).
    pub fn resource(&self) -> Option<Resource> {
        Resource::from_source(&self.source).or_else(|| Resource::from_event_type(&self.event_type))
    }

    /// Encodes the event exactly as the Go producer does (compact JSON).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a CloudEvent always serialises")
    }

    /// Decodes an event leniently; the error says what was wrong.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(DecodeError(
                "empty body: expected a CloudEvent JSON object".into(),
            ));
        }
        let ev: CloudEvent = serde_json::from_slice(bytes)
            .map_err(|e| DecodeError(format!("not a CloudEvent: {e}")))?;
        if ev.specversion.is_empty() {
            return Err(DecodeError("specversion is empty".into()));
        }
        Ok(ev)
    }
}

/// Why an event could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// The `data` of an event: `{"version":"1.0","values":[...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Data {
    /// Always `"1.0"`.
    #[serde(default = "default_version")]
    pub version: String,
    /// The values; an empty array when there are none.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub values: Vec<Value>,
}

fn default_version() -> String {
    DATA_VERSION.to_owned()
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Value>, D::Error> {
    Ok(Option::<Vec<Value>>::deserialize(d)?.unwrap_or_default())
}

/// One entry of `data.values`.
///
/// `value` is always written as a JSON string (`"-5"`, `"LOCKED"`); a JSON number or boolean is
/// accepted when decoding and kept in its textual form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Value {
    /// Where the value comes from, e.g. `/cluster/node/node1/ens1fx/master`.
    #[serde(rename = "ResourceAddress", default)]
    pub resource_address: String,
    /// `notification` or `metric`.
    pub data_type: DataType,
    /// `enumeration` or `decimal64.3`.
    pub value_type: ValueType,
    /// The value, as text.
    #[serde(deserialize_with = "string_or_number")]
    pub value: String,
}

impl Value {
    /// A `notification`/`enumeration` value (a state such as `LOCKED`).
    pub fn notification(resource_address: impl Into<String>, value: impl fmt::Display) -> Self {
        Value {
            resource_address: resource_address.into(),
            data_type: DataType::Notification,
            value_type: ValueType::Enumeration,
            value: value.to_string(),
        }
    }

    /// A `metric`/`decimal64.3` value (an offset, a clock class).
    pub fn metric(resource_address: impl Into<String>, value: impl fmt::Display) -> Self {
        Value {
            resource_address: resource_address.into(),
            data_type: DataType::Metric,
            value_type: ValueType::Decimal,
            value: value.to_string(),
        }
    }
}

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Bool(b) => Ok(b.to_string()),
        serde_json::Value::Null => Ok(String::new()),
        other => Err(serde::de::Error::custom(format!(
            "value must be a string or a number, got {other}"
        ))),
    }
}

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $variant,)*
            /// Any other text (kept so that decoding is lenient).
            Other(String),
        }

        impl $name {
            /// The wire text.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)*
                    $name::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $($text => $name::$variant,)*
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = std::borrow::Cow::<str>::deserialize(d)?;
                Ok($name::from(&*s))
            }
        }
    };
}

wire_enum!(
    /// `data_type` of a value.
    DataType {
        /// A state (`LOCKED`, `SYNCHRONIZED`, ...).
        Notification = "notification",
        /// A number (offset, clock class, QL).
        Metric = "metric",
    }
);

wire_enum!(
    /// `value_type` of a value.
    ValueType {
        /// An enumerated state.
        Enumeration = "enumeration",
        /// A decimal number (`decimal64.3`).
        Decimal = "decimal64.3",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    const GO_LOCK_STATE: &str = r#"{"specversion":"1.0","id":"97df4082-6826-4326-a1e1-18cd4bbe8361","source":"/sync/ptp-status/lock-state","type":"event.sync.ptp-status.ptp-state-change","time":"2026-11-25T13:45:19.702815727Z","data":{"version":"1.0","values":[{"ResourceAddress":"/cluster/node/node1/ens1fx/master","data_type":"notification","value_type":"enumeration","value":"LOCKED"},{"ResourceAddress":"/cluster/node/node1/ens1fx/master","data_type":"metric","value_type":"decimal64.3","value":"-5"}]}}"#;

    #[test]
    fn go_bytes_round_trip_exactly() {
        let ev = CloudEvent::from_json(GO_LOCK_STATE.as_bytes()).unwrap();
        assert_eq!(ev.resource(), Some(Resource::LockState));
        assert_eq!(ev.to_json(), GO_LOCK_STATE);
    }

    #[test]
    fn builds_the_go_shape() {
        let time = EventTime(
            chrono::DateTime::parse_from_rfc3339("2026-11-25T13:45:19.702815727Z")
                .unwrap()
                .into(),
        );
        let ev = CloudEvent::new(
            Resource::LockState,
            "97df4082-6826-4326-a1e1-18cd4bbe8361".into(),
            time,
            vec![
                Value::notification("/cluster/node/node1/ens1fx/master", "LOCKED"),
                Value::metric("/cluster/node/node1/ens1fx/master", -5),
            ],
        );
        assert_eq!(ev.to_json(), GO_LOCK_STATE);
    }

    #[test]
    fn decodes_numbers_and_extra_keys() {
        let body = r#"{"specversion":"1.0","id":"x","source":"/sync/ptp-status/clock-class","type":"t","time":"2026-11-25T13:45:19Z","datacontenttype":"application/json","extra":{"a":1},"data":{"version":"1.0","values":[{"ResourceAddress":"/a","data_type":"metric","value_type":"decimal64.3","value":-5.5,"more":true}]}}"#;
        let ev = CloudEvent::from_json(body.as_bytes()).unwrap();
        assert_eq!(ev.data.values[0].value, "-5.5");
        // Re-encoded, the value is a string again.
        assert!(ev.to_json().contains(r#""value":"-5.5""#));
    }

    /// The `cloud_event` fuzz target's finding, byte for byte: it decoded, but its re-encoding
    /// (year `-0013`) did not decode again. A year outside 0000–9999 is now refused.
    #[test]
    fn fuzz_regression_negative_year() {
        let body = br#"{"specversion":"1.0","id":"97df4082-6822-4326-a1e1-4db8c1be8361","source":"/sync/ptp-status/loc1k-state","type":"eVent.ge","time":"-013-11-25T06:05:09.7028","data":{"versia":[]}}"#;
        let e = CloudEvent::from_json(body).unwrap_err();
        assert!(e.0.contains("-013-11-25"), "{e}");
    }

    #[test]
    fn garbage_gets_a_clear_error() {
        assert!(
            CloudEvent::from_json(b"")
                .unwrap_err()
                .0
                .contains("empty body")
        );
        let e = CloudEvent::from_json(b"{\"specversion\":\"1.0\"").unwrap_err();
        assert!(e.0.starts_with("not a CloudEvent"), "{e}");
        let e = CloudEvent::from_json(
            br#"{"specversion":"1.0","id":"x","source":"s","type":"t","time":"never","data":{}}"#,
        )
        .unwrap_err();
        assert!(e.0.contains("never"), "{e}");
    }
}
