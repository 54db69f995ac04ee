//! The OpenAPI document (`crates/proxy/openapi.json`, served at `/openapi.json`) agrees with the
//! server: every documented (method, path, status) is produced over real HTTP by a request that
//! should produce it, with the documented content type; nothing undocumented is served; and a
//! schemathesis run (property-based, bounded) finds no 5xx and no answer outside the schema.

mod common;
#[path = "common/kube.rs"]
mod kube;
#[path = "common/pki.rs"]
mod pki;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;
use oran_api::{EventTime, Resource};
use proxy::{ApiPolicy, Producer};
use serde_json::Value as Json;

fn doc() -> Json {
    serde_json::from_str(proxy::api::OPENAPI_JSON).expect("openapi.json is JSON")
}

/// Every (method, path template, status) the document lists, with the response's content type.
fn documented(doc: &Json) -> BTreeMap<(String, String, u16), Option<String>> {
    let mut out = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            for (status, resp) in op["responses"].as_object().unwrap() {
                let resp = match resp.get("$ref").and_then(Json::as_str) {
                    Some(r) => &doc["components"]["responses"][r.rsplit('/').next().unwrap()],
                    None => resp,
                };
                // The body's media type, or a Content-Type documented as a header of a
                // body-less answer.
                let ctype = resp
                    .get("content")
                    .and_then(|c| c.as_object())
                    .and_then(|c| c.keys().next().cloned())
                    .or_else(|| {
                        resp["headers"]["Content-Type"]["schema"]["enum"][0]
                            .as_str()
                            .map(str::to_owned)
                    });
                out.insert(
                    (method.to_uppercase(), path.clone(), status.parse().unwrap()),
                    ctype,
                );
            }
        }
    }
    out
}

fn publish_all(p: &Producer) {
    for r in Resource::ALL {
        p.hub
            .publish(r, lock_values("LOCKED", -5), EventTime::now());
    }
}

async fn send(
    method: &str,
    url: &str,
    body: Option<String>,
    token: Option<&str>,
) -> reqwest::Response {
    let mut rb = client().request(method.parse().unwrap(), url);
    if let Some(b) = body {
        rb = rb.body(b);
    }
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    rb.send().await.unwrap()
}

