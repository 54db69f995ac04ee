//! The wire format: a PTP management message (IEEE 1588-2008 §15) as ptp4l reads and writes it
//! on its UNIX-domain socket. Pure functions, no I/O: [`encode`] builds a request, [`decode`]
//! reads a reply, a push notification or a request (for tests), and never panics on any input.
//!
//! Layout: the 34-byte common header, then the management body (target port identity, starting
//! and remaining boundary hops, action), then one TLV: `MANAGEMENT` (its id and dataset) or
//! `MANAGEMENT_ERROR_STATUS`. Datasets are big-endian. A GET carries a zeroed dataset of the
//! dataset's size, as linuxptp's `pmc` sends it.

use std::fmt;

/// Management message type (the low nibble of the first header byte).
const MESSAGE_TYPE_MANAGEMENT: u8 = 0xd;
/// PTP version 2.
const VERSION_PTP: u8 = 2;
/// Control field of management messages.
const CONTROL_MANAGEMENT: u8 = 0x04;
const HEADER_LEN: usize = 34;
const BODY_LEN: usize = 14;
const TLV_MANAGEMENT: u16 = 0x0001;
const TLV_MANAGEMENT_ERROR_STATUS: u16 = 0x0002;
/// Largest message we accept or build (ptp4l's own buffer is 1500 bytes).
pub const MAX_MESSAGE: usize = 1500;

/// What a management message asks or answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read a dataset.
    Get,
    /// Write a dataset.
    Set,
    /// The answer to a GET or SET, or a pushed notification.
    Response,
    /// A command.
    Command,
    /// The answer to a command.
    Acknowledge,
}

impl Action {
    fn code(self) -> u8 {
        match self {
            Action::Get => 0,
            Action::Set => 1,
            Action::Response => 2,
            Action::Command => 3,
            Action::Acknowledge => 4,
        }
    }

    fn from_code(c: u8) -> Option<Action> {
        Some(match c {
            0 => Action::Get,
            1 => Action::Set,
            2 => Action::Response,
            3 => Action::Command,
            4 => Action::Acknowledge,
            _ => return None,
        })
    }
}

/// Management ids this crate knows (linuxptp's `tlv.h` numbering).
pub mod id {
    /// DEFAULT_DATA_SET.
    pub const DEFAULT_DATA_SET: u16 = 0x2000;
    /// CURRENT_DATA_SET.
    pub const CURRENT_DATA_SET: u16 = 0x2001;
    /// PARENT_DATA_SET.
    pub const PARENT_DATA_SET: u16 = 0x2002;
    /// TIME_PROPERTIES_DATA_SET.
    pub const TIME_PROPERTIES_DATA_SET: u16 = 0x2003;
    /// PORT_DATA_SET.
    pub const PORT_DATA_SET: u16 = 0x2004;
    /// TIME_STATUS_NP (linuxptp).
    pub const TIME_STATUS_NP: u16 = 0xC000;
    /// GRANDMASTER_SETTINGS_NP (linuxptp).
    pub const GRANDMASTER_SETTINGS_NP: u16 = 0xC001;
    /// SUBSCRIBE_EVENTS_NP (linuxptp).
    pub const SUBSCRIBE_EVENTS_NP: u16 = 0xC003;
    /// EXTERNAL_GRANDMASTER_PROPERTIES_NP (a linuxptp newer than 4.4; unknown to 3.1.1, which
    /// answers NO_SUCH_ID). The value has not been checked against a release that has it.
    pub const EXTERNAL_GRANDMASTER_PROPERTIES_NP: u16 = 0xC00F;

    /// The name linuxptp's `pmc` gives an id, or `None`.
    pub fn name(id: u16) -> Option<&'static str> {
        Some(match id {
            DEFAULT_DATA_SET => "DEFAULT_DATA_SET",
            CURRENT_DATA_SET => "CURRENT_DATA_SET",
            PARENT_DATA_SET => "PARENT_DATA_SET",
            TIME_PROPERTIES_DATA_SET => "TIME_PROPERTIES_DATA_SET",
            PORT_DATA_SET => "PORT_DATA_SET",
            TIME_STATUS_NP => "TIME_STATUS_NP",
            GRANDMASTER_SETTINGS_NP => "GRANDMASTER_SETTINGS_NP",
            SUBSCRIBE_EVENTS_NP => "SUBSCRIBE_EVENTS_NP",
            EXTERNAL_GRANDMASTER_PROPERTIES_NP => "EXTERNAL_GRANDMASTER_PROPERTIES_NP",
            _ => return None,
        })
    }
}

/// An 8-byte clock identity; shown as linuxptp shows it (`001122.fffe.334455`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ClockIdentity(pub [u8; 8]);

impl fmt::Display for ClockIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}{:02x}{:02x}.{:02x}{:02x}.{:02x}{:02x}{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]
        )
    }
}

impl fmt::Debug for ClockIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A port identity; shown as linuxptp shows it (`001122.fffe.334455-1`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
pub struct PortIdentity {
    /// The clock.
    pub clock: ClockIdentity,
    /// The port number (0xffff: every port).
    pub port: u16,
}

impl PortIdentity {
    /// Every port of every clock: the target of a request to whichever ptp4l answers.
    pub const ALL: PortIdentity = PortIdentity {
        clock: ClockIdentity([0xff; 8]),
        port: 0xffff,
    };
}

impl fmt::Display for PortIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.clock, self.port)
    }
}

