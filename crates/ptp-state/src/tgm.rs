//! The T-GM decision (linuxptp-daemon `updateGMState`, reference §3.6) as a pure function.

use oran_api::{ClockClass, SyncState};

/// The GNSS component as the daemon reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GnssInput {
    /// LOCKED or FREERUN.
    pub state: SyncState,
    /// Whether the source is lost (the daemon sets it with FREERUN on a bad fix or tAcc).
    pub source_lost: bool,
}

/// The inputs of one decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TgmInputs {
    /// The leading DPLL's state, if a DPLL is monitored.
    pub leading_dpll: Option<SyncState>,
    /// Whether any non-leading DPLL is not LOCKED.
    pub other_dpll_unlocked: bool,
    /// The GNSS component, if known.
    pub gnss: Option<GnssInput>,
    /// The ts2phc state (worst over its interfaces), if known.
    pub ts2phc: Option<SyncState>,
    /// The previous T-GM state.
    pub previous: Option<SyncState>,
}

/// Decides the T-GM state; `None` while there is nothing to decide from.
///
/// * DPLL FREERUN → FREERUN; DPLL HOLDOVER → HOLDOVER.
/// * A non-leading DPLL not LOCKED while the leading one is LOCKED → FREERUN.
/// * DPLL LOCKED or absent: GNSS LOCKED → the ts2phc state; GNSS lost → ts2phc HOLDOVER/FREERUN
///   as is, ts2phc LOCKED keeps the previous state (waiting for the DPLL to enter holdover);
///   GNSS FREERUN without loss → FREERUN; no GNSS information → the ts2phc state.
pub fn decide(i: TgmInputs) -> Option<SyncState> {
    match i.leading_dpll {
        Some(SyncState::Locked) if i.other_dpll_unlocked => return Some(SyncState::Freerun),
        Some(SyncState::Holdover) => return Some(SyncState::Holdover),
        Some(SyncState::Locked) | None => {}
        Some(_) => return Some(SyncState::Freerun),
    }
    match i.gnss {
        Some(g) if g.state == SyncState::Locked => i.ts2phc,
        Some(g) if g.source_lost => match i.ts2phc {
            Some(SyncState::Locked) => i.previous.or(Some(SyncState::Freerun)),
            other => other.or(Some(SyncState::Freerun)),
        },
        Some(_) => Some(SyncState::Freerun),
        None => i.ts2phc,
    }
}

/// The T-GM clock class of a state: LOCKED 6, HOLDOVER 7, else 248.
pub const fn tgm_class(s: SyncState) -> ClockClass {
    match s {
        SyncState::Locked => ClockClass::LOCKED,
        SyncState::Holdover => ClockClass::PRC_UNLOCKED_IN_SPEC,
        _ => ClockClass::DEFAULT,
    }
}

// ---------------------------------------------------------------------------------------------
// The T-GM state machine of the public clock-requirements T-GM spec (§3.2), which this project's
// daemon runs when it is the grandmaster (the decision above is the Go daemon's, kept for the
// lines another daemon writes).

use std::collections::BTreeMap;

use crate::config::Nanos;

/// The four T-GM states, with their announced class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TgmState {
    /// Free-Run, class 248.
    FreeRun,
    /// Locked to GNSS (PRTC), class 6.
    Locked,
    /// Holdover within spec, class 7.
    HoldoverInSpec,
    /// Holdover out of spec, frequency still traceable, class 140.
    HoldoverOutOfSpec,
}

impl TgmState {
    /// The announced clockClass.
    pub const fn class(self) -> u8 {
        match self {
            TgmState::FreeRun => 248,
            TgmState::Locked => 6,
            TgmState::HoldoverInSpec => 7,
            TgmState::HoldoverOutOfSpec => 140,
        }
    }

    /// The Go daemon's `T-GM-STATUS` token (s0 FREERUN, s1 HOLDOVER, s2 LOCKED): lock-state
    /// does not change between In-Spec and Out-Of-Spec (the matrix's T6 has no E1).
    pub const fn status_token(self) -> &'static str {
        match self {
            TgmState::FreeRun => "s0",
            TgmState::Locked => "s2",
            TgmState::HoldoverInSpec | TgmState::HoldoverOutOfSpec => "s1",
        }
    }

    /// The spec's name.
    pub const fn name(self) -> &'static str {
        match self {
            TgmState::FreeRun => "Free-Run",
            TgmState::Locked => "Locked",
            TgmState::HoldoverInSpec => "Holdover-In-Spec",
            TgmState::HoldoverOutOfSpec => "Holdover-Out-Of-Spec",
        }
    }

    /// What the grandmaster announces in this state (clock-requirements §3.2 table).
    /// `utc_offset` is TAI − UTC (from GNSS leap data, else 37); it is valid in every state.
    pub const fn announce(self, utc_offset: i16) -> TgmAnnounce {
        let (accuracy, variance, time_traceable, frequency_traceable, time_source) = match self {
            TgmState::Locked => (0x21, 0x4E5D, true, true, 0x20),
            TgmState::HoldoverInSpec => (0xFE, 0xFFFF, true, true, 0xA0),
            TgmState::HoldoverOutOfSpec => (0xFE, 0xFFFF, false, true, 0xA0),
            TgmState::FreeRun => (0xFE, 0xFFFF, false, false, 0xA0),
        };
        TgmAnnounce {
            class: self.class(),
            accuracy,
            variance,
            time_traceable,
            frequency_traceable,
            time_source,
            current_utc_offset: utc_offset,
            utc_offset_valid: true,
            ptp_timescale: true,
        }
    }
}

