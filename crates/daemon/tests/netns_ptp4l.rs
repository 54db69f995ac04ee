//! End to end with real linuxptp: a grandmaster `ptp4l -2 -S` in one network namespace, the
//! daemon running a slave profile in another (through `ip netns exec`), joined by a veth pair.
//! Needs root, `ip` and ptp4l; skipped with a message otherwise (a failure under `CI=true`).
//! Every ptp4l runs with the clock-write shim (`daemon::shim`): the slave's `linreg` servo
//! reaches `s2` while CLOCK_REALTIME is never adjusted (checked at the end where no time daemon
//! runs), so the test runs on any machine, time daemon or not.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    ip, pids_with_cmdline, pmc, prerequisites, realtime_freq, time_daemon, zombie_children,
};
use daemon::{CMD_RESTART, Daemon, DaemonOptions};
use ptp_config::{NodeSelector, ProcessKind};
use ptp_state::{Engine, EngineConfig};
use tokio::sync::{mpsc, oneshot};

/// `pmc SET GRANDMASTER_SETTINGS_NP` on the grandmaster: its own settings with `class` (its
/// time flags unchanged: a slave on CLOCK_REALTIME would otherwise correct by the UTC offset).
fn pmc_set_class(sock: &Path, class: u8) {
    let now = pmc(sock, "GET GRANDMASTER_SETTINGS_NP");
    assert!(
        !now.is_empty(),
        "pmc GET GRANDMASTER_SETTINGS_NP: no answer"
    );
    let fields: Vec<String> = now
        .iter()
        .map(|(k, v)| match k.as_str() {
            "clockClass" => format!("{k} {class}"),
            _ => format!("{k} {v}"),
        })
        .collect();
    let cmd = format!("SET GRANDMASTER_SETTINGS_NP {}", fields.join(" "));
    let after = pmc(sock, &cmd);
    assert!(
        after.contains(&("clockClass".to_owned(), class.to_string())),
        "{cmd}: {after:?}"
    );
}

/// Deletes the namespaces (the veth pair goes with them), kills the grandmaster and resets
/// CLOCK_REALTIME's frequency, also when the test fails.
struct Testbed {
    gm_ns: String,
    sl_ns: String,
    gm: Option<std::process::Child>,
    /// The clock-write shim every ptp4l runs with: CLOCK_REALTIME is never steered.
    shim: PathBuf,
}

impl Testbed {
    fn new(dir: &Path) -> Self {
        let id = std::process::id() % 100_000;
        let t = Testbed {
            gm_ns: format!("ptpgm{id}"),
            sl_ns: format!("ptpsl{id}"),
            gm: None,
            shim: daemon::shim::install(dir).expect("install the clock shim"),
        };
        let (vg, vs) = (format!("vg{id}"), format!("vs{id}"));
        ip(&["netns", "add", &t.gm_ns]);
        ip(&["netns", "add", &t.sl_ns]);
        ip(&["link", "add", &vg, "type", "veth", "peer", "name", &vs]);
        ip(&["link", "set", &vg, "netns", &t.gm_ns]);
        ip(&["link", "set", &vs, "netns", &t.sl_ns]);
        ip(&["-n", &t.gm_ns, "link", "set", &vg, "up"]);
        ip(&["-n", &t.sl_ns, "link", "set", &vs, "up"]);
        t
    }

    fn start_gm(&mut self, dir: &Path) {
        let cfg = dir.join("gm.cfg");
        std::fs::write(
            &cfg,
            format!(
                "[global]\npriority1 127\nclockClass 6\nlogSyncInterval -2\nlogAnnounceInterval -3\nuds_address {}\n",
                dir.join("gm.sock").display()
            ),
        )
        .expect("gm cfg");
        let id = std::process::id() % 100_000;
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.gm_ns,
                "env",
                &format!("LD_PRELOAD={}", self.shim.display()),
                "/usr/sbin/ptp4l",
                "-2",
                "-S",
                "-i",
                &format!("vg{id}"),
                "-m",
                "-f",
            ])
            .arg(&cfg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the grandmaster");
        self.gm = Some(child);
    }

    fn kill_gm(&mut self) {
        if let Some(mut c) = self.gm.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        self.kill_gm();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.gm_ns])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.sl_ns])
            .status();
    }
}