/// Clock quality: class, accuracy and offsetScaledLogVariance.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ClockQuality {
    /// clockClass.
    pub class: u8,
    /// clockAccuracy (0x21 = 100 ns, 0xfe = unknown).
    pub accuracy: u8,
    /// offsetScaledLogVariance.
    pub offset_scaled_log_variance: u16,
}

/// The time-properties flags, as TIME_PROPERTIES_DATA_SET and GRANDMASTER_SETTINGS_NP carry them.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct TimeFlags {
    /// leap61.
    pub leap61: bool,
    /// leap59.
    pub leap59: bool,
    /// currentUtcOffsetValid.
    pub current_utc_offset_valid: bool,
    /// ptpTimescale.
    pub ptp_timescale: bool,
    /// timeTraceable.
    pub time_traceable: bool,
    /// frequencyTraceable.
    pub frequency_traceable: bool,
}

impl TimeFlags {
    fn to_byte(self) -> u8 {
        u8::from(self.leap61)
            | u8::from(self.leap59) << 1
            | u8::from(self.current_utc_offset_valid) << 2
            | u8::from(self.ptp_timescale) << 3
            | u8::from(self.time_traceable) << 4
            | u8::from(self.frequency_traceable) << 5
    }

    fn from_byte(b: u8) -> TimeFlags {
        TimeFlags {
            leap61: b & 1 != 0,
            leap59: b & 2 != 0,
            current_utc_offset_valid: b & 4 != 0,
            ptp_timescale: b & 8 != 0,
            time_traceable: b & 16 != 0,
            frequency_traceable: b & 32 != 0,
        }
    }
}

/// PARENT_DATA_SET: who this clock follows, and that grandmaster's quality.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ParentDataSet {
    /// parentPortIdentity.
    pub parent_port_identity: PortIdentity,
    /// parentStats.
    pub parent_stats: bool,
    /// observedParentOffsetScaledLogVariance.
    pub observed_parent_offset_scaled_log_variance: u16,
    /// observedParentClockPhaseChangeRate.
    pub observed_parent_clock_phase_change_rate: i32,
    /// grandmasterPriority1.
    pub grandmaster_priority1: u8,
    /// grandmasterClockQuality (`gm.ClockClass`, `gm.ClockAccuracy`, `gm.OffsetScaledLogVariance`).
    pub grandmaster_clock_quality: ClockQuality,
    /// grandmasterPriority2.
    pub grandmaster_priority2: u8,
    /// grandmasterIdentity.
    pub grandmaster_identity: ClockIdentity,
}

/// TIME_PROPERTIES_DATA_SET.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct TimePropertiesDataSet {
    /// currentUtcOffset.
    pub current_utc_offset: i16,
    /// The flags.
    pub flags: TimeFlags,
    /// timeSource (0x20 GNSS, 0xa0 internal oscillator).
    pub time_source: u8,
}

/// CURRENT_DATA_SET.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct CurrentDataSet {
    /// stepsRemoved.
    pub steps_removed: u16,
    /// offsetFromMaster, in 2^-16 ns.
    pub offset_from_master_scaled: i64,
    /// meanPathDelay, in 2^-16 ns.
    pub mean_path_delay_scaled: i64,
}

impl CurrentDataSet {
    /// offsetFromMaster in nanoseconds.
    pub fn offset_from_master_ns(&self) -> f64 {
        self.offset_from_master_scaled as f64 / 65536.0
    }
}

/// DEFAULT_DATA_SET.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct DefaultDataSet {
    /// twoStepFlag.
    pub two_step: bool,
    /// slaveOnly.
    pub slave_only: bool,
    /// numberPorts.
    pub number_ports: u16,
    /// priority1.
    pub priority1: u8,
    /// clockQuality (this clock's own).
    pub clock_quality: ClockQuality,
    /// priority2.
    pub priority2: u8,
    /// clockIdentity.
    pub clock_identity: ClockIdentity,
    /// domainNumber.
    pub domain_number: u8,
}

/// A port state (IEEE 1588 numbering).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PortState {
    /// INITIALIZING.
    Initializing,
    /// FAULTY.
    Faulty,
    /// DISABLED.
    Disabled,
    /// LISTENING.
    Listening,
    /// PRE_MASTER.
    PreMaster,
    /// MASTER.
    Master,
    /// PASSIVE.
    Passive,
    /// UNCALIBRATED.
    Uncalibrated,
    /// SLAVE.
    Slave,
    /// Any other value.
    Other(u8),
}

impl PortState {
    fn from_byte(b: u8) -> PortState {
        match b {
            1 => PortState::Initializing,
            2 => PortState::Faulty,
            3 => PortState::Disabled,
            4 => PortState::Listening,
            5 => PortState::PreMaster,
            6 => PortState::Master,
            7 => PortState::Passive,
            8 => PortState::Uncalibrated,
            9 => PortState::Slave,
            o => PortState::Other(o),
        }
    }

    fn to_byte(self) -> u8 {
        match self {
            PortState::Initializing => 1,
            PortState::Faulty => 2,
            PortState::Disabled => 3,
            PortState::Listening => 4,
            PortState::PreMaster => 5,
            PortState::Master => 6,
            PortState::Passive => 7,
            PortState::Uncalibrated => 8,
            PortState::Slave => 9,
            PortState::Other(o) => o,
        }
    }

