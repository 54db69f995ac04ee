//! Validation and rendering: profiles → a [`Plan`] of config files and command lines, exactly
//! as linuxptp-daemon's `applyNodePtpProfile` builds them (reference §1.2–§1.3). Pure: nothing
//! is written or spawned here.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::conf::{GLOBAL, LinuxptpConf};
use crate::error::{ConfigError, FieldError};
use crate::profile::PtpProfile;

/// A linuxptp program this daemon runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProcessKind {
    /// ts2phc (started first within a profile, as in Go's `ptpProcesses` order).
    Ts2phc,
    /// ptp4l.
    Ptp4l,
    /// phc2sys (started once the profile's ptp4l/ts2phc reports a sane offset).
    Phc2sys,
}

impl ProcessKind {
    /// The program name (`ptp4l`).
    pub const fn name(self) -> &'static str {
        match self {
            ProcessKind::Ts2phc => "ts2phc",
            ProcessKind::Ptp4l => "ptp4l",
            ProcessKind::Phc2sys => "phc2sys",
        }
    }
}

impl fmt::Display for ProcessKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where and how to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderOptions {
    /// Where configs and sockets go (Go: `/var/run`).
    pub run_dir: PathBuf,
    /// Where the linuxptp binaries are (Go: `/usr/sbin`).
    pub bin_dir: PathBuf,
    /// `chrt` for `SCHED_FIFO` (Go: `/bin/chrt`).
    pub chrt: PathBuf,
    /// The leap-seconds file to set as `leapfile` for ts2phc (Go: `/etc/leap/<NODE_NAME>`);
    /// `None` leaves `leapfile` as the profile wrote it.
    pub leapfile: Option<PathBuf>,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            run_dir: PathBuf::from("/var/run"),
            bin_dir: PathBuf::from("/usr/sbin"),
            chrt: PathBuf::from("/bin/chrt"),
            leapfile: None,
        }
    }
}

/// The Go daemon's inferred clock type of a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockKind {
    /// No slave port defined: a grandmaster (or a free-running master).
    Gm,
    /// A slave with one interface section.
    Oc,
    /// A slave with several interface sections.
    Bc,
}

/// One process to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessPlan {
    /// The program.
    pub kind: ProcessKind,
    /// Its profile's name.
    pub profile: String,
    /// Its profile's run id.
    pub run_id: usize,
    /// The config file name (`ptp4l.0.config`, `phc2sys.0.config`).
    pub config_file: String,
    /// The config file path.
    pub config_path: PathBuf,
    /// The rendered config text.
    pub config_text: String,
    /// The `message_tag` (`[ptp4l.0.config:{level}]`).
    pub message_tag: String,
    /// The config name of its lines and of its `PTP_PROCESS_STATUS` lines (`ptp4l.0.config`
    /// for ptp4l and phc2sys, `ts2phc.0.config` for ts2phc).
    pub status_config: String,
    /// The command line (program first), before any command prefix.
    pub argv: Vec<String>,
    /// For phc2sys: the configs (`ptp4l.N.config`, `ts2phc.N.config`) one of whose offsets
    /// must be below 1 s before it is started. Empty: start at once.
    pub start_after_offset_from: Vec<String>,
    /// What the operator should know about this process as rendered (logged when applied).
    pub warnings: Vec<String>,
}

/// One profile's processes.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfilePlan {
    /// Run id (position after sorting).
    pub run_id: usize,
    /// The profile as given.
    pub profile: PtpProfile,
    /// Its processes in start order.
    pub processes: Vec<ProcessPlan>,
    /// ptp4l's interface sections in order (port N is the N-th).
    pub interfaces: Vec<String>,
    /// The inferred clock type.
    pub clock_kind: ClockKind,
}

