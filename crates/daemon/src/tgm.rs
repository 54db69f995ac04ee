//! Runs a telecom grandmaster (T-GM): a profile with `ptpSettings.clockType: T-GM` whose ptp4l
//! serves downstream. The decisions are [`ptp_state::tgm::TgmMachine`]'s (clock-requirements
//! §3.2, sans-IO); this module feeds it and executes them:
//!
//! * **GNSS** from a real gpsd ([`crate::gpsd`]) at `ptpSettings.gnssSource` (`host:port`,
//!   default `127.0.0.1:2947`); a gpsd that is absent or closes is a GNSS loss at once, one
//!   that stays silent is one after `gnssTimeout`.
//! * **DPLL**: there is no DPLL on this machine. With `ptpSettings.tgmEmulation: <file>` an
//!   **emulated** DPLL (and ts2phc) is scripted by that file, re-read every 250 ms (format in
//!   [`Emulation::parse`]); without it the T-GM has no DPLL (a GNSS loss is Free-Run at once).
//! * **ts2phc**: the profile's real ts2phc when it runs one (its offset lines, read from the
//!   hub); otherwise an **emulated** ts2phc: the runner writes linuxptp-format
//!   `ts2phc[...]: [ts2phc.N.config] <iface> offset <ns> s2 freq <ppb>` lines once a second,
//!   locked while its 1PPS source (the DPLL, else GNSS) is usable. Every emulated part says so
//!   in the daemon's log at start.
//! * On each transition, and at T1: the Go daemon's lines (`GM[..] T-GM-STATUS sN`,
//!   `CLOCK_CLASS_CHANGE`, and once a second `gnss[..]`, `dpll[..]`), and the state's announce
//!   set on the GM ptp4l with `SET GRANDMASTER_SETTINGS_NP` at once (so it is in the next
//!   Announce), checked every second and set again when it differs (a restarted ptp4l starts
//!   from its config: a fresh ptp4l announces ptpTimescale 0).
//! * Start order: the sources first, then the GM ptp4l (gated until the first ts2phc sample),
//!   then phc2sys.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ptp_config::{Plan, ProfilePlan};
use ptp_mgmt::{ClockQuality, GrandmasterSettings, TimeFlags};
use ptp_state::parse::ParsedLine;
use ptp_state::tgm::{
    DpllState, GnssReading, PhcSync, TgmMachine, TgmParams, TgmState, TgmTransition, dpll_line,
    gnss_line, tgm_status_line,
};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;

use crate::announce::Announcer;
use crate::class::{Ptp4lTarget, clock_class_line};
use crate::gpsd;
use crate::hub::Hub;
use crate::lines::unix_now;

/// gpsd's default address.
pub const DEFAULT_GPSD: &str = "127.0.0.1:2947";

/// A jamming indicator at or above this counts as jamming.
const JAM_THRESHOLD: u8 = 200;

/// One T-GM profile.
#[derive(Debug, Clone, PartialEq)]
pub struct TgmProfile {
    /// The profile's name.
    pub profile: String,
    /// The GM ptp4l.
    pub gm: Ptp4lTarget,
    /// The interface the lines name (`leadingInterface`, else the first).
    pub iface: String,
    /// `ts2phc.<N>.config`: the config the T-GM lines name (the Go daemon's).
    pub ts2phc_config: String,
    /// Whether the profile runs a real ts2phc (else it is emulated).
    pub real_ts2phc: bool,
    /// gpsd's `host:port`.
    pub gpsd: String,
    /// The emulation file (DPLL, ts2phc, spoofing/jamming), if any.
    pub emulation: Option<PathBuf>,
    /// The machine's parameters.
    pub params: TgmParams,
}

/// Whether a profile is a T-GM.
pub fn is_tgm(p: &ProfilePlan) -> bool {
    p.profile.ptp_settings.get("clockType").map(String::as_str) == Some("T-GM")
}

