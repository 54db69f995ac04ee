//! The line parser: one log line in, one borrowed [`ParsedLine`] out, no allocation.
//!
//! Accepted shapes (leading/trailing whitespace and a trailing `\r` are ignored):
//!
//! * raw linuxptp output `<proc>[<monotonic s.ms>]: [<config>(:<level>)?] <payload>`, where the tag
//!   is `[ptp4l.0.config:6]`, `[ptp4l.0.config]` or the literal `[ptp4l.0.config:{level}]`;
//! * daemon-generated lines `<src>[<unix s>]:[<config>] <payload>` (no space after `]:`);
//! * either of those embedded in a klog line of the daemon
//!   (`I0908 10:12:06.573427 624338 daemon.go:928] ptp4l[1757326326]:[ptp4l.0.config] ...`);
//! * the control lines `CMD RESTART` and `CMD LIVE_START`.
//!
//! Anything else is [`ParsedLine::Unknown`]; a tagged line of a known process whose payload carries
//! nothing the engine uses is [`ParsedLine::Ignored`]. Parsing never fails and never panics.

use oran_api::SyncState;

/// The role a ptp4l port takes, as `openshift_ptp_interface_role` encodes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortRole {
    /// 0
    Passive,
    /// 1
    Slave,
    /// 2
    Master,
    /// 3
    Faulty,
    /// 4
    Unknown,
    /// 5
    Listening,
}

impl PortRole {
    /// The metric value (`0 = PASSIVE, 1 = SLAVE, 2 = MASTER, 3 = FAULTY, 4 = UNKNOWN, 5 = LISTENING`).
    pub const fn metric_value(self) -> i64 {
        match self {
            PortRole::Passive => 0,
            PortRole::Slave => 1,
            PortRole::Master => 2,
            PortRole::Faulty => 3,
            PortRole::Unknown => 4,
            PortRole::Listening => 5,
        }
    }
}

/// What a port state change means: the new role and whether, coming from SLAVE, it puts the
/// clock in holdover (linuxptp-daemon `determineRole`, tested in the Go order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortChange {
    /// The role after the change.
    pub role: PortRole,
    /// `true` for FAULTY, `SLAVE to MASTER/GRAND_MASTER` and `SLAVE to LISTENING`: the changes that,
    /// from a SLAVE port, start holdover.
    pub implies_holdover: bool,
}

/// Classifies the event text of a port line (`SLAVE to FAULTY on FAULT_DETECTED ...`).
pub fn classify_port_event(event: &str) -> Option<PortChange> {
    let has = |s: &str| event.contains(s);
    let c = |role, implies_holdover| {
        Some(PortChange {
            role,
            implies_holdover,
        })
    };
    if has("UNCALIBRATED to SLAVE") || has("LISTENING to SLAVE") {
        c(PortRole::Slave, false)
    } else if has("UNCALIBRATED to PASSIVE")
        || has("MASTER to PASSIVE")
        || has("SLAVE to PASSIVE")
        || has("LISTENING to PASSIVE")
    {
        c(PortRole::Passive, false)
    } else if has("UNCALIBRATED to MASTER") || has("LISTENING to MASTER") {
        c(PortRole::Master, false)
    } else if has("FAULT_DETECTED")
        || has("SYNCHRONIZATION_FAULT")
        || has("SLAVE to UNCALIBRATED")
        || has("MASTER to UNCALIBRATED on RS_SLAVE")
        || has("LISTENING to UNCALIBRATED on RS_SLAVE")
    {
        c(PortRole::Faulty, true)
    } else if has("SLAVE to MASTER") || has("SLAVE to GRAND_MASTER") {
        c(PortRole::Master, true)
    } else if has("SLAVE to LISTENING") {
        c(PortRole::Listening, true)
    } else if has("FAULTY to LISTENING")
        || has("UNCALIBRATED to LISTENING")
        || has("INITIALIZING to LISTENING")
    {
        c(PortRole::Listening, false)
    } else {
        None
    }
}

/// A servo state token of raw linuxptp output (`s0`..`s3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Servo(pub u8);

impl Servo {
    /// `s2`/`s3`: the servo is locked. `s0`/`s1` (unlocked, clock step) are not.
    pub const fn locked(self) -> bool {
        matches!(self.0, 2 | 3)
    }
    /// Only `s0`..`s3` carry a state; the sidecar skips the line otherwise.
    pub const fn valid(self) -> bool {
        self.0 <= 3
    }
}

/// The control lines of the socket protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// `CMD RESTART`: the daemon re-applied its profiles; drop per-process state.
    Restart,
    /// `CMD LIVE_START`: the replay is over, live lines follow.
    LiveStart,
}