/// The announce content of a T-GM state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TgmAnnounce {
    /// clockClass.
    pub class: u8,
    /// clockAccuracy.
    pub accuracy: u8,
    /// offsetScaledLogVariance.
    pub variance: u16,
    /// timeTraceable.
    pub time_traceable: bool,
    /// frequencyTraceable.
    pub frequency_traceable: bool,
    /// timeSource (0x20 GNSS, 0xA0 INTERNAL_OSCILLATOR).
    pub time_source: u8,
    /// currentUtcOffset.
    pub current_utc_offset: i16,
    /// currentUtcOffsetValid (TRUE in every T-GM state, Free-Run included; a T-BC differs).
    pub utc_offset_valid: bool,
    /// ptpTimescale.
    pub ptp_timescale: bool,
}

/// A DPLL's lock status (the kernel's DPLL netlink `lock-status` values as numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DpllState {
    /// Unlocked (free running), 1.
    Freerun,
    /// Locked, 2.
    Locked,
    /// Locked, holdover acquired (LHAQ), 3.
    LockedHoAcq,
    /// Holdover, 4.
    Holdover,
}

impl DpllState {
    /// The netlink code, as the Go daemon's `dpll[...]` lines carry it.
    pub const fn code(self) -> u8 {
        match self {
            DpllState::Freerun => 1,
            DpllState::Locked => 2,
            DpllState::LockedHoAcq => 3,
            DpllState::Holdover => 4,
        }
    }

    /// The state token of a `dpll[...]` line: s2 locked, s1 holdover, s0 free-run.
    pub const fn status_token(self) -> &'static str {
        match self {
            DpllState::Freerun => "s0",
            DpllState::Locked | DpllState::LockedHoAcq => "s2",
            DpllState::Holdover => "s1",
        }
    }

    /// Parses `LOCKED`, `LOCKED_HO_ACQ` (or `LHAQ`), `HOLDOVER`, `FREERUN` (any case).
    pub fn parse(s: &str) -> Option<DpllState> {
        match s.trim().to_ascii_uppercase().as_str() {
            "LOCKED" => Some(DpllState::Locked),
            "LOCKED_HO_ACQ" | "LHAQ" => Some(DpllState::LockedHoAcq),
            "HOLDOVER" => Some(DpllState::Holdover),
            "FREERUN" | "UNLOCKED" => Some(DpllState::Freerun),
            _ => None,
        }
    }
}

/// The PHC synchronisation by ts2phc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhcSync {
    /// Servo locked (s2/s3).
    Locked,
    /// ts2phc in holdover (its `holdover` suffix).
    Holdover,
    /// Not locked (s0/s1, or ts2phc down past its window).
    Unlocked,
}

/// One GNSS report (from gpsd, or an emulation).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GnssReading {
    /// Fix mode: 0 unknown, 1 no fix, 2 2D, 3 3D (gpsd's TPV `mode`).
    pub fix_mode: u8,
    /// The receiver's estimated time error, ns (gpsd's `ept`), when reported.
    pub time_error_ns: Option<f64>,
    /// Spoofing detected.
    pub spoofed: bool,
    /// Jamming detected.
    pub jammed: bool,
}

/// The T-GM parameters (`ptpSettings` keys, the spec's names where it has them).
#[derive(Debug, Clone, PartialEq)]
pub struct TgmParams {
    /// `gnssOffsetThreshold`, ns: the largest GNSS time error for GNSSAvailable.
    pub gnss_offset_threshold_ns: f64,
    /// `gnssTimeout`, ms (ours): no 3D-fix report for this long is a GNSS loss (gpsd sends
    /// nothing at all for some fix losses).
    pub gnss_timeout: Nanos,
    /// `inSyncConditionThreshold`, ns: the largest |offset| of the DPLL and the PHC for AllLocked.
    pub in_sync_threshold_ns: f64,
    /// `inSyncConditionTimes`: AllLocked for this many PHC samples in a row.
    pub in_sync_times: u32,
    /// `MaxInSpecOffset`, ns.
    pub max_in_spec_offset_ns: f64,
    /// `LocalMaxHoldoverOffSet`, ns.
    pub local_max_holdover_offset_ns: f64,
    /// `LocalHoldoverTimeout`: In-Spec holdover lasts at most this long.
    pub local_holdover_timeout: Nanos,
    /// `holdoverSlope`, ps/s: the holdover model's drift (default LocalMaxHoldoverOffSet /
    /// LocalHoldoverTimeout).
    pub holdover_slope_ps_per_s: f64,
    /// `dpllTimeout`, ms (ours): a DPLL unheard of for this long is FREERUN.
    pub dpll_timeout: Nanos,
}

