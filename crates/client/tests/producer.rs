//! The SDK against the real producer over HTTP on loopback.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use oran_api::{EventTime, Value};
use proxy::{DeliveryConfig, Producer, ProducerConfig};
use ptp_events_client::{
    Client, ConflictPolicy, Error, Event, Receiver, Resource, Subscriber, SyncState,
    ptp_resource_addresses, receiver, resource_address,
};
use tokio::sync::mpsc;

const NODE: &str = "node1";
const WAIT: Duration = Duration::from_secs(10);

async fn producer_at(store: &Path, addr: SocketAddr) -> Producer {
    Producer::start(ProducerConfig {
        node_name: NODE.into(),
        api_addr: addr,
        metrics_addr: None,
        store_path: store.to_path_buf(),
        uri_location_base: "http://localhost:9043".into(),
        delivery: DeliveryConfig::default(),
        max_body_bytes: proxy::api::DEFAULT_MAX_BODY,
    })
    .await
    .unwrap()
}

async fn producer(store: &Path) -> Producer {
    producer_at(store, "127.0.0.1:0".parse().unwrap()).await
}

fn client(p: &Producer) -> Client {
    Client::new(&p.api_addr.to_string()).unwrap()
}

async fn receiver() -> (Receiver, mpsc::Receiver<Event>) {
    let (handler, events) = receiver::channel(64);
    let r = Receiver::bind("127.0.0.1:0", handler).await.unwrap();
    (r, events)
}

async fn next(events: &mut mpsc::Receiver<Event>) -> Event {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("an event within the time limit")
        .expect("receiver open")
}

fn lock_values(state: &str, offset: i64) -> Vec<Value> {
    let ra = format!("/cluster/node/{NODE}/ens1fx/master");
    vec![
        Value::notification(ra.clone(), state),
        Value::metric(ra, offset),
    ]
}

#[tokio::test]
async fn subscribe_receive_initial_and_later_events_and_current_state() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(dir.path()).await;
    let c = client(&p);
    let (r, mut events) = receiver().await;
    let lock_state = resource_address(NODE, Resource::LockState);

    c.health().await.unwrap();
    // No data yet: CurrentState is 404, with the producer's explanation.
    let err = c.current_state(&lock_state).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(err.detail().is_some_and(|d| d.contains("no data")), "{err}");

    let sub = c.subscribe(&lock_state, &r.endpoint_uri()).await.unwrap();
    assert_eq!(sub.resource_address, lock_state);
    assert_eq!(sub.endpoint_uri, r.endpoint_uri());
    assert!(!sub.subscription_id.is_empty());
    // The initial notification arrived (a placeholder: no data yet).
    let initial = next(&mut events).await;
    assert_eq!(initial.resource(), Some(Resource::LockState));
    assert!(initial.is_placeholder());
    assert_eq!(initial.sync_state(), Some(SyncState::Freerun));

    p.hub.publish(
        Resource::LockState,
        lock_values("LOCKED", -5),
        EventTime::now(),
    );
    let e = next(&mut events).await;
    assert_eq!(e.sync_state(), Some(SyncState::Locked));
    assert_eq!(e.offset_ns(), Some(-5));
    assert!(!e.is_placeholder());
    assert!(e.latency() < chrono::TimeDelta::seconds(5));

    let now = c.current_state(&lock_state).await.unwrap();
    assert_eq!(now.resource(), Some(Resource::LockState));
    assert_eq!(
        (now.sync_state(), now.offset_ns()),
        (Some(SyncState::Locked), Some(-5))
    );
    // The whole node at once (this producer answers an array for a prefix).
    let all = c
        .current_states(&format!("/cluster/node/{NODE}/sync"))
        .await
        .unwrap();
    assert_eq!(all.len(), 1);

    let listed = c.subscriptions().await.unwrap();
    assert_eq!(listed, vec![sub.clone()]);
    assert_eq!(c.subscription(&sub.subscription_id).await.unwrap(), sub);

    c.unsubscribe(&sub.subscription_id).await.unwrap();
    let err = c.unsubscribe(&sub.subscription_id).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(
        c.subscription("no-such-id")
            .await
            .unwrap_err()
            .is_not_found()
    );
    c.unsubscribe_all().await.unwrap();
    assert!(c.subscriptions().await.unwrap().is_empty());
    p.stop().await;
}

