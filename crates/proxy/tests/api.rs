//! Black-box tests of the REST API over real HTTP on loopback: every route of wire-api-v2.md §3
//! and every DECISIONS.md row about the API, with exact bytes for successful answers.

mod common;

use std::time::Duration;

use common::*;
use oran_api::{EventTime, Resource};

#[tokio::test]
async fn health_is_plain_ok() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(dir.path()).await;
    let resp = client().get(url(&p, "/health")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(resp.text().await.unwrap(), "OK");
}

#[tokio::test]
async fn empty_list_is_an_empty_array() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(dir.path()).await;
    let resp = client()
        .get(url(&p, "/subscriptions"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.text().await.unwrap(), "[]");
}

#[tokio::test]
async fn create_sends_initial_notification_then_201_with_go_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(dir.path()).await;
    let c = Consumer::start(Behaviour::Ok).await;
    let resp = subscribe(&p, &lock_state(), &c.url).await;
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let body = resp.text().await.unwrap();
    let info: oran_api::SubscriptionInfo = serde_json::from_str(&body).unwrap();
    let id = &info.subscription_id;
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
    let want_location =
        format!("http://localhost:9043/api/ocloudNotifications/v2/subscriptions/{id}");
    assert_eq!(
        body,
        format!(
            r#"{{"ResourceAddress":"/cluster/node/node1/sync/ptp-status/lock-state","EndpointUri":"{}","SubscriptionId":"{id}","UriLocation":"{want_location}"}}"#,
            c.url
        )
    );
    assert_eq!(location, want_location);

    // The initial notification arrived before the 201: the placeholder, as Go sends it.
    let events = c.events();
    assert_eq!(events.len(), 1);
    let raw = c.raw.lock().unwrap()[0].clone();
    let ev = &events[0];
    assert_eq!(
        raw,
        format!(
            r#"{{"specversion":"1.0","id":"{}","source":"/sync/ptp-status/lock-state","type":"event.sync.ptp-status.ptp-state-change","time":"{}","data":{{"version":"1.0","values":[{{"ResourceAddress":"/cluster/node/node1/ptp-not-set","data_type":"notification","value_type":"enumeration","value":"FREERUN"}},{{"ResourceAddress":"/cluster/node/node1/ptp-not-set","data_type":"metric","value_type":"decimal64.3","value":"0"}}]}}}}"#,
            ev.id, ev.time
        )
    );

    // GET by id: compact, same bytes.
    let got = client()
        .get(url(&p, &format!("/subscriptions/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "application/json");
    assert_eq!(got.text().await.unwrap(), body);

    // GET list: Go's one-space indentation.
    let list = client()
        .get(url(&p, "/subscriptions"))
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    assert_eq!(
        list.text().await.unwrap(),
        format!(
            "[\n {{\n  \"ResourceAddress\": \"/cluster/node/node1/sync/ptp-status/lock-state\",\n  \"EndpointUri\": \"{}\",\n  \"SubscriptionId\": \"{id}\",\n  \"UriLocation\": \"{want_location}\"\n }}\n]",
            c.url
        )
    );
}

#[tokio::test]
async fn initial_notification_carries_current_state_when_known() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(dir.path()).await;
    p.hub.publish(
        Resource::LockState,
        lock_values("LOCKED", -5),
        EventTime::now(),
    );
    let c = Consumer::start(Behaviour::Ok).await;
    assert_eq!(subscribe(&p, &lock_state(), &c.url).await.status(), 201);
    let ev = &c.events()[0];
    assert_eq!(ev.data.values, lock_values("LOCKED", -5));
}

#[tokio::test]
async fn duplicates_are_409_including_through_the_dot_alias() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(dir.path()).await;
    let c = Consumer::start(Behaviour::Ok).await;
    assert_eq!(subscribe(&p, &lock_state(), &c.url).await.status(), 201);
    let detail = assert_problem(subscribe(&p, &lock_state(), &c.url).await, 409).await;
    assert!(detail.contains("already subscribes"), "{detail}");
    assert_problem(
        subscribe(&p, "/cluster/node/./sync/ptp-status/lock-state", &c.url).await,
        409,
    )
    .await;
    // Same resource, other endpoint: fine. Same endpoint, other resource: fine.
    let c2 = Consumer::start(Behaviour::Ok).await;
    assert_eq!(subscribe(&p, &lock_state(), &c2.url).await.status(), 201);
    assert_eq!(
        subscribe(&p, "/cluster/node/node1/sync", &c.url)
            .await
            .status(),
        201
    );
    assert_eq!(p.hub.len(), 3);
    // Only one initial notification per successful creation (none for the 409s).
    assert_eq!(c.count(), 1 + Resource::ALL.len());
}

