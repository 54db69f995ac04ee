//! Clock class from ptp4l itself: one watcher per ptp4l of an OC or BC profile asks its
//! management socket for PARENT_DATA_SET and writes the Go daemon's
//! `ptp4l[<unix>]:[ptp4l.N.config] CLOCK_CLASS_CHANGE <class>` line when the grandmaster's
//! clock class changes, so that both our producer and the Go producer publish clock-class events.
//!
//! As the Go daemon (`pkg/daemon/pmc.go`, `pkg/event/event.go`):
//! * the line carries the parent data set's `grandmasterClockQuality.clockClass`; for an OC
//!   (one interface) a second line follows at once with the local clock's own class from
//!   GRANDMASTER_SETTINGS_NP (255 for a slave-only ptp4l), which is the class kept and
//!   re-announced; for a BC only the parent's class;
//! * the kept class is written again every [`ClassSettings::reannounce`] (60 s) and is in the
//!   replay after a socket reconnect and on `/emit-logs` (the hub caches the last class line);
//! * no watcher for a grandmaster profile (no slave port).
//!
//! Where we differ, on purpose: ptp4l 3.1.1 pushes no parent-data-set notifications, and the
//! Go monitor, whose subscription 3.1.1 rejects, never polls; here the data set is polled every
//! [`ClassSettings::poll`] (250 ms), so a change is written well within a second of ptp4l's
//! data set changing. A ptp4l that is down (socket missing, nobody reading) is retried at the
//! same pace; when it answers again its class is written again (a restarted ptp4l starts over).
//! A ptp4l that answers nothing or something unexpected is logged once per kind of failure, and
//! retried.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ptp_config::{ClockKind, GLOBAL, LinuxptpConf, ProcessKind, ProcessPlan, ProfilePlan};
use ptp_mgmt::{Client, ClientConfig, MgmtError};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::hub::Hub;
use crate::lines::unix_now;

/// How often and how patiently.
#[derive(Debug, Clone, Copy)]
pub struct ClassSettings {
    /// PARENT_DATA_SET poll interval (250 ms).
    pub poll: Duration,
    /// The kept class is written again this often (60 s, as Go).
    pub reannounce: Duration,
    /// How long one management request may take (500 ms).
    pub timeout: Duration,
}

impl Default for ClassSettings {
    fn default() -> Self {
        ClassSettings {
            poll: Duration::from_millis(250),
            reannounce: Duration::from_secs(60),
            timeout: Duration::from_millis(500),
        }
    }
}

/// A profile's ptp4l as a management peer: its config, its socket, how it is addressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ptp4lTarget {
    /// `ptp4l.N.config`, the config the lines name.
    pub config_file: String,
    /// ptp4l's `uds_address`.
    pub socket: PathBuf,
    /// ptp4l's domainNumber (its UNIX port ignores other domains).
    pub domain: u8,
    /// ptp4l's transportSpecific.
    pub transport_specific: u8,
}

impl Ptp4lTarget {
    /// `profile`'s ptp4l, or `None` (no ptp4l, or no `uds_address` rendered).
    pub fn of(profile: &ProfilePlan) -> Option<Ptp4lTarget> {
        let p = profile
            .processes
            .iter()
            .find(|p| p.kind == ProcessKind::Ptp4l)?;
        let conf = LinuxptpConf::parse(&p.config_text).ok()?;
        Some(Ptp4lTarget {
            config_file: p.config_file.clone(),
            socket: PathBuf::from(conf.get(GLOBAL, "uds_address")?),
            domain: number(p, &conf, "domainNumber").unwrap_or(0),
            transport_specific: number(p, &conf, "transportSpecific").unwrap_or(0),
        })
    }

    /// A management client of this ptp4l (its own socket in `local_dir`).
    pub fn client(&self, local_dir: &Path, timeout: Duration) -> Result<Client, MgmtError> {
        let cfg = ClientConfig {
            domain: self.domain,
            transport_specific: self.transport_specific,
            timeout,
        };
        Client::new(&self.socket, local_dir, cfg)
    }
}

/// What one watcher needs: which ptp4l, and whether it is an OC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassWatch {
    /// The ptp4l.
    pub target: Ptp4lTarget,
    /// An OC also announces its local class.
    pub ordinary: bool,
}

impl ClassWatch {
    /// The watcher for `profile`'s ptp4l, or `None` (a grandmaster, or no ptp4l).
    pub fn for_profile(profile: &ProfilePlan) -> Option<ClassWatch> {
        if profile.clock_kind == ClockKind::Gm {
            return None;
        }
        Some(ClassWatch {
            target: Ptp4lTarget::of(profile)?,
            ordinary: profile.clock_kind == ClockKind::Oc,
        })
    }
}

/// `--key N`, `--key=N` on the command line (which wins, as in ptp4l), else the config's.
fn number(p: &ProcessPlan, conf: &LinuxptpConf, key: &str) -> Option<u8> {
    ptp_config::ptp4l_option(&p.argv.join(" "), conf, key).and_then(parse_u8)
}

