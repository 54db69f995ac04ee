//! The telecom boundary clock (T-BC) state machine of the public clock-requirements T-BC spec
//! (§6): Free-Run (248) → Locked (the grandmaster's class) → Holdover-In-Spec (135) →
//! Holdover-Out-Of-Spec (165) → Free-Run. Sans-IO: it is fed the time-receiver (TR) ptp4l's
//! port roles and offset samples with `now`, and answers with transitions and the announce
//! content the time-transmitter (TT) ptp4l must carry; the daemon executes them (management
//! SETs, status lines).
//!
//! Without a DPLL (this is a software T-BC; the spec does not cover one, clock-requirements
//! §2.2) the choices are, each configurable:
//! * **InSync** = a TR port SLAVE, servo `s2`/`s3`, and the mean |offset| of the last
//!   `in_sync_window` samples (64, as the Go daemon's TR filter) at most
//!   `in_sync_threshold_ns`, for `in_sync_times` samples in a row ("all DPLLs in LHAQ" is
//!   vacuous: there is none).
//! * **HoldoverCapable** (the spec's open FFO criterion): the servo's frequency, over the last
//!   `ffo_samples` locked samples, spread (max − min) no more than `ffo_max_spread_ppb`: a clock
//!   whose frequency estimate is stable can be trusted to hold. [`HoldoverCapable::Always`] and
//!   [`HoldoverCapable::Never`] override it.
//! * **Holdover model**: the 4-hour module of §6.8, ΔT(t) = T₀ + S·t with T₀ the mean |offset|
//!   at entry and S = `holdover_slope_ps_per_s` (default LocalMaxHoldoverOffSet /
//!   LocalHoldoverTimeout = 1500 ns / 14400 s ≈ 104 ps/s). In-Spec → Out-Of-Spec when ΔT >
//!   MaxInSpecOffset; → Free-Run when ΔT > LocalMaxHoldoverOffSet or after
//!   LocalHoldoverTimeout.
//! * Locked → Free-Run directly (T4) when the source is lost and the clock is not holdover
//!   capable, or when the mean |offset| exceeds LocalMaxHoldoverOffSet.

use std::collections::{BTreeMap, VecDeque};

use crate::config::Nanos;

/// The four states (G.8275 modes, unassisted holdover).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TbcState {
    /// Free-Run, class 248.
    FreeRun,
    /// Locked to the upstream grandmaster, its class forwarded.
    Locked,
    /// Holdover within MaxInSpecOffset, class 135.
    HoldoverInSpec,
    /// Holdover beyond MaxInSpecOffset, class 165.
    HoldoverOutOfSpec,
}

impl TbcState {
    /// The class the TT announces (`None` for Locked: the grandmaster's).
    pub fn local_class(self) -> Option<u8> {
        match self {
            TbcState::FreeRun => Some(248),
            TbcState::Locked => None,
            TbcState::HoldoverInSpec => Some(135),
            TbcState::HoldoverOutOfSpec => Some(165),
        }
    }

    /// The Go daemon's `T-BC-STATUS` token: `s0` FREERUN, `s1` HOLDOVER, `s2` LOCKED (so a
    /// producer's lock-state does not change between In-Spec and Out-Of-Spec: FUNC-TBC010 R6).
    pub fn status_token(self) -> &'static str {
        match self {
            TbcState::FreeRun => "s0",
            TbcState::Locked => "s2",
            TbcState::HoldoverInSpec | TbcState::HoldoverOutOfSpec => "s1",
        }
    }

    /// The spec's name.
    pub fn name(self) -> &'static str {
        match self {
            TbcState::FreeRun => "Free-Run",
            TbcState::Locked => "Locked",
            TbcState::HoldoverInSpec => "Holdover-In-Spec",
            TbcState::HoldoverOutOfSpec => "Holdover-Out-Of-Spec",
        }
    }
}

/// How HoldoverCapable is decided.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HoldoverCapable {
    /// Always capable (a lost source always gives holdover).
    Always,
    /// Never (a lost source gives Free-Run: T4).
    Never,
    /// Capable when the servo frequency of the last `samples` locked samples spreads no more
    /// than `max_spread_ppb`.
    FrequencyStability {
        /// The window.
        samples: usize,
        /// max − min of the frequency, ppb.
        max_spread_ppb: f64,
    },
}

