//! The engine: per-config clocks, the OS clock, the overall sync-state, processes, timers.
//!
//! The line handling is split by source: [`Engine::apply`] here dispatches, and each source's
//! lines are handled in its own module: `ptp4l` (offsets, port states, clock class, HA),
//! `os_clock` (phc2sys, chronyd), `gnss` (ts2phc, NMEA, DPLL, GNSS, the T-GM decision),
//! `synce` (synce4l) and `tbc` (the daemon's T-BC status lines). Process up/down, control
//! lines and the shared state changes (`set_main`, `set_os`, sync-state) stay here.

use std::time::Duration;

use oran_api::{FREERUN_OFFSET_PROCESS_DOWN, Resource, SyncState, Value, value_address};

use crate::config::{ClockType, EngineConfig, Nanos, ProfileInfo, Thresholds, nanos};
use crate::parse::{Control, LineKind, ParsedLine, PortRole, Servo, parse_line};
use crate::tgm::{self, GnssInput, TgmInputs};

mod gnss;
use gnss::gnss_values;
mod os_clock;
mod ptp4l;
mod synce;
use synce::{synce_quality_values, synce_ra};
mod tbc;

/// One CloudEvent's worth of change: the resource and its `data.values`.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The resource the event is about.
    pub resource: Resource,
    /// The event's `data.values`, in the shapes of the wire reference §5.3.
    pub values: Vec<Value>,
}

/// Counters of what [`Engine::feed`] saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Lines fed.
    pub lines: u64,
    by_kind: [u64; LineKind::ALL.len()],
}

impl Stats {
    /// Lines of `kind`.
    pub fn count(&self, kind: LineKind) -> u64 {
        self.by_kind[kind as usize]
    }
    /// Lines that were not understood at all ([`LineKind::Unknown`]).
    pub fn unknown(&self) -> u64 {
        self.count(LineKind::Unknown)
    }
    /// Lines skipped: unknown plus tagged lines carrying nothing used ([`LineKind::Ignored`]).
    pub fn skipped(&self) -> u64 {
        self.unknown() + self.count(LineKind::Ignored)
    }
    /// Lines that were parsed into something the engine uses.
    pub fn parsed(&self) -> u64 {
        self.lines - self.skipped()
    }
    /// `(kind, count)` for every kind seen at least once.
    pub fn iter(&self) -> impl Iterator<Item = (LineKind, u64)> + '_ {
        LineKind::ALL
            .into_iter()
            .map(|k| (k, self.count(k)))
            .filter(|(_, n)| *n > 0)
    }
}

/// Which config family a config name belongs to. `ptp4l.N` and `ts2phc.N` share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Ptp4l,
    Phc2sys,
    Synce4l,
    Chronyd,
    Other,
}

pub(crate) fn config_key(config: &str) -> (Family, &str) {
    let (prefix, rest) = config.split_once('.').unwrap_or(("", config));
    match prefix {
        "ptp4l" | "ts2phc" => (Family::Ptp4l, rest),
        "phc2sys" => (Family::Phc2sys, rest),
        "synce4l" => (Family::Synce4l, rest),
        "chronyd" => (Family::Chronyd, rest),
        _ => (Family::Other, config),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Ptp4l,
    TBc,
    TGm,
}

/// Latest offset sample of something (offset, max, freq, delay) and its state.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sample {
    pub seen: bool,
    pub offset: i64,
    pub max: i64,
    pub freq: i64,
    pub delay: i64,
    pub state: Option<SyncState>,
}

