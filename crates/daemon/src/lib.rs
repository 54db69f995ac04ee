//! The PTP daemon: reads PtpConfig profiles, renders linuxptp configs, runs and supervises
//! ptp4l / phc2sys / ts2phc, and hands every output line on, in the Go linuxptp-daemon's line
//! protocol, to an in-process channel and/or a UNIX socket.
//!
//! * Profiles come from one file in any form [`ptp_config::load_profiles`] reads. The file is
//!   polled every [`DaemonOptions::poll_interval`] (content compared); a change is taken only
//!   when a second read 100 ms later agrees (a half-written file is never applied); it is validated
//!   and rendered completely before any running process is touched. An invalid change is
//!   logged with every field error and the running set is kept.
//! * Applying: new configs are written to temporary files first; then every old process is
//!   stopped (SIGTERM to its process group, SIGKILL after [`DaemonOptions::stop_grace`]), old
//!   rendered configs and sockets are removed, the new configs are moved in place, `CMD
//!   RESTART` is published, and the new processes start (phc2sys once its ptp4l or ts2phc
//!   reported an offset below 1 s).
//! * Each process: stdout and stderr read line by line by their own tasks (never blocked by
//!   an outlet), the `:<level>` suffix removed as Go's `removeMessageSuffix`, `PTP_PROCESS_STATUS`
//!   lines on up and down, restarts with [`RestartPolicy`] backoff.
//! * Outlets ([`hub::Hub`]): the channel gets every line in order (`try_send`; a full channel
//!   drops and counts); the socket client ([`socket`]) reconnects with backoff and replays the
//!   current state followed by `CMD LIVE_START`.
//!
//! * Clock class ([`class`]): each OC/BC ptp4l's PARENT_DATA_SET is read over its management
//!   socket every 250 ms and a change is written as Go's `CLOCK_CLASS_CHANGE` line.
//! * T-BC ([`tbc`]): a TR profile (`clockType: T-BC`) and its TT profile
//!   (`controllingProfile`) run as a boundary clock: the T-BC machine decides, TT starts once the
//!   source qualifies and announces what the state says.
//!
//! * T-GM ([`tgm`]): a profile with `clockType: T-GM` runs as a grandmaster: GNSS from gpsd
//!   ([`gpsd`]), an emulated DPLL and ts2phc, the T-GM machine decides, the profile's ptp4l
//!   announces what the state says. `clockType: T-TSC`: the T-BC machine without TT (class 255).
//!
//! Not here: PHC/NIC discovery, plugins (e810 …), ubxtool, a real (netlink) DPLL, synce4l and
//! chronyd. The `:8081` endpoints (`/ready`, `/emit-logs`,
//! `/port-aliases`) are served by the `ptp-events daemon` command from [`DaemonHandle`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod announce;
pub mod backoff;
pub mod class;
pub mod gpsd;
pub mod hub;
pub mod lines;
pub mod shim;
pub mod socket;
pub mod supervisor;
pub mod tbc;
pub mod tgm;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ptp_config::{NodeSelector, Plan, RenderOptions, split_config_name};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use backoff::{Backoff, RestartPolicy};
pub use class::{ClassSettings, ClassWatch, Ptp4lTarget, clock_class_line};
pub use hub::{Hub, HubStats};
pub use lines::{CMD_LIVE_START, CMD_RESTART, process_status_line, remove_message_suffix};
pub use supervisor::{ProcessStatus, RunSettings};

/// Everything the daemon needs. [`DaemonOptions::new`] fills in the defaults.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// This node (name and labels, for `spec.recommend`).
    pub node: NodeSelector,
    /// The profile file: a PtpConfig YAML, or the operator's `<profile dir>/<node name>`.
    pub profile_file: PathBuf,
    /// Rendering (run dir, binaries, chrt, leapfile).
    pub render: RenderOptions,
    /// Prepended to every command line (e.g. `["ip", "netns", "exec", "ns1"]`).
    pub command_prefix: Vec<String>,
    /// The producer's socket to dial (`/cloud-native/events.sock`); `None`: no socket.
    pub socket_path: Option<PathBuf>,
    /// Lines kept for the socket while it is down (oldest dropped).
    pub socket_buffer: usize,
    /// Every line, in order, one per message, no trailing newline.
    pub lines: Option<mpsc::Sender<String>>,
    /// How often the profile file is checked (1 s).
    pub poll_interval: Duration,
    /// SIGTERM → SIGKILL grace when stopping a process (5 s).
    pub stop_grace: Duration,
    /// Restart timing.
    pub restart: RestartPolicy,
    /// Clock class from each OC/BC ptp4l's management socket; `None`: not read.
    pub clock_class: Option<ClassSettings>,
}

