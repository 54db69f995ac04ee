//! The real binary is killed with SIGKILL while many clients create subscriptions; after a
//! restart every subscription that got a 201 is there, the store loads, and nothing is duplicated.

mod common;

use std::collections::HashSet;
use std::process::{Child, Stdio};

use common::{free_port, http_client, proxy_command};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn start(dir: &std::path::Path, port: u16) -> Child {
    proxy_command(dir, port)
        .arg("--transport-host")
        .arg(format!("http://localhost:{port}"))
        .arg("--socket")
        .arg("off")
        // 500 concurrent clients, all from 127.0.0.1.
        .args(["--max-connections-per-client", "1024"])
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run ptp-events")
}

async fn wait_healthy(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let url = format!("http://127.0.0.1:{port}/api/ocloudNotifications/v2/health");
    while Instant::now() < deadline {
        if let Ok(r) = http_client().get(&url).send().await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("producer on port {port} never became healthy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_concurrent_creations_loses_no_acknowledged_subscription() {
    let dir = tempfile::tempdir().unwrap();
    // One consumer server; every subscription gets its own endpoint path.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let consumer = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/event/{n}",
        axum::routing::post(|| async { axum::http::StatusCode::NO_CONTENT }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let port = free_port();
    let mut child = start(dir.path(), port);
    wait_healthy(port).await;

    const TOTAL: usize = 500;
    const KILL_AFTER: usize = 150;
    let created = Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let client = http_client();
    let sem = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::new();
    for i in 0..TOTAL {
        let (client, created, count, sem) =
            (client.clone(), created.clone(), count.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire().await.unwrap();
            let body = format!(
                r#"{{"ResourceAddress":"/cluster/node/node1/sync/ptp-status/lock-state","EndpointUri":"http://{consumer}/event/{i}"}}"#
            );
            let url = format!("http://127.0.0.1:{port}/api/ocloudNotifications/v2/subscriptions");
            if let Ok(resp) = client.post(url).body(body).send().await
                && resp.status() == 201
                && let Ok(text) = resp.text().await
            {
                // Only a complete 201 body counts as acknowledged.
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                created.lock().unwrap().push((
                    v["SubscriptionId"].as_str().unwrap().to_owned(),
                    v["EndpointUri"].as_str().unwrap().to_owned(),
                ));
                count.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while count.load(Ordering::SeqCst) < KILL_AFTER {
        assert!(Instant::now() < deadline, "creations too slow");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    let acknowledged = created.lock().unwrap().clone();
    assert!(acknowledged.len() >= KILL_AFTER);
    assert!(acknowledged.len() < TOTAL, "the kill happened mid-way");

    let mut child = start(dir.path(), port);
    wait_healthy(port).await;
    let list: Vec<serde_json::Value> = http_client()
        .get(format!(
            "http://127.0.0.1:{port}/api/ocloudNotifications/v2/subscriptions"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();

    let stored: HashSet<String> = list
        .iter()
        .map(|s| s["SubscriptionId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(stored.len(), list.len(), "no duplicate ids");
    let endpoints: HashSet<&str> = list
        .iter()
        .map(|s| s["EndpointUri"].as_str().unwrap())
        .collect();
    assert_eq!(
        endpoints.len(),
        list.len(),
        "no duplicate (endpoint, resource)"
    );
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|(id, _)| !stored.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged subscriptions lost: {lost:?}",
        lost.len()
    );
    eprintln!(
        "acknowledged before SIGKILL: {}, stored after restart: {}",
        acknowledged.len(),
        list.len()
    );
}
