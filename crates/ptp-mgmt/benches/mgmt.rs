//! What reading the clock class costs: the codec alone, and GET PARENT_DATA_SET round trips
//! against a real ptp4l (`ptp4l -2 -S -i lo`, root; skipped with a message otherwise), with the
//! client's CPU per request. The daemon asks once per 250 ms per ptp4l.
//!
//!   cargo bench -p ptp-mgmt --bench mgmt

use std::hint::black_box;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ptp_mgmt::codec::{Message, decode, encode, id};
use ptp_mgmt::{Client, ClientConfig, PortIdentity};

/// A real ptp4l 3.1.1 answer to GET PARENT_DATA_SET (fuzz/seeds/mgmt_decode).
const PARENT_REPLY: &[u8] =
    include_bytes!("../../../fuzz/seeds/mgmt_decode/ptp4l-3.1.1-response-parent_data_set");

fn cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn codec() {
    let n = 2_000_000u32;
    let t = Instant::now();
    for _ in 0..n {
        black_box(decode(black_box(PARENT_REPLY)).expect("decodes"));
    }
    let dec = t.elapsed() / n;
    let get = Message::get(PortIdentity::default(), 1, id::PARENT_DATA_SET);
    let t = Instant::now();
    for _ in 0..n {
        black_box(encode(black_box(&get)));
    }
    let enc = t.elapsed() / n;
    println!(
        "codec: decode PARENT_DATA_SET reply {dec:?}, encode GET {enc:?} (per message, {n} each)"
    );
}

async fn round_trips() {
    let root = rustix::process::geteuid().is_root();
    if !root || !Path::new("/usr/sbin/ptp4l").exists() {
        println!("round trips: SKIPPED (needs root and /usr/sbin/ptp4l)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("ptp4l.sock");
    let cfg = dir.path().join("ptp4l.cfg");
    std::fs::write(&cfg, format!("[global]\nuds_address {}\n", sock.display())).expect("cfg");
    let mut child = Command::new("/usr/sbin/ptp4l")
        .args(["-2", "-S", "-i", "lo", "-f"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ptp4l");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "ptp4l made no socket");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut c = Client::new(&sock, dir.path(), ClientConfig::default()).expect("client");
    for _ in 0..100 {
        c.parent_data_set().await.expect("warm-up");
    }
    let n = 20_000;
    let mut rtt = Vec::with_capacity(n);
    let cpu0 = cpu();
    let t0 = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        black_box(c.parent_data_set().await.expect("GET PARENT_DATA_SET"));
        rtt.push(t.elapsed());
    }
    let wall = t0.elapsed();
    let used = cpu() - cpu0;
    rtt.sort();
    let p = |q: f64| rtt[((n as f64 - 1.0) * q) as usize];
    println!(
        "round trips: GET PARENT_DATA_SET to a real ptp4l, {n} in a row: p50 {:?}, p99 {:?}, max {:?}; client CPU {:?} per request ({:.0} requests/s)",
        p(0.5),
        p(0.99),
        rtt[n - 1],
        used / n as u32,
        n as f64 / wall.as_secs_f64()
    );
    println!(
        "  the daemon's watcher (4 requests/s per ptp4l) therefore costs about {:.4}% of one core per ptp4l",
        (used / n as u32).as_secs_f64() * 4.0 * 100.0
    );
    let _ = child.kill();
    let _ = child.wait();
}

fn main() {
    codec();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(round_trips());
}