    /// The name `pmc` prints.
    pub fn name(self) -> &'static str {
        match self {
            PortState::Initializing => "INITIALIZING",
            PortState::Faulty => "FAULTY",
            PortState::Disabled => "DISABLED",
            PortState::Listening => "LISTENING",
            PortState::PreMaster => "PRE_MASTER",
            PortState::Master => "MASTER",
            PortState::Passive => "PASSIVE",
            PortState::Uncalibrated => "UNCALIBRATED",
            PortState::Slave => "SLAVE",
            PortState::Other(_) => "UNKNOWN",
        }
    }
}

/// PORT_DATA_SET.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PortDataSet {
    /// portIdentity.
    pub port_identity: PortIdentity,
    /// portState.
    pub port_state: PortState,
    /// logMinDelayReqInterval.
    pub log_min_delay_req_interval: i8,
    /// peerMeanPathDelay, in 2^-16 ns.
    pub peer_mean_path_delay_scaled: i64,
    /// logAnnounceInterval.
    pub log_announce_interval: i8,
    /// announceReceiptTimeout.
    pub announce_receipt_timeout: u8,
    /// logSyncInterval.
    pub log_sync_interval: i8,
    /// delayMechanism (1 E2E, 2 P2P).
    pub delay_mechanism: u8,
    /// logMinPdelayReqInterval.
    pub log_min_pdelay_req_interval: i8,
    /// versionNumber (the low nibble; newer linuxptp puts the minor version in the high one).
    pub version_number: u8,
}

/// GRANDMASTER_SETTINGS_NP: what this clock announces when it is the grandmaster.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct GrandmasterSettings {
    /// clockClass, clockAccuracy, offsetScaledLogVariance.
    pub clock_quality: ClockQuality,
    /// currentUtcOffset.
    pub current_utc_offset: i16,
    /// The time flags.
    pub flags: TimeFlags,
    /// timeSource.
    pub time_source: u8,
}

/// Events a SUBSCRIBE_EVENTS_NP can ask for (bit numbers of linuxptp's bitmask).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NotifyEvent {
    /// Port state changes (pushed as PORT_DATA_SET); the only one linuxptp 3.1.1 knows.
    PortState = 0,
    /// Time synchronisation (pushed as TIME_STATUS_NP); linuxptp 3.1.2 and later.
    TimeSync = 1,
    /// Parent dataset changes (pushed as PARENT_DATA_SET); linuxptp 4.0 and later.
    ParentDataSet = 2,
}

/// SUBSCRIBE_EVENTS_NP.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SubscribeEvents {
    /// For how many seconds the subscription lasts.
    pub duration: u16,
    /// The event bitmask (64 bytes, bit n of byte n/8).
    pub bitmask: [u8; 64],
}

impl SubscribeEvents {
    /// A subscription to `events` for `duration` seconds.
    pub fn new(duration: u16, events: &[NotifyEvent]) -> SubscribeEvents {
        let mut bitmask = [0u8; 64];
        for &e in events {
            let bit = e as usize;
            bitmask[bit / 8] |= 1 << (bit % 8);
        }
        SubscribeEvents { duration, bitmask }
    }

    /// Whether `event` is subscribed.
    pub fn has(&self, event: NotifyEvent) -> bool {
        let bit = event as usize;
        self.bitmask[bit / 8] & (1 << (bit % 8)) != 0
    }
}

/// EXTERNAL_GRANDMASTER_PROPERTIES_NP (linuxptp 4.2+): the grandmaster identity and steps
/// removed that a time-transmitter instance announces in place of its own.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ExternalGrandmasterProperties {
    /// gmIdentity.
    pub grandmaster_identity: ClockIdentity,
    /// stepsRemoved.
    pub steps_removed: u16,
}

/// A dataset carried by a MANAGEMENT TLV.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Dataset {
    /// DEFAULT_DATA_SET.
    Default(DefaultDataSet),
    /// CURRENT_DATA_SET.
    Current(CurrentDataSet),
    /// PARENT_DATA_SET.
    Parent(ParentDataSet),
    /// TIME_PROPERTIES_DATA_SET.
    TimeProperties(TimePropertiesDataSet),
    /// PORT_DATA_SET.
    Port(PortDataSet),
    /// GRANDMASTER_SETTINGS_NP.
    GrandmasterSettings(GrandmasterSettings),
    /// SUBSCRIBE_EVENTS_NP.
    SubscribeEvents(SubscribeEvents),
    /// EXTERNAL_GRANDMASTER_PROPERTIES_NP.
    ExternalGrandmasterProperties(ExternalGrandmasterProperties),
    /// An id this crate does not decode, with its raw data.
    Unknown {
        /// The management id.
        id: u16,
        /// Its data, as received.
        data: Vec<u8>,
    },
}

impl Dataset {
    /// Its management id.
    pub fn id(&self) -> u16 {
        match self {
            Dataset::Default(_) => id::DEFAULT_DATA_SET,
            Dataset::Current(_) => id::CURRENT_DATA_SET,
            Dataset::Parent(_) => id::PARENT_DATA_SET,
            Dataset::TimeProperties(_) => id::TIME_PROPERTIES_DATA_SET,
            Dataset::Port(_) => id::PORT_DATA_SET,
            Dataset::GrandmasterSettings(_) => id::GRANDMASTER_SETTINGS_NP,
            Dataset::SubscribeEvents(_) => id::SUBSCRIBE_EVENTS_NP,
            Dataset::ExternalGrandmasterProperties(_) => id::EXTERNAL_GRANDMASTER_PROPERTIES_NP,
            Dataset::Unknown { id, .. } => *id,
        }
    }

