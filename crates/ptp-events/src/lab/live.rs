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
/// The grandmaster's interface (`--topology tgm`: our T-GM's).
pub const GM_IFACE: &str = "vlabgm";
const GM_NS: &str = "ptpevents-lab-gm";
const SLAVE_NS: &str = "ptpevents-lab-sl";
/// `--topology tbc`: the T-BC's namespace, its TR (upstream) and TT (downstream) interfaces,
/// and the T-TSC observer's namespace and interface.
const BC_NS: &str = "ptpevents-lab-bc";
/// The T-BC's TR interface.
pub const TR_IFACE: &str = "vlabtr";
/// The T-BC's TT interface.
pub const TT_IFACE: &str = "vlabtt";
const TSC_NS: &str = "ptpevents-lab-tsc";
const TSC_IFACE: &str = "vlabtsc";
/// The NMEA gpsfake loops for the T-GM: a minute of 3D fix.
const GNSS_FIX: [bool; 60] = [true; 60];

/// What the live testbed builds.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topology {
    /// Grandmaster → ordinary clock (slave-only), in two namespaces.
    Oc,
    /// Grandmaster → T-BC (TR and TT run by the daemon) → T-TSC observer, in three namespaces.
    Tbc,
    /// gpsd (fed by gpsfake) → our daemon as T-GM (its ptp4l, an emulated DPLL and ts2phc) →
    /// T-TSC observer, in two namespaces.
    Tgm,
}

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
    for ns in [GM_NS, SLAVE_NS, BC_NS, TSC_NS] {
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
    topology: Topology,
    tsc: Mutex<Option<Child>>,
    /// `--topology tgm`: gpsfake (and its gpsd), its port, the emulation file and its content.
    gps: Mutex<Option<daemon::gpsd::Gpsfake>>,
    gps_port: u16,
    emulation: (PathBuf, Mutex<Emulation>),
}

/// What the lab writes into the T-GM's emulation file.
#[derive(Debug, Clone, Default)]
struct Emulation {
    dpll: Option<String>,
    spoofed: bool,
}

impl Emulation {
    fn text(&self) -> String {
        format!(
            "# written by ptp-events lab (EMULATED: no DPLL, no PHC on this machine)\ndpll {}\nts2phc auto\ngnss {}\n",
            self.dpll.as_deref().unwrap_or("auto"),
            if self.spoofed { "spoofed" } else { "ok" }
        )
    }
}

