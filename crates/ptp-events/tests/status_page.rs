//! `proxy --status-page`: the read-only picture of the node on the metrics listener (off by
//! default), fed by the lines the producer takes from the daemon's socket.

mod common;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, http_client};

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn producer(dir: &std::path::Path, metrics: u16, status_page: bool) -> Kill {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ptp-events"));
    c.args(["proxy", "--api-bind", "127.0.0.1"])
        .args(["--api-port", &free_port().to_string()])
        .args(["--metrics-addr", &format!("127.0.0.1:{metrics}")])
        .arg("--store-path")
        .arg(dir.join("store"))
        .arg("--socket")
        .arg(dir.join("events.sock"))
        .args(["--daemon-api", "off"])
        .env("NODE_NAME", "n1")
        .env("LOG_LEVEL", "warn")
        .stdout(Stdio::null());
    if status_page {
        c.arg("--status-page");
    }
    Kill(c.spawn().unwrap())
}

async fn get(url: &str) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = http_client().get(url).send().await {
            return (r.status().as_u16(), r.text().await.unwrap());
        }
        assert!(Instant::now() < deadline, "{url} never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_status_page_is_opt_in_and_shows_what_the_producer_took() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = free_port();
    let _p = producer(dir.path(), metrics, true);
    let base = format!("http://127.0.0.1:{metrics}");
    assert_eq!(get(&format!("{base}/metrics")).await.0, 200);
    // The lab's recorded slave, written into the daemon socket.
    let log = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("lab/testbed-oc-slave.log"),
    )
    .unwrap();
    let sock = dir.path().join("events.sock");
    let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    s.write_all(log.as_bytes()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let page = loop {
        let (status, page) = get(&format!("{base}/status/")).await;
        assert_eq!(status, 200);
        if page.contains("\">LOCKED</b>") {
            break page;
        }
        assert!(Instant::now() < deadline, "no LOCKED on the page: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(page.contains("<svg") && page.contains("PTP events of n1"));
    assert!(
        page.contains("offset ptp4l ptp4l.0.config"),
        "the offsets are drawn"
    );
    assert!(page.matches(r#"id="mark-"#).count() >= 2);
    // The stream, bounded: one message, the same content.
    let (status, stream) = get(&format!("{base}/status/events?max=1")).await;
    assert_eq!(status, 200);
    assert!(
        stream.starts_with("data: ") || stream.contains("\ndata: "),
        "{stream}"
    );
    assert!(stream.contains("LOCKED"));

    // Off by default: not served.
    let dir2 = tempfile::tempdir().unwrap();
    let metrics2 = free_port();
    let _q = producer(dir2.path(), metrics2, false);
    let base2 = format!("http://127.0.0.1:{metrics2}");
    assert_eq!(get(&format!("{base2}/metrics")).await.0, 200);
    assert_eq!(get(&format!("{base2}/status/")).await.0, 404);

    // It needs the metrics listener.
    let out = Command::new(env!("CARGO_BIN_EXE_ptp-events"))
        .args([
            "proxy",
            "--metrics-addr",
            "off",
            "--status-page",
            "--socket",
            "off",
        ])
        .arg("--store-path")
        .arg(dir2.path().join("store2"))
        .env("NODE_NAME", "n1")
        .env("LOG_LEVEL", "warn")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--status-page"));
}