impl TgmProfile {
    /// Every T-GM of `plan`. Errors name the profile and the key.
    pub fn find(plan: &Plan) -> Result<Vec<TgmProfile>, String> {
        let mut out = Vec::new();
        for p in plan.profiles.iter().filter(|p| is_tgm(p)) {
            let name = p.profile.name();
            let s = &p.profile.ptp_settings;
            let gm = Ptp4lTarget::of(p)
                .ok_or_else(|| format!("profile {name:?} (a T-GM) runs no ptp4l"))?;
            let params =
                TgmParams::from_settings(s).map_err(|e| format!("profile {name:?}: {e}"))?;
            let gpsd = s
                .get("gnssSource")
                .map(|v| v.trim().trim_start_matches("gpsd://").to_owned())
                .unwrap_or_else(|| DEFAULT_GPSD.to_owned());
            if gpsd
                .rsplit_once(':')
                .is_none_or(|(_, port)| port.parse::<u16>().is_err())
            {
                return Err(format!(
                    "profile {name:?}: ptpSettings.gnssSource {gpsd:?}: expected host:port (gpsd's address)"
                ));
            }
            let iface = s
                .get("leadingInterface")
                .cloned()
                .or_else(|| p.interfaces.first().cloned())
                .unwrap_or_default();
            out.push(TgmProfile {
                profile: name.to_owned(),
                gm,
                iface,
                ts2phc_config: format!("ts2phc.{}.config", p.run_id),
                real_ts2phc: p
                    .processes
                    .iter()
                    .any(|q| q.kind == ptp_config::ProcessKind::Ts2phc),
                gpsd,
                emulation: s.get("tgmEmulation").map(PathBuf::from),
                params,
            });
        }
        Ok(out)
    }
}

/// How the emulated DPLL behaves.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum DpllMode {
    /// Follows GNSS as a DPLL does: free-running until GNSS is first usable, then LOCKED_HO_ACQ
    /// while GNSS is usable, HOLDOVER after.
    #[default]
    Auto,
    /// This state and phase offset (ns).
    Fixed(DpllState, f64),
}

/// How the emulated ts2phc behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PhcMode {
    /// Locked while its 1PPS source (the DPLL, else GNSS) is usable.
    #[default]
    Auto,
    /// Servo unlocked (`s0`): a fault of the PHC path (NonGNSSFault).
    Freerun,
}

/// The emulation file.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Emulation {
    /// The DPLL.
    pub dpll: DpllMode,
    /// ts2phc.
    pub ts2phc: PhcMode,
    /// GNSS spoofing detected.
    pub spoofed: bool,
    /// GNSS jamming detected.
    pub jammed: bool,
}

impl Emulation {
    /// Parses the file: one directive per line, `#` comments, later lines win:
    /// `dpll auto|locked|lhaq|holdover|freerun [phase_offset_ns]`, `ts2phc auto|freerun`,
    /// `gnss ok|spoofed|jammed`. Errors name the line.
    pub fn parse(text: &str) -> Result<Emulation, String> {
        let mut e = Emulation::default();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let bad = || {
                format!(
                    "line {}: {line:?} (expected dpll auto|locked|lhaq|holdover|freerun [offset_ns], ts2phc auto|freerun, gnss ok|spoofed|jammed)",
                    n + 1
                )
            };
            let mut w = line.split_whitespace();
            let parts = (w.next(), w.next(), w.next());
            if w.next().is_some() {
                return Err(bad());
            }
            match parts {
                (Some("dpll"), Some("auto"), None) => e.dpll = DpllMode::Auto,
                (Some("dpll"), Some(s), off) => {
                    let state = DpllState::parse(s).ok_or_else(bad)?;
                    let offset = match off {
                        None => 0.0,
                        Some(o) => o
                            .parse::<f64>()
                            .ok()
                            .filter(|x| x.is_finite())
                            .ok_or_else(bad)?,
                    };
                    e.dpll = DpllMode::Fixed(state, offset);
                }
                (Some("ts2phc"), Some("auto"), None) => e.ts2phc = PhcMode::Auto,
                (Some("ts2phc"), Some("freerun"), None) => e.ts2phc = PhcMode::Freerun,
                (Some("gnss"), Some("ok"), None) => (e.spoofed, e.jammed) = (false, false),
                (Some("gnss"), Some("spoofed"), None) => e.spoofed = true,
                (Some("gnss"), Some("jammed"), None) => e.jammed = true,
                _ => return Err(bad()),
            }
        }
        Ok(e)
    }
}

/// A DPLL the T-GM reads (at least once a second). The only one here is [`EmulatedDpll`]: no
/// DPLL hardware on this machine; a netlink (`dpll` generic netlink family) source would be
/// another implementation.
pub trait DpllSource: Send {
    /// The DPLL's lock status and phase offset (ns) now; `gnss_available`: whether its GNSS
    /// reference is usable now (an emulation follows it).
    fn read(&mut self, gnss_available: bool) -> (DpllState, f64);
    /// What it is, for the log and the lines (`emulated`, a device name...).
    fn describe(&self) -> String;
}