/// The parameters (ptpSettings names in brackets, as the spec gives them).
#[derive(Debug, Clone, PartialEq)]
pub struct TbcParams {
    /// `inSyncConditionThreshold`, ns.
    pub in_sync_threshold_ns: f64,
    /// `inSyncConditionTimes`.
    pub in_sync_times: u32,
    /// Offsets averaged for InSync (`inSyncConditionWindow`, our name; Go hard-codes 64).
    pub in_sync_window: usize,
    /// `MaxInSpecOffset`, ns.
    pub max_in_spec_offset_ns: f64,
    /// `LocalMaxHoldoverOffSet`, ns.
    pub local_max_holdover_offset_ns: f64,
    /// `LocalHoldoverTimeout`.
    pub local_holdover_timeout: Nanos,
    /// `holdoverSlope` (ps/s): the model's S.
    pub holdover_slope_ps_per_s: f64,
    /// `holdoverCapable` (`always`, `never`, or the frequency-stability rule).
    pub holdover_capable: HoldoverCapable,
    /// `processDowntimeThresholds.ptp4l` (s, 0–86400, default 5): a TR ptp4l that exits and is
    /// SLAVE again within this window changes nothing (no transition, no event); past it, its
    /// ports count as lost (the holdover starts then).
    pub tr_downtime: Nanos,
}

impl Default for TbcParams {
    /// The Go daemon's defaults: MaxInSpecOffset = LocalMaxHoldoverOffSet = 1500 ns,
    /// LocalHoldoverTimeout 14400 s, in-sync 100 ns once over 64 samples; slope 1500/14400.
    fn default() -> Self {
        TbcParams {
            in_sync_threshold_ns: 100.0,
            in_sync_times: 1,
            in_sync_window: 64,
            max_in_spec_offset_ns: 1500.0,
            local_max_holdover_offset_ns: 1500.0,
            local_holdover_timeout: 14_400 * 1_000_000_000,
            holdover_slope_ps_per_s: 1500.0 * 1000.0 / 14_400.0,
            holdover_capable: HoldoverCapable::FrequencyStability {
                samples: 16,
                max_spread_ppb: 1000.0,
            },
            tr_downtime: 5 * 1_000_000_000,
        }
    }
}

impl TbcParams {
    /// The parameters from a profile's `ptpSettings` (absent keys keep the defaults; the slope
    /// defaults to LocalMaxHoldoverOffSet / LocalHoldoverTimeout). Errors name the key.
    pub fn from_settings(s: &BTreeMap<String, String>) -> Result<TbcParams, String> {
        let mut p = TbcParams::default();
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
        if let Some(v) = num("inSyncConditionThreshold")? {
            p.in_sync_threshold_ns = v;
        }
        if let Some(v) = num("inSyncConditionTimes")? {
            p.in_sync_times = v as u32;
        }
        if let Some(v) = num("inSyncConditionWindow")? {
            p.in_sync_window = v as usize;
        }
        if let Some(v) = num("MaxInSpecOffset")? {
            p.max_in_spec_offset_ns = v;
        }
        if let Some(v) = num("LocalMaxHoldoverOffSet")? {
            p.local_max_holdover_offset_ns = v;
        }
        if let Some(v) = num("LocalHoldoverTimeout")? {
            p.local_holdover_timeout = (v * 1e9) as Nanos;
        }
        if let Some(v) = s.get("processDowntimeThresholds.ptp4l") {
            let secs = v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|x| *x <= 86_400)
                .ok_or_else(|| {
                    format!("ptpSettings.processDowntimeThresholds.ptp4l: {v:?} (expected whole seconds, 0 to 86400)")
                })?;
            p.tr_downtime = secs * 1_000_000_000;
        }
        p.holdover_slope_ps_per_s = match num("holdoverSlope")? {
            Some(v) => v,
            None => {
                p.local_max_holdover_offset_ns * 1000.0 / (p.local_holdover_timeout as f64 / 1e9)
            }
        };
        match s.get("holdoverCapable").map(|v| v.trim()) {
            None => {}
            Some("always") => p.holdover_capable = HoldoverCapable::Always,
            Some("never") => p.holdover_capable = HoldoverCapable::Never,
            Some(v) => {
                return Err(format!(
                    "ptpSettings.holdoverCapable: {v:?} (expected always or never; absent: decided from the servo's frequency stability)"
                ));
            }
        }
        if let (HoldoverCapable::FrequencyStability { .. }, Some(spread)) = (
            p.holdover_capable,
            num("holdoverCapableMaxFrequencySpread")?,
        ) {
            p.holdover_capable = HoldoverCapable::FrequencyStability {
                samples: 16,
                max_spread_ppb: spread,
            };
        }
        Ok(p)
    }
}