#[tokio::test]
async fn dot_alias_is_stored_with_the_node_name() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(dir.path()).await;
    let c = Consumer::start(Behaviour::Ok).await;
    let resp = subscribe(&p, "/cluster/node/./sync/sync-status/sync-state", &c.url).await;
    assert_eq!(resp.status(), 201);
    let info: oran_api::SubscriptionInfo = resp.json().await.unwrap();
    assert_eq!(
        info.resource_address,
        "/cluster/node/node1/sync/sync-status/sync-state"
    );
}

#[tokio::test]
async fn hierarchical_subscription_gets_every_initial_notification_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(dir.path()).await;
    let c = Consumer::start(Behaviour::Ok).await;
    assert_eq!(
        subscribe(&p, "/cluster/node/node1/sync", &c.url)
            .await
            .status(),
        201
    );
    let sources: Vec<String> = c.events().into_iter().map(|e| e.source).collect();
    let want: Vec<String> = Resource::ALL
        .iter()
        .map(|r| r.source().to_owned())
        .collect();
    assert_eq!(sources, want);
    // The clock-class placeholder says 248 (the default class), not Go's 0.
    let cc = c
        .events()
        .into_iter()
        .find(|e| e.source == "/sync/ptp-status/clock-class")
        .unwrap();
    assert_eq!(cc.data.values.len(), 1);
    assert_eq!(cc.data.values[0].value, "248");

    let c2 = Consumer::start(Behaviour::Ok).await;
    assert_eq!(
        subscribe(&p, "/cluster/node/node1/sync/ptp-status", &c2.url)
            .await
            .status(),
        201
    );
    let sources: Vec<String> = c2.events().into_iter().map(|e| e.source).collect();
    assert_eq!(
        sources,
        [
            "/sync/ptp-status/clock-class",
            "/sync/ptp-status/lock-state"
        ]
    );
}