impl Default for TgmParams {
    /// The Go daemon's holdover defaults (1500 ns, 14400 s), GNSS error up to 100 ns (its
    /// default threshold), AllLocked at 100 ns once, GNSS silent 1.5 s, DPLL silent 5 s.
    fn default() -> Self {
        TgmParams {
            gnss_offset_threshold_ns: 100.0,
            gnss_timeout: 1_500_000_000,
            in_sync_threshold_ns: 100.0,
            in_sync_times: 1,
            max_in_spec_offset_ns: 1500.0,
            local_max_holdover_offset_ns: 1500.0,
            local_holdover_timeout: 14_400 * 1_000_000_000,
            holdover_slope_ps_per_s: 1500.0 * 1000.0 / 14_400.0,
            dpll_timeout: 5_000_000_000,
        }
    }
}

impl TgmParams {
    /// From a T-GM profile's `ptpSettings` (absent keys keep the defaults). Errors name the key.
    pub fn from_settings(s: &BTreeMap<String, String>) -> Result<TgmParams, String> {
        let mut p = TgmParams::default();
        let num = |k: &str| -> Result<Option<f64>, String> {
            match s.get(k) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x > 0.0)
                    .map(Some)
                    .ok_or_else(|| format!("ptpSettings.{k}: {v:?} is not a positive number")),
            }
        };
        if let Some(v) = num("gnssOffsetThreshold")? {
            p.gnss_offset_threshold_ns = v;
        }
        if let Some(v) = num("gnssTimeout")? {
            p.gnss_timeout = (v * 1e6) as Nanos;
        }
        if let Some(v) = num("dpllTimeout")? {
            p.dpll_timeout = (v * 1e6) as Nanos;
        }
        if let Some(v) = num("inSyncConditionThreshold")? {
            p.in_sync_threshold_ns = v;
        }
        if let Some(v) = num("inSyncConditionTimes")? {
            p.in_sync_times = v as u32;
        }
        if let Some(v) = num("MaxInSpecOffset")? {
            p.max_in_spec_offset_ns = v;
        }
        if let Some(v) = num("LocalMaxHoldoverOffSet")? {
            p.local_max_holdover_offset_ns = v;
        }
        if let Some(v) = num("LocalHoldoverTimeout")? {
            p.local_holdover_timeout = (v * 1e9) as Nanos;
            if p.local_holdover_timeout == 0 {
                return Err(format!(
                    "ptpSettings.LocalHoldoverTimeout: {v} s is too short (at least 1 ns)"
                ));
            }
        }
        p.holdover_slope_ps_per_s = match num("holdoverSlope")? {
            Some(v) => v,
            None => {
                p.local_max_holdover_offset_ns * 1000.0 / (p.local_holdover_timeout as f64 / 1e9)
            }
        };
        if p.max_in_spec_offset_ns > p.local_max_holdover_offset_ns {
            return Err(format!(
                "ptpSettings.MaxInSpecOffset ({}) is above LocalMaxHoldoverOffSet ({})",
                p.max_in_spec_offset_ns, p.local_max_holdover_offset_ns
            ));
        }
        Ok(p)
    }
}

/// One T-GM transition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TgmTransition {
    /// The spec's id, T1 … T9.
    pub id: &'static str,
    /// From.
    pub from: TgmState,
    /// To.
    pub to: TgmState,
    /// When.
    pub at: Nanos,
}

/// The T-GM machine (clock-requirements §3.2), sans-IO: fed GNSS reports, DPLL states, the
/// ts2phc PHC sync and process faults with `now`, it answers with transitions; the daemon
/// executes them (the announce through the management protocol, the status lines).
///
/// * **GNSSAvailable**: a report within `gnssTimeout`, fix 3D, no spoofing or jamming, time
///   error ≤ `gnssOffsetThreshold`. GNSSLost otherwise.
/// * **AllLocked**: GNSSAvailable, the DPLL LOCKED or LHAQ with |phase offset| ≤
///   `inSyncConditionThreshold` (no DPLL configured: that part holds), the PHC locked with
///   |offset| ≤ the threshold, no fault: for `inSyncConditionTimes` PHC samples in a row.
/// * **HoldoverDataValid**: the DPLL in HOLDOVER or LHAQ.
/// * **NonGNSSFault**: a process fault, or the PHC not locked while the DPLL is LOCKED/LHAQ.
/// * The holdover offset is the larger of the DPLL's |phase offset| and the model
///   T₀ + S·t (T₀ the |PHC offset| at entry, S `holdoverSlope`).
///
/// T1 Init → Free-Run; T2/T5/T8 → Locked on AllLocked; T3 Locked → Holdover-In-Spec on
/// GNSSLost ∧ HoldoverDataValid (the holdover timer starts); T4 Locked → Free-Run on
/// NonGNSSFault, or on GNSSLost with a DPLL that is free-running or absent (no holdover is
/// possible); T6 In-Spec → Out-Of-Spec on GNSSLost ∧ (offset > MaxInSpecOffset or holdover
/// longer than LocalHoldoverTimeout); T7/T9 → Free-Run when the offset passes
/// LocalMaxHoldoverOffSet, the DPLL free-runs, or a fault (T6 counts the holdover whatever
/// GNSS does: the spec's "∧ GNSSLost" would keep class 7 past the timeout while GNSS is back but
/// the clock is not yet AllLocked). GNSS lost while the DPLL still says
/// LOCKED keeps Locked until the DPLL notices (the spec's "a GNSS loss alone does not give
/// FREERUN").
#[derive(Debug, Clone)]
pub struct TgmMachine {
    p: TgmParams,
    has_dpll: bool,
    state: TgmState,
    gnss: Option<(GnssReading, Nanos)>,
    dpll: Option<(DpllState, f64, Nanos)>,
    phc: Option<(PhcSync, f64)>,
    fault: bool,
    in_sync_run: u32,
    holdover: Option<(Nanos, f64)>,
}