impl ProfilePlan {
    /// What the state engine needs to know of this profile's `ptp4l.N.config`.
    pub fn profile_info(&self) -> ptp_state::ProfileInfo {
        let settings = &self.profile.ptp_settings;
        let clock_type = match settings.get("clockType").map(String::as_str) {
            Some("T-GM") => ptp_state::ClockType::TGm,
            // A T-TSC runs the T-BC machine without TT (its lines are the T-BC's).
            Some("T-BC" | "T-TSC") => ptp_state::ClockType::TBc,
            _ => match self.clock_kind {
                ClockKind::Oc => ptp_state::ClockType::Oc,
                ClockKind::Bc => ptp_state::ClockType::Bc,
                ClockKind::Gm => ptp_state::ClockType::Auto,
            },
        };
        ptp_state::ProfileInfo {
            name: self.profile.name().to_owned(),
            thresholds: self.profile.thresholds(),
            interfaces: self.interfaces.clone(),
            clock_type,
            leading_interface: settings.get("leadingInterface").cloned(),
            extra_thresholds: self.profile.tbc_thresholds(),
        }
    }
}

/// Everything a set of profiles turns into.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// Profiles in run-id order.
    pub profiles: Vec<ProfilePlan>,
}

impl Plan {
    /// Every process, in start order.
    pub fn processes(&self) -> impl Iterator<Item = &ProcessPlan> {
        self.profiles.iter().flat_map(|p| p.processes.iter())
    }

    /// `(ptp4l.N.config, ProfileInfo)` for the state engine.
    pub fn profile_infos(&self) -> Vec<(String, ptp_state::ProfileInfo)> {
        self.profiles
            .iter()
            .map(|p| (format!("ptp4l.{}.config", p.run_id), p.profile_info()))
            .collect()
    }
}

const ALLOWED_POLICIES: [&str; 2] = ["SCHED_OTHER", "SCHED_FIFO"];

fn opts_run(o: &Option<String>) -> bool {
    o.as_deref().is_some_and(|s| !s.is_empty())
}

fn ptp4l_opts(p: &PtpProfile) -> Option<&str> {
    match p.ptp4l_opts.as_deref() {
        None => Some(" "),
        Some("") => None,
        Some(s) => Some(s),
    }
}

fn tokens(s: &str) -> impl Iterator<Item = &str> {
    s.split_whitespace()
}

/// The Go slave test on ptp4lOpts and the parsed ptp4lConf (`-s`, `--slaveOnly 1`, ...).
fn has_slave(opts: &str, conf: &LinuxptpConf) -> bool {
    let t: Vec<&str> = tokens(opts).collect();
    let flag = t.iter().enumerate().any(|(i, a)| {
        *a == "-s"
            || *a == "--slaveOnly=1"
            || *a == "--clientOnly=1"
            || ((*a == "--slaveOnly" || *a == "--clientOnly") && t.get(i + 1) == Some(&"1"))
    });
    flag || conf.sections.iter().any(|s| {
        s.options.iter().any(|(k, v)| {
            (k == "masterOnly" && v == "0" && s.name != GLOBAL)
                || (k == "serverOnly" && v == "0")
                || (k == "slaveOnly" && v == "1")
                || (k == "clientOnly" && v == "1")
        })
    })
}

/// A ptp4l option: `--key value` / `--key=value` on the command line (which wins, as in ptp4l),
/// else the config's `[global]` value.
pub fn ptp4l_option<'a>(opts: &'a str, conf: &'a LinuxptpConf, key: &str) -> Option<&'a str> {
    let t: Vec<&str> = tokens(opts).collect();
    let flag = format!("--{key}");
    let mut found = None;
    for (i, a) in t.iter().enumerate() {
        if *a == flag {
            found = t.get(i + 1).copied();
        } else if let Some(v) = a.strip_prefix(&format!("{flag}=")) {
            found = Some(v);
        }
    }
    found.or_else(|| conf.get(GLOBAL, key))
}