#[tokio::test]
async fn every_documented_answer_is_produced_and_nothing_else_is_served() {
    let doc = doc();
    let want = documented(&doc);
    let dir = tempfile::tempdir().unwrap();
    let p = producer(dir.path()).await;
    let c = Consumer::start(Behaviour::Ok).await;
    let bad = Consumer::start(Behaviour::Status(500)).await;
    // A producer with a limit of one subscription, and one with authentication.
    let dir2 = tempfile::tempdir().unwrap();
    let limited = Producer::start_with(
        config(dir2.path(), fast_delivery()),
        ApiPolicy {
            max_subscriptions: 1,
            ..ApiPolicy::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        subscribe(&limited, &lock_state(), &c.url).await.status(),
        201
    );
    let dir3 = tempfile::tempdir().unwrap();
    let tokens = dir3.path().join("tokens");
    std::fs::write(&tokens, "secret\n").unwrap();
    let authed = Producer::start_with(
        config(&dir3.path().join("store"), fast_delivery()),
        ApiPolicy {
            auth_token_file: Some(tokens),
            ..ApiPolicy::default()
        },
    )
    .await
    .unwrap();
    // One with TokenReview admitting only namespace vdu (403 for others), and one whose API
    // server is gone (503).
    let kube_ca = pki::ca("kube CA");
    let api = kube::api_server(&kube_ca, "producer-sa-token").await;
    let s = kube::setup(&kube_ca, "producer-sa-token");
    let mut review = kube::review_config(&s, &api.url());
    review.allow_groups = vec!["system:serviceaccounts:vdu".into()];
    let reviewed = Producer::start_with(
        config(&s.dir.path().join("store"), fast_delivery()),
        ApiPolicy {
            token_review: Some(review),
            ..ApiPolicy::default()
        },
    )
    .await
    .unwrap();
    let dead_api = format!("https://127.0.0.1:{}", {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    });
    let unavailable = Producer::start_with(
        config(&s.dir.path().join("store2"), fast_delivery()),
        ApiPolicy {
            token_review: Some(kube::review_config(&s, &dead_api)),
            ..ApiPolicy::default()
        },
    )
    .await
    .unwrap();

    // And one whose clients may cause a single review: used up at once, then every new token
    // is 429.
    let mut budget = kube::review_config(&s, &api.url());
    budget.reviews_per_client = 1;
    budget.review_window = Duration::from_secs(3600);
    let limiting = Producer::start_with(
        config(&s.dir.path().join("store3"), fast_delivery()),
        ApiPolicy {
            token_review: Some(budget),
            ..ApiPolicy::default()
        },
    )
    .await
    .unwrap();
    let first = send(
        "GET",
        &url(&limiting, "/subscriptions"),
        None,
        Some("first-token"),
    )
    .await;
    assert_eq!(first.status(), 401);
    let mut new_tokens = 0..;

    let mut checked = BTreeSet::new();
    let mut failures = Vec::new();
    for ((method, path, status), ctype) in &want {
        let rel = path.strip_prefix(BASE).unwrap();
        let concrete =
            |node: &str, id: &str| rel.replace("{node}", node).replace("{subscriptionId}", id);
        let sub_body =
            |ra: &str, ep: &str| format!(r#"{{"ResourceAddress":"{ra}","EndpointUri":"{ep}"}}"#);
        let target = match *status {
            401 => &authed,
            403 => &reviewed,
            429 => &limiting,
            _ => &unavailable,
        };
        let (producer, req_path, body): (&Producer, String, Option<String>) =
            match (method.as_str(), rel, *status) {
                ("POST", "/subscriptions", 201) => {
                    let ra = format!("/cluster/node/{NODE}/sync/sync-status/sync-state");
                    (&p, concrete("", ""), Some(sub_body(&ra, &c.url)))
                }
                ("POST", "/subscriptions", 400) => (&p, rel.into(), Some("{}".into())),
                ("POST", "/subscriptions", 403) => {
                    let ra = format!("/cluster/node/{NODE}/sync");
                    (&limited, rel.into(), Some(sub_body(&ra, &c.url)))
                }
                ("POST", "/subscriptions", 404) => (
                    &p,
                    rel.into(),
                    Some(sub_body("/cluster/node/other/sync", &c.url)),
                ),
                ("POST", "/subscriptions", 409) => {
                    let ra = lock_state();
                    assert_eq!(subscribe(&p, &ra, &c.url).await.status(), 201);
                    (&p, rel.into(), Some(sub_body(&ra, &c.url)))
                }
                ("POST", _, 413) => (
                    &p,
                    rel.into(),
                    Some("x".repeat(proxy::api::DEFAULT_MAX_BODY + 1)),
                ),
                ("DELETE", "/subscriptions", 204) => {
                    // Checked last (below), so that the other cases keep their subscriptions.
                    continue;
                }
                (_, "/subscriptions/{subscriptionId}", 200 | 204) => {
                    let ra = format!("/cluster/node/{NODE}/sync/ptp-status/clock-class");
                    let ep = format!("{}?{method}", c.url);
                    let resp = subscribe(&p, &ra, &ep).await;
                    assert_eq!(resp.status(), 201);
                    let info: Json = resp.json().await.unwrap();
                    let id = info["SubscriptionId"].as_str().unwrap().to_owned();
                    (&p, concrete("", &id), None)
                }
                (_, "/subscriptions/{subscriptionId}", 404) => {
                    (&p, concrete("", "no-such-id"), None)
                }
                ("GET", _, 200) if rel.contains("{node}") => {
                    publish_all(&p);
                    (&p, concrete(NODE, ""), None)
                }
                ("GET", _, 404) if rel.contains("{node}") => (&p, concrete("other", ""), None),
                (_, _, 401 | 403 | 429 | 503) => (target, concrete(NODE, "x"), None),
                ("POST", "/dummy", 204) => (&p, rel.into(), Some("{}".into())),
                (_, _, 200 | 204) => (&p, rel.into(), None),
                (_, _, 500) => {
                    // A store that cannot be written: produced on a full tmpfs by tests/faults.rs.
                    continue;
                }
                other => panic!("no request known to produce {other:?}: add one to this test"),
            };
        let _ = bad.url.len();
        // 403 and 503 come from TokenReview: a token of another namespace, and any token while
        // the API server is gone.
        // 429: a token not seen before, from a client whose budget is used up.
        let new_token = format!("new-token-{}", new_tokens.next().unwrap());
        let token = match *status {
            403 | 503 => Some("other-app-token"),
            429 => Some(new_token.as_str()),
            _ => None,
        };
        let resp = send(method, &url(producer, &req_path), body, token).await;
        let got = resp.status().as_u16();
        let got_ctype = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        if got != *status {
            failures.push(format!("{method} {req_path}: expected {status}, got {got}"));
        } else if got_ctype != *ctype {
            failures.push(format!(
                "{method} {req_path} {status}: content type {got_ctype:?}, documented {ctype:?}"
            ));
        }
        if *status == 401 {
            assert!(resp.headers().contains_key("www-authenticate"));
        }
        if *status == 503 {
            assert_eq!(resp.headers()["retry-after"], "1");
        }
        if *status == 429 {
            assert!(resp.headers().contains_key("retry-after"));
        }
        checked.insert((method.clone(), path.clone(), *status));
    }
    // DELETE /subscriptions: 204.
    let resp = send("DELETE", &url(&p, "/subscriptions"), None, None).await;
    assert_eq!(resp.status(), 204);
    checked.insert(("DELETE".into(), format!("{BASE}/subscriptions"), 204));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let missing: Vec<_> = want
        .keys()
        .filter(|k| !checked.contains(*k) && k.2 != 500)
        .collect();
    assert!(
        missing.is_empty(),
        "documented but not checked: {missing:?}"
    );

    // Nothing undocumented is served: every other method on a documented path is 405, and
    // routes the Go producer has but this one does not are 404/405.
    let methods = ["GET", "POST", "PUT", "DELETE", "PATCH"];
    for (path, item) in doc["paths"].as_object().unwrap() {
        let rel = path
            .strip_prefix(BASE)
            .unwrap()
            .replace("{node}", NODE)
            .replace("{subscriptionId}", "x");
        for m in methods {
            if item.get(m.to_lowercase()).is_none() {
                let resp = send(m, &url(&p, &rel), None, None).await;
                assert_eq!(resp.status(), 405, "{m} {rel} is not documented");
            }
        }
    }
    for (m, path) in [
        ("POST", "/create/event"),
        ("POST", "/log"),
        ("PUT", "/subscriptions/status/x"),
        ("GET", "/"),
        ("GET", "/cluster/node/node1/mock/CurrentState"),
        ("GET", "/metrics"),
    ] {
        let s = send(m, &url(&p, path), None, None).await.status().as_u16();
        assert!(s == 404 || s == 405, "{m} {path} answered {s}");
    }
    // The served document is this one, and it is served without authentication.
    let served: Json = send("GET", &url(&authed, "/openapi.json"), None, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(served, doc);
    limited.stop().await;
    authed.stop().await;
    reviewed.stop().await;
    unavailable.stop().await;
    api.task.abort();
    p.stop().await;
}

/// Where the schemathesis CLI is: `$SCHEMATHESIS`, else `schemathesis` on the PATH.
fn schemathesis() -> Option<String> {
    let cmd = std::env::var("SCHEMATHESIS").unwrap_or_else(|_| "schemathesis".into());
    let ok = std::process::Command::new(&cmd)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(cmd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_5xx_and_no_answer_outside_the_schema() {
    let Some(cmd) = schemathesis() else {
        if std::env::var_os("CI").is_some() {
            panic!("schemathesis is not installed (pip install schemathesis); .ci/run installs it");
        }
        eprintln!(
            "SKIPPED schemathesis run: schemathesis not installed (pip install schemathesis)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let p = producer(dir.path()).await;
    publish_all(&p);
    // The document's examples use the dummy route on port 9043; point them at this producer.
    let text = proxy::api::OPENAPI_JSON.replace("127.0.0.1:9043", &p.api_addr.to_string());
    let schema = dir.path().join("openapi.json");
    std::fs::write(&schema, text).unwrap();
    let base = format!("http://{}", p.api_addr);
    let started = std::time::Instant::now();
    let out = tokio::process::Command::new(&cmd)
        .args(["run", schema.to_str().unwrap(), "--url", &base])
        // Every check but `positive_data_acceptance`: a schema-valid body can still be 400
        // (documented) because its EndpointUri must answer the initial notification with 204,
        // which no schema can express.
        .args([
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
        ])
        .args(["--max-examples", "100", "--workers", "1"])
        .args(["--max-response-time", "5", "--seed", "1"])
        .env("NO_COLOR", "1")
        // schemathesis keeps a `.schemathesis/` cache in its working directory.
        .current_dir(dir.path())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(180), out)
        .await
        .expect("schemathesis finished within 3 minutes")
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "schemathesis took {:.1} s:\n{report}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{report}"
    );
    p.stop().await;
}