impl TbcParams {
    /// The `openshift_ptp_threshold` series of a T-BC (spec §11.1.6): MaxInSpecOffset,
    /// LocalMaxHoldoverOffSet (ns), LocalHoldoverTimeout (s), inSyncConditionThreshold (ns),
    /// inSyncConditionTimes.
    pub fn threshold_series(&self) -> Vec<(String, i64)> {
        vec![
            (
                "MaxInSpecOffset".into(),
                self.max_in_spec_offset_ns.round() as i64,
            ),
            (
                "LocalMaxHoldoverOffSet".into(),
                self.local_max_holdover_offset_ns.round() as i64,
            ),
            (
                "LocalHoldoverTimeout".into(),
                (self.local_holdover_timeout / 1_000_000_000) as i64,
            ),
            (
                "inSyncConditionThreshold".into(),
                self.in_sync_threshold_ns.round() as i64,
            ),
            ("inSyncConditionTimes".into(), i64::from(self.in_sync_times)),
        ]
    }
}

/// What the TT must announce in a local state (clock-requirements §2.5). For Locked the daemon
/// copies the upstream data sets instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalAnnounce {
    /// clockClass.
    pub class: u8,
    /// clockAccuracy.
    pub accuracy: u8,
    /// offsetScaledLogVariance.
    pub variance: u16,
    /// timeTraceable.
    pub time_traceable: bool,
    /// frequencyTraceable (no Cat-1 frequency source here: false).
    pub frequency_traceable: bool,
    /// currentUtcOffsetValid.
    pub utc_offset_valid: bool,
    /// ptpTimescale.
    pub ptp_timescale: bool,
    /// timeSource (INTERNAL_OSCILLATOR).
    pub time_source: u8,
}

/// clockAccuracy for an estimated time error (IEEE 1588 enumeration; 0xFE unknown).
pub fn accuracy_for(ns: f64) -> u8 {
    match ns {
        x if x <= 25.0 => 0x20,
        x if x <= 100.0 => 0x21,
        x if x <= 250.0 => 0x22,
        x if x <= 1000.0 => 0x23,
        _ => 0xFE,
    }
}

/// One transition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition {
    /// The spec's id: T2 … T9.
    pub id: &'static str,
    /// From.
    pub from: TbcState,
    /// To.
    pub to: TbcState,
    /// When.
    pub at: Nanos,
}

/// The machine.
#[derive(Debug, Clone)]
pub struct TbcMachine {
    p: TbcParams,
    state: TbcState,
    slave_ports: BTreeMap<u16, bool>,
    offsets: VecDeque<f64>,
    freqs: VecDeque<f64>,
    in_sync_run: u32,
    /// Holdover: entry time and T₀.
    holdover: Option<(Nanos, f64)>,
    /// The TR ptp4l exited at this time and has not been SLAVE since (the downtime window).
    tr_down_since: Option<Nanos>,
}

impl TbcMachine {
    /// A machine in Free-Run (T1: Init always ends there).
    pub fn new(p: TbcParams) -> TbcMachine {
        TbcMachine {
            p,
            state: TbcState::FreeRun,
            slave_ports: BTreeMap::new(),
            offsets: VecDeque::new(),
            freqs: VecDeque::new(),
            in_sync_run: 0,
            holdover: None,
            tr_down_since: None,
        }
    }

    /// The state.
    pub fn state(&self) -> TbcState {
        self.state
    }

    /// The parameters.
    pub fn params(&self) -> &TbcParams {
        &self.p
    }

    /// ValidSourceAvailable: a TR port SLAVE.
    pub fn source_available(&self) -> bool {
        self.slave_ports.values().any(|s| *s)
    }

    /// The mean |offset| of the window, if it is full.
    fn mean_abs(&self) -> Option<f64> {
        (self.offsets.len() >= self.p.in_sync_window.max(1))
            .then(|| self.offsets.iter().map(|o| o.abs()).sum::<f64>() / self.offsets.len() as f64)
    }