/// The emulated DPLL: [`DpllMode::Auto`] behaves as a DPLL locked to GNSS does (free-running
/// until its reference is first usable, LOCKED_HO_ACQ while it is, HOLDOVER after); a fixed mode
/// says what it is told. Scripted by the emulation file.
#[derive(Debug, Default)]
pub struct EmulatedDpll {
    /// The mode (from the file).
    pub mode: DpllMode,
    ever_locked: bool,
}

impl DpllSource for EmulatedDpll {
    fn read(&mut self, gnss_available: bool) -> (DpllState, f64) {
        match self.mode {
            DpllMode::Fixed(s, o) => (s, o),
            DpllMode::Auto if gnss_available => {
                self.ever_locked = true;
                (DpllState::LockedHoAcq, 0.0)
            }
            DpllMode::Auto if self.ever_locked => (DpllState::Holdover, 0.0),
            DpllMode::Auto => (DpllState::Freerun, 0.0),
        }
    }

    fn describe(&self) -> String {
        format!("emulated ({:?})", self.mode)
    }
}

/// TAI − UTC when GNSS has not said (since 2017).
const DEFAULT_UTC_OFFSET: i16 = 37;

struct Runner {
    p: TgmProfile,
    hub: Arc<Hub>,
    fsm: TgmMachine,
    t0: Instant,
    gate: watch::Sender<bool>,
    /// The GM ptp4l's announce.
    gm: Announcer,
    announced_class: Option<u8>,
    utc_offset: i16,
    emu: Emulation,
    emu_text: Option<String>,
    emu_error: Option<String>,
    dpll: Option<EmulatedDpll>,
    dpll_last: Option<(DpllState, f64)>,
    samples: u64,
    last_gnss_at: Option<u64>,
    gnss_was_available: bool,
    error_logged: bool,
}

impl Runner {
    fn now(&self) -> u64 {
        ptp_state::nanos(self.t0.elapsed())
    }

    fn settings(&self, s: TgmState) -> GrandmasterSettings {
        let a = s.announce(self.utc_offset);
        GrandmasterSettings {
            clock_quality: ClockQuality {
                class: a.class,
                accuracy: a.accuracy,
                offset_scaled_log_variance: a.variance,
            },
            current_utc_offset: a.current_utc_offset,
            flags: TimeFlags {
                leap61: false,
                leap59: false,
                current_utc_offset_valid: a.utc_offset_valid,
                ptp_timescale: a.ptp_timescale,
                time_traceable: a.time_traceable,
                frequency_traceable: a.frequency_traceable,
            },
            time_source: a.time_source,
        }
    }

    fn class_line(&mut self, class: u8) {
        if self.announced_class != Some(class) {
            self.announced_class = Some(class);
            self.hub
                .publish(clock_class_line(&self.p.ts2phc_config, class, unix_now()));
        }
    }

    fn status_line(&self) {
        self.hub.publish(tgm_status_line(
            unix_now(),
            &self.p.ts2phc_config,
            &self.p.iface,
            self.fsm.state(),
        ));
    }

    async fn on_transition(&mut self, t: TgmTransition) {
        tracing::info!(
            tgm = %self.p.profile,
            transition = t.id,
            from = t.from.name(),
            to = t.to.name(),
            class = t.to.class(),
            "T-GM state"
        );
        self.gm.desired = self.settings(t.to);
        self.class_line(t.to.class());
        self.status_line();
        self.gm.apply().await;
    }