impl DaemonOptions {
    /// Defaults: run dir `/var/run`, binaries in `/usr/sbin`, no socket, no channel, poll 1 s,
    /// grace 5 s, restart 1 s doubling to 30 s.
    pub fn new(node: NodeSelector, profile_file: impl Into<PathBuf>) -> Self {
        DaemonOptions {
            node,
            profile_file: profile_file.into(),
            render: RenderOptions::default(),
            command_prefix: Vec::new(),
            socket_path: None,
            socket_buffer: 4096,
            lines: None,
            poll_interval: Duration::from_secs(1),
            stop_grace: Duration::from_secs(5),
            restart: RestartPolicy::default(),
            clock_class: Some(ClassSettings::default()),
        }
    }
}

#[derive(Default)]
struct Shared {
    plan: Option<Plan>,
    processes: Vec<supervisor::SharedStatus>,
    applied: u64,
    last_error: Option<String>,
}

/// A cheap, cloneable view of a running daemon.
#[derive(Clone)]
pub struct DaemonHandle {
    shared: Arc<Mutex<Shared>>,
    hub: Arc<Hub>,
}

impl DaemonHandle {
    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The supervised processes now.
    pub fn processes(&self) -> Vec<ProcessStatus> {
        self.lock()
            .processes
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .collect()
    }

    /// The plan in force.
    pub fn plan(&self) -> Option<Plan> {
        self.lock().plan.clone()
    }

    /// `(ptp4l.N.config, ProfileInfo)` of the plan in force, for a state engine.
    pub fn profile_infos(&self) -> Vec<(String, ptp_state::ProfileInfo)> {
        self.lock()
            .plan
            .as_ref()
            .map(Plan::profile_infos)
            .unwrap_or_default()
    }

    /// How many profile sets were applied.
    pub fn applied(&self) -> u64 {
        self.lock().applied
    }

    /// The last profile error (cleared by a successful apply).
    pub fn last_error(&self) -> Option<String> {
        self.lock().last_error.clone()
    }

    /// Outlet counters.
    pub fn stats(&self) -> HubStats {
        self.hub.stats()
    }

    /// Whether the daemon is ready, as Go's `/ready`: a profile set applied, and every process
    /// not waiting for an offset (phc2sys) running and having printed at least one line. Else
    /// why not.
    pub fn readiness(&self) -> Result<(), String> {
        let (applied, error) = {
            let g = self.lock();
            (g.applied, g.last_error.clone())
        };
        if applied == 0 {
            return Err(match error {
                Some(e) => format!("no profile applied yet: {e}"),
                None => "no profile applied yet".to_owned(),
            });
        }
        for p in self.processes() {
            if p.waiting_for_offset {
                continue;
            }
            if !p.up {
                return Err(format!(
                    "{} ({}) is not running{}",
                    p.kind.name(),
                    p.config_file,
                    p.last_exit.map(|e| format!(": {e}")).unwrap_or_default()
                ));
            }
            if p.lines == 0 {
                return Err(format!(
                    "{} ({}) has printed nothing yet",
                    p.kind.name(),
                    p.config_file
                ));
            }
        }
        Ok(())
    }

    /// Publishes the replay again (Go's `/emit-logs`); returns how many lines.
    pub fn emit_logs(&self) -> usize {
        self.hub.emit_replay()
    }

    /// Interface → alias of every interface of the plan in force, as Go's `/port-aliases`
    /// (`ens1f0` → `ens1fx`).
    pub fn port_aliases(&self) -> std::collections::BTreeMap<String, String> {
        self.lock()
            .plan
            .iter()
            .flat_map(|p| p.profiles.iter())
            .flat_map(|p| p.interfaces.iter())
            .map(|i| (i.clone(), ptp_state::default_alias(i)))
            .collect()
    }
}

