//! Wire types of the O-RAN O-Cloud Notification API v2 as the PTP events REST API speaks it.
//!
//! This crate is the one place where the JSON of the API is defined: the structured
//! [`CloudEvent`] with its `data.values[]`, the [`SubscriptionInfo`] object, the seven PTP
//! [`Resource`]s with their event `type` and `source`, resource addresses
//! ([`ResourceSelector`]) and the value vocabularies ([`SyncState`]).
//!
//! **Encoding is exact**: key names, key order and string-typed `value`s are what the Go
//! `cloud-event-proxy` writes, because Go clients decode case-sensitively and panic on a JSON
//! number where a string belongs. **Decoding is lenient**: a number where a string belongs,
//! unknown keys, `time` with or without fractional seconds.
//!
//! It does no I/O. It is not an HTTP client or server.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod event;
mod resource;
mod subscription;
mod time;

pub use event::{CloudEvent, Data, DataType, DecodeError, Value, ValueType};
pub use resource::{
    AddressError, ClockClass, Resource, ResourceSelector, ResourceSet, Scope, SyncState,
    node_prefix, value_address,
};
pub use subscription::SubscriptionInfo;
pub use time::{EventTime, format_go_rfc3339_nano, parse_lenient};

/// The API's base path, with the trailing slash, as the Go producer hard-codes it.
pub const API_BASE_PATH: &str = "/api/ocloudNotifications/v2/";

/// The `specversion` of every event.
pub const SPEC_VERSION: &str = "1.0";

/// The `data.version` of every event.
pub const DATA_VERSION: &str = "1.0";

/// The offset the Go producer reports with FREERUN when the process that drives a clock died.
pub const FREERUN_OFFSET_PROCESS_DOWN: i64 = -9_999_999_999_999_999;
