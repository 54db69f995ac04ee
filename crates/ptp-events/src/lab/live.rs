//! The live software PTP testbed: two network namespaces joined by a veth pair, a grandmaster
//! `ptp4l -2 -S` in one, our daemon running a slave profile in the other
//! (reference: software-ptp-testbed.md). The clocks are emulated: every ptp4l runs with the
//! clock-write shim ([`daemon::shim`], `LD_PRELOAD`), so the slave's `linreg` servo locks (`s2`)
//! without ever adjusting CLOCK_REALTIME, and the lab runs beside a time daemon.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use daemon::{Daemon, DaemonHandle, DaemonOptions};
use proxy::{Ingest, LineSender};
use tokio::process::Child;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Fault;

/// The slave's interface (in its namespace).
pub const SLAVE_IFACE: &str = "vlabsl";
const GM_IFACE: &str = "vlabgm";
const GM_NS: &str = "ptpevents-lab-gm";
const SLAVE_NS: &str = "ptpevents-lab-sl";

fn ptp4l() -> Option<PathBuf> {
    ["/usr/sbin/ptp4l", "/usr/bin/ptp4l", "/sbin/ptp4l"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Whether the live testbed can run here, or why not.
pub fn possible() -> Result<(), String> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        return Err("not running as root (network namespaces need it)".into());
    }
    if ptp4l().is_none() {
        return Err("linuxptp is not installed (apt-get install linuxptp)".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Err("iproute2 (ip) is not installed".into());
    }
    Ok(())
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .with_context(|| format!("ip {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn delete_namespaces() {
    for ns in [GM_NS, SLAVE_NS] {
        let _ = Command::new("ip")
            .args(["netns", "del", ns])
            .stderr(Stdio::null())
            .status();
    }
}

/// The running testbed.
pub struct Live {
    dir: PathBuf,
    gm: Mutex<Option<Child>>,
    daemon: DaemonHandle,
    stop: watch::Sender<bool>,
    daemon_task: Mutex<Option<JoinHandle<()>>>,
    lines: LineSender,
    shim: PathBuf,
}

impl Live {
    /// Builds the testbed and starts the grandmaster and the daemon; the daemon's lines go into
    /// `ingest` in-process.
    pub async fn start(
        dir: &Path,
        holdover: Duration,
        ingest: &mut Ingest,
    ) -> anyhow::Result<Arc<Live>> {
        delete_namespaces();
        let setup = || -> anyhow::Result<()> {
            ip(&["netns", "add", GM_NS])?;
            ip(&["netns", "add", SLAVE_NS])?;
            ip(&[
                "link",
                "add",
                GM_IFACE,
                "type",
                "veth",
                "peer",
                "name",
                SLAVE_IFACE,
            ])?;
            ip(&["link", "set", GM_IFACE, "netns", GM_NS])?;
            ip(&["link", "set", SLAVE_IFACE, "netns", SLAVE_NS])?;
            ip(&["-n", GM_NS, "link", "set", GM_IFACE, "up"])?;
            ip(&["-n", SLAVE_NS, "link", "set", SLAVE_IFACE, "up"])?;
            Ok(())
        };
        if let Err(e) = setup() {
            delete_namespaces();
            return Err(e.context("building the testbed's namespaces"));
        }
        let shim = daemon::shim::install(dir).context("writing the clock-write shim")?;
        std::fs::write(
            dir.join("gm.cfg"),
            format!(
                "[global]\npriority1 127\nclockClass 6\nlogSyncInterval -2\nlogAnnounceInterval -3\nuds_address {}\n",
                dir.join("gm.sock").display()
            ),
        )?;
        let profile = serde_json::json!([{
            "name": "lab-slave",
            "interface": SLAVE_IFACE,
            "ptp4lOpts": "-2 -S -s",
            "ptp4lConf": "[global]\nclock_servo linreg\nlogSyncInterval -2\nsummary_interval -2\n",
            "ptpClockThreshold": {
                "holdOverTimeout": holdover.as_secs().max(1),
                "maxOffsetThreshold": 5000,
                "minOffsetThreshold": -5000
            }
        }]);
        let profile_file = dir.join("lab-node");
        std::fs::write(&profile_file, serde_json::to_vec_pretty(&profile)?)?;
        let (tx, rx) = tokio::sync::mpsc::channel(4096);
        ingest.attach(rx);
        let mut opts = DaemonOptions::new(ptp_config::NodeSelector::new("lab-node"), &profile_file);
        opts.render.run_dir = dir.join("run");
        opts.command_prefix = vec!["ip".into(), "netns".into(), "exec".into(), SLAVE_NS.into()];
        opts.command_prefix.extend(daemon::shim::prefix(&shim));
        opts.lines = Some(tx);
        opts.stop_grace = Duration::from_secs(2);
        let d = Daemon::new(opts);
        let handle = d.handle();
        let (stop, mut stop_rx) = watch::channel(false);
        let daemon_task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            };
            if let Err(e) = d.run(shutdown).await {
                eprintln!("lab: daemon failed: {e:#}");
            }
        });
        let live = Arc::new(Live {
            dir: dir.to_path_buf(),
            gm: Mutex::new(None),
            daemon: handle,
            stop,
            daemon_task: Mutex::new(Some(daemon_task)),
            lines: ingest.sender(),
            shim,
        });
        live.start_gm()?;
        Ok(live)
    }

    /// One line about the testbed.
    pub fn describe(&self) -> String {
        format!(
            "namespaces {GM_NS} and {SLAVE_NS}, veth {GM_IFACE}/{SLAVE_IFACE}, grandmaster ptp4l -2 -S, slave run by the daemon with the linreg servo; clocks emulated: every ptp4l runs with a clock-write shim (LD_PRELOAD), so it locks without adjusting CLOCK_REALTIME"
        )
    }

    fn start_gm(&self) -> anyhow::Result<()> {
        let ptp4l = ptp4l().context("ptp4l not found")?;
        let child = tokio::process::Command::new("ip")
            .args(["netns", "exec", GM_NS, "env"])
            .arg(format!("LD_PRELOAD={}", self.shim.display()))
            .arg(ptp4l)
            .args(["-2", "-S", "-i", GM_IFACE, "-m", "-f"])
            .arg(self.dir.join("gm.cfg"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting the grandmaster ptp4l")?;
        *self.gm.lock().expect("gm lock") = Some(child);
        Ok(())
    }

    fn stop_gm(&self) -> bool {
        let child = self.gm.lock().expect("gm lock").take();
        match child {
            Some(mut c) => {
                let _ = c.start_kill();
                true
            }
            None => false,
        }
    }

    /// Injects `fault` for real where it can be caused for real.
    pub async fn inject(&self, fault: &Fault) -> String {
        match fault {
            Fault::GmLoss => {
                if self.stop_gm() {
                    "ok (live): grandmaster ptp4l killed; the slave port times out in about 3 s (HOLDOVER), then FREERUN after holdOverTimeout".into()
                } else {
                    "error: the grandmaster is already down".into()
                }
            }
            Fault::GmRestore => {
                if self.gm.lock().expect("gm lock").is_some() {
                    return "error: the grandmaster is already running".into();
                }
                match self.start_gm() {
                    Ok(()) => "ok (live): grandmaster ptp4l started; the slave re-selects it within seconds (LOCKED)".into(),
                    Err(e) => format!("error: {e:#}"),
                }
            }
            Fault::Ptp4lCrash => {
                let pid = self
                    .daemon
                    .processes()
                    .into_iter()
                    .find(|p| p.config_file.starts_with("ptp4l.") && p.up)
                    .and_then(|p| p.pid);
                match pid {
                    Some(pid) => {
                        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                        format!(
                            "ok (live): slave ptp4l (pid {pid}) killed with SIGKILL; the daemon restarts it after 1 s"
                        )
                    }
                    None => "error: the slave ptp4l is not running".into(),
                }
            }
            Fault::OffsetSpike(ns) => {
                let line = format!(
                    "ptp4l[{}.000]: [ptp4l.0.config] master offset {ns} s2 freq 0 path delay 2000",
                    chrono::Utc::now().timestamp()
                );
                self.lines.send(line).await;
                "ok (synthetic line: an offset excursion cannot be caused for real when both ends read the same CLOCK_REALTIME)".into()
            }
            Fault::ClockClass(c) => match self.set_gm_class(*c).await {
                Ok(()) => format!(
                    "ok (live): the grandmaster announces clock class {c} (SET GRANDMASTER_SETTINGS_NP on its management socket); the daemon reads it from the slave ptp4l's PARENT_DATA_SET within a second and writes CLOCK_CLASS_CHANGE {c}, then, as the Go daemon does for an OC, the slave's own class (255: slave-only); gm-restore starts the grandmaster at class 6 again"
                ),
                Err(e) => format!("error: {e:#}"),
            },
        }
    }

    /// The grandmaster's own settings with `class` (its time properties unchanged).
    async fn set_gm_class(&self, class: u8) -> anyhow::Result<()> {
        if self.gm.lock().expect("gm lock").is_none() {
            bail!("the grandmaster is down (gm-restore first)");
        }
        let mut client = ptp_mgmt::Client::new(
            &self.dir.join("gm.sock"),
            &self.dir,
            ptp_mgmt::ClientConfig::default(),
        )?;
        let mut settings = client.grandmaster_settings().await?;
        settings.clock_quality.class = class;
        client.set_grandmaster_settings(settings).await?;
        Ok(())
    }

    /// Stops everything and removes the namespaces (no clock to restore: none was adjusted).
    pub async fn stop(&self) {
        self.stop_gm();
        let _ = self.stop.send(true);
        let task = self.daemon_task.lock().expect("task lock").take();
        if let Some(t) = task {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
        delete_namespaces();
    }
}