    /// HoldoverCapable now.
    pub fn holdover_capable(&self) -> bool {
        match self.p.holdover_capable {
            HoldoverCapable::Always => true,
            HoldoverCapable::Never => false,
            HoldoverCapable::FrequencyStability {
                samples,
                max_spread_ppb,
            } => {
                self.freqs.len() >= samples.max(1) && {
                    let (lo, hi) = self
                        .freqs
                        .iter()
                        .fold((f64::MAX, f64::MIN), |(lo, hi), f| (lo.min(*f), hi.max(*f)));
                    hi - lo <= max_spread_ppb
                }
            }
        }
    }

    /// The holdover model's estimated time error at `now` (ns), in holdover.
    pub fn estimate_ns(&self, now: Nanos) -> Option<f64> {
        self.holdover.map(|(since, t0)| {
            t0 + self.p.holdover_slope_ps_per_s / 1000.0 * (now.saturating_sub(since) as f64 / 1e9)
        })
    }

    /// The offset a status line reports: the mean while Locked, the estimate in holdover, Go's
    /// placeholder 99999999999 in Free-Run.
    pub fn status_offset(&self, now: Nanos) -> i64 {
        match self.state {
            TbcState::Locked => self
                .mean_abs()
                .or_else(|| self.offsets.back().map(|o| o.abs()))
                .unwrap_or(0.0)
                .round() as i64,
            TbcState::HoldoverInSpec | TbcState::HoldoverOutOfSpec => {
                self.estimate_ns(now).unwrap_or(0.0).round() as i64
            }
            TbcState::FreeRun => 99_999_999_999,
        }
    }

    /// The announce content of a local state at `now` (None while Locked).
    pub fn local_announce(&self, now: Nanos) -> Option<LocalAnnounce> {
        let class = self.state.local_class()?;
        let (accuracy, time_traceable, utc_offset_valid) = match self.state {
            TbcState::HoldoverInSpec => (
                accuracy_for(self.estimate_ns(now).unwrap_or(f64::MAX)),
                true,
                true,
            ),
            TbcState::HoldoverOutOfSpec => (0xFE, false, true),
            _ => (0xFE, false, false),
        };
        Some(LocalAnnounce {
            class,
            accuracy,
            variance: 0xFFFF,
            time_traceable,
            frequency_traceable: false,
            utc_offset_valid,
            ptp_timescale: true,
            time_source: 0xA0,
        })
    }

    fn go(&mut self, id: &'static str, to: TbcState, now: Nanos) -> Transition {
        let from = self.state;
        self.state = to;
        match to {
            TbcState::HoldoverInSpec => {
                let t0 = self
                    .mean_abs()
                    .or_else(|| self.offsets.back().map(|o| o.abs()))
                    .unwrap_or(0.0);
                self.holdover = Some((now, t0));
            }
            TbcState::HoldoverOutOfSpec => {}
            TbcState::Locked | TbcState::FreeRun => self.holdover = None,
        }
        Transition {
            id,
            from,
            to,
            at: now,
        }
    }

    /// A TR port's role changed (`slave`: it is SLAVE now).
    pub fn port(&mut self, port: u16, slave: bool, now: Nanos) -> Option<Transition> {
        self.slave_ports.insert(port, slave);
        self.after_port_change(now)
    }

    /// The TR ptp4l exited. Within `tr_downtime` nothing changes (a restarted TR that is SLAVE
    /// again in time was never lost); at the end of the window, if it is not SLAVE again, every
    /// port counts as lost ([`TbcMachine::tick`]). With a zero window: lost at once.
    pub fn tr_exited(&mut self, now: Nanos) -> Option<Transition> {
        if self.p.tr_downtime == 0 {
            return self.all_ports_lost(now);
        }
        if self.tr_down_since.is_none() {
            self.tr_down_since = Some(now);
        }
        None
    }

    /// None of the TR's ports is SLAVE any more.
    pub fn all_ports_lost(&mut self, now: Nanos) -> Option<Transition> {
        self.tr_down_since = None;
        self.slave_ports.values_mut().for_each(|s| *s = false);
        self.after_port_change(now)
    }

    fn after_port_change(&mut self, now: Nanos) -> Option<Transition> {
        if self.tr_down_since.is_some() {
            if self.source_available() {
                self.tr_down_since = None; // back in time: nothing happened
            }
            return None;
        }
        if self.source_available() {
            return None;
        }
        // The source is gone: holdover starts from the window's mean (T₀); then the window is
        // history (a new lock fills it anew).
        let tr = (self.state == TbcState::Locked).then(|| {
            if self.holdover_capable() {
                self.go("T3", TbcState::HoldoverInSpec, now)
            } else {
                self.go("T4", TbcState::FreeRun, now)
            }
        });
        self.offsets.clear();
        self.freqs.clear();
        self.in_sync_run = 0;
        tr
    }