impl TgmMachine {
    /// A machine after T1 (Init → Free-Run). `has_dpll`: whether a DPLL is monitored.
    pub fn new(p: TgmParams, has_dpll: bool) -> TgmMachine {
        TgmMachine {
            p,
            has_dpll,
            state: TgmState::FreeRun,
            gnss: None,
            dpll: None,
            phc: None,
            fault: false,
            in_sync_run: 0,
            holdover: None,
        }
    }

    /// The state.
    pub fn state(&self) -> TgmState {
        self.state
    }

    /// The parameters.
    pub fn params(&self) -> &TgmParams {
        &self.p
    }

    /// GNSSAvailable at `now`.
    pub fn gnss_available(&self, now: Nanos) -> bool {
        self.gnss.is_some_and(|(g, at)| {
            now.saturating_sub(at) <= self.p.gnss_timeout
                && g.fix_mode >= 3
                && !g.spoofed
                && !g.jammed
                && g.time_error_ns
                    .is_none_or(|e| e.abs() <= self.p.gnss_offset_threshold_ns)
        })
    }

    /// The last GNSS report, if any.
    pub fn gnss_reading(&self) -> Option<GnssReading> {
        self.gnss.map(|(g, _)| g)
    }

    /// The DPLL state as the machine takes it at `now` (unheard of past `dpllTimeout`:
    /// FREERUN); `None` without a DPLL.
    pub fn dpll_state(&self, now: Nanos) -> Option<DpllState> {
        if !self.has_dpll {
            return None;
        }
        Some(match self.dpll {
            Some((s, _, at)) if now.saturating_sub(at) <= self.p.dpll_timeout => s,
            _ => DpllState::Freerun,
        })
    }

    /// The PHC sync as last reported.
    pub fn phc(&self) -> Option<(PhcSync, f64)> {
        self.phc
    }

    /// The holdover offset estimate at `now` (ns), in holdover.
    pub fn estimate_ns(&self, now: Nanos) -> Option<f64> {
        let (since, t0) = self.holdover?;
        let model =
            t0 + self.p.holdover_slope_ps_per_s / 1000.0 * (now.saturating_sub(since) as f64 / 1e9);
        let dpll = self.dpll.map_or(0.0, |(_, o, _)| o.abs());
        Some(model.max(dpll))
    }

    /// A GNSS report.
    pub fn gnss(&mut self, r: GnssReading, now: Nanos) -> Option<TgmTransition> {
        self.gnss = Some((r, now));
        self.evaluate(now, false)
    }

    /// A DPLL state and phase offset (ns).
    pub fn dpll(
        &mut self,
        s: DpllState,
        phase_offset_ns: f64,
        now: Nanos,
    ) -> Option<TgmTransition> {
        self.dpll = Some((s, phase_offset_ns, now));
        self.evaluate(now, false)
    }

    /// A ts2phc sample: the PHC sync and its offset (ns). It is the AllLocked filter's clock.
    pub fn phc_sample(&mut self, s: PhcSync, offset_ns: f64, now: Nanos) -> Option<TgmTransition> {
        self.phc = Some((s, offset_ns));
        self.evaluate(now, true)
    }

    /// A process fault (a crash past its window) set or cleared: NonGNSSFault.
    pub fn fault(&mut self, on: bool, now: Nanos) -> Option<TgmTransition> {
        self.fault = on;
        self.evaluate(now, false)
    }

    /// Time passing (GNSS silence, holdover timers): call at least once a second.
    pub fn tick(&mut self, now: Nanos) -> Option<TgmTransition> {
        self.evaluate(now, false)
    }

    fn all_locked_now(&self, now: Nanos) -> bool {
        let thr = self.p.in_sync_threshold_ns;
        let dpll_ok = match (self.has_dpll, self.dpll_state(now)) {
            (false, _) => true,
            (true, Some(DpllState::Locked | DpllState::LockedHoAcq)) => {
                self.dpll.is_some_and(|(_, o, _)| o.abs() <= thr)
            }
            _ => false,
        };
        let phc_ok = self
            .phc
            .is_some_and(|(s, o)| s == PhcSync::Locked && o.abs() <= thr);
        self.gnss_available(now) && dpll_ok && phc_ok && !self.fault
    }

