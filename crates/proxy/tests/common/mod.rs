//! Test helpers: a real producer on loopback and real consumer endpoints.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::StatusCode;
use oran_api::CloudEvent;
use proxy::{DeliveryConfig, Producer, ProducerConfig};
use tokio::sync::Notify;

pub const NODE: &str = "node1";
pub const BASE: &str = "/api/ocloudNotifications/v2";

/// Whether the tests run as root (CI does).
pub fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// For a test that needs root: true when running as root; otherwise prints `SKIPPED <test>:
/// <why>` and returns false, or fails under CI (which runs as root, so the test must run there).
pub fn root_or_skip(test: &str, why: &str) -> bool {
    if is_root() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI runs as root; {test} must run there"
    );
    eprintln!("SKIPPED {test}: {why}");
    false
}

pub fn config(store: &std::path::Path, delivery: DeliveryConfig) -> ProducerConfig {
    ProducerConfig {
        node_name: NODE.into(),
        api_addr: "127.0.0.1:0".parse().unwrap(),
        metrics_addr: Some("127.0.0.1:0".parse().unwrap()),
        store_path: store.to_path_buf(),
        uri_location_base: "http://localhost:9043".into(),
        delivery,
        max_body_bytes: proxy::api::DEFAULT_MAX_BODY,
    }
}

/// Delivery settings that keep failure tests short.
pub fn fast_delivery() -> DeliveryConfig {
    DeliveryConfig {
        timeout: Duration::from_millis(2000),
        initial_timeout: Duration::from_millis(2000),
        retry_backoff: vec![Duration::from_millis(10), Duration::from_millis(20)],
        failure_budget: 3,
        queue_capacity: 1024,
        tls: None,
    }
}

pub async fn producer(store: &std::path::Path) -> Producer {
    Producer::start(config(store, fast_delivery()))
        .await
        .unwrap()
}

pub fn url(p: &Producer, path: &str) -> String {
    format!("http://{}{BASE}{path}", p.api_addr)
}

