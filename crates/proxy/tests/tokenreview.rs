//! Kubernetes TokenReview authentication, against a stand-in API server on loopback (see
//! `common/kube.rs`: no kube-apiserver can run on the test machines).

mod common;
#[path = "common/kube.rs"]
mod kube;
#[path = "common/pki.rs"]
mod pki;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use kube::{Setup, api_server, review_config, setup};
use pki::{ca, replace};
use proxy::tokenreview::TokenReviewConfig;
use proxy::{ApiPolicy, Producer};
use serde_json::json;

async fn start(s: &Setup, cfg: TokenReviewConfig, token_file: Option<PathBuf>) -> Producer {
    Producer::start_with(
        config(&s.dir.path().join("store"), fast_delivery()),
        ApiPolicy {
            token_review: Some(cfg),
            auth_token_file: token_file,
            ..ApiPolicy::default()
        },
    )
    .await
    .unwrap()
}

async fn get(p: &Producer, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut rb = client().get(url(p, path));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    rb.send().await.unwrap()
}

#[tokio::test]
async fn service_account_tokens_are_reviewed_admitted_by_group_and_cached() {
    let kube_ca = ca("kube CA");
    let api = api_server(&kube_ca, "producer-sa-token").await;
    let s = setup(&kube_ca, "producer-sa-token");
    let mut cfg = review_config(&s, &api.url());
    cfg.allow_groups = vec!["system:serviceaccounts:vdu".into()];
    let p = start(&s, cfg, None).await;

    // health and openapi.json: no token, no review.
    assert_eq!(get(&p, "/health", None).await.status(), 200);
    assert_eq!(get(&p, "/openapi.json", None).await.status(), 200);
    // No token, or not a bearer one: 401 without asking the API server.
    let resp = get(&p, "/subscriptions", None).await;
    assert_eq!(
        resp.headers()["www-authenticate"],
        "Bearer realm=\"ocloudNotifications\""
    );
    assert_problem(resp, 401).await;
    assert_eq!(api.reviews(), 0);

    // A service account of the admitted namespace: served, one review, then from the cache.
    for _ in 0..3 {
        let resp = get(&p, "/subscriptions", Some("vdu-consumer-token")).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap(), "[]");
    }
    let c = Consumer::start(Behaviour::Ok).await;
    let body = format!(
        r#"{{"ResourceAddress":"{}","EndpointUri":"{}"}}"#,
        lock_state(),
        c.url
    );
    let resp = client()
        .post(url(&p, "/subscriptions"))
        .bearer_auth("vdu-consumer-token")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(api.reviews(), 1);
    {
        let st = api.state.lock().unwrap();
        assert_eq!(
            st.requests[0],
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                   "spec": {"token": "vdu-consumer-token"}})
        );
    }

    // Authenticated, but of another namespace: 403, and cached too.
    for _ in 0..2 {
        let detail = assert_problem(
            get(&p, "/subscriptions", Some("other-app-token")).await,
            403,
        )
        .await;
        assert!(
            detail.contains("system:serviceaccount:other:app"),
            "{detail}"
        );
    }
    assert_eq!(api.reviews(), 2);

    // A token the API server does not authenticate: 401 with its reason.
    let resp = get(&p, "/subscriptions", Some("forged-token")).await;
    assert!(resp.headers().contains_key("www-authenticate"));
    let detail = assert_problem(resp, 401).await;
    // The API server's reason is logged, not told to the client.
    assert!(
        detail.contains("not accepted by the Kubernetes API server"),
        "{detail}"
    );
    assert!(!detail.contains("go-jose"), "{detail}");
    assert_eq!(api.reviews(), 3);

    // 20 concurrent first requests with one new token: one review.
    let before = api.reviews();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let u = url(&p, "/subscriptions");
            tokio::spawn(async move {
                client()
                    .get(u)
                    .bearer_auth("vdu-ptp-audience-token")
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    for t in tasks {
        // That token is for another audience than the API server's: refused, once.
        assert_eq!(t.await.unwrap(), 401);
    }
    assert_eq!(api.reviews(), before + 1);

    // Counted: decisions at the edge (health and openapi.json are not), reviews by verdict.
    let metrics = p.hub.metrics().render();
    for line in [
        "cne_api_auth_total{result=\"allowed\"} 4",
        "cne_api_auth_total{result=\"forbidden\"} 2",
        "cne_api_auth_total{result=\"unauthenticated\"} 22",
        "cne_api_tokenreviews_total{result=\"allowed\"} 1",
        "cne_api_tokenreviews_total{result=\"forbidden\"} 1",
        "cne_api_tokenreviews_total{result=\"refused\"} 2",
    ] {
        assert!(metrics.contains(line), "{line} not in:\n{metrics}");
    }
    promtool_check(&metrics);
    api.task.abort();
}

#[tokio::test]
async fn the_review_fails_closed_with_503_and_recovers() {
    let kube_ca = ca("kube CA");
    let api = api_server(&kube_ca, "producer-sa-token-1").await;
    let s = setup(&kube_ca, "producer-sa-token-1");
    let mut cfg = review_config(&s, &api.url());
    cfg.cache_ttl = Duration::from_millis(300);
    cfg.negative_cache_ttl = Duration::from_millis(300);
    let p = start(&s, cfg, None).await;
    assert_eq!(
        get(&p, "/subscriptions", Some("vdu-consumer-token"))
            .await
            .status(),
        200
    );

    // The kubelet rotates the producer's own token: the next review presents the new one.
    api.state.lock().unwrap().caller_token = "producer-sa-token-2".into();
    replace(&s.token_file, "producer-sa-token-2\n");
    assert_eq!(
        get(&p, "/subscriptions", Some("other-app-token"))
            .await
            .status(),
        200
    );

    // The producer's service account loses its system:auth-delegator binding: 503 (with
    // Retry-After), not 401, and nothing cached.
    api.state.lock().unwrap().forbid_caller = true;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let resp = get(&p, "/subscriptions", Some("vdu-consumer-token")).await;
    assert_eq!(resp.headers()["retry-after"], "1");
    let detail = assert_problem(resp, 503).await;
    assert!(detail.contains("retry"), "{detail}");
    api.state.lock().unwrap().forbid_caller = false;
    assert_eq!(
        get(&p, "/subscriptions", Some("vdu-consumer-token"))
            .await
            .status(),
        200
    );

    // A token revoked on the API server is refused once its cached verdict expires.
    api.state
        .lock()
        .unwrap()
        .tokens
        .remove("vdu-consumer-token");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_problem(
        get(&p, "/subscriptions", Some("vdu-consumer-token")).await,
        401,
    )
    .await;

    // The API server goes away: cached verdicts still hold, new tokens get 503.
    let before = api.reviews();
    assert_eq!(
        get(&p, "/subscriptions", Some("other-app-token"))
            .await
            .status(),
        200
    );
    api.task.abort();
    assert_eq!(
        get(&p, "/subscriptions", Some("other-app-token"))
            .await
            .status(),
        200
    );
    assert_problem(
        get(&p, "/subscriptions", Some("vdu-ptp-audience-token")).await,
        503,
    )
    .await;
    assert!(api.reviews() <= before + 1);
}

#[tokio::test]
async fn an_api_server_outside_the_trusted_ca_is_not_asked() {
    let kube_ca = ca("kube CA");
    let api = api_server(&kube_ca, "producer-sa-token").await;
    // The producer trusts another CA: the TLS handshake fails, the request gets 503.
    let s = setup(&ca("not the cluster CA"), "producer-sa-token");
    let p = start(&s, review_config(&s, &api.url()), None).await;
    assert_problem(
        get(&p, "/subscriptions", Some("vdu-consumer-token")).await,
        503,
    )
    .await;
    assert_eq!(api.reviews(), 0);
    // The CA file is corrected (a ConfigMap update): the next review trusts it.
    replace(&s.ca_file, &kube_ca.pem);
    assert_eq!(
        get(&p, "/subscriptions", Some("vdu-consumer-token"))
            .await
            .status(),
        200
    );
    assert_eq!(api.reviews(), 1);
    api.task.abort();
}

#[tokio::test]
async fn audiences_users_and_static_tokens_combine() {
    let kube_ca = ca("kube CA");
    let api = api_server(&kube_ca, "producer-sa-token").await;
    let s = setup(&kube_ca, "producer-sa-token");
    let static_tokens = s.dir.path().join("static-tokens");
    std::fs::write(&static_tokens, "lab-static-token\n").unwrap();
    let mut cfg = review_config(&s, &api.url());
    cfg.audiences = vec!["ptp-events".into()];
    cfg.allow_users = vec!["system:serviceaccount:vdu:consumer".into()];
    let p = start(&s, cfg, Some(static_tokens)).await;

    // A static token is accepted without a review.
    assert_eq!(
        get(&p, "/subscriptions", Some("lab-static-token"))
            .await
            .status(),
        200
    );
    assert_eq!(api.reviews(), 0);
    // A projected token for the audience "ptp-events": accepted; the review asked for it.
    assert_eq!(
        get(&p, "/subscriptions", Some("vdu-ptp-audience-token"))
            .await
            .status(),
        200
    );
    assert_eq!(
        api.state.lock().unwrap().requests[0]["spec"]["audiences"],
        json!(["ptp-events"])
    );
    // The same user's plain service-account token (audience: the API server): refused.
    let detail = assert_problem(
        get(&p, "/subscriptions", Some("vdu-consumer-token")).await,
        401,
    )
    .await;
    assert!(detail.contains("not accepted"), "{detail}");
    // The API server said why (audience), and was asked for "ptp-events" both times.
    let st = api.state.lock().unwrap();
    assert_eq!(st.requests.len(), 2);
    assert_eq!(st.requests[1]["spec"]["audiences"], json!(["ptp-events"]));
    drop(st);
    api.task.abort();
}

#[tokio::test]
async fn configuration_errors_are_named_at_start() {
    let kube_ca = ca("kube CA");
    let s = setup(&kube_ca, "t");
    let good = review_config(&s, "https://127.0.0.1:6443");
    let cases = [
        (
            TokenReviewConfig {
                api_server: "http://127.0.0.1:6443".into(),
                ..good.clone()
            },
            "must be https",
        ),
        (
            TokenReviewConfig {
                ca_file: s.dir.path().join("missing-ca.crt"),
                ..good.clone()
            },
            "missing-ca.crt",
        ),
        (
            TokenReviewConfig {
                token_file: s.dir.path().join("missing-token"),
                ..good.clone()
            },
            "missing-token",
        ),
    ];
    for (cfg, named) in cases {
        let err = Producer::start_with(
            config(&s.dir.path().join("store"), fast_delivery()),
            ApiPolicy {
                token_review: Some(cfg),
                ..ApiPolicy::default()
            },
        )
        .await
        .err()
        .expect("an unusable TokenReview configuration must be refused at start");
        assert!(err.to_string().contains(named), "{err}");
    }
}

/// A client cycling new tokens gets 429 once it has caused its budget of reviews; cached
/// tokens and other clients are not affected.
#[tokio::test]
async fn a_client_cycling_tokens_is_limited_others_are_not() {
    let kube_ca = ca("kube CA");
    let api = api_server(&kube_ca, "producer-sa-token").await;
    let s = setup(&kube_ca, "producer-sa-token");
    let mut cfg = review_config(&s, &api.url());
    cfg.reviews_per_client = 3;
    cfg.review_window = Duration::from_secs(3600);
    let p = start(&s, cfg, None).await;

    // A valid token (1 review) and two forged ones (2 reviews) use the budget of 127.0.0.1.
    assert_eq!(
        get(&p, "/subscriptions", Some("vdu-consumer-token"))
            .await
            .status(),
        200
    );
    for i in 0..2 {
        let token = format!("forged-{i}");
        assert_problem(get(&p, "/subscriptions", Some(&token)).await, 401).await;
    }
    assert_eq!(api.reviews(), 3);
    // New tokens from that client: 429 with Retry-After, and the API server is not asked.
    for i in 2..12 {
        let token = format!("forged-{i}");
        let resp = get(&p, "/subscriptions", Some(&token)).await;
        let retry: u64 = resp.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        // One review per 1,200 s (3 per hour).
        assert!((1..=1200).contains(&retry), "Retry-After {retry}");
        let detail = assert_problem(resp, 429).await;
        assert!(detail.contains("too many new bearer tokens"), "{detail}");
    }
    assert_eq!(api.reviews(), 3);
    // Cached verdicts cost nothing: the valid token is still served, a known forged one is
    // still 401.
    assert_eq!(
        get(&p, "/subscriptions", Some("vdu-consumer-token"))
            .await
            .status(),
        200
    );
    assert_problem(get(&p, "/subscriptions", Some("forged-0")).await, 401).await;
    // Another client address has its own budget.
    let other = client_from("127.0.0.2");
    let resp = other
        .get(url(&p, "/subscriptions"))
        .bearer_auth("vdu-ptp-audience-token")
        .send()
        .await
        .unwrap();
    assert_problem(resp, 401).await;
    assert_eq!(api.reviews(), 4);

    let metrics = p.hub.metrics().render();
    for line in [
        "cne_api_auth_total{result=\"limited\"} 10",
        "cne_api_tokenreviews_total{result=\"refused\"} 3",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    api.task.abort();
}

/// Requests the API server could not answer cost no budget: a client retrying through an
/// outage is not limited when the API server comes back.
#[tokio::test]
async fn an_outage_costs_no_review_budget() {
    let kube_ca = ca("kube CA");
    let s = setup(&kube_ca, "producer-sa-token");
    let dead = format!("https://127.0.0.1:{}", {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    });
    let mut cfg = review_config(&s, &dead);
    cfg.reviews_per_client = 1;
    cfg.review_window = Duration::from_secs(3600);
    let p = start(&s, cfg, None).await;
    for i in 0..5 {
        let resp = get(&p, "/subscriptions", Some(&format!("token-{i}"))).await;
        assert_eq!(resp.headers()["retry-after"], "1");
        assert_problem(resp, 503).await;
    }
}

/// An API server that received the review but answered an error (throttling 429 here) cost it
/// work: the review stays charged, so a client cycling tokens cannot keep an overloaded API
/// server busy.
#[tokio::test]
async fn reviews_the_api_server_answered_stay_charged() {
    let kube_ca = ca("kube CA");
    let api = api_server(&kube_ca, "producer-sa-token").await;
    api.state.lock().unwrap().throttle = true;
    let s = setup(&kube_ca, "producer-sa-token");
    let mut cfg = review_config(&s, &api.url());
    cfg.reviews_per_client = 2;
    cfg.review_window = Duration::from_secs(3600);
    let p = start(&s, cfg, None).await;
    for i in 0..2 {
        let resp = get(&p, "/subscriptions", Some(&format!("token-{i}"))).await;
        assert_problem(resp, 503).await;
    }
    for i in 2..10 {
        let resp = get(&p, "/subscriptions", Some(&format!("token-{i}"))).await;
        assert_problem(resp, 429).await;
    }
    assert_eq!(api.reviews(), 2);
    api.task.abort();
}
