//! Runs a telecom boundary clock (T-BC): the time-receiver (TR) ptp4l faces the grandmaster,
//! the time-transmitter (TT) ptp4l serves downstream and never sees upstream; the daemon
//! carries what TT announces. Two profiles as the Go daemon writes them: the TR profile with
//! `ptpSettings.clockType: T-BC`, the TT profile (its ports `masterOnly 1`) with
//! `ptpSettings.controllingProfile: <TR profile name>`.
//!
//! The decisions are [`ptp_state::tbc::TbcMachine`]'s (sans-IO); this module only executes them:
//! * it reads the TR ptp4l's port-state and offset lines from the hub, and ticks the machine;
//! * TT starts only once the machine first reaches Locked (the source qualifies; the spec's
//!   process order); a TT that crashes later restarts at once;
//! * on each transition, and while Locked when the grandmaster's class changes, it writes the
//!   Go daemon's `CLOCK_CLASS_CHANGE` line (TR config) and a `T-BC[..] T-BC-STATUS` line (also
//!   every second), and makes TT announce the state's content with `SET GRANDMASTER_SETTINGS_NP`:
//!   Locked copies the TR's PARENT_DATA_SET quality and TIME_PROPERTIES_DATA_SET; the local
//!   states announce 248 / 135 / 165 with the spec's fields (clock-requirements §2.5);
//! * the announce is checked on TT every second and set again when it differs (a restarted TT
//!   starts from its config), so TT carries the state's content within a second of it.
//!
//! A TR profile that no TT names is a T-TSC: the same machine runs (lock-state events), the
//! class reported is always 255, and nothing is set.
//!
//! Not done with linuxptp 3.1.1: `EXTERNAL_GRANDMASTER_PROPERTIES_NP` (grandmasterIdentity and
//! stepsRemoved forwarding) does not exist there; it is tried once per Locked and a NO_SUCH_ID
//! answer is logged once, so downstream sees TT as its grandmaster, `stepsRemoved` 1.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ptp_config::{Plan, ProfilePlan};
use ptp_mgmt::codec::{Dataset, ExternalGrandmasterProperties};
use ptp_mgmt::{Client, ClientConfig, ClockQuality, GrandmasterSettings, MgmtError, TimeFlags};
use ptp_state::parse::{ParsedLine, PortRole};
use ptp_state::tbc::{TbcMachine, TbcParams, TbcState, Transition, tbc_status_line};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use crate::announce::Announcer;
use crate::class::{Ptp4lTarget, clock_class_line};
use crate::hub::Hub;
use crate::lines::unix_now;

/// One T-BC: its two ptp4l instances and its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct TbcPair {
    /// The TR profile's name.
    pub tr_profile: String,
    /// TR's ptp4l (its config names the lines the machine reads and writes).
    pub tr: Ptp4lTarget,
    /// The interface the status line names (`leadingInterface`, else TR's first).
    pub tr_iface: String,
    /// The TT profile's name; `None`: a T-TSC (a TR without TT), which always reports class
    /// 255 and sets nothing.
    pub tt_profile: Option<String>,
    /// TT's ptp4l.
    pub tt: Option<Ptp4lTarget>,
    /// The machine's parameters (TR's `ptpSettings`).
    pub params: TbcParams,
}

/// Whether a profile is a T-BC's TT (controlled) or TR: no plain clock-class watcher for those.
pub fn is_tbc_part(p: &ProfilePlan) -> bool {
    let s = &p.profile.ptp_settings;
    s.contains_key("controllingProfile") || is_tr(p)
}

/// A T-BC's TR (`clockType: T-BC`), or a T-TSC (`clockType: T-TSC`: Go's PtpConfig has no such
/// clock type and runs it as an OC; here it is the T-BC machine without TT, class 255).
fn is_tr(p: &ProfilePlan) -> bool {
    matches!(
        p.profile.ptp_settings.get("clockType").map(String::as_str),
        Some("T-BC" | "T-TSC")
    )
}

