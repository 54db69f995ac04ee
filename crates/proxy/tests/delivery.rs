//! Delivery: per-subscriber order, isolation from slow and dead consumers, failure budget,
//! bounded queues, and catching up with changes made during the initial notification.

mod common;

use std::time::Duration;

use common::*;
use oran_api::{EventTime, Resource};

fn offsets(events: &[oran_api::CloudEvent]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.source == Resource::LockState.source())
        .map(|e| e.data.values[1].value.clone())
        .collect()
}

#[tokio::test]
async fn every_subscriber_gets_every_event_in_order_with_one_id() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(dir.path()).await;
    let mut consumers = Vec::new();
    for _ in 0..5 {
        let c = Consumer::start(Behaviour::Ok).await;
        assert_eq!(subscribe(&p, &lock_state(), &c.url).await.status(), 201);
        consumers.push(c);
    }
    let mut ids = Vec::new();
    for i in 0..50 {
        ids.push(
            p.hub
                .publish(
                    Resource::LockState,
                    lock_values("LOCKED", i),
                    EventTime::now(),
                )
                .id
                .clone(),
        );
    }
    let want: Vec<String> = (0..50).map(|i| i.to_string()).collect();
    for c in &consumers {
        let events = c.wait_for(51, Duration::from_secs(10)).await;
        assert_eq!(offsets(&events[1..]), want);
        let got_ids: Vec<String> = events[1..].iter().map(|e| e.id.clone()).collect();
        assert_eq!(got_ids, ids, "the same event id for every subscriber");
    }
}

#[tokio::test]
async fn slow_and_dead_neighbours_do_not_delay_healthy_subscribers() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(dir.path()).await;
    let mut healthy = Vec::new();
    for _ in 0..8 {
        let c = Consumer::start(Behaviour::Ok).await;
        assert_eq!(subscribe(&p, &lock_state(), &c.url).await.status(), 201);
        healthy.push(c);
    }
    let slow = Consumer::start(Behaviour::Ok).await;
    assert_eq!(subscribe(&p, &lock_state(), &slow.url).await.status(), 201);
    *slow.behaviour.lock().unwrap() = Behaviour::Delay(Duration::from_millis(1500));
    // A dead endpoint: a dead URL is refused by the initial notification, so this one answers
    // it and then stops listening.
    let doomed = DoomedEndpoint::start().await;
    assert_eq!(
        subscribe(&p, &lock_state(), &doomed.url).await.status(),
        201
    );
    doomed.kill();

    const N: i64 = 20;
    for i in 0..N {
        p.hub.publish(
            Resource::LockState,
            lock_values("LOCKED", i),
            EventTime::now(),
        );
    }
    let want: Vec<String> = (0..N).map(|i| i.to_string()).collect();
    for c in &healthy {
        let events = c.wait_for(1 + N as usize, Duration::from_secs(10)).await;
        assert_eq!(offsets(&events[1..]), want, "every event, in order");
    }
    // Isolation: when every healthy subscriber has all N events, the slow one (1.5 s per event)
    // has finished at most one of them.
    assert!(
        slow.count() <= 2,
        "slow consumer got {} events",
        slow.count()
    );

    // The dead endpoint is removed after the failure budget (3 undeliverable events here), and
    // the removal is persisted and counted.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while p.hub.len() != 9 {
        assert!(
            std::time::Instant::now() < deadline,
            "dead endpoint not removed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(p.hub.list().iter().all(|s| s.endpoint_uri != doomed.url));
    let metrics = scrape(&p).await;
    assert!(
        metrics.contains("cne_delivery_endpoints_removed_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("cne_delivery_subscriptions_removed_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("cne_api_subscriptions{status=\"active\"} 9"),
        "{metrics}"
    );
    p.stop().await;
    let p = producer(dir.path()).await;
    assert_eq!(p.hub.len(), 9, "removal persisted");
}

#[tokio::test]
async fn a_hanging_consumer_is_isolated_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), fast_delivery());
    cfg.delivery.timeout = Duration::from_millis(200);
    let p = proxy::Producer::start(cfg).await.unwrap();
    let ok = Consumer::start(Behaviour::Ok).await;
    let hang = Consumer::start(Behaviour::Ok).await;
    assert_eq!(subscribe(&p, &lock_state(), &ok.url).await.status(), 201);
    assert_eq!(subscribe(&p, &lock_state(), &hang.url).await.status(), 201);
    *hang.behaviour.lock().unwrap() = Behaviour::Hang;
    for i in 0..5 {
        p.hub.publish(
            Resource::LockState,
            lock_values("LOCKED", i),
            EventTime::now(),
        );
    }
    let events = ok.wait_for(6, Duration::from_secs(5)).await;
    assert_eq!(offsets(&events[1..]), ["0", "1", "2", "3", "4"]);
    // Timeouts are transport failures: after 3 undeliverable events (each 3 attempts x 200 ms)
    // the hanging endpoint is removed.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while p.hub.len() != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "hanging endpoint not removed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(p.hub.list()[0].endpoint_uri, ok.url);
}

