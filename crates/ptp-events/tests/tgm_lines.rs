//! The lines our daemon writes as a T-GM (`ptp_state::tgm`'s forms: `GM[..] T-GM-STATUS`,
//! `CLOCK_CLASS_CHANGE`, `gnss[..]`, `dpll[..]`, ts2phc offsets) written into a producer's socket
//! give the clock-class and GNSS events a subscriber expects: always against our producer (the
//! real binary), and against Red Hat's Go producer (`cloud-event-proxy`) when it is given:
//! `GO_CLOUD_EVENT_PROXY=<binary>` and `GO_CLOUD_EVENT_PROXY_DIR=<its working directory, with
//! plugins/>`, as root (its socket is `/cloud-native/events.sock`), set up as the Go repository's
//! local-run notes say. Not run on the machine this was written on: there is no Go toolchain or
//! Go producer binary there; the test says SKIPPED with the reason.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, is_placeholder, is_root, recorder, subscribe_when_up};
use ptp_state::tgm::{DpllState, TgmState, dpll_line, gnss_line, tgm_status_line};

const NODE: &str = "node1";

/// The T-GM walk as our daemon writes it: Free-Run, Locked, Holdover-In-Spec (GNSS lost),
/// Out-Of-Spec, Free-Run, Locked. (state, GNSS available, DPLL)
const WALK: [(TgmState, bool, DpllState); 6] = [
    (TgmState::FreeRun, false, DpllState::Freerun),
    (TgmState::Locked, true, DpllState::LockedHoAcq),
    (TgmState::HoldoverInSpec, false, DpllState::Holdover),
    (TgmState::HoldoverOutOfSpec, false, DpllState::Holdover),
    (TgmState::FreeRun, false, DpllState::Holdover),
    (TgmState::Locked, true, DpllState::LockedHoAcq),
];

fn lines(step: usize) -> Vec<String> {
    let (state, gnss_ok, dpll) = WALK[step];
    let t = 1_733_290_000 + step as u64;
    let cfg = "ts2phc.0.config";
    vec![
        format!("ts2phc[{t}.000]: [{cfg}] ens1f0 offset -3 s2 freq -12"),
        gnss_line(t, cfg, "ens1f0", if gnss_ok { 3 } else { 0 }, 20, gnss_ok),
        dpll_line(t, cfg, "ens1f0", dpll, 0),
        format!("ptp4l[{t}]:[{cfg}] CLOCK_CLASS_CHANGE {}", state.class()),
        tgm_status_line(t, cfg, "ens1f0", state),
    ]
}

