//! What the engine is told about the node: thresholds, profiles, interfaces, aliases.

use std::collections::HashMap;
use std::time::Duration;

/// A time on the caller's monotonic timeline, in nanoseconds.
pub type Nanos = u64;

/// Converts a [`Duration`] to [`Nanos`], saturating.
pub fn nanos(d: Duration) -> Nanos {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A profile's `ptpClockThreshold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// How long a clock stays in HOLDOVER before it is declared FREERUN (default 5 s).
    pub hold_over_timeout: Duration,
    /// Offsets must be strictly below this to count as in range (default 100 ns).
    pub max_offset: i64,
    /// Offsets must be strictly above this to count as in range (default -100 ns).
    pub min_offset: i64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            hold_over_timeout: Duration::from_secs(5),
            max_offset: 100,
            min_offset: -100,
        }
    }
}

impl Thresholds {
    /// `min < offset < max`: both bounds exclusive, as the Go sidecar's `isOffsetInRange`.
    pub const fn in_range(&self, offset: i64) -> bool {
        self.min_offset < offset && offset < self.max_offset
    }

    /// The Go sidecar's sanitising: `max <= 0` → 100; `min > max` → `max - 1`; a zero holdover
    /// timeout → 5 s.
    pub fn sanitized(mut self) -> Self {
        if self.max_offset <= 0 {
            self.max_offset = 100;
        }
        if self.min_offset > self.max_offset {
            self.min_offset = self.max_offset - 1;
        }
        if self.hold_over_timeout.is_zero() {
            self.hold_over_timeout = Duration::from_secs(5);
        }
        self
    }
}

/// What a ptp4l config's main clock is, i.e. which lines decide its lock-state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClockType {
    /// Learn it: OC/BC until a `T-BC[...]` or `GM[...]` status line arrives for the config.
    #[default]
    Auto,
    /// Ordinary clock: ptp4l `master offset` lines and port roles decide.
    Oc,
    /// Boundary clock without T-BC hardware logic; same rules as [`ClockType::Oc`].
    Bc,
    /// T-BC: `T-BC[...] T-BC-STATUS sN` lines decide; ptp4l offsets are metrics only.
    TBc,
    /// T-GM: `GM[...] T-GM-STATUS sN` lines decide; until one arrives the state is derived from
    /// the `dpll`/`gnss`/`ts2phc` lines (linuxptp-daemon `updateGMState`).
    TGm,
}

/// What the engine knows of one config (`ptp4l.0.config`, `synce4l.0.config`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileInfo {
    /// The profile name (the `#profile:` line of the rendered config).
    pub name: String,
    /// The profile's thresholds.
    pub thresholds: Thresholds,
    /// The interface sections in order: ptp4l port N is `interfaces[N - 1]`.
    pub interfaces: Vec<String>,
    /// The clock type.
    pub clock_type: ClockType,
    /// `ptpSettings.leadingInterface` (T-GM/T-BC), when set.
    pub leading_interface: Option<String>,
    /// Further `openshift_ptp_threshold` series, name and value: a T-BC's parameters
    /// ([`crate::tbc::TbcParams::threshold_series`]).
    pub extra_thresholds: Vec<(String, i64)>,
}

impl ProfileInfo {
    /// A profile with default thresholds.
    pub fn new(name: impl Into<String>) -> Self {
        ProfileInfo {
            name: name.into(),
            ..ProfileInfo::default()
        }
    }
}

/// The engine's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// The node name (`NODE_NAME`), used in value addresses and metric labels.
    pub node: String,
    /// Known configs: config name (`ptp4l.0.config`) → profile. `ts2phc.N.config` and
    /// `ptp4l.N.config` share one entry, as in the Go sidecar.
    pub profiles: Vec<(String, ProfileInfo)>,
    /// Interface → alias (`ens1f0` → `ens1fx`), from the daemon's `/port-aliases`. An interface
    /// without an alias is used as is.
    pub aliases: HashMap<String, String>,
    /// A process that comes back within this time after `PTP_PROCESS_STATUS 0` causes no state
    /// change (default 5 s; zero publishes the down at once).
    pub downtime_threshold: Duration,
    /// Thresholds for configs that no profile names.
    pub default_thresholds: Thresholds,
}

impl EngineConfig {
    /// A configuration for `node` with defaults and no profiles.
    pub fn new(node: impl Into<String>) -> Self {
        EngineConfig {
            node: node.into(),
            profiles: Vec::new(),
            aliases: HashMap::new(),
            downtime_threshold: Duration::from_secs(5),
            default_thresholds: Thresholds::default(),
        }
    }

    /// Adds (or replaces) the profile of `config`.
    pub fn with_profile(mut self, config: impl Into<String>, p: ProfileInfo) -> Self {
        let config = config.into();
        self.profiles.retain(|(c, _)| c != &config);
        self.profiles.push((config, p));
        self
    }

    /// Adds an interface alias.
    pub fn with_alias(mut self, iface: impl Into<String>, alias: impl Into<String>) -> Self {
        self.aliases.insert(iface.into(), alias.into());
        self
    }
}

/// The alias the Go daemon derives for an interface (`GetAliasValue`): the last digit group
/// replaced with `x`, an `np<N>` suffix dropped, a VLAN suffix kept (`ens2f0` → `ens2fx`,
/// `enP2s2f0np0` → `enP2s2fx`, `ens1f0.100` → `ens1fx.100`). Names without digits are unchanged.
pub fn default_alias(iface: &str) -> String {
    let (base, vlan) = match iface.find('.') {
        Some(i) => (&iface[..i], &iface[i..]),
        None => (iface, ""),
    };
    // Drop a trailing `np<digits>`.
    let base = match base.rfind("np") {
        Some(i)
            if i > 0
                && base.len() > i + 2
                && base[i + 2..].bytes().all(|b| b.is_ascii_digit())
                && base.as_bytes()[i - 1].is_ascii_digit() =>
        {
            &base[..i]
        }
        _ => base,
    };
    let digits = base.bytes().rev().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits == base.len() {
        return iface.to_owned();
    }
    format!("{}x{}", &base[..base.len() - digits], vlan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_like_go() {
        assert_eq!(default_alias("ens2f0"), "ens2fx");
        assert_eq!(default_alias("enP2s2f0np0"), "enP2s2fx");
        assert_eq!(default_alias("ens1f0.100"), "ens1fx.100");
        assert_eq!(default_alias("eth"), "eth");
    }

    #[test]
    fn thresholds_are_exclusive_and_sanitised() {
        let t = Thresholds::default();
        assert!(!t.in_range(100) && !t.in_range(-100));
        assert!(t.in_range(99) && t.in_range(-99));
        let s = Thresholds {
            hold_over_timeout: Duration::ZERO,
            max_offset: 0,
            min_offset: 500,
        }
        .sanitized();
        assert_eq!(
            s,
            Thresholds {
                hold_over_timeout: Duration::from_secs(5),
                max_offset: 100,
                min_offset: 99
            }
        );
    }
}