impl TbcPair {
    /// Every T-BC of `plan` (a TT profile naming its TR with `controllingProfile`), and every
    /// T-TSC (a T-BC TR that no TT names). Errors: a TR that does not exist or has no ptp4l,
    /// bad parameters (each named).
    pub fn find(plan: &Plan) -> Result<Vec<TbcPair>, String> {
        let mut out = Vec::new();
        for tt in &plan.profiles {
            let Some(tr_name) = tt.profile.ptp_settings.get("controllingProfile") else {
                continue;
            };
            let tt_name = tt.profile.name();
            let tr = plan
                .profiles
                .iter()
                .find(|p| p.profile.name() == tr_name.as_str())
                .ok_or_else(|| {
                    format!("profile {tt_name:?}: ptpSettings.controllingProfile names {tr_name:?}, which is not a profile of this node")
                })?;
            let tt_target = Ptp4lTarget::of(tt)
                .ok_or_else(|| format!("profile {tt_name:?} (a T-BC's TT) runs no ptp4l"))?;
            out.push(TbcPair::with_tr(tr, Some((tt_name.to_owned(), tt_target)))?);
        }
        // (a TR profile that runs no ptp4l has nothing to watch)
        for tr in plan
            .profiles
            .iter()
            .filter(|p| is_tr(p) && Ptp4lTarget::of(p).is_some())
        {
            if !out.iter().any(|p| p.tr_profile == tr.profile.name()) {
                out.push(TbcPair::with_tr(tr, None)?);
            }
        }
        Ok(out)
    }

    fn with_tr(tr: &ProfilePlan, tt: Option<(String, Ptp4lTarget)>) -> Result<TbcPair, String> {
        let name = tr.profile.name();
        let target = Ptp4lTarget::of(tr)
            .ok_or_else(|| format!("profile {name:?} (a T-BC's TR) runs no ptp4l"))?;
        let params = TbcParams::from_settings(&tr.profile.ptp_settings)
            .map_err(|e| format!("profile {name:?}: {e}"))?;
        let tr_iface = tr
            .profile
            .ptp_settings
            .get("leadingInterface")
            .cloned()
            .or_else(|| tr.interfaces.first().cloned())
            .unwrap_or_default();
        let (tt_profile, tt) = tt.unzip();
        Ok(TbcPair {
            tr_profile: name.to_owned(),
            tr: target,
            tr_iface,
            tt_profile,
            tt,
            params,
        })
    }
}

/// The upstream data sets read from TR when Locked.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Upstream {
    quality: ClockQuality,
    utc_offset: i16,
    flags: TimeFlags,
    time_source: u8,
}

impl Upstream {
    fn settings(&self) -> GrandmasterSettings {
        GrandmasterSettings {
            clock_quality: self.quality,
            current_utc_offset: self.utc_offset,
            flags: self.flags,
            time_source: self.time_source,
        }
    }
}

/// The default UTC offset when nothing upstream was ever seen (TAI − UTC since 2017).
const DEFAULT_UTC_OFFSET: i16 = 37;

struct Runner {
    pair: TbcPair,
    hub: Arc<Hub>,
    local_dir: PathBuf,
    fsm: TbcMachine,
    t0: Instant,
    upstream: Option<Upstream>,
    announced_class: Option<u8>,
    gate: watch::Sender<bool>,
    tr: Option<Client>,
    /// TT's announce; `None`: a T-TSC.
    tt: Option<Announcer>,
    egp_unsupported_logged: bool,
}

impl Runner {
    fn now(&self) -> u64 {
        ptp_state::nanos(self.t0.elapsed())
    }

    /// TR's management client.
    fn tr_client(&self) -> Option<Client> {
        self.pair
            .tr
            .client(&self.local_dir, ClientConfig::default().timeout)
            .map_err(|e| tracing::warn!(error = %e, "T-BC management client"))
            .ok()
    }

    fn status_line(&self) {
        let now = self.now();
        self.hub.publish(tbc_status_line(
            unix_now(),
            &self.pair.tr.config_file,
            &self.pair.tr_iface,
            self.fsm.status_offset(now),
            self.fsm.state(),
        ));
    }

    fn class_line(&mut self, class: u8) {
        // A T-TSC always reports 255 (a slave-only clock), whatever its state.
        let class = if self.pair.tt_profile.is_none() {
            255
        } else {
            class
        };
        if self.announced_class != Some(class) {
            self.announced_class = Some(class);
            self.hub.publish(clock_class_line(
                &self.pair.tr.config_file,
                class,
                unix_now(),
            ));
        }
    }