/// ITU-T G.8275.1 admission (clock-requirements T-GM §3.2, FUNC-TGM002-R5): a profile that
/// declares the telecom profile (`dataset_comparison G.8275.x` with a domainNumber of 24–43, the
/// G.8275.1 range; 44–63 is G.8275.2, not checked) must use what G.8275.1 mandates. Returns
/// (parameter, problem) for each violation.
fn g8275_1_violations(opts: &str, conf: &LinuxptpConf) -> Vec<(&'static str, String)> {
    let get = |k: &str| ptp4l_option(opts, conf, k);
    if get("dataset_comparison") != Some("G.8275.x") {
        return Vec::new();
    }
    let domain = get("domainNumber").and_then(|d| d.parse::<u8>().ok());
    if !domain.is_some_and(|d| (24..=43).contains(&d)) {
        return Vec::new();
    }
    let t: Vec<&str> = tokens(opts).collect();
    let mut out = Vec::new();
    let transport = if t.contains(&"-4") {
        Some("UDPv4")
    } else if t.contains(&"-6") {
        Some("UDPv6")
    } else if t.contains(&"-2") {
        Some("L2")
    } else {
        get("network_transport")
    };
    if transport.is_some_and(|v| v != "L2") {
        out.push((
            "network_transport",
            format!(
                "{} (G.8275.1 runs over Ethernet: L2, -2)",
                transport.unwrap_or("")
            ),
        ));
    }
    let stamping = if t.contains(&"-S") {
        Some("software")
    } else if t.contains(&"-L") {
        Some("legacy")
    } else {
        get("time_stamping")
    };
    if stamping.is_some_and(|v| v != "hardware" && v != "onestep" && v != "p2p1step") {
        out.push((
            "time_stamping",
            format!(
                "{} (G.8275.1 needs hardware timestamps)",
                stamping.unwrap_or("")
            ),
        ));
    }
    let delay = if t.contains(&"-P") {
        Some("P2P")
    } else if t.contains(&"-E") {
        Some("E2E")
    } else {
        get("delay_mechanism")
    };
    if delay.is_some_and(|v| v != "E2E") {
        out.push((
            "delay_mechanism",
            format!(
                "{} (G.8275.1 uses the end-to-end delay request mechanism: E2E)",
                delay.unwrap_or("")
            ),
        ));
    }
    for (key, want) in [("transportSpecific", "0"), ("priority1", "128")] {
        if let Some(v) = get(key) {
            let n = v
                .strip_prefix("0x")
                .map(|h| u32::from_str_radix(h, 16).ok())
                .unwrap_or_else(|| v.parse::<u32>().ok());
            if n != want.parse().ok() {
                out.push((key, format!("{v} (G.8275.1 mandates {want})")));
            }
        }
    }
    if let Some(v) = get("clock_type")
        && v != "OC"
        && v != "BC"
    {
        out.push(("clock_type", format!("{v} (G.8275.1 allows OC or BC)")));
    }
    out
}