    /// Re-reads the emulation file (when there is one).
    fn read_emulation(&mut self) {
        let Some(path) = &self.p.emulation else {
            return;
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                // The last good content is kept (a file being replaced, or removed by mistake).
                let err = format!("cannot read it: {e}");
                if self.emu_error.as_deref() != Some(err.as_str()) {
                    tracing::warn!(file = %path.display(), error = %err, "T-GM: emulation file; the last good one is kept");
                    self.emu_error = Some(err);
                }
                return;
            }
        };
        if self.emu_text.as_deref() == Some(text.as_str()) {
            return;
        }
        match Emulation::parse(&text) {
            Ok(e) => {
                tracing::info!(file = %path.display(), emulation = ?e, "T-GM: emulated DPLL/ts2phc/GNSS flags");
                self.emu = e;
                if let Some(d) = self.dpll.as_mut() {
                    d.mode = e.dpll;
                }
                self.emu_error = None;
            }
            Err(err) => {
                if self.emu_error.as_deref() != Some(err.as_str()) {
                    tracing::warn!(file = %path.display(), error = %err, "T-GM: emulation file not understood; the last good one is kept");
                }
                self.emu_error = Some(err);
            }
        }
        self.emu_text = Some(text);
    }

    /// The DPLL now, `None` without one.
    fn dpll_now(&mut self, now: u64) -> Option<(DpllState, f64)> {
        let gnss = self.fsm.gnss_available(now);
        let d = self.dpll.as_mut()?;
        let read = d.read(gnss);
        if self.dpll_last.map(|l| l.0) != Some(read.0) {
            tracing::info!(tgm = %self.p.profile, dpll = %d.describe(), state = ?read.0, "T-GM: DPLL state");
        }
        self.dpll_last = Some(read);
        Some(read)
    }

    fn gnss_report(&mut self, mut r: GnssReading, leap: Option<i16>) -> Option<TgmTransition> {
        r.spoofed |= self.emu.spoofed;
        r.jammed |= self.emu.jammed;
        if let Some(l) = leap
            && self.utc_offset != l + 19
        {
            // gpsd's leapseconds is GPS − UTC; TAI − GPS is 19 s. The announce carries it now.
            self.utc_offset = l + 19;
            self.gm.desired = self.settings(self.fsm.state());
        }
        if let Some(e) = r.time_error_ns
            && e > self.fsm.params().gnss_offset_threshold_ns
            && !self.error_logged
        {
            self.error_logged = true;
            tracing::warn!(tgm = %self.p.profile, time_error_ns = e, threshold = self.fsm.params().gnss_offset_threshold_ns,
                "T-GM: GNSS time error above gnssOffsetThreshold: GNSS is not usable (gpsd fed NMEA reports a fixed 5 ms estimate; a receiver in binary mode reports its real accuracy)");
        }
        let now = self.now();
        self.last_gnss_at = Some(now);
        let t = self.fsm.gnss(r, now);
        self.gnss_changed(now);
        t
    }

    /// One emulated ts2phc sample (and its line).
    fn emulated_phc(&mut self, now: u64) -> Option<TgmTransition> {
        self.samples += 1;
        let source_ok = match self.fsm.dpll_state(now) {
            Some(d) => d != DpllState::Freerun,
            None => self.fsm.gnss_available(now),
        };
        let locked = source_ok && self.emu.ts2phc == PhcMode::Auto;
        // Timestamp noise of a few ns, deterministic.
        let offset = ((self.samples * 7919) % 11) as i64 - 5;
        let (servo, sync) = if locked {
            ("s2", PhcSync::Locked)
        } else {
            ("s0", PhcSync::Unlocked)
        };
        let t = unix_now();
        self.hub.publish(format!(
            "ts2phc[{t}.000]: [{}] {} offset {offset} {servo} freq -12",
            self.p.ts2phc_config, self.p.iface
        ));
        self.fsm.phc_sample(sync, offset as f64, now)
    }

    fn source_lines(&mut self, now: u64) {
        self.gnss_line(now);
        // The DPLL as the machine takes it (FREERUN once unheard of), with its phase offset.
        if let Some(d) = self.fsm.dpll_state(now) {
            let phase = self.dpll_last.map_or(0.0, |l| l.1);
            self.hub.publish(dpll_line(
                unix_now(),
                &self.p.ts2phc_config,
                &self.p.iface,
                d,
                phase.round() as i64,
            ));
        }
    }

    /// The Go daemon's `gnss[...]` line for the GNSS state now.
    fn gnss_line(&mut self, now: u64) {
        let available = self.fsm.gnss_available(now);
        self.gnss_was_available = available;
        // gpsd silent (or gone) past gnssTimeout: no fix; otherwise the receiver's fix (a
        // spoofed or imprecise 3D fix is still a 3D fix, with state s0).
        let silent = self
            .last_gnss_at
            .is_none_or(|at| now.saturating_sub(at) > self.fsm.params().gnss_timeout);
        let (fix, offset) = match self.fsm.gnss_reading() {
            Some(r) if !silent => (r.fix_mode, r.time_error_ns.unwrap_or(0.0).round() as i64),
            _ => (0, 0),
        };
        self.hub.publish(gnss_line(
            unix_now(),
            &self.p.ts2phc_config,
            &self.p.iface,
            fix,
            offset,
            available,
        ));
    }

    /// Writes the GNSS line at once when GNSSAvailable changed (E5 within the second, not at
    /// the next periodic line).
    fn gnss_changed(&mut self, now: u64) {
        if self.fsm.gnss_available(now) != self.gnss_was_available {
            self.gnss_line(now);
        }
    }
}