    fn go(&mut self, id: &'static str, to: TgmState, now: Nanos) -> TgmTransition {
        let from = self.state;
        self.state = to;
        match to {
            TgmState::HoldoverInSpec => {
                let t0 = self.phc.map_or(0.0, |(_, o)| o.abs());
                self.holdover = Some((now, t0));
            }
            TgmState::HoldoverOutOfSpec => {}
            TgmState::Locked | TgmState::FreeRun => self.holdover = None,
        }
        if to != TgmState::Locked {
            self.in_sync_run = 0;
        }
        TgmTransition {
            id,
            from,
            to,
            at: now,
        }
    }

    fn evaluate(&mut self, now: Nanos, phc_sample: bool) -> Option<TgmTransition> {
        let all_locked = self.all_locked_now(now);
        if !all_locked {
            self.in_sync_run = 0;
        } else if phc_sample {
            self.in_sync_run = self.in_sync_run.saturating_add(1);
        }
        let qualified = all_locked && self.in_sync_run >= self.p.in_sync_times.max(1);
        let lost = !self.gnss_available(now);
        let dpll = self.dpll_state(now);
        let dpll_locked = matches!(dpll, Some(DpllState::Locked | DpllState::LockedHoAcq));
        let hdv = matches!(dpll, Some(DpllState::Holdover | DpllState::LockedHoAcq));
        let dpll_free = dpll == Some(DpllState::Freerun);
        let phc_unlocked = self.phc.is_some_and(|(s, _)| s == PhcSync::Unlocked);
        let fault = self.fault || (phc_unlocked && (dpll_locked || !self.has_dpll));
        let over = |limit: f64| self.estimate_ns(now).is_some_and(|e| e > limit);
        match self.state {
            TgmState::FreeRun if qualified => Some(self.go("T2", TgmState::Locked, now)),
            TgmState::Locked => {
                if fault || (!lost && dpll_free) {
                    Some(self.go("T4", TgmState::FreeRun, now))
                } else if lost && hdv {
                    Some(self.go("T3", TgmState::HoldoverInSpec, now))
                } else if lost && (dpll_free || !self.has_dpll) {
                    Some(self.go("T4", TgmState::FreeRun, now))
                } else {
                    None
                }
            }
            TgmState::HoldoverInSpec | TgmState::HoldoverOutOfSpec if qualified => {
                let id = if self.state == TgmState::HoldoverInSpec {
                    "T5"
                } else {
                    "T8"
                };
                Some(self.go(id, TgmState::Locked, now))
            }
            TgmState::HoldoverInSpec => {
                if over(self.p.local_max_holdover_offset_ns) || dpll_free || self.fault {
                    Some(self.go("T7", TgmState::FreeRun, now))
                } else if over(self.p.max_in_spec_offset_ns)
                    || self.holdover.is_some_and(|(since, _)| {
                        now.saturating_sub(since) > self.p.local_holdover_timeout
                    })
                {
                    // Regardless of GNSS (the spec writes "∧ GNSSLost"): GNSS back but not yet
                    // AllLocked is still holdover, and its budget keeps counting; otherwise class
                    // 7 (time-traceable) would be announced past LocalHoldoverTimeout.
                    Some(self.go("T6", TgmState::HoldoverOutOfSpec, now))
                } else {
                    None
                }
            }
            TgmState::HoldoverOutOfSpec => {
                if over(self.p.local_max_holdover_offset_ns) || dpll_free || self.fault {
                    Some(self.go("T9", TgmState::FreeRun, now))
                } else {
                    None
                }
            }
            TgmState::FreeRun => None,
        }
    }
}

/// The Go daemon's T-GM status line: `GM[<unix>]:[<ts2phc config>] <iface> T-GM-STATUS <sN>`.
pub fn tgm_status_line(unix: u64, config: &str, iface: &str, state: TgmState) -> String {
    format!(
        "GM[{unix}]:[{config}] {iface} T-GM-STATUS {}",
        state.status_token()
    )
}

/// The Go daemon's GNSS line: `gnss[<unix>]:[<config>] <iface> gnss_status <fix> offset <ns> <sN>`
/// (`s2` when GNSSAvailable, else `s0`).
pub fn gnss_line(
    unix: u64,
    config: &str,
    iface: &str,
    fix: u8,
    offset_ns: i64,
    available: bool,
) -> String {
    let token = if available { "s2" } else { "s0" };
    format!("gnss[{unix}]:[{config}] {iface} gnss_status {fix} offset {offset_ns} {token}")
}