    /// The size of the dataset a GET of `id` carries (zeroed), as `pmc` sends it; 0 for ids
    /// this crate does not know.
    pub fn wire_len(id: u16) -> usize {
        match id {
            id::DEFAULT_DATA_SET => 20,
            id::CURRENT_DATA_SET => 18,
            id::PARENT_DATA_SET => 32,
            id::TIME_PROPERTIES_DATA_SET => 4,
            id::PORT_DATA_SET => 26,
            id::GRANDMASTER_SETTINGS_NP => 8,
            id::SUBSCRIBE_EVENTS_NP => 66,
            id::EXTERNAL_GRANDMASTER_PROPERTIES_NP => 10,
            _ => 0,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Dataset::Default(d) => {
                out.push(u8::from(d.two_step) | u8::from(d.slave_only) << 1);
                out.push(0);
                out.extend_from_slice(&d.number_ports.to_be_bytes());
                out.push(d.priority1);
                put_quality(out, d.clock_quality);
                out.push(d.priority2);
                out.extend_from_slice(&d.clock_identity.0);
                out.push(d.domain_number);
                out.push(0);
            }
            Dataset::Current(d) => {
                out.extend_from_slice(&d.steps_removed.to_be_bytes());
                out.extend_from_slice(&d.offset_from_master_scaled.to_be_bytes());
                out.extend_from_slice(&d.mean_path_delay_scaled.to_be_bytes());
            }
            Dataset::Parent(d) => {
                put_port(out, d.parent_port_identity);
                out.push(u8::from(d.parent_stats));
                out.push(0);
                out.extend_from_slice(&d.observed_parent_offset_scaled_log_variance.to_be_bytes());
                out.extend_from_slice(&d.observed_parent_clock_phase_change_rate.to_be_bytes());
                out.push(d.grandmaster_priority1);
                put_quality(out, d.grandmaster_clock_quality);
                out.push(d.grandmaster_priority2);
                out.extend_from_slice(&d.grandmaster_identity.0);
            }
            Dataset::TimeProperties(d) => {
                out.extend_from_slice(&d.current_utc_offset.to_be_bytes());
                out.push(d.flags.to_byte());
                out.push(d.time_source);
            }
            Dataset::Port(d) => {
                put_port(out, d.port_identity);
                out.push(d.port_state.to_byte());
                out.push(d.log_min_delay_req_interval as u8);
                out.extend_from_slice(&d.peer_mean_path_delay_scaled.to_be_bytes());
                out.push(d.log_announce_interval as u8);
                out.push(d.announce_receipt_timeout);
                out.push(d.log_sync_interval as u8);
                out.push(d.delay_mechanism);
                out.push(d.log_min_pdelay_req_interval as u8);
                out.push(d.version_number);
            }
            Dataset::GrandmasterSettings(d) => {
                put_quality(out, d.clock_quality);
                out.extend_from_slice(&d.current_utc_offset.to_be_bytes());
                out.push(d.flags.to_byte());
                out.push(d.time_source);
            }
            Dataset::SubscribeEvents(d) => {
                out.extend_from_slice(&d.duration.to_be_bytes());
                out.extend_from_slice(&d.bitmask);
            }
            Dataset::ExternalGrandmasterProperties(d) => {
                out.extend_from_slice(&d.grandmaster_identity.0);
                out.extend_from_slice(&d.steps_removed.to_be_bytes());
            }
            Dataset::Unknown { data, .. } => out.extend_from_slice(data),
        }
    }