fn parse_u8(v: &str) -> Option<u8> {
    let v = v.trim();
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(h) => u8::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

/// The Go daemon's line (`pkg/utils/clock_class_log.go`): no space after `]:`.
pub fn clock_class_line(config_file: &str, class: u8, unix: u64) -> String {
    format!("ptp4l[{unix}]:[{config_file}] CLOCK_CLASS_CHANGE {class}")
}

/// Watches until `stop` turns true. The management client's own socket is made in `local_dir`.
pub async fn watch(
    w: ClassWatch,
    hub: Arc<Hub>,
    local_dir: PathBuf,
    settings: ClassSettings,
    mut stop: watch::Receiver<bool>,
) {
    let mut client: Option<Client> = None;
    // The parent's class last seen (written when it changes), and the class kept (re-announced).
    let mut parent: Option<u8> = None;
    let mut kept: Option<u8> = None;
    let mut next_reannounce = Instant::now() + settings.reannounce;
    let mut last_failure: Option<String> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        if client.is_none() {
            client = connect(&w, &local_dir, settings, &mut last_failure);
        }
        if let Some(c) = client.as_mut() {
            match c.parent_data_set().await {
                Ok(pds) => {
                    last_failure = None;
                    let class = pds.grandmaster_clock_quality.class;
                    if parent != Some(class) {
                        parent = Some(class);
                        tracing::info!(config = %w.target.config_file, class, "grandmaster clock class");
                        hub.publish(clock_class_line(&w.target.config_file, class, unix_now()));
                        kept = Some(class);
                        if w.ordinary {
                            kept = local_class(c, &w, &hub).await.or(kept);
                        }
                        next_reannounce = Instant::now() + settings.reannounce;
                    }
                }
                Err(e) => {
                    if e.is_absent() {
                        // ptp4l is down (or not yet up): when it answers again, it starts over.
                        parent = None;
                    }
                    note_failure(&w, &e, &mut last_failure);
                }
            }
        }
        if let Some(class) = kept
            && Instant::now() >= next_reannounce
        {
            hub.publish(clock_class_line(&w.target.config_file, class, unix_now()));
            next_reannounce = Instant::now() + settings.reannounce;
        }
        tokio::select! {
            _ = tokio::time::sleep(settings.poll) => {},
            _ = stop.changed() => return,
        }
    }
}

fn connect(
    w: &ClassWatch,
    local_dir: &Path,
    settings: ClassSettings,
    last_failure: &mut Option<String>,
) -> Option<Client> {
    match w.target.client(local_dir, settings.timeout) {
        Ok(c) => Some(c),
        Err(e) => {
            note_failure(w, &e, last_failure);
            None
        }
    }
}

/// The OC's second line: the local clock's class from GRANDMASTER_SETTINGS_NP.
async fn local_class(c: &mut Client, w: &ClassWatch, hub: &Hub) -> Option<u8> {
    match c.grandmaster_settings().await {
        Ok(g) => {
            let class = g.clock_quality.class;
            hub.publish(clock_class_line(&w.target.config_file, class, unix_now()));
            Some(class)
        }
        Err(e) => {
            tracing::warn!(config = %w.target.config_file, error = %e, "cannot read the local clock class");
            None
        }
    }
}

/// Logs a failure once per kind (a ptp4l that is down is normal at start and while it
/// restarts: debug; anything else: a warning).
fn note_failure(w: &ClassWatch, e: &MgmtError, last: &mut Option<String>) {
    let kind = std::mem::discriminant(e);
    let key = format!("{kind:?}");
    if last.as_deref() == Some(key.as_str()) {
        return;
    }
    *last = Some(key);
    if e.is_absent() {
        tracing::debug!(config = %w.target.config_file, error = %e, "ptp4l management socket not answering yet");
    } else {
        tracing::warn!(config = %w.target.config_file, error = %e, "reading the clock class from ptp4l failed; retrying");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_is_the_go_daemons() {
        // pkg/utils/clock_class_log.go, run unmodified (reference: linuxptp-tbc.md §1.4).
        assert_eq!(
            clock_class_line("ptp4l.0.config", 6, 1796284260),
            "ptp4l[1796284260]:[ptp4l.0.config] CLOCK_CLASS_CHANGE 6"
        );
        match ptp_state::parse_line(&clock_class_line("ptp4l.3.config", 248, 1)) {
            ptp_state::ParsedLine::ClockClassChange { config, class } => {
                assert_eq!((config, class), ("ptp4l.3.config", 248));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn domain_and_transport_come_from_the_command_line_or_the_config() {
        let plan = |argv: &[&str], conf: &str| ProcessPlan {
            kind: ProcessKind::Ptp4l,
            profile: "p".into(),
            run_id: 0,
            config_file: "ptp4l.0.config".into(),
            config_path: "/tmp/ptp4l.0.config".into(),
            config_text: conf.into(),
            message_tag: String::new(),
            status_config: "ptp4l.0.config".into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            start_after_offset_from: vec![],
            warnings: vec![],
        };
        let conf = "[global]\ndomainNumber 24\ntransportSpecific 0x1\n";
        let p = plan(&["ptp4l", "-f", "x"], conf);
        let c = LinuxptpConf::parse(conf).unwrap();
        assert_eq!(number(&p, &c, "domainNumber"), Some(24));
        assert_eq!(number(&p, &c, "transportSpecific"), Some(1));
        let p = plan(&["ptp4l", "--domainNumber", "44"], conf);
        assert_eq!(number(&p, &c, "domainNumber"), Some(44));
        let p = plan(&["ptp4l", "--domainNumber=7"], conf);
        assert_eq!(number(&p, &c, "domainNumber"), Some(7));
        let empty = LinuxptpConf::parse("[global]\n").unwrap();
        assert_eq!(number(&plan(&[], ""), &empty, "domainNumber"), None);
    }
}
