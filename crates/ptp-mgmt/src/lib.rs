//! The PTP management protocol as ptp4l speaks it on its UNIX-domain socket (`uds_address`):
//! read its datasets (parent, time properties, current, default, port), set what it announces
//! as a grandmaster (GRANDMASTER_SETTINGS_NP), and subscribe to its pushed notifications
//! (SUBSCRIBE_EVENTS_NP).
//!
//! Native rather than driving linuxptp's `pmc` binary: one datagram per request instead of a
//! process per poll (the T-BC writes its announce within a second of a transition, and the
//! daemon polls every ptp4l every few hundred milliseconds), typed datasets instead of parsing
//! `pmc`'s text, and errors that say what failed (no socket, nobody reading it, a timeout, a
//! MANAGEMENT_ERROR_STATUS such as NO_SUCH_ID for a TLV that this linuxptp does not know). The
//! tests check every answer against `pmc` itself on real ptp4l.
//!
//! [`codec`] is the wire format, sans I/O; [`client`] the async client over tokio.

pub mod client;
pub mod codec;

pub use client::{Client, ClientConfig, MgmtError};
pub use codec::{
    ClockIdentity, ClockQuality, CurrentDataSet, Dataset, DefaultDataSet, GrandmasterSettings,
    NotifyEvent, ParentDataSet, PortDataSet, PortIdentity, PortState, TimeFlags,
    TimePropertiesDataSet,
};