#[tokio::test]
async fn status_codes_become_typed_errors_with_details() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(dir.path()).await;
    let c = client(&p);
    let (r, mut events) = receiver().await;
    let sync_state = resource_address(NODE, Resource::SyncState);

    c.subscribe(&sync_state, &r.endpoint_uri()).await.unwrap();
    next(&mut events).await;
    let err = c
        .subscribe(&sync_state, &r.endpoint_uri())
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(err.status(), Some(409));
    assert!(err.detail().is_some_and(|d| d.contains("already")), "{err}");

    let err = c
        .subscribe("/cluster/node/node1/sync/bogus", &r.endpoint_uri())
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");

    // Nothing listens there: the initial notification fails, 400.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/event", l.local_addr().unwrap())
    };
    let err = c.subscribe(&sync_state, &dead).await.unwrap_err();
    assert!(err.is_bad_request(), "{err}");
    assert!(
        err.detail()
            .is_some_and(|d| d.contains("initial notification")),
        "{err}"
    );
    assert!(err.to_string().contains("HTTP 400"), "{err}");
    p.stop().await;
}

#[tokio::test]
async fn conflict_is_recovered_by_replacing_our_own_subscription() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(dir.path()).await;
    let c = client(&p);
    let (r, mut events) = receiver().await;
    let (other, mut other_events) = receiver().await;
    let resources = ptp_resource_addresses(NODE);

    // Another consumer, and a subscription of ours we no longer know about.
    c.subscribe(&resources[0], &other.endpoint_uri())
        .await
        .unwrap();
    next(&mut other_events).await;
    let old = c.subscribe(&resources[2], &r.endpoint_uri()).await.unwrap();
    next(&mut events).await;

    let s = Subscriber::new(r.endpoint_uri()).resources(resources.clone());
    let out = s.subscribe(&c, &resources).await;
    assert!(out.failed.is_empty(), "{:?}", out.failed);
    assert_eq!(out.created.len(), 5);
    assert!(!out.deleted_all);
    for _ in 0..5 {
        next(&mut events).await;
    }
    let listed = c.subscriptions().await.unwrap();
    assert_eq!(listed.len(), 6, "ours (5) and the other consumer's");
    assert!(
        listed
            .iter()
            .all(|l| l.subscription_id != old.subscription_id)
    );
    assert!(
        listed
            .iter()
            .any(|l| l.endpoint_uri == other.endpoint_uri())
    );
    p.stop().await;
}

#[tokio::test]
async fn conflict_is_recovered_by_deleting_all_as_the_go_consumer() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(dir.path()).await;
    let c = client(&p);
    let (r, mut events) = receiver().await;
    let resources = ptp_resource_addresses(NODE);

    // Subscribe once, then run the consumer logic for the same endpoint again.
    for res in &resources {
        c.subscribe(res, &r.endpoint_uri()).await.unwrap();
        next(&mut events).await;
    }
    let s = Subscriber::new(r.endpoint_uri())
        .resources(resources.clone())
        .on_conflict(ConflictPolicy::DeleteAll);
    let out = s.subscribe(&c, &resources).await;
    assert!(out.failed.is_empty(), "{:?}", out.failed);
    assert!(out.deleted_all);
    assert_eq!(out.created.len(), 5);
    let listed = c.subscriptions().await.unwrap();
    assert_eq!(listed.len(), 5);
    let mut ids: Vec<_> = listed.iter().map(|l| l.subscription_id.clone()).collect();
    let mut created: Vec<_> = out
        .created
        .iter()
        .map(|l| l.subscription_id.clone())
        .collect();
    ids.sort();
    created.sort();
    assert_eq!(ids, created);
    p.stop().await;
}

#[tokio::test]
async fn subscriber_resubscribes_after_publisher_restart_with_wiped_store() {
    let first_store = tempfile::tempdir().unwrap();
    let p = producer(first_store.path()).await;
    let addr = p.api_addr;
    let (r, mut events) = receiver().await;
    let handle = Subscriber::new(r.endpoint_uri())
        .publisher(client(&p))
        .resources(ptp_resource_addresses(NODE))
        .check_interval(Duration::from_millis(200))
        .retry_interval(Duration::from_millis(100))
        .spawn();
    assert!(handle.wait_subscribed(WAIT).await, "{:?}", handle.status());
    for _ in 0..5 {
        next(&mut events).await;
    }
    assert_eq!(handle.status()[0].created, 5);

    // The publisher restarts on the same port with an empty store.
    p.stop().await;
    let second_store = tempfile::tempdir().unwrap();
    let p = producer_at(second_store.path(), addr).await;
    assert!(
        handle
            .wait_until(WAIT, |s| s[0].created >= 10 && s[0].is_subscribed())
            .await,
        "{:?}",
        handle.status()
    );
    assert_eq!(p.hub.list().len(), 5);
    // Drain the new initial notifications, then a live event arrives.
    for _ in 0..5 {
        next(&mut events).await;
    }
    p.hub.publish(
        Resource::LockState,
        lock_values("HOLDOVER", 7),
        EventTime::now(),
    );
    let e = next(&mut events).await;
    assert_eq!(e.sync_state(), Some(SyncState::Holdover));

    let status = handle.stop_and_unsubscribe().await;
    assert_eq!(status[0].subscriptions.len(), 5);
    assert!(p.hub.list().is_empty(), "our subscriptions were deleted");
    p.stop().await;
}