/// Checks every profile and field; returns all problems at once. A profile set that passes
/// renders without error.
pub fn validate(profiles: &[PtpProfile]) -> Result<(), ConfigError> {
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    for (i, p) in profiles.iter().enumerate() {
        let label = match p.name.as_deref() {
            Some(n) if !n.is_empty() => n.to_owned(),
            _ => format!("profile[{i}]"),
        };
        let who = Some(label.as_str());
        let mut err = |field: &str, problem: String, fix: String| {
            errs.push(FieldError::new(who, field, problem, fix));
        };
        match p.name.as_deref() {
            None | Some("") => err("name", "missing".into(), "give the profile a name".into()),
            Some(n) => {
                if !n
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    err(
                        "name",
                        format!(
                            "{n:?} has characters other than ASCII letters, digits, '_' and '-'"
                        ),
                        "the sidecar reads it with `profile: \\s*([\\w-_]+)`; rename it".into(),
                    );
                }
                if !names.insert(n.to_owned()) {
                    err(
                        "name",
                        format!("{n:?} is used twice"),
                        "give each profile a unique name".into(),
                    );
                }
            }
        }
        if let Some(iface) = p.interface.as_deref().filter(|s| !s.is_empty())
            && (iface.len() > 15
                || iface
                    .chars()
                    .any(|c| c.is_whitespace() || "[]/:".contains(c)))
        {
            err(
                "interface",
                format!("{iface:?} is not a network interface name"),
                "use one name of at most 15 characters without blanks, '/', ':' or brackets".into(),
            );
        }
        let mut parsed_ptp4l = None;
        for (field, text) in [
            ("ptp4lConf", &p.ptp4l_conf),
            ("phc2sysConf", &p.phc2sys_conf),
            ("ts2phcConf", &p.ts2phc_conf),
        ] {
            match LinuxptpConf::parse(text.as_deref().unwrap_or("")) {
                Ok(c) => {
                    if field == "ptp4lConf" {
                        parsed_ptp4l = Some(c);
                    }
                }
                Err(e) => err(field, format!("line {}: {}", e.line, e.problem), e.fix),
            }
        }
        if let Some(conf) = &parsed_ptp4l {
            for (param, problem) in g8275_1_violations(p.ptp4l_opts.as_deref().unwrap_or(""), conf)
            {
                err(
                    &format!("ptp4l {param}"),
                    problem,
                    "a G.8275.1 profile (dataset_comparison G.8275.x, domainNumber 24-43) must use the profile's mandated value; for a software testbed, leave dataset_comparison at ieee1588".into(),
                );
            }
        }
        for (field, o) in [
            ("ptp4lOpts", p.ptp4l_opts.as_deref()),
            ("phc2sysOpts", p.phc2sys_opts.as_deref()),
            ("ts2phcOpts", p.ts2phc_opts.as_deref()),
        ] {
            let Some(o) = o else { continue };
            if tokens(o).any(|t| t == "-f" || t.starts_with("-f/")) {
                err(
                    field,
                    "contains -f; the daemon passes -f <rendered config> itself".into(),
                    format!(
                        "remove -f and put the settings in {}",
                        field.replace("Opts", "Conf")
                    ),
                );
            }
            if o.contains(['"', '\'']) {
                err(
                    field,
                    "contains quotes; options are split on blanks, quotes are not interpreted"
                        .into(),
                    "remove the quotes".into(),
                );
            }
        }
        for (field, o) in [
            ("synce4lOpts", &p.synce4l_opts),
            ("chronydOpts", &p.chronyd_opts),
        ] {
            if opts_run(o) {
                err(
                    field,
                    "this daemon runs ptp4l, phc2sys and ts2phc only".into(),
                    format!("remove {field} (or run that profile with the Go linuxptp-daemon)"),
                );
            }
        }
        if let (Some(opts), Some(conf)) = (ptp4l_opts(p), &parsed_ptp4l) {
            let has_iface = p.interface.as_deref().is_some_and(|s| !s.is_empty())
                || !conf.interfaces().is_empty()
                || tokens(opts).any(|t| t == "-i" || t.starts_with("--interface"));
            if !has_iface {
                err(
                    "interface",
                    "ptp4l would run without an interface".into(),
                    "set `interface: <nic>`, add a `[<nic>]` section to ptp4lConf, or set \
                     `ptp4lOpts: \"\"` for a profile without ptp4l"
                        .into(),
                );
            }
        }
        let fifo = match p.ptp_scheduling_policy.as_deref() {
            None | Some("") => false,
            Some(s) if ALLOWED_POLICIES.contains(&s) => s == "SCHED_FIFO",
            Some(s) => {
                err(
                    "ptpSchedulingPolicy",
                    format!("{s:?} is not a policy"),
                    "use SCHED_OTHER or SCHED_FIFO".into(),
                );
                false
            }
        };
        match p.ptp_scheduling_priority {
            Some(n) if !(1..=65).contains(&n) => err(
                "ptpSchedulingPriority",
                format!("{n} is outside 1..65"),
                "use a priority from 1 to 65".into(),
            ),
            None if fifo => err(
                "ptpSchedulingPriority",
                "missing; SCHED_FIFO needs a priority".into(),
                "set ptpSchedulingPriority: 1..65 (e.g. 10)".into(),
            ),
            _ => {}
        }
        if let Some(t) = &p.ptp_clock_threshold {
            if let Some(h) = t.hold_over_timeout
                && h < 0
            {
                err(
                    "ptpClockThreshold.holdOverTimeout",
                    format!("{h} is negative"),
                    "use seconds >= 0 (default 5)".into(),
                );
            }
            let th = p.thresholds();
            if th.min_offset >= th.max_offset {
                err(
                    "ptpClockThreshold.minOffsetThreshold",
                    format!(
                        "{} is not below maxOffsetThreshold {}; no offset could ever be in range",
                        th.min_offset, th.max_offset
                    ),
                    "make minOffsetThreshold < maxOffsetThreshold (defaults -100 and 100 ns)"
                        .into(),
                );
            }
        }
        let s = &p.ptp_settings;
        if let Some(ct) = s.get("clockType")
            && !matches!(ct.as_str(), "T-GM" | "T-BC" | "T-TSC")
        {
            err(
                "ptpSettings.clockType",
                format!("{ct:?} is not a clock type"),
                "use T-GM, T-BC or T-TSC, or leave it out to infer OC/BC/GM from the ptp4l config"
                    .into(),
            );
        }
        if let Some(ha) = s.get("haProfiles") {
            for name in ha.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let target = profiles.iter().find(|q| q.name.as_deref() == Some(name));
                match target {
                    None => err(
                        "ptpSettings.haProfiles",
                        format!("names {name:?}, which is not a profile of this node"),
                        "list existing profile names, comma separated".into(),
                    ),
                    Some(q) if ptp4l_opts(q).is_none() => err(
                        "ptpSettings.haProfiles",
                        format!("profile {name:?} runs no ptp4l"),
                        "list profiles that run ptp4l".into(),
                    ),
                    _ => {}
                }
            }
            if !opts_run(&p.phc2sys_opts) {
                err(
                    "ptpSettings.haProfiles",
                    "set, but the profile runs no phc2sys".into(),
                    "set phc2sysOpts, or remove haProfiles".into(),
                );
            }
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            origin: "<input>".into(),
            errors: errs,
        })
    }
}