struct Watch {
    rx: mpsc::Receiver<String>,
    seen: Vec<String>,
    engine: Option<Engine>,
    lock_states: Vec<(Duration, String)>,
    classes: Vec<(Duration, String)>,
    t0: Instant,
}

impl Watch {
    fn now(&self) -> u64 {
        ptp_state::nanos(self.t0.elapsed())
    }

    fn record(&mut self, changes: Vec<ptp_state::Change>) {
        for c in changes {
            if c.resource == oran_api::Resource::LockState {
                let v = c.values[0].value.clone();
                println!("  [{:>6.2?}] lock-state {v}", self.t0.elapsed());
                self.lock_states.push((self.t0.elapsed(), v));
            } else if c.resource == oran_api::Resource::ClockClass {
                let v = c.values[0].value.clone();
                println!("  [{:>6.2?}] clock-class {v}", self.t0.elapsed());
                self.classes.push((self.t0.elapsed(), v));
            }
        }
    }

    /// Feeds lines (and timer ticks) until `done` holds or `timeout` passes.
    async fn until(&mut self, what: &str, timeout: Duration, done: impl Fn(&Watch) -> bool) {
        let deadline = Instant::now() + timeout;
        let started = Instant::now();
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; last lines:\n{}",
                self.seen[self.seen.len().saturating_sub(25)..].join("\n")
            );
            let mut out = Vec::new();
            match tokio::time::timeout(Duration::from_millis(100), self.rx.recv()).await {
                Ok(Some(line)) => {
                    let now = self.now();
                    if let Some(e) = self.engine.as_mut() {
                        e.feed(&line, now, &mut out);
                    }
                    self.seen.push(line);
                }
                Ok(None) => panic!("line channel closed"),
                Err(_) => {
                    let now = self.now();
                    if let Some(e) = self.engine.as_mut() {
                        e.tick(now, &mut out);
                    }
                }
            }
            self.record(out);
        }
        println!("{what}: after {:.1?}", started.elapsed());
    }

    fn has(&self, pred: impl Fn(&str) -> bool) -> bool {
        self.seen.iter().any(|l| pred(l))
    }

    fn count(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.seen.iter().filter(|l| pred(l)).count()
    }

    fn last_lock(&self) -> Option<&str> {
        self.lock_states.last().map(|(_, s)| s.as_str())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_ptp4l_locks_survives_a_crash_and_goes_holdover_then_freerun_on_gm_loss() {
    if let Err(why) = prerequisites() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but {why}"
        );
        println!("SKIPPED real_ptp4l end-to-end test: {why}");
        return;
    }
    let t0 = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let freq_before = realtime_freq();
    let mut bed = Testbed::new(dir.path());
    bed.start_gm(dir.path());
    let id = std::process::id() % 100_000;
    let profile = dir.path().join("node");
    std::fs::write(
        &profile,
        format!(
            r#"[{{"name":"slave","interface":"vs{id}","ptp4lOpts":"-2 -S -s --summary_interval -4","ptp4lConf":"[global]\nclock_servo linreg\n","ptpClockThreshold":{{"holdOverTimeout":3,"maxOffsetThreshold":5000,"minOffsetThreshold":-5000}}}}]"#
        ),
    )
    .expect("profile");
    let run_dir = dir.path().join("run");
    let (tx, rx) = mpsc::channel(100_000);
    let mut o = DaemonOptions::new(NodeSelector::new("node"), &profile);
    o.render.run_dir = run_dir.clone();
    o.command_prefix = vec![
        "ip".into(),
        "netns".into(),
        "exec".into(),
        bed.sl_ns.clone(),
    ];
    o.command_prefix.extend(daemon::shim::prefix(&bed.shim));
    o.lines = Some(tx);
    o.stop_grace = Duration::from_secs(3);
    let d = Daemon::new(o);
    let h = d.handle();
    let (stop, rx_stop) = oneshot::channel::<()>();
    let task = tokio::spawn(d.run(async move {
        let _ = rx_stop.await;
    }));
    let mut w = Watch {
        rx,
        seen: Vec::new(),
        engine: None,
        lock_states: Vec::new(),
        classes: Vec::new(),
        t0,
    };
    w.until("CMD RESTART", Duration::from_secs(5), |w| {
        w.has(|l| l == CMD_RESTART)
    })
    .await;
    let infos = h.profile_infos();
    assert_eq!(infos[0].1.interfaces, [format!("vs{id}")]);
    let mut cfg = EngineConfig::new("node");
    for (c, p) in infos {
        cfg = cfg.with_profile(c, p);
    }
    w.engine = Some(Engine::new(cfg));

    // 1. Lock.
    w.until("UNCALIBRATED to SLAVE", Duration::from_secs(20), |w| {
        w.has(|l| l.contains("UNCALIBRATED to SLAVE"))
    })
    .await;
    w.until("LOCKED", Duration::from_secs(15), |w| {
        w.last_lock() == Some("LOCKED")
    })
    .await;
    w.until("5 s2 samples", Duration::from_secs(5), |w| {
        w.count(|l| l.contains("master offset") && l.contains(" s2 ")) >= 5
    })
    .await;
    assert!(
        w.has(|l| l.starts_with("ptp4l[") && l.contains("[ptp4l.0.config] master offset")),
        "lines tagged with the config"
    );

    // 1b. Clock class, read by the daemon from the slave ptp4l's PARENT_DATA_SET: the
    // grandmaster's 6, then (an OC) the local clock's own class from GRANDMASTER_SETTINGS_NP,
    // 255 for a slave-only ptp4l, as the Go daemon writes them; the engine publishes both.
    w.until(
        "CLOCK_CLASS_CHANGE 6 then 255",
        Duration::from_secs(5),
        |w| {
            let classes: Vec<_> = w.classes.iter().map(|(_, c)| c.as_str()).collect();
            classes.windows(2).any(|p| p == ["6", "255"])
        },
    )
    .await;
    assert!(w.has(|l| l.starts_with("ptp4l[") && l.ends_with("]:[ptp4l.0.config] CLOCK_CLASS_CHANGE 6")));
    // The grandmaster announces class 7: the daemon writes it (the slave hears it at the next
    // Announce, every 125 ms; the daemon polls every 250 ms).
    let mark = w.seen.len();
    let set_at = w.t0.elapsed();
    pmc_set_class(&dir.path().join("gm.sock"), 7);
    w.until("CLOCK_CLASS_CHANGE 7", Duration::from_secs(5), |w| {
        w.seen[mark..]
            .iter()
            .any(|l| l.ends_with("]:[ptp4l.0.config] CLOCK_CLASS_CHANGE 7"))
    })
    .await;
    let seen_at = w
        .classes
        .iter()
        .find(|(_, c)| c == "7")
        .expect("class 7 event")
        .0;
    println!(
        "class 7: SET on the grandmaster at {set_at:.2?}, event at {seen_at:.2?} ({:.0?} later)",
        seen_at - set_at
    );
    // `/emit-logs` (and a socket reconnect) replay the class the daemon keeps: 255.
    w.until("the local class after 7", Duration::from_secs(2), |w| {
        let classes: Vec<_> = w.classes.iter().map(|(_, c)| c.as_str()).collect();
        classes.windows(2).any(|p| p == ["7", "255"])
    })
    .await;
    let mark = w.seen.len();
    let n = h.emit_logs();
    w.until("the replay", Duration::from_secs(2), |w| {
        w.seen.len() >= mark + n
    })
    .await;
    let replayed: Vec<_> = w.seen[mark..]
        .iter()
        .filter(|l| l.contains("CLOCK_CLASS_CHANGE"))
        .collect();
    assert_eq!(replayed.len(), 1, "{replayed:?}");
    assert!(replayed[0].ends_with("]:[ptp4l.0.config] CLOCK_CLASS_CHANGE 255"));

    // 2. kill -9 the slave ptp4l: down, restarted after ~1 s, counted, SLAVE again.
    let p = h
        .processes()
        .into_iter()
        .find(|p| p.kind == ProcessKind::Ptp4l)
        .expect("ptp4l");
    let pid = p.pid.expect("pid");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).expect("pid"),
        rustix::process::Signal::KILL,
    )
    .expect("kill -9");
    let mark = w.seen.len();
    w.until("PTP_PROCESS_STATUS:0", Duration::from_secs(5), |w| {
        w.seen[mark..]
            .iter()
            .any(|l| l.ends_with("]:[ptp4l.0.config] PTP_PROCESS_STATUS:0"))
    })
    .await;
    w.until("PTP_PROCESS_STATUS:1 again", Duration::from_secs(5), |w| {
        w.seen[mark..]
            .iter()
            .any(|l| l.ends_with("]:[ptp4l.0.config] PTP_PROCESS_STATUS:1"))
    })
    .await;
    let p = h
        .processes()
        .into_iter()
        .find(|p| p.kind == ProcessKind::Ptp4l)
        .expect("ptp4l");
    assert_eq!((p.starts, p.restarts), (2, 1));
    assert_ne!(p.pid, Some(pid));
    w.until("SLAVE after restart", Duration::from_secs(20), |w| {
        w.seen[mark..]
            .iter()
            .any(|l| l.contains("UNCALIBRATED to SLAVE"))
    })
    .await;
    w.until("LOCKED after restart", Duration::from_secs(15), |w| {
        w.last_lock() == Some("LOCKED")
    })
    .await;

    // 3. Grandmaster loss: SLAVE to LISTENING (or FAULTY) → HOLDOVER → FREERUN after 3 s.
    bed.kill_gm();
    let killed = w.t0.elapsed();
    let mark = w.seen.len();
    w.until("SLAVE to LISTENING/FAULTY", Duration::from_secs(15), |w| {
        w.seen[mark..]
            .iter()
            .any(|l| l.contains("SLAVE to LISTENING") || l.contains("to FAULTY"))
    })
    .await;
    w.until("HOLDOVER", Duration::from_secs(3), |w| {
        w.last_lock() == Some("HOLDOVER")
    })
    .await;
    let holdover_at = w.lock_states.last().expect("state").0;
    w.until("FREERUN", Duration::from_secs(6), |w| {
        w.last_lock() == Some("FREERUN")
    })
    .await;
    let freerun_at = w.lock_states.last().expect("state").0;
    let held = freerun_at - holdover_at;
    assert!(
        held >= Duration::from_millis(2900) && held < Duration::from_secs(5),
        "holdover lasted {held:?}"
    );
    println!(
        "GM killed at {killed:.1?}; HOLDOVER at {holdover_at:.1?}; FREERUN at {freerun_at:.1?}"
    );

    // 4. Stop (what SIGTERM/SIGINT does in the binary): no ptp4l left, no zombie.
    stop.send(()).expect("stop");
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("stops in time")
        .expect("join")
        .expect("ok");
    let needle = run_dir
        .join("ptp4l.0.config")
        .to_string_lossy()
        .into_owned();
    assert_eq!(
        pids_with_cmdline(&needle),
        Vec::<u32>::new(),
        "ptp4l left behind"
    );
    assert_eq!(zombie_children().len(), 0, "zombies");
    assert!(w.has(|l| l.ends_with("]:[ptp4l.0.config] PTP_PROCESS_STATUS:0")));
    drop(bed);
    // The servo ran (s2, LOCKED) but every clock write went to the shim.
    match time_daemon() {
        None => assert_eq!(
            realtime_freq(),
            freq_before,
            "CLOCK_REALTIME's frequency was changed"
        ),
        Some(td) => println!("{td} runs: CLOCK_REALTIME's frequency not compared"),
    }
    println!("end-to-end test took {:.1?}", t0.elapsed());
}
