//! Helpers shared by the tests that run the real `ptp-events` binary.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;

/// A loopback port nobody listens on (now).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether the test runs as root.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `ptp-events proxy` for node `node1` on 127.0.0.1:`port`, no metrics, store under `dir/store`;
/// the caller adds flags and spawns it.
pub fn proxy_command(dir: &Path, port: u16) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ptp-events"));
    c.args(["proxy", "--api-bind", "127.0.0.1", "--metrics-addr", "off"])
        .args(["--api-port", &port.to_string()])
        .arg("--store-path")
        .arg(dir.join("store"))
        .env("NODE_NAME", "node1")
        .env("LOG_LEVEL", "warn")
        .stdout(Stdio::null());
    c
}

/// Events received by a [`recorder`], summarised by its closure.
pub type Seen = Arc<Mutex<Vec<String>>>;

/// A consumer endpoint on loopback answering 204; each event body is summarised by `summary`
/// (skipped when it returns `None`). Returns the EndpointUri and what it saw.
pub async fn recorder(
    summary: impl Fn(&serde_json::Value) -> Option<String> + Clone + Send + Sync + 'static,
) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/event", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/event",
        axum::routing::post(move |body: Bytes| {
            let (s, summary) = (s.clone(), summary.clone());
            async move {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                if let Some(line) = summary(&v) {
                    s.lock().unwrap().push(line);
                }
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (endpoint, seen)
}

/// Whether the event is the initial-notification placeholder (no data yet).
pub fn is_placeholder(v: &serde_json::Value) -> bool {
    v["data"]["values"][0]["ResourceAddress"]
        .as_str()
        .unwrap_or("")
        .ends_with("ptp-not-set")
}

/// Subscribes `endpoint` to `resource` on the producer at 127.0.0.1:`port`, retrying while the
/// producer starts (at most `limit`).
pub async fn subscribe_when_up(port: u16, resource: &str, endpoint: &str, limit: Duration) {
    let client = http_client();
    let deadline = Instant::now() + limit;
    loop {
        let r = client
            .post(format!(
                "http://127.0.0.1:{port}/api/ocloudNotifications/v2/subscriptions"
            ))
            .body(format!(
                r#"{{"ResourceAddress":"{resource}","EndpointUri":"{endpoint}"}}"#
            ))
            .send()
            .await;
        if r.is_ok_and(|r| r.status() == 201) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the producer on port {port} never accepted the subscription"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A reqwest client (the SDK installs the TLS provider reqwest is built without).
pub fn http_client() -> reqwest::Client {
    ptp_events_client::install_crypto_provider();
    reqwest::Client::new()
}

/// A child process killed (and reaped) when dropped.
pub struct Kill(pub Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Writes an executable script.
pub fn write_exec(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Sends SIGTERM to `child` (as a container runtime stops it).
pub fn sigterm(child: &std::process::Child) {
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
}
