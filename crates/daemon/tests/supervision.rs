//! Supervision, forwarding and the socket protocol with stand-in linuxptp programs (shell
//! scripts that print real ptp4l/phc2sys lines), so they run anywhere without root.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{pids_with_cmdline, wait_for, write_exec, zombie_children};
use daemon::{CMD_LIVE_START, CMD_RESTART, Daemon, DaemonOptions};
use ptp_config::NodeSelector;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

const FAKE_PTP4L: &str = r#"#!/bin/sh
cfg=$2
name=$(basename "$cfg")
echo "ptp4l[1.000]: [$name:{level}] port 1: INITIALIZING to LISTENING on INIT_COMPLETE"
echo "ptp4l[1.100]: [$name:5] port 1: LISTENING to UNCALIBRATED on RS_SLAVE"
echo "ptp4l[1.200]: [$name:6] master offset -12 s0 freq +500 path delay 89"
echo "ptp4l[1.300]: [$name:5] port 1: UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED"
echo "some diagnostics on stderr" >&2
i=0
while :; do
  echo "ptp4l[2.$i]: [$name:6] master offset -5 s2 freq +500 path delay 89"
  i=$((i+1))
  sleep 0.1
done
"#;

const FAKE_PHC2SYS: &str = r#"#!/bin/sh
while :; do
  echo "phc2sys[3.0]: [ptp4l.0.config:6] CLOCK_REALTIME phc offset -4 s2 freq +2856 delay 553"
  sleep 0.1
done
"#;

/// Replaces the profile file as a ConfigMap mount does (a rename), so the daemon never reads it
/// half-written: a truncated file reads as "no profiles", which is a valid change of its own.
fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

fn profiles_json(tag: &str) -> String {
    format!(
        r#"[{{"name":"{tag}","interface":"veth-x","ptp4lOpts":"-2 -s --summary_interval -4","phc2sysOpts":"-a -r","ptp4lConf":"[global]\nslaveOnly 1\n"}}]"#
    )
}

struct Setup {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    profile: std::path::PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().to_owned();
    std::fs::create_dir(p.join("bin")).expect("mkdir");
    write_exec(&p.join("bin/ptp4l"), FAKE_PTP4L);
    write_exec(&p.join("bin/phc2sys"), FAKE_PHC2SYS);
    let profile = p.join("node-a");
    std::fs::write(&profile, profiles_json("slave")).expect("write");
    Setup {
        dir: p,
        profile,
        _dir: dir,
    }
}

fn options(s: &Setup) -> DaemonOptions {
    let mut o = DaemonOptions::new(NodeSelector::new("node-a"), &s.profile);
    o.render.run_dir = s.dir.join("run");
    o.render.bin_dir = s.dir.join("bin");
    o.poll_interval = Duration::from_millis(200);
    o.stop_grace = Duration::from_secs(2);
    o
}

fn spawn(
    d: Daemon,
) -> (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let (tx, rx) = oneshot::channel::<()>();
    let h = tokio::spawn(d.run(async move {
        let _ = rx.await;
    }));
    (tx, h)
}

