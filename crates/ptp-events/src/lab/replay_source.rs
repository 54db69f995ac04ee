//! The lab's replay source: a real recorded linuxptp log played in real time into the producer,
//! with faults injected as synthetic lines (said so in the answer to every injection).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proxy::LineSender;
use ptp_state::ReplayClock;

use super::Fault;

/// A log replayed in a loop, in real time (scaled by `speed`).
pub struct ReplaySource {
    lines: Vec<String>,
    speed: f64,
    sender: LineSender,
    config: String,
    gm_lost: AtomicBool,
    /// Monotonic seconds stamped on synthetic lines (after the replay's last one).
    stamp: AtomicU64,
    last_offset_line: Mutex<Option<String>>,
}

impl ReplaySource {
    /// A source for `log` (its text), whose ptp4l lines are tagged with `config`.
    pub fn new(log: &str, speed: f64, sender: LineSender, config: &str) -> Arc<ReplaySource> {
        Arc::new(ReplaySource {
            lines: log.lines().map(str::to_owned).collect(),
            speed: speed.max(0.01),
            sender,
            config: config.to_owned(),
            gm_lost: AtomicBool::new(false),
            stamp: AtomicU64::new(0),
            last_offset_line: Mutex::new(None),
        })
    }

    /// Plays the log forever.
    pub async fn run(self: Arc<Self>) {
        loop {
            let mut clock = ReplayClock::new();
            let mut prev = None;
            for line in &self.lines {
                let t = clock.observe(line);
                if let Some(p) = prev {
                    let gap = Duration::from_nanos(t.saturating_sub(p)).div_f64(self.speed);
                    tokio::time::sleep(gap.min(Duration::from_secs(5))).await;
                }
                prev = Some(t);
                if let Some(secs) = stamp_of(line) {
                    self.stamp.fetch_max(secs, Ordering::Relaxed);
                }
                if line.contains("master offset") {
                    *self.last_offset_line.lock().expect("lock") = Some(line.clone());
                }
                // While the grandmaster is "lost", the slave hears nothing from it: its offset
                // and port lines are held back.
                if self.gm_lost.load(Ordering::Relaxed)
                    && (line.contains("master offset") || line.contains(" port "))
                {
                    continue;
                }
                if !self.sender.send(line.clone()).await {
                    return;
                }
            }
        }
    }

    fn line(&self, body: &str) -> String {
        let s = self.stamp.fetch_add(1, Ordering::Relaxed) + 1;
        self.stamp.fetch_max(s, Ordering::Relaxed);
        format!("ptp4l[{s}.000]: [{}] {body}", self.config)
    }

    /// Injects `fault`; the answer says what was done.
    pub async fn inject(&self, fault: &Fault) -> String {
        if matches!(
            fault,
            Fault::GnssLoss | Fault::GnssRestore | Fault::GnssSpoof | Fault::Dpll(_)
        ) {
            return "error: GNSS and DPLL faults need the live lab with --topology tgm".into();
        }
        let lines: Vec<String> = match fault {
            Fault::GmLoss => {
                self.gm_lost.store(true, Ordering::Relaxed);
                vec![self.line("port 1: SLAVE to LISTENING on ANNOUNCE_RECEIPT_TIMEOUT_EXPIRES")]
            }
            Fault::GmRestore => {
                self.gm_lost.store(false, Ordering::Relaxed);
                vec![
                    self.line("port 1: LISTENING to UNCALIBRATED on RS_SLAVE"),
                    self.line("port 1: UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED"),
                ]
            }
            Fault::OffsetSpike(ns) => {
                vec![self.line(&format!("master offset {ns} s2 freq -3007 path delay 2240"))]
            }
            Fault::Ptp4lCrash => {
                let down = format!(
                    "ptp4l[{}]:[{}] PTP_PROCESS_STATUS:0",
                    chrono::Utc::now().timestamp(),
                    self.config
                );
                let sender = self.sender.clone();
                let config = self.config.clone();
                let back = super::CRASH_RESTART_AFTER;
                tokio::spawn(async move {
                    tokio::time::sleep(back).await;
                    let up = format!(
                        "ptp4l[{}]:[{config}] PTP_PROCESS_STATUS:1",
                        chrono::Utc::now().timestamp()
                    );
                    sender.send(up).await;
                });
                vec![down]
            }
            Fault::ClockClass(c) => vec![self.line(&format!("CLOCK_CLASS_CHANGE {c}"))],
            Fault::GnssLoss | Fault::GnssRestore | Fault::GnssSpoof | Fault::Dpll(_) => {
                unreachable!("answered above")
            }
        };
        for l in &lines {
            self.sender.send(l.clone()).await;
        }
        let what = match fault {
            Fault::GmLoss => {
                "grandmaster lost: the slave port times out its announce messages and offsets stop"
            }
            Fault::GmRestore => "grandmaster back: the slave port re-selects it and offsets resume",
            Fault::OffsetSpike(_) => "one offset sample far outside the thresholds",
            Fault::Ptp4lCrash => "ptp4l reported down; it comes back after the restart delay",
            Fault::ClockClass(_) => "the daemon reports a new clock class",
            Fault::GnssLoss | Fault::GnssRestore | Fault::GnssSpoof | Fault::Dpll(_) => "",
        };
        format!(
            "ok (replay mode, synthetic lines): {what}: {}",
            lines.join(" / ")
        )
    }
}

/// The monotonic seconds of a raw linuxptp line (`ptp4l[5217.361]: ...`).
fn stamp_of(line: &str) -> Option<u64> {
    let open = line.find('[')?;
    let close = line[open..].find(']')? + open;
    let ts = &line[open + 1..close];
    let (secs, _) = ts.split_once('.')?;
    secs.parse().ok()
}