#[tokio::test]
async fn http_errors_are_not_transport_failures() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(dir.path()).await;
    let c = Consumer::start(Behaviour::Ok).await;
    assert_eq!(subscribe(&p, &lock_state(), &c.url).await.status(), 201);
    *c.behaviour.lock().unwrap() = Behaviour::Status(500);
    for i in 0..10 {
        p.hub.publish(
            Resource::LockState,
            lock_values("LOCKED", i),
            EventTime::now(),
        );
    }
    let events = c.wait_for(11, Duration::from_secs(5)).await;
    assert_eq!(events.len(), 11, "a 500 is not retried");
    assert_eq!(p.hub.len(), 1, "an endpoint that answers is alive");
}

#[tokio::test]
async fn a_full_queue_drops_the_oldest_and_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), fast_delivery());
    cfg.delivery.queue_capacity = 3;
    let p = proxy::Producer::start(cfg).await.unwrap();
    let c = Consumer::start(Behaviour::Ok).await;
    assert_eq!(subscribe(&p, &lock_state(), &c.url).await.status(), 201);
    *c.behaviour.lock().unwrap() = Behaviour::Delay(Duration::from_millis(300));
    // The first event goes in flight; the next 9 compete for 3 queue slots.
    p.hub.publish(
        Resource::LockState,
        lock_values("LOCKED", 0),
        EventTime::now(),
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    for i in 1..10 {
        p.hub.publish(
            Resource::LockState,
            lock_values("LOCKED", i),
            EventTime::now(),
        );
    }
    let events = c.wait_for(5, Duration::from_secs(5)).await;
    assert_eq!(offsets(&events[1..]), ["0", "7", "8", "9"]);
    let metrics = p.hub.metrics().render();
    assert!(
        metrics.contains("cne_delivery_dropped_total 6"),
        "{metrics}"
    );
}

#[tokio::test]
async fn changes_during_the_initial_notification_are_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(dir.path()).await;
    p.hub.publish(
        Resource::LockState,
        lock_values("LOCKED", 1),
        EventTime::now(),
    );
    let c = Consumer::start(Behaviour::Delay(Duration::from_millis(300))).await;
    let hub = p.hub.clone();
    let publisher = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        hub.publish(
            Resource::LockState,
            lock_values("HOLDOVER", 2),
            EventTime::now(),
        );
    });
    assert_eq!(subscribe(&p, &lock_state(), &c.url).await.status(), 201);
    publisher.await.unwrap();
    let events = c.wait_for(2, Duration::from_secs(5)).await;
    // Initial notification (state when it was sent) first, then the change made meanwhile.
    assert_eq!(events[0].data.values, lock_values("LOCKED", 1));
    assert_eq!(events[1].data.values, lock_values("HOLDOVER", 2));
}

#[tokio::test]
async fn hierarchy_routes_each_event_once_per_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(dir.path()).await;
    let all = Consumer::start(Behaviour::Ok).await;
    let ptp = Consumer::start(Behaviour::Ok).await;
    assert_eq!(
        subscribe(&p, "/cluster/node/node1/sync", &all.url)
            .await
            .status(),
        201
    );
    assert_eq!(subscribe(&p, &lock_state(), &all.url).await.status(), 201);
    assert_eq!(
        subscribe(&p, "/cluster/node/node1/sync/ptp-status", &ptp.url)
            .await
            .status(),
        201
    );
    let all0 = all.count();
    let ptp0 = ptp.count();
    p.hub.publish(
        Resource::LockState,
        lock_values("LOCKED", 1),
        EventTime::now(),
    );
    p.hub
        .publish(Resource::GnssSyncStatus, vec![], EventTime::now());
    p.hub.publish(Resource::SyncState, vec![], EventTime::now());
    let events = all.wait_for(all0 + 3, Duration::from_secs(5)).await;
    let sources: Vec<&str> = events[all0..].iter().map(|e| e.source.as_str()).collect();
    assert_eq!(
        sources,
        [
            "/sync/ptp-status/lock-state",
            "/sync/gnss-status/gnss-sync-status",
            "/sync/sync-status/sync-state"
        ]
    );
    let events = ptp.wait_for(ptp0 + 1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(ptp.count(), ptp0 + 1);
    assert_eq!(events[ptp0].source, "/sync/ptp-status/lock-state");
    assert_eq!(all.count(), all0 + 3);
    // Deleting the covering subscription keeps the narrower one live.
    let id = p
        .hub
        .list()
        .into_iter()
        .find(|s| s.endpoint_uri == all.url && s.resource_address.ends_with("/sync"))
        .unwrap()
        .subscription_id;
    p.hub.unsubscribe(&id).await.unwrap();
    p.hub
        .publish(Resource::GnssSyncStatus, vec![], EventTime::now());
    p.hub.publish(
        Resource::LockState,
        lock_values("LOCKED", 2),
        EventTime::now(),
    );
    let events = all.wait_for(all0 + 4, Duration::from_secs(5)).await;
    assert_eq!(events[all0 + 3].source, "/sync/ptp-status/lock-state");
}