/// Runs one T-GM until `stop`; `gate` opens the GM ptp4l's first start. `lines` is the hub's
/// tap (a real ts2phc's offsets).
pub async fn run(
    p: TgmProfile,
    hub: Arc<Hub>,
    mut lines: broadcast::Receiver<String>,
    local_dir: PathBuf,
    gate: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) {
    if *stop.borrow() {
        return;
    }
    let has_dpll = p.emulation.is_some();
    match &p.emulation {
        Some(f) => tracing::warn!(tgm = %p.profile, file = %f.display(),
            "T-GM: the DPLL is EMULATED (no DPLL on this machine), scripted by this file"),
        None => {
            tracing::info!(tgm = %p.profile, "T-GM without a DPLL: a GNSS loss is Free-Run at once")
        }
    }
    if !p.real_ts2phc {
        tracing::warn!(tgm = %p.profile, "T-GM: ts2phc is EMULATED (no PHC on this machine): its lines are written by the daemon");
    }
    let (tx, mut reports) = mpsc::channel(64);
    let gpsd_task = tokio::spawn(gpsd::run(p.gpsd.clone(), tx, stop.clone()));
    let fsm = TgmMachine::new(p.params.clone(), has_dpll);
    let gm = Announcer::new(p.gm.clone(), local_dir, "T-GM: ptp4l");
    let mut r = Runner {
        p,
        hub,
        fsm,
        t0: Instant::now(),
        gate,
        gm,
        announced_class: None,
        utc_offset: DEFAULT_UTC_OFFSET,
        emu: Emulation::default(),
        emu_text: None,
        emu_error: None,
        dpll: has_dpll.then(EmulatedDpll::default),
        dpll_last: None,
        samples: 0,
        last_gnss_at: None,
        gnss_was_available: false,
        error_logged: false,
    };
    r.read_emulation();
    // T1: Init ends in Free-Run (E1 FREERUN, E2 248), with the Free-Run announce.
    r.gm.desired = r.settings(TgmState::FreeRun);
    r.class_line(TgmState::FreeRun.class());
    r.status_line();
    let mut poll = tokio::time::interval(Duration::from_millis(250));
    let mut second = tokio::time::interval(Duration::from_secs(1));
    // One PHC sample a second, never a burst after a slow management call (a burst would meet
    // inSyncConditionTimes early).
    second.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut polls = 0u64;
    loop {
        let transition = tokio::select! {
            _ = stop.changed() => break, // only ever set to true
            ev = reports.recv() => match ev {
                Some(gpsd::Event::Report(rep)) => {
                    let leap = match &rep {
                        gpsd::Report::Tpv { leapseconds, .. } => *leapseconds,
                        gpsd::Report::Other(_) => None,
                    };
                    match rep.reading(JAM_THRESHOLD) {
                        Some(g) => r.gnss_report(g, leap),
                        None => None,
                    }
                }
                // No gpsd: no fix, now (not after gnssTimeout).
                Some(gpsd::Event::Down(_)) => {
                    let now = r.now();
                    r.last_gnss_at = None;
                    let t = r.fsm.gnss(GnssReading::default(), now);
                    r.gnss_changed(now);
                    t
                }
                None => break,
            },
            l = lines.recv() => match l {
                Ok(line) if r.p.real_ts2phc => match ptp_state::parse_line(&line) {
                    ParsedLine::Ts2phcOffset { config, offset, servo, holdover, .. }
                        if config == r.p.ts2phc_config =>
                    {
                        let sync = if holdover {
                            PhcSync::Holdover
                        } else if servo.is_some_and(|s| s.locked()) {
                            PhcSync::Locked
                        } else {
                            PhcSync::Unlocked
                        };
                        let now = r.now();
                        let t = r.fsm.phc_sample(sync, offset as f64, now);
                        let _ = r.gate.send(true);
                        t
                    }
                    _ => None,
                },
                Ok(_) => None,
                Err(broadcast::error::RecvError::Lagged(_)) => None,
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = poll.tick() => {
                polls += 1;
                r.read_emulation();
                let now = r.now();
                let mut t = None;
                if let Some((d, o)) = r.dpll_now(now) {
                    t = r.fsm.dpll(d, o, now);
                }
                if t.is_none() {
                    t = r.fsm.tick(now);
                }
                r.gnss_changed(now); // silence past gnssTimeout
                if t.is_none() {
                    if polls.is_multiple_of(4) {
                        r.gm.verify().await;
                    }
                    r.gm.apply().await;
                }
                t
            },
            _ = second.tick() => {
                let now = r.now();
                let t = if r.p.real_ts2phc {
                    None
                } else {
                    let t = r.emulated_phc(now);
                    // The sources run and ts2phc has printed: the GM ptp4l may start.
                    if !*r.gate.borrow() {
                        tracing::info!(tgm = %r.p.profile, "T-GM sources running: starting the GM ptp4l");
                        let _ = r.gate.send(true);
                    }
                    t
                };
                r.source_lines(now);
                r.status_line();
                t
            },
        };
        if let Some(t) = transition {
            r.on_transition(t).await;
        }
    }
    gpsd_task.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(settings: serde_json::Value) -> Result<Plan, String> {
        let profiles = serde_json::json!([{
            "name": "p",
            "interface": "ens1f0",
            "ptp4lOpts": "-2",
            "ptp4lConf": "[global]\nmasterOnly 1\n",
            "ptpSettings": settings
        }]);
        let opts = crate::DaemonOptions::new(ptp_config::NodeSelector::new("n"), "/x/n");
        crate::read_plan(&opts, profiles.to_string().as_bytes()).map(|(_, p)| p)
    }

    #[test]
    fn profiles_select_the_role_and_bad_settings_are_named() {
        let p = plan(serde_json::json!({"clockType": "T-GM", "tgmEmulation": "/e"})).unwrap();
        let t = TgmProfile::find(&p).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(
            (
                t[0].gpsd.as_str(),
                t[0].ts2phc_config.as_str(),
                t[0].iface.as_str()
            ),
            (DEFAULT_GPSD, "ts2phc.0.config", "ens1f0")
        );
        assert_eq!(t[0].emulation.as_deref(), Some(std::path::Path::new("/e")));
        assert!(!t[0].real_ts2phc);
        for (settings, key) in [
            (
                serde_json::json!({"clockType": "T-GM", "gnssSource": "nowhere"}),
                "gnssSource",
            ),
            (
                serde_json::json!({"clockType": "T-GM", "gnssTimeout": "-1"}),
                "gnssTimeout",
            ),
            (
                serde_json::json!({"clockType": "T-GM", "MaxInSpecOffset": "9000"}),
                "MaxInSpecOffset",
            ),
        ] {
            let e = plan(settings).unwrap_err();
            assert!(e.contains("\"p\"") && e.contains(key), "{e}");
        }
        // clockType T-TSC: the class-255 machine without TT.
        let p = plan(serde_json::json!({"clockType": "T-TSC"})).unwrap();
        let pairs = crate::tbc::TbcPair::find(&p).unwrap();
        assert_eq!(pairs.len(), 1);
        assert!(pairs[0].tt_profile.is_none());
        assert!(TgmProfile::find(&p).unwrap().is_empty());
    }

    #[test]
    fn emulation_file() {
        let e =
            Emulation::parse("# lab\ndpll holdover 120\nts2phc freerun\ngnss spoofed\n").unwrap();
        assert_eq!(e.dpll, DpllMode::Fixed(DpllState::Holdover, 120.0));
        assert_eq!(e.ts2phc, PhcMode::Freerun);
        assert!(e.spoofed && !e.jammed);
        let e = Emulation::parse("dpll lhaq\ndpll auto\ngnss jammed\ngnss ok\n").unwrap();
        assert_eq!(e, Emulation::default());
        assert_eq!(Emulation::parse("").unwrap(), Emulation::default());
        for bad in [
            "dpll sideways",
            "dpll locked x",
            "ts2phc maybe",
            "gnss",
            "pps on",
        ] {
            let err = Emulation::parse(bad).unwrap_err();
            assert!(err.starts_with("line 1:"), "{bad}: {err}");
        }
    }
}