/// A reqwest builder (reqwest is built without a TLS provider of its own: ring is installed).
pub fn http() -> reqwest::ClientBuilder {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// A client whose connections come from the loopback address `from` (another client address
/// for the per-client limits).
pub fn client_from(from: &str) -> reqwest::Client {
    http()
        .local_address(from.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

pub fn client() -> reqwest::Client {
    http()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The producer's `/metrics` text.
pub async fn scrape(p: &Producer) -> String {
    client()
        .get(format!("http://{}/metrics", p.metrics_addr.unwrap()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// How a test consumer answers.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// 204 at once.
    Ok,
    /// This status at once.
    Status(u16),
    /// 204 after this delay.
    Delay(Duration),
    /// Never answers.
    Hang,
    /// 204 with `Connection: close`: every delivery needs a new connection.
    Close,
}

/// A consumer endpoint on loopback that records every event it receives.
#[derive(Clone)]
pub struct Consumer {
    pub addr: SocketAddr,
    pub url: String,
    pub received: Arc<Mutex<Vec<(Instant, CloudEvent)>>>,
    pub raw: Arc<Mutex<Vec<String>>>,
    pub behaviour: Arc<Mutex<Behaviour>>,
    notify: Arc<Notify>,
}

impl Consumer {
    pub async fn start(behaviour: Behaviour) -> Consumer {
        Consumer::start_on("127.0.0.1:0".parse().unwrap(), behaviour).await
    }

    /// On a given address (another loopback address, a given port).
    pub async fn start_on(addr: SocketAddr, behaviour: Behaviour) -> Consumer {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let c = Consumer {
            addr,
            url: format!("http://{addr}/event"),
            received: Arc::default(),
            raw: Arc::default(),
            behaviour: Arc::new(Mutex::new(behaviour)),
            notify: Arc::new(Notify::new()),
        };
        let state = c.clone();
        let app = axum::Router::new().route(
            "/event",
            axum::routing::post(move |body: Bytes| {
                let state = state.clone();
                async move {
                    let text = String::from_utf8_lossy(&body).into_owned();
                    let ev =
                        CloudEvent::from_json(&body).expect("producer sent a valid CloudEvent");
                    let behaviour = state.behaviour.lock().unwrap().clone();
                    match behaviour {
                        Behaviour::Hang => {
                            std::future::pending::<()>().await;
                        }
                        Behaviour::Delay(d) => tokio::time::sleep(d).await,
                        _ => {}
                    }
                    state.raw.lock().unwrap().push(text);
                    state.received.lock().unwrap().push((Instant::now(), ev));
                    state.notify.notify_waiters();
                    let status = match behaviour {
                        Behaviour::Status(s) => StatusCode::from_u16(s).unwrap(),
                        _ => StatusCode::NO_CONTENT,
                    };
                    let mut resp = axum::response::IntoResponse::into_response(status);
                    if matches!(behaviour, Behaviour::Close) {
                        resp.headers_mut().insert(
                            axum::http::header::CONNECTION,
                            axum::http::HeaderValue::from_static("close"),
                        );
                    }
                    resp
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        c
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    pub fn events(&self) -> Vec<CloudEvent> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// Waits until at least `n` events arrived (panics after `limit`: a hung test is a failure).
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<CloudEvent> {
        let deadline = Instant::now() + limit;
        loop {
            let notified = self.notify.notified();
            if self.count() >= n {
                return self.events();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "consumer {} got {} events, expected {n}",
                self.url,
                self.count()
            );
            let _ = tokio::time::timeout(left.min(Duration::from_millis(50)), notified).await;
        }
    }
}

/// A URL on loopback where nothing listens (connection refused).
pub async fn dead_endpoint() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}/event")
}

pub async fn subscribe(p: &Producer, resource: &str, endpoint: &str) -> reqwest::Response {
    client()
        .post(url(p, "/subscriptions"))
        .body(format!(
            r#"{{"ResourceAddress":"{resource}","EndpointUri":"{endpoint}"}}"#
        ))
        .send()
        .await
        .unwrap()
}

pub fn lock_state() -> String {
    format!("/cluster/node/{NODE}/sync/ptp-status/lock-state")
}

pub fn lock_values(state: &str, offset: i64) -> Vec<oran_api::Value> {
    let ra = format!("/cluster/node/{NODE}/ens1fx/master");
    vec![
        oran_api::Value::notification(ra.clone(), state),
        oran_api::Value::metric(ra, offset),
    ]
}

/// Asserts an RFC 7807 problem answer with this status, and returns its detail.
pub async fn assert_problem(resp: reqwest::Response, status: u16) -> String {
    assert_eq!(resp.status().as_u16(), status, "status");
    assert_eq!(
        resp.headers().get("content-type").unwrap(),
        "application/problem+json"
    );
    let path = resp.url().path().to_owned();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "about:blank");
    assert_eq!(body["status"], status);
    assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()));
    let _ = path;
    body["detail"].as_str().unwrap().to_owned()
}

/// `promtool check metrics` must parse the text; its lint may only flag the Go names we keep.
pub fn promtool_check(text: &str) {
    use std::io::Write;
    let Ok(mut child) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        if std::env::var_os("CI").is_some() {
            panic!("promtool is not installed (Debian package prometheus); .ci/run installs it");
        }
        eprintln!("SKIPPED promtool check: promtool not installed (apt-get install prometheus)");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for line in report.lines().filter(|l| !l.trim().is_empty()) {
        // Only the Go names we keep on purpose (DECISIONS.md): `_ns` units, a gauge named `_count`.
        let expected = line.starts_with("openshift_ptp_")
            && (line.contains("should not contain abbreviated units")
                || line.contains("should not have \"_count\" suffix"));
        assert!(expected, "promtool: {line}\nfull report:\n{report}");
    }
    // Exit code 3 means lint findings only; 1 would be a parse error.
    assert_ne!(
        out.status.code(),
        Some(1),
        "promtool could not parse:\n{report}"
    );
}