/// One parsed line. Every `&str` borrows from the input line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParsedLine<'a> {
    /// `CMD RESTART` / `CMD LIVE_START`.
    Control(Control),
    /// `PTP_PROCESS_STATUS:N` or `PTP_PROCESS_STATUS N`.
    ProcessStatus {
        /// The process (`ptp4l`, `phc2sys`, `ts2phc`, ...).
        process: &'a str,
        /// The config tag with the level removed (`ptp4l.0.config`).
        config: &'a str,
        /// `1` → up, anything else → down.
        up: bool,
    },
    /// `CLOCK_CLASS_CHANGE N` (N may be written as a float, `248.000000`).
    ClockClassChange {
        /// The config tag.
        config: &'a str,
        /// The class.
        class: u8,
    },
    /// ptp4l `master offset X sN freq F path delay D`.
    Ptp4lOffset {
        /// The config tag.
        config: &'a str,
        /// The servo state.
        servo: Servo,
        /// Offset (ns).
        offset: i64,
        /// Frequency adjustment (ppb).
        freq: i64,
        /// Path delay (ns), absent on some lines.
        delay: Option<i64>,
    },
    /// ptp4l summary `rms R max M freq F +/- S [delay D +/- S]`.
    Ptp4lSummary {
        /// The config tag.
        config: &'a str,
        /// RMS offset (ns).
        rms: i64,
        /// Max offset (ns).
        max: i64,
        /// Frequency adjustment.
        freq: i64,
        /// Path delay.
        delay: Option<i64>,
    },
    /// ptp4l `port N (iface): <event>` or `port N: <event>` (linuxptp 3.1).
    PortEvent {
        /// The config tag.
        config: &'a str,
        /// The port number (1-based; 0 is the UDS port).
        port: u16,
        /// The interface name, when printed.
        iface: Option<&'a str>,
        /// The event text after `: `.
        event: &'a str,
        /// Its classification; `None` for events that change no role (`new foreign master`, ...).
        change: Option<PortChange>,
    },
    /// phc2sys `<clock> phc|sys offset X sN freq F [delay D]`.
    Phc2sysOffset {
        /// The config tag.
        config: &'a str,
        /// `CLOCK_REALTIME` or a NIC name.
        clock: &'a str,
        /// `phc` or `sys`.
        source: &'a str,
        /// The servo state.
        servo: Servo,
        /// Offset (ns).
        offset: i64,
        /// Frequency adjustment.
        freq: i64,
        /// Delay (ns).
        delay: Option<i64>,
    },
    /// phc2sys summary `<clock> rms R max M freq F +/- S [delay D +/- S]`.
    Phc2sysSummary {
        /// The config tag.
        config: &'a str,
        /// `CLOCK_REALTIME` or a NIC name.
        clock: &'a str,
        /// RMS offset.
        rms: i64,
        /// Max offset.
        max: i64,
        /// Frequency adjustment.
        freq: i64,
        /// Delay.
        delay: Option<i64>,
    },
    /// ts2phc `<iface> [master] offset X [sN] freq F [holdover]`.
    Ts2phcOffset {
        /// The config tag.
        config: &'a str,
        /// Interface (or `/dev/ptpN` in a raw log).
        iface: &'a str,
        /// Offset (ns).
        offset: i64,
        /// Servo state when printed.
        servo: Option<Servo>,
        /// Frequency adjustment.
        freq: i64,
        /// A trailing `holdover`.
        holdover: bool,
    },
    /// Daemon-generated ts2phc `<iface> nmea_status N offset X sN`.
    NmeaStatus {
        /// The config tag.
        config: &'a str,
        /// Interface.
        iface: &'a str,
        /// 0 unavailable, 1 available.
        status: u8,
        /// Offset.
        offset: i64,
    },
    /// ts2phc `source ts not valid`.
    SourceTsNotValid {
        /// The config tag.
        config: &'a str,
    },
    /// Daemon-generated `dpll[..]:[cfg] <iface> frequency_status N offset N phase_status N pps_status N sN`.
    Dpll {
        /// The config tag.
        config: &'a str,
        /// Interface.
        iface: &'a str,
        /// DPLL frequency status (-1..4).
        frequency_status: i64,
        /// DPLL phase status (-1..4).
        phase_status: i64,
        /// 1PPS status (0/1).
        pps_status: i64,
        /// Phase offset (ns).
        offset: i64,
        /// The daemon's decision (`s0` FREERUN, `s1` HOLDOVER, `s2` LOCKED).
        state: SyncState,
    },
    /// Daemon-generated `gnss[..]:[cfg] <iface> gnss_status N offset N sN`.
    Gnss {
        /// The config tag.
        config: &'a str,
        /// Interface.
        iface: &'a str,
        /// gpsFix (0 NOFIX .. 5 time only).
        gnss_status: i64,
        /// Offset (ns).
        offset: i64,
        /// The daemon's GNSS state.
        state: SyncState,
    },
    /// Daemon-generated `GM[..]:[cfg] <iface> T-GM-STATUS sN`.
    GmStatus {
        /// The config tag.
        config: &'a str,
        /// The leading interface.
        iface: &'a str,
        /// The T-GM state.
        state: SyncState,
    },
    /// Daemon-generated `T-BC[..]:[cfg] <iface> offset N T-BC-STATUS sN`.
    TbcStatus {
        /// The config tag.
        config: &'a str,
        /// The leading interface.
        iface: &'a str,
        /// Offset (ns).
        offset: i64,
        /// The T-BC state.
        state: SyncState,
    },
    /// synce4l `<iface> device D eec_state S network_option N sN`.
    SynceLock {
        /// The config tag.
        config: &'a str,
        /// Interface.
        iface: &'a str,
        /// The SyncE device.
        device: &'a str,
        /// The state (from `sN`, else from `eec_state`).
        state: SyncState,
    },
    /// synce4l `<iface> clock_quality Q device D ext_ql 0x20 network_option N ql 0x1 sN`.
    SynceQuality {
        /// The config tag.
        config: &'a str,
        /// Interface.
        iface: &'a str,
        /// The SyncE device.
        device: &'a str,
        /// SSM QL.
        ql: u8,
        /// Extended QL, when enabled.
        ext_ql: Option<u8>,
        /// Network option.
        network_option: Option<u8>,
    },
    /// phc2sys `ptp_ha_profile P state N`.
    HaProfile {
        /// The config tag.
        config: &'a str,
        /// The profile.
        profile: &'a str,
        /// 1 active, 0 inactive.
        state: i64,
    },
    /// chronyd `Selected source ...` (true) / `no selectable sources` (false).
    Chronyd {
        /// The config tag.
        config: &'a str,
        /// Whether a source is selected.
        selected: bool,
    },
    /// A tagged line of a known process that carries nothing the engine uses.
    Ignored {
        /// The process.
        process: &'a str,
        /// The config tag.
        config: &'a str,
    },
    /// Not a line of the protocol (daemon klog chatter, config dumps, garbage).
    Unknown,
}