/// The Go daemon's DPLL line (keys sorted, as `formatPTPLogData` writes them).
pub fn dpll_line(
    unix: u64,
    config: &str,
    iface: &str,
    s: DpllState,
    phase_offset_ns: i64,
) -> String {
    let pps = u8::from(s != DpllState::Freerun);
    format!(
        "dpll[{unix}]:[{config}] {iface} frequency_status {c} offset {phase_offset_ns} phase_status {c} pps_status {pps} {}",
        s.status_token(),
        c = s.code()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use SyncState::{Freerun as F, Holdover as H, Locked as L};

    fn g(state: SyncState, lost: bool) -> Option<GnssInput> {
        Some(GnssInput {
            state,
            source_lost: lost,
        })
    }

    #[test]
    fn section_3_6_table() {
        type S = Option<SyncState>;
        type Case = (S, bool, Option<GnssInput>, S, S, S);
        // (dpll, other dpll unlocked, gnss, ts2phc, previous) -> expected
        let cases: &[Case] = &[
            (Some(F), false, g(L, false), Some(L), Some(L), Some(F)),
            (Some(H), false, g(L, false), Some(L), Some(L), Some(H)),
            (Some(L), true, g(L, false), Some(L), Some(L), Some(F)),
            (Some(L), false, g(L, false), Some(L), None, Some(L)),
            (None, false, g(L, false), Some(L), None, Some(L)),
            (Some(L), false, g(L, false), Some(H), Some(L), Some(H)),
            (Some(L), false, g(L, false), Some(F), Some(L), Some(F)),
            (Some(L), false, g(F, true), Some(H), Some(L), Some(H)),
            (Some(L), false, g(F, true), Some(F), Some(L), Some(F)),
            (Some(L), false, g(F, true), Some(L), Some(L), Some(L)),
            (Some(L), false, g(F, true), Some(L), Some(H), Some(H)),
            (Some(L), false, g(F, false), Some(L), Some(L), Some(F)),
            (None, false, None, Some(L), None, Some(L)),
            (None, false, None, None, None, None),
        ];
        for (n, &(d, o, gn, ts, prev, want)) in cases.iter().enumerate() {
            let got = decide(TgmInputs {
                leading_dpll: d,
                other_dpll_unlocked: o,
                gnss: gn,
                ts2phc: ts,
                previous: prev,
            });
            assert_eq!(got, want, "case {n}");
        }
        assert_eq!(tgm_class(L).0, 6);
        assert_eq!(tgm_class(H).0, 7);
        assert_eq!(tgm_class(F).0, 248);
    }

    const S: Nanos = 1_000_000_000;

    fn fix3() -> GnssReading {
        GnssReading {
            fix_mode: 3,
            time_error_ns: Some(20.0),
            ..GnssReading::default()
        }
    }

    fn params() -> TgmParams {
        TgmParams {
            in_sync_times: 3,
            max_in_spec_offset_ns: 1000.0,
            local_max_holdover_offset_ns: 1500.0,
            local_holdover_timeout: 10 * S,
            holdover_slope_ps_per_s: 100_000.0, // 100 ns/s
            ..TgmParams::default()
        }
    }

    /// Feeds one second of healthy sources ending at `t` (GNSS, DPLL `d`, PHC locked at 10 ns).
    fn second(m: &mut TgmMachine, t: Nanos, d: DpllState) -> Vec<TgmTransition> {
        [
            m.gnss(fix3(), t),
            m.dpll(d, 5.0, t),
            m.phc_sample(PhcSync::Locked, 10.0, t),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// A machine with `p` that has been Locked (three locked seconds, DPLL LOCKED).
    fn locked(p: TgmParams, has_dpll: bool) -> TgmMachine {
        let mut m = TgmMachine::new(p, has_dpll);
        for t in 1..=3 {
            second(&mut m, t * S, DpllState::Locked);
        }
        assert_eq!(m.state(), TgmState::Locked);
        m
    }

    /// A no-fix report.
    fn no_fix() -> GnssReading {
        GnssReading {
            fix_mode: 1,
            ..fix3()
        }
    }

    fn ids(ts: &[TgmTransition]) -> Vec<&'static str> {
        ts.iter().map(|t| t.id).collect()
    }

    #[test]
    fn announce_table_of_every_state() {
        let l = TgmState::Locked.announce(37);
        assert_eq!(
            (l.class, l.accuracy, l.variance, l.time_source),
            (6, 0x21, 0x4E5D, 0x20)
        );
        assert!(l.time_traceable && l.frequency_traceable && l.utc_offset_valid);
        let h = TgmState::HoldoverInSpec.announce(37);
        assert_eq!(
            (h.class, h.accuracy, h.variance, h.time_source),
            (7, 0xFE, 0xFFFF, 0xA0)
        );
        assert!(h.time_traceable && h.frequency_traceable);
        let o = TgmState::HoldoverOutOfSpec.announce(37);
        assert_eq!(o.class, 140);
        assert!(!o.time_traceable && o.frequency_traceable);
        let f = TgmState::FreeRun.announce(18);
        assert_eq!((f.class, f.current_utc_offset), (248, 18));
        assert!(!f.time_traceable && !f.frequency_traceable);
        // currentUtcOffsetValid is TRUE in every T-GM state, Free-Run included.
        assert!(f.utc_offset_valid && f.ptp_timescale);
    }

    /// The whole walk: T1 Free-Run, T2 Locked after inSyncConditionTimes, T3 on GNSS loss with
    /// the DPLL in holdover, T6 when the model passes MaxInSpecOffset, T9 past
    /// LocalMaxHoldoverOffSet, T2 again when everything is locked.
    #[test]
    fn walk_6_7_140_248_6() {
        let mut m = TgmMachine::new(params(), true);
        assert_eq!(m.state(), TgmState::FreeRun, "T1");
        let mut seen = Vec::new();
        for t in 1..=2 {
            seen.extend(second(&mut m, t * S, DpllState::LockedHoAcq));
        }
        assert!(
            seen.is_empty(),
            "two samples are not inSyncConditionTimes (3)"
        );
        seen.extend(second(&mut m, 3 * S, DpllState::LockedHoAcq));
        assert_eq!(ids(&seen), ["T2"]);
        assert_eq!(m.state().class(), 6);
        // GNSS silent: lost after gnssTimeout (1.5 s); the DPLL still LHAQ = holdover data valid.
        assert_eq!(m.tick(4 * S), None);
        let t3 = m.tick(4 * S + 600_000_000).expect("T3 once GNSS is silent");
        assert_eq!((t3.id, t3.to.class()), ("T3", 7));
        m.dpll(DpllState::Holdover, 5.0, 5 * S);
        // T0 = 10 ns, 100 ns/s: 1000 ns (MaxInSpecOffset) after 9.9 s of holdover.
        let entry = t3.at;
        assert_eq!(m.dpll(DpllState::Holdover, 5.0, entry + 4 * S), None);
        assert_eq!(m.dpll(DpllState::Holdover, 5.0, entry + 9 * S), None);
        let t6 = m.tick(entry + 10 * S).expect("T6");
        assert_eq!((t6.id, t6.to.class()), ("T6", 140));
        assert_eq!(m.dpll(DpllState::Holdover, 5.0, entry + 14 * S), None);
        let t9 = m
            .dpll(DpllState::Holdover, 5.0, entry + 15 * S)
            .expect("T9 past 1500 ns");
        assert_eq!((t9.id, t9.to.class()), ("T9", 248));
        // Back: three locked seconds.
        let back: Vec<_> = (16..=18)
            .flat_map(|t| second(&mut m, entry + t * S, DpllState::Locked))
            .collect();
        assert_eq!(ids(&back), ["T2"]);
    }

    #[test]
    fn holdover_timer_gives_t6_and_restored_gnss_gives_t5() {
        let mut p = params();
        p.holdover_slope_ps_per_s = 1.0; // the model stays low: only the timer acts
        let mut m = locked(p, true);
        assert_eq!(m.state(), TgmState::Locked);
        // An explicit loss (fix 1) with the DPLL in holdover.
        m.dpll(DpllState::Holdover, 0.0, 4 * S);
        let t3 = m
            .gnss(
                GnssReading {
                    fix_mode: 1,
                    ..fix3()
                },
                4 * S,
            )
            .expect("T3 at once on a no-fix report");
        assert_eq!(t3.id, "T3");
        m.dpll(DpllState::Holdover, 0.0, 14 * S);
        let t6 = m.tick(14 * S + 1).expect("LocalHoldoverTimeout (10 s)");
        assert_eq!(t6.id, "T6");
        // GNSS back, the DPLL relocks: T8 after three samples.
        let back: Vec<_> = (15..=17)
            .flat_map(|t| second(&mut m, t * S, DpllState::LockedHoAcq))
            .collect();
        assert_eq!(ids(&back), ["T8"]);
        // And T5 from In-Spec.
        m.dpll(DpllState::Holdover, 0.0, 18 * S);
        assert_eq!(
            m.gnss(
                GnssReading {
                    fix_mode: 2,
                    ..fix3()
                },
                18 * S
            )
            .map(|t| t.id),
            Some("T3")
        );
        let back: Vec<_> = (19..=21)
            .flat_map(|t| second(&mut m, t * S, DpllState::Locked))
            .collect();
        assert_eq!(ids(&back), ["T5"]);
    }

    /// GNSS back but the DPLL does not relock: still holdover, and the timer still counts (the
    /// spec's "∧ GNSSLost" on T6 would announce 7 forever here).
    #[test]
    fn the_holdover_timer_counts_while_gnss_is_back_but_not_all_locked() {
        let mut p = params();
        p.holdover_slope_ps_per_s = 1.0;
        let mut m = locked(p, true);
        m.dpll(DpllState::Holdover, 0.0, 4 * S);
        assert_eq!(m.gnss(no_fix(), 4 * S).map(|t| t.id), Some("T3"));
        // GNSS is back at once; the DPLL stays in HOLDOVER (not AllLocked).
        for t in 5..=13 {
            assert_eq!(m.gnss(fix3(), t * S), None, "at {t} s");
            m.dpll(DpllState::Holdover, 0.0, t * S);
        }
        assert_eq!(m.gnss(fix3(), 14 * S + 1).map(|t| t.id), Some("T6"));
        assert_eq!(m.state().class(), 140);
    }

    #[test]
    fn gnss_lost_without_holdover_data_and_non_gnss_faults_give_t4() {
        // GNSS lost while the DPLL still says LOCKED: Locked is kept (waiting for the DPLL).
        let mut m = locked(params(), true);
        assert_eq!(m.gnss(no_fix(), 4 * S), None);
        assert_eq!(m.state(), TgmState::Locked);
        // The DPLL free-runs: nothing to hold over with.
        assert_eq!(
            m.dpll(DpllState::Freerun, 0.0, 4 * S).map(|t| t.id),
            Some("T4")
        );

        // The PHC unlocked while the DPLL is locked: NonGNSSFault, GNSS unchanged.
        let mut m = locked(params(), true);
        let t4 = m.phc_sample(PhcSync::Unlocked, 10.0, 4 * S).expect("T4");
        assert_eq!((t4.id, t4.to), ("T4", TgmState::FreeRun));
        assert!(m.gnss_available(4 * S));

        // A process fault.
        let mut m = locked(params(), true);
        assert_eq!(m.fault(true, 4 * S).map(|t| t.id), Some("T4"));
        assert_eq!(m.tick(5 * S), None);

        // No DPLL at all: a GNSS loss is Free-Run at once.
        let mut m = TgmMachine::new(params(), false);
        for t in 1..=3 {
            m.gnss(fix3(), t * S);
            m.phc_sample(PhcSync::Locked, 10.0, t * S);
        }
        assert_eq!(m.state(), TgmState::Locked);
        assert_eq!(m.tick(5 * S).map(|t| t.id), Some("T4"));
    }

    #[test]
    fn gnss_available_needs_a_fresh_clean_3d_fix_within_the_error_threshold() {
        let m0 = TgmMachine::new(params(), true);
        assert!(!m0.gnss_available(0), "no report yet");
        let cases = [
            (fix3(), true),
            (
                GnssReading {
                    fix_mode: 2,
                    ..fix3()
                },
                false,
            ),
            (
                GnssReading {
                    spoofed: true,
                    ..fix3()
                },
                false,
            ),
            (
                GnssReading {
                    jammed: true,
                    ..fix3()
                },
                false,
            ),
            (
                GnssReading {
                    time_error_ns: Some(5_000_000.0),
                    ..fix3()
                },
                false,
            ),
            (
                GnssReading {
                    time_error_ns: None,
                    ..fix3()
                },
                true,
            ),
        ];
        for (r, want) in cases {
            let mut m = TgmMachine::new(params(), true);
            m.gnss(r, S);
            assert_eq!(m.gnss_available(S), want, "{r:?}");
            assert!(
                !m.gnss_available(S + 1_600_000_000),
                "silence past gnssTimeout"
            );
        }
        // A DPLL unheard of past dpllTimeout is FREERUN.
        let mut m = TgmMachine::new(params(), true);
        m.dpll(DpllState::Locked, 0.0, S);
        assert_eq!(m.dpll_state(2 * S), Some(DpllState::Locked));
        assert_eq!(m.dpll_state(7 * S), Some(DpllState::Freerun));
    }

    #[test]
    fn settings_keys_and_lines() {
        let s: BTreeMap<String, String> = [
            ("gnssOffsetThreshold", "10000000"),
            ("gnssTimeout", "1000"),
            ("LocalHoldoverTimeout", "6"),
            ("MaxInSpecOffset", "600"),
            ("LocalMaxHoldoverOffSet", "900"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let p = TgmParams::from_settings(&s).unwrap();
        assert_eq!(p.gnss_timeout, S);
        assert_eq!(p.local_holdover_timeout, 6 * S);
        assert_eq!(p.holdover_slope_ps_per_s, 150_000.0);
        let mut bad = s.clone();
        bad.insert("MaxInSpecOffset".into(), "2000".into());
        assert!(
            TgmParams::from_settings(&bad)
                .unwrap_err()
                .contains("MaxInSpecOffset")
        );
        bad.insert("gnssTimeout".into(), "soon".into());
        assert!(
            TgmParams::from_settings(&bad)
                .unwrap_err()
                .contains("gnssTimeout")
        );
        // The lines parse back as the Go daemon's.
        let l = tgm_status_line(5, "ts2phc.0.config", "ens1f0", TgmState::HoldoverOutOfSpec);
        assert_eq!(l, "GM[5]:[ts2phc.0.config] ens1f0 T-GM-STATUS s1");
        assert!(matches!(
            crate::parse_line(&l),
            crate::ParsedLine::GmStatus { state: H, .. }
        ));
        let l = gnss_line(5, "ts2phc.0.config", "ens1f0", 3, 20, true);
        assert!(matches!(
            crate::parse_line(&l),
            crate::ParsedLine::Gnss {
                gnss_status: 3,
                offset: 20,
                state: L,
                ..
            }
        ));
        let l = dpll_line(5, "ts2phc.0.config", "ens1f0", DpllState::Holdover, 7);
        assert_eq!(
            l,
            "dpll[5]:[ts2phc.0.config] ens1f0 frequency_status 4 offset 7 phase_status 4 pps_status 1 s1"
        );
        assert!(matches!(
            crate::parse_line(&l),
            crate::ParsedLine::Dpll {
                phase_status: 4,
                state: H,
                ..
            }
        ));
    }
}
