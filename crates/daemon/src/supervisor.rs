//! Running one linuxptp process: spawn in its own process group, forward stdout and stderr
//! line by line, report up/down, restart with backoff, stop with SIGTERM then SIGKILL.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ptp_config::{ProcessKind, ProcessPlan};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use crate::backoff::{Backoff, RestartPolicy};
use crate::hub::Hub;
use crate::lines::{process_status_line, remove_message_suffix, unix_now};

/// What is known of one supervised process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessStatus {
    /// The program.
    pub kind: ProcessKind,
    /// Its profile.
    pub profile: String,
    /// Its config file name (`ptp4l.0.config`).
    pub config_file: String,
    /// The config of its status lines (`ptp4l.0.config` for phc2sys too).
    pub status_config: String,
    /// The full command line (prefix included).
    pub argv: Vec<String>,
    /// Running now.
    pub up: bool,
    /// Its pid while running.
    pub pid: Option<u32>,
    /// Up reports so far (the first start counts 1), as Go's `process_restart_count`.
    pub starts: u64,
    /// Restarts after an unexpected exit (`starts - 1` once started).
    pub restarts: u64,
    /// Waiting for a sane ptp4l/ts2phc offset before the first start (phc2sys).
    pub waiting_for_offset: bool,
    /// The last exit, as text (`exit status: 1`, `signal: 9 (SIGKILL)`).
    pub last_exit: Option<String>,
    /// Output lines read from its current (or last) run.
    pub lines: u64,
}

/// Shared, updated by the supervisor task.
pub type SharedStatus = Arc<Mutex<ProcessStatus>>;

/// How to run processes.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Prepended to every command line (e.g. `ip netns exec <ns>`).
    pub command_prefix: Vec<String>,
    /// The restart policy.
    pub restart: RestartPolicy,
    /// SIGTERM → SIGKILL grace.
    pub stop_grace: Duration,
}

fn update(status: &SharedStatus, f: impl FnOnce(&mut ProcessStatus)) {
    f(&mut status.lock().unwrap_or_else(|e| e.into_inner()));
}

/// A new status record for `plan`.
pub fn new_status(plan: &ProcessPlan, settings: &RunSettings, gated: bool) -> SharedStatus {
    let mut argv = settings.command_prefix.clone();
    argv.extend(plan.argv.iter().cloned());
    Arc::new(Mutex::new(ProcessStatus {
        kind: plan.kind,
        profile: plan.profile.clone(),
        config_file: plan.config_file.clone(),
        status_config: plan.status_config.clone(),
        argv,
        up: false,
        pid: None,
        starts: 0,
        restarts: 0,
        waiting_for_offset: gated,
        last_exit: None,
        lines: 0,
    }))
}

fn signal_group(pid: u32, sig: rustix::process::Signal) {
    if let Some(p) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(p, sig);
    }
}

fn forward<R: AsyncRead + Unpin + Send + 'static>(
    r: R,
    hub: Arc<Hub>,
    status: SharedStatus,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(r);
        let mut buf = Vec::with_capacity(256);
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&buf);
                    let line = text.trim_end_matches(['\n', '\r']);
                    if !line.trim().is_empty() {
                        update(&status, |s| s.lines += 1);
                        hub.publish(remove_message_suffix(line));
                    }
                }
            }
        }
    })
}

async fn stop_child(
    child: &mut Child,
    pid: Option<u32>,
    grace: Duration,
) -> Option<std::process::ExitStatus> {
    if let Some(pid) = pid {
        signal_group(pid, rustix::process::Signal::TERM);
    }
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(r) => r.ok(),
        Err(_) => {
            tracing::warn!(
                pid,
                "process ignored SIGTERM for {grace:?}; sending SIGKILL"
            );
            if let Some(pid) = pid {
                signal_group(pid, rustix::process::Signal::KILL);
            }
            let _ = child.start_kill();
            child.wait().await.ok()
        }
    }
}