/// Go's profile order: profiles without `phc2sysOpts` first, then by name.
pub fn sort_profiles(profiles: &[PtpProfile]) -> Vec<PtpProfile> {
    let mut v = profiles.to_vec();
    v.sort_by(|a, b| {
        (opts_run(&a.phc2sys_opts), a.name()).cmp(&(opts_run(&b.phc2sys_opts), b.name()))
    });
    v
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Validates, sorts and renders `profiles` into a [`Plan`]. On error nothing is rendered.
pub fn plan(profiles: &[PtpProfile], opts: &RenderOptions) -> Result<Plan, ConfigError> {
    validate(profiles)?;
    let sorted = sort_profiles(profiles);
    let run_id_of = |name: &str| sorted.iter().position(|p| p.name() == name);
    let mut plan = Plan::default();
    for (run_id, p) in sorted.iter().enumerate() {
        let name = p.name();
        let sock = path_str(&opts.run_dir.join(format!("ptp4l.{run_id}.socket")));
        let ptp4l_cfg = format!("ptp4l.{run_id}.config");
        let ha: Vec<usize> = p
            .ptp_settings
            .get("haProfiles")
            .map(|s| s.split(',').map(str::trim).filter_map(&run_id_of).collect())
            .unwrap_or_default();
        let ptp4l_conf = LinuxptpConf::parse(p.ptp4l_conf.as_deref().unwrap_or(""))
            .map_err(|e| internal(name, &e.problem))?;
        let mut clock_kind = ClockKind::Gm;
        let mut interfaces = Vec::new();
        let mut processes = Vec::new();
        let ts2phc_runs = opts_run(&p.ts2phc_opts);
        for kind in [
            ProcessKind::Ts2phc,
            ProcessKind::Ptp4l,
            ProcessKind::Phc2sys,
        ] {
            let (opts_in, conf_in) = match kind {
                ProcessKind::Ptp4l => (ptp4l_opts(p), &p.ptp4l_conf),
                ProcessKind::Phc2sys => (p.phc2sys_opts.as_deref(), &p.phc2sys_conf),
                ProcessKind::Ts2phc => (p.ts2phc_opts.as_deref(), &p.ts2phc_conf),
            };
            let Some(opts_in) = opts_in.filter(|s| !s.is_empty()) else {
                continue;
            };
            let mut conf = LinuxptpConf::parse(conf_in.as_deref().unwrap_or(""))
                .map_err(|e| internal(name, &e.problem))?;
            let config_file = format!("{kind}.{run_id}.config");
            let (tag, socket) = match kind {
                ProcessKind::Ptp4l => (format!("[{ptp4l_cfg}:{{level}}]"), Some(sock.clone())),
                ProcessKind::Phc2sys if ha.is_empty() => {
                    (format!("[{ptp4l_cfg}:{{level}}]"), Some(sock.clone()))
                }
                ProcessKind::Phc2sys => (format!("[phc2sys.{run_id}.config:{{level}}]"), None),
                ProcessKind::Ts2phc => (
                    format!("[ts2phc.{run_id}.config:{{level}}]"),
                    Some(sock.clone()),
                ),
            };
            if let Some(iface) = p.interface.as_deref().filter(|s| !s.is_empty()) {
                conf.add_section(&format!("[{iface}]"));
            }
            conf.set(GLOBAL, "message_tag", &tag, true);
            if let Some(s) = &socket {
                conf.set(GLOBAL, "uds_address", s, true);
            }
            if let Some(leap) = &opts.leapfile
                && (kind == ProcessKind::Ts2phc || conf.get(GLOBAL, "leapfile").is_some())
            {
                conf.set(GLOBAL, "leapfile", &path_str(leap), true);
            }
            let mut o = opts_in.to_owned();
            let mut warnings = Vec::new();
            match kind {
                ProcessKind::Ptp4l => {
                    if !o.contains("-m") {
                        o.push_str(" -m");
                    }
                    if !o.contains("--summary_interval")
                        && conf.get(GLOBAL, "summary_interval").is_none()
                    {
                        conf.set(GLOBAL, "summary_interval", "1", true);
                        warnings.push(format!(
                            "profile {name:?}: ptp4l gets summary_interval 1 (neither ptp4lOpts nor ptp4lConf sets one): with a grandmaster sending Sync more often than every 2 s, ptp4l then prints only summary lines, which carry no servo state, so no lock-state (LOCKED/HOLDOVER/FREERUN) is decided for this clock; add --summary_interval -4 to ptp4lOpts, as the PTP operator's documentation asks when events are enabled"
                        ));
                    }
                    clock_kind = if !has_slave(&o, &ptp4l_conf) {
                        ClockKind::Gm
                    } else if ptp4l_conf.interfaces().len() > 1 {
                        ClockKind::Bc
                    } else {
                        ClockKind::Oc
                    };
                    interfaces = conf.interfaces();
                }
                ProcessKind::Phc2sys | ProcessKind::Ts2phc => {
                    if !o.contains("-m") {
                        o.push_str(" -m");
                    }
                }
            }
            let config_path = opts.run_dir.join(&config_file);
            let mut argv = Vec::new();
            if p.ptp_scheduling_policy.as_deref() == Some("SCHED_FIFO")
                && let Some(prio) = p.ptp_scheduling_priority
            {
                argv.extend([path_str(&opts.chrt), "-f".into(), prio.to_string()]);
            }
            argv.extend([
                path_str(&opts.bin_dir.join(kind.name())),
                "-f".into(),
                path_str(&config_path),
            ]);
            argv.extend(tokens(&o).map(str::to_owned));
            let mut gate = Vec::new();
            if kind == ProcessKind::Phc2sys {
                for id in &ha {
                    argv.extend([
                        "-z".into(),
                        path_str(&opts.run_dir.join(format!("ptp4l.{id}.socket"))),
                    ]);
                    gate.push(format!("ptp4l.{id}.config"));
                }
                if ha.is_empty() {
                    if ptp4l_opts(p).is_some() {
                        gate.push(ptp4l_cfg.clone());
                    }
                    if ts2phc_runs {
                        gate.push(format!("ts2phc.{run_id}.config"));
                    }
                }
            }
            let status_config = tag
                .trim_start_matches('[')
                .split([':', ']'])
                .next()
                .unwrap_or("")
                .to_owned();
            processes.push(ProcessPlan {
                kind,
                profile: name.to_owned(),
                run_id,
                config_text: conf.render(name),
                config_file,
                config_path,
                message_tag: tag,
                status_config,
                argv,
                start_after_offset_from: gate,
                warnings,
            });
        }
        if interfaces.is_empty() {
            interfaces = ptp4l_conf.interfaces();
            if let Some(iface) = p.interface.as_deref().filter(|s| !s.is_empty())
                && !interfaces.iter().any(|i| i == iface)
            {
                interfaces.push(iface.to_owned());
            }
        }
        plan.profiles.push(ProfilePlan {
            run_id,
            profile: p.clone(),
            processes,
            interfaces,
            clock_kind,
        });
    }
    Ok(plan)
}

fn internal(profile: &str, problem: &str) -> ConfigError {
    ConfigError::Invalid {
        origin: "<input>".into(),
        errors: vec![FieldError::new(
            Some(profile),
            "profile",
            problem,
            "report this as a bug",
        )],
    }
}
