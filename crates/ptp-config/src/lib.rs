//! PtpConfig profiles for the PTP daemon: parsing, validation and rendering, pure.
//!
//! * [`load_profiles`] / [`parse_profiles`] read the forms a user has: `PtpConfig` custom
//!   resources (YAML or JSON, several per file; `spec.recommend` picks this node's profiles as
//!   the operator does), the operator's per-node ConfigMap value (a JSON array of profiles at
//!   `<profile dir>/<node name>`), or a whole ConfigMap manifest.
//! * [`validate`] checks every field of every profile and reports all problems at once, each
//!   naming the profile, the field and the fix ([`FieldError`]).
//! * [`plan`] validates, orders (profiles without phc2sys first, then by name → run ids) and
//!   renders each process's config (`#profile:` first line, `message_tag`, `uds_address`,
//!   interface sections, `summary_interval`) and command line (`-m` added, `chrt`, HA `-z`)
//!   exactly as linuxptp-daemon does.
//! * [`read_rendered_configs`] reads rendered configs back from a run directory, for a
//!   producer that runs as a sidecar.
//!
//! Not here: writing files, spawning or supervising processes (the `daemon` crate does that).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod conf;
mod error;
mod load;
mod operator;
mod profile;
mod readback;
mod render;

pub use conf::{ConfLineError, GLOBAL, LinuxptpConf, NMEA, Section, UNICAST};
pub use error::{ConfigError, FieldError};
pub use load::{InputForm, NodeSelector, load_profiles, parse_profiles};
pub use operator::event_publisher_enabled;
pub use profile::{
    MatchRule, Metadata, PtpClockThreshold, PtpConfig, PtpConfigSpec, PtpProfile, PtpRecommend,
};
pub use readback::{
    RenderedConfig, parse_rendered_config, read_rendered_configs, sidecar_profile_name,
    split_config_name,
};
pub use render::{
    ClockKind, Plan, ProcessKind, ProcessPlan, ProfilePlan, RenderOptions, plan, ptp4l_option,
    sort_profiles, validate,
};