    /// Decodes the data of a MANAGEMENT TLV with id `id`. Data shorter than the dataset is an
    /// error; longer (padding, fields of a newer linuxptp) is accepted.
    fn decode(id: u16, d: &[u8]) -> Result<Dataset, DecodeError> {
        let need = Dataset::wire_len(id);
        if need == 0 {
            return Ok(Dataset::Unknown {
                id,
                data: d.to_vec(),
            });
        }
        if d.len() < need {
            return Err(DecodeError::ShortDataset {
                id,
                len: d.len(),
                need,
            });
        }
        let u16_at = |i: usize| u16::from_be_bytes([d[i], d[i + 1]]);
        let i64_at = |i: usize| i64::from_be_bytes(d[i..i + 8].try_into().expect("8 bytes"));
        let quality_at = |i: usize| ClockQuality {
            class: d[i],
            accuracy: d[i + 1],
            offset_scaled_log_variance: u16_at(i + 2),
        };
        let identity_at =
            |i: usize| ClockIdentity(d[i..i + 8].try_into().expect("8 bytes identity"));
        let port_at = |i: usize| PortIdentity {
            clock: identity_at(i),
            port: u16_at(i + 8),
        };
        Ok(match id {
            id::DEFAULT_DATA_SET => Dataset::Default(DefaultDataSet {
                two_step: d[0] & 1 != 0,
                slave_only: d[0] & 2 != 0,
                number_ports: u16_at(2),
                priority1: d[4],
                clock_quality: quality_at(5),
                priority2: d[9],
                clock_identity: identity_at(10),
                domain_number: d[18],
            }),
            id::CURRENT_DATA_SET => Dataset::Current(CurrentDataSet {
                steps_removed: u16_at(0),
                offset_from_master_scaled: i64_at(2),
                mean_path_delay_scaled: i64_at(10),
            }),
            id::PARENT_DATA_SET => Dataset::Parent(ParentDataSet {
                parent_port_identity: port_at(0),
                parent_stats: d[10] & 1 != 0,
                observed_parent_offset_scaled_log_variance: u16_at(12),
                observed_parent_clock_phase_change_rate: i32::from_be_bytes(
                    d[14..18].try_into().expect("4 bytes"),
                ),
                grandmaster_priority1: d[18],
                grandmaster_clock_quality: quality_at(19),
                grandmaster_priority2: d[23],
                grandmaster_identity: identity_at(24),
            }),
            id::TIME_PROPERTIES_DATA_SET => Dataset::TimeProperties(TimePropertiesDataSet {
                current_utc_offset: u16_at(0) as i16,
                flags: TimeFlags::from_byte(d[2]),
                time_source: d[3],
            }),
            id::PORT_DATA_SET => Dataset::Port(PortDataSet {
                port_identity: port_at(0),
                port_state: PortState::from_byte(d[10]),
                log_min_delay_req_interval: d[11] as i8,
                peer_mean_path_delay_scaled: i64_at(12),
                log_announce_interval: d[20] as i8,
                announce_receipt_timeout: d[21],
                log_sync_interval: d[22] as i8,
                delay_mechanism: d[23],
                log_min_pdelay_req_interval: d[24] as i8,
                version_number: d[25],
            }),
            id::GRANDMASTER_SETTINGS_NP => Dataset::GrandmasterSettings(GrandmasterSettings {
                clock_quality: quality_at(0),
                current_utc_offset: u16_at(4) as i16,
                flags: TimeFlags::from_byte(d[6]),
                time_source: d[7],
            }),
            id::SUBSCRIBE_EVENTS_NP => Dataset::SubscribeEvents(SubscribeEvents {
                duration: u16_at(0),
                bitmask: d[2..66].try_into().expect("64 bytes"),
            }),
            id::EXTERNAL_GRANDMASTER_PROPERTIES_NP => {
                Dataset::ExternalGrandmasterProperties(ExternalGrandmasterProperties {
                    grandmaster_identity: identity_at(0),
                    steps_removed: u16_at(8),
                })
            }
            _ => unreachable!("wire_len is non-zero only for the ids above"),
        })
    }
}

fn put_quality(out: &mut Vec<u8>, q: ClockQuality) {
    out.push(q.class);
    out.push(q.accuracy);
    out.extend_from_slice(&q.offset_scaled_log_variance.to_be_bytes());
}

fn put_port(out: &mut Vec<u8>, p: PortIdentity) {
    out.extend_from_slice(&p.clock.0);
    out.extend_from_slice(&p.port.to_be_bytes());
}

/// The management error ids (IEEE 1588 Table 72).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ManagementErrorId {
    /// RESPONSE_TOO_BIG.
    ResponseTooBig,
    /// NO_SUCH_ID: the id is unknown to this ptp4l (e.g. a TLV of a newer linuxptp).
    NoSuchId,
    /// WRONG_LENGTH.
    WrongLength,
    /// WRONG_VALUE.
    WrongValue,
    /// NOT_SETABLE.
    NotSetable,
    /// NOT_SUPPORTED.
    NotSupported,
    /// GENERAL_ERROR.
    GeneralError,
    /// Another value.
    Other(u16),
}

impl ManagementErrorId {
    fn from_u16(v: u16) -> ManagementErrorId {
        match v {
            1 => ManagementErrorId::ResponseTooBig,
            2 => ManagementErrorId::NoSuchId,
            3 => ManagementErrorId::WrongLength,
            4 => ManagementErrorId::WrongValue,
            5 => ManagementErrorId::NotSetable,
            6 => ManagementErrorId::NotSupported,
            0xfffe => ManagementErrorId::GeneralError,
            o => ManagementErrorId::Other(o),
        }
    }

    fn to_u16(self) -> u16 {
        match self {
            ManagementErrorId::ResponseTooBig => 1,
            ManagementErrorId::NoSuchId => 2,
            ManagementErrorId::WrongLength => 3,
            ManagementErrorId::WrongValue => 4,
            ManagementErrorId::NotSetable => 5,
            ManagementErrorId::NotSupported => 6,
            ManagementErrorId::GeneralError => 0xfffe,
            ManagementErrorId::Other(o) => o,
        }
    }
}

impl fmt::Display for ManagementErrorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManagementErrorId::ResponseTooBig => f.write_str("RESPONSE_TOO_BIG"),
            ManagementErrorId::NoSuchId => f.write_str("NO_SUCH_ID"),
            ManagementErrorId::WrongLength => f.write_str("WRONG_LENGTH"),
            ManagementErrorId::WrongValue => f.write_str("WRONG_VALUE"),
            ManagementErrorId::NotSetable => f.write_str("NOT_SETABLE"),
            ManagementErrorId::NotSupported => f.write_str("NOT_SUPPORTED"),
            ManagementErrorId::GeneralError => f.write_str("GENERAL_ERROR"),
            ManagementErrorId::Other(o) => write!(f, "error 0x{o:04x}"),
        }
    }
}