    /// One TR offset sample: `servo_locked` for `s2`/`s3`.
    pub fn offset(
        &mut self,
        offset_ns: f64,
        freq_ppb: f64,
        servo_locked: bool,
        now: Nanos,
    ) -> Option<Transition> {
        if !servo_locked {
            self.offsets.clear();
            self.in_sync_run = 0;
            return self.tick(now);
        }
        self.offsets.push_back(offset_ns);
        while self.offsets.len() > self.p.in_sync_window.max(1) {
            self.offsets.pop_front();
        }
        let in_sync = self.source_available()
            && self
                .mean_abs()
                .is_some_and(|m| m <= self.p.in_sync_threshold_ns);
        self.in_sync_run = if in_sync { self.in_sync_run + 1 } else { 0 };
        if self.state == TbcState::Locked {
            if let HoldoverCapable::FrequencyStability { samples, .. } = self.p.holdover_capable {
                self.freqs.push_back(freq_ppb);
                while self.freqs.len() > samples.max(1) {
                    self.freqs.pop_front();
                }
            }
            if self
                .mean_abs()
                .is_some_and(|m| m > self.p.local_max_holdover_offset_ns)
            {
                return Some(self.go("T4", TbcState::FreeRun, now));
            }
            return None;
        }
        if self.in_sync_run >= self.p.in_sync_times.max(1) {
            let id = match self.state {
                TbcState::FreeRun => "T2",
                TbcState::HoldoverInSpec => "T5",
                TbcState::HoldoverOutOfSpec => "T8",
                TbcState::Locked => unreachable!(),
            };
            self.freqs.clear();
            return Some(self.go(id, TbcState::Locked, now));
        }
        self.tick(now)
    }

    /// Time passes: the holdover model's thresholds.
    pub fn tick(&mut self, now: Nanos) -> Option<Transition> {
        if let Some(down) = self.tr_down_since
            && now.saturating_sub(down) >= self.p.tr_downtime
        {
            return self.all_ports_lost(now);
        }
        let (since, _) = self.holdover?;
        let est = self.estimate_ns(now)?;
        let expired = now.saturating_sub(since) >= self.p.local_holdover_timeout;
        match self.state {
            TbcState::HoldoverInSpec if est > self.p.local_max_holdover_offset_ns || expired => {
                Some(self.go("T7", TbcState::FreeRun, now))
            }
            TbcState::HoldoverInSpec if est > self.p.max_in_spec_offset_ns => {
                Some(self.go("T6", TbcState::HoldoverOutOfSpec, now))
            }
            TbcState::HoldoverOutOfSpec if est > self.p.local_max_holdover_offset_ns || expired => {
                Some(self.go("T9", TbcState::FreeRun, now))
            }
            _ => None,
        }
    }

    /// When the next model threshold is crossed (for a timer), in holdover.
    pub fn next_deadline(&self) -> Option<Nanos> {
        if let Some(down) = self.tr_down_since {
            return Some(down + self.p.tr_downtime);
        }
        let (since, t0) = self.holdover?;
        let slope = self.p.holdover_slope_ps_per_s / 1000.0 / 1e9; // ns per ns
        let limit = match self.state {
            TbcState::HoldoverInSpec => self
                .p
                .max_in_spec_offset_ns
                .min(self.p.local_max_holdover_offset_ns),
            _ => self.p.local_max_holdover_offset_ns,
        };
        let by_model = if slope > 0.0 && limit > t0 {
            since + ((limit - t0) / slope).ceil() as Nanos + 1
        } else {
            since
        };
        Some(by_model.min(since + self.p.local_holdover_timeout))
    }
}