#[tokio::test]
async fn subscriber_uses_every_publisher() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (p1, p2) = (producer(d1.path()).await, producer(d2.path()).await);
    let (r, mut events) = receiver().await;
    let handle = Subscriber::new(r.endpoint_uri())
        .publisher(client(&p1))
        .publisher(client(&p2))
        .resource(resource_address(NODE, Resource::SyncState))
        .spawn();
    assert!(handle.wait_subscribed(WAIT).await, "{:?}", handle.status());
    assert_eq!(p1.hub.list().len(), 1);
    assert_eq!(p2.hub.list().len(), 1);
    next(&mut events).await;
    next(&mut events).await;
    p2.hub.publish(
        Resource::SyncState,
        vec![Value::notification(
            resource_address(NODE, Resource::SyncState),
            "LOCKED",
        )],
        EventTime::now(),
    );
    assert_eq!(
        next(&mut events).await.sync_state(),
        Some(SyncState::Locked)
    );
    handle.stop().await;
    p1.stop().await;
    p2.stop().await;
}

#[tokio::test]
async fn subscriber_waits_for_a_publisher_that_is_not_up_yet() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (r, mut events) = receiver().await;
    let handle = Subscriber::new(r.endpoint_uri())
        .publisher(Client::new(&addr.to_string()).unwrap())
        .resource(resource_address(NODE, Resource::LockState))
        .retry_interval(Duration::from_millis(100))
        .spawn();
    assert!(handle.wait_until(WAIT, |s| s[0].last_error.is_some()).await);
    assert!(!handle.status()[0].healthy);
    let dir = tempfile::tempdir().unwrap();
    let p = producer_at(dir.path(), addr).await;
    assert!(handle.wait_subscribed(WAIT).await, "{:?}", handle.status());
    next(&mut events).await;
    handle.stop().await;
    p.stop().await;
}

/// A stand-in for the Go producer: empty error bodies, `null` for no subscriptions.
async fn go_like_publisher() -> SocketAddr {
    use axum::http::StatusCode;
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/api/ocloudNotifications/v2/subscriptions",
        post(|| async { StatusCode::CONFLICT }).get(|| async {
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                "null",
            )
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn works_with_the_go_producers_empty_bodies_and_null_list() {
    let addr = go_like_publisher().await;
    let c = Client::new(&format!("http://{addr}")).unwrap();
    let err = c
        .subscribe("/cluster/node/n/sync", "http://x/event")
        .await
        .unwrap_err();
    assert!(err.is_conflict());
    assert_eq!(err.detail(), None);
    assert!(c.subscriptions().await.unwrap().is_empty());
    // Go's unknown routes: 404 with a text body, kept as the detail.
    let err = c.health().await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    // A Go 404 never says "no data yet": only is_not_found holds.
    assert!(!err.is_no_data_yet());
}

#[tokio::test]
async fn requests_time_out_and_refused_connections_are_unreachable() {
    // Accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (s, _) = silent.accept().await.unwrap();
            held.push(s);
        }
    });
    let started = std::time::Instant::now();
    let c = Client::builder(&silent_addr.to_string())
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = c.health().await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(err.is_unreachable());
    assert!(started.elapsed() < Duration::from_secs(5));

    // A port bound but not listening: refused, and no parallel test can take it meanwhile.
    let reserved = tokio::net::TcpSocket::new_v4().unwrap();
    reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let dead = reserved.local_addr().unwrap();
    let err: Error = Client::new(&dead.to_string())
        .unwrap()
        .health()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    assert!(err.is_unreachable());
}

