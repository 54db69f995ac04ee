//! The PTP resources, resource addresses and value vocabularies.

use std::fmt;
use std::str::FromStr;

/// One of the seven PTP resources a node publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// Overall node synchronisation state (worst of every clock and the OS clock).
    SyncState,
    /// The OS clock (CLOCK_REALTIME disciplined by phc2sys).
    OsClockSyncState,
    /// The PTP clock class.
    ClockClass,
    /// The PTP clock lock state.
    LockState,
    /// The GNSS receiver's sync status.
    GnssSyncStatus,
    /// The SyncE lock state.
    SynceLockState,
    /// The SyncE clock quality (SSM QL / extended QL).
    SynceClockQuality,
}

impl Resource {
    /// Every resource, in the fixed order used for initial notifications and arrays (the order
    /// in which the Go PTP plugin creates its publishers).
    pub const ALL: [Resource; 7] = [
        Resource::SyncState,
        Resource::OsClockSyncState,
        Resource::ClockClass,
        Resource::LockState,
        Resource::GnssSyncStatus,
        Resource::SynceLockState,
        Resource::SynceClockQuality,
    ];

    /// The CloudEvent `source`: the short path below `/cluster/node/<node>`.
    pub const fn source(self) -> &'static str {
        match self {
            Resource::SyncState => "/sync/sync-status/sync-state",
            Resource::OsClockSyncState => "/sync/sync-status/os-clock-sync-state",
            Resource::ClockClass => "/sync/ptp-status/clock-class",
            Resource::LockState => "/sync/ptp-status/lock-state",
            Resource::GnssSyncStatus => "/sync/gnss-status/gnss-sync-status",
            Resource::SynceLockState => "/sync/synce-status/lock-state",
            Resource::SynceClockQuality => "/sync/synce-status/clock-quality",
        }
    }

    /// The CloudEvent `type`.
    pub const fn event_type(self) -> &'static str {
        match self {
            Resource::SyncState => "event.sync.sync-status.synchronization-state-change",
            Resource::OsClockSyncState => "event.sync.sync-status.os-clock-sync-state-change",
            Resource::ClockClass => "event.sync.ptp-status.ptp-clock-class-change",
            Resource::LockState => "event.sync.ptp-status.ptp-state-change",
            Resource::GnssSyncStatus => "event.sync.gnss-status.gnss-state-change",
            Resource::SynceLockState => "event.sync.synce-status.synce-state-change",
            Resource::SynceClockQuality => "event.sync.synce-status.synce-clock-quality-change",
        }
    }

    /// The group (`sync-status`, `ptp-status`, ...) the resource belongs to.
    pub const fn scope(self) -> Scope {
        match self {
            Resource::SyncState | Resource::OsClockSyncState => Scope::SyncStatus,
            Resource::ClockClass | Resource::LockState => Scope::PtpStatus,
            Resource::GnssSyncStatus => Scope::GnssStatus,
            Resource::SynceLockState | Resource::SynceClockQuality => Scope::SynceStatus,
        }
    }

    /// The full delivery address on `node`: `/cluster/node/<node>` + [`Resource::source`].
    pub fn address(self, node: &str) -> String {
        format!("{}{}", node_prefix(node), self.source())
    }

    /// The resource whose `source` is `s`.
    pub fn from_source(s: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| r.source() == s)
    }

    /// The resource whose event `type` is `t`.
    pub fn from_event_type(t: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| r.event_type() == t)
    }

    /// Position in [`Resource::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The placeholder values the Go producer sends as the initial notification while the
    /// resource has no data: FREERUN at `/cluster/node/<n>/ptp-not-set` (we use clock class 248,
    /// the default class, where Go sends 0).
    pub fn placeholder_values(self, node: &str) -> Vec<crate::Value> {
        let ra = value_address(node, "ptp-not-set");
        let state = crate::Value::notification(ra.clone(), SyncState::Freerun);
        let offset = crate::Value::metric(ra.clone(), 0);
        match self {
            Resource::SyncState | Resource::SynceLockState => vec![state],
            Resource::ClockClass => vec![crate::Value::metric(ra, ClockClass::DEFAULT.0)],
            Resource::SynceClockQuality => vec![offset],
            Resource::OsClockSyncState | Resource::LockState | Resource::GnssSyncStatus => {
                vec![state, offset]
            }
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.source())
    }
}

/// A group of resources below `/cluster/node/<n>/sync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `sync-status`: sync-state and os-clock-sync-state.
    SyncStatus,
    /// `ptp-status`: lock-state and clock-class.
    PtpStatus,
    /// `gnss-status`.
    GnssStatus,
    /// `synce-status`: lock-state and clock-quality.
    SynceStatus,
}

impl Scope {
    const ALL: [Scope; 4] = [
        Scope::SyncStatus,
        Scope::PtpStatus,
        Scope::GnssStatus,
        Scope::SynceStatus,
    ];

    /// The path below `/cluster/node/<n>`.
    pub const fn path(self) -> &'static str {
        match self {
            Scope::SyncStatus => "/sync/sync-status",
            Scope::PtpStatus => "/sync/ptp-status",
            Scope::GnssStatus => "/sync/gnss-status",
            Scope::SynceStatus => "/sync/synce-status",
        }
    }
}

