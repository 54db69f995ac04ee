//! The `consumer` subcommand (the reference consumer) against in-test producers: its log says
//! `created subscription`, `received event`, `Latency for the event`, `Got CurrentState`; it uses
//! every publisher, re-subscribes after a publisher restart, and deletes its subscriptions at
//! exit.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;
#[path = "../../proxy/tests/common/pki.rs"]
mod pki;

use common::{free_port, recorder};
use oran_api::{EventTime, Resource, Value};
use proxy::{DeliveryConfig, Producer, ProducerConfig};

const NODE: &str = "node1";

async fn producer_at(store: &Path, addr: &str) -> Producer {
    producer_with(store, addr, DeliveryConfig::default()).await
}

async fn producer_with(store: &Path, addr: &str, delivery: DeliveryConfig) -> Producer {
    Producer::start(ProducerConfig {
        node_name: NODE.into(),
        api_addr: addr.parse().unwrap(),
        metrics_addr: None,
        store_path: store.to_path_buf(),
        uri_location_base: "http://localhost:9043".into(),
        delivery,
        max_body_bytes: proxy::api::DEFAULT_MAX_BODY,
    })
    .await
    .unwrap()
}

/// A producer delivering to https EndpointUris with these files.
async fn tls_producer(store: &Path, files: proxy::tls::DeliveryTlsFiles) -> Producer {
    let delivery = DeliveryConfig {
        tls: Some(Arc::new(proxy::tls::DeliveryTls::open(files).unwrap())),
        ..DeliveryConfig::default()
    };
    producer_with(store, "127.0.0.1:0", delivery).await
}

/// The consumer process with its stderr (the log) collected.
struct Consumer {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Consumer {
    /// Starts `ptp-events <extra> consumer ...` with ENABLE_STATUS_CHECK=true on a free port.
    fn start(publishers: &[String], extra: &[&str]) -> Consumer {
        Consumer::start_with_env(publishers, extra, true, &[])
    }