/// The Go daemon's T-BC status line (`T-BC[%d]:[%s] %s offset %d T-BC-STATUS %s`).
pub fn tbc_status_line(
    unix: u64,
    config: &str,
    iface: &str,
    offset: i64,
    state: TbcState,
) -> String {
    format!(
        "T-BC[{unix}]:[{config}] {iface} offset {offset} T-BC-STATUS {}",
        state.status_token()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Nanos = 1_000_000_000;

    fn params() -> TbcParams {
        TbcParams {
            in_sync_window: 4,
            in_sync_threshold_ns: 100.0,
            in_sync_times: 2,
            max_in_spec_offset_ns: 200.0,
            local_max_holdover_offset_ns: 400.0,
            local_holdover_timeout: 1000 * S,
            holdover_slope_ps_per_s: 10_000.0, // 10 ns/s
            holdover_capable: HoldoverCapable::FrequencyStability {
                samples: 4,
                max_spread_ppb: 50.0,
            },
            tr_downtime: 5 * S,
        }
    }

    /// Locks `m` at `t` (seconds): SLAVE, then samples until Locked.
    fn lock(m: &mut TbcMachine, t: &mut Nanos) -> Transition {
        assert_eq!(m.port(1, true, *t), None);
        loop {
            *t += S / 16;
            if let Some(tr) = m.offset(10.0, 1000.0, true, *t) {
                return tr;
            }
            assert!(*t < 100 * S, "never locked");
        }
    }

    #[test]
    fn init_is_free_run_and_locks_only_in_sync() {
        let mut m = TbcMachine::new(params());
        assert_eq!(m.state(), TbcState::FreeRun);
        assert_eq!(m.local_announce(0).unwrap().class, 248);
        // Offsets without a SLAVE port never lock.
        for i in 0..20 {
            assert_eq!(m.offset(1.0, 0.0, true, i * S), None);
        }
        // SLAVE, but offsets above the threshold: no lock.
        m.port(1, true, 20 * S);
        for i in 0..20 {
            assert_eq!(m.offset(500.0, 0.0, true, (21 + i) * S), None);
        }
        // Window full of good samples, twice in a row (in_sync_times 2): T2.
        let mut t = 50 * S;
        let mut got = None;
        for _ in 0..10 {
            t += S;
            got = got.or(m.offset(10.0, 0.0, true, t));
        }
        let tr = got.expect("locked");
        assert_eq!((tr.id, tr.to), ("T2", TbcState::Locked));
        assert_eq!(m.local_announce(t), None, "Locked copies upstream");
        assert_eq!(m.state().status_token(), "s2");
    }

    #[test]
    fn holdover_walks_in_spec_out_of_spec_free_run_on_the_model() {
        let mut m = TbcMachine::new(params());
        let mut t = 0;
        lock(&mut m, &mut t);
        for _ in 0..8 {
            t += S / 16;
            assert_eq!(m.offset(10.0, 1000.0 + 5.0, true, t), None);
        }
        assert!(m.holdover_capable());
        let lost = t + S;
        let tr = m.port(1, false, lost).expect("T3");
        assert_eq!((tr.id, tr.to), ("T3", TbcState::HoldoverInSpec));
        let a = m.local_announce(lost).unwrap();
        assert_eq!((a.class, a.time_traceable, a.accuracy), (135, true, 0x20)); // T₀ 10 ns
        assert_eq!(m.state().status_token(), "s1");
        // T₀ = 10 ns, 10 ns/s: 200 ns (MaxInSpec) at 19 s, 400 ns at 39 s.
        let t6 = m.next_deadline().unwrap();
        assert!(
            t6 > lost + 19 * S && t6 <= lost + 19 * S + 2,
            "{}",
            t6 - lost
        );
        assert_eq!(m.tick(lost + 18 * S), None);
        let tr = m.tick(t6).expect("T6");
        assert_eq!((tr.id, tr.to), ("T6", TbcState::HoldoverOutOfSpec));
        let a = m.local_announce(t6).unwrap();
        assert_eq!((a.class, a.time_traceable, a.accuracy), (165, false, 0xFE));
        assert_eq!(m.state().status_token(), "s1", "E1 silent on T6");
        let t9 = m.next_deadline().unwrap();
        assert!(t9 > lost + 39 * S && t9 <= lost + 39 * S + 2);
        assert_eq!(m.tick(t9 - 2), None);
        let tr = m.tick(t9).expect("T9");
        assert_eq!((tr.id, tr.to), ("T9", TbcState::FreeRun));
        assert_eq!(m.status_offset(t9), 99_999_999_999);
    }

    #[test]
    fn relock_from_each_holdover_and_the_timeout() {
        // T5: back in sync while In-Spec.
        let mut m = TbcMachine::new(params());
        let mut t = 0;
        lock(&mut m, &mut t);
        for _ in 0..4 {
            t += S / 16;
            m.offset(10.0, 1000.0, true, t);
        }
        m.port(1, false, t).expect("T3");
        let tr = lock(&mut m, &mut t);
        assert_eq!((tr.id, tr.from), ("T5", TbcState::HoldoverInSpec));
        // T8: back from Out-Of-Spec.
        for _ in 0..4 {
            t += S / 16;
            m.offset(10.0, 1000.0, true, t);
        }
        m.port(1, false, t).expect("T3");
        t += 25 * S;
        assert_eq!(m.tick(t).unwrap().id, "T6");
        let tr = lock(&mut m, &mut t);
        assert_eq!((tr.id, tr.from), ("T8", TbcState::HoldoverOutOfSpec));
        // T7: LocalHoldoverTimeout before the model's limit.
        let mut p = params();
        p.local_holdover_timeout = 5 * S;
        let mut m = TbcMachine::new(p);
        let mut t = 0;
        lock(&mut m, &mut t);
        for _ in 0..4 {
            t += S / 16;
            m.offset(10.0, 1000.0, true, t);
        }
        m.port(1, false, t).expect("T3");
        assert_eq!(m.next_deadline(), Some(t + 5 * S));
        assert_eq!(m.tick(t + 5 * S).unwrap().id, "T7");
    }

    #[test]
    fn not_holdover_capable_goes_free_run_and_a_big_offset_too() {
        // An unstable frequency: T4 on loss.
        let mut m = TbcMachine::new(params());
        let mut t = 0;
        lock(&mut m, &mut t);
        for i in 0..8 {
            t += S / 16;
            m.offset(10.0, if i % 2 == 0 { 0.0 } else { 500.0 }, true, t);
        }
        assert!(!m.holdover_capable());
        assert_eq!(m.port(1, false, t).unwrap().id, "T4");
        // Never: T4 even with a steady frequency.
        let mut p = params();
        p.holdover_capable = HoldoverCapable::Never;
        let mut m = TbcMachine::new(p);
        let mut t = 0;
        lock(&mut m, &mut t);
        assert_eq!(m.port(1, false, t).unwrap().id, "T4");
        // Locked, offsets beyond LocalMaxHoldoverOffSet: T4.
        let mut m = TbcMachine::new(params());
        let mut t = 0;
        lock(&mut m, &mut t);
        let mut got = None;
        for _ in 0..8 {
            t += S / 16;
            got = got.or(m.offset(5000.0, 1000.0, true, t));
        }
        assert_eq!(got.unwrap().id, "T4");
    }

    #[test]
    fn holdover_accuracy_follows_the_estimate() {
        // FUNC-TBC018-R6: the estimate mapped to the IEEE 1588 enumeration.
        assert_eq!(accuracy_for(20.0), 0x20);
        assert_eq!(accuracy_for(80.0), 0x21);
        assert_eq!(accuracy_for(200.0), 0x22);
        assert_eq!(accuracy_for(300.0), 0x23);
        assert_eq!(accuracy_for(1001.0), 0xFE);
        let mut m = TbcMachine::new(params());
        let mut t = 0;
        lock(&mut m, &mut t);
        for _ in 0..4 {
            t += S / 16;
            m.offset(10.0, 1000.0, true, t);
        }
        m.port(1, false, t).expect("T3");
        // T₀ 10 ns, 10 ns/s: 80 ns after 7 s, 180 ns after 17 s.
        assert_eq!(m.local_announce(t + 7 * S).unwrap().accuracy, 0x21);
        assert_eq!(m.local_announce(t + 17 * S).unwrap().accuracy, 0x22);
        // The default model: 1500 ns over 14400 s (≈104 ps/s): T₀ + 1500 ns at the timeout.
        let mut m = TbcMachine::new(TbcParams {
            in_sync_window: 4,
            holdover_capable: HoldoverCapable::Always,
            ..TbcParams::default()
        });
        let mut t = 0;
        m.port(1, true, t);
        while m.state() != TbcState::Locked {
            t += S / 16;
            m.offset(10.0, 0.0, true, t);
        }
        m.port(1, false, t).expect("T3");
        let e = m.estimate_ns(t + 14_400 * S).unwrap();
        assert!((e - 1510.0).abs() < 0.01, "{e}");
    }

    #[test]
    fn a_tr_restart_within_the_downtime_window_changes_nothing() {
        // FUNC-TBC016-R1/R6: back to SLAVE within processDowntimeThresholds.ptp4l: silent.
        let mut m = TbcMachine::new(params()); // 5 s window (the default)
        let mut t = 0;
        lock(&mut m, &mut t);
        for _ in 0..4 {
            t += S / 16;
            m.offset(10.0, 1000.0, true, t);
        }
        assert_eq!(m.tr_exited(t), None);
        // The restarted TR: LISTENING, then SLAVE 3 s later; nothing happens.
        assert_eq!(m.port(1, false, t + S), None);
        assert_eq!(m.tick(t + 2 * S), None);
        assert_eq!(m.port(1, true, t + 3 * S), None);
        assert_eq!(m.tick(t + 10 * S), None);
        assert_eq!(m.state(), TbcState::Locked);
        // Not back in time: lost at the window's end (T3, the holdover starting then).
        let t = t + 20 * S;
        assert_eq!(m.tr_exited(t), None);
        assert_eq!(m.port(1, false, t + S), None);
        assert_eq!(m.next_deadline(), Some(t + 5 * S));
        assert_eq!(m.tick(t + 5 * S - 1), None);
        assert_eq!(m.tick(t + 5 * S).unwrap().id, "T3");
        // A zero window: lost at once.
        let mut p = params();
        p.tr_downtime = 0;
        let mut m = TbcMachine::new(p);
        let mut t = 0;
        lock(&mut m, &mut t);
        assert_eq!(
            m.tr_exited(t).unwrap().id,
            "T4",
            "locked too briefly to be capable"
        );
        // The setting: whole seconds 0..=86400.
        for (v, ok) in [
            ("0", true),
            ("86400", true),
            ("86401", false),
            ("-1", false),
            ("x", false),
        ] {
            let s: BTreeMap<String, String> =
                [("processDowntimeThresholds.ptp4l".to_owned(), v.to_owned())].into();
            assert_eq!(TbcParams::from_settings(&s).is_ok(), ok, "{v}");
        }
    }

    #[test]
    fn a_tr_exit_loses_every_port() {
        let mut m = TbcMachine::new(params());
        let mut t = 0;
        lock(&mut m, &mut t);
        m.port(2, true, t);
        for _ in 0..4 {
            t += S / 16;
            m.offset(10.0, 1000.0, true, t);
        }
        assert_eq!(m.all_ports_lost(t).unwrap().id, "T3");
        assert!(!m.source_available());
    }

    #[test]
    fn a_second_port_keeps_the_source() {
        let mut m = TbcMachine::new(params());
        let mut t = 0;
        lock(&mut m, &mut t);
        m.port(2, true, t);
        assert_eq!(m.port(1, false, t), None, "port 2 is still SLAVE");
        assert_eq!(m.state(), TbcState::Locked);
    }

    #[test]
    fn settings_parse_with_named_errors_and_the_derived_slope() {
        let s: BTreeMap<String, String> = [
            ("MaxInSpecOffset", "100"),
            ("LocalMaxHoldoverOffSet", "300"),
            ("LocalHoldoverTimeout", "60"),
            ("inSyncConditionThreshold", "50"),
            ("inSyncConditionTimes", "3"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let p = TbcParams::from_settings(&s).unwrap();
        assert_eq!(p.holdover_slope_ps_per_s, 5000.0); // 300 ns / 60 s
        assert_eq!(p.in_sync_times, 3);
        assert_eq!(p.local_holdover_timeout, 60 * S);
        assert!((TbcParams::default().holdover_slope_ps_per_s - 104.1666).abs() < 0.01);
        let bad: BTreeMap<String, String> =
            [("MaxInSpecOffset".to_owned(), "-1".to_owned())].into();
        assert!(
            TbcParams::from_settings(&bad)
                .unwrap_err()
                .contains("MaxInSpecOffset")
        );
        let bad: BTreeMap<String, String> =
            [("holdoverCapable".to_owned(), "maybe".to_owned())].into();
        assert!(
            TbcParams::from_settings(&bad)
                .unwrap_err()
                .contains("holdoverCapable")
        );
    }

    #[test]
    fn the_status_line_is_the_go_daemons_and_parses() {
        let l = tbc_status_line(1757326334, "ptp4l.1.config", "ens4f0", 12, TbcState::Locked);
        assert_eq!(
            l,
            "T-BC[1757326334]:[ptp4l.1.config] ens4f0 offset 12 T-BC-STATUS s2"
        );
        assert!(matches!(
            crate::parse_line(&l),
            crate::ParsedLine::TbcStatus { offset: 12, .. }
        ));
    }
}