/// A set of resources (a bit per [`Resource`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ResourceSet(u8);

impl ResourceSet {
    /// No resource.
    pub const EMPTY: ResourceSet = ResourceSet(0);
    /// Every resource.
    pub const ALL: ResourceSet = ResourceSet(0x7f);

    /// The set holding only `r`.
    pub const fn one(r: Resource) -> Self {
        ResourceSet(1 << r as u8)
    }

    /// Whether `r` is in the set.
    pub const fn contains(self, r: Resource) -> bool {
        self.0 & (1 << r as u8) != 0
    }

    /// The union.
    pub const fn union(self, other: ResourceSet) -> Self {
        ResourceSet(self.0 | other.0)
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The members, in [`Resource::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Resource> {
        Resource::ALL.into_iter().filter(move |r| self.contains(*r))
    }
}

impl FromIterator<Resource> for ResourceSet {
    fn from_iter<I: IntoIterator<Item = Resource>>(iter: I) -> Self {
        iter.into_iter()
            .fold(ResourceSet::EMPTY, |s, r| s.union(ResourceSet::one(r)))
    }
}

/// What a subscription's `ResourceAddress` selects on this node: one resource, or a level of the
/// O-RAN hierarchy (`/cluster/node/<n>/sync`, `.../sync/ptp-status`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceSelector {
    /// The address with `.` replaced by the node name: what is stored, echoed and compared.
    pub canonical: String,
    /// The resources it covers.
    pub covers: ResourceSet,
    /// `Some` when the address names exactly one resource (CurrentState answers one event).
    pub single: Option<Resource>,
}

/// Why a `ResourceAddress` is not offered by this node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Not of the form `/cluster/node/<node>/sync/...`.
    #[error(
        "ResourceAddress {0:?} is not of the form /cluster/node/<node>/sync[/<group>[/<resource>]]"
    )]
    Malformed(String),
    /// Another node's resource.
    #[error("ResourceAddress {address:?} names node {other:?}, but this is node {this:?}")]
    OtherNode {
        /// The address as given.
        address: String,
        /// The node it names.
        other: String,
        /// This node.
        this: String,
    },
    /// Not a resource this producer publishes.
    #[error(
        "ResourceAddress {0:?}: no such resource on this node (offered: sync, sync/sync-status[/sync-state|/os-clock-sync-state], sync/ptp-status[/lock-state|/clock-class], sync/gnss-status[/gnss-sync-status], sync/synce-status[/lock-state|/clock-quality])"
    )]
    UnknownResource(String),
}

impl ResourceSelector {
    /// Parses `address` for node `this_node`; `.` as the node segment means this node.
    pub fn parse(address: &str, this_node: &str) -> Result<ResourceSelector, AddressError> {
        let rest = address
            .strip_prefix("/cluster/node/")
            .ok_or_else(|| AddressError::Malformed(address.to_owned()))?;
        let (node, tail) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if node.is_empty() {
            return Err(AddressError::Malformed(address.to_owned()));
        }
        if node != "." && node != this_node {
            return Err(AddressError::OtherNode {
                address: address.to_owned(),
                other: node.to_owned(),
                this: this_node.to_owned(),
            });
        }
        let tail = tail.strip_suffix('/').unwrap_or(tail);
        let canonical = format!("{}{}", node_prefix(this_node), tail);
        if tail == "/sync" {
            return Ok(ResourceSelector {
                canonical,
                covers: ResourceSet::ALL,
                single: None,
            });
        }
        if let Some(scope) = Scope::ALL.into_iter().find(|s| s.path() == tail) {
            return Ok(ResourceSelector {
                canonical,
                covers: Resource::ALL
                    .into_iter()
                    .filter(|r| r.scope() == scope)
                    .collect(),
                single: None,
            });
        }
        if let Some(r) = Resource::from_source(tail) {
            return Ok(ResourceSelector {
                canonical,
                covers: ResourceSet::one(r),
                single: Some(r),
            });
        }
        Err(AddressError::UnknownResource(address.to_owned()))
    }
}

/// `/cluster/node/<node>`.
pub fn node_prefix(node: &str) -> String {
    format!("/cluster/node/{node}")
}

/// A per-value `ResourceAddress`: `/cluster/node/<node>/<suffix>` (e.g. `ens1fx/master`).
pub fn value_address(node: &str, suffix: &str) -> String {
    format!("/cluster/node/{node}/{}", suffix.trim_start_matches('/'))
}

/// A synchronisation state as the API spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncState {
    /// `LOCKED`
    Locked,
    /// `HOLDOVER`
    Holdover,
    /// `FREERUN`
    Freerun,
    /// `SYNCHRONIZED` (GNSS)
    Synchronized,
    /// `ACQUIRING-SYNC` (GNSS)
    AcquiringSync,
    /// `ANTENNA-DISCONNECTED` (GNSS)
    AntennaDisconnected,
    /// `ANTENNA-SHORT-CIRCUIT` (GNSS)
    AntennaShortCircuit,
    /// `BOOTING` (GNSS)
    Booting,
    /// `FAILURE-MULTIPATH` (GNSS)
    FailureMultipath,
    /// `FAILURE-NOFIX` (GNSS)
    FailureNofix,
    /// `FAILURE-LOW-SNR` (GNSS)
    FailureLowSnr,
    /// `FAILURE-PLL` (GNSS)
    FailurePll,
    /// `UNLOCKED`
    Unlocked,
}

impl SyncState {
    /// Every state.
    pub const ALL: [SyncState; 13] = [
        SyncState::Locked,
        SyncState::Holdover,
        SyncState::Freerun,
        SyncState::Synchronized,
        SyncState::AcquiringSync,
        SyncState::AntennaDisconnected,
        SyncState::AntennaShortCircuit,
        SyncState::Booting,
        SyncState::FailureMultipath,
        SyncState::FailureNofix,
        SyncState::FailureLowSnr,
        SyncState::FailurePll,
        SyncState::Unlocked,
    ];

    /// The wire text.
    pub const fn as_str(self) -> &'static str {
        match self {
            SyncState::Locked => "LOCKED",
            SyncState::Holdover => "HOLDOVER",
            SyncState::Freerun => "FREERUN",
            SyncState::Synchronized => "SYNCHRONIZED",
            SyncState::AcquiringSync => "ACQUIRING-SYNC",
            SyncState::AntennaDisconnected => "ANTENNA-DISCONNECTED",
            SyncState::AntennaShortCircuit => "ANTENNA-SHORT-CIRCUIT",
            SyncState::Booting => "BOOTING",
            SyncState::FailureMultipath => "FAILURE-MULTIPATH",
            SyncState::FailureNofix => "FAILURE-NOFIX",
            SyncState::FailureLowSnr => "FAILURE-LOW-SNR",
            SyncState::FailurePll => "FAILURE-PLL",
            SyncState::Unlocked => "UNLOCKED",
        }
    }
}

impl fmt::Display for SyncState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SyncState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        SyncState::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown sync state {s:?}"))
    }
}

/// A PTP clock class (IEEE 1588 / ITU-T G.8275.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClockClass(pub u8);

impl ClockClass {
    /// 6: locked to a primary reference (T-GM locked).
    pub const LOCKED: ClockClass = ClockClass(6);
    /// 7: PRC unlocked, in holdover within spec.
    pub const PRC_UNLOCKED_IN_SPEC: ClockClass = ClockClass(7);
    /// 135: T-BC in holdover within spec.
    pub const TBC_HOLDOVER_IN_SPEC: ClockClass = ClockClass(135);
    /// 165: T-BC in holdover out of spec.
    pub const TBC_HOLDOVER_OUT_OF_SPEC: ClockClass = ClockClass(165);
    /// 248: default class (free-running).
    pub const DEFAULT: ClockClass = ClockClass(248);
    /// 255: slave-only clock.
    pub const SLAVE_ONLY: ClockClass = ClockClass(255);
}

impl fmt::Display for ClockClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_resources_and_hierarchy() {
        let s =
            ResourceSelector::parse("/cluster/node/n1/sync/ptp-status/lock-state", "n1").unwrap();
        assert_eq!(s.single, Some(Resource::LockState));
        assert_eq!(s.canonical, "/cluster/node/n1/sync/ptp-status/lock-state");
        let s = ResourceSelector::parse("/cluster/node/./sync", "n1.example.com").unwrap();
        assert_eq!(s.canonical, "/cluster/node/n1.example.com/sync");
        assert_eq!(s.covers, ResourceSet::ALL);
        assert_eq!(s.single, None);
        let s = ResourceSelector::parse("/cluster/node/n1/sync/synce-status", "n1").unwrap();
        assert_eq!(
            s.covers.iter().collect::<Vec<_>>(),
            vec![Resource::SynceLockState, Resource::SynceClockQuality]
        );
    }

    #[test]
    fn rejects_what_it_cannot_deliver() {
        assert!(matches!(
            ResourceSelector::parse("/cluster/node/n2/sync", "n1"),
            Err(AddressError::OtherNode { .. })
        ));
        for bad in [
            "/cluster/node/n1/sync/synce-status/lock-state-extended",
            "/cluster/node/n1/sync/bogus",
            "/cluster/node/n1",
            "/cluster/node/n1/mock",
        ] {
            assert!(
                matches!(
                    ResourceSelector::parse(bad, "n1"),
                    Err(AddressError::UnknownResource(_))
                ),
                "{bad}"
            );
        }
        for bad in ["/sync/ptp-status/lock-state", "", "/cluster/node//sync"] {
            assert!(
                matches!(
                    ResourceSelector::parse(bad, "n1"),
                    Err(AddressError::Malformed(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn every_resource_round_trips_its_names() {
        for r in Resource::ALL {
            assert_eq!(Resource::from_source(r.source()), Some(r));
            assert_eq!(Resource::from_event_type(r.event_type()), Some(r));
            assert_eq!(Resource::ALL[r.index()], r);
        }
        for s in SyncState::ALL {
            assert_eq!(s.as_str().parse::<SyncState>(), Ok(s));
        }
    }
}