/// The daemon. Build with [`Daemon::new`], observe with [`Daemon::handle`], run with
/// [`Daemon::run`].
pub struct Daemon {
    opts: DaemonOptions,
    hub: Arc<Hub>,
    shared: Arc<Mutex<Shared>>,
}

struct Running {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// The supervised processes in start order, each with its own stop (stopped in reverse).
    procs: Vec<(watch::Sender<bool>, JoinHandle<()>)>,
    files: Vec<PathBuf>,
}

impl Daemon {
    /// A daemon with `opts` (nothing runs until [`Daemon::run`]).
    pub fn new(mut opts: DaemonOptions) -> Self {
        let hub = Arc::new(Hub::new(
            opts.lines.take(),
            opts.socket_path.is_some(),
            opts.socket_buffer,
        ));
        Daemon {
            opts,
            hub,
            shared: Arc::default(),
        }
    }

    /// A view for status and counters.
    pub fn handle(&self) -> DaemonHandle {
        DaemonHandle {
            shared: self.shared.clone(),
            hub: self.hub.clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs until `shutdown` resolves, then stops every process (SIGTERM, SIGKILL after the
    /// grace) and returns. Fails only if the run directory cannot be created.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let run_dir = self.opts.render.run_dir.clone();
        std::fs::create_dir_all(&run_dir)
            .map_err(|e| anyhow::anyhow!("--run-dir {}: cannot create: {e}", run_dir.display()))?;
        let (sock_stop, sock_stop_rx) = watch::channel(false);
        let sock_task = self
            .opts
            .socket_path
            .clone()
            .map(|p| tokio::spawn(socket::run(self.hub.clone(), p, sock_stop_rx)));
        tokio::pin!(shutdown);
        let mut last: Option<Vec<u8>> = None;
        let mut running: Option<Running> = None;
        let mut missing_logged = false;
        let mut first = true;
        loop {
            if !first {
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(self.opts.poll_interval) => {},
                }
            }
            first = false;
            let bytes = match std::fs::read(&self.opts.profile_file) {
                Ok(b) => b,
                Err(e) => {
                    if !missing_logged {
                        tracing::warn!(file = %self.opts.profile_file.display(), error = %e, "cannot read the profile file; waiting for it (running processes are kept)");
                        missing_logged = true;
                        // `/ready` says why (a missing profile directory, a missing file).
                        let why = match self.opts.profile_file.parent() {
                            Some(d) if !d.as_os_str().is_empty() && !d.is_dir() => {
                                format!("the profile directory {} does not exist", d.display())
                            }
                            _ => format!("{}: cannot read: {e}", self.opts.profile_file.display()),
                        };
                        self.lock().last_error = Some(why);
                    }
                    continue;
                }
            };
            missing_logged = false;
            if last.as_deref() == Some(bytes.as_slice()) {
                continue;
            }
            // A writer that truncates and then writes (an editor, `echo >`) can be read half-way:
            // an empty file means "no profiles" and would stop every process. A change is applied
            // only when a second read, a moment later, gives the same bytes (a ConfigMap mount is
            // swapped atomically, so there this costs only the settle time).
            // At start nothing runs yet that a half-written file could stop.
            if last.is_some() {
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(SETTLE.min(self.opts.poll_interval)) => {},
                }
                if std::fs::read(&self.opts.profile_file).ok().as_ref() != Some(&bytes) {
                    tracing::debug!("profile file still changing; read again at the next poll");
                    continue;
                }
            }
            last = Some(bytes.clone());
            match self.prepare(&bytes) {
                Err(e) => {
                    tracing::error!("profiles not applied, the running set is kept: {e}");
                    self.lock().last_error = Some(e);
                }
                Ok((plan, temps)) => {
                    running = Some(self.apply(plan, temps, running.take()).await);
                }
            }
        }
        tracing::info!("shutting down: stopping every process");
        if let Some(r) = running.take() {
            stop_all(r).await;
        }
        let _ = sock_stop.send(true);
        if let Some(t) = sock_task {
            let _ = tokio::time::timeout(Duration::from_secs(1), t).await;
        }
        Ok(())
    }