impl Sample {
    fn set(&mut self, offset: i64, max: i64, freq: i64, delay: Option<i64>) {
        self.seen = true;
        self.offset = offset;
        self.max = max;
        self.freq = freq;
        self.delay = delay.unwrap_or(0);
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Port {
    pub number: u16,
    pub iface: String,
    pub role: PortRole,
    /// `iface` is `port<N>`, made up because neither the line nor a profile named the port
    /// yet; a profile learned later names it.
    pub placeholder: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct IfaceSample {
    pub iface: String,
    pub sample: Sample,
    pub nmea: Option<u8>,
}

#[derive(Debug, Clone)]
pub(crate) struct DpllEntry {
    pub iface: String,
    pub frequency_status: i64,
    pub phase_status: i64,
    pub pps_status: i64,
    pub offset: i64,
    pub state: SyncState,
}

#[derive(Debug, Clone)]
pub(crate) struct GnssEntry {
    pub iface: String,
    pub gps_fix: i64,
    pub offset: i64,
    pub state: SyncState,
    pub published: SyncState,
}

/// The main clock of a ptp4l config: what lock-state reports.
#[derive(Debug, Clone, Default)]
pub(crate) struct Main {
    pub iface: Option<String>,
    pub state: Option<SyncState>,
    pub offset: i64,
    pub holdover_deadline: Option<Nanos>,
}

#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub family: Family,
    pub rest: String,
    pub name: String,
    pub profile: Option<ProfileInfo>,
    pub kind: Kind,
    pub gm_line_seen: bool,
    pub main: Main,
    pub ptp4l: Sample,
    pub ptp4l_summary: bool,
    pub ports: Vec<Port>,
    pub slave_iface: Option<String>,
    pub class: Option<u8>,
    pub ts2phc: Vec<IfaceSample>,
    pub no_source_ts: u8,
    pub dpll: Vec<DpllEntry>,
    pub gnss: Vec<GnssEntry>,
    pub ha: Vec<(String, i64)>,
}

impl Group {
    fn kind_of(profile: Option<&ProfileInfo>) -> Kind {
        match profile.map(|p| p.clock_type) {
            Some(ClockType::TBc) => Kind::TBc,
            Some(ClockType::TGm) => Kind::TGm,
            _ => Kind::Ptp4l,
        }
    }

    pub(crate) fn thresholds(&self, default: Thresholds) -> Thresholds {
        self.profile.as_ref().map_or(default, |p| p.thresholds)
    }

    /// The interface the main clock reports under (before aliasing).
    pub(crate) fn main_iface(&self) -> Option<&str> {
        match self.kind {
            Kind::Ptp4l => self.slave_iface.as_deref().or_else(|| {
                self.profile
                    .as_ref()
                    .and_then(|p| p.interfaces.first())
                    .map(String::as_str)
            }),
            Kind::TBc | Kind::TGm => self.main.iface.as_deref(),
        }
    }

    fn ts2phc_entry(&mut self, iface: &str) -> &mut IfaceSample {
        let i = match self.ts2phc.iter().position(|e| e.iface == iface) {
            Some(i) => i,
            None => {
                self.ts2phc.push(IfaceSample {
                    iface: iface.to_owned(),
                    ..IfaceSample::default()
                });
                self.ts2phc.len() - 1
            }
        };
        &mut self.ts2phc[i]
    }
}

/// The OS clock (CLOCK_REALTIME, disciplined by phc2sys).
#[derive(Debug, Clone, Default)]
pub(crate) struct OsClock {
    pub sample: Sample,
    pub from: &'static str,
    pub group: Option<usize>,
    pub published: Option<SyncState>,
}

#[derive(Debug, Clone)]
pub(crate) struct Proc {
    pub process: String,
    pub config: String,
    pub up: bool,
    pub restarts: u64,
    pub down_deadline: Option<Nanos>,
}

#[derive(Debug, Clone)]
pub(crate) struct SyncePort {
    pub config: String,
    pub device: String,
    pub iface: String,
    pub state: Option<SyncState>,
    pub ql: Option<(u8, Option<u8>)>,
    pub network_option: Option<u8>,
}

pub(crate) struct Ctx {
    pub node: String,
    pub aliases: std::collections::HashMap<String, String>,
    pub downtime: Duration,
    pub default_thresholds: Thresholds,
}

impl Ctx {
    pub(crate) fn alias<'a>(&'a self, iface: &'a str) -> &'a str {
        self.aliases.get(iface).map_or(iface, String::as_str)
    }

    /// `/cluster/node/<n>/<alias>/master`, or `/cluster/node/<n>/master` for an unknown interface.
    pub(crate) fn master_ra(&self, iface: Option<&str>) -> String {
        match iface {
            Some(i) => value_address(&self.node, &format!("{}/master", self.alias(i))),
            None => value_address(&self.node, "master"),
        }
    }
}

/// The sans-IO state engine. See the crate documentation for the model.
pub struct Engine {
    pub(crate) ctx: Ctx,
    pub(crate) profiles: Vec<(String, ProfileInfo)>,
    pub(crate) groups: Vec<Group>,
    pub(crate) os: OsClock,
    pub(crate) sync: Option<SyncState>,
    pub(crate) procs: Vec<Proc>,
    pub(crate) synce: Vec<SyncePort>,
    pub(crate) stats: Stats,
}

fn rank(s: SyncState) -> u8 {
    match s {
        SyncState::Locked | SyncState::Synchronized => 0,
        SyncState::Holdover => 1,
        _ => 2,
    }
}

fn worst(a: Option<SyncState>, b: Option<SyncState>) -> Option<SyncState> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if rank(y) > rank(x) { y } else { x }),
        (x, None) => x,
        (None, y) => y,
    }
}

