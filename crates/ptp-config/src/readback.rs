//! Reading rendered configs back, for a producer that runs as a sidecar and only sees the
//! shared run directory (as the Go sidecar reads `/var/run/*.config`).

use std::path::{Path, PathBuf};

use crate::conf::LinuxptpConf;

/// What a rendered `<process>.<N>.config` says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedConfig {
    /// The file name, which is also the config name lines are tagged with (`ptp4l.0.config`).
    pub config_name: String,
    /// The file.
    pub path: PathBuf,
    /// The process (`ptp4l`, `phc2sys`, `ts2phc`, ...).
    pub process: String,
    /// N.
    pub run_id: usize,
    /// From the `#profile: <name>` first line (`None` if the file has none).
    pub profile: Option<String>,
    /// Interface sections in order (every section but `[global]`, `[nmea]`,
    /// `[unicast_master_table]`): ptp4l port N is the N-th.
    pub interfaces: Vec<String>,
}

impl RenderedConfig {
    /// The state engine's view of this config, given the profile's thresholds (which are not in
    /// the file: the Go sidecar reads them from the profile source).
    pub fn profile_info(&self, thresholds: ptp_state::Thresholds) -> ptp_state::ProfileInfo {
        ptp_state::ProfileInfo {
            name: self.profile.clone().unwrap_or_default(),
            thresholds,
            interfaces: self.interfaces.clone(),
            ..ptp_state::ProfileInfo::default()
        }
    }
}

/// The profile name the Go sidecar reads from a rendered config: the first match of
/// `profile: \s*([\w-_]+)` anywhere in the text, with Go's ASCII classes (`\s` is `[\t\n\f\r ]`,
/// `\w` is `[0-9A-Za-z_]`). The daemon writes `#profile: <name>` as the first line.
pub fn sidecar_profile_name(text: &str) -> Option<&str> {
    let mut from = 0;
    while let Some(at) = text[from..].find("profile: ") {
        let start = from + at + "profile: ".len();
        let rest = &text[start..];
        let rest = rest.trim_start_matches(['\t', '\n', '\x0c', '\r', ' ']);
        let len = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
            .count();
        if len > 0 {
            return Some(&rest[..len]);
        }
        from += at + 1;
    }
    None
}

/// Splits `ptp4l.0.config` into `("ptp4l", 0)`.
pub fn split_config_name(name: &str) -> Option<(&str, usize)> {
    let stem = name.strip_suffix(".config")?;
    let (process, n) = stem.rsplit_once('.')?;
    if process.is_empty() || !process.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    Some((process, n.parse().ok()?))
}

/// Parses one rendered config's text (the profile name as the sidecar reads it, see
/// [`sidecar_profile_name`]; interfaces from the section headers). Unparseable lines are skipped: the file was written
/// by a daemon, and a reader must not fail on what it does not need.
pub fn parse_rendered_config(config_name: &str, path: &Path, text: &str) -> Option<RenderedConfig> {
    let (process, run_id) = split_config_name(config_name)?;
    let profile = sidecar_profile_name(text).map(str::to_owned);
    let mut conf = LinuxptpConf::default();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[')
            && let Some(close) = line.find(']')
        {
            conf.add_section(&line[..=close]);
        }
    }
    Some(RenderedConfig {
        config_name: config_name.to_owned(),
        path: path.to_owned(),
        process: process.to_owned(),
        run_id,
        profile,
        interfaces: conf.interfaces(),
    })
}

/// Reads every `ptp4l.N.config`, `ts2phc.N.config` and `phc2sys.N.config` in `dir`, sorted
/// by run id then process. Other files are ignored; an unreadable config is an error.
pub fn read_rendered_configs(dir: &Path) -> std::io::Result<Vec<RenderedConfig>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        match split_config_name(name) {
            Some(("ptp4l" | "ts2phc" | "phc2sys", _)) => {}
            _ => continue,
        }
        if !entry.file_type()?.is_file() {
            continue;
        }
        let path = entry.path();
        let text = std::fs::read_to_string(&path)?;
        if let Some(c) = parse_rendered_config(name, &path, &text) {
            out.push(c);
        }
    }
    out.sort_by(|a, b| (a.run_id, &a.process).cmp(&(b.run_id, &b.process)));
    Ok(out)
}