fn assert_nothing_left(dir: &Path) {
    let needle = dir.to_string_lossy().into_owned();
    let deadline = Instant::now() + Duration::from_secs(3);
    while !pids_with_cmdline(&needle).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        pids_with_cmdline(&needle),
        Vec::<u32>::new(),
        "processes left behind"
    );
    assert_eq!(zombie_children(), Vec::<u32>::new(), "zombies left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_lines_restarts_a_killed_process_and_stops_cleanly() {
    let t0 = Instant::now();
    let s = setup();
    let (tx, mut rx) = mpsc::channel(10_000);
    let mut o = options(&s);
    o.lines = Some(tx);
    let d = Daemon::new(o);
    let h = d.handle();
    let (stop, task) = spawn(d);
    let mut seen = Vec::new();
    let first = wait_for(
        &mut rx,
        &mut seen,
        Duration::from_secs(5),
        "CMD RESTART",
        |l| l == CMD_RESTART,
    )
    .await;
    assert_eq!(first, CMD_RESTART);
    assert_eq!(
        seen.len(),
        1,
        "CMD RESTART comes before any process line: {seen:?}"
    );
    wait_for(
        &mut rx,
        &mut seen,
        Duration::from_secs(5),
        "ptp4l up",
        |l| l.starts_with("ptp4l[") && l.ends_with("]:[ptp4l.0.config] PTP_PROCESS_STATUS:1"),
    )
    .await;
    // The level suffix is removed, stderr is forwarded, phc2sys starts after a sane offset.
    wait_for(&mut rx, &mut seen, Duration::from_secs(5), "slave line", |l| {
        l == "ptp4l[1.300]: [ptp4l.0.config] port 1: UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED"
    })
    .await;
    let phc2sys_up = |l: &str| {
        l.starts_with("phc2sys[") && l.ends_with("]:[ptp4l.0.config] PTP_PROCESS_STATUS:1")
    };
    if !seen.iter().any(|l| phc2sys_up(l)) {
        wait_for(
            &mut rx,
            &mut seen,
            Duration::from_secs(5),
            "phc2sys up",
            phc2sys_up,
        )
        .await;
    }
    // stdout and stderr are read by separate tasks: the stderr line may come after the others.
    if !seen.iter().any(|l| l == "some diagnostics on stderr") {
        wait_for(
            &mut rx,
            &mut seen,
            Duration::from_secs(5),
            "stderr line",
            |l| l == "some diagnostics on stderr",
        )
        .await;
    }
    let up_pos = seen
        .iter()
        .position(|l| l.contains("phc2sys[") && l.contains("STATUS:1"))
        .expect("phc2sys up");
    let offset_pos = seen
        .iter()
        .position(|l| l.contains("master offset"))
        .expect("offset");
    assert!(
        offset_pos < up_pos,
        "phc2sys started before ptp4l reported an offset"
    );

    // kill -9 ptp4l: down reported, restarted after ~1 s, counted.
    let ptp4l = h
        .processes()
        .into_iter()
        .find(|p| p.kind == ptp_config::ProcessKind::Ptp4l)
        .expect("ptp4l");
    let pid = ptp4l.pid.expect("pid");
    assert_eq!(ptp4l.starts, 1);
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).expect("pid"),
        rustix::process::Signal::KILL,
    )
    .expect("kill");
    let killed = Instant::now();
    wait_for(
        &mut rx,
        &mut seen,
        Duration::from_secs(5),
        "ptp4l down",
        |l| l.starts_with("ptp4l[") && l.ends_with("PTP_PROCESS_STATUS:0"),
    )
    .await;
    wait_for(
        &mut rx,
        &mut seen,
        Duration::from_secs(5),
        "ptp4l up again",
        |l| l.starts_with("ptp4l[") && l.ends_with("PTP_PROCESS_STATUS:1"),
    )
    .await;
    let gap = killed.elapsed();
    assert!(
        gap >= Duration::from_millis(900) && gap < Duration::from_secs(3),
        "restart after {gap:?}"
    );
    let again = h
        .processes()
        .into_iter()
        .find(|p| p.kind == ptp_config::ProcessKind::Ptp4l)
        .expect("ptp4l");
    assert_eq!((again.starts, again.restarts), (2, 1));
    assert!(
        again.last_exit.as_deref().is_some_and(|e| e.contains("9")),
        "{:?}",
        again.last_exit
    );

    // A profile change: old processes down, CMD RESTART, new ones up.
    write_atomically(&s.profile, &profiles_json("slave2"));
    wait_for(
        &mut rx,
        &mut seen,
        Duration::from_secs(10),
        "CMD RESTART after change",
        |l| l == CMD_RESTART,
    )
    .await;
    let tail_start = seen.len();
    wait_for(
        &mut rx,
        &mut seen,
        Duration::from_secs(5),
        "new ptp4l up",
        |l| l.starts_with("ptp4l[") && l.ends_with("STATUS:1"),
    )
    .await;
    let conf = std::fs::read_to_string(s.dir.join("run/ptp4l.0.config")).expect("rendered");
    assert!(conf.starts_with("#profile: slave2\n"), "{conf}");
    assert!(
        seen[..tail_start]
            .iter()
            .rev()
            .take(10)
            .any(|l| l.ends_with("STATUS:0")),
        "downs before CMD RESTART"
    );

    // An invalid change is not applied; the processes keep running.
    write_atomically(
        &s.profile,
        r#"[{"name":"bad","ptpSchedulingPolicy":"SCHED_RR","interface":"x"}]"#,
    );
    let deadline = Instant::now() + Duration::from_secs(3);
    while h.last_error().is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let err = h.last_error().expect("error reported");
    assert!(err.contains("ptpSchedulingPolicy"), "{err}");
    assert!(h.processes().iter().all(|p| p.up), "running set kept");
    assert_eq!(h.applied(), 2);

    stop.send(()).expect("stop");
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("stops in time")
        .expect("join")
        .expect("ok");
    assert_nothing_left(&s.dir);
    println!("supervision test took {:?}", t0.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_client_reconnects_and_replays_state() {
    let t0 = Instant::now();
    let s = setup();
    let sock = s.dir.join("events.sock");
    let listener = UnixListener::bind(&sock).expect("bind");
    let mut o = options(&s);
    o.socket_path = Some(sock.clone());
    let d = Daemon::new(o);
    let h = d.handle();
    let (stop, task) = spawn(d);

    async fn read_until(
        r: &mut BufReader<tokio::net::UnixStream>,
        pred: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut l = String::new();
            let left = deadline.saturating_duration_since(Instant::now());
            let n = tokio::time::timeout(left, r.read_line(&mut l))
                .await
                .expect("line in time")
                .expect("read");
            assert!(n > 0, "socket closed; got {got:?}");
            assert!(l.ends_with('\n'));
            let l = l.trim_end_matches('\n').to_owned();
            got.push(l.clone());
            if pred(&l) {
                return got;
            }
        }
    }

    let (c, _) = tokio::time::timeout(Duration::from_secs(5), listener.accept())
        .await
        .expect("connects")
        .expect("accept");
    let mut r = BufReader::new(c);
    let mut first = read_until(&mut r, |l| {
        l.contains("phc2sys[") && l.ends_with("STATUS:1")
    })
    .await;
    first.extend(read_until(&mut r, |l| l.contains("master offset -5 s2")).await);
    // Whether the client connected before or after the first apply (replay then live, or the
    // undelivered lines first), CMD RESTART comes before every process line.
    let restart = first.iter().position(|l| l == CMD_RESTART);
    let process = first.iter().position(|l| l.starts_with("ptp4l["));
    assert!(
        restart.is_some() && restart < process,
        "CMD RESTART before the process lines: {first:?}"
    );
    assert!(first.iter().any(|l| l == CMD_LIVE_START), "{first:?}");
    assert!(
        first.iter().any(|l| l.contains("master offset -5 s2")),
        "{first:?}"
    );

    // The producer goes away: close the connection and the listener.
    drop(r);
    drop(listener);
    std::fs::remove_file(&sock).expect("rm");
    // Away for 6 s (a producer restart that takes a while): a doubling backoff would be waiting
    // 4 s by now; the daemon must be back within 1 s of the socket reappearing.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let listener = UnixListener::bind(&sock).expect("rebind");
    let back = Instant::now();
    let (c, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
        .await
        .expect("reconnects")
        .expect("accept");
    let took = back.elapsed();
    println!("reconnected {took:?} after the socket came back");
    assert!(
        took < Duration::from_secs(1),
        "reconnected only {took:?} after the socket came back"
    );
    let mut r = BufReader::new(c);
    let replay = read_until(&mut r, |l| l == CMD_LIVE_START).await;
    println!("replay after reconnect:\n{}", replay.join("\n"));
    let kinds = [
        ("ptp4l status", replay.iter().any(|l| l.starts_with("ptp4l[") && l.ends_with("]:[ptp4l.0.config] PTP_PROCESS_STATUS:1"))),
        ("phc2sys status", replay.iter().any(|l| l.starts_with("phc2sys[") && l.ends_with("]:[ptp4l.0.config] PTP_PROCESS_STATUS:1"))),
        ("port state", replay.iter().any(|l| l == "ptp4l[1.300]: [ptp4l.0.config] port 1: UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED")),
        ("ptp4l offset", replay.iter().any(|l| l.contains("master offset -5 s2"))),
        ("phc2sys offset", replay.iter().any(|l| l.contains("CLOCK_REALTIME phc offset -4 s2"))),
    ];
    for (what, ok) in kinds {
        assert!(ok, "replay lacks {what}: {replay:?}");
    }
    assert!(
        !replay
            .iter()
            .any(|l| l.contains("LISTENING to UNCALIBRATED")),
        "only the last port state"
    );
    // Live lines follow.
    read_until(&mut r, |l| l.contains("master offset")).await;
    let st = h.stats();
    assert!(st.socket_connects >= 2, "{st:?}");
    stop.send(()).expect("stop");
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("stops")
        .expect("join")
        .expect("ok");
    assert_nothing_left(&s.dir);
    println!("socket test took {:?}", t0.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_ignores_sigterm_is_killed_after_the_grace() {
    let s = setup();
    write_exec(
        &s.dir.join("bin/ptp4l"),
        "#!/bin/sh\ntrap '' TERM\necho \"ptp4l[1.0]: [ptp4l.0.config:6] master offset 5000000000 s0 freq +0 path delay 1\"\nwhile :; do sleep 0.1; done\n",
    );
    let (tx, mut rx) = mpsc::channel(1000);
    let mut o = options(&s);
    o.lines = Some(tx);
    o.stop_grace = Duration::from_millis(500);
    let (stop, task) = spawn(Daemon::new(o));
    let mut seen = Vec::new();
    wait_for(&mut rx, &mut seen, Duration::from_secs(5), "offset", |l| {
        l.contains("master offset")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // An offset of 5 s is not sane: phc2sys must not have started.
    assert!(!seen.iter().any(|l| l.starts_with("phc2sys")), "{seen:?}");
    let t = Instant::now();
    stop.send(()).expect("stop");
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops")
        .expect("join")
        .expect("ok");
    assert!(
        t.elapsed() >= Duration::from_millis(450),
        "SIGKILL came before the grace: {:?}",
        t.elapsed()
    );
    assert_nothing_left(&s.dir);
}