/// The sidecar's `GenPTPEvent` for a servo sample: HOLDOVER is left only for LOCKED in range
/// (leaving it for FREERUN is the holdover timer's job); otherwise LOCKED iff locked and in range.
fn step(last: Option<SyncState>, locked: bool, in_range: bool) -> SyncState {
    match (last, locked && in_range) {
        (_, true) => SyncState::Locked,
        (Some(SyncState::Holdover), false) => SyncState::Holdover,
        (_, false) => SyncState::Freerun,
    }
}

fn lock_change(ctx: &Ctx, g: &Group) -> Change {
    let ra = ctx.master_ra(g.main_iface());
    Change {
        resource: Resource::LockState,
        values: vec![
            Value::notification(ra.clone(), g.main.state.unwrap_or(SyncState::Freerun)),
            Value::metric(ra, g.main.offset),
        ],
    }
}

impl Engine {
    /// An engine for `cfg`. Nothing is published until lines arrive.
    pub fn new(cfg: EngineConfig) -> Self {
        let mut e = Engine {
            ctx: Ctx {
                node: cfg.node,
                aliases: cfg.aliases,
                downtime: cfg.downtime_threshold,
                default_thresholds: cfg.default_thresholds.sanitized(),
            },
            profiles: Vec::new(),
            groups: Vec::new(),
            os: OsClock::default(),
            sync: None,
            procs: Vec::new(),
            synce: Vec::new(),
            stats: Stats::default(),
        };
        for (c, p) in cfg.profiles {
            e.set_profile(&c, p);
        }
        e
    }

    /// Learns or replaces the profile of `config_name` (thresholds are sanitised as the Go
    /// sidecar does). States are kept.
    pub fn set_profile(&mut self, config_name: &str, mut p: ProfileInfo) {
        p.thresholds = p.thresholds.sanitized();
        let key = config_key(config_name);
        self.profiles.retain(|(c, _)| config_key(c) != key);
        self.profiles.push((config_name.to_owned(), p.clone()));
        if let Some(g) = self
            .groups
            .iter_mut()
            .find(|g| (g.family, g.rest.as_str()) == key)
        {
            if p.clock_type != ClockType::Auto {
                g.kind = Group::kind_of(Some(&p));
            }
            // Ports first seen before the profile (the producer learns the rendered configs
            // some time after the daemon starts ptp4l) get their interface names now.
            for port in g.ports.iter_mut().filter(|port| port.placeholder) {
                if let Some(name) = p.interfaces.get(usize::from(port.number) - 1) {
                    if g.slave_iface.as_deref() == Some(port.iface.as_str()) {
                        g.slave_iface = Some(name.clone());
                    }
                    port.iface = name.clone();
                    port.placeholder = false;
                }
            }
            g.profile = Some(p);
        }
    }

    /// Replaces the interface aliases (e.g. after the daemon's `/port-aliases` answered). Value
    /// addresses of later changes use them.
    pub fn set_aliases(&mut self, aliases: std::collections::HashMap<String, String>) {
        self.ctx.aliases = aliases;
    }