    /// Parses, validates, renders and writes the configs to temporary files. Touches no
    /// running process.
    fn prepare(&self, bytes: &[u8]) -> Result<(Plan, Vec<(PathBuf, PathBuf)>), String> {
        let (form, plan) = read_plan(&self.opts, bytes)?;
        tracing::info!(
            ?form,
            profiles = plan.profiles.len(),
            "profiles read and validated"
        );
        let mut temps = Vec::new();
        for p in plan.processes() {
            let tmp = p
                .config_path
                .with_file_name(format!(".{}.tmp", p.config_file));
            if let Err(e) = std::fs::write(&tmp, &p.config_text) {
                for (t, _) in &temps {
                    let _ = std::fs::remove_file(t);
                }
                return Err(format!("{}: cannot write: {e}", tmp.display()));
            }
            temps.push((tmp, p.config_path.clone()));
        }
        Ok((plan, temps))
    }

    async fn apply(
        &self,
        plan: Plan,
        temps: Vec<(PathBuf, PathBuf)>,
        old: Option<Running>,
    ) -> Running {
        if let Some(old) = old {
            tracing::info!("profile change: stopping the running processes");
            let files = old.files.clone();
            stop_all(old).await;
            for f in files {
                let _ = std::fs::remove_file(f);
            }
        }
        remove_rendered(&self.opts.render.run_dir);
        let mut files = Vec::new();
        for (tmp, dst) in temps {
            if let Err(e) = std::fs::rename(&tmp, &dst) {
                tracing::error!(file = %dst.display(), error = %e, "cannot move the rendered config in place");
            }
            files.push(dst);
        }
        {
            // Known before `CMD RESTART` is seen, so a reader of that line finds the new plan.
            let mut g = self.lock();
            g.plan = Some(plan.clone());
            g.processes.clear();
        }
        self.hub.publish(CMD_RESTART.to_owned());
        let settings = RunSettings {
            command_prefix: self.opts.command_prefix.clone(),
            restart: self.opts.restart,
            stop_grace: self.opts.stop_grace,
        };
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut procs = Vec::new();
        let mut statuses = Vec::new();
        // A T-BC's TT ptp4l starts once its machine first reaches Locked.
        let pairs = tbc::TbcPair::find(&plan).unwrap_or_default();
        let mut gates = Vec::new();
        for pair in &pairs {
            let (tx, rx) = watch::channel(false);
            match &pair.tt_profile {
                Some(tt) => {
                    gates.push((tt.clone(), rx));
                    tracing::info!(tr = %pair.tr_profile, tt = %tt, "T-BC: TR first, TT once the source qualifies");
                }
                None => {
                    tracing::info!(tr = %pair.tr_profile, "T-TSC (a T-BC TR without TT): class 255")
                }
            }
            tasks.push(tokio::spawn(tbc::run(
                pair.clone(),
                self.hub.clone(),
                self.hub.tap(),
                self.opts.render.run_dir.clone(),
                tx,
                stop_rx.clone(),
            )));
        }
        // A T-GM's ptp4l starts once its sources run (GNSS, DPLL, ts2phc: the spec's order).
        for t in tgm::TgmProfile::find(&plan).unwrap_or_default() {
            let (tx, rx) = watch::channel(false);
            gates.push((t.profile.clone(), rx));
            tracing::info!(tgm = %t.profile, gpsd = %t.gpsd, "T-GM: GNSS and DPLL monitors, ts2phc, then ptp4l");
            tasks.push(tokio::spawn(tgm::run(
                t,
                self.hub.clone(),
                self.hub.tap(),
                self.opts.render.run_dir.clone(),
                tx,
                stop_rx.clone(),
            )));
        }
        for p in plan.processes() {
            for w in &p.warnings {
                tracing::warn!(config = %p.config_file, "{w}");
            }
            let mut p = p.clone();
            let gm_without_ts2phc = plan
                .profiles
                .iter()
                .find(|pp| pp.run_id == p.run_id)
                .is_some_and(|pp| {
                    pp.clock_kind == ptp_config::ClockKind::Gm
                        && !pp
                            .processes
                            .iter()
                            .any(|q| q.kind == ptp_config::ProcessKind::Ts2phc)
                });
            if gm_without_ts2phc {
                // A master prints no offsets to wait for: start phc2sys at once.
                p.start_after_offset_from.clear();
            }
            let gate = (p.kind == ptp_config::ProcessKind::Ptp4l)
                .then(|| gates.iter().find(|(tt, _)| *tt == p.profile))
                .flatten()
                .map(|(_, rx)| rx.clone());
            let status = supervisor::new_status(
                &p,
                &settings,
                !p.start_after_offset_from.is_empty() || gate.is_some(),
            );
            statuses.push(status.clone());
            let (proc_stop, proc_stop_rx) = watch::channel(false);
            procs.push((
                proc_stop,
                tokio::spawn(supervisor::supervise(
                    p,
                    status,
                    self.hub.clone(),
                    settings.clone(),
                    proc_stop_rx,
                    gate,
                )),
            ));
        }
        if let Some(cs) = self.opts.clock_class {
            for w in plan
                .profiles
                .iter()
                .filter(|p| !tbc::is_tbc_part(p))
                .filter_map(ClassWatch::for_profile)
            {
                tracing::info!(config = %w.target.config_file, socket = %w.target.socket.display(), "reading the clock class from ptp4l");
                tasks.push(tokio::spawn(class::watch(
                    w,
                    self.hub.clone(),
                    self.opts.render.run_dir.clone(),
                    cs,
                    stop_rx.clone(),
                )));
            }
        }
        {
            let mut g = self.lock();
            g.processes = statuses;
            g.applied += 1;
            g.last_error = None;
        }
        tracing::info!(
            processes = procs.len(),
            tasks = tasks.len(),
            "profiles applied"
        );
        let pids: Vec<_> = files.iter().map(|f| f.display().to_string()).collect();
        tracing::debug!(files = ?pids, "rendered");
        Running {
            stop,
            tasks,
            procs,
            files,
        }
    }
}