/// The TLV of a management message.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Tlv {
    /// MANAGEMENT with its dataset (zeroed in a GET).
    Management(Dataset),
    /// MANAGEMENT with an id and no data (a GET as some clients send it).
    Empty(u16),
    /// MANAGEMENT_ERROR_STATUS.
    Error {
        /// managementErrorId.
        error: ManagementErrorId,
        /// The id the error is about.
        id: u16,
        /// displayData, if any.
        display: String,
    },
}

impl Tlv {
    /// The management id it is about.
    pub fn id(&self) -> u16 {
        match self {
            Tlv::Management(d) => d.id(),
            Tlv::Empty(id) => *id,
            Tlv::Error { id, .. } => *id,
        }
    }
}

/// One management message.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Message {
    /// transportSpecific (the high nibble of the first byte).
    pub transport_specific: u8,
    /// domainNumber.
    pub domain: u8,
    /// sourcePortIdentity.
    pub source: PortIdentity,
    /// sequenceId.
    pub sequence_id: u16,
    /// targetPortIdentity.
    pub target: PortIdentity,
    /// startingBoundaryHops.
    pub starting_boundary_hops: u8,
    /// boundaryHops.
    pub boundary_hops: u8,
    /// actionField.
    pub action: Action,
    /// The TLV.
    pub tlv: Tlv,
}

/// Why bytes are not a management message we can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than a header, body and TLV header.
    #[error("message too short: {0} bytes (a management message has at least 52)")]
    TooShort(usize),
    /// Not a management message (the message type nibble).
    #[error("not a management message (message type {0:#x})")]
    NotManagement(u8),
    /// Not PTP version 2.
    #[error("unsupported PTP version {0}")]
    Version(u8),
    /// The header's messageLength disagrees with what arrived.
    #[error("messageLength {declared} but {got} bytes arrived")]
    Length {
        /// messageLength.
        declared: usize,
        /// Bytes received.
        got: usize,
    },
    /// An action value outside 0..=4.
    #[error("unknown action {0}")]
    Action(u8),
    /// A TLV type other than MANAGEMENT and MANAGEMENT_ERROR_STATUS.
    #[error("unexpected TLV type {0:#06x}")]
    TlvType(u16),
    /// The TLV's length runs past the message, or is shorter than its fixed part.
    #[error("TLV length {len} does not fit the {avail} bytes after the TLV header")]
    TlvLength {
        /// The TLV's lengthField.
        len: usize,
        /// Bytes available.
        avail: usize,
    },
    /// A TLV whose lengthField is odd (TLVs are an even number of bytes, IEEE 1588 14.1.2).
    #[error("TLV length {0} is odd (a TLV is an even number of bytes)")]
    OddTlvLength(usize),
    /// A dataset shorter than its fixed size.
    #[error("{name} data is {len} bytes, needs {need}", name = id::name(*id).unwrap_or("dataset"))]
    ShortDataset {
        /// The management id.
        id: u16,
        /// Bytes present.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
}

/// Encodes `msg`. A [`Tlv::Management`] dataset is written as it is (zeroed for a GET by
/// [`Message::get`]).
pub fn encode(msg: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.push((msg.transport_specific << 4) | MESSAGE_TYPE_MANAGEMENT);
    out.push(VERSION_PTP);
    out.extend_from_slice(&[0, 0]); // messageLength, filled below
    out.push(msg.domain);
    out.push(0); // minorSdoId
    out.extend_from_slice(&[0, 0]); // flags
    out.extend_from_slice(&[0; 8]); // correctionField
    out.extend_from_slice(&[0; 4]); // messageTypeSpecific
    put_port(&mut out, msg.source);
    out.extend_from_slice(&msg.sequence_id.to_be_bytes());
    out.push(CONTROL_MANAGEMENT);
    out.push(0x7f); // logMessageInterval
    put_port(&mut out, msg.target);
    out.push(msg.starting_boundary_hops);
    out.push(msg.boundary_hops);
    out.push(msg.action.code());
    out.push(0);
    let tlv_start = out.len();
    match &msg.tlv {
        Tlv::Management(d) => {
            out.extend_from_slice(&TLV_MANAGEMENT.to_be_bytes());
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&d.id().to_be_bytes());
            d.encode(&mut out);
        }
        Tlv::Empty(id) => {
            out.extend_from_slice(&TLV_MANAGEMENT.to_be_bytes());
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&id.to_be_bytes());
        }
        Tlv::Error { error, id, display } => {
            out.extend_from_slice(&TLV_MANAGEMENT_ERROR_STATUS.to_be_bytes());
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&error.to_u16().to_be_bytes());
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&[0; 4]);
            let mut text = display.clone();
            truncate_at_char(&mut text, 255);
            let text = text.as_bytes();
            out.push(text.len() as u8);
            out.extend_from_slice(text);
        }
    }
    // TLVs are an even number of bytes.
    if (out.len() - tlv_start) % 2 == 1 {
        out.push(0);
    }
    let tlv_len = (out.len() - tlv_start - 4) as u16;
    out[tlv_start + 2..tlv_start + 4].copy_from_slice(&tlv_len.to_be_bytes());
    let total = out.len() as u16;
    out[2..4].copy_from_slice(&total.to_be_bytes());
    out
}

/// Cuts `s` to at most `max` bytes, at a character boundary.
fn truncate_at_char(s: &mut String, max: usize) {
    if s.len() > max {
        let mut at = max;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
    }
}

