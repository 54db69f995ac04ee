//! The daemon and the producer restarting around each other, with the real binaries: a
//! `ptp-events daemon` supervising a stand-in ptp4l (a shell script whose offset the test
//! controls through a file) and writing to a `ptp-events proxy`'s socket, and a consumer
//! subscribed to `/cluster/node/node1/sync`.
//!
//! 1. LOCKED; the producer is SIGKILLed while the daemon runs; the offset goes out of range; the
//!    producer restarts on the same store: the subscription survives, the daemon reconnects and
//!    replays, and the consumer is told FREERUN — never the stale LOCKED.
//! 2. LOCKED again; the daemon is stopped (SIGTERM) while the producer runs; the offset goes out
//!    of range; the daemon starts again (`CMD RESTART`, replay): the consumer is told FREERUN
//!    once, and nothing stale is published meanwhile.
//! 3. (A second test.) LOCKED; the grandmaster is lost (the port leaves SLAVE, offsets stop):
//!    HOLDOVER; within the holdover the producer is SIGKILLed and started again: the consumer is
//!    told FREERUN (when holdover began is unknown to the new producer), never the lost LOCKED
//!    of the last offset line; the grandmaster returns: LOCKED.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    Kill, Seen, free_port, http_client, is_placeholder, proxy_command, recorder, subscribe_when_up,
    write_exec,
};

const NODE: &str = "node1";
const IN_RANGE: i64 = 5;
const OUT_OF_RANGE: i64 = 1_000_000;

/// A stand-in ptp4l: SLAVE, then an `s2` offset every 100 ms, read from `offset_file`; when the
/// file says `lost`, the port leaves SLAVE (announce timeout) and offsets stop, as when the
/// grandmaster goes away; a number again, and the port is SLAVE again.
fn fake_ptp4l(offset_file: &Path) -> String {
    format!(
        r#"#!/bin/sh
name=$(basename "$2")
echo "ptp4l[1.000]: [$name:5] port 1 (eth0): UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED"
slave=1
while :; do
  n=$(cat '{}')
  if [ "$n" = lost ]; then
    if [ $slave = 1 ]; then
      echo "ptp4l[3.000]: [$name:5] port 1 (eth0): SLAVE to LISTENING on ANNOUNCE_RECEIPT_TIMEOUT_EXPIRES"
      slave=0
    fi
  else
    if [ $slave = 0 ]; then
      echo "ptp4l[4.000]: [$name:5] port 1 (eth0): LISTENING to UNCALIBRATED on RS_SLAVE"
      echo "ptp4l[4.000]: [$name:5] port 1 (eth0): UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED"
      slave=1
    fi
    echo "ptp4l[2.000]: [$name:6] master offset $n s2 freq 0 path delay 500"
  fi
  sleep 0.1
done
"#,
        offset_file.display()
    )
}

fn set_offset(file: &Path, n: i64) {
    set_source(file, &n.to_string());
}

/// What the stand-in ptp4l reads: an offset, or `lost`.
fn set_source(file: &Path, what: &str) {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, what).unwrap();
    std::fs::rename(tmp, file).unwrap();
}

