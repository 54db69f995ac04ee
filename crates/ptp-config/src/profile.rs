//! The PtpConfig custom resource and its profiles (`ptp.openshift.io/v1`), as the operator
//! defines them (reference §7). Unknown keys are ignored, as the Kubernetes API server would
//! keep them out of a typed object anyway.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One `PtpProfile`: what one set of linuxptp processes runs with.
///
/// `None` and `Some("")` differ for the `*Opts` fields exactly as in the Go daemon: a process
/// runs when its opts are non-empty (`" "` enables it with no options); ptp4l also runs when
/// `ptp4lOpts` is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PtpProfile {
    /// The profile name (required). It is written as `#profile: <name>` in every rendered file.
    #[serde(default)]
    pub name: Option<String>,
    /// The interface ptp4l runs on; appended as an `[<interface>]` section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// ptp4l command-line options.
    #[serde(default, rename = "ptp4lOpts", skip_serializing_if = "Option::is_none")]
    pub ptp4l_opts: Option<String>,
    /// phc2sys command-line options; phc2sys runs only when non-empty.
    #[serde(
        default,
        rename = "phc2sysOpts",
        skip_serializing_if = "Option::is_none"
    )]
    pub phc2sys_opts: Option<String>,
    /// ts2phc command-line options; ts2phc runs only when non-empty.
    #[serde(
        default,
        rename = "ts2phcOpts",
        skip_serializing_if = "Option::is_none"
    )]
    pub ts2phc_opts: Option<String>,
    /// synce4l options (not supported by this daemon: rejected when non-empty).
    #[serde(
        default,
        rename = "synce4lOpts",
        skip_serializing_if = "Option::is_none"
    )]
    pub synce4l_opts: Option<String>,
    /// chronyd options (not supported by this daemon: rejected when non-empty).
    #[serde(
        default,
        rename = "chronydOpts",
        skip_serializing_if = "Option::is_none"
    )]
    pub chronyd_opts: Option<String>,
    /// ptp4l config text (ini).
    #[serde(default, rename = "ptp4lConf", skip_serializing_if = "Option::is_none")]
    pub ptp4l_conf: Option<String>,
    /// phc2sys config text (ini).
    #[serde(
        default,
        rename = "phc2sysConf",
        skip_serializing_if = "Option::is_none"
    )]
    pub phc2sys_conf: Option<String>,
    /// ts2phc config text (ini).
    #[serde(
        default,
        rename = "ts2phcConf",
        skip_serializing_if = "Option::is_none"
    )]
    pub ts2phc_conf: Option<String>,
    /// synce4l config text (not supported).
    #[serde(
        default,
        rename = "synce4lConf",
        skip_serializing_if = "Option::is_none"
    )]
    pub synce4l_conf: Option<String>,
    /// chronyd config text (not supported).
    #[serde(
        default,
        rename = "chronydConf",
        skip_serializing_if = "Option::is_none"
    )]
    pub chronyd_conf: Option<String>,
    /// `SCHED_OTHER` or `SCHED_FIFO`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ptp_scheduling_policy: Option<String>,
    /// 1..=65, used with `SCHED_FIFO`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ptp_scheduling_priority: Option<i64>,
    /// Lock-state thresholds (used by the state engine, not by the processes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ptp_clock_threshold: Option<PtpClockThreshold>,
    /// Free-form settings (`clockType`, `haProfiles`, `leadingInterface`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ptp_settings: BTreeMap<String, String>,
    /// Hardware plugins (`e810`, ...); kept, not interpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugins: Option<serde_json::Value>,
}

/// `ptpClockThreshold`. Absent fields take the CRD defaults (5 s, 100 ns, -100 ns).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PtpClockThreshold {
    /// Seconds in HOLDOVER before FREERUN (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_over_timeout: Option<i64>,
    /// Upper offset bound in ns, exclusive (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_offset_threshold: Option<i64>,
    /// Lower offset bound in ns, exclusive (default -100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_offset_threshold: Option<i64>,
    /// Per-process downtime thresholds (kept, not interpreted here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_downtime_thresholds: Option<serde_json::Value>,
}

impl PtpProfile {
    /// The name, or `""` when missing (validation rejects that).
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }

    /// A T-BC's or T-TSC's (`ptpSettings.clockType: T-BC|T-TSC`) threshold series for the metrics; empty for
    /// other profiles or unusable settings (those are refused where the daemon reads them).
    pub fn tbc_thresholds(&self) -> Vec<(String, i64)> {
        if !matches!(
            self.ptp_settings.get("clockType").map(String::as_str),
            Some("T-BC" | "T-TSC")
        ) {
            return Vec::new();
        }
        ptp_state::tbc::TbcParams::from_settings(&self.ptp_settings)
            .map(|p| p.threshold_series())
            .unwrap_or_default()
    }

    /// The thresholds with CRD defaults applied, as the state engine wants them.
    pub fn thresholds(&self) -> ptp_state::Thresholds {
        let d = ptp_state::Thresholds::default();
        let Some(t) = &self.ptp_clock_threshold else {
            return d;
        };
        ptp_state::Thresholds {
            hold_over_timeout: t
                .hold_over_timeout
                .and_then(|s| u64::try_from(s).ok())
                .map(std::time::Duration::from_secs)
                .unwrap_or(d.hold_over_timeout),
            max_offset: t.max_offset_threshold.unwrap_or(d.max_offset),
            min_offset: t.min_offset_threshold.unwrap_or(d.min_offset),
        }
    }
}

/// The `PtpConfig` custom resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PtpConfig {
    /// `ptp.openshift.io/v1`.
    #[serde(default)]
    pub api_version: Option<String>,
    /// `PtpConfig`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Only `metadata.name` is used (in error messages).
    #[serde(default)]
    pub metadata: Metadata,
    /// The spec.
    #[serde(default)]
    pub spec: PtpConfigSpec,
}

/// `metadata` (the part we use).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The object name.
    #[serde(default)]
    pub name: Option<String>,
    /// The namespace.
    #[serde(default)]
    pub namespace: Option<String>,
}

/// `PtpConfig.spec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PtpConfigSpec {
    /// The profiles.
    #[serde(default)]
    pub profile: Vec<PtpProfile>,
    /// Which nodes get which profile.
    #[serde(default)]
    pub recommend: Vec<PtpRecommend>,
}

/// `spec.recommend[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PtpRecommend {
    /// The name of a profile in some PtpConfig.
    #[serde(default)]
    pub profile: Option<String>,
    /// Lower is preferred.
    #[serde(default)]
    pub priority: Option<i64>,
    /// Node matches; an entry without any is ignored (as the operator does).
    #[serde(default, rename = "match")]
    pub match_rules: Option<Vec<MatchRule>>,
}

/// `spec.recommend[].match[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchRule {
    /// Matches when the node has this label key.
    #[serde(default)]
    pub node_label: Option<String>,
    /// Matches this node name.
    #[serde(default)]
    pub node_name: Option<String>,
}