    /// The local states' announce, with the upstream's UTC offset when one was seen.
    fn local_settings(&self) -> Option<GrandmasterSettings> {
        let a = self.fsm.local_announce(self.now())?;
        let (utc_offset, leap) = match &self.upstream {
            Some(u) => (u.utc_offset, (u.flags.leap61, u.flags.leap59)),
            None => (DEFAULT_UTC_OFFSET, (false, false)),
        };
        let held = matches!(
            self.fsm.state(),
            TbcState::HoldoverInSpec | TbcState::HoldoverOutOfSpec
        );
        Some(GrandmasterSettings {
            clock_quality: ClockQuality {
                class: a.class,
                accuracy: a.accuracy,
                offset_scaled_log_variance: a.variance,
            },
            current_utc_offset: utc_offset,
            flags: TimeFlags {
                leap61: held && leap.0,
                leap59: held && leap.1,
                // The spec's table (§8): FALSE in Free-Run, TRUE in holdover (the offset is the
                // last one received). Go copies the upstream's flag instead.
                current_utc_offset_valid: a.utc_offset_valid,
                ptp_timescale: a.ptp_timescale,
                time_traceable: a.time_traceable,
                frequency_traceable: a.frequency_traceable,
            },
            time_source: a.time_source,
        })
    }

    /// Reads TR's PARENT and TIME_PROPERTIES data sets.
    async fn read_upstream(&mut self) -> Result<Upstream, MgmtError> {
        if self.tr.is_none() {
            self.tr = self.tr_client();
        }
        let Some(tr) = self.tr.as_mut() else {
            return Err(MgmtError::NoSocket(self.pair.tr.socket.clone()));
        };
        let parent = tr.parent_data_set().await?;
        let time = tr.time_properties().await?;
        Ok(Upstream {
            quality: parent.grandmaster_clock_quality,
            utc_offset: time.current_utc_offset,
            flags: time.flags,
            time_source: time.time_source,
        })
    }

    async fn on_transition(&mut self, t: Transition) {
        tracing::info!(
            tbc = %self.pair.tr_profile,
            transition = t.id,
            from = t.from.name(),
            to = t.to.name(),
            "T-BC state"
        );
        if t.to == TbcState::Locked {
            // Fresh upstream data at every entry to Locked (no stale data survives holdover).
            match self.read_upstream().await {
                Ok(u) => {
                    self.upstream = Some(u);
                    self.set_desired(u.settings());
                    self.class_line(u.quality.class);
                }
                Err(e) => tracing::warn!(error = %e, "T-BC Locked: cannot read the TR's data sets"),
            }
            self.forward_identity().await;
            if let Some(tt) = &self.pair.tt_profile
                && !*self.gate.borrow()
            {
                tracing::info!(tt = %tt, "T-BC source qualified: starting TT");
                let _ = self.gate.send(true);
            }
        } else if let Some(s) = self.local_settings() {
            self.set_desired(s);
            self.class_line(s.clock_quality.class);
        }
        self.status_line();
        self.apply().await;
    }

    /// The grandmaster identity and stepsRemoved to TT (linuxptp after 4.4 only).
    async fn forward_identity(&mut self) {
        if self.egp_unsupported_logged {
            return;
        }
        let (Some(tr), Some(tt)) = (
            self.tr.as_mut(),
            self.tt.as_mut().and_then(Announcer::client),
        ) else {
            return;
        };
        let (Ok(parent), Ok(cur)) = (tr.parent_data_set().await, tr.current_data_set().await)
        else {
            return;
        };
        let r = tt
            .set(Dataset::ExternalGrandmasterProperties(
                ExternalGrandmasterProperties {
                    grandmaster_identity: parent.grandmaster_identity,
                    steps_removed: cur.steps_removed,
                },
            ))
            .await;
        if let Err(MgmtError::Status { .. }) = r {
            self.egp_unsupported_logged = true;
            tracing::warn!(
                "this linuxptp has no EXTERNAL_GRANDMASTER_PROPERTIES_NP: TT announces itself as grandmaster (stepsRemoved not forwarded)"
            );
        }
    }

