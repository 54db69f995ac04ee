//! The producer as a sidecar next to a daemon (ours or Go's): it learns configs, interfaces and
//! thresholds from the shared volumes (rendered `/var/run/ptp4l.N.config`, the profile file under
//! `PTP_PROFILE_PATH`) and reads the daemon's lines from the socket.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;

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
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ptp-events"))
        .args(["proxy", "--api-bind", "127.0.0.1", "--metrics-addr", "off"])
        .args(["--api-port", &port.to_string()])
        .arg("--store-path")
        .arg(dir.path().join("store"))
        .arg("--socket")
        .arg(&socket)
        .arg("--ptp-config-dir")
        .arg(&run)
        .arg("--profile-dir")
        .arg(&profiles)
        .env("NODE_NAME", "node1")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();

    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let s = seen.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/event", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/event",
        axum::routing::post(move |body: Bytes| {
            let s = s.clone();
            async move {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let vals = &v["data"]["values"];
                s.lock().unwrap().push(format!(
                    "{} {} {}",
                    vals[0]["ResourceAddress"].as_str().unwrap(),
                    vals[0]["value"].as_str().unwrap(),
                    vals[1]["value"].as_str().unwrap_or("")
                ));
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = client
            .post(format!("http://127.0.0.1:{port}/api/ocloudNotifications/v2/subscriptions"))
            .body(format!(
                r#"{{"ResourceAddress":"/cluster/node/node1/sync/ptp-status/lock-state","EndpointUri":"{endpoint}"}}"#
            ))
            .send()
            .await;
        if r.is_ok_and(|r| r.status() == 201) {
            break;
        }
        assert!(Instant::now() < deadline, "producer not up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