/// The sequenceId of a management message whose body may not decode (`None` when the bytes
/// are not even a management header).
pub fn sequence_id(b: &[u8]) -> Option<u16> {
    (b.len() >= HEADER_LEN && b[0] & 0x0f == MESSAGE_TYPE_MANAGEMENT)
        .then(|| u16::from_be_bytes([b[30], b[31]]))
}

/// Decodes one management message. Never panics, whatever the bytes.
pub fn decode(b: &[u8]) -> Result<Message, DecodeError> {
    if b.len() < HEADER_LEN + BODY_LEN + 4 {
        return Err(DecodeError::TooShort(b.len()));
    }
    if b[0] & 0x0f != MESSAGE_TYPE_MANAGEMENT {
        return Err(DecodeError::NotManagement(b[0] & 0x0f));
    }
    if b[1] & 0x0f != VERSION_PTP {
        return Err(DecodeError::Version(b[1] & 0x0f));
    }
    let declared = u16::from_be_bytes([b[2], b[3]]) as usize;
    if declared > b.len() || declared < HEADER_LEN + BODY_LEN + 4 {
        return Err(DecodeError::Length {
            declared,
            got: b.len(),
        });
    }
    let b = &b[..declared];
    let port_at = |i: usize| PortIdentity {
        clock: ClockIdentity(b[i..i + 8].try_into().expect("8 bytes")),
        port: u16::from_be_bytes([b[i + 8], b[i + 9]]),
    };
    let action = Action::from_code(b[46] & 0x0f).ok_or(DecodeError::Action(b[46] & 0x0f))?;
    let tlv_type = u16::from_be_bytes([b[48], b[49]]);
    let tlv_len = u16::from_be_bytes([b[50], b[51]]) as usize;
    let avail = b.len() - 52;
    if tlv_len > avail {
        return Err(DecodeError::TlvLength {
            len: tlv_len,
            avail,
        });
    }
    if tlv_len % 2 == 1 {
        return Err(DecodeError::OddTlvLength(tlv_len));
    }
    let v = &b[52..52 + tlv_len];
    let tlv = match tlv_type {
        TLV_MANAGEMENT => {
            if v.len() < 2 {
                return Err(DecodeError::TlvLength {
                    len: v.len(),
                    avail,
                });
            }
            let id = u16::from_be_bytes([v[0], v[1]]);
            if v.len() == 2 {
                Tlv::Empty(id)
            } else {
                Tlv::Management(Dataset::decode(id, &v[2..])?)
            }
        }
        TLV_MANAGEMENT_ERROR_STATUS => {
            if v.len() < 8 {
                return Err(DecodeError::TlvLength {
                    len: v.len(),
                    avail,
                });
            }
            let display = match v.get(8) {
                Some(&n) => {
                    let end = (9 + n as usize).min(v.len());
                    let mut text = String::from_utf8_lossy(&v[9..end]).into_owned();
                    // Invalid bytes grow into U+FFFD: keep what a PTPText can carry back.
                    truncate_at_char(&mut text, 255);
                    text
                }
                None => String::new(),
            };
            Tlv::Error {
                error: ManagementErrorId::from_u16(u16::from_be_bytes([v[0], v[1]])),
                id: u16::from_be_bytes([v[2], v[3]]),
                display,
            }
        }
        other => return Err(DecodeError::TlvType(other)),
    };
    Ok(Message {
        transport_specific: b[0] >> 4,
        domain: b[4],
        source: port_at(20),
        sequence_id: u16::from_be_bytes([b[30], b[31]]),
        target: port_at(34),
        starting_boundary_hops: b[44],
        boundary_hops: b[45],
        action,
        tlv,
    })
}

impl Message {
    /// A GET of `id` from `source` (zeroed data of the dataset's size, as `pmc` sends it).
    pub fn get(source: PortIdentity, sequence_id: u16, id: u16) -> Message {
        let len = Dataset::wire_len(id);
        let tlv = if len == 0 {
            Tlv::Empty(id)
        } else {
            // Decoding zeros of the right length always succeeds.
            Tlv::Management(Dataset::decode(id, &vec![0; len]).expect("zeroed dataset"))
        };
        Message::request(source, sequence_id, Action::Get, tlv)
    }

    /// A SET of `data` from `source`.
    pub fn set(source: PortIdentity, sequence_id: u16, data: Dataset) -> Message {
        Message::request(source, sequence_id, Action::Set, Tlv::Management(data))
    }

