//! The sans-IO state engine of the PTP events framework: linuxptp and linuxptp-daemon output in,
//! O-RAN events, CurrentState values and Prometheus metrics out.
//!
//! # Model
//!
//! An [`Engine`] is fed log lines with the time they arrived ([`Engine::feed`]`(line, now, out)`)
//! and appends the resulting [`Change`]s (one CloudEvent's `data.values` each) to `out`. It never
//! reads a clock, spawns a thread or touches I/O: `now` ([`Nanos`], nanoseconds on any monotonic
//! timeline of the caller) is an input, and timers (holdover, process-down debounce) fire when the
//! caller calls [`Engine::tick`] at or after [`Engine::next_deadline`] (`feed` also fires the
//! timers due at its `now` first). The same input always gives the same output.
//!
//! Lines are parsed by [`parse_line`] into a borrowed [`ParsedLine`] without allocating. Every
//! form the Go daemon forwards is understood (raw linuxptp lines with `[cfg:N]`, `[cfg]` or the
//! literal `[cfg:{level}]` tag, daemon-generated `GM`/`T-BC`/`dpll`/`gnss`/`synce4l` lines, process
//! status and clock-class lines, also when embedded in a klog line, and `CMD RESTART` /
//! `CMD LIVE_START`). Anything else is counted in [`Stats`] and skipped.
//!
//! State is kept per **config family**: `ptp4l.N.config` and `ts2phc.N.config` are one clock
//! group, as in the Go sidecar. Each group has a **main clock**, whose state is the
//! `lock-state` resource:
//!
//! * OC/BC (the default): ptp4l `master offset` samples, with the profile [`Thresholds`]
//!   (in range means `min < offset < max`, strictly): LOCKED only for a locked servo (`s2`/`s3`)
//!   in range, FREERUN otherwise; a SLAVE port going FAULTY / MASTER / LISTENING turns a LOCKED
//!   clock into HOLDOVER and arms a timer of `hold_over_timeout`, at whose deadline (`now >=
//!   deadline`) a clock still in HOLDOVER becomes FREERUN; only a locked in-range sample leaves
//!   HOLDOVER early.
//! * T-BC: the daemon's `T-BC[...] ... T-BC-STATUS sN` lines (`s0` FREERUN, `s1` HOLDOVER, `s2`
//!   LOCKED); ptp4l offsets are then metrics only. Learned from the first such line, or set by
//!   [`ClockType::TBc`].
//! * T-GM: the daemon's `GM[...] T-GM-STATUS sN` lines; with [`ClockType::TGm`] and before any
//!   such line, the state is derived from the `dpll`, `gnss` and ts2phc lines by
//!   [`tgm::decide`] (reference §3.6).
//!
//! The **OS clock** (`os-clock-sync-state`) is decided on each phc2sys `CLOCK_REALTIME` sample as
//! the worst of the phc2sys servo (with thresholds) and the current state of the main clock of the
//! config phc2sys is tagged with; it does not change between samples, so it cannot flap. The
//! **sync-state** is the worst (FREERUN > HOLDOVER > LOCKED) of every main clock and the OS clock,
//! published after the lock-state or os-clock change that moved it. Clock class comes from
//! `CLOCK_CLASS_CHANGE`, GNSS from `gnss` lines (`SYNCHRONIZED` when locked, else
//! `ACQUIRING-SYNC` with a fix ≥ 1, else `FAILURE-NOFIX`), SyncE from `synce4l` lines.
//!
//! **Every event is edge-triggered**: a resource is published only when its state (for GNSS its
//! O-RAN state, for clock class and SyncE quality the value) changes; offsets alone never publish,
//! but [`Engine::current`] and the metrics always carry the latest ones.
//!
//! **Process down** (`PTP_PROCESS_STATUS 0`) is debounced: only when the process has not come
//! back within [`EngineConfig::downtime_threshold`] (default 5 s) does what it drives become
//! FREERUN with offset `-9999999999999999` (ptp4l: its OC/BC main clock and the OS clock that
//! follows it; phc2sys: the OS clock; ts2phc: a T-GM main clock; synce4l: its SyncE ports).
//! A shorter outage publishes nothing. The process-status metric changes at once.
//!
//! # Choices where the Go code is silent or inconsistent
//!
//! * A ptp4l line without `path delay` takes its state from the servo (the Go sidecar's
//!   "no delay means HOLDOVER" quirk is not reproduced).
//! * A SLAVE port fault on a FREERUN (or not yet decided) clock does not go to HOLDOVER: a clock
//!   that was not locked has nothing to hold over.
//! * Lines of configs without a profile are used with [`EngineConfig::default_thresholds`];
//!   ports are learned from `port N (iface)` lines.
//! * The interface of an OC/BC main clock is the last port that became SLAVE, else the first
//!   interface of the profile; with none known the value address is `/cluster/node/<n>/master`.
//!   Value addresses use [`EngineConfig::aliases`], else the raw interface name
//!   ([`default_alias`] computes the daemon's alias for callers that want it).
//! * Clock class, SyncE lock-state and every value address have one shape in events and in
//!   [`Engine::current`] (no `/CLOCK_CLASS` suffix; SyncE lock-state is notification/enumeration;
//!   `extQl` is 255 when not enabled).
//! * `CMD RESTART` ([`Engine::reset`]) forgets all per-process state, including process records,
//!   but keeps profiles, aliases and [`Stats`]; `CMD LIVE_START` is counted and ignored.
//! * A T-GM state derived from components publishes lock-state only; the clock class still
//!   comes from `CLOCK_CLASS_CHANGE` lines ([`tgm::tgm_class`] gives the T-GM mapping).
//! * ts2phc interfaces are labelled as printed: a raw log's `/dev/ptpN` stays `/dev/ptpN` (the Go
//!   daemon rewrites it to the interface name before forwarding).
//! * A replay's timeline is built by [`ReplayClock`] (see [`replay`]).
//!
//! # Not here
//!
//! No config-file parsing (the caller passes [`ProfileInfo`]s), no sockets, no HTTP, no
//! CloudEvent ids or timestamps (see the `oran-api` crate).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod engine;
pub mod gpsd;
mod metrics;
pub mod parse;
mod replay;
pub mod tbc;
pub mod tgm;

pub use config::{ClockType, EngineConfig, Nanos, ProfileInfo, Thresholds, default_alias, nanos};
pub use engine::{Change, Engine, Stats};
pub use metrics::{clock_state_value, escape_label_value};
pub use parse::{Control, LineKind, ParsedLine, parse_line};
pub use replay::{ReplayClock, Replayer, TimedChange, replay};