/// "No data yet" (ask again later) is told apart from an address that will never answer: another
/// node's, an unknown resource, a malformed one, and any 404 of the Go producer (empty body).
#[tokio::test]
async fn no_data_yet_is_told_apart_from_a_wrong_node_or_address() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(dir.path()).await;
    let c = client(&p);
    let err = c
        .current_state(&resource_address(NODE, Resource::LockState))
        .await
        .unwrap_err();
    assert!(err.is_not_found() && err.is_no_data_yet(), "{err}");
    for address in [
        resource_address("another-node", Resource::LockState),
        format!("/cluster/node/{NODE}/sync/ptp-status/bogus"),
        "/not/an/address".to_owned(),
    ] {
        let err = c.current_state(&address).await.unwrap_err();
        assert!(err.is_not_found() && !err.is_no_data_yet(), "{err}");
    }
    assert_eq!(c.served_nodes().await.unwrap(), vec![NODE.to_owned()]);
    p.stop().await;
}

/// A killed application left its subscription; its next run subscribes the same endpoint again
/// and gets 409 from `subscribe`. `subscribe_replacing_own` replaces only that subscription:
/// the initial notification arrives again, another application's subscription stays.
#[tokio::test]
async fn a_rerun_after_a_kill_reclaims_its_own_subscription() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(dir.path()).await;
    let c = client(&p);
    let (r, mut events) = receiver().await;
    let (other, mut other_events) = receiver().await;
    let lock_state = resource_address(NODE, Resource::LockState);
    let theirs = c
        .subscribe(&lock_state, &other.endpoint_uri())
        .await
        .unwrap();
    next(&mut other_events).await;
    // The first run, then killed: its subscription stays.
    let left = c.subscribe(&lock_state, &r.endpoint_uri()).await.unwrap();
    next(&mut events).await;
    // The rerun.
    let err = c
        .subscribe(&lock_state, &r.endpoint_uri())
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    let again = c
        .subscribe_replacing_own(&lock_state, &r.endpoint_uri())
        .await
        .unwrap();
    assert_ne!(again.subscription_id, left.subscription_id);
    assert!(
        next(&mut events).await.is_placeholder(),
        "initial notification"
    );
    let mut ids: Vec<String> = c
        .subscriptions()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.subscription_id)
        .collect();
    ids.sort();
    let mut want = vec![theirs.subscription_id, again.subscription_id];
    want.sort();
    assert_eq!(ids, want);
    // Without a conflict it is a plain subscribe.
    let sync_state = resource_address(NODE, Resource::SyncState);
    c.subscribe_replacing_own(&sync_state, &r.endpoint_uri())
        .await
        .unwrap();
    p.stop().await;
}

/// A consumer with a wrong NODE_NAME: the publisher answers 404 to every subscription. The
/// subscriber backs off towards the check interval instead of asking every retry interval
/// forever.
#[tokio::test]
async fn a_refusing_publisher_is_asked_less_and_less_often() {
    use axum::http::StatusCode;
    use axum::routing::{get, post};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let posts = Arc::new(AtomicUsize::new(0));
    let counted = posts.clone();
    let app = axum::Router::new()
        .route("/api/ocloudNotifications/v2/health", get(|| async { "OK" }))
        .route(
            "/api/ocloudNotifications/v2/subscriptions",
            post(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async { StatusCode::NOT_FOUND }
            }),
        )
        .route(
            "/api/ocloudNotifications/v2/publishers",
            get(|| async {
                axum::Json(serde_json::json!([{
                    "ResourceAddress": "/cluster/node/real-node/sync/ptp-status/lock-state",
                    "EndpointUri": "http://localhost:9043/api/ocloudNotifications/v2/dummy",
                    "SubscriptionId": "x",
                    "UriLocation": "http://localhost:9043/api/ocloudNotifications/v2/publishers/x"
                }]))
            }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let c = Client::new(&addr.to_string()).unwrap();
    assert_eq!(
        c.served_nodes().await.unwrap(),
        vec!["real-node".to_owned()]
    );

    let handle = Subscriber::new("http://127.0.0.1:1/event")
        .publisher(c)
        .resource(resource_address("wrong-node", Resource::LockState))
        .retry_interval(Duration::from_millis(50))
        .check_interval(Duration::from_millis(400))
        .spawn();
    // Rounds at 0, 50, 150, 350, 750, 1150, 1550 ms ... (without the back-off: every 50 ms,
    // 30 in this window). A loaded machine only makes fewer.
    assert!(handle.wait_until(WAIT, |s| s[0].last_error.is_some()).await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let n = posts.load(Ordering::SeqCst);
    assert!((2..=10).contains(&n), "{n} subscription attempts in 1.5 s");
    assert!(handle.status()[0].healthy);
    handle.stop().await;
}