/// The kind of a parsed line, for [`crate::Stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineKind {
    /// [`ParsedLine::Control`]
    Control,
    /// [`ParsedLine::ProcessStatus`]
    ProcessStatus,
    /// [`ParsedLine::ClockClassChange`]
    ClockClassChange,
    /// [`ParsedLine::Ptp4lOffset`]
    Ptp4lOffset,
    /// [`ParsedLine::Ptp4lSummary`]
    Ptp4lSummary,
    /// [`ParsedLine::PortEvent`]
    PortEvent,
    /// [`ParsedLine::Phc2sysOffset`]
    Phc2sysOffset,
    /// [`ParsedLine::Phc2sysSummary`]
    Phc2sysSummary,
    /// [`ParsedLine::Ts2phcOffset`]
    Ts2phcOffset,
    /// [`ParsedLine::NmeaStatus`]
    NmeaStatus,
    /// [`ParsedLine::SourceTsNotValid`]
    SourceTsNotValid,
    /// [`ParsedLine::Dpll`]
    Dpll,
    /// [`ParsedLine::Gnss`]
    Gnss,
    /// [`ParsedLine::GmStatus`]
    GmStatus,
    /// [`ParsedLine::TbcStatus`]
    TbcStatus,
    /// [`ParsedLine::SynceLock`]
    SynceLock,
    /// [`ParsedLine::SynceQuality`]
    SynceQuality,
    /// [`ParsedLine::HaProfile`]
    HaProfile,
    /// [`ParsedLine::Chronyd`]
    Chronyd,
    /// [`ParsedLine::Ignored`]
    Ignored,
    /// [`ParsedLine::Unknown`]
    Unknown,
}

impl LineKind {
    /// Every kind, in declaration order (the index is `kind as usize`).
    pub const ALL: [LineKind; 21] = [
        LineKind::Control,
        LineKind::ProcessStatus,
        LineKind::ClockClassChange,
        LineKind::Ptp4lOffset,
        LineKind::Ptp4lSummary,
        LineKind::PortEvent,
        LineKind::Phc2sysOffset,
        LineKind::Phc2sysSummary,
        LineKind::Ts2phcOffset,
        LineKind::NmeaStatus,
        LineKind::SourceTsNotValid,
        LineKind::Dpll,
        LineKind::Gnss,
        LineKind::GmStatus,
        LineKind::TbcStatus,
        LineKind::SynceLock,
        LineKind::SynceQuality,
        LineKind::HaProfile,
        LineKind::Chronyd,
        LineKind::Ignored,
        LineKind::Unknown,
    ];

    /// A short snake_case name.
    pub const fn name(self) -> &'static str {
        match self {
            LineKind::Control => "control",
            LineKind::ProcessStatus => "process_status",
            LineKind::ClockClassChange => "clock_class_change",
            LineKind::Ptp4lOffset => "ptp4l_offset",
            LineKind::Ptp4lSummary => "ptp4l_summary",
            LineKind::PortEvent => "port_event",
            LineKind::Phc2sysOffset => "phc2sys_offset",
            LineKind::Phc2sysSummary => "phc2sys_summary",
            LineKind::Ts2phcOffset => "ts2phc_offset",
            LineKind::NmeaStatus => "nmea_status",
            LineKind::SourceTsNotValid => "source_ts_not_valid",
            LineKind::Dpll => "dpll",
            LineKind::Gnss => "gnss",
            LineKind::GmStatus => "gm_status",
            LineKind::TbcStatus => "tbc_status",
            LineKind::SynceLock => "synce_lock",
            LineKind::SynceQuality => "synce_quality",
            LineKind::HaProfile => "ha_profile",
            LineKind::Chronyd => "chronyd",
            LineKind::Ignored => "ignored",
            LineKind::Unknown => "unknown",
        }
    }
}

impl ParsedLine<'_> {
    /// The kind of the line.
    pub const fn kind(&self) -> LineKind {
        match self {
            ParsedLine::Control(_) => LineKind::Control,
            ParsedLine::ProcessStatus { .. } => LineKind::ProcessStatus,
            ParsedLine::ClockClassChange { .. } => LineKind::ClockClassChange,
            ParsedLine::Ptp4lOffset { .. } => LineKind::Ptp4lOffset,
            ParsedLine::Ptp4lSummary { .. } => LineKind::Ptp4lSummary,
            ParsedLine::PortEvent { .. } => LineKind::PortEvent,
            ParsedLine::Phc2sysOffset { .. } => LineKind::Phc2sysOffset,
            ParsedLine::Phc2sysSummary { .. } => LineKind::Phc2sysSummary,
            ParsedLine::Ts2phcOffset { .. } => LineKind::Ts2phcOffset,
            ParsedLine::NmeaStatus { .. } => LineKind::NmeaStatus,
            ParsedLine::SourceTsNotValid { .. } => LineKind::SourceTsNotValid,
            ParsedLine::Dpll { .. } => LineKind::Dpll,
            ParsedLine::Gnss { .. } => LineKind::Gnss,
            ParsedLine::GmStatus { .. } => LineKind::GmStatus,
            ParsedLine::TbcStatus { .. } => LineKind::TbcStatus,
            ParsedLine::SynceLock { .. } => LineKind::SynceLock,
            ParsedLine::SynceQuality { .. } => LineKind::SynceQuality,
            ParsedLine::HaProfile { .. } => LineKind::HaProfile,
            ParsedLine::Chronyd { .. } => LineKind::Chronyd,
            ParsedLine::Ignored { .. } => LineKind::Ignored,
            ParsedLine::Unknown => LineKind::Unknown,
        }
    }
}