    /// Starts on a free port; when another test took the port between the check and the
    /// consumer's bind (tests run in parallel), starts again on another one.
    fn start_with_env(
        publishers: &[String],
        extra: &[&str],
        status_check: bool,
        env: &[(&str, &str)],
    ) -> Consumer {
        for _ in 0..5 {
            let local = format!("127.0.0.1:{}", free_port());
            let mut c = Consumer::spawn_with_env(publishers, extra, &local, status_check, env);
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if c.log().contains("Starting local API") {
                    return c;
                }
                if c.child.try_wait().unwrap().is_some() {
                    std::thread::sleep(Duration::from_millis(50));
                    assert!(
                        c.log().contains("Address already in use"),
                        "consumer exited at start; log:\n{}",
                        c.log()
                    );
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "consumer did not start:\n{}",
                    c.log()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("no free port for the consumer after 5 tries");
    }

    fn spawn(publishers: &[String], extra: &[&str], local: &str, status_check: bool) -> Consumer {
        Consumer::spawn_with_env(publishers, extra, local, status_check, &[])
    }

    fn spawn_with_env(
        publishers: &[String],
        extra: &[&str],
        local: &str,
        status_check: bool,
        env: &[(&str, &str)],
    ) -> Consumer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ptp-events"))
            .args(extra)
            .arg("consumer")
            .args(["--local-api-addr", local])
            .arg("--http-event-publishers")
            .arg(publishers.join(","))
            .args(["--check-interval", "300ms", "--retry-interval", "100ms"])
            .args(["--status-check-interval", "300ms"])
            .env("NODE_NAME", NODE)
            .env("ENABLE_STATUS_CHECK", status_check.to_string())
            .env("LOG_LEVEL", "info")
            .env_remove("LOG_FORMAT")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        Consumer { child, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn count(&self, needle: &str) -> usize {
        self.log().matches(needle).count()
    }

    /// Waits until `needle` appears `n` times in the log (panics with the log after 20 s).
    async fn wait_for(&self, needle: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.count(needle) < n {
            assert!(
                Instant::now() < deadline,
                "{needle:?} not logged {n} times; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then waits for the exit.
    async fn terminate(mut self) -> String {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "consumer exited with {status}");
                break;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("consumer did not exit on SIGTERM; log:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.log()
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_subscriptions(p: &Producer, n: usize, log: &Consumer) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while p.hub.list().len() != n {
        assert!(
            Instant::now() < deadline,
            "producer {} has {} subscriptions, expected {n}; consumer log:\n{}",
            p.api_addr,
            p.hub.list().len(),
            log.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn lock_values(state: &str, offset: i64) -> Vec<Value> {
    let ra = format!("/cluster/node/{NODE}/ens1fx/master");
    vec![
        Value::notification(ra.clone(), state),
        Value::metric(ra, offset),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_presents_the_bearer_token_of_its_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "consumer-secret\n").unwrap();
    let p = Producer::start_with(
        ProducerConfig {
            node_name: NODE.into(),
            api_addr: "127.0.0.1:0".parse().unwrap(),
            metrics_addr: None,
            store_path: dir.path().join("store"),
            uri_location_base: "http://localhost:9043".into(),
            delivery: DeliveryConfig::default(),
            max_body_bytes: proxy::api::DEFAULT_MAX_BODY,
        },
        proxy::ApiPolicy {
            auth_token_file: Some(tokens),
            ..proxy::ApiPolicy::default()
        },
    )
    .await
    .unwrap();
    let publishers = [p.api_addr.to_string()];
    // A wrong token: refused, and said so in the log; nothing is created.
    let wrong = dir.path().join("wrong-token");
    std::fs::write(&wrong, "guess\n").unwrap();
    let c = Consumer::start_with_env(
        &publishers,
        &[],
        false,
        &[("PUBLISHER_TOKEN_FILE", wrong.to_str().unwrap())],
    );
    c.wait_for("401", 1).await;
    assert_eq!(p.hub.list().len(), 0);
    drop(c);
    // The right token, from the file named by PUBLISHER_TOKEN_FILE: the five subscriptions.
    let right = dir.path().join("token");
    std::fs::write(&right, "consumer-secret\n").unwrap();
    let c = Consumer::start_with_env(
        &publishers,
        &[],
        false,
        &[("PUBLISHER_TOKEN_FILE", right.to_str().unwrap())],
    );
    wait_subscriptions(&p, 5, &c).await;
    let log = c.terminate().await;
    assert_eq!(p.hub.list().len(), 0, "deleted at exit:\n{log}");
}

/// A slim container image has no system trust store. Found by running the image: the consumer
/// refused to start ("cannot build an HTTP client: builder error") although its publisher is
/// plain http. With no trust store (SSL_CERT_FILE/SSL_CERT_DIR pointing at nothing), it
/// subscribes over http; for an https publisher without a CA file it says what is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_needs_no_system_trust_store_for_http_publishers() {
    let dir = tempfile::tempdir().unwrap();
    let p = producer_at(&dir.path().join("store"), "127.0.0.1:0").await;
    let empty = dir.path().join("no-certs");
    std::fs::create_dir(&empty).unwrap();
    let no_store = [
        ("SSL_CERT_FILE", empty.join("none.pem")),
        ("SSL_CERT_DIR", empty.clone()),
    ];
    let env: Vec<(&str, &str)> = no_store
        .iter()
        .map(|(k, v)| (*k, v.to_str().unwrap()))
        .collect();
    let c = Consumer::start_with_env(&[p.api_addr.to_string()], &[], false, &env);
    wait_subscriptions(&p, 5, &c).await;
    let log = c.terminate().await;
    assert!(!log.contains("cannot build"), "{log}");

    let out = Command::new(env!("CARGO_BIN_EXE_ptp-events"))
        .arg("consumer")
        .args(["--local-api-addr", "127.0.0.1:0"])
        .args([
            "--http-event-publishers",
            &format!("https://{}", p.api_addr),
        ])
        .env("NODE_NAME", NODE)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("No CA certificates were loaded from the system")
            && stderr.contains("the system trust store: install one"),
        "{stderr}"
    );
}

/// `--local-tls-cert/--local-tls-key` (here by environment): the consumer subscribes with an
/// https EndpointUri and receives events from a producer delivering over TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_receives_events_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| pki::write(dir.path(), name, text);
    let consumer_ca = pki::ca("consumer CA");
    let cert = pki::leaf(&consumer_ca, "consumer", true);
    let p = tls_producer(
        &dir.path().join("store"),
        proxy::tls::DeliveryTlsFiles {
            ca: write("consumer-ca.crt", &consumer_ca.pem),
            client_identity: None,
        },
    )
    .await;
    let (cert_file, key_file) = (
        write("consumer.crt", &cert.cert_pem),
        write("consumer.key", &cert.key_pem),
    );
    let c = Consumer::start_with_env(
        &[p.api_addr.to_string()],
        &[],
        false,
        &[
            ("LOCAL_TLS_CERT", cert_file.to_str().unwrap()),
            ("LOCAL_TLS_KEY", key_file.to_str().unwrap()),
        ],
    );
    wait_subscriptions(&p, 5, &c).await;
    for s in p.hub.list() {
        assert!(
            s.endpoint_uri.starts_with("https://127.0.0.1:"),
            "{}",
            s.endpoint_uri
        );
    }
    // The five initial notifications, then one event, all over TLS.
    c.wait_for("received event", 5).await;
    p.hub.publish(
        Resource::LockState,
        lock_values("FREERUN", 5000),
        EventTime::now(),
    );
    c.wait_for("received event", 6).await;
    c.terminate().await;
}

/// `LOCAL_TLS_CLIENT_CA` (mutual TLS on the receiver): events from the producer, which presents
/// a client certificate of that CA (`--delivery-client-cert`), arrive; anyone else posting a
/// forged event (no client certificate, or one of another CA) is refused during the handshake
/// and the consumer never sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_with_a_client_ca_takes_events_only_from_the_producer() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| pki::write(dir.path(), name, text);
    let consumer_ca = pki::ca("consumer CA");
    let cert = pki::leaf(&consumer_ca, "consumer", true);
    let producer_ca = pki::ca("producer CA");
    let producer_id = pki::leaf(&producer_ca, "producer", false);
    let p = tls_producer(
        &dir.path().join("store"),
        proxy::tls::DeliveryTlsFiles {
            ca: write("consumer-ca.crt", &consumer_ca.pem),
            client_identity: Some((
                write("producer.crt", &producer_id.cert_pem),
                write("producer.key", &producer_id.key_pem),
            )),
        },
    )
    .await;
    let c = Consumer::start_with_env(
        &[p.api_addr.to_string()],
        &[],
        false,
        &[
            (
                "LOCAL_TLS_CERT",
                write("consumer.crt", &cert.cert_pem).to_str().unwrap(),
            ),
            (
                "LOCAL_TLS_KEY",
                write("consumer.key", &cert.key_pem).to_str().unwrap(),
            ),
            (
                "LOCAL_TLS_CLIENT_CA",
                write("producer-ca.crt", &producer_ca.pem).to_str().unwrap(),
            ),
        ],
    );
    wait_subscriptions(&p, 5, &c).await;
    c.wait_for("received event", 5).await;
    p.hub.publish(
        Resource::LockState,
        lock_values("FREERUN", 5000),
        EventTime::now(),
    );
    c.wait_for(r#""value":"FREERUN""#, 1).await;

    // Forged events to the consumer's endpoint: a client trusting the consumer's certificate,
    // without a client certificate, then with one of another CA.
    let endpoint = p.hub.list()[0].endpoint_uri.clone();
    let forged = r#"{"specversion":"1.0","id":"f","source":"/sync/ptp-status/lock-state","type":"event.sync.ptp-status.ptp-state-change","time":"2026-01-01T00:00:00Z","data":{"version":"1.0","values":[{"ResourceAddress":"/cluster/node/node1/sync/ptp-status/lock-state","data_type":"notification","value_type":"enumeration","value":"LOCKED"}]}}"#;
    let other_ca = pki::ca("someone else's CA");
    let other = pki::leaf(&other_ca, "intruder", false);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let poster = |identity: Option<&pki::Leaf>| {
        let mut b = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(consumer_ca.pem.as_bytes()).unwrap()]);
        if let Some(id) = identity {
            let pem = format!("{}{}", id.cert_pem, id.key_pem);
            b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
        }
        b.build().unwrap()
    };
    for identity in [None, Some(&other)] {
        let err = poster(identity)
            .post(&endpoint)
            .header("content-type", "application/json")
            .body(forged)
            .send()
            .await
            .expect_err("a client without the producer's certificate must be refused");
        assert!(err.is_connect() || err.is_request(), "{err:?}");
    }
    // The control: the same client with the producer's certificate is let in (an empty body,
    // the endpoint check, is answered 204 without reaching the handler).
    let resp = poster(Some(&producer_id))
        .post(&endpoint)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    // The producer's events still arrive; the forged LOCKED never did.
    p.hub.publish(
        Resource::LockState,
        lock_values("HOLDOVER", 70),
        EventTime::now(),
    );
    c.wait_for(r#""value":"HOLDOVER""#, 1).await;
    let log = c.terminate().await;
    assert!(!log.contains(r#""id":"f""#), "{log}");
    assert!(!log.contains(r#""value":"LOCKED""#), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_subscribes_on_every_publisher_receives_events_and_survives_a_restart() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let p1 = producer_at(d1.path(), "127.0.0.1:0").await;
    let p2 = producer_at(d2.path(), "127.0.0.1:0").await;
    let addr1: SocketAddr = p1.api_addr;
    // One publisher as host:port, the other with http:// and a NODE_NAME token (which must not
    // change it: the token is absent). Both are used.
    let consumer = Consumer::start(&[addr1.to_string(), format!("http://{}", p2.api_addr)], &[]);

    wait_subscriptions(&p1, 5, &consumer).await;
    wait_subscriptions(&p2, 5, &consumer).await;
    consumer.wait_for("created subscription", 10).await;
    // Initial notifications: one per subscription.
    consumer.wait_for("received event", 10).await;
    consumer.wait_for("Latency for the event: ", 10).await;

    p1.hub.publish(
        Resource::LockState,
        lock_values("LOCKED", -5),
        EventTime::now(),
    );
    consumer.wait_for(r#""value":"LOCKED""#, 1).await;
    consumer.wait_for("Got CurrentState: ", 1).await;
    let log = consumer.log();
    assert!(
        log.contains(r#""source":"/sync/ptp-status/lock-state""#),
        "{log}"
    );
    assert!(!log.contains("context deadline exceeded"));

    // Publisher 1 restarts on the same port with an empty store: the consumer subscribes again.
    p1.stop().await;
    let d3 = tempfile::tempdir().unwrap();
    let p1 = producer_at(d3.path(), &addr1.to_string()).await;
    wait_subscriptions(&p1, 5, &consumer).await;
    consumer.wait_for("created subscription", 15).await;
    p1.hub.publish(
        Resource::LockState,
        lock_values("HOLDOVER", 9),
        EventTime::now(),
    );
    consumer.wait_for(r#""value":"HOLDOVER""#, 1).await;

    // At exit it deletes its own subscriptions.
    let log = consumer.terminate().await;
    assert!(log.contains("deleted subscription"), "{log}");
    assert!(p1.hub.list().is_empty(), "{log}");
    assert!(p2.hub.list().is_empty(), "{log}");
    p1.stop().await;
    p2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_recovers_from_409_and_logs_json_with_the_global_flag() {
    let d = tempfile::tempdir().unwrap();
    let p = producer_at(d.path(), "127.0.0.1:0").await;
    // A first consumer process subscribes, then dies without cleaning up (SIGKILL); a second
    // one with the same EndpointUri gets 409 and recovers (replaces its own subscriptions,
    // subscribes again), leaving another application's subscription alone.
    let port = free_port();
    let local = format!("127.0.0.1:{port}");
    let args = ["--log-format", "json"];
    let mut first = Consumer::spawn(&[p.api_addr.to_string()], &args, &local, false);
    wait_subscriptions(&p, 5, &first).await;
    let _ = first.child.kill();
    let _ = first.child.wait();
    let before: Vec<String> = p
        .hub
        .list()
        .into_iter()
        .map(|s| s.subscription_id)
        .collect();
    // Another application's subscription on the same producer: the default conflict policy
    // (replace-own) must leave it alone (the Go consumer's delete-all would remove it).
    let (other, _) = recorder(|_| None).await;
    let r = common::http_client()
        .post(format!(
            "http://{}/api/ocloudNotifications/v2/subscriptions",
            p.api_addr
        ))
        .body(format!(
            r#"{{"ResourceAddress":"/cluster/node/{NODE}/sync/ptp-status/lock-state","EndpointUri":"{other}"}}"#
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let other_id = p
        .hub
        .list()
        .into_iter()
        .find(|s| s.endpoint_uri == other)
        .expect("the other application's subscription")
        .subscription_id;

    let second = Consumer::spawn(&[p.api_addr.to_string()], &args, &local, false);
    second.wait_for("created subscription", 5).await;
    wait_subscriptions(&p, 6, &second).await;
    assert!(
        p.hub.list().iter().any(|s| s.subscription_id == other_id),
        "the other application's subscription was deleted"
    );
    let after: Vec<String> = p
        .hub
        .list()
        .into_iter()
        .map(|s| s.subscription_id)
        .collect();
    assert!(after.iter().all(|id| !before.contains(id)), "re-created");
    let log = second.log();
    assert!(log.contains("409"), "{log}");
    // Every line is a JSON object.
    for line in log.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v.is_object());
    }
    drop(second);
    p.stop().await;
}
