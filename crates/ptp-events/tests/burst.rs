//! A burst of 100,000 daemon lines in about a second into the real producer's socket: memory
//! stays bounded and no state transition is lost.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::{free_port, is_placeholder, proxy_command, recorder, subscribe_when_up};

fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_100k_lines_loses_no_transition_and_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("events.sock");
    let port = free_port();
    let mut child = proxy_command(dir.path(), port)
        .arg("--socket")
        .arg(&socket)
        .arg("--ptp-config-dir")
        .arg(dir.path())
        .spawn()
        .unwrap();
    let (endpoint, seen) = recorder(|v| {
        let vals = &v["data"]["values"];
        (!is_placeholder(v)).then(|| {
            format!(
                "{} {}",
                vals[0]["value"].as_str().unwrap(),
                vals[1]["value"].as_str().unwrap()
            )
        })
    })
    .await;
    subscribe_when_up(
        port,
        "/cluster/node/node1/sync/ptp-status/lock-state",
        &endpoint,
        Duration::from_secs(20),
    )
    .await;
    let before = vm_hwm_kib(child.id());

    // 100,000 lines: the slave port, then samples; every 100th sample leaves or re-enters the
    // ±100 ns range, so the lock-state flips 1,000 times (LOCKED <-> FREERUN).
    const LINES: usize = 100_000;
    let mut text = String::with_capacity(LINES * 90);
    text.push_str("ptp4l[1.0]: [ptp4l.0.config] port 1 (ens1f0): UNCALIBRATED to SLAVE on MASTER_CLOCK_SELECTED\n");
    let mut expected = Vec::new();
    let mut out_of_range = true; // the first sample below is in range: LOCKED
    for i in 0..LINES - 1 {
        if i % 100 == 0 {
            out_of_range = !out_of_range;
        }
        let offset = if out_of_range {
            5000 + i as i64
        } else {
            (i % 50) as i64
        };
        if i % 100 == 0 {
            expected.push(format!(
                "{} {offset}",
                if out_of_range { "FREERUN" } else { "LOCKED" }
            ));
        }
        text.push_str(&format!(
            "ptp4l[{}.{:03}]: [ptp4l.0.config] master offset {offset} s2 freq -1 path delay 500\n",
            2 + i / 1000,
            i % 1000
        ));
    }
    let mut daemon = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    let start = Instant::now();
    daemon.write_all(text.as_bytes()).unwrap();
    let wrote = start.elapsed();

    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.lock().unwrap().len() < expected.len() {
        assert!(
            Instant::now() < deadline,
            "{} of {} transitions after 60 s",
            seen.lock().unwrap().len(),
            expected.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after = vm_hwm_kib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), expected.len());
    assert_eq!(got, expected, "every transition, in order, with its offset");
    eprintln!(
        "100,000 lines written in {wrote:?}; {} transitions delivered in {:?}; peak RSS {} KiB before, {} KiB after",
        expected.len(),
        start.elapsed(),
        before,
        after
    );
    assert!(after < 64 * 1024, "peak RSS {after} KiB");
}