/// The `sN` token of daemon-generated lines: `s0` FREERUN, `s1` HOLDOVER, `s2` LOCKED, anything
/// else FREERUN (the sidecar's `GetSyncState`).
pub fn daemon_state(token: &str) -> SyncState {
    match token {
        "s1" => SyncState::Holdover,
        "s2" => SyncState::Locked,
        _ => SyncState::Freerun,
    }
}

/// The parts of a process line: `<process>[<timestamp>]: [<config>] <payload>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The process (`ptp4l`, `T-BC`, ...).
    pub process: &'a str,
    /// The timestamp text between the brackets (monotonic `s.ms` or unix seconds).
    pub timestamp: &'a str,
    /// The config tag with `:<level>` removed.
    pub config: &'a str,
    /// The rest, trimmed.
    pub payload: &'a str,
}

/// Splits a process line (not a klog line) into its [`Header`].
pub fn split_header(line: &str) -> Option<Header<'_>> {
    let open = line.find('[')?;
    let process = &line[..open];
    if process.is_empty()
        || !process
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    let rest = &line[open + 1..];
    let close = rest.find(']')?;
    let timestamp = &rest[..close];
    let mut rest = &rest[close + 1..];
    // `: [cfg] payload`, `:[cfg] payload`, or chronyd's `[cfg]: payload`.
    let colon_first = rest.starts_with(':');
    if colon_first {
        rest = rest[1..].trim_start();
    }
    let rest = rest.strip_prefix('[')?;
    let close = rest.find(']')?;
    let tag = &rest[..close];
    let config = match tag.find(':') {
        Some(i) => &tag[..i],
        None => tag,
    };
    if config.is_empty() || config.bytes().any(|b| b.is_ascii_whitespace()) {
        return None;
    }
    let mut payload = &rest[close + 1..];
    if !colon_first {
        payload = payload.strip_prefix(':')?;
    }
    Some(Header {
        process,
        timestamp,
        config,
        payload: payload.trim(),
    })
}

/// If `line` is a klog line (`I0908 10:12:04.085236  624338 file.go:86] msg`), its parts:
/// month, day, nanoseconds since midnight, and the message.
pub fn split_klog(line: &str) -> Option<(u8, u8, u64, &str)> {
    let b = line.as_bytes();
    if b.len() < 22 || !matches!(b[0], b'I' | b'W' | b'E' | b'F') {
        return None;
    }
    let digit = |i: usize| -> Option<u64> {
        let c = *b.get(i)?;
        c.is_ascii_digit().then(|| u64::from(c - b'0'))
    };
    let month = digit(1)? * 10 + digit(2)?;
    let day = digit(3)? * 10 + digit(4)?;
    if b[5] != b' ' || b[8] != b':' || b[11] != b':' || b[14] != b'.' {
        return None;
    }
    let h = digit(6)? * 10 + digit(7)?;
    let m = digit(9)? * 10 + digit(10)?;
    let s = digit(12)? * 10 + digit(13)?;
    let mut frac = 0u64;
    let mut scale = 1_000_000_000u64;
    let mut i = 15;
    while let Some(d) = digit(i) {
        if scale > 1 {
            scale /= 10;
            frac += d * scale;
        }
        i += 1;
    }
    if i == 15 || month > 12 || day > 31 || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let ns = ((h * 3600 + m * 60 + s) * 1_000_000_000) + frac;
    let msg = line.get(i..)?;
    let end = msg.find("] ")?;
    Some((month as u8, day as u8, ns, &msg[end + 2..]))
}

/// A bounded, allocation-free token list.
struct Tokens<'a> {
    t: [&'a str; 24],
    n: usize,
}

impl<'a> Tokens<'a> {
    fn new(s: &'a str) -> Self {
        let mut t = [""; 24];
        let mut n = 0;
        for tok in s.split_ascii_whitespace() {
            if n == t.len() {
                break;
            }
            t[n] = tok;
            n += 1;
        }
        Tokens { t, n }
    }
    fn get(&self, i: usize) -> Option<&'a str> {
        (i < self.n).then(|| self.t[i])
    }
    fn all(&self) -> &[&'a str] {
        &self.t[..self.n]
    }
    /// The value after `key` in `key value` pairs starting at `from`.
    fn value_of(&self, from: usize, key: &str) -> Option<&'a str> {
        let all = self.all();
        (from..all.len().saturating_sub(1))
            .find(|&i| all[i] == key)
            .map(|i| all[i + 1])
    }
}

fn int(s: &str) -> Option<i64> {
    s.parse().ok()
}

fn servo(s: &str) -> Option<Servo> {
    let d = s.strip_prefix('s')?;
    d.parse::<u8>().ok().map(Servo)
}