async fn stop_all(r: Running) {
    // The watchers and state machines first (nothing is set on a ptp4l that is stopping), then
    // the processes in the reverse of their start order (phc2sys before ptp4l before ts2phc, as
    // the T-TSC and T-GM specs ask; each stop is awaited).
    let _ = r.stop.send(true);
    for t in r.tasks {
        let _ = t.await;
    }
    for (stop, task) in r.procs.into_iter().rev() {
        let _ = stop.send(true);
        let _ = task.await;
    }
}

/// Parses and validates the profiles in `bytes` (the content of `opts.profile_file`) for
/// `opts.node` and plans their processes, as the daemon applies them; errors name the file.
/// Renders nothing to disk.
pub fn read_plan(
    opts: &DaemonOptions,
    bytes: &[u8],
) -> Result<(ptp_config::InputForm, Plan), String> {
    let origin = opts.profile_file.display().to_string();
    let text = std::str::from_utf8(bytes).map_err(|e| format!("{origin}: not UTF-8: {e}"))?;
    let (form, profiles) = ptp_config::parse_profiles(text, &opts.node)
        .map_err(|e| e.with_origin_public(&origin).to_string())?;
    let plan = ptp_config::plan(&profiles, &opts.render)
        .map_err(|e| e.with_origin_public(&origin).to_string())?;
    tbc::TbcPair::find(&plan).map_err(|e| format!("{origin}: {e}"))?;
    tgm::TgmProfile::find(&plan).map_err(|e| format!("{origin}: {e}"))?;
    Ok((form, plan))
}

/// How long a changed profile file must stay the same before it is applied.
const SETTLE: Duration = Duration::from_millis(100);

/// Removes `ptp4l|phc2sys|ts2phc.<N>.config` and `ptp4l.<N>.socket` left in `dir` by an earlier
/// run (Go removes `/var/run/{ts2phc,synce4l,ptp4l,phc2sys,chronyd,pmc}*`; this is narrower, so
/// that unrelated files in a shared `/var/run` survive).
fn remove_rendered(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let ours = match split_config_name(name) {
            Some((p, _)) => matches!(p, "ptp4l" | "phc2sys" | "ts2phc"),
            None => name
                .strip_prefix("ptp4l.")
                .and_then(|r| r.strip_suffix(".socket"))
                .is_some_and(|n| n.parse::<u32>().is_ok()),
        };
        if ours {
            let _ = std::fs::remove_file(e.path());
        }
    }
}