/// Writes the walk into `socket`, one state every 300 ms, and returns the clock-class and GNSS
/// events the subscriber saw.
async fn walk(socket: &Path, api: u16, limit: Duration) -> (Vec<String>, Vec<String>) {
    let (endpoint, seen) = recorder(|v| {
        (!is_placeholder(v)).then(|| {
            format!(
                "{} {}",
                v["source"]
                    .as_str()
                    .unwrap_or("")
                    .rsplit('/')
                    .next()
                    .unwrap(),
                v["data"]["values"][0]["value"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v["data"]["values"][0]["value"].to_string())
            )
        })
    })
    .await;
    for r in ["ptp-status/clock-class", "gnss-status/gnss-sync-status"] {
        subscribe_when_up(
            api,
            &format!("/cluster/node/{NODE}/sync/{r}"),
            &endpoint,
            limit,
        )
        .await;
    }
    let deadline = Instant::now() + limit;
    let mut s = loop {
        match std::os::unix::net::UnixStream::connect(socket) {
            Ok(s) => break s,
            Err(e) => {
                assert!(Instant::now() < deadline, "{}: {e}", socket.display());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    for step in 0..WALK.len() {
        for l in lines(step) {
            s.write_all(format!("{l}\n").as_bytes()).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let want = 6 + 4; // six classes, four GNSS changes
    while seen.lock().unwrap().len() < want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all = seen.lock().unwrap().clone();
    let of = |p: &str| -> Vec<String> {
        all.iter()
            .filter_map(|e| e.strip_prefix(p).map(str::to_owned))
            .collect()
    };
    (of("clock-class "), of("gnss-sync-status "))
}

fn check(who: &str, classes: &[String], gnss: &[String]) {
    println!("{who}: clock-class {classes:?}, gnss {gnss:?}");
    assert_eq!(
        classes,
        ["248", "6", "7", "140", "248", "6"],
        "{who}: clock-class"
    );
    assert_eq!(
        gnss,
        [
            "FAILURE-NOFIX",
            "SYNCHRONIZED",
            "FAILURE-NOFIX",
            "SYNCHRONIZED"
        ],
        "{who}: gnss-sync-status"
    );
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn our_tgm_lines_give_the_events_through_our_producer() {
    let dir = tempfile::tempdir().unwrap();
    let api = free_port();
    let socket = dir.path().join("events.sock");
    let _p = Kill(
        Command::new(env!("CARGO_BIN_EXE_ptp-events"))
            .args(["proxy", "--api-bind", "127.0.0.1", "--metrics-addr", "off"])
            .args(["--api-port", &api.to_string()])
            .arg("--store-path")
            .arg(dir.path().join("store"))
            .arg("--socket")
            .arg(&socket)
            // Nothing answers there: the producer goes on without interface aliases at once.
            .args(["--daemon-api", &format!("http://127.0.0.1:{}", free_port())])
            .env("NODE_NAME", NODE)
            .env("LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (classes, gnss) = walk(&socket, api, Duration::from_secs(20)).await;
    check("our producer", &classes, &gnss);
}

#[tokio::test]
async fn our_tgm_lines_give_the_events_through_the_go_producer() {
    let (Some(bin), Some(work)) = (
        std::env::var_os("GO_CLOUD_EVENT_PROXY"),
        std::env::var_os("GO_CLOUD_EVENT_PROXY_DIR"),
    ) else {
        println!(
            "SKIPPED: the Go producer is not given (GO_CLOUD_EVENT_PROXY=<cloud-event-proxy binary>, GO_CLOUD_EVENT_PROXY_DIR=<its directory with plugins/>)"
        );
        return;
    };
    if !is_root() {
        println!("SKIPPED: the Go producer's socket is /cloud-native/events.sock: needs root");
        return;
    }
    // Its PTP plugin reads the rendered config and the profile of this node.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all("/cloud-native").unwrap();
    std::fs::write(
        "/var/run/ptp4l.0.config",
        "#profile: tgm\n[global]\nmasterOnly 1\n[ens1f0]\n",
    )
    .unwrap();
    let profiles = dir.path().join("profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::write(
        profiles.join(NODE),
        r#"[{"name":"tgm","interface":"ens1f0","ptp4lOpts":"-2","ts2phcOpts":" ","ptpSettings":{"clockType":"T-GM"},"ptpClockThreshold":{"holdOverTimeout":5,"maxOffsetThreshold":100,"minOffsetThreshold":-100}}]"#,
    )
    .unwrap();
    let api = free_port();
    let _p = Kill(
        Command::new(&bin)
            .current_dir(&work)
            .arg(format!(
                "--store-path={}",
                dir.path().join("store").display()
            ))
            .arg(format!("--transport-host=http://localhost:{api}"))
            .arg(format!("--api-port={api}"))
            .arg(format!("--metrics-addr=127.0.0.1:{}", free_port()))
            .env("NODE_NAME", NODE)
            .env("PTP_PLUGIN", "true")
            .env("PTP_PROFILE_PATH", &profiles)
            .env_remove("NAME_SPACE")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (classes, gnss) = walk(
        Path::new("/cloud-native/events.sock"),
        api,
        Duration::from_secs(30),
    )
    .await;
    let _ = std::fs::remove_file("/var/run/ptp4l.0.config");
    check("the Go producer", &classes, &gnss);
}