#[tokio::test]
async fn delete_one_and_all() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(dir.path()).await;
    let c = Consumer::start(Behaviour::Ok).await;
    let info: oran_api::SubscriptionInfo = subscribe(&p, &lock_state(), &c.url)
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/subscriptions/{}", info.subscription_id);
    let resp = client().delete(url(&p, &path)).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(resp.text().await.unwrap(), "");
    assert_problem(client().delete(url(&p, &path)).send().await.unwrap(), 404).await;
    assert_problem(client().get(url(&p, &path)).send().await.unwrap(), 404).await;
    assert_problem(
        client()
            .get(url(&p, "/subscriptions/not-a-uuid"))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;

    // DELETE all: 204 with and without subscriptions.
    assert_eq!(subscribe(&p, &lock_state(), &c.url).await.status(), 201);
    assert_eq!(
        subscribe(&p, "/cluster/node/node1/sync", &c.url)
            .await
            .status(),
        201
    );
    let resp = client()
        .delete(url(&p, "/subscriptions"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert!(p.hub.is_empty());
    let resp = client()
        .delete(url(&p, "/subscriptions"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    // After delete-all the same subscription can be created again.
    assert_eq!(subscribe(&p, &lock_state(), &c.url).await.status(), 201);
}

#[tokio::test]
async fn current_state_without_subscription_and_404_without_data() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(dir.path()).await;
    let cs = |path: &str| client().get(url(&p, path)).send();
    let detail = assert_problem(
        cs("/cluster/node/node1/sync/ptp-status/lock-state/CurrentState")
            .await
            .unwrap(),
        404,
    )
    .await;
    assert!(detail.contains("no data yet"), "{detail}");

    p.hub.publish(
        Resource::LockState,
        lock_values("LOCKED", -5),
        EventTime::now(),
    );
    let resp = cs("/cluster/node/node1/sync/ptp-status/lock-state/CurrentState")
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body = resp.text().await.unwrap();
    let ev = oran_api::CloudEvent::from_json(body.as_bytes()).unwrap();
    assert_eq!(
        body,
        format!(
            r#"{{"specversion":"1.0","id":"{}","source":"/sync/ptp-status/lock-state","type":"event.sync.ptp-status.ptp-state-change","time":"{}","data":{{"version":"1.0","values":[{{"ResourceAddress":"/cluster/node/node1/ens1fx/master","data_type":"notification","value_type":"enumeration","value":"LOCKED"}},{{"ResourceAddress":"/cluster/node/node1/ens1fx/master","data_type":"metric","value_type":"decimal64.3","value":"-5"}}]}}}}"#,
            ev.id, ev.time
        )
    );

    // `.` alias (sent raw: URL libraries drop `/./`), and a double slash served without a
    // redirect.
    assert_eq!(
        raw_status(
            p.api_addr,
            &format!("{BASE}/cluster/node/./sync/ptp-status/lock-state/CurrentState")
        )
        .await,
        200
    );
    assert_eq!(
        cs("//cluster/node/node1/sync/ptp-status/lock-state/CurrentState")
            .await
            .unwrap()
            .status(),
        200
    );
    // A prefix answers an array of the covered resources that have data.
    let resp = cs("/cluster/node/node1/sync/CurrentState").await.unwrap();
    assert_eq!(resp.status(), 200);
    let arr: Vec<oran_api::CloudEvent> = resp.json().await.unwrap();
    assert_eq!(arr.len(), 1);
    assert_eq!(arr[0].source, "/sync/ptp-status/lock-state");
    // Other node, unknown resource, empty address.
    assert_problem(
        cs("/cluster/node/node2/sync/ptp-status/lock-state/CurrentState")
            .await
            .unwrap(),
        404,
    )
    .await;
    assert_problem(
        cs("/cluster/node/node1/sync/bogus/CurrentState")
            .await
            .unwrap(),
        404,
    )
    .await;
    assert_problem(cs("/CurrentState").await.unwrap(), 404).await;
    assert_problem(
        cs("/cluster/node/node1/sync/ptp-status/lock-state/currentstate")
            .await
            .unwrap(),
        404,
    )
    .await;
}

#[tokio::test]
async fn publishers_and_dummy() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(dir.path()).await;
    let resp = client().get(url(&p, "/publishers")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let text = resp.text().await.unwrap();
    assert!(text.starts_with("[\n {\n  \"ResourceAddress\": \"/cluster/node/node1/sync/sync-status/sync-state\",\n  \"EndpointUri\": \"http://localhost:"), "{text}");
    let list: Vec<oran_api::SubscriptionInfo> = serde_json::from_str(&text).unwrap();
    assert_eq!(list.len(), 7);
    for (info, r) in list.iter().zip(Resource::ALL) {
        assert_eq!(info.resource_address, r.address(NODE));
        assert!(info.missing_field().is_none());
        assert!(
            info.endpoint_uri
                .ends_with("/api/ocloudNotifications/v2/dummy")
        );
        assert!(info.uri_location.ends_with(&info.subscription_id));
    }
    // Publisher ids are stable across restarts (derived from the address).
    let again: Vec<oran_api::SubscriptionInfo> = client()
        .get(url(&p, "/publishers"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again, list);

    let resp = client().post(url(&p, "/dummy")).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(resp.headers()["content-type"], "application/json");
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(dir.path()).await;
    let c = client();
    for path in [
        "",
        "/",
        "/subscriptions/",
        "/health/",
        "/nope",
        "/subscriptions/a/b",
    ] {
        let resp = c.get(url(&p, path)).send().await.unwrap();
        assert_problem(resp, 404).await;
    }
    let resp = c
        .get(format!("http://{}/metrics", p.api_addr))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 404).await;
    for (method, path) in [
        ("POST", "/health"),
        ("PUT", "/subscriptions/abc"),
        ("PATCH", "/subscriptions"),
        ("OPTIONS", "/subscriptions"),
        ("POST", "/publishers"),
        ("DELETE", "/publishers"),
        ("POST", "/create/event"),
        ("POST", "/log"),
        ("PUT", "/subscriptions/status/abc"),
        ("HEAD", "/health"),
        ("HEAD", "/subscriptions"),
    ] {
        let resp = c
            .request(method.parse().unwrap(), url(&p, path))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 405, "{method} {path}");
        let allow = resp
            .headers()
            .get("allow")
            .unwrap_or_else(|| panic!("{method} {path}: Allow header"))
            .to_str()
            .unwrap()
            .to_owned();
        // Only methods that work there: never HEAD, which this API refuses (RFC 9110).
        assert!(!allow.contains("HEAD"), "{method} {path}: Allow {allow}");
        if path == "/subscriptions" {
            let mut m: Vec<&str> = allow.split(',').map(str::trim).collect();
            m.sort();
            assert_eq!(m, ["DELETE", "GET", "POST"], "{method} {path}");
        }
        if method != "HEAD" {
            assert_problem(resp, 405).await;
        }
    }
}

#[tokio::test]
async fn bad_input_is_a_clear_4xx_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(dir.path()).await;
    let good = Consumer::start(Behaviour::Ok).await;
    let post = |body: String| client().post(url(&p, "/subscriptions")).body(body).send();
    let ra = lock_state();
    let cases: Vec<(String, u16, &str)> = vec![
        (String::new(), 400, "empty body"),
        ("{bad json".into(), 400, "malformed"),
        ("[]".into(), 400, "JSON object"),
        ("null".into(), 400, "JSON object"),
        (
            format!(r#"{{"ResourceAddress":"{ra}"}}"#),
            400,
            "EndpointUri",
        ),
        (
            format!(r#"{{"EndpointUri":"{}"}}"#, good.url),
            400,
            "ResourceAddress",
        ),
        (
            format!(
                r#"{{"endpointUri":"{}","resourceAddress":"{ra}"}}"#,
                good.url
            ),
            400,
            "EndpointUri",
        ),
        (
            format!(r#"{{"EndpointUri":5,"ResourceAddress":"{ra}"}}"#),
            400,
            "malformed",
        ),
        (
            format!(
                r#"{{"EndpointUri":"{}","ResourceAddress":["x"]}}"#,
                good.url
            ),
            400,
            "malformed",
        ),
        (
            format!(r#"{{"EndpointUri":"ftp://127.0.0.1/x","ResourceAddress":"{ra}"}}"#),
            400,
            "scheme",
        ),
        (
            format!(r#"{{"EndpointUri":"not a url","ResourceAddress":"{ra}"}}"#),
            400,
            "not a valid URL",
        ),
        (
            format!(
                r#"{{"EndpointUri":"{}","ResourceAddress":"/cluster/node/node1/sync/bogus"}}"#,
                good.url
            ),
            404,
            "no such resource",
        ),
        (
            format!(
                r#"{{"EndpointUri":"{}","ResourceAddress":"/cluster/node/node1/sync/synce-status/lock-state-extended"}}"#,
                good.url
            ),
            404,
            "no such resource",
        ),
        (
            format!(
                r#"{{"EndpointUri":"{}","ResourceAddress":"/cluster/node/other/sync"}}"#,
                good.url
            ),
            404,
            "names node",
        ),
        (
            format!(
                r#"{{"EndpointUri":"{}","ResourceAddress":"sync"}}"#,
                good.url
            ),
            404,
            "not of the form",
        ),
    ];
    for (body, status, needle) in cases {
        let detail = assert_problem(post(body.clone()).await.unwrap(), status).await;
        assert!(
            detail.contains(needle),
            "{body:?}: {detail:?} lacks {needle:?}"
        );
    }
    // A huge body.
    let huge = format!(
        r#"{{"EndpointUri":"{}","ResourceAddress":"{ra}","pad":"{}"}}"#,
        good.url,
        "x".repeat(1 << 20)
    );
    assert_problem(post(huge).await.unwrap(), 413).await;
    assert_eq!(
        good.count(),
        0,
        "no initial notification for a refused request"
    );
    assert!(p.hub.is_empty());
    // The server is fine and the store is empty after a restart.
    assert_eq!(
        client()
            .get(url(&p, "/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    p.stop().await;
    let p = producer(dir.path()).await;
    assert!(p.hub.is_empty());
}

#[tokio::test]
async fn failed_initial_notification_is_400_and_no_subscription() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), fast_delivery());
    cfg.delivery.initial_timeout = Duration::from_millis(300);
    let p = proxy::Producer::start(cfg).await.unwrap();
    let refused = dead_endpoint().await;
    let detail = assert_problem(subscribe(&p, &lock_state(), &refused).await, 400).await;
    assert!(detail.contains("initial notification"), "{detail}");
    for (behaviour, needle) in [
        (Behaviour::Status(200), "HTTP 200"),
        (Behaviour::Status(500), "HTTP 500"),
        (Behaviour::Hang, "timed out"),
    ] {
        let c = Consumer::start(behaviour).await;
        let detail = assert_problem(subscribe(&p, &lock_state(), &c.url).await, 400).await;
        assert!(detail.contains(needle), "{detail}");
    }
    assert!(p.hub.is_empty());
    let metrics = scrape(&p).await;
    assert!(
        metrics.contains("cne_api_subscriptions{status=\"failed to create\"} 4"),
        "{metrics}"
    );
    // A consumer that recovers can subscribe.
    let c = Consumer::start(Behaviour::Status(500)).await;
    assert_eq!(subscribe(&p, &lock_state(), &c.url).await.status(), 400);
    *c.behaviour.lock().unwrap() = Behaviour::Ok;
    assert_eq!(subscribe(&p, &lock_state(), &c.url).await.status(), 201);
}

#[tokio::test]
async fn h2c_and_http1_on_one_port() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(dir.path()).await;
    let h2 = http().http2_prior_knowledge().build().unwrap();
    let resp = h2.get(url(&p, "/health")).send().await.unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.text().await.unwrap(), "OK");
    let c = Consumer::start(Behaviour::Ok).await;
    let resp = h2
        .post(url(&p, "/subscriptions"))
        .body(format!(
            r#"{{"ResourceAddress":"{}","EndpointUri":"{}"}}"#,
            lock_state(),
            c.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let resp = client()
        .get(url(&p, "/subscriptions"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_11);
}

#[tokio::test]
async fn subscriptions_survive_a_restart_with_their_ids() {
    let dir = tempfile::tempdir().unwrap();
    let c = Consumer::start(Behaviour::Ok).await;
    let p = producer(dir.path()).await;
    let a: oran_api::SubscriptionInfo = subscribe(&p, &lock_state(), &c.url)
        .await
        .json()
        .await
        .unwrap();
    let b: oran_api::SubscriptionInfo = subscribe(&p, "/cluster/node/./sync", &c.url)
        .await
        .json()
        .await
        .unwrap();
    p.stop().await;
    let p = producer(dir.path()).await;
    let list = p.hub.list();
    assert_eq!(list.len(), 2);
    assert!(list.contains(&a) && list.contains(&b));
    // Still live: a published event reaches the endpoint once (two subscriptions cover it).
    let before = c.count();
    p.hub.publish(
        Resource::LockState,
        lock_values("LOCKED", 1),
        EventTime::now(),
    );
    c.wait_for(before + 1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        c.count(),
        before + 1,
        "one delivery per endpoint, not per subscription"
    );
    // No re-notification on restart.
    assert_eq!(c.events()[before].data.values, lock_values("LOCKED", 1));
}

#[tokio::test]
async fn metrics_have_the_go_names_and_parse() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer(dir.path()).await;
    let c = Consumer::start(Behaviour::Ok).await;
    assert_eq!(subscribe(&p, &lock_state(), &c.url).await.status(), 201);
    p.hub.publish(
        Resource::LockState,
        lock_values("LOCKED", -5),
        EventTime::now(),
    );
    p.hub.publish(Resource::SyncState, vec![], EventTime::now());
    c.wait_for(2, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let resp = client()
        .get(format!("http://{}/metrics", p.metrics_addr.unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    for line in [
        "cne_api_subscriptions{status=\"active\"} 1",
        "cne_api_publishers{status=\"active\"} 7",
        "cne_api_events_published{address=\"/sync/ptp-status/lock-state\",status=\"success\"} 1",
        "cne_events_received{status=\"success\",type=\"/cluster/node/node1/sync/ptp-status/lock-state\"} 1",
        "cne_events_received{status=\"no_subscriber\",type=\"/cluster/node/node1/sync/sync-status/sync-state\"} 1",
        "cne_delivery_latency_seconds_count 1",
        // Documented counters exist from the start (rate() and absent() work).
        "cne_api_connections_refused_total{reason=\"total\"} 0",
        "cne_api_connections_refused_total{reason=\"per_client\"} 0",
        "cne_metrics_connections_refused_total{reason=\"evicted\"} 0",
        "cne_delivery_dropped_total 0",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    // An event nobody subscribed to is not a failure (the Go producer counts it as one).
    assert!(
        text.contains(
            "cne_events_received{status=\"failed\",type=\"/cluster/node/node1/sync/sync-status/sync-state\"} 0"
        ),
        "{text}"
    );
    // Every resource's delivery counters exist from the start, at 0.
    for status in ["success", "failed", "no_subscriber"] {
        let line = format!(
            "cne_events_received{{status=\"{status}\",type=\"/cluster/node/node1/sync/synce-status/clock-quality\"}} 0"
        );
        assert!(text.contains(&line), "missing {line:?} in\n{text}");
    }
    assert!(text.contains(
        "cne_api_events_published{address=\"/sync/gnss-status/gnss-sync-status\",status=\"success\"} 0"
    ));
    assert!(text.contains(&format!(
        "cne_delivery_queue_depth{{endpoint=\"{}\"}} 0",
        c.url
    )));
    promtool_check(&text);
}

/// The status code of a GET sent byte for byte (no URL normalisation by a client library).
async fn raw_status(addr: std::net::SocketAddr, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out.split(' ').nth(1).unwrap().parse().unwrap()
}