fn stop(mut c: Kill, signal: &str) {
    let pid = c.0.id().to_string();
    let _ = Command::new("kill").args([signal, &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.0.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "process {pid} did not exit on {signal}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(c);
}

struct Setup {
    dir: tempfile::TempDir,
    port: u16,
    offset: std::path::PathBuf,
}

impl Setup {
    fn p(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn producer(&self) -> Kill {
        let child = proxy_command(self.dir.path(), self.port)
            .arg("--socket")
            .arg(self.p("events.sock"))
            .arg("--ptp-config-dir")
            .arg(self.p("run"))
            .arg("--profile-dir")
            .arg(self.p("profiles"))
            .args(["--config-update-interval", "1"])
            .args([
                "--transport-host",
                &format!("http://localhost:{}", self.port),
            ])
            .spawn()
            .unwrap();
        Kill(child)
    }

    fn daemon(&self) -> Kill {
        let child = Command::new(env!("CARGO_BIN_EXE_ptp-events"))
            .args(["daemon", "--node-name", NODE, "--stop-grace", "2"])
            .args(["--http-addr", "off"])
            .arg("--profile-file")
            .arg(self.p("profiles").join(NODE))
            .arg("--run-dir")
            .arg(self.p("run"))
            .arg("--bin-dir")
            .arg(self.p("bin"))
            .arg("--socket")
            .arg(self.p("events.sock"))
            .env("LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        Kill(child)
    }
}

impl Setup {
    /// Starts the producer, subscribes a recorder of lock-state events to the node's sync
    /// resources, starts the daemon and waits for the first LOCKED.
    async fn start_locked(&self) -> (Kill, Kill, Seen) {
        let producer = self.producer();
        let (endpoint, seen) = recorder(lock_states).await;
        subscribe_when_up(
            self.port,
            &format!("/cluster/node/{NODE}/sync"),
            &endpoint,
            Duration::from_secs(20),
        )
        .await;
        let daemon = self.daemon();
        let t = wait_events(&seen, 1, Duration::from_secs(20), "first LOCKED").await;
        eprintln!("LOCKED {t:?} after the daemon started");
        (producer, daemon, seen)
    }

    /// Starts a new producer and waits until `seen` holds `n` events (what the restart must
    /// tell, `what`); then 1.5 s more, for anything stale to show.
    async fn respawn_producer(&self, seen: &Seen, n: usize, what: &str) -> Kill {
        let restarted = Instant::now();
        let producer = self.producer();
        wait_events(seen, n, Duration::from_secs(20), what).await;
        eprintln!(
            "{what}: delivered {:?} after the new producer was spawned",
            restarted.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(1500)).await;
        producer
    }
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let s = Setup {
        port: free_port(),
        offset: dir.path().join("offset"),
        dir,
    };
    for d in ["run", "profiles", "bin"] {
        std::fs::create_dir_all(s.p(d)).unwrap();
    }
    set_offset(&s.offset, IN_RANGE);
    write_exec(&s.p("bin").join("ptp4l"), &fake_ptp4l(&s.offset));
    // Thresholds ±100 ns; no phc2sys (only ptp4l runs).
    std::fs::write(
        s.p("profiles").join(NODE),
        r#"[{"name":"slave","interface":"eth0","ptp4lOpts":"-2 -s","ptp4lConf":"[global]\nslaveOnly 1\n","ptpClockThreshold":{"holdOverTimeout":5,"maxOffsetThreshold":100,"minOffsetThreshold":-100}}]"#,
    )
    .unwrap();
    s
}

/// The lock-state events, as "<state> <offset>"; the initial placeholder is left out.
fn lock_states(v: &serde_json::Value) -> Option<String> {
    if is_placeholder(v) || v["type"] != "event.sync.ptp-status.ptp-state-change" {
        return None;
    }
    let vals = &v["data"]["values"];
    Some(format!(
        "{} {} {}",
        vals[0]["ResourceAddress"].as_str().unwrap_or(""),
        vals[0]["value"].as_str().unwrap_or(""),
        vals[1]["value"].as_str().unwrap_or("")
    ))
}

/// Waits until `seen` holds `n` events (at most `limit`); returns how long it took.
async fn wait_events(seen: &Seen, n: usize, limit: Duration, what: &str) -> Duration {
    let t0 = Instant::now();
    while seen.lock().unwrap().len() < n {
        assert!(
            t0.elapsed() < limit,
            "{what}: waited {limit:?} for {n} events, got {:?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    t0.elapsed()
}

fn states(seen: &Seen) -> Vec<String> {
    seen.lock().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_and_daemon_restarts_publish_the_current_state_and_nothing_stale() {
    let s = setup();
    let master = format!("/cluster/node/{NODE}/eth0/master");
    let locked = format!("{master} LOCKED {IN_RANGE}");
    let freerun = format!("{master} FREERUN {OUT_OF_RANGE}");

    let (producer, daemon, seen) = s.start_locked().await;
    assert_eq!(states(&seen), std::slice::from_ref(&locked));

    // 1. The producer is SIGKILLed while the daemon runs; the state changes meanwhile.
    stop(producer, "-KILL");
    set_offset(&s.offset, OUT_OF_RANGE);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let producer = s
        .respawn_producer(&seen, 2, "FREERUN after the producer restart")
        .await;
    assert_eq!(
        states(&seen),
        [locked.clone(), freerun.clone()],
        "after the producer restart the consumer must be told the current state only"
    );
    // The subscription is still there (one, loaded from the store).
    let subs: serde_json::Value = http_client()
        .get(format!(
            "http://127.0.0.1:{}/api/ocloudNotifications/v2/subscriptions",
            s.port
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(subs.as_array().map(Vec::len), Some(1), "{subs}");

    // 2. Back to LOCKED, then the daemon is restarted while the producer runs, the state
    //    changing while it is down.
    set_offset(&s.offset, IN_RANGE);
    wait_events(&seen, 3, Duration::from_secs(10), "LOCKED again").await;
    stop(daemon, "-TERM");
    set_offset(&s.offset, OUT_OF_RANGE);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        states(&seen),
        [locked.clone(), freerun.clone(), locked.clone()],
        "nothing may be published while the daemon is down (within the downtime threshold)"
    );
    let restarted = Instant::now();
    let daemon = s.daemon();
    wait_events(
        &seen,
        4,
        Duration::from_secs(20),
        "FREERUN after the daemon restart",
    )
    .await;
    eprintln!(
        "daemon restart: FREERUN delivered {:?} after the new daemon was spawned",
        restarted.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        states(&seen),
        [
            locked.clone(),
            freerun.clone(),
            locked.clone(),
            freerun.clone()
        ],
        "after the daemon restart the consumer must be told the current state only"
    );
    stop(daemon, "-TERM");
    stop(producer, "-TERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_restarted_in_holdover_tells_freerun_never_the_lost_lock() {
    let s = setup();
    let master = format!("/cluster/node/{NODE}/eth0/master");
    // Address and state of each lock-state event.
    let names = |seen: &Seen| -> Vec<String> {
        states(seen)
            .iter()
            .map(|e| e.split(' ').take(2).collect::<Vec<_>>().join(" "))
            .collect()
    };
    let (producer, daemon, seen) = s.start_locked().await;
    set_source(&s.offset, "lost");
    wait_events(&seen, 2, Duration::from_secs(10), "HOLDOVER").await;
    assert_eq!(
        names(&seen),
        [format!("{master} LOCKED"), format!("{master} HOLDOVER")]
    );
    // Within the 5 s holdover, the producer dies and comes back.
    stop(producer, "-KILL");
    let producer = s
        .respawn_producer(&seen, 3, "FREERUN after the producer restart in holdover")
        .await;
    assert_eq!(
        names(&seen),
        [
            format!("{master} LOCKED"),
            format!("{master} HOLDOVER"),
            format!("{master} FREERUN")
        ],
        "after the restart: FREERUN, and never the LOCKED of the last offset line"
    );
    set_offset(&s.offset, IN_RANGE);
    wait_events(
        &seen,
        4,
        Duration::from_secs(10),
        "LOCKED when the master returns",
    )
    .await;
    assert_eq!(names(&seen)[3], format!("{master} LOCKED"));
    stop(daemon, "-TERM");
    stop(producer, "-TERM");
}