/// Supervises `plan` until `stop` turns true; then stops the process and returns. With a
/// `gate`, the first start waits until it turns true (a T-BC's TT ptp4l waits for its source to
/// qualify); restarts after a crash do not wait again.
pub async fn supervise(
    plan: ProcessPlan,
    status: SharedStatus,
    hub: Arc<Hub>,
    settings: RunSettings,
    mut stop: watch::Receiver<bool>,
    gate: Option<watch::Receiver<bool>>,
) {
    let name = plan.kind.name();
    let argv = status
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .argv
        .clone();
    if !plan.start_after_offset_from.is_empty() {
        let want: BTreeSet<String> = plan.start_after_offset_from.iter().cloned().collect();
        let mut sane = hub.sane_offsets();
        tracing::info!(process = name, profile = %plan.profile, waiting_for = ?want, "delaying start until an offset below 1 s is reported");
        loop {
            if sane.borrow_and_update().iter().any(|c| want.contains(c)) {
                break;
            }
            tokio::select! {
                r = sane.changed() => if r.is_err() { return },
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
        }
        update(&status, |s| s.waiting_for_offset = false);
    }
    if let Some(mut gate) = gate {
        tracing::info!(process = name, profile = %plan.profile, "delaying start until the T-BC source qualifies (Locked)");
        tokio::select! {
            r = gate.wait_for(|open| *open) => if r.is_err() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
        update(&status, |s| s.waiting_for_offset = false);
    }
    let mut backoff = Backoff::new(settings.restart);
    loop {
        if *stop.borrow() {
            return;
        }
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let started = Instant::now();
        let (exit, stopped) = match cmd.spawn() {
            Err(e) => {
                tracing::error!(process = name, command = ?argv, error = %e, "cannot start");
                update(&status, |s| {
                    s.last_exit = Some(format!("spawn failed: {e}"))
                });
                (None, false)
            }
            Ok(mut child) => {
                let pid = child.id();
                update(&status, |s| {
                    s.up = true;
                    s.lines = 0;
                    s.pid = pid;
                    s.starts += 1;
                    s.restarts = s.starts - 1;
                });
                let readers = [
                    child
                        .stdout
                        .take()
                        .map(|o| forward(o, hub.clone(), status.clone())),
                    child
                        .stderr
                        .take()
                        .map(|e| forward(e, hub.clone(), status.clone())),
                ];
                tracing::info!(process = name, pid, config = %plan.config_file, "started");
                hub.publish(process_status_line(
                    name,
                    &plan.status_config,
                    true,
                    unix_now(),
                ));
                let (exit, stopped) = tokio::select! {
                    r = child.wait() => (r.ok(), false),
                    _ = stop.changed() => (stop_child(&mut child, pid, settings.stop_grace).await, true),
                };
                // Anything left in the group (a helper the program forked) goes too.
                if let Some(pid) = pid {
                    signal_group(pid, rustix::process::Signal::KILL);
                }
                for r in readers.into_iter().flatten() {
                    let abort = r.abort_handle();
                    if tokio::time::timeout(Duration::from_secs(1), r)
                        .await
                        .is_err()
                    {
                        abort.abort();
                    }
                }
                update(&status, |s| {
                    s.up = false;
                    s.pid = None;
                    s.last_exit = exit.map(|e| e.to_string());
                });
                hub.publish(process_status_line(
                    name,
                    &plan.status_config,
                    false,
                    unix_now(),
                ));
                (exit, stopped)
            }
        };
        if stopped || *stop.borrow() {
            tracing::info!(process = name, config = %plan.config_file, "stopped");
            return;
        }
        let delay = backoff.after_exit(started.elapsed());
        tracing::warn!(process = name, config = %plan.config_file, exit = ?exit, "exited; restarting in {delay:?}");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {},
            _ = stop.changed() => return,
        }
    }
}