    /// What TT must announce now (nothing for a T-TSC).
    fn set_desired(&mut self, s: GrandmasterSettings) {
        if let Some(tt) = self.tt.as_mut() {
            tt.desired = s;
        }
    }

    /// Sets TT's announce when it differs from what was applied (once TT may run).
    async fn apply(&mut self) {
        if !*self.gate.borrow() {
            return;
        }
        if let Some(tt) = self.tt.as_mut() {
            tt.apply().await;
        }
    }

    async fn on_line(&mut self, line: &str) -> Option<Transition> {
        let now = self.now();
        match ptp_state::parse_line(line) {
            ParsedLine::PortEvent {
                config,
                port,
                change: Some(c),
                ..
            } if config == self.pair.tr.config_file => {
                self.fsm.port(port, c.role == PortRole::Slave, now)
            }
            ParsedLine::Ptp4lOffset {
                config,
                servo,
                offset,
                freq,
                ..
            } if config == self.pair.tr.config_file => {
                self.fsm
                    .offset(offset as f64, freq as f64, servo.locked(), now)
            }
            ParsedLine::ProcessStatus {
                process: "ptp4l",
                config,
                up: false,
            } if config == self.pair.tr.config_file => {
                // TR is gone: lost unless it is SLAVE again within its downtime window.
                self.tr = None;
                self.fsm.tr_exited(now)
            }
            _ => None,
        }
    }
}

/// Runs one T-BC until `stop`; `gate` opens TT's first start. `lines` is the hub's tap, taken
/// before any process starts (so no TR line is missed).
pub async fn run(
    pair: TbcPair,
    hub: Arc<Hub>,
    mut lines: broadcast::Receiver<String>,
    local_dir: PathBuf,
    gate: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) {
    if *stop.borrow() {
        return;
    }
    let tt = pair
        .tt
        .clone()
        .map(|t| Announcer::new(t, local_dir.clone(), "T-BC: TT"));
    let fsm = TbcMachine::new(pair.params.clone());
    let mut r = Runner {
        pair,
        hub,
        local_dir,
        fsm,
        t0: Instant::now(),
        upstream: None,
        announced_class: None,
        gate,
        tr: None,
        tt,
        egp_unsupported_logged: false,
    };
    // T1: Init ends in Free-Run (E1 FREERUN, E2 248).
    if let Some(s) = r.local_settings() {
        r.set_desired(s);
        r.class_line(s.clock_quality.class);
    }
    r.status_line();
    let mut poll = tokio::time::interval(Duration::from_millis(250));
    let mut status = tokio::time::interval(Duration::from_secs(1));
    let mut polls = 0u64;
    loop {
        let transition = tokio::select! {
            _ = stop.changed() => return, // only ever set to true
            l = lines.recv() => match l {
                Ok(line) => r.on_line(&line).await,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "T-BC: lines missed (the machine lagged)");
                    None
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = poll.tick() => {
                polls += 1;
                let now = r.now();
                let t = r.fsm.tick(now);
                if t.is_none() {
                    if r.fsm.state() == TbcState::Locked && r.fsm.source_available() {
                        // Follow the grandmaster's class while Locked (248 is not propagated: it
                        // waits for loss or free-run, as the Go daemon). Only while a TR port is
                        // SLAVE: a restarting TR reports its own data set (class 255) until it
                        // selects the grandmaster again.
                        if let Ok(u) = r.read_upstream().await
                            && u.quality.class != 248
                            && u.quality.class != 255
                            && Some(u) != r.upstream
                        {
                            r.upstream = Some(u);
                            r.set_desired(u.settings());
                            r.class_line(u.quality.class);
                        }
                    } else if let Some(s) = r.local_settings() {
                        r.set_desired(s); // the holdover accuracy follows the estimate
                    }
                    if polls.is_multiple_of(4)
                        && let Some(tt) = r.tt.as_mut()
                    {
                        tt.verify().await;
                    }
                    r.apply().await;
                }
                t
            },
            _ = status.tick() => {
                r.status_line();
                None
            },
        };
        if let Some(t) = transition {
            r.on_transition(t).await;
        }
    }
}