    /// The node name.
    pub fn node(&self) -> &str {
        &self.ctx.node
    }

    /// Counters of the lines seen.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// `CMD RESTART`: forgets every per-process state (clocks, ports, classes, process records,
    /// pending timers, last published states). Profiles, aliases and [`Stats`] are kept. The next
    /// lines publish afresh, as the Go sidecar does after it re-executes itself.
    pub fn reset(&mut self) {
        self.groups.clear();
        self.os = OsClock::default();
        self.sync = None;
        self.procs.clear();
        self.synce.clear();
    }

    /// The earliest time at which [`Engine::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<Nanos> {
        let g = self.groups.iter().filter_map(|g| g.main.holdover_deadline);
        let p = self.procs.iter().filter_map(|p| p.down_deadline);
        g.chain(p).min()
    }

    /// The daemon's connection ended at `now`, and no other daemon connection is open: nothing
    /// reports for the linuxptp processes any more (a killed daemon container takes them with
    /// it). Every process last reported up is taken as down from `now`: published after the
    /// downtime threshold, as a reported down is, unless a daemon reports it up first (a
    /// restarted daemon replays `PTP_PROCESS_STATUS:1` as soon as it connects). The Go producer
    /// keeps the last state for ever in this case (docs/decisions.md).
    pub fn daemon_lost(&mut self, now: Nanos, out: &mut Vec<Change>) {
        let up: Vec<(String, String)> = self
            .procs
            .iter()
            .filter(|p| p.up)
            .map(|p| (p.process.clone(), p.config.clone()))
            .collect();
        for (process, config) in up {
            self.process_status(&process, &config, false, now, out);
        }
    }

    /// Fires the timers due at `now`: holdover → FREERUN, and process downs that outlasted the
    /// downtime threshold.
    pub fn tick(&mut self, now: Nanos, out: &mut Vec<Change>) {
        while let Some(d) = self.next_deadline() {
            if d > now {
                break;
            }
            if let Some(gi) = self
                .groups
                .iter()
                .position(|g| g.main.holdover_deadline == Some(d))
            {
                let g = &mut self.groups[gi];
                g.main.holdover_deadline = None;
                if g.main.state == Some(SyncState::Holdover) {
                    g.main.state = Some(SyncState::Freerun);
                    out.push(lock_change(&self.ctx, g));
                    self.update_sync(out);
                }
            } else if let Some(pi) = self.procs.iter().position(|p| p.down_deadline == Some(d)) {
                self.procs[pi].down_deadline = None;
                let (process, config) = (
                    self.procs[pi].process.clone(),
                    self.procs[pi].config.clone(),
                );
                self.apply_down(&process, &config, out);
            }
        }
    }

    /// Feeds one line received at `now`; the resulting changes are appended to `out` in
    /// publication order. Timers due at `now` fire first.
    pub fn feed(&mut self, line: &str, now: Nanos, out: &mut Vec<Change>) {
        self.tick(now, out);
        let parsed = parse_line(line);
        self.stats.lines += 1;
        self.stats.by_kind[parsed.kind() as usize] += 1;
        self.apply(parsed, now, out);
    }

    fn group_idx(&mut self, config: &str) -> usize {
        let key = config_key(config);
        if let Some(i) = self
            .groups
            .iter()
            .position(|g| (g.family, g.rest.as_str()) == key)
        {
            return i;
        }
        let profile = self
            .profiles
            .iter()
            .find(|(c, _)| config_key(c) == key)
            .map(|(_, p)| p.clone());
        let name = match key.0 {
            Family::Ptp4l => format!("ptp4l.{}", key.1),
            _ => config.to_owned(),
        };
        self.groups.push(Group {
            family: key.0,
            rest: key.1.to_owned(),
            name,
            kind: Group::kind_of(profile.as_ref()),
            profile,
            gm_line_seen: false,
            main: Main::default(),
            ptp4l: Sample::default(),
            ptp4l_summary: false,
            ports: Vec::new(),
            slave_iface: None,
            class: None,
            ts2phc: Vec::new(),
            no_source_ts: 0,
            dpll: Vec::new(),
            gnss: Vec::new(),
            ha: Vec::new(),
        });
        self.groups.len() - 1
    }

    /// Sets a main clock's state; publishes lock-state (then sync-state) on a change.
    fn set_main(&mut self, gi: usize, state: SyncState, out: &mut Vec<Change>) {
        let g = &mut self.groups[gi];
        if g.main.state == Some(state) {
            return;
        }
        if state != SyncState::Holdover {
            g.main.holdover_deadline = None;
        }
        g.main.state = Some(state);
        out.push(lock_change(&self.ctx, g));
        self.update_sync(out);
    }

    fn set_os(&mut self, state: SyncState, out: &mut Vec<Change>) {
        if self.os.published == Some(state) {
            return;
        }
        self.os.published = Some(state);
        let ra = value_address(&self.ctx.node, "CLOCK_REALTIME");
        out.push(Change {
            resource: Resource::OsClockSyncState,
            values: vec![
                Value::notification(ra.clone(), state),
                Value::metric(ra, self.os.sample.offset),
            ],
        });
        self.update_sync(out);
    }

    /// The overall state: worst of every main clock and the OS clock.
    fn overall(&self) -> Option<SyncState> {
        self.groups
            .iter()
            .map(|g| g.main.state)
            .fold(self.os.published, worst)
    }

    fn update_sync(&mut self, out: &mut Vec<Change>) {
        let s = self.overall();
        if s.is_some() && s != self.sync {
            self.sync = s;
            let ra = value_address(&self.ctx.node, "sync/sync-status/sync-state");
            out.push(Change {
                resource: Resource::SyncState,
                values: vec![Value::notification(ra, s.unwrap_or(SyncState::Freerun))],
            });
        }
    }

    fn process_status(
        &mut self,
        process: &str,
        config: &str,
        up: bool,
        now: Nanos,
        out: &mut Vec<Change>,
    ) {
        let pi = match self
            .procs
            .iter()
            .position(|p| p.process == process && p.config == config)
        {
            Some(i) => i,
            None => {
                self.procs.push(Proc {
                    process: process.to_owned(),
                    config: config.to_owned(),
                    up: !up,
                    restarts: 0,
                    down_deadline: None,
                });
                self.procs.len() - 1
            }
        };
        let p = &mut self.procs[pi];
        if up {
            // Every UP report counts, as in Go.
            p.restarts += 1;
            p.up = true;
            // Back within the downtime threshold: the down is never published.
            p.down_deadline = None;
        } else if p.up {
            p.up = false;
            if self.ctx.downtime.is_zero() {
                self.apply_down(process, config, out);
            } else {
                p.down_deadline = Some(now.saturating_add(nanos(self.ctx.downtime)));
            }
        }
    }

    /// A process has been down for longer than the downtime threshold: FREERUN with the
    /// process-down offset for what it drives.
    fn apply_down(&mut self, process: &str, config: &str, out: &mut Vec<Change>) {
        match process {
            "ptp4l" => {
                let gi = self.group_idx(config);
                let g = &mut self.groups[gi];
                g.ptp4l.state = g.ptp4l.state.map(|_| SyncState::Freerun);
                if g.kind == Kind::Ptp4l && g.main.state.is_some() {
                    g.main.offset = FREERUN_OFFSET_PROCESS_DOWN;
                    self.set_main(gi, SyncState::Freerun, out);
                }
                if self.os.group == Some(gi) && self.os.published.is_some() {
                    self.os.sample.offset = FREERUN_OFFSET_PROCESS_DOWN;
                    self.set_os(SyncState::Freerun, out);
                }
            }
            "phc2sys" if self.os.published.is_some() => {
                self.os.sample.offset = FREERUN_OFFSET_PROCESS_DOWN;
                self.os.sample.state = Some(SyncState::Freerun);
                self.set_os(SyncState::Freerun, out);
            }
            "ts2phc" => {
                let gi = self.group_idx(config);
                let g = &mut self.groups[gi];
                for e in &mut g.ts2phc {
                    e.sample.state = Some(SyncState::Freerun);
                    e.sample.offset = FREERUN_OFFSET_PROCESS_DOWN;
                }
                if g.kind == Kind::TGm && g.main.state.is_some() {
                    g.main.offset = FREERUN_OFFSET_PROCESS_DOWN;
                    self.set_main(gi, SyncState::Freerun, out);
                }
            }
            "synce4l" => {
                for i in 0..self.synce.len() {
                    if self.synce[i].config == config && self.synce[i].state.is_some() {
                        self.set_synce_state(i, SyncState::Freerun, out);
                    }
                }
            }
            _ => {}
        }
    }

    fn apply(&mut self, line: ParsedLine<'_>, now: Nanos, out: &mut Vec<Change>) {
        match line {
            ParsedLine::Control(Control::Restart) => self.reset(),
            ParsedLine::Control(Control::LiveStart) => {}
            ParsedLine::ProcessStatus {
                process,
                config,
                up,
            } => self.process_status(process, config, up, now, out),
            line @ (ParsedLine::ClockClassChange { .. }
            | ParsedLine::Ptp4lOffset { .. }
            | ParsedLine::Ptp4lSummary { .. }
            | ParsedLine::PortEvent { .. }
            | ParsedLine::HaProfile { .. }) => self.ptp4l_line(line, now, out),
            line @ (ParsedLine::Phc2sysOffset { .. }
            | ParsedLine::Phc2sysSummary { .. }
            | ParsedLine::Chronyd { .. }) => self.os_clock_line(line, out),
            line @ (ParsedLine::Ts2phcOffset { .. }
            | ParsedLine::NmeaStatus { .. }
            | ParsedLine::SourceTsNotValid { .. }
            | ParsedLine::Dpll { .. }
            | ParsedLine::Gnss { .. }
            | ParsedLine::GmStatus { .. }) => self.gnss_line(line, out),
            line @ ParsedLine::TbcStatus { .. } => self.tbc_line(line, out),
            line @ (ParsedLine::SynceLock { .. } | ParsedLine::SynceQuality { .. }) => {
                self.synce_line(line, out)
            }
            ParsedLine::Ignored { .. } | ParsedLine::Unknown => {}
        }
    }

    /// The current values of `r` (what CurrentState answers); `None` while there is no data.
    pub fn current(&self, r: Resource) -> Option<Vec<Value>> {
        let ctx = &self.ctx;
        let mut v = Vec::new();
        match r {
            Resource::SyncState => {
                let s = self.sync?;
                v.push(Value::notification(
                    value_address(&ctx.node, "sync/sync-status/sync-state"),
                    s,
                ));
            }
            Resource::OsClockSyncState => {
                let s = self.os.published?;
                let ra = value_address(&ctx.node, "CLOCK_REALTIME");
                v.push(Value::notification(ra.clone(), s));
                v.push(Value::metric(ra, self.os.sample.offset));
            }
            Resource::LockState => {
                for g in self.sorted_groups() {
                    if g.main.state.is_some() {
                        v.extend(lock_change(ctx, g).values);
                    }
                }
            }
            Resource::ClockClass => {
                for g in self.sorted_groups() {
                    if let Some(c) = g.class {
                        v.push(Value::metric(ctx.master_ra(g.main_iface()), c));
                    }
                }
            }
            Resource::GnssSyncStatus => {
                for g in self.sorted_groups() {
                    for e in &g.gnss {
                        gnss_values(ctx, e, &mut v);
                    }
                }
            }
            Resource::SynceLockState => {
                for p in &self.synce {
                    if let Some(s) = p.state {
                        v.push(Value::notification(synce_ra(ctx, p), s));
                    }
                }
            }
            Resource::SynceClockQuality => {
                for p in &self.synce {
                    synce_quality_values(ctx, p, &mut v);
                }
            }
        }
        (!v.is_empty()).then_some(v)
    }

    pub(crate) fn sorted_groups(&self) -> Vec<&Group> {
        let mut gs: Vec<&Group> = self.groups.iter().collect();
        gs.sort_by(|a, b| a.name.cmp(&b.name));
        gs
    }
}
