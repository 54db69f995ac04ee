//! The producer as a sidecar next to a daemon (ours or Go's): it learns configs, interfaces and
//! thresholds from the shared volumes (rendered `/var/run/ptp4l.N.config`, the profile file under
//! `PTP_PROFILE_PATH`) and reads the daemon's lines from the socket.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::{free_port, proxy_command, recorder, subscribe_when_up};

#[tokio::test]
async fn learns_interfaces_and_thresholds_from_the_shared_volumes() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let profiles = dir.path().join("profiles");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::create_dir_all(&profiles).unwrap();
    // As the Go daemon renders it (reference §11.1).
    std::fs::write(
        run.join("ptp4l.0.config"),
        "#profile: test-profile\n[global]\nslaveOnly 1\nmessage_tag [ptp4l.0.config]\n[ens1f0]\n",
    )
    .unwrap();
    std::fs::write(
        profiles.join("node1"),
        r#"[{"name":"test-profile","interface":"ens1f0","ptp4lOpts":"-2 -s","phc2sysOpts":"-a -r -n 24","ptpClockThreshold":{"holdOverTimeout":1,"maxOffsetThreshold":500,"minOffsetThreshold":-500}}]"#,
    )
    .unwrap();
    let socket = dir.path().join("events.sock");
    let port = free_port();
    let mut child = proxy_command(dir.path(), port)
        .arg("--socket")
        .arg(&socket)
        .arg("--ptp-config-dir")
        .arg(&run)
        .arg("--profile-dir")
        .arg(&profiles)
        .spawn()
        .unwrap();
    let (endpoint, seen) = recorder(|v| {
        let vals = &v["data"]["values"];
        Some(format!(
            "{} {} {}",
            vals[0]["ResourceAddress"].as_str().unwrap(),
            vals[0]["value"].as_str().unwrap(),
            vals[1]["value"].as_str().unwrap_or("")
        ))
    })
    .await;
    subscribe_when_up(
        port,
        "/cluster/node/node1/sync/ptp-status/lock-state",
        &endpoint,
        Duration::from_secs(20),
    )
    .await;
    while !socket.exists() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // linuxptp 3.1 port lines carry no interface name: port 1 is the first interface section.
    // An offset of 300 ns is in range only with the learned ±500 ns thresholds.
    let mut daemon = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    daemon
        .write_all(
            b"ptp4l[100.0]: [ptp4l.0.config] port 1: UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED\n\
              ptp4l[100.1]: [ptp4l.0.config] master offset 300 s2 freq -1 path delay 500\n\
              ptp4l[101.0]: [ptp4l.0.config] port 1: SLAVE to FAULTY on FAULT_DETECTED (FT_UNSPECIFIED)\n",
        )
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.lock().unwrap().len() < 4 {
        assert!(
            Instant::now() < deadline,
            "events: {:?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = seen.lock().unwrap()[1..4].to_vec();
    let _ = child.kill();
    let _ = child.wait();
    // LOCKED with the learned interface; HOLDOVER; FREERUN after the learned 1 s holdover.
    assert_eq!(
        got,
        [
            "/cluster/node/node1/ens1f0/master LOCKED 300",
            "/cluster/node/node1/ens1f0/master HOLDOVER 300",
            "/cluster/node/node1/ens1f0/master FREERUN 300",
        ]
    );
}