impl Live {
    /// Builds the testbed and starts the grandmaster and the daemon; the daemon's lines go into
    /// `ingest` in-process.
    pub async fn start(
        dir: &Path,
        holdover: Duration,
        ingest: &mut Ingest,
        topology: Topology,
    ) -> anyhow::Result<Arc<Live>> {
        delete_namespaces();
        let pairs: &[(&str, &str, &str, &str)] = match topology {
            Topology::Oc => &[(GM_IFACE, GM_NS, SLAVE_IFACE, SLAVE_NS)],
            Topology::Tbc => &[
                (GM_IFACE, GM_NS, TR_IFACE, BC_NS),
                (TT_IFACE, BC_NS, TSC_IFACE, TSC_NS),
            ],
            Topology::Tgm => &[(GM_IFACE, GM_NS, TSC_IFACE, TSC_NS)],
        };
        if topology == Topology::Tgm {
            for bin in ["/usr/sbin/gpsd", "/usr/bin/gpsfake"] {
                if !Path::new(bin).exists() {
                    bail!("--topology tgm needs {bin} (apt-get install gpsd gpsd-clients)");
                }
            }
        }
        let setup = || -> anyhow::Result<()> {
            for (a, na, z, nz) in pairs {
                for ns in [na, nz] {
                    if !Path::new("/run/netns").join(ns).exists() {
                        ip(&["netns", "add", ns])?;
                    }
                }
                ip(&["link", "add", a, "type", "veth", "peer", "name", z])?;
                ip(&["link", "set", a, "netns", na])?;
                ip(&["link", "set", z, "netns", nz])?;
                ip(&["-n", na, "link", "set", a, "up"])?;
                ip(&["-n", nz, "link", "set", z, "up"])?;
            }
            Ok(())
        };
        if let Err(e) = setup() {
            delete_namespaces();
            return Err(e.context("building the testbed's namespaces"));
        }
        let shim = daemon::shim::install(dir).context("writing the clock-write shim")?;
        // The T-BC's InSync window fills faster at 16 Sync per second.
        let sync = match topology {
            Topology::Oc => -2,
            Topology::Tbc | Topology::Tgm => -4,
        };
        let gps_port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .context("a port for gpsd")?;
        let emulation = dir.join("tgm.emu");
        std::fs::write(&emulation, Emulation::default().text())?;
        std::fs::write(
            dir.join("gm.cfg"),
            format!(
                "[global]\npriority1 127\nclockClass 6\nlogSyncInterval {sync}\nlogAnnounceInterval -3\nuds_address {}\n",
                dir.join("gm.sock").display()
            ),
        )?;
        let profile = match topology {
            Topology::Oc => serde_json::json!([{
                "name": "lab-slave",
                "interface": SLAVE_IFACE,
                "ptp4lOpts": "-2 -S -s",
                "ptp4lConf": "[global]\nclock_servo linreg\nlogSyncInterval -2\nsummary_interval -2\n",
                "ptpClockThreshold": {
                    "holdOverTimeout": holdover.as_secs().max(1),
                    "maxOffsetThreshold": 5000,
                    "minOffsetThreshold": -5000
                }
            }]),
            // The Go daemon's T-BC form. The holdover model is shortened to the lab's holdover
            // timeout: 135 at the loss, 165 past 20 µs, 248 past 40 µs (40 µs per timeout). The
            // T-BC is declared holdover capable: the emulated clock has no frequency worth
            // judging, and a gm-loss right after locking should still show the holdover walk
            // (the frequency rule is exercised by the daemon's netns_tbc test).
            Topology::Tbc => serde_json::json!([
                {
                    "name": "00-tbc-tt",
                    "interface": TT_IFACE,
                    "ptp4lOpts": "-2 -S",
                    "ptp4lConf": "[global]\nmasterOnly 1\nclockClass 248\nlogAnnounceInterval -3\nlogSyncInterval -4\nsummary_interval 1\n",
                    "ptpSettings": {"controllingProfile": "01-tbc-tr"}
                },
                {
                    "name": "01-tbc-tr",
                    "interface": TR_IFACE,
                    "ptp4lOpts": "-2 -S -s --summary_interval -4",
                    "ptp4lConf": "[global]\nclock_servo linreg\nlogAnnounceInterval -3\n",
                    "phc2sysOpts": "",
                    "ptpSettings": {
                        "clockType": "T-BC",
                        "inSyncConditionThreshold": "10000",
                        "inSyncConditionTimes": "4",
                        "inSyncConditionWindow": "16",
                        "MaxInSpecOffset": "20000",
                        "LocalMaxHoldoverOffSet": "40000",
                        "LocalHoldoverTimeout": "3600",
                        "holdoverSlope": (40_000_000 / holdover.as_secs().max(1)).to_string(),
                        "holdoverCapable": "always"
                    }
                }
            ]),
            // Our T-GM: GNSS from gpsd (gpsfake's NMEA gives gpsd's fixed 5 ms time error, so the
            // threshold is 10 ms), the DPLL and ts2phc emulated by the file the lab writes. The
            // holdover is shortened: class 7 for the holdover timeout (LocalHoldoverTimeout),
            // 140 until the model passes 1500 ns (half as long again), then 248.
            Topology::Tgm => serde_json::json!([{
                "name": "lab-tgm",
                "interface": GM_IFACE,
                "ptp4lOpts": "-2 -S",
                "ptp4lConf": "[global]\nmasterOnly 1\nclockClass 248\nfree_running 1\nlogAnnounceInterval -3\nlogSyncInterval -4\nsummary_interval 1\n",
                "ptpSettings": {
                    "clockType": "T-GM",
                    "gnssSource": format!("127.0.0.1:{gps_port}"),
                    "tgmEmulation": emulation.display().to_string(),
                    "gnssOffsetThreshold": "10000000",
                    "inSyncConditionThreshold": "100",
                    "inSyncConditionTimes": "2",
                    "MaxInSpecOffset": "1000",
                    "LocalMaxHoldoverOffSet": "1500",
                    "LocalHoldoverTimeout": holdover.as_secs().max(1).to_string(),
                    "holdoverSlope": (1_000_000 / holdover.as_secs().max(1)).to_string()
                }
            }]),
        };
        let profile_file = dir.join("lab-node");
        std::fs::write(&profile_file, serde_json::to_vec_pretty(&profile)?)?;
        let (tx, rx) = tokio::sync::mpsc::channel(4096);
        ingest.attach(rx);
        let mut opts = DaemonOptions::new(ptp_config::NodeSelector::new("lab-node"), &profile_file);
        opts.render.run_dir = dir.join("run");
        let node_ns = match topology {
            Topology::Oc => SLAVE_NS,
            Topology::Tbc => BC_NS,
            Topology::Tgm => GM_NS,
        };
        opts.command_prefix = vec!["ip".into(), "netns".into(), "exec".into(), node_ns.into()];
        opts.command_prefix.extend(daemon::shim::prefix(&shim));
        opts.lines = Some(tx);
        opts.stop_grace = Duration::from_secs(2);
        // gpsd first: the T-GM's GNSS monitor starts with the daemon.
        let gps = match topology {
            Topology::Tgm => Some(
                daemon::gpsd::Gpsfake::start(dir, "lab-gnss", gps_port, &GNSS_FIX, false)
                    .context("starting gpsfake")?,
            ),
            _ => None,
        };
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
            topology,
            tsc: Mutex::new(None),
            gps: Mutex::new(gps),
            gps_port,
            emulation: (emulation, Mutex::new(Emulation::default())),
        });
        if topology != Topology::Tgm {
            live.start_gm()?;
        }
        if topology != Topology::Oc {
            live.start_tsc()?;
            tokio::spawn(watch_tsc(
                dir.join("tsc.sock"),
                dir.to_path_buf(),
                live.stop.subscribe(),
            ));
        }
        Ok(live)
    }

    /// One line about the testbed.
    pub fn describe(&self) -> String {
        let emulated = "clocks emulated: every ptp4l runs with a clock-write shim (LD_PRELOAD), so it locks without adjusting CLOCK_REALTIME";
        match self.topology {
            Topology::Oc => format!(
                "namespaces {GM_NS} and {SLAVE_NS}, veth {GM_IFACE}/{SLAVE_IFACE}, grandmaster ptp4l -2 -S, slave run by the daemon with the linreg servo; {emulated}"
            ),
            Topology::Tbc => format!(
                "grandmaster ({GM_NS}, {GM_IFACE}) -> T-BC run by the daemon ({BC_NS}: TR {TR_IFACE}, TT {TT_IFACE}) -> T-TSC observer ({TSC_NS}, {TSC_IFACE}); the T-BC's holdover model is shortened to the holdover timeout (135, then 165, then 248); {emulated}"
            ),
            Topology::Tgm => format!(
                "gpsd on 127.0.0.1:{} fed by gpsfake (a 3D fix) -> our daemon as T-GM ({GM_NS}, {GM_IFACE}; DPLL and ts2phc EMULATED, {}) -> T-TSC observer ({TSC_NS}, {TSC_IFACE}); {emulated}",
                self.gps_port,
                self.emulation.0.display()
            ),
        }
    }

    fn start_tsc(&self) -> anyhow::Result<()> {
        let ptp4l = ptp4l().context("ptp4l not found")?;
        let cfg = self.dir.join("tsc.cfg");
        std::fs::write(
            &cfg,
            format!(
                "[global]\nslaveOnly 1\nfree_running 1\nlogAnnounceInterval -3\nuds_address {}\n",
                self.dir.join("tsc.sock").display()
            ),
        )?;
        let child = tokio::process::Command::new("ip")
            .args(["netns", "exec", TSC_NS])
            .arg(ptp4l)
            .args(["-2", "-S", "-i", TSC_IFACE, "-m", "-f"])
            .arg(cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting the T-TSC ptp4l")?;
        *self.tsc.lock().expect("tsc lock") = Some(child);
        Ok(())
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

    fn start_gps(&self) -> anyhow::Result<()> {
        let g =
            daemon::gpsd::Gpsfake::start(&self.dir, "lab-gnss", self.gps_port, &GNSS_FIX, false)
                .context("starting gpsfake")?;
        *self.gps.lock().expect("gps lock") = Some(g);
        Ok(())
    }

    fn write_emulation(&self, change: impl FnOnce(&mut Emulation)) -> anyhow::Result<()> {
        let mut e = self.emulation.1.lock().expect("emulation lock");
        change(&mut e);
        // Written whole, then renamed: the daemon never reads half a file.
        let tmp = self.emulation.0.with_extension("tmp");
        std::fs::write(&tmp, e.text())?;
        std::fs::rename(&tmp, &self.emulation.0)?;
        Ok(())
    }

    /// The T-GM's faults (`--topology tgm`).
    fn inject_tgm(&self, fault: &Fault) -> String {
        let done = |r: anyhow::Result<()>, ok: String| match r {
            Ok(()) => ok,
            Err(e) => format!("error: {e:#}"),
        };
        match fault {
            Fault::GnssLoss => match self.gps.lock().expect("gps lock").take() {
                Some(mut g) => {
                    g.kill();
                    "ok (live): gpsd killed (GNSS lost at once); the emulated DPLL goes to holdover: class 7, then 140 after the holdover timeout, then 248".into()
                }
                None => "error: GNSS is already lost (gnss-restore)".into(),
            },
            Fault::GnssRestore => {
                let r = self.write_emulation(|e| e.spoofed = false);
                if self.gps.lock().expect("gps lock").is_none()
                    && let Err(e) = self.start_gps()
                {
                    return format!("error: {e:#}");
                }
                done(r, "ok (live): gpsd with a 3D fix (spoofing cleared); Locked (class 6) within a few seconds".into())
            }
            Fault::GnssSpoof => done(
                self.write_emulation(|e| e.spoofed = true),
                "ok (emulated flag): the receiver reports spoofing: GNSS FREERUN, holdover (class 7); gnss-restore clears it".into(),
            ),
            Fault::Dpll(m) => done(
                self.write_emulation(|e| {
                    e.dpll = (m != "auto").then(|| m.clone());
                }),
                format!("ok (emulated DPLL): {m}"),
            ),
            _ => "error: with --topology tgm the T-GM decides its class from GNSS and the DPLL: use gnss-loss, gnss-restore, gnss-spoof, dpll ...".into(),
        }
    }

    /// Injects `fault` for real where it can be caused for real.
    pub async fn inject(&self, fault: &Fault) -> String {
        if self.topology == Topology::Tgm && !matches!(fault, Fault::Ptp4lCrash) {
            return self.inject_tgm(fault);
        }
        match fault {
            Fault::GnssLoss | Fault::GnssRestore | Fault::GnssSpoof | Fault::Dpll(_) => {
                "error: GNSS and DPLL faults need --topology tgm".into()
            }
            Fault::GmLoss => {
                if self.stop_gm() {
                    match self.topology {
                        Topology::Oc => "ok (live): grandmaster ptp4l killed; the slave port times out in about 3 s (HOLDOVER), then FREERUN after holdOverTimeout".into(),
                        Topology::Tbc => "ok (live): grandmaster ptp4l killed; the T-BC's TR port times out in under a second: Holdover-In-Spec (class 135), then Out-Of-Spec (165), then Free-Run (248) on the shortened holdover model".into(),
                        Topology::Tgm => unreachable!("answered by inject_tgm"),
                    }
                } else {
                    "error: the grandmaster is already down".into()
                }
            }
            Fault::GmRestore => {
                if self.gm.lock().expect("gm lock").is_some() {
                    return "error: the grandmaster is already running".into();
                }
                match self.start_gm() {
                    Ok(()) => match self.topology {
                        Topology::Oc => "ok (live): grandmaster ptp4l started; the slave re-selects it within seconds (LOCKED)".into(),
                        Topology::Tbc => "ok (live): grandmaster ptp4l started (class 6); the T-BC locks again once in sync and forwards its class".into(),
                        Topology::Tgm => unreachable!("answered by inject_tgm"),
                    },
                    Err(e) => format!("error: {e:#}"),
                }
            }
            Fault::Ptp4lCrash => {
                let pid = self
                    .daemon
                    .processes()
                    .into_iter()
                    .find(|p| {
                        // The slave, or the T-BC's TR.
                        let want = match self.topology {
                            Topology::Oc | Topology::Tgm => "ptp4l.0.config",
                            Topology::Tbc => "ptp4l.1.config",
                        };
                        p.config_file == want && p.up
                    })
                    .and_then(|p| p.pid);
                match pid {
                    Some(pid) => {
                        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                        format!(
                            "ok (live): {} ptp4l (pid {pid}) killed with SIGKILL; the daemon restarts it after 1 s",
                            match self.topology {
                                Topology::Oc => "the slave",
                                Topology::Tbc => "the T-BC's TR",
                                Topology::Tgm => "the T-GM's",
                            }
                        )
                    }
                    None => "error: that ptp4l is not running".into(),
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
                Ok(()) => match self.topology {
                    Topology::Oc => format!(
                        "ok (live): the grandmaster announces clock class {c} (SET GRANDMASTER_SETTINGS_NP on its management socket); the daemon reads it from the slave ptp4l's PARENT_DATA_SET within a second and writes CLOCK_CLASS_CHANGE {c}, then, as the Go daemon does for an OC, the slave's own class (255: slave-only); gm-restore starts the grandmaster at class 6 again"
                    ),
                    Topology::Tbc => format!(
                        "ok (live): the grandmaster announces clock class {c} (SET GRANDMASTER_SETTINGS_NP on its management socket); a Locked T-BC forwards it to its TT within a second (248 is not forwarded while Locked); gm-restore starts the grandmaster at class 6 again"
                    ),
                    Topology::Tgm => unreachable!("answered by inject_tgm"),
                },
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
        if let Some(mut c) = self.tsc.lock().expect("tsc lock").take() {
            let _ = c.start_kill();
        }
        let _ = self.stop.send(true);
        let task = self.daemon_task.lock().expect("task lock").take();
        if let Some(t) = task {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
        // gpsd after the daemon (a GNSS loss at exit would be published otherwise).
        let gps = self.gps.lock().expect("gps lock").take();
        if let Some(mut g) = gps {
            g.kill();
        }
        delete_namespaces();
    }
}

/// Prints what the T-TSC's PARENT_DATA_SET shows whenever it changes (what the T-BC's TT
/// announces downstream).
async fn watch_tsc(sock: PathBuf, dir: PathBuf, mut stop: watch::Receiver<bool>) {
    let mut client = None;
    let mut last = None;
    loop {
        if client.is_none() {
            client = ptp_mgmt::Client::new(&sock, &dir, ptp_mgmt::ClientConfig::default()).ok();
        }
        if let Some(c) = client.as_mut()
            && let (Ok(p), Ok(t)) = (c.parent_data_set().await, c.time_properties().await)
        {
            let now = (
                p.grandmaster_clock_quality,
                p.grandmaster_identity,
                t.flags.time_traceable,
            );
            if last != Some(now) {
                println!(
                    "lab: the T-TSC sees class {} (accuracy {:#04x}, timeTraceable {}) from grandmaster {}",
                    p.grandmaster_clock_quality.class,
                    p.grandmaster_clock_quality.accuracy,
                    u8::from(t.flags.time_traceable),
                    p.grandmaster_identity
                );
                last = Some(now);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {},
            _ = stop.changed() => return,
        }
    }
}