fn hex_or_dec_u8(s: &str) -> Option<u8> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u8::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn is_state_token(s: &str) -> bool {
    s.len() >= 2 && s.starts_with('s') && s[1..].bytes().all(|b| b.is_ascii_digit())
}

/// Parses one line. Never fails: lines it does not understand are [`ParsedLine::Unknown`].
pub fn parse_line(line: &str) -> ParsedLine<'_> {
    let line = line.trim();
    if let Some(cmd) = line.strip_prefix("CMD ") {
        return match cmd.trim() {
            "RESTART" => ParsedLine::Control(Control::Restart),
            "LIVE_START" => ParsedLine::Control(Control::LiveStart),
            _ => ParsedLine::Unknown,
        };
    }
    if let Some((_, _, _, msg)) = split_klog(line) {
        // Only forwarded lines count; the daemon's own chatter is unknown.
        return match split_header(msg.trim()) {
            Some(h) => parse_payload(h),
            None => ParsedLine::Unknown,
        };
    }
    match split_header(line) {
        Some(h) => parse_payload(h),
        None => ParsedLine::Unknown,
    }
}

/// Parses the payload of a split line.
pub fn parse_payload(h: Header<'_>) -> ParsedLine<'_> {
    let Header {
        process,
        config,
        payload,
        ..
    } = h;
    let ignored = ParsedLine::Ignored { process, config };
    if let Some(rest) = payload.strip_prefix("PTP_PROCESS_STATUS") {
        let v = rest.trim_start_matches([':', ' ']).trim();
        return match int(v) {
            Some(n) => ParsedLine::ProcessStatus {
                process,
                config,
                up: n == 1,
            },
            None => ignored,
        };
    }
    if let Some(rest) = payload.strip_prefix("CLOCK_CLASS_CHANGE") {
        let v = rest.trim();
        return match v.parse::<f64>() {
            Ok(f) if (0.0..=255.0).contains(&f) => ParsedLine::ClockClassChange {
                config,
                class: f as u8,
            },
            _ => ignored,
        };
    }
    let parsed = match process {
        "ptp4l" => parse_ptp4l(config, payload),
        "phc2sys" => parse_phc2sys(config, payload),
        "ts2phc" => parse_ts2phc(config, payload),
        "dpll" => parse_dpll(config, payload),
        "gnss" => parse_gnss(config, payload),
        "GM" => parse_gm(config, payload),
        "T-BC" => parse_tbc(config, payload),
        "synce4l" => parse_synce(config, payload),
        "chronyd" => {
            if payload.contains("Selected source") {
                Some(ParsedLine::Chronyd {
                    config,
                    selected: true,
                })
            } else if payload.contains("no selectable sources") {
                Some(ParsedLine::Chronyd {
                    config,
                    selected: false,
                })
            } else {
                None
            }
        }
        _ => None,
    };
    parsed.unwrap_or(ignored)
}

fn parse_port<'a>(config: &'a str, rest: &'a str) -> Option<ParsedLine<'a>> {
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let port: u16 = rest.get(..digits)?.parse().ok()?;
    let rest = &rest[digits..];
    let (iface, event) = if let Some(r) = rest.strip_prefix(':') {
        (None, r)
    } else {
        let r = rest.strip_prefix(" (")?;
        let close = r.find("):")?;
        (Some(&r[..close]), &r[close + 2..])
    };
    let event = event.trim();
    Some(ParsedLine::PortEvent {
        config,
        port,
        iface,
        event,
        change: classify_port_event(event),
    })
}

/// `[label] rms R max M freq F +/- S [delay D +/- S]` starting at token `i` (`rms`).
fn summary_numbers(t: &Tokens<'_>, i: usize) -> Option<(i64, i64, i64, Option<i64>)> {
    if t.get(i)? != "rms" || t.get(i + 2)? != "max" || t.get(i + 4)? != "freq" {
        return None;
    }
    let rms = int(t.get(i + 1)?)?;
    let max = int(t.get(i + 3)?)?;
    let freq = int(t.get(i + 5)?)?;
    let delay = if t.get(i + 8) == Some("delay") {
        t.get(i + 9).and_then(int)
    } else {
        None
    };
    Some((rms, max, freq, delay))
}

fn parse_ptp4l<'a>(config: &'a str, payload: &'a str) -> Option<ParsedLine<'a>> {
    if let Some(rest) = payload.strip_prefix("port ") {
        return parse_port(config, rest);
    }
    let t = Tokens::new(payload);
    // `master offset X sN freq F [path delay D]`
    let i = if t.get(0) == Some("offset") {
        0
    } else if t.get(1) == Some("offset") {
        1
    } else if t.get(0) == Some("rms") || t.get(1) == Some("rms") {
        let i = usize::from(t.get(0) != Some("rms"));
        let (rms, max, freq, delay) = summary_numbers(&t, i)?;
        return Some(ParsedLine::Ptp4lSummary {
            config,
            rms,
            max,
            freq,
            delay,
        });
    } else {
        return None;
    };
    let offset = int(t.get(i + 1)?)?;
    let servo = servo(t.get(i + 2)?)?;
    if t.get(i + 3)? != "freq" {
        return None;
    }
    let freq = int(t.get(i + 4)?)?;
    let delay = if t.get(i + 5) == Some("path") && t.get(i + 6) == Some("delay") {
        t.get(i + 7).and_then(int)
    } else {
        None
    };
    Some(ParsedLine::Ptp4lOffset {
        config,
        servo,
        offset,
        freq,
        delay,
    })
}

fn parse_phc2sys<'a>(config: &'a str, payload: &'a str) -> Option<ParsedLine<'a>> {
    let t = Tokens::new(payload);
    let clock = t.get(0)?;
    if clock == "ptp_ha_profile" {
        return Some(ParsedLine::HaProfile {
            config,
            profile: t.get(1)?,
            state: int(t.value_of(2, "state")?)?,
        });
    }
    match t.get(1)? {
        "rms" => {
            let (rms, max, freq, delay) = summary_numbers(&t, 1)?;
            Some(ParsedLine::Phc2sysSummary {
                config,
                clock,
                rms,
                max,
                freq,
                delay,
            })
        }
        source @ ("phc" | "sys") => {
            if t.get(2)? != "offset" || t.get(5)? != "freq" {
                return None;
            }
            let delay = if t.get(7) == Some("delay") {
                t.get(8).and_then(int)
            } else {
                None
            };
            Some(ParsedLine::Phc2sysOffset {
                config,
                clock,
                source,
                offset: int(t.get(3)?)?,
                servo: servo(t.get(4)?)?,
                freq: int(t.get(6)?)?,
                delay,
            })
        }
        _ => None,
    }
}

fn parse_ts2phc<'a>(config: &'a str, payload: &'a str) -> Option<ParsedLine<'a>> {
    if payload == "source ts not valid" {
        return Some(ParsedLine::SourceTsNotValid { config });
    }
    let t = Tokens::new(payload);
    let iface = t.get(0)?;
    if t.get(1)? == "nmea_status" {
        return Some(ParsedLine::NmeaStatus {
            config,
            iface,
            status: t.get(2)?.parse().ok()?,
            offset: t.value_of(3, "offset").and_then(int).unwrap_or(0),
        });
    }
    let i = match (t.get(1)?, t.get(2)) {
        ("offset", _) => 1,
        ("master", Some("offset")) => 2,
        _ => return None,
    };
    let offset = int(t.get(i + 1)?)?;
    let (servo, j) = match t.get(i + 2).and_then(servo) {
        Some(s) => (Some(s), i + 3),
        None => (None, i + 2),
    };
    if t.get(j)? != "freq" {
        return None;
    }
    Some(ParsedLine::Ts2phcOffset {
        config,
        iface,
        offset,
        servo,
        freq: int(t.get(j + 1)?)?,
        holdover: t.get(j + 2) == Some("holdover"),
    })
}

fn last_state(t: &Tokens<'_>) -> Option<SyncState> {
    let last = *t.all().last()?;
    is_state_token(last).then(|| daemon_state(last))
}

fn parse_dpll<'a>(config: &'a str, payload: &'a str) -> Option<ParsedLine<'a>> {
    let t = Tokens::new(payload);
    let num = |k| t.value_of(1, k).and_then(int);
    Some(ParsedLine::Dpll {
        config,
        iface: t.get(0)?,
        frequency_status: num("frequency_status")?,
        phase_status: num("phase_status")?,
        pps_status: num("pps_status").unwrap_or(0),
        offset: num("offset").unwrap_or(0),
        state: last_state(&t)?,
    })
}

fn parse_gnss<'a>(config: &'a str, payload: &'a str) -> Option<ParsedLine<'a>> {
    let t = Tokens::new(payload);
    Some(ParsedLine::Gnss {
        config,
        iface: t.get(0)?,
        gnss_status: int(t.value_of(1, "gnss_status")?)?,
        offset: t.value_of(1, "offset").and_then(int).unwrap_or(0),
        state: last_state(&t)?,
    })
}

fn parse_gm<'a>(config: &'a str, payload: &'a str) -> Option<ParsedLine<'a>> {
    let t = Tokens::new(payload);
    Some(ParsedLine::GmStatus {
        config,
        iface: t.get(0)?,
        state: daemon_state(t.value_of(1, "T-GM-STATUS")?),
    })
}

fn parse_tbc<'a>(config: &'a str, payload: &'a str) -> Option<ParsedLine<'a>> {
    let t = Tokens::new(payload);
    Some(ParsedLine::TbcStatus {
        config,
        iface: t.get(0)?,
        offset: int(t.value_of(1, "offset")?)?,
        state: daemon_state(t.value_of(1, "T-BC-STATUS")?),
    })
}

fn parse_synce<'a>(config: &'a str, payload: &'a str) -> Option<ParsedLine<'a>> {
    let t = Tokens::new(payload);
    let iface = t.get(0)?;
    let device = t.value_of(1, "device")?;
    if t.value_of(1, "clock_quality").is_some() {
        return Some(ParsedLine::SynceQuality {
            config,
            iface,
            device,
            ql: hex_or_dec_u8(t.value_of(1, "ql")?)?,
            ext_ql: t.value_of(1, "ext_ql").and_then(hex_or_dec_u8),
            network_option: t.value_of(1, "network_option").and_then(hex_or_dec_u8),
        });
    }
    let eec = t.value_of(1, "eec_state")?;
    let state = last_state(&t).unwrap_or(match eec {
        "EEC_LOCKED" | "EEC_LOCKED_HO_ACQ" => SyncState::Locked,
        "EEC_HOLDOVER" => SyncState::Holdover,
        _ => SyncState::Freerun,
    });
    Some(ParsedLine::SynceLock {
        config,
        iface,
        device,
        state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_config_tag_form() {
        for l in [
            "ptp4l[1306915.030]: [ptp4l.1.config:6] master offset        -85 s0 freq      +4 path delay      1585",
            "ptp4l[1306915.030]: [ptp4l.1.config] master offset -85 s0 freq +4 path delay 1585",
            "ptp4l[1306915.030]: [ptp4l.1.config:{level}] master offset -85 s0 freq +4 path delay 1585",
        ] {
            assert_eq!(
                parse_line(l),
                ParsedLine::Ptp4lOffset {
                    config: "ptp4l.1.config",
                    servo: Servo(0),
                    offset: -85,
                    freq: 4,
                    delay: Some(1585)
                },
                "{l}"
            );
        }
    }

    #[test]
    fn klog_embedded_lines() {
        assert_eq!(
            parse_line(
                "I0908 10:12:06.573427  624338 daemon.go:928] ptp4l[1757326326]:[ptp4l.0.config] PTP_PROCESS_STATUS:1"
            ),
            ParsedLine::ProcessStatus {
                process: "ptp4l",
                config: "ptp4l.0.config",
                up: true
            }
        );
        assert_eq!(
            parse_line(
                "I0908 10:13:39.140882  624338 event_tbc.go:266] ptp4l[1757326419]:[ts2phc.1.config] CLOCK_CLASS_CHANGE 135"
            ),
            ParsedLine::ClockClassChange {
                config: "ts2phc.1.config",
                class: 135
            }
        );
        assert_eq!(
            parse_line("I0908 10:12:04.085236  624338 main.go:86] resync period set to: 30 [s]"),
            ParsedLine::Unknown
        );
        let (mo, d, ns, _) = split_klog("I0908 10:12:04.085236  624338 main.go:86] x").unwrap();
        assert_eq!((mo, d, ns), (9, 8, 36_724_085_236_000));
    }

    #[test]
    fn process_status_both_forms_and_class_float() {
        assert_eq!(
            parse_line("phc2sys[1011.000]: [ptp4l.0.config] PTP_PROCESS_STATUS 0"),
            ParsedLine::ProcessStatus {
                process: "phc2sys",
                config: "ptp4l.0.config",
                up: false
            }
        );
        assert_eq!(
            parse_line("ptp4l[1000000600]:[ptp4l.0.config] CLOCK_CLASS_CHANGE 248.000000"),
            ParsedLine::ClockClassChange {
                config: "ptp4l.0.config",
                class: 248
            }
        );
    }

    #[test]
    fn port_events() {
        let p = parse_line(
            "ptp4l[1306977.262]: [ptp4l.1.config:5] port 1 (ens4f1): SLAVE to FAULTY on FAULT_DETECTED (FT_UNSPECIFIED)",
        );
        assert!(matches!(
            p,
            ParsedLine::PortEvent {
                port: 1,
                iface: Some("ens4f1"),
                change: Some(PortChange {
                    role: PortRole::Faulty,
                    implies_holdover: true
                }),
                ..
            }
        ));
        let p = parse_line(
            "ptp4l[5199193.712]: [ptp4l.0.config] port 1: SLAVE to UNCALIBRATED on SYNCHRONIZATION_FAULT",
        );
        assert!(matches!(
            p,
            ParsedLine::PortEvent {
                port: 1,
                iface: None,
                change: Some(PortChange {
                    role: PortRole::Faulty,
                    ..
                }),
                ..
            }
        ));
        let p = parse_line(
            "ptp4l[1306914.656]: [ptp4l.1.config:5] port 1 (ens4f1): new foreign master 507c6f.fffe.1fb16c-4",
        );
        assert!(matches!(p, ParsedLine::PortEvent { change: None, .. }));
        let cases = [
            (
                "UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED",
                PortRole::Slave,
                false,
            ),
            ("LISTENING to SLAVE on X", PortRole::Slave, false),
            ("MASTER to PASSIVE on X", PortRole::Passive, false),
            (
                "LISTENING to MASTER on ANNOUNCE_RECEIPT_TIMEOUT_EXPIRES",
                PortRole::Master,
                false,
            ),
            (
                "LISTENING to UNCALIBRATED on RS_SLAVE",
                PortRole::Faulty,
                true,
            ),
            ("SLAVE to MASTER on X", PortRole::Master, true),
            ("SLAVE to GRAND_MASTER on X", PortRole::Master, true),
            ("SLAVE to LISTENING on X", PortRole::Listening, true),
            (
                "FAULTY to LISTENING on INIT_COMPLETE",
                PortRole::Listening,
                false,
            ),
            (
                "INITIALIZING to LISTENING on INIT_COMPLETE",
                PortRole::Listening,
                false,
            ),
        ];
        for (ev, role, ho) in cases {
            assert_eq!(
                classify_port_event(ev),
                Some(PortChange {
                    role,
                    implies_holdover: ho
                }),
                "{ev}"
            );
        }
    }

    #[test]
    fn summaries_and_phc2sys() {
        assert_eq!(
            parse_line(
                "ptp4l[74737.942]: [ptp4l.0.config] rms 53 max 74 freq -16642 +/- 40 delay 1089 +/- 20"
            ),
            ParsedLine::Ptp4lSummary {
                config: "ptp4l.0.config",
                rms: 53,
                max: 74,
                freq: -16642,
                delay: Some(1089)
            }
        );
        assert_eq!(
            parse_line(
                "phc2sys[1031604.354]: [ptp4l.1.config:6] CLOCK_REALTIME phc offset      -415 s2 freq   +2856 delay    553"
            ),
            ParsedLine::Phc2sysOffset {
                config: "ptp4l.1.config",
                clock: "CLOCK_REALTIME",
                source: "phc",
                servo: Servo(2),
                offset: -415,
                freq: 2856,
                delay: Some(553)
            }
        );
        assert_eq!(
            parse_line(
                "phc2sys[3560354.300]: [ptp4l.0.config] CLOCK_REALTIME rms 4 max 4 freq -76829 +/- 0 delay 1085 +/- 0"
            ),
            ParsedLine::Phc2sysSummary {
                config: "ptp4l.0.config",
                clock: "CLOCK_REALTIME",
                rms: 4,
                max: 4,
                freq: -76829,
                delay: Some(1085)
            }
        );
        assert!(matches!(
            parse_line("phc2sys[1031603.223]: [ptp4l.1.config:3] failed to get UTC offset"),
            ParsedLine::Ignored { .. }
        ));
    }

    #[test]
    fn ts2phc_forms() {
        assert_eq!(
            parse_line(
                "ts2phc[521734.693]: [ts2phc.0.config:6] /dev/ptp6 offset      -1 s2 freq      -3972 holdover"
            ),
            ParsedLine::Ts2phcOffset {
                config: "ts2phc.0.config",
                iface: "/dev/ptp6",
                offset: -1,
                servo: Some(Servo(2)),
                freq: -3972,
                holdover: true
            }
        );
        assert!(matches!(
            parse_line(
                "ts2phc[1896327.319]: [ts2phc.0.config] ens2f0 master offset         -1 s2 freq      -2"
            ),
            ParsedLine::Ts2phcOffset {
                iface: "ens2f0",
                offset: -1,
                holdover: false,
                ..
            }
        ));
        assert_eq!(
            parse_line("ts2phc[20748687.391]: [ts2phc.0.config:3] source ts not valid"),
            ParsedLine::SourceTsNotValid {
                config: "ts2phc.0.config"
            }
        );
        assert_eq!(
            parse_line("ts2phc[1726600506]:[ts2phc.0.config] ens7f0 nmea_status 1 offset 0 s2"),
            ParsedLine::NmeaStatus {
                config: "ts2phc.0.config",
                iface: "ens7f0",
                status: 1,
                offset: 0
            }
        );
    }

    #[test]
    fn daemon_generated_lines() {
        assert_eq!(
            parse_line(
                "dpll[1757326334]:[ts2phc.1.config] ens4f0 frequency_status 1 offset 99999999999 phase_status 4 pps_status 0 s0"
            ),
            ParsedLine::Dpll {
                config: "ts2phc.1.config",
                iface: "ens4f0",
                frequency_status: 1,
                phase_status: 4,
                pps_status: 0,
                offset: 99_999_999_999,
                state: SyncState::Freerun
            }
        );
        assert_eq!(
            parse_line("gnss[1689014431]:[ts2phc.0.config] ens2f1 gnss_status 5 offset 0 s2"),
            ParsedLine::Gnss {
                config: "ts2phc.0.config",
                iface: "ens2f1",
                gnss_status: 5,
                offset: 0,
                state: SyncState::Locked
            }
        );
        assert_eq!(
            parse_line("GM[1689282762]:[ts2phc.0.config] ens2f1 T-GM-STATUS s1"),
            ParsedLine::GmStatus {
                config: "ts2phc.0.config",
                iface: "ens2f1",
                state: SyncState::Holdover
            }
        );
        assert_eq!(
            parse_line(
                "T-BC[1757326334]:[ts2phc.1.config] ens4f0 offset 99999999999 T-BC-STATUS s0"
            ),
            ParsedLine::TbcStatus {
                config: "ts2phc.1.config",
                iface: "ens4f0",
                offset: 99_999_999_999,
                state: SyncState::Freerun
            }
        );
        assert_eq!(
            parse_line(
                "synce4l[1722456110]: [synce4l.0.config] ens7f0 device synce1 eec_state EEC_LOCKED network_option 2 s2"
            ),
            ParsedLine::SynceLock {
                config: "synce4l.0.config",
                iface: "ens7f0",
                device: "synce1",
                state: SyncState::Locked
            }
        );
        assert_eq!(
            parse_line(
                "synce4l[1722458091]:[synce4l.0.config] ens7f0 clock_quality PRTC device synce1 ext_ql 0x20 network_option 2 ql 0x1 s2"
            ),
            ParsedLine::SynceQuality {
                config: "synce4l.0.config",
                iface: "ens7f0",
                device: "synce1",
                ql: 1,
                ext_ql: Some(0x20),
                network_option: Some(2)
            }
        );
        assert_eq!(
            parse_line("phc2sys[1710435400]:[phc2sys.2.config] ptp_ha_profile profile1 state 1"),
            ParsedLine::HaProfile {
                config: "phc2sys.2.config",
                profile: "profile1",
                state: 1
            }
        );
        assert_eq!(
            parse_line("chronyd[1002.000]: [chronyd.0.config] Selected source 192.168.1.1"),
            ParsedLine::Chronyd {
                config: "chronyd.0.config",
                selected: true
            }
        );
    }

    #[test]
    fn control_and_garbage() {
        assert_eq!(
            parse_line("CMD RESTART"),
            ParsedLine::Control(Control::Restart)
        );
        assert_eq!(
            parse_line("CMD LIVE_START\r"),
            ParsedLine::Control(Control::LiveStart)
        );
        for l in [
            "",
            "[",
            "x[",
            "a[b]",
            "a[b]:[",
            "a[b]: [c",
            "netlink",
            "UBX-NAV-STATUS:",
            "ptp4l[1]: [] x",
        ] {
            assert_eq!(parse_line(l), ParsedLine::Unknown, "{l:?}");
        }
    }
}