/// An endpoint that answers the initial notification, then disappears (connection refused).
struct DoomedEndpoint {
    url: String,
    handle: tokio::task::JoinHandle<()>,
}

impl DoomedEndpoint {
    async fn start() -> DoomedEndpoint {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/event", listener.local_addr().unwrap());
        let app = axum::Router::new().route(
            "/event",
            axum::routing::post(|| async { axum::http::StatusCode::NO_CONTENT }),
        );
        let handle = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        DoomedEndpoint { url, handle }
    }

    fn kill(&self) {
        self.handle.abort();
    }
}

/// An endpoint that answers each request with `204` and `Connection: close`, then closes the
/// connection (as simple HTTP servers do). Returns its URL and a request counter.
async fn closing_endpoint() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/event", listener.local_addr().unwrap());
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            let c = c.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = conn.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(h) = text.find("\r\n\r\n") {
                        let len: usize = text[..h]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if buf.len() >= h + 4 + len {
                            break;
                        }
                    }
                }
                c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = conn
                    .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (url, count)
}

#[tokio::test]
async fn endpoints_that_close_after_each_answer_work() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(dir.path()).await;
    let (endpoint, count) = closing_endpoint().await;
    assert_eq!(subscribe(&p, &lock_state(), &endpoint).await.status(), 201);
    for i in 0..5 {
        p.hub.publish(
            Resource::LockState,
            lock_values("LOCKED", i),
            EventTime::now(),
        );
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while count.load(std::sync::atomic::Ordering::SeqCst) < 6 {
        assert!(std::time::Instant::now() < deadline, "got {count:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(p.hub.len(), 1);
    assert!(
        p.hub
            .metrics()
            .render()
            .contains("cne_delivery_retries_total 0")
    );
}

/// An endpoint that answers its first request (the initial notification) with 204, then resets
/// (TCP RST) every later connection as soon as the request arrives.
async fn resetting_endpoint() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/event", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut first = true;
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut chunk = [0u8; 8192];
            let _ = conn.read(&mut chunk).await;
            if first {
                first = false;
                let _ = conn
                    .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                    .await;
            } else {
                // SO_LINGER 0: closing sends RST instead of FIN.
                let _ = conn.set_zero_linger();
            }
            drop(conn);
        }
    });
    url
}

#[tokio::test]
async fn a_resetting_consumer_is_isolated_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(dir.path()).await;
    let ok = Consumer::start(Behaviour::Ok).await;
    assert_eq!(subscribe(&p, &lock_state(), &ok.url).await.status(), 201);
    let resetting = resetting_endpoint().await;
    assert_eq!(subscribe(&p, &lock_state(), &resetting).await.status(), 201);
    for i in 0..5 {
        p.hub.publish(
            Resource::LockState,
            lock_values("LOCKED", i),
            EventTime::now(),
        );
    }
    let events = ok.wait_for(6, Duration::from_secs(5)).await;
    assert_eq!(offsets(&events[1..]), ["0", "1", "2", "3", "4"]);
    // Resets are transport failures: retried, then the endpoint is removed after the budget (3).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while p.hub.len() != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "resetting endpoint not removed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(p.hub.list()[0].endpoint_uri, ok.url);
    let metrics = p.hub.metrics().render();
    assert!(
        metrics.contains("cne_delivery_endpoints_removed_total 1"),
        "{metrics}"
    );
}