    fn request(source: PortIdentity, sequence_id: u16, action: Action, tlv: Tlv) -> Message {
        Message {
            transport_specific: 0,
            domain: 0,
            source,
            sequence_id,
            target: PortIdentity::ALL,
            starting_boundary_hops: 0,
            boundary_hops: 0,
            action,
            tlv,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// What linuxptp 3.1.1's `pmc -u -b 0 -t 1` sent (captured on a UNIX socket; its port
    /// number is its process id, 0x3942): our encoder gives the same bytes.
    #[test]
    fn requests_are_byte_for_byte_what_pmc_sends() {
        let src = PortIdentity {
            clock: ClockIdentity([0; 8]),
            port: 0x3942,
        };
        let mut get = Message::get(src, 0, id::PARENT_DATA_SET);
        get.transport_specific = 1;
        assert_eq!(
            encode(&get),
            hex(
                "1d02005600000000000000000000000000000000000000000000000039420000047f\
                 ffffffffffffffffffff000000000001002220020000000000000000000000000000\
                 000000000000000000000000000000000000"
            )
        );
        let mut set = Message::set(
            src,
            1,
            Dataset::GrandmasterSettings(GrandmasterSettings {
                clock_quality: ClockQuality {
                    class: 7,
                    accuracy: 0x21,
                    offset_scaled_log_variance: 0x4e5d,
                },
                current_utc_offset: 37,
                flags: TimeFlags {
                    current_utc_offset_valid: true,
                    ptp_timescale: true,
                    time_traceable: true,
                    ..TimeFlags::default()
                },
                time_source: 0x20,
            }),
        );
        set.transport_specific = 1;
        assert_eq!(
            encode(&set),
            hex(
                "1d02003e00000000000000000000000000000000000000000000000039420001047f\
                 ffffffffffffffffffff000001000001000ac00107214e5d00251c20"
            )
        );
        let mut sub = Message::set(
            src,
            2,
            Dataset::SubscribeEvents(SubscribeEvents::new(60, &[NotifyEvent::PortState])),
        );
        sub.transport_specific = 1;
        let mut want = hex(
            "1d02007800000000000000000000000000000000000000000000000039420002047f\
             ffffffffffffffffffff0000010000010044c003003c01",
        );
        want.resize(120, 0);
        assert_eq!(encode(&sub), want);
        // And each decodes back to itself.
        for m in [get, set, sub] {
            assert_eq!(decode(&encode(&m)).unwrap(), m);
        }
    }

    #[test]
    fn an_error_status_decodes_with_its_id_and_text() {
        let m = Message {
            action: Action::Response,
            tlv: Tlv::Error {
                error: ManagementErrorId::NoSuchId,
                id: id::EXTERNAL_GRANDMASTER_PROPERTIES_NP,
                display: "bad".into(),
            },
            ..Message::get(PortIdentity::default(), 9, id::PARENT_DATA_SET)
        };
        let d = decode(&encode(&m)).unwrap();
        assert_eq!(d, m);
    }

    #[test]
    fn bad_bytes_are_errors_not_panics() {
        assert_eq!(decode(&[]), Err(DecodeError::TooShort(0)));
        // Found by fuzz/fuzz_targets/mgmt_decode.rs: an odd TLV length decoded to a dataset
        // that re-encoded with its pad byte, so it did not decode the same again.
        let odd = include_bytes!("../../../fuzz/seeds/mgmt_decode/found-odd-tlv-length-1");
        assert_eq!(decode(odd), Err(DecodeError::OddTlvLength(0x33)));
        let good = encode(&Message::get(
            PortIdentity::default(),
            1,
            id::PARENT_DATA_SET,
        ));
        let mut b = good.clone();
        b[0] = 0x0b; // an Announce
        assert_eq!(decode(&b), Err(DecodeError::NotManagement(0xb)));
        let mut b = good.clone();
        b[3] = 0xff;
        assert!(matches!(decode(&b), Err(DecodeError::Length { .. })));
        let mut b = good.clone();
        b[51] = 0xf0; // TLV length past the end
        assert!(matches!(decode(&b), Err(DecodeError::TlvLength { .. })));
        // A dataset cut short: the length fields say so, the data is missing.
        let mut b = good[..60].to_vec();
        b[2..4].copy_from_slice(&60u16.to_be_bytes());
        b[50..52].copy_from_slice(&8u16.to_be_bytes());
        assert!(matches!(
            decode(&b),
            Err(DecodeError::ShortDataset { need: 32, .. })
        ));
        // An unknown id is kept raw.
        let mut b = good.clone();
        b[52..54].copy_from_slice(&0x7777u16.to_be_bytes());
        assert!(matches!(
            decode(&b).unwrap().tlv,
            Tlv::Management(Dataset::Unknown { id: 0x7777, .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn error_text_survives_a_round_trip(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..255)) {
            // Invalid UTF-8 grows into U+FFFD: what decodes still fits a PTPText and
            // encodes to bytes that decode the same.
            let mut b = encode(&Message {
                tlv: Tlv::Error { error: ManagementErrorId::NoSuchId, id: 0x2000, display: String::new() },
                ..Message::get(PortIdentity::default(), 1, id::PARENT_DATA_SET)
            });
            b.truncate(b.len() - 2); // the empty PTPText and its pad
            b.push(bytes.len() as u8);
            b.extend_from_slice(&bytes);
            if b.len() % 2 == 1 { b.push(0); }
            let tlv_len = (b.len() - 52) as u16;
            b[50..52].copy_from_slice(&tlv_len.to_be_bytes());
            let total = b.len() as u16;
            b[2..4].copy_from_slice(&total.to_be_bytes());
            let m = decode(&b).unwrap();
            let Tlv::Error { display, .. } = &m.tlv else { panic!("{m:?}") };
            proptest::prop_assert!(display.len() <= 255);
            proptest::prop_assert_eq!(decode(&encode(&m)).unwrap(), m);
        }

        #[test]
        fn any_mutation_of_a_real_reply_decodes_or_errs(i in 0usize..86, v in proptest::num::u8::ANY) {
            let mut b = encode(&Message::get(PortIdentity::default(), 1, id::PARENT_DATA_SET));
            b[i] = v;
            if let Ok(m) = decode(&b) {
                // Whatever decoded encodes to a message that decodes the same.
                proptest::prop_assert_eq!(decode(&encode(&m)).unwrap(), m);
            }
        }
    }
}
